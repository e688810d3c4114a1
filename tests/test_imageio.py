"""digitlens.imageio: every way a file can be wrong gives one ImageError naming it; no bytes crash it."""
from __future__ import annotations

import os
import struct
import time
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digitlens.imageio import ImageError, ImageLimits, decode_image, header_size, load_image, sniff_format


def _picture(h: int = 40, w: int = 56) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = np.full((h, w, 3), 230, np.uint8)
    cv2.putText(img, "7", (w // 4, h - 8), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (20, 30, 40), 3)
    return np.clip(img.astype(int) + rng.integers(-5, 6, img.shape), 0, 255).astype(np.uint8)


def _encode(img: np.ndarray, ext: str, params: tuple = ()) -> bytes:
    ok, buf = cv2.imencode(ext, img, list(params))
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize("ext,fmt", [(".png", "png"), (".jpg", "jpeg"), (".bmp", "bmp"), (".webp", "webp"),
                                     (".tiff", "tiff"), (".ppm", "pnm")])
def test_each_format_decodes_to_bgr_with_header_size(ext, fmt):
    img = _picture()
    data = _encode(img, ext)
    assert sniff_format(data) == fmt
    assert header_size(data, fmt) == (56, 40)
    out = decode_image(data, "pic" + ext)
    assert out.shape == (40, 56, 3) and out.dtype == np.uint8
    if ext != ".jpg" and ext != ".webp":  # lossless formats give the pixels back
        assert np.array_equal(out, img)


def test_grey_alpha_and_16_bit_become_bgr_u8():
    grey = np.full((10, 12), 100, np.uint8)
    assert np.array_equal(decode_image(_encode(grey, ".png"), "g.png"), np.full((10, 12, 3), 100, np.uint8))
    deep = np.full((10, 12, 3), 65535, np.uint16)
    deep[0, 0] = (0, 257 * 10, 257 * 200)
    out = decode_image(_encode(deep, ".png"), "d.png")
    assert out.dtype == np.uint8 and out[1, 1].tolist() == [255, 255, 255] and out[0, 0].tolist() == [0, 10, 200]
    rgba = np.zeros((10, 12, 4), np.uint8)  # black, fully transparent: paper, not ink
    rgba[:5, :, 3] = 255  # top half opaque black
    out = decode_image(_encode(rgba, ".png"), "a.png")
    assert out[:5].max() == 0 and out[5:].min() == 255


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp"])
def test_grey_decoding_is_the_grey_of_the_colour_image(ext):
    """What the reader reads: `grey=True` gives (H, W) uint8, the grey of the colour decode (JPEG's own luma,
    which differs from BGR -> grey of the colour decode by a few levels where a saturated colour was clipped)."""
    img = _picture()
    img[:10, :20] = (255, 0, 0)  # a saturated colour patch
    data = _encode(img, ext)
    grey = decode_image(data, "pic" + ext, grey=True)
    colour = decode_image(data, "pic" + ext)
    assert grey.shape == (40, 56) and grey.dtype == np.uint8
    diff = np.abs(grey.astype(int) - cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY).astype(int))
    if ext == ".jpg":
        assert diff.max() <= 8 and np.mean(diff > 1) < 0.02
    else:
        assert diff.max() == 0
    rgba = np.zeros((10, 12, 4), np.uint8)  # transparent pixels are paper in grey too
    rgba[:5, :, 3] = 255
    out = decode_image(_encode(rgba, ".png"), "a.png", grey=True)
    assert out.shape == (10, 12) and out[:5].max() == 0 and out[5:].min() == 255


def test_load_image_reads_a_file(tmp_path):
    img = _picture()
    path = tmp_path / "pic.png"
    path.write_bytes(_encode(img, ".png"))
    assert np.array_equal(load_image(path), img)
    assert np.array_equal(load_image(str(path)), img)


def _message(fn, *args, **kw) -> str:
    with pytest.raises(ImageError) as info:
        fn(*args, **kw)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_missing_directory_and_empty_files(tmp_path):
    assert "no such file" in _message(load_image, tmp_path / "nope.png")
    assert str(tmp_path / "nope.png") in _message(load_image, tmp_path / "nope.png")
    assert "directory" in _message(load_image, tmp_path)
    (tmp_path / "empty.jpg").write_bytes(b"")
    msg = _message(load_image, tmp_path / "empty.jpg")
    assert "empty" in msg and "empty.jpg" in msg


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable files")
def test_unreadable_file(tmp_path):
    p = tmp_path / "secret.png"
    p.write_bytes(_encode(_picture(), ".png"))
    p.chmod(0)
    assert "permission" in _message(load_image, p)


def test_not_an_image_and_refused_formats():
    assert "not an image" in _message(decode_image, b"hello, world\n" * 10, "notes.txt")
    assert "gif" in _message(decode_image, b"GIF89a" + bytes(100), "anim.gif")
    assert "pdf" in _message(decode_image, b"%PDF-1.7\n" + bytes(100), "doc.pdf")
    png = _encode(_picture(), ".png")
    msg = _message(decode_image, png, "pic.png", ImageLimits(formats=frozenset({"jpeg"})))
    assert "pic.png" in msg and "png" in msg and "not allowed" in msg


def test_truncated_files_are_refused():
    img = _picture(120, 160)
    for ext in (".png", ".jpg", ".bmp", ".webp", ".tiff", ".ppm"):
        data = _encode(img, ext)
        for cut in (len(data) // 3, len(data) - 2, 20, 5):
            assert f"cut{ext}" in _message(decode_image, data[:cut], f"cut{ext}")


def test_byte_limit_before_reading(tmp_path):
    data = _encode(_picture(), ".png")
    assert "over the limit" in _message(decode_image, data, "big.png", ImageLimits(max_bytes=len(data) - 1))
    p = tmp_path / "big.png"
    p.write_bytes(data)
    assert "over the limit" in _message(load_image, p, ImageLimits(max_bytes=100))


def _png_with_size(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height but whose data is tiny: a decompression bomb's header."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_pixel_limit_is_checked_from_the_header_before_decoding():
    msg = _message(decode_image, _png_with_size(100_000, 100_000), "bomb.png")
    assert "bomb.png" in msg and "100000x100000" in msg and "pixels" in msg
    jpeg = bytearray(_encode(_picture(), ".jpg"))
    sof = max(jpeg.find(bytes([0xFF, m])) for m in (0xC0, 0xC2))
    jpeg[sof + 5:sof + 9] = struct.pack(">HH", 30000, 30000)
    assert "30000x30000" in _message(decode_image, bytes(jpeg), "bomb.jpg")
    small = ImageLimits(max_pixels=40 * 56 - 1)
    for ext in (".png", ".jpg", ".bmp", ".webp", ".tiff", ".ppm"):
        assert "56x40" in _message(decode_image, _encode(_picture(), ext), "x" + ext, small)


def test_zero_size_header():
    assert "empty size" in _message(decode_image, _png_with_size(0, 10), "zero.png")


# ---- fuzzing: whatever the bytes, an array or an ImageError, never anything else ----

def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(data)
    op = rng.integers(6)
    if op == 0:  # bit flips
        for _ in range(rng.integers(1, 9)):
            i = rng.integers(len(b))
            b[i] ^= 1 << int(rng.integers(8))
    elif op == 1:  # truncation
        b = b[:rng.integers(0, len(b))]
    elif op == 2:  # header edits: random bytes in the first 64
        for _ in range(rng.integers(1, 5)):
            b[rng.integers(min(64, len(b)))] = int(rng.integers(256))
    elif op == 3:  # header size fields set to extremes
        i = int(rng.integers(min(40, len(b) - 4)))
        b[i:i + 4] = bytes(rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\x00\x01"]))
    elif op == 4:  # junk spliced in
        i = int(rng.integers(len(b)))
        b[i:i] = rng.integers(0, 256, int(rng.integers(1, 200)), dtype=np.uint8).tobytes()
    else:  # a chunk deleted
        i = int(rng.integers(len(b)))
        del b[i:i + int(rng.integers(1, 100))]
    return bytes(b)


def _only_array_or_image_error(data: bytes) -> None:
    try:
        out = decode_image(data, "fuzz", ImageLimits(max_pixels=4_000_000))
    except ImageError:
        return
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3


def test_fuzz_mutated_png_and_jpeg():
    img = _picture(48, 64)
    seeds = [_encode(img, ".png"), _encode(img, ".jpg"), _encode(img, ".jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1)),
             _encode(img[:, :, 0], ".png"), _encode(img, ".webp"), _encode(img, ".bmp")]
    rng = np.random.default_rng(1234)
    start, n = time.perf_counter(), 0
    for _ in range(5000):
        data = seeds[int(rng.integers(len(seeds)))]
        for _ in range(int(rng.integers(1, 3))):
            data = _mutate(data, rng) if data else data
        _only_array_or_image_error(data)
        n += 1
    assert n == 5000 and time.perf_counter() - start < 30


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"RIFF\x00\x00\x00\x00WEBP",
                               b"II*\x00", b"MM\x00*", b"P6\n", b"P5 "]),
       body=st.binary(max_size=300))
def test_fuzz_arbitrary_bytes_behind_magic(prefix, body):
    _only_array_or_image_error(prefix + body)
