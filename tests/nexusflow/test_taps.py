"""TapPlugin and tap adapters: read-only hooks, latest call wins, no stale graphs, clear errors."""
import copy
import gc
import weakref

import pytest
import torch
from torch import nn

from mmdet3d.registry import TASK_UTILS
from projects.nexusflow.core import TapOutput, TapPlugin, build_tap_adapter
from projects.nexusflow.core.tap_adapters import BaseTapAdapter

B, H, W, C, L, NQ = 2, 3, 4, 8, 2, 5


class Decoder(nn.Module):
    """Stand-in track decoder: ``(states [L, B, Nq, C], references [L, B, Nq, 3] in [0, 1])``."""

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(C, C) for _ in range(L))
        self.ref = nn.Linear(C, 3)

    def forward(self, query):
        states = []
        for layer in self.layers:
            query = torch.relu(layer(query))
            states.append(query)
        states = torch.stack(states)
        return states, self.ref(states).sigmoid()


class Host(nn.Module):
    """BEV encoder -> track decoder run once per frame -> a head; the tapped outputs are not the host output."""

    def __init__(self):
        super().__init__()
        self.bev_encoder = nn.Linear(C, C)
        self.track_head = nn.Module()
        self.track_head.decoder = Decoder()
        self.head = nn.Linear(C, 1)

    def forward(self, x, num_frames=2, run_track=True):
        out = 0
        for frame in range(num_frames):
            bev = self.bev_encoder(x + frame)
            out = out + self.head(bev).sum()
            if run_track:
                states, _ = self.track_head.decoder(bev[:, :NQ])
                out = out + self.head(states[-1]).sum()
        return out


class Probe(TapPlugin):
    """Minimal plug-in: the loss is the sum of the tapped features."""

    def loss(self, data_samples=None):
        loss = sum(self.tap(name).features.sum() for name in self.tap_names)
        self.clear()
        return {'loss_probe': loss}


def make(**extra_taps):
    torch.manual_seed(0)
    host = Host()
    taps = dict(bev=dict(module='bev_encoder', kind='bev', bev_shape=(H, W)),
                track=dict(module='track_head.decoder', kind='queries'), **extra_taps)
    return host, Probe(taps)


def test_host_outputs_and_grads_bit_identical_with_plugin():
    host, probe = make()
    x = torch.randn(B, H * W, C)
    ref_out = host(x)
    ref_out.backward()
    ref_grads = [None if p.grad is None else p.grad.clone() for p in host.parameters()]
    host.zero_grad()
    probe.attach(host)
    out = host(x)
    out.backward()
    assert torch.equal(out, ref_out)
    assert all((p.grad is None and g is None) or torch.equal(p.grad, g)
               for p, g in zip(host.parameters(), ref_grads))


def test_latest_call_wins_and_graph_is_kept():
    host, probe = make()
    probe.attach(host)
    x = torch.randn(B, H * W, C)
    host(x, num_frames=3)
    bev = probe.tap('bev')
    assert torch.equal(bev.features, host.bev_encoder(x + 2))  # the third (last) frame
    assert bev.features.requires_grad and bev.spatial_shape == (H, W)
    probe.loss()['loss_probe'].backward()
    assert host.bev_encoder.weight.grad.abs().sum() > 0
    assert host.track_head.decoder.layers[0].weight.grad.abs().sum() > 0


def test_no_stale_graph_across_forwards():
    host, probe = make()
    probe.attach(host)
    host(torch.randn(B, H * W, C))
    first = weakref.ref(probe._records['bev_encoder'])
    host(torch.randn(B, H * W, C))
    gc.collect()
    assert first() is None, 'the second forward must release the first forward tensors'
    second = weakref.ref(probe._records['bev_encoder'])
    probe.loss()
    gc.collect()
    assert second() is None and probe._records == {}, 'loss() must release the stored outputs'


def test_typo_lists_closest_names():
    host, _ = make()
    probe = Probe(dict(track=dict(module='track_head.decodr', kind='queries')))
    with pytest.raises(KeyError, match=r"track_head\.decodr.*closest names: \['track_head\.decoder'"):
        probe.attach(host)


def test_tap_that_did_not_fire_and_unattached():
    host, probe = make()
    with pytest.raises(RuntimeError, match='not attached'):
        probe.tap('bev')
    probe.attach(host)
    host(torch.randn(B, H * W, C))
    host(torch.randn(B, H * W, C), run_track=False)  # e.g. the track head disabled for this batch
    assert probe.tap('bev').features.shape == (B, H * W, C)
    with pytest.raises(RuntimeError, match=r"tap 'track' \(module 'track_head.decoder'\) did not fire.*\['bev'\]"):
        probe.tap('track')
    with pytest.raises(KeyError, match='unknown tap'):
        probe.tap('map')


def test_detach_removes_every_hook():
    host, probe = make()
    probe.attach(host)
    with pytest.raises(RuntimeError, match='already attached'):
        probe.attach(host)
    probe.detach()
    assert not probe.is_attached
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in host.modules())
    host(torch.randn(B, H * W, C))
    assert probe._records == {}


def test_deepcopy_of_the_host_writes_into_the_copied_plugin():
    host, probe = make()
    host.plugin = probe
    probe.attach(host)
    twin = copy.deepcopy(host)
    twin(torch.randn(B, H * W, C))
    assert 'bev_encoder' in twin.plugin._records and probe._records == {}


def test_bev_adapter_positions_and_shape_check():
    _, adapter = build_tap_adapter(dict(module='m', kind='bev', bev_shape=(2, 3)))
    raw = torch.arange(2 * 6 * 1, dtype=torch.float32).view(2, 6, 1)
    tap = adapter(raw)
    expected = torch.tensor([[1 / 6, 0.25], [0.5, 0.25], [5 / 6, 0.25], [1 / 6, 0.75], [0.5, 0.75], [5 / 6, 0.75]])
    assert torch.allclose(tap.positions[1], expected) and tap.spatial_shape == (2, 3)
    assert tap.features is raw and tap.padding_mask is None
    with pytest.raises(ValueError, match=r'2\*3=6 BEV cells.*\(2, 5, 1\)'):
        adapter(torch.zeros(2, 5, 1))


def test_feature_map_adapter_is_row_major():
    _, adapter = build_tap_adapter(dict(module='m', kind='feature_map'))
    fmap = torch.randn(2, 4, 3, 5)
    tap = adapter(fmap)
    assert tap.features.shape == (2, 15, 4) and tap.spatial_shape == (3, 5)
    assert torch.equal(tap.features[1, 2 * 5 + 4], fmap[1, :, 2, 4])
    assert torch.allclose(tap.positions[0, 2 * 5 + 4], torch.tensor([0.9, 5 / 6]))


def test_query_adapter_layer_and_index():
    states, refs = torch.randn(3, 2, 4, 8), torch.rand(3, 2, 4, 3)
    _, adapter = build_tap_adapter(dict(module='m', kind='queries'))
    tap = adapter((states, refs))
    assert torch.equal(tap.features, states[-1]) and torch.equal(tap.positions, refs[-1][..., :2])
    assert tap.spatial_shape is None
    _, first = build_tap_adapter(dict(module='m', kind='queries', layer=0, index=1))
    assert torch.equal(first(('other', (states, refs))).features, states[0])
    with pytest.raises(TypeError, match='states, references'):
        adapter(states)
    with pytest.raises(ValueError, match='layer 5 out of range'):
        build_tap_adapter(dict(module='m', kind='queries', layer=5))[1]((states, refs))


def test_custom_registered_kind_and_unknown_kind():
    @TASK_UTILS.register_module(name='MeanTokenTapAdapterForTest', force=True)
    class MeanToken(BaseTapAdapter):
        def adapt(self, raw):
            feats = raw.mean(dim=1, keepdim=True)
            return TapOutput(feats, feats.new_full((feats.shape[0], 1, 2), 0.5))

    _, adapter = build_tap_adapter(dict(module='m', kind='MeanTokenTapAdapterForTest'))
    assert torch.equal(adapter(torch.ones(2, 7, 3)).features, torch.ones(2, 1, 3))
    with pytest.raises(KeyError, match="unknown tap kind 'voxels'"):
        build_tap_adapter(dict(module='m', kind='voxels'))
    with pytest.raises(ValueError, match='tap spec'):
        build_tap_adapter(dict(kind='bev'))
