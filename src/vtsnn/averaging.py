"""An exponential moving average (EMA) of a model's weights, for scoring and keeping.

Spiking denoisers trained here score unevenly from epoch to epoch (a LIF model's test
PSNR went 16.40, 13.23, 16.86 dB over three epochs): a small weight change moves a
membrane across a threshold and flips whole bit planes. Averaging the weights over the
last few hundred optimizer steps smooths that out. Training itself is unchanged: the
optimizer keeps stepping the raw weights, and the average is swapped in only to
evaluate and to save the model a run hands out.

The decay warms up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so the
first epoch's average is not dominated by the random initial weights.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch

WARMUP_OFFSET = 10


def warmed_up_decay(decay: float, updates: int) -> float:
    """The decay after ``updates`` updates: short memory at first, ``decay`` in the long run."""
    return min(decay, (1 + updates) / (WARMUP_OFFSET + updates))


class WeightAverage:
    """The moving average of ``model``'s parameters; ``updates`` counts the updates so far."""

    def __init__(self, model: torch.nn.Module, decay: float, updates: int = 0):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the weight average's decay must lie strictly between 0 and 1, got {decay}")
        self.decay, self.updates = decay, updates
        self.named = dict(model.named_parameters())
        self.average = {name: p.detach().clone() for name, p in self.named.items()}

    @torch.no_grad()
    def update(self) -> None:
        """Move the average towards the current weights (call after each optimizer step)."""
        weight = 1.0 - warmed_up_decay(self.decay, self.updates)
        for name, parameter in self.named.items():
            self.average[name].lerp_(parameter.detach(), weight)
        self.updates += 1

    @contextmanager
    def applied(self):
        """Inside the block the model holds the averaged weights; yields the raw ones by name."""
        raw = {name: p.detach().clone() for name, p in self.named.items()}
        self._copy_into_model(self.average)
        try:
            yield raw
        finally:
            self._copy_into_model(raw)

    def load_raw(self, raw: dict[str, torch.Tensor]) -> None:
        """Put resumed raw weights into the model; the average keeps what the model held before."""
        missing = sorted(set(self.named) - set(raw))
        if missing:
            raise ValueError(f"the checkpoint lacks the raw weights of {missing}")
        self._copy_into_model(raw)

    @torch.no_grad()
    def _copy_into_model(self, weights: dict[str, torch.Tensor]) -> None:
        for name, parameter in self.named.items():
            parameter.copy_(weights[name])
