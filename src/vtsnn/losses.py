"""ITBP and STBP losses (Eqs. 9-18).

- :func:`itbp_loss` compares output spike planes with the encoded clean label, one
  MSE per time step, weighted by the decoder's weight for that step and normalized by
  the weights' sum: the MSB plane matters 128 times more than the LSB plane for UWD.
  With ``squared_weights`` each plane weighs the square of its decoder weight instead
  (ours, not the paper's; see the function).
- :func:`stbp_loss` decodes the output and takes the MSE against the clean image.

Whether gradients also flow through time is the neurons' business
(``temporal_grad``), not the loss's: the two choices are independent.
"""

from __future__ import annotations

import torch

from .coding import decode, decoder_weights


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
