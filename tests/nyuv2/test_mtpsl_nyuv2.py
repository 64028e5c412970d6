"""MTPSL on MTAN (NYUv2) through the generic plug-in: the official input preprocessing, the SegNet-stage mapping
network on the bottleneck grid, pairs of the cluster protocol, exact loss values, gradient routing, an unchanged
host, the shipped configs and a short training run."""
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.optim import build_optim_wrapper
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement, PixelData

from mmdet3d.registry import MODELS, TASK_UTILS
from projects.nexusflow.models.psmtl import TaskRasters, pair_codes, segnet_channels

CONFIGS = Path(__file__).resolve().parents[2] / 'configs' / 'mtan_nexusflow'
TASKS = ('seg', 'depth', 'normal')
SIZE = (64, 96)  # bottleneck 2 x 3
RASTERS = dict(seg=dict(encoding='one_hot', channels=13, flag='has_seg', gt_field='gt_sem_seg'),
               depth=dict(encoding='max_scaled', channels=1, flag='has_depth', gt_field='gt_depth'),
               normal=dict(encoding='unit_vector', channels=3, flag='has_normal', gt_field='gt_normal'))


def official_pred(pred, task):
    """MTPSL ``Mapfns.pre_process_pred`` (model/mapfns.py) on one sample ``[1, C, H, W]``."""
    if task == 'seg':
        return F.gumbel_softmax(pred, dim=1, tau=1, hard=True)
    if task == 'depth':
        return pred / (pred.max() + 1e-12)
    return (pred + 1.0) / 2.0


def official_gt(gt, task, num_classes=13):
    """MTPSL ``Mapfns.pre_process_gt`` on one sample (seg ``[1, H, W]``, else ``[1, C, H, W]``), without ``.cuda()``."""
    if task == 'seg':
        gt = gt.unsqueeze(0)
        binary_mask = (gt == -1).type(torch.FloatTensor)
        gt_ = gt.float() * (1 - binary_mask)
        return torch.zeros(gt.size(0), num_classes, gt.size(2), gt.size(3)).scatter_(
            1, gt_.type(torch.LongTensor), 1) * (1 - binary_mask)
    if task == 'depth':
        return gt / (gt.max() + 1e-12)
    return (gt + 1.0) / 2.0


def make_samples(flags, size=SIZE, seed=0):
    """Samples with random GT (ignore -1 on the first row, invalid depth / normals on the first column)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for has in flags:
        seg = torch.randint(0, 13, (1, ) + size, generator=gen)
        seg[:, 0] = -1
        depth = torch.rand((1, ) + size, generator=gen) * 4 + 0.5
        depth[..., 0] = 0
        normal = F.normalize(torch.randn((3, ) + size, generator=gen), dim=0)
        normal[..., 0] = 0
        sample = BaseDataElement(metainfo=dict(zip(('has_seg', 'has_depth', 'has_normal'), has)))
        sample.gt_sem_seg, sample.gt_depth = PixelData(data=seg), PixelData(data=depth)
        sample.gt_normal = PixelData(data=normal)
        out.append(sample)
    return out


def images(batch_size, size=SIZE, seed=1):
    return torch.rand((batch_size, 3) + size, generator=torch.Generator().manual_seed(seed))


def build(config='tiny_mtan_mtpsl.py', plugins=True, seed=0):
    cfg = Config.fromfile(str(CONFIGS / config)).model
    if not plugins:
        cfg.plugins = []
    torch.manual_seed(seed)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def grad_sum(module):
    return float(sum(p.grad.abs().sum() for p in module.parameters() if p.grad is not None))


def test_dense_rasters_equal_the_official_preprocessing():
    rasters = {task: TASK_UTILS.build(dict(type='NexusFlowDenseTaskRaster', **cfg)) for task, cfg in RASTERS.items()}
    samples = make_samples([(True, True, True), (False, True, False)], size=(4, 5))
    # hand-made values: depth 1, 2, 4 and an invalid 0 -> / 4; a normal (0, 0, -1) -> (0.5, 0.5, 0); class 2 / ignore
    samples[0].gt_depth.data[0, 0, :4] = torch.tensor([1.0, 2.0, 4.0, 0.0])
    samples[0].gt_depth.data[0, 1:] = 0.5
    samples[0].gt_normal.data[:, 1, 1] = torch.tensor([0.0, 0.0, -1.0])
    samples[0].gt_sem_seg.data[0, 1, :2] = torch.tensor([2, -1])
    labels = {task: raster.labels(samples, (4, 5), torch.device('cpu')) for task, raster in rasters.items()}
    assert labels['depth'][0, 0, 0, :4].tolist() == [0.25, 0.5, 1.0, 0.0]
    assert labels['normal'][0, :, 1, 1].tolist() == [0.5, 0.5, 0.0]
    assert labels['normal'][0, :, 1, 0].tolist() == [0.5, 0.5, 0.5], 'an invalid all-zero normal -> 0.5 (official)'
    assert labels['seg'][0, :, 1, 0].tolist() == F.one_hot(torch.tensor(2), 13).tolist()
    assert labels['seg'][0, :, 1, 1].abs().sum() == 0, 'ignored pixels are all-zero'
    for task, b in [(task, 0) for task in TASKS] + [('depth', 1)]:  # the labelled (task, sample) pairs
        gt = samples[b].get(RASTERS[task]['gt_field']).data
        torch.testing.assert_close(labels[task][b], official_gt(gt if task == 'seg' else gt[None], task)[0])
    assert labels['seg'][1].abs().sum() == 0 and labels['normal'][1].abs().sum() == 0, 'unlabelled: zeros'
    gen = torch.Generator().manual_seed(3)
    row = torch.tensor([1.0, -2.0, 3.0, 0.5, 0.0])
    preds = dict(seg=F.log_softmax(torch.randn(2, 13, 4, 5, generator=gen), 1).requires_grad_(),
                 depth=row.expand(2, 1, 4, 5) * torch.tensor([1.0, 0.5]).view(2, 1, 1, 1),
                 normal=F.normalize(torch.randn(2, 3, 4, 5, generator=gen), dim=1))
    for task in TASKS:
        torch.manual_seed(7)
        ours = rasters[task].predictions(dict(prediction=preds[task]), (4, 5))
        torch.manual_seed(7)
        official = official_pred(preds[task][:1], task)
        torch.testing.assert_close(ours[:1], official)
        if task != 'seg':
            torch.testing.assert_close(ours[1:], official_pred(preds[task][1:], task))
    assert rasters['depth'].predictions(dict(prediction=preds['depth']), (4, 5))[1, 0, 0].tolist() == pytest.approx(
        [1 / 3, -2 / 3, 1.0, 1 / 6, 0.0])
    one_hot = rasters['seg'].predictions(dict(prediction=preds['seg']), (4, 5))
    hard = one_hot.detach().round()
    assert (one_hot.detach() - hard).abs().max() < 1e-6 and torch.equal(hard.sum(1), torch.ones(2, 4, 5))
    assert set(hard.unique().tolist()) == {0.0, 1.0}, 'one hard sample per pixel'
    one_hot[:, 4].sum().backward()
    assert preds['seg'].grad.abs().sum() > 0, 'straight-through gradient to the log-probabilities'


def test_dense_raster_errors_are_clear():
    raster = TASK_UTILS.build(dict(type='NexusFlowDenseTaskRaster', **RASTERS['normal']))
    with pytest.raises(ValueError, match=r'expects a prediction \[B, 3, 4, 5\], got \(2, 1, 4, 5\)'):
        raster.predictions(dict(prediction=torch.zeros(2, 1, 4, 5)), (4, 5))
    with pytest.raises(ValueError, match='encoding must be one of'):
        TASK_UTILS.build(dict(type='NexusFlowDenseTaskRaster', encoding='softmax', channels=3, flag='f', gt_field='g'))
    seg = TASK_UTILS.build(dict(type='NexusFlowDenseTaskRaster', **RASTERS['seg']))
    bad = make_samples([(True, True, True)], size=(4, 5))
    bad[0].gt_sem_seg.data[0, 0, 0] = 13
    with pytest.raises(ValueError, match=r'classes must lie in \[0, 13\) or be -1'):
        seg.labels(bad, (4, 5), torch.device('cpu'))
    with pytest.raises(FloatingPointError, match='Gumbel-softmax draws all held NaN'):
        seg.predictions(dict(prediction=torch.full((1, 13, 2, 2), float('nan'))), (2, 2))


@pytest.mark.parametrize('size,grid', [((288, 384), (9, 12)), ((72, 96), (2, 3)), ((100, 150), (3, 4))])
def test_segnet_stage_mapper_lands_on_the_bottleneck_grid(size, grid):
    model = build()
    plugin = model.plugins[0]
    assert plugin.mapper.output_size(*size) == grid
    with torch.no_grad():
        model(images(1, size), mode='tensor')
        mapped = plugin.mapper([torch.rand(1, *size)], ['depth'], pair_codes(torch.tensor([1]), torch.tensor([0]), 3))
    assert plugin.features().shape == (1, 64) + grid and mapped.shape == (1, 64) + grid
    assert mapped.min() >= 0, 'ReLU after the last FiLM conv, as the official encoder'
    assert len(plugin.mapper.layers) == 13 and plugin.mapper.pool_after == (1, 3, 6, 9, 12)


def test_cluster_protocol_pairs_and_exact_loss():
    """One label per image -> its two unlabelled tasks are sources of that label (2 pairs); two labels -> 2 pairs;
    all or none -> 0. The loss is 2 * sum_pairs [l_st + 0.5 r_st] / B with each pair mapped on its own."""
    model = build()
    plugin = model.plugins[0]
    flags = [(True, False, False), (False, True, False), (False, False, True), (True, True, False),
             (True, True, True), (False, False, False)]
    samples = make_samples(flags)
    model(images(len(flags)), samples, mode='tensor')
    torch.manual_seed(5)
    rasters = plugin.task_rasters(samples)
    feat = plugin.features()
    expected = [(0, 1, 0), (0, 2, 0), (1, 0, 1), (1, 2, 1), (2, 0, 2), (2, 1, 2), (3, 2, 0), (3, 2, 1)]
    assert list(zip(*plugin.pairs(rasters))) == expected
    consistency, reg = [], []
    for b, s, t in expected:
        code = pair_codes(torch.tensor([s]), torch.tensor([t]), 3)
        source = plugin.mapper([rasters[TASKS[s]].predictions[b]], [TASKS[s]], code)
        target = plugin.mapper([rasters[TASKS[t]].labels[b]], [TASKS[t]], code)
        consistency.append(1 - F.cosine_similarity(source, target, dim=1, eps=1e-12).mean())
        reg.append(2 - F.cosine_similarity(source, feat[b:b + 1], dim=1, eps=1e-12).mean()
                   - F.cosine_similarity(target, feat[b:b + 1], dim=1, eps=1e-12).mean())
    torch.manual_seed(5)
    losses = plugin.loss(samples)
    assert float(losses['num_pairs']) == 8.0
    torch.testing.assert_close(losses['loss_consistency'], 2.0 * sum(consistency) / 6, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(losses['loss_reg'], 2.0 * 0.5 * sum(reg) / 6, rtol=1e-4, atol=1e-6)
    assert float(losses['loss_consistency']) > 0.01


def test_consistency_is_zero_for_identical_mapped_inputs_and_positive_otherwise():
    """Two depth-like tasks with tied input layers: a source prediction equal to the target label maps to the same
    point of the joint space (loss 0); another prediction does not."""
    cfg = Config.fromfile(str(CONFIGS / 'tiny_mtan_mtpsl.py')).model.plugins[0]
    raster = dict(type='NexusFlowDenseTaskRaster', **RASTERS['depth'])
    cfg.tasks = dict(a=dict(tap='heads.depth.pred_tap', raster=dict(raster)),
                     b=dict(tap='heads.depth.pred_tap', raster=dict(raster)))
    plugin = MODELS.build(cfg)
    plugin.mapper.input_layers['b'].load_state_dict(plugin.mapper.input_layers['a'].state_dict())
    gen = torch.Generator().manual_seed(0)
    label = torch.rand(1, 1, *SIZE, generator=gen)
    feat = torch.rand(1, 64, 2, 3, generator=gen)
    unlabelled, labelled = torch.tensor([False]), torch.tensor([True])
    same = dict(a=TaskRasters(label.clone(), torch.zeros_like(label), unlabelled),
                b=TaskRasters(torch.rand(1, 1, *SIZE, generator=gen), label, labelled))
    consistency, reg = plugin.pair_distances(same, feat)
    assert consistency.abs().max() < 1e-6 and reg.min() > 0
    other = dict(same, a=TaskRasters(torch.rand(1, 1, *SIZE, generator=gen), torch.zeros_like(label), unlabelled))
    assert plugin.pair_distances(other, feat)[0].min() > 1e-3


def test_gradients_reach_the_unlabelled_heads_and_never_the_labels():
    model = build()
    samples = make_samples([(False, True, False)])  # depth labelled: seg and normal are the sources
    for sample in samples:
        for field in ('gt_sem_seg', 'gt_depth', 'gt_normal'):
            data = sample.get(field).data
            sample.get(field).data = data.float().requires_grad_() if field != 'gt_sem_seg' else data
    plugin = model.plugins[0]
    model(images(1), samples, mode='tensor')
    assert not plugin.features().requires_grad, 'the regulariser target is detached'
    losses = plugin.loss(samples)
    (losses['loss_consistency'] + losses['loss_reg']).backward()
    assert grad_sum(model.heads.seg) > 0 and grad_sum(model.heads.normal) > 0
    assert grad_sum(model.heads.depth) == 0, 'the labelled task enters through its labels only'
    assert grad_sum(model.backbone.decoder_attention.depth) == 0
    assert samples[0].gt_depth.data.grad is None and samples[0].gt_normal.data.grad is None
    assert all(p.grad is not None for p in plugin.parameters())


def test_host_outputs_are_bit_identical_with_the_plugin():
    baseline, with_plugin = build(plugins=False), build()
    host = {k: v for k, v in with_plugin.state_dict().items() if not k.startswith('plugins.')}
    assert host.keys() == baseline.state_dict().keys()
    assert all(torch.equal(v, baseline.state_dict()[k]) for k, v in host.items()), 'same host initialisation'
    x, flags = images(2), [(True, False, False), (False, False, True)]
    reference, losses = baseline(x, make_samples(flags), mode='loss'), with_plugin(x, make_samples(flags), mode='loss')
    assert all(torch.equal(reference[k], losses[k]) for k in reference), 'task losses bit-identical'
    assert {'mtpsl.loss_consistency', 'mtpsl.loss_reg', 'mtpsl.num_pairs'} <= set(losses)
    baseline.eval(), with_plugin.eval()
    with torch.no_grad():
        expected, got = baseline(x, mode='tensor'), with_plugin(x, mode='tensor')
        predicted = with_plugin(x, make_samples(flags), mode='predict')
    assert all(torch.equal(expected[task], got[task]) for task in TASKS)
    assert torch.equal(predicted[1].pred_normal.data, expected['normal'][1])


def test_shipped_configs_official_mapper_and_film_learning_rate():
    rows = {'mtan_mtpsl_cluster.py': 'cluster', 'mtan_mtpsl_onelabel.py': 'onelabel',
            'mtan_mtpsl_randomlabels.py': 'randomlabels', 'tiny_mtan_mtpsl.py': 'cluster'}
    for name, protocol in rows.items():
        cfg = Config.fromfile(str(CONFIGS / name))
        plugin = cfg.model.plugins[0]
        width = cfg.model.backbone.width
        assert cfg.train_dataloader.dataset.protocol == protocol and plugin.type == 'NexusFlowMTPSL'
        assert (plugin.con_weight, plugin.reg_weight) == (2.0, 0.5) and plugin.feat_channels == 512 * width
        assert plugin.mapper.channels == segnet_channels([int(c * width) for c in (64, 128, 256, 512, 512)])
        assert cfg.optim_wrapper.paramwise_cfg.custom_keys == {'film_': dict(lr_mult=10.0)}
    model = build('mtan_mtpsl_cluster.py')
    mapper = model.plugins[0].mapper
    # the official Mapfns(input_channels=[13, 1, 3]): conv-BN input layers, 13 FiLM conv_task (conv, BN, gamma, beta)
    filters = [64, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    inputs = sum(c * 64 * 9 + 64 + 2 * 64 for c in (13, 1, 3))
    film = sum(i * o * 9 + o + 2 * o + 2 * 6 * o for i, o in zip(filters[:-1], filters[1:]))
    assert sum(p.numel() for p in mapper.parameters()) == inputs + film == 14_819_328
    optim = build_optim_wrapper(model, Config.fromfile(str(CONFIGS / 'mtan_mtpsl_cluster.py')).optim_wrapper)
    lrs = {group['lr'] for group in optim.optimizer.param_groups if group['params'][0] is mapper.layers[0].film_gamma}
    assert lrs == {1e-3} and optim.optimizer.param_groups[0]['lr'] == 1e-4


class LossRecorder(Hook):
    keys = ('seg.loss_ce', 'depth.loss_l1', 'normal.loss_cos', 'mtpsl.loss_consistency', 'mtpsl.loss_reg')

    def __init__(self):
        self.losses = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses.append([outputs[key].item() for key in self.keys])


def test_tiny_mtpsl_training_lowers_the_losses(nyuv2_root, tmp_path):
    epochs, iters_per_epoch = 12, 6  # 24 images, batch 4, one label each
    cfg = Config.fromfile(str(CONFIGS / 'tiny_mtan_mtpsl.py'))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = str(nyuv2_root)
    cfg.train_cfg.update(max_epochs=epochs, val_interval=epochs + 1)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = None
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    cfg.work_dir = str(tmp_path)
    runner = Runner.from_cfg(cfg)
    recorder = LossRecorder()
    runner.register_hook(recorder)
    runner.train()
    losses = np.array(recorder.losses).reshape(epochs, iters_per_epoch, len(LossRecorder.keys)).sum(1)
    # measured (seed 0), epoch sums: seg 5.13 -> 4.38, depth 3.93 -> 2.79, normal 2.22 -> 1.40, consistency
    # 4.15 -> 0.03, regulariser 7.08 -> 3.78
    assert np.all(losses[-3:].mean(0) < losses[:3].mean(0) * np.array([0.92, 0.8, 0.8, 0.05, 0.7])), losses.round(3)
