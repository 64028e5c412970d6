"""``NexusFlow``: align the latent distributions of N tasks through per-task surrogates (aggregator + flow).

Per task ``t``: the tap's features -> aggregator ``g_t`` -> embedding ``f_t`` ``[B, D]`` -> affine couplings
``C_t`` (or the ``w/o inv`` MLP) -> latent ``z_t``; the loss is ``lambda * L_align(z_1 .. z_N)`` (``'center'`` of the
N-task paper, or ``'pairwise'``, which for two tasks is the 2-task paper's ``||z_map - z_track||^2``). The surrogates
read the host through taps only: NexusFlow knows nothing of UniAD but the tap paths in its config, never changes a
tapped output, and works for any ``N >= 2`` and any tap kind (BEV, query sets, CNN feature maps).

The alignment is label-free: every sample is seen by every task branch, so the loss uses every sample of the
batch regardless of its ``has_track_gt`` / ``has_map_gt`` flags.
"""
from typing import Any, Dict, Optional

import torch
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from .align_loss import ALIGN_MODES, align_loss, mean_pair_distance
from ...core.taps import TapPlugin
from .diagnostics import CollapseMonitor, LatentStandardizer
from .spread_floor import SpreadFloor

DEFAULT_COUPLING = dict(num_layers=6, hidden_dims=(256, ), clamp=2.0, output='full')
LATENT_NORMS = (None, 'running')


def check_tasks(tasks: Dict[str, dict]) -> None:
    """``ValueError`` unless ``tasks`` maps ``>= 2`` names to ``dict(tap=dict(...), aggregator=dict(type=...))``."""
    if not isinstance(tasks, dict) or len(tasks) < 2:
        raise ValueError(f'NexusFlow aligns at least 2 tasks: tasks must be a dict name -> dict(tap=..., '
                         f'aggregator=...) with >= 2 entries, got {tasks!r}')
    for name, task in tasks.items():
        if not isinstance(task, dict) or set(task) != {'tap', 'aggregator'}:
            raise ValueError(f"task {name!r} must be dict(tap=dict(module=..., kind=...), aggregator=dict(type=...)) "
                             f'exactly, got keys {sorted(task) if isinstance(task, dict) else task!r}')


def build_aggregator(cfg: dict, latent_dim: int) -> nn.Module:
    """Build a task's aggregator with ``out_dim = latent_dim`` (``ValueError`` if the config sets another)."""
    cfg = dict(cfg)
    if cfg.setdefault('out_dim', latent_dim) != latent_dim:
        raise ValueError(f"aggregator out_dim must equal latent_dim={latent_dim}, got {cfg['out_dim']} in {cfg}; "
                         'leave out_dim unset')
    return MODELS.build(cfg)


def build_flow(coupling: dict, latent_dim: int, invertible: bool, seed: int) -> nn.Module:
    """The per-task map ``f -> z``: :class:`AffineCouplingStack` or, for ``invertible=False``, :class:`MLPStack`.

    ``clamp`` is a property of the couplings only, so the MLP stack drops it; its other keys are shared.
    """
    cfg = dict(DEFAULT_COUPLING, **coupling)
    if invertible:
        return MODELS.build(dict(type='NexusFlowAffineCouplingStack', dim=latent_dim, seed=seed, **cfg))
    cfg.pop('clamp')
    return MODELS.build(dict(type='NexusFlowMLPStack', dim=latent_dim, **cfg))


@MODELS.register_module()
class NexusFlow(TapPlugin):
    """The NexusFlow plug-in.

    Example (UniAD, two tasks)::

        dict(type='NexusFlow', latent_dim=256,
             tasks=dict(track=dict(tap=dict(module='track_head.decoder', kind='queries'),
                                   aggregator=dict(type='NexusFlowQuerySetAggregator', in_channels=256)),
                        map=dict(tap=dict(module='map_head.transformer.encoder', kind='bev', bev_shape=(200, 200)),
                                 aggregator=dict(type='NexusFlowDeformableAggregator', in_channels=256))))

    Args:
        tasks (dict[str, dict]): ``N >= 2`` tasks, name -> ``dict(tap=<tap spec>, aggregator=<MODELS cfg>)``; the
            aggregator's ``out_dim`` is set to ``latent_dim``.
        latent_dim (int): even embedding width ``D``.
        coupling (dict): ``num_layers``, ``hidden_dims``, ``clamp``, ``output`` (``'full'`` or ``'half'``) of
            every task's :class:`AffineCouplingStack` (or :class:`MLPStack`, without ``clamp``).
        invertible (bool): ``False`` is the ``w/o inv`` ablation (plain MLP stacks).
        align_loss (str): ``'center'`` or ``'pairwise'``.
        loss_weight (float): ``lambda``.
        seed (int): the plug-in's parameters are drawn from this seed inside a forked RNG, so building it neither
            depends on nor changes the global RNG (the host's initialisation is the same with or without it).
        latent_norm (str, optional): ``None`` (the papers' loss on the raw latents) or ``'running'``: the loss
            compares latents divided by the running per-dimension std of all tasks' latents
            (:class:`LatentStandardizer`), so that shrinking the latent cannot lower it.
        spread_floor (dict, optional): ``dict(ratio=, loss_weight=, queue_size=, warmup=)`` adds ``loss_spread``, a
            hinge that keeps the per-dimension std of every task's embedding and latent above ``ratio`` times its
            early value (:class:`SpreadFloor`); ``None`` (default) is the papers' loss alone.
        collapse_ratio (float): warn when a task's latent std falls below this fraction of its value once the first
            ``collapse_queue`` batches are queued (:class:`CollapseMonitor`).
        collapse_queue (int): training batches whose taps the diagnostic stds are taken over, re-encoded with the
            current parameters (no gradient). The detached taps stay on the device: for the full-size map tap
            (200x200x256 BEV, fp32) that is 41 MB per batch, 0.66 GB at the default 16.
        collapse_interval (int): training steps between two re-encodings of the queue (the logged stds are those
            of the last one); 1 measures at every step, at ``collapse_queue`` aggregator and flow passes each.
        init_cfg (dict, optional): mmengine init config.

    Besides ``loss_align`` the loss dict carries diagnostics (logged, never summed): per task the per-dimension std
    of the embedding and of the latent over the last ``collapse_queue`` training batches, measured every
    ``collapse_interval`` steps at the parameters of that step (from the second queued sample on), the mean latent
    norm and, for couplings, the mean ``log|det|`` of the stack (``diag/<task>_{embed_std,latent_std,latent_norm,
    logdet}``).
    """

    def __init__(self, tasks: Dict[str, dict], latent_dim: int = 256, coupling: dict = DEFAULT_COUPLING,
                 invertible: bool = True, align_loss: str = 'center', loss_weight: float = 1.0, seed: int = 0,
                 latent_norm: Optional[str] = None, spread_floor: Optional[dict] = None, collapse_ratio: float = 0.1,
                 collapse_queue: int = 16, collapse_interval: int = 10, init_cfg: Optional[dict] = None) -> None:
        check_tasks(tasks)
        if align_loss not in ALIGN_MODES:
            raise ValueError(f'align_loss must be one of {ALIGN_MODES}, got {align_loss!r}')
        if latent_norm not in LATENT_NORMS:
            raise ValueError(f'latent_norm must be one of {LATENT_NORMS}, got {latent_norm!r}')
        super().__init__(taps={name: task['tap'] for name, task in tasks.items()}, init_cfg=init_cfg)
        self.align_mode = align_loss
        self.loss_weight = float(loss_weight)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.aggregators = nn.ModuleDict(
                {name: build_aggregator(task['aggregator'], latent_dim) for name, task in tasks.items()})
            self.flows = nn.ModuleDict({name: build_flow(coupling, latent_dim, invertible, seed + index)
                                        for index, name in enumerate(tasks)})
        out_dim = next(iter(self.flows.values())).out_dim
        self.latent_norm = LatentStandardizer(out_dim) if latent_norm == 'running' else None
        self.monitor = CollapseMonitor(list(tasks), ratio=collapse_ratio, queue_size=collapse_queue,
                                       interval=collapse_interval)
        self.spread_floor = None if spread_floor is None else SpreadFloor(list(tasks), **spread_floor)
        self._latents: Dict[str, Tensor] = {}

    def embed(self, taps: Optional[Dict[str, Any]] = None) -> Dict[str, Tensor]:
        """Aggregate every task's latest tap (or ``taps``): ``{task: f_t [B, D]}`` (graph kept), in config order."""
        taps = {name: self.tap(name) for name in self.tap_names} if taps is None else taps
        embeddings = {name: self.aggregators[name](taps[name]) for name in self.tap_names}
        sizes = {name: f.shape[0] for name, f in embeddings.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f'the taps of one forward must share the batch size, got {sizes}; check that every '
                             'tapped module ran on the whole batch in its last call')
        return embeddings

    def encode(self, embeddings: Optional[Dict[str, Tensor]] = None) -> Dict[str, Tensor]:
        """Per-task latents ``{task: z_t [B, out_dim]}`` (graph kept) from the latest taps (or ``embeddings``).

        Also usable after a ``predict`` forward (e.g. under ``torch.no_grad`` for MMD / t-SNE analysis); a
        detached copy is kept for :meth:`latents`.
        """
        embeddings = self.embed() if embeddings is None else embeddings
        latents = {name: self.flows[name](f) for name, f in embeddings.items()}
        self._latents = {name: z.detach() for name, z in latents.items()}
        return latents

    def latents(self) -> Dict[str, Tensor]:
        """The last computed latents ``{task: z_t [B, out_dim]}`` (detached, config order); ``{}`` before any."""
        return dict(self._latents)

    def loss(self, data_samples: Any = None) -> Dict[str, Tensor]:
        """Alignment loss of the last forward's taps; the stored tap outputs are released afterwards.

        Args:
            data_samples: the batch's data samples (unused: the alignment needs no labels).

        Returns:
            dict[str, Tensor]: ``loss_align`` = ``loss_weight * L_align`` (batch mean, scalar); in training with
            ``spread_floor`` also ``loss_spread``; logging only:
            ``latent_dist`` / ``embed_dist``, the mean Euclidean distance between the task latents / embeddings.
        """
        try:
            taps = {name: self.tap(name) for name in self.tap_names}
            embeddings = self.embed(taps)
            latents = self.encode(embeddings)
        finally:
            self.clear()
        diagnostics = self.diagnostics(taps, embeddings, latents) if self.training else {}
        if self.spread_floor is not None and self.training:
            diagnostics['loss_spread'] = self.spread_floor(taps, embeddings, latents, self.aggregators, self.flows)
        if self.latent_norm is not None:
            latents = self.latent_norm(latents)
        z_list, f_list = list(latents.values()), list(embeddings.values())
        return dict(loss_align=self.loss_weight * align_loss(z_list, self.align_mode, 'mean'),
                    latent_dist=mean_pair_distance([z.detach() for z in z_list]),
                    embed_dist=mean_pair_distance([f.detach() for f in f_list]), **diagnostics)

    @torch.no_grad()
    def diagnostics(self, taps: Dict[str, Any], embeddings: Dict[str, Tensor],
                    latents: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """``diag/*`` scalars of one training batch (see the class docstring); updates the collapse monitor."""
        stats = self.monitor.update(taps, latents, self.aggregators, self.flows)
        for name, flow in self.flows.items():
            if hasattr(flow, 'volume_log_det'):
                stats[f'{name}_logdet'] = flow.volume_log_det(embeddings[name].detach()).mean()
        return {f'diag/{key}': value.detach() for key, value in stats.items()}
