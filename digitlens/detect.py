"""Frame -> candidate ink regions: light normalisation, binarisation, line removal, components, merging.

Each stage is a pure function on numpy arrays. `find_candidates` wires them. Sizes are derived from
the image and from the candidates themselves; every constant is a named field of DetectConfig.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Sequence

import cv2
import numpy as np

from digitlens.normalise import ranked_u8, stroke_width


@dataclass(frozen=True)
class DetectConfig:
    max_side: int = 1280  # larger frames are processed at this long side (boxes are mapped back)
    background_scale: int = 4  # the paper's brightness is estimated at 1/4 resolution ...
    background_kernel_frac: float = 0.10  # ... with a median this wide (fraction of the long side): strokes up to
    # half as wide stay ink. 0.06 took the middle of a marker stroke held close to a webcam (a digit half the
    # frame's height) for paper; wider windows follow the edges of shadows less closely
    polarity: str = "both"  # "dark" ink on light paper, "light" ink on dark boards, or "both"
    light_max_background: int = 130  # light ink is looked for only on surfaces darker than this (boards, slates):
    # around dark blots on white paper the paper itself would read as light ink
    dark_min_background: int = 40  # and dark ink only on surfaces brighter than this
    light_headroom: int = 180  # light ink's contrast is its rise over the board as a fraction of the headroom above
    # it, but at most of this much (255: all of it): chalk 40 grey levels over a board at 25 is as plain to see as
    # ink 45 levels under paper at 200, yet was 16% of 230. Dev scenes (training digits, seeds 7-10, 300 per kind):
    # numbers +2/+5/+3/+1, single digits 0/+2/+1/+1, empty pages -1/0/0/0; other_hand's compositor (training
    # digits) board 0/-1/-1 of 100 (faint chalk dust read as a 1), other categories unchanged
    light_min_dark_frac: float = 0.03  # the light-ink pass runs only when 3% of the frame is that dark
    light_gate_slack: int = 15  # ... and only when, at half resolution, some region of light ink with strong ink,
    # not a rim, at least min_height_px / 2 tall, lies on a surface this close to light_max_background (mean over its
    # box) or darker (0: no such look first; see _light_writing_possible) ...
    light_gate_range: int = 40  # ... or, a region shaped as a rim (chalk digits on a board's ruled lines), lies on a
    # surface this much darker than light_max_background and flat within this: the halo along a page's edge lies on
    # the step from the desk to the page
    high_contrast: float = 0.22  # a stroke must somewhere be 22% darker than its paper ...
    low_contrast: float = 0.11  # ... and extends wherever it is 11% darker (hysteresis keeps faint ends)
    line_length_frac: float = 0.12  # horizontal ink runs longer than this fraction of the width are ruled lines
    vline_length_frac: float = 0.5  # vertical runs this long (fraction of the height) are lines: a "1" is shorter,
    # even held close to the camera (thinner, shorter lines go by the rim test below)
    line_slant_px: int = 3  # lines are searched after a 3 px (half-resolution) smear across them, so lines
    # tilted by perspective (up to ~5 degrees over the run length) still hold a straight run
    line_span_frac: float = 0.4  # ... and only lines spanning 40% of the frame count (a drawn box's side is writing)
    line_max_thickness_px: int = 3  # at half resolution: ruled lines are at most ~6 px thick in a frame
    line_max_pool: bool = True  # lines are searched in a half-resolution mask where each 2x2 block with ink is ink
    # (False: every other pixel, which broke a line 1 px thin and tilted a little into dashes, and left it) ...
    line_bridge_px: int = 9  # ... and strokes cut by a line are mended across gaps this long. Pooling, with the
    # bridge at 13 px, dev scenes (training digits, seeds 7-10, 300 per kind): single digits +1/+1/+3/-1, numbers
    # 0/+3/+1/+1, empty pages +1/0/+2/0. 13 px stopped a margin line cut at every ruled line reading as a column
    # of 1s, which line_piece_reach below now does; at 9 px (seeds 8, 9) single digits +1/-1, numbers +1/-2,
    # empty pages -1/0 against 13, and Hershey-font digits held close to the camera (other_hand's compositor,
    # seed 8) huge 84 -> 90, hugemarker 80 -> 86 of 100
    line_piece_reach: float = 0.5  # a thin upright region whose stroke runs on straight in the ink before line
    line_piece_cover: float = 0.8  # removal (this much of its axis covered, up to line_piece_reach x its height
    line_piece_max_aspect: float = 0.3  # past an end) is a piece of a longer line, no "1" (see continues_as_line;
    # reach 0: never). Dev scenes (training digits, seeds 7-10, 300 per kind): empty pages 0/+4/0/+3, single
    # digits 0/0/+1/+3, numbers -1/+1/+1/+1 (the one lost: a 7 joined to a line); other_hand's compositor with
    # training digits (seed 8, 10 categories) unchanged; no cost a 1280x720 photo
    line_piece_tilted: bool = True  # thin is judged by its width along a row, not its box's: a margin line tilted
    # by perspective has a wide box. Dev scenes (training digits, seeds 7-10, 300 per kind): single digits
    # 0/+1/+1/-1 (a piece of a tilted margin line read as a 1 beside the digit; lost: hatching whose strokes reach
    # a dark desk, cut to two 1s, no longer a run of 1s), numbers +1/0/0/0, empty pages unchanged
    line_piece_max_lean: float = 0.6  # ... and its box at most this x its height wide (upright within ~30 degrees)
    line_piece_gap: float = 0.1  # (the axis is looked at from this x its height past the end ...)
    line_piece_min_height_px: int = 32  # (... of regions at least this tall: a shorter one is judged by its shape)
    box_sides: bool = True  # a thin upright region both of whose ends rest on lines that remove_lines took is the side
    # of a box on a form (a comb of boxes for one digit each, a table's cell), no "1": a 1 crosses a ruled line or
    # ends short of it, and rarely meets one at each end (see ends_on_lines)
    box_side_two_run_rows: float = 0.2  # ... and is one stroke, as a side is: where more of its rows than this cross
    # ink twice, it is a loop (a 4's or a 9's top resting on a ruled line, its tail cut off by the next; 1.0: any)
    box_side_runs: int = 12  # straight upright runs at least this long (px) that stand between two lines remove_lines
    # took and stop there, two or more on the same pair of lines that end at the outer ones (a row of boxes on a
    # form, its tops and bottoms taken as lines; not ruled paper, whose lines go on), are box sides, taken out before
    # regions are found: a digit written touching a side is read without it (0: off; see strip_box_sides).
    # other_hand's boxes (fonts seed 8, training digits seed 7): 79 -> 84, 81 -> 86 of 100; dev scenes seeds 7-10
    # read the same
    min_height_px: int = 8  # smaller specks are noise at any distance
    doubtful: tuple[str, ...] = ("edge",)  # regions not_writing rejects for these reasons are kept aside as doubtful:
    # the reader reads them only beside a digit of their height (see ClassifyConfig.doubtful_min_confidence)
    min_area_px: int = 20
    max_height_frac: float = 0.9  # a region as tall as the frame is a page edge or a shadow
    max_aspect: float = 8.0  # width / height beyond this is a line, not a digit or a number
    border_long_frac: float = 0.35  # a region touching the frame's edge and longer than this fraction of it is
    # a page edge, a desk or a shadow line, not writing
    border_margin_frac: float = 0.0  # "touching the frame" means within this fraction of its size (plus 1 px) of an
    # edge: a page edge runs out of the frame; a large digit held close to the camera may come within a pixel or
    # two of it (2% dropped such digits; 0.5%, 2-3 px, still dropped thick marker digits 3 px from the edge).
    # other_hand's compositor with training digits (seeds 7, 8): hugemarker 86 -> 92, 80 -> 86 of 100; fonts (seed
    # 8): huge 90 -> 95, hugemarker 86 -> 95, other categories unchanged. Dev scenes (training digits, seeds 7-10,
    # 300 per kind) against 0.005: single digits 0/0/+1/0, numbers -1/0/0/0, empty pages 0/-1/0/0
    border_max_aspect: float = 2.5  # a thin region at the frame's edge is a rim or a digit cut in half: unreadable
    rim_aspect: float = 5.0  # a straight region this thin ...
    rim_length_frac: float = 0.25  # ... and longer than a quarter of the frame is the rim of a page or a margin line,
    rim_thin_aspect: float = 25.0  # ... if it is also this thin (a pen's "1" held close to the camera is thicker) ...
    rim_long_frac: float = 0.5  # ... or longer than half the frame, whatever its width
    merge_overlap: float = 0.5  # merge pieces overlapping in x by half the narrower's width ...
    merge_gap: float = 0.35  # ... whose vertical gap is under 0.35 of the taller's (or the typical) height ...
    merge_growth: float = 1.5  # ... if the merged height stays under 1.5 x the taller's (not two lines)
    merge_max_size_ratio: float = 3.0  # ... and neither piece is over 3x longer than the other
    underline_aspect: float = 4.0  # a piece at least this many times wider than tall, lying under another, is an
    # underline and is not merged with it (0: no such test); one that touches the writing is taken off it
    # (underline_cells)
    frame_strip: bool = True  # writing that touches a drawn box is read without it: see frame_cells
    frame_thin_dividers: bool = True  # a comb's dividers are as thin as its sides (+2 px): a bold 1 standing from
    # the top of its cell to the bottom was cut away as one. other_hand's boxes, fonts (seed 8): 84 -> 87 of 100;
    # training digits (seed 7) the same
    frame_min_side_cover: float = 0.8  # ... and neither lies wholly inside the other when that one is a drawn box (its
    # ink along each side of its box for 0.8 of it, 0: no such test): a digit in a box on a form (one box per
    # digit, a table's cell) is no piece of the box
    typical_unions: bool = True  # pieces merged only because the frame's typical height allowed it (not their own)
    # stay candidates too, and their merge is offered as a union (piece_unions' bookkeeping): the reader takes it
    # only when it reads as a surer digit. Large writing elsewhere (a printed shirt) raises the typical height
    # until two lines of small digits stack into one "8". The union gives way to its pieces only when each reads as a
    # digit in a line beside another digit (Recognizer._pieces_in_lines); a broken 3 or 8 stays merged. Dev scenes
    # (training digits, seeds 7-10, 300 per kind): numbers 0/+1/0/0, single digits and empty pages unchanged; shrunk
    # to 0.45 (seed 8) unchanged. The first try, the union taken only when it read surer, lost 2 and 1 (broken 3s
    # and 8s, whose merge reads unsure)
    max_candidates: int = 200  # beyond this the frame is texture, not writing: keep the largest
    pinhole_frac: float = 0.01  # holes under 1% of a region's box are grain in the ink, not a digit's loop
    max_stroke_frac: float = 0.3  # mean stroke width over 0.3 x the region's longer side: a blob or a shadow,
    # not a pen stroke (MNIST's is ~0.1) ...
    stroke_blur_px: float = 2.0  # ... the width less this much, which a camera's blur adds to any stroke: a small
    # digit's stroke is mostly blur (a 20 px 4 measured 0.3 of its size)
    fine_thick_below_px: int = 32  # a region under this tall that fails that test is judged again on its finer
    # mask (finer_mask, 3x): a 20 px 0 or 8, binarised at its own size, fills its loops and looks like a blot.
    # other_hand's compositor, font digits (seeds 8, 7): tiny 83 -> 91, 86 -> 87 of 100, other categories
    # unchanged; with training digits (seed 7) unchanged. Dev scenes (seeds 8, 9; and 7, 8 shrunk to 0.45)
    # read exactly the same
    step_edge_ratio: float = 0.75  # the paper on one side of a region is under 0.75 x as bright as on the other:
    # it is the edge of a page, a desk or a shadow, not a stroke (a stroke has paper on both sides) ...
    step_edge_ink_ratio: float = 0.7  # ... unless its ink is under 0.7 x as bright as even the darker side: a digit
    # written across the edge of a shadow is far darker than both sides; the dark side of an edge is not
    step_edge_compact_ink_ratio: float = 0.8  # ... or, for a compact region (neither side over
    # step_edge_compact_aspect x the other), under 0.8 x: an edge's region is a long strip along it, and a digit
    # written in a shadow beside its edge, 20-30% darker than the shadowed side, was taken for it (a 7: ink 78,
    # paper 102 and 139). Dev scenes (training digits, seeds 7-10, 300 per kind): single digits 0/0/+1/0,
    # numbers 0/0/+1/+1, empty pages unchanged; shrunk to 0.45 (seeds 7, 8): numbers +1/0, the rest unchanged;
    # other_hand dev (20 conditions, fonts seed 8 and training digits seed 7): unchanged. For every region, not
    # only compact ones: shrunk empty pages -2/-1, page and shadow edges 17-32 px wide and 140-260 tall read as 1s
    step_edge_compact_aspect: float = 3.0
    min_surround_contrast: float = 0.08  # ink must be 8% darker (or lighter, on boards) than the surface around it
    union_contrast: float = 0.05  # pieces joined by ink at least 5% darker than the paper (under low_contrast) may be
    # one digit broken where the pen ran thin or light: their union is offered as one more candidate (0: never).
    # On dev scenes of training digits (seeds 7 and 8, 300 per kind): single digits read exactly +2.0 and +0.7
    # points, numbers +2.6 and +1.6, empty pages unchanged
    union_max_aspect: float = 1.6  # ... when the union is shaped like one digit (width / height at most this)
    union_max_pieces: int = 4
    coarse_min_height_frac: float = 0.25  # writing at least this tall (fraction of the frame's height) is looked
    # for once more, at coarse resolution with a wider paper window (0: never). A digit held close to a webcam has
    # strokes too thick for the window above: it would break into the rims of its strokes, or vanish
    coarse_kernel_frac: float = 0.3  # ... the wider window (fraction of the long side) ...
    coarse_max_side: int = 320  # ... at this long side (the cost is a few percent of the frame's)
    coarse_min_stroke_frac: float = 0.25  # ... and only regions whose mean stroke is at least this fraction of the
    # fine window wide (thinner writing is the fine pass's: coarse pixels would only fatten a hairline into a "1")
    coarse_same_iou: float = 0.8  # a coarse region overlapping a region already found this much adds nothing ...
    coarse_hollow_frac: float = 0.7  # ... unless that one has under 0.7 of its ink: the rims of thick strokes, merged
    coarse_min_edge_ink: float = 0.3  # and it must be a stroke's sharp edge: this much of its outline lies on strong
    # ink of the fine pass (a shadow, a stain or a soft blot is as large, but its edge fades into the paper) ...
    coarse_edge_reach_px: int = 4  # ... within this many pixels (or one coarse pixel, if more). The coarse mask
    # comes from a weaker threshold on a blurred, downscaled frame: its outline lies 1-3 px outside the fine strong
    # ink, and at 2 px a marker digit half a 640x480 frame tall was refused as a soft blot
    board_kernel_frac: float = 0.5  # chalk is looked for only where a paper window this wide (fraction of the long
    # side, at coarse resolution) also sees a board (0: no such check). Under the strokes of a marker digit held
    # close to the camera the fine window turns dark; the paper inside its loops then read as chalk on a board,
    # which hid the digit as the board's surface. A board in a photo of chalk writing is most of the frame
    # A light region over 15% of the frame with three regions of the other polarity inside is a surface (a page on
    # a dark desk, with the writing on it): see _resolve_polarity. With fewer, it is one too when it is no stroke
    # drawing (its extent at least surface_min_extent x its mean stroke width: a page's rim, a lit patch of paper;
    # a digit's is ~5-15) and one region inside is drawn in strokes (extent >= 4 x stroke width: not a blot, as the
    # board seen through grainy chalk is) and small beside it (its box at most surface_small_inside of the outer's).
    # Dev scenes (training digits, seeds 7-10, 300/300/500/500): single digits read exactly +3/0/+1/+1, empty
    # pages +1/0/-1/0, numbers unchanged. Close chalk digits with grainy strokes (tests) keep their candidates.
    surface_small_inside: float = 0.02
    surface_min_extent: float = 20.0
    loop_paper_frac: float = 0.5  # a loop (hole) must be at least half-way from the ink's brightness to the paper's:
    # a dark blot larger than the background window leaves only its rim as "ink", a ring with a dark inside
    fill_dark_loops: bool = True  # ... and so does a stroke wider than half that window: such a ring, its dark
    # loops filled, is a candidate when it is then drawn in strokes (a blot is not: max_stroke_frac)


@dataclass(frozen=True)
class Candidate:
    box: tuple[int, int, int, int]  # x, y, w, h in processing pixels
    mask: np.ndarray  # (h, w) uint8, 1 where this candidate's ink is
    polarity: str
    parts: tuple[tuple[int, int, int, int], ...] = ()  # a union of broken pieces (see piece_unions): their boxes
    merged: bool = False  # a union read by default, as if its pieces were one region (see typical_unions): it gives
    # way only to pieces that all read as digits
    boxed: bool = False  # it stands inside a box drawn round it (see frame_min_side_cover), or on a line drawn under
    # it that touched it (underline_cells): its grey surroundings hold the box or the line, so it is read from its mask
    # alone, and its neighbours in the box's row (or on the line) are one number with it


def to_grey(image: np.ndarray) -> np.ndarray:
    """BGR, BGRA or grey uint8 -> grey uint8 (a new array)."""
    if image.ndim == 2:
        return image.copy()
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0].copy()
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"expected a grey (H, W) or BGR (H, W, 3) image, got shape {image.shape}")


def background(grey: np.ndarray, cfg: DetectConfig) -> np.ndarray:
    """The paper's (or board's) brightness without the ink: a large median ignores sparse strokes of
    either polarity, so the same estimate serves dark ink on paper and chalk on a board."""
    h, w = grey.shape
    s = cfg.background_scale
    small = cv2.resize(grey, (max(1, w // s), max(1, h // s)), interpolation=cv2.INTER_AREA)
    k = max(3, int(cfg.background_kernel_frac * max(h, w) / s) | 1)
    bg = cv2.medianBlur(small, k)
    bg = cv2.blur(bg, (k // 2 + 1, k // 2 + 1))  # soften the median's plateaus so the division leaves no edges
    return cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR)


def ink_contrast(grey: np.ndarray, bg: np.ndarray, light_ink: bool, headroom: int = 255) -> np.ndarray:
    """uint8 map, 0..255: how much darker (or lighter) than its local paper each pixel is, as a fraction x 255.
    (uint8 and OpenCV arithmetic: several times faster than float numpy on a 1280x720 frame.)"""
    g = cv2.GaussianBlur(grey, (3, 3), 0)
    if light_ink:
        # Light chalk on a dark board: contrast relative to the headroom above the board.
        # The floor of 64 grey levels keeps sensor noise on bright paper from reading as light ink.
        return cv2.divide(cv2.subtract(g, bg), cv2.max(cv2.min(cv2.subtract(255, bg), headroom), 64), scale=255)
    return cv2.subtract(255, cv2.divide(g, cv2.max(bg, 16), scale=255))


def thresholds(contrast: np.ndarray, cfg: DetectConfig) -> tuple[np.ndarray, np.ndarray]:
    """(weak, strong) ink masks, uint8 0/1: hysteresis keeps faint stroke ends attached to strong ink."""
    weak = cv2.threshold(contrast, int(cfg.low_contrast * 255), 1, cv2.THRESH_BINARY)[1]
    strong = cv2.threshold(contrast, int(cfg.high_contrast * 255), 1, cv2.THRESH_BINARY)[1]
    return weak, strong


def _spanning(lines: np.ndarray, frac: float, axis: int, band: int) -> np.ndarray:
    """Keep the line pieces that span `frac` of the frame along `axis` (0: x, 1: y), either as one connected
    piece (a tilted line) or together with the pieces in the same band of rows (a line interrupted where
    strokes cross it). Ruled lines cross the page; the side of a drawn box or an underline does not."""
    length = lines.shape[1 - axis]
    # Line pieces are few and sparse: label and smear only their bounding box, not the whole frame.
    x, y, bw, bh = cv2.boundingRect(lines)
    if bw == 0:
        return lines
    pieces = lines[y:y + bh, x:x + bw]
    n, labels, stats, _ = _label(pieces)
    extent = stats[:, cv2.CC_STAT_WIDTH] if axis == 0 else stats[:, cv2.CC_STAT_HEIGHT]
    keep = extent >= frac * length
    keep[0] = False
    out = keep[labels].astype(np.uint8)
    # Columns covered by line pixels within +-band rows: a thick line counts once, an interrupted one in full.
    smear = cv2.dilate(pieces, np.ones((2 * band + 1, 1) if axis == 0 else (1, 2 * band + 1), np.uint8))
    cover = smear.sum(axis=1 - axis)
    rows = (cover >= frac * length).astype(np.uint8)
    rows = rows[:, None] if axis == 0 else rows[None, :]
    spanning = np.zeros_like(lines)
    spanning[y:y + bh, x:x + bw] = cv2.bitwise_or(out, pieces * rows)
    return spanning


def _half(mask: np.ndarray, pool: bool = True) -> np.ndarray:
    """A 0/1 mask at half resolution, each 2x2 block with ink counted as ink (`pool`; else every other pixel)."""
    h, w = mask.shape
    pooled = cv2.dilate(mask, np.ones((2, 2), np.uint8), anchor=(1, 1)) if pool else mask
    return cv2.resize(pooled, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_NEAREST)


def remove_lines(mask: np.ndarray, cfg: DetectConfig) -> np.ndarray:
    """Subtract long horizontal and vertical runs (ruled and squared paper), then mend the strokes they cut.
    Lines are found at half resolution: they are long, so nothing is lost and it costs a quarter."""
    h, w = mask.shape
    # Every 2x2 block with ink is ink at half resolution: taking every other pixel alone broke a line one pixel
    # thin, tilted a little, into dashes too short to be found
    half = _half(mask, cfg.line_max_pool)
    hl = max(8, int(cfg.line_length_frac * w / 2))
    vl = max(8, int(cfg.vline_length_frac * h / 2))
    d = 2 * cfg.line_slant_px + 1
    # Smear across the line direction first: a tilted line becomes a band that holds a straight run;
    # AND with the ink afterwards keeps only the line's own pixels.
    smear_v = cv2.dilate(half, cv2.getStructuringElement(cv2.MORPH_RECT, (1, d)))
    smear_h = cv2.dilate(half, cv2.getStructuringElement(cv2.MORPH_RECT, (d, 1)))
    horiz = cv2.morphologyEx(smear_v, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (hl, 1)))
    vert = cv2.morphologyEx(smear_h, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, vl)))
    # A ruled line is thin across its direction; ink that is thick there (a letter's stem, a digit's stroke
    # crossing the line, text standing on one baseline) is writing, and stays.
    t = cfg.line_max_thickness_px
    thick_v = cv2.morphologyEx(half, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, t + 1)))
    thick_h = cv2.morphologyEx(half, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (t + 1, 1)))
    horiz = cv2.bitwise_and(_spanning(cv2.bitwise_and(horiz, half), cfg.line_span_frac, 0, cfg.line_slant_px), cv2.subtract(1, thick_v))
    vert = cv2.bitwise_and(_spanning(cv2.bitwise_and(vert, half), cfg.line_span_frac, 1, cfg.line_slant_px), cv2.subtract(1, thick_h))
    lines = cv2.bitwise_or(horiz, vert)
    if not cv2.countNonZero(lines):
        return mask
    lines = cv2.resize(cv2.dilate(lines, np.ones((3, 3), np.uint8)), (w, h), interpolation=cv2.INTER_NEAREST)
    cleaned = cv2.bitwise_and(mask, cv2.subtract(1, lines))
    # A stroke crossing a line was cut: bridge the cut vertically (or horizontally) inside the line's band only.
    b = cfg.line_bridge_px
    bridge = cv2.morphologyEx(cleaned, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (1, b)))
    bridge = cv2.bitwise_or(bridge, cv2.morphologyEx(cleaned, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (b, 1))))
    return cv2.bitwise_or(cleaned, cv2.bitwise_and(bridge, lines))


def _merge_groups(stats: np.ndarray, cfg: DetectConfig, typical: float = 0.0, frame=None, boxed: set | None = None
                  ) -> tuple[list[list[int]], list[list[int]]]:
    """Group component indices that are pieces of one digit (the detached bar of a 5, an open 4, a broken 0).
    Gaps and growth are measured against the taller piece or, when the frame holds several regions, their
    typical height: a 2 broken in two halves is merged like the writing around it. Returns the groups, and the
    groups the pieces form when each pair is judged by its own height alone (a finer partition of the same).
    `frame(i)`: piece i is a drawn box (see _is_frame); a piece wholly inside one is never merged with it, and is
    added to `boxed`."""
    boxed = set() if boxed is None else boxed
    n = len(stats)
    pairs, own = [], []
    boxes = stats[:, :4].astype(np.int64)
    order = np.argsort(boxes[:, 0])
    for a_pos in range(n):
        a = order[a_pos]
        ax, ay, aw, ah = boxes[a]
        for b in order[a_pos + 1:]:
            bx, by, bw, bh = boxes[b]
            if bx > ax + aw:
                break  # sorted by x: nothing further overlaps a in x
            overlap = min(ax + aw, bx + bw) - max(ax, bx)
            if overlap < cfg.merge_overlap * min(aw, bw):
                continue
            long_a, long_b = max(aw, ah), max(bw, bh)
            if max(long_a, long_b) > cfg.merge_max_size_ratio * min(long_a, long_b):
                continue  # a digit inside the outline of a page or a drawn frame is not a piece of it
            if cfg.underline_aspect and (_under(boxes[a], boxes[b], cfg.underline_aspect) or
                                         _under(boxes[b], boxes[a], cfg.underline_aspect)):
                continue  # ... nor a straight stroke lying under the other: an underline, no piece of a digit
            if frame is not None:  # ... nor one inside a box drawn round it on a form
                if strictly_inside(boxes[b], boxes[a]) and frame(a):
                    boxed.add(int(b))
                    continue
                if strictly_inside(boxes[a], boxes[b]) and frame(b):
                    boxed.add(int(a))
                    continue
            gap = max(by - (ay + ah), ay - (by + bh), 0)
            merged_h = max(ay + ah, by + bh) - min(ay, by)
            for tall, out in ((max(ah, bh), own), (max(ah, bh, typical), pairs)):
                if gap <= cfg.merge_gap * tall and merged_h <= cfg.merge_growth * tall:
                    out.append((a, b))
    return _groups(n, pairs), _groups(n, own) if len(own) < len(pairs) else None


def _groups(n: int, pairs) -> list[list[int]]:
    groups: dict[int, list[int]] = {}
    for i, root in enumerate(union_roots(n, pairs)):
        groups.setdefault(root, []).append(i)
    return list(groups.values())


def strictly_inside(inner, outer) -> bool:
    """Box (x, y, w, h) `inner` lies inside box `outer` with a margin on every side."""
    ix, iy, iw, ih = inner
    ox, oy, ow, oh = outer
    return bool(ox < ix and oy < iy and ix + iw < ox + ow and iy + ih < oy + oh)


def _under(top: np.ndarray, line: np.ndarray, aspect: float) -> bool:
    """Box `line` is a stroke at least `aspect` times wider than tall lying under box `top`, whose centre is over
    its middle 80% and which is at most 0.7 as wide: one digit of an underlined number (the side of a drawn box
    stands on the end of the box's bottom, the rest of the box is as wide as it)."""
    tx, ty, tw, th = top
    lx, ly, lw, lh = line
    centre = tx + tw / 2
    return bool(lw >= aspect * lh and ly >= ty + th - lh and lx + 0.1 * lw < centre < lx + 0.9 * lw
                and tw <= 0.7 * lw)


def _is_frame(labels: np.ndarray, stat: np.ndarray, label: int, cover: float) -> bool:
    """Region `label` (its stats row) of `labels` is a drawn box (drawn_box)."""
    x, y, w, h = (int(v) for v in stat[:4])
    return drawn_box((labels[y:y + h, x:x + w] == label).view(np.uint8), cover)


def drawn_box(mask: np.ndarray, cover: float) -> bool:
    """The ink of `mask` has a straight line along each side, within a twelfth of its box (at least 3 px) of the
    edge, inked over at least `cover` of that side: a box drawn on a form (which writing may touch, or cross a
    little), and no digit (the top rows of a bold 0 are a curve)."""
    h, w = mask.shape
    if h < 24 or w < 16:
        return False  # a box drawn round a digit is larger than a small digit, whose blur may fill its edges
    qh, qw = _side_band(h), _side_band(w)
    if not (mask[:qh, w // 2].any() and mask[-qh:, w // 2].any()):
        return False  # most regions: no line across the middle near the top or the bottom
    need_w, need_h = cover * w, cover * h
    return bool(mask[:qh].sum(axis=1).max() >= need_w and mask[-qh:].sum(axis=1).max() >= need_w
                and mask[:, :qw].sum(axis=0).max() >= need_h and mask[:, -qw:].sum(axis=0).max() >= need_h)


def _side_band(size: int) -> int:
    """How far in from an edge of a box (rows, or columns) its drawn side is looked for: a twelfth, 3 px at least."""
    return max(3, size // 12)


def frame_cells(crop: np.ndarray, cfg: DetectConfig) -> list[tuple[int, int, np.ndarray]] | None:
    """A region that is a drawn box (its ink along frame_min_side_cover of each side) with writing inside that
    touches it: the ink inside its sides, cut at the dividers of a comb (columns inked over 0.9 of the inside's
    height, as thin as its sides: frame_thin_dividers), per cell (dx, dy, mask) with its offset in the crop. None
    when it is no box or holds no writing."""
    h, w = crop.shape
    cover = cfg.frame_min_side_cover
    if not drawn_box(crop, cover):
        return None
    rows, cols = crop.mean(axis=1), crop.mean(axis=0)
    qh, qw = _side_band(h), _side_band(w)
    sides = [_side(rows[:qh]), _side(rows[::-1][:qh]), _side(cols[:qw]), _side(cols[::-1][:qw])]
    width = sorted(wd for _, wd in sides)[1] + 1  # the second narrowest: writing that touches a side widens it
    (top, _), (bottom, _), (left, _), (right, _) = sides
    y0, y1, x0, x1 = top + width, h - bottom - width, left + width, w - right - width
    if y1 <= y0 or x1 <= x0:
        return None
    inner = crop[y0:y1, x0:x1].copy()
    if cv2.countNonZero(inner) < cfg.min_area_px:
        return None
    dividers = inner.mean(axis=0) >= 0.9
    if cfg.frame_thin_dividers:
        _thin_dividers(dividers, max(sides[2][1], sides[3][1]))
    if dividers.any():
        dividers = cv2.dilate(dividers.astype(np.uint8)[None, :], np.ones((1, 3), np.uint8))[0] > 0
        inner[:, dividers] = 0
    cells = []
    edges = np.flatnonzero(np.diff(np.r_[0, (~dividers).astype(np.int8), 0]))  # runs of non-divider columns
    for a, b in zip(edges[::2], edges[1::2]):
        cell = inner[:, a:b]
        if cv2.countNonZero(cell) < cfg.min_area_px:
            continue
        ys, xs = np.nonzero(cell)
        sub = cell[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        if sub.shape[0] >= cfg.min_height_px:
            cells.append((int(x0 + a + xs.min()), int(y0 + ys.min()), np.ascontiguousarray(sub)))
    return cells or None


def _thin_dividers(dividers: np.ndarray, side: int) -> None:
    """In place: a comb's dividers are lines as thin as its sides (`side` px, + 2): a wider run of full columns
    is writing, a bold 1 standing from the top of its cell to the bottom."""
    for a, z in _true_runs(dividers):
        if z - a > side + 2:
            dividers[a:z] = False


def underline_cells(crop: np.ndarray, cfg: DetectConfig) -> list[tuple[int, int, np.ndarray]] | None:
    """A wide region (over 1.5x as wide as tall) whose bottom quarter holds a straight line inked over 0.8 of its
    width, thinner than a sixth of its height: a number underlined, the line touching it. The ink above the line,
    per connected region at least min_height_px tall, (dx, dy, mask) with its offset in the crop, when there are
    two or more; None otherwise."""
    h, w = crop.shape
    if w < 1.5 * h or h < 2 * cfg.min_height_px:
        return None
    q = max(3, h // 4)
    rows = crop[-q:].sum(axis=1) >= 0.8 * w
    if not rows.any():
        return None
    line = np.flatnonzero(rows)
    top = h - q + int(line[0])
    if h - top > h / 6:
        return None  # a thick bar: no pen's underline
    above = np.ascontiguousarray(crop[:max(0, top - 1)])
    n, labels, stats, _ = _label(above)
    cells = []
    for i in range(1, n):
        x, y, bw, bh, area = (int(v) for v in stats[i])
        if bh >= cfg.min_height_px and area >= cfg.min_area_px:
            cells.append((x, y, (labels[y:y + bh, x:x + bw] == i).view(np.uint8)))
    if len(cells) < 2 or any(m.shape[1] > 1.6 * m.shape[0] or  # a wide piece: the top of a drawn box
                             (4 * m.shape[1] <= m.shape[0] and (x <= 2 or x + m.shape[1] >= w - 2))  # its side
                             for x, _, m in cells):
        return None  # the rest of a drawn shape (a box open on one side), not digits on a line
    return cells


def _side(cover: np.ndarray) -> tuple[int, int]:
    """A drawn box's side, from a profile of how much of each row (or column) is inked, from the box's edge inwards
    over the band drawn_box looks in: where the side's line begins (the first row over half inked) and how wide
    it is."""
    runs = _true_runs(cover >= 0.5)
    if not runs:
        return 0, 1
    start, end = runs[0]
    return start, end - start


def union_roots(n: int, pairs) -> list[int]:
    """Join n items by the (i, j) pairs, in order (union-find with path halving); the root of each item."""
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        parent[find(int(i))] = find(int(j))
    return [find(i) for i in range(n)]


Holes = tuple[np.ndarray, np.ndarray, np.ndarray]  # (labels, stats, which labels are holes) of a mask's background


def _holes(mask: np.ndarray) -> Holes | None:
    """The background of a region's mask, labelled (4-connected), its label stats, and which labels are holes:
    enclosed by the ink, not reaching the mask's edge. None when the background is one piece."""
    h, w = mask.shape
    n, labels, stats, _ = cv2.connectedComponentsWithStats(1 - mask, connectivity=4)
    if n <= 2:
        return None
    x, y, bw, bh = (stats[:, i] for i in range(4))
    inner = (x > 0) & (y > 0) & (x + bw < w) & (y + bh < h)
    inner[0] = False
    return labels, stats, inner


def fill_pinholes_holes(mask: np.ndarray, cfg: DetectConfig) -> tuple[np.ndarray, Holes | None]:
    """fill_pinholes, and the holes of the filled mask (for loop_brightness, so nothing is labelled twice):
    filling a pinhole leaves every other background piece as it was, so they are the holes left unfilled."""
    holes = _holes(mask)
    if holes is None:
        return mask, None
    labels, stats, inner = holes
    h, w = mask.shape
    pinhole = inner & (stats[:, cv2.CC_STAT_AREA] < cfg.pinhole_frac * h * w)
    if not pinhole.any():
        return mask, holes
    return (mask | pinhole[labels]).astype(np.uint8), (labels, stats, inner & ~pinhole)


def fill_pinholes(mask: np.ndarray, cfg: DetectConfig) -> np.ndarray:
    """Fill holes far smaller than a digit's loops (grainy ink, glare on a blot), so a blot reads as solid
    and a stroke as one piece. The loops of 0, 6, 8 and 9 are several percent of the box and stay open."""
    return fill_pinholes_holes(mask, cfg)[0]


def median_u8(values: np.ndarray) -> float:
    """np.median of uint8 values, exactly (the mean of the two middle values when their count is even), by
    counting: several times faster than sorting for the few hundred pixels of a region."""
    n = len(values)
    lo, hi = ranked_u8(values, ((n - 1) // 2, n // 2))
    return (int(lo) + int(hi)) / 2


def surroundings(grey: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int]) -> tuple[float, float, float] | None:
    """Median brightness of a region's ink, and of the surface on either side of its main axis (second
    moments), in a rectangular ring around its box. None when the region or its ring is too small to tell."""
    x, y, w, h = box
    m = cv2.moments(mask, binaryImage=True)  # mask is uint8: an image (a float (N, 2) array would be taken for points)
    if m["m00"] < 10:
        return None
    cx, cy = m["m10"] / m["m00"], m["m01"] / m["m00"]
    theta = 0.5 * np.arctan2(2 * m["mu11"], m["mu20"] - m["mu02"])  # the main axis
    normal = (-np.sin(theta), np.cos(theta))  # across it
    pad = max(3, int(0.15 * max(w, h)))
    H, W = grey.shape
    x0, y0, x1, y1 = max(0, x - pad), max(0, y - pad), min(W, x + w + pad), min(H, y + h + pad)
    patch = grey[y0:y1, x0:x1]
    if patch.size - w * h < 20:  # the ring is the patch less the box
        return None
    # Signed distance of every patch pixel from the main axis, as an outer sum (no pixel coordinate lists).
    side = (np.arange(x0 - x, x1 - x) - cx)[None, :] * normal[0] + (np.arange(y0 - y, y1 - y) - cy)[:, None] * normal[1]
    ring = np.ones(patch.shape, bool)
    ring[y - y0:y - y0 + h, x - x0:x - x0 + w] = False
    a, b = patch[ring & (side < 0)], patch[ring & (side > 0)]
    if len(a) < 10 or len(b) < 10:
        return None
    ink = median_u8(grey[y:y + h, x:x + w][mask > 0])
    return ink, median_u8(a), median_u8(b)


def not_writing(grey: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int], cfg: DetectConfig,
                holes: Holes | None | bool = False) -> str | None:
    """Why the region is no writing, or None when it is. Writing is ink (dark on light; pass an inverted grey for
    light ink) with the same surface on both sides ("edge": the rim of a page, a desk or a shadow, one side much
    darker than the other), clearly darker than that surface ("faint": a sliver of paper between bold letters
    taken for light ink), whose loops show the paper ("dark loops": the rim of a blot, or of a stroke wider than
    half the paper window, see DetectConfig.fill_dark_loops). `holes`: the mask's, when known (loop_brightness)."""
    stats = surroundings(grey, mask, box)
    if stats is None:
        return None  # too small or at the frame's edge to judge: the other filters and the classifier decide
    ink, a, b = stats
    lo, hi = min(a, b), max(a, b)
    _, _, w, h = box
    compact = max(w, h) <= cfg.step_edge_compact_aspect * min(w, h)
    ink_ratio = max(cfg.step_edge_ink_ratio, cfg.step_edge_compact_ink_ratio) if compact else cfg.step_edge_ink_ratio
    if lo < cfg.step_edge_ratio * max(hi, 1.0) and ink >= ink_ratio * lo:
        return "edge"
    if ink > (1.0 - cfg.min_surround_contrast) * lo:
        return "faint"
    loop = loop_brightness(grey, mask, box, holes)
    return None if loop is None or loop >= ink + cfg.loop_paper_frac * (lo - ink) else "dark loops"


def _strokes_when_finer(grey: np.ndarray, cand: Candidate, cfg: DetectConfig, zoom: int = 3) -> bool:
    """A small region too thick for a stroke at its own size is drawn in strokes after all when its grey patch,
    binarised at `zoom` x (finer_mask), is not too thick there: at 20 px a digit's loops fill up as they are
    binarised, and a 0 or an 8 looks like a blot; a blot stays one."""
    fine = finer_mask(grey, cand, zoom)
    # Otsu's threshold lies half-way between ink and paper, where the camera's blur neither widens nor narrows a
    # stroke: no allowance for blur here (with one, a speck of 6 px passed as a stroke)
    return fine is not None and stroke_width(fine) / max(fine.shape) <= cfg.max_stroke_frac


def too_thick(mask: np.ndarray, cfg: DetectConfig) -> bool:
    """A blot or a shadow, not a pen stroke: its mean stroke, less the camera's blur, is over max_stroke_frac of
    the region's longer side."""
    return (stroke_width(mask) - cfg.stroke_blur_px) / max(mask.shape) > cfg.max_stroke_frac


def loop_brightness(grey: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int],
                    holes: Holes | None | bool = False) -> float | None:
    """Median brightness inside the region's loops (background enclosed by its ink), None without loops.
    Through the loop of a drawn 0 the paper shows; inside the rim of a blot the blot does. `holes`: the
    mask's holes when already labelled (None: it has none); by default they are labelled here."""
    x, y, w, h = box
    if holes is False:
        holes = _holes(mask)
    if holes is None or not holes[2].any():
        return None
    labels, _, inner = holes
    inside = grey[y:y + h, x:x + w][inner[labels]]
    return median_u8(inside) if len(inside) >= 10 else None


def polygon_fill(mask: np.ndarray) -> tuple[float, float] | None:
    """How much of the smallest enclosing triangle and of the smallest enclosing rectangle the region's outline
    fills, each as (enclosing area / outline area); None for a region without area. Both are affine invariant
    for an ellipse (1.65 and 1.27, whatever its aspect and slant): a hand-drawn 0 stays near them (no MNIST
    training 0 goes under 1.29 and 1.19), a triangle comes near 1.0 for the first, a box for the second."""
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    outline = max(contours, key=cv2.contourArea)
    area = cv2.contourArea(outline)
    if area <= 0 or len(outline) < 3:
        return None
    triangle = cv2.minEnclosingTriangle(outline.astype(np.float32))[0]
    _, (rw, rh), _ = cv2.minAreaRect(outline)
    return float(triangle / area), float(rw * rh / area)


def finer_mask(grey: np.ndarray, cand: Candidate, zoom: int = 3) -> np.ndarray | None:
    """A small candidate's ink at `zoom` x its resolution: its grey patch upscaled (cubic) and split by Otsu's
    threshold, keeping the pieces that overlap its mask. Binarising a digit 20 px tall at its own size closes
    the loops of 6, 8 and 9 and breaks thin strokes; binarising it upscaled keeps them. None when it fails."""
    found = finer_mask_at(grey, cand, zoom)
    return None if found is None else found[0]


def finer_mask_at(grey: np.ndarray, cand: Candidate, zoom: int = 3) -> tuple[np.ndarray, tuple[int, int]] | None:
    """finer_mask, and where its top-left pixel lies in the frame at `zoom` x (frame pixels = that / zoom)."""
    patch, own, (x0, y0) = _patch_at(grey, cand, max(2, cand.box[3] // 6))
    big = cv2.resize(patch, (patch.shape[1] * zoom, patch.shape[0] * zoom), interpolation=cv2.INTER_CUBIC)
    _, ink = cv2.threshold(big, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    own = cv2.resize(own, (big.shape[1], big.shape[0]), interpolation=cv2.INTER_NEAREST)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    if n <= 1:
        return None
    hits = np.bincount(labels[own > 0], minlength=n)
    keep = np.flatnonzero(hits[1:] > 0.2 * stats[1:, cv2.CC_STAT_AREA]) + 1
    if not len(keep):
        return None
    mask = _members(labels, keep)
    bx, by, bw, bh = cv2.boundingRect(mask)
    return (mask[by:by + bh, bx:bx + bw], (x0 * zoom + bx, y0 * zoom + by)) if bw and bh else None


def _patch_at(grey: np.ndarray, cand: Candidate, pad: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """The grey pixels around a candidate, `pad` px either side and clipped to the frame, ink darker than paper
    whatever its polarity; the candidate's mask placed in that patch; and the patch's top-left pixel."""
    x, y, w, h = cand.box
    H, W = grey.shape
    x0, y0, x1, y1 = max(0, x - pad), max(0, y - pad), min(W, x + w + pad), min(H, y + h + pad)
    patch = grey[y0:y1, x0:x1]
    if cand.polarity == "light":
        patch = 255 - patch
    own = np.zeros(patch.shape, np.uint8)
    own[y - y0:y - y0 + h, x - x0:x - x0 + w] = cand.mask
    return patch, own, (x0, y0)


def grey_patch_at(grey: np.ndarray, cand: Candidate, pad_frac: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """The grey pixels around a candidate (padded by `pad_frac` x its height), ink darker than paper whatever its
    polarity, and the candidate's mask placed in that patch: normalise.normalise_grey's input."""
    patch, own, _ = _patch_at(grey, cand, max(2, int(pad_frac * cand.box[3])))
    return patch, own


def _not_writing_shape(boxes: np.ndarray, frame: tuple[int, int], cfg: DetectConfig, piece: bool = False) -> np.ndarray:
    """Geometry alone says these regions (rows x, y, w, h) are not writing: too large, a rim or a cut-off edge,
    or (unless a region may still be a piece of a digit, like the flat bar of a 5) too flat."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    x0, y0, bw, bh = boxes.T
    h, w = frame
    x1, y1 = x0 + bw, y0 + bh
    out = (bh > cfg.max_height_frac * h) | (bw > cfg.max_height_frac * w)
    if not piece:
        out |= bw > cfg.max_aspect * bh
    margin = cfg.border_margin_frac * min(h, w) + 1
    touches = (x0 <= margin) | (y0 <= margin) | (x1 >= w - margin) | (y1 >= h - margin)
    aspect = np.maximum(bw, bh) / np.maximum(1, np.minimum(bw, bh))
    long_ = (bh > cfg.border_long_frac * h) | (bw > cfg.border_long_frac * w)
    out |= touches & (long_ | (aspect > cfg.border_max_aspect))
    longer = (bh > cfg.rim_length_frac * h) | (bw > cfg.rim_length_frac * w)
    longest = (bh > cfg.rim_long_frac * h) | (bw > cfg.rim_long_frac * w)
    out |= (aspect > cfg.rim_aspect) & ((longer & (aspect > cfg.rim_thin_aspect)) | longest)
    return out


def _label(mask: np.ndarray, stats: bool = True) -> tuple:
    """cv2.connectedComponentsWithStats (8-connected) with 16-bit labels unless there are more regions than 16 bits
    can count: on one thread it labels a 1280x720 frame ~3x faster than with 32-bit labels (2 against 6 ms), and the
    labels are the same. OpenCV raises before a label overflows; the frame is then labelled again with 32 bits.
    (Bounding the count by the ink instead, as before, sent most 1280x720 photos to 32 bits: a frame's weak mask
    holds more than 65,535 ink pixels far more often than 65,535 regions.) Without `stats`: (n, labels) only."""
    label = cv2.connectedComponentsWithStats if stats else cv2.connectedComponents
    try:
        return label(mask, connectivity=8, ltype=cv2.CV_16U)
    except cv2.error:
        return label(mask, connectivity=8, ltype=cv2.CV_32S)


def _union_box(stats: np.ndarray) -> tuple[int, int, int, int, int]:
    """Rows of connected-component stats (x, y, w, h, area) -> the (x, y, w, h, area) of their union."""
    x0, y0 = stats[:, 0].min(), stats[:, 1].min()
    x1, y1 = (stats[:, 0] + stats[:, 2]).max(), (stats[:, 1] + stats[:, 3]).max()
    return x0, y0, x1 - x0, y1 - y0, stats[:, 4].sum()


def _members(labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """uint8 0/1 mask of the pixels labelled with any of `ids` (a handful: one compare each beats np.isin)."""
    member = labels == ids[0]
    for i in ids[1:]:
        member |= labels == i
    return member.view(np.uint8)


def components(mask: np.ndarray, strong: np.ndarray, cfg: DetectConfig, polarity: str,
               grey: np.ndarray | None = None, bg: np.ndarray | None = None, unions: bool = False,
               doubtful: list | None = None) -> list[Candidate]:
    """Connected ink regions holding some strong ink, merged and filtered, each with its own mask
    (neighbours' ink excluded). With `unions`, pieces merged only by the typical height (DetectConfig.typical_unions)
    come back alone and as a union naming them in `parts`. `doubtful`, when given, gets the regions not_writing
    rejected for a reason in DetectConfig.doubtful, as candidates."""
    h, w = mask.shape
    n, labels, stats, _ = _label(mask)
    if n <= 1:
        return []
    pts = cv2.findNonZero(cv2.bitwise_and(strong, mask))  # strong ink is sparse: look up only its pixels
    if pts is None:
        return []
    pts = pts.reshape(-1, 2)  # (x, y) rows; OpenCV 4 returns (N, 1, 2), OpenCV 5 (N, 2)
    strong_count = np.bincount(labels[pts[:, 1], pts[:, 0]], minlength=n)
    stats = stats[1:]
    ids = np.arange(1, n)
    # Hysteresis: a region needs strong ink somewhere; single-pixel noise never helps a merge; and rims,
    # desks and page edges go before merging, so a digit on the page is never merged into one.
    keep = (stats[:, cv2.CC_STAT_AREA] >= 3) & (strong_count[1:] > 0)
    keep &= ~_not_writing_shape(stats[:, :4], (h, w), cfg, piece=True)
    stats, ids = stats[keep], ids[keep]
    sized = stats[(stats[:, cv2.CC_STAT_HEIGHT] >= cfg.min_height_px) & (stats[:, cv2.CC_STAT_AREA] >= cfg.min_area_px)]
    typical = float(np.median(sized[:, cv2.CC_STAT_HEIGHT])) if len(sized) >= 3 else 0.0
    cover = cfg.frame_min_side_cover
    is_frame = functools.cache(lambda i: _is_frame(labels, stats[i], ids[i], cover)) if cover else None
    boxed_pieces: set[int] = set()  # pieces inside a drawn box
    groups, own = _merge_groups(stats, cfg, typical, is_frame, boxed_pieces)
    union_of_groups: dict[int, list[int]] = {}  # a typical-only merge -> the groups its pieces form alone
    if unions and own is not None and len(own) != len(groups):
        root = np.empty(len(stats), np.int64)
        for k, group in enumerate(own):
            root[group] = k
        merged = [g for g in groups if len({int(root[i]) for i in g}) > 1]
        union_of_groups = {len(own) + k: sorted({int(root[i]) for i in g}) for k, g in enumerate(merged)}
        groups = own + merged
    boxes = np.array([_union_box(stats[group]) for group in groups], np.int64).reshape(-1, 5)
    # Size and shape of all merged regions at once: only the survivors reach the per-region tests below.
    x0s, y0s, bws, bhs, areas = boxes.T
    fits = (bhs >= cfg.min_height_px) & (areas >= cfg.min_area_px) & ~_not_writing_shape(boxes[:, :4], (h, w), cfg)
    ink_grey = None if grey is None else grey if polarity == "dark" else cv2.bitwise_not(grey)  # not_writing wants dark ink

    def made(k: int) -> Candidate | list[Candidate] | None:
        """Group k's candidate, if it passes the per-region tests; or, for a drawn box that writing touches or a line
        drawn under digits that touch it, the candidates of the writing without it (frame_cells, underline_cells)."""
        group = groups[k]
        x0, y0, bw, bh = (int(v) for v in boxes[k, :4])
        x1, y1 = x0 + bw, y0 + bh
        if bg is not None:  # the surface under it must suit the polarity (checked before the costlier tests)
            surface = float(bg[y0:y1, x0:x1].mean())
            if surface < cfg.dark_min_background if polarity == "dark" else surface > cfg.light_max_background:
                return None
        crop, holes = fill_pinholes_holes(_members(labels[y0:y1, x0:x1], ids[group]), cfg)
        if k not in union_of_groups:
            cells = (frame_cells(crop, cfg) if cfg.frame_strip and cfg.frame_min_side_cover else None) or \
                (underline_cells(crop, cfg) if cfg.underline_aspect else None)
            if cells:  # each cell's ink (or each region above the line) is a region of its own
                found = [made_from(k, (x0 + dx, y0 + dy, sub.shape[1], sub.shape[0]), sub, boxed=True)
                         for dx, dy, sub in cells]
                return [c for c in found if c is not None] or None
        return made_from(k, (x0, y0, bw, bh), crop, holes)

    def made_from(k: int, box: tuple[int, int, int, int], crop: np.ndarray, holes=None,
                  boxed: bool = False) -> Candidate | None:
        """made's tests on one region: its box and mask (`boxed`: a cell of a drawn box, or writing on a line)."""
        x0, y0, bw, bh = box
        if holes is None:
            crop, holes = fill_pinholes_holes(crop, cfg)
        if too_thick(crop, cfg) and not (bh < cfg.fine_thick_below_px and grey is not None
                                         and _strokes_when_finer(grey, Candidate((x0, y0, bw, bh), crop, polarity), cfg)):
            return None
        why = None if ink_grey is None else not_writing(ink_grey, crop, (x0, y0, bw, bh), cfg, holes)
        if why == "dark loops" and cfg.fill_dark_loops:
            # The rim of something dark inside: a blot, or the core of a stroke wider than half the paper window
            # (a marker digit held close to the camera). Filled, the stroke is writing; the blot is too thick.
            labels_h, _, inner = holes
            crop = (crop | inner[labels_h]).astype(np.uint8)
            if too_thick(crop, cfg):
                return None
        elif why is not None:
            if why in cfg.doubtful and doubtful is not None and k not in union_of_groups:
                doubtful.append(Candidate((x0, y0, bw, bh), crop, polarity))
            return None
        parts = tuple(tuple(int(v) for v in boxes[j, :4]) for j in union_of_groups.get(k, ()))
        boxed = boxed or bool(boxed_pieces & set(groups[k]))
        return Candidate((x0, y0, bw, bh), crop, polarity, parts, bool(parts), boxed)

    # A merge that fails the tests takes its pieces with it, as when they were only ever seen merged
    unions = {k: made(k) for k in union_of_groups if fits[k]}
    gone = {j for k, pieces in union_of_groups.items() if unions.get(k) is None for j in pieces}
    out: list[Candidate] = []
    for k in map(int, np.flatnonzero(fits)):
        c = None if k in gone else unions[k] if k in unions else made(k)
        if isinstance(c, list):
            out.extend(c)
        elif c is not None:
            out.append(c)
    if len(out) > cfg.max_candidates:
        out.sort(key=lambda c: -int(c.mask.sum()))
        out = out[:cfg.max_candidates]
    return out


def _touches(c: Candidate, o: Candidate) -> bool:
    """Some ink of `o` lies within a margin (a tenth of c's size, at least 2 px) of c's ink. Masks, not boxes: the
    paper seen between bold letters touches their strokes, but the rim of a page around a digit only surrounds it."""
    x, y, w, h = c.box
    m = max(2, int(0.1 * max(w, h)))
    ox, oy, ow, oh = o.box
    x0, y0, x1, y1 = max(x - m, ox), max(y - m, oy), min(x + w + m, ox + ow), min(y + h + m, oy + oh)
    if x1 <= x0 or y1 <= y0:
        return False
    near = cv2.dilate(cv2.copyMakeBorder(c.mask, m, m, m, m, cv2.BORDER_CONSTANT, value=0), np.ones((2 * m + 1, 2 * m + 1), np.uint8))
    near = near[y0 - (y - m):y1 - (y - m), x0 - (x - m):x1 - (x - m)]
    theirs = o.mask[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    return bool(cv2.countNonZero(cv2.bitwise_and(near, theirs)))


def _upright_stroke(c: Candidate, cfg: DetectConfig, by_rows: bool = True) -> float | None:
    """The stroke width of a thin, upright candidate (a "1" or a piece of a line): its median width along a row
    (its box's width without `by_rows`) at most line_piece_max_aspect of its height, its box at most
    line_piece_max_lean of its height wide; None for any other."""
    _, _, w, h = c.box
    across = float(np.median(c.mask.sum(axis=1))) if by_rows else w
    return None if across > cfg.line_piece_max_aspect * h or w > cfg.line_piece_max_lean * h else across


def continues_as_line(c: Candidate, ink: np.ndarray, cfg: DetectConfig) -> bool:
    """A thin, upright candidate (a "1") whose stroke runs on, straight, beyond one of its ends in `ink` (the mask
    before line removal): ink covers at least line_piece_cover of its axis from line_piece_gap to line_piece_reach
    of its height past that end. It is a piece of a longer line (a margin line cut where ruled lines crossed it, the side
    of a drawn box), not a stroke of its own; a 1 ends in paper, even on ruled paper (the line it may cross is
    crossed, not followed)."""
    x, y, w, h = c.box
    if h < cfg.line_piece_min_height_px or _upright_stroke(c, cfg, cfg.line_piece_tilted) is None:
        return False
    rows = np.flatnonzero(c.mask.any(axis=1))
    band = max(2, h // 8)
    top, bottom = rows[:band], rows[-band:]
    xt = x + float(np.nonzero(c.mask[top])[1].mean())
    xb = x + float(np.nonzero(c.mask[bottom])[1].mean())
    yt, yb = y + float(top.mean()), y + float(bottom.mean())
    dx = (xb - xt) / max(1.0, yb - yt)  # x per row along the stroke
    H, W = ink.shape
    grown = None
    for sign, (x0, y0) in ((-1, (xt, yt)), (1, (xb, yb))):
        t = np.arange(cfg.line_piece_gap * h, cfg.line_piece_reach * h) * sign
        ys = np.round(y0 + t).astype(np.int64)
        xs = np.round(x0 + t * dx).astype(np.int64)
        inside = (ys >= 0) & (ys < H) & (xs >= 0) & (xs < W)
        if inside.sum() < 0.5 * len(t):
            continue  # the frame ends there: nothing to tell
        if grown is None:
            x1, y1 = max(0, x - h), max(0, y - h)
            grown = (x1, y1, cv2.dilate(ink[y1:y + 2 * h, x1:x + w + h], np.ones((3, 3), np.uint8)))
        gx, gy, g = grown
        ys, xs = ys[inside] - gy, xs[inside] - gx
        ok = (ys >= 0) & (ys < g.shape[0]) & (xs >= 0) & (xs < g.shape[1])
        if ok.all() and g[ys, xs].mean() >= cfg.line_piece_cover:
            return True
    return False


def ends_on_lines(c: Candidate, lines: np.ndarray, cfg: DetectConfig, reach: int = 3) -> bool:
    """A thin, upright candidate (as in continues_as_line) whose stroke ends, at the top and at the bottom, within
    `reach` px of `lines` (the ruled lines remove_lines took, a 0/1 mask): the side of a drawn box whose top and
    bottom were taken as lines (DetectConfig.box_sides)."""
    x, y, w, h = c.box
    across = _upright_stroke(c, cfg)
    if across is None:
        return False
    rows = np.flatnonzero(c.mask.any(axis=1))
    # Straight, as a ruled side is: each row's centre of ink within max(2 px, the stroke's width) of a line through
    # them, leaning at most 0.2 (a curve of a 5 between two ruled lines is thin too)
    ys, xs = np.nonzero(c.mask[rows[0]:rows[-1] + 1])
    centre = np.bincount(ys, weights=xs) / np.maximum(np.bincount(ys), 1)
    inked = np.bincount(ys) > 0
    t = np.flatnonzero(inked)
    if len(t) < 3:
        return False
    slope, icpt = np.polyfit(t, centre[inked], 1)
    if abs(slope) > 0.2 or np.abs(centre[inked] - (slope * t + icpt)).max() > max(2.0, across):
        return False
    runs = ink_runs(c.mask[rows[0]:rows[-1] + 1], axis=1)
    if np.mean(runs[runs > 0] > 1) > cfg.box_side_two_run_rows:  # rows crossing ink twice: a loop
        return False
    H, W = lines.shape
    for row, step in ((rows[0], -1), (rows[-1], 1)):
        xs = np.flatnonzero(c.mask[row])
        x0, x1 = max(0, x + int(xs[0]) - reach), min(W, x + int(xs[-1]) + reach + 1)
        y0, y1 = sorted((y + int(row), y + int(row) + step * (reach + 1)))
        if not lines[max(0, y0):min(H, y1 + 1), x0:x1].any():
            return False
    return True


def _true_runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """The [start, end) index ranges of the runs of True in a 1-D boolean array."""
    d = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def strip_edge_lines(mask: np.ndarray, cover: float = 0.85, edge: float = 0.25, thick: float = 0.12,
                     shorter: float = 0.9) -> np.ndarray | None:
    """`mask` (uint8, ink > 0) without the straight lines along its edges, or None where it has none: what is left
    of a form's box or a ruled line, joined to the digit it touches or caught in its cell, up to the whole box
    round it. A line: a band of columns (rows) within `edge` of the mask's left or right side (top or bottom), at
    most `thick` of the other side and 2 px wide, each inked over `cover` of the mask's height (width), and longer
    than the writing: the ink left without the lines spans at most `shorter` of that height (width), so a digit's
    own stroke at its edge (a 1's, a 4's upright, a 7's bar, each as long as the digit) is no line. Upright and
    level lines are judged together: a box's sides hold its top and bottom, which are no writing either."""
    ink = (mask > 0).astype(np.uint8)
    if min(ink.shape) < 8:
        return None
    bands: dict[int, list[tuple[int, int]]] = {}
    for axis in (0, 1):  # 0: upright lines (columns inked down the mask), 1: level ones (rows)
        length, across = ink.shape[axis], ink.shape[1 - axis]
        full = ink.sum(axis=axis) >= cover * length
        bands[axis] = [(max(0, a - 1), min(across, b + 1)) for a, b in _true_runs(full)  # with the blurred rim
                       if b - a <= max(2, int(thick * length)) and (a <= edge * across or b >= (1 - edge) * across)]

    def without(axes) -> np.ndarray:
        rest = ink.copy()
        for axis in axes:
            for a, b in bands[axis]:
                if axis == 0:
                    rest[:, a:b] = 0
                else:
                    rest[a:b, :] = 0
        return rest

    def shorter_than_lines(rest: np.ndarray, axis: int) -> bool:
        on = np.flatnonzero(rest.any(axis=1 - axis))  # along the lines' length: where ink is left
        return len(on) > 0 and on[-1] + 1 - on[0] <= shorter * ink.shape[axis]

    axes = [axis for axis in (0, 1) if bands[axis]]
    while axes:
        rest = without(axes)
        kept = [axis for axis in axes if shorter_than_lines(rest, axis)]
        if kept == axes:
            return mask * rest  # the mask's own values where ink is left
        axes = kept
    return None


def strip_box_sides(cleaned: np.ndarray, taken: np.ndarray, found: Sequence[Candidate], cfg: DetectConfig,
                    reach: int = 3) -> tuple[np.ndarray, list[tuple[int, int, int, int]]] | None:
    """`cleaned` (remove_lines' output; `taken`, what it took) without the sides of boxes whose tops and bottoms
    remove_lines took (DetectConfig.box_side_runs), and the sides (top, bottom, x0, x1); None where there are
    none. A side: the columns of a straight upright run at least box_side_runs long that are inked all along it,
    whose two ends are within `reach` px of taken lines and stop there (_ends_at_lines), where two or more such
    runs rest on the same pair of lines and the lines end at the outer ones (_line_goes_on). A digit
    written touching a side then stands alone; a lone upright stroke from line to line (a 1 on ruled paper) is
    left as it is. Only around the regions `found` in `cleaned` that reach from a taken line to another (the
    search costs ~3 ms over a 1280x720 frame, and most frames have no such region), and not beyond them: a box
    drawn apart whose writing stands inside it is read by frame_cells (components), whole."""
    if not cfg.box_side_runs:
        return None
    H, W = cleaned.shape
    spans = [c.box for c in found if c.box[3] >= cfg.box_side_runs and _between_lines(c.box, taken, reach)]
    if not spans:
        return None
    mx, my = 2 * reach + 1, 4 * reach  # the lines above and below; sides a box of another region's would lose
    X0, Y0 = max(0, min(x for x, _, _, _ in spans) - mx), max(0, min(y for _, y, _, _ in spans) - my)
    X1, Y1 = min(W, max(x + w for x, _, w, _ in spans) + mx), min(H, max(y + h for _, y, _, h in spans) + my)
    return _strip_sides(cleaned, cv2.add(cleaned, taken), taken, (X0, Y0, X1, Y1), cfg, reach)


def in_cell(box: tuple[int, int, int, int], sides: Sequence[tuple[int, int, int, int]], reach: int = 3) -> bool:
    """Whether the centre of `box` stands between two neighbouring box sides (top, bottom, x0, x1) of one row, as
    strip_box_sides gives them: in a box of a form, its neighbours in the row one number with it."""
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    for top, bottom, _, right in sides:
        if not top - reach <= cy <= bottom + reach:
            continue
        after = [x0 for t, b, x0, _ in sides
                 if abs(t - top) <= reach + 2 and abs(b - bottom) <= reach + 2 and x0 >= right]
        if after and right <= cx <= min(after):
            return True
    return False


def _between_lines(box: tuple[int, int, int, int], taken: np.ndarray, reach: int) -> bool:
    """Whether `taken` (a 0/1 mask) has ink within `reach` px of both the top and the bottom of `box`, and within
    2 `reach` of its sides (a box's top starts beside its side, or beyond it where the side was mended across)."""
    x, y, w, h = box
    x0, x1 = max(0, x - 2 * reach), x + w + 2 * reach
    return bool(taken[max(0, y - reach - 1):y + reach + 2, x0:x1].any()
                and taken[max(0, y + h - reach - 2):y + h + reach + 1, x0:x1].any())


def _ends_at_lines(weak: np.ndarray, taken: np.ndarray, c0: int, c1: int, top: int, bottom: int, reach: int) -> bool:
    """Whether the upright run in columns c0..c1, rows top..bottom, stops at the taken lines at its ends, as a
    box's side does at its corners: past each line (the rows about the end with taken ink beside the run or ink
    across it, at most 3 `reach`), `weak` holds ink in at most a fifth of the run's columns over reach + 1 rows.
    A stroke of writing that crosses a ruled line goes on past it."""
    H = weak.shape[0]
    x0, x1 = max(0, c0 - 2 * reach), c1 + 2 * reach
    for row, step in ((top - 1, -1), (bottom, 1)):
        for _ in range(3 * reach):  # through the line, and the corner where the side meets it
            if not 0 <= row < H or not (taken[row, x0:x1].any() or weak[row, c0:c1].mean() >= 0.5):
                break
            row += step
        past = weak[max(0, min(row, row + step * reach)):max(0, max(row, row + step * reach) + 1), c0:c1]
        if past.size and past.any(axis=0).mean() > 0.2:
            return False
    return True


def _line_goes_on(taken: np.ndarray, row: int, left: int, right: int, h: int, reach: int) -> bool:
    """Whether the taken line at `row` goes on past `left` or `right` (the outer sides of a row of boxes h tall):
    ink in most columns of the rows about it, over max(2 reach, h / 2) beyond either side."""
    span = max(2 * reach, h // 2)
    band = taken[max(0, row - 2 * reach):row + 2 * reach + 1]
    for a, b in ((left - 2 * reach - span, left - 2 * reach), (right + 2 * reach, right + 2 * reach + span)):
        cols = band[:, max(0, a):max(0, b)]
        if cols.shape[1] >= span // 2 and cols.any(axis=0).mean() > 0.5:
            return True
    return False


def _strip_sides(cleaned: np.ndarray, weak: np.ndarray, taken: np.ndarray, window: tuple[int, int, int, int],
                 cfg: DetectConfig, reach: int) -> tuple[np.ndarray, list[tuple[int, int, int, int]]] | None:
    """strip_box_sides, its runs searched in `window` (x0, y0, x1, y1) of the frame."""
    L = cfg.box_side_runs
    X0, Y0, X1, Y1 = window
    vert = cv2.morphologyEx(cleaned[Y0:Y1, X0:X1], cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, L)))
    H, W = cleaned.shape
    n, labels, stats, _ = _label(vert)
    runs = []
    for i in np.flatnonzero(stats[1:, cv2.CC_STAT_HEIGHT] >= L) + 1:
        x, y, w, h, _ = (int(v) for v in stats[i])
        # the columns inked all along the run: a digit touching a side joins its upright run, over part of it
        full = _true_runs((labels[y:y + h, x:x + w] == i).sum(axis=0) >= 0.9 * h)
        x, y = X0 + x, Y0 + y  # in the frame
        for c0, c1 in full:
            c0, c1 = x + c0, x + c1
            if c1 - c0 > max(3, h // 6):
                continue  # a wide upright block is a stroke of writing, not a ruled side
            if (_between_lines((c0, y, c1 - c0, h), taken, reach)
                    and _ends_at_lines(weak, taken, c0, c1, y, y + h, reach)):
                # its blurred edges, inked over half of it, go with it
                while c0 > 0 and cleaned[y:y + h, c0 - 1].mean() >= 0.5:
                    c0 -= 1
                while c1 < W and cleaned[y:y + h, c1].mean() >= 0.5:
                    c1 += 1
                runs.append((y, y + h, c0, c1))
    # the runs on one pair of lines; a row of boxes' lines end at its outer sides, where ruled paper's go on (two
    # 1s written from line to line)
    sides = []
    for r in runs:
        row = [o for o in runs if abs(r[0] - o[0]) <= reach + 2 and abs(r[1] - o[1]) <= reach + 2]
        left, right = min(o[2] for o in row), max(o[3] for o in row)
        if len(row) >= 2 and not any(_line_goes_on(taken, e, left, right, r[1] - r[0], reach) for e in r[:2]):
            sides.append(r)
    if not sides:
        return None
    out = cleaned.copy()
    for y0, y1, c0, c1 in sides:
        out[max(0, y0 - reach - 1):min(H, y1 + reach + 1), max(0, c0 - 1):min(W, c1 + 1)] = 0
    # what remove_lines left of the tops and bottoms (a line broken between boxes apart is taken in part): the
    # runs at least box_side_runs long along each end's rows, across the row of sides
    left, right = min(r[2] for r in sides), max(r[3] for r in sides)
    horiz = cv2.getStructuringElement(cv2.MORPH_RECT, (L, 1))
    thick = cv2.getStructuringElement(cv2.MORPH_RECT, (1, 2 * cfg.line_max_thickness_px + 1))  # (half resolution)
    for end in sorted({r[0] for r in sides} | {r[1] for r in sides}):
        r0, r1 = max(0, end - 2 * reach - 1), min(H, end + 2 * reach + 2)
        band = out[r0:r1, left:right]  # a view: erased in place
        # thin runs only: a digit's bar lying on the line (a 7's top) is thick there, and stays
        thin = cv2.subtract(cv2.morphologyEx(band, cv2.MORPH_OPEN, horiz),
                            cv2.morphologyEx(band, cv2.MORPH_OPEN, thick))
        band[thin > 0] = 0
    return out, sides


def piece_unions(candidates: list[Candidate], faint: np.ndarray, cfg: DetectConfig) -> list[Candidate]:
    """Candidates that are pieces of one broken stroke: connected by faint ink (`faint`, a 0/1 mask binarised below
    the weak threshold, lines removed) though not by the weak ink they were cut from. Each group of 2 to
    union_max_pieces pieces, shaped like one digit, gives one union candidate naming its pieces by their boxes;
    the classifier then decides between the pieces and their union."""
    candidates = [c for c in candidates if not c.parts]
    if len(candidates) < 2:
        return []
    n, labels = _label(faint, stats=False)
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(candidates):
        x, y, w, h = c.box
        ids = labels[y:y + h, x:x + w][c.mask > 0]
        ids = ids[ids > 0]
        if len(ids):
            groups.setdefault(int(np.bincount(ids).argmax()), []).append(i)
    out = []
    for members in groups.values():
        if not 2 <= len(members) <= cfg.union_max_pieces:
            continue
        boxes = np.array([candidates[i].box for i in members])
        x0, y0 = boxes[:, 0].min(), boxes[:, 1].min()
        x1, y1 = (boxes[:, 0] + boxes[:, 2]).max(), (boxes[:, 1] + boxes[:, 3]).max()
        if x1 - x0 > cfg.union_max_aspect * (y1 - y0):
            continue  # a run of characters, not one digit
        out.append(union_of([candidates[i] for i in members]))
    return out


def union_of(pieces: list[Candidate]) -> Candidate:
    """One candidate of pieces (of one polarity): their union box, their masks laid together, the pieces named by
    their boxes in `parts`, so the reader takes it instead of them only when it reads as the surer digit."""
    x0, y0 = min(c.box[0] for c in pieces), min(c.box[1] for c in pieces)
    x1, y1 = max(c.box[0] + c.box[2] for c in pieces), max(c.box[1] + c.box[3] for c in pieces)
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for c in pieces:
        x, y, w, h = c.box
        mask[y - y0:y - y0 + h, x - x0:x - x0 + w] |= c.mask
    return Candidate((int(x0), int(y0), int(x1 - x0), int(y1 - y0)), mask, pieces[0].polarity,
                     tuple(c.box for c in pieces))


def find_candidates(image: np.ndarray, cfg: DetectConfig = DetectConfig()) -> tuple[list[Candidate], float]:
    """Image (BGR or grey uint8) -> candidates in processing pixels, and the scale (processing / input)."""
    candidates, scale, _ = candidates_and_grey(image, cfg)
    return candidates, scale


def candidates_and_grey(image: np.ndarray, cfg: DetectConfig = DetectConfig()
                        ) -> tuple[list[Candidate], float, np.ndarray]:
    """find_candidates, and the grey image at the processing scale it worked at (the candidates' pixels)."""
    return candidates_grey_doubtful(image, cfg)[:3]


def candidates_grey_doubtful(image: np.ndarray, cfg: DetectConfig = DetectConfig()
                             ) -> tuple[list[Candidate], float, np.ndarray, list[Candidate]]:
    """candidates_and_grey, and the doubtful regions: those not_writing rejected for a reason in
    DetectConfig.doubtful (a digit in a steep gradient of light looks like the edge of a shadow; the reader reads
    them only beside a digit). They are no candidates, and take no part in any other test."""
    grey = to_grey(image)
    h, w = grey.shape
    scale = min(1.0, cfg.max_side / max(h, w))
    if scale < 1.0:
        grey = cv2.resize(grey, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
    polarities = {"both": ("dark", "light"), "dark": ("dark",), "light": ("light",)}.get(cfg.polarity)
    if polarities is None:
        raise ValueError(f"polarity must be 'dark', 'light' or 'both', got {cfg.polarity!r}")
    candidates: list[Candidate] = []
    doubtful: list[Candidate] = []
    strongs: dict[str, np.ndarray] = {}
    bg = background(grey, cfg)
    view = None  # the coarse view (coarse_view), made once when needed
    for polarity in polarities:
        if polarity == "light":
            if not _has_board(bg[::8, ::8], cfg):
                continue  # no board-dark surface in the frame: chalk cannot be there, skip its work
            if cfg.board_kernel_frac:
                view = view or coarse_view(grey, cfg)
                small, _, wide, _ = view
                board = background(small, replace(wide, background_kernel_frac=cfg.board_kernel_frac))
                if not _has_board(board[::4, ::4], cfg):
                    continue  # dark only under thick strokes, for the fine window: no board
        contrast = ink_contrast(grey, bg, polarity == "light", cfg.light_headroom)
        weak, strong = thresholds(contrast, cfg)
        if cv2.countNonZero(strong) < cfg.min_area_px:
            continue  # no ink of this polarity (chalk on a page, pen on a board): skip its work
        if polarity == "light" and cfg.light_gate_slack and not _light_writing_possible(weak, strong, bg, cfg):
            continue
        strongs[polarity] = strong
        cleaned = remove_lines(weak, cfg)
        edges: list[Candidate] | None = [] if cfg.doubtful else None
        found = components(cleaned, strong, cfg, polarity, grey, bg, cfg.typical_unions, edges)
        taken = cv2.subtract(weak, cleaned) if found else None  # what remove_lines took
        lines_taken = bool(found) and cv2.countNonZero(taken) > 0  # (stripping sides only adds to what it took)
        if cfg.box_side_runs and lines_taken:
            stripped = strip_box_sides(cleaned, taken, found, cfg)
            if stripped is not None:
                cleaned, sides = stripped
                edges = [] if cfg.doubtful else None
                found = [replace(c, boxed=True) if in_cell(c.box, sides) else c
                         for c in components(cleaned, strong, cfg, polarity, grey, bg, cfg.typical_unions, edges)]
                taken = cv2.subtract(weak, cleaned)
        if cfg.line_piece_reach:
            found = [c for c in found if not continues_as_line(c, weak, cfg)]
        if cfg.box_sides and found and lines_taken:
            found = [c for c in found if not ends_on_lines(c, taken, cfg)]
        if cfg.union_contrast and len(found) >= 2:
            faint = cv2.threshold(contrast, int(cfg.union_contrast * 255), 1, cv2.THRESH_BINARY)[1]
            lines = cv2.dilate(taken, np.ones((3, 3), np.uint8))
            found += piece_unions(found, cv2.bitwise_and(faint, cv2.subtract(1, lines)), cfg)
        candidates.extend(found)
        doubtful += edges or []
    if cfg.coarse_min_height_frac and strongs:
        candidates += coarse_candidates(grey, candidates, strongs, cfg, view)
    return _resolve_polarity(candidates, grey.shape, cfg), scale, grey, doubtful


def _light_writing_possible(weak: np.ndarray, strong: np.ndarray, bg: np.ndarray, cfg: DetectConfig) -> bool:
    """A first look for the light-ink pass, at half resolution (each 2x2 block with ink is ink): whether some region
    of light ink with strong ink either is no rim or page edge by its shape, at least min_height_px / 2 tall, on a
    dark surface (its box's mean background at most light_max_background + light_gate_slack), or is one by its
    shape but lies on a dark, flat surface (the background under its pixels at most light_max_background -
    light_gate_range on average, within light_gate_range from its 10th to its 90th percentile): chalk digits
    written on a board's ruled lines, or on a line drawn under them, are one region with the lines. A page on a dark
    desk, or a page in shadow, passes the board test; its light "ink" is the halo along the page's edges, on the
    step from the desk to the page, and noise in the shadow, in rims and specks, and the pass's line removal and
    labelling (~5 ms at 1280x720) are skipped. (A piece, not a merged region: a chalk digit broken into pieces has
    one at least half its height.)"""
    half = _half(weak)
    n, labels, stats, _ = _label(half)
    if n <= 1:
        return False
    pts = cv2.findNonZero(cv2.bitwise_and(_half(strong), half))
    if pts is None:
        return False
    pts = pts.reshape(-1, 2)
    has_strong = np.bincount(labels[pts[:, 1], pts[:, 0]], minlength=n)[1:] > 0
    stats = stats[1:]
    rim = _not_writing_shape(stats[:, :4], half.shape, cfg, piece=True)
    small_bg = cv2.resize(bg, half.shape[::-1], interpolation=cv2.INTER_AREA)
    limit = cfg.light_max_background + cfg.light_gate_slack
    for x, y, bw, bh in stats[has_strong & ~rim & (stats[:, cv2.CC_STAT_HEIGHT] * 2 >= cfg.min_height_px / 2), :4]:
        if float(small_bg[y:y + bh, x:x + bw].mean()) <= limit:
            return True
    for k in np.flatnonzero(has_strong & rim):
        x, y, bw, bh = stats[k, :4]
        under = small_bg[y:y + bh, x:x + bw][labels[y:y + bh, x:x + bw] == k + 1]
        if float(under.mean()) > cfg.light_max_background - cfg.light_gate_range:
            continue
        low, high = np.percentile(under, (10, 90))
        if high - low <= cfg.light_gate_range:
            return True
    return False


def box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (x, y, w, h) boxes (0 for two empty boxes)."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union else 0.0


def _ink_within(c: Candidate, outer_box: tuple[int, int, int, int], grown: np.ndarray) -> float:
    """The fraction of c's ink that lies on `grown` (an outer region's mask, grown, in its box `outer_box`)."""
    ox, oy, ow, oh = outer_box
    x, y, w, h = c.box
    cut = np.zeros((h, w), np.uint8)  # outer's grown mask in c's box
    x0, y0, x1, y1 = max(x, ox), max(y, oy), min(x + w, ox + ow), min(y + h, oy + oh)
    if x0 < x1 and y0 < y1:
        cut[y0 - y:y1 - y, x0 - x:x1 - x] = grown[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    ink = cv2.countNonZero(c.mask)
    return cv2.countNonZero(cv2.bitwise_and(c.mask, cut)) / max(1, ink)


def edge_on_ink(c: Candidate, strong: np.ndarray, reach: int = 2) -> float:
    """The fraction of c's outline (its mask less its erosion) within `reach` px of `strong` ink."""
    x, y, w, h = c.box
    outline = cv2.subtract(c.mask, cv2.erode(c.mask, np.ones((3, 3), np.uint8)))
    near = cv2.dilate(strong[y:y + h, x:x + w], np.ones((2 * reach + 1, 2 * reach + 1), np.uint8))
    return cv2.countNonZero(cv2.bitwise_and(outline, near)) / max(1, cv2.countNonZero(outline))


def coarse_view(grey: np.ndarray, cfg: DetectConfig) -> tuple[np.ndarray, float, DetectConfig, np.ndarray]:
    """The frame at coarse resolution (long side coarse_max_side), its scale, the settings of the coarse pass (a
    paper window coarse_kernel_frac wide) and the paper's brightness under that window."""
    h, w = grey.shape
    f = min(1.0, cfg.coarse_max_side / max(h, w))
    small = cv2.resize(grey, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA) if f < 1 else grey
    wide = replace(cfg, background_kernel_frac=cfg.coarse_kernel_frac, background_scale=min(cfg.background_scale, 2),
                   min_height_px=max(cfg.min_height_px, int(cfg.coarse_min_height_frac * small.shape[0])))
    return small, f, wide, background(small, wide)


def coarse_candidates(grey: np.ndarray, found: list[Candidate], strongs: dict[str, np.ndarray],
                      cfg: DetectConfig, view: tuple[np.ndarray, float, DetectConfig, np.ndarray] | None = None
                      ) -> list[Candidate]:
    """Large writing looked for again at coarse resolution, with a paper window wide enough for strokes of any
    pen held close to the camera (DetectConfig.coarse_*). Each region at least coarse_min_height_frac of the frame
    tall comes back in processing pixels, unless `found` already holds it; the smaller regions of `found` whose ink
    it covers (the rims of its thick strokes, its pieces) become its `parts`, so the reader takes it instead of
    them only when it reads as a surer digit (as with piece_unions). `strongs`: the fine pass's strong ink per
    polarity (the polarities to look at); a region's outline must lie on it (coarse_min_edge_ink). `view`: the
    frame's coarse_view, when already made."""
    h, w = grey.shape
    small, f, wide, bg = view or coarse_view(grey, cfg)  # wide.min_height_px: small regions are skipped early
    sh, sw = small.shape
    min_stroke = cfg.coarse_min_stroke_frac * cfg.background_kernel_frac * max(h, w)  # in processing pixels
    margin = max(2, int(round(1 / f)))  # a coarse pixel
    grow = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
    out: list[Candidate] = []
    for polarity in strongs:
        if polarity == "light" and not _has_board(bg[::4, ::4], cfg):
            continue
        contrast = ink_contrast(small, bg, polarity == "light", cfg.light_headroom)
        weak, strong = thresholds(contrast, wide)
        if cv2.countNonZero(strong) < cfg.min_area_px:
            continue
        # Large writing in thick strokes has a piece at least half its height at this scale (a digit is one or two
        # strokes) that survives an erosion by most of the least stroke width wanted: most frames have none (pen
        # strokes vanish), and skip the costlier steps
        k = max(1, int(0.6 * cfg.coarse_min_stroke_frac * cfg.background_kernel_frac * max(sh, sw)))
        core = cv2.erode(weak, np.ones((k, k), np.uint8)) if k > 1 else weak
        _, _, stats, _ = _label(core)
        if 2 * (stats[1:, cv2.CC_STAT_HEIGHT].max(initial=0) + k) < wide.min_height_px:
            continue
        same = [o for o in found if o.polarity == polarity and not o.parts]
        # No line removal: at this scale ruled lines are faint, and thick strokes would pass for lines
        for c in components(weak, strong, wide, polarity, small, bg):
            if stroke_width(c.mask) / f < min_stroke:
                continue
            x, y, bw, bh = (int(round(v / f)) for v in c.box)
            bw, bh = max(1, min(bw, w - x)), max(1, min(bh, h - y))
            mask = (cv2.resize(c.mask.astype(np.float32), (bw, bh), interpolation=cv2.INTER_LINEAR) >= 0.5).astype(np.uint8)
            big = Candidate((x, y, bw, bh), mask, polarity)
            if edge_on_ink(big, strongs[polarity], max(margin, cfg.coarse_edge_reach_px)) < cfg.coarse_min_edge_ink:
                continue
            ink = cv2.countNonZero(mask)
            ious = [box_iou(o.box, big.box) for o in same]
            if any(iou >= cfg.coarse_same_iou and cv2.countNonZero(o.mask) >= cfg.coarse_hollow_frac * ink
                   for o, iou in zip(same, ious)):
                continue  # the fine pass found it whole (not just the rims of its strokes: those hold less ink)
            grown = cv2.dilate(mask, grow)
            parts = tuple(o.box for o, iou in zip(same, ious) if iou > 0 and _ink_within(o, big.box, grown) >= 0.5
                          and (o.box[2] * o.box[3] < bw * bh or iou >= cfg.coarse_same_iou))
            out.append(replace(big, parts=parts))
    return out


def _has_board(bg_sample: np.ndarray, cfg: DetectConfig) -> bool:
    """Enough of the frame (a subsample of its surface brightness) is board-dark for chalk (light ink) to be there."""
    return np.count_nonzero(bg_sample <= cfg.light_max_background) >= cfg.light_min_dark_frac * bg_sample.size


def merged_pieces(candidates) -> set[tuple[int, int, int, int]]:
    """The boxes of the pieces of merged unions (typical_unions): they stand for that one region."""
    return {b for c in candidates if c.merged for b in c.parts}


def _resolve_polarity(candidates: list[Candidate], frame: tuple[int, int], cfg: DetectConfig = DetectConfig(),
                      surface_frac: float = 0.15, surface_min_inside: int = 3) -> list[Candidate]:
    """Where the ink of a dark and a light region touches, one is the ink and the other the surface seen between
    or inside its strokes (paper between bold letters, the board inside a chalk 6): keep the larger. But a region over
    `surface_frac` of the frame with `surface_min_inside` or more regions of the other polarity inside its box
    is itself a surface (a light page on a dark desk, with the writing on it), and gives way to them; so is one
    with a single small stroke drawing inside it, when it is no stroke drawing itself (DetectConfig.surface_*),
    and a coarse region (coarse_candidates) made of such a surface."""
    if len({c.polarity for c in candidates}) < 2:
        return candidates
    h, w = frame

    def inside(outer: Candidate, c: Candidate) -> bool:
        ox, oy, ow, oh = outer.box
        cx, cy = c.box[0] + c.box[2] / 2, c.box[1] + c.box[3] / 2
        return ox <= cx <= ox + ow and oy <= cy <= oy + oh

    pieces = merged_pieces(candidates)  # counted as their merge, as one region

    def is_surface(c: Candidate) -> bool:
        if c.box[2] * c.box[3] < surface_frac * h * w:
            return False
        ins = [o for o in candidates if o.polarity != c.polarity and inside(c, o) and o.box not in pieces]
        if len(ins) >= surface_min_inside:
            return True
        small = cfg.surface_small_inside * c.box[2] * c.box[3]
        return max(c.box[2:]) >= cfg.surface_min_extent * stroke_width(c.mask) and any(
            o.box[2] * o.box[3] <= small and max(o.box[2:]) >= 4 * stroke_width(o.mask) for o in ins)

    surfaces = {id(c) for c in candidates if is_surface(c)}
    surfaces |= {id(c) for c in candidates if c.parts and any(o.box in c.parts for o in candidates
                                                             if id(o) in surfaces and not o.parts)}
    kept = []
    for c in candidates:
        if id(c) in surfaces:
            continue
        area = c.box[2] * c.box[3]
        bigger = [o for o in candidates if o.polarity != c.polarity and o.box[2] * o.box[3] > area
                  and id(o) not in surfaces]
        if not any(_touches(c, o) for o in bigger):
            kept.append(c)
    return kept


def ink_runs(mask: np.ndarray, axis: int) -> np.ndarray:
    """How many runs of ink (> 0) each column (axis 0) or row (axis 1) of a mask holds."""
    ink = (mask > 0).astype(np.int8)
    return np.count_nonzero(np.diff(ink, axis=axis, prepend=0) > 0, axis=axis)


def cut_cost(mask: np.ndarray) -> np.ndarray:
    """Per column, what cutting a candidate there costs: its ink, plus the height for a column crossing two
    strokes or more (inside a 0, a 6 or an 8: a loop costs more than any single stroke), smoothed over 3."""
    h = mask.shape[0]
    profile = (mask > 0).sum(axis=0).astype(np.float32)
    runs = ink_runs(mask, axis=0)
    return np.convolve(profile + np.where(runs >= 2, h, 0), np.ones(3, np.float32) / 3, mode="same")


def split_points(mask: np.ndarray, parts: int) -> list[int]:
    """Columns where a wide candidate should be cut into `parts` digits, near the equal divisions: where the
    ink is thinnest, and never through a loop (a column crossing two strokes is inside a 0, a 6 or an 8)."""
    w = mask.shape[1]
    cost = cut_cost(mask)
    cuts = []
    for k in range(1, parts):
        centre = int(round(k * w / parts))
        half = max(1, int(w / parts * 0.35))
        lo, hi = max(1, centre - half), min(w - 1, centre + half)
        if hi <= lo:
            return []
        cuts.append(lo + int(np.argmin(cost[lo:hi])))
    return cuts


def run_cut_points(mask: np.ndarray, most: int = 14, min_gap: float = 0.12) -> list[int]:
    """Where a run of touching digits might be cut, for a search over all ways to cut it (see
    Recognizer._run_hypotheses): the mask's first and last column, and between them up to `most` local minima of
    the column profile (smoothed over 3), at least min_gap x its height from either end and from each other,
    thinnest first. Sorted left to right."""
    h, w = mask.shape
    profile = np.convolve((mask > 0).sum(axis=0).astype(np.float32), np.ones(3, np.float32) / 3, mode="same")
    left, right = np.r_[np.inf, profile[:-1]], np.r_[profile[1:], np.inf]
    gap = min_gap * h
    minima = [int(x) for x in np.flatnonzero((profile <= left) & (profile <= right)) if gap <= x <= w - gap]
    out: list[int] = []
    for x in sorted(minima, key=lambda x: (profile[x], x)):
        if all(abs(x - o) >= gap for o in out):
            out.append(x)
            if len(out) == most:
                break
    return [0, *sorted(out), w]


def two_way_cuts(mask: np.ndarray, most: int = 3, lo_frac: float = 0.2) -> list[int]:
    """Up to `most` columns where a candidate might be cut into two digits: the lowest local minima of the cut
    cost (cut_cost, as split_points cuts) between lo_frac and 1 - lo_frac of its width, at least a tenth of the
    width apart, cheapest first. The classifier picks among them: two digits touching may meet where a column
    holds more ink than a thin stroke inside one of them (a 4's bar)."""
    w = mask.shape[1]
    cost = cut_cost(mask)
    lo, hi = max(1, int(lo_frac * w)), min(w - 1, int(round((1 - lo_frac) * w)))
    if hi - lo < 3:
        return []
    # minima of the whole profile (a plateau counts once, at its left end) that lie within the band
    left, right = np.r_[np.inf, cost[:-1]], np.r_[cost[1:], np.inf]
    minima = lo + np.nonzero(((cost < left) & (cost <= right))[lo:hi])[0]
    out: list[int] = []
    for x in minima[np.argsort(cost[minima], kind="stable")]:
        x = int(x)
        if all(abs(x - o) >= max(2, w // 10) for o in out):
            out.append(x)
            if len(out) == most:
                break
    return out


def cut_path(mask: np.ndarray, x: int, reach: int) -> np.ndarray:
    """The column to cut at in each row, near column `x`: the path from top to bottom that crosses the least ink,
    moving at most one column a row and never more than `reach` from x (dynamic programming; a slight pull
    towards x breaks ties, so a clean column stays straight). Two digits written overlapping, the tail of a 7
    under its neighbour, are parted along the paper between them, where no straight column runs."""
    h, w = mask.shape
    lo, hi = max(0, x - reach), min(w, x + reach + 1)
    n = hi - lo
    step = (mask[:, lo:hi] > 0).astype(np.float32) + 0.01 * np.abs(np.arange(lo, hi) - x).astype(np.float32)
    total = np.empty((h, n + 2), np.float32)  # the least cost of a path down to each pixel, padded either side
    total[:, 0] = total[:, -1] = np.inf
    total[0, 1:-1] = step[0]
    for y in range(1, h):
        prev, row = total[y - 1], total[y, 1:-1]
        np.minimum(prev[:-2], prev[1:-1], out=row)  # in place: no arrays made per row
        np.minimum(row, prev[2:], out=row)
        row += step[y]
    path = np.empty(h, np.int64)
    c = int(np.argmin(total[-1, 1:-1])) + 1
    rows = total.tolist()  # the walk back reads three numbers a row: Python floats, not a numpy call per row
    for y in range(h - 1, -1, -1):
        path[y] = c - 1
        if y:
            a, b, d = rows[y - 1][c - 1:c + 2]
            c += -1 if a <= b and a <= d else 0 if b <= d else 1  # the first least, as np.argmin picks
    return path + lo


def split_mask(mask: np.ndarray, cuts: list[int], reach: int = 0) -> list[tuple[int, np.ndarray]]:
    """Cut a mask at columns (or, with `reach`, along the cut_path near each column); returns (x offset, sub-mask)
    for each part with ink. The sub-mask spans the part's columns (along a path: trimmed to its ink's), all rows."""
    h, w = mask.shape
    if reach and cuts:
        paths = [np.full(h, 0)] + [cut_path(mask, c, reach) for c in cuts] + [np.full(h, w)]
        col = np.arange(w)[None, :]
        parts = []
        for a, b in zip(paths[:-1], paths[1:]):
            x0, x1 = int(a.min()), int(b.max())
            if x1 <= x0:
                continue
            keep = (col[:, x0:x1] >= a[:, None]) & (col[:, x0:x1] < b[:, None])
            sub = mask[:, x0:x1] * keep.astype(mask.dtype)
            if sub.any():
                xs = np.flatnonzero(sub.any(axis=0))
                parts.append((x0 + int(xs[0]), sub[:, xs[0]:xs[-1] + 1]))
        return parts
    edges = [0, *cuts, w]
    parts = []
    for a, b in zip(edges[:-1], edges[1:]):
        sub = mask[:, a:b]
        if sub.any():
            parts.append((a, sub))
    return parts
