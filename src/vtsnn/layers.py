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
    return unfold_time(torch.cat([fold_time(t) for t in tensors], dim=1), steps)
