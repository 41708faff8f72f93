"""Training and inference throughput of U-VTSNN, against a plain per-time-step baseline.

Run from the repository root:

    python benchmarks/throughput.py            # a table
    python benchmarks/throughput.py --json     # one JSON object
    python benchmarks/throughput.py --device cuda   # on a GPU (timed with synchronization)

Every mode trains the same network (U-VTSNN, IF, T=8, 28x28, batch 50) with one step =
forward + backward + Adam. The baseline is written the way SNN code usually is (and
the authors' clock-driven style): the whole network is called once per time step,
with stateful neurons recorded by autograd step by step, in float32. The
``authors_*`` modes run the same per-step network with the neuron of the authors'
released code (spikingjelly 0.0.0.0.14's clock-driven ``IFNode``, soft reset, ATan),
when spikingjelly is installed; they are skipped, with a note, otherwise. Modes run
interleaved in rounds and each reports its best round, so that the CPU's thermal
throttling, which sets in after minutes of load, hits all modes alike.

The package's modes run with the allocator setting that ``vtsnn train`` uses
(:func:`vtsnn.allocator.keep_freed_memory`); ``train_glibc_default`` is the shipped
training mode without it, and the baselines run with glibc's defaults, as plain user
code would. The setting is switched before each mode's steps. Likewise the layout: the
package's modes keep channels-last weights where ``vtsnn train`` does
(:func:`vtsnn.train.uses_channels_last`: bf16, and fp32 on CPU), the baselines and the
``*_fp32_contiguous`` modes PyTorch's default layout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

from vtsnn import neurons
from vtsnn.allocator import keep_freed_memory
from vtsnn.coding import uwe_encode
from vtsnn.jitter import jitter_factors, output_jittered
from vtsnn.losses import itbp_loss, stbp_loss
from vtsnn.machine import cpu_name
from vtsnn.models import UVTSNN
from vtsnn.neurons import HeavisideATan
from vtsnn.train import gradient_norm_clipped, uses_channels_last


class PerStepIF(torch.nn.Module):
    """Clock-driven IF neuron: one call per time step, state kept between calls."""

    def __init__(self, v_threshold: float):
        super().__init__()
        self.v_threshold = v_threshold
        self.v = None

    def forward(self, x):
        self.v = x if self.v is None else self.v + x
        spike = HeavisideATan.apply(self.v - self.v_threshold)
        self.v = self.v - self.v_threshold * spike
        return spike

    def reset(self):
        self.v = None


def spikingjelly_if(v_threshold: float) -> torch.nn.Module:
    """The neuron of the authors' released code: spikingjelly 0.0.0.0.14's clock-driven
    IFNode with soft reset and the ATan surrogate (``pip install spikingjelly==0.0.0.0.14
    --no-deps``; only needed for the ``authors_*`` modes)."""
    from spikingjelly.clock_driven import neuron, surrogate
    return neuron.IFNode(v_threshold=v_threshold, v_reset=None, surrogate_function=surrogate.ATan())


def spikingjelly_version() -> str | None:
    try:
        from importlib.metadata import version
        return version("spikingjelly")
    except Exception:  # not installed: PackageNotFoundError, or a broken install
        return None


class PerStepUNet(torch.nn.Module):
    """The U-VTSNN wiring (sharing a :class:`UVTSNN`'s weights), called once per time step."""

    def __init__(self, model: UVTSNN, make_neuron=PerStepIF):
        super().__init__()
        self.model = model
        self.neurons = torch.nn.ModuleList(
            make_neuron(m.v_threshold) for m in model.modules() if hasattr(m, "v_threshold"))

    def forward(self, spikes):
        for neuron in self.neurons:
            neuron.reset()  # a new batch starts from rest
        return torch.stack([self.step(x_t) for x_t in spikes])

    def step(self, x):
        neurons = iter(self.neurons)
        skips = []
        for level, (conv_a, _, conv_b, _) in enumerate(self.model.encoders):
            if level:
                x = torch.nn.functional.max_pool2d(x, 2)
            x = next(neurons)(conv_b(next(neurons)(conv_a(x))))
            skips.append(x)
        for (up, _, conv_a, _, conv_b, _), skip in zip(self.model.decoders, reversed(skips[:-1])):
            x = torch.cat([skip, next(neurons)(up(x))], dim=1)
            x = next(neurons)(conv_b(next(neurons)(conv_a(x))))
        return next(neurons)(self.model.head(x))


def remove_neurons(model: torch.nn.Module) -> None:
    """Replace every spiking neuron by the identity: what the rest of the step costs."""
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if hasattr(child, "v_threshold"):
                setattr(parent, name, torch.nn.Identity())


def make_batch(batch: int, size: int, seed: int = 0, device: torch.device = torch.device("cpu")):
    generator = torch.Generator().manual_seed(seed)
    noisy = torch.randint(0, 256, (batch, 1, size, size), generator=generator).to(device)
    clean = torch.randint(0, 256, (batch, 1, size, size), generator=generator).to(device)
    return uwe_encode(noisy), uwe_encode(clean), clean.float() / 255


def build_mode(name: str, spec: dict, batch: int, size: int, device: torch.device = torch.device("cpu")):
    """Return a zero-argument function that runs one training (or inference) step on ``device``."""
    torch.manual_seed(0)
    model = UVTSNN(temporal_grad=spec.get("temporal_grad", False)).to(device)
    with torch.no_grad():  # a trained-like firing regime, so kernels see real spike traffic
        for p in model.parameters():
            p.mul_(2.6)
    bf16 = spec.get("precision") == "bf16"
    # The package's layout for the mode (vtsnn.train.prepare_model); the per-step
    # references keep PyTorch's default, as a plain implementation would.
    plain_layout = spec.get("baseline") or spec.get("contiguous")
    if uses_channels_last(spec.get("precision", "fp32"), device) and not plain_layout:
        model = model.to(memory_format=torch.channels_last)
    if spec.get("no_neurons"):
        remove_neurons(model)
    if spec.get("baseline"):
        network = PerStepUNet(model, spikingjelly_if if spec.get("neuron") == "spikingjelly" else PerStepIF)
    else:
        network = model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    inputs, targets, clean = make_batch(batch, size, device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    if spec["kind"] == "infer":
        def step():
            with torch.inference_mode(), autocast:
                network(inputs)
        return step

    jitter = spec.get("output_jitter", 0.0)
    generator = torch.Generator().manual_seed(0)

    def step():
        factors = jitter_factors(jitter, inputs.shape[0], batch, generator) if jitter else None
        with autocast, output_jittered(model, factors):
            out = network(inputs)
        loss = stbp_loss(out, clean) if spec["kind"] == "stbp" else itbp_loss(out, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if spec.get("grad_norm"):
            gradient_norm_clipped(model, 0.0)
        optimizer.step()
    return step


MODES = {
    # the mode the shipped models use: bit-plane loss, gradients through time, bf16
    "train": dict(kind="itbp", temporal_grad=True, precision="bf16"),
    "infer": dict(kind="infer", precision="bf16"),
    "train_itbp_detached": dict(kind="itbp", temporal_grad=False, precision="bf16"),
    "train_stbp": dict(kind="stbp", temporal_grad=True, precision="bf16"),
    # the shipped mode with the gradient's norm taken each step, as `vtsnn train` logs it
    "train_grad_norm": dict(kind="itbp", temporal_grad=True, precision="bf16", grad_norm=True),
    # the shipped mode with the output's input jittered, as `vtsnn train --output-jitter 0.1` trains
    "train_output_jitter": dict(kind="itbp", temporal_grad=True, precision="bf16", output_jitter=0.1),
    "train_glibc_default": dict(kind="itbp", temporal_grad=True, precision="bf16", keep_memory=False),
    # the shipped mode storing the float32 membranes for backward instead of recomputing them
    "train_stored_membranes": dict(kind="itbp", temporal_grad=True, precision="bf16", recompute_membranes=False),
    "train_fp32": dict(kind="itbp", temporal_grad=True, precision="fp32"),
    "train_itbp_detached_fp32": dict(kind="itbp", temporal_grad=False, precision="fp32"),
    "infer_fp32": dict(kind="infer", precision="fp32"),
    # fp32 in PyTorch's default layout, as the package ran it before channels-last (CPU only)
    "train_fp32_contiguous": dict(kind="itbp", temporal_grad=True, precision="fp32", contiguous=True),
    "infer_fp32_contiguous": dict(kind="infer", precision="fp32", contiguous=True),
    # inference as `vtsnn evaluate` ran it before it set the allocator (most visible at --batch 500)
    "infer_glibc_default": dict(kind="infer", precision="bf16", keep_memory=False),
    # lower bounds: the same step with the neurons replaced by the identity
    "train_no_neurons": dict(kind="itbp", temporal_grad=True, precision="bf16", no_neurons=True),
    "infer_no_neurons": dict(kind="infer", precision="bf16", no_neurons=True),
    "baseline_train": dict(kind="itbp", baseline=True, keep_memory=False),
    "baseline_infer": dict(kind="infer", baseline=True, keep_memory=False),
    # the authors' style with their library: spikingjelly's IFNode, one call per time step
    "authors_train": dict(kind="itbp", baseline=True, neuron="spikingjelly", keep_memory=False),
    "authors_infer": dict(kind="infer", baseline=True, neuron="spikingjelly", keep_memory=False),
}


# The per-step reference implementations every mode is compared with: mode-name prefix -> label.
REFERENCES = {"baseline": "baseline", "authors": "authors' style"}


def apply_settings(spec: dict) -> None:
    """The process-wide switches a mode runs with (read at each step, so set before each)."""
    keep_freed_memory(spec.get("keep_memory", True))
    neurons.RECOMPUTE_MEMBRANES = spec.get("recompute_membranes", True)


def measure(modes: dict, batch: int, size: int, rounds: int, steps: int,
            device: torch.device = torch.device("cpu")) -> dict:
    runners = {name: build_mode(name, spec, batch, size, device) for name, spec in modes.items()}
    # A GPU runs asynchronously: a step has ended only when the device says so.
    wait = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for name, run in runners.items():  # warm-up: compilation, allocator, oneDNN/cuDNN kernels
        apply_settings(modes[name])
        run()
        run()
    wait()
    best = {name: 0.0 for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            apply_settings(modes[name])
            started = time.perf_counter()
            for _ in range(steps):
                run()
            wait()
            best[name] = max(best[name], batch * steps / (time.perf_counter() - started))
    return best


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{os.cpu_count()} CPU cores ({cpu_name()})"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="steps per mode per round")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of: " + ",".join(MODES))
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: this torch build sees no CUDA GPU")
    chosen = {name: MODES[name] for name in args.modes.split(",")}
    if spikingjelly_version() is None:
        skipped = [name for name, spec in chosen.items() if spec.get("neuron") == "spikingjelly"]
        if skipped:
            print(f"(spikingjelly is not installed: skipping {', '.join(skipped)}; "
                  "pip install spikingjelly==0.0.0.0.14 --no-deps to measure the authors' style)", file=sys.stderr)
        chosen = {name: spec for name, spec in chosen.items() if name not in skipped}
    rates = measure(chosen, args.batch, args.size, args.rounds, args.steps, device)
    result = {f"{name}_img_s": round(rate, 1) for name, rate in rates.items()}
    for reference in REFERENCES:
        for kind in ("train", "infer"):
            base = rates.get(f"{reference}_{kind}")
            if base:
                result.update({f"{n}_vs_{reference}": round(r / base, 2)
                               for n, r in rates.items() if n.startswith(kind)})
    result.update({"spikingjelly": spikingjelly_version(), "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                   "machine": cpu_name(), "torch": torch.__version__,
                   "batch": args.batch, "size": args.size, "time_steps": 8, "device": device_description(device)})
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"U-VTSNN, IF, T=8, batch {args.batch}, {args.size}x{args.size}, "
              f"{device_description(device)}, torch {torch.__version__}")
        for name, rate in rates.items():
            inference = chosen[name]["kind"] == "infer"
            ratios = []
            for reference, label in REFERENCES.items():
                base = rates.get(f"{reference}_{'infer' if inference else 'train'}")
                if base:
                    ratios.append(f"{rate / base:6.2f}x {label}")
            print(f"  {name:28s} {rate:8.1f} img/s  {'  '.join(ratios)}")
    return result


if __name__ == "__main__":
    main()
