"""Running moments, the collapse monitor (spread at fixed parameters) and the 'running' latent norm of NexusFlow."""
import logging

import pytest
import torch

from projects.nexusflow.core.tap_adapters import TapOutput
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


class Shift(torch.nn.Module):
    """A stand-in aggregator or flow: mean over the tap's set (aggregator) or identity, times ``scale``, plus
    ``offset``; both are changed by the tests between updates like an optimiser step would."""

    def __init__(self, aggregate=True):
        super().__init__()
        self.aggregate, self.scale, self.offset = aggregate, 1.0, 0.0

    def forward(self, x):
        x = x.features.mean(1) if self.aggregate else x
        return x * self.scale + self.offset


def taps_of(batch_size=1, dim=4):
    return {t: TapOutput(torch.randn(batch_size, 3, dim), torch.rand(batch_size, 3, 2)) for t in ('track', 'map')}


def modules():
    return (torch.nn.ModuleDict({t: Shift() for t in ('track', 'map')}),
            torch.nn.ModuleDict({t: Shift(aggregate=False) for t in ('track', 'map')}))


def test_collapse_monitor_measures_the_spread_of_the_current_map_not_its_drift():
    torch.manual_seed(0)
    aggregators, flows = modules()
    monitor = CollapseMonitor(['track', 'map'], queue_size=16)
    ema = RunningMoments(4, momentum=0.05)
    for step in range(40):
        taps = taps_of()
        flows['track'].offset = 0.5 * step  # the map drifts by 0.5 per step, its spread stays the same
        z = flows['track'](aggregators['track'](taps['track']))
        ema.update(z)
        out = monitor.update(taps, {t: z for t in ('track', 'map')}, aggregators, flows)
    # spread of a mean over 3 standard normals: 1 / sqrt(3)
    assert abs(float(out['track_latent_std']) - 3 ** -0.5) < 0.15
    assert float(ema.std().mean()) > 5 * 3 ** -0.5, 'values as computed carry the drift'
    assert abs(float(out['track_embed_std']) - float(out['track_latent_std'])) < 1e-5, 'the flow only shifts'


def test_collapse_monitor_starts_with_two_samples_and_warns_once_the_latent_shrinks(caplog):
    torch.manual_seed(0)
    aggregators, flows = modules()
    monitor = CollapseMonitor(['track', 'map'], ratio=0.1, queue_size=4, interval=1, warn_interval=1000)
    first = monitor.update(taps_of(), {t: torch.ones(1, 4) for t in ('track', 'map')}, aggregators, flows)
    assert set(first) == {'track_latent_norm', 'map_latent_norm'}, 'no std from a single sample'
    assert float(first['track_latent_norm']) == 2.0
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING):
            for step in range(30):
                flows['track'].scale = 1.0 if step < 10 else 1e-4
                out = monitor.update(taps_of(), {t: torch.ones(1, 4) for t in ('track', 'map')}, aggregators, flows)
                if step == 5:
                    assert float(monitor.reference[0]) > 0.3, 'the reference is taken once the queue is full'
    finally:
        logger.removeHandler(caplog.handler)
    assert float(out['track_latent_std']) < 0.01 < float(out['map_latent_std'])
    assert float(out['track_embed_std']) > 0.3, 'the embedding did not shrink'
    warnings = [r.getMessage() for r in caplog.records if 'collapses' in r.getMessage()]
    assert len(warnings) == 1 and 'track latent' in warnings[0]


def test_collapse_monitor_measures_every_interval_updates_and_repeats_the_last_measurement():
    torch.manual_seed(0)
    aggregators, flows = modules()
    passes = []
    aggregators['track'].register_forward_hook(lambda module, args, output: passes.append(args[0].features.shape[0]))
    monitor = CollapseMonitor(['track', 'map'], queue_size=4, interval=5)
    outs = []
    for step in range(12):
        flows['track'].scale = 1.0 if step < 10 else 0.5
        outs.append(monitor.update(taps_of(), {t: torch.ones(1, 4) for t in ('track', 'map')}, aggregators, flows))
    # update 1 holds one sample, too few for a std: update 2 measures the first time, then updates 6 and 11
    assert passes == [2, 4, 4], 'the queue is re-encoded at updates 2, 6 and 11 only, as one batch of its samples'
    assert 'track_latent_std' not in outs[0]
    assert all(out['track_latent_std'] == outs[1]['track_latent_std'] for out in outs[2:5])
    assert all(out['track_latent_std'] == outs[5]['track_latent_std'] for out in outs[6:10])
    assert torch.allclose(outs[10]['track_latent_std'], 0.5 * outs[10]['track_embed_std'])
    assert float(monitor.reference[0]) == float(outs[5]['track_latent_std']), 'first measurement with a full queue'
    with pytest.raises(ValueError, match='interval >= 1'):
        CollapseMonitor(['track'], interval=0)


def test_collapse_monitor_resumed_keeps_its_schedule_and_measures_once_two_samples_are_queued():
    torch.manual_seed(0)
    aggregators, flows = modules()
    latents = {t: torch.ones(2, 4) for t in ('track', 'map')}
    trained = CollapseMonitor(['track', 'map'], queue_size=4, interval=5)
    for _ in range(7):
        trained.update(taps_of(2), latents, aggregators, flows)
    passes = []
    aggregators['track'].register_forward_hook(lambda module, args, output: passes.append(args[0].features.shape[0]))
    resumed = CollapseMonitor(['track', 'map'], queue_size=4, interval=5)
    resumed.update(taps_of(2), latents, aggregators, flows)  # built and used before the checkpoint is loaded
    resumed.load_state_dict(trained.state_dict())
    passes.clear()
    outs = [resumed.update(taps_of(2), latents, aggregators, flows) for _ in range(5)]
    assert int(resumed.steps) == 12
    # update 8 of the run: the load emptied the queue, its 2 new samples are measured at once (the std keys never go
    # missing), then update 11 of the schedule (4 batches of 2); the reference of the run is kept
    assert passes == [2, 8]
    assert all('track_latent_std' in out for out in outs)
    assert float(resumed.reference[0]) == float(trained.reference[0]) > 0


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
