"""ITBP and STBP losses (Eqs. 9-18).

- :func:`itbp_loss` compares output spike planes with the encoded clean label, one
  MSE per time step, weighted by the decoder's weight for that step and normalized by
  the weights' sum: the MSB plane matters 128 times more than the LSB plane for UWD.
  With ``squared_weights`` each plane weighs the square of its decoder weight instead
  (ours, not the paper's; see the function).
- :func:`stbp_loss` decodes the output and takes the MSE against the clean image.
- :func:`residual_targets` (ours) makes each plane's target the bit that, given the
  planes the network has already emitted, brings the decoded pixel closest to the
  clean one; :func:`itbp_loss` against those targets is the "bitplane-residual" loss.
- :func:`flip_targets` (ours) makes each plane's target the bit that, with the network's
  other planes as emitted, decodes closer to the clean pixel ("bitplane-flip").
- :func:`flip_decoded_loss` (ours) is STBP's decoded MSE with each plane's gradient
  replaced by the exact change in squared error that turning its bit on makes.

Whether gradients also flow through time is the neurons' business
(``temporal_grad``), not the loss's: the two choices are independent.
"""

from __future__ import annotations

import torch

from .coding import decode, decoder_weights, uwe_weights


def _check_time_first(output_spikes: torch.Tensor, name: str) -> None:
    if output_spikes.dim() < 2:
        raise ValueError(f"{name} expects time-first spikes [T, B, ...], got shape {tuple(output_spikes.shape)}")


def itbp_loss(output_spikes: torch.Tensor, target_spikes: torch.Tensor, decoder: str = "uwd",
              squared_weights: bool = False) -> torch.Tensor:
    """Bit-plane loss: ``sum_t w_t * MSE(o_t, r_t) / sum_t w_t`` with the decoder's weights.

    ``squared_weights`` uses ``w_t ** 2`` in place of ``w_t`` (in both sums). A wrong
    bit in plane t moves the decoded pixel by ``w_t``, so its squared error, the one
    PSNR counts, grows with ``w_t ** 2``: this is the decoded MSE without the cross
    terms between planes. For UWD it puts 75 % of the weight on the MSB plane, against
    50 % with the paper's ``w_t``, and next to none on the lowest planes.
    """
    _check_time_first(output_spikes, "itbp_loss")
    if output_spikes.shape != target_spikes.shape:
        raise ValueError(f"itbp_loss: output {tuple(output_spikes.shape)} and target "
                         f"{tuple(target_spikes.shape)} shapes differ")
    steps = output_spikes.shape[0]
    weights = decoder_weights(decoder, steps, device=output_spikes.device, dtype=torch.float32)
    if squared_weights:
        weights = weights.square()
    per_step = (output_spikes.float() - target_spikes.float()).pow(2).flatten(1).mean(dim=1)
    return (weights * per_step).sum() / weights.sum()


def stbp_loss(output_spikes: torch.Tensor, clean: torch.Tensor, decoder: str = "uwd") -> torch.Tensor:
    """Decode to ``[0, 1]`` (divide by ``2^T - 1``) and take the MSE against ``clean`` in ``[0, 1]``."""
    _check_time_first(output_spikes, "stbp_loss")
    steps = output_spikes.shape[0]
    decoded = decode(output_spikes.float(), decoder) / float((1 << steps) - 1)
    if decoded.shape != clean.shape:
        raise ValueError(f"stbp_loss: decoded output {tuple(decoded.shape)} and clean "
                         f"{tuple(clean.shape)} shapes differ")
    return (decoded - clean.float()).pow(2).mean()


def _emitted_values(output_spikes: torch.Tensor, clean_levels: torch.Tensor, name: str):
    """What each UWD plane adds to each pixel (``o_t w_t``) and the weights, shaped to broadcast."""
    _check_time_first(output_spikes, name)
    if output_spikes.shape[1:] != clean_levels.shape:
        raise ValueError(f"{name}: output {tuple(output_spikes.shape)} does not hold "
                         f"T planes of clean {tuple(clean_levels.shape)}")
    weights = uwe_weights(output_spikes.shape[0], device=output_spikes.device)
    weights = weights.view(-1, *([1] * clean_levels.dim()))
    return output_spikes.float() * weights, weights


@torch.no_grad()
def residual_targets(output_spikes: torch.Tensor, clean_levels: torch.Tensor) -> torch.Tensor:
    """UWD bit-plane targets that follow the network's own earlier planes (ours).

    UWE's target for plane t is bit t of the clean pixel, whatever the network emitted
    before. Once an earlier plane is wrong, that bit is no longer the best one: if the
    MSB came out 1 for a pixel of 100, the closest the decoded pixel can get is 128, so
    every later plane should be 0, not 100's bits. Given the value ``p`` of the planes
    already emitted (``sum_{k<t} o_k w_k``), the later planes can add anything in
    ``[0, 2 w_t - 1]``; the best choice is the clean value ``c`` minus ``p``, clipped to
    that range, and its top bit is ``c - p >= w_t``. When every earlier plane is right
    this is UWE's bit, so a perfect output still has zero loss.

    ``output_spikes``: ``[T, B, ...]`` 0/1; ``clean_levels``: ``[B, ...]`` integers in
    ``[0, 2^T - 1]``. Returns 0/1 targets shaped like ``output_spikes``, without gradient.
    """
    emitted, weights = _emitted_values(output_spikes, clean_levels, "residual_targets")
    before = emitted.cumsum(dim=0) - emitted          # value of planes 0..t-1, per pixel
    return (clean_levels.float() - before >= weights).float()


def flip_decoded_loss(output_spikes: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """STBP's decoded MSE (UWD), with each bit's gradient the change that flipping it makes (ours).

    Through a surrogate, the decoded MSE hands bit t of a pixel the gradient
    ``2 w_t (d - c)`` (decoded ``d``, clean ``c``), the slope at the bit's current value.
    For a binary bit that slope misleads: a pixel decoded 10 levels too low pushes its
    MSB up with 128 times the LSB's force, although turning the MSB on would overshoot
    by 118. Here the gradient is the exact difference ``E(o_t = 1) - E(o_t = 0)`` of
    the pixel's squared error with the other bits as emitted, ``2 w_t (d_0 - c + w_t / 2)``
    (``d_0``: decoded with bit t off), which is the slope at ``o_t = 1/2``: bit t is
    pushed on only if that brings the pixel closer. Unlike the bit-plane loss the
    planes are judged jointly, against the network's own other bits.

    The value is the decoded MSE (as :func:`stbp_loss` gives), so logged losses compare.
    ``output_spikes``: ``[T, B, ...]`` 0/1; ``clean``: ``[B, ...]`` in ``[0, 1]``.
    """
    decoded_loss = stbp_loss(output_spikes, clean, "uwd")
    steps = output_spikes.shape[0]
    scale = float((1 << steps) - 1)
    with torch.no_grad():
        spikes = output_spikes.float()
        weights = uwe_weights(steps, device=spikes.device).view(-1, *([1] * clean.dim())) / scale
        error = (spikes * weights).sum(dim=0) - clean.float()          # d - c, in [0, 1] units
        error_with_bit_off = error - spikes * weights                   # d_0 - c, per plane
        flip_gain = 2 * weights * (error_with_bit_off + weights / 2) / clean.numel()
    # Value: the decoded MSE; gradient with respect to o_t: flip_gain.
    return decoded_loss.detach() + (flip_gain * (output_spikes - output_spikes.detach())).sum()


@torch.no_grad()
def flip_targets(output_spikes: torch.Tensor, clean_levels: torch.Tensor) -> torch.Tensor:
    """UWD bit-plane targets: each bit as it should be with every other plane as emitted (ours).

    With plane t off the pixel decodes to ``d_0``; turning it on adds ``w_t``. On is
    closer to the clean value ``c`` exactly when ``c - d_0 > w_t / 2``. Where
    :func:`residual_targets` assumes the later planes will be right, these targets take
    the network's later planes as they are, so every plane is judged against the
    others jointly; they are UWE's bits when the output is right (every ``|c - d| = 0``).

    ``output_spikes``: ``[T, B, ...]`` 0/1; ``clean_levels``: ``[B, ...]`` integers in
    ``[0, 2^T - 1]``. Returns 0/1 targets shaped like ``output_spikes``, without gradient.
    """
    emitted, weights = _emitted_values(output_spikes, clean_levels, "flip_targets")
    without = emitted.sum(dim=0) - emitted                       # decoded with plane t off
    return (clean_levels.float() - without > weights / 2).float()
