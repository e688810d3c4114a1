"""Recognizer: the one reading path used by `read`, `live` and `serve`.

    image -> detect (candidates) -> normalise (28x28 MNIST-style) -> classify (ONNX, one batch)
          -> reject (not-a-digit class, calibrated confidence) -> split touching digits -> group -> Reading

No torch here: the model is an ONNX file run by onnxruntime.
"""
from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from digitlens import detect, modelfile
from digitlens.normalise import NormaliseConfig, ink_bounds, normalise_grey, normalise_mask
from digitlens.reading import Digit, Number, Reading

SHIPPED_MODEL = "lens.onnx"


@dataclass(frozen=True)
class ClassifyConfig:
    min_confidence: float = 0.8  # a digit's calibrated probability must reach this, else "no digit": on generated
    # photos (seed 7, not the benchmark's) 0.8 keeps 98.8% of true digits and drops a quarter of false ones
    neighbour_min_confidence: float = 0.5  # ... or this, beside a digit that reached it, in line, of its height
    # and as close as digits of one number: people write numbers, and a smudged digit of one is still a digit
    split_aspect: float = 1.15  # candidates wider than 1.15 x their height may be touching digits (an H or a U,
    # about as wide as tall, would otherwise split into two 1s)
    split_min_confidence: float = 0.8  # every part of an accepted split must be a digit this sure
    split_width_per_digit: float = 0.7  # a handwritten digit is ~0.7 as wide as tall: sets how many parts to try
    max_split_parts: int = 4  # a wider run of touching "digits" is far more often a word. Four touching digits need
    # four parts: other_hand's 'touching' category (training digits seed 7 / fonts seed 8) 73 -> 75 / 76 -> 85 of
    # 100 against 3; dev scenes seeds 7-10 numbers 0/0/+1/0, single digits and empty pages the same, at full size
    # and shrunk to 0.45 (seeds 8, 9); 5 read the same as 4. (Tried in an earlier session against a reader without
    # today's word and form rules, 4 and 5 lost on dev scenes.) ~1% slower at 1280x720
    two_way_cuts: int = 2  # a cut into two digits is tried at this many columns (detect.two_way_cuts)
    other_cut_min_confidence: float = 0.95  # ... and the parts of a cut at another column than split_points'
    # must be this sure: with 3 columns or at 0.8, dev empty pages lost 1-2 per seed to scribbles cut into 14, 19
    letter_strokes: tuple[int, ...] = (1, 7)  # a split into only these is the strokes of a letter (n, m, u, h, H
    # cut apart read as 1s and hooked 7s): on dev scenes (seed 7) false digits per empty page 0.57 -> 0.39,
    # numbers read exactly unchanged
    letter_pair_aspect: float = 1.3  # ... except a cut in two, a 1 and a 7 or two 7s, of a candidate at least this
    # many times as wide as tall: wider than the letters whose strokes read so ("17", "71", "77" written touching;
    # 0: never). other_hand's touching numbers: training digits (seed 7) 86 -> 87, fonts (seed 8) 88 -> 90 of 100;
    # dev scenes (seeds 7-10, 300 per kind) read as exactly as before. Without letter_strokes at all, empty pages
    # lost 5 photos, each to a "11" (1.5 gained as much on fonts, less on training digits)
    cut_reach: float = 0.25  # cuts are also tried along the paper between touching digits, up to this x the height
    # from the cut column (detect.cut_path; 0: straight columns only): two digits written overlapping, which no
    # column parts, each part as sure as other_cut_min_confidence. Dev scenes (training digits, seeds 7-10, 300
    # per kind): numbers +3/+3/0/+1, single digits and empty pages unchanged; +1.5 ms a 1280x720 photo ...
    cut_max_px: int = 200  # ... in masks up to this tall
    split_min_height: float = 0.7  # every part must be this tall relative to the whole: digits are; letters vary
    nms_iou: float = 0.4  # two digit boxes overlapping more than this are one digit (keep the surer)
    small_in_line: float = 0.4  # a "digit" under 0.4 x the tallest in its line is a dot or a speck
    small_on_page: float = 0.33  # ... and a digit alone in its line under a third of the tallest digit on the page
    # (1s and 7s aside: a long stroke reads as a giant 1) is a mark too: a stroke of hatching, a letter's piece, a
    # speck of a doodle read as a lone 1 or 2 beside the writing. Dev scenes (training digits, seeds 7-10, 300 per
    # kind): single digits 0/0/+2/0, numbers +1/+1/+1/+4, empty pages unchanged; shrunk to 0.45 (seeds 7, 8):
    # +1 and +1 / none; other_hand dev (20 conditions): +1, none lost. At 0.25: numbers +1/+1/+1/+3. A number of
    # small digits (two or more in a line) stays, whatever its size
    giant_strokes: bool = True  # ... unless the tallest is a 1 or a 7 and all the rest are that small: then it
    # is the stroke (a margin line, a page edge or corner) and the rest are the digits. Dev scenes (training
    # digits, seeds 7-10, 300 per kind): numbers +1/+2/0/0, single digits 0/+1/+2/+1, empty pages unchanged
    # Text: a "digit" written in a word is a letter (the O of "FOOD", the l of "ball"). Digits and rejected
    # candidates of about the same height, side by side with a gap under word_gap x their height, form a
    # word; where the rejected ones are at least as many as the digits, the word is text and gives no digit.
    word_gap: float = 0.5
    word_height_ratio: float = 0.6  # neighbours in a word are within 0.6..1/0.6 of each other's height
    word_max_aspect: float = 3.0  # a rejected candidate wider than this (a line, an underline) is not a letter
    unsure_letters: bool = False  # when on, unsure digits (under min_confidence) count as rejected in the word
    # rule, and a smudged digit beside a sure one made the pair a "word": off, numbers +2/+1/+2/0 on dev scenes
    # (seeds 7-10), single digits and empty pages unchanged, digit precision -0.1 to -0.2 points (more unsure
    # neighbours admitted, some misread)
    ones_beside_rejected: bool = True  # and 1s alone beside a rejected candidate of their height are strokes (see
    # drop_words): on dev scenes (seeds 7 and 8), one empty page of 600 more without a digit, numbers unchanged
    # A 0 is a smooth loop: one whose outline nearly fills its enclosing triangle or rectangle is a triangle or
    # a box (a road sign, a checkbox), not a digit. Below the least of the MNIST training 0s (1.29 and 1.19).
    # Judged on the mask the candidate was read from: a small printed 0's own mask fills to a rounded box under
    # blur, its finer mask stays a loop (other_hand's font compositor, seeds 8, 7: tiny 97 -> 98, 92 -> 95 of
    # 100; its MNIST training digits and dev scenes, also shrunk to 0.45, identical)
    zero_min_triangle_fill: float = 1.25
    zero_min_rect_fill: float = 1.12
    # A candidate under 32 px tall is read from its grey patch binarised at 3x (detect.finer_mask): at its own
    # size, binarising closes the loops of a 6, 8 or 9 and breaks thin strokes. On dev scenes of training
    # digits (seed 7) shrunk to digits ~20 px tall: digit recall 73 -> 80%, empty pages 80 -> 86%.
    fine_below_px: int = 32
    fine_zoom: int = 3
    fine_max_split_parts: int = 6  # ... and one so read, wider than split_aspect, is cut into up to 6 digits at
    # once: blur joins a small number into one region, which the finer mask parts again (printed digits 16-24 px
    # tall, other_hand's font compositor, seeds 8, 7: tiny 91 -> 97, 87 -> 92 of 100; webcam and noisy +1 and +2
    # on seed 7; dev scenes shrunk to 0.45, seeds 8, 9: numbers +2, +4 of 300, single digits and empty pages the
    # same; at full size identical). A wide region at full size stays at max_split_parts: there a run of more
    # touching "digits" is far more often a word
    rims_give_way: bool = True  # a union or coarse region (detect.coarse_candidates) is read instead of a region of
    # its own extent with under coarse_hollow_frac of its ink (the rims of a marker's strokes, one hollow outline
    # that reads as a sure 0) whenever it is a sure digit, not only when surer. other_hand's compositor with
    # training digits, seeds 8, 7: hugemarker 86 -> 87, 92 -> 93 of 100; fonts and dev scenes (seeds 7, 8) identical
    max_ones_run: int = 3  # a "number" of more 1s than this and nothing else is hatching, a fence, tally marks
    # or a barcode: parallel strokes, which photos are full of and people rarely write as "1111"
    ones_min_pitch: float = 0.2  # ... and two or more 1s closer than this x their height, centre to centre (median),
    # are parallel strokes too: handwritten 1s stand at least ~0.24 heights apart (dev scenes' numbers). Dev scenes
    # seeds 7-10: empty pages 0/+1/0/0 (three tally marks), numbers and single digits unchanged; other_hand (seven
    # categories, training digits seed 7 and fonts seed 8) unchanged
    # A second look at a candidate that is no sure digit but stands in a number beside one (see side_by_side:
    # of about its height, 0.7..1/0.7, at most GroupConfig.number_gap heights away): people write numbers, so
    # it is most likely a digit the first look missed. It is read again from its grey patch binarised by
    # Otsu's threshold (where the first mask filled a loop or broke a stroke), and, from `second_split_aspect`
    # wide, cut as touching digits (two narrow digits, 1s, 4s, 7s, touching are as wide as tall). What the
    # second look reads must be as sure as a first reading (min_confidence, split_min_confidence).
    enclosing_min_frac: float = 0.35  # a "digit" whose box holds another digit at least this fraction of its height
    # is a ring or a box drawn round the writing (0: no such test)
    second_look: bool = True
    second_round: bool = True  # on a page with a sure digit, a weak candidate beside a digit that only the second
    # look made sure gets that look too, once. Dev scenes (training digits, seeds 7-10, 300 per kind): numbers
    # +1/0/0/0 photos, single digits and empty pages unchanged
    second_split_aspect: float = 0.75
    second_max_split_parts: int = 6  # and a wider one into up to this many digits (a run of them touching)
    run_search: bool = True  # and a weak candidate wider than split_aspect, beside a sure digit or alone in its line
    # (a word in a line of text has words beside it), is cut by a search over all its cut points: the run_most_points
    # thinnest columns (detect.run_cut_points, run_piece_width[0] heights apart); each piece between two of them,
    # run_piece_width heights wide, is read (one small batch for the page), and the way of cutting whose pieces all
    # read as digits with the greatest product of probabilities (best_cutting, dynamic programming) is one more
    # hypothesis. The cuts at equal widths part a run of touching digits where a 1 is narrow and a 0 wide wrongly.
    # Each part must be run_min_confidence sure beside a sure digit, run_lone_min_confidence alone; at most
    # run_max_ones of the parts may be 1s ("MM" cuts into 1, 4, 1, 4 at 0.96); and the search runs only where
    # run_digitlike of the first look's cut parts read more as digits than not (a word's read as letters: it kept a
    # page of text as fast). Dev data (training digits): scenes seeds 7-10, 300 per kind, numbers +1/+1/+2/+2,
    # single digits and empty pages unchanged; shrunk to 0.45 (seeds 7, 8): numbers 0/+1, the rest unchanged;
    # other_hand's 'touching' (seeds 7, 9, 10 / fonts 8, 9, 60 each): +7/+1/0 and +2/0, its other conditions
    # unchanged. Without the digitlike test: numbers +2/+1/+2/+2 but a page of printed words ~2x slower to read;
    # without run_max_ones and at 0.9: empty pages 0/-1/0/-3
    run_min_confidence: float = 0.95
    run_lone_min_confidence: float = 0.98
    run_max_ones: float = 0.4
    run_piece_width: tuple[float, float] = (0.12, 1.3)
    run_most_points: int = 14
    run_digitlike: float = 0.3
    second_unions: bool = True  # and two such candidates close together (a gap under union_gap x the taller's
    # height) are read as one, when their union is shaped like a digit (DetectConfig.union_max_aspect) and stands
    # beside a sure digit: the pieces of a digit broken where no faint ink joins them
    union_gap: float = 0.25
    union_line_gap: float = 0.5  # ... or under this x the height of the sure digit their union stands beside: a
    # digit broken where a faint stroke between its pieces was lost (the diagonal of a 2, the joint of a 5) leaves
    # small pieces far apart for their own height (0: off). Dev scenes (training digits, seeds 7-10, 300 per kind):
    # numbers +5/+3/+5/+5, single digits and empty pages unchanged; shrunk to 0.45 (seeds 7, 8): numbers +2/+2;
    # other_hand's compositor (training digits seed 7, fonts seed 8, 20 conditions, 60 each) unchanged. 0.4:
    # numbers +3/+3/+5/+4; 0.6 as 0.5 but for one photo read differently, wrong either way
    max_second_unions: int = 12
    doubtful_min_confidence: float = 0.95  # a region the detector took for an edge (a digit on a shadow's or a
    # gradient's edge has one side much darker than the other) is read beside a digit read, and kept this sure,
    # and not as a 1: the straight edge of a shadow or a page beside a number reads as one. Dev scenes (training
    # digits, seeds 7-10, 300 per kind): numbers +1/+2/+1/+1, single digits and empty pages unchanged (1s allowed:
    # single digits 0/0/-1/0 and empty pages 0/0/-1/0, both a 1); shrunk to 0.45 (seeds 7, 8): numbers +1/+1;
    # other_hand (training digits seed 7, fonts seed 8): +1 (boxes), none lost. Regions not_writing finds "faint"
    # kept aside too: no change on dev scenes
    lone_unions: bool = True  # on a page with no sure digit, such unions are read too, with no neighbour to
    # vouch for them, so they must reach lone_union_min_confidence: a lone digit broken in two (a 5's detached
    # bar, a 6's loop parted from its stem). Dev scenes (training digits, seeds 7 and 8): at 0.8, 4 single digits
    # rescued for 4 empty pages given a false digit (all under 0.91); at 0.95, 3 rescued for none
    lone_union_min_confidence: float = 0.95
    sure_unions: bool = True  # a sure digit and a piece beside it that is no digit (no taller than it,
    # sure_union_piece_height, a gap under sure_union_gap x its height, and no other candidate nearer the piece)
    # are read as one, and the union is taken when it reads as another digit at least sure_union_min_confidence
    # sure: a digit broken where no faint ink joins its parts, whose larger part reads as a digit of its own (a 2
    # whose foot came away reads as a 7, a 7 whose bar came away as a 1).
    # A union that reads as the same digit is not taken: it would swallow the dots of a colon (hh:mm) and the
    # bars of "=" that part numbers (other_hand marks, fonts seed 8: 96 -> 93 so). Dev scenes (training digits,
    # seeds 7-10, 300 per kind): single digits +1/0/+2/0, numbers +4/0/+2/0, empty pages unchanged; shrunk to
    # 0.45 (seeds 7, 8): single +1/0, numbers +3/0; other_hand (fonts seed 8, training digits seed 7, 20
    # conditions): +3 of 2,000, none lost. Without "no candidate nearer", a broken 8's piece joined the 6 beside it.
    # Pieces first had to be at most 0.8 of the digit's height and 0.6 of its box's area; as tall as the digit
    # and of any area: single +1/0/+1/0, numbers unchanged; shrunk single +2/0, numbers +1/+1; other_hand the same
    sure_union_gap: float = 0.3
    sure_union_piece_height: float = 1.0
    sure_union_min_confidence: float = 0.9
    lone_rereads: bool = True  # a candidate beside no sure digit that reads as an unsure digit is read again from
    # its Otsu mask too (a blurred digit whose loops the first mask filled), and must then reach
    # lone_reread_min_confidence. Dev scenes (seeds 7-10, 300 per kind): single digits +1/0/0/+1, numbers and
    # empty pages unchanged. Cutting such candidates into touching digits as well (each part that sure) gave
    # numbers +1/0/0/0 and empty pages 0/-1/0/0 at +2 ms a frame, and was left out
    lone_reread_min_confidence: float = 0.95
    lone_pairs: bool = True  # a weak candidate alone in its line (no candidate of its height beside it), from
    # second_split_aspect to split_aspect as wide as tall, is cut in two too, each part at least
    # lone_pair_min_confidence sure: two digits written touching, "18", "21", "96", read as no digit whole. Under
    # 1.15 x as wide as tall the first look does not cut them, and alone they have no sure digit beside them to
    # earn the second look's cuts.
    # other_hand's 'touching' (training digits, dev seeds 7, 9, 10): +3/+3/+1 of 100; fonts (seeds 8, 9) and its other
    # 19 conditions (training digits seed 7, fonts seed 8) unchanged. Dev scenes (training digits, seeds 7-10, 300 per
    # kind): unchanged; shrunk to 0.45 (seeds 7, 8): numbers 0/+1, empty pages -1/0 (a letter N read as "14").
    # At 0.95: empty pages 0/-1/0/-1 (N and "37"); and when only "no sure digit beside it" was asked, letters in
    # words (H, M, N, P) were cut into 1 and 4, 1 and 0: empty pages -2/-1/-2/-1
    lone_pair_min_confidence: float = 0.98
    # The second look also reads a weak candidate beside a sure digit from its grey pixels (normalise_grey): ink
    # measured between paper and ink levels, not binarised, as MNIST was made from grey scans. Where blur or a
    # faint stroke made both masks a blob (a filled loop, a lost stroke), the grey still shows the shape. Dev
    # scenes (training digits, seeds 7-10, 300 per kind): numbers +3/+2/+6/+1, single digits and empty pages
    # unchanged. Alone (no sure digit beside it) it is not read from grey: on seed 9 that cost 2 empty pages
    grey_rereads: bool = True
    edge_line_rereads: bool = True  # and from its mask without the straight lines along its edges
    # (detect.strip_edge_lines), not as a 1: the side of a form's box the digit touches, a cell's lines caught
    # with it, the whole box round it (which makes it taller than its neighbours: it stands beside a sure digit
    # as itself or as its ink without the lines). other_hand's boxes: training digits seed 7 90 -> 92, fonts
    # seed 8 87 -> 91 of 100, other categories the same; not used to choose, training digits seed 10 92 -> 93
    # and fonts seed 9 (20 categories, 60 each) the same; dev scenes (seeds 7-10, 300 per kind) the same counts
    grey_average: bool = True  # a lone candidate (no candidate side by side with it reads more like a digit than
    # not: a single digit, a mark on an empty page) is read from its grey pixels too (normalise_grey, one more
    # small batch), and its reading is the mean of the two: the mask shows the strokes' shape, the grey their soft
    # edges and faint parts, and where the two disagree the reading is unsure. Dev scenes (training digits, seeds
    # 7-10, 300 per kind): empty pages +5/+4/+6/+11, single digits +2/0/+1/+3, numbers 0/+1/-1/0; digit precision up.
    # Every candidate averaged: about the same (numbers +3 in all), but each grey crop costs ~0.6 ms on one core,
    # most of it the network's, ~4 ms a 1280x720 photo of numbers; lone ones cost nothing measurable there.
    # (A geometric mean instead, seed 8: single digits 0, numbers 0, empty pages +1.) As shipped, with the two
    # settings below, against no average: empty pages +5/+3/+5/+9, single digits +1/0/0/+3, numbers +1/+2/+2/+1.
    grey_average_unsure: float = 0.99  # ... and so is any candidate whose mask reading's digit is under this sure,
    # beside a digit or not: dev scenes, seeds 7-10: numbers 0/+2/+2/+1, single digits and empty pages the same;
    # +0.3 ms a 1280x720 photo of numbers (noise on this machine)
    grey_average_min_px: int = 20  # ... if at least this tall: the grey of a smaller one is a blur that takes in its
    # neighbour (a 1 beside a 1 reads as "not a digit"). other_hand's compositor, training digits, tiny (16-24 px),
    # seeds 7, 8: 100/97 without the average, 95/95 with it at any size, 98/95 from 20 px; dev scenes shrunk to
    # 0.45 (seeds 8, 10) against any size: single digits +2/+1, numbers +2/0, empty pages -2/-3
    grey_average_below: float = 0.5  # "more like a digit than not": the mask's reading of "not a digit" under this
    grey_reach: float = 0.15  # ink farther than this x the height from the candidate's mask is faded out


@dataclass(frozen=True)
class GroupConfig:
    line_overlap: float = 0.5  # a digit continues a line if its centre is within half a digit height of its neighbour's ...
    link_slope: float = 0.3  # ... plus 0.3 x the gap between them (a page held at up to ~17 degrees) ...
    link_gap: float = 4.0  # ... and the gap is under 4 digit heights (farther apart, it starts another line)
    number_gap: float = 0.6  # a gap wider than 0.6 x the line's median digit height starts a new number ...
    spacing_factor: float = 2.5  # ... or, in a line of three digits or more, wider than this x the line's median
    # gap, if that is more (0: never): a writer who spaces digits loosely leaves wider gaps inside a number ...
    max_number_gap: float = 1.0  # ... but a gap wider than this x the digit height always starts a new number
    mark_splits: float = 0.2  # a region read as no digit (a +, an =, a colon) standing clear in the gap between two
    # digits of a line, at least this x their height wide or tall (see _mark_between), parts them into two numbers
    # (0: never): "56+7=63" read as one number 56763, "10:30" as 1030. Dev scenes seeds 7-10: the same exact
    # readings (4 scenes wrong either way read otherwise); as first written (any mark at least 0.2 tall or wide)
    # numbers -1/-5/-2/-4: pieces of broken digits stand between digits too
    boxed_gap: float = 1.5  # two digits each in a box drawn round it (a form's row of boxes) are one number up to
    # this x the digit height apart: the boxes, not the writer, set the spacing
    rows: bool = True  # lines too far apart to link, standing in one row of the page (the numbers of a form's or
    # a table's row, a sudoku's digits), are read left to right (in_reading_order); off: by height alone
    row_max_slope: float = 0.2  # ... and the slope of those rows is searched up to this (0: the chains' own alone)


@dataclass(frozen=True)
class ReaderConfig:
    detect: detect.DetectConfig = field(default_factory=detect.DetectConfig)
    normalise: NormaliseConfig = field(default_factory=NormaliseConfig)
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)
    group: GroupConfig = field(default_factory=GroupConfig)
    intra_op_threads: int = 0  # onnxruntime threads; 0 = all cores, 1 for a one-core budget
    # A small image that reads as nothing is read again on paper around it: a tight crop of one digit (or an
    # MNIST image) has its ink against the frame's edges, which the reader takes for rims and page edges.
    # Only small images: a live frame (640x480) is never read twice.
    crop_max_side: int = 512  # images up to this long side get the second look (0: never)
    crop_min_side: int = 256  # ... scaled up to at least this long side first (a 28x28 crop is too small to read)
    rotate_min_deg: float = 12.0  # a frame whose digits stand in lines tilted at least this much (a page held at an
    # angle) is read again turned level, and the surer reading kept (0: never). MNIST's digits are upright to
    # within ~15 degrees: beyond, the network misreads them, and lines break into numbers in the wrong order.
    # other_hand's compositor (training digits, seed 7) turned 15/20/25/30 degrees: 89 -> 91, 83 -> 89, 62 -> 83,
    # 46 -> 77 of 100; dev scenes (seed 8) turned 12 and 20 degrees: 96 -> 101, 67 -> 91 of 150. As they are
    # (turned up to 8 degrees), dev scenes seeds 7-10: numbers +1/0/+1/0, single digits and empty pages the same;
    # at 8 degrees numbers -2 on seed 9, so not lower
    squash_min_aspect: float = 1.0  # a frame whose digits are this wide for their height or more (median, two or
    # more digits) is read again stretched top to bottom, and the surer reading kept (0: never; see _unsquash) ...
    squash_aspect: float = 0.7  # ... until they are this wide for their height (handwritten digits' median: ~0.7) ...
    squash_max_stretch: float = 2.5  # ... by at most this. Numbers of training digits (2-4) squashed to 0.6 and 0.45
    # of their height by a test script: 35 -> 39 and 24 -> 30 of 40; dev scenes seeds 7-10: numbers 0/0/0/+1 (one
    # scene of 1200 read worse, two better); 1 of 25 1280x720 'numbers' photos is read a second time
    squash_candidates: bool = True  # where fewer than two digits were read, the candidates that stand in a row
    # with a neighbour tell the squash (squashed digits read as not-digits); the stretched reading then only adds
    # digits, and where none was read it must hold a number of two or more (see Recognizer._unsquash). Printed
    # numbers squashed to 0.45-0.65 (other_hand 'squashed', fonts seed 8): 68 -> 87 of 100; training digits (seed
    # 7): 95 -> 96; dev scenes seeds 7-10 read the same (one empty page's wrong '1' became '11')
    squash_probe_max: int = 24  # ... the frame is read stretched only when half of those candidates (the largest
    # this many at most), and two or more, stretched alone read as sure digits: on a page of printed text every
    # line is a row of wide candidates, and two letters of a hundred stretched read as sure digits
    rotate_candidates: bool = True  # where the digits tell no tilt (none read, or none beside another: a tilted
    # number's digits rejected, or a lone digit beside a rejected one taken for a letter), the candidates' boxes tell
    # it; the turned reading then only adds digits (see Recognizer._level). other_hand's compositor turned 15-30
    # degrees: fonts (seed 8) 92 -> 97, training digits (seed 7) 94 -> 97 of 100; dev scenes seeds 7-10: numbers
    # 0/+1/0/0, single digits and empty pages the same


def shipped_model_path() -> Path:
    return Path(str(resources.files("digitlens") / "models" / SHIPPED_MODEL))


def _shipped_sha256(path: Path) -> str | None:
    card = path.with_suffix(".json")
    if card.exists():
        return json.loads(card.read_text()).get("sha256")
    return None


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def _union(boxes: Sequence[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return (x0, y0, x1 - x0, y1 - y0)


def _box_gap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> int:
    """The gap between two boxes: the larger of the gaps across and down (0 where they overlap both ways)."""
    return max(0, max(a[0], b[0]) - min(a[0] + a[2], b[0] + b[2]), max(a[1], b[1]) - min(a[1] + a[3], b[1] + b[3]))


def group_lines(digits: Sequence[Digit], cfg: GroupConfig = GroupConfig()) -> list[list[Digit]]:
    """Digits -> lines (top to bottom), each left to right. A line is a chain of neighbours: each digit links
    to the nearest digit on its right that sits at about its height, allowing for the slant of a page held
    at an angle. The best links are taken first, so two lines never steal each other's digits."""
    n = len(digits)
    if n == 0:
        return []
    box = np.array([d.box for d in digits], np.float64)
    x0, y0, w, h = box.T
    x1, cy = x0 + w, y0 + h / 2
    # All pairs at once: i links to j when j's centre is right of i's, the gap is short and j sits at i's height.
    cx = x0 + w / 2
    size = np.maximum.outer(h, h)
    gap = x0[None, :] - x1[:, None]  # [i, j]
    dy = np.abs(cy[None, :] - cy[:, None])
    ok = ((cx[None, :] > cx[:, None]) & (gap <= cfg.link_gap * size)
          & (dy <= cfg.line_overlap * size + cfg.link_slope * np.maximum(gap, 0.0)))
    ii, jj = np.nonzero(ok)
    cost = np.maximum(gap[ii, jj], 0.0) + 2 * dy[ii, jj]
    nxt, prv = {}, {}
    for k in np.lexsort((jj, ii, cost)):  # cheapest first; ties by i, then j
        i, j = int(ii[k]), int(jj[k])
        if i not in nxt and j not in prv:
            nxt[i], prv[j] = j, i
    lines = []
    for head in (i for i in range(n) if i not in prv):
        chain, k = [head], head
        while k in nxt:
            k = nxt[k]
            chain.append(k)
        lines.append(chain)
    lines.sort(key=lambda c: float(np.mean(cy[c])))
    return [[digits[k] for k in chain] for chain in lines]


def in_reading_order(lines: list[list[Digit]], cfg: GroupConfig = GroupConfig()) -> list[list[Digit]]:
    """Lines (group_lines' chains) in reading order: chains that stand in one row of the page, too far apart for
    group_lines to link them (the numbers of a form's or a table's row, the digits of a sudoku's row), left to
    right; rows top to bottom. Sorted by height alone, a number a little higher than the one on its left came
    first. A chain joins a row when its centre, measured across the page's slope, lies within line_overlap x the
    taller's height of every chain in the row, and it overlaps none of them left to right; else it starts a row of
    its own. The slope: the median of the chains' own (least squares through their digits' centres, within
    link_slope), of those at least two digit heights long (a pair of neighbours tells it too roughly to carry
    across a page), else level; unless the chains themselves line up in rows better across another (_row_slope:
    a sudoku's lone digits tell the slope of its rows)."""
    if len(lines) < 2:
        return lines
    height = [float(statistics.median(d.box[3] for d in line)) for line in lines]
    cxs = [np.array([d.box[0] + d.box[2] / 2 for d in line]) for line in lines]  # each line's digit centres
    cys = [np.array([d.box[1] + d.box[3] / 2 for d in line]) for line in lines]
    slopes = [float(np.dot(cx - cx.mean(), cy - cy.mean()) / np.dot(cx - cx.mean(), cx - cx.mean()))
              for cx, cy, h in zip(cxs, cys, height) if len(cx) >= 2 and cx[-1] - cx[0] >= max(2 * h, 1.0)]
    slope = float(np.clip(statistics.median(slopes), -cfg.link_slope, cfg.link_slope)) if slopes else 0.0
    span = [(min(d.box[0] for d in line), max(d.box[0] + d.box[2] for d in line)) for line in lines]
    if cfg.row_max_slope:
        centre = np.array([[cx.mean(), cy.mean()] for cx, cy in zip(cxs, cys)])
        slope = _row_slope(centre, np.array(height), np.array(span, np.float64), slope, cfg.row_max_slope)
    level = [float(np.mean(cy - slope * cx)) for cx, cy in zip(cxs, cys)]
    rows: list[list[int]] = []
    for i in sorted(range(len(lines)), key=lambda k: level[k]):
        fits = [r for r in rows if all(abs(level[i] - level[k]) <= cfg.line_overlap * max(height[i], height[k]) and
                                       (span[i][1] <= span[k][0] or span[k][1] <= span[i][0]) for k in r)]
        if fits:
            min(fits, key=lambda r: abs(level[i] - float(np.mean([level[k] for k in r])))).append(i)
        else:
            rows.append([i])
    rows.sort(key=lambda r: float(np.mean([level[k] for k in r])))
    return [lines[k] for r in rows for k in sorted(r, key=lambda k: span[k][0])]


def _row_slope(centre: np.ndarray, height: np.ndarray, span: np.ndarray, prior: float, max_slope: float) -> float:
    """The slope (dy/dx, within max_slope, in steps of 0.005) across which the chains whose `centre`s (x, y),
    heights and `span`s (x0, x1) are given stand in rows best: the most pairs of chains side by side (apart left
    to right) within a quarter of the taller's height of each other, measured across it. `prior` unless another
    lines up at least two pairs more (one pair lines up across some slope wherever its chains stand); among
    equals, the nearest to it."""
    n = len(centre)
    i, j = np.triu_indices(n, 1)
    apart = (span[i, 1] <= span[j, 0]) | (span[j, 1] <= span[i, 0])
    if np.count_nonzero(apart) < 2:
        return prior
    i, j = i[apart], j[apart]
    dx, dy = centre[j, 0] - centre[i, 0], centre[j, 1] - centre[i, 1]
    tol = 0.25 * np.maximum(height[i], height[j])
    slopes = np.append(np.arange(-max_slope, max_slope + 1e-9, 0.005), prior)
    counts = (np.abs(dy[None, :] - slopes[:, None] * dx[None, :]) <= tol[None, :]).sum(axis=1)
    if counts.max() < counts[-1] + 2:
        return prior
    best = np.flatnonzero(counts == counts.max())
    return float(slopes[best[np.argmin(np.abs(slopes[best] - prior))]])


def group_numbers(digits: Sequence[Digit], cfg: GroupConfig = GroupConfig(), boxed: frozenset = frozenset(),
                  marks: Sequence[tuple[int, int, int, int]] = ()) -> tuple[tuple[Digit, ...], tuple[Number, ...]]:
    """Put digits in reading order and group them into numbers (indices into the returned digits). `boxed`: the
    boxes of digits written in drawn boxes (GroupConfig.boxed_gap). `marks`: the boxes of regions read as no
    digit; one standing in the gap between two digits of a line parts them (GroupConfig.mark_splits)."""
    ordered: list[Digit] = []
    numbers: list[Number] = []
    lines = group_lines(digits, cfg)
    for line in (in_reading_order(lines, cfg) if cfg.rows else lines):
        height = float(statistics.median(d.box[3] for d in line))  # short lists: statistics beats numpy here
        split = cfg.number_gap * height
        if cfg.spacing_factor and len(line) >= 3:
            spacing = statistics.median(b.box[0] - (a.box[0] + a.box[2]) for a, b in zip(line, line[1:]))
            split = min(max(split, cfg.spacing_factor * spacing), max(split, cfg.max_number_gap * height))
        run: list[int] = []
        for d in line:
            if run:
                prev = ordered[run[-1]]
                gap = d.box[0] - (prev.box[0] + prev.box[2])
                if gap > (cfg.boxed_gap * height if d.box in boxed and prev.box in boxed else split) or (
                        cfg.mark_splits and _mark_between(prev.box, d.box, marks, height, cfg.mark_splits)):
                    numbers.append(_number(ordered, run))
                    run = []
            ordered.append(d)
            run.append(len(ordered) - 1)
        if run:
            numbers.append(_number(ordered, run))
    return tuple(ordered), tuple(numbers)


def drop_stroke_runs(ordered: tuple[Digit, ...], numbers: tuple[Number, ...], cfg: "ReaderConfig",
                     boxed: frozenset = frozenset(), marks: Sequence[tuple[int, int, int, int]] = ()
                     ) -> tuple[tuple[Digit, ...], tuple[Number, ...]]:
    """Drop the "numbers" that are only 1s, more than `max_ones_run` of them: parallel strokes (hatching,
    a fence, tally marks, a barcode) rather than writing; the rest is grouped again."""
    strokes = [n for n in numbers if set(n.text) == {"1"} and (
        len(n.text) > cfg.classify.max_ones_run or (len(n.text) > 1 and _pitch([ordered[i].box for i in n.digits])
                                                    < cfg.classify.ones_min_pitch))]
    if not strokes:
        return ordered, numbers
    drop = {i for n in strokes for i in n.digits}
    return group_numbers([d for i, d in enumerate(ordered) if i not in drop], cfg.group, boxed, marks)


def _pitch(boxes: Sequence[tuple[int, int, int, int]]) -> float:
    """The median distance between neighbouring boxes' centres, left to right, over their tallest's height."""
    centres = sorted(x + w / 2 for x, _, w, _ in boxes)
    return float(np.median(np.diff(centres))) / max(h for *_, h in boxes)


def _mark_between(a: tuple[int, int, int, int], b: tuple[int, int, int, int],
                  marks: Sequence[tuple[int, int, int, int]], height: float, min_size: float) -> bool:
    """Whether a mark (a region read as no digit: a +, an =, a colon) stands in the gap between digit boxes `a`
    and `b` of one line, left to right: within their rows' span, clear of both by 0.1 x the line's digit height,
    its width or height at least `min_size` x that height and both at least 0.15 x (a speck of dirt, or a thin
    piece of a broken stroke, is no mark), and its height at most 0.7 x (a region as tall as the digits, read
    as none, is more often a digit misread)."""
    top, bottom, clear = min(a[1], b[1]), max(a[1] + a[3], b[1] + b[3]), 0.1 * height
    return any(a[0] + a[2] + clear <= mx and mx + mw + clear <= b[0] and top <= my + mh / 2 <= bottom
               and max(mw, mh) >= min_size * height and min(mw, mh) >= 0.15 * height and mh <= 0.7 * height
               for mx, my, mw, mh in marks)


def _number(ordered: list[Digit], run: list[int]) -> Number:
    members = [ordered[i] for i in run]
    conf = float(np.prod([d.confidence for d in members]))
    return Number("".join(str(d.digit) for d in members), conf, _union([d.box for d in members]), tuple(run))


def _to_input(box: tuple[int, int, int, int], scale: float, width: int, height: int,
              offset: tuple[int, int] = (0, 0)) -> tuple[int, int, int, int]:
    """A box in processing pixels (the input scaled by `scale`, placed at `offset`) -> pixels of the input
    image (width x height), at least one pixel and inside it."""
    x, y, w, h = box
    ox, oy = offset
    x0 = min(width - 1, max(0, int(round((x - ox) / scale))))
    y0 = min(height - 1, max(0, int(round((y - oy) / scale))))
    x1 = min(width, max(x0 + 1, int(round((x + w - ox) / scale))))
    y1 = min(height, max(y0 + 1, int(round((y + h - oy) / scale))))
    return (x0, y0, x1 - x0, y1 - y0)


def _border_median(image: np.ndarray) -> np.ndarray:
    """The median colour (one value per channel) of an image's outermost pixels."""
    rim = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    return np.median(rim.reshape(-1, 1 if image.ndim == 2 else image.shape[2]), axis=0)


def on_paper(image: np.ndarray, min_side: int) -> tuple[np.ndarray, tuple[int, int, float]]:
    """The image scaled up to at least `min_side` on its long side and set in the middle of a sheet twice its
    size, of its border's median colour. Returns the sheet and (x offset, y offset, zoom) to map boxes back."""
    h, w = image.shape[:2]
    zoom = max(1.0, min_side / max(h, w))
    if zoom > 1.0:
        image = cv2.resize(image, (max(1, round(w * zoom)), max(1, round(h * zoom))), interpolation=cv2.INTER_CUBIC)
    h2, w2 = image.shape[:2]
    colour = _border_median(image).astype(np.uint8)
    sheet = np.empty((2 * h2, 2 * w2) + image.shape[2:], np.uint8)
    sheet[...] = colour if image.ndim == 3 else colour[0]
    pad_x, pad_y = w2 // 2, h2 // 2
    sheet[pad_y:pad_y + h2, pad_x:pad_x + w2] = image
    return sheet, (pad_x, pad_y, zoom)


def writing_angle(boxes: Sequence[tuple[int, int, int, int]], max_deg: float = 40.0) -> float | None:
    """The tilt of the lines the digits (or candidates) whose `boxes` are given stand in, in degrees (positive:
    falling to the right, in image coordinates), or None when no digit has a neighbour to tell it by. Each digit
    is paired with its nearest neighbour to the right, of about its height (0.6..1/0.6), centres at most 1.5
    heights apart and at most `max_deg` off level (a digit of the next line sits farther off); the median of the
    pairs' angles."""
    if len(boxes) < 2:
        return None
    x, y, w, h = np.array(boxes, np.float64).T
    cx, cy = x + w / 2, y + h / 2
    dx, dy = cx[None, :] - cx[:, None], cy[None, :] - cy[:, None]  # [i, j]: from i to j
    size = np.maximum.outer(h, h)
    dist = np.hypot(dx, dy)
    ok = ((dx > 0) & (dist <= 1.5 * size) & (np.minimum.outer(h, h) >= 0.6 * size)
          & (np.abs(dy) <= np.tan(np.radians(max_deg)) * dx))
    angles = [float(np.degrees(np.arctan2(dy[i, j], dx[i, j])))
              for i in range(len(boxes)) if ok[i].any()
              for j in [int(np.argmin(np.where(ok[i], dist[i], np.inf)))]]
    return float(np.median(angles)) if angles else None


def turned(image: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """The image turned by -angle degrees (lines falling to the right by `angle` become level), on a canvas
    large enough to hold all of it, the rest filled with the median colour of its border; and the 2x3 affine
    map from the canvas back to the image."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)  # OpenCV: positive turns counter-clockwise on screen
    c, s = abs(m[0, 0]), abs(m[0, 1])
    W, H = int(np.ceil(w * c + h * s)), int(np.ceil(w * s + h * c))
    m[:, 2] += (W / 2 - w / 2, H / 2 - h / 2)
    colour = tuple(float(v) for v in _border_median(image))
    level = cv2.warpAffine(image, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                           borderValue=colour if image.ndim == 3 else colour[0])
    return level, cv2.invertAffineTransform(m)


def _holds(digits: Sequence[Digit], d: Digit) -> bool:
    """Whether `digits` hold digit d: one of the same value whose box overlaps its box (IoU 0.3 or more)."""
    return any(e.digit == d.digit and detect.box_iou(d.box, e.box) >= 0.3 for e in digits)


def _only_adds(first: Reading, mapped: Reading, second: Reading) -> bool:
    """Whether a second reading (`second`, and `mapped` onto the first's image) only adds to `first`: it holds
    every digit of `first` (same value, overlapping box), and where `first` read none, a number of two digits or
    more (one stroke turned upright or stretched, a page's edge, reads as a 1)."""
    return (all(_holds(mapped.digits, d) for d in first.digits)
            and bool(first.digits or any(len(n.digits) > 1 for n in second.numbers)))


def _added_in_numbers(first: Reading, mapped: Reading) -> bool:
    """Whether every digit of `mapped` that `first` lacks (no digit of the same value on its box) stands in a
    number of two digits or more: a squash told by the candidates is a squashed number's, and a lone digit
    added beside one read is more often a stretched mark."""
    new = {i for i, e in enumerate(mapped.digits) if not _holds(first.digits, e)}
    return all(len(n.digits) > 1 for n in mapped.numbers if new & set(n.digits))


def _in_row(boxes: Sequence[tuple[int, int, int, int]], max_deg: float = 10.0) -> list[int]:
    """The indices of the boxes that stand in a row with a neighbour: one of about their height (0.6..1/0.6)
    beside them, at most a height apart (the gap between the boxes: squashed digits are wide, so their centres
    stand far apart) and at most `max_deg` off level."""
    if len(boxes) < 2:
        return []
    x, y, w, h = np.array(boxes, np.float64).T
    cx, cy = x + w / 2, y + h / 2
    dx, dy = cx[None, :] - cx[:, None], cy[None, :] - cy[:, None]
    size = np.maximum.outer(h, h)
    gap = np.abs(dx) - (w[None, :] + w[:, None]) / 2
    ok = ((np.abs(dx) > 0) & (gap <= size) & (np.minimum.outer(h, h) >= 0.6 * size)
          & (np.abs(dy) <= np.tan(np.radians(max_deg)) * np.abs(dx)))
    return [int(i) for i in np.flatnonzero(ok.any(axis=1))]


def _mapped(second: Reading, box_back, width: int, height: int, elapsed_ms: float) -> Reading:
    """A reading of a turned or stretched copy of a width x height image, its digits' boxes mapped back onto the
    image by `box_back` and its numbers' boxes made around them."""
    digits = tuple(replace(d, box=box_back(d.box)) for d in second.digits)
    numbers = tuple(replace(n, box=_union([digits[i].box for i in n.digits])) for n in second.numbers)
    return replace(second, width=width, height=height, digits=digits, numbers=numbers, elapsed_ms=elapsed_ms)


def _box_back(box: tuple[int, int, int, int], back: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """A box on the level canvas (see turned) -> the box around its corners in the image, inside it."""
    x, y, w, h = box
    corners = np.array([[x, y, 1], [x + w, y, 1], [x, y + h, 1], [x + w, y + h, 1]], np.float64) @ back.T
    x0, y0 = np.clip(corners.min(axis=0), 0, (width - 1, height - 1))
    x1, y1 = np.clip(corners.max(axis=0), 0, (width, height))
    x0, y0 = int(round(x0)), int(round(y0))
    return (x0, y0, max(1, int(round(x1)) - x0), max(1, int(round(y1)) - y0))


def side_by_side(boxes: Sequence[tuple[int, int, int, int]], height_ratio: float, max_gap: float) -> np.ndarray:
    """(n, n) bool: boxes i and j stand side by side in one line, as characters of one word or one number do.
    Of about the same height (the smaller at least `height_ratio` of the taller), centres within half the
    taller's height of each other, a gap of at most `max_gap` x the taller's height, and not overlapping by
    more than 0.3 x the narrower's width (a fragment of the same character)."""
    x, y, w, h = np.asarray(boxes, np.float64).reshape(-1, 4).T
    big, small = np.maximum.outer(h, h), np.minimum.outer(h, h)
    gap = np.maximum(x[None, :] - (x + w)[:, None], x[:, None] - (x + w)[None, :])
    return ((small >= height_ratio * big)
            & (np.abs((y + h / 2)[:, None] - (y + h / 2)[None, :]) <= 0.5 * big)
            & (gap <= max_gap * big)
            & (gap >= -0.3 * np.minimum.outer(w, w)))


def drop_words(digits: list[Digit], rejected: Sequence[tuple[int, int, int, int]],
               cfg: ClassifyConfig = ClassifyConfig(), unsure: Sequence[tuple[int, int, int, int]] = ()) -> list[Digit]:
    """Drop the "digits" that are letters of a word: side by side with candidates the model rejected (letters,
    marks) of about their height, in a chain where the rejected are at least as many as the digits. A number
    with one unreadable digit keeps the rest (more digits than rejects); "FOOD" gives no 0s."""
    letters = [b for b in rejected if b[2] <= cfg.word_max_aspect * b[3]]
    unsure = [b for b in unsure if b[2] <= cfg.word_max_aspect * b[3]]
    if not digits or not (letters or unsure):
        return digits
    nd, nl = len(digits), len(digits) + len(letters)
    n = nl + len(unsure)
    link = side_by_side([d.box for d in digits] + letters + unsure, cfg.word_height_ratio, cfg.word_gap)
    # letters link to letters too: in "UNWur" the U reaches the r through N and W
    root = detect.union_roots(n, zip(*np.nonzero(np.triu(link, 1))))
    tally: dict[int, list[int]] = {}  # word -> [digits, rejected, digits other than 1, unsure]
    for i in range(n):
        t = tally.setdefault(root[i], [0, 0, 0, 0])
        t[0 if i < nd else 1 if i < nl else 3] += 1
        if i < nd and digits[i].digit != 1:
            t[2] += 1
    # 1s alone beside a rejected stroke of their height (or an unsure digit) are strokes too: hatching, a fence,
    # where two strokes touching were rejected or read as an unsure 6, and the rest read as 1s
    return [d for i, d in enumerate(digits) if tally[root[i]][1] < max(1, tally[root[i]][0])
            and not (cfg.ones_beside_rejected and (tally[root[i]][1] or tally[root[i]][3]) and not tally[root[i]][2])]


def _part_box(sub: np.ndarray, dx: int, origin: tuple[int, int], zoom: int) -> tuple[int, int, int, int]:
    """The box in frame pixels of the ink of `sub`, the columns from `dx` of a mask read at `zoom` whose top-left
    pixel lies at `origin` (frame pixels x zoom): a cut part of a candidate (_splits, the run search)."""
    x, y = origin
    bx, by, bw, bh = ink_bounds(sub)
    x0, y0 = (x + dx + bx) // zoom, (y + by) // zoom
    return (x0, y0, max(1, -(-(x + dx + bx + bw) // zoom) - x0), max(1, -(-(y + by + bh) // zoom) - y0))


def best_cutting(n_points: int, pieces: dict[tuple[int, int], float]) -> list[tuple[int, int]] | None:
    """The way of cutting a run at points 0..n_points-1 into consecutive pieces (i, j), each one of `pieces` (its
    log probability), that has the greatest sum: dynamic programming over the points. None when no way covers the
    run from its first point to its last."""
    best: dict[int, tuple[float, list[tuple[int, int]]]] = {0: (0.0, [])}
    for j in range(1, n_points):
        ways = [(best[i][0] + pieces[(i, j)], best[i][1] + [(i, j)]) for i in range(j) if i in best and (i, j) in pieces]
        if ways:
            best[j] = max(ways, key=lambda w: w[0])
    return best[n_points - 1][1] if n_points - 1 in best else None


def admit_neighbours(digits: list[Digit], unsure: Sequence[Digit], cfg: GroupConfig = GroupConfig()) -> list[Digit]:
    """The digits, and the unsure ones that continue a number of them: side by side with a digit (see
    side_by_side) of about its height (0.7..1/0.7) at most `number_gap` heights from it. Admitted digits admit
    their own neighbours in turn."""
    if not digits or not unsure:
        return list(digits)
    link = side_by_side([d.box for d in digits] + [u.box for u in unsure], 0.7, cfg.number_gap)
    out = list(range(len(digits)))  # rows of link: the sure digits, then the unsure as they are admitted
    pending = list(range(len(digits), len(digits) + len(unsure)))
    grew = True
    while grew and pending:
        grew = False
        for u in list(pending):
            if link[u, out].any():
                out.append(u)
                pending.remove(u)
                grew = True
    return list(digits) + [unsure[u - len(digits)] for u in out[len(digits):]]


def _read_from(candidates: Sequence[detect.Candidate], sources: Sequence[tuple[np.ndarray, tuple[int, int], int]]
               ) -> list[np.ndarray]:
    """Per candidate the mask it was read from: the finer mask of a small one (see ClassifyConfig.fine_below_px),
    whose loops blur did not fill, else its own; unions of pieces, added after `sources`, their own."""
    return [s[0] for s in sources] + [c.mask for c in candidates[len(sources):]]


@dataclass
class _Hypothesis:
    rows: list[int]  # rows of the probability batch, one per digit
    boxes: list[tuple[int, int, int, int]]  # processing pixels, one per row
    reread: bool = False  # the whole candidate read again from another mask (the second look), not a cut
    min_confidence: float = 0.0  # and it must be at least this sure (a lone reread, no sure digit beside it)
    no_ones: bool = False  # and not a 1 (a reread without lines: what is left of a box can be one of its sides)


class Recognizer:
    """Reads handwritten digits and numbers in images. Load once, call `read` per image (thread-safe)."""

    def __init__(self, model: modelfile.LoadedModel, config: ReaderConfig = ReaderConfig()):
        self.model = model
        self.config = config
        extra = model.metadata.get("extra") or {}
        self.temperature = float(extra.get("temperature", 1.0))
        self.reject_index = 10 if len(model.classes) > 10 else None

    @classmethod
    def load(cls, path: str | Path | None = None, config: ReaderConfig | None = None) -> "Recognizer":
        """The shipped model (checked against the SHA-256 of its card), or a model file of yours."""
        config = config or ReaderConfig()
        if path is None:
            path = shipped_model_path()
            model = modelfile.load_model(path, config.intra_op_threads, expected_sha256=_shipped_sha256(path))
        else:
            model = modelfile.load_model(path, config.intra_op_threads)
        return cls(model, config)

    @property
    def metadata(self) -> dict:
        return {**self.model.metadata, "path": self.model.path, "sha256": self.model.sha256}

    @property
    def classes(self) -> tuple[str, ...]:
        return self.model.classes

    def classify(self, crops: np.ndarray) -> np.ndarray:
        """(N, 28, 28) MNIST-style crops (white ink on black; uint8 0..255 or float 0..1) -> (N, classes)
        calibrated probabilities, the ten digits first."""
        crops = np.asarray(crops)
        if crops.ndim == 2 and crops.shape == (28, 28):
            crops = crops[None]
        if crops.ndim != 3 or crops.shape[1:] != (28, 28):
            raise ValueError(f"crops must have shape (N, 28, 28), got {crops.shape}")
        if crops.dtype != np.uint8 and not np.issubdtype(crops.dtype, np.floating):
            raise ValueError(f"crops must be uint8 0..255 or float 0..1, got {crops.dtype}")
        return softmax(self.model.logits(crops), self.temperature) if len(crops) else np.zeros((0, len(self.classes)), np.float32)

    # ------------------------------------------------------------ read

    def read(self, image: np.ndarray) -> Reading:
        """Read the digits and numbers in a BGR (H, W, 3) or grey (H, W) uint8 image."""
        image = np.asarray(image)
        if image.dtype != np.uint8:
            raise ValueError(f"image must be uint8, got {image.dtype}")
        if image.ndim not in (2, 3) or image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError(f"image must be (H, W) or (H, W, 3) and non-empty, got shape {image.shape}")
        reading, boxes, masks = self._read(image, boxes=True)
        height, width = image.shape[:2]
        if self.config.squash_min_aspect:
            reading = self._unsquash(image, reading, boxes, masks)
        if reading.digits or (self.config.rotate_candidates and len(boxes) > 1):
            reading = self._level(image, reading, boxes)
            if reading.digits:
                return reading
        if not self.config.crop_max_side or max(height, width) > self.config.crop_max_side:
            return reading
        paper, (pad_x, pad_y, zoom) = on_paper(image, self.config.crop_min_side)
        second = self._read(paper)
        if not second.digits:
            return replace(reading, elapsed_ms=reading.elapsed_ms + second.elapsed_ms)
        offset = (pad_x, pad_y)
        return replace(second, width=width, height=height, elapsed_ms=reading.elapsed_ms + second.elapsed_ms,
                       digits=tuple(replace(d, box=_to_input(d.box, zoom, width, height, offset)) for d in second.digits),
                       numbers=tuple(replace(n, box=_to_input(n.box, zoom, width, height, offset)) for n in second.numbers))

    def _unsquash(self, image: np.ndarray, reading: Reading, boxes: Sequence[tuple[int, int, int, int]] = (),
                  masks: Sequence[np.ndarray] = ()) -> Reading:
        """The reading, or, where its digits (two or more) are squashed (their median width over height at least
        squash_min_aspect: a page lying on a desk, taken at a slant, is foreshortened top to bottom), the reading
        of the image stretched top to bottom until they are as wide as tall as squash_aspect, when that one is
        surer (a greater sum of digit confidences), its boxes mapped back. Where fewer than two digits were read,
        the candidates' `boxes` (input pixels) that stand in a row with a neighbour tell the squash
        (squash_candidates): squashed digits read as not-digits. The frame is read stretched only when half of those
        candidates' `masks` (squash_probe_max at most, the largest), and two or more, stretched alone read as sure
        digits (one small batch: rows of letters are far more common than squashed numbers), and the stretched
        reading only adds, as a tilt told by the candidates does (see _level); its added digits must stand in
        numbers of two or more."""
        cfg = self.config
        by_candidates = len(reading.digits) < 2
        if by_candidates:
            row = _in_row(boxes) if cfg.squash_candidates else []
            if len(row) < 2:
                return reading
            aspect = float(np.median([boxes[i][2] / boxes[i][3] for i in row]))
        else:
            aspect = float(np.median([d.box[2] / d.box[3] for d in reading.digits]))
        if aspect < cfg.squash_min_aspect:
            return reading
        f = min(cfg.squash_max_stretch, aspect / cfg.squash_aspect)
        if by_candidates:
            probe = sorted(row, key=lambda i: boxes[i][2] * boxes[i][3])[-cfg.squash_probe_max:]
            stretched = [cv2.resize(masks[i], (masks[i].shape[1], max(1, round(masks[i].shape[0] * f))),
                                    interpolation=cv2.INTER_NEAREST) for i in probe]
            probs = self.classify(np.stack([normalise_mask(m, cfg.normalise) for m in stretched]))
            sure = int(np.count_nonzero(probs[:, :10].max(axis=1) >= cfg.classify.min_confidence))
            if sure < max(2, (len(probe) + 1) // 2):
                return reading
        height, width = image.shape[:2]
        tall = cv2.resize(image, (width, int(round(height * f))), interpolation=cv2.INTER_LINEAR)
        second = self._read(tall)
        elapsed = reading.elapsed_ms + second.elapsed_ms
        if sum(d.confidence for d in second.digits) <= sum(d.confidence for d in reading.digits):
            return replace(reading, elapsed_ms=elapsed)

        def back(box):
            x, y, w, h = box
            y0, y1 = min(int(round(y / f)), height - 1), min(int(round((y + h) / f)), height)
            return (x, y0, w, max(1, y1 - y0))
        mapped = _mapped(second, back, width, height, elapsed)
        if by_candidates and not (_only_adds(reading, mapped, second) and _added_in_numbers(reading, mapped)):
            return replace(reading, elapsed_ms=elapsed)
        return mapped

    def _level(self, image: np.ndarray, reading: Reading, boxes: Sequence[tuple[int, int, int, int]] = ()) -> Reading:
        """The reading, or, where its digits stand in lines tilted by rotate_min_deg or more, the reading of the
        image turned level when that one is surer (a greater sum of digit confidences), its boxes mapped back.
        Where the digits tell no line (none, or none beside another), the line is told by the candidates' `boxes`
        (input pixels; rotate_candidates): a tilted number whose digits were rejected, or read apart. A line
        told so only adds: the turned reading must hold every digit read level (same value, overlapping box),
        and where none was, a number of two digits or more (one stroke turned upright, a page's edge, reads as
        a 1)."""
        min_deg = self.config.rotate_min_deg
        angle = writing_angle([d.box for d in reading.digits])
        by_candidates = angle is None and self.config.rotate_candidates
        if by_candidates:
            angle = writing_angle(boxes)
        if not min_deg or angle is None or abs(angle) < min_deg:
            return reading
        level, back = turned(image, angle)
        second = self._read(level)
        elapsed = reading.elapsed_ms + second.elapsed_ms
        if sum(d.confidence for d in second.digits) <= sum(d.confidence for d in reading.digits):
            return replace(reading, elapsed_ms=elapsed)
        height, width = image.shape[:2]
        mapped = _mapped(second, lambda box: _box_back(box, back, width, height), width, height, elapsed)
        if by_candidates and not _only_adds(reading, mapped, second):
            return replace(reading, elapsed_ms=elapsed)
        return mapped

    def candidate_crops(self, image: np.ndarray, timings: dict[str, float] | None = None
                        ) -> tuple[list[detect.Candidate], float, list[np.ndarray], list[list[_Hypothesis]]]:
        """The reader's first stages on one image: its candidates (in processing pixels), the scale (processing /
        input), the MNIST-style crops it would classify, and per candidate its hypotheses (the whole, then cuts
        into touching digits), each naming its rows of `crops` and their boxes. benchmarks/finetune.py trains
        on exactly these crops. `timings`, when given, gets the milliseconds of "detect" and "normalise"."""
        candidates, scale, crops, options, _, _, _ = self._prepare(image, timings)
        return candidates, scale, crops, options

    def _prepare(self, image: np.ndarray, timings: dict[str, float] | None = None):
        """candidate_crops, plus the grey frame, per candidate the mask it was read from (mask, its origin in
        frame pixels x zoom, zoom), which the second look needs, and the doubtful regions
        (detect.candidates_grey_doubtful)."""
        cfg = self.config
        t0 = time.perf_counter()
        candidates, scale, grey, doubtful = detect.candidates_grey_doubtful(image, cfg.detect)
        t1 = time.perf_counter()
        crops: list[np.ndarray] = []
        options: list[list[_Hypothesis]] = []  # per candidate: whole, then splits
        sources: list[tuple[np.ndarray, tuple[int, int], int]] = []
        for cand in candidates:
            hyps = [_Hypothesis([len(crops)], [cand.box])]
            mask, origin, zoom = cand.mask, cand.box[:2], 1
            if cand.box[3] < cfg.classify.fine_below_px:
                fine = detect.finer_mask_at(grey, cand, cfg.classify.fine_zoom)
                if fine is not None:
                    (mask, origin), zoom = fine, cfg.classify.fine_zoom
            crops.append(normalise_mask(mask, cfg.normalise))
            if cand.box[2] > cfg.classify.split_aspect * cand.box[3]:
                # cut the mask it was read from: a small run's own mask has the loops closed (blobs)
                hyps += self._splits(mask, origin, zoom, crops)
            options.append(hyps)
            sources.append((mask, origin, zoom))
        if timings is not None:
            timings["detect"] = (t1 - t0) * 1000
            timings["normalise"] = (time.perf_counter() - t1) * 1000
        return candidates, scale, crops, options, grey, sources, doubtful

    def _read(self, image: np.ndarray, boxes: bool = False):
        """One reading of the image as it is; with `boxes`, (the reading, its candidates' boxes in input pixels, the
        masks they were read from)."""
        t0 = time.perf_counter()
        height, width = image.shape[:2]
        cfg = self.config
        timings: dict[str, float] = {}
        candidates, scale, crops, options, grey, sources, doubtful = self._prepare(image, timings)
        t2 = time.perf_counter()
        probs = self._classify_once(np.stack(crops)) if crops else np.zeros((0, len(self.classes)), np.float32)
        if cfg.classify.grey_average and crops:
            self._average_grey(candidates, options, probs, grey)
        if cfg.classify.second_look and crops:
            candidates, options, probs = self._second_look(candidates, options, probs, grey, sources)
        t3 = time.perf_counter()
        timings["classify"] = (t3 - t2) * 1000
        marks: list[tuple[int, int, int, int]] = []
        masks = _read_from(candidates, sources)
        digits = self._decide(options, probs, scale, width, height, candidates, masks, marks)
        if doubtful and digits:
            digits += self._doubtful_beside(digits, doubtful, scale, width, height)
        boxed = frozenset(_to_input(c.box, scale, width, height) for c in candidates if c.boxed)
        ordered, numbers = drop_stroke_runs(*group_numbers(digits, cfg.group, boxed, marks), cfg, boxed, marks)
        t4 = time.perf_counter()
        timings["group"] = (t4 - t3) * 1000
        reading = Reading(width, height, numbers, ordered, (t4 - t0) * 1000, timings)
        if boxes:
            return reading, [_to_input(c.box, scale, width, height) for c in candidates], masks
        return reading

    def _classify_once(self, crops: np.ndarray) -> np.ndarray:
        """classify, each distinct crop once: the cuts of a wide region into 2, 3 and 4 parts, and a cut along the
        paper that runs straight, give the same parts again (on a page of printed words, 1,730 crops held 731
        distinct ones)."""
        seen: dict[bytes, int] = {}  # a crop's bytes -> its row among the distinct crops
        firsts: list[int] = []  # each distinct crop's first place in the batch
        rows = []
        for i, crop in enumerate(crops):
            row = seen.setdefault(crop.tobytes(), len(firsts))
            if row == len(firsts):
                firsts.append(i)
            rows.append(row)
        if len(firsts) == len(crops):
            return self.classify(crops)
        return self.classify(crops[firsts])[rows]

    def _average_grey(self, candidates: Sequence[detect.Candidate], options: list[list[_Hypothesis]],
                      probs: np.ndarray, grey: np.ndarray) -> None:
        """ClassifyConfig.grey_average, in place on `probs`: the whole reading of each candidate at least
        grey_average_min_px tall that reads more like a digit than not, and is lone or unsure (grey_average_unsure),
        becomes the mean of its mask's reading and its grey pixels' (one more small batch)."""
        cc = self.config.classify
        wholes = [hyps[0].rows[0] for hyps in options]
        digitlike = [i for i, r in enumerate(wholes) if 1.0 - float(probs[r, :10].sum()) < cc.grey_average_below
                     and candidates[i].box[3] >= cc.grey_average_min_px]
        boxed = {i for i in digitlike if candidates[i].boxed}  # in a drawn box: its grey patch holds the box
        if not digitlike:
            return
        link = side_by_side([candidates[i].box for i in digitlike], 0.7, self.config.group.number_gap)
        np.fill_diagonal(link, False)
        look = [i for k, i in enumerate(digitlike) if i not in boxed and (not link[k].any()  # lone: no neighbour
                or float(probs[wholes[i], :10].max()) < cc.grey_average_unsure)]
        if not look:
            return
        rows = [wholes[i] for i in look]
        probs[rows] = 0.5 * (probs[rows] + self.classify(np.stack([self._grey_crop(grey, candidates[i]) for i in look])))

    def _grey_crop(self, grey: np.ndarray, cand: detect.Candidate) -> np.ndarray:
        """A candidate's MNIST-style crop from its grey pixels (normalise_grey), as the grey average and the
        second look's grey reread both read it."""
        return normalise_grey(*detect.grey_patch_at(grey, cand), self.config.normalise, self.config.classify.grey_reach)

    def _most_parts(self, zoom: int) -> int:
        """How many touching digits the first look cuts a mask read at `zoom` into, at most: a small candidate's
        finer mask (zoom > 1) parts a blurred number again (ClassifyConfig.fine_max_split_parts)."""
        cc = self.config.classify
        return cc.fine_max_split_parts if zoom > 1 else cc.max_split_parts

    def _splits(self, mask: np.ndarray, origin: tuple[int, int], zoom: int, crops: list[np.ndarray],
                parts_range: tuple[int, int] | None = None) -> list[_Hypothesis]:
        """A candidate's mask (its top-left pixel at `origin` in frame pixels x `zoom`) cut into touching digits
        (around its width / a digit's width, 2 to _most_parts(zoom) of them, or within `parts_range`), each way as
        one hypothesis with boxes in frame pixels; their normalised crops are appended to `crops`."""
        cc = self.config.classify
        lo, hi = parts_range or (2, self._most_parts(zoom))
        h, w = mask.shape
        est = int(round(w / (cc.split_width_per_digit * h)))
        hyps = []
        ways: list[tuple[list[int], float, int]] = []  # (cut columns, how sure each part must at least be, reach)
        for parts in sorted({max(2, est), max(2, est + 1), max(2, est - 1)}):
            if not lo <= parts <= hi:
                continue
            ways.append((detect.split_points(mask, parts), 0.0, 0))
            if parts == 2 and cc.two_way_cuts > 1:
                ways += [([x], cc.other_cut_min_confidence, 0) for x in detect.two_way_cuts(mask, cc.two_way_cuts)
                         if [x] != ways[-1][0]]
        if cc.cut_reach and h <= cc.cut_max_px:
            # Where a column crosses ink, the same cuts along the paper between the digits, where it winds (two
            # digits written overlapping), each part as sure as at another column than split_points'
            reach = max(1, int(cc.cut_reach * h))
            ways += [(cuts, cc.other_cut_min_confidence, reach) for cuts, _, _ in ways
                     if cuts and any(mask[:, c].any() for c in cuts)]
        for cuts, least, reach in ways:
            parts = len(cuts) + 1
            pieces = detect.split_mask(mask, cuts, reach) if cuts else []
            if len(pieces) != parts:
                continue
            boxes = [_part_box(sub, dx, origin, zoom) for dx, sub in pieces]  # split_mask keeps only parts with ink
            if min(b[3] for b in boxes) < cc.split_min_height * h / zoom:
                continue  # a part much shorter than the whole: letters, not digits; normalise nothing
            rows = list(range(len(crops), len(crops) + len(pieces)))
            crops.extend(normalise_mask(sub, self.config.normalise) for _, sub in pieces)
            hyps.append(_Hypothesis(rows, boxes, min_confidence=least))
        return hyps

    def _second_look(self, candidates: Sequence[detect.Candidate], options: list[list[_Hypothesis]], probs: np.ndarray,
                     grey: np.ndarray, sources: list[tuple[np.ndarray, tuple[int, int], int]]
                     ) -> tuple[list[detect.Candidate], list[list[_Hypothesis]], np.ndarray]:
        """More hypotheses for the candidates that are no sure digit but stand in a number beside one (see
        ClassifyConfig.second_look), classified in a second small batch. Returns the candidates (with unions of
        pieces added), their options and the probabilities, with the new ones added."""
        cc = self.config.classify
        kinds = [self._outcome(hyps, probs, m)[0] for hyps, m in zip(options, _read_from(candidates, sources))]
        sure = [i for i, k in enumerate(kinds) if k in ("whole", "split")]
        # A merged union (DetectConfig.typical_unions) is looked at as a region; its weak pieces are not
        pieces = detect.merged_pieces(candidates)
        weak = [i for i, k in enumerate(kinds) if k in ("unsure", "rejected") and
                (candidates[i].merged or not candidates[i].parts) and candidates[i].box not in pieces]
        lone = not sure and cc.second_unions and cc.lone_unions
        if not weak or not (sure or (lone and len(weak) > 1) or cc.lone_rereads or cc.lone_pairs):
            return candidates, options, probs
        bare = self._without_edge_lines(weak, sources) if cc.edge_line_rereads else {}
        link = self._side_by_side(candidates, sure + weak, bare)
        n_sure = len(sure)
        crops: list[np.ndarray] = []
        base = len(probs)
        options = [list(h) for h in options]
        candidates = list(candidates)
        first_union = len(candidates)
        if cc.second_unions and (sure or lone):
            for union in self._weak_unions([candidates[i] for i in weak], [candidates[i].box for i in sure]):
                candidates.append(union)
                options.append([_Hypothesis([base + len(crops)], [union.box])])
                crops.append(normalise_mask(union.mask, self.config.normalise))
        first_sure_union = len(candidates)
        if cc.sure_unions and sure:
            whole = [candidates[i] for i, k in enumerate(kinds) if k == "whole" and not candidates[i].parts]
            for union in self._sure_unions(whole, [candidates[i] for i in weak],
                                           [c.box for c in candidates if not c.parts]):
                candidates.append(union)
                options.append([_Hypothesis([base + len(crops)], [union.box])])
                crops.append(normalise_mask(union.mask, self.config.normalise))
        given: list[int] = []  # weak candidates given new hypotheses, the only ones whose reading can change
        looked: set[int] = set()  # ... of which these had the whole look (beside a sure digit)
        wide: list[tuple[int, float]] = []  # run_search's candidates, each with how sure its parts must be
        for k, i in enumerate(weak):
            beside = bool(link[n_sure + k, :n_sure].any())
            alone = not np.delete(link[n_sure + k], n_sure + k).any()  # no candidate of its height in line
            if cc.lone_pairs and alone and self._pair_shaped(candidates[i].box):
                self._lone_pair(i, sources[i], options, crops, base)
                given.append(i)
            # beside a sure digit, or alone in its line (a word of a text line has words beside it)
            if cc.run_search and (beside or alone) and not candidates[i].parts and \
                    candidates[i].box[2] > cc.split_aspect * candidates[i].box[3] and \
                    self._digitlike(options[i][1:], probs) >= cc.run_digitlike:
                wide.append((i, cc.run_min_confidence if beside else cc.run_lone_min_confidence))
            if not beside and not (cc.lone_rereads and kinds[i] == "unsure"):
                continue
            self._look_again(i, candidates[i], sources[i], beside, grey, options, crops, base, bare.get(i))
            if i not in given:
                given.append(i)
            if beside:
                looked.add(i)
        if wide:
            self._run_hypotheses(wide, sources, options, crops, base)
        if not crops:
            return candidates, options, probs
        probs = np.concatenate([probs, self.classify(np.stack(crops))])
        if lone:  # nothing is beside a sure digit: keep the unions sure enough alone
            keep = [k for k in range(first_union, len(options))
                    if probs[options[k][0].rows[0]][:10].max() >= cc.lone_union_min_confidence]
            candidates = candidates[:first_union] + [candidates[k] for k in keep]
            options = options[:first_union] + [options[k] for k in keep]
        elif len(candidates) > first_sure_union:  # keep the unions of a sure digit that read as another, sure
            row_of = {c.box: hyps[0].rows[0] for c, hyps in zip(candidates[:first_union], options) if not c.parts}
            keep = [k for k in range(first_sure_union, len(options))
                    if self._is_digit(p := probs[options[k][0].rows[0]], cc.sure_union_min_confidence) and
                    int(np.argmax(p)) != int(np.argmax(probs[row_of[candidates[k].parts[0]]]))]
            candidates = candidates[:first_sure_union] + [candidates[k] for k in keep]
            options = options[:first_sure_union] + [options[k] for k in keep]
        if cc.second_round and sure:
            # A second round: a weak candidate beside a digit that only this look made sure (the 5 of "157" whose
            # 7 was blurred; its 1 and 5 touch) gets the look it was not given, once, with no further unions.
            now = [i for i in given if self._outcome(options[i], probs, sources[i][0])[0] in ("whole", "split")]
            rest = [i for i in weak if i not in looked and i not in now]
            if now and rest:
                link = self._side_by_side(candidates, now + rest, bare)
                base, crops = len(probs), []
                for k, i in enumerate(rest):
                    if link[len(now) + k, :len(now)].any():
                        self._look_again(i, candidates[i], sources[i], True, grey, options, crops, base, bare.get(i))
                if crops:
                    probs = np.concatenate([probs, self.classify(np.stack(crops))])
        return candidates, options, probs

    def _doubtful_beside(self, digits: list[Digit], doubtful: Sequence[detect.Candidate], scale: float, width: int,
                         height: int) -> list[Digit]:
        """The doubtful regions (detect.candidates_grey_doubtful: taken for an edge) that stand in a number beside a
        digit read (of about its height, as close as digits of one number), overlap none, and read as a digit at
        least doubtful_min_confidence sure as another digit than 1 (one small batch)."""
        cc = self.config.classify
        boxes = [_to_input(c.box, scale, width, height) for c in doubtful]
        near = side_by_side(boxes + [d.box for d in digits], 0.7, self.config.group.number_gap)[:len(boxes), len(boxes):]
        pick = [i for i in range(len(boxes)) if near[i].any() and
                all(detect.box_iou(boxes[i], d.box) <= cc.nms_iou for d in digits)]
        if not pick:
            return []
        probs = self.classify(np.stack([normalise_mask(doubtful[i].mask, self.config.normalise) for i in pick]))
        return [self._digit(p, doubtful[i].box, scale, width, height) for i, p in zip(pick, probs)
                if self._is_digit(p, cc.doubtful_min_confidence) and int(np.argmax(p)) != 1
                and not self._polygon_not_zero(p, doubtful[i].mask)]

    def _pair_shaped(self, box: tuple[int, int, int, int]) -> bool:
        """As wide as two narrow digits touching: from second_split_aspect to split_aspect x its height (wider ones
        the first look cuts already)."""
        cc = self.config.classify
        return cc.second_split_aspect * box[3] < box[2] <= cc.split_aspect * box[3]

    def _second_cuts(self, source: tuple[np.ndarray, tuple[int, int], int], crops: list[np.ndarray], base: int,
                     parts_range: tuple[int, int] | None = None) -> list[_Hypothesis]:
        """_splits of a candidate's mask (`source`) for the second look's batch: crops appended to `crops`, whose
        rows start at `base` in the probability batch."""
        mask, origin, zoom = source
        cuts = self._splits(mask, origin, zoom, crops, parts_range)
        for hyp in cuts:
            hyp.rows = [base + r for r in hyp.rows]
        return cuts

    def _lone_pair(self, i: int, source: tuple[np.ndarray, tuple[int, int], int],
                   options: list[list[_Hypothesis]], crops: list[np.ndarray], base: int) -> None:
        """ClassifyConfig.lone_pairs: cuts of pair-shaped weak candidate i into two touching digits, added to
        options[i] (their crops to `crops`, whose rows start at `base`), each part lone_pair_min_confidence sure."""
        cuts = self._second_cuts(source, crops, base, (2, 2))
        for hyp in cuts:
            hyp.min_confidence = max(hyp.min_confidence, self.config.classify.lone_pair_min_confidence)
        options[i] += cuts

    def _digitlike(self, cuts: list[_Hypothesis], probs: np.ndarray) -> float:
        """The fraction of the parts of `cuts` (read in the first look, rows of `probs`) that read more as a digit
        than as "not a digit"; 0 with no cuts."""
        rows = [r for hyp in cuts if not hyp.reread for r in hyp.rows if r < len(probs)]
        if not rows:
            return 0.0
        p = probs[rows]
        return float(np.mean(p[:, :10].max(axis=1) > p[:, 10:].sum(axis=1)))

    def _run_pieces(self, mask: np.ndarray) -> tuple[list[int], list[tuple[int, int]], list[np.ndarray]]:
        """A wide mask's run_cut_points, and the pieces between two of them worth reading: run_piece_width heights
        wide, their ink over half the mask's height (span of points, the piece's columns of the mask)."""
        lo, hi = self.config.classify.run_piece_width
        h = mask.shape[0]
        points = detect.run_cut_points(mask, self.config.classify.run_most_points, lo)
        spans, subs = [], []
        for a in range(len(points)):
            for b in range(a + 1, len(points)):
                if points[b] - points[a] > hi * h:
                    break
                sub = mask[:, points[a]:points[b]]
                bounds = ink_bounds(sub)
                if bounds is not None and bounds[3] >= 0.5 * h:
                    spans.append((a, b))
                    subs.append(sub)
        return points, spans, subs

    def _run_hypotheses(self, wide: list[tuple[int, float]], sources: list[tuple[np.ndarray, tuple[int, int], int]],
                        options: list[list[_Hypothesis]], crops: list[np.ndarray], base: int) -> None:
        """ClassifyConfig.run_search for the (candidate, least) in `wide`: each candidate's mask (`sources`) cut at
        its run_cut_points, every piece worth reading (_run_pieces) read in one small batch for all of them, and
        per candidate the best way of cutting it into pieces that read as digits at least `least` sure
        (best_cutting; at most run_max_ones of them 1s) added to its options, those parts' crops appended to
        `crops` (rows from `base`)."""
        cc = self.config.classify
        runs = [(i, least, *self._run_pieces(sources[i][0])) for i, least in wide]
        runs = [r for r in runs if len(r[3]) >= 2]
        if not runs:
            return
        normalised = [normalise_mask(sub, self.config.normalise) for r in runs for sub in r[4]]
        p = self.classify(np.stack(normalised))
        end = 0
        for i, least, points, spans, subs in runs:
            first, end = end, end + len(spans)  # this run's rows of p
            q = p[first:end]
            k_of = {span: k for k, span in enumerate(spans)}
            digit = q[:, :10].argmax(axis=1)
            sure = q[np.arange(len(q)), digit]
            way = best_cutting(len(points), {span: float(np.log(sure[k])) for k, span in enumerate(spans)
                                             if sure[k] >= least})
            if not way or len(way) < 2 or sum(int(digit[k_of[span]]) == 1 for span in way) > cc.run_max_ones * len(way):
                continue
            _, origin, zoom = sources[i]
            rows, boxes = [], []
            for span in way:
                boxes.append(_part_box(subs[k_of[span]], points[span[0]], origin, zoom))
                rows.append(base + len(crops))
                crops.append(normalised[first + k_of[span]])
            options[i].append(_Hypothesis(rows, boxes, min_confidence=least))

    def _side_by_side(self, candidates: Sequence[detect.Candidate], ids: list[int],
                      bare: dict[int, tuple[np.ndarray, tuple[int, int, int, int]]]) -> np.ndarray:
        """side_by_side of candidates `ids` in a number (the second look's test of "beside"). A candidate holding
        lines along its edges (`bare`: a form's box round its digit) stands there as itself or as its ink without
        the lines, which alone is of its neighbours' height."""
        gap = self.config.group.number_gap
        link = side_by_side([candidates[i].box for i in ids], 0.7, gap)
        if any(i in bare for i in ids):
            link |= side_by_side([bare[i][1] if i in bare else candidates[i].box for i in ids], 0.7, gap)
        return link

    def _without_edge_lines(self, weak: list[int], sources: list[tuple[np.ndarray, tuple[int, int], int]]
                            ) -> dict[int, tuple[np.ndarray, tuple[int, int, int, int]]]:
        """Per weak candidate whose mask holds straight lines along its edges (detect.strip_edge_lines), its mask
        without them and that ink's box in frame pixels."""
        out = {}
        for i in weak:
            mask, origin, zoom = sources[i]
            stripped = detect.strip_edge_lines(mask)
            if stripped is not None:
                out[i] = (stripped, _part_box(stripped, 0, origin, zoom))
        return out

    def _look_again(self, i: int, cand: detect.Candidate, source: tuple[np.ndarray, tuple[int, int], int],
                    beside: bool, grey: np.ndarray, options: list[list[_Hypothesis]], crops: list[np.ndarray],
                    base: int, bare: tuple[np.ndarray, tuple[int, int, int, int]] | None = None) -> None:
        """The second look's hypotheses for weak candidate i, added to options[i], their crops to `crops` (whose
        rows start at `base` in the probability batch): a reread from an Otsu mask, and, beside a sure digit, a
        reread from its grey pixels (ClassifyConfig.grey_rereads), one from `bare`, its mask without the lines
        along its edges (_without_edge_lines), and cuts into touching digits (see ClassifyConfig.second_look).
        A reread already made (a lone one, in the first round) is not made again: beside a digit it need only be
        as sure as a first reading."""
        cc = self.config.classify
        zoom = source[2]
        made = [h for h in options[i] if h.reread]
        if made:
            if beside:
                for hyp in made:
                    hyp.min_confidence = 0.0
        elif zoom == 1:  # read from its own mask: read it again from an Otsu mask of its grey patch
            found = detect.finer_mask_at(grey, cand, 1)
            if found is not None:
                other, (ox, oy) = found
                crops.append(normalise_mask(other, self.config.normalise))
                options[i].append(_Hypothesis([base + len(crops) - 1], [(ox, oy, other.shape[1], other.shape[0])],
                                              reread=True,
                                              min_confidence=0.0 if beside else cc.lone_reread_min_confidence))
        if not beside:
            return
        if cc.grey_rereads and not cand.boxed:  # and from its grey pixels (normalise_grey; in a drawn box they hold
            # the box); once, as the second round skips `looked`
            crops.append(self._grey_crop(grey, cand))
            options[i].append(_Hypothesis([base + len(crops) - 1], [cand.box], reread=True))
        if bare is not None:  # and from its mask without the lines along its edges (edge_line_rereads)
            crops.append(normalise_mask(bare[0], self.config.normalise))
            options[i].append(_Hypothesis([base + len(crops) - 1], [bare[1]], reread=True, no_ones=True))
        _, _, w, h = cand.box
        if self._pair_shaped(cand.box):
            options[i] += self._second_cuts(source, crops, base)
        elif w > cc.split_aspect * h:  # the first look cut it into at most max_split_parts: try more
            options[i] += self._second_cuts(source, crops, base, (self._most_parts(zoom) + 1, cc.second_max_split_parts))

    def _sure_unions(self, sure: list[detect.Candidate], weak: list[detect.Candidate],
                     boxes: list[tuple[int, int, int, int]]) -> list[detect.Candidate]:
        """Unions of a sure digit (`sure`: read whole) and a smaller piece beside it that is no digit (`weak`),
        with no other candidate (`boxes`: all of them) nearer the piece: the parts of a digit broken where no faint
        ink joins them (see ClassifyConfig.sure_unions). Each union names the digit first in its `parts`."""
        cc, dc = self.config.classify, self.config.detect
        nearest = {q.box: min((_box_gap(q.box, b) for b in boxes if b != q.box), default=float("inf")) for q in weak}
        out: list[detect.Candidate] = []
        for p in sure:
            ph = p.box[3]
            for q in weak:
                if p.polarity != q.polarity or q.box[3] > cc.sure_union_piece_height * ph:
                    continue
                gap = _box_gap(p.box, q.box)
                if gap > cc.sure_union_gap * ph or gap > nearest[q.box]:
                    continue
                _, _, w, h = _union([p.box, q.box])
                if w > dc.union_max_aspect * h:
                    continue
                out.append(detect.union_of([p, q]))
                if len(out) >= cc.max_second_unions:
                    return out
        return out

    def _weak_unions(self, weak: list[detect.Candidate], sure: list[tuple[int, int, int, int]]) -> list[detect.Candidate]:
        """Pairs of candidates that are no sure digit, close together (ClassifyConfig.union_gap, union_line_gap),
        whose union is shaped like a digit and stands in a number beside a sure one: the pieces of a digit broken
        where no faint ink joins them. Each union is offered as a candidate of its own (its `parts` are the
        pieces: detect.piece_unions' bookkeeping)."""
        cc, dc = self.config.classify, self.config.detect
        out: list[detect.Candidate] = []
        tallest = max((b[3] for b in sure), default=0)
        for a in range(len(weak)):
            for b in range(a + 1, len(weak)):
                p, q = weak[a], weak[b]
                if p.polarity != q.polarity:
                    continue
                ph, qh = p.box[3], q.box[3]
                gap = _box_gap(p.box, q.box)
                if gap > max(cc.union_gap, cc.union_line_gap) * max(ph, qh, tallest):
                    continue  # (a quick bound: no gap of either kind below can be wider)
                box = _union([p.box, q.box])
                _, _, w, h = box
                if w > dc.union_max_aspect * h or (h > 1.5 * max(ph, qh) and min(ph, qh) > 0.8 * max(ph, qh)):
                    continue  # too wide for one digit, or two pieces of about the same height stacked: two lines
                close = gap <= cc.union_gap * max(ph, qh)
                if sure:
                    beside = side_by_side([box] + list(sure), 0.7, self.config.group.number_gap)[0, 1:]
                    if not beside.any():
                        continue  # (with no sure digit on the page, a lone union: see ClassifyConfig.lone_unions)
                    close = close or gap <= cc.union_line_gap * max(sure[j][3] for j in np.flatnonzero(beside))
                if not close:
                    continue
                out.append(detect.union_of([p, q]))
                if len(out) >= cc.max_second_unions:
                    return out
        return out

    def _digit(self, p: np.ndarray, box: tuple[int, int, int, int], scale: float, width: int, height: int) -> Digit:
        d = int(np.argmax(p[:10]))
        top = np.argsort(-p[:10])[:3]
        return Digit(d, float(p[d]), _to_input(box, scale, width, height),
                     tuple((int(k), float(p[k])) for k in top), probs=tuple(float(v) for v in p[:10]))

    def _is_digit(self, p: np.ndarray, min_conf: float) -> bool:
        best = int(np.argmax(p))
        return best < 10 and float(p[best]) >= min_conf

    def _polygon_not_zero(self, p: np.ndarray, mask: np.ndarray) -> bool:
        """The candidate reads as 0 but is a triangle or a box (see ClassifyConfig.zero_min_triangle_fill)."""
        cc = self.config.classify
        if int(np.argmax(p)) != 0:
            return False
        fill = detect.polygon_fill(mask)
        return fill is not None and (fill[0] < cc.zero_min_triangle_fill or fill[1] < cc.zero_min_rect_fill)

    def _decide(self, options: list[list[_Hypothesis]], probs: np.ndarray, scale: float,
                width: int, height: int, candidates: Sequence[detect.Candidate],
                masks: Sequence[np.ndarray] | None = None, marks: list | None = None) -> list[Digit]:
        """The digits the candidates read as; `masks`: per candidate the mask it was read from (_read_from; by
        default their own). `marks`, when given, gets the boxes (input pixels) of the candidates read as no
        digit."""
        cc, dc = self.config.classify, self.config.detect
        masks = [c.mask for c in candidates] if masks is None else masks
        found: list[Digit] = []
        rejected: list[tuple[int, int, int, int]] = []
        unsure: list[Digit] = []  # digits under min_confidence, over neighbour_min_confidence
        unsure_boxes: list[tuple[int, int, int, int]] = []  # theirs, when they do not count as rejected
        outcomes = [self._outcome(hyps, probs, m) for hyps, m in zip(options, masks)]
        # A union of broken pieces (detect.piece_unions) is read instead of its pieces when it is a digit surer
        # than the least sure of them (a piece that is no digit counts as 0); otherwise it is as if never seen.
        score = {c.box: o[2] for c, o in zip(candidates, outcomes) if not c.parts}
        unions = sorted(((i, c) for i, c in enumerate(candidates) if c.parts), key=lambda ic: -outcomes[ic[0]][2])
        ink = {c.box: cv2.countNonZero(c.mask) for c in candidates if not c.parts} if cc.rims_give_way and unions else {}
        taken: set[tuple[int, int, int, int]] = set()
        wins = set()
        for i, c in unions:
            least = min(score.get(b, 0.0) for b in c.parts)  # a piece that is no digit scores 0
            surer = outcomes[i][0] == "whole" and (outcomes[i][2] > least or self._over_rims(c, ink))
            if not taken & set(c.parts) and (surer or (c.merged and not self._pieces_in_lines(c.parts, score))):
                wins.add(i)
                taken |= set(c.parts)
        for i, ((kind, payload, _), hyps, cand) in enumerate(zip(outcomes, options, candidates)):
            if (i not in wins) if cand.parts else (cand.box in taken):
                continue
            if kind == "split":
                for row, box in zip(payload.rows, payload.boxes):
                    found.append(self._digit(probs[row], box, scale, width, height))
            elif kind == "whole":
                found.append(self._digit(probs[hyps[0].rows[0]], hyps[0].boxes[0], scale, width, height))
            else:  # unsure digits are letters for the word rule only with unsure_letters; 1s beside them are strokes
                cover = dc.frame_min_side_cover
                if kind == "rejected" and cover and detect.drawn_box(masks[i], cover):
                    continue  # an empty box drawn on a form is no letter of a word
                box = _to_input(hyps[0].boxes[0], scale, width, height)
                (rejected if kind == "rejected" or cc.unsure_letters else unsure_boxes).append(box)
                if kind == "rejected" and marks is not None:
                    marks.append(box)
                if kind == "unsure":
                    unsure.append(self._digit(probs[hyps[0].rows[0]], hyps[0].boxes[0], scale, width, height))
        found = self._suppress(found)
        found = drop_words(found, rejected, cc, unsure_boxes)
        found = self._suppress(admit_neighbours(found, unsure, self.config.group))
        return self._drop_specks(self._drop_enclosing(found))

    def _pieces_in_lines(self, parts, score: dict) -> bool:
        """Every piece of a merged union reads as a digit and stands side by side with another digit: two lines of
        small digits, not the pieces of one."""
        if not all(score.get(b, 0.0) for b in parts):
            return False
        others = [b for b, s in score.items() if s and b not in parts]
        if not others:
            return False
        near = side_by_side(list(parts) + others, 0.7, self.config.group.number_gap)[:len(parts), len(parts):]
        return bool(near.any(axis=1).all())

    def _over_rims(self, c: detect.Candidate, ink: dict[tuple[int, int, int, int], int]) -> bool:
        """Union or coarse region c covers a region of its own extent holding much less ink: the rims of its
        thick strokes, found by the fine pass (see ClassifyConfig.rims_give_way)."""
        d = self.config.detect
        whole = cv2.countNonZero(c.mask)
        return any(b in ink and detect.box_iou(b, c.box) >= d.coarse_same_iou and ink[b] < d.coarse_hollow_frac * whole
                   for b in c.parts)

    def _outcome(self, hyps: list[_Hypothesis], probs: np.ndarray, mask: np.ndarray) -> tuple[str, _Hypothesis | None, float]:
        """What one candidate reads as: ("split", the best split, its least sure part's probability), ("whole",
        None, its probability), ("unsure", None, 0.0) or ("rejected", None, 0.0)."""
        cc = self.config.classify
        p_whole = probs[hyps[0].rows[0]]
        polygon = self._polygon_not_zero(p_whole, mask)
        whole_ok = self._is_digit(p_whole, cc.min_confidence) and not polygon
        best_split, best_score = None, -1.0
        h, w = mask.shape
        for hyp in hyps[1:] if not whole_ok or w > cc.split_aspect * h else ():
            ps = probs[hyp.rows]
            if hyp.reread:
                if self._is_digit(ps[0], max(cc.min_confidence, hyp.min_confidence)) and \
                        not self._polygon_not_zero(ps[0], mask) and not (hyp.no_ones and int(np.argmax(ps[0])) == 1):
                    score = float(ps[0][:10].max())
                    if score > best_score:
                        best_split, best_score = hyp, score
                continue
            read = [int(np.argmax(p)) for p in ps]
            if set(read) <= set(cc.letter_strokes) and not (
                    cc.letter_pair_aspect and len(read) == 2 and read != [1, 1] and w >= cc.letter_pair_aspect * h):
                continue  # the strokes of a letter (n, m, u, h, H), not touching digits
            if all(self._is_digit(p, max(cc.split_min_confidence, hyp.min_confidence)) for p in ps):
                score = float(np.min(ps[:, :10].max(axis=1)))
                if score > best_score:
                    best_split, best_score = hyp, score
        whole_score = float(p_whole[:10].max()) if whole_ok else -1.0
        if best_split is not None and best_score > whole_score:
            return "split", best_split, best_score
        if whole_ok:
            return "whole", None, whole_score
        if self._is_digit(p_whole, cc.neighbour_min_confidence) and not polygon:
            return "unsure", None, 0.0
        return "rejected", None, 0.0

    def _suppress(self, digits: list[Digit]) -> list[Digit]:
        kept: list[Digit] = []
        for d in sorted(digits, key=lambda d: -d.confidence):
            if all(detect.box_iou(d.box, k.box) <= self.config.classify.nms_iou for k in kept):
                kept.append(d)
        return kept

    def _drop_enclosing(self, digits: list[Digit]) -> list[Digit]:
        """Drop a "digit" whose box holds another digit wholly inside it, at least enclosing_min_frac of its height:
        a ring drawn round a number (which reads as a 0) or a box round it, not a digit."""
        frac = self.config.classify.enclosing_min_frac
        if not frac or len(digits) < 2:
            return digits
        return [d for d in digits if not any(detect.strictly_inside(o.box, d.box) and o.box[3] >= frac * d.box[3]
                                             for o in digits if o is not d)]

    def _drop_specks(self, digits: list[Digit]) -> list[Digit]:
        """Drop "digits" much smaller than the tallest in their line (ClassifyConfig.small_in_line, giant_strokes),
        and lone ones much smaller than the tallest on the page (small_on_page)."""
        out = []
        cc = self.config.classify
        for line in group_lines(digits, self.config.group):
            line = sorted(line, key=lambda d: -d.box[3])
            while cc.giant_strokes and len(line) > 1 and line[0].digit in (1, 7) and \
                    line[1].box[3] < cc.small_in_line * line[0].box[3]:
                line = line[1:]
            tallest = line[0].box[3]
            out.append([d for d in line if d.box[3] >= cc.small_in_line * tallest])
        if cc.small_on_page:
            page = max((d.box[3] for line in out for d in line if d.digit not in (1, 7)), default=0)
            out = [line for line in out if len(line) > 1 or line[0].box[3] >= cc.small_on_page * page]
        return [d for line in out for d in line]
