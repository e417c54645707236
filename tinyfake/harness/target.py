"""Connecting to a device: a board on a serial port, or firmware running in
a simulator (QEMU's twin ELF, or Renode running the board ELF). Everything
above this module talks to a `protocol.Device` and does not care which."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from tinyfake.errors import UserError
from tinyfake.firmware.boards import Board
from tinyfake.harness.protocol import Device


@contextmanager
def connect(board: Board, *, port: str | None = None, simulate: bool = False,
            sim_elf: Path | None = None, board_elf: Path | None = None, renode: str | None = None,
            expected_hash: str | None = None, log=None, **device_kw):
    """Yield (device, platform description). Simulation starts the simulator
    and stops it afterwards; `port` opens a real serial port (or any
    pyserial URL). `renode` (a launcher path, or "" to look for one) runs
    the board ELF in Renode instead of QEMU's twin."""
    if simulate == (port is not None):
        raise UserError("give either --port PORT (a board) or --simulate")
    if port is not None:
        baud = int(board.console.get("baud", 115200))
        with Device(port, baud, expected_hash=expected_hash, log=log, **device_kw) as dev:
            yield dev, f"{board.name} on {port}"
        return
    if renode is not None:
        from tinyfake.harness.renode import RenodeSim, find_renode
        with RenodeSim(board_elf, board, find_renode(renode or None)) as sim:
            with Device(sim.url, instructions=sim.instructions, expected_hash=expected_hash,
                        log=log, **device_kw) as dev:
                yield dev, (f"Renode {board.name} platform running {sim.elf.name} "
                            f"(sha256 {sim.elf_sha256[:16]}: the ELF `tinyfake flash` writes)")
        return
    from tinyfake.harness.qemu import QemuSim
    with QemuSim(sim_elf, board) as sim:
        with Device(sim.url, instructions=sim.instructions, expected_hash=expected_hash,
                    log=log, **device_kw) as dev:
            yield dev, f"QEMU {board.sim_board().name} (simulated {board.name})"
            dev.exit(0)
        sim.wait()
