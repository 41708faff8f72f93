"""The ``vtsnn circuit`` command: what real SAR ADC and DAC components do to a denoiser.

Section 4.4 of the paper proposes building UWE as a successive-approximation ADC and
UWD as a binary-weighted resistor DAC. This command sweeps the non-idealities of
:mod:`vtsnn.circuits` one at a time and reports

1. the circuits' figures of merit (ADC DNL/INL, missing codes, ENOB, output DAC
   DNL/INL, offset and gain errors) for every value, averaged over seeds (one seed =
   one chip with its own resistor draws and comparator noise), and
2. unless ``--skip-denoise``, the end-to-end effect: PSNR of a trained denoiser on its
   test set when the circuits replace the ideal UWE encoder and UWD decoder, next to
   the PSNR with the ideal codec.

Everything goes to ``--out``: ``sweep.json`` (all records and the setup),
``sweep.md`` (the tables, also printed), ``sweep.png`` (figures of merit) and
``psnr.png`` (PSNR against each non-ideality).

*Decisions.* The circuits are 8-bit (the models' spike trains) with a 1 V reference,
so one LSB is 1/256 V; comparator values are volts on the command line and in the
JSON (a value may also be written in LSB, e.g. ``0.5lsb``), and the tables and the
PSNR plot show them in LSB. ``--kind both`` (the default) runs the binary-weighted
DAC of the paper and the R-2R ladder alternative. The default test set is the first
1000 images (``--test-limit 0``: all), which is enough to resolve the PSNR changes
that matter and keeps a CPU run short; chips that behave identically (any seed
without mismatch or noise, an ideal R-2R and an ideal binary DAC) are simulated once.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

# The command module, by module and not by name: cli imports this file to register the
# command, so its functions are looked up when the command runs, not at import time.
from . import cli as cli_module

BITS = 8                     # the models' spike trains
V_REF = 1.0                  # volts; one LSB is V_REF / 2**BITS
LSB_VOLTS = V_REF / (1 << BITS)
DEFAULT_OUT = "results/circuit"
DEFAULT_TEST_LIMIT = 1000
DEFAULT_SEEDS = (0, 1, 2)
KIND_CHOICES = ("binary", "r2r", "both")
COMPARATOR_PARAMETERS = ("comparator_offset", "comparator_noise")
LSB_MULTIPLES = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)
DEFAULT_VALUES = {
    "mismatch": (0.0, 0.001, 0.003, 0.01, 0.03),
    "comparator_offset": tuple(multiple * LSB_VOLTS for multiple in LSB_MULTIPLES),
    "comparator_noise": tuple(multiple * LSB_VOLTS for multiple in LSB_MULTIPLES),
    "v_ref_error": (0.0, 0.001, 0.01, 0.05),
}
FIGURE_OF_MERIT_COLUMNS = (
    ("max_abs_dnl", "ADC max abs DNL (LSB)", "{:.3f}"),
    ("max_abs_inl", "ADC max abs INL (LSB)", "{:.3f}"),
    ("missing_codes", "missing codes", "{:.1f}"),
    ("enob", "ENOB (bits)", "{:.2f}"),
    ("dac_max_abs_dnl", "DAC max abs DNL (LSB)", "{:.3f}"),
    ("dac_max_abs_inl", "DAC max abs INL (LSB)", "{:.3f}"),
    ("offset_error_lsb", "ADC offset (LSB)", "{:+.2f}"),
    ("gain_error_lsb", "ADC gain error (LSB)", "{:+.2f}"),
)


@dataclasses.dataclass
class CircuitPlan:
    """What one ``vtsnn circuit`` run sweeps, checked before any work starts."""

    kinds: tuple[str, ...]
    values: dict[str, tuple[float, ...]]      # parameter -> values, in sweep order
    seeds: tuple[int, ...]
    test_limit: int | None                    # None: the whole test set

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(self.values)


# ============================================================================ parser

def add_command(commands) -> None:
    """Register ``vtsnn circuit`` on the subparsers of the ``vtsnn`` parser."""
    parser = cli_module._subcommand(
        commands, "circuit", "simulate the UWE/UWD circuits (SAR ADC, resistor DAC)",
        "Behavioural simulation of the circuits of the paper's Section 4.4: UWE as an 8-bit\n"
        "SAR ADC, UWD as a resistor DAC (1 V reference, 1 LSB = 1/256 V). Each non-ideality\n"
        "is swept alone; for every value and seed (one chip each) it measures the figures\n"
        "of merit (DNL/INL, missing codes, ENOB) and, unless --skip-denoise, the PSNR of a\n"
        "trained denoiser on its test set with the circuits in place of the ideal codec.\n"
        "Writes sweep.json, sweep.md, sweep.png and psnr.png to --out.\n\n"
        "parameters: mismatch (relative sigma of every resistor), comparator_offset and\n"
        "comparator_noise (volts; or in LSB, e.g. 0.5lsb), v_ref_error (relative)\n\n"
        "example: vtsnn circuit --kind binary --parameters mismatch --values 0,0.01,0.03",
        run_circuit)
    cli_module._add_model_option(parser)
    parser.add_argument("--kind", choices=KIND_CHOICES, default="both",
                        help="DAC of the ADC and of the decoder: binary-weighted resistors (the paper's), "
                             "an R-2R ladder, or both (default: both)")
    parser.add_argument("--parameters", metavar="LIST", default=",".join(DEFAULT_VALUES),
                        help=f"comma-separated non-idealities to sweep (default: {','.join(DEFAULT_VALUES)})")
    parser.add_argument("--values", metavar="VALUES", nargs="+", default=None,
                        help="values to sweep instead of the defaults: 'V1,V2,...' with one parameter, or "
                             "'NAME=V1,V2,...' per parameter; comparator values in volts or with an 'lsb' "
                             "suffix (defaults: " + describe_default_values() + ")")
    parser.add_argument("--seeds", metavar="LIST", default=",".join(map(str, DEFAULT_SEEDS)),
                        help="comma-separated seeds, one chip each (default: 0,1,2)")
    parser.add_argument("--test-limit", metavar="N", type=int, default=DEFAULT_TEST_LIMIT,
                        help=f"denoise the first N test images (default: {DEFAULT_TEST_LIMIT}; 0: all)")
    parser.add_argument("--out", metavar="DIR", default=DEFAULT_OUT,
                        help=f"folder for sweep.json, sweep.md, sweep.png, psnr.png (default: {DEFAULT_OUT})")
    cli_module._add_data_dir_option(parser)
    cli_module._add_device_option(parser)
    cli_module._add_precision_option(parser)
    parser.add_argument("--skip-denoise", action="store_true",
                        help="only the figures of merit: no model, no test set, no psnr.png")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def describe_default_values() -> str:
    parts = []
    for parameter, values in DEFAULT_VALUES.items():
        if parameter in COMPARATOR_PARAMETERS:
            parts.append(f"{parameter} {','.join(f'{v / LSB_VOLTS:g}' for v in values)} LSB")
        else:
            parts.append(f"{parameter} {','.join(f'{v:g}' for v in values)}")
    return "; ".join(parts)


# ============================================================================ plan

def parse_plan(args: argparse.Namespace) -> CircuitPlan:
    """The checked plan from the options; a ValueError (one line) names what is wrong."""
    kinds = ("binary", "r2r") if args.kind == "both" else (args.kind,)
    parameters = parse_parameters(args.parameters)
    values = parse_values(args.values, parameters)
    seeds = parse_seeds(args.seeds)
    if args.test_limit < 0:
        raise ValueError(f"--test-limit must be 0 (all) or a positive count, got {args.test_limit}")
    plan = CircuitPlan(kinds, values, seeds, args.test_limit or None)
    check_circuits_can_be_built(plan)
    return plan


def parse_parameters(text: str) -> tuple[str, ...]:
    from .circuits import SWEEP_PARAMETERS

    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not names:
        raise ValueError(f"--parameters needs at least one of {', '.join(SWEEP_PARAMETERS)}")
    unknown = [name for name in names if name not in SWEEP_PARAMETERS]
    if unknown:
        raise ValueError(f"--parameters: unknown {', '.join(map(repr, unknown))}; "
                         f"choose from {', '.join(SWEEP_PARAMETERS)}")
    return names


def parse_values(specs: list[str] | None, parameters: tuple[str, ...]) -> dict[str, tuple[float, ...]]:
    """Values per parameter: the defaults, replaced by each ``NAME=LIST`` (or bare LIST) given."""
    values = {parameter: DEFAULT_VALUES[parameter] for parameter in parameters}
    for spec in specs or []:
        name, separator, listed = spec.partition("=")
        if not separator:
            if len(parameters) != 1:
                raise ValueError(f"--values {spec!r}: with several parameters, name one as NAME=V1,V2,...")
            name, listed = parameters[0], spec
        name = name.strip()
        if name not in values:
            raise ValueError(f"--values {spec!r}: {name!r} is not among the swept parameters "
                             f"({', '.join(parameters)})")
        values[name] = tuple(parse_value(part, name) for part in listed.split(","))
    return values


def parse_value(text: str, parameter: str) -> float:
    """A number; for the comparator it may end in 'lsb' (times 1/256 V)."""
    text = text.strip()
    in_lsb = text.lower().endswith("lsb")
    if in_lsb and parameter not in COMPARATOR_PARAMETERS:
        raise ValueError(f"--values: {text!r} is in LSB, but {parameter} is relative, not a voltage")
    number = text[:-3] if in_lsb else text
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"--values: {text!r} is not a number (for {parameter})") from None
    return value * LSB_VOLTS if in_lsb else value


def parse_seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--seeds: expected comma-separated integers such as 0,1,2, got {text!r}") from None
    if any(seed < 0 for seed in seeds):
        raise ValueError(f"--seeds must be non-negative, got {text!r}")
    return tuple(dict.fromkeys(seeds))


def check_circuits_can_be_built(plan: CircuitPlan) -> None:
    """Build one chip per value now, so that a bad value fails before minutes of work."""
    from .circuits import make_circuits

    for parameter, values in plan.values.items():
        for value in values:
            for kind in plan.kinds:
                try:
                    make_circuits(BITS, kind, V_REF, seed=plan.seeds[0], **{parameter: value})
                except ValueError as error:
                    raise ValueError(f"--values: {parameter}={value:g}: {error}") from None


# ============================================================================ run

def run_circuit(args: argparse.Namespace) -> int:
    plan = parse_plan(args)
    out = Path(args.out)
    denoising = None if args.skip_denoise else load_denoising(args, plan)
    progress = not args.quiet
    merit_records = figure_of_merit_sweep(plan, progress)
    psnr_records = end_to_end_records(plan, denoising, progress) if denoising else []
    report = build_report(args, plan, denoising, merit_records, psnr_records)
    write_outputs(out, report, merit_records, psnr_records)
    print(report["markdown"], end="")
    written = ["sweep.json", "sweep.md", "sweep.png"] + (["psnr.png"] if psnr_records else [])
    print(f"\nwritten to {out}: {', '.join(written)}")
    return 0


@dataclasses.dataclass
class Denoising:
    """A trained model and its test images, for the end-to-end sweep."""

    model: object
    config: object
    label: str
    clean: object
    noisy: object


def load_denoising(args: argparse.Namespace, plan: CircuitPlan) -> Denoising:
    from .circuits import check_circuit_model
    from .train import load_test_set

    model, config, label = cli_module.load_model(args.model, args.device, args.precision)
    check_circuit_model(config, ())         # an ANN or TTFS/MPD model has no UWE/UWD to replace
    print(cli_module.describe_model(label, config))
    clean, noisy = load_test_set(dataclasses.replace(config, test_limit=plan.test_limit), args.data_dir)
    print(f"test set: {clean.shape[0]} images with the fixed noise {config.noise:g} (seed {config.test_seed})")
    return Denoising(model, config, label, clean, noisy)


def _bar(total: int, description: str, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="value", disable=not progress, dynamic_ncols=True,
                file=sys.stderr)


def figure_of_merit_sweep(plan: CircuitPlan, progress: bool) -> list[dict]:
    """:func:`vtsnn.circuits.sweep` for every (parameter, kind), one value at a time for the bar."""
    from .circuits import sweep

    records = []
    total = len(plan.kinds) * sum(len(values) for values in plan.values.values())
    with _bar(total, "figures of merit", progress) as bar:
        for parameter, values in plan.values.items():
            for kind in plan.kinds:
                for value in values:
                    records += sweep(kind, parameter, [value], bits=BITS, seeds=plan.seeds, v_ref=V_REF)
                    bar.update()
    return records


def end_to_end_records(plan: CircuitPlan, denoising: Denoising, progress: bool) -> list[dict]:
    """:func:`vtsnn.circuits.end_to_end_sweep` for every (parameter, kind), sharing one chip cache."""
    from .circuits import end_to_end_sweep

    records, cache = [], {}
    total = len(plan.kinds) * sum(len(values) for values in plan.values.values())
    with _bar(total, "denoising through circuits", progress) as bar:
        for parameter, values in plan.values.items():
            for kind in plan.kinds:
                for value in values:
                    records += end_to_end_sweep(denoising.model, denoising.config, denoising.clean,
                                                denoising.noisy, parameter, [value], kind=kind, seeds=plan.seeds,
                                                v_ref=V_REF, cache=cache)
                    bar.update()
    return records


# ============================================================================ report

def build_report(args, plan: CircuitPlan, denoising: Denoising | None, merit_records: list[dict],
                 psnr_records: list[dict]) -> dict:
    """The JSON payload of ``sweep.json``; its ``markdown`` entry is ``sweep.md``."""
    argv = getattr(args, "argv", None)
    report = {
        "command": cli_module.command_line(sys.argv[1:] if argv is None else argv),
        "model": denoising.label if denoising else None,
        "dataset": denoising.config.dataset if denoising else None,
        "noise": denoising.config.noise if denoising else None,
        "precision": denoising.config.precision if denoising else None,
        "test_images": int(denoising.clean.shape[0]) if denoising else 0,
        "bits": BITS,
        "v_ref": V_REF,
        "lsb_volts": LSB_VOLTS,
        "kinds": list(plan.kinds),
        "parameters": list(plan.parameters),
        "values": {parameter: list(values) for parameter, values in plan.values.items()},
        "seeds": list(plan.seeds),
        "psnr_ideal": psnr_records[0]["psnr_ideal"] if psnr_records else None,
        "noisy_psnr": psnr_records[0]["noisy_psnr"] if psnr_records else None,
        "figures_of_merit": merit_records,
        "end_to_end": psnr_records,
    }
    report["markdown"] = markdown_report(report)
    return report


def format_value(parameter: str, value: float) -> str:
    if parameter in COMPARATOR_PARAMETERS:
        return f"{value / LSB_VOLTS:g} LSB ({value * 1e3:.3g} mV)"
    return f"{value:g}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def figure_of_merit_table(records: list[dict], parameter: str) -> str:
    header = ["kind", "value"] + [title for _, title, _ in FIGURE_OF_MERIT_COLUMNS]
    rows = [[r["kind"], format_value(parameter, r["value"])]
            + [style.format(r[key]) for key, _, style in FIGURE_OF_MERIT_COLUMNS]
            for r in records if r["parameter"] == parameter]
    return markdown_table(header, rows)


def psnr_table(records: list[dict], parameter: str) -> str:
    header = ["kind", "value", "PSNR with circuits (dB)", "std over seeds (dB)", "ideal UWE/UWD (dB)",
              "change (dB)"]
    rows = [[r["kind"], format_value(parameter, r["value"]), f"{r['psnr_mean']:.3f}", f"{r['psnr_std']:.3f}",
             f"{r['psnr_ideal']:.3f}", f"{r['psnr_mean'] - r['psnr_ideal']:+.3f}"]
            for r in records if r["parameter"] == parameter]
    return markdown_table(header, rows)


def markdown_report(report: dict) -> str:
    from .circuits import PARAMETER_LABELS

    seeds = ",".join(map(str, report["seeds"]))
    lines = [
        "# UWE / UWD circuit simulation\n",
        f"Command: `{report['command']}`\n",
        f"{report['bits']}-bit SAR ADC (UWE) and resistor DAC (UWD), v_ref {report['v_ref']:g} V "
        f"(1 LSB = {report['lsb_volts'] * 1e3:.4g} mV); DAC kinds: {', '.join(report['kinds'])}; "
        f"seeds {seeds} (one chip each; figures are means over the chips).\n",
        "## Figures of merit\n",
        "Endpoint DNL/INL; offset and gain errors of the ADC from its first and last transitions.\n",
    ]
    if len(report["kinds"]) > 1:
        lines.append("Without resistor mismatch an R-2R ladder and a binary-weighted DAC are the same "
                     "circuit (identical bit weights), so only the mismatch rows of the two kinds differ.\n")
    for parameter in report["parameters"]:
        lines.append(f"### {PARAMETER_LABELS[parameter]}\n")
        lines.append(figure_of_merit_table(report["figures_of_merit"], parameter))
    if report["end_to_end"]:
        lines += [
            "## Denoising with the circuits\n",
            f"Model {report['model']} ({report['dataset']}, noise {report['noise']:g}, run in "
            f"{report['precision']}) on "
            f"{report['test_images']} test images: PSNR {report['psnr_ideal']:.3f} dB with the ideal "
            f"UWE/UWD codec; noisy input {report['noisy_psnr']:.3f} dB.\n",
        ]
        for parameter in report["parameters"]:
            lines.append(f"### {PARAMETER_LABELS[parameter]}\n")
            lines.append(psnr_table(report["end_to_end"], parameter))
    return "\n".join(lines)


def write_outputs(out: Path, report: dict, merit_records: list[dict], psnr_records: list[dict]) -> None:
    from .circuits import plot_end_to_end, plot_sweep

    out.mkdir(parents=True, exist_ok=True)
    payload = {key: value for key, value in report.items() if key != "markdown"}
    cli_module.write_json(out / "sweep.json", payload)
    (out / "sweep.md").write_text(report["markdown"])
    plot_sweep(merit_records, out / "sweep.png")
    if psnr_records:
        plot_end_to_end(psnr_records, out / "psnr.png")
    else:
        # A psnr.png left by an earlier run would pass for this run's.
        (out / "psnr.png").unlink(missing_ok=True)
