"""Peak memory of a bf16 BPTT training step, with membranes recomputed in backward or stored.

Run from the repository root:

    python benchmarks/memory.py                 # a table
    python benchmarks/memory.py --json          # one JSON object

Each setting runs in a fresh process (peak resident memory cannot be reset within
one): U-VTSNN, IF, T=8, 28x28, gradients through time, bf16 channels-last, two
training steps (forward + backward) at the given batch size. The peak includes
what the process holds before training (Python, torch, the model), reported
separately as ``idle_mib`` so the difference can be read as activation memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys


def peak_mib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024   # Linux reports KiB


def one_setting(recompute: bool, batch: int) -> dict:
    """Run in a child process: two training steps, then the peak resident memory."""
    import torch

    from vtsnn import neurons
    from vtsnn.coding import uwe_encode
    from vtsnn.losses import itbp_loss
    from vtsnn.models import UVTSNN

    neurons.RECOMPUTE_MEMBRANES = recompute
    torch.manual_seed(0)
    model = UVTSNN(temporal_grad=True).to(memory_format=torch.channels_last)
    with torch.no_grad():  # a trained-like firing regime, as in throughput.py
        for parameter in model.parameters():
            parameter.mul_(2.6)
    spikes = uwe_encode(torch.randint(0, 256, (batch, 1, 28, 28), dtype=torch.uint8))
    idle = peak_mib()
    for _ in range(2):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            output = model(spikes)
        itbp_loss(output, spikes).backward()
    return {"idle_mib": idle, "peak_mib": peak_mib()}


def measure(batch: int) -> dict:
    result = {"batch": batch}
    for name, recompute in (("recomputed", True), ("stored", False)):
        child = subprocess.run([sys.executable, __file__, "--child", str(int(recompute)), "--batch", str(batch)],
                               capture_output=True, text=True, check=True)
        scores = json.loads(child.stdout.strip().splitlines()[-1])
        result[f"{name}_peak_mib"] = scores["peak_mib"]
        result[f"{name}_idle_mib"] = scores["idle_mib"]
    stored = result["stored_peak_mib"] - result["stored_idle_mib"]
    recomputed = result["recomputed_peak_mib"] - result["recomputed_idle_mib"]
    result["training_memory_ratio"] = round(recomputed / stored, 3) if stored > 0 else None
    return result


def main(argv=None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--child", choices=("0", "1"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(one_setting(args.child == "1", args.batch)))
        return None
    result = measure(args.batch)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"U-VTSNN, IF, T=8, BPTT, bf16, batch {args.batch}: peak resident memory (MiB)")
        for name in ("recomputed", "stored"):
            print(f"  membranes {name:10s} {result[f'{name}_peak_mib']:6d} "
                  f"(before training {result[f'{name}_idle_mib']})")
        print(f"  memory that training adds, recomputed / stored: {result['training_memory_ratio']}")
    return result


if __name__ == "__main__":
    main()
