"""Tap adapters: turn the raw output of a tapped module into one standard form, :class:`TapOutput`.

A tap spec is ``dict(module=<dotted path>, kind=<kind>, **adapter kwargs)``. The built-in kinds are

- ``'bev'``: a BEV-shaped ``[B, H*W, C]`` tensor (batch-first, row-major; needs ``bev_shape=(H, W)``), e.g. the
  output of ``bev_encoder`` or ``map_head.transformer.encoder``;
- ``'feature_map'``: a ``[B, C, H, W]`` CNN feature map (e.g. an MTAN encoder on NYUv2);
- ``'queries'``: a query set with reference points, the ``(states [L, B, Nq, C], references [L, B, Nq, >=2])``
  pair of ``track_head.decoder`` (``layer`` picks the decoder layer, default the last).

Any other ``kind`` is the registered name of an adapter class in ``TASK_UTILS`` (a callable ``raw -> TapOutput``).
Every adapter takes ``index``: when the module returns a tuple/list, ``raw[index]`` is adapted instead.
Adapters never copy or detach: the features keep their autograd graph.
"""
from typing import Any, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from mmdet3d.registry import TASK_UTILS

BUILTIN_KINDS = {'bev': 'NexusFlowBEVTapAdapter', 'feature_map': 'NexusFlowFeatureMapTapAdapter',
                 'queries': 'NexusFlowQueryTapAdapter'}


class TapOutput(NamedTuple):
    """The standard form of a tap.

    Attributes:
        features (Tensor): ``[B, N, C]`` float features (graph kept).
        positions (Tensor): ``[B, N, 2]`` float ``(x, y)`` in ``[0, 1]``: for dense taps the cell centres
            ``((j + 0.5) / W, (i + 0.5) / H)`` (LiDAR x, y normalised over the BEV range for BEV taps); for query
            sets the reference points.
        padding_mask (Tensor, optional): ``[B, N]`` bool, ``True`` marks padded entries to ignore.
        spatial_shape (tuple[int, int], optional): ``(H, W)`` of dense taps (``N = H * W``, row-major);
            ``None`` for query sets.
    """
    features: Tensor
    positions: Tensor
    padding_mask: Optional[Tensor] = None
    spatial_shape: Optional[Tuple[int, int]] = None


def cat_taps(taps: Sequence[TapOutput]) -> TapOutput:
    """Concatenate tap outputs along the batch axis; query sets of different sizes are padded (masked).

    Args:
        taps (Sequence[TapOutput]): outputs of one tap, ``[B_i, N_i, C]`` each (dense taps share ``N``).

    Returns:
        TapOutput: ``[sum B_i, max N_i, C]``, with a ``padding_mask`` whenever any input has one or sizes differ.
    """
    if not taps:
        raise ValueError('cat_taps needs at least one TapOutput')
    if len({t.spatial_shape for t in taps}) != 1:
        raise ValueError(f'cannot concatenate taps of spatial shapes {sorted({str(t.spatial_shape) for t in taps})}')
    size = max(t.features.shape[1] for t in taps)
    masked = any(t.padding_mask is not None or t.features.shape[1] != size for t in taps)
    features, positions, masks = [], [], []
    for t in taps:
        pad = size - t.features.shape[1]
        features.append(nn.functional.pad(t.features, (0, 0, 0, pad)))
        positions.append(nn.functional.pad(t.positions, (0, 0, 0, pad)))
        mask = t.padding_mask
        if mask is None:
            mask = torch.zeros(t.features.shape[:2], dtype=torch.bool, device=t.features.device)
        masks.append(nn.functional.pad(mask, (0, pad), value=True))
    return TapOutput(torch.cat(features), torch.cat(positions), torch.cat(masks) if masked else None,
                     taps[0].spatial_shape)


def grid_positions(height: int, width: int, batch_size: int, like: Tensor) -> Tensor:
    """Cell centres of an ``H x W`` grid, row-major: ``[B, H*W, 2]`` ``(x, y)`` in ``(0, 1)``, dtype of ``like``."""
    ys = (torch.arange(height, device=like.device, dtype=like.dtype) + 0.5) / height
    xs = (torch.arange(width, device=like.device, dtype=like.dtype) + 0.5) / width
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack([grid_x, grid_y], dim=-1).reshape(1, height * width, 2).expand(batch_size, -1, -1)


class BaseTapAdapter:
    """Select ``raw[index]`` when ``index`` is set, then :meth:`adapt` it.

    Args:
        index (int, optional): element of a tuple/list output to adapt.
    """

    def __init__(self, index: Optional[int] = None) -> None:
        self.index = index

    def __call__(self, raw: Any) -> TapOutput:
        """Adapt the raw hook output of the tapped module into a :class:`TapOutput`."""
        if self.index is not None:
            if not isinstance(raw, (tuple, list)):
                raise TypeError(f'{type(self).__name__}(index={self.index}) expects a tuple/list module output, '
                                f'got {type(raw).__name__}')
            raw = raw[self.index]
        return self.adapt(raw)

    def on_attach(self, module: nn.Module) -> Optional[RemovableHandle]:
        """Called by :meth:`TapPlugin.attach` with the tapped module, at model build time: an adapter that needs
        something from the module declares it here (see ``head_tap.py``) and returns the handle that withdraws it.
        The built-in kinds need nothing."""
        return None

    def adapt(self, raw: Any) -> TapOutput:
        """Kind-specific conversion; implemented by subclasses."""
        raise NotImplementedError(f'{type(self).__name__} must implement adapt()')


def check_tensor(raw: Any, ndim: int, layout: str, owner: str) -> Tensor:
    """Raise ``TypeError``/``ValueError`` unless ``raw`` is a tensor with ``ndim`` dims (``layout`` names them)."""
    if not isinstance(raw, Tensor):
        raise TypeError(f'{owner} expects a {layout} tensor, got {type(raw).__name__}; set `index` if the module '
                        'returns a tuple')
    if raw.dim() != ndim:
        raise ValueError(f'{owner} expects a {layout} tensor, got shape {tuple(raw.shape)}')
    return raw


@TASK_UTILS.register_module('NexusFlowBEVTapAdapter')
class BEVTapAdapter(BaseTapAdapter):
    """``'bev'`` kind: ``[B, H*W, C]`` batch-first, row-major BEV features.

    Args:
        bev_shape (Sequence[int]): ``(H, W)``, rows (LiDAR y) by columns (LiDAR x).
        index (int, optional): element of a tuple/list output to adapt.
    """

    def __init__(self, bev_shape: Sequence[int], index: Optional[int] = None) -> None:
        super().__init__(index)
        if len(bev_shape) != 2 or min(bev_shape) < 1:
            raise ValueError(f'bev_shape must be (H, W) with positive sizes, got {bev_shape}')
        self.bev_shape = (int(bev_shape[0]), int(bev_shape[1]))

    def adapt(self, raw: Any) -> TapOutput:
        """``[B, H*W, C]`` -> dense :class:`TapOutput` with ``spatial_shape=(H, W)``."""
        bev = check_tensor(raw, 3, '[B, H*W, C]', type(self).__name__)
        height, width = self.bev_shape
        if bev.shape[1] != height * width:
            raise ValueError(f'{type(self).__name__} expects {height}*{width}={height * width} BEV cells '
                             f'(bev_shape={self.bev_shape}), got shape {tuple(bev.shape)}; fix bev_shape')
        return TapOutput(bev, grid_positions(height, width, bev.shape[0], bev), None, self.bev_shape)


@TASK_UTILS.register_module('NexusFlowFeatureMapTapAdapter')
class FeatureMapTapAdapter(BaseTapAdapter):
    """``'feature_map'`` kind: ``[B, C, H, W]`` feature maps, flattened row-major to ``[B, H*W, C]``."""

    def adapt(self, raw: Any) -> TapOutput:
        """``[B, C, H, W]`` -> dense :class:`TapOutput` with ``spatial_shape=(H, W)``."""
        fmap = check_tensor(raw, 4, '[B, C, H, W]', type(self).__name__)
        batch_size, _, height, width = fmap.shape
        features = fmap.flatten(2).transpose(1, 2)
        return TapOutput(features, grid_positions(height, width, batch_size, fmap), None, (height, width))


@TASK_UTILS.register_module('NexusFlowQueryTapAdapter')
class QueryTapAdapter(BaseTapAdapter):
    """``'queries'`` kind: a decoder's ``(states [L, B, Nq, C], references [L, B, Nq, R])`` pair, ``R >= 2``.

    Args:
        layer (int): decoder layer to read (Python indexing, default the last).
        index (int, optional): element of a tuple/list output that holds the pair.
    """

    def __init__(self, layer: int = -1, index: Optional[int] = None) -> None:
        super().__init__(index)
        self.layer = layer

    def adapt(self, raw: Any) -> TapOutput:
        """Pick ``layer``: features ``states[layer]`` ``[B, Nq, C]``, positions ``references[layer][..., :2]``."""
        name = type(self).__name__
        if not isinstance(raw, (tuple, list)) or len(raw) != 2:
            raise TypeError(f'{name} expects a (states, references) pair, got {type(raw).__name__}'
                            + (f' of length {len(raw)}' if isinstance(raw, (tuple, list)) else ''))
        states = check_tensor(raw[0], 4, 'states [L, B, Nq, C]', name)
        refs = check_tensor(raw[1], 4, 'references [L, B, Nq, R]', name)
        if refs.shape[:3] != states.shape[:3] or refs.shape[3] < 2:
            raise ValueError(f'{name}: references {tuple(refs.shape)} must be [L, B, Nq, >=2] matching states '
                             f'{tuple(states.shape)}')
        if not -states.shape[0] <= self.layer < states.shape[0]:
            raise ValueError(f'{name}: layer {self.layer} out of range for {states.shape[0]} decoder layers')
        return TapOutput(states[self.layer], refs[self.layer][..., :2], None, None)


def build_tap_adapter(spec: dict) -> Tuple[str, BaseTapAdapter]:
    """Split a tap spec ``dict(module=..., kind=..., **kwargs)`` into the module path and its adapter.

    Returns:
        tuple[str, callable]: the dotted module path and the adapter ``raw -> TapOutput``.
    """
    if not isinstance(spec, dict) or 'module' not in spec or 'kind' not in spec:
        raise ValueError(f"a tap spec must be dict(module='dotted.path', kind=...), got {spec!r}")
    kwargs = dict(spec)
    path, kind = kwargs.pop('module'), kwargs.pop('kind')
    type_name = BUILTIN_KINDS.get(kind, kind)
    if TASK_UTILS.get(type_name) is None:
        raise KeyError(f'unknown tap kind {kind!r}: use one of {sorted(BUILTIN_KINDS)} or the name of an adapter '
                       'registered in mmdet3d TASK_UTILS')
    return path, TASK_UTILS.build(dict(type=type_name, **kwargs))
