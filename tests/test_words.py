"""The word rule: "digits" written among letters are letters (the O of FOOD), digits beside a stray mark are not."""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from digitlens.reading import Digit
from digitlens.recognizer import ClassifyConfig, ReaderConfig, drop_stroke_runs, drop_words, group_numbers


def digit(value: int, box: tuple[int, int, int, int]) -> Digit:
    return Digit(value, 0.95, box, ((value, 0.95),))


def test_a_digit_inside_a_word_is_dropped():
    # F O O D: the model took the two O's for 0s and rejected F and D
    o1, o2 = digit(0, (140, 100, 36, 50)), digit(0, (184, 100, 36, 50))
    letters = [(100, 100, 32, 50), (228, 100, 34, 50)]
    assert drop_words([o1, o2], letters) == []


def test_a_number_with_one_unreadable_digit_keeps_the_rest():
    digits = [digit(d, (100 + 45 * i, 200, 36, 50)) for i, d in enumerate((4, 1, 6)) if i != 1]
    digits.append(digit(7, (100 + 45 * 3, 200, 36, 50)))
    rejected = [(145, 200, 36, 50)]  # the second digit, unreadable
    assert drop_words(digits, rejected) == digits


def test_marks_that_are_not_letters_do_not_make_a_word():
    five = digit(5, (300, 300, 40, 60))
    bar = (300, 285, 40, 8)  # the detached bar of the 5, far shorter than it: not a letter beside it
    underline = (280, 365, 200, 6)  # a line under the number
    far_word = [(420, 300, 30, 60), (455, 300, 30, 60)]  # a word a whole digit-width away
    assert drop_words([five], [bar, underline, *far_word]) == [five]


def test_letters_on_another_line_or_of_another_size_do_not_count():
    two = digit(2, (100, 100, 40, 60))
    above = (145, 20, 30, 60)  # beside it but a line higher
    tiny = (145, 140, 12, 18)  # a small mark at its foot
    assert drop_words([two], [above, tiny]) == [two]


def test_rule_can_be_turned_off():
    o = digit(0, (140, 100, 36, 50))
    off = ClassifyConfig(word_max_aspect=0.0)
    assert drop_words([o], [(100, 100, 32, 50)], off) == [o]


@pytest.mark.parametrize("text", ["HELLO WORLD", "NO ENTRY"])
def test_printed_words_with_round_letters_give_no_digits(core_reader, text):
    # Without the rule the O's read as 0s (and the T of ENTRY as a 7). Its limit: a word whose letters are
    # mostly digit-like ("Solo", "ballot") still reads as digits; that needs more than one character's shape.
    page = np.full((300, 1000, 3), 228, np.uint8)
    cv2.putText(page, text, (40, 180), cv2.FONT_HERSHEY_SIMPLEX, 2.5, (35, 35, 35), 6)
    assert core_reader.read(page).digits == ()


def test_parallel_strokes_are_not_a_run_of_ones():
    cfg = ReaderConfig()
    hatching = [digit(1, (200 + 12 * k, 100, 6, 120)) for k in range(9)]  # hatching, a fence, a barcode
    short_run = [digit(1, (600 + 40 * k, 100, 12, 100)) for k in range(2)]  # "11" is a number
    mixed = [digit(d, (300 + 50 * k, 400, 36, 60)) for k, d in enumerate((1, 1, 1, 1, 7))]  # so is 11117
    ordered, numbers = drop_stroke_runs(*group_numbers(hatching + short_run + mixed), cfg)
    assert [n.text for n in numbers] == ["11", "11117"]
    assert len(ordered) == 7 and all(ordered[i] in short_run + mixed for n in numbers for i in n.digits)


def test_three_strokes_closer_than_handwritten_ones_are_no_number():
    """Three tally marks, or hatching, read as 1s: "111" is no more than max_ones_run, but strokes 0.15 heights
    apart are closer than handwritten 1s stand (ClassifyConfig.ones_min_pitch). 1s 0.3 heights apart are "111"."""
    cfg = ReaderConfig()
    tally = [digit(1, (200 + 24 * k, 100, 14, 160)) for k in range(3)]  # 0.15 heights apart
    ones = [digit(1, (600 + 30 * k, 100, 12, 100)) for k in range(3)]  # 0.3 heights apart
    ordered, numbers = drop_stroke_runs(*group_numbers(tally + ones), cfg)
    assert [n.text for n in numbers] == ["111"] and all(d in ones for d in ordered)
    off = replace(cfg, classify=replace(cfg.classify, ones_min_pitch=0.0))
    assert [n.text for n in drop_stroke_runs(*group_numbers(tally + ones), off)[1]] == ["111", "111"]


def test_loop_brightness_tells_a_drawn_ring_from_the_rim_of_a_blot():
    from digitlens import detect
    grey = np.full((120, 120), 220, np.uint8)
    ring = np.zeros((120, 120), np.uint8)
    cv2.circle(ring, (60, 60), 40, 1, 6)
    x, y, w, h = cv2.boundingRect(ring)
    drawn = np.where(ring > 0, 40, 220).astype(np.uint8)  # a 0 drawn on paper: the paper shows inside
    blot = grey.copy()
    cv2.circle(blot, (60, 60), 42, 40, -1)  # a filled blot whose rim alone was taken for ink
    crop = ring[y:y + h, x:x + w]
    assert detect.loop_brightness(drawn, crop, (x, y, w, h)) > 200
    assert detect.loop_brightness(blot, crop, (x, y, w, h)) < 60
    assert detect.loop_brightness(grey, np.ones((10, 10), np.uint8), (0, 0, 10, 10)) is None  # no loop


def test_a_large_dark_blot_is_not_a_zero_and_a_drawn_zero_is(core_reader):
    page = np.full((480, 640, 3), 225, np.uint8)
    cv2.ellipse(page, (200, 240), (70, 55), 20, 0, 360, (45, 45, 45), -1)  # wider than the background window
    cv2.ellipse(page, (470, 240), (30, 45), 0, 0, 360, (45, 45, 45), 7)
    page = cv2.GaussianBlur(page, (5, 5), 1.0)
    assert core_reader.read(page).text == "0"
