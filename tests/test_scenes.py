"""benchmarks/scenes.py (photo-like scenes with truth) and the scoring of benchmarks/read.py."""
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import read as bench  # noqa: E402
from baselines import ClassicConfig, group_lines, mnist_normalise  # noqa: E402
from scenes import DEFAULT, KINDS, make_scene, scene_rng  # noqa: E402

from digitlens.reading import Digit, Number, Reading  # noqa: E402


@pytest.fixture(scope="module")
def mnist():
    from digitlens.data import DataError, load_mnist
    try:
        return load_mnist(mirrors=False)
    except DataError as e:
        pytest.skip(f"MNIST not cached: {e}")


# ---------------------------------------------------------------- the generator

def test_same_seed_same_scene_other_seed_other_scene(mnist):
    for kind in KINDS:
        a, ta = make_scene(kind, scene_rng(7, kind, 3), mnist=mnist)
        b, tb = make_scene(kind, scene_rng(7, kind, 3), mnist=mnist)
        c, tc = make_scene(kind, scene_rng(7, kind, 4), mnist=mnist)
        assert np.array_equal(a, b) and ta == tb
        assert a.shape != c.shape or not np.array_equal(a, c)


def test_kinds_produce_what_they_say(mnist):
    sizes = set()
    for i in range(8):
        img, t = make_scene("single", scene_rng(1, "single", i), mnist=mnist)
        assert len(t["numbers"]) == 1 and len(t["numbers"][0]) == 1 and len(t["digits"]) == 1
        assert str(t["digits"][0]["digit"]) == t["numbers"][0]
        sizes.add(img.shape)
        img, t = make_scene("numbers", scene_rng(1, "numbers", i), mnist=mnist)
        assert 1 <= len(t["numbers"]) <= 3 and all(2 <= len(n) <= 6 and n.isdigit() for n in t["numbers"])
        assert "".join(t["numbers"]) == "".join(str(d["digit"]) for d in t["digits"])
        img, t = make_scene("empty", scene_rng(1, "empty", i), mnist=mnist)
        assert t["numbers"] == [] and t["digits"] == []
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        assert t["size"] == [img.shape[1], img.shape[0]]
        sizes.add(img.shape)
    assert len(sizes) >= 3  # sizes vary


def test_empty_pages_are_not_blank(mnist):
    """Empty pages carry writing and doodles: local dark marks exist on most of them."""
    marked = 0
    for i in range(6):
        img, _ = make_scene("empty", scene_rng(2, "empty", i), mnist=mnist)
        grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
        background = cv2.medianBlur(grey.astype(np.uint8), 31).astype(np.float32)
        marked += int((np.abs(grey - background) > 40).sum() > 100)
    assert marked >= 4


def test_size_argument_and_bad_arguments(mnist):
    img, t = make_scene("numbers", scene_rng(0, "numbers", 0), mnist=mnist, size=(1280, 720))
    assert img.shape == (720, 1280, 3) and t["size"] == [1280, 720]
    with pytest.raises(ValueError, match="kind"):
        make_scene("letters", scene_rng(0, "numbers", 0), mnist=mnist)
    with pytest.raises(ValueError, match="split"):
        make_scene("single", scene_rng(0, "single", 0), mnist=mnist, split="validation")


def test_train_split_draws_other_digits(mnist):
    a, _ = make_scene("numbers", scene_rng(3, "numbers", 0), mnist=mnist, split="test")
    b, _ = make_scene("numbers", scene_rng(3, "numbers", 0), mnist=mnist, split="train")
    assert not np.array_equal(a, b)


def _ink_mask(img: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    background = cv2.medianBlur(grey, 51).astype(np.int16)
    return (background - grey.astype(np.int16)) > 45


def test_boxes_inside_the_image_and_on_the_ink(mnist):
    """With dark ink on plain paper and mild camera effects, the truth boxes hold the ink, tightly,
    after the perspective warp."""
    cfg = replace(DEFAULT, board_p=0.0, ruled_p=0.0, squared_p=0.0, distractor_p=0.0, shadow_p=0.0, jpeg_p=0.0,
                  noise_sigma=(0.5, 0.6), gauss_blur_sigma=(0.0, 0.1), motion_blur_p=0.0, low_res_p=0.0, desk_p=0.0,
                  digit_px=(40, 120))
    checked = 0
    for i in range(6):
        img, t = make_scene("numbers", scene_rng(4, "numbers", i), mnist=mnist, cfg=cfg)
        h, w = img.shape[:2]
        ink = _ink_mask(img)
        inside = np.zeros_like(ink)
        for d in t["digits"]:
            x, y, bw, bh = d["box"]
            assert 0 <= x and 0 <= y and bw > 0 and bh > 0 and x + bw <= w and y + bh <= h
            inside[y:y + bh, x:x + bw] = True
            box_ink = ink[y:y + bh, x:x + bw]
            if box_ink.sum() < 20:  # pencil too faint for this simple mask
                continue
            ys, xs = np.nonzero(box_ink)
            found = (x + xs.min(), y + ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
            assert bench.iou(found, d["box"]) > 0.6, (i, d, found)
            checked += 1
        # almost all ink lies in some truth box (the rest: specks of paper texture)
        assert ink[inside].sum() >= 0.9 * ink.sum(), i
    assert checked >= 10


def test_truth_is_in_reading_order(mnist):
    for i in range(10):
        _, t = make_scene("numbers", scene_rng(5, "numbers", i), mnist=mnist)
        k = 0
        spans = []
        for n in t["numbers"]:
            boxes = [d["box"] for d in t["digits"][k:k + len(n)]]
            k += len(n)
            xs = [b[0] + b[2] / 2 for b in boxes]
            assert xs == sorted(xs)  # left to right inside a number
            spans.append((min(b[0] for b in boxes), min(b[1] for b in boxes),
                          max(b[0] + b[2] for b in boxes), max(b[1] + b[3] for b in boxes)))
        for a, b in zip(spans, spans[1:]):
            same_line = min(a[3], b[3]) - max(a[1], b[1]) > 0
            assert (same_line and b[0] > a[2]) or b[1] > a[3] - 0.5 * (a[3] - a[1])


# ---------------------------------------------------------------- scoring

def _reading(digits: list[tuple[int, tuple[int, int, int, int]]], texts: list[str]) -> Reading:
    ds = tuple(Digit(d, 0.9, b, ((d, 0.9),)) for d, b in digits)
    k, numbers = 0, []
    for t in texts:
        numbers.append(Number(t, 0.9, (0, 0, 1, 1), tuple(range(k, k + len(t)))))
        k += len(t)
    return Reading(640, 480, tuple(numbers), ds)


TRUTH = {"numbers": ["12", "7"], "digits": [{"digit": 1, "box": [10, 10, 20, 40]}, {"digit": 2, "box": [40, 10, 20, 40]},
                                            {"digit": 7, "box": [10, 100, 20, 40]}]}


def test_iou():
    assert bench.iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert bench.iou((0, 0, 10, 10), (10, 0, 10, 10)) == 0.0
    assert bench.iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_exact_match_and_digit_matching():
    perfect = _reading([(1, (11, 11, 18, 38)), (2, (41, 9, 20, 42)), (7, (10, 100, 20, 40))], ["12", "7"])
    s = bench.score_reading(perfect, TRUTH)
    assert s["exact"] and s["tp"] == 3 and s["n_pred"] == 3 and s["located"] == 3
    joined = _reading([(1, (11, 11, 18, 38)), (2, (41, 9, 20, 42)), (7, (10, 100, 20, 40))], ["127"])
    assert not bench.score_reading(joined, TRUTH)["exact"]  # same digits, wrong grouping
    assert bench.failure_causes(joined, TRUTH) == ["grouping/order"]
    # a misread 2, a false digit far away, a missed 7
    bad = _reading([(1, (11, 11, 18, 38)), (3, (41, 9, 20, 42)), (4, (300, 300, 20, 40))], ["13", "4"])
    s = bench.score_reading(bad, TRUTH)
    assert not s["exact"] and s["tp"] == 1 and s["located"] == 2 and s["n_pred"] == 3
    assert set(bench.failure_causes(bad, TRUTH)) == {"missed digit", "false digit", "misread digit"}


def _probs(digit: int | None, p: float) -> np.ndarray:
    """Ten digits then "not a digit": `digit` at `p` (None: "not a digit" at p), the rest spread evenly."""
    out = np.full(11, (1 - p) / 10)
    out[10 if digit is None else digit] = p
    return out


def test_missed_digit_causes_one_per_digit_not_read():
    # the 1 read right; the 2 read as a 3; the 7 lost: each way the reader can lose it gives its own cause
    read = _reading([(1, (11, 11, 18, 38)), (3, (41, 9, 20, 42))], ["13"])
    one, misread = ((10, 10, 20, 40), _probs(1, 0.99)), ((40, 10, 20, 40), _probs(3, 0.99))
    cases = {
        "no region": [],
        "joined with a neighbour": [((5, 5, 60, 140), _probs(None, 0.9))],  # holds the 1's centre too
        "read as no digit": [((10, 100, 20, 40), _probs(None, 0.7))],
        "digit under the bar": [((10, 100, 20, 40), _probs(7, 0.6))],
        "sure digit dropped by a rule": [((12, 102, 18, 36), _probs(7, 0.95))],
    }
    for cause, seven in cases.items():
        got = bench.missed_digit_causes(read, TRUTH, [one, misread, *seven], min_confidence=0.8)
        assert got == {"misread as another digit": 1, cause: 1}, cause
        assert set(got) <= set(bench.MISS_CAUSES)
    perfect = _reading([(1, (11, 11, 18, 38)), (2, (41, 9, 20, 42)), (7, (10, 100, 20, 40))], ["12", "7"])
    assert bench.missed_digit_causes(perfect, TRUTH, []) == {}


def test_matching_rules_iou_centre_and_one_to_one():
    truth = [{"digit": 5, "box": [0, 0, 100, 100]}]
    # small box centred inside the digit: IoU 0.04, but its centre is inside -> a match
    assert bench.match_digits([(5, (45, 45, 20, 20))], truth) == [(0, 0)]
    # overlapping by IoU >= 0.3 with the centre outside -> a match
    assert bench.match_digits([(5, (40, -50, 100, 110))], truth) == [(0, 0)]
    # barely touching, centre outside -> none; wrong value -> none unless same_value=False
    assert bench.match_digits([(5, (90, 90, 100, 100))], truth) == []
    assert bench.match_digits([(6, (0, 0, 100, 100))], truth) == []
    assert bench.match_digits([(6, (0, 0, 100, 100))], truth, same_value=False) == [(0, 0)]
    # two predictions on one digit: one true positive, the other a false positive; the better box wins
    assert bench.match_digits([(5, (30, 30, 40, 40)), (5, (2, 2, 98, 98))], truth) == [(1, 0)]


def test_summarise_counts_empty_pages_and_rates():
    rows = [
        {"kind": "single", "exact": True, "n_pred": 1, "n_truth": 1, "tp": 1, "located": 1, "ms": 10.0},
        {"kind": "numbers", "exact": False, "n_pred": 4, "n_truth": 5, "tp": 3, "located": 4, "ms": 30.0},
        {"kind": "empty", "exact": True, "n_pred": 0, "n_truth": 0, "tp": 0, "located": 0, "ms": 20.0},
        {"kind": "empty", "exact": False, "n_pred": 3, "n_truth": 0, "tp": 0, "located": 0, "ms": 20.0},
    ]
    s = bench.summarise(rows)
    assert s["per_kind"]["empty"] == {"scenes": 2, "exact": 0.5, "false_digits_per_page": 1.5, "pages_read_empty": 0.5}
    assert s["per_kind"]["numbers"]["precision"] == 0.75 and s["per_kind"]["numbers"]["recall"] == 0.6
    assert s["per_kind"]["numbers"]["located_recall"] == 0.8
    assert s["digit_precision"] == 4 / 5 and s["digit_recall"] == 4 / 6
    assert s["exact"] == 0.5 and s["median_ms_all_scenes"] == 20.0 and s["images_per_s"] == pytest.approx(4 / 0.08)


# ---------------------------------------------------------------- the classic baseline's pure parts

def test_mnist_normalise_fits_20_and_centres_mass():
    mask = np.zeros((100, 40), np.uint8)
    mask[10:90, 15:25] = 255  # a tall bar: a "1"
    crop = mnist_normalise(mask)
    ys, xs = np.nonzero(crop > 64)
    assert crop.shape == (28, 28) and 18 <= ys.max() - ys.min() + 1 <= 21
    m = cv2.moments(crop.astype(np.float32))
    assert abs(m["m10"] / m["m00"] - 14) < 1 and abs(m["m01"] / m["m00"] - 14) < 1


def test_group_lines_orders_lines_and_splits_numbers():
    def d(v, x, y):
        return Digit(v, 0.9, (x, y, 20, 40), ((v, 0.9),))
    digits = [d(3, 200, 102), d(1, 10, 10), d(9, 35, 12), d(4, 10, 100), d(8, 100, 8)]
    ordered, numbers = group_lines(digits, ClassicConfig())
    assert [n.text for n in numbers] == ["19", "8", "4", "3"]
    assert [o.digit for o in ordered] == [1, 9, 8, 4, 3]
    assert numbers[0].digits == (0, 1)


def test_shrink_scales_the_scene_and_its_truth():
    from read import shrink

    image = np.zeros((480, 640, 3), np.uint8)
    truth = {"kind": "numbers", "size": [640, 480], "numbers": ["42"],
             "digits": [{"digit": 4, "box": [100, 50, 30, 60]}, {"digit": 2, "box": [140, 50, 30, 60]}]}
    small, t = shrink(image, truth, 0.5)
    assert small.shape == (240, 320, 3) and t["size"] == [320, 240] and t["numbers"] == ["42"]  # size is [w, h]
    assert t["digits"][1] == {"digit": 2, "box": [70, 25, 15, 30]}
    assert truth["digits"][1]["box"] == [140, 50, 30, 60]  # the original is left as it was
