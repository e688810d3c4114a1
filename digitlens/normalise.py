"""Candidate ink -> a 28x28 crop made the way MNIST was made.

LeCun et al. fitted each NIST digit into a 20x20 box keeping its aspect ratio (anti-aliased by the
resampling) and centred its centre of mass in a 28x28 field. We do the same, and also bring the
stroke width to MNIST's typical width, since pens and camera distances vary far more than NIST's.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class NormaliseConfig:
    box: int = 20  # MNIST fits the digit's longer side into 20 px ...
    field: int = 28  # ... and centres it by mass in a 28x28 field
    work: int = 3  # work at 3x the box (60 px) so stroke-width changes are fine-grained
    stroke_target: float = 2.0  # stroke width in px at box scale: the median MNIST digit binarised at 50%
    stroke_tolerance: float = 0.6  # leave widths within +-0.6 px of the target alone
    max_erode_frac: float = 0.35  # never erode more than this fraction of the measured width
    min_side_frac: float = 0.12  # a very thin candidate (a "1", a dash) keeps at least this fraction of the box


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary mask in pixels: 2 * area / boundary length (a stroke is a long thin ribbon)."""
    mask = (mask > 0).astype(np.uint8)
    area = cv2.countNonZero(mask)  # an integer count, as exact as a sum and cheaper
    if area == 0:
        return 0.0
    eroded = cv2.erode(mask, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    boundary = float(area - cv2.countNonZero(eroded))
    return 2.0 * area / max(boundary, 1.0)


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def fit_mask(mask: np.ndarray, cfg: NormaliseConfig = NormaliseConfig()) -> np.ndarray:
    """Binary ink mask (h, w) cropped to the digit -> float mask at work scale, longer side = box * work."""
    h, w = mask.shape
    side = cfg.box * cfg.work
    scale = side / max(h, w)
    nh = max(1, int(round(h * scale)))
    nw = max(1, int(round(w * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    big = cv2.resize(mask.astype(np.float32), (nw, nh), interpolation=interp)
    out = (big > 0.5).astype(np.uint8)
    if not cv2.countNonZero(out):  # strokes thinner than the downscale: keep every pixel they touch
        out = (big > 0).astype(np.uint8)
    return out


def normalise_stroke(big: np.ndarray, cfg: NormaliseConfig = NormaliseConfig()) -> np.ndarray:
    """Thicken or thin a work-scale binary mask toward MNIST's stroke width."""
    width = stroke_width(big) / cfg.work
    delta = cfg.stroke_target - width
    if abs(delta) <= cfg.stroke_tolerance:
        return big
    pad = cfg.work * 3
    padded = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    if delta > 0:
        radius = int(round(delta * cfg.work / 2))
        out = cv2.dilate(padded, _disk(radius)) if radius > 0 else padded
    else:
        radius = int(round(min(-delta, cfg.max_erode_frac * width) * cfg.work / 2))
        out = cv2.erode(padded, _disk(radius)) if radius > 0 else padded
        if cv2.countNonZero(out) < 0.25 * cv2.countNonZero(padded):  # erosion would erase the digit: keep it
            out = padded
    return out


def centre_by_mass(digit: np.ndarray, cfg: NormaliseConfig = NormaliseConfig()) -> np.ndarray:
    """Place a float image (<= box x box) in the field so that its centre of mass is at the centre."""
    field = np.zeros((cfg.field, cfg.field), np.float32)
    # From the row and column sums (cv2.moments would take a 2-column float image for a list of points).
    cols = digit.sum(axis=0, dtype=np.float64)
    total = float(cols.sum())
    if total <= 0:
        return field
    cx = float(cols @ np.arange(len(cols))) / total
    cy = float(digit.sum(axis=1, dtype=np.float64) @ np.arange(digit.shape[0])) / total
    # Sub-pixel shift by warpAffine keeps MNIST's anti-aliasing instead of rounding to whole pixels.
    m = np.float32([[1, 0, cfg.field / 2 - 0.5 - cx], [0, 1, cfg.field / 2 - 0.5 - cy]])
    return cv2.warpAffine(digit, m, (cfg.field, cfg.field), flags=cv2.INTER_LINEAR, borderValue=0)


def ink_bounds(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x, y, w, h) of a mask's nonzero pixels, or None when it has none. cv2.boundingRect scans a uint8
    image in one pass, where np.nonzero builds coordinate arrays; other dtypes are compared to 0 first."""
    if mask.dtype != np.uint8:
        mask = (mask != 0).astype(np.uint8)
    x, y, w, h = cv2.boundingRect(mask)
    return (x, y, w, h) if w > 0 else None


def normalise_mask(mask: np.ndarray, cfg: NormaliseConfig = NormaliseConfig()) -> np.ndarray:
    """Binary ink mask of one candidate (any size, ink > 0) -> (28, 28) uint8, white ink on black, MNIST-style."""
    bounds = ink_bounds(mask)
    if bounds is None:
        return np.zeros((cfg.field, cfg.field), np.uint8)
    x, y, w, h = bounds
    big = normalise_stroke(fit_mask(mask[y:y + h, x:x + w], cfg), cfg)
    bounds = ink_bounds(big)
    if bounds is None:
        return np.zeros((cfg.field, cfg.field), np.uint8)
    x, y, w, h = bounds
    return _box_and_centre(big[y:y + h, x:x + w].astype(np.float32), cfg, cv2.INTER_AREA)


def _box_and_centre(ink: np.ndarray, cfg: NormaliseConfig, interpolation: int) -> np.ndarray:
    """Float ink cropped to its bounds -> (28, 28) uint8: its longer side resized to the box (the shorter kept
    at least min_side_frac of it), then centred by mass in the field."""
    h, w = ink.shape
    scale = cfg.box / max(h, w)
    nh = max(int(round(cfg.min_side_frac * cfg.box)), int(round(h * scale)), 1)
    nw = max(int(round(cfg.min_side_frac * cfg.box)), int(round(w * scale)), 1)
    small = cv2.resize(ink, (nw, nh), interpolation=interpolation)
    out = centre_by_mass(small, cfg)
    return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)


def ranked_u8(values: np.ndarray, ranks) -> np.ndarray:
    """The uint8 values at these 0-based ranks of their sorted order, by counting them (np.bincount): several
    times faster than sorting for the few hundred to few thousand pixels of a region or a patch."""
    counts = np.cumsum(np.bincount(values, minlength=256))
    return np.searchsorted(counts, np.asarray(ranks) + 1)


def percentile_u8(values: np.ndarray, pct: float) -> float:
    """The `pct` percentile of uint8 values (the lower value where it falls between two)."""
    return float(ranked_u8(values, int(pct / 100 * (len(values) - 1))))


def normalise_grey(patch: np.ndarray, own: np.ndarray, cfg: NormaliseConfig = NormaliseConfig(),
                   reach: float = 0.15) -> np.ndarray:
    """A candidate read from its grey pixels rather than its binary mask -> (28, 28) uint8, MNIST-style.

    `patch` is the grey image around the candidate, ink darker than paper (invert a chalk board first); `own`
    (same shape, nonzero where the candidate's mask is) says which ink is its. Ink is measured as darkness
    between the paper's level (the median outside the mask grown by `reach` x its height) and the ink's (the
    10th percentile inside the mask), so a blurred stroke keeps its soft edges and a faint one its shape,
    as the grey NIST scans that MNIST was made from did; where binarising filled a blurred digit's loops or
    dropped a faint stroke, these pixels still show them. Ink farther than `reach` x the height from the mask
    (a neighbour, a ruled line running off) is faded out. The ink is then fitted into the 20x20 box and
    centred by mass like normalise_mask's, without its stroke-width change (the strokes are not binary)."""
    patch = np.asarray(patch)
    if patch.dtype != np.uint8:  # grey levels 0..255
        patch = np.clip(np.rint(patch), 0, 255).astype(np.uint8)
    own = (np.asarray(own) > 0).astype(np.uint8)
    if patch.shape != own.shape or patch.ndim != 2:
        raise ValueError(f"patch and own must be 2-D of one shape, got {patch.shape} and {own.shape}")
    bounds = ink_bounds(own)
    if bounds is None:
        return np.zeros((cfg.field, cfg.field), np.uint8)
    f = 3 * cfg.box / bounds[3]  # nothing finer than 3x the 20x20 box is needed: a taller one is shrunk first
    if f < 1:
        size = (max(1, round(own.shape[1] * f)), max(1, round(own.shape[0] * f)))
        patch = cv2.resize(patch, size, interpolation=cv2.INTER_AREA)
        own = (cv2.resize(own.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.25).astype(np.uint8)
        bounds = ink_bounds(own)
        if bounds is None:
            return np.zeros((cfg.field, cfg.field), np.uint8)
    r = max(1, int(round(reach * bounds[3])))
    near = cv2.dilate(own, _disk(r))
    outside = patch[near == 0]
    paper = percentile_u8(outside, 50) if outside.size >= 16 else percentile_u8(patch.ravel(), 90)
    ink_level = percentile_u8(patch[own > 0], 10)
    ink = np.clip((paper - patch.astype(np.float32)) / max(paper - ink_level, 1.0), 0.0, 1.0)
    ink *= cv2.GaussianBlur(near.astype(np.float32), (0, 0), max(0.5, r / 2))
    bounds = ink_bounds((ink > 0.25).astype(np.uint8))
    if bounds is None:
        return np.zeros((cfg.field, cfg.field), np.uint8)
    x, y, w, h = bounds
    return _box_and_centre(ink[y:y + h, x:x + w], cfg, cv2.INTER_AREA if max(h, w) > cfg.box else cv2.INTER_LINEAR)


def normalise_batch(masks: list[np.ndarray], cfg: NormaliseConfig = NormaliseConfig()) -> np.ndarray:
    """Many candidates at once -> (N, 28, 28) uint8."""
    out = np.zeros((len(masks), cfg.field, cfg.field), np.uint8)
    for i, m in enumerate(masks):
        out[i] = normalise_mask(m, cfg)
    return out
