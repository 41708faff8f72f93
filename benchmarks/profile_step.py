"""Where a training (or inference) step of one benchmark mode spends its time.

Run from the repository root:

    python benchmarks/profile_step.py                    # the shipped training mode
    python benchmarks/profile_step.py --mode infer --by-shape

Builds the step exactly as ``benchmarks/throughput.py`` does, warms it up, then runs
it under ``torch.profiler`` and prints the operators sorted by their own CPU time.
``--by-shape`` splits them by input shapes (which convolution is slow).
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile


def load_throughput():
    path = Path(__file__).resolve().parent / "throughput.py"
    spec = importlib.util.spec_from_file_location("throughput", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> str:
    throughput = load_throughput()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", default="train", choices=sorted(throughput.MODES))
    parser.add_argument("--steps", type=int, default=5, help="profiled steps (after 3 warm-up steps)")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument("--by-shape", action="store_true", help="one row per operator and input shapes")
    args = parser.parse_args(argv)
    spec = throughput.MODES[args.mode]
    throughput.apply_settings(spec)
    step = throughput.build_mode(args.mode, spec, args.batch, args.size)
    for _ in range(3):
        step()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=args.by_shape) as profiler:
        for _ in range(args.steps):
            step()
    table = profiler.key_averages(group_by_input_shape=args.by_shape).table(
        sort_by="self_cpu_time_total", row_limit=args.rows)
    print(f"{args.mode}: {args.steps} steps of batch {args.batch}, {args.size}x{args.size}, "
          f"{torch.get_num_threads()} threads")
    print(table)
    return table


if __name__ == "__main__":
    main()
