"""`tinyfake boards`: the boards tinyfake knows and their budgets."""
from __future__ import annotations

from tinyfake.firmware.boards import list_boards, load_board
from tinyfake.paths import BOARDS_DIR

HELP = "list the boards (tinyfake's and ./boards/*.toml) with their memory budgets"


def add_arguments(p) -> None:
    p.add_argument("--verbose", "-v", action="store_true", help="also show every region's address")
    p.add_argument("--json", action="store_true", help="print every board file's settings as JSON")


def _size(n: int) -> str:
    return f"{n // (1 << 20)} MiB" if n % (1 << 20) == 0 else f"{n // 1024} KiB"


def run(args) -> int:
    if args.json:
        import dataclasses
        import json

        boards = [dataclasses.asdict(load_board(name)) for name in list_boards()]
        print(json.dumps(boards, indent=1, default=str))  # Path -> str
        return 0
    for name in list_boards():
        b = load_board(name)
        roms = [r for r in b.regions.values() if r.kind == "rom"]
        rom = " + ".join(f"{_size(r.size)} {r.name}" for r in roms) if len(roms) > 1 else _size(roms[0].size)
        ram = sum(r.size for r in b.regions.values() if r.kind == "ram")
        flashers = ", ".join(k for k in b.flash if k != "default") or "-"
        sim = f"simulated on {b.simulator}" if b.simulator else "simulator machine"
        print(f"{b.name:12s} {b.title}")
        if b.path.parent != BOARDS_DIR:  # the project's own (or its change to a built-in one)
            print(f"{'':12s} from {b.path}")
        print(f"{'':12s} {b.cpu} @ {b.clock_hz / 1e6:.0f} MHz, flash {rom}, RAM {_size(ram)}; "
              f"console {b.console.get('uart', '?')} @ {b.console.get('baud', '?')}; flash with {flashers}; {sim}")
        regions = ", ".join(f"{r.name} {_size(r.size)}" + (f" @0x{r.origin:08x}" if args.verbose else "")
                            for r in b.regions.values())
        print(f"{'':12s} regions: {regions}")
        p = b.profile
        placed = f"code+weights {p.text}" if p.text == p.rodata else f"code {p.text}, weights {p.rodata}"
        print(f"{'':12s} profile: {placed}, data/bss {p.data}/{p.bss}, "
              f"stack {_size(p.stack_size)} in {p.stack}, arena {' or '.join(p.arena)}")
    return 0
