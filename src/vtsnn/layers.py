"""Time-folding wrappers: stateless layers run once on ``[T*B, ...]`` instead of T times.

Convolutions, pooling and up-sampling have no memory, so a spiking tensor
``[T, B, C, H, W]`` can be folded into a batch of ``T*B`` images, processed in one
call (one big convolution is far faster than T small ones) and unfolded again. Only
the neurons loop over T.
"""

from __future__ import annotations

import torch
from torch import nn


def fold_time(x: torch.Tensor) -> torch.Tensor:
    """``[T, B, ...]`` -> ``[T*B, ...]`` (a view, no copy, for contiguous input)."""
    return x.flatten(0, 1)


def unfold_time(x: torch.Tensor, steps: int) -> torch.Tensor:
    """``[T*B, ...]`` -> ``[T, B, ...]``."""
    return x.unflatten(0, (steps, x.shape[0] // steps))


class TimeFolded(nn.Module):
    """Apply a stateless module to every time step at once by folding time into the batch."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return unfold_time(self.module(fold_time(x)), x.shape[0])


def cat_channels(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate time-first feature maps ``[T, B, C, H, W]`` along channels.

    Done on the folded 4-D maps: ``torch.cat`` keeps a channels-last layout there, while
    on the 5-D views it returns a plain contiguous tensor, and the next convolution's
    backward then falls off oneDNN's fast path (3-4x slower in bf16).
    """
    steps = tensors[0].shape[0]
    return unfold_time(_ChannelCat.apply(*[fold_time(t) for t in tensors]), steps)


class _ChannelCat(torch.autograd.Function):
    """``torch.cat(dim=1)`` whose backward hands out compact gradients, not slices.

    In channels-last memory a channel slice of the gradient is strided (runs of C
    elements). The U-Net's skip maps also feed a max-pool, so autograd adds the two
    gradients, and PyTorch's add on such a slice is 4-5x slower than a copy to a
    compact tensor followed by the add. Same values, bit for bit.
    """

    @staticmethod
    def forward(ctx, *maps):
        ctx.sizes = [m.shape[1] for m in maps]
        return torch.cat(maps, dim=1)

    @staticmethod
    def backward(ctx, grad):
        layout = torch.channels_last if _is_channels_last(grad) else torch.contiguous_format
        parts = grad.split(ctx.sizes, dim=1)
        return tuple(part.contiguous(memory_format=layout) if needed else None
                     for part, needed in zip(parts, ctx.needs_input_grad))


def _is_channels_last(x: torch.Tensor) -> bool:
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
