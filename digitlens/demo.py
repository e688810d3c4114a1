"""Generated video of handwritten numbers on paper, with ground truth: the shipped demo clip and test clips.

A page is written once (MNIST digits as dark ink on off-white paper with uneven light), then a hand-held
camera films it: a slow pan, a slow zoom, a small rotation and a little shake, each a smooth function of
time. Every frame comes with the boxes and labels of the digits and numbers fully in view.

    python -m digitlens.demo              # rewrites digitlens/models/demo.mp4 from MNIST *training* digits

Tests use the training split too; `benchmarks/live.py` films MNIST *test* digits, which no model trained on.
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from digitlens.video import DEMO_CLIP


@dataclass(frozen=True)
class ClipConfig:
    width: int = 640
    height: int = 480
    fps: float = 20.0
    seconds: float = 8.0
    numbers: tuple[int, ...] = (4, 2, 3, 1, 3, 2)  # digits per number, in page order
    digit_px: float = 56.0  # digit height on the page (MNIST's 20 px of ink scaled up; ~50 px on screen)
    page_scale: float = 0.85  # page pixels -> frame pixels at rest (the camera's distance)
    line_gap: float = 1.7  # line pitch in digit heights
    digit_gap: float = 0.3  # blank between the inks of neighbouring digits, in digit heights
    number_gap: float = 2.0  # gap between numbers on one line, in digit heights
    per_line: int = 2  # numbers per line
    pan_px: float = 22.0  # slow pan amplitude in frame pixels
    zoom: float = 0.08  # slow zoom amplitude (fraction of the scale)
    rotate_deg: float = 2.0  # slow rotation amplitude
    shake_px: float = 1.5  # hand shake amplitude (smoothed noise) in frame pixels
    period_s: float = 7.0  # period of the slow motions
    noise: float = 1.5  # sensor noise sigma in grey levels (small: it bloats the video file)
    ink_bgr: tuple[int, int, int] = (70, 40, 30)  # dark blue-black ink
    paper_bgr: tuple[int, int, int] = (222, 232, 238)  # off-white paper, slightly warm
    fill_frame: bool = True  # the paper fills the frame (no desk, no paper edge in view)


@dataclass(frozen=True)
class TruthDigit:
    digit: int
    box: tuple[int, int, int, int]  # x, y, w, h in the frame
    number: int  # index of its number on the page
    index: int  # index of the digit on the page: the same digit in every frame


@dataclass(frozen=True)
class TruthFrame:
    digits: tuple[TruthDigit, ...]  # digits fully in view
    numbers: tuple[str, ...]  # numbers all of whose digits are fully in view, in page order


def _ink_bbox(img: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(img > 40)
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def write_page(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator, cfg: ClipConfig = ClipConfig()
               ) -> tuple[np.ndarray, list[tuple[int, int, tuple[int, int, int, int]]], list[str]]:
    """Write the numbers on a page. Returns the page (BGR), its digits (label, number, ink box) and numbers."""
    pick = iter(rng.permutation(len(images)))
    scale = cfg.digit_px / 20.0  # MNIST ink fills about 20 of its 28 px
    cell = int(round(28 * scale))
    gap = cfg.digit_gap * cfg.digit_px
    # choose the digits first: a number's width is its inks' widths plus the gaps between them
    chosen: list[list[tuple[int, np.ndarray, tuple[int, int, int, int]]]] = []
    for n in cfg.numbers:
        glyphs = []
        for _ in range(n):
            i = int(next(pick))
            glyph = cv2.resize(images[i], (cell, cell), interpolation=cv2.INTER_CUBIC)
            glyphs.append((int(labels[i]), glyph, _ink_bbox(glyph)))
        chosen.append(glyphs)
    widths = [sum(g[2][2] for g in glyphs) + gap * (len(glyphs) - 1) for glyphs in chosen]
    n_lines = math.ceil(len(chosen) / cfg.per_line)
    col_w = [max(widths[k] for k in range(c, len(chosen), cfg.per_line)) for c in range(min(cfg.per_line, len(chosen)))]
    col_x = [2 * cfg.digit_px + sum(col_w[:c]) + c * cfg.number_gap * cfg.digit_px for c in range(len(col_w))]
    line_h = cfg.line_gap * cfg.digit_px
    text_w = col_x[-1] + col_w[-1] + 2 * cfg.digit_px
    text_h = n_lines * line_h + 3 * cfg.digit_px
    page_w, page_h = int(text_w), int(text_h)
    if cfg.fill_frame:  # paper beyond the frame's edges at the widest zoom, pan, shake and tilt
        reach = (1 + 2 * math.sin(math.radians(cfg.rotate_deg))) / (cfg.page_scale * (1 - cfg.zoom))
        margin = 2 * (cfg.pan_px + 3 * cfg.shake_px)
        page_w = max(page_w, int((cfg.width + margin) * reach) + 2)
        page_h = max(page_h, int((cfg.height + margin) * reach) + 2)
    off_x, off_y = (page_w - text_w) / 2, (page_h - text_h) / 2
    col_x = [c + off_x for c in col_x]
    ink = np.zeros((page_h, page_w), np.float32)
    digits: list[tuple[int, int, tuple[int, int, int, int]]] = []
    numbers: list[str] = []
    for k, glyphs in enumerate(chosen):
        line, col = divmod(k, cfg.per_line)
        x = col_x[col] + rng.uniform(0, 0.3) * cfg.digit_px
        y = off_y + 1.5 * cfg.digit_px + line * line_h
        text = ""
        for label, glyph, (bx, by, bw, bh) in glyphs:
            # place by the ink, not the 28x28 cell: MNIST digits vary in width and would touch
            gx = int(round(x - bx))
            gy = int(round(y - 4 * scale + rng.uniform(-0.08, 0.08) * cfg.digit_px))
            region = ink[gy:gy + cell, gx:gx + cell]
            np.maximum(region, glyph[:region.shape[0], :region.shape[1]].astype(np.float32) / 255, out=region)
            digits.append((label, k, (gx + bx, gy + by, bw, bh)))
            text += str(label)
            x += bw + gap
        numbers.append(text)
    ink = np.clip(ink * 1.15, 0, 1)[..., None]
    # uneven light: a soft gradient across the page, as under a desk lamp
    yy, xx = np.mgrid[0:page_h, 0:page_w].astype(np.float32)
    light = 1.0 - 0.12 * (xx / page_w) - 0.08 * (yy / page_h)
    paper = np.array(cfg.paper_bgr, np.float32)[None, None] * light[..., None]
    page = paper * (1 - ink) + np.array(cfg.ink_bgr, np.float32)[None, None] * ink
    return np.clip(page, 0, 255).astype(np.uint8), digits, numbers


def _smooth_noise(rng: np.random.Generator, n: int, per: int) -> np.ndarray:
    """n samples of noise smoothed over about `per` samples, unit amplitude."""
    knots = rng.normal(size=n // per + 3)
    xs = np.arange(n) / per
    i = xs.astype(int)
    f = xs - i
    f = f * f * (3 - 2 * f)
    return knots[i] * (1 - f) + knots[i + 1] * f


def film(page: np.ndarray, page_digits: Sequence[tuple[int, int, tuple[int, int, int, int]]],
         numbers: Sequence[str], rng: np.random.Generator, cfg: ClipConfig = ClipConfig()
         ) -> Iterator[tuple[np.ndarray, TruthFrame]]:
    """Frames of a hand-held camera over the page, each with the ground truth of what is fully in view."""
    n = int(round(cfg.seconds * cfg.fps))
    shake = np.stack([_smooth_noise(rng, n, 3) for _ in range(2)], 1) * cfg.shake_px
    phase = rng.uniform(0, 2 * math.pi, size=4)
    ph, pw = page.shape[:2]
    for f in range(n):
        t = f / cfg.fps
        w = 2 * math.pi * t / cfg.period_s
        s = cfg.page_scale * (1 + cfg.zoom * math.sin(w + phase[0]))
        angle = cfg.rotate_deg * math.sin(0.7 * w + phase[1])
        dx = cfg.pan_px * math.sin(w + phase[2]) + shake[f, 0]
        dy = cfg.pan_px * 0.6 * math.sin(1.3 * w + phase[3]) + shake[f, 1]
        m = cv2.getRotationMatrix2D((pw / 2, ph / 2), angle, s)
        m[0, 2] += cfg.width / 2 - pw / 2 + dx
        m[1, 2] += cfg.height / 2 - ph / 2 + dy
        frame = cv2.warpAffine(page, m, (cfg.width, cfg.height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=(90, 100, 110))  # the desk
        if cfg.noise > 0:
            frame = np.clip(frame + rng.normal(0, cfg.noise, frame.shape), 0, 255).astype(np.uint8)
        truth_digits = []
        complete = {k: True for k in range(len(numbers))}
        for j, (label, k, (x, y, bw, bh)) in enumerate(page_digits):
            corners = np.array([[x, y, 1], [x + bw, y, 1], [x, y + bh, 1], [x + bw, y + bh, 1]], np.float64) @ m.T
            x0, y0 = corners.min(0)
            x1, y1 = corners.max(0)
            if x0 < 0 or y0 < 0 or x1 > cfg.width or y1 > cfg.height:
                complete[k] = False
                continue
            truth_digits.append(TruthDigit(label, (int(x0), int(y0), int(x1 - x0), int(y1 - y0)), k, j))
        yield frame, TruthFrame(tuple(truth_digits), tuple(numbers[k] for k in range(len(numbers)) if complete[k]))


def make_clip(images: np.ndarray, labels: np.ndarray, seed: int = 0, cfg: ClipConfig = ClipConfig()
              ) -> tuple[list[np.ndarray], list[TruthFrame]]:
    """All frames of one clip and their truth (small clips only: every frame is kept in memory)."""
    rng = np.random.default_rng(seed)
    page, digits, numbers = write_page(images, labels, rng, cfg)
    frames, truth = [], []
    for frame, tr in film(page, digits, numbers, rng, cfg):
        frames.append(frame)
        truth.append(tr)
    return frames, truth


def write_video(path: str | Path, frames: Sequence[np.ndarray], fps: float) -> None:
    """MPEG-4 part 2 (mp4v): the one encoder every opencv-python wheel has."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise OSError(f"cannot write video {path}: OpenCV has no mp4v encoder here")
    try:
        for frame in frames:
            writer.write(frame)
    finally:
        writer.release()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the demo clip from MNIST training digits.")
    parser.add_argument("--out", default=str(DEMO_CLIP), help="output video (default: the shipped demo clip)")
    parser.add_argument("--seed", type=int, default=1)  # chosen by eye: clear digits
    parser.add_argument("--seconds", type=float, default=ClipConfig.seconds)
    args = parser.parse_args(argv)
    from digitlens.data import load_mnist
    m = load_mnist()
    cfg = ClipConfig(seconds=args.seconds)
    frames, truth = make_clip(m.x_train, m.y_train, args.seed, cfg)
    write_video(args.out, frames, cfg.fps)
    size = Path(args.out).stat().st_size
    print(f"wrote {args.out}: {len(frames)} frames {cfg.width}x{cfg.height} @ {cfg.fps:g} fps, "
          f"{size / 1e6:.2f} MB; numbers: {' '.join(truth[0].numbers)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
