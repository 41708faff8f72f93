"""Raw weights against their average at every check of a run trained with ``--score-raw``.

    python scripts/raw_at_checks.py runs/flip-raw/RUN/log.jsonl [more logs]

Such a run scores the validation set with both kinds of weights at every check
(``val_psnr``: the average, ``raw_val_psnr``: the optimizer's own). For each log this
prints how many checks the raw weights won, the mean and the range of raw minus average,
and the best check of each kind: the one a run keeping only the average would have
picked, the best raw one, and so the one ``--score-raw`` kept. It compares the two
within one run, so it holds whichever machine the run was made on.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vtsnn.reproduce import read_log


def check_scores(log_path: Path) -> list[tuple[float, float, float]]:
    """(epoch, average's validation PSNR, raw weights') at every check, in order."""
    rows = [(r["epoch"], r["val_psnr"], r["raw_val_psnr"]) for r in read_log(log_path)
            if r.get("kind") in ("check", "eval") and "raw_val_psnr" in r]
    if not rows:
        raise SystemExit(f"{log_path}: no raw-weight scores logged (the run was not trained with --score-raw)")
    return rows


def summary(rows: list[tuple[float, float, float]]) -> dict:
    """Wins, mean/min/max of raw minus average, and each kind's best check as (epoch, PSNR);
    ties go to the earlier check, as the run keeps them."""
    differences = [raw - average for _, average, raw in rows]
    best_average = max(rows, key=lambda row: (row[1], -row[0]))
    best_raw = max(rows, key=lambda row: (row[2], -row[0]))
    # At one check the raw weights are scored first, so they win a tie there.
    kept = max((best_raw[2], -best_raw[0], 1), (best_average[1], -best_average[0], 0))
    return {"checks": len(rows), "raw_wins": sum(d > 0 for d in differences),
            "mean_difference": sum(differences) / len(differences),
            "min_difference": min(differences), "max_difference": max(differences),
            "best_average": (best_average[0], best_average[1]), "best_raw": (best_raw[0], best_raw[2]),
            "kept": "raw" if kept[2] else "average"}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", type=Path, nargs="+", help="logs of runs trained with --score-raw")
    args = parser.parse_args(argv)
    for log in args.logs:
        result = summary(check_scores(log))
        (average_epoch, average), (raw_epoch, raw) = result["best_average"], result["best_raw"]
        print(log)
        print(f"  raw weights higher at {result['raw_wins']} of {result['checks']} checks; raw minus average: "
              f"mean {result['mean_difference']:+.2f} dB, from {result['min_difference']:+.2f} "
              f"to {result['max_difference']:+.2f}")
        print(f"  best average: {average:.2f} dB at epoch {average_epoch:g}; best raw: {raw:.2f} dB at epoch "
              f"{raw_epoch:g}; kept: {result['kept']}")


if __name__ == "__main__":
    main()
