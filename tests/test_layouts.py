"""benchmarks/layouts.py: its pages hold what their truth says, in reading order, and a tiny run writes the report."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import layouts  # noqa: E402


@pytest.fixture(scope="module")
def pool(core_mnist):
    """MNIST training digits by label."""
    return [core_mnist.x_train[core_mnist.y_train == d] for d in range(10)]


@pytest.mark.parametrize("source", ["mnist", "font"])
@pytest.mark.parametrize("layout", layouts.LAYOUTS)
def test_every_layout_writes_its_numbers(pool, source, layout):
    digits = pool if source == "mnist" else None
    for index in range(3):
        page = layouts.write(layouts.page_rng(5, layout, index), layout, digits)
        again = layouts.write(layouts.page_rng(5, layout, index), layout, digits)
        assert np.array_equal(page.image, again.image) and page.numbers == again.numbers  # seeded
        assert page.image.shape == (layouts.SIZE[1], layouts.SIZE[0], 3) and page.image.dtype == np.uint8
        assert page.numbers and all(n.isdigit() and 1 <= len(n) <= 4 for n in page.numbers)
        if layout == "grid":  # single digits 1-9, a third of 81 cells at most
            assert all(len(n) == 1 and n != "0" for n in page.numbers) and len(page.numbers) <= 27
        grey = cv2.cvtColor(page.image, cv2.COLOR_BGR2GRAY)
        assert np.percentile(grey, 0.5) < np.median(grey) - 60  # dark ink on a light page


def test_a_level_page_written_plainly_reads_in_its_truths_order(pool):
    """On an unturned page the reader finds a table's numbers in the order the truth lists them: rows top to
    bottom, each left to right (the truth and the reading agree on what reading order is)."""
    from digitlens import Recognizer
    from digitlens.recognizer import GroupConfig, ReaderConfig

    right = {}
    for rows in (True, False):  # (off: numbers not linked into one line sorted by height alone, as before)
        reader = Recognizer.load(config=ReaderConfig(group=GroupConfig(rows=rows), intra_op_threads=1))
        right[rows] = 0
        for index in range(6):
            page = layouts.write(layouts.page_rng(11, "table", index), "table", None, max_angle=0.0)  # printed
            right[rows] += " ".join(n.text for n in reader.read(page.image).numbers) == " ".join(page.numbers)
    assert right[True] >= 4 and right[False] < right[True], right


def test_a_tiny_run_writes_the_report(tmp_path):
    out = tmp_path / "layouts.json"
    fails = tmp_path / "fails"
    assert layouts.main(["--source", "font", "--n", "2", "--layouts", "table", "--seed", "3", "--out", str(out),
                         "--save-failures", str(fails)]) == 0
    report = json.loads(out.read_text())
    assert {"benchmark", "command", "machine", "source", "seed", "n_per_layout", "layouts", "note"} <= set(report)
    assert report["benchmark"] == "layouts" and report["seed"] == 3 and list(report["layouts"]) == ["table"]
    for name in ("current", "before"):
        r = report["layouts"]["table"][name]
        assert r["n"] == 2 and 0 <= r["exact"] <= r["same_digits"] <= 1 and r["median_ms"] > 0
    saved = sorted(p.name for p in fails.iterdir())  # each miss: its picture and what was read
    assert len(saved) == 2 * round(2 * (1 - report["layouts"]["table"]["current"]["exact"]))


def test_development_runs_refuse_the_benchmark_seed():
    with pytest.raises(SystemExit):
        layouts.main(["--source", "mnist-train", "--n", "1"])
    with pytest.raises(SystemExit):
        layouts.main(["--layouts", "spiral"])
