"""benchmarks/finetune.py: how harvested crops are labelled, and its cache is read without pickle."""
from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import finetune  # noqa: E402


def test_label_crop_takes_one_digit_refuses_pieces_and_pairs():
    cfg = finetune.HarvestConfig()
    truth = [{"digit": 3, "box": [100, 100, 30, 50]}, {"digit": 8, "box": [135, 100, 30, 50]}]
    assert finetune.label_crop((101, 99, 29, 52), truth, cfg) == 3  # on the 3
    assert finetune.label_crop((400, 300, 30, 40), truth, cfg) == 10  # on nothing: not a digit
    assert finetune.label_crop((100, 100, 65, 50), truth, cfg) is None  # the pair 38 as one crop: left out
    assert finetune.label_crop((100, 100, 30, 20), truth, cfg) is None  # the top of the 3: left out
    assert finetune.label_crop((0, 0, 10, 10), [], cfg) == 10


def test_harvest_cache_is_used_only_for_the_same_settings_and_never_unpickled(tmp_path):
    cfg = finetune.HarvestConfig(numbers=1, single=0, empty=0)
    x, y = np.zeros((2, 28, 28), np.uint8), np.array([4, 10])
    path = tmp_path / "harvest.npz"
    np.savez_compressed(path, x=x, y=y, format=finetune.HARVEST_FORMAT, config=json.dumps(asdict(cfg)))
    got_x, got_y = finetune.load_harvest(path, cfg)
    assert np.array_equal(got_x, x) and got_y.tolist() == [4, 10]
    assert finetune.load_harvest(path, finetune.HarvestConfig(numbers=2)) is None  # other settings: harvest again
    assert finetune.load_harvest(tmp_path / "missing.npz", cfg) is None
    evil = tmp_path / "evil.npz"
    np.savez(evil, x=np.array([object()], dtype=object), y=y, format=finetune.HARVEST_FORMAT,
             config=json.dumps(asdict(cfg)))
    with pytest.raises(ValueError):
        finetune.load_harvest(evil, cfg)


def test_harvest_trains_on_the_readers_own_crops(core_reader, core_mnist, monkeypatch):
    """The harvest cuts its crops with Recognizer.candidate_crops, so what the model is fine-tuned on is exactly
    what the reader classifies (finer masks of small candidates and splits included), labelled from the truth."""
    from scenes import make_scene, scene_rng

    monkeypatch.setitem(finetune._worker, "reader", core_reader)
    monkeypatch.setitem(finetune._worker, "mnist", core_mnist)
    cfg = finetune.HarvestConfig()
    labelled_truth = 0
    for index in range(4):
        crops, labels = finetune._harvest_scene(("single", index, cfg))
        img, truth = make_scene("single", scene_rng(cfg.scene_seed, "single", index), split="train", mnist=core_mnist)
        _, _, reader_crops, _ = core_reader.candidate_crops(img)
        assert crops and len(crops) == len(labels)
        assert all(any(np.array_equal(c, r) for r in reader_crops) for c in crops)
        assert set(labels) <= set(range(11))
        labelled_truth += truth["digits"][0]["digit"] in labels
    assert labelled_truth >= 3  # the written digit is found and labelled in (nearly) every scene


def test_fragments_are_labelled_not_a_digit_only_when_asked():
    truth = [{"digit": 5, "box": [100, 100, 30, 50]}]
    bar = (104, 100, 24, 10)  # the detached bar of the 5: inside its box, a sixth of its area
    assert finetune.label_crop(bar, truth, finetune.HarvestConfig()) is None
    assert finetune.label_crop(bar, truth, finetune.HarvestConfig(piece_max_area=0.4)) == 10
    half = (100, 100, 30, 22)  # 44% of the digit: over the share, still left out
    assert finetune.label_crop(half, truth, finetune.HarvestConfig(piece_max_area=0.4)) is None
    across = (90, 100, 24, 10)  # reaching out of the digit's box: not a fragment of it
    assert finetune.label_crop(across, truth, finetune.HarvestConfig(piece_max_area=0.4)) is None


def test_a_model_file_becomes_a_torch_network_that_computes_the_same(core_mnist):
    """--from-model: the shipped ONNX file (BatchNorms folded into its convolutions) loaded back into the lens
    network with pass-through BatchNorms gives the file's own logits, and refuses a file whose hash is wrong."""
    import torch

    from digitlens import modelfile
    from digitlens import train as T

    root = Path(__file__).resolve().parents[1] / "digitlens" / "models"
    card = json.loads((root / "lens.json").read_text())
    model, tcfg, loaded = finetune.net_from_model(root / card["model"], card["sha256"])
    x = core_mnist.x_test[:300]
    ours = T.predict_logits(model, x, torch.device("cpu")).numpy()
    assert np.abs(ours - loaded.logits(x)).max() < 1e-4
    assert tcfg.arch == "lens" and tcfg.holdout == card["config"]["holdout"]
    model.train()
    finetune.freeze_bn(model)
    assert all(not m.training for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    with pytest.raises(modelfile.ModelError, match="SHA-256"):
        finetune.net_from_model(root / card["model"], "0" * 64)
