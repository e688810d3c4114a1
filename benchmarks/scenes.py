"""Photo-like test scenes with ground truth: MNIST digits written as ink on paper, then photographed.

    make_scene(kind, rng, split="test", mnist=None, size=None) -> (bgr uint8 image, truth)

kinds: "single" (one digit), "numbers" (1 to 3 numbers of 2 to 6 digits, on one or more lines),
"empty" (a page with writing, doodles, shapes and stains but no digit). truth is
{"kind", "size": [w, h], "numbers": [str, ...] in reading order, "digits": [{"digit", "box": [x, y, w, h]}, ...]}
with the digits in reading order too (number by number, left to right).

How a scene is made, in the order a real photo is made:
1. a page: paper (white, cream, recycled grey, sticky note, whiteboard) or a dark board, with fibre
   texture, sometimes ruled or squared lines and a margin;
2. writing: each digit is an MNIST image (TEST split unless split="train") cut to its ink, scaled
   to a realistic height, re-binarised with anti-aliased edges, given a pen width, and laid down as
   ink of one pen colour per number; distractors (words in Hershey fonts without digit look-alikes,
   doodles, scribbles, shapes, blots, stains) go where there are no digits;
3. the camera: the page is warped by a random perspective onto a desk (the truth boxes follow the
   ink through the same warp), lit unevenly with soft shadows, colour cast and vignetting, blurred
   (focus, motion, resolution), given sensor noise and JPEG-compressed.
Everything random comes from `rng`, so a seed gives the same scene.

CLI: python benchmarks/scenes.py --kind numbers --n 20 --out /tmp/scenes [--boxes]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

KINDS = ("single", "numbers", "empty")

# Letters no reader should take for a digit. Left out: O o Q D (0), I l i j (1), Z z (2), S s (5),
# b G (6), T t (7), B (8), g q a (9), A y h (4), and punctuation that looks like a 1.
SAFE_LETTERS = "CEFHKMNPRUVWXYcefkmnpruvwx"
WORDS = ("NEW", "menu", "UNCERN", "free", "we", "career", "mercer", "runner", "prefer", "fewer", "cure",
         "HUNCH", "MERRY", "nerve", "ruff", "puck", "peer", "keen", "crew", "fern", "WRECK", "PERK", "revue",
         "cover", "warren", "nun", "CURVE", "wren", "mew", "EMU", "UNKEMPT", "purr", "fence", "queue")
HERSHEY = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX,
           cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_HERSHEY_SCRIPT_COMPLEX, cv2.FONT_HERSHEY_PLAIN)


@dataclass(frozen=True)
class SceneConfig:
    sizes: tuple[tuple[int, int], ...] = ((640, 480), (1280, 720), (800, 600), (1024, 768), (480, 640),
                                          (720, 1280), (600, 800))  # (w, h): webcam, HD, phone portrait
    digit_px: tuple[int, int] = (24, 200)  # digit ink height in pixels, log-uniform: far and small to close-up
    digit_frac_max: float = 0.42  # ... and at most this fraction of the image height
    digit_gap: tuple[float, float] = (0.1, 0.6)  # gap between digits of a number, in mean digit widths
    touch_p: float = 0.04  # a number whose digits touch or overlap slightly (handwriting does)
    touch_gap: float = -0.06  # the gap then, in digit widths
    number_gap: tuple[float, float] = (1.6, 4.0)  # gap between numbers on one line, in digit heights
    line_gap: tuple[float, float] = (0.5, 1.4)  # blank space between lines, in digit heights
    same_line_p: float = 0.35  # a number continues the previous number's line when it fits
    size_jitter: float = 0.08  # per-digit height variation within a number (fraction)
    y_jitter: float = 0.06  # per-digit vertical wobble (fraction of height)
    line_slope: float = 0.025  # std of a line's drift (dy/dx) before the page is rotated
    page_margin: float = 0.07  # digits keep this fraction of the frame away from its edges
    board_p: float = 0.08  # light ink on a dark board
    ruled_p: float = 0.3  # ruled paper
    squared_p: float = 0.15  # squared paper
    margin_line_p: float = 0.3  # a red margin line on ruled paper
    desk_p: float = 0.45  # the page does not fill the frame: desk visible around it
    distractor_p: float = 0.35  # a digit scene also has words or doodles on it
    empty_items: tuple[int, int] = (2, 12)  # distractors on an empty page
    doodle_min_px: float = 40.0  # smallest doodle at 600 px frame height
    max_rotation_deg: float = 8.0  # in-plane rotation of the page
    max_corner_shift: float = 0.09  # perspective: each corner moves by up to this fraction of the frame
    shadow_p: float = 0.4  # a soft cast shadow (hand, phone)
    white_balance: float = 0.05  # std of the warm/cool colour cast (relative channel gain)
    motion_blur_p: float = 0.15
    low_res_p: float = 0.2  # captured at lower resolution then upscaled
    jpeg_p: float = 0.85
    jpeg_quality: tuple[int, int] = (35, 95)
    noise_sigma: tuple[float, float] = (1.0, 8.0)  # sensor noise, grey levels
    gauss_blur_sigma: tuple[float, float] = (0.0, 1.4)  # focus blur at 720 px height, scaled with the frame


DEFAULT = SceneConfig()

_MNIST_CACHE: dict[str, Any] = {}


def _mnist(mnist):
    if mnist is not None:
        return mnist
    if "m" not in _MNIST_CACHE:
        from digitlens.data import load_mnist
        _MNIST_CACHE["m"] = load_mnist()
    return _MNIST_CACHE["m"]


def _by_class(mnist, split: str) -> tuple[np.ndarray, list[np.ndarray]]:
    if split not in ("test", "train"):
        raise ValueError(f"split must be 'test' or 'train', got {split!r}")
    x, y = (mnist.x_test, mnist.y_test) if split == "test" else (mnist.x_train, mnist.y_train)
    key = (id(mnist), split)
    if key not in _MNIST_CACHE:
        _MNIST_CACHE[key] = [np.flatnonzero(y == d) for d in range(10)]
    return x, _MNIST_CACHE[key]


# ---------------------------------------------------------------- small random helpers

def _lu(rng, lo: float, hi: float) -> float:
    """Log-uniform in [lo, hi]."""
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _smooth_noise(rng, h: int, w: int, cell: float) -> np.ndarray:
    """Low-frequency noise in about [-1, 1] with features about `cell` pixels wide."""
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    small = rng.standard_normal((gh, gw)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) * 0.7


# ---------------------------------------------------------------- the page

def _paper(rng, h: int, w: int, cfg: SceneConfig) -> tuple[np.ndarray, np.ndarray, bool]:
    """(page float32 BGR 0..255, ink colour BGR for the main pen, board?)."""
    board = rng.random() < cfg.board_p
    if board:
        base = np.array(rng.choice([[45, 60, 35], [38, 38, 40], [50, 70, 45], [70, 65, 60]]), np.float32)
        base = base * rng.uniform(0.7, 1.2)
    else:
        choice = rng.choice(["white", "cream", "grey", "sticky", "board"], p=[0.5, 0.2, 0.12, 0.08, 0.1])
        base = {"white": [242, 244, 245], "cream": [205, 228, 240], "grey": [200, 205, 208],
                "sticky": [130, 232, 250], "board": [250, 250, 248]}[choice]
        base = np.array(base, np.float32) + rng.normal(0, 5, 3).astype(np.float32)
    texture = _smooth_noise(rng, h, w, rng.uniform(30, 120)) * rng.uniform(2, 8)
    grain = rng.standard_normal((h, w), dtype=np.float32)
    grain = cv2.GaussianBlur(grain, (0, 0), rng.uniform(0.6, 1.5))
    grain *= rng.uniform(2, 7)
    if board:
        grain *= 1.5  # chalk dust
    grain += texture
    page = np.add(grain[..., None], base)  # (h, w, 3) float32: the paper's colour, its texture and grain
    if not board and rng.random() < 0.25:  # fibres in recycled paper
        for _ in range(int(rng.integers(20, 120))):
            x, y = int(rng.integers(w)), int(rng.integers(h))
            ang, ln = rng.uniform(0, np.pi), rng.uniform(3, 15)
            cv2.line(page, (x, y), (int(x + ln * np.cos(ang)), int(y + ln * np.sin(ang))),
                     tuple(float(c) for c in base - rng.uniform(10, 30)), 1, cv2.LINE_AA)
    return page, base, bool(board)


def _rules(page: np.ndarray, rng, cfg: SceneConfig, board: bool, scale: float) -> None:
    """Ruled or squared paper lines, drawn in place."""
    if board:
        return
    h, w = page.shape[:2]
    r = rng.random()
    colour = np.array(rng.choice([[225, 190, 150], [210, 175, 140], [190, 190, 190], [200, 200, 170]]), np.float32)
    thick = 1 if rng.random() < 0.7 else 2
    strength = rng.uniform(0.35, 0.9)
    layer = np.zeros((h, w), np.float32)
    if r < cfg.ruled_p:
        spacing = rng.uniform(22, 45) * scale
        y = rng.uniform(0, spacing)
        while y < h:
            cv2.line(layer, (0, int(y)), (w, int(y)), 1.0, thick, cv2.LINE_AA)
            y += spacing
        if rng.random() < cfg.margin_line_p:
            x = int(rng.uniform(0.06, 0.2) * w)
            red = np.zeros((h, w), np.float32)
            cv2.line(red, (x, 0), (x, h), 1.0, thick + int(rng.integers(0, 2)), cv2.LINE_AA)
            _ink(page, red * strength, np.array([120, 120, 235], np.float32))
    elif r < cfg.ruled_p + cfg.squared_p:
        spacing = rng.uniform(14, 32) * scale
        off = rng.uniform(0, spacing, 2)
        for x in np.arange(off[0], w, spacing):
            cv2.line(layer, (int(x), 0), (int(x), h), 1.0, 1, cv2.LINE_AA)
        for y in np.arange(off[1], h, spacing):
            cv2.line(layer, (0, int(y)), (w, int(y)), 1.0, 1, cv2.LINE_AA)
    else:
        return
    _ink(page, layer * strength, colour)


def _ink(page: np.ndarray, alpha: np.ndarray, colour: np.ndarray, x: int = 0, y: int = 0) -> None:
    """Lay ink of `colour` with coverage `alpha` (float 0..1) at (x, y) on `page`, in place, clipped to the page."""
    h, w = page.shape[:2]
    ah, aw = alpha.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + aw, w), min(y + ah, h)
    if x0 >= x1 or y0 >= y1:
        return
    a = alpha[y0 - y:y1 - y, x0 - x:x1 - x, None]
    region = page[y0:y1, x0:x1]
    region *= 1.0 - a
    region += a * colour


def _pen(rng, board: bool) -> tuple[np.ndarray, float, float]:
    """(ink colour BGR, opacity, grain) for one pen."""
    if board:
        colour = np.array(rng.choice([[235, 240, 240], [200, 235, 245], [220, 220, 200]]), np.float32)
        return colour, rng.uniform(0.7, 0.95), rng.uniform(0.25, 0.5)  # chalk: patchy
    kind = rng.choice(["black", "blue", "grey", "pencil", "marker"], p=[0.35, 0.3, 0.12, 0.13, 0.1])
    colour = {"black": [30, 28, 25], "blue": [150, 60, 25], "grey": [75, 75, 75], "pencil": [85, 85, 90],
              "marker": [40, 35, 30]}[kind]
    colour = np.clip(np.array(colour, np.float32) + rng.normal(0, 10, 3), 0, 255).astype(np.float32)
    opacity = rng.uniform(0.55, 0.8) if kind == "pencil" else rng.uniform(0.85, 1.0)
    grain = rng.uniform(0.2, 0.45) if kind == "pencil" else rng.uniform(0.0, 0.15)
    return colour, float(opacity), float(grain)


def _grainy(alpha: np.ndarray, rng, grain: float) -> np.ndarray:
    if grain <= 0:
        return alpha
    noise = rng.random(alpha.shape, dtype=np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), 0.8)
    return alpha * np.clip(1.0 - grain * 2.0 * (noise - 0.3), 0.0, 1.0)


# ---------------------------------------------------------------- digits as ink

def digit_glyph(img28: np.ndarray, height: float, pen_px: float, rng) -> np.ndarray:
    """An MNIST image (white on black, 28x28 uint8) as an anti-aliased ink coverage map, `height` px tall.

    The ink is cut out, scaled up smoothly, re-binarised with soft (~1 px) edges and thickened or thinned
    to a stroke about `pen_px` wide. Returns float32 0..1, tight around the ink (plus a 1 px border).
    """
    ys, xs = np.nonzero(img28 > 40)
    if len(ys) == 0:
        raise ValueError("MNIST image without ink")
    crop = img28[max(ys.min() - 2, 0):ys.max() + 3, max(xs.min() - 2, 0):xs.max() + 3].astype(np.float32) / 255.0
    ink_h = ys.max() - ys.min() + 1
    s = height / ink_h
    out_w, out_h = max(3, int(round(crop.shape[1] * s))), max(3, int(round(crop.shape[0] * s)))
    big = cv2.resize(crop, (out_w, out_h), interpolation=cv2.INTER_CUBIC)
    if s > 1.5:
        big = cv2.GaussianBlur(big, (0, 0), 0.35 * s)
    level = rng.uniform(0.3, 0.55)
    # soft edge: coverage ramps over ~1 px; the value gradient at an edge is ~1/s per px after scaling
    ramp = max(0.02, 0.6 / max(s, 1.0))
    alpha = np.clip((big - level) / ramp + 0.5, 0.0, 1.0)
    width, holes = _stroke_stats(alpha)
    radius = int(round((pen_px - width) / 2.0))
    while radius != 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(radius) + 1, 2 * abs(radius) + 1))
        changed = cv2.dilate(alpha, k) if radius > 0 else cv2.erode(alpha, k)
        before = float(alpha.sum())
        ok = 0.25 * before < float(changed.sum()) < 3.0 * before  # never erase the digit
        if ok and radius > 0 and holes > 0:
            ok = _stroke_stats(changed)[1] > 0.4 * holes  # nor fill the loops of a 0, 6, 8 or 9
        if ok:
            alpha = changed
            break
        radius += -1 if radius > 0 else 1
    ys, xs = np.nonzero(alpha > 0.5)
    if len(ys) == 0:
        return np.clip((big - 0.3) / ramp + 0.5, 0.0, 1.0)
    return np.ascontiguousarray(alpha[max(ys.min() - 1, 0):ys.max() + 2, max(xs.min() - 1, 0):xs.max() + 2])


def _stroke_stats(alpha: np.ndarray) -> tuple[float, float]:
    """(stroke width in px, area of the holes in px) of an ink coverage map: width ~ 2 * area / perimeter."""
    mask = (alpha > 0.5).astype(np.uint8)
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return 0.0, 0.0
    perimeter = sum(cv2.arcLength(c, True) for c in contours)
    holes = sum(cv2.contourArea(c) for c, h in zip(contours, hierarchy[0]) if h[3] >= 0)
    return 2.0 * float(mask.sum()) / max(perimeter, 1.0), float(holes)


def _pen_width(rng, height: float) -> float:
    """Stroke width in pixels: a pen writes 2-6 px in a photo whatever the digit size, a marker more."""
    return min(0.28 * height, max(1.6, _lu(rng, 1.8, 5.0) * (1.0 + 0.004 * height) + (rng.random() < 0.15) * rng.uniform(2, 8)))


@dataclass
class _Placed:
    digit: int
    alpha: np.ndarray
    x: int
    y: int
    number: int
    line: int


def _layout_numbers(rng, cfg: SceneConfig, w: int, h: int, texts: list[str], height: float) -> list[list[tuple[int, str]]] | None:
    """Assign numbers to lines; None if they cannot fit at this digit height."""
    avail_w = w * (1 - 2 * cfg.page_margin)
    mean_w = 0.7 * height
    lines: list[list[tuple[int, str]]] = []
    widths: list[float] = []
    for i, t in enumerate(texts):
        nw = len(t) * mean_w * 1.35
        if nw > avail_w:
            return None
        if lines and rng.random() < cfg.same_line_p and widths[-1] + nw + cfg.number_gap[1] * height < avail_w:
            lines[-1].append((i, t))
            widths[-1] += nw + cfg.number_gap[1] * height
        else:
            lines.append([(i, t)])
            widths.append(nw)
    total_h = len(lines) * height * (1 + cfg.size_jitter + cfg.y_jitter * 2) + (len(lines) - 1) * cfg.line_gap[1] * height
    if total_h > h * (1 - 2 * cfg.page_margin):
        return None
    return lines


def _write_digits(page: np.ndarray, rng, cfg: SceneConfig, texts: list[str], height: float, board: bool,
                  pool: tuple[np.ndarray, list[np.ndarray]]) -> list[_Placed] | None:
    h, w = page.shape[:2]
    lines = None
    while lines is None:
        lines = _layout_numbers(rng, cfg, w, h, texts, height)
        if lines is None:
            height *= 0.85
            if height < cfg.digit_px[0] * 0.85:
                return None
    x_img, by_class = pool
    # render every glyph first (their widths decide the layout)
    glyph_lines = []
    for line in lines:
        row = []
        for ni, text in line:
            pen = _pen(rng, board)
            nh = height * rng.uniform(0.9, 1.1)
            pen_px = _pen_width(rng, nh)
            gap_unit = cfg.touch_gap if rng.random() < cfg.touch_p else None
            glyphs = []
            for ch in text:
                d = int(ch)
                idx = by_class[d][int(rng.integers(len(by_class[d])))]
                gh = nh * rng.uniform(1 - cfg.size_jitter, 1 + cfg.size_jitter)
                glyphs.append((d, digit_glyph(x_img[idx], gh, pen_px * rng.uniform(0.9, 1.1), rng)))
            row.append((ni, pen, nh, gap_unit, glyphs))
        glyph_lines.append(row)
    # lay them out: lines stacked, the block placed at random inside the margins
    placed: list[_Placed] = []
    line_boxes = []
    cursor_y = 0.0
    for li, row in enumerate(glyph_lines):
        line_h = max(nh for _, _, nh, _, _ in row) * (1 + cfg.size_jitter)
        x = 0.0
        items = []
        slope = rng.normal(0, cfg.line_slope)  # handwriting drifts up or down along a line
        for k, (ni, pen, nh, gap_unit, glyphs) in enumerate(row):
            if k:
                x += rng.uniform(*cfg.number_gap) * nh
            mean_w = float(np.mean([g.shape[1] for _, g in glyphs]))
            for j, (d, g) in enumerate(glyphs):
                if j:
                    unit = gap_unit if gap_unit is not None else rng.uniform(*cfg.digit_gap)
                    x += unit * max(mean_w, 0.45 * nh)
                gy = cursor_y + (line_h - g.shape[0]) * 0.5 + rng.normal(0, cfg.y_jitter) * nh + slope * x
                items.append((d, g, x, gy, ni, pen))
                x += g.shape[1]
        line_boxes.append((x, line_h))
        placed.extend(_Placed(d, g, 0, 0, ni, li) for d, g, _, _, ni, _ in items)
        cursor_y += line_h + rng.uniform(*cfg.line_gap) * height
        glyph_lines[li] = (row, items)
    block_w = max(bw for bw, _ in line_boxes)
    block_h = cursor_y
    mx, my = cfg.page_margin * w, cfg.page_margin * h
    if block_w > w - 2 * mx or block_h > h - 2 * my:
        return None
    ox = rng.uniform(mx, w - mx - block_w)
    oy = rng.uniform(my, h - my - block_h)
    # each line may start at its own indent
    result: list[_Placed] = []
    k = 0
    for li, (row, items) in enumerate(glyph_lines):
        indent = rng.uniform(0, max(0.0, block_w - line_boxes[li][0]))
        for d, g, px, py, ni, pen in items:
            p = placed[k]
            k += 1
            p.x, p.y = int(round(ox + indent + px)), int(round(oy + py))
            colour, opacity, grain = pen
            _ink(page, _grainy(g, rng, grain) * opacity, colour, p.x, p.y)
            result.append(p)
    return result


# ---------------------------------------------------------------- distractors: writing that is not digits

def _word(rng) -> str:
    if rng.random() < 0.5:
        return str(rng.choice(WORDS))
    n = int(rng.integers(1, 8))
    return "".join(rng.choice(list(SAFE_LETTERS), n))


def _doodle(rng, size: int, thick: int) -> np.ndarray:
    """A uint8 mask (size x size) holding one doodle drawn with anti-aliased lines."""
    m = np.zeros((size, size), np.uint8)
    c, r = size / 2, size / 2 - thick - 1
    kind = rng.choice(["star", "arrow", "house", "zigzag", "wave", "spiral", "hatch", "box", "triangle",
                       "scribble", "blot", "cross", "check", "cloud", "flower"])
    aa = cv2.LINE_AA

    def P(pts):
        return [np.round(np.asarray(pts)).astype(np.int32).reshape(-1, 1, 2)]

    if kind == "star":
        k = int(rng.integers(5, 8))
        pts = [(c + (r if i % 2 == 0 else r * 0.45) * math.cos(math.pi * i / k - math.pi / 2),
                c + (r if i % 2 == 0 else r * 0.45) * math.sin(math.pi * i / k - math.pi / 2)) for i in range(2 * k)]
        cv2.polylines(m, P(pts), True, 255, thick, aa)
    elif kind == "arrow":
        cv2.arrowedLine(m, (int(c - r), int(c + r * rng.uniform(-0.5, 0.5))), (int(c + r), int(c)), 255, thick, aa,
                        tipLength=0.25)
    elif kind == "house":
        pts = [(c - r * 0.7, c + r), (c - r * 0.7, c), (c, c - r), (c + r * 0.7, c), (c + r * 0.7, c + r)]
        cv2.polylines(m, P(pts), True, 255, thick, aa)
    elif kind == "zigzag":
        n = int(rng.integers(4, 10))
        pts = [(c - r + 2 * r * i / n, c + (r * 0.3 if i % 2 else -r * 0.3)) for i in range(n + 1)]
        cv2.polylines(m, P(pts), False, 255, thick, aa)
    elif kind == "wave":
        t = np.linspace(0, 1, 60)
        pts = np.stack([c - r + 2 * r * t, c + r * 0.25 * np.sin(t * rng.uniform(8, 20))], 1)
        cv2.polylines(m, P(pts), False, 255, thick, aa)
    elif kind == "spiral":
        t = np.linspace(0, rng.uniform(3, 6) * np.pi, 120)
        pts = np.stack([c + r * t / t[-1] * np.cos(t), c + r * t / t[-1] * np.sin(t)], 1)
        cv2.polylines(m, P(pts), False, 255, thick, aa)
    elif kind == "hatch":
        n = int(rng.integers(5, 14))
        for i in range(n):
            x = c - r + 2 * r * i / n
            cv2.line(m, (int(x), int(c + r)), (int(x + r * 0.6), int(c - r)), 255, thick, aa)
    elif kind == "box":
        cv2.rectangle(m, (int(c - r), int(c - r * 0.6)), (int(c + r), int(c + r * 0.6)), 255, thick, aa)
    elif kind == "triangle":
        cv2.polylines(m, P([(c - r, c + r * 0.8), (c + r, c + r * 0.8), (c, c - r)]), True, 255, thick, aa)
    elif kind == "scribble":
        pts = np.cumsum(rng.normal(0, r * 0.25, (int(rng.integers(15, 40)), 2)), 0)
        pts = pts - pts.mean(0)
        pts = pts / max(1e-6, np.abs(pts).max()) * r + c
        cv2.polylines(m, P(pts), False, 255, thick, aa)
    elif kind == "blot":
        ang = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        rad = r * rng.uniform(0.4, 1.0, 24)
        rad = np.convolve(np.r_[rad[-2:], rad, rad[:2]], np.ones(5) / 5, "valid")
        cv2.fillPoly(m, P(np.stack([c + rad * np.cos(ang), c + rad * np.sin(ang)], 1)), 255, aa)
    elif kind == "cross":
        cv2.line(m, (int(c - r), int(c - r)), (int(c + r), int(c + r)), 255, thick, aa)
        cv2.line(m, (int(c - r), int(c + r)), (int(c + r), int(c - r)), 255, thick, aa)
    elif kind == "check":
        cv2.polylines(m, P([(c - r, c), (c - r * 0.3, c + r * 0.7), (c + r, c - r)]), False, 255, thick, aa)
    elif kind == "cloud":
        for i in range(5):
            cv2.ellipse(m, (int(c - r * 0.6 + r * 0.3 * i), int(c - r * 0.1 * (i % 2))), (int(r * 0.35), int(r * 0.3)),
                        0, 180, 360, 255, thick, aa)
        cv2.line(m, (int(c - r * 0.95), int(c)), (int(c + r * 0.85), int(c)), 255, thick, aa)
    else:  # flower: petals around a dot
        for i in range(6):
            a = i * math.pi / 3
            cv2.ellipse(m, (int(c + r * 0.5 * math.cos(a)), int(c + r * 0.5 * math.sin(a))), (int(r * 0.45), int(r * 0.2)),
                        math.degrees(a), 0, 360, 255, thick, aa)
    return m


def _text_mask(rng, target_h: float, thick: int) -> np.ndarray:
    text = _word(rng)
    if rng.random() < 0.3:
        text = text + " " + _word(rng)
    font = int(rng.choice(HERSHEY)) | (cv2.FONT_ITALIC if rng.random() < 0.25 else 0)
    scale = 1.0
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    scale = target_h / max(th, 1)
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    pad = thick + 4
    m = np.zeros((th + base + 2 * pad, tw + 2 * pad), np.uint8)
    cv2.putText(m, text, (pad, pad + th), font, scale, 255, thick, cv2.LINE_AA)
    return m


def _distractors(page: np.ndarray, rng, cfg: SceneConfig, n: int, board: bool, avoid: list[tuple[int, int, int, int]],
                 scale: float) -> int:
    """Draw up to n non-digit items where they do not touch `avoid` boxes; returns how many were drawn."""
    h, w = page.shape[:2]
    drawn = 0
    for _ in range(n * 4):
        if drawn >= n:
            break
        r = rng.random()
        if r < 0.1:  # a long line or underline: longer than any digit
            colour, opacity, grain = _pen(rng, board)
            length = rng.uniform(0.3, 0.8) * w
            x0, y0 = rng.uniform(0, w - length), rng.uniform(0.05, 0.95) * h
            ang = rng.normal(0, 0.08)
            layer = np.zeros((h, w), np.float32)
            cv2.line(layer, (int(x0), int(y0)), (int(x0 + length * math.cos(ang)), int(y0 + length * math.sin(ang))),
                     1.0, max(1, int(rng.integers(1, 4) * scale)), cv2.LINE_AA)
            ys, xs = np.nonzero(layer)
            box = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
            if any(_overlap(box, a, 6) for a in avoid):
                continue
            _ink(page, layer * opacity, colour)
            avoid.append(box)
            drawn += 1
            continue
        if r < 0.18:  # stain: a coffee ring or a watery blot, faint
            rad = int(rng.uniform(0.12, 0.3) * min(h, w))  # a cup, never digit-sized: a small ring is a 0
            m = np.zeros((2 * rad + 8, 2 * rad + 8), np.float32)
            ring = rng.random() < 0.6
            cv2.ellipse(m, (rad + 4, rad + 4), (rad, int(rad * rng.uniform(0.8, 1.0))), rng.uniform(0, 180), 0, 360, 1.0,
                        max(2, rad // 10) if ring else -1, cv2.LINE_AA)
            m = cv2.GaussianBlur(m, (0, 0), max(1.0, rad / 25))
            colour = np.array([60, 110, 150], np.float32)
            opacity = rng.uniform(0.12, 0.3)
        else:
            thick = max(1, int(round(_pen_width(rng, 40) * scale * 0.7)))
            target = _lu(rng, 18, 140) * scale
            if r < 0.6:
                m = _text_mask(rng, target * rng.uniform(0.5, 0.9), thick).astype(np.float32) / 255.0
            else:
                # doodles stay larger than a small digit: a tiny flower or blot is a 0 or a dot
                m = _doodle(rng, max(int(cfg.doodle_min_px * scale), int(target * rng.uniform(1.0, 2.0))),
                            thick).astype(np.float32) / 255.0
            colour, opacity, grain = _pen(rng, board)
            m = _grainy(m, rng, grain)
            if rng.random() < 0.5:  # handwriting is not level
                ang = rng.normal(0, 8)
                hh, ww = m.shape
                rot = cv2.getRotationMatrix2D((ww / 2, hh / 2), ang, 1.0)
                m = cv2.warpAffine(m, rot, (ww, hh))
        mh, mw = m.shape
        if mh >= h or mw >= w:
            continue
        x, y = int(rng.integers(0, w - mw)), int(rng.integers(0, h - mh))
        box = (x, y, mw, mh)
        if any(_overlap(box, a, 6) for a in avoid):
            continue
        _ink(page, m * opacity, colour, x, y)
        avoid.append(box)
        drawn += 1
    return drawn


def _overlap(a, b, pad: int = 0) -> bool:
    return (a[0] - pad < b[0] + b[2] and b[0] - pad < a[0] + a[2] and a[1] - pad < b[1] + b[3] and b[1] - pad < a[1] + a[3])


# ---------------------------------------------------------------- the camera

def _desk(rng, h: int, w: int) -> np.ndarray:
    kind = rng.choice(["wood", "dark", "fabric", "grey"])
    yy, xx = np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]
    if kind == "wood":
        base = np.array([70, 110, 160], np.float32) * rng.uniform(0.6, 1.2)
        warp = _smooth_noise(rng, h, w, 80) * 30
        ang = rng.uniform(0, np.pi)
        u = xx * math.cos(ang) + yy * math.sin(ang) + warp
        stripes = np.sin(u / rng.uniform(4, 12)) * 0.5 + np.sin(u / rng.uniform(15, 40)) * 0.5
        desk = base * (1 + 0.12 * stripes)[..., None]
    elif kind == "dark":
        desk = np.empty((h, w, 3), np.float32)
        desk[:] = np.array([40, 40, 45], np.float32) * rng.uniform(0.6, 1.5)
    elif kind == "fabric":
        desk = np.empty((h, w, 3), np.float32)
        desk[:] = rng.uniform(40, 160, 3).astype(np.float32)
        desk *= (1 + 0.08 * np.sin(xx / 2.0) * np.sin(yy / 2.0))[..., None]
    else:
        desk = np.empty((h, w, 3), np.float32)
        desk[:] = rng.uniform(90, 170)
    desk += (_smooth_noise(rng, h, w, 60) * 10)[..., None]
    return desk


def _perspective(rng, cfg: SceneConfig, w: int, h: int, desk: bool) -> np.ndarray:
    """A homography taking the page (w x h) into the frame (w x h)."""
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    scale = rng.uniform(0.78, 0.95) if desk else rng.uniform(1.0, 1.12)
    ang = math.radians(rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg))
    c, s = math.cos(ang), math.sin(ang)
    centre = np.float32([w / 2, h / 2]) + (rng.uniform(-0.05, 0.05, 2) * [w, h] if desk else 0)
    pts = (src - [w / 2, h / 2]) * scale
    pts = pts @ np.float32([[c, s], [-s, c]]) + centre
    pts += rng.uniform(-cfg.max_corner_shift, cfg.max_corner_shift, (4, 2)) * [w, h]
    return cv2.getPerspectiveTransform(src, np.float32(pts))


def _warp_box(hull: np.ndarray, m: np.ndarray) -> tuple[float, float, float, float]:
    """Box (x0, y0, x1, y1) of points warped by homography m (exact for the convex hull of the ink)."""
    p = cv2.perspectiveTransform(hull.reshape(-1, 1, 2).astype(np.float64), m).reshape(-1, 2)
    return float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())


def _ink_hull(p: _Placed) -> np.ndarray:
    ys, xs = np.nonzero(p.alpha > 0.5)
    # pixel corners, so that the box covers whole pixels
    pts = np.concatenate([np.stack([xs, ys], 1), np.stack([xs + 1, ys + 1], 1), np.stack([xs + 1, ys], 1),
                          np.stack([xs, ys + 1], 1)]).astype(np.float32)
    hull = cv2.convexHull(pts).reshape(-1, 2)
    return hull + np.float32([p.x, p.y])


def _lighting(img: np.ndarray, rng, cfg: SceneConfig) -> np.ndarray:
    h, w = img.shape[:2]
    # a row and a column that broadcast: the same float32 values as full coordinate grids, at no cost
    yy, xx = np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]
    ang = rng.uniform(0, 2 * np.pi)
    grad = (xx / w - 0.5) * math.cos(ang) + (yy / h - 0.5) * math.sin(ang)
    light = 1.0 + rng.uniform(0.1, 0.6) * grad + _smooth_noise(rng, h, w, max(h, w) / 3) * rng.uniform(0.03, 0.12)
    if rng.random() < 0.5:  # vignetting
        r2 = ((xx / w - 0.5) ** 2 + (yy / h - 0.5) ** 2) * 2
        light *= 1.0 - rng.uniform(0.1, 0.35) * r2
    if rng.random() < cfg.shadow_p:  # a soft shadow of a hand or phone entering from an edge
        f = 8  # drawn and blurred at 1/8 size: a soft shadow has no detail to lose, and big blurs are slow
        sw, sh = w // f + 1, h // f + 1
        m = np.zeros((sh, sw), np.float32)
        edge = int(rng.integers(4))
        k = int(rng.integers(3, 7))
        base = [(rng.uniform(0, sw), 0), (sw, rng.uniform(0, sh)), (rng.uniform(0, sw), sh), (0, rng.uniform(0, sh))][edge]
        pts = [base] + [(rng.uniform(0, sw), rng.uniform(0, sh)) for _ in range(k)]
        corners = [(0, 0), (sw, 0), (sw, sh), (0, sh)]
        pts += [corners[edge], corners[(edge + 1) % 4]]
        hull = cv2.convexHull(np.float32(pts)).astype(np.int32)
        cv2.fillConvexPoly(m, hull, 1.0)
        m = cv2.GaussianBlur(m, (0, 0), rng.uniform(0.025, 0.1) * max(sh, sw))
        m = cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
        light *= 1.0 - rng.uniform(0.25, 0.55) * m
    # exposure: the brightest paper lands at 80-105% of its colour (little clipping, as a phone exposes)
    img *= (light * (rng.uniform(0.8, 1.05) / float(light.max())))[..., None]
    warm, tint = rng.normal(0, cfg.white_balance), rng.normal(0, cfg.white_balance / 3)
    img *= np.float32([1 - warm, 1 + tint, 1 + warm])  # white balance: warm (tungsten) to cool (shade)
    return img


def _camera(img: np.ndarray, rng, cfg: SceneConfig) -> np.ndarray:
    h, w = img.shape[:2]
    sigma = rng.uniform(*cfg.gauss_blur_sigma) * h / 720
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    if rng.random() < cfg.motion_blur_p:
        n = int(rng.integers(3, 10))
        k = np.zeros((n, n), np.float32)
        k[n // 2, :] = 1.0 / n
        rot = cv2.getRotationMatrix2D(((n - 1) / 2, (n - 1) / 2), rng.uniform(0, 180), 1.0)
        k = cv2.warpAffine(k, rot, (n, n))
        img = cv2.filter2D(img, -1, k / max(k.sum(), 1e-6))
    if rng.random() < cfg.low_res_p:
        f = rng.uniform(0.45, 0.8)
        small = cv2.resize(img, (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    sigma_n = _lu(rng, *cfg.noise_sigma)
    # In place, one frame-sized buffer at a time (the frame is large and this is most of a scene's time);
    # the same random draws in the same order, the same float32 operations.
    grey_noise = rng.standard_normal((h, w, 1), dtype=np.float32)
    grey_noise *= sigma_n
    noise = rng.standard_normal((h, w, 3), dtype=np.float32)
    noise *= sigma_n
    noise *= rng.uniform(0.2, 0.6)
    noise += grey_noise
    shot = np.clip(img, 1, 255)
    shot /= 128.0
    np.sqrt(shot, out=shot)
    shot *= noise  # shot noise grows with light
    shot += img
    shot += 0.5
    out = np.clip(shot, 0, 255, out=shot).astype(np.uint8)
    if rng.random() < cfg.jpeg_p:
        q = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, q])
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return out


def _reading_order_ok(boxes: dict[int, tuple[float, float, float, float]], lines: dict[int, int]) -> bool:
    """After the warp, lines must still be read top to bottom unambiguously: numbers on one line overlap
    vertically by half their height, and each line lies wholly below the previous one."""
    by_line: dict[int, list[tuple[float, float, float, float]]] = {}
    for ni, b in boxes.items():
        by_line.setdefault(lines[ni], []).append(b)
    spans = []
    for li in sorted(by_line):
        bs = sorted(by_line[li])
        for a, b in zip(bs, bs[1:]):
            ov = min(a[3], b[3]) - max(a[1], b[1])
            if ov < 0.5 * min(a[3] - a[1], b[3] - b[1]) or b[0] <= a[2]:
                return False
        spans.append((min(b[1] for b in bs), max(b[3] for b in bs)))
    return all(spans[i][1] < spans[i + 1][0] for i in range(len(spans) - 1))


# ---------------------------------------------------------------- the scene

def make_scene(kind: str, rng: np.random.Generator, split: str = "test", mnist=None,
               size: tuple[int, int] | None = None, cfg: SceneConfig = DEFAULT) -> tuple[np.ndarray, dict]:
    """One photo-like scene and its truth; see the module docstring."""
    if kind not in KINDS:
        raise ValueError(f"unknown scene kind {kind!r}; choose one of {KINDS}")
    pool = _by_class(_mnist(mnist), split)
    w, h = size if size is not None else cfg.sizes[int(rng.integers(len(cfg.sizes)))]
    scale = min(w, h) / 600.0  # pen and paper features scale with the frame
    for _attempt in range(20):
        page, _base, board = _paper(rng, h, w, cfg)
        _rules(page, rng, cfg, board, max(scale, 0.6))
        if kind == "empty":
            texts: list[str] = []
        elif kind == "single":
            texts = [str(int(rng.integers(10)))]
        else:
            texts = ["".join(str(int(d)) for d in rng.integers(0, 10, int(rng.integers(2, 7))))
                     for _ in range(int(rng.integers(1, 4)))]
        hi = min(cfg.digit_px[1], cfg.digit_frac_max * h)
        height = _lu(rng, cfg.digit_px[0], hi)
        placed = _write_digits(page, rng, cfg, texts, height, board, pool) if texts else []
        if placed is None:
            continue
        hulls = [_ink_hull(p) for p in placed]
        avoid = []
        for hl in hulls:
            x0, y0 = hl.min(0)
            x1, y1 = hl.max(0)
            pad = 0.4 * (y1 - y0)
            avoid.append((int(x0 - pad), int(y0 - pad), int(x1 - x0 + 2 * pad), int(y1 - y0 + 2 * pad)))
        if kind == "empty":
            _distractors(page, rng, cfg, int(rng.integers(cfg.empty_items[0], cfg.empty_items[1] + 1)), board, avoid, scale)
        elif rng.random() < cfg.distractor_p:
            _distractors(page, rng, cfg, int(rng.integers(1, 5)), board, avoid, scale)
        desk = rng.random() < cfg.desk_p
        for _try in range(10):
            m = _perspective(rng, cfg, w, h, desk)
            boxes = [_warp_box(hl, m) for hl in hulls]
            margin = 2
            inside = all(b[0] >= margin and b[1] >= margin and b[2] <= w - margin and b[3] <= h - margin for b in boxes)
            nb: dict[int, list] = {}
            for p, b in zip(placed, boxes):
                nb.setdefault(p.number, []).append(b)
            nboxes = {ni: (min(b[0] for b in bs), min(b[1] for b in bs), max(b[2] for b in bs), max(b[3] for b in bs))
                      for ni, bs in nb.items()}
            lines = {p.number: p.line for p in placed}
            if inside and _reading_order_ok(nboxes, lines):
                break
        else:
            continue
        img = cv2.warpPerspective(page, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if desk:
            cover = cv2.warpPerspective(np.ones((h, w), np.float32), m, (w, h), flags=cv2.INTER_LINEAR)
            img = img * cover[..., None] + _desk(rng, h, w) * (1 - cover[..., None])
        img = _lighting(img, rng, cfg)
        img = _camera(img, rng, cfg)
        order = sorted(range(len(placed)), key=lambda i: (placed[i].line, boxes[i][0]))
        numbers: list[str] = []
        digits = []
        number_order = sorted({p.number for p in placed}, key=lambda ni: (lines[ni], nboxes[ni][0]))
        for ni in number_order:
            idx = [i for i in order if placed[i].number == ni]
            numbers.append("".join(str(placed[i].digit) for i in idx))
            for i in idx:
                x0, y0, x1, y1 = boxes[i]
                x0, y0 = max(0, int(math.floor(x0))), max(0, int(math.floor(y0)))
                x1, y1 = min(w, int(math.ceil(x1))), min(h, int(math.ceil(y1)))
                digits.append({"digit": placed[i].digit, "box": [x0, y0, x1 - x0, y1 - y0]})
        return img, {"kind": kind, "size": [w, h], "numbers": numbers, "digits": digits}
    raise RuntimeError(f"could not lay out a {kind!r} scene of {w}x{h} in 20 attempts")


def scene_rng(seed: int, kind: str, index: int) -> np.random.Generator:
    """The generator of scene `index` of `kind` for `seed`: each scene is reproducible on its own."""
    return np.random.default_rng([seed, KINDS.index(kind), index])


def draw_truth(image: np.ndarray, truth: dict, caption: bool = True) -> np.ndarray:
    """A copy of `image` with the truth boxes and digits drawn (for inspection), and the numbers as a caption."""
    out = image.copy()
    for d in truth["digits"]:
        x, y, bw, bh = d["box"]
        cv2.rectangle(out, (x, y), (x + bw, y + bh), (0, 200, 0), 1)
        cv2.putText(out, str(d["digit"]), (x, max(12, y - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 160, 0), 1, cv2.LINE_AA)
    if caption:
        cv2.putText(out, " ".join(truth["numbers"]) or "(empty)", (5, out.shape[0] - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (0, 0, 255), 2, cv2.LINE_AA)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write photo-like scenes of handwritten digits with truth JSON.")
    ap.add_argument("--kind", choices=KINDS, default="numbers")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", choices=("test", "train"), default="test")
    ap.add_argument("--size", type=str, default=None, help="WxH, e.g. 1280x720 (default: varied)")
    ap.add_argument("--boxes", action="store_true", help="also write *_truth.png with the truth boxes drawn")
    args = ap.parse_args(argv)
    size = tuple(int(v) for v in args.size.lower().split("x")) if args.size else None
    args.out.mkdir(parents=True, exist_ok=True)
    index = []
    for i in range(args.n):
        img, truth = make_scene(args.kind, scene_rng(args.seed, args.kind, i), args.split, size=size)
        name = f"{args.kind}_{i:04d}"
        cv2.imwrite(str(args.out / f"{name}.png"), img)
        (args.out / f"{name}.json").write_text(json.dumps(truth))
        if args.boxes:
            cv2.imwrite(str(args.out / f"{name}_truth.png"), draw_truth(img, truth))
        index.append({"image": f"{name}.png", **truth})
    (args.out / "index.json").write_text(json.dumps(index, indent=1))
    print(f"wrote {args.n} {args.kind} scenes to {args.out}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
