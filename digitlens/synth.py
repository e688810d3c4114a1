"""Training crops that look like what the reader really sees (numpy + OpenCV, no torch).

Two kinds, both passed through the reader's own normaliser so training sees run-time crops:
- camera digits: an MNIST training digit re-rendered at a random size, blurred, binarised at a random
  level and given a random pen width, then normalised again (thicker, thinner, blockier, off-MNIST);
- negatives, the "not a digit" class: letters without digit look-alikes, words, scribbles, shapes,
  dashes, crosses, blobs, speckle, and pairs of touching digits (which the reader must split, not read).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from digitlens.normalise import NormaliseConfig, normalise_mask

# Letters and signs that no writer would take for a digit. Left out: O o Q D (0), I l i j ! (1), Z z (2),
# S s $ (5), b G (6), T t ? (7), B & (8), g q a (9), A y h (4).
SAFE_GLYPHS = "CEFHKMNPRUVWXcefkmnpruvwx#*%@=<>+"
FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX,
         cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_HERSHEY_SCRIPT_COMPLEX, cv2.FONT_HERSHEY_PLAIN)


@dataclass(frozen=True)
class SynthConfig:
    digit_height: tuple[int, int] = (14, 120)  # rendered digit height in px: far, small writing to close-ups
    threshold: tuple[float, float] = (0.25, 0.6)  # binarisation level on MNIST's 0..1 ink
    blur_sigma: tuple[float, float] = (0.0, 1.0)  # relative to a 28 px digit
    pen_change: tuple[float, float] = (-0.35, 0.5)  # pen width change as a fraction of the stroke width
    line_remnant_p: float = 0.08  # a bit of ruled line left touching the digit


def _binarise_digit(img: np.ndarray, rng: np.random.Generator, cfg: SynthConfig) -> np.ndarray:
    height = int(rng.integers(*cfg.digit_height))
    scale = height / 20.0  # MNIST digits are 20 px tall inside 28
    size = max(8, int(round(28 * scale)))
    big = cv2.resize(img.astype(np.float32) / 255.0, (size, size), interpolation=cv2.INTER_CUBIC)
    sigma = float(rng.uniform(*cfg.blur_sigma)) * scale
    if sigma > 0.3:
        big = cv2.GaussianBlur(big, (0, 0), sigma)
    mask = (big > rng.uniform(*cfg.threshold)).astype(np.uint8)
    pen = float(rng.uniform(*cfg.pen_change)) * 2.0 * scale  # MNIST strokes are ~2 px at 20 px height
    radius = int(round(abs(pen) / 2))
    if radius > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        changed = cv2.dilate(mask, kernel) if pen > 0 else cv2.erode(mask, kernel)
        # Keep the change unless it erased the digit or filled its loops (a blob is no longer that digit).
        if 0.3 * mask.sum() < changed.sum() < 2.2 * mask.sum():
            mask = changed
    if rng.random() < cfg.line_remnant_p and mask.any():
        ys, xs = np.nonzero(mask)
        y = int(rng.integers(ys.min(), ys.max() + 1))
        x0 = int(xs.min() - rng.integers(0, max(2, size // 8)))
        x1 = int(xs.min() + rng.integers(1, max(2, size // 4)))
        cv2.line(mask, (x0, y), (x1, y), 1, max(1, int(scale * 0.6)))
    return mask


def camera_digits(images: np.ndarray, rng: np.random.Generator, cfg: SynthConfig = SynthConfig(),
                  ncfg: NormaliseConfig = NormaliseConfig()) -> np.ndarray:
    """MNIST digits (N, 28, 28) uint8 -> the same digits as the reader's normaliser would give them from a photo."""
    out = np.empty_like(images)
    for i, img in enumerate(images):
        mask = _binarise_digit(img, rng, cfg)
        out[i] = normalise_mask(mask, ncfg) if mask.any() else img
    return out


def _canvas(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    size = int(rng.integers(48, 128))
    return np.zeros((size, size), np.uint8), size


def _pts(rng: np.random.Generator, n: int, size: int, margin: float = 0.1) -> np.ndarray:
    return (rng.uniform(margin, 1 - margin, (n, 2)) * size).astype(np.int32)


def _smooth_path(points: np.ndarray, steps: int = 12) -> np.ndarray:
    """Catmull-Rom spline through the points, as int32 polyline."""
    p = np.concatenate([points[:1], points, points[-1:]]).astype(np.float32)
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        for t in np.linspace(0, 1, steps, endpoint=False):
            t2, t3 = t * t, t * t * t
            out.append(0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2
                              + (-p0 + 3 * p1 - 3 * p2 + p3) * t3))
    out.append(p[-2])
    return np.array(out, np.int32).reshape(-1, 1, 2)


def _glyphs(rng, size, canvas, pen):
    text = "".join(rng.choice(list(SAFE_GLYPHS), size=int(rng.integers(1, 4))))
    font = int(rng.choice(FONTS))
    scale = size / 40.0 / max(1, len(text)) * rng.uniform(1.2, 2.2)
    (tw, th), _ = cv2.getTextSize(text, font, scale, pen)
    org = (int(max(0, (size - tw) / 2)), int(min(size - 1, (size + th) / 2)))
    cv2.putText(canvas, text, org, font | (cv2.FONT_ITALIC if rng.random() < 0.3 else 0), scale, 1, pen, cv2.LINE_8)


def _scribble(rng, size, canvas, pen):
    # Eight or more turns: fewer can trace a plausible 2, 3 or 8.
    cv2.polylines(canvas, [_smooth_path(_pts(rng, int(rng.integers(9, 16)), size))], False, 1, pen)


def _shape(rng, size, canvas, pen):
    kind = int(rng.integers(0, 8))
    c = size // 2
    r = int(size * rng.uniform(0.25, 0.45))
    if kind == 0:  # rectangle with sharp corners, wider than tall (a tall one could pass for a 0)
        cv2.rectangle(canvas, (c - r, c - r // 2), (c + r, c + r // 2), 1, pen)
    elif kind == 1:  # triangle, never so flat that it is one thick stroke (a 1)
        for _ in range(20):
            tri = _pts(rng, 3, size)
            if abs(cv2.contourArea(tri.reshape(-1, 1, 2).astype(np.float32))) >= 0.15 * size * size:
                break
        cv2.polylines(canvas, [tri.reshape(-1, 1, 2)], True, 1, pen)
    elif kind == 2:  # star / asterisk
        for a in np.linspace(0, np.pi, int(rng.integers(3, 5)), endpoint=False) + rng.uniform(0, 1):
            dx, dy = int(r * np.cos(a)), int(r * np.sin(a))
            cv2.line(canvas, (c - dx, c - dy), (c + dx, c + dy), 1, pen)
    elif kind == 3:  # cross or hash
        cv2.line(canvas, (c - r, c), (c + r, c), 1, pen)
        cv2.line(canvas, (c, c - r), (c, c + r), 1, pen)
        if rng.random() < 0.5:
            cv2.line(canvas, (c - r, c + r // 2), (c + r, c + r // 2), 1, pen)
            cv2.line(canvas, (c + r // 2, c - r), (c + r // 2, c + r), 1, pen)
    elif kind == 4:  # arrow
        cv2.arrowedLine(canvas, (c - r, c + r // 3), (c + r, c - r // 3), 1, pen, tipLength=0.4)
    elif kind == 6:  # a house, a pentagon or a diamond: straight sides and sharp corners (a 0 has none)
        k = int(rng.choice([4, 5, 6]))
        angles = np.linspace(0, 2 * np.pi, k, endpoint=False) + rng.uniform(0, 2 * np.pi / k)
        pts = np.stack([c + r * np.cos(angles), c + r * np.sin(angles) * rng.uniform(0.8, 1.3)], 1)
        cv2.polylines(canvas, [pts.astype(np.int32).reshape(-1, 1, 2)], True, 1, pen)
    elif kind == 7:  # two long strokes crossing: an X, a crossed-out mark
        first = rng.uniform(0, np.pi)
        for a in (first, first + rng.uniform(0.3, 0.7) * np.pi):  # they cross at 55-125 degrees: never one "/"
            dx, dy = int(r * 1.2 * np.cos(a)), int(r * 1.2 * np.sin(a))
            cv2.line(canvas, (c - dx, c - dy), (c + dx, c + dy), 1, pen)
    else:  # smiley
        cv2.circle(canvas, (c, c), r, 1, pen)
        cv2.circle(canvas, (c - r // 3, c - r // 4), max(1, r // 8), 1, -1)
        cv2.circle(canvas, (c + r // 3, c - r // 4), max(1, r // 8), 1, -1)
        cv2.ellipse(canvas, (c, c + r // 6), (r // 2, r // 3), 0, 20, 160, 1, pen)


def _dash(rng, size, canvas, pen):
    angle = rng.uniform(-20, 20) * np.pi / 180  # near-horizontal: a slanted or upright bar is a 1
    r = size * rng.uniform(0.25, 0.45)
    c = size / 2
    dx, dy = r * np.cos(angle), r * np.sin(angle)
    cv2.line(canvas, (int(c - dx), int(c - dy)), (int(c + dx), int(c + dy)), 1, pen)


def _blob(rng, size, canvas, pen):
    # Round-ish: points around a circle with jittered radius (an elongated blob is a thick 1).
    k = int(rng.integers(6, 12))
    angles = np.sort(rng.uniform(0, 2 * np.pi, k))
    radius = size * 0.35 * rng.uniform(0.7, 1.0, k)
    pts = np.stack([size / 2 + radius * np.cos(angles), size / 2 + radius * np.sin(angles)], 1).astype(np.int32)
    cv2.fillPoly(canvas, [pts], 1)
    if rng.random() < 0.5:  # ragged edge, like an ink blot
        noise = (rng.random(canvas.shape) < 0.15).astype(np.uint8)
        canvas |= cv2.dilate(canvas, np.ones((5, 5), np.uint8)) & noise


def _speckle(rng, size, canvas, pen):
    n = int(rng.integers(15, 60))
    for (x, y) in _pts(rng, n, size, 0.05):
        cv2.circle(canvas, (int(x), int(y)), int(rng.integers(1, max(2, pen + 1))), 1, -1)


def _doodle(rng, size, canvas, pen):
    """Doodles people draw beside numbers: spirals, flowers, clouds, zigzags, waves, check marks."""
    c, r = size / 2, size * rng.uniform(0.3, 0.45)
    kind = int(rng.integers(0, 6))
    if kind == 0:  # spiral: at least two turns (one turn can pass for a 6 or a 9)
        t = np.linspace(0, rng.uniform(4, 7) * np.pi, 120)
        rad = r * t / t[-1]
        pts = np.stack([c + rad * np.cos(t), c + rad * np.sin(t)], 1)
    elif kind == 1:  # flower: petals around a centre
        k = int(rng.integers(5, 9))
        t = np.linspace(0, 2 * np.pi, 200)
        rad = r * (0.45 + 0.55 * np.abs(np.cos(k * t / 2)))
        pts = np.stack([c + rad * np.cos(t), c + rad * np.sin(t)], 1)
    elif kind == 2:  # cloud / scallops: a row of arches
        k = int(rng.integers(3, 6))
        t = np.linspace(0, k * np.pi, 200)
        pts = np.stack([size * 0.1 + t / t[-1] * size * 0.8, c - np.abs(np.sin(t)) * r * 0.6], 1)
    elif kind == 3:  # zigzag with four or more turns (two could be a 2 or a Z)
        k = int(rng.integers(4, 8))
        xs = np.linspace(size * 0.1, size * 0.9, k + 1)
        ys = np.where(np.arange(k + 1) % 2 == 0, c - r * 0.5, c + r * 0.5)
        pts = np.stack([xs, ys], 1)
    elif kind == 4:  # wave
        t = np.linspace(0, rng.uniform(3, 5) * np.pi, 200)
        pts = np.stack([size * 0.1 + t / t[-1] * size * 0.8, c + np.sin(t) * r * 0.4], 1)
    else:  # check mark: short stroke down, long stroke up to the right
        pts = np.array([[c - r, c], [c - r * 0.3, c + r * 0.7], [c + r, c - r]])
    cv2.polylines(canvas, [pts.astype(np.int32).reshape(-1, 1, 2)], False, 1, pen)


NEGATIVE_KINDS = (_glyphs, _glyphs, _scribble, _shape, _dash, _blob, _speckle, _doodle, _doodle)


def _digit_pair(rng, images):
    """Two or three MNIST digits touching or overlapping: one component the reader must split."""
    k = int(rng.integers(2, 4))
    picks = images[rng.integers(0, len(images), k)]
    overlap = int(rng.integers(4, 12))
    width = 28 * k - overlap * (k - 1)
    canvas = np.zeros((28, width), np.uint8)
    for i, img in enumerate(picks):
        x = i * (28 - overlap)
        canvas[:, x:x + 28] = np.maximum(canvas[:, x:x + 28], img)
    return (canvas > 100).astype(np.uint8)


def negatives(n: int, rng: np.random.Generator, digit_images: np.ndarray | None = None,
              pair_fraction: float = 0.2, ncfg: NormaliseConfig = NormaliseConfig()) -> np.ndarray:
    """n crops (N, 28, 28) uint8 of things that are not a digit, normalised like the reader's candidates."""
    out = np.zeros((n, ncfg.field, ncfg.field), np.uint8)
    for i in range(n):
        if digit_images is not None and rng.random() < pair_fraction:
            mask = _digit_pair(rng, digit_images)
        else:
            canvas, size = _canvas(rng)
            pen = max(1, int(size * rng.uniform(0.03, 0.09)))
            NEGATIVE_KINDS[int(rng.integers(0, len(NEGATIVE_KINDS)))](rng, size, canvas, pen)
            mask = canvas
        if not mask.any():
            cv2.line(mask, (0, mask.shape[0] // 2), (mask.shape[1] - 1, mask.shape[0] // 2), 1, 2)
        out[i] = normalise_mask(mask, ncfg)
    return out
