"""The spread floor against alignment collapse: tap batching, warm-up, and a toy where the plain loss collapses."""
import pytest
import torch

from projects.nexusflow.core.tap_adapters import TapOutput, cat_taps
from projects.nexusflow.models.nexusflow.spread_floor import SpreadFloor

from test_nexusflow import FeatureHost, TwoCityData, build, evaluate, tasks_cfg


def test_cat_taps_pads_query_sets_and_keeps_dense_taps():
    a = TapOutput(torch.ones(1, 3, 4), torch.zeros(1, 3, 2))
    b = TapOutput(2 * torch.ones(2, 5, 4), torch.ones(2, 5, 2), torch.tensor([[False] * 4 + [True]] * 2))
    out = cat_taps([a, b])
    assert out.features.shape == (3, 5, 4) and out.positions.shape == (3, 5, 2)
    assert out.padding_mask.tolist() == [[False] * 3 + [True] * 2] + [[False] * 4 + [True]] * 2
    assert torch.equal(out.features[0, :3], a.features[0]) and out.features[0, 3:].abs().sum() == 0
    dense = TapOutput(torch.ones(1, 6, 4), torch.zeros(1, 6, 2), None, (2, 3))
    merged = cat_taps([dense, dense])
    assert merged.padding_mask is None and merged.spatial_shape == (2, 3) and merged.features.shape == (2, 6, 4)
    with pytest.raises(ValueError, match='spatial shapes'):
        cat_taps([dense, a])


class MeanLinear(torch.nn.Module):
    """A stand-in aggregator: mean over the tap's set, then a linear map without bias."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 4, bias=False)

    def forward(self, tap):
        return self.linear(tap.features.mean(1))


def test_floor_is_zero_in_warmup_then_pushes_a_shrunk_batch_outwards():
    torch.manual_seed(0)
    aggregators = torch.nn.ModuleDict({t: MeanLinear() for t in ('a', 'b')})
    flows = torch.nn.ModuleDict({t: torch.nn.Identity() for t in ('a', 'b')})
    floor = SpreadFloor(['a', 'b'], ratio=0.5, queue_size=4, warmup=3)

    def step(scale):
        taps = {t: TapOutput(scale * torch.randn(1, 3, 4), torch.rand(1, 3, 2)) for t in ('a', 'b')}
        f = {t: aggregators[t](taps[t]) for t in ('a', 'b')}
        return floor(taps, f, f, aggregators, flows)

    assert [float(step(1.0)) for _ in range(4)] == [0.0] * 4, 'empty queue, then 3 warm-up updates'
    assert float(floor.reference.min()) > 0
    for _ in range(4):
        loss = step(1e-3)
    assert float(loss) > 0, 'once the queue holds only shrunk samples the std falls under the floor'
    loss.backward()
    assert aggregators['a'].linear.weight.grad.abs().sum() > 0, 'the gradient reaches the aggregator'
    with pytest.raises(ValueError, match='ratio'):
        SpreadFloor(['a'], ratio=0.0)


def latent_std(plugin, host, data):
    with torch.no_grad():
        host(data.bev, data.queries, data.refs)
        z = plugin.encode()
    plugin.clear()
    return {t: float(v.std(0).pow(2).mean().sqrt()) for t, v in z.items()}


def train_one_sample_per_step(spread_floor, steps=300):
    """Two tasks whose features share a scene code (TwoCityData), trained on the alignment alone, batch size 1."""
    torch.manual_seed(0)
    data, host = TwoCityData(), FeatureHost()
    tasks = tasks_cfg()
    tasks.pop('seg')
    plugin = build(tasks=tasks, latent_dim=16, coupling=dict(num_layers=2, hidden_dims=(32, )),
                   spread_floor=spread_floor)
    plugin.attach(host)
    before = dict(evaluate(plugin, host, data), std=latent_std(plugin, host, data))
    optimizer = torch.optim.Adam(plugin.parameters(), lr=5e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(0, len(data.code), (1, ), generator=gen)
        host(data.bev[idx], data.queries[idx], data.refs[idx])
        losses = plugin.loss(None)
        loss = losses['loss_align'] + losses.get('loss_spread', 0.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return before, dict(evaluate(plugin, host, data), std=latent_std(plugin, host, data)), plugin


def test_floor_keeps_the_spread_that_the_plain_loss_gives_away():
    before, plain, _ = train_one_sample_per_step(None)
    _, floored, plugin = train_one_sample_per_step(dict(ratio=0.5, queue_size=8, warmup=10))
    for task in ('track', 'map'):
        assert plain['std'][task] < 0.25 * before['std'][task], 'the plain loss shrinks the latent (the collapse)'
        floor = 0.5 * float(plugin.spread_floor.reference[list(plugin.spread_floor.tasks).index(task), 1])
        assert floored['std'][task] > 0.8 * floor and floored['std'][task] > 2 * plain['std'][task]
    assert floored['align'] < 0.05 * before['align'], 'the tasks are still aligned'
    assert floored['mmd'] < 0.25 * before['mmd'] and floored['r2'] > 0.7
