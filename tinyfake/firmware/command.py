"""`tinyfake firmware`: build the firmware for a board around a compiled model."""
from __future__ import annotations

from pathlib import Path

from tinyfake.errors import UserError
from tinyfake.firmware.boards import DEFAULT_BOARD
from tinyfake.firmware.build import build_firmware

HELP = "build the firmware (ELF/BIN/HEX for the board, ELF for the simulator) around a compiled model"


def add_arguments(p) -> None:
    p.add_argument("--board", default=DEFAULT_BOARD, help="board name (see `tinyfake boards`)")
    p.add_argument("--run", help="run directory (uses RUN/gen and RUN/model_int8.tflite, writes RUN/fw/); "
                   "default: the only run with compiled C")
    p.add_argument("--gen", help="compiled model directory instead of a run (needs --out and --tflite)")
    p.add_argument("--tflite", help="int8 model for the self-test oracle (with --gen)")
    p.add_argument("--out", help="output directory (with --gen)")


def format_build(build) -> str:
    lines = [f"firmware for {build.board.name}: model {build.model.name} [{build.model.hash}], "
             f"arena in {build.arena_region}"]
    for img in (build.board_image, build.sim_image):
        lines.append(f"  {img.elf}")
        for name, u in img.usage.items():
            if u.used:
                parts = ", ".join(f"{k} {v:,}" for k, v in u.parts.items())
                lines.append(f"    {name:9s} {u.used:>9,} / {u.size:,} B ({100 * u.used / u.size:4.1f}%)  {parts}")
    lines += [f"  {p}" for p in build.outputs if p.suffix in (".bin", ".hex")]
    return "\n".join(lines)


def run(args) -> int:
    if args.gen:
        if not args.out:
            raise UserError("--gen needs --out DIR")
        build = build_firmware(Path(args.gen), args.board, Path(args.out),
                               tflite=Path(args.tflite) if args.tflite else None)
    else:
        from tinyfake.firmware.build import build_for_run
        from tinyfake.harness.verify import harness_run
        run_dir = harness_run(args.run)
        build = build_for_run(run_dir, args.board)
    print(format_build(build))
    return 0
