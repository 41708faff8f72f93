"""Tests for vtsnn.data: dataset readers, checksums, download, noise, image files.

Most tests build tiny files in tmp_path. Tests marked by the ``real_data_dir``
fixture read the real datasets and run only when VTSNN_DATA is set.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.server
import io
import os
import pickle
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vtsnn import data

REAL_DATA = os.environ.get("VTSNN_DATA", "")
needs_real_data = pytest.mark.skipif(not REAL_DATA, reason="set VTSNN_DATA to run tests on the real datasets")

IDX_NAMES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


# ------------------------------------------------------------------ file builders


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as an IDX payload (magic 0, 0, 0x08, ndim; big-endian dims)."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def make_idx_dataset(folder: Path, gz: bool = True, n_train: int = 5, n_test: int = 3, seed: int = 0) -> dict:
    """Write a tiny MNIST-like dataset; returns {payload name: (array, payload bytes)}."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    written = {}
    for name, array in arrays.items():
        payload = idx_bytes(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(payload))
        else:
            (folder / name).write_bytes(payload)
        written[name] = (array, payload)
    return written


def cifar_batch_bytes(images_chw: np.ndarray, labels: np.ndarray) -> bytes:
    """A batch in the official python format: a pickled dict with bytes keys."""
    batch = {
        b"batch_label": b"fake batch",
        b"labels": [int(v) for v in labels],
        b"data": images_chw.reshape(len(images_chw), -1),
        b"filenames": [b"img%d.png" % i for i in range(len(labels))],
    }
    # The official files were written by Python 2 with numpy.core names; mimic that.
    return pickle.dumps(batch, protocol=2).replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")


def make_cifar_batches(seed: int = 0) -> dict:
    """Official batch name -> (images [n, 3, 32, 32], labels); 2 images per train batch."""
    rng = np.random.default_rng(seed)
    batches = {}
    for name, n in [*((f"data_batch_{i}", 2) for i in range(1, 6)), ("test_batch", 3)]:
        batches[name] = (rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n))
    return batches


def write_cifar_folder(cifar_dir: Path, batches: dict) -> None:
    folder = cifar_dir / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name, (images, labels) in batches.items():
        (folder / name).write_bytes(cifar_batch_bytes(images, labels))


def write_cifar_archive(path: Path, batches: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, (images, labels) in batches.items():
            payload = cifar_batch_bytes(images, labels)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))


def write_cifar_npz(path: Path, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 4).astype(np.int64),
        "x_test": rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 2).astype(np.int64),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return arrays


def sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def stack(batches: dict, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    return (np.concatenate([batches[n][0] for n in names]), np.concatenate([batches[n][1] for n in names]))


@pytest.fixture
def no_checksums(monkeypatch):
    """Generated files carry official names; empty the table so they are not checked."""
    monkeypatch.setattr(data, "CHECKSUMS", {})


# --------------------------------------------------------------------- IDX readers


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "plain"])
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_reader_matches_written_arrays(tmp_path, no_checksums, gz, name):
    written = make_idx_dataset(tmp_path / name, gz=gz)
    for split, prefix in [("train", "train"), ("test", "t10k")]:
        images, labels = data.load_dataset(name, split, data_dir=tmp_path)
        expected_images = written[f"{prefix}-images-idx3-ubyte"][0]
        assert images.dtype == torch.uint8 and labels.dtype == torch.int64
        assert images.shape == (len(expected_images), 1, 28, 28)
        assert np.array_equal(images[:, 0].numpy(), expected_images)
        assert np.array_equal(labels.numpy(), written[f"{prefix}-labels-idx1-ubyte"][0])


def test_parse_idx_reads_big_endian_multibyte_types():
    values = np.array([[1, -2], [70000, 3]], dtype=">i4")
    payload = bytes([0, 0, 0x0C, 2]) + np.array([2, 2], dtype=">u4").tobytes() + values.tobytes()
    parsed = data.parse_idx(payload)
    assert parsed.dtype == np.int32 and parsed.dtype.isnative
    assert parsed.tolist() == [[1, -2], [70000, 3]]


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"\x01\x00\x08\x01" + (3).to_bytes(4, "big") + b"abc", "bad magic number"),
        (b"\x00\x00\x07\x01" + (3).to_bytes(4, "big") + b"abc", "unknown element type"),
        (b"\x00\x00\x08\x02" + (3).to_bytes(4, "big"), "truncated header"),
        (b"\x00\x00\x08\x01" + (4).to_bytes(4, "big") + b"abc", "header says"),
        (b"\x00\x00\x08\x01" + (2).to_bytes(4, "big") + b"abc", "header says"),
    ],
)
def test_parse_idx_rejects_malformed_headers(payload, reason):
    with pytest.raises(data.DataError, match=reason):
        data.parse_idx(payload, source="some/file")


def test_idx_image_label_count_mismatch_is_an_error(tmp_path, no_checksums):
    folder = tmp_path / "mnist"
    make_idx_dataset(folder, gz=False)
    (folder / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(2, np.uint8)))  # 3 images
    with pytest.raises(data.DataError, match="labels"):
        data.load_dataset("mnist", "test", data_dir=tmp_path)


def test_truncated_gzip_is_a_clear_error(tmp_path, no_checksums):
    folder = tmp_path / "mnist"
    make_idx_dataset(folder)
    path = folder / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(data.DataError, match="t10k-images-idx3-ubyte.gz.*download again"):
        data.load_dataset("mnist", "test", data_dir=tmp_path)


# ------------------------------------------------------------------ CIFAR-10 readers


def luma(images_chw: np.ndarray) -> np.ndarray:
    rgb = images_chw.astype(np.float64)
    y = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
    return np.clip(np.round(y), 0, 255).astype(np.uint8)[:, None]


@pytest.mark.parametrize("source", ["folder", "tar.gz"])
def test_cifar_official_format(tmp_path, no_checksums, source):
    batches = make_cifar_batches()
    if source == "folder":
        write_cifar_folder(tmp_path / "cifar10", batches)
    else:
        write_cifar_archive(tmp_path / "cifar10" / "cifar-10-python.tar.gz", batches)
    train_names = [f"data_batch_{i}" for i in range(1, 6)]
    for split, names in [("train", train_names), ("test", ["test_batch"])]:
        expected_images, expected_labels = stack(batches, names)
        color, labels = data.load_dataset("cifar10", split, data_dir=tmp_path, color=True)
        gray, gray_labels = data.load_dataset("cifar10", split, data_dir=tmp_path)
        assert color.shape == (len(expected_images), 3, 32, 32) and color.dtype == torch.uint8
        assert np.array_equal(color.numpy(), expected_images)
        assert np.array_equal(labels.numpy(), expected_labels) and labels.dtype == torch.int64
        assert gray.shape == (len(expected_images), 1, 32, 32) and gray.dtype == torch.uint8
        assert np.array_equal(gray.numpy(), luma(expected_images))
        assert torch.equal(gray_labels, labels)


def test_cifar_official_format_wins_over_npz(tmp_path, no_checksums):
    batches = make_cifar_batches()
    write_cifar_npz(tmp_path / "cifar10" / "cifar10.npz")
    write_cifar_archive(tmp_path / "cifar10" / "cifar-10-python.tar.gz", batches)
    images, _ = data.load_dataset("cifar10", "test", data_dir=tmp_path, color=True)
    assert np.array_equal(images.numpy(), batches["test_batch"][0])


def test_cifar_npz_fallback_converts_hwc_to_chw(tmp_path, no_checksums):
    arrays = write_cifar_npz(tmp_path / "cifar10" / "cifar10.npz")
    for split in ("train", "test"):
        images, labels = data.load_dataset("cifar10", split, data_dir=tmp_path, color=True)
        expected = arrays[f"x_{split}"].transpose(0, 3, 1, 2)
        assert images.shape == expected.shape and images.is_contiguous()
        assert np.array_equal(images.numpy(), expected)
        assert np.array_equal(labels.numpy(), arrays[f"y_{split}"])


def test_gray_conversion_is_bt601_luma():
    pixels = torch.tensor([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [10, 20, 30]], dtype=torch.uint8)
    images = pixels.T.reshape(1, 3, 1, 5)  # five 1-pixel columns
    # 76.245 -> 76, 149.685 -> 150, 29.07 -> 29, 255, 2.99+11.74+3.42=18.15 -> 18
    assert data.rgb_to_gray(images).flatten().tolist() == [76, 150, 29, 255, 18]


def test_cifar_pickle_with_foreign_globals_is_refused(tmp_path, no_checksums):
    batches = make_cifar_batches()
    write_cifar_folder(tmp_path / "cifar10", batches)

    class Evil:
        def __reduce__(self):
            return (os.getcwd, ())

    (tmp_path / "cifar10" / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(data.DataError, match="refusing to load"):
        data.load_dataset("cifar10", "test", data_dir=tmp_path)


def test_cifar_archive_checksum(tmp_path, monkeypatch):
    archive = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    write_cifar_archive(archive, make_cifar_batches())
    right = hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.setitem(data.CHECKSUMS, "cifar10/cifar-10-python.tar.gz", ("md5", right))
    images, _ = data.load_dataset("cifar10", "test", data_dir=tmp_path)
    assert images.shape[0] == 3
    monkeypatch.setitem(data.CHECKSUMS, "cifar10/cifar-10-python.tar.gz", ("md5", "0" * 32))
    with pytest.raises(data.ChecksumError, match=right):
        data.load_dataset("cifar10", "test", data_dir=tmp_path)


# ------------------------------------------------------------ checksums and errors


def test_registered_idx_file_with_wrong_payload_fails_checksum(tmp_path):
    # The real table: generated files under official names cannot match it.
    make_idx_dataset(tmp_path / "mnist")
    with pytest.raises(data.ChecksumError) as caught:
        data.load_dataset("mnist", "test", data_dir=tmp_path)
    message = str(caught.value)
    assert "t10k-images-idx3-ubyte.gz" in message
    assert data.CHECKSUMS["mnist/t10k-images-idx3-ubyte"][1] in message
    assert isinstance(caught.value, ValueError) and "\n" not in message
    images, _ = data.load_dataset("mnist", "test", data_dir=tmp_path, verify=False)
    assert images.shape == (3, 1, 28, 28)


def test_checksum_is_over_the_gzip_payload(tmp_path, monkeypatch):
    written = make_idx_dataset(tmp_path / "mnist")
    for name, (_, payload) in written.items():
        monkeypatch.setitem(data.CHECKSUMS, f"mnist/{name}", ("sha256", sha256(payload)))
    images, _ = data.load_dataset("mnist", "train", data_dir=tmp_path)
    assert images.shape[0] == 5
    # Same payload, different gzip header (file name, time stamp): still valid.
    path = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    with open(path, "wb") as raw, gzip.GzipFile("other-name", "wb", fileobj=raw, mtime=12345) as out:
        out.write(written["t10k-images-idx3-ubyte"][1])
    data.load_dataset("mnist", "test", data_dir=tmp_path)
    # Corrupt one payload byte: the checksum catches it.
    corrupted = bytearray(written["t10k-images-idx3-ubyte"][1])
    corrupted[-1] ^= 0xFF
    path.write_bytes(gzip.compress(bytes(corrupted)))
    with pytest.raises(data.ChecksumError, match="t10k-images-idx3-ubyte.gz"):
        data.load_dataset("mnist", "test", data_dir=tmp_path)


def test_verified_files_are_not_hashed_again(tmp_path, monkeypatch):
    path = tmp_path / "cifar10" / "cifar10.npz"
    write_cifar_npz(path)
    monkeypatch.setitem(data.CHECKSUMS, "cifar10/cifar10.npz", ("sha256", sha256(path.read_bytes())))
    calls = []
    real_digest = data._stream_digest
    monkeypatch.setattr(data, "_stream_digest", lambda *a, **k: calls.append(a) or real_digest(*a, **k))
    for _ in range(3):
        data.load_dataset("cifar10", "test", data_dir=tmp_path)
    assert len(calls) == 1
    # Rewriting the file (new mtime/size) makes it count as a new file.
    write_cifar_npz(path, seed=5)
    with pytest.raises(data.ChecksumError):
        data.load_dataset("cifar10", "test", data_dir=tmp_path)


def test_unregistered_files_are_not_verified(tmp_path, monkeypatch):
    write_cifar_folder(tmp_path / "cifar10", make_cifar_batches())  # extracted batches have no table entry
    images, _ = data.load_dataset("cifar10", "train", data_dir=tmp_path)
    assert images.shape == (10, 1, 32, 32)


@pytest.mark.parametrize("name", data.DATASETS)
def test_missing_files_name_the_paths(tmp_path, name):
    with pytest.raises(data.DataNotFoundError) as caught:
        data.load_dataset(name, "test", data_dir=tmp_path)
    message = str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    assert str(tmp_path / name) in message and f"vtsnn download {name}" in message
    if name == "cifar10":
        assert "cifar10.npz" in message and "cifar-10-python.tar.gz" in message


def test_missing_label_file_is_named(tmp_path, no_checksums):
    make_idx_dataset(tmp_path / "mnist")
    (tmp_path / "mnist" / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(data.DataNotFoundError, match="train-labels-idx1-ubyte"):
        data.load_dataset("mnist", "train", data_dir=tmp_path)


def test_no_data_dir_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("VTSNN_DATA", raising=False)
    with pytest.raises(data.DataNotFoundError, match="--data-dir.*VTSNN_DATA"):
        data.load_dataset("mnist")


def test_data_dir_argument_wins_over_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("VTSNN_DATA", "/somewhere/else")
    assert data.resolve_data_dir(tmp_path) == tmp_path
    assert data.resolve_data_dir() == Path("/somewhere/else")


@pytest.mark.parametrize(
    "kwargs", [dict(name="svhn"), dict(name="mnist", split="val"), dict(name="mnist", color=True)]
)
def test_invalid_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        data.load_dataset(data_dir=tmp_path, **kwargs)


# ------------------------------------------------------------------ real datasets


@pytest.fixture(scope="module")
def real_mnist():
    if not REAL_DATA:
        pytest.skip("set VTSNN_DATA to run tests on the real datasets")
    return {split: data.load_dataset("mnist", split) for split in ("train", "test")}


@pytest.fixture(scope="module")
def real_fashion_mnist():
    if not REAL_DATA:
        pytest.skip("set VTSNN_DATA to run tests on the real datasets")
    return {split: data.load_dataset("fashion_mnist", split) for split in ("train", "test")}


@pytest.fixture(scope="module")
def real_cifar10():
    if not REAL_DATA:
        pytest.skip("set VTSNN_DATA to run tests on the real datasets")
    return {
        (split, color): data.load_dataset("cifar10", split, color=color)
        for split in ("train", "test")
        for color in (False, True)
    }


@pytest.mark.parametrize("dataset", ["real_mnist", "real_fashion_mnist"])
def test_real_idx_datasets(request, dataset):
    loaded = request.getfixturevalue(dataset)
    for split, count in [("train", 60000), ("test", 10000)]:
        images, labels = loaded[split]
        assert images.shape == (count, 1, 28, 28) and images.dtype == torch.uint8
        assert labels.shape == (count,) and labels.dtype == torch.int64
        assert set(labels.unique().tolist()) == set(range(10))
        assert images.max() == 255 and images.min() == 0


def test_real_mnist_known_labels(real_mnist):
    assert real_mnist["train"][1][:3].tolist() == [5, 0, 4]
    assert real_mnist["test"][1][:3].tolist() == [7, 2, 1]


def test_real_cifar10(real_cifar10):
    for split, count in [("train", 50000), ("test", 1000)]:
        gray, labels = real_cifar10[(split, False)]
        color, color_labels = real_cifar10[(split, True)]
        assert gray.shape == (count, 1, 32, 32) and gray.dtype == torch.uint8
        assert color.shape == (count, 3, 32, 32) and color.dtype == torch.uint8
        assert labels.dtype == torch.int64 and torch.equal(labels, color_labels)
        assert torch.equal(gray, data.rgb_to_gray(color))
    train_color, train_labels = real_cifar10[("train", True)]
    assert train_color[0, 0, 0, :3].tolist() == [59, 43, 50]  # red channel of image 0
    assert torch.bincount(train_labels).tolist() == [5000] * 10
    assert real_cifar10[("test", False)][1][:3].tolist() == [3, 8, 8]


@needs_real_data
def test_real_files_pass_verification():
    root = data.resolve_data_dir()
    for name in ("mnist", "fashion_mnist"):
        for payload_name in IDX_NAMES:
            path = root / name / f"{payload_name}.gz"
            algorithm, expected = data.CHECKSUMS[f"{name}/{payload_name}"]
            assert data._stream_digest(path, algorithm, decompress=True) == expected


# ------------------------------------------------------------------------ download


@contextlib.contextmanager
def http_server(directory: Path):
    """Serve ``directory`` on 127.0.0.1 in a thread; yields (base url, requested paths)."""
    requested: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(directory), **kwargs)

        def do_GET(self):
            requested.append(self.path)
            super().do_GET()

        def log_message(self, *args):  # keep pytest output clean
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(autouse=True)
def no_proxy_for_localhost(monkeypatch):
    # urllib honours *_proxy variables; a proxy cannot reach the test server.
    for variable in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".part")]


def test_download_generated_mnist(tmp_path, monkeypatch):
    served = tmp_path / "served"
    written = make_idx_dataset(served)
    for name, (_, payload) in written.items():
        monkeypatch.setitem(data.CHECKSUMS, f"mnist/{name}", ("sha256", sha256(payload)))
    destination = tmp_path / "dest"
    with http_server(served) as (url, requested):
        folder = data.download("mnist", data_dir=destination, base_url=url + "/", progress=False)
        assert folder == destination / "mnist"
        assert sorted(requested) == sorted(f"/{name}.gz" for name in IDX_NAMES)
        for name in IDX_NAMES:
            assert (folder / f"{name}.gz").read_bytes() == (served / f"{name}.gz").read_bytes()
        assert leftovers(folder) == []
        images, labels = data.load_dataset("mnist", "train", data_dir=destination)
        assert np.array_equal(images[:, 0].numpy(), written["train-images-idx3-ubyte"][0])
        # Present and valid: nothing is fetched again.
        requested.clear()
        data.download("mnist", data_dir=destination, base_url=url, progress=False)
        assert requested == []
        # A corrupt local copy is replaced.
        (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"junk"))
        data.download("mnist", data_dir=destination, base_url=url, progress=False)
        assert requested == ["/t10k-labels-idx1-ubyte.gz"]
        data.load_dataset("mnist", "test", data_dir=destination)


@pytest.mark.parametrize("corruption", ["payload", "not gzip"])
def test_corrupt_download_leaves_no_file(tmp_path, monkeypatch, corruption):
    served = tmp_path / "served"
    written = make_idx_dataset(served)
    for name, (_, payload) in written.items():
        monkeypatch.setitem(data.CHECKSUMS, f"mnist/{name}", ("sha256", sha256(payload)))
    bad = served / "t10k-images-idx3-ubyte.gz"  # third in download order
    if corruption == "payload":
        payload = bytearray(written["t10k-images-idx3-ubyte"][1])
        payload[100] ^= 0x01
        bad.write_bytes(gzip.compress(bytes(payload)))
    else:
        bad.write_bytes(b"<html>not found</html>")
    destination = tmp_path / "dest"
    with http_server(served) as (url, _):
        with pytest.raises(data.ChecksumError, match="t10k-images-idx3-ubyte.gz"):
            data.download("mnist", data_dir=destination, base_url=url, progress=False)
    folder = destination / "mnist"
    assert not (folder / "t10k-images-idx3-ubyte.gz").exists()
    assert (folder / "train-images-idx3-ubyte.gz").exists()  # files before it landed
    assert leftovers(folder) == []


def test_download_missing_on_server_is_a_data_error(tmp_path, no_checksums):
    (tmp_path / "empty").mkdir()
    with http_server(tmp_path / "empty") as (url, _):
        with pytest.raises(data.DataError, match="could not download .*train-images-idx3-ubyte.gz"):
            data.download("fashion_mnist", data_dir=tmp_path / "dest", base_url=url, progress=False)
    assert list((tmp_path / "dest" / "fashion_mnist").iterdir()) == []


def test_download_cifar_archive(tmp_path, monkeypatch):
    served = tmp_path / "served"
    batches = make_cifar_batches()
    write_cifar_archive(served / "cifar-10-python.tar.gz", batches)
    md5 = hashlib.md5((served / "cifar-10-python.tar.gz").read_bytes()).hexdigest()
    monkeypatch.setitem(data.CHECKSUMS, "cifar10/cifar-10-python.tar.gz", ("md5", md5))
    with http_server(served) as (url, requested):
        folder = data.download("cifar10", data_dir=tmp_path / "dest", base_url=url, progress=True)
    assert requested == ["/cifar-10-python.tar.gz"]
    assert (folder / "cifar-10-python.tar.gz").is_file()
    images, _ = data.load_dataset("cifar10", "test", data_dir=tmp_path / "dest", color=True)
    assert np.array_equal(images.numpy(), batches["test_batch"][0])


@needs_real_data
def test_download_real_mnist_from_local_server(tmp_path):
    with http_server(Path(REAL_DATA) / "mnist") as (url, requested):
        folder = data.download("mnist", data_dir=tmp_path, base_url=url, progress=False)
    assert len(requested) == 4
    for name in IDX_NAMES:
        assert (folder / f"{name}.gz").stat().st_size == (Path(REAL_DATA) / "mnist" / f"{name}.gz").stat().st_size
    assert leftovers(folder) == []
    images, labels = data.load_dataset("mnist", "test", data_dir=tmp_path)  # verifies the real table
    assert images.shape == (10000, 1, 28, 28) and labels[:3].tolist() == [7, 2, 1]


def test_download_default_urls_are_official():
    plan = {name: data._download_plan(name, None) for name in data.DATASETS}
    assert plan["mnist"][0][0] == "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz"
    assert plan["fashion_mnist"][3][0].startswith("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/")
    assert plan["cifar10"][0][0] == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


# --------------------------------------------------------------------------- noise


def mid_gray(size: int = 200) -> torch.Tensor:
    return torch.full((1, 1, size, size), 128, dtype=torch.uint8)


def test_fixed_test_noise_is_deterministic():
    clean = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    first = data.fixed_test_noise(clean, 0.2, seed=7)
    assert torch.equal(first, data.fixed_test_noise(clean, 0.2, seed=7))
    assert not torch.equal(first, data.fixed_test_noise(clean, 0.2, seed=8))
    assert first.dtype == torch.uint8 and first.shape == clean.shape
    torch.manual_seed(0)  # the global generator has no effect
    assert torch.equal(first, data.fixed_test_noise(clean, 0.2, seed=7))


def test_add_noise_uses_the_given_generator():
    clean = mid_gray(16)
    a = data.add_noise(clean, 0.1, generator=torch.Generator().manual_seed(1))
    b = data.add_noise(clean, 0.1, generator=torch.Generator().manual_seed(1))
    c = data.add_noise(clean, 0.1, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_mirror_random_half_mirrors_whole_images_about_half_the_time():
    images = torch.randint(0, 256, (400, 2, 5, 7), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    out = data.mirror_random_half(images, torch.Generator().manual_seed(3))
    assert out.shape == images.shape and out.dtype == torch.uint8
    kept = (out == images).flatten(1).all(1)
    mirrored = (out == images.flip(-1)).flatten(1).all(1)
    assert bool((kept ^ mirrored).all())            # every image whole: as it was, or mirrored
    assert 160 < int(mirrored.sum()) < 240           # Binomial(400, 1/2): mean 200, sd 10
    again = data.mirror_random_half(images, torch.Generator().manual_seed(3))
    other = data.mirror_random_half(images, torch.Generator().manual_seed(4))
    assert torch.equal(out, again) and not torch.equal(out, other)


@pytest.mark.parametrize("noise", ["add", "fixed"])
def test_zero_noise_returns_the_input(noise):
    clean = torch.arange(256, dtype=torch.uint8).reshape(1, 16, 16)
    noisy = data.add_noise(clean, 0.0) if noise == "add" else data.fixed_test_noise(clean, 0)
    assert torch.equal(noisy, clean)


@pytest.mark.parametrize("noise", ["add", "fixed"])
def test_noise_statistics_on_mid_gray(noise):
    eta = 0.05  # 128/255 +- 4 sigma stays inside [0, 1]: no clipping
    clean = mid_gray()
    if noise == "add":
        noisy = data.add_noise(clean, eta, generator=torch.Generator().manual_seed(0))
    else:
        noisy = data.fixed_test_noise(clean, eta)
    residual = (noisy.double() - clean.double()) / 255
    assert abs(residual.mean().item()) < 0.002
    assert abs(residual.std().item() - eta) < 0.002


def test_noise_is_clipped_to_the_valid_range():
    black = torch.zeros(1, 100, 100, dtype=torch.uint8)
    noisy = data.fixed_test_noise(black, 0.3)
    assert 0.45 < (noisy == 0).float().mean().item() < 0.55  # the negative half clips at 0
    white = torch.full((1, 100, 100), 255, dtype=torch.uint8)
    assert 0.45 < (data.fixed_test_noise(white, 0.3) == 255).float().mean().item() < 0.55


@pytest.mark.parametrize("eta", [-0.1, float("nan"), float("inf")])
def test_invalid_eta_is_rejected(eta):
    with pytest.raises(ValueError, match="eta"):
        data.add_noise(mid_gray(4), eta)
    with pytest.raises(ValueError, match="eta"):
        data.fixed_test_noise(mid_gray(4), eta)


def test_noise_needs_uint8_images():
    with pytest.raises(TypeError, match="uint8"):
        data.add_noise(torch.rand(1, 4, 4), 0.1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fixed_test_noise_is_the_same_on_cuda():
    clean = mid_gray(32)
    on_gpu = data.fixed_test_noise(clean.cuda(), 0.2, seed=3)
    assert on_gpu.is_cuda and torch.equal(on_gpu.cpu(), data.fixed_test_noise(clean, 0.2, seed=3))
    generator = torch.Generator(device="cuda").manual_seed(0)
    assert data.add_noise(clean.cuda(), 0.2, generator=generator).is_cuda


# ---------------------------------------------------------------------- user images


def random_levels(shape, top: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, top + 1, shape, generator=generator).double().div(top).float()


@pytest.mark.parametrize(
    "file_name, channels, bits",
    [("gray.png", 1, 8), ("rgb.png", 3, 8), ("gray16.png", 1, 16), ("gray.tif", 1, 8),
     ("rgb.tiff", 3, 8), ("gray16.tif", 1, 16)],
)
def test_write_read_round_trip_is_exact(tmp_path, file_name, channels, bits):
    image = random_levels((channels, 7, 9), top=2**bits - 1)
    data.write_image(tmp_path / file_name, image, bits=bits)
    read, depth = data.read_image(tmp_path / file_name)
    assert depth == bits
    assert read.dtype == torch.float32 and read.shape == (channels, 7, 9)
    assert torch.allclose(read, image, atol=1e-7)


def test_sixteen_bit_keeps_levels_eight_bit_cannot(tmp_path):
    image = torch.full((1, 4, 4), 1000 / 65535)
    data.write_image(tmp_path / "a16.png", image, bits=16)
    with Image.open(tmp_path / "a16.png") as written:
        assert written.mode.startswith("I")
    assert round(data.read_image(tmp_path / "a16.png")[0][0, 0, 0].item() * 65535) == 1000
    data.write_image(tmp_path / "a8.png", image, bits=8)
    assert data.read_image(tmp_path / "a8.png")[0].max().item() == pytest.approx(4 / 255)


def test_jpeg_is_readable(tmp_path):
    ramp = torch.linspace(0, 1, 32).repeat(3, 32, 1)  # smooth, so JPEG error stays small
    data.write_image(tmp_path / "ramp.jpg", ramp)
    read, depth = data.read_image(tmp_path / "ramp.jpg")
    assert depth == 8 and read.shape == (3, 32, 32)
    assert (read - ramp).abs().mean().item() < 0.03


@pytest.mark.parametrize("mode, channels", [("RGBA", 3), ("LA", 1), ("P", 3), ("1", 1), ("CMYK", 3)])
def test_other_pillow_modes_are_converted(tmp_path, mode, channels):
    path = tmp_path / ("image.tif" if mode == "CMYK" else "image.png")
    Image.new("RGB", (5, 4), (200, 100, 50)).convert(mode).save(path)
    read, depth = data.read_image(path)
    assert read.shape == (channels, 4, 5) and depth == 8
    assert 0.0 <= read.min().item() and read.max().item() <= 1.0


def test_16_bit_int_mode_is_read(tmp_path):
    path = tmp_path / "int32.tif"
    Image.fromarray(np.array([[0, 40000], [65535, 7]], dtype=np.int32)).save(path)
    read, depth = data.read_image(path)
    assert depth == 16
    assert torch.allclose(read[0], torch.tensor([[0, 40000], [65535, 7]]) / 65535.0)


def test_garbage_file_is_a_data_error(tmp_path):
    path = tmp_path / "photo.png"
    path.write_bytes(b"this is not an image at all")
    with pytest.raises(data.DataError, match="photo.png") as caught:
        data.read_image(path)
    assert "\n" not in str(caught.value)
    with pytest.raises(data.DataNotFoundError):
        data.read_image(tmp_path / "absent.png")


def test_write_image_rejects_what_it_cannot_write(tmp_path):
    with pytest.raises(ValueError, match="16-bit"):
        data.write_image(tmp_path / "rgb16.png", torch.zeros(3, 2, 2), bits=16)
    with pytest.raises(ValueError, match="shape"):
        data.write_image(tmp_path / "four.png", torch.zeros(4, 2, 2))
    with pytest.raises(ValueError, match="NaN"):
        data.write_image(tmp_path / "nan.png", torch.full((1, 2, 2), float("nan")))
    with pytest.raises(data.DataError, match="unknown.xyz"):
        data.write_image(tmp_path / "unknown.xyz", torch.zeros(1, 2, 2))


def test_write_image_clips_out_of_range_values(tmp_path):
    data.write_image(tmp_path / "clip.png", torch.tensor([[[-0.5, 1.5]]]))
    assert data.read_image(tmp_path / "clip.png")[0].flatten().tolist() == [0.0, 1.0]


def test_list_images_sorted_and_filtered(tmp_path):
    for name in ["b.png", "a.JPG", "c.tif", "notes.txt", "d.jpeg", "e.npz"]:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "folder.png").mkdir()
    assert [p.name for p in data.list_images(tmp_path)] == ["a.JPG", "b.png", "c.tif", "d.jpeg"]
    with pytest.raises(data.DataNotFoundError):
        data.list_images(tmp_path / "missing")


def test_to_uint8_rounds_to_the_nearest_level_and_clips():
    levels = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(data.to_uint8(levels.float() / 255.0), levels)          # exact inverse of / 255
    pixels = torch.tensor([-0.5, 0.4 / 255, 0.6 / 255, 254.4 / 255, 1.0, 3.0])
    assert data.to_uint8(pixels).tolist() == [0, 0, 1, 254, 255, 255]


def moved(image: torch.Tensor, down: int, across: int) -> torch.Tensor:
    """``[C, H, W]`` ``image`` moved ``down`` rows and ``across`` columns, black where it uncovers (a reference)."""
    out = torch.zeros_like(image)
    height, width = image.shape[-2:]
    for y in range(height):
        for x in range(width):
            if 0 <= y - down < height and 0 <= x - across < width:
                out[:, y, x] = image[:, y - down, x - across]
    return out


def test_shift_randomly_moves_whole_images_by_every_offset_in_range():
    images = torch.randint(1, 256, (300, 2, 5, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    out = data.shift_randomly(images, 1, torch.Generator().manual_seed(3))
    assert out.shape == images.shape and out.dtype == torch.uint8
    offsets = [(down, across) for down in (-1, 0, 1) for across in (-1, 0, 1)]
    found = []
    for image, result in zip(images, out):
        matches = [offset for offset in offsets if torch.equal(result, moved(image, *offset))]
        assert len(matches) == 1        # nonzero pixels: each offset gives a different image
        found.append(matches[0])
    counts = [found.count(offset) for offset in offsets]
    assert all(15 < count < 55 for count in counts)    # Binomial(300, 1/9): mean 33, sd 5.4
    again = data.shift_randomly(images, 1, torch.Generator().manual_seed(3))
    other = data.shift_randomly(images, 1, torch.Generator().manual_seed(4))
    assert torch.equal(out, again) and not torch.equal(out, other)


def test_shift_randomly_by_zero_keeps_the_images_and_refuses_a_negative_shift():
    images = torch.randint(0, 256, (4, 1, 3, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(data.shift_randomly(images, 0), images)
    with pytest.raises(ValueError, match="max_shift"):
        data.shift_randomly(images, -1)
