"""`tinyfake flash`: write a run's firmware to a board."""
from __future__ import annotations

from tinyfake.firmware.boards import DEFAULT_BOARD, load_board
from tinyfake.harness.flash import FLASHERS, flash

HELP = "flash the firmware to a connected board (pyOCD by default, or OpenOCD / st-flash)"


def add_arguments(p) -> None:
    p.add_argument("--board", default=DEFAULT_BOARD, help="board name (see `tinyfake boards`)")
    p.add_argument("--run", help="run directory (default: the only run with compiled C)")
    p.add_argument("--with", dest="tool", choices=FLASHERS, help="flasher (default: the board's, pyocd)")
    p.add_argument("--probe", help="probe unique id / serial when several are connected")


def run(args) -> int:
    from tinyfake.harness.verify import ensure_firmware, harness_run

    board = load_board(args.board)
    run_dir = harness_run(args.run)
    elf, _ = ensure_firmware(run_dir, board)
    last = flash(board, elf, elf.with_suffix(".bin"), args.tool, args.probe)
    print(f"flashed {elf.name} to {board.name}: {last}")
    return 0
