"""Publish a finished training run as a pretrained model shipped with the package.

    python scripts/publish_model.py runs/mnist-if-0.2 mnist-if-0.2 --command "vtsnn train ..."

Copies the run's checkpoint (config.json + model.safetensors) to
``src/vtsnn/pretrained/NAME/``: the one its validation set picked (``RUN/best``) when the
run held images out, else its last. Scores it with ``vtsnn evaluate`` on the full test set,
and writes ``MODEL_CARD.md`` (training command, epochs, seed, compute, learning curve,
the evaluation command and its verbatim output) plus ``results/pretrained/NAME.*``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from vtsnn.reproduce import scored_checkpoint
from vtsnn.figures import learning_curve
from vtsnn.machine import cpu_name
from vtsnn.run_folder import resolve_checkpoint

ROOT = Path(__file__).resolve().parent.parent
# The paper's Table 1, VTSNN-IF row (dB), by dataset and noise level.
PAPER_IF = {"mnist": {0.2: 23.57, 0.4: 23.15, 0.6: 23.09, 0.8: 22.56},
            "fashion_mnist": {0.2: 21.67, 0.4: 21.26, 0.6: 20.64, 0.8: 19.83},
            "cifar10": {0.2: 18.27, 0.4: 14.08, 0.6: 14.76, 0.8: 13.16}}


def read_log(run_dir: Path, batch_size: int) -> list[dict]:
    """The run's log, with images seen recomputed from the step count.

    Eval records written before train.evaluate's test-set size was renamed to
    ``test_images`` (2026-11-24) carry that size under ``images``; every step but an
    epoch's last covers ``batch_size`` images, so ``step * batch_size`` is exact when the
    training set divides into whole batches (MNIST: 60,000 / 50).
    """
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines() if line.strip()]
    return [{**r, "images": r["step"] * batch_size} for r in records]


# What the card says about each loss (TrainConfig.loss) the shipped models use.
LOSS_TEXT = {"bitplane": "the paper's bit-plane (ITBP) loss",
             "bitplane-residual": "the bit-plane (ITBP) loss against residual targets (ours: each plane's target "
                                  "is the bit that best corrects the planes the network has already emitted; "
                                  "`vtsnn.losses.residual_targets`)"}


def published_checkpoint(run_dir: Path) -> tuple[Path, str]:
    """The checkpoint to ship, the one ``vtsnn reproduce`` scores, and a sentence saying which it is."""
    checkpoint, selection = scored_checkpoint(run_dir)
    if selection["selected_by"] == "last epoch":
        return resolve_checkpoint(checkpoint), "the weights after the last epoch"
    return checkpoint, (f"the weights after epoch {selection['scored_epoch']}, the epoch with the highest PSNR on "
                        f"the held-out validation images ({selection['val_psnr']:.2f} dB)")


def method_text(config: dict) -> str:
    if config["training"] != "itbp":
        return config["training"].upper()
    loss = LOSS_TEXT.get(config["loss"], f"the `{config['loss']}` loss")
    reading = ("with gradients through time (the authors' released script's reading)" if config["temporal_grad"]
               else "with the membrane detached between time steps (the paper's reading)")
    return f"{loss}, {reading}"


def recipe_text(config: dict) -> str:
    """The training recipe, saying which parts are the paper's and which are ours."""
    averaging = (f", and a moving average of the weights (decay {config['ema_decay']}) is what is scored "
                 "and shipped" if config.get("ema_decay") else "")
    held_out = (f"; {config['val_size']:,} training images held out for validation"
                if config.get("val_size") else "")
    ours = ["the initialization", "schedule", "epoch count"]
    if config["loss"] != "bitplane":
        ours.append("loss targets")
    if config["lr"] != 1e-3:
        ours.append("learning rate")
    if config.get("ema_decay"):
        ours.append("averaging")
    return (f"Adam, peak lr {config['lr']} with a {config['lr_schedule']} schedule, batch {config['batch_size']},\n"
            f"  weight decay {config['weight_decay']}, {config['epochs']} epochs, seed {config['seed']},\n"
            f"  initialization `{config['init']}` (gain {config['init_gain']}), precision {config['precision']}"
            f"{averaging}{held_out}.\n"
            f"  The network is the paper's; {', '.join(ours[:-1])} and {ours[-1]} are ours "
            "(the authors' script: 60 epochs, Adam 1e-3, PyTorch's default initialization).")


def curve_table(evals: list[dict]) -> str:
    """The card's table of scores after each epoch, with the validation PSNR where the run held images out."""
    validated = all("val_psnr" in r for r in evals)
    header = ["epoch", "images seen", "test PSNR (dB)", "noisy input (dB)",
              *(["validation PSNR (dB)"] if validated else []), "seconds"]
    rows = [[r["epoch"], r["images"], f"{r['psnr']:.2f}", f"{r['noisy_psnr']:.2f}",
             *([f"{r['val_psnr']:.2f}"] if validated else []), f"{r.get('epoch_seconds', 0):.0f}"] for r in evals]
    return "\n".join([f"| {' | '.join(header)} |", "|" + "---|" * len(header),
                      *(f"| {' | '.join(map(str, row))} |" for row in rows)])


def evaluate(name: str, results: Path) -> tuple[str, str, list[dict]]:
    scores = results / f"{name}.json"
    command = ["vtsnn", "evaluate", "--model", name, "--json", str(scores.relative_to(ROOT))]
    env = {**os.environ, "VTSNN_DATA": os.environ.get("VTSNN_DATA", str(ROOT.parent / "shared" / "data"))}
    done = subprocess.run([sys.executable, "-m", "vtsnn.cli", *command[1:]], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    return " ".join(command), done.stdout.strip(), json.loads(scores.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("name")
    parser.add_argument("--command", required=True, help="the command(s) that trained the run")
    parser.add_argument("--note", default="", help="anything else a reader must know about the training")
    args = parser.parse_args()

    source, which_weights = published_checkpoint(args.run_dir)
    target = ROOT / "src" / "vtsnn" / "pretrained" / args.name
    target.mkdir(parents=True, exist_ok=True)
    for file in ("config.json", "model.safetensors"):
        shutil.copy2(source / file, target / file)
    config = json.loads((target / "config.json").read_text())

    results = ROOT / "results" / "pretrained"
    results.mkdir(parents=True, exist_ok=True)
    eval_command, eval_output, scores = evaluate(args.name, results)
    log = read_log(args.run_dir, config["batch_size"])
    evals = [r for r in log if r["kind"] == "eval"]
    learning_curve(log, results / f"{args.name}-curve.png")
    wall = sum(r.get("epoch_seconds", 0) for r in evals)
    paper = PAPER_IF.get(config["dataset"], {}).get(config["noise"])
    psnr = scores[0]["psnr"]
    verdict = "" if paper is None else (
        f" — {'at or above' if psnr >= paper else 'below'} the paper's VTSNN-IF {paper:.2f} dB "
        f"({psnr - paper:+.2f} dB)")
    curve = curve_table(evals)
    card = f"""# {args.name}

U-VTSNN (the paper's fully spiking U-Net, 116,384 weights, {config['neuron'].upper()} neurons,
output threshold {config['output_threshold']}) trained to remove Gaussian noise of
eta = {config['noise']} from {config['dataset']} images (8-bit gray, UWE input, UWD output).

**Test PSNR: {psnr:.2f} dB** on the {scores[0]['images']:,} test images (noisy input:
{scores[0]['noisy_psnr']:.2f} dB){verdict}.

## Training
- Method: {method_text(config)}.
- Recipe: {recipe_text(config)}
- Shipped: {which_weights}.
- Command: `{args.command}`
{f"- Note: {args.note}" + chr(10) if args.note else ""}- Compute: {wall / 60:.1f} min of training and evaluation by the run's log, on a machine
  shared with other work part of the time; published and scored below on {os.cpu_count()} CPU cores
  ({cpu_name()}), which need not be the machine that trained it.

{curve}

## Evaluation
`{eval_command}`

```
{eval_output}
```

Full configuration: `config.json`. Learning curve: `results/pretrained/{args.name}-curve.png`.
"""
    (target / "MODEL_CARD.md").write_text(card)
    (results / f"{args.name}.md").write_text(card)
    print(card)


if __name__ == "__main__":
    main()
