"""Firing rates of every spiking layer, measured while a model runs.

A rate is the fraction of ones among a layer's output spikes, over time steps,
channels, pixels and images. Silent layers pass no gradient through the surrogate, and
saturated ones carry no information, so the per-layer rates show why a network learns
or does not (see README, "Training that learns").
"""

from __future__ import annotations

import torch

from .neurons import IF


class FiringRates:
    """Per-layer firing rates of ``model``'s IF/LIF neurons while in a ``with`` block.

    Forward hooks count each neuron module's spikes; :meth:`rates` returns
    ``{module name: rate}`` in the order the modules are registered (encoder, decoder,
    output for the U-VTSNN). A model without spiking layers (the ANN) gives ``{}``.
    """

    def __init__(self, model: torch.nn.Module):
        self.layers = [(name, module) for name, module in model.named_modules() if isinstance(module, IF)]
        self.spikes = {name: 0 for name, _ in self.layers}
        self.counts = {name: 0 for name, _ in self.layers}
        self.handles = []

    def _recorder(self, name: str):
        def record(module, inputs, output):
            # Spikes are exactly 0 or 1, so counting non-zeros is their exact sum (an
            # integer), and faster than a float64 sum.
            self.spikes[name] += int(torch.count_nonzero(output.detach()))
            self.counts[name] += output.numel()
        return record

    def __enter__(self) -> "FiringRates":
        self.handles = [module.register_forward_hook(self._recorder(name)) for name, module in self.layers]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []

    def rates(self) -> dict[str, float]:
        """``{layer: rate}`` for the layers that ran at least once."""
        return {name: self.spikes[name] / self.counts[name] for name, _ in self.layers if self.counts[name]}
