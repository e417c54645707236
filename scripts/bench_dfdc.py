#!/usr/bin/env python3
"""DFDC face crops: the detector experiments, one row per trained run.

Every run trains on ../shared/data/dfdc_faces with its group split
(`tinyfake train`, the command in EXPERIMENTS) and is scored on its test
faces: float PyTorch AUC (metrics.json), int8 TFLite Micro AUC (eval.json,
which equals the device's bit for bit) with 95% intervals from a bootstrap
over groups, int8 AUC after JPEG re-encoding at quality 50 (`tinyfake eval
--jpeg 50`), int8 AUC with a test-time horizontal flip (the mean of the two
scores: what two inferences on the board would give). Board figures come from
compiling the run's int8 model and running it on the simulated Cortex-M7
(scripts/bench_engine.py's bench_model: whole-firmware flash, arena, exact
instructions of one inference on QEMU mps2-an500, output equal to TFLite
Micro's); the estimated ms is instructions / 480 MHz. A run built for the
board (`tinyfake build --model RUN`) adds the device AUC from its report.json.

    .venv/bin/python scripts/bench_dfdc.py --train [NAME ...]   # train the missing runs, in order
    .venv/bin/python scripts/bench_dfdc.py [--runs a,b]         # score them: bench/results/dfdc.json
    .venv/bin/python scripts/bench_dfdc.py --runs R --device-only  # R's device column, after `tinyfake build --model runs/R`
    .venv/bin/python scripts/bench_dfdc.py --readme             # the README table from dfdc.json
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from bench_engine import bench_model, readme_with_table  # noqa: E402

DATA = "../shared/data/dfdc_faces"
RUNS = REPO / "runs"
DEFAULT_OUT = REPO / "bench" / "results" / "dfdc.json"
CLOCK_HZ = 480_000_000  # STM32H743
COMMON = "--batch-size 64 --lr 3e-3 --epochs 12 --patience 5"
# name -> (what it tries, its `tinyfake train` options besides --data, COMMON and --name)
EXPERIMENTS = {
    "dfdc64_a025": ("PhiNet a0.25, 64 px, mild augmentation (baseline)", "--size 64"),
    "dfdc64_a025_strong": ("+ strong augmentation (JPEG, blur, cut-out)", "--size 64 --augment strong"),
    "dfdc96_a025": ("96 px", "--size 96"),
    "dfdc64_a050": ("width a0.5", "--size 64 --alpha 0.5"),
    "dfdc64_a075": ("width a0.75", "--size 64 --alpha 0.75"),
    "dfdc64_a075_e24": ("width a0.75, 24 epochs (the recipe before e40)",
                        "--size 64 --alpha 0.75 --epochs 24 --patience 8"),
    "dfdc64_a075_e40": ("width a0.75, 40 epochs (the recipe's first stage: `--recipe dfdc`)",
                        "--size 64 --alpha 0.75 --epochs 40 --patience 10"),
    # warm restarts of the e40 run: a new cosine cycle from its weights, on its split
    "dfdc64_a075_e40_ft16": ("e40 + 16 epochs fine-tuning (lr 1e-3, mild)",
                             "--method finetune --init runs/dfdc64_a075_e40 --epochs 16 --lr 1e-3 --patience 16"),
    "dfdc64_a075_e40_ft16_jpeg": ("e40 + 16 epochs fine-tuning with JPEG re-encoding (q30-95): "
                                  "the recipe (`--recipe dfdc-finetune --init runs/dfdc64_a075_e40`)",
                                  "--method finetune --init runs/dfdc64_a075_e40 --epochs 16 --lr 1e-3 "
                                  "--patience 16 --augment jpeg"),
    "dfdc64_a075_e40_ft16x2_jpeg": ("the recipe's run + another 16 epochs as the recipe's second stage "
                                    "(a second warm restart)",
                                    "--method finetune --init runs/dfdc64_a075_e40_ft16_jpeg --epochs 16 "
                                    "--lr 1e-3 --patience 16 --augment jpeg"),
    "dfdc64_a075_e40_ft16x2_jpeg_qat6": ("the second warm restart + 6 epochs of quantization-aware "
                                         "training (lr 5e-4, batch 16, JPEG): int8 weights and ranges trained",
                                         "--method qat --init runs/dfdc64_a075_e40_ft16x2_jpeg --qat-epochs 6 "
                                         "--augment jpeg --batch-size 16"),
    "dfdc64_a075_e40_ft16x2_jpeg_qat6x2": ("qat6 + 6 more epochs of quantization-aware training (same options)",
                                           "--method qat --init runs/dfdc64_a075_e40_ft16x2_jpeg_qat6 "
                                           "--qat-epochs 6 --augment jpeg --batch-size 16"),
    "dfdc64_a075_e40_s1": ("the recipe's first stage, seed 1",
                           "--size 64 --alpha 0.75 --epochs 40 --patience 10 --seed 1"),
    "dfdc64_a025_fftlbp": ("RGB + FFT + LBP input", "--size 64 --channels rgb+fft+lbp"),
    "dfdc64_a025_e30": ("30 epochs instead of 12", "--size 64 --epochs 30 --patience 8"),
    "dfdc64_a025_distill": ("distilled from the a0.5 run (teacher)",
                            "--size 64 --method distill --teacher runs/dfdc64_a050"),
    "dfdc128_a025": ("128 px", "--size 128"),
    # the first recipe (a0.5, 12 epochs) on two more seeds: split, init and batch order
    "dfdc_recipe_s1": ("a0.5 as dfdc64_a050, seed 1", "--size 64 --alpha 0.5 --seed 1"),
    "dfdc_recipe_s2": ("a0.5 as dfdc64_a050, seed 2", "--size 64 --alpha 0.5 --seed 2"),
}
TABLE_BEGIN = "<!-- dfdc-table: generated by scripts/bench_dfdc.py --readme -->"
TABLE_END = "<!-- /dfdc-table -->"


def command(name: str) -> str:
    return f"tinyfake train --data {DATA} {COMMON} {EXPERIMENTS[name][1]} --name {name}"


def train_missing(names: list[str]) -> None:
    (REPO / "logs").mkdir(exist_ok=True)
    for name in names:
        if (RUNS / name / "model.pt").exists():
            print(f"{name}: trained already")
            continue
        cmd = command(name).replace("tinyfake ", f"{REPO / '.venv/bin/tinyfake'} ", 1)
        print(f"{time.strftime('%H:%M:%S')} {name}: {command(name)}", flush=True)
        with open(REPO / "logs" / f"{name}.log", "w") as log:
            code = subprocess.call(cmd.split(), cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        print(f"{time.strftime('%H:%M:%S')} {name}: exit {code}", flush=True)


def flip_auc(run) -> dict:
    """int8 TFLite Micro AUC of the mean score over the face and its mirror image."""
    from tinyfake.data.channels import model_images
    from tinyfake.export.tflite_int8 import dequantize, io_quant
    from tinyfake.export.tflm import tflm_outputs
    from tinyfake.metrics import auc_interval, binary_metrics
    from tinyfake.train import splits_from_config

    config = run.read_config()
    test = splits_from_config(config).test
    _, out_q = io_quant(run.tflite)

    def scores(x):
        q = tflm_outputs(run.tflite, model_images(config, x))
        return 1 / (1 + np.exp(-dequantize(q, out_q).astype(np.float64).ravel()))

    s = (scores(test.x) + scores(np.ascontiguousarray(test.x[:, :, ::-1]))) / 2
    return {**binary_metrics(test.y, s), "auc_ci95": auc_interval(test.y, s, test.group)}


def device_row(root: Path) -> dict | None:
    """The device's scores from `tinyfake build --model RUN [--limit N]`'s
    report.json (or, short of it, its largest report_limit<N>.json), if any."""
    from tinyfake.runs import RunDir

    report = RunDir(root).widest_report()
    if report is None:
        return None
    r = json.loads(report.read_text())  # tinyfake verify: the device's scores on `data`
    return {**{k: r["accuracy"][k] for k in ("auc", "auc_ci95", "accuracy", "n")},
            "data": r["data"], "identical_to_tflite_micro": r["verification"]["identical"],
            "platform": r["platform"]}


def score_run(name: str, work: Path) -> dict:
    from tinyfake.export.evaluate import evaluate_run
    from tinyfake.export.pipeline import export_run
    from tinyfake.export.robustness import add_robustness
    from tinyfake.errors import UserError
    from tinyfake.runs import RunDir

    run = RunDir(RUNS / name)
    metrics = json.loads(run.metrics.read_text())
    try:
        run.require_current_export()  # the rule every consumer applies (tinyfake.provenance)
        fresh = run.tflite.exists()
    except UserError:
        fresh = False
    if not fresh:
        export_run(run)
    ev_path = run.root / "eval.json"
    ev = json.loads(ev_path.read_text()) if ev_path.exists() else {}
    if "robustness" not in ev or "auc_ci95" not in ev["metrics"]["int8_tflm"]:
        result = evaluate_run(run)
        add_robustness(result, run, [50], None)
        ev = json.loads(ev_path.read_text())
    config = run.read_config()
    row = {"run": f"runs/{name}", "what": EXPERIMENTS[name][0], "command": command(name),
           "arch": config["model"]["arch"], "alpha": config["model"].get("alpha"),
           "size": int(config["data"]["size"]), "channels": config["model"].get("channels", "rgb"),
           "params": metrics["params"], "macs": metrics["macs"], "epochs_run": metrics["epochs_run"],
           "train_seconds": metrics["seconds"], "val_auc": metrics["val"]["auc"],
           "test_float": {k: metrics["test"][k] for k in ("auc", "auc_ci95", "accuracy", "n")},
           "test_int8": {k: ev["metrics"]["int8_tflm"][k] for k in ("auc", "auc_ci95", "accuracy", "n")},
           "test_int8_jpeg50_auc": ev["robustness"]["jpeg50"]["int8_tflm"]["auc"],
           "test_int8_flip_tta": flip_auc(run)}
    device = device_row(run.root)
    if device:
        row["device"] = device
    b = bench_model(name, run.tflite, work)
    row["board"] = {k: b[k] for k in ("instructions", "arena_bytes", "flash_bytes", "weight_bytes",
                                      "static_ram_bytes", "bit_exact", "macs")}
    row["board"]["ms_estimate_480mhz"] = round(b["instructions"] / CLOCK_HZ * 1e3, 2)
    return row


def _auc(m: dict | None) -> str:
    if not m or m.get("auc") is None:
        return "-"
    lo, hi = m["auc_ci95"]
    return f"{m['auc']:.3f} [{lo:.3f}, {hi:.3f}]"


def _device(d: dict | None) -> str:
    """The device's AUC on the faces it was given, and how many equalled TFLite Micro's output."""
    if not d:
        return "-"
    return f"{_auc(d)} on {d['n']:,} faces, {d['identical_to_tflite_micro']:,} equal to TFLite Micro"


def table_markdown(doc: dict) -> str:
    rows = ["| run: what it tries | input | params | MACs | flash (B) | arena (B) | instructions / inference "
            "| est. ms @ 480 MHz | test AUC float | int8 (TFLite Micro = device) | device (simulated board) "
            "| int8 after JPEG q50 (change) | int8 + flip TTA |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|---|---|---:|---:|"]
    for name, r in doc["runs"].items():
        b = r["board"]
        inp = f"{r['size']}x{r['size']} {r['channels'].upper()}"
        rows.append(f"| `{name}`: {r['what']} | {inp} | {r['params']:,} | {r['macs']:,} | {b['flash_bytes']:,} | "
                    f"{b['arena_bytes']:,} | {b['instructions']:,} | {b['ms_estimate_480mhz']:.1f} | "
                    f"{_auc(r['test_float'])} | {_auc(r['test_int8'])} | {_device(r.get('device'))} | "
                    f"{r['test_int8_jpeg50_auc']:.3f} ({r['test_int8_jpeg50_auc'] - r['test_int8']['auc']:+.3f}) | "
                    f"{r['test_int8_flip_tta']['auc']:.3f} |")
    lines = ["\n".join(rows), "", "```sh"]
    lines += [command(name) for name in doc["runs"]]
    lines += ["```"]
    if doc.get("missing"):
        lines += ["", "Defined in `EXPERIMENTS` but not run yet: " + ", ".join(doc["missing"]) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", nargs="*", metavar="NAME", help="train these runs (default: all) if missing")
    ap.add_argument("--runs", help="comma-separated subset to score (default: every trained run)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--readme", action="store_true", help="write the table of --out into README.md")
    ap.add_argument("--device-only", action="store_true",
                    help="refresh only the device column of --runs from their report.json")
    args = ap.parse_args(argv)
    if args.train is not None:
        train_missing(args.train or list(EXPERIMENTS))
        return 0
    if args.readme:
        readme = REPO / "README.md"
        table = table_markdown(json.loads(args.out.read_text()))
        readme.write_text(readme_with_table(readme.read_text(), table, TABLE_BEGIN, TABLE_END))
        return 0
    names = args.runs.split(",") if args.runs else list(EXPERIMENTS)
    old = json.loads(args.out.read_text()) if args.out.exists() else {"runs": {}}
    if args.device_only:  # after `tinyfake build --model RUN`: only the device column
        for name in names:
            old["runs"][name]["device"] = device_row(RUNS / name)
        args.out.write_text(json.dumps(old, indent=1) + "\n")
        return 0
    doc = {"description": " ".join(__doc__.split("\n\n")[1].split()), "data": DATA,
           "runs": {k: v for k, v in old["runs"].items() if k in EXPERIMENTS}, "missing": []}
    with tempfile.TemporaryDirectory(prefix="tinyfake-bench-dfdc-") as tmp:
        for name in names:
            if not (RUNS / name / "metrics.json").exists():
                continue
            print(f"{time.strftime('%H:%M:%S')} scoring {name}", flush=True)
            doc["runs"][name] = score_run(name, Path(tmp) / name)
    doc["runs"] = {k: doc["runs"][k] for k in EXPERIMENTS if k in doc["runs"]}
    doc["missing"] = [k for k in EXPERIMENTS if k not in doc["runs"]]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(table_markdown(doc), end="")
    return 0 if all(r["board"]["bit_exact"] for r in doc["runs"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
