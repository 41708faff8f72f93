"""Mean firing rate of the hidden spiking layers of each scored cell of an experiment.

    python scripts/hidden_firing_rates.py learning-rate [--results results]

Reads the per-layer ``firing_rates`` that ``vtsnn reproduce`` records in each cell's
JSON (measured on the test set while scoring) and prints, per cell, PSNR and the
unweighted mean over the hidden layers (every layer but the output neuron).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vtsnn.models import OUTPUT_LAYER


def hidden_mean(firing_rates: dict[str, float]) -> float:
    hidden = [rate for layer, rate in firing_rates.items() if layer != OUTPUT_LAYER]
    return sum(hidden) / len(hidden)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment")
    parser.add_argument("--results", default="results", type=Path)
    args = parser.parse_args(argv)
    print(f"{'cell':42s} {'PSNR':>6s} {'hidden layers':>14s} {'mean rate':>9s}")
    for path in sorted((args.results / args.experiment).glob("*.json")):
        record = json.loads(path.read_text())
        if not isinstance(record, dict) or not record.get("firing_rates"):
            continue                            # summary.json (a list), classifiers; ANN cells record none
        rates = record["firing_rates"]
        print(f"{record['cell']:42s} {record['psnr']:6.2f} {len(rates) - 1:14d} {100 * hidden_mean(rates):8.1f}%")


if __name__ == "__main__":
    main()
