"""Image quality metrics."""

from __future__ import annotations

import torch


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0,
         reduction: str = "mean") -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, per image (dim 0 = batch), then averaged.

    ``10 log10(data_range^2 / MSE)`` computed per image, as the paper averages over the
    test set image by image. ``reduction="none"`` returns the per-image values. A
    perfect image gives ``inf`` (its MSE is 0).
    """
    if pred.shape != target.shape:
        raise ValueError(f"psnr: shapes differ, {tuple(pred.shape)} vs {tuple(target.shape)}")
    if reduction not in ("mean", "none"):
        raise ValueError(f"psnr: reduction must be 'mean' or 'none', got {reduction!r}")
    if pred.dim() < 2:
        pred, target = pred.unsqueeze(0), target.unsqueeze(0)
    mse = (pred.double() - target.double()).pow(2).flatten(1).mean(dim=1)
    values = 10.0 * torch.log10(data_range ** 2 / mse)
    return values.mean() if reduction == "mean" else values


def standard_error(values: torch.Tensor) -> float:
    """The standard error of the mean of per-image ``values``: their standard deviation / sqrt(N).

    For :func:`psnr`'s per-image values (``reduction="none"``): how far the mean PSNR may
    move on another draw of as many test images (about two standard errors either way for
    95 %); it says nothing of another seed's training. ``nan`` for fewer than two values
    or an infinite one (a perfect image).
    """
    if values.numel() < 2 or not torch.isfinite(values).all():
        return float("nan")
    return (values.std(correction=1) / values.numel() ** 0.5).item()
