"""Fine-tune a trained network on what the reader really sees: candidates cut out of photo-like scenes.

MNIST digits are clean, centred and evenly stroked; the reader's crops are not. They come out of the
detector and the normaliser after perspective, uneven light, blur, noise, JPEG and binarisation, broken
or merged, and next to letters, shapes and blots that must read as "not a digit". This script

  1. harvests such crops: scenes from benchmarks/scenes.py made ONLY from the MNIST *training* split, with
     their own scene seed (--scene-seed, never the dev seed 7 or the benchmark's 2026), cut by the
     reader's own first stages (Recognizer.candidate_crops: detector, finer masks of small candidates,
     splits of wide ones, normaliser), so it trains on exactly what the reader classifies. A crop whose box overlaps one truth digit by IoU >= 0.5 (and no other by 0.1)
     takes its label; one that overlaps no truth digit (IoU < 0.05) is "not a digit"; the rest (pieces,
     pairs) are left out;
  2. fine-tunes the run's averaged weights (--run, its checkpoint.pt) on those crops mixed with the usual
     MNIST training batches (augmented, camera crops, synthetic negatives), a few epochs at a low learning
     rate with weight averaging, so MNIST is not forgotten;
  3. calibrates the temperature on held-out MNIST training digits (as in training) plus held-out harvested
     crops, measures MNIST test accuracy (measured only: nothing here is chosen on it) and writes
     <out>/model.onnx, summary.json and log.jsonl, and benchmarks/results/finetune-<arch>-cpu.json.

    python benchmarks/finetune.py --run runs/lens5 --out runs/lens5-ft          # ~7 min on 2 cores
    python benchmarks/finetune.py --run runs/lens5 --out runs/lens5-ft --ship   # and install it
    python benchmarks/finetune.py --run runs/lens5 --out runs/lens5-ft --ship-run   # install a finished run
    python benchmarks/finetune.py --from-model shipped --scene-seed 4242 --out runs/again   # the shipped model further

--from-model continues from a model file instead of a run's checkpoint: its BatchNorms are folded into the
convolutions, so they stay frozen. Two such runs read the harvest's crops better but pages no better, and
lost MNIST accuracy (benchmarks/results/finetune-lens-from-shipped-rejected.json).

Caution on what it buys: the harvested scenes come from the same generator as the reading benchmark's
(other digits, other seed), so the benchmark's gain overstates the gain on photos made other ways.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

HARVEST_FORMAT = "digitlens-harvest/2"  # 2: crops from Recognizer.candidate_crops (finer masks of small candidates)


@dataclass(frozen=True)
class HarvestConfig:
    scene_seed: int = 31337  # never 7 (dev A/B) or 2026 (the reading benchmark)
    # 5,000 scenes, ~55,000 crops: harvesting takes ~4.8 min on 2 cores. 3,500 (--scenes 0.7) would fit the
    # 30 minutes of training with the base run, but read no better on dev scenes and held out empty pages worse
    # (finetune-lens-rejected-3500-scenes.json)
    numbers: int = 2500
    single: int = 1500
    empty: int = 1000
    positive_iou: float = 0.5
    other_iou: float = 0.1
    negative_iou: float = 0.05
    # pieces as "not a digit": a crop lying inside one truth digit's box (at least 90% of its area) and at most
    # this share of that box's area is a fragment (a 5's detached bar, half of a broken 0). 0 leaves them out
    piece_max_area: float = 0.0


def _overlap(a, b) -> float:
    """The area two (x, y, w, h) boxes share."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy


def _iou(a, b) -> float:
    inter = _overlap(a, b)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def label_crop(box, truth_digits, cfg: HarvestConfig) -> int | None:
    """The digit a crop shows (0..9), 10 for none, or None when it is a piece or a pair (left out)."""
    ious = sorted(((_iou(box, t["box"]), int(t["digit"])) for t in truth_digits), reverse=True)
    if not ious or ious[0][0] < cfg.negative_iou:
        return 10
    if ious[0][0] >= cfg.positive_iou and (len(ious) < 2 or ious[1][0] < cfg.other_iou):
        return ious[0][1]
    area = box[2] * box[3]
    if cfg.piece_max_area > 0 and area > 0:
        for t in truth_digits:
            tb = t["box"]
            if _overlap(box, tb) >= 0.9 * area and area <= cfg.piece_max_area * tb[2] * tb[3]:
                return 10
    return None


_worker: dict = {}


def _init_worker() -> None:
    import cv2

    from digitlens.data import load_mnist
    from digitlens.recognizer import ReaderConfig, Recognizer

    cv2.setNumThreads(1)
    _worker["reader"] = Recognizer.load(None, ReaderConfig(intra_op_threads=1))
    _worker["mnist"] = load_mnist(mirrors=False)


def _harvest_scene(job: tuple[str, int, HarvestConfig]) -> tuple[list[np.ndarray], list[int]]:
    from scenes import make_scene, scene_rng

    kind, index, cfg = job
    reader = _worker["reader"]
    img, truth = make_scene(kind, scene_rng(cfg.scene_seed, kind, index), split="train", mnist=_worker["mnist"])
    _, scale, all_crops, options = reader.candidate_crops(img)  # the reader's own crops, splits included
    kept = labelled_rows(options, scale, truth["digits"], cfg)
    return [all_crops[row] for row, _, _ in kept], [label for _, label, _ in kept]


def labelled_rows(options, scale: float, truth_digits, cfg: HarvestConfig) -> list[tuple[int, int, bool]]:
    """Per crop of Recognizer.candidate_crops' `options` (boxes in processing pixels, `scale` of the input) that
    label_crop labels: (its row in the crops, its label, whether it is its region's whole crop, not a cut's part)."""
    out = []
    for hyps in options:
        for k, hyp in enumerate(hyps):
            for row, box in zip(hyp.rows, hyp.boxes):
                label = label_crop(tuple(v / scale for v in box), truth_digits, cfg)
                if label is not None:
                    out.append((row, label, k == 0))
    return out


def load_harvest(path: Path, cfg: HarvestConfig) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached crops when the file exists and was made with these settings, else None. Read without pickle
    (an .npz holding Python objects is refused by numpy with a ValueError)."""
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        if str(z["format"]) == HARVEST_FORMAT and json.loads(str(z["config"])) == asdict(cfg):
            return z["x"], z["y"]
    return None


def harvest_seconds(path: Path) -> float | None:
    """How long the cached harvest took to make, when it says (older caches do not)."""
    with np.load(path, allow_pickle=False) as z:
        return float(z["seconds"]) if "seconds" in z.files else None


def harvest(cfg: HarvestConfig, path: Path, processes: int) -> tuple[np.ndarray, np.ndarray]:
    """Harvest (or load the cached) crops; the cache is an .npz of uint8/int arrays, loaded without pickle
    and only when its recorded settings are these."""
    cached = load_harvest(path, cfg)
    if cached is not None:
        return cached
    from multiprocessing import get_context

    from tqdm import tqdm

    t0 = time.perf_counter()
    jobs = [(kind, i, cfg) for kind in ("numbers", "single", "empty") for i in range(getattr(cfg, kind))]
    xs, ys = [], []
    with get_context("spawn").Pool(processes, initializer=_init_worker) as pool:
        for crops, labels in tqdm(pool.imap(_harvest_scene, jobs, chunksize=8), total=len(jobs), unit="scene",
                                  desc="harvest"):
            xs += crops
            ys += labels
    x = np.stack(xs).astype(np.uint8)
    y = np.asarray(ys, np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.npz")
    np.savez_compressed(tmp, x=x, y=y, format=HARVEST_FORMAT, config=json.dumps(asdict(cfg)),
                        seconds=time.perf_counter() - t0)
    os.replace(tmp, path)
    return x, y


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: int = 2  # 3 epochs with all the negatives below taught it that a straight stroke is no digit
    # (a drawn 1 was refused: benchmarks/results/finetune-lens-rejected-3epochs.json)
    lr: float = 0.01  # peak of a short warm-up then cosine decay (the run itself peaked at 0.08)
    batch_size: int = 128
    harvest_share: float = 0.5  # of each batch's digits-and-negatives, this share are harvested crops
    holdout_frac: float = 0.1  # harvested crops held out for calibration and the held-out figure
    max_negative_ratio: float = 0.5  # harvested "not a digit" crops used, at most this many per harvested digit
    # (scenes give ~3 negatives per digit: all of them would teach the generator's own distractors more
    # than digits)
    label_smoothing: float = 0.1
    ema_decay: float = 0.998
    seed: int = 0


def net_from_model(path: Path, expected_sha256: str | None = None):
    """The lens network of a shipped ONNX model, as a torch module to fine-tune further, with the tcfg it was
    trained with. The exported graph has each BatchNorm folded into its convolution, so each BN here is set to
    pass through (weight 1, running mean 0, variance 1 - eps) with the folded bias as its bias; fine-tuning must
    then keep the BNs in eval mode (freeze_bn), where the module computes exactly what the file does. The file
    is checked by modelfile.load_model (self-contained, metadata, SHA-256 when given) and read as tensors only."""
    import onnx
    import torch
    from onnx import numpy_helper

    from digitlens import modelfile, nets
    from digitlens import train as T

    loaded = modelfile.load_model(path, threads=1, expected_sha256=expected_sha256)
    if loaded.metadata.get("arch") != "lens":
        raise SystemExit(f"{path}: --from-model fine-tunes the lens network only, not {loaded.metadata.get('arch')!r}")
    graph = onnx.load_from_string(Path(path).read_bytes()).graph
    init = {t.name: np.array(numpy_helper.to_array(t)) for t in graph.initializer}  # writable copies
    convs = [n for n in graph.node if n.op_type == "Conv"]
    gemm = [n for n in graph.node if n.op_type == "Gemm"]
    model, _ = nets.build("lens")
    pairs = [(stage[0], stage[1]) for stage in model.features if isinstance(stage, torch.nn.Sequential)]  # conv, BN
    if len(convs) != len(pairs) or len(gemm) != 1:
        raise SystemExit(f"{path}: its graph is not the lens network's ({len(convs)} convolutions)")
    with torch.no_grad():
        for node, (conv, bn) in zip(convs, pairs):
            w, b = init[node.input[1]], init[node.input[2]]
            if tuple(w.shape) != tuple(conv.weight.shape):
                raise SystemExit(f"{path}: convolution of shape {w.shape}, the lens network's is {tuple(conv.weight.shape)}")
            conv.weight.copy_(torch.from_numpy(w))
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(b))
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
        head = model.head[-1]
        head.weight.copy_(torch.from_numpy(init[gemm[0].input[1]]))
        head.bias.copy_(torch.from_numpy(init[gemm[0].input[2]]))
    known = {f.name for f in fields(T.TrainConfig)}  # the card's config holds its fine-tuning's too
    tcfg = T.TrainConfig(**{k: v for k, v in loaded.metadata["train_config"].items() if k in known})
    return model, tcfg, loaded


def freeze_bn(model) -> None:
    """BatchNorm layers in eval mode (running statistics, no updates), the rest as it is."""
    import torch

    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, default=ROOT / "runs" / "lens5", help="trained run folder (checkpoint.pt)")
    p.add_argument("--from-model", type=Path, default=None, metavar="ONNX",
                   help="fine-tune a model file further instead of a run's checkpoint (its BatchNorms frozen): "
                        "the shipped model when given as 'shipped'")
    p.add_argument("--scene-seed", type=int, default=HarvestConfig.scene_seed,
                   help="the harvest's scene seed (default %(default)s; never 7-10 or 2026)")
    p.add_argument("--lr", type=float, default=FinetuneConfig.lr)
    p.add_argument("--piece-max-area", type=float, default=HarvestConfig.piece_max_area,
                   help="label fragments of a digit up to this share of its box 'not a digit' (default: left out)")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "lens5-ft")
    p.add_argument("--epochs", type=int, default=FinetuneConfig.epochs)
    p.add_argument("--negative-ratio", type=float, default=FinetuneConfig.max_negative_ratio,
                   help="harvested not-a-digit crops used per harvested digit (default %(default)s)")
    p.add_argument("--scenes", type=float, default=1.0, help="scale the harvest's scene counts (default 1.0)")
    p.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    p.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--ship", action="store_true", help="install the fine-tuned model as the shipped one")
    p.add_argument("--ship-run", action="store_true",
                   help="do not fine-tune: ship the finished run in --out, described by its results JSON")
    args = p.parse_args()
    if args.from_model is not None and (args.ship or args.ship_run):
        raise SystemExit("--from-model makes a candidate only: its card would describe a recipe no run reproduces")
    if args.ship_run:
        summary = json.loads((args.out / "summary.json").read_text())
        result = json.loads((args.results / f"finetune-{summary['arch']}-cpu.json").read_text())
        if result["mnist_test_accuracy"] != summary["mnist_test_accuracy"]:
            raise SystemExit(f"{args.results}: the results JSON describes another run than {args.out}")
        ship(summary["arch"], args.out, args.run, result)
        return 0

    import torch
    from tqdm import tqdm

    from digitlens import augment as aug
    from digitlens import modelfile, nets, synth, sysinfo
    from digitlens import train as T
    from digitlens.data import load_mnist

    t_start = time.perf_counter()
    base = HarvestConfig()
    if args.scene_seed in (7, 8, 9, 10, 2026):
        raise SystemExit(f"--scene-seed {args.scene_seed} is a development or benchmark seed")
    hcfg = replace(base, numbers=round(base.numbers * args.scenes), single=round(base.single * args.scenes),
                   empty=round(base.empty * args.scenes), scene_seed=args.scene_seed,
                   piece_max_area=args.piece_max_area)
    cached = load_harvest(args.out / "harvest.npz", hcfg) is not None
    hx, hy = harvest(hcfg, args.out / "harvest.npz", args.processes)
    t_harvest = harvest_seconds(args.out / "harvest.npz") or time.perf_counter() - t_start
    counts = np.bincount(hy, minlength=11).tolist()
    print(f"harvested {len(hy)} crops in {t_harvest:.0f} s; per class {counts}", file=sys.stderr)

    fcfg = FinetuneConfig(epochs=args.epochs, max_negative_ratio=args.negative_ratio, lr=args.lr)
    card = None
    if args.from_model is not None:
        if str(args.from_model) == "shipped":
            card = json.loads((ROOT / "digitlens" / "models" / "lens.json").read_text())
            args.from_model = ROOT / "digitlens" / "models" / card["model"]
        model, tcfg, _ = net_from_model(args.from_model, card["sha256"] if card else None)
        spec = nets.ARCHS[tcfg.arch]
    else:
        payload = T.load_checkpoint(args.run / "checkpoint.pt")
        tcfg = T.TrainConfig(**payload["config"])
        model, spec = nets.build(tcfg.arch)
        model.load_state_dict(payload["ema"] if payload["ema"] is not None else payload["model"])
    frozen_bn = args.from_model is not None
    model.to(memory_format=T.LAYOUT)  # before the optimiser and the weight average copy its parameters
    mnist = load_mnist(mirrors=False)
    x_tr, y_tr, x_ho, y_ho = T.split(mnist, tcfg)
    rng = np.random.default_rng(fcfg.seed)
    order = rng.permutation(len(hy))
    n_hold = int(len(hy) * fcfg.holdout_frac)
    hx_ho, hy_ho, hx_tr, hy_tr = hx[order[:n_hold]], hy[order[:n_hold]], hx[order[n_hold:]], hy[order[n_hold:]]
    neg = np.flatnonzero(hy_tr == 10)
    keep_neg = neg[:int(fcfg.max_negative_ratio * (len(hy_tr) - len(neg)))]  # already in random order
    keep = np.sort(np.concatenate([np.flatnonzero(hy_tr != 10), keep_neg]))
    hx_tr, hy_tr = hx_tr[keep], hy_tr[keep]

    torch.manual_seed(fcfg.seed)
    device = torch.device("cpu")
    # frozen BNs leave the convolutions' scale free, so weight decay would shrink what the network computes
    opt = T.make_optimizer(replace(tcfg, lr=fcfg.lr, weight_decay=0.0 if frozen_bn else tcfg.weight_decay), model)
    ema = T.Ema(model, fcfg.ema_decay)
    eval_model, _ = nets.build(tcfg.arch)
    eval_model.to(memory_format=T.LAYOUT)
    augment_cfg = aug.calm(aug.AugmentConfig())  # mild: the harvested crops carry their own distortions
    per_batch_h = int(fcfg.batch_size * fcfg.harvest_share)
    per_batch_m = fcfg.batch_size - per_batch_h
    steps = math.ceil(len(hy_tr) / per_batch_h)
    total = steps * fcfg.epochs
    log_path = args.out / "log.jsonl"
    log_path.unlink(missing_ok=True)
    gen = torch.Generator().manual_seed(fcfg.seed)
    step = 0
    train_seconds = 0.0
    for epoch in range(fcfg.epochs):
        model.train()
        if frozen_bn:
            freeze_bn(model)
        h_order = rng.permutation(len(hy_tr))
        seen = correct = 0
        loss_sum = 0.0
        bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{fcfg.epochs}", unit="batch", leave=False)
        t0 = time.perf_counter()
        for b in bar:
            hi = h_order[b * per_batch_h:(b + 1) * per_batch_h]
            mi = rng.integers(0, len(y_tr), per_batch_m)
            m_images, m_labels = x_tr[mi].copy(), y_tr[mi].astype(np.int64)
            cam = rng.random(len(mi)) < tcfg.camera_fraction * 0.5
            if cam.any():
                m_images[cam] = synth.camera_digits(m_images[cam], rng)
            n_neg = max(1, int(len(mi) * tcfg.negative_fraction))
            m_images = np.concatenate([m_images, synth.negatives(n_neg, rng, x_tr)])
            m_labels = np.concatenate([m_labels, np.full(n_neg, 10, np.int64)])
            xm = aug.augment(T.to_tensor(m_images).float().div_(255), augment_cfg, gen)
            xh = T.to_tensor(hx_tr[hi]).float().div_(255)
            x = T.fast_layout(torch.cat([xm, xh]))
            labels = torch.from_numpy(np.concatenate([m_labels, hy_tr[hi]]))
            progress = step / max(1, total)
            lr = fcfg.lr * min(1.0, (step + 1) / (0.1 * total)) * 0.5 * (1 + math.cos(math.pi * progress))
            for group in opt.param_groups:
                group["lr"] = lr
            logits, loss = T.train_step(model, opt, x, labels, fcfg.label_smoothing, bf16=False)
            ema.update(model, step + 10_000)  # past the warm-up: average from the start at full decay
            step += 1
            seen += len(labels)
            correct += int((logits.argmax(1) == labels).sum())
            loss_sum += float(loss.detach()) * len(labels)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}")
        train_seconds += time.perf_counter() - t0
        final = ema.copy_to(eval_model)
        h_acc = float((T.predict_logits(final, hx_ho, device).argmax(1).numpy() == hy_ho).mean())
        val_acc = T.digit_accuracy(T.predict_logits(final, x_ho, device), y_ho)
        entry = {"kind": "epoch", "epoch": epoch + 1, "train_seconds": round(train_seconds, 1),
                 "loss": loss_sum / seen, "train_acc": correct / seen, "val_acc": val_acc, "harvest_held_out_acc": h_acc}
        with open(log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")
        print(f"epoch {epoch + 1}: held-out MNIST {val_acc:.4%}, held-out crops {h_acc:.4%} "
              f"({train_seconds:.0f} s)", file=sys.stderr)

    final = ema.copy_to(eval_model)
    cal_x, cal_y = T.calibration_set(x_ho, y_ho, tcfg.seed)  # the run's own calibration set, plus held-out crops
    cal_x, cal_y = np.concatenate([cal_x, hx_ho]), np.concatenate([cal_y, hy_ho]).astype(np.int64)
    temperature = T.fit_temperature(T.predict_logits(final, cal_x, device), torch.from_numpy(cal_y))
    test_acc = T.digit_accuracy(T.predict_logits(final, mnist.x_test, device), mnist.y_test)  # measured only
    val_acc = T.digit_accuracy(T.predict_logits(final, x_ho, device), y_ho)
    h_acc = float((T.predict_logits(final, hx_ho, device).argmax(1).numpy() == hy_ho).mean())
    command = "python benchmarks/finetune.py " + " ".join(sys.argv[1:])
    config = {**asdict(tcfg), "finetune": {**asdict(fcfg), "harvest": asdict(hcfg), "from_run": None if frozen_bn else str(args.run.name),
                                       "from_model": card["sha256"] if card else (str(args.from_model) if frozen_bn else None)}}
    if card:  # the shipped model's own recipe, which this fine-tuning continues
        config["earlier"] = card["config"].get("finetune")
    accuracy = {"mnist_test": round(test_acc, 5), "held_out": round(val_acc, 5), "test_images": int(len(mnist.y_test))}
    machine = sysinfo.machine_info()
    props = modelfile.metadata_props(tcfg.arch, list(spec.classes), accuracy, config, mnist.sha256,
                                     extra={"temperature": temperature, "train_seconds": round(train_seconds, 1),
                                            "machine": machine, "made_by": command})
    model_path = modelfile.export_onnx(final, args.out / "model.onnx", props)
    summary = {"arch": tcfg.arch, "classes": list(spec.classes), "epochs": fcfg.epochs, "from_run": str(args.from_model if frozen_bn else args.run),
               "harvest": {"crops": int(len(hy)), "per_class": counts, "seconds": round(t_harvest, 1),
                           "cached": cached, "held_out": int(n_hold)},
               "train_seconds": round(train_seconds, 1), "mnist_test_accuracy": test_acc,
               "held_out_accuracy": val_acc, "harvest_held_out_accuracy": h_acc, "temperature": temperature,
               "device": "cpu", "threads": torch.get_num_threads(), "machine": machine, "data_sha256": mnist.sha256,
               "config": config, "parameters": sum(p.numel() for p in model.parameters()),
               "time_to_accuracy_s": (card or {}).get("time_to_accuracy_s") if frozen_bn
               else json.loads((args.run / "summary.json").read_text()).get("time_to_accuracy_s")}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    result = {"benchmark": "finetune", "command": command, "machine": machine,
              "wall_seconds": round(time.perf_counter() - t_start, 1), **summary}
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"finetune-{tcfg.arch}-cpu.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({"model": str(model_path), "mnist_test_accuracy": test_acc, "held_out": val_acc,
                      "harvest_held_out": h_acc, "temperature": temperature}, indent=2))
    if args.ship:
        ship(tcfg.arch, args.out, args.run, result)
    return 0


def ship(arch: str, out: Path, run: Path, result: dict) -> None:
    """Install the fine-tuned model as the shipped one, with its card (SHA-256 checked at load) and both logs."""
    from common import install_model

    base = json.loads((run / "summary.json").read_text())
    card = {"model": f"{arch}.onnx",
            "made_by": f"python benchmarks/train.py --arch {arch} --out {run}, then {result['command']}",
            "arch": arch, "epochs": base["epochs"], "finetune_epochs": result["epochs"],
            "parameters": result["parameters"], "train_seconds": base["train_seconds"],
            "finetune_seconds": result["train_seconds"], "harvest": result["harvest"],
            "time_to_accuracy_s": base.get("time_to_accuracy_s"),
            "mnist_test_accuracy": round(result["mnist_test_accuracy"], 5),
            "held_out_accuracy": round(result["held_out_accuracy"], 5),
            "mnist_test_accuracy_before_finetune": base["mnist_test_accuracy"],
            "machine": {k: result["machine"].get(k) for k in ("cpu", "cores", "python", "torch", "platform")},
            "config": result["config"]}
    install_model(arch, out / "model.onnx", card, {f"{arch}.log.jsonl": run / "log.jsonl",
                                                     f"{arch}.finetune.log.jsonl": out / "log.jsonl"})


if __name__ == "__main__":
    raise SystemExit(main())
