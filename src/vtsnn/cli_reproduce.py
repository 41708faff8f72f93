"""``vtsnn reproduce NAME``: run the paper's tables and figures (see :mod:`vtsnn.experiments`).

Trains or resumes every run the experiment needs (finished runs are skipped), scores
each one into ``OUT/NAME/CELL.json`` and rebuilds ``OUT/NAME/README.md``,
``summary.json`` and the figures. ``--jobs J`` starts J processes, each running the
shard ``i/J`` (``python -m vtsnn.cli_reproduce``), with the CPU threads split between
them; ``--shard I/N`` runs one shard here, e.g. one per machine sharing the folders.

:func:`add_command` adds the subcommand to ``vtsnn``'s parser; ``python -m
vtsnn.cli_reproduce NAME ...`` runs it alone (what ``--jobs`` starts).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

COMMAND = "reproduce"
DESCRIPTION = (
    "Reproduce one of the paper's experiments: train (or resume) the runs it needs, skipping\n"
    "finished ones, score them, and write OUT/NAME/: a JSON per cell, README.md (our numbers\n"
    "beside the paper's and the noisy input's), summary.json and the figures.\n\n"
    "  table1   PSNR of VTSNN-IF/LIF on MNIST, F-MNIST, CIFAR-10 at eta 0.2-0.8 (24 runs)\n"
    "  table2   encoders x decoders x STBP/ITBP (both ITBP readings) + ANN, MNIST eta 0.2\n"
    "  fig5     one MNIST digit denoised at the four noise levels (Table 1's models)\n"
    "  fig6     VTLeNet accuracy for T = 2, 4, 6, 8 and eta = 0-0.8 (20 runs)\n"
    "  fig7     PSNR/MSE and output firing rate against the output threshold\n"
    "  energy   operations and energy of the MNIST eta 0.2 IF model\n"
    "  seeds    the MNIST eta 0.2 IF model with seeds 0, 1, 2 (mean and spread)\n"
    "  mpd-order  Table 2's MPD cells with MPD's weights reversed (seeds 0, 1, 2), and each code pair's round trip\n"
    "  table2-seeds  every Table 2 cell with seeds 0, 1, 2: mean, spread and ranks per row\n"
    "  ann-ceiling  the same-architecture ANN at each dataset and eta 0.2-0.8\n"
    "  noise-scale  MNIST IF with the noise scaled by MNIST's std (a reading of the paper)\n"
    "  training-rules  STBP against both ITBP readings (UWE-UWD), each at its best-validation epoch\n"
    "  output-threshold  F-MNIST and CIFAR-10 IF at eta 0.2 with output thresholds 0.077, 0.5, 1.0\n"
    "  learning-rate  the same IF cells (1e-3, 3e-3, 1e-2) and LIF at eta 0.2 (1e-3, 1e-2): Adam's peak rate;\n"
    "           F-MNIST IF's 1e-3 and 1e-2, and CIFAR-10 IF's 1e-2, again with seed 1\n"
    "  lif-tau  LIF at eta 0.2 (MNIST, F-MNIST) with the membrane time constant 1.1, 2, 4\n"
    "  lif-init  the same LIF cells with the initial weights' gain 1.5 (the recipe), 2.5, 3.0\n"
    "  weight-average  F-MNIST, CIFAR-10 IF and all LIF at eta 0.2, with a moving average of the weights\n"
    "  lr-and-average  the same cells at Adam's 1e-3 and 1e-2, each with and without the average\n"
    "  long-training  F-MNIST IF at eta 0.2 with both levers for 15 epochs, CIFAR-10 IF with the residual\n"
    "           targets for 10 (seeds 0 and 1), MNIST LIF at 0.2 and CIFAR-10 LIF at 0.6 with the\n"
    "           residual recipe for 10, unless --epochs is given\n"
    "  plane-weights  the eta 0.2 cells below the paper, each bit plane's loss weighted by its decoder\n"
    "           weight squared\n"
    "  decoded-loss  MNIST and F-MNIST IF at eta 0.4-0.8 trained on the decoded MSE (STBP)\n"
    "  joint-losses  F-MNIST IF at eta 0.2 with losses that judge the output bits together\n"
    "  residual-targets  the residual bit-plane targets with both levers on Table 1's eta 0.2 cells and\n"
    "           CIFAR-10 LIF at 0.6, the targets alone on CIFAR-10 IF; MNIST IF and CIFAR-10 LIF 0.6 again\n"
    "           with seeds 1 and 2, CIFAR-10 IF's targets alone with seed 1, F-MNIST IF with seed 1\n"
    "  recipe-parts  MNIST IF at eta 0.2 with the residual targets and the levers, alone and together\n"
    "  full-precision  Table 1's runs still under the paper's IF number (with room), again in fp32\n"
    "  lif-rate  residual-targets' LIF cells under the paper's IF number at the peak rate 3e-3 instead of 1e-2\n"
    "  residual-tau  the same LIF cells with the membrane time constant 2 and 4 instead of 1.1\n"
    "  tau-gain  residual-tau's tau 2 cells with the initialization's gain 4, firing at start as IF does\n"
    "  distill  F-MNIST IF and LIF at eta 0.2 (LIF: tau 2, init gain 1.5 and 4) and CIFAR-10 LIF at 0.2\n"
    "           (three seeds) trained against the ANN twin's output instead of the clean image\n"
    "  if-gain  distill's F-MNIST IF student with the initialization's gain 2 instead of 1.5\n"
    "  taught-fp32  distill's F-MNIST IF and LIF students (the cells still under the paper) in fp32\n"
    "  batch-size  distill's F-MNIST IF and LIF students with batches of 25 and 10 instead of 50\n"
    "  mid-epoch   batch-size's best students (IF batch 25, LIF 10) with 4 validation checks an epoch\n"
    "  batch-rate  mid-epoch's IF student (batch 25) with Adam's peak rate 5e-3 instead of 1e-2\n"
    "  flip     mid-epoch's students trained on images a random half of which are mirrored left-right\n"
    "  flip-epochs  flip's LIF student for 5 epochs instead of 3\n"
    "  flip-batch  flip's IF student with batches of 10 instead of 25 (seeds 0, 1 and 2)\n"
    "  flip-batch-epochs  flip-batch's student for 8 epochs instead of 5\n"
    "  flip-average  flip-batch's student with the weights averaged with decay 0.9998 instead of 0.999\n"
    "  flip-batch-restart  flip-batch's runs, each trained 2 more epochs from its kept weights\n"
    "  flip-seeds  flip's LIF student with seed 1, mirrored and not\n"
    "  flip-small-batch  flip-batch's student with batches of 5 instead of 10 (seeds 0 and 1)\n"
    "  flip-shift  flip-batch's student with training images moved by up to 1 pixel (seeds 0 and 1)\n"
    "  flip-decay  flip-batch's student with decoupled weight decay 5e-3 (AdamW's; seeds 0 and 1)\n"
    "  flip-clip  flip-batch's student with the gradient's norm clipped to 0.5 (seeds 0 and 1)\n"
    "  flip-small-rate  flip-small-batch's student (batches of 5) with Adam's peak rate 5e-3 (seeds 0-2)\n"
    "  flip-lif-tau  flip's mirrored LIF student with tau 4 (seeds 0 and 1) or 8 instead of 2\n"
    "  flip-lif-small-rate  flip's mirrored LIF student with batches of 5 at Adam's peak rate 5e-3\n"
    "           (seeds 0 and 1), and with tau 4 (seeds 0 and 1)\n"
    "  flip-raw  flip-batch's and flip-lif-small-rate's tau-4 students keeping raw or averaged weights\n"
    "           (whichever validates higher; seeds 0 and 1)\n"
    "  flip-jitter  flip-raw's students with the output's input jittered by up to 10 % in training\n"
    "  flip-jitter-small-rate  flip-jitter's IF students with batches of 5 at Adam's peak rate 5e-3\n"
    "  flip-wide-jitter  flip-jitter's LIF students with the output's input jittered by up to 20 %\n"
    "  flip-jitter-epochs  flip-jitter's LIF students for 5 or 8 epochs instead of 3\n"
    "  dense-checks  mid-epoch's students with 20 validation checks an epoch instead of 4\n"
    "  all      every experiment (shared runs are trained once)\n\n"
    "examples:\n"
    "  vtsnn reproduce table1 --list\n"
    "  vtsnn reproduce table2 --epochs 1 --override train_limit=5000 --jobs 2\n"
    "  vtsnn reproduce table1 --subset dataset=mnist,neuron=if --shard 0/2   (on machine A; 1/2 on B)\n"
    "  vtsnn reproduce table1 --as-recorded --list   (each cell as results/table1/ records it)"
)


def add_command(commands) -> None:
    """Add ``reproduce`` to the subparsers ``commands`` of the ``vtsnn`` parser."""
    from .cli import _subcommand

    parser = _subcommand(commands, COMMAND, "run the paper's tables and figures", DESCRIPTION, run_reproduce)
    add_options(parser)


def add_options(parser: argparse.ArgumentParser) -> None:
    from .cli import _add_data_dir_option, _add_device_option
    from .experiments import DEFAULT_EPOCHS, experiment_names

    parser.add_argument("name", metavar="NAME", choices=experiment_names(),
                        help=f"experiment: {', '.join(experiment_names())}")
    parser.add_argument("--epochs", metavar="N", type=int, default=None,
                        help=f"epochs per run (default: {DEFAULT_EPOCHS}); a finished run with fewer is continued")
    parser.add_argument("--subset", metavar="K=V,...", default=None,
                        help="only the cells matching every key (a repeated key matches either value), "
                             "e.g. dataset=mnist,neuron=if or id=uwe-uwd-stbp")
    parser.add_argument("--override", metavar="K=V", action="append", default=[],
                        help="change a config field in every run, e.g. channels=4,8 or train_limit=5000 "
                             "(repeatable); give reduced runs their own --runs-dir and --out")
    parser.add_argument("--as-recorded", action="store_true",
                        help="train each cell with the configuration and epochs its result in OUT/NAME/ "
                             "records (the committed tables mix them); cells without a result use the defaults")
    parser.add_argument("--shard", metavar="I/N", default=None,
                        help="run only shard I of N (from 0); shards are disjoint and cover all cells")
    parser.add_argument("--jobs", metavar="J", type=int, default=1,
                        help="run J shards in parallel processes here, CPU threads split (default: 1)")
    parser.add_argument("--runs-dir", metavar="DIR", default="runs", help="where runs are trained (default: runs)")
    parser.add_argument("--out", metavar="DIR", default="results", help="where results are written (default: results)")
    _add_data_dir_option(parser)
    _add_device_option(parser)
    parser.add_argument("--list", action="store_true", help="list the cells and their status; run nothing")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    # Set by --jobs for its workers: the user's command line, recorded with the results.
    parser.add_argument("--record-command", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--no-reports", action="store_true", help=argparse.SUPPRESS)


def run_reproduce(args: argparse.Namespace) -> int:
    from .experiments import cells, parse_overrides, parse_shard
    from .reproduce import reproduce_command, run_experiment

    overrides = parse_overrides(args.override)
    shard = parse_shard(args.shard) if args.shard else (0, 1)
    if args.jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {args.jobs}")
    if args.jobs > 1 and args.shard:
        raise ValueError("give --jobs or --shard, not both (--jobs J runs the shards 0/J ... J-1/J)")
    recorded_in = args.out if args.as_recorded else None
    selected = cells(args.name, args.epochs, args.subset, overrides, recorded_in, args.runs_dir)   # bad names fail here, before any work
    if args.list:
        return list_cells(args, selected, shard)
    if args.record_command:
        command = args.record_command
    elif hasattr(args, "argv"):             # set by vtsnn's main: the command exactly as typed
        command = _user_command(args)
    else:
        command = reproduce_command(args.name, args.epochs, args.subset, overrides, args.as_recorded)
    args.interrupt_hint = "finished epochs are saved; run the same command again to continue"
    if args.jobs > 1:
        return run_in_parallel(args, command, selected)
    run_experiment(args.name, out_root=args.out, runs_root=args.runs_dir, epochs=args.epochs, subset=args.subset,
                   shard=shard, data_dir=args.data_dir, progress=not args.quiet, overrides=overrides,
                   device=None if args.device == "auto" else args.device, command=command,
                   reports=not args.no_reports, recorded_in=recorded_in)
    return 0


def _user_command(args: argparse.Namespace) -> str:
    from .cli import command_line

    return command_line(args.argv)


def list_cells(args: argparse.Namespace, selected, shard) -> int:
    from .experiments import shard_cells
    from .reproduce import run_status

    mine = {id(cell) for cell in shard_cells(selected, shard)}
    width = max(len(f"{c.experiment}/{c.cell_id}") for c in selected)
    print(f"{len(selected)} cells" + (f", {len(mine)} in shard {shard[0]}/{shard[1]}" if shard[1] > 1 else ""))
    for cell in selected:
        if id(cell) not in mine:
            continue
        paper = "" if cell.paper is None else (
            f"paper {100 * cell.paper:.1f}%" if cell.is_classifier else f"paper {cell.paper:.2f} dB")
        shared = "" if cell.run_name == f"{cell.experiment}/{cell.cell_id}" else f" (run of {cell.run_name})"
        # The report sets a paired cell beside its pair (same run but for the arithmetic).
        paired = f" (paired with {cell.paired_with})" if cell.paired_with else ""
        print(f"{cell.experiment + '/' + cell.cell_id:<{width}}  {paper:<16} "
              f"{run_status(cell, args.runs_dir, args.out)}{shared}{paired}")
    return 0


def worker_command(args: argparse.Namespace, index: int, command: str) -> list[str]:
    """The command line of the worker that runs shard ``index`` of ``args.jobs``."""
    words = [sys.executable, "-m", "vtsnn.cli_reproduce", args.name, "--shard", f"{index}/{args.jobs}",
             "--runs-dir", args.runs_dir, "--out", args.out, "--device", args.device, "--quiet",
             "--no-reports", "--record-command", command]
    if args.epochs is not None:
        words += ["--epochs", str(args.epochs)]
    if args.subset:
        words += ["--subset", args.subset]
    if args.data_dir:
        words += ["--data-dir", args.data_dir]
    for item in args.override:
        words += ["--override", item]
    if args.as_recorded:
        words.append("--as-recorded")
    return words


def run_in_parallel(args: argparse.Namespace, command: str, selected) -> int:
    """Start one worker per shard, wait for all, then write the reports once."""
    from .cli import Terminated
    from .reports import write_reports

    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    # Each worker gets its share of the cores; torch reads these at start.
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    print(f"{args.name}: starting {args.jobs} workers with {threads} threads each")
    workers = [subprocess.Popen(worker_command(args, index, command), env=environment) for index in range(args.jobs)]
    try:
        codes = [worker.wait() for worker in workers]
    except KeyboardInterrupt as stop:
        for worker in workers:
            if isinstance(stop, Terminated) and worker.poll() is None:
                worker.terminate()      # SIGTERM came to this process alone; Ctrl-C reached them too
            worker.wait()               # let them save and stop
        raise
    for experiment in dict.fromkeys(cell.experiment for cell in selected):
        write_reports(experiment, args.out, data_dir=args.data_dir,
                      device=None if args.device == "auto" else args.device)
    failed = [f"{index}/{args.jobs} (exit code {code})" for index, code in enumerate(codes) if code != 0]
    if failed:
        print(f"vtsnn: error: shard {', '.join(failed)} failed; run the same command again to resume",
              file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m vtsnn.cli_reproduce NAME ...``: the command alone, with vtsnn's error handling."""
    from .cli import EXIT_ERROR, run_reporting_errors

    parser = argparse.ArgumentParser(prog=f"vtsnn {COMMAND}", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(parser)
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else EXIT_ERROR
    args.argv = [COMMAND, *argv]
    return run_reporting_errors(run_reproduce, args)

if __name__ == "__main__":
    sys.exit(main())
