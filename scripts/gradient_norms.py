"""How large a run's gradients were: the mean and percentiles of the logged norms, per epoch.

    python scripts/gradient_norms.py runs/flip-batch/RUN/log.jsonl [--limit 0.5]

Each loss record (kind "train") of a run's log holds the gradient's norm over all weights
together before any clipping, the mean over the steps since the last record
(``grad_norm``) and the largest (``grad_norm_max``). With ``log_every`` 1 each record is
one step, and the percentiles are over steps; otherwise they are over the records'
means. The mean is over steps either way (each record averages as many). ``--limit X``
also gives the share of records whose norm is above X: with ``log_every`` 1, the share
of steps that ``--clip-grad X`` would have scaled down.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vtsnn.reproduce import read_log

PERCENTILES = (10, 50, 90, 99)


def epoch_norms(log_path: Path) -> dict[int, list[float]]:
    """The logged gradient norms (``grad_norm``) of each epoch, in order."""
    norms: dict[int, list[float]] = {}
    for record in read_log(log_path):
        if record.get("kind") == "train" and "grad_norm" in record:
            norms.setdefault(record["epoch"], []).append(record["grad_norm"])
    if not norms:
        raise SystemExit(f"{log_path}: no gradient norms logged (runs trained before they were logged have none)")
    return norms


def summary_row(norms: list[float], limit: float | None) -> list[float]:
    """The mean of ``norms``, their percentiles in :data:`PERCENTILES` order, then (with
    ``limit``) the share of them above it, in %."""
    row = [float(np.mean(norms)), *(float(value) for value in np.percentile(norms, PERCENTILES))]
    if limit is not None:
        row.append(100 * float(np.mean(np.asarray(norms) > limit)))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path, help="a run's log.jsonl (or its copy under curves/)")
    parser.add_argument("--limit", type=float, help="also give the share of norms above this")
    args = parser.parse_args()
    norms = epoch_norms(args.log)
    header = ["epoch", "records", "mean", *(f"p{p}" for p in PERCENTILES)]
    if args.limit is not None:
        header.append(f"% > {args.limit:g}")
    print(args.log)
    print("  ".join(f"{name:>8}" for name in header))
    groups = [(str(epoch), values) for epoch, values in norms.items()]
    groups.append(("all", [value for values in norms.values() for value in values]))
    for name, values in groups:
        cells = [name, str(len(values)), *(f"{value:.3f}" for value in summary_row(values, args.limit))]
        print("  ".join(f"{cell:>8}" for cell in cells))


if __name__ == "__main__":
    main()
