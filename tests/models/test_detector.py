"""UniADTrackMap end to end on real pipeline batches of the synthetic set: losses, label gating, history modes,
sequential inference state, batch independence, plug-in neutrality, NaN reporting."""
import copy

import pytest
import torch
from mmengine.config import Config

from projects.nexusflow.datasets import NuScenesTrackMapDataset, clip_collate
from mmdet3d.registry import MODELS

CONFIG = 'configs/uniad_nexusflow/tiny_uniad_full.py'
NEXUSFLOW_PLUGIN = dict(
    type='NexusFlow', latent_dim=32, coupling=dict(num_layers=2, hidden_dims=(32, )),
    tasks=dict(
        track=dict(tap=dict(module='track_head.decoder', kind='queries'),
                   aggregator=dict(type='NexusFlowQuerySetAggregator', in_channels=32, embed_dims=32, num_queries=4)),
        map=dict(tap=dict(module='map_head.transformer.encoder', kind='bev', bev_shape=(25, 25)),
                 aggregator=dict(type='NexusFlowDeformableAggregator', in_channels=32, embed_dims=32, num_queries=4))))


def tiny_cfg():
    """The tiny config, shrunk further (25x25 BEV, 32 channels, few queries) so that each test takes seconds.

    The untrained model scores every query near the 0.01 class prior, below the 0.4 birth threshold: the tracker
    here births and keeps every query (thresholds 0), so that the track assertions compare real, carried tracks.
    """
    cfg = Config.fromfile(CONFIG)
    model = cfg.model
    model.img_neck.out_channels = 32
    model.bev_encoder.update(bev_h=25, bev_w=25, embed_dims=32, num_layers=1, ffn_dims=64)
    model.track_head.update(num_query=30, embed_dims=32, bev_h=25, bev_w=25,
                            decoder=dict(num_layers=2, num_heads=4, ffn_dims=64),
                            tracker=dict(score_thresh=0.0, filter_score_thresh=0.0))
    model.map_head.update(bev_h=25, bev_w=25, embed_dims=32, num_query=20,
                          transformer=dict(num_encoder_layers=1, num_decoder_layers=1, num_heads=4, ffn_dims=64),
                          thing_mask_head=dict(num_layers=1), stuff_mask_head=dict(num_layers=1))
    return cfg


def pipeline(cfg):
    steps = copy.deepcopy(cfg.train_pipeline)
    for step in steps:
        if step['type'] == 'NexusFlowLoadMapAnnotations':
            step['canvas_size'] = (25, 25)
    return steps


def build_model(cfg, plugins=None, seed=0):
    torch.manual_seed(seed)
    model_cfg = copy.deepcopy(cfg.model)
    if plugins:
        model_cfg.plugins = plugins
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model


@pytest.fixture(scope='module')
def cfg():
    return tiny_cfg()


@pytest.fixture(scope='module')
def datasets(cfg, synthetic_root, synthetic_infos):
    kwargs = dict(data_root=str(synthetic_root), version='v1.0-synth', pipeline=pipeline(cfg))
    train = NuScenesTrackMapDataset(ann_file=synthetic_infos['train'], queue_length=2, **kwargs)
    test = NuScenesTrackMapDataset(ann_file=synthetic_infos['val'], test_mode=True, **kwargs)
    return train, test


@pytest.fixture(scope='module')
def model(cfg):
    return build_model(cfg)


def batch(model, items):
    return model.data_preprocessor(clip_collate(items), training=True)


def test_losses_are_prefixed_finite_and_reach_every_module(model, datasets):
    model.train()
    data = batch(model, [datasets[0][0], datasets[0][1]])
    assert data['inputs']['imgs'].shape[:3] == (2, 2, 6)
    losses = model.loss(**data)
    assert any(k.startswith('track.frame_1_loss_cls') for k in losses)
    assert any(k.startswith('map.loss_mask_stuff') for k in losses)
    assert all(k.split('.')[0] in ('track', 'map') for k in losses)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    model.zero_grad()
    total.backward()
    for name in ('img_backbone', 'img_neck', 'bev_encoder', 'track_head', 'map_head'):
        grads = [p.grad for p in getattr(model, name).parameters() if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), name


def test_unlabelled_sample_contributes_exactly_zero(model, datasets):
    """A sample without track labels: its images get exactly zero gradient from the track losses, and the batch's
    track losses equal those of the labelled sample alone."""
    model.eval()  # deterministic: no dropout, BN statistics fixed
    train = datasets[0]
    unlabelled = train.prepare_data(0, has_track_gt=False, has_map_gt=True)
    labelled = train.prepare_data(5, has_track_gt=True, has_map_gt=True)
    data = batch(model, [unlabelled, labelled])
    imgs = data['inputs']['imgs'].requires_grad_(True)
    losses = model.loss(dict(imgs=imgs), data['data_samples'])
    track = sum(v for k, v in losses.items() if k.startswith('track.'))
    (grad, ) = torch.autograd.grad(track, imgs)
    assert grad[0].abs().max() == 0 and grad[1].abs().max() > 0
    alone = batch(model, [labelled])
    alone_losses = model.loss(**alone)
    for key, value in losses.items():
        if key.startswith('track.'):
            torch.testing.assert_close(value, alone_losses[key], rtol=1e-4, atol=1e-5)


def test_history_modes_agree_in_eval_mode(cfg, datasets):
    """'reuse' (previous BEV of the same pass) and 'recompute' (UniAD's no-grad history) give the same BEVs when
    the model is deterministic (eval mode), and differ from a clip encoded without history."""
    model = build_model(cfg).eval()
    data = batch(model, [datasets[0][2]])
    metas = [[s.metainfo for s in frame] for frame in zip(*data['data_samples'])]
    model.history_bev = 'reuse'
    reuse = model.clip_bevs(data['inputs']['imgs'], metas)
    model.history_bev = 'recompute'
    recompute = model.clip_bevs(data['inputs']['imgs'], metas)
    for a, b in zip(reuse, recompute):
        torch.testing.assert_close(a, b)
    without_history = model.frame_bev(data['inputs']['imgs'][:, 1], metas[1])
    assert (without_history - reuse[1]).abs().max() > 1e-4


def track_ids(output):
    return output.pred_instances_3d.instance_ids.tolist()


def run_sequence(model, test_set, indices):
    model.reset_test_state()
    outputs = []
    with torch.no_grad():
        for idx in indices:
            data = model.data_preprocessor(clip_collate([test_set[idx]]), training=False)
            outputs.extend(model.predict(**data))
    return outputs


def test_sequential_predict_resets_on_a_new_scene(model, datasets):
    model.eval()
    test_set = datasets[1]
    scenes = [test_set.get_data_info(i)['scene_token'] for i in range(len(test_set))]
    second = scenes.index(scenes[-1])
    outputs = run_sequence(model, test_set, range(second + 2))
    fresh = run_sequence(model, test_set, range(second, second + 2))
    assert all(track_ids(output) for output in outputs)  # tracks exist in every frame
    assert set(track_ids(outputs[second])) & set(track_ids(outputs[second + 1]))  # and are carried
    assert min(track_ids(outputs[second])) == 0 and max(track_ids(outputs[second - 1])) > max(track_ids(fresh[0]))
    for a, b in zip(outputs[second:], fresh):
        assert track_ids(a) == track_ids(b)
        torch.testing.assert_close(a.pred_instances_3d.scores_3d, b.pred_instances_3d.scores_3d)
        assert torch.equal(a.pred_map['masks'], b.pred_map['masks'])
    for output in outputs:
        assert output.pred_map['masks'].shape == (4, 25, 25)
        assert output.pred_instances_3d.bboxes_3d.tensor.shape[1] == 9


def test_a_batch_of_two_streams_equals_two_single_streams(model, datasets):
    model.eval()
    test_set = datasets[1]
    scenes = [test_set.get_data_info(i)['scene_token'] for i in range(len(test_set))]
    first, second = 0, scenes.index(scenes[-1])
    singles = [run_sequence(model, test_set, [i, i + 1]) for i in (first, second)]
    model.reset_test_state()
    with torch.no_grad():
        pairs = []
        for step in range(2):
            data = model.data_preprocessor(clip_collate([test_set[first + step], test_set[second + step]]))
            pairs.append(model.predict(**data))
    for stream, single in enumerate(singles):
        for step in range(2):
            assert track_ids(single[step]) and track_ids(pairs[step][stream]) == track_ids(single[step])
            torch.testing.assert_close(pairs[step][stream].pred_instances_3d.bboxes_3d.tensor,
                                       single[step].pred_instances_3d.bboxes_3d.tensor, rtol=1e-4, atol=1e-4)
            a, b = pairs[step][stream].pred_map['masks'], single[step].pred_map['masks']
            assert (a != b).float().mean() < 0.01
            torch.testing.assert_close(pairs[step][stream].pred_instances_3d.scores_3d,
                                       single[step].pred_instances_3d.scores_3d, rtol=1e-4, atol=1e-4)


def test_predict_refuses_two_frames_of_one_scene(model, datasets):
    model.eval()
    test_set = datasets[1]
    data = model.data_preprocessor(clip_collate([test_set[0], test_set[1]]))
    with pytest.raises(ValueError, match='batch_size=1'):
        model.predict(**data)


def test_plugin_leaves_baseline_predictions_bit_identical(cfg, model, datasets):
    with_plugin = build_model(cfg, plugins=[NEXUSFLOW_PLUGIN])
    missing, unexpected = with_plugin.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith('plugins.') for k in missing)
    model.eval(), with_plugin.eval()
    test_set = datasets[1]
    base = run_sequence(model, test_set, range(3))
    plug = run_sequence(with_plugin, test_set, range(3))
    assert all(track_ids(output) for output in base)
    for a, b in zip(base, plug):
        assert torch.equal(a.pred_instances_3d.bboxes_3d.tensor, b.pred_instances_3d.bboxes_3d.tensor)
        assert torch.equal(a.pred_instances_3d.scores_3d, b.pred_instances_3d.scores_3d)
        assert torch.equal(a.pred_instances_3d.instance_ids, b.pred_instances_3d.instance_ids)
        assert torch.equal(a.pred_map['masks'], b.pred_map['masks'])
    with_plugin.train()
    losses = with_plugin.loss(**batch(with_plugin, [datasets[0][0]]))
    assert 'nexusflow.loss_align' in losses and torch.isfinite(losses['nexusflow.loss_align'])


def test_nan_inputs_and_losses_get_a_clear_error(model, datasets):
    model.train()
    data = batch(model, [datasets[0][0]])
    data['inputs']['imgs'][0, 0, 0, 0, 0, 0] = float('nan')
    with pytest.raises(FloatingPointError, match='BEV of frame 0 holds NaN.*input images finite: False'):
        model.loss(**data)
    with pytest.raises(FloatingPointError, match="loss 'track.frame_0_loss_cls_0' is"):
        model._check_finite({'track.frame_0_loss_cls_0': torch.tensor(float('nan'))})


def test_config_errors(cfg):
    bad = copy.deepcopy(cfg.model)
    bad.history_bev = 'replay'
    with pytest.raises(ValueError, match='history_bev'):
        MODELS.build(bad)


def test_uniad_compat_first_frame_uses_itself_as_history(cfg, datasets):
    """compat='uniad': frame 0 of a training clip is encoded with its own history-free BEV (eval mode, no
    gradients) and identity motion, as UniAD's prev_img = img[:, :1]; the encoder gets compat='uniad' too."""
    compat_cfg = copy.deepcopy(cfg)
    compat_cfg.model.compat = 'uniad'
    model = build_model(compat_cfg)
    assert model.bev_encoder.compat == 'uniad' and model.map_head.compat == 'uniad'
    data = batch(model, [datasets[0][2]])
    metas = [[s.metainfo for s in frame] for frame in zip(*data['data_samples'])]
    imgs = data['inputs']['imgs'].double()
    model = model.double().eval()  # deterministic (no dropout / grid mask) float64 reference
    bevs = model.clip_bevs(imgs, metas)
    own = model.frame_bev(imgs[:, 0], metas[0])
    expected = model.frame_bev(imgs[:, 0], metas[0], own, torch.eye(4, dtype=torch.float64)[None])
    torch.testing.assert_close(bevs[0], expected)
    assert (bevs[0] - own).abs().max() > 1e-6
    default = build_model(cfg).double().eval()
    own_map = default.state_dict()  # the map head's compat attentions have 4-level shapes
    default.load_state_dict({k: own_map[k] if k.startswith('map_head.') else v for k, v in model.state_dict().items()})
    torch.testing.assert_close(default.clip_bevs(imgs, metas)[0], default.frame_bev(imgs[:, 0], metas[0]))
