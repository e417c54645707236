"""`tinyfake simulate`: run a board's firmware in QEMU (or Renode) and
measure it: handshake, self-test, exact instruction count per inference."""
from __future__ import annotations

import time
from pathlib import Path

from tinyfake.errors import UserError
from tinyfake.firmware.boards import DEFAULT_BOARD, load_board

HELP = "run the firmware in a simulator (QEMU, or Renode with --renode): self-test and instruction count"


def add_arguments(p) -> None:
    p.add_argument("--board", default=DEFAULT_BOARD, help="board whose firmware to simulate")
    p.add_argument("--run", help="run directory (default: the only run with compiled C)")
    p.add_argument("--elf", help="simulator ELF to run instead of a run's firmware")
    p.add_argument("--repeat", type=int, default=3, help="self-test runs, to show the count repeats (default 3)")
    p.add_argument("--serve", action="store_true",
                   help="keep the simulator running and print its socket URL for `verify --port`")
    p.add_argument("--renode", nargs="?", const="", metavar="PATH",
                   help="run the board ELF in Renode instead of QEMU's twin (launcher: PATH, $RENODE, "
                        "renode on PATH, or ../shared/renode)")
    p.add_argument("--profile", action="store_true",
                   help="also count instructions per operator on the self-test input (QEMU): "
                        "selftest_profile.md (the layer table), .json and .png in the run")


def run(args) -> int:
    from tinyfake.harness.target import connect
    from tinyfake.harness.verify import ensure_firmware, harness_run

    board = load_board(args.board)
    if args.profile and (args.elf or args.serve or args.renode is not None):
        raise UserError("--profile counts instructions per operator of a run's model in QEMU: "
                        "give it with --run (not --elf, --serve or --renode)")
    if args.elf:
        sim_elf = board_elf = Path(args.elf)
        if not sim_elf.is_file() or sim_elf.open("rb").read(4) != b"\x7fELF":
            raise UserError(f"{sim_elf} is not an ELF file; give the simulator ELF that "
                            "`tinyfake firmware` writes (runs/<name>/fw/<board>-sim.elf)")
    else:
        run_dir = harness_run(args.run)
        board_elf, sim_elf = ensure_firmware(run_dir, board)
    if args.serve:
        return _serve(sim_elf, board)
    if args.repeat < 1:
        raise UserError("--repeat must be at least 1")
    with connect(board, simulate=True, sim_elf=sim_elf, board_elf=board_elf, renode=args.renode) as (dev, platform):
        info = dev.hello()
        print(f"{platform}: firmware {info.firmware}, model {info.model} [{info.hash}], "
              f"input {'x'.join(map(str, info.input_shape))}, arena {info.arena_bytes:,} B, "
              f"{info.macs:,} MACs, flash {info.flash_bytes:,} B, RAM {info.ram_bytes:,} B")
        if info.takes_rgb:
            print(f"  the board computes the input (R, G, B, FFT, LBP) from a {info.load_bytes:,} B RGB face; "
                  "the self-test and the counts below include that")
        counts = []
        for _ in range(args.repeat):
            r = dev.selftest()
            counts.append(r.instructions)
        stack = dev.stat()
    print(f"self-test: ok (output {r.output.tolist()} equals the host oracle's)")
    if counts[0] is not None:
        same = "repeatable" if len(set(counts)) == 1 else f"NOT repeatable: {counts}"
        print(f"instructions per inference: {counts[0]:,} ({same} over {len(counts)} runs); "
              f"~{counts[0] / board.clock_hz * 1e3:.2f} ms at {board.clock_hz / 1e6:.0f} MHz (estimate)")
    print(f"stack used: {stack['stack_used']:,} of {stack['stack_size']:,} B")
    if args.profile:
        _profile(run_dir, board, info, counts[0])
    return 0


def _profile(run_dir, board, info, instructions: int) -> None:
    """Instructions per operator on the self-test input (the LCG bytes the
    board loads itself, so the plain count above is this input's)."""
    import dataclasses
    import json

    from tinyfake.compiler.api import run_layers
    from tinyfake.compiler.oracle import lcg_input
    from tinyfake.firmware.build import run_channels
    from tinyfake.harness.profile import profile_ops
    from tinyfake.report.plots import plot_profile
    from tinyfake.report.report import layers_markdown, profile_markdown

    x = lcg_input(info.load_bytes or info.input_bytes)
    ops = run_layers(run_dir)
    prof = profile_ops(run_dir.gen, run_dir.tflite, board, run_dir.root / "fw-profile", x, instructions,
                       run_channels(run_dir), ops)
    out = run_dir.root / "selftest_profile"
    prof["plot"] = str(plot_profile(prof, out.with_suffix(".png"), f"instructions per operator: {info.model}"))
    doc = {"layers": [dataclasses.asdict(op) for op in ops], "profile": prof}
    out.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    md = out.with_suffix(".md")
    md.write_text("\n".join([f"# Instructions per operator: {info.model} (self-test input, QEMU)", "",
                             *layers_markdown(doc), "", *profile_markdown(prof)]) + "\n")
    top = list(prof["by_type"].items())[:4]
    print("per operator type: " + ", ".join(f"{name} {100 * t['share']:.0f}%" for name, t in top))
    print(f"wrote {md}, {out.with_suffix('.json')} and {prof['plot']}")


def _serve(sim_elf: Path, board) -> int:
    from tinyfake.harness.qemu import QemuSim

    with QemuSim(sim_elf, board) as sim:
        print(f"QEMU is running {sim_elf}; console at {sim.url}")
        print(f"  e.g. tinyfake verify --board {board.name} --port {sim.url}   (Ctrl-C stops)")
        print(f"  instruction counts are appended to {sim.instructions.path}")
        try:
            while sim.proc.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0
