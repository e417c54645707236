"""`verify`: run a test split through the firmware and check every output.

Each input goes to the device over the serial protocol; the device's int8
output must equal the host's (the tflite-micro wheel, the oracle) byte for
byte. The report adds accuracy, memory per region, MACs and latency.
"""
from __future__ import annotations

import dataclasses
import hashlib
import statistics
from pathlib import Path

import numpy as np

from tinyfake.compiler.api import run_layers
from tinyfake.errors import UserError
from tinyfake.firmware.boards import Board, load_board
from tinyfake.firmware.linker import sim_regions
from tinyfake.firmware.model_header import ModelInfo, read_model_header
from tinyfake.harness.protocol import PROTOCOL_VERSION, Device, DeviceError
from tinyfake.harness.target import connect
from tinyfake.report.memory import flash_bytes, region_usage
from tinyfake.report.report import budget_text, write_report
from tinyfake.runs import RunDir, only_run

BENCH_REPS = 10


def stream(dev: Device, inputs: np.ndarray, expected: np.ndarray, log=None) -> dict:
    """Run every input on the device and compare with `expected`. Inputs are
    what the device loads: int8 model inputs, or uint8 RGB faces for a
    device that computes its input (RGB + FFT + LBP models)."""
    outputs, insns, cycles, mismatches = [], [], [], []
    for i, (x, want) in enumerate(zip(inputs, expected)):
        r = dev.infer(x)
        outputs.append(r.output)
        cycles.append(r.cycles)
        if r.instructions is not None:
            insns.append(r.instructions)
        if not np.array_equal(r.output, np.asarray(want, np.int8).reshape(-1)):
            mismatches.append({"index": i, "device": r.output.tolist(),
                               "host": np.asarray(want).reshape(-1).tolist()})
        if log and (i + 1) % 10 == 0:
            log(f"  {i + 1}/{len(inputs)} images")
    return {"outputs": np.stack(outputs) if outputs else np.zeros((0, 0), np.int8),
            "instructions": insns, "cycles": cycles, "mismatches": mismatches}


def _stats(values: list[int]) -> dict | None:
    if not values:
        return None
    return {"min": min(values), "max": max(values), "median": int(statistics.median(values)),
            "n": len(values)}


def memory_report(elf: Path, board: Board, regions=None, stack_used: int = 0) -> dict:
    """Flash and RAM per region from the ELF (see tinyfake.report.memory)."""
    usage = region_usage(elf, regions or board.regions, board.profile.text)
    used = {k: u for k, u in usage.items() if u.used}
    flash = {k: u.as_dict() for k, u in used.items() if u.kind == "rom"}
    ram = {k: u.as_dict() for k, u in used.items() if u.kind == "ram"}
    stack_size = board.profile.stack_size
    return {"flash": {"total": flash_bytes(usage), "regions": flash},
            "ram": {"total": sum(r["used"] for r in ram.values()), "regions": ram,
                    "stack_size": stack_size, "stack_used": stack_used,
                    "total_with_measured_stack": sum(r["used"] for r in ram.values()) - stack_size + stack_used}}


def _arena_region(usage_ram: dict) -> str:
    return next((k for k, r in usage_ram.items() if r["parts"].get("arena")), None)


def harness_run(path: str | None) -> RunDir:
    """The run given with --run, or else the only one with compiled C."""
    if path:
        return RunDir.existing(path)
    return only_run("gen/model.h", "give --run runs/<name> (or run `tinyfake build` first)")


def check_run(run: RunDir) -> ModelInfo:
    """The run's compiled model, checked against its .tflite."""
    info = read_model_header(run.gen)
    if not run.tflite.exists():
        raise UserError(f"{run.tflite} not found: verify needs the int8 model as the oracle")
    run.require_current_export()
    digest = hashlib.sha256(run.tflite.read_bytes()).hexdigest()[:16]
    if digest != info.hash:
        raise UserError(f"{run.gen} was compiled from another model (hash {info.hash}, "
                        f"model_int8.tflite is {digest}); run `tinyfake compile` again")
    return info


def firmware_paths(run: RunDir, board: Board) -> tuple[Path, Path]:
    return run.fw / f"{board.name}.elf", run.fw / f"{board.name}-sim.elf"


def ensure_firmware(run: RunDir, board: Board, log=print) -> tuple[Path, Path]:
    """The run's firmware, rebuilt (saying why) unless it was made from what
    the run holds now: its compiled model, the board, the firmware sources."""
    from tinyfake.firmware.build import build_for_run, why_firmware_stale

    elf, sim_elf = firmware_paths(run, board)
    if not run.gen.is_dir() or not any(run.gen.iterdir()):
        raise UserError(f"{run.root} has no compiled model (gen/); run `tinyfake compile {run.root}` "
                        f"(or `tinyfake build --model {run.root}`) first")
    check_run(run)  # gen/ from this .tflite, the .tflite from this model.pt
    reason = why_firmware_stale(run, board)
    if reason is not None or not (elf.exists() and sim_elf.exists()):
        log(f"firmware: {reason or 'missing'}, building it for {board.name} ...")
        build_for_run(run, board)
    return elf, sim_elf


def _test_images(run: RunDir, data: str | None, limit: int | None, size: int):
    from tinyfake.data import load_dataset
    from tinyfake.train import splits_from_config

    if data is None:
        ds, what = splits_from_config(run.read_config()).test, "test split"
    else:
        ds, what = load_dataset(data, size), f"all of {data}"
    if len(ds) == 0:
        raise UserError(f"no images to verify on ({what} is empty); give --data")
    if limit is not None and limit < len(ds):
        if limit < 1:
            raise UserError(f"--limit must be at least 1, got {limit}")
        idx = np.sort(np.random.default_rng(0).permutation(len(ds))[:limit])  # both classes, seeded
        ds, what = ds.subset(idx), f"{what} (seeded sample of {limit})"
    return ds, what


def _wire(board: Board, info, n: int, tx: int, rx: int, binary: bool) -> dict:
    """Serial bytes per image while streaming (measured: every command, frame,
    resend and reply), and what they cost at the board's console baud rate
    (8N1: 10 bits a byte; the link is full duplex, so the larger direction sets the pace)."""
    baud = int(board.console.get("baud", 115200))
    per_tx, per_rx = tx / n, rx / n
    load = info.load_bytes or info.input_bytes
    return {"load": "binary frames" if binary else "hex lines", "input_bytes": load,
            "to_device_bytes_per_image": round(per_tx), "to_host_bytes_per_image": round(per_rx),
            "wire_per_input_byte": round(per_tx / load, 3), "baud": baud,
            "seconds_per_image_at_baud": round(max(per_tx, per_rx) * 10 / baud, 3)}


def _plots(run: RunDir, report: dict, data, limit, y: np.ndarray, scores: dict) -> dict[str, str]:
    """The pictures report.md shows, written into the run: the memory map,
    the ROC of the device's outputs beside TFLite Micro's (its own file for
    a sample or other data), the training curves, and the profile."""
    from tinyfake.report.plots import plot_memory, plot_roc, plot_training

    plots = {"memory map": plot_memory(report, run.root / "memory.png", f"memory: {run.root.name} "
                                       f"on {report['board']} (board ELF)")}
    npz = run.result_path("verify_scores", data, limit, ".npz")
    np.savez(npz, y=y, **scores)
    if len(np.unique(y)) == 2:
        plots["ROC, device and TFLite Micro"] = plot_roc(npz, run.result_path("roc_device", data, limit, ".png"),
                                                         f"ROC on the device: {report['data']}")
    if (run.root / "eval_scores.npz").exists() and (run.root / "roc.png").exists():
        plots["ROC, float and int8 (tinyfake eval)"] = run.root / "roc.png"
    if (run.root / "metrics.json").exists():
        p = plot_training(run.root / "metrics.json", run.root / "training.png", f"training: {run.root.name}")
        if p:
            plots["training"] = p
    if report.get("profile"):
        plots["instructions per operator"] = report["profile"]["plot"]
    return {k: str(v) for k, v in plots.items()}


def verify_run(run: RunDir | str | Path, board: Board | str, *, port: str | None = None,
               simulate: bool = False, data: str | None = None, limit: int | None = None,
               renode: str | None = None, profile: bool = False, log=print, **device_kw) -> dict:
    """Verify a run's firmware on a board (`port`) or in simulation; writes
    `report.json`/`report.md` into the run (`report_limit<N>.*` for a sample,
    `report_<dataset>.*` for other data) and returns the report. With
    `profile` (simulation only), the report gains instructions per operator
    (tinyfake.harness.profile) and the run a bar chart, profile.png."""
    if simulate == (port is not None):
        raise UserError("give either --port PORT (a board) or --simulate")
    if renode is not None and not simulate:
        raise UserError("--renode is a simulator: give it with --simulate, not with --port")
    if profile and (not simulate or renode is not None):
        raise UserError("--profile counts instructions per operator in QEMU: give it with --simulate "
                        "(without --renode)")
    run = run if isinstance(run, RunDir) else RunDir.existing(run)
    board = load_board(board) if isinstance(board, str) else board
    with run.lock():
        return _verify(run, board, port, simulate, data, limit, renode, profile, log, **device_kw)


def _verify(run, board, port, simulate, data, limit, renode, profile, log, **device_kw) -> dict:
    from tinyfake.data.channels import model_images
    from tinyfake.export.tflite_int8 import dequantize, io_quant, quantized_inputs
    from tinyfake.export.tflm import tflm_outputs
    from tinyfake.firmware.build import run_channels
    from tinyfake.metrics import auc_interval, binary_metrics

    model = check_run(run)
    elf, sim_elf = ensure_firmware(run, board, log)
    ds, what = _test_images(run, data, limit, model.input_shape[0])
    channels = run_channels(run)
    # The oracle: TFLite Micro on the host's model input (for RGB + FFT + LBP
    # models the host computes the five channels itself, tinyfake.data.channels).
    q = quantized_inputs(run.tflite, model_images(channels, ds.x))
    host = tflm_outputs(run.tflite, q)
    log(f"verifying {len(ds)} images ({what}) on {'the simulator' if simulate else port} ...")

    with connect(board, port=port, simulate=simulate, sim_elf=sim_elf, board_elf=elf, renode=renode,
                 expected_hash=model.hash, log=None, **device_kw) as (dev, platform):
        info = dev.hello()
        if info.takes_rgb != (channels != "rgb"):
            raise UserError(f"the device {'computes' if info.takes_rgb else 'does not compute'} its input "
                            f"from an RGB face but the run's input channels are {channels!r}; "
                            "rebuild and flash this run's firmware")
        # What the device loads: the int8 model input, or the RGB face it
        # computes R, G, B, FFT, LBP from.
        loads = ds.x if info.takes_rgb else q
        try:
            st = dev.selftest()
            selftest = "ok"
        except DeviceError as exc:  # keep going: the per-image comparison says more
            st, selftest = None, f"FAILED ({exc})"
        before = (dev.stats.tx_bytes, dev.stats.rx_bytes)
        result = stream(dev, loads, host, log)
        wire = _wire(board, info, len(ds), dev.stats.tx_bytes - before[0], dev.stats.rx_bytes - before[1],
                     dev.sends_frames)
        # Repeatability: the first image twice more.
        again = [dev.infer(loads[0]) for _ in range(2)]
        prep = dev.prep(loads[0]) if info.takes_rgb else None
        bench = dev.bench(loads[0], BENCH_REPS) if not simulate else None
        stack = dev.stat()
        link = dev.stats.as_dict()

    _, out_q = io_quant(run.tflite)

    def fake_scores(outputs: np.ndarray) -> np.ndarray:  # int8 logits -> P(fake)
        p = 1.0 / (1.0 + np.exp(-dequantize(outputs, out_q).astype(np.float64)))
        return p.reshape(len(ds), -1)[:, -1]

    scores = fake_scores(result["outputs"])
    metrics = {**binary_metrics(ds.y, scores), "auc_ci95": auc_interval(ds.y, scores, ds.group)}

    first_insns = [r.instructions for r in again if r.instructions is not None]
    first_insns = ([result["instructions"][0]] if result["instructions"] else []) + first_insns
    latency = {"clock_hz": board.clock_hz}
    if result["instructions"]:
        ins = _stats(result["instructions"])
        latency.update(instructions=ins, selftest_instructions=st.instructions if st else None,
                       repeatable=len(set(first_insns)) == 1,
                       ms_estimate=ins["median"] / board.clock_hz * 1e3,
                       ms_estimate_note="instructions / board clock: an estimate, not a measurement")
    if prep is not None:  # the markers above include the board's channel computation
        latency["includes_input_channels"] = True
        if prep.instructions is not None:
            latency["channel_instructions"] = prep.instructions
        if not simulate:
            latency["channel_cycles"] = prep.cycles
    if not simulate and result["cycles"]:
        cyc = _stats(result["cycles"])
        latency.update(cycles=cyc, ms=cyc["median"] / board.clock_hz * 1e3, bench=bench)

    mem = memory_report(elf, board, stack_used=stack["stack_used"])
    mem["flash"]["elf"] = str(elf)  # the figures are the board ELF's: what `tinyfake flash` writes
    identical = len(ds) - len(result["mismatches"])
    report = {
        "run": str(run.root), "board": board.name, "platform": platform,
        "protocol": PROTOCOL_VERSION, "data": what,
        "firmware": {"version": info.firmware, "elf": str(elf), "bin": str(elf.with_suffix(".bin")),
                     "sim_elf": str(sim_elf),
                     # what the running firmware says of itself (HELLO): the ELF it is
                     "reported_by_device": {"elf": str(sim_elf if simulate else elf),
                                            "flash_bytes": info.flash_bytes, "ram_bytes": info.ram_bytes}},
        "model": {"name": model.name, "hash": model.hash, "input_shape": list(model.input_shape),
                  "macs": model.macs, "ops": model.num_ops, "arena_bytes": model.arena_bytes,
                  "weight_bytes": model.weight_bytes, "channels": channels},
        "arena_region": _arena_region(mem["ram"]["regions"]),
        **mem,
        "latency": latency,
        "accuracy": metrics,
        "verification": {"n": len(ds), "identical": identical, "mismatches": result["mismatches"][:20],
                         "selftest": selftest},
        "link": {**link, "wire": wire},
    }
    ops = run_layers(run)
    if simulate:
        sim_mem = memory_report(sim_elf, board, sim_regions(board), stack["stack_used"])
        report["simulator_memory"] = {"elf": str(sim_elf), "flash_bytes": sim_mem["flash"]["total"],
                                      "ram_regions": sim_mem["ram"]["regions"]}
    if profile:
        from tinyfake.harness.profile import profile_ops
        from tinyfake.report.plots import plot_profile

        log("profiling: instructions per operator (a firmware with operator markers) ...")
        report["profile"] = profile_ops(run.gen, run.tflite, board, run.root / "fw-profile", loads[0],
                                        int(latency["instructions"]["median"]), channels, ops)
        report["profile"]["plot"] = str(plot_profile(report["profile"], run.root / "profile.png",
                                                     f"instructions per operator: {model.name}"))
    report["layers"] = [dataclasses.asdict(op) for op in ops]
    report["plots"] = _plots(run, report, data, limit, ds.y, {"int8_tflm": fake_scores(host), "device": scores})
    written = [run.result_path("report", data, limit, suffix) for suffix in (".json", ".md")]
    write_report(report, *written)
    report["text"] = budget_text(report)
    report["written"] = [str(p) for p in written]
    if latency.get("includes_input_channels"):
        ch = latency.get("channel_instructions")
        report["text"] += ("\n  input  the board computes R, G, B, FFT, LBP from each RGB face; the counts above "
                           "include it" + (f" ({ch:,} instructions of them)" if ch is not None else ""))
    return report
