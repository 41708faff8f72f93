"""Each epoch's mean logged training loss and test PSNR, from a run's log.jsonl.

    python scripts/epoch_losses.py results/long-training/curves/fashion_mnist-if-0.2-lr0.01-ema0.999.jsonl

A training run logs its loss every ``log_every`` steps (records of kind "train") and
scores the test set after each epoch (kind "eval"). The mean is over the logged steps of
the epoch, not over every step: it is what the README quotes as an epoch's training loss.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vtsnn.reproduce import read_log


def epoch_rows(log_path: Path) -> list[tuple[int, float | None, float | None]]:
    """``(epoch, mean logged training loss, test PSNR)`` per epoch, in order."""
    losses: dict[int, list[float]] = {}
    psnrs: dict[int, float] = {}
    for record in read_log(log_path):
        if record.get("kind") == "train":
            losses.setdefault(record["epoch"], []).append(record["loss"])
        elif record.get("kind") == "eval":
            psnrs[record["epoch"]] = record.get("psnr")
    return [(epoch, sum(losses[epoch]) / len(losses[epoch]) if epoch in losses else None, psnrs.get(epoch))
            for epoch in sorted(set(losses) | set(psnrs))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="+", type=Path, help="log.jsonl files (a run's, or a copy under curves/)")
    args = parser.parse_args()
    for log_path in args.logs:
        print(log_path)
        print(f"{'epoch':>5}  {'mean loss':>9}  {'test PSNR':>9}")
        for epoch, loss, psnr in epoch_rows(log_path):
            loss_text = "–" if loss is None else f"{loss:.4f}"
            psnr_text = "–" if psnr is None else f"{psnr:.2f}"
            print(f"{epoch:>5}  {loss_text:>9}  {psnr_text:>9}")


if __name__ == "__main__":
    main()
