"""Spike codes: UWE/UWD (the paper's bit-plane code), TTFS and MPD (its baselines).

Every spike tensor is time-first: ``[T, *shape]``. All functions are plain tensor
functions (CPU or CUDA, any leading shape, no per-pixel Python loops).

UWE turns an n-bit integer image into n binary planes, most significant bit at
time step 0; UWD is its exact inverse, a weighted sum ``sum_t 2^(n-1-t) o_t`` that is
differentiable and so can sit inside a loss.
"""

from __future__ import annotations

import torch

MAX_BITS = 16
MPD_THETA = 0.8


def check_bits(bits: int) -> int:
    """Validate a bit depth (1..16) and return it as an int."""
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise ValueError(f"bits must be an integer from 1 to {MAX_BITS}, got {bits!r}")
    if not 1 <= bits <= MAX_BITS:
        raise ValueError(f"bits must be from 1 to {MAX_BITS}, got {bits}")
    return bits


def full_scale(bits: int) -> int:
    """Largest value of an n-bit image, ``2^n - 1``."""
    return (1 << check_bits(bits)) - 1


def _time_view(weights: torch.Tensor, ndim: int) -> torch.Tensor:
    """Reshape a ``[T]`` vector so it broadcasts against a ``[T, *shape]`` tensor."""
    return weights.view(-1, *([1] * (ndim - 1)))


def _as_checked_integers(x, bits: int) -> torch.Tensor:
    """Return ``x`` as an int32 tensor after checking it is a valid n-bit image.

    We refuse rather than wrap or round: a silently wrapped pixel is a wrong
    experiment nobody notices.
    """
    x = torch.as_tensor(x)
    top = full_scale(bits)
    if x.dtype == torch.bool:
        raise ValueError("uwe_encode expects integer pixel values, got a bool tensor")
    if x.is_complex():
        raise ValueError("uwe_encode expects real integer pixel values, got a complex tensor")
    if x.dtype == torch.uint8 and top >= 255:
        # Every uint8 is a valid n-bit value for n >= 8: nothing to check, and on a GPU
        # no wait for a check's result (training encodes two uint8 batches a step).
        return x.to(torch.int32)
    if x.is_floating_point():
        if not torch.isfinite(x).all():
            raise ValueError("uwe_encode input contains NaN or infinite values")
        if (x != torch.round(x)).any():
            raise ValueError(
                "uwe_encode input has fractional values; quantize to integers "
                f"in [0, {top}] first (e.g. round(x * {top}) for images in [0, 1])"
            )
    if x.numel() and x.min() < 0:
        raise ValueError(f"uwe_encode input has negative values (min {x.min().item()})")
    if x.numel() and x.max() > top:
        raise ValueError(
            f"uwe_encode input has values above {top}, the largest {bits}-bit value "
            f"(max {x.max().item()}); raise bits or rescale"
        )
    return x.to(torch.int32)


def uwe_weights(bits: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """UWD weights ``2^(n-1-t)`` for ``t = 0..n-1`` (MSB first)."""
    bits = check_bits(bits)
    return torch.pow(2.0, torch.arange(bits - 1, -1, -1, device=device, dtype=torch.float64)).to(dtype)


def uwe_encode(x, bits: int = 8, dtype=torch.float32) -> torch.Tensor:
    """Undistorted weighted encoding (Algorithm 1): integers -> ``[bits, *x.shape]`` 0/1 planes.

    ``r_t = floor(x / 2^(n-1-t)) mod 2``: time step 0 carries the most significant bit.
    ``x`` holds integers in ``[0, 2^bits - 1]`` (an integer tensor, or floats with no
    fractional part); anything else raises ``ValueError``.
    """
    bits = check_bits(bits)
    values = _as_checked_integers(x, bits)
    shifts = torch.arange(bits - 1, -1, -1, device=values.device, dtype=torch.int32)
    planes = (values.unsqueeze(0) >> _time_view(shifts, values.dim() + 1)) & 1
    return planes.to(dtype)


def uwd_decode(spikes: torch.Tensor) -> torch.Tensor:
    """Undistorted weighted decoding (Eq. 8): ``y = sum_t 2^(T-1-t) o_t``.

    The exact inverse of :func:`uwe_encode`; values in ``[0, 2^T - 1]`` for 0/1 input.
    A weighted sum, hence differentiable.
    """
    bits = check_bits(spikes.shape[0])
    weights = uwe_weights(bits, device=spikes.device, dtype=spikes.dtype)
    return torch.tensordot(weights, spikes, dims=([0], [0]))


def _ttfs_scale(x: torch.Tensor, max_value, per_image: bool) -> torch.Tensor:
    if per_image:
        # The paper's reading: M is each image's own maximum (dim 0 is the batch).
        flat = x.reshape(x.shape[0], -1) if x.dim() > 1 else x.reshape(1, -1)
        scale = flat.amax(dim=1).clamp_min(1.0)
        return scale.view(-1, *([1] * (x.dim() - 1))) if x.dim() > 1 else scale
    return torch.as_tensor(float(max_value), dtype=x.dtype, device=x.device)


def ttfs_encode(x, bits: int = 8, steps: int | None = None, max_value: float | None = None,
                per_image: bool = False, dtype=torch.float32) -> torch.Tensor:
    """Time-to-first-spike encoding (Eq. 7): at most one spike per pixel.

    The spike time is ``t = floor((M - x) / M * T)``; bright pixels fire early and a
    pixel whose ``t`` reaches ``T`` (black) never fires. *Decision:* ``M`` defaults to
    the full scale ``2^bits - 1`` so the code is a fixed codec that
    :func:`ttfs_decode` can invert; ``per_image=True`` uses each image's maximum
    (dim 0 = batch) as in the paper. ``steps`` (T) defaults to ``bits``.
    """
    bits = check_bits(bits)
    values = _as_checked_integers(x, bits).to(torch.float64)
    steps = bits if steps is None else int(steps)
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    top = full_scale(bits) if max_value is None else max_value
    if not per_image and not top > 0:
        raise ValueError(f"max_value must be positive, got {max_value}")
    scale = _ttfs_scale(values, top, per_image)
    fire_time = torch.floor((scale - values) / scale * steps).clamp_min(0).to(torch.int64)
    times = torch.arange(steps, device=values.device)
    return (_time_view(times, values.dim() + 1) == fire_time.unsqueeze(0)).to(dtype)


def first_spike_mask(spikes: torch.Tensor) -> torch.Tensor:
    """Keep only each pixel's first spike (a network may fire several)."""
    earlier = torch.cumsum(spikes.detach(), dim=0) - spikes.detach()
    return spikes * (earlier == 0).to(spikes.dtype)


def ttfs_decode(spikes: torch.Tensor, max_value: float) -> torch.Tensor:
    """Invert :func:`ttfs_encode`: ``x = M * (1 - t / T)`` at the first spike, 0 if none.

    Written as a weighted sum over the first-spike mask, so it is differentiable with
    respect to the spikes. Pass the ``M`` used for encoding (``2^bits - 1`` by default).
    """
    steps = spikes.shape[0]
    times = torch.arange(steps, device=spikes.device, dtype=spikes.dtype)
    weights = max_value * (1.0 - times / steps)
    return torch.tensordot(weights, first_spike_mask(spikes), dims=([0], [0]))


def mpd_weights(steps: int, theta: float = MPD_THETA, device=None, dtype=torch.float32,
                early: bool = False) -> torch.Tensor:
    """MPD weights ``theta^(T-1-t)``: the last time step weighs most (Kamata et al. 2022).

    ``early=True`` reverses them to ``theta^t`` (the first step weighs most), the order
    that agrees with TTFS, where bright pixels fire first: see :data:`DECODERS`.
    """
    exponents = torch.arange(steps, device=device, dtype=torch.float64)
    if not early:
        exponents = exponents.flip(0)
    return torch.pow(torch.tensor(float(theta), dtype=torch.float64, device=device), exponents).to(dtype)


def mpd_decode(spikes: torch.Tensor, theta: float = MPD_THETA, max_value: float | None = None,
               early: bool = False) -> torch.Tensor:
    """Membrane potential decoding: ``tanh(sum_t theta^(T-1-t) o_t)`` scaled to the image range.

    *Decision:* the scale ``max_value`` defaults to ``2^T - 1`` so MPD and UWD outputs
    share a range and the same loss and metrics apply to both. ``early=True`` uses the
    reversed weights ``theta^t``.
    """
    steps = spikes.shape[0]
    weights = mpd_weights(steps, theta, device=spikes.device, dtype=spikes.dtype, early=early)
    scale = float((1 << steps) - 1) if max_value is None else float(max_value)
    return torch.tanh(torch.tensordot(weights, spikes, dims=([0], [0]))) * scale


# "mpd" is DESIGN.md's MPD (the last step weighs most, as a leaky membrane read at the
# end of the window). "mpd-early" is a reading of the paper's TTFS-MPD pair: its weights
# are reversed so that, like TTFS, early spikes mean bright pixels. Only with that order
# does an MPD-decoded TTFS code come close to the image (results/mpd-order).
MPD_DECODERS = {"mpd": False, "mpd-early": True}      # name -> ``early`` (the first step weighs most)
# "uwd-lsb" reads UWD's planes in the opposite order, least significant bit first (not the
# paper's code): a network that runs forward in time then emits the most significant
# output bit last, after it has seen every input plane (scripts/causal_ceiling.py).
DECODERS = ("uwd", "uwd-lsb", *MPD_DECODERS)


def decoder_weights(decoder: str, steps: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Per-time-step weights of a decoder, as used by the ITBP loss."""
    if decoder == "uwd":
        return uwe_weights(steps, device=device, dtype=dtype)
    if decoder == "uwd-lsb":
        return uwe_weights(steps, device=device, dtype=dtype).flip(0)
    if decoder in MPD_DECODERS:
        return mpd_weights(steps, device=device, dtype=dtype, early=MPD_DECODERS[decoder])
    raise ValueError(f"unknown decoder {decoder!r}; choose one of {DECODERS}")


def decode(spikes: torch.Tensor, decoder: str = "uwd") -> torch.Tensor:
    """Decode output spikes to ``[0, 2^T - 1]`` with the named decoder."""
    if decoder == "uwd":
        return uwd_decode(spikes)
    if decoder == "uwd-lsb":
        return uwd_decode(spikes.flip(0))
    if decoder in MPD_DECODERS:
        return mpd_decode(spikes, early=MPD_DECODERS[decoder])
    raise ValueError(f"unknown decoder {decoder!r}; choose one of {DECODERS}")


def quantize(image: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Map a float image in ``[0, 1]`` to integers ``round(x * (2^bits - 1))`` (int32)."""
    top = full_scale(bits)
    if image.is_floating_point() and not torch.isfinite(image).all():
        raise ValueError("quantize input contains NaN or infinite values")
    return torch.round(image.clamp(0, 1) * top).to(torch.int32)


__all__ = [
    "MAX_BITS", "MPD_THETA", "DECODERS", "check_bits", "full_scale", "uwe_weights",
    "uwe_encode", "uwd_decode", "ttfs_encode", "ttfs_decode", "first_spike_mask",
    "mpd_weights", "mpd_decode", "decoder_weights", "decode", "quantize",
]
