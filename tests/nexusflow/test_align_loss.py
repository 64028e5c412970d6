"""align_loss: exact values, pairwise == N * center, zero iff aligned, reductions and weights."""
import pytest
import torch

from projects.nexusflow.models.nexusflow import align_loss, center_align, mean_pair_distance, pairwise_align


def test_exact_values_two_tasks():
    z1 = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    z2 = torch.tensor([[3.0, 4.0], [1.0, 1.0]])
    assert torch.equal(pairwise_align([z1, z2]), torch.tensor([25.0, 0.0]))  # ||z_map - z_track||^2 per sample
    assert torch.equal(center_align([z1, z2]), torch.tensor([12.5, 0.0]))
    assert align_loss([z1, z2], 'pairwise').item() == 12.5  # batch mean
    assert align_loss([z1, z2], 'center', reduction='sum').item() == 12.5
    assert mean_pair_distance([z1, z2]).item() == 2.5


def test_exact_values_three_tasks():
    z = [torch.tensor([[0.0]]), torch.tensor([[3.0]]), torch.tensor([[6.0]])]
    assert pairwise_align(z).item() == 9.0 + 36.0 + 9.0
    assert center_align(z).item() == 9.0 + 0.0 + 9.0


@pytest.mark.parametrize('num_tasks', [2, 3, 5, 8])
def test_pairwise_equals_n_times_center(num_tasks):
    gen = torch.Generator().manual_seed(num_tasks)
    latents = [torch.randn(7, 16, generator=gen, dtype=torch.float64) for _ in range(num_tasks)]
    pairwise, center = pairwise_align(latents), center_align(latents)
    assert torch.allclose(pairwise, num_tasks * center, rtol=1e-12, atol=0)
    assert torch.allclose(align_loss(latents, 'pairwise'), num_tasks * align_loss(latents, 'center'), rtol=1e-12)


def test_center_is_zero_exactly_when_all_latents_agree():
    z = torch.randn(4, 32)
    assert torch.equal(center_align([z, z.clone(), z.clone()]), torch.zeros(4))
    moved = z.clone()
    moved[2, 5] += 1e-3
    per_sample = center_align([z, z.clone(), moved])
    assert torch.equal(per_sample[[0, 1, 3]], torch.zeros(3))
    assert per_sample[2] > 0


def test_center_gradient_is_twice_the_offset_from_the_mean():
    latents = [torch.randn(3, 4, requires_grad=True) for _ in range(3)]
    center_align(latents).sum().backward()
    mean = torch.stack([z.detach() for z in latents]).mean(0)
    for z in latents:
        assert torch.allclose(z.grad, 2 * (z.detach() - mean), atol=1e-6)


def test_reductions_weights_and_avg_factor():
    z1, z2 = torch.zeros(3, 1), torch.tensor([[1.0], [2.0], [3.0]])
    per_sample = align_loss([z1, z2], 'pairwise', reduction='none')
    assert torch.equal(per_sample, torch.tensor([1.0, 4.0, 9.0]))
    weight = torch.tensor([1.0, 0.0, 0.5])
    assert align_loss([z1, z2], 'pairwise', 'sum', weight=weight).item() == 1.0 + 4.5
    assert align_loss([z1, z2], 'pairwise', 'mean', weight=weight).item() == pytest.approx(5.5 / 3)
    assert align_loss([z1, z2], 'pairwise', 'mean', weight=weight, avg_factor=1.5).item() == pytest.approx(5.5 / 1.5)


def test_half_precision_is_summed_in_float32():
    z1 = torch.full((2, 300), 0.0, dtype=torch.float16)
    z2 = torch.full((2, 300), 16.0, dtype=torch.float16)  # 300 * 256 = 76800 > fp16 max 65504
    loss = align_loss([z1, z2], 'pairwise')
    assert loss.dtype == torch.float32 and loss.item() == 76800.0


def test_invalid_inputs():
    z = torch.zeros(2, 4)
    with pytest.raises(ValueError, match='at least 2'):
        align_loss([z])
    with pytest.raises(ValueError, match='same B and D'):
        align_loss([z, torch.zeros(2, 5)])
    with pytest.raises(ValueError, match='mode'):
        align_loss([z, z], mode='l1')
    with pytest.raises(ValueError, match='reduction'):
        align_loss([z, z], reduction='avg')
    with pytest.raises(ValueError, match='per-sample shape'):
        align_loss([z, z], weight=torch.ones(3))
