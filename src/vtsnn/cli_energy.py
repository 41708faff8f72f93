"""``vtsnn energy``: operations and energy of a denoiser on its noisy test images (Table 3).

Loads a model, runs it on the fixed noisy test images of its dataset at its training
noise level, and prints a Markdown table per layer (input firing rate, ANN MACs,
exact SNN ACs and the paper's formula, energies) with the ANN/SNN energy ratio; see
:mod:`vtsnn.energy`. :func:`add_command` adds the subcommand to ``vtsnn``'s parser.
"""

from __future__ import annotations

import argparse
import dataclasses

DEFAULT_TEST_LIMIT = 1000      # enough for stable firing rates; 0 = the whole test set, as the paper
ALL_PRESETS = "all"


def add_command(commands) -> None:
    """Add ``energy`` to the subparsers ``commands`` of the ``vtsnn`` parser."""
    from .cli import _add_data_dir_option, _add_device_option, _add_model_option, _add_precision_option, _subcommand
    from .energy import DEFAULT_PRESET, PRESETS

    parser = _subcommand(commands, "energy", "operation counts and energy of a model (Table 3)",
                         "Count a model's operations on its dataset's noisy test images (fixed test noise\n"
                         "at the model's training level): per layer the firing rate of its input spikes,\n"
                         "the MACs of the same-architecture ANN, the exact accumulates (ACs) of the SNN\n"
                         "and the paper's estimate (firing rate x T x MACs), with energies and the ANN/SNN\n"
                         "energy ratio (45 nm figures of Horowitz 2014; the paper: 4.6 pJ/MAC, 0.9 pJ/AC).\n"
                         "An ANN model gets MACs and ANN energy only. All numbers are per image.\n\n"
                         "example: vtsnn energy --model mnist-if-0.2 --test-limit 0 --json energy.json",
                         run_energy)
    _add_model_option(parser)
    parser.add_argument("--test-limit", metavar="N", type=int, default=DEFAULT_TEST_LIMIT,
                        help=f"count on the first N test images; 0 for all (the paper) "
                             f"(default: {DEFAULT_TEST_LIMIT})")
    parser.add_argument("--preset", choices=[*PRESETS, ALL_PRESETS], default=DEFAULT_PRESET,
                        help=f"energy per operation; '{ALL_PRESETS}' prints one table per preset "
                             f"(default: {DEFAULT_PRESET})")
    parser.add_argument("--batch-size", metavar="B", type=int, default=100,
                        help="images per forward pass (default: 100)")
    _add_data_dir_option(parser)
    _add_device_option(parser)
    _add_precision_option(parser)
    parser.add_argument("--json", metavar="OUT.json", default=None,
                        help="write the model, the images counted and the report of each preset as JSON")


def run_energy(args: argparse.Namespace) -> int:
    from .cli import describe_model, load_model, write_json
    from .energy import PRESETS, energy_report, format_table
    from .train import load_test_set, operation_counts

    if args.test_limit < 0:
        raise ValueError(f"--test-limit must be 0 (all) or more, got {args.test_limit}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    model, config, label = load_model(args.model, args.device, args.precision)
    print(describe_model(label, config))
    counted = dataclasses.replace(config, test_limit=args.test_limit or None)
    _, noisy = load_test_set(counted, args.data_dir)
    print(f"counting operations on {noisy.shape[0]} noisy test images (noise {config.noise:g})")
    counts = operation_counts(model, noisy, config, args.batch_size)

    presets = list(PRESETS) if args.preset == ALL_PRESETS else [args.preset]
    reports = {name: energy_report(counts, name) for name in presets}
    for name, report in reports.items():
        print(f"\n## {name}\n")
        print(format_table(report))
    if args.json:
        write_json(args.json, {"model": label, "dataset": config.dataset, "training": config.training,
                               "noise": config.noise, "precision": config.precision, "images": int(noisy.shape[0]),
                               "reports": reports})
        print(f"\nreport written to {args.json}")
    return 0
