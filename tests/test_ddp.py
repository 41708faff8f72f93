"""Data-parallel training under torchrun (gloo on CPU): it runs and matches one process."""

import json
import socket
import subprocess
import sys
import textwrap

import torch

from vtsnn.train import load_trained

from test_train import tiny_config

WORKER = textwrap.dedent("""
    import sys, torch
    torch.set_num_threads(1)
    from vtsnn import data
    from vtsnn.config import TrainConfig
    from vtsnn.train import train
    data.CHECKSUMS = {}                      # the tiny fake dataset has no published hashes
    config = TrainConfig.from_dict(__import__("json").loads(sys.argv[1]))
    train(config, sys.argv[2], progress=False, data_dir=sys.argv[3])
""")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_torchrun_two_processes_match_one_process(tiny_mnist, tmp_path):
    config = tiny_config(epochs=1, lr_schedule="constant")
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    arguments = [json.dumps(config.to_dict()), None, str(tiny_mnist)]
    single = subprocess.run([sys.executable, str(script), arguments[0], str(tmp_path / "one"), arguments[2]],
                            capture_output=True, text=True, timeout=240)
    assert single.returncode == 0, single.stderr[-2000:]
    # An explicit free port: torchrun's --master_port=0 never completes its rendezvous here.
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
              "--master_addr=127.0.0.1", f"--master_port={free_port()}",
              str(script), arguments[0], str(tmp_path / "two"), arguments[2]]
    double = subprocess.run(launch, capture_output=True, text=True, timeout=240)
    assert double.returncode == 0, double.stderr[-2000:]

    log = [json.loads(line) for line in (tmp_path / "two" / "log.jsonl").read_text().splitlines()]
    assert [r["images"] for r in log if r["kind"] == "eval"] == [64]   # every image once, not twice
    one, _ = load_trained(tmp_path / "one")
    two, _ = load_trained(tmp_path / "two")
    # Gradients are averaged over the two half-batches, which equals the full-batch
    # gradient up to rounding; a spike or an Adam sign flipped by rounding may move a
    # few weights, so compare the bulk.
    differences = torch.cat([(a - b).abs().flatten() for a, b in zip(one.parameters(), two.parameters())])
    assert differences.median() < 1e-5
