"""Train-time augmentation: pure tensor-in, tensor-out functions on (N, 1, 28, 28) float batches in [0, 1].

Each function takes its randomness from an explicit torch.Generator, so a run is reproducible and a
resumed run sees exactly the batches an uninterrupted one would.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    rotate_deg: float = 10.0  # max rotation either way; MNIST writers slant up to ~15 degrees
    scale: tuple[float, float] = (0.85, 1.1)  # zoom range; the normaliser fits to 20 px but crops vary
    shear: float = 0.2  # max shear factor (x += shear * y)
    translate_px: float = 2.5  # max shift in pixels at 28x28; centring by mass is never exact on photos
    elastic_alpha: float = 2.0  # displacement in pixels of the elastic field (Simard et al. 2003)
    elastic_grid: int = 4  # the field is random on a 4x4 grid, upsampled smoothly: one bend per stroke
    elastic_p: float = 0.4  # fraction of the batch that gets the elastic field
    stroke_p: float = 0.3  # fraction whose stroke is thickened or thinned (pens differ from MNIST's)
    blur_p: float = 0.15  # fraction blurred (out-of-focus camera)
    binarize_p: float = 0.1  # fraction hard-thresholded then re-antialiased (binarised camera crops)
    binarize_level: tuple[float, float] = (0.25, 0.6)  # the threshold, on 0..1 ink
    gain: tuple[float, float] = (0.7, 1.3)  # ink intensity range: pens press harder or lighter
    erase_p: float = 0.0  # fraction with a random patch erased (off by default: it makes 7s of 9s)


def calm(cfg: AugmentConfig) -> AugmentConfig:
    """Half the geometric ranges and a third of the random extras: the last epochs fit the clean digits
    closer while still seeing some of everything (the same random draws, so a run stays reproducible)."""
    return replace(cfg, rotate_deg=cfg.rotate_deg / 2, scale=(1 - (1 - cfg.scale[0]) / 2, 1 + (cfg.scale[1] - 1) / 2),
                   shear=cfg.shear / 2, translate_px=cfg.translate_px / 2, elastic_p=cfg.elastic_p / 3,
                   stroke_p=cfg.stroke_p / 3, blur_p=cfg.blur_p / 3, binarize_p=cfg.binarize_p / 3)


def _rand(gen: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return torch.rand(n, generator=gen) * (hi - lo) + lo


def affine_grid(n: int, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Sampling grid (N, 28, 28, 2) of a random rotation, scale, shear and translation."""
    angle = _rand(gen, n, -cfg.rotate_deg, cfg.rotate_deg) * math.pi / 180
    scale = _rand(gen, n, *cfg.scale)
    shear = _rand(gen, n, -cfg.shear, cfg.shear)
    shift = _rand(gen, 2 * n, -cfg.translate_px, cfg.translate_px).view(n, 2) * (2 / 28)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # theta maps output coords to input coords: inverse of (scale * rotate * shear).
    a = torch.stack([torch.stack([cos, -sin + shear * cos], 1), torch.stack([sin, cos + shear * sin], 1)], 1)
    theta = torch.cat([torch.linalg.inv(a * scale.view(n, 1, 1)), shift.view(n, 2, 1)], 2)
    return F.affine_grid(theta, (n, 1, 28, 28), align_corners=False)


def elastic_offsets(n: int, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Smooth random displacement (N, 28, 28, 2) in grid units; zero for the part not chosen."""
    coarse = torch.randn(n, 2, cfg.elastic_grid, cfg.elastic_grid, generator=gen)
    field = F.interpolate(coarse, size=(28, 28), mode="bicubic", align_corners=True)
    keep = (torch.rand(n, generator=gen) < cfg.elastic_p).float().view(n, 1, 1, 1)
    return (field * keep * cfg.elastic_alpha * (2 / 28)).permute(0, 2, 3, 1)


def geometric(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    grid = affine_grid(x.shape[0], cfg, gen) + elastic_offsets(x.shape[0], cfg, gen)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def stroke_width(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Thicken (grey dilation) or thin (grey erosion) a random part of the batch by one pixel."""
    n = x.shape[0]
    choice = torch.rand(n, generator=gen)
    thick = F.max_pool2d(x, 3, 1, 1)
    thin = -F.max_pool2d(-x, 3, 1, 1)
    # Erosion can wipe out MNIST's thinnest digits; blend toward it instead of replacing.
    thin = torch.maximum(thin, 0.5 * x)
    sel_thick = (choice < cfg.stroke_p / 2).view(n, 1, 1, 1)
    sel_thin = ((choice >= cfg.stroke_p / 2) & (choice < cfg.stroke_p)).view(n, 1, 1, 1)
    return torch.where(sel_thick, thick, torch.where(sel_thin, thin, x))


def photometric(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Blur, binarise-and-reantialias, and random contrast: what a camera crop looks like after the normaliser."""
    n = x.shape[0]
    kernel = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]).view(1, 1, 3, 3) / 16
    blurred = F.conv2d(x, kernel, padding=1)
    sel_blur = (torch.rand(n, generator=gen) < cfg.blur_p).view(n, 1, 1, 1)
    x = torch.where(sel_blur, blurred, x)
    level = _rand(gen, n, *cfg.binarize_level).view(n, 1, 1, 1)
    binary = F.avg_pool2d((x > level).float(), 3, 1, 1) * 0.5 + (x > level).float() * 0.5
    sel_bin = (torch.rand(n, generator=gen) < cfg.binarize_p).view(n, 1, 1, 1)
    x = torch.where(sel_bin, binary, x)
    gain = _rand(gen, n, *cfg.gain).view(n, 1, 1, 1)
    return (x * gain).clamp(0, 1)


def augment(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """The full train-time augmentation of a batch (N, 1, 28, 28) in [0, 1]."""
    return photometric(stroke_width(geometric(x, cfg, gen), cfg, gen), cfg, gen)
