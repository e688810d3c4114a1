"""benchmarks/other_hand.py: its compositor draws what it says, and a tiny run writes the report."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import other_hand  # noqa: E402


@pytest.fixture(scope="module")
def pool():
    """MNIST test digits by label, or a skip when MNIST is not cached."""
    from digitlens.data import DataError, load_mnist
    try:
        m = load_mnist(mirrors=False)
    except DataError as e:
        pytest.skip(f"MNIST not cached: {e}")
    return [m.x_test[m.y_test == d] for d in range(10)]


@pytest.mark.parametrize("source", other_hand.SOURCES)
def test_every_category_writes_its_number(pool, source):
    digits = pool if source == "mnist" else None
    for category in other_hand.CATEGORIES:
        shot = other_hand.write(other_hand.image_rng(5, category, 0), category, digits)
        again = other_hand.write(other_hand.image_rng(5, category, 0), category, digits)
        assert np.array_equal(shot.image, again.image) and shot.text == again.text, category  # seeded
        half = category in ("webcam", "noisy")  # a 320x240 camera
        assert shot.image.shape == ((240, 320, 3) if half else (480, 640, 3)), category
        assert shot.image.dtype == np.uint8
        if category == "marks":  # the numbers of a sum or a time of day, apart
            assert all(n.isdigit() for n in shot.text.split()) and len(shot.text.split()) in (2, 3)
        else:
            assert shot.text.isdigit() and 1 <= len(shot.text) <= 4
        grey = cv2.cvtColor(shot.image, cv2.COLOR_BGR2GRAY).astype(np.float32)
        assert grey.std() > 1, category  # not a uniform page
        x, y, w, h = shot.box
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= grey.shape[1] and y + h <= grey.shape[0]
        written = grey[y:y + h, x:x + w]
        # ink where the number was written: a far wider spread than the page's noise (p99 - p1 about 13)
        assert np.percentile(written, 99) - np.percentile(written, 1) > 25, category
        dark = np.percentile(written, 1) < np.median(grey) - 20
        light = np.percentile(written, 99) > np.median(grey) + 20
        assert light if category == "board" else dark, category  # chalk is lighter than the board, ink darker


def test_a_tiny_run_writes_the_report(pool, tmp_path):
    out = tmp_path / "other-hand.json"
    fails = tmp_path / "fails"
    assert other_hand.main(["--n", "2", "--categories", "plain,hugemarker", "--out", str(out),
                            "--save-failures", str(fails)]) == 0
    report = json.loads(out.read_text())
    assert {"benchmark", "command", "machine", "source", "seed", "n_per_category", "categories", "overall",
            "note"} <= set(report)
    assert report["source"] == "mnist" and report["seed"] == 2026 and report["n_per_category"] == 2
    assert "--n 2" in report["command"]
    assert list(report["categories"]) == ["plain", "hugemarker"]
    for r in report["categories"].values():
        for name in ("current", "before"):
            assert set(r[name]) == {"exact", "n", "median_ms"} and r[name]["n"] == 2
            assert 0 <= r[name]["exact"] <= 1 and r[name]["median_ms"] > 0
    assert set(report["overall"]) == {"current", "before"}
    assert "test split" in report["note"] and "seed 11" in report["note"]
    assert fails.is_dir()
