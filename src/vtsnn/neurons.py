"""Integrate-and-fire neurons (IF, LIF) over time-first input, with the arctangent surrogate.

Dynamics for one time step (Eqs. 1-5 of the paper), with input ``x_t``:

    h_t = leak * v_{t-1} + gain * x_t (+ v_reset / tau for a hard-reset LIF)  # charge
    s_t = 1 if h_t >= v_threshold else 0                                        # fire
    v_t = h_t - v_threshold * s_t             (soft reset, v_reset=None)
    v_t = v_reset if s_t else h_t             (hard reset)

IF: ``leak = gain = 1``. LIF: ``v <- v + (x - (v - v_reset)) / tau``, i.e.
``leak = 1 - 1/tau``, ``gain = 1/tau`` (leaking to 0 with a soft reset).

The Heaviside step has no useful derivative; backward uses the arctangent surrogate
``d s / d h = (alpha / 2) / (1 + (pi / 2 * alpha * (h - v_threshold))^2)``, spikingjelly's
``ATan(alpha)``. DESIGN.md's surrogate is ``alpha = 2``, ``1 / (1 + (pi * (h - v_threshold))^2)``;
a larger alpha is narrower and taller (an experiment's lever, not the paper's).

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
import os
import warnings

import torch
from torch import nn

BACKENDS = ("fused", "reference")
# Compiled variants per kernel before Dynamo falls back to eager. Each threshold and
# surrogate alpha in use is a variant of its own (Dynamo specializes on Python floats),
# times the dtypes, what-to-keep modes and shape quirks: a test session uses many.
KERNEL_VARIANT_LIMIT = 128
# BPTT with bf16/fp16 input: keep the input (2 bytes an element) for backward and
# recompute the float32 membranes there, in the same fused loop as the reverse pass,
# instead of storing them (4 bytes). Same values bit for bit; the backward kernel takes
# half the time and training holds 30 % less memory (benchmarks/). Float32 input keeps
# the stored membranes (recomputing them was slower there).
RECOMPUTE_MEMBRANES = True
LOW_PRECISION = (torch.bfloat16, torch.float16)
SURROGATE_ALPHA = 2.0        # DESIGN.md's surrogate (spikingjelly's ATan default)


def atan_surrogate(h_minus_threshold: torch.Tensor, alpha: float = SURROGATE_ALPHA) -> torch.Tensor:
    """Arctangent surrogate derivative ``(alpha/2) / (1 + (pi/2 * alpha * u)^2)`` at ``u = h - V_th``.

    With the default ``alpha = 2`` this is ``1 / (1 + (pi * u)^2)``, bit for bit (both
    constants are exact: halving and doubling only change the exponent).
    """
    return (alpha / 2) / (1.0 + (math.pi / 2 * alpha * h_minus_threshold) ** 2)


class HeavisideATan(torch.autograd.Function):
    """Spike function: Heaviside forward (fires at ``u >= 0``), arctangent surrogate backward."""

    @staticmethod
    def forward(ctx, u, alpha=SURROGATE_ALPHA):
        ctx.save_for_backward(u)
        ctx.alpha = alpha
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad_spike):
        (u,) = ctx.saved_tensors
        return grad_spike * atan_surrogate(u, ctx.alpha), None


def _dynamics(tau: float | None, v_reset: float | None) -> tuple[float, float, float]:
    """(leak, gain, rest) of the charge equation ``h = leak * v + gain * x + rest``: IF when
    ``tau`` is None, else LIF, which leaks towards a hard reset's ``v_reset`` (``rest``)."""
    if tau is None:
        return 1.0, 1.0, 0.0
    rest = 0.0 if v_reset is None else float(v_reset) / tau
    return 1.0 - 1.0 / tau, 1.0 / tau, rest


def _initial_membrane(x_step: torch.Tensor, v_reset: float | None) -> torch.Tensor:
    return torch.full_like(x_step, 0.0 if v_reset is None else float(v_reset))


def reference_multistep(x: torch.Tensor, v_threshold: float = 1.0, v_reset: float | None = None,
                        tau: float | None = None, temporal_grad: bool = False,
                        detach_reset: bool = False, surrogate_alpha: float = SURROGATE_ALPHA) -> torch.Tensor:
    """The plain definition: a Python loop over ``T`` recorded step by step by autograd.

    Slow, but obviously right; the fused kernels are tested against it.
    """
    leak, gain, rest = _dynamics(tau, v_reset)
    v = _initial_membrane(x[0], v_reset)
    spikes = []
    for x_t in x:
        if not temporal_grad:
            v = v.detach()
        h = leak * v + gain * x_t + rest
        s = HeavisideATan.apply(h - v_threshold, surrogate_alpha)
        spikes.append(s)
        s_reset = s.detach() if detach_reset else s
        if v_reset is None:
            v = h - v_threshold * s_reset
        else:
            v = h * (1.0 - s_reset) + float(v_reset) * s_reset
    return torch.stack(spikes)


def _charge_and_fire(x, v_threshold: float, v_reset, leak: float, gain: float, rest: float, keep: str,
                     alpha: float = SURROGATE_ALPHA):
    """The whole neuron over ``x = [T, N]`` in one function, so it can be compiled into one loop.

    Returns the spikes ``[T, N]`` and what backward keeps (``[T, N]``, or ``None``); see
    :func:`_charge_and_fire_steps`.
    """
    spikes, kept = _charge_and_fire_steps(x, v_threshold, v_reset, leak, gain, rest, keep, alpha)
    return torch.stack(spikes), (torch.stack(kept) if kept else None)


def _charge_and_fire_steps(x, v_threshold: float, v_reset, leak: float, gain: float, rest: float, keep: str,
                           alpha: float = SURROGATE_ALPHA):
    """:func:`_charge_and_fire` as lists of per-step tensors (no stacking).

    ``keep`` says what backward needs besides the spikes: ``"none"`` (inference),
    ``"slope"`` (ITBP: the surrogate slope times the input gain, so backward is one
    multiply) or ``"membrane"`` (BPTT: the charged membrane ``h`` in float32).
    The state is float32 for bfloat16/float16 input, so only the input is rounded.
    """
    state = torch.float32 if x.dtype in (torch.bfloat16, torch.float16) else x.dtype
    v = torch.full_like(x[0], 0.0 if v_reset is None else v_reset, dtype=state)
    # Spikes by torch.where rather than casting the boolean: Inductor's CPU code turns a
    # where into one blend instruction but a bool->float cast into a slow mask
    # conversion (the bf16 kernel ran 3x faster this way, with identical results).
    one, zero = torch.ones((), dtype=state), torch.zeros((), dtype=state)
    spikes, kept = [], []
    for t in range(x.shape[0]):
        h = v + x[t].to(state) if (leak == 1.0 and gain == 1.0) else v * leak + x[t].to(state) * gain
        if rest:
            h = h + rest
        u = h - v_threshold
        fired = u >= 0
        spike = torch.where(fired, one, zero)
        spikes.append(spike.to(x.dtype))
        if keep == "slope":
            kept.append((atan_surrogate(u, alpha) * gain).to(x.dtype))
        elif keep == "membrane":
            kept.append(h)
        v = h - v_threshold * spike if v_reset is None else torch.where(fired, v_reset, h)
    return spikes, kept


def _through_time_backward(grad_spikes, spikes, membranes, v_threshold: float, v_reset, leak: float,
                           gain: float, detach_reset: bool, alpha: float = SURROGATE_ALPHA):
    """BPTT of :func:`_charge_and_fire`, derived by hand: one reverse pass over ``T``."""
    grad_v = torch.zeros_like(membranes[0])  # dL/dv_t arriving from step t+1
    grads = []
    for t in range(grad_spikes.shape[0] - 1, -1, -1):
        slope = atan_surrogate(membranes[t] - v_threshold, alpha)
        # dv_t/dh_t: the direct path plus, unless detached, the path through s_t.
        if v_reset is None:
            dv_dh = 1.0 if detach_reset else 1.0 - v_threshold * slope
        else:
            dv_dh = 1.0 - spikes[t].to(membranes[t].dtype)
            if not detach_reset:
                dv_dh = dv_dh + (v_reset - membranes[t]) * slope
        grad_h = grad_spikes[t].to(membranes[t].dtype) * slope + grad_v * dv_dh
        grads.append((grad_h * gain).to(grad_spikes.dtype))
        grad_v = grad_h * leak
    return torch.stack(grads[::-1])


def _through_time_backward_from_input(grad_spikes, x, v_threshold: float, v_reset, leak: float, gain: float,
                                      rest: float, detach_reset: bool, alpha: float = SURROGATE_ALPHA):
    """:func:`_through_time_backward` with the membranes recomputed from the input.

    Compiled, the forward recurrence and the reverse pass fuse into one loop that
    keeps the membranes in registers; the per-step lists are not stacked, because a
    stacked tensor would be written to memory and read back.
    """
    spikes, membranes = _charge_and_fire_steps(x, v_threshold, v_reset, leak, gain, rest, "membrane")
    return _through_time_backward(grad_spikes, spikes, membranes, v_threshold, v_reset, leak, gain, detach_reset,
                                  alpha)


class _Kernels:
    """Eager or ``torch.compile``-d versions of the two kernels above.

    Compiled, each becomes a single vectorized loop that reads the input once (Inductor
    on CPU, Triton on CUDA): about 10x faster than eager PyTorch, which makes one pass
    over memory per operation and time step. The result is bit-identical in float32.
    Set ``VTSNN_COMPILE=0`` (or call :func:`use_compiled_kernels`) to stay eager.
    """

    def __init__(self):
        self.compiled = os.environ.get("VTSNN_COMPILE", "1") != "0"
        self._cache = {}

    def get(self, function):
        if not self.compiled:
            return function
        if function not in self._cache:
            # dynamic=True: one kernel for every layer's size instead of one per shape.
            self._cache[function] = self._with_eager_fallback(function, torch.compile(function, dynamic=True))
        return self._cache[function]

    def _with_eager_fallback(self, function, compiled):
        """Use ``compiled`` until it fails to build (no C++ compiler, say), then stay eager."""

        def run(*args):
            if not self.compiled:
                return function(*args)
            try:
                # Every (dtype, what-to-keep, layer shape quirk) combination is a compiled
                # variant; past Dynamo's default limit of 8 it would silently run eagerly.
                with torch._dynamo.config.patch(recompile_limit=KERNEL_VARIANT_LIMIT):
                    return compiled(*args)
            except Exception as error:  # compilation errors come in many types
                warnings.warn(f"vtsnn: torch.compile failed ({type(error).__name__}: {error}); "
                              "using eager neuron kernels (same results, slower)", RuntimeWarning)
                self.compiled = False
                return function(*args)

        return run


KERNELS = _Kernels()


def use_compiled_kernels(enabled: bool) -> None:
    """Switch the fused neurons between compiled and eager kernels (same results)."""
    KERNELS.compiled = bool(enabled)


def _time_by_elements(x: torch.Tensor):
    """View ``[T, ...]`` as ``[T, N]`` in memory order (no copy for channels-last maps too).

    Returns the view and a function that puts a ``[T, N]`` result back into ``x``'s shape
    and strides.
    """
    order = sorted(range(1, x.dim()), key=lambda d: -x.stride(d))
    permuted = x.permute(0, *order)
    if not permuted.is_contiguous():
        permuted = permuted.contiguous()
    inverse = [0] * x.dim()
    for position, dim in enumerate([0, *order]):
        inverse[dim] = position

    def restore(flat: torch.Tensor) -> torch.Tensor:
        return flat.view(permuted.shape).permute(*inverse)

    return permuted.view(x.shape[0], -1), restore


class _SpatialOnlyNeuron(torch.autograd.Function):
    """ITBP neuron: membrane detached between steps, so backward is one element-wise product."""

    @staticmethod
    def forward(ctx, x, v_threshold, v_reset, leak, gain, rest, alpha):
        spikes, slope = KERNELS.get(_charge_and_fire)(x, v_threshold, v_reset, leak, gain, rest, "slope", alpha)
        ctx.save_for_backward(slope)
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes):
        (slope,) = ctx.saved_tensors
        return grad_spikes * slope, None, None, None, None, None, None


class _ThroughTimeNeuron(torch.autograd.Function):
    """BPTT neuron: the recurrence differentiated by hand, one reverse pass over ``T``."""

    @staticmethod
    def forward(ctx, x, v_threshold, v_reset, leak, gain, rest, detach_reset, alpha):
        ctx.recompute = RECOMPUTE_MEMBRANES and x.dtype in LOW_PRECISION
        ctx.constants = (v_threshold, v_reset, leak, gain, rest, detach_reset, alpha)
        if ctx.recompute:
            spikes, _ = KERNELS.get(_charge_and_fire)(x, v_threshold, v_reset, leak, gain, rest, "none")
            ctx.save_for_backward(x)
            return spikes
        spikes, membranes = KERNELS.get(_charge_and_fire)(x, v_threshold, v_reset, leak, gain, rest, "membrane")
        ctx.save_for_backward(spikes, membranes)
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes):
        v_threshold, v_reset, leak, gain, rest, detach_reset, alpha = ctx.constants
        if ctx.recompute:
            (x,) = ctx.saved_tensors
            grad_x = KERNELS.get(_through_time_backward_from_input)(grad_spikes.contiguous(), x, v_threshold, v_reset,
                                                                    leak, gain, rest, detach_reset, alpha)
        else:
            spikes, membranes = ctx.saved_tensors
            grad_x = KERNELS.get(_through_time_backward)(grad_spikes.contiguous(), spikes, membranes,
                                                         v_threshold, v_reset, leak, gain, detach_reset, alpha)
        return grad_x, None, None, None, None, None, None, None


class IF(nn.Module):
    """Integrate-and-fire neuron over time-first input ``[T, B, ...]`` -> spikes of the same shape.

    Args:
        v_threshold: firing threshold ``V_th``.
        v_reset: ``None`` for soft reset (subtract ``V_th``), a number for hard reset.
        temporal_grad: ``False`` = ITBP (membrane detached between steps),
            ``True`` = backpropagation through time.
        detach_reset: with ``temporal_grad``, drop the gradient path through the reset
            (spikingjelly's ``detach_reset``); off by default as in the authors' code.
        surrogate_alpha: width parameter of the arctangent surrogate (2: DESIGN.md's).
        backend: ``"fused"`` (fast kernels) or ``"reference"`` (plain autograd loop).
    """

    tau: float | None = None

    def __init__(self, v_threshold: float = 1.0, v_reset: float | None = None,
                 temporal_grad: bool = False, detach_reset: bool = False, backend: str = "fused",
                 surrogate_alpha: float = SURROGATE_ALPHA):
        super().__init__()
        if not v_threshold > 0:
            raise ValueError(f"v_threshold must be positive, got {v_threshold}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if not (surrogate_alpha > 0 and math.isfinite(surrogate_alpha)):
            raise ValueError(f"surrogate_alpha must be a positive number, got {surrogate_alpha}")
        self.v_threshold = float(v_threshold)
        self.v_reset = None if v_reset is None else float(v_reset)
        self.temporal_grad = bool(temporal_grad)
        self.detach_reset = bool(detach_reset)
        self.surrogate_alpha = float(surrogate_alpha)
        self.backend = backend

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2:
            raise ValueError(f"neurons expect time-first input [T, B, ...], got shape {tuple(x.shape)}")
        if self.backend == "reference":
            return reference_multistep(x, self.v_threshold, self.v_reset, self.tau,
                                       self.temporal_grad, self.detach_reset, self.surrogate_alpha)
        leak, gain, rest = _dynamics(self.tau, self.v_reset)
        flat, restore = _time_by_elements(x)
        if not (torch.is_grad_enabled() and x.requires_grad):
            # Inference: no surrogate slopes or membranes to keep for a backward pass.
            spikes, _ = KERNELS.get(_charge_and_fire)(flat, self.v_threshold, self.v_reset, leak, gain, rest, "none")
        elif self.temporal_grad:
            spikes = _ThroughTimeNeuron.apply(flat, self.v_threshold, self.v_reset, leak, gain, rest,
                                              self.detach_reset, self.surrogate_alpha)
        else:
            spikes = _SpatialOnlyNeuron.apply(flat, self.v_threshold, self.v_reset, leak, gain, rest,
                                              self.surrogate_alpha)
        return restore(spikes)

    def extra_repr(self) -> str:
        tau = "" if self.tau is None else f"tau={self.tau}, "
        return (f"{tau}v_threshold={self.v_threshold}, v_reset={self.v_reset}, "
                f"temporal_grad={self.temporal_grad}, detach_reset={self.detach_reset}, "
                f"surrogate_alpha={self.surrogate_alpha}, backend={self.backend!r}")


class LIF(IF):
    """Leaky integrate-and-fire: ``v <- v + (x - (v - v_reset)) / tau`` (see :class:`IF`)."""

    def __init__(self, tau: float = 1.1, v_threshold: float = 1.0, v_reset: float | None = None,
                 temporal_grad: bool = False, detach_reset: bool = False, backend: str = "fused",
                 surrogate_alpha: float = SURROGATE_ALPHA):
        if not tau >= 1.0:
            raise ValueError(f"tau must be >= 1 (tau = 1 is an IF neuron without memory), got {tau}")
        super().__init__(v_threshold, v_reset, temporal_grad, detach_reset, backend, surrogate_alpha)
        self.tau = float(tau)


def charged_membranes(neuron: IF, x: torch.Tensor) -> torch.Tensor:
    """The membrane ``h_t`` that ``neuron`` charges to at each step for the input ``x =
    [T, ...]``, before it fires and resets: what its threshold is compared with (float32,
    no gradient). For inspection; the neuron's own forward never returns it."""
    leak, gain, rest = _dynamics(neuron.tau, neuron.v_reset)
    flat, restore = _time_by_elements(x.detach())
    _, membranes = _charge_and_fire(flat, neuron.v_threshold, neuron.v_reset, leak, gain, rest, "membrane")
    return restore(membranes)


NEURONS = {"if": IF, "lif": LIF}


def make_neuron(kind: str, **options) -> IF:
    """Build a neuron by name (``"if"`` or ``"lif"``); ``tau`` is ignored for IF."""
    kind = kind.lower()
    if kind not in NEURONS:
        raise ValueError(f"unknown neuron {kind!r}; choose one of {sorted(NEURONS)}")
    if kind == "if":
        options.pop("tau", None)
    return NEURONS[kind](**options)
