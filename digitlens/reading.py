"""The result types of the reader: Digit, Number, Reading. Plain data, JSON-able, no numpy inside.

The JSON shape is a contract other programs parse (see DESIGN.md):
  {"width", "height", "numbers": [{"text", "confidence", "box": [x, y, w, h], "digits": [i, ...]}],
   "digits": [{"digit", "confidence", "box": [x, y, w, h], "top3": [[d, p], ...]}], "elapsed_ms"}
`digitlens read --json` adds "path" in front; `live --json` adds "frame", "t" and an "id" per digit.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

Box = tuple[int, int, int, int]  # x, y, w, h in pixels of the input image


@dataclass(frozen=True)
class Digit:
    digit: int  # 0..9
    confidence: float  # calibrated probability of `digit`, 0..1
    box: Box
    top3: tuple[tuple[int, float], ...]  # the three most likely digits with their probabilities
    id: int | None = None  # tracking id, set by the live tracker only
    probs: tuple[float, ...] = field(default=(), compare=False, repr=False)  # the ten digits' probabilities, 0..9
    # (the reader's own, for probability bars; not in the JSON contract)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "digit": int(self.digit),
            "confidence": round(float(self.confidence), 4),
            "box": [int(v) for v in self.box],
            "top3": [[int(k), round(float(p), 4)] for k, p in self.top3],
        }
        if self.id is not None:
            d["id"] = int(self.id)
        return d


@dataclass(frozen=True)
class Number:
    text: str  # the digits left to right, e.g. "2026"
    confidence: float  # product of its digits' confidences
    box: Box
    digits: tuple[int, ...]  # indices into Reading.digits

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "confidence": round(float(self.confidence), 4),
                "box": [int(v) for v in self.box], "digits": [int(i) for i in self.digits]}


@dataclass(frozen=True)
class Reading:
    width: int
    height: int
    numbers: tuple[Number, ...] = ()  # in reading order: lines top to bottom, left to right
    digits: tuple[Digit, ...] = ()  # in reading order
    elapsed_ms: float = 0.0
    timings: dict[str, float] = field(default_factory=dict, compare=False)  # per stage, ms; not in JSON

    @property
    def text(self) -> str:
        """All numbers, space-separated, in reading order ('' when there is no digit)."""
        return " ".join(n.text for n in self.numbers)

    def to_dict(self) -> dict[str, Any]:
        return {"width": int(self.width), "height": int(self.height),
                "numbers": [n.to_dict() for n in self.numbers],
                "digits": [d.to_dict() for d in self.digits],
                "elapsed_ms": round(float(self.elapsed_ms), 2)}

    def with_elapsed(self, ms: float) -> "Reading":
        return replace(self, elapsed_ms=ms)
