"""Training throughput of one run with every core against several one-share runs side by side.

`vtsnn reproduce NAME --jobs N` starts N workers with cores/N threads each. At small
batches a step has too little work to keep several threads busy, so N runs side by
side may train more images per second in all than one run with every core. This
measures both, in rounds that alternate (so that the CPU's thermal throttling hits
both alike), each worker timing throughput.py's shipped training step (U-VTSNN, IF,
T = 8, bf16) for the same wall-clock window. Run from the repository root:

    python benchmarks/parallel_runs.py --batch 5            # a table
    python benchmarks/parallel_runs.py --batch 5 --json     # one JSON object

Only the training step is timed: data loading and the validation checks of a real run
are left out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def work(mode: str, batch: int, size: int, start_at: float, seconds: float) -> dict:
    """In a worker: run ``mode``'s step from ``start_at`` for ``seconds``; images and time."""
    sys.path.insert(0, str(HERE))
    import throughput

    step = throughput.build_mode(mode, throughput.MODES[mode], batch, size)
    throughput.apply_settings(throughput.MODES[mode])
    step()
    step()  # warm-up: compilation, allocator, oneDNN kernels
    time.sleep(max(0.0, start_at - time.time()))
    started, steps = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        step()
        steps += 1
    return {"images": steps * batch, "seconds": time.perf_counter() - started}


def side_by_side(runs: int, threads: int, args: argparse.Namespace) -> float:
    """Images per second of ``runs`` workers with ``threads`` threads each, summed."""
    # Each worker builds its network and warms up before then, so that all time the same window.
    start_at = time.time() + args.start_delay
    command = [sys.executable, __file__, "--worker", "--mode", args.mode, "--batch", str(args.batch),
               "--size", str(args.size), "--seconds", str(args.seconds), "--start-at", str(start_at)]
    # torch reads these when it starts, as in `vtsnn reproduce --jobs`.
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    workers = [subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, text=True) for _ in range(runs)]
    outputs = [worker.communicate()[0] for worker in workers]
    if any(worker.returncode for worker in workers):
        raise SystemExit(f"a worker failed (exit codes {[worker.returncode for worker in workers]})")
    results = [json.loads(output) for output in outputs]
    return sum(result["images"] / result["seconds"] for result in results)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="runs side by side")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0, help="timed window of each worker")
    parser.add_argument("--mode", default="train", help="a training mode of benchmarks/throughput.py")
    parser.add_argument("--start-delay", type=float, default=20.0,
                        help="seconds the workers have to start and warm up before the timed window")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(work(args.mode, args.batch, args.size, args.start_at, args.seconds)))
        return {}
    cores = os.cpu_count() or 1
    if not 1 <= args.jobs <= cores:
        parser.error(f"--jobs must be between 1 and the {cores} cores")
    threads = max(1, cores // args.jobs)
    one, several = [], []
    for _ in range(args.rounds):
        one.append(side_by_side(1, cores, args))
        several.append(side_by_side(args.jobs, threads, args))
    best_one, best_several = max(one), max(several)
    result = {"one_run_img_s": round(best_one, 1), "side_by_side_img_s": round(best_several, 1),
              "side_by_side_vs_one_run": round(best_several / best_one, 2), "jobs": args.jobs,
              "threads_each": threads, "cpu_cores": cores, "batch": args.batch, "size": args.size,
              "mode": args.mode, "rounds": args.rounds, "seconds": args.seconds}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"U-VTSNN training ({args.mode}), batch {args.batch}, {args.size}x{args.size}, {cores} CPU cores, "
              f"best of {args.rounds} rounds of {args.seconds:g} s")
        print(f"  one run, {cores} threads           {best_one:8.1f} img/s")
        print(f"  {args.jobs} runs side by side, {threads} thread(s) each {best_several:8.1f} img/s in all"
              f"  {best_several / best_one:5.2f}x")
    return result


if __name__ == "__main__":
    main()
