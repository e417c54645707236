"""`report.json` and `report.md`: what the model costs on the board and how
well it does there."""
from __future__ import annotations

import json
import math
from pathlib import Path

from tinyfake.files import write_atomic


def _json_safe(obj):
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _kib(n: int) -> str:
    return f"{n:,} B ({n / 1024:.1f} KiB)"


def _num(v, fmt="{:.3f}") -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else fmt.format(v)


def latency_lines(lat: dict) -> list[str]:
    lines = []
    if lat.get("instructions"):
        ins = lat["instructions"]
        rep = "repeatable" if lat.get("repeatable") else "NOT repeatable"
        lines.append(f"{ins['median']:,} instructions per inference in simulation "
                     f"(min {ins['min']:,}, max {ins['max']:,}; {rep} run to run)")
        lines.append(f"~{lat['ms_estimate']:.2f} ms at {lat['clock_hz'] / 1e6:.0f} MHz "
                     "(ESTIMATE: one instruction per cycle, not measured)")
    if lat.get("cycles"):
        c = lat["cycles"]
        lines.append(f"{c['median']:,} cycles per inference on the board (min {c['min']:,}, "
                     f"max {c['max']:,}) = {lat['ms']:.3f} ms at {lat['clock_hz'] / 1e6:.0f} MHz")
    return lines


def budget_text(report: dict) -> str:
    """The budget report for the terminal (also the top of report.md)."""
    m = report["model"]
    lines = [f"tinyfake on {report['board']} ({report['platform']}): model {m['name']} "
             f"[{m['hash']}], input {'x'.join(map(str, m['input_shape']))}, {m['ops']} ops"]
    fl = report["flash"]
    lines.append(f"  flash  {_kib(fl['total'])}" + (f", board ELF {Path(fl['elf']).name}" if fl.get("elf") else ""))
    for name, r in fl["regions"].items():
        parts = ", ".join(f"{k} {v:,}" for k, v in r["parts"].items())
        lines.append(f"    {name:9s} {r['used']:>9,} / {r['size']:,} B ({100 * r['used'] / r['size']:.1f}%): {parts}")
    ram = report["ram"]
    lines.append(f"  RAM    {_kib(ram['total'])} (static + stack reserve; stack used "
                 f"{ram['stack_used']:,} of {ram['stack_size']:,} B measured)")
    for name, r in ram["regions"].items():
        parts = ", ".join(f"{k} {v:,}" for k, v in r["parts"].items())
        lines.append(f"    {name:9s} {r['used']:>9,} / {r['size']:,} B ({100 * r['used'] / r['size']:.1f}%): {parts}")
    where = f" in {report['arena_region']}" if m["arena_bytes"] else " (the model runs in place)"
    lines.append(f"  arena  {m['arena_bytes']:,} B{where}; weights {m['weight_bytes']:,} B")
    lines.append(f"  MACs   {m['macs']:,} per inference")
    for ln in latency_lines(report["latency"]):
        lines.append(f"  time   {ln}")
    if report.get("profile"):
        top = list(report["profile"]["by_type"].items())[:4]
        lines.append("  ops    " + ", ".join(f"{name} {100 * t['share']:.0f}%" for name, t in top)
                     + " of the instructions (per operator: report.md)")
    wire = (report.get("link") or {}).get("wire")
    if wire:
        lines.append(f"  link   {wire['to_device_bytes_per_image']:,} B per image to the device "
                     f"({wire['wire_per_input_byte']:.2f}x its {wire['input_bytes']:,} B input, {wire['load']}): "
                     f"~{wire['seconds_per_image_at_baud']:.2f} s per image at {wire['baud']:,} baud on a board")
    v = report["verification"]
    acc = report.get("accuracy") or {}
    lines.append(f"  device == host int8 (TFLite Micro) on {v['identical']}/{v['n']} test images"
                 f"{'' if v['identical'] == v['n'] else '  <-- MISMATCH'}; self-test {v['selftest']}")
    if acc:
        lines.append(f"  test   accuracy {_num(acc.get('accuracy'))}, AUC {_num(acc.get('auc'))}, "
                     f"F1 {_num(acc.get('f1'))}, EER {_num(acc.get('eer'))} on {acc.get('n')} images "
                     f"({report['data']})")
    return "\n".join(lines)


def _per_mac(v) -> str:
    return "-" if v is None else f"{v:.2f}"


def layers_markdown(report: dict) -> list[str]:
    """One row per operator: what the compiler made of it (kernel, output
    shape, MACs, weight bytes, where its output lives in the arena) and,
    when profiled, the instructions it took."""
    prof = {r["index"]: r for r in (report.get("profile") or {}).get("ops", [])}
    head = "| # | operator | kernel | output | MACs | weights (B) | output in arena (B) |"
    rule = "|---:|---|---|---|---:|---:|---|"
    if prof:
        head += " instructions | per MAC | share |"
        rule += "---:|---:|---:|"
    lines = ["## Layers", "",
             "As compiled (tinyfake.compiler): weights = the operator's constants in flash; output in "
             "arena = the byte range the static memory plan gives its output"
             + (" (instructions: one inference in QEMU, per operator)." if prof else "."), "", head, rule]
    for op in report["layers"]:
        at = {"input": "caller's input", "output": "caller's output", "none": "-"}.get(op["output_buffer"])
        if at is None:
            off, n = op["arena_slice"]
            at = f"{off:,} .. {off + n:,}"
        shape = "x".join(map(str, op["output_shape"][1:] or op["output_shape"]))
        kernel = f"`{op['kernel']}`" if op["kernel"].startswith("tfk") else op["kernel"]  # or why none
        row = (f"| {op['index']} | {op['name']} | {kernel} | {shape} | {op['macs']:,} | "
               f"{op['weight_bytes']:,} | {at} |")
        if prof:
            r = prof[op["index"]]
            row += f" {r['instructions']:,} | {_per_mac(r['per_mac'])} | {100 * r['share']:.1f}% |"
        lines.append(row)
    return lines


def profile_markdown(profile: dict) -> list[str]:
    """Instructions per operator type (tinyfake.harness.profile)."""
    lines = ["## Instructions per operator type", "",
             f"One inference in QEMU, {profile['instructions']:,} instructions "
             f"(a marker call per operator, {profile['marker_overhead']:.0f} instructions each, taken off); "
             f"per operator: the layer table above; chart: `{Path(profile['plot']).name}`.", "",
             "| operator type | count | MACs | instructions | per MAC | share |", "|---|---:|---:|---:|---:|---:|"]
    for name, t in profile["by_type"].items():
        lines.append(f"| {name} | {t['count']} | {t['macs']:,} | {t['instructions']:,} | "
                     f"{_per_mac(t['per_mac'])} | {100 * t['share']:.1f}% |")
    return lines


def report_markdown(report: dict) -> str:
    m = report["model"]
    lines = [f"# tinyfake report: {m['name']} on {report['board']}", "",
             f"Run `{report['run']}`, firmware {report['firmware']['version']}, measured on "
             f"{report['platform']}.", "", "```", budget_text(report), "```", "",
             "## Memory per region", "", "| region | kind | size | used | free | parts |",
             "|---|---|---:|---:|---:|---|"]
    for section in ("flash", "ram"):
        for name, r in report[section]["regions"].items():
            parts = ", ".join(f"{k} {v:,}" for k, v in r["parts"].items())
            lines.append(f"| {name} | {r['kind']} | {r['size']:,} | {r['used']:,} | {r['free']:,} | {parts} |")
    lines += ["", f"Stack: {report['ram']['stack_used']:,} B used (measured by stack painting) of "
              f"{report['ram']['stack_size']:,} B reserved.", "", "## Latency", ""]
    lines += [f"- {ln}" for ln in latency_lines(report["latency"])]
    v = report["verification"]
    lines += ["", "## Verification", "",
              f"- {v['identical']}/{v['n']} device outputs identical to the host's int8 outputs "
              "(tflite-micro wheel)", f"- self-test: {v['selftest']}",
              f"- link: {json.dumps(report.get('link', {}))}"]
    if v.get("mismatches"):
        lines.append(f"- first mismatches: {json.dumps(v['mismatches'][:5])}")
    if report.get("plots"):
        lines += ["", "## Plots", ""]
        lines += [f"![{name}]({Path(path).name})" for name, path in report["plots"].items()]
    if report.get("layers"):
        lines += ["", *layers_markdown(report)]
    if report.get("profile"):
        lines += ["", *profile_markdown(report["profile"])]
    acc = report.get("accuracy")
    if acc:
        lines += ["", f"## Accuracy ({report['data']})", "", "| accuracy | AUC | F1 | EER | n |",
                  "|---:|---:|---:|---:|---:|",
                  f"| {_num(acc.get('accuracy'))} | {_num(acc.get('auc'))} | {_num(acc.get('f1'))} | "
                  f"{_num(acc.get('eer'))} | {acc.get('n')} |"]
    return "\n".join(lines) + "\n"


def write_report(report: dict, json_path: Path, md_path: Path) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(json_path, json.dumps(_json_safe(report), indent=2) + "\n")
    write_atomic(md_path, report_markdown(report))
