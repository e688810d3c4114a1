"""Torch modules: the seed's network and the default network, and a registry of them by name.

Models return logits; softmax belongs to the consumer. Sizes are derived, never hand-computed.
Only training imports this module: nothing that recognises digits needs torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

DIGITS = tuple(str(d) for d in range(10))
REJECT = "none"  # the "not a digit" class the default network learns from negatives


def _flat_features(features: nn.Module, size: int = 28) -> int:
    with torch.no_grad():
        return features(torch.zeros(1, 1, size, size)).flatten(1).shape[1]


class SeedNet(nn.Module):
    """The seed's Keras network, layer for layer: Conv32-Conv64-MaxPool-Dropout-Dense128-Dropout-Dense10."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(),
            nn.Conv2d(32, 64, 3), nn.ReLU(),
            nn.MaxPool2d(2), nn.Dropout(0.25),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(_flat_features(self.features), 128), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(128, num_classes),
        )
        for m in self.modules():  # Keras' defaults: glorot_uniform kernels, zero biases (Adadelta at lr 1.0 is tuned to them)
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def conv_bn(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class LensNet(nn.Module):
    """The default network: three conv-BN-ReLU stages with max-pooling, global pooling, one linear head.

    Small on purpose: inference must keep up with live video on a 2-core CPU (>= 5,000 digits/s),
    and BN + augmentation + weight averaging buy the accuracy that width would otherwise buy.
    """

    def __init__(self, num_classes: int = 11, width: int = 32):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            conv_bn(1, w, 5), nn.MaxPool2d(2),          # 28 -> 14
            conv_bn(w, 2 * w), conv_bn(2 * w, 2 * w), nn.MaxPool2d(2),  # 14 -> 7
            conv_bn(2 * w, 4 * w), nn.MaxPool2d(2),     # 7 -> 3
            conv_bn(4 * w, 4 * w),
        )
        self.head = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Dropout(0.1),
                                  nn.Linear(4 * w, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@dataclass(frozen=True)
class Arch:
    name: str
    build: Callable[[int], nn.Module]
    classes: tuple[str, ...]
    description: str


ARCHS: dict[str, Arch] = {
    "seed": Arch("seed", lambda n: SeedNet(n), DIGITS,
                 "the seed's Keras CNN (Conv32-Conv64-MaxPool-Dropout-Dense128-Dropout-Dense10)"),
    "lens": Arch("lens", lambda n: LensNet(n), DIGITS + (REJECT,),
                 "BN CNN, 5 conv layers, 10 digits + a 'not a digit' class"),
}
from digitlens.nets_registry import DEFAULT_ARCH  # noqa: E402,F401  (one source for the CLI and here)


def build(arch: str) -> tuple[nn.Module, Arch]:
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHS)}")
    spec = ARCHS[arch]
    return spec.build(len(spec.classes)), spec
