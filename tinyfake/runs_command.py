"""`tinyfake runs`: every run under runs/, how far it got, whether what it
holds is still made from what it holds now, and its test AUCs."""
from __future__ import annotations

import json
from pathlib import Path

from tinyfake.errors import UserError
from tinyfake.runs import RUNS_ROOT, RunDir

HELP = "list the runs under runs/: model, stages done (and stale), test AUC float / int8 / device"


def add_arguments(p) -> None:
    p.add_argument("--runs-dir", type=Path, default=RUNS_ROOT, help="where the runs are (default runs/)")
    p.add_argument("--json", action="store_true", help="print the list as JSON, one object per run")


def _json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _model(config: dict) -> str:
    m, d = config.get("model", {}), config.get("data", {})
    width = f" a{m['alpha']:g}" if "alpha" in m else ""
    channels = f" {m['channels']}" if m.get("channels", "rgb") != "rgb" else ""
    return f"{m.get('arch', '?')}{width} {d.get('size', '?')}px{channels}"


def _stages(run: RunDir) -> list[str]:
    """Each stage done, with the reason when its inputs changed since."""
    from tinyfake.firmware.boards import load_board
    from tinyfake.firmware.build import firmware_inputs

    if not run.model_pt.exists():
        if run.in_use():
            return ["training now"]
        return ["training stopped (`tinyfake train --resume` it)" if run.checkpoint.exists() else "not trained"]
    out = ["trained"]
    inputs = {"export": run.export_inputs(), "compile": {"model_int8.tflite": run.tflite}}
    for stage, done, made in [("export", "exported", run.tflite), ("compile", "compiled", run.gen / "model.h")]:
        if made.exists():
            record = run.manifest.get(stage)
            why = (run.manifest.why_stale(stage, inputs[stage], record.options) if record
                   else None)  # made before runs had manifests: nothing to compare
            out.append(done + (f" (stale: {why})" if why else ""))
    recorded = {s.split(" ", 1)[1] for s in run.manifest.stages() if s.startswith("firmware ")}
    for elf in sorted(run.fw.glob("*.elf")) if run.fw.exists() else []:
        if not elf.stem.endswith("-sim") and elf.stem not in recorded:
            out.append(f"firmware {elf.stem} (made before manifests: not checked)")
    for stage in run.manifest.stages():
        if stage.startswith("firmware ") and run.fw.exists():
            board = stage.split(" ", 1)[1]
            try:
                why = run.manifest.why_stale(stage, firmware_inputs(run, load_board(board)),
                                             run.manifest.get(stage).options)
            except UserError as exc:  # the board file is gone or broken
                why = str(exc)
            out.append(f"firmware {board}" + (f" (stale: {why})" if why else ""))
    return out


def _aucs(run: RunDir) -> dict:
    metrics, ev = _json(run.metrics) or {}, _json(run.root / "eval.json") or {}
    out = {"float": metrics.get("test", {}).get("auc"),
           "int8": ev.get("metrics", {}).get("int8_tflm", {}).get("auc")}
    widest = run.widest_report()
    report = _json(widest) if widest else None
    if report:
        v = report.get("verification", {})
        out["device"] = {"auc": report.get("accuracy", {}).get("auc"), "n": v.get("n"),
                         "equal_to_tflite_micro": v.get("identical")}
    return out


def describe(run: RunDir) -> dict:
    config = run.read_config()
    return {"run": str(run.root), "model": _model(config), "method": config.get("train", {}).get("method"),
            "stages": _stages(run), "test_auc": _aucs(run)}


def _auc(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def run(args) -> int:
    if not args.runs_dir.is_dir():
        raise UserError(f"no runs folder {args.runs_dir}; train a run with `tinyfake train`")
    runs = [RunDir(p.parent) for p in sorted(args.runs_dir.glob("*/config.toml"))]
    rows = [describe(r) for r in runs]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print(f"no runs under {args.runs_dir}/; train one with `tinyfake train`")
        return 0
    width = max(len(Path(r["run"]).name) for r in rows)
    print(f"{'run':{width}s}  {'model':20s}  {'test AUC float / int8 / device':38s}  stages")
    for r in rows:
        a = r["test_auc"]
        dev = a.get("device")
        device = "-" if dev is None else f"{_auc(dev['auc'])} ({dev['equal_to_tflite_micro']}/{dev['n']} equal)"
        aucs = f"{_auc(a['float'])} / {_auc(a['int8'])} / {device}"
        print(f"{Path(r['run']).name:{width}s}  {r['model']:20s}  {aucs:38s}  {', '.join(r['stages'])}")
    return 0
