"""vtsnn.layers: time folding and the channel concatenation of the U-Net's skips."""

from __future__ import annotations

import pytest
import torch

from vtsnn.layers import cat_channels, fold_time, unfold_time


def test_fold_and_unfold_are_inverse_views():
    x = torch.randn(8, 3, 2, 5, 5)
    folded = fold_time(x)
    assert folded.shape == (24, 2, 5, 5) and folded.data_ptr() == x.data_ptr()
    assert torch.equal(unfold_time(folded, 8), x)


@pytest.mark.parametrize("channels_last", [False, True])
def test_cat_channels_matches_torch_cat_and_hands_back_compact_gradients(channels_last):
    layout = torch.channels_last if channels_last else torch.contiguous_format
    maps = [fold_time(torch.randn(4, 3, c, 6, 6)).contiguous(memory_format=layout) for c in (2, 5)]
    leaves = [unfold_time(m, 4).detach().requires_grad_() for m in maps]
    reference = [leaf.detach().clone().requires_grad_() for leaf in leaves]
    weight = torch.randn(4, 3, 7, 6, 6)

    ours = cat_channels(leaves)
    expected = torch.cat(reference, dim=2)
    assert torch.equal(ours, expected)
    (ours * weight).sum().backward()
    (expected * weight).sum().backward()
    for leaf, ref in zip(leaves, reference):
        assert torch.equal(leaf.grad, ref.grad)
        folded = fold_time(leaf.grad)
        assert folded.is_contiguous(memory_format=layout)


def test_cat_channels_skips_inputs_without_gradient():
    a = torch.randn(2, 1, 3, 4, 4, requires_grad=True)
    b = torch.randn(2, 1, 2, 4, 4)
    cat_channels([a, b]).sum().backward()
    assert torch.equal(a.grad, torch.ones_like(a))
