"""The training loop: recipes, checkpoints, resume, time-to-accuracy, export.

The MNIST test split is only ever *measured* here (time-to-accuracy, the final figure). Stopping
(--target-acc), calibration and anything else that steers training use a held-out part of the
training split.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from digitlens import augment as aug
from digitlens import modelfile, nets, synth, sysinfo
from digitlens.data import Mnist

TTA_LEVELS = (0.99, 0.995, 0.997)


@dataclass(frozen=True)
class TrainConfig:
    arch: str = nets.DEFAULT_ARCH
    epochs: int = 40  # lens: ~32 s an epoch on 2 cores (NHWC; 45 s in NCHW): 40 epochs, 21 min
    batch_size: int = 128
    optimizer: str = "sgd"  # "sgd" (Nesterov, one-cycle) or "adadelta" (the seed's Keras recipe)
    lr: float = 0.08  # peak learning rate of the one-cycle schedule (sgd); adadelta uses 1.0 flat
    warmup_epochs: float = 1.0  # linear warm-up, then cosine decay to zero
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    ema_decay: float = 0.999  # weight averaging over ~1000 steps (two epochs); the exported weights
    augment: bool = True
    camera_fraction: float = 0.3  # share of digits re-rendered as camera crops (digitlens.synth)
    negative_fraction: float = 0.25  # extra "not a digit" samples per epoch, relative to the digits
    calm_epochs: int = 3  # the last epochs use milder augmentation and half the camera crops (augment.calm)
    holdout: int = 5000  # training images held out for stopping and calibration (never the test split)
    limit: int = 0  # use only the first N training images (quick runs, tests); 0 = all
    seed: int = 0
    amp: str = "auto"  # "bf16" autocast on CPUs with AMX/AVX512-BF16 or on CUDA, "off", or "auto"
    eval_per_epoch_early: int = 4  # test-accuracy probes per epoch during the first two epochs (time-to-accuracy)
    target_acc: float = 0.0  # stop once held-out accuracy reaches this (0 = run all epochs)
    threads: int = 0  # torch intra-op threads; 0 = all cores

    @staticmethod
    def recipe(arch: str, **overrides: Any) -> "TrainConfig":
        """The recipe of each architecture; overrides must name known fields (unknown ones fail loudly)."""
        known = {f.name for f in fields(TrainConfig)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown training settings: {sorted(unknown)}")
        if arch == "seed":
            # The seed's Keras example: Adadelta at lr 1.0 (TF2's default 0.001 is why it falls to 84%), batch 128, 12 epochs.
            base = TrainConfig(arch="seed", epochs=12, batch_size=128, optimizer="adadelta", lr=1.0, warmup_epochs=0,
                               weight_decay=0.0, label_smoothing=0.0, ema_decay=0.0, augment=False, camera_fraction=0.0,
                               negative_fraction=0.0, calm_epochs=0)
        elif arch in nets.ARCHS:
            base = TrainConfig(arch=arch)
        else:
            raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(nets.ARCHS)}")
        cfg = replace(base, **overrides)
        if cfg.amp not in ("auto", "bf16", "off"):
            raise ValueError(f"amp must be 'auto', 'bf16' or 'off', got {cfg.amp!r}")
        if cfg.optimizer not in ("sgd", "adadelta"):
            raise ValueError(f"optimizer must be 'sgd' or 'adadelta', got {cfg.optimizer!r}")
        return cfg


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    step: int = 0
    train_seconds: float = 0.0  # training time, evaluation excluded
    history: list[dict[str, Any]] = field(default_factory=list)
    tta: dict[str, float | None] = field(default_factory=lambda: {f"{a:.3f}": None for a in TTA_LEVELS})


def machine_info() -> dict[str, Any]:
    info = {**sysinfo.machine_info(), "torch": torch.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def use_bf16(cfg: TrainConfig, device: torch.device) -> bool:
    if cfg.amp == "off":
        return False
    if cfg.amp == "bf16" or device.type == "cuda":
        return True
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def lr_at(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    if cfg.optimizer == "adadelta":
        return cfg.lr
    warm = cfg.warmup_epochs * steps_per_epoch
    total = cfg.epochs * steps_per_epoch
    if step < warm:
        return cfg.lr * (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    if cfg.optimizer == "adadelta":
        return torch.optim.Adadelta(model.parameters(), lr=cfg.lr, rho=0.95, eps=1e-7)  # Keras' defaults
    if cfg.optimizer == "sgd":
        decay = [p for n, p in model.named_parameters() if p.ndim > 1]
        no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]  # BN and biases are not decayed
        return torch.optim.SGD([{"params": decay, "weight_decay": cfg.weight_decay},
                                {"params": no_decay, "weight_decay": 0.0}],
                               lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


class Ema:
    """Exponential moving average of weights and BN buffers, with a warm-up so early averages are not stale."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone().float() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(d).add_(v.detach().float(), alpha=1 - d)
            else:
                self.shadow[k].copy_(v)

    def copy_to(self, model: torch.nn.Module) -> torch.nn.Module:
        model.load_state_dict(self.shadow)
        return model


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1)


# NHWC: oneDNN's convolutions are faster in it on CPUs (and tensor cores on CUDA). On this 2-core CPU a bf16
# training step of the lens net at batch 128 takes 37.7 ms instead of 57.5 ms (fp32: 68.6 instead of 92.7;
# benchmarks/train_step.py, train-step-lens.json); a full run trained in 16.9 min instead of 24.2. The layout
# is storage only: the weights, the checkpoints and the exported ONNX graph are the same as in NCHW.
LAYOUT = torch.channels_last


def fast_layout(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=LAYOUT)


@torch.no_grad()
def predict_logits(model: torch.nn.Module, images: np.ndarray | torch.Tensor, device: torch.device,
                   batch: int = 1000) -> torch.Tensor:
    model.eval()
    x = images if isinstance(images, torch.Tensor) else to_tensor(images)
    out = [model(fast_layout(x[i:i + batch].to(device).float().div_(255))).float().cpu() for i in range(0, len(x), batch)]
    return torch.cat(out) if out else torch.zeros(0, 10)


def digit_accuracy(logits: torch.Tensor, labels: np.ndarray) -> float:
    """10-way accuracy: any reject class is ignored, as the MNIST target asks."""
    pred = logits[:, :10].argmax(1).numpy()
    return float((pred == labels).mean()) if len(labels) else 0.0


def split(mnist: Mnist, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training and held-out parts of MNIST's *training* split, by a fixed permutation."""
    x, y = mnist.x_train, mnist.y_train
    order = np.random.default_rng(12345).permutation(len(x))
    held = order[:cfg.holdout]
    train = order[cfg.holdout:]
    if cfg.limit:
        train = train[:cfg.limit]
        held = held[:max(500, cfg.limit // 10)]
    return x[train], y[train], x[held], y[held]


def is_calm(cfg: TrainConfig, epoch: int) -> bool:
    """Epoch (0-based) is one of the last `calm_epochs`."""
    return epoch >= cfg.epochs - cfg.calm_epochs


def epoch_batches(cfg: TrainConfig, x: np.ndarray, y: np.ndarray, epoch: int, num_classes: int):
    """Yield (images uint8 tensor, labels) for one epoch, reproducible from (seed, epoch) alone."""
    gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
    rng = np.random.default_rng([cfg.seed, epoch])
    n = len(x)
    n_neg = int(n * cfg.negative_fraction) if num_classes > 10 else 0
    order = torch.randperm(n + n_neg, generator=gen).numpy()
    for start in range(0, len(order), cfg.batch_size):
        idx = order[start:start + cfg.batch_size]
        digits = idx[idx < n]
        images = x[digits]
        labels = y[digits].astype(np.int64)
        if cfg.camera_fraction > 0 and len(digits):
            pick = rng.random(len(digits)) < cfg.camera_fraction * (0.5 if is_calm(cfg, epoch) else 1.0)
            if pick.any():
                images = images.copy()
                images[pick] = synth.camera_digits(images[pick], rng)
        k = int((idx >= n).sum())
        if k:
            images = np.concatenate([images, synth.negatives(k, rng, x)])
            labels = np.concatenate([labels, np.full(k, 10, np.int64)])
        yield to_tensor(images), torch.from_numpy(labels)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Temperature scaling (Guo et al. 2017) on held-out data: the T minimising NLL of softmax(logits / T)."""
    best_t, best_nll = 1.0, float("inf")
    for t in np.exp(np.linspace(np.log(0.3), np.log(5.0), 80)):
        nll = F.cross_entropy(logits / float(t), labels).item()
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t


def calibration_set(x_ho: np.ndarray, y_ho: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """What the temperature is fitted on: held-out digits as they are and as camera crops (as the reader sees
    them), plus held-out negatives (label 10), reproducible from the run's seed."""
    rng = np.random.default_rng([seed, 999_999])
    cal_x = np.concatenate([x_ho, synth.camera_digits(x_ho, rng), synth.negatives(len(x_ho) // 2, rng, x_ho)])
    cal_y = np.concatenate([y_ho, y_ho, np.full(len(x_ho) // 2, 10)]).astype(np.int64)
    return cal_x, cal_y


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, labels: torch.Tensor,
               label_smoothing: float, bf16: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step: the forward pass (under bf16 autocast when `bf16`), label-smoothed cross-entropy in
    fp32, backward and the optimiser's step. Returns the logits and the loss. Training, fine-tuning
    (benchmarks/finetune.py, in fp32) and benchmarks/train_step.py all run it, so the benchmark times the step
    that training takes."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = model(x)
    loss = F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return logits, loss


def save_checkpoint(path: Path, model, ema: Ema | None, opt, state: TrainState, cfg: TrainConfig) -> None:
    """Atomic: write a temporary file, then rename, so a crash never leaves a half-written checkpoint."""
    payload = {"config": asdict(cfg), "model": model.state_dict(), "ema": ema.shadow if ema else None,
               "optimizer": opt.state_dict(), "state": asdict(state), "format": "digitlens-checkpoint/1"}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".pt.part")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    payload = torch.load(path, map_location="cpu", weights_only=True)  # never unpickle code
    if not isinstance(payload, dict) or payload.get("format") != "digitlens-checkpoint/1":
        raise ValueError(f"{path}: not a digitlens training checkpoint")
    return payload


@dataclass
class TrainResult:
    model_path: Path
    checkpoint_path: Path
    log_path: Path
    summary: dict[str, Any]


def train(mnist: Mnist, cfg: TrainConfig, out_dir: Path, resume: bool = False,
          on_epoch_start: Callable[[int, int], Any] | None = None,
          on_batch: Callable[[dict[str, float]], None] | None = None,
          log: Callable[[str], None] = lambda s: None) -> TrainResult:
    """Train cfg.arch on MNIST's training split; write model.onnx, checkpoint.pt, log.jsonl, summary.json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path, log_path = out_dir / "checkpoint.pt", out_dir / "log.jsonl"
    device = pick_device()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    bf16 = use_bf16(cfg, device)
    torch.manual_seed(cfg.seed)  # the initial weights, too, come from --seed
    model, spec = nets.build(cfg.arch)
    model.to(device, memory_format=LAYOUT)
    num_classes = len(spec.classes)
    opt = make_optimizer(cfg, model)
    ema = Ema(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    state = TrainState()
    if resume and ckpt_path.exists():
        payload = load_checkpoint(ckpt_path)
        saved = TrainConfig(**payload["config"])
        if replace(saved, epochs=cfg.epochs, target_acc=cfg.target_acc) != cfg:
            raise ValueError(f"{ckpt_path}: the checkpoint was made with other settings; "
                             f"resume with the same ones or start afresh without --resume\n  saved: {saved}")
        model.load_state_dict(payload["model"])
        opt.load_state_dict(payload["optimizer"])
        if ema and payload["ema"] is not None:
            ema.shadow = {k: v.clone() for k, v in payload["ema"].items()}
        state = TrainState(**payload["state"])
        log(f"resumed from {ckpt_path} after epoch {state.epoch}")
    elif log_path.exists():
        log_path.unlink()

    x_tr, y_tr, x_ho, y_ho = split(mnist, cfg)
    x_te, y_te = mnist.x_test, mnist.y_test
    augment_cfg = aug.AugmentConfig()
    calm_cfg = aug.calm(augment_cfg)
    n_neg = int(len(x_tr) * cfg.negative_fraction) if num_classes > 10 else 0
    steps_per_epoch = math.ceil((len(x_tr) + n_neg) / cfg.batch_size)
    eval_model, _ = nets.build(cfg.arch)
    eval_model.to(device, memory_format=LAYOUT)

    def averaged() -> torch.nn.Module:
        if ema:
            return ema.copy_to(eval_model)
        eval_model.load_state_dict(model.state_dict())
        return eval_model

    def record(kind: str, **values: Any) -> None:
        entry = {"kind": kind, "epoch": state.epoch, "step": state.step, "train_seconds": round(state.train_seconds, 2),
                 **values}
        state.history.append(entry)
        with open(log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def probe() -> float:
        acc = digit_accuracy(predict_logits(averaged(), x_te, device), y_te)
        for level in TTA_LEVELS:
            key = f"{level:.3f}"
            if acc >= level and state.tta[key] is None:
                state.tta[key] = round(state.train_seconds, 2)
        return acc

    stop = False
    for epoch in range(state.epoch, cfg.epochs):
        torch.manual_seed(cfg.seed * 100_003 + epoch)  # dropout: reproducible per epoch, so resume is exact
        gen = torch.Generator().manual_seed(cfg.seed * 7919 + epoch)
        model.train()
        tick = on_epoch_start(epoch, steps_per_epoch) if on_epoch_start else None
        probe_every = steps_per_epoch // cfg.eval_per_epoch_early if epoch < 2 and cfg.eval_per_epoch_early else 0
        seen = correct = 0
        loss_sum = epoch_seconds = 0.0
        t0 = time.perf_counter()
        for i, (images, labels) in enumerate(epoch_batches(cfg, x_tr, y_tr, epoch, num_classes)):
            x = images.to(device).float().div_(255)
            if cfg.augment:
                acfg = calm_cfg if is_calm(cfg, epoch) else augment_cfg
                x = aug.augment(x.cpu(), acfg, gen).to(device) if device.type != "cpu" else aug.augment(x, acfg, gen)
            x, labels = fast_layout(x), labels.to(device)
            for group in opt.param_groups:
                group["lr"] = lr_at(cfg, state.step, steps_per_epoch)
            logits, loss = train_step(model, opt, x, labels, cfg.label_smoothing, bf16)
            if ema:
                ema.update(model, state.step)
            state.step += 1
            seen += len(labels)
            correct += int((logits.argmax(1) == labels).sum())
            loss_sum += float(loss.detach()) * len(labels)
            spent = time.perf_counter() - t0
            state.train_seconds += spent
            epoch_seconds += spent
            if on_batch:
                on_batch({"loss": loss_sum / seen, "acc": correct / seen, "img_s": seen / max(1e-9, epoch_seconds),
                          "lr": opt.param_groups[0]["lr"]})
            if probe_every and (i + 1) % probe_every == 0 and i + 1 < steps_per_epoch:
                acc = probe()
                record("probe", test_acc=acc)
                model.train()
            t0 = time.perf_counter()
        if tick is not None and hasattr(tick, "close"):
            tick.close()
        state.epoch = epoch + 1
        test_acc = probe()
        held = predict_logits(averaged(), x_ho, device)
        val_acc = digit_accuracy(held, y_ho)
        record("epoch", loss=loss_sum / max(1, seen), train_acc=correct / max(1, seen), val_acc=val_acc,
               test_acc=test_acc, lr=lr_at(cfg, state.step, steps_per_epoch))
        log(f"epoch {state.epoch}/{cfg.epochs}: loss {loss_sum / max(1, seen):.4f}  held-out {val_acc:.4%}  "
            f"test {test_acc:.4%}  ({state.train_seconds:.0f} s training)")
        save_checkpoint(ckpt_path, model, ema, opt, state, cfg)
        if cfg.target_acc and val_acc >= cfg.target_acc:
            log(f"held-out accuracy {val_acc:.4%} reached --target-acc {cfg.target_acc:.4%}: stopping")
            stop = True
            break
    final = averaged()
    temperature = 1.0
    if num_classes > 10:
        cal_x, cal_y = calibration_set(x_ho, y_ho, cfg.seed)
        temperature = fit_temperature(predict_logits(final, cal_x, device), torch.from_numpy(cal_y))
    test_logits = predict_logits(final, x_te, device)
    test_acc = digit_accuracy(test_logits, y_te)
    val_acc = digit_accuracy(predict_logits(final, x_ho, device), y_ho)
    accuracy = {"mnist_test": round(test_acc, 5), "held_out": round(val_acc, 5), "test_images": int(len(y_te))}
    summary = {"arch": cfg.arch, "classes": list(spec.classes), "epochs": state.epoch, "stopped_early": stop,
               "train_seconds": round(state.train_seconds, 1), "mnist_test_accuracy": test_acc,
               "held_out_accuracy": val_acc, "time_to_accuracy_s": state.tta, "temperature": temperature,
               "device": str(device), "bf16": bf16, "threads": torch.get_num_threads(), "machine": machine_info(),
               "data_sha256": mnist.sha256, "config": asdict(cfg),
               "parameters": sum(p.numel() for p in model.parameters())}
    props = modelfile.metadata_props(cfg.arch, list(spec.classes), accuracy, asdict(cfg), mnist.sha256,
                                     extra={"temperature": temperature, "train_seconds": summary["train_seconds"],
                                            "time_to_accuracy_s": state.tta, "machine": machine_info()})
    model_path = modelfile.export_onnx(final, out_dir / "model.onnx", props)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return TrainResult(model_path, ckpt_path, log_path, summary)

