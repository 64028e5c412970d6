"""Resume exactness: the shrunk tiny model trained 4 iterations in one go equals 2 iterations, a checkpoint and a
resumed run of 2 more (mmengine ``resume``): the same losses in iterations 3-4 and bit-identical final weights.

The warm-up changes the learning rate every iteration, so a resume that forgot the scheduler (or the optimizer
moments, or the iteration count) shows up in both. mmengine re-seeds a resumed run instead of restoring the RNG
state, so the test model has no random op in training (dropout 0, no QIM false positives / random drops).
"""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / 'configs' / 'uniad_nexusflow' / 'tiny_uniad_sgeo.py'
CONFIG = """
_base_ = ['{base}']
data_root = '{root}/'
model = dict(
    img_neck=dict(out_channels=32),
    bev_encoder=dict(bev_h=25, bev_w=25, embed_dims=32, num_layers=1, ffn_dims=64, dropout=0.0),
    track_head=dict(num_query=30, embed_dims=32, bev_h=25, bev_w=25,
                    decoder=dict(num_layers=2, ffn_dims=64, dropout=0.0),
                    qim=dict(fp_ratio=0.0, random_drop=0.0)),
    map_head=dict(bev_h=25, bev_w=25, embed_dims=32, num_query=20,
                  transformer=dict(num_encoder_layers=1, num_decoder_layers=1, ffn_dims=64, dropout=0.0),
                  thing_mask_head=dict(num_layers=1), stuff_mask_head=dict(num_layers=1)))
pipeline = _base_.train_pipeline
pipeline[4].canvas_size = (25, 25)
train_dataloader = dict(num_workers=0, persistent_workers=False, batch_size=1,
                        dataset=dict(dataset=dict(data_root=data_root, pipeline=pipeline)))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=4)
val_dataloader = val_cfg = val_evaluator = test_dataloader = test_cfg = test_evaluator = None
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=6)]
default_hooks = dict(checkpoint=dict(interval=2, by_epoch=False), logger=dict(interval=1))
log_processor = dict(by_epoch=False)
"""


class LossRecorder(Hook):
    """Keeps ``(iteration, total loss, learning rate)`` of every training iteration."""

    def __init__(self):
        self.records = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        lr = runner.optim_wrapper.get_lr()['lr'][0]
        self.records.append((runner.iter, float(outputs['loss']), lr))


def train(cfg_path, work_dir, max_iters, resume_from=None):
    cfg = Config.fromfile(cfg_path)
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = f'resume_{work_dir.name}'  # a message hub and logger of its own per run
    cfg.train_cfg.max_iters = max_iters
    if resume_from is not None:
        cfg.resume, cfg.load_from = True, str(resume_from)
    runner = Runner.from_cfg(cfg)
    recorder = LossRecorder()
    runner.register_hook(recorder, priority='LOWEST')
    runner.train()
    return recorder.records, {k: v.clone() for k, v in runner.model.state_dict().items()}


@pytest.mark.slow
def test_interrupted_and_resumed_training_equals_an_uninterrupted_run(synthetic_root, synthetic_infos, tmp_path):
    # the checkpoint is written by the configs' NexusFlowAtomicCheckpointHook and loaded with torch's default
    # weights_only=True
    cfg_path = tmp_path / 'tiny_resume.py'
    cfg_path.write_text(CONFIG.format(base=BASE, root=synthetic_root))
    straight, straight_weights = train(cfg_path, tmp_path / 'straight', 4)
    first, _ = train(cfg_path, tmp_path / 'first', 2)
    resumed, resumed_weights = train(cfg_path, tmp_path / 'resumed', 4, tmp_path / 'first' / 'iter_2.pth')

    assert [r[0] for r in straight] == [0, 1, 2, 3] and [r[0] for r in resumed] == [2, 3]  # runner.iter: 0-based
    assert len({r[2] for r in straight}) == 4  # the learning rate changes every iteration
    assert first == straight[:2]
    assert resumed == straight[2:]  # same iteration numbers, losses and learning rates
    assert straight_weights.keys() == resumed_weights.keys()
    halfway = torch.load(tmp_path / 'first' / 'iter_2.pth', map_location='cpu')['state_dict']
    changed = [k for k, v in straight_weights.items() if v.is_floating_point() and not torch.equal(v, halfway[k])]
    assert changed  # iterations 3-4 moved the weights
    different = [k for k, v in straight_weights.items() if not torch.equal(v, resumed_weights[k])]
    assert not different, f'resumed weights differ from the uninterrupted run: {different[:5]}'
