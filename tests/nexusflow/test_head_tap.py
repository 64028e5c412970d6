"""The head-tap contract: plug-ins request keys from a head's PredictionTap at build time; heads compute on-request
keys only then; bad requests fail when the model is built."""
import pytest
import torch
from torch import nn

from projects.nexusflow.core import PredictionTap, PredictionTapAdapter, TapPlugin


class Head(nn.Module):
    """Always passes ``logits``; computes the costly ``semantic`` only on request (counted in ``passes``)."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 3)
        self.pred_tap = PredictionTap(fields=('logits', ), on_request=('semantic', ))
        self.passes = 0

    def forward(self, x):
        logits = self.linear(x)
        preds = dict(logits=logits)
        if self.pred_tap.requested('semantic'):
            self.passes += 1
            preds['semantic'] = logits.sigmoid()
        self.pred_tap(preds)
        return logits


class Host(nn.Module):

    def __init__(self):
        super().__init__()
        self.head = Head()
        self.other = nn.Linear(2, 2)

    def forward(self, x):
        return self.head(x) + self.other(x).sum(-1, keepdim=True)


class Reader(TapPlugin):

    def loss(self, data_samples=None):
        return {}


def reader(keys, module='head.pred_tap'):
    return Reader(taps=dict(pred=dict(module=module, kind='NexusFlowPredictionTapAdapter', keys=keys)))


def test_on_request_keys_are_computed_only_while_requested_and_outputs_do_not_change():
    torch.manual_seed(0)
    host, x = Host(), torch.randn(4, 2)
    before = host(x)
    assert host.head.passes == 0
    plugin = reader(('logits', 'semantic'))
    plugin.attach(host)
    assert host.head.pred_tap.requested('semantic')
    assert torch.equal(host(x), before) and host.head.passes == 1
    torch.testing.assert_close(plugin.tap('pred')['semantic'], host.head.linear(x).sigmoid())
    plugin.detach()
    assert not host.head.pred_tap.requested('semantic')
    host(x)
    assert host.head.passes == 1


def test_a_plugin_reading_only_fields_requests_nothing_costly():
    host = Host()
    plugin = reader(('logits', ))
    plugin.attach(host)
    host(torch.randn(1, 2))
    assert host.head.passes == 0 and set(plugin.tap('pred')) == {'logits'}


def test_two_readers_keep_the_request_until_both_detach():
    host = Host()
    first, second = reader(('semantic', )), reader(('semantic', ))
    first.attach(host), second.attach(host)
    first.detach()
    assert host.head.pred_tap.requested('semantic')
    second.detach()
    assert not host.head.pred_tap.requested('semantic')


def test_bad_requests_fail_at_attach_and_leave_no_hook_behind():
    host = Host()
    with pytest.raises(KeyError, match=r"offers no \['boxes'\].*\['logits'\].*\['semantic'\]"):
        reader(('semantic', 'boxes')).attach(host)
    with pytest.raises(TypeError, match=r'PredictionTap\), got a Linear'):
        reader(('logits', ), module='other').attach(host)
    assert not host.head.pred_tap.requested('semantic')
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in host.modules())


def test_adapter_checks_the_dict():
    adapter = PredictionTapAdapter(keys=('semantic', ))
    preds = dict(semantic=torch.zeros(1))
    assert adapter(preds) is preds
    with pytest.raises(KeyError, match='semantic'):
        adapter(dict(other=1))
    with pytest.raises(TypeError, match='pred_tap'):
        adapter(torch.zeros(1))
