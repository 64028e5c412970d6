"""AffineCouplingStack / MLPStack: exact inverse, log-det vs autograd, identity at init, the 'half' output."""
import pytest
import torch
from torch import nn

from projects.nexusflow.core.tap_adapters import TapOutput
from projects.nexusflow.models.nexusflow import AffineCouplingStack, MLPAggregator, MLPStack
from projects.nexusflow.models.nexusflow.coupling import coupling_partitions


def randomize_(stack: AffineCouplingStack, std: float, seed: int = 0) -> AffineCouplingStack:
    """Give the zero-initialised last layers of every s/t MLP random weights (the stack stops being identity)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in stack.layers:
            for net in (layer.scale_net, layer.shift_net):
                for p in net[-1].parameters():
                    p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * std)
    return stack


@pytest.mark.parametrize('dim,num_layers', [(8, 1), (8, 8), (32, 2), (64, 6), (128, 3), (256, 4), (256, 8)])
def test_inverse_roundtrip_fp32(dim, num_layers):
    torch.manual_seed(dim + num_layers)
    stack = randomize_(AffineCouplingStack(dim, num_layers, hidden_dims=(64, ), seed=3), std=0.05)
    x = torch.randn(16, dim)
    with torch.no_grad():
        z = stack(x)
        x_back = stack.inverse(z)
    assert (z - x).abs().max() > 0.1, 'the randomised stack must not be the identity'
    assert (x_back - x).abs().max() < 1e-5


def test_log_det_matches_autograd_jacobian_float64():
    torch.manual_seed(0)
    stack = randomize_(AffineCouplingStack(8, num_layers=4, hidden_dims=(16, 16), clamp=2.0, seed=1), std=0.5)
    stack = stack.double()
    x = torch.randn(5, 8, dtype=torch.float64)
    _, log_det = stack(x, return_log_det=True)
    for b in range(len(x)):
        jac = torch.autograd.functional.jacobian(lambda v: stack(v.unsqueeze(0))[0], x[b])
        sign, logabs = torch.linalg.slogdet(jac)
        assert sign.item() == 1.0  # exp(s) > 0 on the diagonal of each triangular block
        assert abs(logabs.item() - log_det[b].item()) < 1e-10
    assert torch.allclose(stack.log_det(x), log_det)
    assert log_det.abs().min() > 1e-3, 'non-trivial scales expected'


@pytest.mark.parametrize('output', ['full', 'half'])
def test_zero_init_is_identity(output):
    stack = AffineCouplingStack(16, num_layers=6, hidden_dims=(32, ), output=output, seed=0)
    x = torch.randn(4, 16)
    z = stack(x)
    if output == 'full':
        assert torch.equal(z, x)
        assert torch.equal(stack.log_det(x), torch.zeros(4))
        assert torch.equal(stack.inverse(x), x)
    else:
        assert torch.equal(z, x[:, stack.layers[-1].trans_index])
        assert z.shape == (4, 8) and stack.out_dim == 8


def test_gradients_flow():
    stack = AffineCouplingStack(16, num_layers=3, hidden_dims=(32, ), seed=0)
    x = torch.randn(6, 16, requires_grad=True)
    stack(x).pow(2).sum().backward()
    assert torch.allclose(x.grad, 2 * x.detach())  # identity at init
    last_layers = [p for layer in stack.layers for net in (layer.scale_net, layer.shift_net)
                   for p in net[-1].parameters()]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in last_layers)
    randomize_(stack, std=0.1)
    stack.zero_grad()
    stack(torch.randn(6, 16)).pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in stack.parameters())


def test_half_output_is_paper_eq1_for_one_layer():
    stack = randomize_(AffineCouplingStack(8, num_layers=1, hidden_dims=(16, ), clamp=2.0, output='half'), 0.7)
    x = torch.randn(3, 8)
    layer = stack.layers[0]
    f1, f2 = x[:, :4], x[:, 4:]
    s = 2.0 * torch.tanh(layer.scale_net(f1) / 2.0)
    expected = f2 * torch.exp(s) + layer.shift_net(f1)
    assert torch.allclose(stack(x), expected, atol=1e-6)
    with pytest.raises(ValueError, match="output='full'"):
        stack.inverse(torch.randn(3, 4))
    with pytest.raises(ValueError, match="output='full'"):
        stack.log_det(x)


def test_soft_clamp_bounds_the_scale():
    stack = randomize_(AffineCouplingStack(8, num_layers=2, hidden_dims=(16, ), clamp=0.5), std=100.0)
    log_det = stack.log_det(torch.randn(10, 8) * 10)
    assert log_det.abs().max() <= 2 * 4 * 0.5 + 1e-5
    assert log_det.abs().max() > 2 * 4 * 0.5 * 0.5  # saturating, not clipped to zero


def test_partitions_cover_every_dim_and_are_seeded():
    state = torch.get_rng_state()
    parts = coupling_partitions(16, 6, seed=5)
    assert torch.equal(torch.get_rng_state(), state), 'partitions must not use the global RNG'
    assert torch.equal(parts[0][0], torch.arange(8)) and torch.equal(parts[0][1], torch.arange(8, 16))
    for k in range(0, 6, 2):
        cond, trans = parts[k]
        assert torch.equal(torch.cat([cond, trans]).sort().values, torch.arange(16))
        assert torch.equal(parts[k + 1][0], trans) and torch.equal(parts[k + 1][1], cond)
    again = coupling_partitions(16, 6, seed=5)
    other = coupling_partitions(16, 6, seed=6)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(parts, again))
    assert any(not torch.equal(a[0], b[0]) for a, b in zip(parts, other))
    stack = AffineCouplingStack(16, num_layers=6, seed=5)
    assert 'layers.2.cond_index' in stack.state_dict(), 'partitions travel with checkpoints'


@pytest.mark.parametrize('output,out_dim', [('full', 16), ('half', 8)])
def test_mlp_stack_same_depth_and_width(output, out_dim):
    torch.manual_seed(0)
    mlp = MLPStack(16, num_layers=4, hidden_dims=(32, ), output=output)
    flow = AffineCouplingStack(16, num_layers=4, hidden_dims=(32, ), output=output)
    linears = [m for m in mlp.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 4 * 2
    x = torch.randn(5, 16)
    z = mlp(x)
    assert z.shape == (5, out_dim) == (5, flow.out_dim)
    assert not torch.allclose(z, flow(x))
    assert not hasattr(mlp, 'inverse')


@pytest.mark.parametrize('num_layers', [1, 6])
def test_mlp_stack_and_aggregator_keep_the_spread_of_their_input(num_layers):
    # PyTorch's default Linear init shrinks the spread ~6x per ReLU layer: 6 blocks mapped every input to one point
    torch.manual_seed(0)
    x = torch.randn(256, 64)
    z = MLPStack(64, num_layers=num_layers, hidden_dims=(64, ), output='half')(x)
    assert 0.3 < float(z.std(0).mean()) < 3.0
    tap = TapOutput(torch.randn(256, 1, 64), torch.rand(256, 1, 2))
    f = MLPAggregator(64, out_dim=64, depth=3)(tap)
    assert 0.3 < float(f.std(0).mean()) < 3.0


def test_invalid_arguments():
    with pytest.raises(ValueError, match='even'):
        AffineCouplingStack(7)
    with pytest.raises(ValueError, match='num_layers'):
        AffineCouplingStack(8, num_layers=0)
    with pytest.raises(ValueError, match='output'):
        MLPStack(8, output='second')
    with pytest.raises(ValueError, match=r'\[B, 8\]'):
        AffineCouplingStack(8)(torch.randn(2, 6))
