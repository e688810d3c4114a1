"""Two baseline readers to compare digitlens against, both built on the seed's network (ONNX).

- WholeFrameReader ("seed-whole-frame"): what the seed program did with a camera frame: grey, resize
  the whole frame to 28x28, invert, classify; it always reads exactly one digit.
- ClassicReader ("classic-opencv"): the textbook OpenCV pipeline (as in opencv's digits_video.py):
  adaptive threshold, external contours, a size filter, MNIST-style normalisation (fit 20x20 keeping
  the aspect ratio, centre of mass at the centre of 28x28), classify, group left to right by lines.
  No background normalisation, no line removal, no merging or splitting, no reject class.

Both have the reader interface: read(image) -> Reading, classify(crops) -> probabilities.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from digitlens.reading import Digit, Number, Reading


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class _SeedNetwork:
    """The seed's network from an ONNX file: (N, 28, 28) crops, white ink on black -> probabilities."""

    def __init__(self, model_path: str | Path, threads: int = 1):
        from digitlens.modelfile import load_model

        self.model = load_model(model_path, threads=threads)
        self.classes = self.model.classes

    def classify(self, crops: np.ndarray) -> np.ndarray:
        return _softmax(self.model.logits(np.asarray(crops)).astype(np.float64))


def _grey(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def _digit(probs: np.ndarray, box) -> Digit:
    p = probs[:10]
    top = np.argsort(-p)[:3]
    return Digit(int(top[0]), float(p[top[0]]), tuple(int(v) for v in box), tuple((int(k), float(p[k])) for k in top))


class WholeFrameReader:
    name = "seed-whole-frame"

    def __init__(self, model_path: str | Path, threads: int = 1):
        self.net = _SeedNetwork(model_path, threads)
        self.classes = self.net.classes

    def classify(self, crops: np.ndarray) -> np.ndarray:
        return self.net.classify(crops)

    def read(self, image: np.ndarray) -> Reading:
        start = time.perf_counter()
        grey = _grey(image)
        h, w = grey.shape
        crop = 255 - cv2.resize(grey, (28, 28), interpolation=cv2.INTER_AREA)
        d = _digit(self.classify(crop[None])[0], (0, 0, w, h))
        number = Number(str(d.digit), d.confidence, d.box, (0,))
        return Reading(w, h, (number,), (d,), elapsed_ms=(time.perf_counter() - start) * 1000)


@dataclass(frozen=True)
class ClassicConfig:
    block_frac: float = 0.03  # adaptive-threshold window, as a fraction of the shorter image side
    offset: float = 12.0  # adaptive threshold: a pixel is ink when darker than its local mean by this
    blur: int = 5  # Gaussian blur before thresholding (px, odd)
    min_height_frac: float = 0.03  # contours shorter than this fraction of the image height are noise
    max_height_frac: float = 0.6  # ... taller ones are not a digit
    max_aspect: float = 1.5  # width / height above this is not a digit (lines, words)
    min_ink_px: int = 30  # fewer ink pixels than this is a speck
    fit: int = 20  # MNIST: the digit fits a 20x20 box ...
    canvas: int = 28  # ... centred by mass in 28x28
    line_overlap: float = 0.5  # digits share a line when they overlap vertically by this fraction of the smaller
    number_gap: float = 0.6  # a horizontal gap wider than this fraction of the line height starts a new number


def mnist_normalise(mask: np.ndarray, cfg: ClassicConfig = ClassicConfig()) -> np.ndarray:
    """A binary ink mask (any size, ink > 0) -> 28x28 uint8, fitted to 20x20 keeping aspect, mass-centred."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return np.zeros((cfg.canvas, cfg.canvas), np.uint8)
    crop = (mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1] > 0).astype(np.float32) * 255
    h, w = crop.shape
    s = cfg.fit / max(h, w)
    nh, nw = max(1, int(round(h * s))), max(1, int(round(w * s)))
    small = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((cfg.canvas, cfg.canvas), np.float32)
    y0, x0 = (cfg.canvas - nh) // 2, (cfg.canvas - nw) // 2
    canvas[y0:y0 + nh, x0:x0 + nw] = small
    m = cv2.moments(canvas)
    if m["m00"] > 0:
        dx, dy = cfg.canvas / 2 - m["m10"] / m["m00"], cfg.canvas / 2 - m["m01"] / m["m00"]
        canvas = cv2.warpAffine(canvas, np.float32([[1, 0, dx], [0, 1, dy]]), (cfg.canvas, cfg.canvas))
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8)


def group_lines(digits: Sequence[Digit], cfg: ClassicConfig = ClassicConfig()) -> tuple[tuple[Digit, ...], tuple[Number, ...]]:
    """Digits into lines (vertical overlap), lines top to bottom, left to right; numbers split at wide gaps."""
    lines: list[list[Digit]] = []
    for d in sorted(digits, key=lambda d: d.box[1] + d.box[3] / 2):
        for line in lines:
            top = min(o.box[1] for o in line)
            bottom = max(o.box[1] + o.box[3] for o in line)
            overlap = min(bottom, d.box[1] + d.box[3]) - max(top, d.box[1])
            if overlap >= cfg.line_overlap * min(d.box[3], bottom - top):
                line.append(d)
                break
        else:
            lines.append([d])
    lines.sort(key=lambda line: min(o.box[1] for o in line))
    ordered: list[Digit] = []
    numbers: list[Number] = []
    for line in lines:
        line.sort(key=lambda d: d.box[0])
        height = float(np.median([d.box[3] for d in line]))
        groups: list[list[int]] = []
        for d in line:
            i = len(ordered)
            ordered.append(d)
            prev = ordered[i - 1] if groups else None
            if prev is not None and d.box[0] - (prev.box[0] + prev.box[2]) <= cfg.number_gap * height:
                groups[-1].append(i)
            else:
                groups.append([i])
        for g in groups:
            ds = [ordered[i] for i in g]
            x0, y0 = min(d.box[0] for d in ds), min(d.box[1] for d in ds)
            x1, y1 = max(d.box[0] + d.box[2] for d in ds), max(d.box[1] + d.box[3] for d in ds)
            numbers.append(Number("".join(str(d.digit) for d in ds), float(np.prod([d.confidence for d in ds])),
                                  (x0, y0, x1 - x0, y1 - y0), tuple(g)))
    return tuple(ordered), tuple(numbers)


class ClassicReader:
    name = "classic-opencv"

    def __init__(self, model_path: str | Path, threads: int = 1, config: ClassicConfig = ClassicConfig()):
        self.net = _SeedNetwork(model_path, threads)
        self.classes = self.net.classes
        self.config = config

    def classify(self, crops: np.ndarray) -> np.ndarray:
        return self.net.classify(crops)

    def read(self, image: np.ndarray) -> Reading:
        start = time.perf_counter()
        cfg = self.config
        grey = _grey(image)
        h, w = grey.shape
        block = max(3, int(cfg.block_frac * min(h, w)) | 1)
        blurred = cv2.GaussianBlur(grey, (cfg.blur, cfg.blur), 0)
        ink = cv2.adaptiveThreshold(blurred, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, block, cfg.offset)
        contours, _ = cv2.findContours(ink, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        boxes, crops = [], []
        for c in contours:
            x, y, bw, bh = cv2.boundingRect(c)
            if not (cfg.min_height_frac * h <= bh <= cfg.max_height_frac * h) or bw > cfg.max_aspect * bh:
                continue
            mask = np.zeros((bh, bw), np.uint8)
            cv2.drawContours(mask, [c], -1, 255, -1, offset=(-x, -y))
            mask &= ink[y:y + bh, x:x + bw]
            if cv2.countNonZero(mask) < cfg.min_ink_px:
                continue
            boxes.append((x, y, bw, bh))
            crops.append(mnist_normalise(mask, cfg))
        digits = []
        if crops:
            probs = self.classify(np.stack(crops))
            digits = [_digit(p, b) for p, b in zip(probs, boxes)]
        ordered, numbers = group_lines(digits, cfg)
        return Reading(w, h, numbers, ordered, elapsed_ms=(time.perf_counter() - start) * 1000)
