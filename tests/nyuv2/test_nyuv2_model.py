"""MTANMultiTask: shapes, MTAN's loss formulas, per-sample gating, NexusFlow attached through taps."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import BaseDataElement, PixelData

from mmdet3d.registry import MODELS
from projects.nexusflow.nyuv2.meta import TASKS

WIDTH = 1 / 16  # filters 4-8-16-32-32


def model_cfg(plugins=None):
    return dict(type='NexusFlowMTANMultiTask', backbone=dict(type='NexusFlowMTANSegNet', width=WIDTH),
                heads=dict(seg=dict(type='NexusFlowNYUv2SegHead'), depth=dict(type='NexusFlowNYUv2DepthHead'),
                           normal=dict(type='NexusFlowNYUv2NormalHead')), plugins=plugins)


def nexusflow_cfg(align_loss='center'):
    return dict(type='NexusFlow', latent_dim=8, align_loss=align_loss,
                coupling=dict(num_layers=4, hidden_dims=(8, )),
                tasks={task: dict(tap=dict(module=f'backbone.decoder_attention.{task}.4', kind='feature_map'),
                                  aggregator=dict(type='NexusFlowMLPAggregator', in_channels=4, depth=3))
                       for task in TASKS})


def build(plugins=None, seed=0):
    torch.manual_seed(seed)
    model = MODELS.build(model_cfg(plugins))
    model.init_weights()
    return model


def samples(batch_size, size=(40, 56), flags=None, seed=0):
    """Random GT with ignore pixels: labels -1 on the first row, depth 0 and normals 0 on the first column."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for b in range(batch_size):
        seg = torch.randint(0, 13, (1, ) + size, generator=gen)
        seg[:, 0] = -1
        depth = torch.rand((1, ) + size, generator=gen) * 4 + 0.5
        depth[..., 0] = 0
        normal = F.normalize(torch.randn((3, ) + size, generator=gen), dim=0)
        normal[..., 0] = 0
        meta = dict(zip(('has_seg', 'has_depth', 'has_normal'), flags[b])) if flags else {}
        sample = BaseDataElement(metainfo=meta)
        sample.gt_sem_seg, sample.gt_depth, sample.gt_normal = (PixelData(data=seg), PixelData(data=depth),
                                                                PixelData(data=normal))
        out.append(sample)
    return out


def images(batch_size, size=(40, 56), seed=1):
    return torch.rand((batch_size, 3) + size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize('batch_size,size', [(1, (64, 96)), (2, (72, 96)), (2, (40, 56))])
def test_prediction_shapes_and_ranges(batch_size, size):
    model = build().eval()
    with torch.no_grad():
        preds = model(images(batch_size, size), mode='tensor')
    assert preds['seg'].shape == (batch_size, 13) + size and preds['depth'].shape == (batch_size, 1) + size
    assert torch.allclose(preds['seg'].exp().sum(1), torch.ones(1), atol=1e-5)
    assert torch.allclose(preds['normal'].norm(dim=1), torch.ones(1), atol=1e-5)
    with torch.no_grad():
        out = model(images(batch_size, size), samples(batch_size, size), mode='predict')
    assert out[0].pred_sem_seg.data.shape == (1, ) + size and out[0].pred_sem_seg.data.dtype == torch.long
    assert out[-1].pred_normal.data.shape == (3, ) + size
    assert model.backbone.filters == (4, 8, 16, 32, 32) and model.backbone.out_channels == 4


def test_fully_labelled_losses_equal_mtan_formulas():
    """One sample, every flag set: MTAN's utils.model_fit (batch of one)."""
    model = build()
    x, batch = images(1), samples(1)
    losses = model(x, batch, mode='loss')
    preds = model(x, mode='tensor')
    seg, depth, normal = batch[0].gt_sem_seg.data, batch[0].gt_depth.data[None], batch[0].gt_normal.data[None]
    mask = (depth != 0).float()
    expected_depth = ((preds['depth'] - depth).abs() * mask).sum() / mask.sum()
    normal_mask = (normal.abs().sum(1, keepdim=True) > 0).float()
    expected_normal = 1 - (preds['normal'] * normal * normal_mask).sum() / normal_mask.sum()
    assert sorted(losses) == ['depth.loss_l1', 'normal.loss_cos', 'seg.loss_ce']
    assert torch.allclose(losses['seg.loss_ce'], F.nll_loss(preds['seg'], seg, ignore_index=-1), atol=1e-6)
    assert torch.allclose(losses['depth.loss_l1'], expected_depth, atol=1e-6)
    assert torch.allclose(losses['normal.loss_cos'], expected_normal, atol=1e-6)


def test_unlabelled_samples_contribute_exactly_zero():
    """GT is present but the flags say 'unlabelled': the flag alone must zero the sample (MTPSL: sum_b w_b l_b / B)."""
    model = build().eval()  # eval: BatchNorm statistics do not mix the samples, so per-sample losses compare
    x = images(2)
    full = samples(2)
    half = samples(2, flags=[(False, True, False), (True, True, True)])
    single = model(x[1:], full[1:], mode='loss')
    gated = model(x, half, mode='loss')
    assert torch.allclose(gated['seg.loss_ce'], single['seg.loss_ce'] / 2, atol=1e-6)
    assert torch.allclose(gated['normal.loss_cos'], single['normal.loss_cos'] / 2, atol=1e-6)
    both = model(x, full, mode='loss')
    assert torch.allclose(gated['depth.loss_l1'], both['depth.loss_l1'])

    model.zero_grad()
    none = model(x, samples(2, flags=[(False, False, False)] * 2), mode='loss')
    assert sorted(none) == sorted(gated), 'keys are stable'
    assert all(value.item() == 0.0 for value in none.values())
    sum(none.values()).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads), 'every parameter gets a gradient (no unused parameters under DDP)'
    assert all(bool((g == 0).all()) for g in grads)


def test_nexusflow_attaches_without_changing_the_host():
    baseline = build()
    with_plugin = build([nexusflow_cfg()])
    state = {k: v for k, v in with_plugin.state_dict().items() if not k.startswith('plugins.')}
    assert all(torch.equal(v, baseline.state_dict()[k]) for k, v in state.items()), 'same host initialisation'
    x, batch = images(2), samples(2, flags=[(True, False, False), (False, False, True)])
    reference = baseline(x, batch, mode='loss')
    losses = with_plugin(x, batch, mode='loss')
    assert all(torch.equal(reference[k], losses[k]) for k in reference), 'task losses bit-identical'
    assert {'nexusflow.loss_align', 'nexusflow.latent_dist', 'nexusflow.embed_dist'} <= set(losses)
    latents = with_plugin.plugins[0].latents()
    assert list(latents) == list(TASKS) and all(z.shape == (2, 8) for z in latents.values())
    losses['nexusflow.loss_align'].backward()
    for task in TASKS:
        gate = with_plugin.backbone.decoder_attention[task][4].mask[0].conv.weight
        assert gate.grad is not None and gate.grad.abs().sum() > 0, f'the align loss trains the {task} branch'
    pairwise = build([nexusflow_cfg('pairwise')])(x, batch, mode='loss')
    assert torch.allclose(pairwise['nexusflow.loss_align'], 3 * losses['nexusflow.loss_align'])


def test_data_preprocessor_and_errors():
    model = build()
    batch = dict(inputs=[torch.rand(3, 40, 56), torch.rand(3, 40, 56)], data_samples=samples(2))
    data = model.data_preprocessor(batch, training=True)
    assert data['inputs'].shape == (2, 3, 40, 56) and torch.equal(data['inputs'][1], batch['inputs'][1])
    normalising = MODELS.build(dict(type='NexusFlowNYUv2DataPreprocessor', mean=(0.5, 0.5, 0.5),
                                    std=(0.25, 0.25, 0.25)))
    assert torch.allclose(normalising(batch)['inputs'][0], (batch['inputs'][0] - 0.5) / 0.25)
    with pytest.raises(ValueError, match='one size per batch'):
        model.data_preprocessor(dict(inputs=[torch.rand(3, 40, 56), torch.rand(3, 48, 56)]))
    with pytest.raises(ValueError, match='H, W >= 32'):
        model(torch.rand(1, 3, 16, 56), mode='tensor')
    with pytest.raises(ValueError, match='heads must name tasks'):
        MODELS.build(dict(model_cfg(), heads=dict(edges=dict(type='NexusFlowNYUv2DepthHead'))))
