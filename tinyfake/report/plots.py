"""PNG plots next to a run's report: ROC curves (float vs int8), training
curves, and AUC against MACs and against int8 flash across the runs beside it.

matplotlib with the Agg backend (no display needed).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

WAY_LABELS = {"float": "float PyTorch", "int8_ref": "int8 TFLite (reference)",
              "int8_tflm": "int8 TFLite Micro", "device": "int8 on the device"}


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_roc(scores_npz: Path, out: Path, title: str = "") -> Path:
    """ROC curves of each way in a *_scores.npz (y + one score array per way:
    eval's float / int8 / TFLite Micro, or verify's TFLite Micro / device)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _plt()
    data = np.load(scores_npz)
    y = data["y"]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for way, label in WAY_LABELS.items():
        if way in data.files and len(np.unique(y)) == 2:
            fpr, tpr, _ = roc_curve(y, data[way])
            ax.plot(fpr, tpr, label=f"{label} (AUC {roc_auc_score(y, data[way]):.3f})",
                    linestyle={"int8_tflm": "--", "device": ":"}.get(way, "-"))
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.5)
    ax.set(xlabel="false positive rate (real called fake)", ylabel="true positive rate (fake caught)",
           title=title or "ROC", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_training(metrics_json: Path, out: Path, title: str = "") -> Path | None:
    """Train/val loss and val AUC per epoch from metrics.json's history."""
    hist = json.loads(Path(metrics_json).read_text()).get("history") or []
    hist = [h for h in hist if h.get("train_loss") is not None]
    if not hist:
        return None
    plt = _plt()
    step = np.arange(1, len(hist) + 1)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.plot(step, [h["train_loss"] for h in hist], label="train loss")
    val = [(i, h["val_loss"]) for i, h in zip(step, hist) if h.get("val_loss") is not None]
    if val:
        a.plot(*zip(*val), label="val loss")
    auc = [(i, h["val_auc"]) for i, h in zip(step, hist) if h.get("val_auc") is not None]
    if auc:
        b.plot(*zip(*auc), color="C2")
    # stage boundaries (simclr -> probe -> finetune, prune steps)
    for i in range(1, len(hist)):
        if hist[i].get("stage") != hist[i - 1].get("stage"):
            for ax in (a, b):
                ax.axvline(i + 0.5, color="grey", linewidth=0.5)
    a.set(xlabel="epoch (all stages)", ylabel="loss", title=title or "training")
    a.legend(fontsize=7)
    b.set(xlabel="epoch (all stages)", ylabel="val ROC-AUC", ylim=(0, 1))
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def run_summary(root: Path) -> dict | None:
    """{name, method, macs, params, flash, auc} of one run directory, from its files."""
    root = Path(root)
    metrics, ev = root / "metrics.json", root / "eval.json"
    if not metrics.exists():
        return None
    m = json.loads(metrics.read_text())
    row = dict(name=root.name, method=m.get("method", "supervised"), macs=m.get("macs"),
               params=m.get("params"), auc=(m.get("test") or {}).get("auc"), auc_int8=None, flash=None)
    if ev.exists():
        e = json.loads(ev.read_text())
        row["auc_int8"] = e["metrics"]["int8_tflm"]["auc"]
        row["flash"] = e.get("model_bytes")
    header = root / "gen" / "model.h"
    if header.exists():  # the compiler's weight bytes: what the board stores
        import re
        found = re.search(r"#define MODEL_WEIGHT_BYTES\s+\(?(\d+)", header.read_text())
        if found:
            row["flash"] = int(found.group(1))
    return row


def plot_tradeoffs(runs: list[Path], out: Path) -> Path | None:
    """AUC (int8 where evaluated, else float) vs MACs and vs int8 flash, one point per run."""
    rows = [r for r in (run_summary(p) for p in runs) if r and r["macs"] and (r["auc_int8"] or r["auc"])]
    if len(rows) < 2:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    for ax, key, label in ((axes[0], "macs", "MACs per inference"),
                           (axes[1], "flash", "int8 model bytes (flash)")):
        for r in rows:
            if r[key] is None:
                continue
            auc = r["auc_int8"] if r["auc_int8"] is not None else r["auc"]
            ax.scatter(r[key], auc, s=18)
            ax.annotate(r["name"], (r[key], auc), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.set(xlabel=label, ylabel="test ROC-AUC (int8 when exported)", xscale="log")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def write_run_plots(run) -> list[Path]:
    """Every plot a run's files allow, written into the run directory; returns the paths.

    roc.png (from eval_scores.npz), training.png (metrics.json),
    tradeoffs.png (this run and its sibling runs)."""
    from tinyfake.runs import RunDir

    root = run.root if isinstance(run, RunDir) else Path(run)
    written = []
    scores = root / "eval_scores.npz"
    if scores.exists():
        written.append(plot_roc(scores, root / "roc.png", f"ROC: {root.name}"))
    if (root / "metrics.json").exists():
        p = plot_training(root / "metrics.json", root / "training.png", f"training: {root.name}")
        if p:
            written.append(p)
    p = plot_tradeoffs(sorted(d for d in root.parent.iterdir() if d.is_dir()), root / "tradeoffs.png")
    if p:
        written.append(p)
    return written


def plot_profile(profile: dict, out: Path, title: str = "") -> Path:
    """A bar per operator (instructions), coloured by operator type."""
    plt = _plt()
    rows = profile["ops"]
    types = list(profile["by_type"])
    colours = {t: plt.cm.tab10(i % 10) for i, t in enumerate(types)}
    fig, ax = plt.subplots(figsize=(max(6, len(rows) * 0.12), 3.5))
    ax.bar(range(len(rows)), [r["instructions"] for r in rows], color=[colours[r["op"]] for r in rows])
    from matplotlib.patches import Patch
    ax.legend(handles=[Patch(color=colours[t], label=f"{t} ({100 * profile['by_type'][t]['share']:.0f}%)")
                       for t in types], fontsize=7, ncol=2)
    ax.set_xlabel("operator (call order)")
    ax.set_ylabel("instructions")
    ax.set_title(title or "instructions per operator")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


PART_COLOURS = {"code": "C0", "rodata": "C1", "data_init": "C4", "data": "C4", "bss": "C5",
                "arena": "C2", "stack": "C3"}


def plot_memory(report: dict, out: Path, title: str = "") -> Path:
    """The memory map: one bar per used region of the board ELF, its parts
    (code, weights, data, arena, stack) stacked, the free rest in grey."""
    plt = _plt()
    regions = [(name, r) for section in ("flash", "ram") for name, r in report[section]["regions"].items()]
    fig, ax = plt.subplots(figsize=(8, 1.6 + 0.5 * len(regions)))
    labelled = set()
    for y, (name, r) in enumerate(regions):
        left = 0.0
        for part, n in r["parts"].items():
            share = n / r["size"]
            ax.barh(y, share, left=left, color=PART_COLOURS.get(part, "C7"),
                    label=None if part in labelled else part)
            labelled.add(part)
            left += share
        ax.barh(y, 1 - left, left=left, color="0.9")
        ax.text(1.01, y, f"{r['used']:,} / {r['size']:,} B", va="center", fontsize=7)
    ax.set_yticks(range(len(regions)), [f"{name} ({r['kind']})" for name, r in regions])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the region")
    fig.suptitle(title or "memory map", fontsize=10)
    ax.legend(fontsize=7, ncol=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
