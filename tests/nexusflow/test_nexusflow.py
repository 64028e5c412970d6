"""NexusFlow end to end on stand-in modules named like the real taps (contract shapes), 3 tasks, training."""
import pytest
import torch
from torch import nn

from mmdet3d.registry import MODELS
from projects.nexusflow.analysis.mmd import mmd
from projects.nexusflow.models.nexusflow import AffineCouplingStack, MLPStack, align_loss

B, C, BEV_H, BEV_W, NQ, L, D = 2, 16, 4, 5, 7, 3, 8


class StandInDecoder(nn.Module):
    """``(states [L, B, Nq, C], references [L, B, Nq, 3] in [0, 1])`` like ``track_head.decoder``."""

    def __init__(self):
        super().__init__()
        self.query = nn.Parameter(torch.randn(NQ, C))
        self.layers = nn.ModuleList(nn.Linear(C, C) for _ in range(L))
        self.ref = nn.Linear(C, 3)

    def forward(self, bev):
        query = self.query.expand(bev.shape[0], -1, -1) + bev.mean(1, keepdim=True)
        states = []
        for layer in self.layers:
            query = torch.relu(layer(query)) + query
            states.append(query)
        states = torch.stack(states)
        return states, self.ref(states).sigmoid()


class StandInUniAD(nn.Module):
    """bev_encoder [B, HW, C] per frame -> track decoder per frame; map encoder and a CNN neck on the last BEV."""

    def __init__(self):
        super().__init__()
        self.bev_encoder = nn.Linear(3, C)
        self.track_head = nn.Module()
        self.track_head.decoder = StandInDecoder()
        self.map_head = nn.Module()
        self.map_head.transformer = nn.Module()
        self.map_head.transformer.encoder = nn.Sequential(nn.Linear(C, C), nn.ReLU())
        self.seg_head = nn.Module()
        self.seg_head.neck = nn.Conv2d(C, C, 3, padding=1)

    def forward(self, frames, run_map=True):
        """frames: [B, Q, HW, 3]; returns the heads' outputs of the last frame."""
        for q in range(frames.shape[1]):
            bev = self.bev_encoder(frames[:, q])
            states, refs = self.track_head.decoder(bev)
        out = dict(states=states, refs=refs)
        if run_map:
            out['memory'] = self.map_head.transformer.encoder(bev)
        out['seg'] = self.seg_head.neck(bev.transpose(1, 2).reshape(-1, C, BEV_H, BEV_W))
        return out


def tasks_cfg():
    return dict(
        track=dict(tap=dict(module='track_head.decoder', kind='queries'),
                   aggregator=dict(type='NexusFlowQuerySetAggregator', in_channels=C, num_queries=4, num_heads=2)),
        map=dict(tap=dict(module='map_head.transformer.encoder', kind='bev', bev_shape=(BEV_H, BEV_W)),
                 aggregator=dict(type='NexusFlowDeformableAggregator', in_channels=C, num_queries=4, num_heads=2,
                                 num_points=2)),
        seg=dict(tap=dict(module='seg_head.neck', kind='feature_map'),
                 aggregator=dict(type='NexusFlowMLPAggregator', in_channels=C, depth=3)))


def build(**kwargs):
    cfg = dict(type='NexusFlow', tasks=tasks_cfg(), latent_dim=D, coupling=dict(num_layers=2, hidden_dims=(16, )))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def frames(batch_size=B, seed=0):
    return torch.randn(batch_size, 2, BEV_H * BEV_W, 3, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize('batch_size', [1, 2])
def test_three_tasks_end_to_end(batch_size):
    torch.manual_seed(0)
    host = StandInUniAD()
    plugin = build()
    plugin.attach(host)
    host(frames(batch_size))
    losses = plugin.loss([[None]] * batch_size)
    # the stds need two samples: from the first batch of two, from the second batch of one
    kinds = ('embed_std', 'latent_std', 'latent_norm', 'logdet') if batch_size > 1 else ('latent_norm', 'logdet')
    diag = {f'diag/{t}_{k}' for t in ('track', 'map', 'seg') for k in kinds}
    assert set(losses) == {'loss_align', 'latent_dist', 'embed_dist'} | diag
    assert not any('loss' in key for key in diag), 'diagnostics must not be summed into the loss'
    assert losses['loss_align'].dim() == 0 and losses['loss_align'] > 0
    assert not losses['latent_dist'].requires_grad
    latents = plugin.latents()
    assert list(latents) == ['track', 'map', 'seg'] and all(z.shape == (batch_size, D) for z in latents.values())
    expected = align_loss(list(latents.values()), 'center')
    assert torch.allclose(losses['loss_align'], expected)
    losses['loss_align'].backward()
    for module in (host.track_head.decoder.layers[-1], host.map_head.transformer.encoder[0], host.seg_head.neck,
                   host.bev_encoder):
        assert module.weight.grad is not None and module.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in plugin.parameters()), 'no unused plug-in parameters (DDP)'


def test_baseline_bit_identical_and_rng_untouched():
    torch.manual_seed(0)
    host = StandInUniAD()
    x = frames()
    reference = host(x)
    state = torch.get_rng_state()
    plugin = build()
    assert torch.equal(torch.get_rng_state(), state), 'building the plug-in must not consume the global RNG'
    plugin.attach(host)
    with_plugin = host(x)
    plugin.loss(None)
    assert all(torch.equal(reference[k], with_plugin[k]) for k in reference)
    assert all(torch.equal(a, b) for a, b in zip(build().parameters(), plugin.parameters()))


def test_loss_weight_modes_and_variants():
    torch.manual_seed(0)
    host = StandInUniAD()
    x = frames()
    values = {}
    for name, kwargs in dict(center=dict(), pairwise=dict(align_loss='pairwise'),
                             weighted=dict(loss_weight=2.5)).items():
        plugin = build(**kwargs)
        plugin.attach(host)
        host(x)
        values[name] = plugin.loss(None)['loss_align']
        plugin.detach()
    assert torch.allclose(values['pairwise'], 3 * values['center'])
    assert torch.allclose(values['weighted'], 2.5 * values['center'])
    assert all(isinstance(f, MLPStack) for f in build(invertible=False).flows.values())
    half = build(coupling=dict(num_layers=2, hidden_dims=(16, ), output='half'))
    assert all(isinstance(f, AffineCouplingStack) and f.out_dim == D // 2 for f in half.flows.values())


def test_encode_after_predict_for_analysis():
    torch.manual_seed(0)
    host = StandInUniAD().eval()
    plugin = build()
    plugin.attach(host)
    with torch.no_grad():
        host(frames())
        latents = plugin.encode()
    assert all(z.shape == (B, D) and not z.requires_grad for z in latents.values())
    assert all(torch.equal(latents[k], v) for k, v in plugin.latents().items())


def test_clear_errors():
    torch.manual_seed(0)
    host = StandInUniAD()
    plugin = build()
    plugin.attach(host)
    host(frames(), run_map=False)
    with pytest.raises(RuntimeError, match=r"tap 'map' \(module 'map_head.transformer.encoder'\) did not fire"):
        plugin.loss(None)
    with pytest.raises(ValueError, match='at least 2 tasks'):
        build(tasks=dict(track=tasks_cfg()['track']))
    with pytest.raises(ValueError, match='out_dim must equal latent_dim'):
        cfg = tasks_cfg()
        cfg['seg']['aggregator']['out_dim'] = 4
        build(tasks=cfg)
    with pytest.raises(ValueError, match='align_loss'):
        build(align_loss='l1')
    with pytest.raises(KeyError, match='closest names'):
        cfg = tasks_cfg()
        cfg['map']['tap']['module'] = 'map_head.transformer.encodr'
        build(tasks=cfg).attach(host)


class TwoCityData:
    """Scene codes shared by two "cities"; each task sees them through its own map plus a city-specific shift."""

    def __init__(self, num=128, code_dim=4, seed=1):
        gen = torch.Generator().manual_seed(seed)
        self.code = torch.randn(num, code_dim, generator=gen)
        self.city = torch.arange(num) % 2
        map_proj, track_proj = torch.randn(code_dim, C, generator=gen), torch.randn(code_dim, C, generator=gen)
        cells, queries = torch.randn(BEV_H * BEV_W, C, generator=gen), torch.randn(NQ, C, generator=gen)
        shift = self.city[:, None, None].float()
        self.bev = torch.tanh(0.5 * cells + (self.code @ map_proj)[:, None] + shift * torch.randn(C, generator=gen))
        self.queries = torch.tanh(0.5 * queries + (self.code @ track_proj)[:, None]
                                  + shift * torch.randn(C, generator=gen))
        self.refs = torch.rand(num, NQ, 3, generator=gen)


class FeatureHost(nn.Module):
    """Taps fixed stand-in features through identity modules named like the real ones."""

    def __init__(self):
        super().__init__()
        self.track_head = nn.Module()
        self.track_head.decoder = nn.Identity()
        self.map_head = nn.Module()
        self.map_head.transformer = nn.Module()
        self.map_head.transformer.encoder = nn.Identity()

    def forward(self, bev, queries, refs):
        self.map_head.transformer.encoder(bev)
        self.track_head.decoder((queries.unsqueeze(0), refs.unsqueeze(0)))


def probe_r2(latents, code):
    """R^2 of a least-squares linear probe latents -> code (information kept, no collapse)."""
    x = torch.cat([latents, torch.ones(len(latents), 1)], 1).double()
    fit = x @ torch.linalg.lstsq(x, code.double()).solution
    return 1 - float(((fit - code) ** 2).sum() / ((code - code.mean(0)) ** 2).sum())


def evaluate(plugin, host, data):
    with torch.no_grad():
        host(data.bev, data.queries, data.refs)
        z = plugin.encode()
    plugin.clear()
    return dict(align=float(align_loss([z['track'], z['map']])),
                mmd=mmd(z['map'][data.city == 0], z['track'][data.city == 1]),
                r2=min(probe_r2(z['map'], data.code), probe_r2(z['track'], data.code)))


def test_training_aligns_two_cities():
    """Map labels in city 0, track labels in city 1: the MMD of the paper is between those two latent sets."""
    data, host = TwoCityData(), FeatureHost()
    tasks = tasks_cfg()
    tasks.pop('seg')
    plugin = build(tasks=tasks, latent_dim=16, coupling=dict(num_layers=2, hidden_dims=(32, )))
    plugin.attach(host)
    before = evaluate(plugin, host, data)
    optimizer = torch.optim.Adam(plugin.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(80):
        idx = torch.randint(0, len(data.code), (32, ), generator=gen)
        host(data.bev[idx], data.queries[idx], data.refs[idx])
        loss = plugin.loss(None)['loss_align']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = evaluate(plugin, host, data)
    assert after['align'] < 0.05 * before['align']
    assert after['mmd'] < 0.25 * before['mmd']
    assert after['r2'] > 0.7, f'latents must keep the scene content, got R^2 {after["r2"]:.2f}'


def test_mmd_on_known_distributions():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(200, 4, generator=gen), torch.randn(200, 4, generator=gen)
    same = mmd(x, y)
    shifted = mmd(x, y + 0.5)
    far = mmd(x, y + 2.0)
    assert abs(same) < 0.01 and shifted > 0.03 and far > 5 * shifted
    assert mmd(x, y + 0.5) == pytest.approx(mmd(y + 0.5, x), abs=1e-12)
    assert mmd(x.numpy(), (y + 0.5).numpy()) == pytest.approx(shifted, abs=1e-12)


def test_mmd_exact_values():
    assert mmd([[0.0]], [[1.0]], bandwidth=1.0, unbiased=False) == pytest.approx(2 - 2 * torch.exp(
        torch.tensor(-0.5, dtype=torch.float64)).item(), abs=1e-12)
    x = torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, -1.0]])
    y = torch.tensor([[1.0, 1.0], [-1.0, 0.0]])
    mean_gap = float((x.mean(0) - y.mean(0)).pow(2).sum())
    assert mmd(x, y, kernel='linear', unbiased=False) == pytest.approx(mean_gap, abs=1e-9)
    both = mmd(x, y, bandwidth=[1.0, 3.0], unbiased=False)
    assert both == pytest.approx(mmd(x, y, bandwidth=1.0, unbiased=False) + mmd(x, y, bandwidth=3.0, unbiased=False))
    with pytest.raises(ValueError, match='same feature size'):
        mmd(x, torch.zeros(2, 3))
    with pytest.raises(ValueError, match='>= 2 points'):
        mmd(x, y[:1])
    with pytest.raises(ValueError, match='kernel'):
        mmd(x, y, kernel='rbf')
