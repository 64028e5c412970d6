"""MTPSL and JTR on a stand-in host whose heads expose ``pred_tap`` like UniAD's: pairs, exact loss values, zero for
identical inputs, gradient routing (heads yes, labels and frozen parts no), DDP coverage, and losses falling."""
import pytest
import torch
from mmengine.structures import InstanceData
from torch import nn

from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes
from projects.nexusflow.core import PredictionTap
from projects.nexusflow.models.psmtl import (FiLMConv, TaskRasters, cosine_distance, pair_code_index,
                                             pair_codes)

B, C, H, W, NQ, K = 2, 8, 8, 10, 5, 3
RANGE = (-5.0, -2.0, -3.0, 5.0, 6.0, 3.0)
TASKS = dict(
    track=dict(tap='track_head.pred_tap',
               raster=dict(type='NexusFlowTrackRaster', num_classes=K, point_cloud_range=RANGE)),
    map=dict(tap='map_head.pred_tap', raster=dict(type='NexusFlowMapRaster', num_classes=4)))


class StandInHost(nn.Module):
    """BEV encoder -> a query track head and a conv map head, each calling its ``pred_tap`` like UniAD's heads."""

    def __init__(self):
        super().__init__()
        self.bev_encoder = nn.Linear(3, C)
        self.track_head = nn.Module()
        self.track_head.query = nn.Parameter(torch.randn(NQ, C))
        self.track_head.cls = nn.Linear(C, K)
        self.track_head.box = nn.Linear(C, 8)
        self.track_head.pred_tap = PredictionTap(fields=('cls_logits', 'boxes', 'padding_mask'))
        self.map_head = nn.Module()
        self.map_head.conv = nn.Conv2d(C, 4, 3, padding=1)
        self.map_head.pred_tap = PredictionTap(fields=('semantic', ))

    def forward(self, inputs):
        bev = self.bev_encoder(inputs)  # [B, HW, C]
        query = self.track_head.query + bev.mean(1, keepdim=True)
        raw = self.track_head.box(query)
        centre = torch.tanh(raw[..., :2]) * raw.new_tensor([4.0, 3.0]) + raw.new_tensor([0.0, 2.0])
        boxes = torch.cat([centre, raw[..., 2:3], raw[..., 3:6].exp(), raw[..., 6:8], torch.zeros_like(centre)], -1)
        self.track_head.pred_tap(dict(cls_logits=self.track_head.cls(query), boxes=boxes,
                                      padding_mask=torch.zeros(query.shape[:2], dtype=torch.bool)))
        fmap = bev.transpose(1, 2).reshape(-1, C, H, W)
        self.map_head.pred_tap(dict(semantic=self.map_head.conv(fmap).sigmoid()))
        return bev


def make_sample(has_track=True, has_map=True, seed=0, box_grad=False):
    gen = torch.Generator().manual_seed(seed)
    boxes = torch.cat([torch.rand(3, 2, generator=gen) * torch.tensor([8.0, 6.0]) - torch.tensor([4.0, 1.0]),
                       torch.tensor([[-1.0, 4.0, 2.0, 1.5, 0.3, 0.0, 0.0]] * 3)], 1).requires_grad_(box_grad)
    masks = (torch.rand(2, H, W, generator=gen) > 0.6).to(torch.uint8)
    sample = Det3DDataSample(metainfo=dict(has_track_gt=has_track, has_map_gt=has_map))
    sample.gt_instances_3d = InstanceData(bboxes_3d=LiDARInstance3DBoxes(boxes, box_dim=9),
                                          labels_3d=torch.tensor([0, 2, 1]), instance_ids=torch.arange(3))
    sample.gt_map_instances = InstanceData(labels=torch.tensor([0, 3]), masks=masks, bboxes=torch.zeros(2, 4))
    return sample


def inputs(batch=B, seed=0):
    return torch.randn(batch, H * W, 3, generator=torch.Generator().manual_seed(seed))


def build(kind, **kwargs):
    if kind == 'MTPSL':
        cfg = dict(type='NexusFlowMTPSL', tasks=TASKS, feat_channels=C, mapper=dict(channels=(8, 16)),
                   feature_tap=dict(module='bev_encoder', kind='bev', bev_shape=(H, W)))
    else:
        cfg = dict(type='NexusFlowJTR', tasks=TASKS, autoencoder=dict(channels=(8, 16)))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def attached(kind, **kwargs):
    torch.manual_seed(0)
    host = StandInHost()
    plugin = build(kind, **kwargs)
    plugin.attach(host)
    return host, plugin


def grad_norm(module):
    grads = [p.grad.abs().sum() for p in module.parameters() if p.grad is not None]
    return float(sum(grads)) if grads else 0.0


def test_pair_code_layout_is_the_official_one():
    for num in (2, 3, 4):
        for s in range(num):
            for t in range(num):
                if s == t:
                    continue
                a = torch.zeros(num, num)
                a[s, t] = 1.0
                official = a.flatten()[:-1].view(num - 1, num + 1)[:, 1:].flatten()  # MTPSL mapfns.py
                assert int(official.argmax()) == pair_code_index(s, t, num)
    with pytest.raises(ValueError, match='two different task indices'):
        pair_code_index(1, 1, 3)


def test_film_starts_as_the_plain_conv_and_conditions_on_the_pair():
    torch.manual_seed(0)
    layer = FiLMConv(3, 4, code_dim=2)
    x = torch.randn(2, 3, 5, 6)
    codes = pair_codes(torch.tensor([0, 1]), torch.tensor([1, 0]), 2)
    assert codes.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    plain = torch.relu(layer.norm(layer.conv(x)))
    torch.testing.assert_close(layer(x, codes), plain)
    with torch.no_grad():
        layer.film_gamma[:, 1] = 2.0
        layer.film_beta[:, 1] = 0.5
    out = layer(x, codes)
    torch.testing.assert_close(out[0], plain[0])
    torch.testing.assert_close(out[1], torch.relu(2.0 * layer.norm(layer.conv(x))[1] + 0.5))


def test_mapper_batches_entries_exactly():
    torch.manual_seed(0)
    mapper = MODELS.build(dict(type='NexusFlowTaskPairMapper', in_channels=dict(a=2, b=3), out_channels=5,
                               channels=(4, 6)))
    inputs_ = [torch.rand(3, 6, 7), torch.rand(2, 6, 7), torch.rand(3, 6, 7)]
    tasks = ['b', 'a', 'b']
    codes = pair_codes(torch.tensor([1, 0, 0]), torch.tensor([0, 1, 1]), 2)
    batched = mapper(inputs_, tasks, codes)
    assert batched.shape == (3, 5, 6, 7)
    for n in range(3):
        torch.testing.assert_close(batched[n:n + 1], mapper([inputs_[n]], [tasks[n]], codes[n:n + 1]))
    with pytest.raises(KeyError, match="unknown input tasks \\['c'\\]"):
        mapper(inputs_, ['a', 'b', 'c'], codes)


def test_cosine_distance_is_zero_for_identical_inputs_and_positive_otherwise():
    a = torch.randn(3, 4, 5, 6)
    assert cosine_distance(a, a).abs().max() < 1e-6
    assert cosine_distance(a, 2.5 * a).abs().max() < 1e-6
    torch.testing.assert_close(cosine_distance(a, -a), torch.full((3, ), 2.0))
    assert (cosine_distance(a, torch.randn(3, 4, 5, 6)) > 0.1).all()


def test_mtpsl_pairs_follow_the_official_partial_label_rule():
    host, plugin = attached('MTPSL')
    flags = [(True, False), (False, True), (True, True), (False, False)]
    samples = [make_sample(*f, seed=i) for i, f in enumerate(flags)]
    host(inputs(len(samples)))
    rasters = plugin.task_rasters(samples)
    assert plugin.pairs(rasters) == ([0, 1], [1, 0], [0, 1])  # sample 0: map -> track, sample 1: track -> map
    losses = plugin.loss(samples)
    assert float(losses['num_pairs']) == 2.0


def test_mtpsl_loss_value_matches_the_formula():
    host, plugin = attached('MTPSL')
    samples = [make_sample(True, False, seed=0), make_sample(False, True, seed=1)]
    host(inputs())
    rasters = plugin.task_rasters(samples)
    feat = plugin.features()
    losses = plugin.loss(samples)
    mapper = plugin.mapper
    codes = pair_codes(torch.tensor([1, 0]), torch.tensor([0, 1]), 2)
    source = torch.cat([mapper([rasters['map'].predictions[0]], ['map'], codes[:1]),
                        mapper([rasters['track'].predictions[1]], ['track'], codes[1:])])
    target = torch.cat([mapper([rasters['track'].labels[0]], ['track'], codes[:1]),
                        mapper([rasters['map'].labels[1]], ['map'], codes[1:])])
    l_st = 1 - torch.cosine_similarity(source, target, dim=1).mean((1, 2))
    r_st = (1 - torch.cosine_similarity(source, feat, dim=1).mean((1, 2))
            + 1 - torch.cosine_similarity(target, feat, dim=1).mean((1, 2)))
    torch.testing.assert_close(losses['loss_consistency'], 2.0 * l_st.sum() / 2)
    torch.testing.assert_close(losses['loss_reg'], 2.0 * 0.5 * r_st.sum() / 2)
    assert 0 < float(losses['loss_consistency']) and 0 < float(losses['loss_reg'])
    assert not feat.requires_grad


def test_mtpsl_consistency_is_zero_for_identical_mapped_inputs():
    """Two tasks of the same kind with tied input layers: a source prediction equal to the target label maps to
    the same point (loss 0); any other prediction does not."""
    tasks = dict(a=dict(tap='track_head.pred_tap', raster=dict(type='NexusFlowMapRaster', num_classes=4)),
                 b=dict(tap='map_head.pred_tap', raster=dict(type='NexusFlowMapRaster', num_classes=4)))
    plugin = build('MTPSL', tasks=tasks)
    plugin.mapper.input_layers['b'].load_state_dict(plugin.mapper.input_layers['a'].state_dict())
    labels = torch.rand(1, 4, H, W)
    flags_a, flags_b = torch.tensor([False]), torch.tensor([True])
    feat = torch.randn(1, C, H, W)
    same = dict(a=TaskRasters(labels.clone(), torch.zeros_like(labels), flags_a),
                b=TaskRasters(torch.rand(1, 4, H, W), labels, flags_b))
    consistency, reg = plugin.pair_distances(same, feat)
    assert consistency.abs().max() < 1e-6 and reg.min() > 0
    other = dict(same, a=TaskRasters(torch.rand(1, 4, H, W), torch.zeros_like(labels), flags_a))
    assert plugin.pair_distances(other, feat)[0].min() > 1e-3


def test_mtpsl_gradients_reach_the_source_head_only_never_the_labels():
    host, plugin = attached('MTPSL')
    sample = make_sample(has_track=True, has_map=False, box_grad=True)  # source map, target track
    host(inputs(1))
    losses = plugin.loss([sample])
    (losses['loss_consistency'] + losses['loss_reg']).backward()
    assert grad_norm(host.map_head) > 0 and grad_norm(host.bev_encoder) > 0
    assert grad_norm(host.track_head) == 0, 'the labelled task enters through its labels only'
    assert sample.gt_instances_3d.bboxes_3d.tensor.grad is None
    assert all(p.grad is not None for p in plugin.parameters())


def test_mtpsl_full_supervision_is_an_exact_zero_touching_every_parameter():
    host, plugin = attached('MTPSL')
    host(inputs())
    losses = plugin.loss([make_sample(seed=0), make_sample(seed=1)])
    assert float(losses['loss_consistency']) == 0.0 and float(losses['loss_reg']) == 0.0
    assert float(losses['num_pairs']) == 0.0
    (losses['loss_consistency'] + losses['loss_reg']).backward()
    assert all(p.grad is not None and p.grad.abs().max() == 0 for p in plugin.parameters())


def test_jtr_stacks_labels_where_present_and_detaches_labelled_predictions():
    host, plugin = attached('JTR')
    samples = [make_sample(True, False, seed=0), make_sample(False, True, seed=1)]
    host(inputs())
    rasters = plugin.task_rasters(samples)
    targets, predictions = plugin.stack(rasters)
    assert targets.shape == predictions.shape == (2, K + 1 + 4, H, W)
    assert torch.equal(targets[0, :K + 1], rasters['track'].labels[0])
    assert torch.equal(targets[0, K + 1:], rasters['map'].predictions[0])
    assert torch.equal(targets[1, K + 1:], rasters['map'].labels[1])
    assert torch.equal(predictions, torch.cat([rasters['track'].predictions, rasters['map'].predictions], 1))
    (grad_track, ) = torch.autograd.grad(predictions[0, :K + 1].sum(), rasters['track'].predictions,
                                         allow_unused=True, retain_graph=True)
    assert grad_track is None or grad_track[0].abs().max() == 0


def test_jtr_distances_are_zero_for_identical_inputs_and_match_the_formula():
    plugin = build('JTR')
    stack = torch.rand(2, K + 1 + 4, H, W)
    dist_pred, dist_enc, recon = plugin.terms(stack, stack.clone())
    assert dist_pred.abs().max() < 1e-6 and dist_enc.abs().max() < 1e-6 and (recon > 0).all()
    other = torch.rand(2, K + 1 + 4, H, W)
    dist_pred, dist_enc, recon = plugin.terms(stack, other)
    assert (dist_pred > 0).all()
    torch.testing.assert_close(dist_pred, dist_enc)
    ae = plugin.autoencoder
    latent_y, logits_y = ae(stack)
    latent_p, logits_p = ae(other)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    manual = sum(bce(lo[:, sl], x[:, sl], reduction='none').sum(1).mean((1, 2))
                 for lo, x in ((logits_y, stack), (logits_p, other)) for sl in (slice(0, K + 1), slice(K + 1, None)))
    torch.testing.assert_close(recon, manual)
    torch.testing.assert_close(dist_enc, 1 - torch.cosine_similarity(latent_y, latent_p, dim=1).mean((1, 2)))


def test_jtr_gradients_reach_the_unlabelled_head_only_and_the_copy_stays_frozen():
    host, plugin = attached('JTR')
    sample = make_sample(has_track=True, has_map=False, box_grad=True)
    host(inputs(1))
    rasters = plugin.task_rasters([sample])
    dist_pred, dist_enc, recon = plugin.terms(*plugin.stack(rasters))
    dist_pred.sum().backward(retain_graph=True)
    assert grad_norm(host.map_head) > 0 and grad_norm(host.track_head) == 0
    assert grad_norm(plugin.autoencoder) == 0, 'the prediction path runs a frozen copy of the encoder'
    host.zero_grad()
    (dist_enc.sum() + recon.sum()).backward()
    assert grad_norm(host) == 0, 'encoder and reconstruction terms see detached inputs'
    assert grad_norm(plugin.autoencoder.encoder) > 0 and grad_norm(plugin.autoencoder.decoder) > 0
    assert sample.gt_instances_3d.bboxes_3d.tensor.grad is None


def test_jtr_loss_dict_weights():
    host, plugin = attached('JTR')
    samples = [make_sample(True, False, seed=0), make_sample(False, True, seed=1)]
    host(inputs())
    rasters = plugin.task_rasters(samples)
    dist_pred, dist_enc, recon = plugin.terms(*plugin.stack(rasters))
    host(inputs())
    losses = plugin.loss(samples)
    torch.testing.assert_close(losses['loss_dist'], 4.0 * (dist_pred + 2.0 * dist_enc).mean())
    torch.testing.assert_close(losses['loss_recon'], 2.0 * recon.mean())
    assert set(losses) == {'loss_dist', 'loss_recon', 'dist_pred', 'dist_enc'}


@pytest.mark.parametrize('kind,key', [('MTPSL', 'loss_consistency'), ('JTR', 'loss_dist')])
def test_training_the_plugin_lowers_its_loss(kind, key):
    host, plugin = attached(kind)
    samples = [make_sample(True, False, seed=0), make_sample(False, True, seed=1)]
    optimizer = torch.optim.Adam(list(host.parameters()) + list(plugin.parameters()), lr=3e-3)
    values = []
    for _ in range(25):
        host(inputs())
        losses = plugin.loss(samples)
        total = sum(v for k, v in losses.items() if k.startswith('loss'))
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        values.append(float(losses[key]))
    assert all(torch.isfinite(torch.tensor(values)))
    assert values[-1] < 0.7 * values[0], values


def test_building_leaves_the_global_rng_alone_and_errors_are_clear():
    state = torch.get_rng_state()
    plugin = build('MTPSL')
    build('JTR')
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(a, b) for a, b in zip(plugin.state_dict().values(), build('MTPSL').state_dict().values()))
    with pytest.raises(ValueError, match='at least 2 tasks'):
        build('JTR', tasks=dict(track=TASKS['track']))
    with pytest.raises(ValueError, match='reserved'):
        build('MTPSL', tasks=dict(features=TASKS['track'], map=TASKS['map']))
    host, plugin = attached('MTPSL', feat_channels=C + 1)
    host(inputs(1))
    with pytest.raises(ValueError, match=f'set feat_channels={C}'):
        plugin.loss([make_sample(True, False)])
    host, plugin = attached('JTR')
    host(inputs(2))
    with pytest.raises(ValueError, match='the head saw a batch of 2 but loss\\(\\) got 1'):
        plugin.loss([make_sample(True, False)])
