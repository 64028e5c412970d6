"""Non-finite values: named before Hungarian matching in both heads; train_cfg.nonfinite_policy raise / skip."""
import uuid

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.structures import InstanceData
from torch import nn
from torch.utils.data import DataLoader

from mmdet3d.registry import TASK_UTILS
from projects.nexusflow.engine import NonFiniteGuardTrainLoop  # noqa: F401  (registers the loop)
from projects.nexusflow.models.layers.finite import check_finite
from projects.nexusflow.models.uniad.map.assigners import FilterHungarianAssigner  # noqa: F401
from projects.nexusflow.models.uniad.track.clip_matcher import ClipMatcher

ADVICE = 'training diverged or the inputs hold NaN/inf'


def test_map_assigner_names_nan_predictions():
    assigner = TASK_UTILS.build(dict(type='UniADFilterHungarianAssigner', match_costs=[
        dict(type='mmdet.FocalLossCost', weight=2.0), dict(type='mmdet.BBoxL1Cost', weight=5.0)]))
    scores = torch.zeros(4, 3)
    scores[1, 2] = float('nan')
    preds = InstanceData(scores=scores, bboxes=torch.tensor([[0.0, 0.0, 2.0, 2.0]]).repeat(4, 1))
    gts = InstanceData(labels=torch.tensor([1]), bboxes=torch.tensor([[0.0, 0.0, 2.0, 2.0]]))
    with pytest.raises(FloatingPointError, match=r'^map head query filter: non-finite predictions before Hungarian '
                                                 r'matching: scores \(1 of 12 values\); ' + ADVICE):
        assigner.assign(preds, gts, dict(img_shape=(8, 8)))


def test_track_matcher_names_nan_predictions():
    codes = torch.zeros(3, 10)
    codes[0, :2] = float('inf')
    with pytest.raises(FloatingPointError, match=r'^track head matcher: non-finite predictions before Hungarian '
                                                 r'matching: box_codes \(2 of 30 values\); ' + ADVICE):
        ClipMatcher().hungarian(torch.zeros(3, 10), codes, torch.tensor([0]), torch.zeros(1, 10))
    check_finite(dict(a=torch.ones(2)), 'fine')  # finite: no error


class Toy(BaseModel):
    """A linear model whose loss checks its predictions like the heads do."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        pred = self.fc(inputs)
        check_finite(dict(pred=pred), 'toy head')
        return dict(loss=(pred - 1.0).pow(2).mean())


def make_runner(tmp_path, bad_batches, policy, max_skips=3, batches=6):
    items = [dict(inputs=torch.full((2, ), float('nan')) if i in bad_batches else torch.ones(2))
             for i in range(batches)]
    return Runner(model=Toy(), work_dir=str(tmp_path), experiment_name=f'nonfinite-{uuid.uuid4().hex}',
                  train_dataloader=DataLoader(items, batch_size=1, shuffle=False),
                  train_cfg=dict(type='NexusFlowNonFiniteGuardTrainLoop', max_epochs=1, nonfinite_policy=policy,
                                 max_consecutive_skips=max_skips),
                  optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)), default_hooks=dict(checkpoint=None),
                  default_scope='mmdet3d')


def test_skip_policy_drops_the_update_counts_and_continues(tmp_path):
    updates = []
    runner = make_runner(tmp_path, bad_batches={1, 2, 4}, policy='skip')
    model = runner.model
    model.fc.weight.register_hook(lambda grad: updates.append(grad.clone()))
    runner.train()
    assert len(updates) == 3                                 # backward only for the 3 good batches
    assert torch.isfinite(model.fc.weight).all() and torch.isfinite(model.fc.bias).all()
    assert runner.message_hub.get_info('nonfinite_skips') == 3
    assert runner.train_loop.iter == 6


def test_skip_policy_stops_after_k_consecutive_skips(tmp_path):
    runner = make_runner(tmp_path, bad_batches={1, 2, 3}, policy='skip', max_skips=3)
    with pytest.raises(FloatingPointError, match=r'^3 consecutive iterations skipped for non-finite values '
                                                 r'\(train_cfg.max_consecutive_skips=3\): training diverged. Last: '
                                                 r'toy head: non-finite predictions'):
        runner.train()


def test_raise_policy_stops_with_the_message(tmp_path):
    runner = make_runner(tmp_path, bad_batches={2}, policy='raise')
    with pytest.raises(FloatingPointError, match=r'^toy head: non-finite predictions before Hungarian matching: pred '
                                                 r'\(1 of 1 values\)'):
        runner.train()
    with pytest.raises(ValueError, match="nonfinite_policy must be one of \\('raise', 'skip'\\), got 'zero'"):
        make_runner(tmp_path, bad_batches=set(), policy='zero').train()
