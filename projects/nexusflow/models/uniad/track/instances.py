"""``TrackInstances``: the query set of one sample, every field of the same length.

Plays the role of UniAD's ``Instances`` (``track_head_plugin/track_instance.py``, from detectron2). It is mmengine's
``InstanceData`` (length-checked fields, indexing every field at once by a bool mask, an index tensor, a slice or an
int, ``cat``, ``to``) with what the track head needs beyond it: fields are tensors with an instance dimension (a list
or a scalar is refused with the field's name, where ``InstanceData`` accepts any sized value and asserts), ``cat``
refuses sets whose field names differ with a ``KeyError`` naming both, and ``pad_stack`` / ``padding_mask`` /
``unpad`` batch the per-sample sets for the decoder (``B >= 1`` with different numbers of tracks per sample).

Fields used by the track head (``N`` queries, ``C`` embedding dims, ``K`` classes, ``L`` memory slots):

==================== =============== ==========================================================================
field                shape / dtype   meaning
==================== =============== ==========================================================================
``query``            ``[N, 2C]`` f   ``cat(query_pos, query_feat)``
``ref_pts``          ``[N, 3]`` f    reference ``(x, y, z)`` in inverse-sigmoid space of the point cloud range
``obj_ids``          ``[N]`` long    track id ``>= 0``; ``FREE_ID`` (-1) tracks nothing; ``EGO_ID`` (-2) ego query
``iou``              ``[N]`` f       BEV IoU of the last matched prediction with its GT (training), else 0
``scores``           ``[N]`` f       max class probability of the last decoder layer, ``[0, 1]`` (no grad)
``disappear``        ``[N]`` long    consecutive frames below the tracker's filter threshold (inference)
``pred_logits``      ``[N, K]`` f    last-layer class logits
``pred_codes``       ``[N, 10]`` f   last-layer box code in metres (see ``box_coder.py``)
``output_embedding`` ``[N, C]`` f    last-layer decoder state (after the memory bank once it ran)
``mem_bank``         ``[N, L, C]`` f past embeddings, oldest first
``mem_padding_mask`` ``[N, L]`` bool ``True`` where a memory slot is empty
``save_period``      ``[N]`` long    frames until the memory bank saves this query again (inference)
==================== =============== ==========================================================================
"""
from typing import List, Sequence, Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor

FREE_ID = -1
EGO_ID = -2


class TrackInstances(InstanceData):
    """A set of ``N`` queries whose fields are tensors of first dimension ``N`` (an mmengine ``InstanceData``).

    Example:
        >>> tracks = TrackInstances(obj_ids=torch.tensor([3, -1, 5]), scores=torch.tensor([.9, .1, .6]))
        >>> live = tracks[tracks.obj_ids >= 0]          # every field indexed at once
        >>> len(live), live.obj_ids.tolist()
        (2, [3, 5])
    """

    def __repr__(self) -> str:
        shapes = ', '.join(f'{k}={tuple(v.shape)}' for k, v in self.items())
        return f'TrackInstances(num={len(self)}, {shapes})'

    @property
    def fields(self) -> Tuple[str, ...]:
        """Names of the fields (in no particular order: ``InstanceData`` keeps them in a set)."""
        return tuple(self.keys())

    def has(self, name: str) -> bool:
        """Whether the field ``name`` exists."""
        return name in self

    def set(self, name: str, value: Tensor) -> None:
        """Set field ``name``; ``value`` must be a tensor whose first dimension equals ``len(self)``."""
        setattr(self, name, value)

    def __setattr__(self, name: str, value) -> None:
        if name in ('_metainfo_fields', '_data_fields'):
            return super().__setattr__(name, value)
        if not isinstance(value, Tensor):
            raise TypeError(f'TrackInstances field {name!r} must be a Tensor, got {type(value).__name__}')
        if value.dim() == 0:
            raise ValueError(f'TrackInstances field {name!r} must have a first (instance) dimension, got a scalar')
        others = [v.shape[0] for k, v in self.items() if k != name]
        if others and value.shape[0] != others[0]:
            raise ValueError(f'TrackInstances field {name!r} has {value.shape[0]} rows, expected {others[0]} '
                             f'(the length of the other fields)')
        super().__setattr__(name, value)

    @staticmethod
    def cat(instances: Sequence['TrackInstances']) -> 'TrackInstances':
        """Concatenate sets with the same field names along the instance dimension."""
        if not instances:
            raise ValueError('TrackInstances.cat needs at least one set')
        names = instances[0].fields
        for other in instances[1:]:
            if set(other.fields) != set(names):
                raise KeyError(f'TrackInstances.cat: field names differ: {sorted(names)} vs {sorted(other.fields)}')
        return TrackInstances(**{k: torch.cat([inst.get(k) for inst in instances]) for k in names})


def pad_stack(instances: Sequence[TrackInstances], name: str) -> Tensor:
    """Stack field ``name`` of ``B`` sets into ``[B, N_max, ...]``, zero-padded at the end of each sample."""
    values = [getattr(inst, name) for inst in instances]
    num_max = max(v.shape[0] for v in values)
    out = values[0].new_zeros((len(values), num_max) + tuple(values[0].shape[1:]))
    for b, value in enumerate(values):
        out[b, :value.shape[0]] = value
    return out


def padding_mask(instances: Sequence[TrackInstances]) -> Tensor:
    """``[B, N_max]`` bool, ``True`` at the padded rows that ``pad_stack`` appends."""
    lengths = torch.tensor([len(inst) for inst in instances])
    num_max = int(lengths.max())
    device = next(iter(instances[0].values())).device
    return (torch.arange(num_max)[None] >= lengths[:, None]).to(device)


def unpad(batched: Tensor, lengths: List[int]) -> List[Tensor]:
    """Split a padded ``[B, N_max, ...]`` tensor into ``B`` tensors ``[N_b, ...]`` of their real lengths."""
    return [batched[b, :n] for b, n in enumerate(lengths)]
