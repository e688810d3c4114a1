"""benchmarks/dev_ab.py: variants are checked against the settings, the benchmarks' seed is refused, and a run
reports what a variant changes (and nothing when it changes nothing)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import dev_ab  # noqa: E402


def _need_dev_data() -> None:
    """Skip unless benchmarks/scenes.py and the cached MNIST (its training digits make the dev scenes) are here."""
    pytest.importorskip("scenes")
    from digitlens.data import DataError, load_mnist
    try:
        load_mnist(mirrors=False)
    except DataError as e:
        pytest.skip(f"MNIST not cached: {e}")


def test_variants_name_real_settings():
    name, overrides = dev_ab.parse_variant('tall={"classify.sure_union_piece_height": 1.0, "rotate_min_deg": 0}')
    assert (name, overrides) == ("tall", {"classify.sure_union_piece_height": 1.0, "rotate_min_deg": 0})
    cfg = dev_ab.reader_config(overrides)
    assert cfg.classify.sure_union_piece_height == 1.0 and cfg.rotate_min_deg == 0 and cfg.intra_op_threads == 1
    assert dev_ab.reader_config({}).classify == type(cfg.classify)()  # the base is the reader as shipped
    for bad in ('x={"classify.no_such": 1}', 'x={"nosection.min_confidence": 1}', 'x={"classify": 1}',
                'x=[1]', 'x={not json', 'base={}', '={}', 'x', 'x={"model": "no/such/model.onnx"}', 'x={"model": 1}'):
        with pytest.raises(ValueError):
            dev_ab.parse_variant(bad)


def test_the_benchmarks_seed_is_not_development_data():
    with pytest.raises(ValueError, match="2026"):
        dev_ab.run({}, [7, 2026], ["single"], 1)
    with pytest.raises(SystemExit):
        dev_ab.main(["--seeds", "2026", "--n", "1", "--kinds", "single", "--processes", "1"])


def test_a_run_reports_what_a_variant_changes(tmp_path, capsys):
    _need_dev_data()
    from digitlens.recognizer import shipped_model_path

    out = tmp_path / "ab.json"
    # dev seed 9, single-digit scene 292: a 7 whose bar came away reads as a 1 without the sure unions
    assert dev_ab.main(["--seeds", "9", "--kinds", "single", "--start", "290", "--n", "3", "--processes", "1",
                        "--variant", 'same={"classify.sure_unions": true}',
                        "--variant", f'model={json.dumps({"model": str(shipped_model_path())})}',
                        "--variant", 'off={"classify.sure_unions": false}', "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    counts = result["counts"]["9/single"]
    assert counts["same"] == counts["base"] == counts["model"]  # the shipped model, loaded as a file of yours
    assert counts["off"]["exact"] < counts["base"]["exact"]
    changed = {(c["index"], name): (c["base"], text) for c in result["changed"] for name, text in c["variants"].items()}
    assert changed[(292, "off")] == ("7", "1")
    assert not any(name in ("same", "model") for _, name in changed)
    assert "off 9/single #292" in capsys.readouterr().out


def test_dev_misses_lists_the_scenes_read_wrong_with_why(tmp_path, capsys):
    """benchmarks/dev_misses.py on six dev scenes (seed 7, single digits 294-299, some read wrong when this was
    written): each scene read wrong is listed once, with its truth, its reading, the causes of its lost digits
    (which add up to the totals) and a picture; the exact rate counts the rest. The benchmarks' seed is refused."""
    _need_dev_data()
    import dev_misses

    out = tmp_path / "misses.json"
    assert dev_misses.main(["--kind", "single", "--seed", "7", "--start", "294", "--n", "6",
                            "--show", str(tmp_path / "show"), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    wrong = result["wrong"]
    assert result["scenes"] == 6 and round(result["exact"] * 6) == 6 - len(wrong)
    assert len({row["index"] for row in wrong}) == len(wrong) and all(294 <= row["index"] < 300 for row in wrong)
    assert all(row["read"] != row["truth"] and row["failures"] for row in wrong)
    totals: dict[str, int] = {}
    for row in wrong:
        assert sum(row["missed"].values()) <= len(row["heights"]) == 1
        for cause, count in row["missed"].items():
            totals[cause] = totals.get(cause, 0) + count
    assert totals == result["missed_digit_causes"]
    assert all(Path(row["picture"]).stat().st_size > 0 for row in wrong)
    printed = capsys.readouterr().out
    assert all(f"#{row['index']} " in printed for row in wrong)
    assert f"{100 * result['exact']:.1f}% of 6 read exactly" in printed
    with pytest.raises(ValueError, match="2026"):
        dev_misses.misses("single", 2026, 0, 1)
    with pytest.raises(SystemExit):
        dev_misses.main(["--seed", "2026", "--n", "1"])


def test_dev_misses_lists_other_hand_photos_read_wrong(tmp_path, capsys):
    """--source other-hand: fonts' forms (dev seed 8, boxes 65-74, five of them read wrong when this was written):
    each photo read wrong is listed once with the number written and a picture, the exact rate counts the rest,
    an unknown category is refused and the benchmarks' seed too."""
    import dev_misses

    out = tmp_path / "hand.json"
    assert dev_misses.main(["--source", "other-hand", "--category", "boxes", "--hand-digits", "font", "--seed", "8",
                            "--start", "65", "--n", "10", "--show", str(tmp_path / "show"), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    wrong = result["wrong"]
    assert result["photos"] == 10 and round(result["exact"] * 10) == 10 - len(wrong)
    assert wrong and all(65 <= row["index"] < 75 and row["read"] != row["truth"] for row in wrong)
    assert len({row["index"] for row in wrong}) == len(wrong)
    assert all(Path(row["picture"]).stat().st_size > 0 for row in wrong)
    printed = capsys.readouterr().out
    assert all(f"#{row['index']} truth {row['truth']!r}" in printed for row in wrong)
    with pytest.raises(SystemExit):
        dev_misses.main(["--source", "other-hand", "--category", "nonsense", "--n", "1"])
    with pytest.raises(ValueError, match="2026"):
        dev_misses.hand_misses("boxes", 2026, 0, 1, "font")


def test_second_network_counts_each_networks_mistakes_and_the_mean():
    """benchmarks/second_network.py's tally: argmax mistakes per network, the mean only where the first is unsure,
    and what the reader's bar keeps."""
    import second_network as sn

    def p(top: int, sure: float) -> list[float]:
        row = [(1.0 - sure) / 10] * 11
        row[top] = sure
        return row
    rows = [(3, True, p(3, 0.99), p(5, 0.9)),   # right and sure: the second's 5 is never asked
            (4, True, p(9, 0.6), p(4, 0.99)),    # wrong and unsure: the mean reads 4
            (10, True, p(1, 0.85), p(10, 0.9)),  # a not-digit read as 1, the second says none
            (7, False, p(7, 0.7), p(1, 0.7))]    # a part: the mean is as unsure as either
    out = sn.summarise(rows, min_confidence=0.8)
    whole = out["whole"]
    assert whole["first"] == {"digits": 2, "digits_wrong": 1, "not_digits": 1, "not_digits_read_as_digit": 1}
    assert whole["second"] == {"digits": 2, "digits_wrong": 1, "not_digits": 1, "not_digits_read_as_digit": 0}
    assert whole["mean_under_0.9"] == {"digits": 2, "digits_wrong": 0, "not_digits": 1, "not_digits_read_as_digit": 0,
                                       "share_read_twice": round(2 / 3, 4)}
    assert out["parts"]["first"]["digits_wrong"] == 0 and out["parts"]["second"]["digits_wrong"] == 1
    bar = out["whole_at_reader_bar"]
    assert bar["first"] == {"right": 1, "wrong": 0, "missed": 1, "not_digits_kept": 1}
    assert bar["mean_under_0.99"] == {"right": 1, "wrong": 0, "missed": 1, "not_digits_kept": 0}


def test_second_network_refuses_the_benchmarks_seed(tmp_path):
    import second_network as sn

    with pytest.raises(SystemExit, match="2026"):
        sn.main(["--second", str(tmp_path / "m.onnx"), "--seeds", "7,2026"])
    with pytest.raises(SystemExit, match="no such model"):
        sn.main(["--second", str(tmp_path / "m.onnx")])
