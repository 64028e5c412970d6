"""Key rules for the official checkpoints: BEVFormer-base, UniAD stage 1 and the FCOS3D backbone.

Source layouts (read from the public code; the manifests in ``tests/data/official_checkpoints/`` list every key):

- ``bevformer``: ``bevformer_r101_dcn_24ep.pth`` (fundamentalvision/BEVFormer, ``bevformer_base.py``):
  ``img_backbone`` (ResNet-101-DCN, caffe), ``img_neck`` (FPN, 4 levels), ``pts_bbox_head`` = ``BEVFormerHead``
  (``bev_embedding``, ``positional_encoding``, ``query_embedding`` [900, 512], 6 ``cls_branches`` / ``reg_branches``,
  ``code_weights``) with ``transformer`` = ``PerceptionTransformer`` (``level_embeds``, ``cams_embeds``,
  ``reference_points``, ``can_bus_mlp`` incl. ``norm``, ``encoder.layers.N`` = [TSA, SCA, FFN, 3 norms] and
  ``decoder.layers.N`` = [mmcv MHA, ``CustomMSDeformableAttention``, FFN, 3 norms]).
- ``uniad``: ``uniad_base_track_map.pth`` (OpenDriveLab/UniAD, ``base_track_map.py``): the same backbone, neck and
  ``pts_bbox_head`` minus ``query_embedding`` / ``transformer.reference_points`` (they live on the detector:
  ``query_embedding`` [901, 512], ``reference_points``) plus ``past_traj_reg_branches``; ``query_interact`` (QIM),
  ``memory_bank``, ``criterion.code_weights``; ``seg_head`` = ``PansegformerHead`` (``SegDeformableTransformer`` with
  MSDA of 4 levels, ``things_mask_head`` / ``stuff_mask_head`` = ``SegMaskHead``, ``reg_branches2``,
  ``cls_thing_branches``, ``cls_stuff_branches``, ``bev_embedding``).
- ``fcos3d``: ``r101_dcn_fcos3d_pretrain.pth`` (mmdet3d 0.17 ``FCOSMono3D``): ``backbone``, ``neck`` (FPN from C3 with
  5 outputs), ``bbox_head``. Files already renamed to ``img_backbone`` / ``img_neck`` (as redistributed with DETR3D
  and BEVFormer) are accepted too.

Value changes:

- track head regression output rows: the 0.17 -> 1.x box code (``box_code.py``);
- map head deformable attention of 4 levels (UniAD issue #108: the BEV is one level; the CUDA kernel then reads a
  mis-strided subset of the 4-level projections, offsets of neighbouring queries included, which no per-query weight
  layout reproduces): a target model with ``compat='uniad'`` (``map/uniad_compat.py`` reproduces that read) takes
  the 4 levels as they are; a one-level target keeps level 0, the level the BEV is passed as. Checkpoints already
  trained with ``num_levels=1`` (UniAD's ``seg_numlevel_1`` release) are copied unchanged into a one-level target;
- map encoder: UniAD adds ``level_embeds[0]`` to the sine positional encoding of the (only) level; this project's
  map transformer has no level embedding, so ``level_embeds[0]`` is folded into the biases of the encoder's
  offset and weight projections (which read ``query + pos``): exact.

Behavioural differences that weights cannot fix (the BEV alignment of TSA, the map attention's levels, the
mask-decoder ReLU and positional embedding) are described in the module docstrings of ``models/uniad``; the model's
``compat='uniad'`` switches to UniAD's behaviour for them (README table "Evaluating an official UniAD stage-1
checkpoint"). Without it, converted weights are a starting point for training, not a copy of UniAD's outputs.
"""
from functools import partial
from typing import Callable, Dict, List, Mapping, Tuple

from torch import Tensor

from .box_code import track_reg_rows_017_to_1x
from .deform_attn import fold_into_bias, keep_level
from .state_dict import ConversionReport, Rule, apply_rules

__all__ = ['SOURCES', 'convert_official']

#: heads and points of the map head's MultiScaleDeformableAttention (mmcv defaults, not set in base_track_map.py)
MAP_HEADS, MAP_POINTS = 8, 4
_ATTN = r'(sampling_offsets|attention_weights|value_proj|output_proj)\.(weight|bias)'
_MHA = r'(in_proj_weight|in_proj_bias|out_proj\.weight|out_proj\.bias)'
_WB = r'(weight|bias)'

BACKBONE_RULES = [
    Rule(r'img_backbone\.(.+)', r'img_backbone.\1'),
    Rule(r'img_neck\.(.+)', r'img_neck.\1'),
]

ENCODER_RULES = [
    Rule(r'pts_bbox_head\.bev_embedding\.weight', 'bev_encoder.bev_queries.weight'),
    Rule(r'pts_bbox_head\.positional_encoding\.(row|col)_embed\.weight',
         r'bev_encoder.positional_encoding.\1_embed.weight'),
    Rule(r'pts_bbox_head\.transformer\.(level_embeds|cams_embeds)', r'bev_encoder.\1'),
    Rule(r'pts_bbox_head\.transformer\.can_bus_mlp\.([02])\.' + _WB, r'bev_encoder.can_bus_mlp.\1.\2'),
    Rule(r'pts_bbox_head\.transformer\.can_bus_mlp\.norm\.' + _WB, r'bev_encoder.can_bus_mlp.4.\1'),
    Rule(r'pts_bbox_head\.transformer\.encoder\.layers\.(\d+)\.attentions\.0\.' + _ATTN,
         r'bev_encoder.layers.\1.temporal_attn.\2.\3'),
    Rule(r'pts_bbox_head\.transformer\.encoder\.layers\.(\d+)\.attentions\.1\.deformable_attention\.' + _ATTN,
         r'bev_encoder.layers.\1.spatial_attn.deformable_attention.\2.\3'),
    Rule(r'pts_bbox_head\.transformer\.encoder\.layers\.(\d+)\.attentions\.1\.output_proj\.' + _WB,
         r'bev_encoder.layers.\1.spatial_attn.output_proj.\2'),
    Rule(r'pts_bbox_head\.transformer\.encoder\.layers\.(\d+)\.ffns\.0\.layers\.(0\.0|1)\.' + _WB,
         r'bev_encoder.layers.\1.ffn.layers.\2.\3'),
    Rule(r'pts_bbox_head\.transformer\.encoder\.layers\.(\d+)\.norms\.(\d)\.' + _WB,
         r'bev_encoder.layers.\1.norms.\2.\3'),
]

TRACK_DECODER_RULES = [
    Rule(r'pts_bbox_head\.transformer\.decoder\.layers\.(\d+)\.attentions\.0\.attn\.' + _MHA,
         r'track_head.decoder.layers.\1.self_attn.\2'),
    Rule(r'pts_bbox_head\.transformer\.decoder\.layers\.(\d+)\.attentions\.1\.' + _ATTN,
         r'track_head.decoder.layers.\1.cross_attn.\2.\3'),
    Rule(r'pts_bbox_head\.transformer\.decoder\.layers\.(\d+)\.ffns\.0\.layers\.0\.0\.' + _WB,
         r'track_head.decoder.layers.\1.ffn.0.\2'),
    Rule(r'pts_bbox_head\.transformer\.decoder\.layers\.(\d+)\.ffns\.0\.layers\.1\.' + _WB,
         r'track_head.decoder.layers.\1.ffn.3.\2'),
    Rule(r'pts_bbox_head\.transformer\.decoder\.layers\.(\d+)\.norms\.(\d)\.' + _WB,
         r'track_head.decoder.layers.\1.norms.\2.\3'),
    Rule(r'pts_bbox_head\.cls_branches\.(\d+)\.(\d)\.' + _WB, r'track_head.cls_branches.\1.\2.\3'),
    Rule(r'pts_bbox_head\.reg_branches\.(\d+)\.4\.' + _WB, r'track_head.reg_branches.\1.4.\2',
         'box-code rows 0.17 -> 1.x: (w, l) swapped, (sin, cos) -> -(cos, sin)', 'track_reg'),
    Rule(r'pts_bbox_head\.reg_branches\.(\d+)\.([02])\.' + _WB, r'track_head.reg_branches.\1.\2.\3'),
    Rule(r'pts_bbox_head\.code_weights', None, 'loss constant; the box-loss weights are in the track head config'),
]

BEVFORMER_ONLY_RULES = [
    Rule(r'pts_bbox_head\.query_embedding\.weight', None,
         "BEVFormer's 900 detection queries; UniAD keeps its 901 track queries on the detector, so its load_from "
         'of this file skips them too (track_head.query_embedding stays at init)'),
    Rule(r'pts_bbox_head\.transformer\.reference_points\.' + _WB, None,
         "pairs with BEVFormer's detection queries; UniAD's load_from skips it too"),
]

UNIAD_TRACK_RULES = [
    Rule(r'query_embedding\.weight', 'track_head.query_embedding.weight'),
    Rule(r'reference_points\.' + _WB, r'track_head.reference_points.\1'),
    Rule(r'pts_bbox_head\.past_traj_reg_branches\..+', None,
         'past/future trajectory branch (loss weight 0 in stage 1); no counterpart'),
    Rule(r'criterion\.code_weights', None, 'loss constant; the box-loss weights are in the track head config'),
    Rule(r'memory_bank\.(save_proj\.' + _WB + r'|temporal_attn\.' + _MHA + ')', r'track_head.memory_bank.\1'),
    Rule(r'memory_bank\.temporal_fc1\.' + _WB, r'track_head.memory_bank.ffn.0.\1'),
    Rule(r'memory_bank\.temporal_fc2\.' + _WB, r'track_head.memory_bank.ffn.2.\1'),
    Rule(r'memory_bank\.temporal_norm1\.' + _WB, r'track_head.memory_bank.norms.0.\1'),
    Rule(r'memory_bank\.temporal_norm2\.' + _WB, r'track_head.memory_bank.norms.1.\1'),
    Rule(r'query_interact\.self_attn\.' + _MHA, r'track_head.qim.self_attn.\1'),
] + [Rule(rf'query_interact\.{src}\.' + _WB, rf'track_head.qim.{dst}.\1') for src, dst in (
    ('linear1', 'ffn.0'), ('linear2', 'ffn.3'), ('norm1', 'attn_norm'), ('norm2', 'ffn_norm'),
    ('linear_pos1', 'pos_ffn.0'), ('linear_pos2', 'pos_ffn.3'), ('norm_pos', 'pos_norm'),
    ('linear_feat1', 'feat_ffn.0'), ('linear_feat2', 'feat_ffn.3'), ('norm_feat', 'feat_norm'))]


def _mask_head_rules(src: str, dst: str, self_attn: bool) -> List[Rule]:
    """``SegMaskHead`` -> ``MapMaskDecoder``; norms in order of use ([norm3,] head_norm1, head_norm2)."""
    blocks = rf'seg_head\.{src}\.blocks\.(\d+)\.'
    norms = (['norm3'] if self_attn else []) + ['head_norm1', 'head_norm2']
    rules = [Rule(blocks + rf'attn\.{a}\.' + _WB, rf'map_head.{dst}.blocks.\1.cross_attn.{b}.\2')
             for a, b in (('q', 'q_proj'), ('k', 'k_proj'), ('v', 'v_proj'), ('proj', 'out_proj'),
                          ('linear_l1\\.0', 'mask_mlp.0'), ('linear\\.0', 'mask_mlp.2'))]
    rules += [Rule(blocks + rf'{name}\.' + _WB, rf'map_head.{dst}.blocks.\1.norms.{i}.\2')
              for i, name in enumerate(norms)]
    rules += [Rule(blocks + r'mlp\.fc1\.' + _WB, rf'map_head.{dst}.blocks.\1.mlp.0.\2'),
              Rule(blocks + r'mlp\.fc2\.' + _WB, rf'map_head.{dst}.blocks.\1.mlp.3.\2')]
    if self_attn:
        rules += [Rule(blocks + r'self_attention\.qkv\.(weight|bias)', rf'map_head.{dst}.blocks.\1.self_attn.in_proj_\2'),
                  Rule(blocks + r'self_attention\.proj\.' + _WB, rf'map_head.{dst}.blocks.\1.self_attn.out_proj.\2')]
    rules += [Rule(rf'seg_head\.{src}\.attnen\.{a}\.' + _WB, rf'map_head.{dst}.tail.{b}.\1')
              for a, b in (('q', 'q_proj'), ('k', 'k_proj'), ('linear_l1\\.0', 'mask_mlp.0'),
                           ('linear\\.0', 'mask_mlp.2'))]
    return rules


_SEG_ENC = r'seg_head\.transformer\.encoder\.layers\.(\d+)\.'
_SEG_DEC = r'seg_head\.transformer\.decoder\.layers\.(\d+)\.'
MAP_RULES = [
    Rule(r'seg_head\.bev_embedding\.weight', None, "unused by UniAD's map head (it reads the track head's BEV)"),
    Rule(r'seg_head\.transformer\.level_embeds', None,
         'level 0 folded into the map encoder offset/weight biases (this map transformer has no level embedding)'),
    Rule(r'seg_head\.transformer\.reference_points\.' + _WB, r'map_head.transformer.reference_points.\1'),
    Rule(_SEG_ENC + r'attentions\.0\.(sampling_offsets|attention_weights)\.' + _WB,
         r'map_head.transformer.encoder.layers.\1.self_attn.\2.\3',
         'deformable attention: levels as the target (all 4, or level 0: UniAD issue #108), level_embeds[0] folded '
         'into the bias', 'map_encoder_levels'),
    Rule(_SEG_ENC + r'attentions\.0\.(value_proj|output_proj)\.' + _WB,
         r'map_head.transformer.encoder.layers.\1.self_attn.\2.\3'),
    Rule(_SEG_ENC + r'norms\.0\.' + _WB, r'map_head.transformer.encoder.layers.\1.norm1.\2'),
    Rule(_SEG_ENC + r'norms\.1\.' + _WB, r'map_head.transformer.encoder.layers.\1.norm2.\2'),
    Rule(_SEG_ENC + r'ffns\.0\.layers\.(0\.0|1)\.' + _WB, r'map_head.transformer.encoder.layers.\1.ffn.layers.\2.\3'),
    Rule(_SEG_DEC + r'attentions\.0\.attn\.' + _MHA, r'map_head.transformer.decoder.layers.\1.self_attn.\2'),
    Rule(_SEG_DEC + r'attentions\.1\.(sampling_offsets|attention_weights)\.' + _WB,
         r'map_head.transformer.decoder.layers.\1.cross_attn.\2.\3',
         'deformable attention: levels as the target (all 4, or level 0: UniAD issue #108)', 'map_levels'),
    Rule(_SEG_DEC + r'attentions\.1\.(value_proj|output_proj)\.' + _WB,
         r'map_head.transformer.decoder.layers.\1.cross_attn.\2.\3'),
    Rule(_SEG_DEC + r'ffns\.0\.layers\.(0\.0|1)\.' + _WB, r'map_head.transformer.decoder.layers.\1.ffn.layers.\2.\3'),
    Rule(_SEG_DEC + r'norms\.(\d)\.' + _WB, r'map_head.transformer.decoder.layers.\1.norms.\2.\3'),
    Rule(r'seg_head\.reg_branches\.(\d+)\.([024])\.' + _WB, r'map_head.transformer.decoder.reg_branches.\1.\2.\3'),
    Rule(r'seg_head\.cls_branches\.(\d+)\.' + _WB, r'map_head.cls_branches.\1.\2'),
    Rule(r'seg_head\.cls_stuff_branches\.(\d+)\.' + _WB, r'map_head.cls_stuff_branches.\1.\2'),
    Rule(r'seg_head\.(reg_branches2|cls_thing_branches)\..+', None,
         "per-block thing class / box branches of UniAD's mask decoder (auxiliary losses); this map head has none"),
    Rule(r'seg_head\.(query_embedding|stuff_query)\.weight', r'map_head.\1.weight'),
] + _mask_head_rules('things_mask_head', 'thing_mask_head', self_attn=False) \
  + _mask_head_rules('stuff_mask_head', 'stuff_mask_head', self_attn=True)

FCOS3D_RULES = [
    Rule(r'(?:img_)?backbone\.(.+)', r'img_backbone.\1'),
    Rule(r'(?:img_)?neck\.(lateral_convs\.[0-2]|fpn_convs\.[0-3])\.(.+)', r'img_neck.\1.\2'),
    Rule(r'(?:img_)?neck\.fpn_convs\.4\..+', None, "FCOS3D's fifth FPN output (stride 128); the BEV encoder uses four"),
    Rule(r'(?:pts_)?bbox_head\..+', None, 'monocular FCOS3D head; no counterpart'),
]

_HEADS_AT_INIT = [
    (r'track_head\.(query_embedding|reference_points)\.', 'track queries: UniAD initialises them randomly too'),
    (r'track_head\.(memory_bank|qim)\.', 'UniAD tracking module, not in this checkpoint'),
    (r'map_head\.', 'map head: not in this checkpoint (UniAD trains it from scratch in stage 1)'),
]
_NOT_IMAGE = [(r'(bev_encoder|track_head|map_head)\.', 'not in a backbone checkpoint')]


def _track_reg(key: str, tensor: Tensor, state: Mapping[str, Tensor]) -> Tensor:
    stem = key.rsplit('.', 1)[0]
    weight, bias = track_reg_rows_017_to_1x(state[stem + '.weight'], state[stem + '.bias'])
    return weight if key.endswith('weight') else bias


#: a map-transformer attention projection of the target model, which tells its number of levels
_MAP_PROBE = 'map_head.transformer.decoder.layers.0.cross_attn.attention_weights.bias'


def target_map_levels(target_shapes: Mapping[str, tuple]) -> int:
    """Levels of the target model's map-transformer attention projections (4 under ``compat='uniad'``, else 1;
    1 when the target has no map head)."""
    shape = target_shapes.get(_MAP_PROBE)
    return shape[0] // (MAP_HEADS * MAP_POINTS) if shape else 1


def _map_levels(key: str, tensor: Tensor, state: Mapping[str, Tensor], target_levels: int,
                fold: bool = False) -> Tensor:
    """The official projection with ``target_levels`` levels: all of them when the counts agree, else level 0;
    ``fold`` adds ``level_embeds[0]`` to the input (encoder)."""
    stem, kind = key.rsplit('.', 1)
    per_point = 2 if 'sampling_offsets' in stem else 1
    weight, bias = state[stem + '.weight'], state[stem + '.bias']
    num_levels = weight.shape[0] // (MAP_HEADS * MAP_POINTS * per_point)
    if num_levels != target_levels:
        weight, bias = keep_level(weight, bias, MAP_HEADS, num_levels, per_point)
    if kind == 'weight':
        return weight
    return fold_into_bias(weight, bias, state['seg_head.transformer.level_embeds'][0]) if fold else bias


def _transforms(target_levels: int) -> Dict[str, Callable[[str, Tensor, Mapping[str, Tensor]], Tensor]]:
    return dict(track_reg=_track_reg, map_levels=partial(_map_levels, target_levels=target_levels),
                map_encoder_levels=partial(_map_levels, target_levels=target_levels, fold=True))


#: source name -> (rules, explanations of target keys the source cannot fill)
SOURCES: Dict[str, Tuple[List[Rule], List[Tuple[str, str]]]] = dict(
    bevformer=(BACKBONE_RULES + ENCODER_RULES + TRACK_DECODER_RULES + BEVFORMER_ONLY_RULES, _HEADS_AT_INIT),
    uniad=(BACKBONE_RULES + ENCODER_RULES + TRACK_DECODER_RULES + UNIAD_TRACK_RULES + MAP_RULES, []),
    fcos3d=(FCOS3D_RULES, _NOT_IMAGE),
)


def convert_official(state: Mapping[str, Tensor], source: str, target_shapes: Mapping[str, tuple]
                     ) -> Tuple[Dict[str, Tensor], ConversionReport]:
    """Convert an official state dict to this project's keys and check it against the target model.

    Args:
        state: the official checkpoint's state dict (``module.`` prefixes already removed).
        source: ``'bevformer'``, ``'uniad'`` or ``'fcos3d'``.
        target_shapes: the target model's ``state_dict()`` key -> shape (its map attentions' level count decides
            whether the official 4-level projections are kept whole or cut to level 0).

    Returns:
        the converted state dict and the full report (``report.ok`` false on unrecognised keys, shape mismatches
        or keys the model lacks).
    """
    if source not in SOURCES:
        raise KeyError(f'unknown source {source!r}; choose one of {sorted(SOURCES)}')
    rules, init_reasons = SOURCES[source]
    converted, report = apply_rules(state, rules, source, _transforms(target_map_levels(target_shapes)))
    report.check_target(converted, target_shapes, init_reasons)
    return converted, report
