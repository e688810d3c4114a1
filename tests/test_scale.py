"""Digits held close to the camera: strokes far wider than a pen's at reading distance must still read."""
from __future__ import annotations

import cv2
import numpy as np
import pytest


def big_digit(img28: np.ndarray, frame: tuple[int, int], frac: float) -> np.ndarray:
    """An MNIST digit written as dark ink, frac of the frame's height tall, in the middle of a blank page."""
    h, w = frame
    ys, xs = np.nonzero(img28 > 60)
    crop = img28[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    s = frac * h / crop.shape[0]
    glyph = cv2.resize(crop, (max(2, int(crop.shape[1] * s)), int(frac * h)), interpolation=cv2.INTER_CUBIC)
    page = np.full((h, w, 3), 225, np.uint8)
    y0, x0 = (h - glyph.shape[0]) // 2, (w - glyph.shape[1]) // 2
    a = glyph.astype(np.float32)[..., None] / 255
    region = page[y0:y0 + glyph.shape[0], x0:x0 + glyph.shape[1]]
    page[y0:y0 + glyph.shape[0], x0:x0 + glyph.shape[1]] = (region * (1 - a) + 30 * a).astype(np.uint8)
    return page


@pytest.mark.parametrize("frac", [0.5, 0.75])
def test_a_digit_filling_most_of_the_frame_is_read(core_reader, core_mnist, frac):
    # Strokes ~30-45 px wide at 640x480: wider than half the paper-brightness window of a frame this size,
    # which used to take the stroke's middle for paper and leave two thin outlines.
    wrong = []
    for idx in range(12):
        page = big_digit(core_mnist.x_test[idx], (480, 640), frac)
        text = core_reader.read(page).text
        if text != str(int(core_mnist.y_test[idx])):
            wrong.append((int(core_mnist.y_test[idx]), text))
    assert len(wrong) <= 1, wrong


@pytest.mark.parametrize("frac", [0.3, 0.45])
def test_a_tall_one_held_close_is_a_one_and_a_long_thin_line_is_not(core_reader, frac):
    h = int(frac * 480)
    y0 = (480 - h) // 2
    for width in (8, 20):  # a pen's or a marker's 1, a third to nearly half the frame tall
        page = np.full((480, 640, 3), 225, np.uint8)
        cv2.line(page, (320, y0), (317, y0 + h), (30, 30, 30), width, cv2.LINE_AA)
        assert core_reader.read(page).text == "1", (frac, width)
    page = np.full((480, 640, 3), 225, np.uint8)
    cv2.line(page, (320, 10), (320, 470), (90, 90, 200), 2, cv2.LINE_AA)  # a notebook's margin line
    cv2.line(page, (480, y0), (480, y0 + h), (90, 90, 200), 2, cv2.LINE_AA)  # a long hairline
    assert core_reader.read(page).digits == ()


def test_tight_crops_and_mnist_images_are_read(core_reader, core_mnist):
    # What people upload to a digit reader: an MNIST image as it is (28x28, white on black), or one digit
    # cropped tight, its ink against the image's edges. Read on paper around them.
    wrong = {"mnist 28x28": 0, "tight crop": 0}
    for idx in range(30):
        img, label = core_mnist.x_test[idx], str(int(core_mnist.y_test[idx]))
        big = cv2.resize(255 - img, (280, 280), interpolation=cv2.INTER_CUBIC)
        ys, xs = np.nonzero(big < 195)
        tight = big[max(0, ys.min() - 3):ys.max() + 4, max(0, xs.min() - 3):xs.max() + 4]
        for name, image in (("mnist 28x28", img), ("tight crop", tight)):
            reading = core_reader.read(image)
            wrong[name] += reading.text != label
            for d in reading.digits:  # boxes in the input's own pixels
                x, y, w, h = d.box
                assert 0 <= x and 0 <= y and x + w <= image.shape[1] and y + h <= image.shape[0], (name, d.box)
    assert all(v <= 4 for v in wrong.values()), wrong


def test_only_small_images_that_read_as_nothing_get_a_second_look(core_reader, monkeypatch):
    calls = []
    real = core_reader._read
    monkeypatch.setattr(core_reader, "_read", lambda image, **kw: calls.append(image.shape) or real(image, **kw))
    core_reader.read(np.full((480, 640, 3), 225, np.uint8))  # an empty live frame: one read
    assert len(calls) == 1
    calls.clear()
    core_reader.read(np.full((120, 90, 3), 225, np.uint8))  # an empty small image: a second look, scaled up, on paper
    assert len(calls) == 2 and calls[1][0] == 2 * 256 and calls[1][1] == 2 * 192
