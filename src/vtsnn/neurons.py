"""Integrate-and-fire neurons (IF, LIF) over time-first input, with the arctangent surrogate.

Dynamics for one time step (Eqs. 1-5 of the paper), with input ``x_t``:

    h_t = leak * v_{t-1} + gain * x_t (+ v_reset / tau for a hard-reset LIF)  # charge
    s_t = 1 if h_t >= v_threshold else 0                                        # fire
    v_t = h_t - v_threshold * s_t             (soft reset, v_reset=None)
    v_t = v_reset if s_t else h_t             (hard reset)

IF: ``leak = gain = 1``. LIF: ``v <- v + (x - (v - v_reset)) / tau``, i.e.
``leak = 1 - 1/tau``, ``gain = 1/tau`` (leaking to 0 with a soft reset).

The Heaviside step has no useful derivative; backward uses the arctangent surrogate
``d s / d h = 1 / (1 + (pi * (h - v_threshold))^2)`` (spikingjelly ``ATan(alpha=2)``).

``temporal_grad=False`` is ITBP: the membrane is detached between time steps, so the
only path from ``x_t`` to the loss is through ``s_t``. The gradient is then
element-wise, ``dL/dx_t = dL/ds_t * surrogate(h_t) * gain``, and the fused kernel
computes it with no loop at all. ``temporal_grad=True`` is backpropagation through
time; its fused kernel walks the recurrence backwards once, by hand, instead of
recording an autograd graph of ``5 * T`` small operations.

Each forward call starts from a fresh membrane, so state never leaks between batches.
"""

from __future__ import annotations

import math

import torch
from torch import nn

BACKENDS = ("fused", "reference")


def atan_surrogate(h_minus_threshold: torch.Tensor) -> torch.Tensor:
    """Arctangent surrogate derivative ``1 / (1 + (pi * u)^2)`` at ``u = h - V_th``."""
    return 1.0 / (1.0 + (math.pi * h_minus_threshold) ** 2)


class HeavisideATan(torch.autograd.Function):
    """Spike function: Heaviside forward (fires at ``u >= 0``), arctangent surrogate backward."""

    @staticmethod
    def forward(ctx, u):
        ctx.save_for_backward(u)
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad_spike):
        (u,) = ctx.saved_tensors
        return grad_spike * atan_surrogate(u)


def _dynamics(tau: float | None) -> tuple[float, float]:
    """(leak, gain) of the charge equation: IF when ``tau`` is None, else LIF."""
    if tau is None:
        return 1.0, 1.0
    return 1.0 - 1.0 / tau, 1.0 / tau


def _initial_membrane(x_step: torch.Tensor, v_reset: float | None) -> torch.Tensor:
    return torch.full_like(x_step, 0.0 if v_reset is None else float(v_reset))


def reference_multistep(x: torch.Tensor, v_threshold: float = 1.0, v_reset: float | None = None,
                        tau: float | None = None, temporal_grad: bool = False,
                        detach_reset: bool = False) -> torch.Tensor:
    """The plain definition: a Python loop over ``T`` recorded step by step by autograd.

    Slow, but obviously right; the fused kernels are tested against it.
    """
    leak, gain = _dynamics(tau)
    rest = 0.0 if (tau is None or v_reset is None) else float(v_reset) / tau
    v = _initial_membrane(x[0], v_reset)
    spikes = []
    for x_t in x:
        if not temporal_grad:
            v = v.detach()
        h = leak * v + gain * x_t + rest
        s = HeavisideATan.apply(h - v_threshold)
        spikes.append(s)
        s_reset = s.detach() if detach_reset else s
        if v_reset is None:
            v = h - v_threshold * s_reset
        else:
            v = h * (1.0 - s_reset) + float(v_reset) * s_reset
    return torch.stack(spikes)


@torch.no_grad()
def _run_forward(x, v_threshold, v_reset, leak, gain, rest, keep_membrane):
    """One pass over ``T`` in float32 state; returns spikes and the charged membrane ``h``."""
    state_dtype = torch.float32 if x.dtype in (torch.bfloat16, torch.float16) else x.dtype
    v = _initial_membrane(x[0], v_reset).to(state_dtype)
    spikes = torch.empty_like(x)
    membranes = torch.empty(x.shape, dtype=state_dtype, device=x.device) if keep_membrane else None
    for t in range(x.shape[0]):
        h = v.mul_(leak).add_(x[t], alpha=gain) if leak != 1.0 else v.add_(x[t])
        if rest:
            h.add_(rest)
        fired = h >= v_threshold
        spikes[t] = fired
        if membranes is not None:
            membranes[t] = h
        if v_reset is None:
            v = h.sub_(fired.to(state_dtype), alpha=v_threshold)
        else:
            v = h.masked_fill_(fired, float(v_reset))
    return spikes, membranes


class _SpatialOnlyNeuron(torch.autograd.Function):
    """ITBP neuron: membrane detached between steps, so backward is one element-wise product."""

    @staticmethod
    def forward(ctx, x, v_threshold, v_reset, leak, gain, rest):
        spikes, membranes = _run_forward(x, v_threshold, v_reset, leak, gain, rest, keep_membrane=True)
        # Save the surrogate slope itself (times the input gain): backward is then a
        # single multiply, and h is not needed any more.
        slope = atan_surrogate(membranes.sub_(v_threshold)).mul_(gain).to(x.dtype)
        ctx.save_for_backward(slope)
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes):
        (slope,) = ctx.saved_tensors
        return grad_spikes * slope, None, None, None, None, None


class _ThroughTimeNeuron(torch.autograd.Function):
    """BPTT neuron: the recurrence differentiated by hand, one reverse pass over ``T``."""

    @staticmethod
    def forward(ctx, x, v_threshold, v_reset, leak, gain, rest, detach_reset):
        spikes, membranes = _run_forward(x, v_threshold, v_reset, leak, gain, rest, keep_membrane=True)
        ctx.save_for_backward(spikes, membranes)
        ctx.constants = (v_threshold, v_reset, leak, gain, detach_reset)
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes):
        spikes, membranes = ctx.saved_tensors
        v_threshold, v_reset, leak, gain, detach_reset = ctx.constants
        grad_x = torch.empty_like(grad_spikes)
        grad_v = torch.zeros_like(membranes[0])  # dL/dv_t flowing back from step t+1
        for t in range(grad_spikes.shape[0] - 1, -1, -1):
            u = membranes[t] - v_threshold
            slope = atan_surrogate(u)
            s = spikes[t].to(membranes.dtype)
            # dv_t/dh_t: the direct path plus, unless detached, the path through s_t.
            if v_reset is None:
                dv_dh = 1.0 if detach_reset else 1.0 - v_threshold * slope
            else:
                dv_dh = 1.0 - s
                if not detach_reset:
                    dv_dh = dv_dh + (float(v_reset) - membranes[t]) * slope
            grad_h = grad_spikes[t].to(membranes.dtype) * slope + grad_v * dv_dh
            grad_x[t] = grad_h * gain
            grad_v = grad_h * leak
        return grad_x, None, None, None, None, None, None


class IF(nn.Module):
    """Integrate-and-fire neuron over time-first input ``[T, B, ...]`` -> spikes of the same shape.

    Args:
        v_threshold: firing threshold ``V_th``.
        v_reset: ``None`` for soft reset (subtract ``V_th``), a number for hard reset.
        temporal_grad: ``False`` = ITBP (membrane detached between steps),
            ``True`` = backpropagation through time.
        detach_reset: with ``temporal_grad``, drop the gradient path through the reset
            (spikingjelly's ``detach_reset``); off by default as in the authors' code.
        backend: ``"fused"`` (fast kernels) or ``"reference"`` (plain autograd loop).
    """

    tau: float | None = None

    def __init__(self, v_threshold: float = 1.0, v_reset: float | None = None,
                 temporal_grad: bool = False, detach_reset: bool = False, backend: str = "fused"):
        super().__init__()
        if not v_threshold > 0:
            raise ValueError(f"v_threshold must be positive, got {v_threshold}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.v_threshold = float(v_threshold)
        self.v_reset = None if v_reset is None else float(v_reset)
        self.temporal_grad = bool(temporal_grad)
        self.detach_reset = bool(detach_reset)
        self.backend = backend

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2:
            raise ValueError(f"neurons expect time-first input [T, B, ...], got shape {tuple(x.shape)}")
        if self.backend == "reference":
            return reference_multistep(x, self.v_threshold, self.v_reset, self.tau,
                                       self.temporal_grad, self.detach_reset)
        leak, gain = _dynamics(self.tau)
        rest = 0.0 if (self.tau is None or self.v_reset is None) else self.v_reset / self.tau
        if self.temporal_grad:
            return _ThroughTimeNeuron.apply(x, self.v_threshold, self.v_reset, leak, gain, rest,
                                            self.detach_reset)
        return _SpatialOnlyNeuron.apply(x, self.v_threshold, self.v_reset, leak, gain, rest)

    def extra_repr(self) -> str:
        tau = "" if self.tau is None else f"tau={self.tau}, "
        return (f"{tau}v_threshold={self.v_threshold}, v_reset={self.v_reset}, "
                f"temporal_grad={self.temporal_grad}, backend={self.backend!r}")


class LIF(IF):
    """Leaky integrate-and-fire: ``v <- v + (x - (v - v_reset)) / tau`` (see :class:`IF`)."""

    def __init__(self, tau: float = 1.1, v_threshold: float = 1.0, v_reset: float | None = None,
                 temporal_grad: bool = False, detach_reset: bool = False, backend: str = "fused"):
        if not tau >= 1.0:
            raise ValueError(f"tau must be >= 1 (tau = 1 is an IF neuron without memory), got {tau}")
        super().__init__(v_threshold, v_reset, temporal_grad, detach_reset, backend)
        self.tau = float(tau)


NEURONS = {"if": IF, "lif": LIF}


def make_neuron(kind: str, **options) -> IF:
    """Build a neuron by name (``"if"`` or ``"lif"``); ``tau`` is ignored for IF."""
    kind = kind.lower()
    if kind not in NEURONS:
        raise ValueError(f"unknown neuron {kind!r}; choose one of {sorted(NEURONS)}")
    if kind == "if":
        options.pop("tau", None)
    return NEURONS[kind](**options)
