"""Collect per-sample features of a trained model over a test split: pooled task features and NexusFlow latents.

The task features are read through the plug-in tap machinery (:class:`FeatureProbe`, a read-only
:class:`~projects.nexusflow.core.TapPlugin`): by default the three places where NexusFlow attaches —
the BEV encoder output, the track decoder's last-layer query states and the map transformer's BEV-shaped encoder
memory — each mean-pooled over its set to one ``[C]`` vector per sample. When the model carries a
:class:`~projects.nexusflow.models.nexusflow.NexusFlow` plug-in, its per-task latents ``z_t`` (``encode()`` after
every predict forward) are collected too. Inference runs in the sequential test mode of ``tools/test.py``
(scene-ordered ``SceneAwareSampler`` dataloader, temporal state carried within a scene).
"""
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional

import numpy as np
import torch
from mmengine.logging import print_log
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from ..core.taps import TapPlugin
from ..evaluation.tracking_eval import city_of
from ..models.nexusflow import NexusFlow
from ..models.nexusflow.aggregators import masked_mean

__all__ = ['FeatureProbe', 'FeatureCollection', 'default_taps', 'collect_features', 'SAMPLE_META_KEYS']

# per-sample metainfo kept with the features
SAMPLE_META_KEYS = ('token', 'scene_name', 'location', 'frame_idx')


@MODELS.register_module('NexusFlowFeatureProbe')
class FeatureProbe(TapPlugin):
    """Read-only taps mean-pooled to one vector per sample; adds no loss.

    Args:
        taps (dict[str, dict]): tap name -> ``dict(module=<dotted path>, kind=<'bev' | 'queries' |
            'feature_map' | registered adapter>, **adapter kwargs)`` (see ``tap_adapters.py``).
        init_cfg (dict, optional): mmengine init config.
    """

    def pooled(self) -> Dict[str, Tensor]:
        """Masked mean of every tap's latest output over its set axis.

        Returns:
            dict[str, Tensor]: tap name -> ``[B, C]`` float32 CPU tensor (detached), in config order; entries
            flagged by the tap's ``padding_mask`` are left out of the mean.

        Raises:
            ValueError: a query-set tap (no ``spatial_shape``) of a batch with ``B > 1`` carries no padding mask:
                the host pads its per-sample query sets to the batch maximum, and the padded rows would enter the
                mean. Run with a test batch size of 1 (the sequential test mode), or tap an adapter that sets
                ``padding_mask``.
        """
        pooled = {}
        for name in self.tap_names:
            tap = self.tap(name)
            if tap.spatial_shape is None and tap.padding_mask is None and tap.features.shape[0] > 1:
                raise ValueError(f'tap {name!r} is a query set of a batch of {tap.features.shape[0]} samples without '
                                 'a padding mask, so padded queries would be averaged in; collect features with '
                                 'test batch size 1')
            pooled[name] = masked_mean(tap.features, tap.padding_mask).detach().float().cpu()
        return pooled

    def loss(self, data_samples: Any = None) -> Dict[str, Tensor]:
        """No loss: forget the stored outputs and return ``{}`` (so the probe can sit in a detector's plug-ins)."""
        self.clear()
        return {}


def default_taps(model: nn.Module) -> Dict[str, dict]:
    """The taps NexusFlow reads on ``UniADTrackMap``, for the heads the model has.

    ``bev``: ``bev_encoder`` output ``[B, H*W, C]``; ``track``: ``track_head.decoder`` last-layer states
    ``[B, Nq, C]``; ``map``: ``map_head.transformer.encoder`` output ``[B, H*W, C]``. The BEV grid ``(H, W)`` is
    the BEV encoder's ``(bev_h, bev_w)`` (the map canvas shares it, see the README contract).

    Raises:
        TypeError: the model has no ``bev_encoder`` with ``bev_h`` / ``bev_w``; pass the taps explicitly.
    """
    encoder = getattr(model, 'bev_encoder', None)
    if encoder is None or not hasattr(encoder, 'bev_h') or not hasattr(encoder, 'bev_w'):
        raise TypeError(f'default taps need a UniADTrackMap-like model with bev_encoder.bev_h / bev_w, got '
                        f'{type(model).__name__}; pass taps=dict(name=dict(module=..., kind=...)) instead')
    bev_shape = (int(encoder.bev_h), int(encoder.bev_w))
    taps = dict(bev=dict(module='bev_encoder', kind='bev', bev_shape=bev_shape))
    if getattr(model, 'track_head', None) is not None:
        taps['track'] = dict(module='track_head.decoder', kind='queries')
    if getattr(model, 'map_head', None) is not None:
        taps['map'] = dict(module='map_head.transformer.encoder', kind='bev', bev_shape=bev_shape)
    return taps


@dataclass
class FeatureCollection:
    """Per-sample features of a split.

    Attributes:
        samples (list[dict]): ``S`` dicts with ``token``, ``scene_name``, ``location``, ``frame_idx`` and ``city``
            (``'boston'`` / ``'singapore'``, from the location), in inference order.
        features (dict[str, np.ndarray]): feature-set name -> ``[S, C]`` float32 rows in sample order:
            ``'taps/<tap>'`` pooled task features, ``'latents/<task>'`` NexusFlow latents (``'latents<i>/<task>'``
            for the ``i``-th of several NexusFlow plug-ins).
    """
    samples: List[Dict[str, Any]] = field(default_factory=list)
    features: Dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def cities(self) -> List[str]:
        """City of every sample, in sample order."""
        return [sample['city'] for sample in self.samples]

    def groups(self) -> Dict[str, List[str]]:
        """Feature sets by group (``'taps'``, ``'latents'``, ...) -> their task names, in insertion order."""
        groups: Dict[str, List[str]] = {}
        for name in self.features:
            group, task = name.split('/', 1)
            groups.setdefault(group, []).append(task)
        return groups

    def save(self, path: str) -> None:
        """Write ``features`` as arrays and ``samples`` as the JSON string ``__samples__`` into an ``.npz``."""
        np.savez_compressed(path, __samples__=np.asarray(json.dumps(self.samples)), **self.features)


def _nexusflow_plugins(model: nn.Module) -> Dict[str, NexusFlow]:
    """Group name -> NexusFlow plug-in of ``model.plugins`` (``'latents'``, or ``'latents<i>'`` for several)."""
    flows = [plugin for plugin in getattr(model, 'plugins', []) if isinstance(plugin, NexusFlow)]
    if len(flows) == 1:
        return {'latents': flows[0]}
    return {f'latents{index}': flow for index, flow in enumerate(flows)}


def _sample_meta(sample) -> Dict[str, Any]:
    """The ``SAMPLE_META_KEYS`` of a predicted ``Det3DDataSample`` plus its ``city``."""
    meta = sample.metainfo
    missing = [key for key in SAMPLE_META_KEYS if key not in meta]
    if missing:
        raise KeyError(f'the predicted data samples lack the meta keys {missing}; the test pipeline must pack them '
                       '(PackTrackMapInputs default meta_keys)')
    record = {key: meta[key] for key in SAMPLE_META_KEYS}
    record['frame_idx'] = int(record['frame_idx'])
    record['city'] = city_of(str(meta['location']))
    return record


def collect_features(model: nn.Module, dataloader: Iterable, taps: Optional[Dict[str, dict]] = None,
                     log_interval: int = 50) -> FeatureCollection:
    """Run ``model.test_step`` over ``dataloader`` and keep every sample's pooled taps and NexusFlow latents.

    Args:
        model (nn.Module): an mmengine model (e.g. ``UniADTrackMap``) with loaded weights; put in eval mode, its
            test state reset first (``reset_test_state``) when it has one.
        dataloader (Iterable): test batches in scene order (``tools/test.py``'s ``test_dataloader`` with
            ``SceneAwareSampler``; batch size 1 for the query taps, see :meth:`FeatureProbe.pooled`).
        taps (dict[str, dict], optional): tap name -> tap spec; default :func:`default_taps`.
        log_interval (int): log progress every this many batches.

    Returns:
        FeatureCollection: ``S`` samples, ``'taps/<name>'`` ``[S, C]``, and for a NexusFlow plug-in its aggregator
        embeddings ``'embeddings/<task>'`` ``[S, D]`` and latents ``'latents/<task>'`` ``[S, D']``, float32.
    """
    probe = FeatureProbe(default_taps(model) if taps is None else taps)
    flows = _nexusflow_plugins(model)
    model.eval()
    if callable(getattr(model, 'reset_test_state', None)):
        model.reset_test_state()
    rows: Dict[str, List[np.ndarray]] = {}
    collection = FeatureCollection()
    probe.attach(model)
    try:
        for index, batch in enumerate(dataloader):
            with torch.no_grad():
                outputs = model.test_step(batch)
                batch_rows = {f'taps/{name}': value for name, value in probe.pooled().items()}
                for group, flow in flows.items():
                    embeddings = flow.embed()
                    batch_rows.update({f'embeddings{group[len("latents"):]}/{task}': f.float().cpu()
                                       for task, f in embeddings.items()})
                    batch_rows.update({f'{group}/{task}': z.float().cpu()
                                       for task, z in flow.encode(embeddings).items()})
            for name, value in batch_rows.items():
                rows.setdefault(name, []).append(value.numpy())
            collection.samples.extend(_sample_meta(sample) for sample in outputs)
            if log_interval > 0 and (index + 1) % log_interval == 0:
                print_log(f'collected features of {len(collection.samples)} samples', logger='current',
                          level=logging.INFO)
    finally:
        probe.detach()
        for flow in flows.values():
            flow.clear()
    collection.features = {name: np.concatenate(values).astype(np.float32) for name, values in rows.items()}
    return collection
