"""Running moments, the collapse monitor and the 'running' latent norm of NexusFlow."""
import logging

import pytest
import torch

from projects.nexusflow.models.nexusflow.coupling import AffineCouplingStack
from projects.nexusflow.models.nexusflow.diagnostics import CollapseMonitor, LatentStandardizer, RunningMoments


def test_running_moments_match_batch_statistics():
    torch.manual_seed(0)
    data = torch.randn(4000, 3) * torch.tensor([0.5, 2.0, 7.0]) + torch.tensor([1.0, -3.0, 0.0])
    moments = RunningMoments(3, momentum=0.01)
    for row in data.split(1):
        moments.update(row)
    assert torch.allclose(moments.std(), torch.tensor([0.5, 2.0, 7.0]), rtol=0.15)
    assert torch.allclose(moments.centre(), torch.tensor([1.0, -3.0, 0.0]), atol=0.5)


def test_running_moments_bias_corrected_from_the_first_update():
    moments = RunningMoments(2, momentum=0.01)
    assert torch.equal(moments.std(), torch.zeros(2))
    moments.update(torch.tensor([[1.0, 2.0], [3.0, 6.0]]))
    assert torch.allclose(moments.std(), torch.tensor([1.0, 2.0]))
    assert torch.allclose(moments.centre(), torch.tensor([2.0, 4.0]))


def test_standardizer_makes_the_loss_scale_free():
    torch.manual_seed(0)
    z = {'a': torch.randn(64, 4), 'b': torch.randn(64, 4)}
    norm = LatentStandardizer(4, momentum=1.0).train()
    big = norm(z)
    small = LatentStandardizer(4, momentum=1.0).train()({k: v * 1e-3 for k, v in z.items()})
    for key in z:
        assert torch.allclose(big[key], small[key], rtol=5e-3, atol=1e-3)
    # shared statistics: a constant offset between the tasks survives the normalisation
    shifted = LatentStandardizer(4, momentum=1.0).train()({'a': z['a'], 'b': z['a'] + 5.0})
    assert (shifted['b'] - shifted['a']).abs().min() > 1.0


def test_collapse_monitor_warns_once_the_latent_shrinks(caplog):
    torch.manual_seed(0)
    monitor = CollapseMonitor(['track', 'map'], embed_dim=4, latent_dim=4, ratio=0.1, warmup=5, warn_interval=1000,
                              momentum=0.5)
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING):
            for step in range(30):
                scale = 1.0 if step < 10 else 1e-4
                out = monitor.update({t: torch.randn(8, 4) for t in ('track', 'map')},
                                     {'track': torch.randn(8, 4) * scale, 'map': torch.randn(8, 4)})
    finally:
        logger.removeHandler(caplog.handler)
    assert float(out['track_latent_std']) < 0.01 < float(out['map_latent_std'])
    warnings = [r.getMessage() for r in caplog.records if 'collapses' in r.getMessage()]
    assert len(warnings) == 1 and 'track latent' in warnings[0]


@pytest.mark.parametrize('output', ['full', 'half'])
def test_volume_log_det_is_the_full_stack_log_det(output):
    torch.manual_seed(0)
    stack = AffineCouplingStack(8, num_layers=3, hidden_dims=(16, ), output=output)
    for p in stack.parameters():
        torch.nn.init.normal_(p, std=0.3)
    full = AffineCouplingStack(8, num_layers=3, hidden_dims=(16, ), output='full')
    full.load_state_dict(stack.state_dict())
    x = torch.randn(5, 8, dtype=torch.float64)
    stack.double(), full.double()
    jac = torch.stack([torch.autograd.functional.jacobian(lambda v: full(v[None])[0], row) for row in x])
    assert torch.allclose(stack.volume_log_det(x), torch.linalg.slogdet(jac)[1], atol=1e-8)
