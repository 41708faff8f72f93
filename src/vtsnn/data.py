"""Datasets, images on disk, and the noise model.

Three jobs live here, all about getting pixels in and out:

* **Datasets.** ``load_dataset`` reads MNIST, Fashion-MNIST (IDX files, gzip or
  plain) and CIFAR-10 (the official ``cifar-10-python`` pickles, extracted or still
  in their ``.tar.gz``, else the ``cifar10.npz`` copy) from a data directory, never
  from the network. Every file whose name is in :data:`CHECKSUMS` is checked before
  use; ``download`` fetches the official files for users who have internet.
* **Noise.** ``add_noise`` and ``fixed_test_noise`` implement DESIGN.md "Noise and
  metric": ``noisy = round(clip(clean / 255 + eta * N(0, 1), 0, 1) * 255)``, kept as
  8-bit integers because the UWE spike code needs integer intensities.
* **User images.** ``read_image``/``write_image``/``list_images`` for PNG, JPEG and
  TIFF files, 8- or 16-bit.

Data directory layout (see ``/work/shared/data/README.md``)::

    {data_dir}/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
    {data_dir}/fashion_mnist/...          (same names as MNIST)
    {data_dir}/cifar10/cifar-10-batches-py/{data_batch_1..5,test_batch}
    {data_dir}/cifar10/cifar-10-python.tar.gz
    {data_dir}/cifar10/cifar10.npz        (keras layout; only 1,000 test images)
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import pickle
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

__all__ = [
    "DataError",
    "DataNotFoundError",
    "ChecksumError",
    "DATASETS",
    "CHECKSUMS",
    "DOWNLOAD_URLS",
    "IMAGE_EXTENSIONS",
    "resolve_data_dir",
    "load_dataset",
    "parse_idx",
    "rgb_to_gray",
    "download",
    "add_noise",
    "fixed_test_noise",
    "mirror_random_half",
    "shift_randomly",
    "read_image",
    "write_image",
    "list_images",
]


# --------------------------------------------------------------------------- errors


class DataError(Exception):
    """A data file is missing, corrupt or unreadable; the message says what to do."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A data directory or file does not exist."""


class ChecksumError(DataError, ValueError):
    """A file's content does not match its published checksum."""


# ------------------------------------------------------------------------ constants

DATASETS = ("mnist", "fashion_mnist", "cifar10")
SPLITS = ("train", "test")
DATA_DIR_ENV = "VTSNN_DATA"

# Known checksums, keyed "{dataset}/{file name}". For IDX files the key is the name
# of the *decompressed* payload and the hash is over the decompressed bytes, because
# gzip headers (file name, time stamp) differ between mirrors of the same data; the
# same entry then covers the ``.gz`` and the plain file. The CIFAR-10 archive and
# npz are hashed as files. Values from /work/shared/data/README.md.
CHECKSUMS: dict[str, tuple[str, str]] = {
    "mnist/train-images-idx3-ubyte": ("sha256", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "mnist/train-labels-idx1-ubyte": ("sha256", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "mnist/t10k-images-idx3-ubyte": ("sha256", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "mnist/t10k-labels-idx1-ubyte": ("sha256", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    "fashion_mnist/train-images-idx3-ubyte": ("sha256", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    "fashion_mnist/train-labels-idx1-ubyte": ("sha256", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    "fashion_mnist/t10k-images-idx3-ubyte": ("sha256", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    "fashion_mnist/t10k-labels-idx1-ubyte": ("sha256", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    "cifar10/cifar10.npz": ("sha256", "659f3058edab7567c3d06297b78ddcf263b993014076aa25f4c3aa18e37ff8d1"),
    "cifar10/cifar-10-python.tar.gz": ("md5", "c58f30108f718f92721af3b95e74349a"),
}

# Official sources; ``download(base_url=...)`` replaces the folder part.
DOWNLOAD_URLS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion_mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "cifar10": "https://www.cs.toronto.edu/~kriz/",
}

IDX_PREFIX = {"train": "train", "test": "t10k"}
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR_NPZ = "cifar10.npz"
CIFAR_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}

# ITU-R BT.601 luma weights for R, G, B (the classic "Y" of JPEG and PIL).
BT601_LUMA = (0.299, 0.587, 0.114)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

_CHUNK = 1 << 20


# ------------------------------------------------------------------ data directory


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory: ``data_dir`` if given, else ``$VTSNN_DATA``, else an error."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    from_env = os.environ.get(DATA_DIR_ENV, "")
    if from_env:
        return Path(from_env).expanduser()
    raise DataNotFoundError(
        f"no data directory given: set --data-dir or the {DATA_DIR_ENV} environment "
        f"variable to the folder holding mnist/, fashion_mnist/ and cifar10/"
    )


def _download_hint(name: str) -> str:
    return f"run `vtsnn download {name}` or set --data-dir / {DATA_DIR_ENV} to a folder that has it"


def _missing(name: str, looked_for: Iterable[Path]) -> DataNotFoundError:
    paths = ", ".join(str(p) for p in looked_for)
    return DataNotFoundError(f"{name} data not found (looked for {paths}); {_download_hint(name)}")


# ----------------------------------------------------------------------- checksums

# Files already verified in this process, keyed on what would change if the file
# were replaced or rewritten, so repeated loads do not hash 150 MB again.
_verified: set[tuple] = set()


def _file_identity(path: Path) -> tuple:
    stat = path.stat()
    return (str(path.resolve()), stat.st_mtime_ns, stat.st_size)


def _stream_digest(path: Path, algorithm: str, decompress: bool = False) -> str:
    """Hash of a file's bytes, or of its gzip payload when ``decompress``."""
    digest = hashlib.new(algorithm)
    opener = gzip.open if decompress else open
    try:
        with opener(path, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path} is not a readable gzip file ({exc}); delete it and download again") from exc
    return digest.hexdigest()


def _verify(path: Path, key: str, compute_digest: Callable[[str], str]) -> None:
    """Compare ``compute_digest(algorithm)`` with the table entry ``key``, if any.

    Files whose key is not in :data:`CHECKSUMS` (user-made files) pass unchecked.
    """
    if key not in CHECKSUMS:
        return
    algorithm, expected = CHECKSUMS[key]
    identity = (*_file_identity(path), algorithm, expected)
    if identity in _verified:
        return
    actual = compute_digest(algorithm)
    if actual != expected:
        raise ChecksumError(
            f"{path} is corrupt: {algorithm} {actual} does not match the expected {expected}; "
            f"delete it and download again"
        )
    _verified.add(identity)


# ---------------------------------------------------------------------- IDX (MNIST)

# IDX element types (third magic byte) -> big-endian numpy dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _idx_payload_name(kind: str, split: str) -> str:
    """e.g. ``train-images-idx3-ubyte`` or ``t10k-labels-idx1-ubyte``."""
    suffix = "images-idx3-ubyte" if kind == "images" else "labels-idx1-ubyte"
    return f"{IDX_PREFIX[split]}-{suffix}"


def _read_file_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as stream:
                return stream.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read {path} ({exc}); delete it and download again") from exc


def parse_idx(payload: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode an IDX payload (header: 0, 0, type code, ndim; ndim big-endian uint32 dims)."""

    def invalid(why: str) -> DataError:
        return DataError(f"{source} is not a valid IDX file: {why}; delete it and download again")

    if len(payload) < 4 or payload[0] != 0 or payload[1] != 0:
        raise invalid("bad magic number")
    type_code, ndim = payload[2], payload[3]
    if type_code not in _IDX_DTYPES:
        raise invalid(f"unknown element type 0x{type_code:02x}")
    if ndim == 0:
        raise invalid("zero dimensions")
    header_size = 4 + 4 * ndim
    if len(payload) < header_size:
        raise invalid("truncated header")
    dims = tuple(int(d) for d in np.frombuffer(payload, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = math.prod(dims) * dtype.itemsize
    if len(payload) - header_size != expected:
        raise invalid(f"header says {dims} ({expected} bytes of data), file has {len(payload) - header_size}")
    values = np.frombuffer(payload, dtype=dtype, offset=header_size).reshape(dims)
    # Native byte order and a writable copy, so torch.from_numpy takes it as is.
    return values.astype(dtype.newbyteorder("="), copy=True)


def _find_idx_file(folder: Path, payload_name: str) -> Path | None:
    # The distributed .gz first: it is what `download` writes.
    for candidate in (folder / f"{payload_name}.gz", folder / payload_name):
        if candidate.is_file():
            return candidate
    return None


def _load_idx_array(data_dir: Path, name: str, kind: str, split: str, verify: bool) -> np.ndarray:
    folder = data_dir / name
    payload_name = _idx_payload_name(kind, split)
    path = _find_idx_file(folder, payload_name)
    if path is None:
        raise _missing(name, [folder / f"{payload_name}.gz", folder / payload_name])
    payload = _read_file_bytes(path)
    if verify:
        _verify(path, f"{name}/{payload_name}", lambda algorithm: hashlib.new(algorithm, payload).hexdigest())
    return parse_idx(payload, source=str(path))


def _load_idx_dataset(data_dir: Path, name: str, split: str, verify: bool) -> tuple[torch.Tensor, torch.Tensor]:
    images = _load_idx_array(data_dir, name, "images", split, verify)
    labels = _load_idx_array(data_dir, name, "labels", split, verify)
    folder = data_dir / name
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"{folder}: {split} images must be a 3-d uint8 IDX array, got {images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{folder}: {split} has {len(images)} images but labels of shape {labels.shape}")
    return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


# ------------------------------------------------------------------------- CIFAR-10


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that builds only numpy arrays, lists and dicts.

    The official CIFAR-10 files are pickles; a plain ``pickle.load`` would run any
    code a tampered file asks for, so only the globals numpy arrays need are allowed.
    """

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),  # how protocol 2 stores bytes from Python 3
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _parse_cifar_batch(stream, source: str) -> tuple[np.ndarray, np.ndarray]:
    """One official batch -> (images [n, 3, 32, 32] uint8, labels [n] int64)."""
    try:
        batch = _NumpyOnlyUnpickler(stream, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except Exception as exc:  # any failure means the file is not a CIFAR-10 batch
        raise DataError(f"{source} is not a CIFAR-10 python batch ({exc}); delete it and download again") from exc
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise DataError(f"{source}: unexpected batch shapes data {data.shape}, labels {labels.shape}")
    # Rows are 1024 red, then 1024 green, then 1024 blue bytes, each row-major 32x32.
    return data.reshape(-1, 3, 32, 32), labels


def _load_cifar_folder(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    parts = []
    for batch_name in CIFAR_BATCHES[split]:
        path = folder / batch_name
        if not path.is_file():
            raise _missing("cifar10", [path])
        with open(path, "rb") as stream:
            parts.append(_parse_cifar_batch(stream, str(path)))
    return _concatenate(parts)


def _load_cifar_archive(archive: Path, split: str, verify: bool) -> tuple[np.ndarray, np.ndarray]:
    if verify:
        _verify(archive, f"cifar10/{CIFAR_ARCHIVE}", lambda algorithm: _stream_digest(archive, algorithm))
    wanted = {f"{CIFAR_FOLDER}/{batch}": batch for batch in CIFAR_BATCHES[split]}
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        # One pass over the members: seeking back in a gzip stream re-reads it.
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.isfile() and member.name in wanted:
                    stream = tar.extractfile(member)
                    found[wanted[member.name]] = _parse_cifar_batch(stream, f"{archive}:{member.name}")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read {archive} ({exc}); delete it and download again") from exc
    missing = [name for name in wanted if wanted[name] not in found]
    if missing:
        raise DataError(f"{archive} lacks {', '.join(missing)}; delete it and download again")
    return _concatenate([found[batch] for batch in CIFAR_BATCHES[split]])


def _load_cifar_npz(path: Path, split: str, verify: bool) -> tuple[np.ndarray, np.ndarray]:
    if verify:
        _verify(path, f"cifar10/{CIFAR_NPZ}", lambda algorithm: _stream_digest(path, algorithm))
    try:
        with np.load(path, allow_pickle=False) as archive:
            images_hwc = archive[f"x_{split}"]
            labels = archive[f"y_{split}"].astype(np.int64)
    except (KeyError, ValueError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read {split} split from {path} ({exc}); delete it and download again") from exc
    if images_hwc.ndim != 4 or images_hwc.shape[1:] != (32, 32, 3) or images_hwc.dtype != np.uint8:
        raise DataError(f"{path}: x_{split} must be uint8 [N, 32, 32, 3], got {images_hwc.dtype} {images_hwc.shape}")
    if labels.shape != (len(images_hwc),):
        raise DataError(f"{path}: y_{split} has shape {labels.shape} for {len(images_hwc)} images")
    return np.ascontiguousarray(images_hwc.transpose(0, 3, 1, 2)), labels


def _concatenate(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    images = np.concatenate([images for images, _ in parts])
    labels = np.concatenate([labels for _, labels in parts])
    return images, labels


def _load_cifar(data_dir: Path, split: str, color: bool, verify: bool) -> tuple[torch.Tensor, torch.Tensor]:
    folder = data_dir / "cifar10"
    extracted, archive, npz = folder / CIFAR_FOLDER, folder / CIFAR_ARCHIVE, folder / CIFAR_NPZ
    # The official format has all 10,000 test images; the npz copy only 1,000.
    if extracted.is_dir():
        images, labels = _load_cifar_folder(extracted, split)
    elif archive.is_file():
        images, labels = _load_cifar_archive(archive, split, verify)
    elif npz.is_file():
        images, labels = _load_cifar_npz(npz, split, verify)
    else:
        raise _missing("cifar10", [extracted, archive, npz])
    images_chw = torch.from_numpy(images)
    return (images_chw if color else rgb_to_gray(images_chw)), torch.from_numpy(labels)


def rgb_to_gray(images: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """uint8 ``[N, 3, H, W]`` RGB -> uint8 ``[N, 1, H, W]`` ITU-R BT.601 luma.

    ``round(0.299 R + 0.587 G + 0.114 B)`` in float64 (so ties round the same
    everywhere), clamped to 0..255. Done in chunks so 50,000 images do not need a
    1 GB float copy.
    """
    weights = torch.tensor(BT601_LUMA, dtype=torch.float64).view(1, 3, 1, 1)
    gray = torch.empty((images.shape[0], 1, *images.shape[2:]), dtype=torch.uint8)
    for start in range(0, images.shape[0], chunk):
        block = images[start : start + chunk].to(torch.float64)
        luma = (block * weights).sum(dim=1, keepdim=True)
        gray[start : start + chunk] = luma.round().clamp(0, 255).to(torch.uint8)
    return gray


# --------------------------------------------------------------------- load_dataset


def load_dataset(
    name: str,
    split: str = "test",
    data_dir: str | os.PathLike | None = None,
    color: bool = False,
    verify: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images uint8 ``[N, C, H, W]`` and labels int64 ``[N]`` of one split.

    Args:
        name: one of :data:`DATASETS`.
        split: ``"train"`` or ``"test"``.
        data_dir: folder holding the datasets; default ``$VTSNN_DATA``.
        color: CIFAR-10 only: keep RGB (C=3). Otherwise CIFAR-10 is converted to
            gray with ITU-R BT.601 luma, ``round(0.299 R + 0.587 G + 0.114 B)``
            computed in float and clamped to 0..255 (the paper denoises gray images).
        verify: check files against :data:`CHECKSUMS` (once per process and file).

    CIFAR-10 is read from the official ``cifar-10-batches-py/`` folder, else the
    official ``cifar-10-python.tar.gz`` (read in place), else ``cifar10.npz``, whose
    test split holds only the first 1,000 test images.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose 'train' or 'test'")
    if color and name != "cifar10":
        raise ValueError(f"{name} is gray only; color=True applies to cifar10")
    root = resolve_data_dir(data_dir)
    if name == "cifar10":
        return _load_cifar(root, split, color, verify)
    return _load_idx_dataset(root, name, split, verify)


# ------------------------------------------------------------------------- download


def _download_plan(name: str, base_url: str | None) -> list[tuple[str, str, str, bool]]:
    """(url, file name, checksum key, checksum is over the gzip payload) per file."""
    base = (base_url or DOWNLOAD_URLS[name]).rstrip("/")
    if name == "cifar10":
        return [(f"{base}/{CIFAR_ARCHIVE}", CIFAR_ARCHIVE, f"cifar10/{CIFAR_ARCHIVE}", False)]
    plan = []
    for split in SPLITS:
        for kind in ("images", "labels"):
            payload_name = _idx_payload_name(kind, split)
            plan.append((f"{base}/{payload_name}.gz", f"{payload_name}.gz", f"{name}/{payload_name}", True))
    return plan


def _is_valid(path: Path, key: str, payload_checksum: bool) -> bool:
    try:
        _verify(path, key, lambda algorithm: _stream_digest(path, algorithm, decompress=payload_checksum))
    except DataError:
        return False
    return True


def _fetch(url: str, destination: Path, label: str, progress: bool) -> None:
    """Stream ``url`` into ``destination`` (an already created temporary file)."""
    from tqdm.auto import tqdm

    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(destination, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=label, disable=not progress) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError) as exc:
        raise DataError(f"could not download {url} ({exc}); check the connection or pass base_url") from exc


def download(
    name: str,
    data_dir: str | os.PathLike | None = None,
    base_url: str | None = None,
    progress: bool = True,
) -> Path:
    """Fetch ``name``'s official files into ``{data_dir}/{name}/`` and verify them.

    Each file goes to a temporary file in the destination folder, is checked against
    :data:`CHECKSUMS`, and only then renamed (``os.replace``, atomic) to its final
    name, so an interrupted or corrupt download never sits under the final name.
    Files already present and valid are skipped. ``base_url`` replaces the official
    folder (MNIST-style files are fetched as ``{base_url}/{file}``, CIFAR-10 as
    ``{base_url}/cifar-10-python.tar.gz``). Returns the dataset folder.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    folder = resolve_data_dir(data_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    for url, file_name, key, payload_checksum in _download_plan(name, base_url):
        final = folder / file_name
        if final.is_file() and _is_valid(final, key, payload_checksum):
            continue
        handle, temporary_name = tempfile.mkstemp(dir=folder, prefix=f".{file_name}.", suffix=".part")
        os.close(handle)
        temporary = Path(temporary_name)
        try:
            _fetch(url, temporary, file_name, progress)
            # Hash under the final name's table entry: the temporary name has none.
            _verify_download(temporary, final, key, payload_checksum)
            os.replace(temporary, final)
        finally:
            temporary.unlink(missing_ok=True)
    return folder


def _verify_download(temporary: Path, final: Path, key: str, payload_checksum: bool) -> None:
    if key not in CHECKSUMS:
        return
    algorithm, expected = CHECKSUMS[key]
    try:
        actual = _stream_digest(temporary, algorithm, decompress=payload_checksum)
    except DataError as exc:
        raise ChecksumError(f"downloaded {final.name} is not a valid gzip file ({exc.__cause__}); try again") from exc
    if actual != expected:
        raise ChecksumError(
            f"downloaded {final.name} is corrupt: {algorithm} {actual} does not match the expected "
            f"{expected}; nothing was written to {final}; try again or check base_url"
        )


# ---------------------------------------------------------------------------- noise


def _check_eta(eta: float) -> float:
    eta = float(eta)
    if not math.isfinite(eta) or eta < 0:
        raise ValueError(f"noise level eta must be a finite number >= 0, got {eta}")
    return eta


def to_uint8(pixels: torch.Tensor) -> torch.Tensor:
    """Pixels in [0, 1] (values outside are clipped) as 8-bit levels, rounded to the nearest."""
    return (pixels.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


def _noisy_from(clean: torch.Tensor, eta: float, standard_normal: torch.Tensor) -> torch.Tensor:
    return to_uint8(clean.to(torch.float32) / 255.0 + eta * standard_normal)


def _check_clean(clean: torch.Tensor) -> None:
    if not isinstance(clean, torch.Tensor) or clean.dtype != torch.uint8:
        raise TypeError(f"clean images must be a uint8 tensor (0..255), got {getattr(clean, 'dtype', type(clean))}")


def add_noise(clean: torch.Tensor, eta: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 ``round(clip(clean / 255 + eta * N(0, 1), 0, 1) * 255)``, same shape/device.

    The noise is drawn on ``clean.device`` with ``generator`` (which must live on that
    device). ``eta = 0`` returns the input values unchanged.
    """
    _check_clean(clean)
    eta = _check_eta(eta)
    standard_normal = torch.randn(clean.shape, generator=generator, device=clean.device, dtype=torch.float32)
    return _noisy_from(clean, eta, standard_normal)


def mirror_random_half(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``[N, C, H, W]`` images with each one mirrored left-right with probability 1/2.

    Training augmentation (``TrainConfig.flip``): draws one number per image from
    ``generator`` (on the images' device), so a seeded run stays repeatable.
    """
    mirrored = torch.rand(images.shape[0], generator=generator, device=images.device) < 0.5
    return torch.where(mirrored[:, None, None, None], images.flip(-1), images)


def shift_randomly(images: torch.Tensor, max_shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``[N, C, H, W]`` images each moved by a random whole number of pixels, drawn
    uniformly from ``-max_shift..max_shift`` down and across, the uncovered border black.

    Training augmentation (``TrainConfig.shift``): draws two numbers per image from
    ``generator`` (on the images' device), so a seeded run stays repeatable.
    """
    if max_shift < 0:
        raise ValueError(f"max_shift must be 0 or more pixels, got {max_shift}")
    count, _, height, width = images.shape
    down, across = torch.randint(-max_shift, max_shift + 1, (2, count), generator=generator, device=images.device)
    padded = torch.nn.functional.pad(images, (max_shift,) * 4)
    # Output pixel (y, x) is input pixel (y - down, x - across): row y + max_shift - down of the padding.
    rows = (max_shift - down)[:, None] + torch.arange(height, device=images.device)
    columns = (max_shift - across)[:, None] + torch.arange(width, device=images.device)
    picked = padded[torch.arange(count, device=images.device)[:, None, None], :, rows[:, :, None], columns[:, None, :]]
    return picked.permute(0, 3, 1, 2).contiguous()    # advanced indexing put the channels last


def fixed_test_noise(clean: torch.Tensor, eta: float, seed: int = 0) -> torch.Tensor:
    """Like :func:`add_noise` but a pure function of ``(clean, eta, seed)``.

    Noise is drawn and applied on the CPU with a generator seeded by ``seed`` and the
    result moved to ``clean.device``: CPU and CUDA generators give different streams,
    and every model must be scored on the very same noisy test images.
    """
    _check_clean(clean)
    eta = _check_eta(eta)
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    standard_normal = torch.randn(clean.shape, generator=generator, dtype=torch.float32)
    return _noisy_from(clean.cpu(), eta, standard_normal).to(clean.device)


# ---------------------------------------------------------------------- user images


def _pil():
    # Imported lazily so that importing vtsnn.data does not require Pillow.
    from PIL import Image, ImageOps

    return Image, ImageOps


def read_image(path: str | os.PathLike) -> tuple[torch.Tensor, int]:
    """Read PNG/JPEG/TIFF/BMP as float32 ``[C, H, W]`` in [0, 1] and its bit depth.

    C is 1 for gray and 3 for color; alpha is dropped, palette and other color modes
    become RGB, and the EXIF orientation is applied. Bit depth is 16 for 16-bit gray
    (Pillow modes ``I;16*`` and ``I``), else 8 (Pillow reads 16-bit color as 8-bit).
    """
    Image, ImageOps = _pil()
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"image {path} not found; check the path")
    try:
        with Image.open(path) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read {path} as an image ({exc}); use a PNG, JPEG or TIFF file") from exc
    return _pixels_of(image, path)


def _pixels_of(image, path: Path) -> tuple[torch.Tensor, int]:
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(image).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise DataError(f"{path} holds 32-bit integer pixels outside 0..65535; save it as 8- or 16-bit")
        return torch.from_numpy((values / 65535.0).astype(np.float32))[None], 16
    if mode in ("1", "L", "LA", "La"):
        gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
        return torch.from_numpy(gray)[None], 8
    if mode == "F":
        raise DataError(f"{path} holds 32-bit float pixels, which are not supported; save it as 8- or 16-bit")
    # RGB, RGBA, P, PA, CMYK, YCbCr, ...: Pillow's RGB conversion drops alpha.
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))), 8


def write_image(path: str | os.PathLike, image: torch.Tensor, bits: int = 8) -> None:
    """Write float ``[C, H, W]`` (or ``[H, W]``) in [0, 1] as 8- or 16-bit gray or RGB.

    The format follows the file extension (PNG, TIFF, JPEG, ...). Values are clipped
    to [0, 1] and rounded. 16 bits is for gray only: Pillow cannot write 16-bit RGB.
    """
    Image, _ = _pil()
    path = Path(path)
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    pixels = torch.as_tensor(image).detach().to("cpu", torch.float64)
    if pixels.ndim == 2:
        pixels = pixels[None]
    if pixels.ndim != 3 or pixels.shape[0] not in (1, 3):
        raise ValueError(f"image must be [1, H, W] or [3, H, W], got shape {tuple(pixels.shape)}")
    if not torch.isfinite(pixels).all():
        raise ValueError(f"image for {path} contains NaN or infinite values")
    if bits == 16 and pixels.shape[0] == 3:
        raise ValueError("16-bit output is supported for gray images only (Pillow cannot write 16-bit RGB)")
    top = 255 if bits == 8 else 65535
    levels = (pixels.clamp(0, 1) * top).round().numpy().astype(np.uint8 if bits == 8 else np.uint16)
    array = levels[0] if levels.shape[0] == 1 else levels.transpose(1, 2, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        Image.fromarray(np.ascontiguousarray(array)).save(path)
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"cannot write {path} as {bits}-bit ({exc}); use a .png or .tif name") from exc


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Sorted image files (by extension, case-insensitive) directly inside ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataNotFoundError(f"image folder {folder} not found; check the path")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
