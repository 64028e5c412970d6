"""Write the key -> shape manifests of the three official checkpoints the converters read.

    python tests/data/official_checkpoints/make_manifests.py      # rewrites the three JSON files next to it

The real files (``bevformer_r101_dcn_24ep.pth``, ``uniad_base_track_map.pth``, ``r101_dcn_fcos3d_pretrain.pth``) are
hundreds of MB and were never downloaded here, so their layout is derived from the public code that wrote them:

- image backbone and neck: built here with mmdet 3.x ``ResNet`` / ``FPN`` and the official configs' arguments
  (ResNet-101, caffe, DCNv2 in stages 3-4; FPN of BEVFormer / UniAD: C3-C5 -> 4 outputs; FPN of FCOS3D: C2-C5 from
  ``start_level=1`` -> 5 outputs). Their parameter and buffer names are those of mmdet 2.x / mmcv 1.x (``layerN.M.
  conv2.conv_offset``, ``bnK.num_batches_tracked``, ``lateral_convs.i.conv``), which these files were saved with.
- everything else: written out below from the module definitions of fundamentalvision/BEVFormer
  (``bevformer_head.py``, ``modules/transformer.py``, ``temporal_self_attention.py``, ``spatial_cross_attention.py``,
  ``decoder.py``, config ``bevformer_base.py``), OpenDriveLab/UniAD (``uniad_track.py``, ``track_head.py``,
  ``track_head_plugin/modules.py``, ``losses/track_loss.py``, ``panseg_head.py``, ``seg_head_plugin/*``, config
  ``stage1_track_map/base_track_map.py``) and mmdet3d's ``FCOSMono3DHead`` (built here with mmdet3d's
  ``fcos3d.py`` model config; the head's parameter names are unchanged since mmdet3d 0.13).
  mmcv 1.x bricks: ``MultiheadAttention`` keeps ``nn.MultiheadAttention`` as ``attn``; ``FFN`` is
  ``layers = Sequential(Sequential(Linear, act, Dropout), Linear, Dropout)``.
"""
import copy
import json
from pathlib import Path
from typing import Dict, List

import torch

HERE = Path(__file__).resolve().parent
Shapes = Dict[str, List[int]]
D, FFN_DIMS, HEADS, BEV = 256, 512, 8, 200


def _built(cfg: dict, prefix: str) -> Shapes:
    from mmdet3d.registry import MODELS
    import mmdet3d.models  # noqa: F401
    with torch.device('meta'):
        module = MODELS.build(copy.deepcopy(cfg))
    return {f'{prefix}.{key}': list(value.shape) for key, value in module.state_dict().items()}


RESNET101_DCN = dict(type='mmdet.ResNet', depth=101, num_stages=4, out_indices=(0, 1, 2, 3), style='caffe',
                     norm_cfg=dict(type='BN2d', requires_grad=False),
                     dcn=dict(type='DCNv2', deform_groups=1, fallback_on_stride=False),
                     stage_with_dcn=(False, False, True, True))


def linear(prefix: str, out_dims: int, in_dims: int) -> Shapes:
    return {f'{prefix}.weight': [out_dims, in_dims], f'{prefix}.bias': [out_dims]}


def norm(prefix: str, dims: int = D) -> Shapes:
    return {f'{prefix}.weight': [dims], f'{prefix}.bias': [dims]}


def torch_mha(prefix: str, dims: int = D) -> Shapes:
    return {f'{prefix}.in_proj_weight': [3 * dims, dims], f'{prefix}.in_proj_bias': [3 * dims],
            **linear(f'{prefix}.out_proj', dims, dims)}


def mmcv_ffn(prefix: str, ffn_dims: int = FFN_DIMS) -> Shapes:
    return {**linear(f'{prefix}.layers.0.0', ffn_dims, D), **linear(f'{prefix}.layers.1', D, ffn_dims)}


def deform_attn(prefix: str, levels: int, points: int, queues: int = 1, output_proj: bool = True) -> Shapes:
    """TSA (``queues=2``), MSDeformableAttention3D (no ``output_proj``), Custom/mmcv MSDA."""
    shapes = {**linear(f'{prefix}.sampling_offsets', queues * HEADS * levels * points * 2, queues * D),
              **linear(f'{prefix}.attention_weights', queues * HEADS * levels * points, queues * D),
              **linear(f'{prefix}.value_proj', D, D)}
    if output_proj:
        shapes.update(linear(f'{prefix}.output_proj', D, D))
    return shapes


def detr_branches(prefix: str, num: int, out_dims: int, with_norm: bool) -> Shapes:
    """``num`` clones of [Linear, (LayerNorm,) ReLU] x 2 + Linear(out_dims) (cls: with LayerNorm; reg: without)."""
    shapes: Shapes = {}
    for i in range(num):
        hidden, norms, last = ((0, 3), (1, 4), 6) if with_norm else ((0, 2), (), 4)
        for j in hidden:
            shapes.update(linear(f'{prefix}.{i}.{j}', D, D))
        for j in norms:
            shapes.update(norm(f'{prefix}.{i}.{j}'))
        shapes.update(linear(f'{prefix}.{i}.{last}', out_dims, D))
    return shapes


def bev_encoder(head: str) -> Shapes:
    """``pts_bbox_head`` BEV parts of BEVFormer-base / UniAD: queries, positions, PerceptionTransformer encoder."""
    t = f'{head}.transformer'
    shapes = {f'{head}.bev_embedding.weight': [BEV * BEV, D],
              f'{head}.positional_encoding.row_embed.weight': [BEV, D // 2],
              f'{head}.positional_encoding.col_embed.weight': [BEV, D // 2],
              f'{t}.level_embeds': [4, D], f'{t}.cams_embeds': [6, D],
              **linear(f'{t}.can_bus_mlp.0', D // 2, 18), **linear(f'{t}.can_bus_mlp.2', D, D // 2),
              **norm(f'{t}.can_bus_mlp.norm')}
    for i in range(6):
        layer = f'{t}.encoder.layers.{i}'
        shapes.update(deform_attn(f'{layer}.attentions.0', levels=1, points=4, queues=2))
        shapes.update(deform_attn(f'{layer}.attentions.1.deformable_attention', levels=4, points=8,
                                  output_proj=False))
        shapes.update(linear(f'{layer}.attentions.1.output_proj', D, D))
        shapes.update(mmcv_ffn(f'{layer}.ffns.0'))
        for k in range(3):
            shapes.update(norm(f'{layer}.norms.{k}'))
    return shapes


def track_decoder(head: str) -> Shapes:
    """DetectionTransformerDecoder (6 x [MHA, CustomMSDeformableAttention(1 level)]), box-refine branches."""
    shapes = {f'{head}.code_weights': [10]}
    for i in range(6):
        layer = f'{head}.transformer.decoder.layers.{i}'
        shapes.update(torch_mha(f'{layer}.attentions.0.attn'))
        shapes.update(deform_attn(f'{layer}.attentions.1', levels=1, points=4))
        shapes.update(mmcv_ffn(f'{layer}.ffns.0'))
        for k in range(3):
            shapes.update(norm(f'{layer}.norms.{k}'))
    shapes.update(detr_branches(f'{head}.cls_branches', 6, 10, with_norm=True))
    shapes.update(detr_branches(f'{head}.reg_branches', 6, 10, with_norm=False))
    return shapes


def image_parts(neck_in: List[int], start_level: int, num_outs: int, backbone: str, neck: str) -> Shapes:
    fpn = dict(type='mmdet.FPN', in_channels=neck_in, out_channels=D, start_level=start_level,
               add_extra_convs='on_output', num_outs=num_outs, relu_before_extra_convs=True)
    return {**_built(RESNET101_DCN, backbone), **_built(fpn, neck)}


def bevformer() -> Shapes:
    head = 'pts_bbox_head'
    return {**image_parts([512, 1024, 2048], 0, 4, 'img_backbone', 'img_neck'), **bev_encoder(head),
            **track_decoder(head), f'{head}.query_embedding.weight': [900, 2 * D],
            **linear(f'{head}.transformer.reference_points', 3, D)}


def seg_mask_head(prefix: str, num_layers: int, self_attn: bool) -> Shapes:
    """SegMaskHead: blocks of [SelfAttention(qkv, proj), norm3,] Attention(q, k, v, proj, linear_l1.0, linear.0),
    head_norm1, Mlp(fc1 4C, fc2), head_norm2; tail ``attnen`` = AttentionTail(q, k, linear_l1.0, linear.0)."""
    shapes: Shapes = {}
    for i in range(num_layers):
        block = f'{prefix}.blocks.{i}'
        for name in ('q', 'k', 'v', 'proj'):
            shapes.update(linear(f'{block}.attn.{name}', D, D))
        shapes.update({**linear(f'{block}.attn.linear_l1.0', HEADS, HEADS), **linear(f'{block}.attn.linear.0', 1, HEADS),
                       **norm(f'{block}.head_norm1'), **norm(f'{block}.head_norm2'),
                       **linear(f'{block}.mlp.fc1', 4 * D, D), **linear(f'{block}.mlp.fc2', D, 4 * D)})
        if self_attn:
            shapes.update({**linear(f'{block}.self_attention.qkv', 3 * D, D),
                           **linear(f'{block}.self_attention.proj', D, D), **norm(f'{block}.norm3')})
    for name in ('q', 'k'):
        shapes.update(linear(f'{prefix}.attnen.{name}', D, D))
    shapes.update({**linear(f'{prefix}.attnen.linear_l1.0', HEADS, HEADS), **linear(f'{prefix}.attnen.linear.0', 1, HEADS)})
    return shapes


def uniad_stage1() -> Shapes:
    head = 'pts_bbox_head'
    shapes = {**image_parts([512, 1024, 2048], 0, 4, 'img_backbone', 'img_neck'), **bev_encoder(head),
              **track_decoder(head), 'query_embedding.weight': [901, 2 * D], **linear('reference_points', 3, D),
              'criterion.code_weights': [10]}
    for i in range(6):
        shapes.update({**linear(f'{head}.past_traj_reg_branches.{i}.0', D, D),
                       **linear(f'{head}.past_traj_reg_branches.{i}.2', D, D),
                       **linear(f'{head}.past_traj_reg_branches.{i}.4', (4 + 4) * 2, D)})
    shapes.update({**linear('memory_bank.save_proj', D, D), **torch_mha('memory_bank.temporal_attn'),
                   **linear('memory_bank.temporal_fc1', D, D), **linear('memory_bank.temporal_fc2', D, D),
                   **norm('memory_bank.temporal_norm1'), **norm('memory_bank.temporal_norm2')})
    shapes.update(torch_mha('query_interact.self_attn'))
    for name in ('linear1', 'linear2', 'linear_pos1', 'linear_pos2', 'linear_feat1', 'linear_feat2'):
        shapes.update(linear(f'query_interact.{name}', D, D))
    for name in ('norm1', 'norm2', 'norm_pos', 'norm_feat'):
        shapes.update(norm(f'query_interact.{name}'))
    seg = 'seg_head'
    shapes.update({f'{seg}.bev_embedding.weight': [BEV * BEV, D], f'{seg}.query_embedding.weight': [300, 2 * D],
                   f'{seg}.stuff_query.weight': [1, 2 * D], f'{seg}.transformer.level_embeds': [4, D],
                   **linear(f'{seg}.transformer.reference_points', 2, D)})
    for i in range(6):
        enc, dec = f'{seg}.transformer.encoder.layers.{i}', f'{seg}.transformer.decoder.layers.{i}'
        shapes.update({**deform_attn(f'{enc}.attentions.0', levels=4, points=4), **mmcv_ffn(f'{enc}.ffns.0'),
                       **norm(f'{enc}.norms.0'), **norm(f'{enc}.norms.1')})
        shapes.update({**torch_mha(f'{dec}.attentions.0.attn'), **deform_attn(f'{dec}.attentions.1', levels=4, points=4),
                       **mmcv_ffn(f'{dec}.ffns.0'), **norm(f'{dec}.norms.0'), **norm(f'{dec}.norms.1'),
                       **norm(f'{dec}.norms.2')})
        shapes.update({**linear(f'{seg}.cls_branches.{i}', 3, D), **linear(f'{seg}.reg_branches.{i}.0', D, D),
                       **linear(f'{seg}.reg_branches.{i}.2', D, D), **linear(f'{seg}.reg_branches.{i}.4', 4, D),
                       **linear(f'{seg}.cls_stuff_branches.{i}', 1, D)})
    for i in range(4):
        shapes.update({**linear(f'{seg}.cls_thing_branches.{i}', 3, D), **linear(f'{seg}.reg_branches2.{i}.0', D, D),
                       **linear(f'{seg}.reg_branches2.{i}.2', D, D), **linear(f'{seg}.reg_branches2.{i}.4', 4, D)})
    shapes.update(seg_mask_head(f'{seg}.things_mask_head', 4, self_attn=False))
    shapes.update(seg_mask_head(f'{seg}.stuff_mask_head', 6, self_attn=True))
    return shapes


def fcos3d() -> Shapes:
    from mmengine.config import Config
    from mmdet3d.utils import register_all_modules
    import mmdet3d
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(str(Path(mmdet3d.__file__).parent / '.mim/configs/_base_/models/fcos3d.py')).model
    head = dict(cfg.bbox_head, norm_cfg=dict(type='GN', num_groups=32, requires_grad=True))
    head.pop('train_cfg', None)
    head.pop('test_cfg', None)
    head = dict((k, v) for k, v in head.items() if not k.startswith('loss_'))
    return {**image_parts([256, 512, 1024, 2048], 1, 5, 'backbone', 'neck'),
            **_built(dict(head, type='mmdet3d.FCOSMono3DHead'), 'bbox_head')}


MANIFESTS = dict(bevformer_r101_dcn_24ep=bevformer, uniad_base_track_map=uniad_stage1,
                 r101_dcn_fcos3d_pretrain=fcos3d)


def main() -> None:
    for name, build in MANIFESTS.items():
        shapes = build()
        path = HERE / f'{name}.json'
        body = ',\n'.join(f'  {json.dumps(key)}: {json.dumps(shape)}' for key, shape in shapes.items())
        path.write_text('{\n' + body + '\n}\n')
        print(f'{path}: {len(shapes)} tensors')


if __name__ == '__main__':
    main()
