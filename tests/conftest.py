"""Shared fixtures: a tiny fake MNIST folder for tests that train or evaluate."""

import gzip
import struct

import numpy as np
import pytest

from vtsnn import data as data_module


def write_idx(path, array):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as file:
        file.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture()
def tiny_mnist(tmp_path, monkeypatch):
    """A 64-image fake MNIST (blobs on black) in MNIST's file layout; checksums skipped."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    for split, count in (("train", 64), ("t10k", 16)):
        images = np.zeros((count, 28, 28), np.uint8)
        for image in images:
            y, x = rng.integers(4, 20, 2)
            image[y:y + 8, x:x + 6] = rng.integers(150, 256)
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, count))
    monkeypatch.setattr(data_module, "CHECKSUMS", {})
    return tmp_path / "data"
