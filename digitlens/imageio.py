"""Safe image decoding: bytes or a path in, a BGR uint8 array out, or one ImageError.

Untrusted bytes (uploads, files from a folder) pass three gates before OpenCV touches them:
the byte size, the format (recognised by its magic bytes, checked against an allow-list) and
the pixel count read from the format's own header. Only then does ``cv2.imdecode`` run, and
whatever it returns is converted to 3-channel 8-bit BGR (grey, alpha, 16-bit, float).
Any failure, whatever the bytes, is an ``ImageError`` whose one-line message names the file.
"""
from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

FORMATS = ("png", "jpeg", "bmp", "webp", "tiff", "pnm")
# File suffixes taken for images when a folder or glob is searched (the decoder itself goes by magic bytes).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".dib", ".webp", ".tif", ".tiff", ".pgm", ".ppm",
                            ".pnm", ".pbm"})


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 20 * 1024 * 1024  # larger files are refused before reading: a phone JPEG is ~2-8 MB
    max_pixels: int = 40_000_000  # width*height from the header; 40 MP is above any phone camera, below a decompression bomb
    formats: frozenset[str] = field(default_factory=lambda: frozenset(FORMATS))  # allow-list, names as in FORMATS


class ImageError(ValueError):
    """An image could not be read; the message is one line and names the file."""


# Magic bytes of formats we refuse by name, so that the message says what the file is.
_OTHER_MAGIC = (
    (b"GIF87a", "gif"), (b"GIF89a", "gif"), (b"%PDF", "pdf"), (b"\x00\x00\x01\x00", "ico"),
    (b"8BPS", "psd"), (b"\x76\x2f\x31\x01", "openexr"), (b"#?RADIANCE", "hdr"), (b"PK\x03\x04", "zip"),
)


def sniff_format(data: bytes) -> str | None:
    """The format named by the magic bytes at the start of `data` (one of FORMATS), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"BM"):
        return "bmp"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if len(data) >= 3 and data[0:1] == b"P" and data[1:2] in b"123456" and data[2:3].isspace():
        return "pnm"
    return None


def _other_format(data: bytes) -> str | None:
    if len(data) >= 12 and data[4:8] == b"ftyp":
        return "heic/mp4 (ISO media)"
    for magic, name in _OTHER_MAGIC:
        if data.startswith(magic):
            return name
    return None


class _HeaderError(Exception):
    pass


def _png_size(data: bytes) -> tuple[int, int]:
    # signature (8), then the first chunk must be IHDR: length (4) "IHDR" width (4) height (4)
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise _HeaderError("PNG header (IHDR) missing or truncated")
    w, h = struct.unpack(">II", data[16:24])
    # Walk the chunks: a length that runs past the end makes libpng spin for seconds on a tiny file.
    i, n = 8, len(data)
    while True:
        if i + 12 > n:
            raise _HeaderError("PNG data truncated (no IEND chunk at the end)")
        length = struct.unpack(">I", data[i:i + 4])[0]
        if i + 12 + length > n:
            raise _HeaderError(f"PNG chunk at byte {i} runs past the end of the data (truncated or corrupt)")
        if data[i + 4:i + 8] == b"IEND":
            return w, h
        i += 12 + length


# SOF markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: bytes) -> tuple[int, int]:
    i, n = 2, len(data)
    size = None
    while i + 4 <= n:
        if data[i] != 0xFF:  # extraneous bytes between segments: libjpeg skips them, so do we
            i = data.find(b"\xff", i)
            if i < 0:
                break
            continue
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01,) or 0xD0 <= marker <= 0xD7:  # stand-alone markers
            i += 2
            continue
        if marker == 0xD9:
            break
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if length < 2:
            raise _HeaderError(f"JPEG segment length {length} at byte {i}")
        if marker in _SOF:
            if i + 9 > n:
                break
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            size = (w, h)
        if marker == 0xDA:  # start of scan: entropy-coded data follows up to EOI
            if size is None:
                raise _HeaderError("JPEG scan before any frame header (SOF)")
            # 0xFF inside entropy-coded data is stuffed as FF00, so FFD9 marks the real end
            if data.rfind(b"\xff\xd9") < i:
                raise _HeaderError("JPEG data truncated (no end-of-image marker)")
            return size
        i += 2 + length
    raise _HeaderError("JPEG frame header (SOF) or scan missing or truncated")


def _bmp_size(data: bytes) -> tuple[int, int]:
    if len(data) < 26:
        raise _HeaderError("BMP header truncated")
    dib = struct.unpack("<I", data[14:18])[0]
    if dib == 12:
        w, h = struct.unpack("<HH", data[18:22])
    elif dib >= 40:
        w, h = struct.unpack("<ii", data[18:26])
    else:
        raise _HeaderError(f"BMP header of unknown size {dib}")
    return abs(w), abs(h)


def _webp_size(data: bytes) -> tuple[int, int]:
    if len(data) < 30:
        raise _HeaderError("WEBP header truncated")
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            raise _HeaderError("WEBP VP8 start code missing")
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            raise _HeaderError("WEBP VP8L signature missing")
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    raise _HeaderError(f"WEBP chunk {chunk!r} unknown")


def _tiff_size(data: bytes) -> tuple[int, int]:
    end = "<" if data[:2] == b"II" else ">"
    if len(data) < 8:
        raise _HeaderError("TIFF header truncated")
    ifd = struct.unpack(end + "I", data[4:8])[0]
    if ifd + 2 > len(data):
        raise _HeaderError("TIFF directory offset beyond the end of the file")
    count = struct.unpack(end + "H", data[ifd:ifd + 2])[0]
    dims: dict[int, int] = {}
    for k in range(count):
        e = ifd + 2 + 12 * k
        if e + 12 > len(data):
            raise _HeaderError("TIFF directory truncated")
        tag, typ = struct.unpack(end + "HH", data[e:e + 4])
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT (3) or LONG (4)
            fmt = end + ("H" if typ == 3 else "I")
            dims[tag] = struct.unpack(fmt, data[e + 8:e + 8 + struct.calcsize(fmt)])[0]
    if 256 not in dims or 257 not in dims:
        raise _HeaderError("TIFF width or height tag missing")
    return dims[256], dims[257]


_PNM_HEADER = re.compile(rb"P[1-6](?:\s+|#[^\n]*\n)+(\d+)(?:\s+|#[^\n]*\n)+(\d+)")


def _pnm_size(data: bytes) -> tuple[int, int]:
    m = _PNM_HEADER.match(data[:512])
    if not m:
        raise _HeaderError("PNM header (width height) missing or malformed")
    return int(m.group(1)), int(m.group(2))


_SIZE_READERS = {"png": _png_size, "jpeg": _jpeg_size, "bmp": _bmp_size, "webp": _webp_size,
                 "tiff": _tiff_size, "pnm": _pnm_size}


def header_size(data: bytes, fmt: str) -> tuple[int, int]:
    """(width, height) read from the header of an image of format `fmt`; ValueError if unreadable."""
    try:
        return _SIZE_READERS[fmt](data)
    except _HeaderError as e:
        raise ValueError(str(e)) from None
    except (struct.error, IndexError, ValueError) as e:
        raise ValueError(f"{fmt.upper()} header malformed ({e})") from None


def to_bgr_u8(image: np.ndarray) -> np.ndarray:
    """Any decoded image (grey, grey+alpha, BGR, BGRA; 8/16-bit or float) as (H, W, 3) uint8 BGR.

    Alpha is composited over white: transparent pixels of scans and drawings are paper, not ink.
    """
    img = image
    if img.dtype == np.uint16:
        img = (img.astype(np.uint32) * 255 + 32767) // 65535
    elif img.dtype.kind == "f":
        f = np.nan_to_num(img.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        img = np.clip(f * 255.0 if f.size and f.max() <= 1.0 else f, 0, 255) + 0.5
    elif img.dtype != np.uint8:
        img = np.clip(img, 0, 255)
    img = img.astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    channels = img.shape[2]
    if channels == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2BGR)
    if channels == 2:  # grey + alpha
        grey, alpha = img[:, :, :1].astype(np.float32), img[:, :, 1:2].astype(np.float32) / 255.0
        out = grey * alpha + 255.0 * (1.0 - alpha)
        return cv2.cvtColor((out[:, :, 0] + 0.5).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    if channels == 4:
        bgr, alpha = img[:, :, :3].astype(np.float32), img[:, :, 3:4].astype(np.float32) / 255.0
        return (bgr * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)
    return np.ascontiguousarray(img[:, :, :3])


def decode_image(data: bytes, name: str = "<bytes>", limits: ImageLimits = ImageLimits(), grey: bool = False) -> np.ndarray:
    """Decode untrusted image bytes into an (H, W, 3) BGR uint8 array (with `grey`, an (H, W) grey one: what the
    reader works on), or raise ImageError naming `name`."""
    try:
        data = bytes(data)
    except (TypeError, ValueError):
        raise ImageError(f"{name}: expected bytes, got {type(data).__name__}") from None
    if not data:
        raise ImageError(f"{name}: empty file (0 bytes)")
    if len(data) > limits.max_bytes:
        raise ImageError(f"{name}: {len(data):,} bytes is over the limit of {limits.max_bytes:,} bytes")
    fmt = sniff_format(data)
    if fmt is None:
        other = _other_format(data)
        what = f"a {other} file" if other else "not an image"
        raise ImageError(f"{name}: {what}; supported formats: {', '.join(sorted(limits.formats))}")
    if fmt not in limits.formats:
        raise ImageError(f"{name}: {fmt} images are not allowed here; allowed: {', '.join(sorted(limits.formats))}")
    try:
        width, height = header_size(data, fmt)
    except ValueError as e:
        raise ImageError(f"{name}: not a readable {fmt} image: {e}") from None
    if width <= 0 or height <= 0:
        raise ImageError(f"{name}: {fmt} header gives an empty size {width}x{height}")
    if width * height > limits.max_pixels:
        raise ImageError(f"{name}: {width}x{height} = {width * height:,} pixels is over the limit of "
                         f"{limits.max_pixels:,} pixels")
    buf = np.frombuffer(data, dtype=np.uint8)
    # JPEG: IMREAD_COLOR applies the EXIF orientation of phone photos and is always 8-bit 3-channel.
    # Others: IMREAD_UNCHANGED keeps alpha, so that transparency becomes white paper, not black.
    # JPEG in grey: the decoder's luma, without making colour first (~40% less time; the same grey as
    # BGR -> grey of the colour image but for a few saturated pixels off by a level or two).
    flags = (cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR) if fmt == "jpeg" else cv2.IMREAD_UNCHANGED
    try:
        image = cv2.imdecode(buf, flags)
    except cv2.error as e:
        msg = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise ImageError(f"{name}: not a readable {fmt} image: {msg}") from None
    if image is None or image.size == 0:
        raise ImageError(f"{name}: not a readable {fmt} image (corrupt or truncated data)")
    if image.shape[0] * image.shape[1] > limits.max_pixels:  # a header that lied
        raise ImageError(f"{name}: decoded {image.shape[1]}x{image.shape[0]} pixels is over the limit of "
                         f"{limits.max_pixels:,} pixels")
    if grey and image.ndim == 2 and image.dtype == np.uint8:
        return image
    image = to_bgr_u8(image)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if grey else image


def load_image(path: str | os.PathLike, limits: ImageLimits = ImageLimits(), grey: bool = False) -> np.ndarray:
    """Read an image file into an (H, W, 3) BGR uint8 array (with `grey`, (H, W) grey), or raise ImageError
    naming the file."""
    p = Path(path)
    try:
        if p.is_dir():
            raise ImageError(f"{p}: is a directory, not an image file")
        size = p.stat().st_size
        if size > limits.max_bytes:
            raise ImageError(f"{p}: {size:,} bytes is over the limit of {limits.max_bytes:,} bytes")
        with open(p, "rb") as f:
            data = f.read(limits.max_bytes + 1)
    except FileNotFoundError:
        raise ImageError(f"{p}: no such file") from None
    except PermissionError:
        raise ImageError(f"{p}: permission denied") from None
    except OSError as e:
        raise ImageError(f"{p}: cannot read ({e.strerror or e})") from None
    return decode_image(data, str(p), limits, grey)
