"""Write the README's benchmark tables from benchmarks/results/*.json (never typed by hand).

    python benchmarks/report.py            # rewrites the block between <!-- bench:start --> and <!-- bench:end -->,
                                           # and the targets at a glance between <!-- glance:start/end -->
    python benchmarks/report.py --print    # prints it instead
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
GLANCE_START, GLANCE_END = "<!-- glance:start -->", "<!-- glance:end -->"


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def pct(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def secs(x: float | None) -> str:
    return "not reached" if x is None else f"{x:.0f} s" if x >= 10 else f"{x:.1f} s"


def ok(flag: bool) -> str:
    return "met" if flag else "**not met**"


def train_section() -> list[str]:
    rows = []
    for name, label in (("train-lens-cpu.json", "default (lens)"),
                        ("train-lens-cpu-shipped.json", "default (lens), 32 epochs in NCHW: the shipped model's base"),
                        ("train-seed-cpu.json", "seed"), ("train-seed-gpu.json", "seed"),
                        ("train-lens-gpu.json", "default (lens)")):
        r = load(name)
        if not r:
            continue
        where = r["machine"].get("gpu") or f"{r['machine']['cores']}-core CPU"
        tta = r["time_to_accuracy_s"]
        rows.append(f"| {label} | {where} | {r['epochs']} | {r['train_seconds'] / 60:.1f} min | {secs(tta['0.990'])} | "
                    f"{secs(tta['0.995'])} | {secs(tta['0.997'])} | **{pct(r['mnist_test_accuracy'])}** | `{name}` |")
    # Fine-tuned models (benchmarks/finetune.py), each after the run it started from.
    for name, base_name, what in (("finetune-lens-cpu.json", "train-lens-cpu-shipped.json", "shipped"),
                                  ("finetune-lens-40ep-not-shipped.json", "train-lens-cpu.json",
                                   "not shipped: under 99.70%")):
        ft = load(name)
        if not ft:
            continue
        base = load(base_name) or {}
        tta = ft.get("time_to_accuracy_s") or {}
        h = ft["harvest"]
        parts = (base.get("train_seconds", 0) / 60, h["seconds"] / 60, ft["train_seconds"] / 60)
        rows.append(f"| default (lens), {base.get('epochs', '?')} epochs, fine-tuned on {h['crops']:,} crops cut out "
                    f"of training scenes ({what}) | "
                    f"{ft['machine']['cores']}-core CPU | {base.get('epochs', '?')} + {ft['epochs']} | "
                    f"{parts[0]:.1f} + {parts[1]:.1f} harvesting + {parts[2]:.1f} fine-tuning = "
                    f"**{round(parts[0], 1) + round(parts[1], 1) + round(parts[2], 1):.1f} min** | {secs(tta.get('0.990'))} | {secs(tta.get('0.995'))} | "
                    f"{secs(tta.get('0.997'))} | **{pct(ft['mnist_test_accuracy'])}** | `{name}` |")
    if not rows:
        return []
    targets = []
    lens = load("train-lens-cpu.json")
    if lens:
        t99 = lens["time_to_accuracy_s"]["0.990"]
        acc, minutes = lens["mnist_test_accuracy"], lens["train_seconds"] / 60
        targets.append(f"default ≥ 99.70% in ≤ 30 min of training on this CPU ({ok(acc >= 0.997 and minutes <= 30)}: "
                       f"{pct(acc)} in {minutes:.1f} min), 99.0% within 60 s ({ok(t99 is not None and t99 <= 60)}: "
                       f"{secs(t99)})")
    seed = load("train-seed-cpu.json") or load("train-seed-gpu.json")
    if seed:
        targets.append(f"seed's network ≥ 99.1% ({ok(seed['mnist_test_accuracy'] >= 0.991)}: "
                       f"{pct(seed['mnist_test_accuracy'])})")
    ft = load("finetune-lens-cpu.json")
    if ft:
        targets.append(f"shipped model ≥ 99.70% ({ok(ft['mnist_test_accuracy'] >= 0.997)}: "
                       f"{pct(ft['mnist_test_accuracy'])})")
    tail = [f"Targets of training: {'; '.join(targets)}.", ""] if targets else []
    return ["### Training (`python benchmarks/train.py --arch ARCH`, then `python benchmarks/finetune.py`)", "",
            "MNIST test accuracy is 10-way, one model, no test-time augmentation; time-to-accuracy counts training "
            "time only (the test-accuracy probes that measure it are excluded).", "",
            "| network | device | epochs | training time | to 99.0% | to 99.5% | to 99.7% | MNIST test | file |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |", *rows, "", *tail]


def read_section() -> list[str]:
    s = load("read-summary.json")
    if not s:
        return []
    out = [f"### Reading photos (`{s['command']}`)", "",
           f"{s['scenes_per_kind']} generated scenes of each kind (MNIST test digits as ink on paper, photographed "
           "with perspective, uneven light, shadows, blur, noise and JPEG; see `benchmarks/scenes.py`). "
           "Speed on one core of this machine.", "",
           "| reader | single digits read exactly | numbers read exactly | digit precision | digit recall "
           "| empty pages with no digit | ms per 1280x720 photo (1 core) | classify digits/s |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in s["readers"].items():
        k = r["per_kind"]
        speed = r.get("speed", {}).get("median_ms_1280x720")
        cls = r.get("classify_digits_per_s")
        out.append(f"| {name} | {pct(k['single']['exact'], 1)} | {pct(k['numbers']['exact'], 1)} | "
                   f"{pct(k['numbers'].get('precision'), 1)} | {pct(k['numbers'].get('recall'), 1)} | "
                   f"{pct(k['empty']['pages_read_empty'], 1)} | {'–' if speed is None else f'{speed:.1f}'} | "
                   f"{'–' if cls is None else f'{cls:,.0f}'} |")
    before = load("before-finetune/read-summary.json")
    if before and "digitlens" in before["readers"]:  # the same scenes, the model before its fine-tuning
        r = before["readers"]["digitlens"]
        k = r["per_kind"]
        speed = r.get("speed", {}).get("median_ms_1280x720")
        out.append(f"| digitlens, model before fine-tuning (`before-finetune/`) | {pct(k['single']['exact'], 1)} | "
                   f"{pct(k['numbers']['exact'], 1)} | {pct(k['numbers'].get('precision'), 1)} | "
                   f"{pct(k['numbers'].get('recall'), 1)} | {pct(k['empty']['pages_read_empty'], 1)} | "
                   f"{'–' if speed is None else f'{speed:.1f}'} | – |")
    small = load("small-digits/read-summary.json")
    if small:  # the same scenes taken from farther away: how the readers hold up on small digits
        for name, r in small["readers"].items():
            k = r["per_kind"]
            out.append(f"| {name}, scenes shrunk to {small['shrink']:g}x, digits {small['digit_height_median_px']:.0f} px "
                       f"(`small-digits/`) | {pct(k['single']['exact'], 1)} | {pct(k['numbers']['exact'], 1)} | "
                       f"{pct(k['numbers'].get('precision'), 1)} | {pct(k['numbers'].get('recall'), 1)} | "
                       f"{pct(k['empty']['pages_read_empty'], 1)} | – | – |")
    d = s["readers"].get("digitlens")
    if d:
        k = d["per_kind"]
        speed = d.get("speed", {}).get("median_ms_1280x720") or 1e9
        out += ["", "Targets of the reader: single ≥ 98% "
                f"({ok(k['single']['exact'] >= 0.98)}), numbers ≥ 92% ({ok(k['numbers']['exact'] >= 0.92)}), "
                f"digit precision and recall ≥ 98% ({ok(min(k['numbers']['precision'], k['numbers']['recall']) >= 0.98)}), "
                f"empty pages ≥ 97% ({ok(k['empty']['pages_read_empty'] >= 0.97)}), ≤ 30 ms per photo "
                f"({ok(speed <= 30)}), ≥ 5,000 digits/s on this machine "
                f"({d.get('classify_digits_per_s_all_cores', 0):,.0f} on both cores, "
                f"{ok((d.get('classify_digits_per_s_all_cores') or 0) >= 5000)}).",
                "", "![failures of the reader, a few per kind](benchmarks/results/read-failures.png)"]
        full = load("read-digitlens.json") or {}
        causes = full.get("missed_digit_causes") or {}
        if causes:  # why each digit not read right was lost (read.py's missed_digit_causes), commonest first
            total: dict[str, int] = {}
            for counts in causes.values():
                for c, n in counts.items():
                    total[c] = total.get(c, 0) + n
            order = sorted(total, key=lambda c: -total[c])
            out += ["", "Digits digitlens did not read right, by cause (one per digit, from its first look's "
                    "regions; `missed_digit_causes` in `read-digitlens.json`):", "",
                    "| scenes | " + " | ".join(order) + " |", "| --- |" + " --- |" * len(order)]
            for kind, counts in causes.items():
                out.append(f"| {kind} | " + " | ".join(str(counts.get(c, 0)) for c in order) + " |")
    return out + [""]


def glance_section() -> list[str]:
    """Every target of the reader, live video and serving on one screen: measured, met or not, and the file."""
    rows = []
    read = load("read-digitlens.json")
    if read:
        k, sp = read["per_kind"], read.get("speed", {})
        prec, rec = k["numbers"]["precision"], k["numbers"]["recall"]
        cls = read.get("classify_digits_per_s_all_cores") or 0
        ms = sp.get("median_ms_1280x720")
        rows += [(what, want, got, ok(met), "read-digitlens.json") for what, want, got, met in (
            ("single-digit photos read exactly", "≥ 98%", pct(k["single"]["exact"], 1), k["single"]["exact"] >= 0.98),
            ("number photos read exactly", "≥ 92%", pct(k["numbers"]["exact"], 1), k["numbers"]["exact"] >= 0.92),
            ("digit precision / recall in numbers", "≥ 98%", f"{pct(prec, 1)} / {pct(rec, 1)}", min(prec, rec) >= 0.98),
            ("pages without digits read empty", "≥ 97%", pct(k["empty"]["pages_read_empty"], 1),
             k["empty"]["pages_read_empty"] >= 0.97),
            ("1280x720 photo, one core, median", "≤ 30 ms", "–" if ms is None else f"{ms:.1f} ms",
             ms is not None and ms <= 30),
            ("classification, both cores", "≥ 5,000 digits/s", f"{cls:,.0f} digits/s", cls >= 5000))]
    ev = load("evaluate-lens.json")
    if ev and ev.get("accuracy") is not None:
        rows.append(("MNIST test accuracy of the shipped model", "≥ 99.70%", pct(ev["accuracy"]),
                     ok(ev["accuracy"] >= 0.997 - 1e-9), "evaluate-lens.json"))
    live = load("live-640x480.json")
    if live:
        rows.append(("live video, 640x480, frames per second", "≥ 30", f"{live['summary']['fps_median']:.1f}",
                     ok(live["targets_met"]["fps >= 30"]), "live-640x480.json"))
    serve = load("serve-vm.json")
    if serve:
        t, c, lat = serve["targets"], serve["checks"], serve["http_read"]["latency_ms"]
        rows += [("`POST /api/read`, 8 clients, p50 / p99", f"≤ {t['read_p50_ms']:.0f} / {t['read_p99_ms']:.0f} ms",
                  f"{lat['p50']:.0f} / {lat['p99']:.0f} ms", f"{ok(c['read_p50'])} / {ok(c['read_p99'])}", "serve-vm.json"),
                 ("WebSocket readings per second per client", f"≥ {t['ws_readings_per_s']:.0f}",
                  f"{serve['ws_stream']['readings_per_s_min']:.1f}", ok(c["ws_readings_per_s"]), "serve-vm.json")]
    if not rows:
        return []
    out = ["| target | wanted | measured | | file in `benchmarks/results/` |", "| --- | --- | --- | --- | --- |"]
    for what, want, got, met, name in rows:
        out.append(f"| {what} | {want} | {got} | {met} | `{name}` |")
    return out


def live_section() -> list[str]:
    d = load("live-640x480.json")
    if not d:
        return []
    m, met = d["summary"], d["targets_met"]
    load_avg = (d["machine"].get("load_avg_at_start") or d["machine"].get("load_avg_1_5_15min") or [None])[0]
    return ["### Live video (`python benchmarks/live.py`, `live-640x480.json`)", "",
            "Generated 640x480 clips at 30 fps of MNIST test digits (20 in view) that pan, zoom, tilt and shake; "
            "window off; capture, read, track and draw end to end"
            + (f" (load average {load_avg:.1f} when it started)." if load_avg is not None else "."), "",
            "| what | measured | target | |", "| --- | --- | --- | --- |",
            f"| frames per second (median) | {m['fps_median']:.1f} | ≥ 30 | {ok(met['fps >= 30'])} |",
            f"| read / track / draw per frame | {m['read_ms_median']:.1f} / {m['track_ms_median']:.1f} / "
            f"{m['draw_ms_median']:.1f} ms | | |",
            f"| peak resident memory | {m['peak_rss_mb_max']:.0f} MB | ≤ 250 MB | {ok(met['rss <= 250 MB'])} |",
            f"| torch imported | {'yes' if m['torch_imported'] else 'no'} | no | {ok(met['torch not imported'])} |",
            f"| frames read exactly once settled | {pct(m['exact_settled_fraction'], 1)} (reader alone "
            f"{pct(m['raw_reader_exact_settled_fraction'], 1)}) | ≥ 95% | {ok(met['exact >= 95% settled'])} |",
            f"| label changes per 100 frames in view | {m['label_changes_per_100_frames']:.2f} | < 1 | "
            f"{ok(met['label changes < 1 per 100 frames'])} |", ""]


def serve_section() -> list[str]:
    main = RESULTS / "serve-vm.json"
    if not main.exists():
        return []
    files = [main]
    d = json.loads(main.read_text())
    t, c = d["targets"], d["checks"]
    r8, ws, ov = d["http_read"]["latency_ms"], d["ws_stream"], d["overload"]
    load = d["machine"].get("load_avg_at_start")
    out = [f"### Serving (`python benchmarks/serve.py`, `{files[-1].name}`)", "",
           f"{d['scenes']['count']} photo-like {d['scenes']['size']} JPEGs; the server is started as a subprocess. "
           + (f"Load average when it started: {load[0]:.1f} on {d['machine']['cores']} cores. " if load else "")
           + ("The HTTP clients are a minimal keep-alive HTTP/1.1 client on the same 2 cores as the server "
              f"({d['http_read']['client_cpu_ms_per_request']:.2f} ms of CPU per request, so the server gets the machine)."
              if "client_cpu_ms_per_request" in d["http_read"] else ""), "",
           "| what | measured | target | |", "| --- | --- | --- | --- |",
           f"| reader alone, p50 | {d['reader_alone_ms']['p50']:.1f} ms | | |",
           f"| server overhead, 1 client, p50 | {d['server_overhead_p50_ms']:.1f} ms | small | |",
           f"| `POST /api/read`, 8 clients, p50 | {r8['p50']:.1f} ms | ≤ {t['read_p50_ms']:.0f} ms | {ok(c['read_p50'])} |",
           f"| `POST /api/read`, 8 clients, p99 | {r8['p99']:.0f} ms | ≤ {t['read_p99_ms']:.0f} ms | {ok(c['read_p99'])} |",
           f"| errors | {d['http_read']['errors']} | 0 | {ok(c['read_no_errors'])} |",
           f"| WebSocket, readings/s per client (4 clients) | {ws['readings_per_s_min']:.1f} | ≥ {t['ws_readings_per_s']:.0f} | "
           f"{ok(c['ws_readings_per_s'])} |",
           f"| overload ({ov['clients']} clients, bound {ov['max_inflight']}): 503s, p99 | {ov['busy_503']} refused, "
           f"{ov['busy_latency_ms']['p99']:.0f} ms; {ov['served']} served | fast 503, rest served | "
           f"{ok(c['overload_excess_503'] and c['overload_503_fast'] and c['overload_served_after'])} |",
           f"| RSS before / peak / after | {ov['rss_mb']['before']:.0f} / {ov['rss_mb']['peak']:.0f} / "
           f"{ov['rss_mb']['after']:.0f} MB | back to its level | {ok(c['rss_returns'])} |", ""]
    for other in sorted(RESULTS.glob("serve-vm-*.json")):  # other runs at the same commit: no run is hidden
        o = json.loads(other.read_text())
        met = [k for k, v in o["checks"].items() if not v]
        out += [f"Another run (`{other.name}`, commit {o['machine'].get('git_commit')}): reader alone p50 "
                f"{o['reader_alone_ms']['p50']:.1f} ms, 8 clients p50 {o['http_read']['latency_ms']['p50']:.1f} ms and p99 "
                f"{o['http_read']['latency_ms']['p99']:.0f} ms, WebSocket {o['ws_stream']['readings_per_s_min']:.1f}/s; "
                + (f"not met: {', '.join(met)}." if met else "all met."), ""]
    return out


def generic_section(prefix: str, title: str) -> list[str]:
    """Any other results: one line per file with its headline numbers, so nothing measured is hidden."""
    files = sorted(RESULTS.glob(f"{prefix}-*.json"))
    if not files:
        return []
    out = [f"### {title}", ""]
    for f in files:
        data = json.loads(f.read_text())
        head = data.get("summary") or data.get("headline") or {}
        if head:
            items = ", ".join(f"{k}: {v}" for k, v in head.items())
            out.append(f"- `{f.name}`: {items}")
    return out + [""]


def speed_vs_section() -> list[str]:
    """The reader at HEAD against earlier commits, side by side in one process (speed_vs.py)."""
    files = sorted(RESULTS.glob("speed-vs-*.json"))
    if not files:
        return []
    out = ["### Speed against an earlier commit (`python benchmarks/speed_vs.py --base REV`)", "",
           "This machine's speed drifts from run to run; both readers alternate image by image in one process, on "
           "one thread, each with the model shipped at its commit (dev scenes of training digits).", "",
           "| file | size | base | head | median ms, base | median ms, head | head / base |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for f in files:
        d = json.loads(f.read_text())
        for size, v in d["sizes"].items():
            out.append(f"| `{f.name}` | {size} | {d['base']} | {d['head']} | {v['median_ms'][d['base']]:.1f} | "
                       f"{v['median_ms'][d['head']]:.1f} | {v['head_over_base']:.2f} |")
    return out + [""]


def other_hand_section() -> list[str]:
    """Numbers written another way (other_hand.py): the reader before and after the coarse pass, per condition."""
    files = [RESULTS / f"other-hand-{src}.json" for src in ("mnist", "font")]
    data = {f.stem.removeprefix("other-hand-"): json.loads(f.read_text()) for f in files if f.exists()}
    if not data:
        return []
    srcs = list(data)
    first = data[srcs[0]]
    out = ["### Numbers written another way (`python benchmarks/other_hand.py [--source font]`)", "",
           f"Not scenes.py's photos: this script's own compositor writes 1-4 digit numbers on flat pages, "
           f"{first['n_per_category']} per condition (seed {first['seed']}), with MNIST *test* digits or OpenCV's "
           "Hershey fonts. Both readers read the same images in one process: \"before\" is this code with the "
           "detection settings of commit c4b3b50 (no coarse pass, a region within 2% of the frame's edge touches it, "
           "no blur allowance in the blot test), no level reading of a tilted page (told by digits or by "
           "candidates), none of the rules for boxes on forms (box sides, stripped sides, drawn frames, the frame "
           "strip, thin dividers), no stretched reading of squashed writing and no marks parting numbers; the "
           "reader's other changes since (the finer-mask split, the second look, the hatching rule, the grey "
           "average) are in both. 'boxes' writes one digit per box of a row on a form, as a comb or apart, the "
           "digits sometimes touching a side; 'squashed' foreshortens the writing to 0.45-0.65 of its height (a "
           "page on a desk taken at a slant); 'touching' overlaps each digit with the last by up to 8% of the "
           "height; 'marks' writes a sum (a+b=c) or a time (hh:mm), read right as the numbers apart. Files: "
           + ", ".join(f"`other-hand-{s}.json`" for s in srcs) + ".", "",
           "| condition | " + " | ".join(f"{s}: before | {s}: now" for s in srcs) + " |",
           "| --- | " + " | ".join("--- | ---" for _ in srcs) + " |"]
    for cat in first["categories"]:
        cells = []
        for s in srcs:
            c = data[s]["categories"].get(cat)
            cells += [pct(c["before"]["exact"], 0), pct(c["current"]["exact"], 0)] if c else ["", ""]
        out.append(f"| {cat} | " + " | ".join(cells) + " |")
    cells = []
    for s in srcs:
        cells += [f"**{pct(data[s]['overall']['before'], 1)}**", f"**{pct(data[s]['overall']['current'], 1)}**"]
    out.append("| all | " + " | ".join(cells) + " |")
    return out + [""]


def layouts_section() -> list[str]:
    """Pages laid out in rows (layouts.py): tables and sudoku grids, read in order, before and with row ordering."""
    data = {src: load(f"layouts-{src}.json") for src in ("mnist", "font")}
    data = {src: d for src, d in data.items() if d}
    if not data:
        return []
    first = next(iter(data.values()))
    out = ["### Pages laid out in rows (`python benchmarks/layouts.py [--source font]`)", "",
           f"Tables (2-5 rows of 2-4 numbers in columns) and sudoku grids (a third of 81 cells with a digit), "
           f"{first['n_per_layout']} pages each (seed {first['seed']}), turned up to 6 degrees, with MNIST *test* "
           "digits or Hershey fonts, written by this script's own compositor. 'Exact': every number read, in "
           "reading order (rows top to bottom, each left to right); 'same digits': every digit read right, in any "
           "order. 'Before' is this code with numbers too far apart to link into one line sorted by height alone "
           "(`GroupConfig.rows` off). Files: " + ", ".join(f"`layouts-{s}.json`" for s in data) + ".", "",
           "| layout | digits | exact, before | exact, now | same digits | median ms |",
           "| --- | --- | --- | --- | --- | --- |"]
    for src, d in data.items():
        for layout, r in d["layouts"].items():
            out.append(f"| {layout} | {src} | {pct(r['before']['exact'], 0)} | {pct(r['current']['exact'], 0)} | "
                       f"{pct(r['current']['same_digits'], 0)} | {r['current']['median_ms']:.1f} |")
    return out + [""]


def crops_section() -> list[str]:
    path = RESULTS / "crops-mnist.json"
    if not path.exists():
        return []
    d = json.loads(path.read_text())
    names = {"mnist-28": "the 28x28 MNIST image itself (white on black)", "x10": "scaled up to 280x280, white on black",
             "x10-inverted": "280x280, dark ink on white", "tight-crop": "280x280 dark on white, cropped to the ink"}
    rows = [f"| {names.get(k, k)} | {v:.1%} | {d['read_nothing'][k]:.1%} | {d['median_ms'][k]:.1f} |"
            for k, v in d["read_exactly"].items()]
    return [f"### Single-digit images (`{d['command']}`, `{path.name}`)", "",
            f"{d['digits']:,} MNIST test digits given to `Recognizer.read` the way people upload one digit. "
            f"The network alone classifies {d['classifier_alone_28x28']:.1%} of these 28x28 images.", "",
            "| image | read exactly | read as nothing | median ms |", "| --- | --- | --- | --- |", *rows, ""]


def fuzz_section() -> list[str]:
    path = RESULTS / "fuzz-read.json"
    if not path.exists():
        return []
    d = json.loads(path.read_text())
    counts = sorted(d.get("refusal_reasons", {}).items(), key=lambda kv: -kv[1])
    reasons = f"{len(counts)} distinct messages, e.g. " + "; ".join(f"\"{k[:70]}\" {v:,}" for k, v in counts[:3])
    return [f"### Fuzzing (`{d['command']}`, `{path.name}`)", "",
            f"{d['cases']:,} mutated image files (truncated, bit-flipped, spliced, resized headers, wrong formats) through "
            "the decode-and-read path of `digitlens read`.", "",
            "| what | measured | target | |", "| --- | --- | --- | --- |",
            f"| crashes (the process died or hung) | {d['crashes']} | 0 | {'met' if d['crashes'] == 0 else '**not met**'} |",
            f"| unexpected exceptions | {sum(d['unexpected_errors'].values())} | 0 | "
            f"{'met' if not d['unexpected_errors'] else '**not met**'} |",
            f"| refused with a clear error | {d['refused']:,} ({reasons}) | | |",
            f"| decoded and read | {d['read']:,}, median {d['read_ms_median']:.1f} ms, max {d['read_ms_max']:.0f} ms | | |",
            ""]


def build() -> str:
    lines = [*train_section(), *read_section(), *live_section(),
             *serve_section(), *speed_vs_section(), *other_hand_section(), *layouts_section(),
             *crops_section(), *fuzz_section()]
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--print", action="store_true")
    args = ap.parse_args()
    block = build()
    if args.print:
        print(block)
        return 0
    readme = ROOT / "README.md"
    text = readme.read_text()
    if START not in text or END not in text:
        print(f"README.md has no {START} ... {END} block", file=sys.stderr)
        return 1
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    text = f"{head}{START}\n{block}{END}{tail}"
    if GLANCE_START in text and GLANCE_END in text:  # the targets at a glance, under "Where it stands"
        head, rest = text.split(GLANCE_START, 1)
        _, tail = rest.split(GLANCE_END, 1)
        text = f"{head}{GLANCE_START}\n" + "\n".join(glance_section()) + f"\n{GLANCE_END}{tail}"
    readme.write_text(text)
    print("README.md benchmark tables updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
