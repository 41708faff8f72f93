"""Output jitter (ours): training that keeps the output neuron's decisions off its threshold.

The bit-plane loss is the squared error of the output *spikes*. Once a spike is right its
error is 0, so nothing pushes the membrane further from the threshold, and a decision
can sit just past it. On F-MNIST at eta = 0.2 a third or more of the output's decisions
at the first step (the most significant plane) lie within 5 % of the threshold, the
median firing one 4.6 % over it: a small change of the weights, one more step or their
moving average, can put the whole plane under it at once, and the PSNR falls from
about 21 dB to 14 (``scripts/output_margin.py``, results/flip-jitter/output_margin.txt).

With ``TrainConfig.output_jitter`` = a, each training step multiplies the output layer's
input current by a factor drawn from [1 - a, 1 + a] for every image and time step. At a
neuron's first crossing that is the same as moving its threshold by up to about a times
itself, so a decision nearer the threshold than that is wrong in some draws and the
loss pushes it away. Evaluation and inference never jitter: the trained network is
the paper's.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import torch


def jitter_factors(amount: float, steps: int, batch: int, generator: torch.Generator) -> torch.Tensor:
    """Factors ``[steps, batch, 1, 1, 1]`` drawn uniformly from ``[1 - amount, 1 + amount]``."""
    if not 0 <= amount < 1:
        raise ValueError(f"output jitter must be in [0, 1), got {amount}")
    return 1.0 + amount * (2.0 * torch.rand(steps, batch, 1, 1, 1, generator=generator) - 1.0)


@contextmanager
def scaled_input(module: torch.nn.Module, factors: torch.Tensor):
    """Within the block, ``module``'s first input is multiplied by ``factors`` (broadcast,
    in the input's own dtype so a bf16 run stays bf16)."""
    def scale(_module, args):
        current = args[0]
        return (current * factors.to(current.device, current.dtype),) + tuple(args[1:])
    handle = module.register_forward_pre_hook(scale)
    try:
        yield
    finally:
        handle.remove()


def output_jittered(model: torch.nn.Module, factors: torch.Tensor | None):
    """:func:`scaled_input` on the model's output neuron, or nothing when ``factors`` is None."""
    return nullcontext() if factors is None else scaled_input(model.output_neuron, factors)
