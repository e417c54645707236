"""Firmware stage: boards as data, linker scripts from memory profiles, and
the arm-none-eabi-gcc build of `firmware/` around a compiled model.

Entry points: `load_board(name)`, `build_firmware(gen_dir, board, out_dir)`,
`build_for_run(run, board)`.
"""
from tinyfake.firmware.boards import Board, list_boards, load_board
from tinyfake.firmware.build import FirmwareBuild, build_firmware, build_for_run

__all__ = ["Board", "FirmwareBuild", "build_firmware", "build_for_run", "list_boards", "load_board"]
