"""Boards are data: `boards/<name>.toml` describes memory regions, the memory
profile (which region holds which part of the image), clock, console and
flashers. Nothing else in tinyfake knows a board by name.

A project adds or changes boards in its own `boards/` folder (in the current
directory): a board found there wins over tinyfake's own of the same name."""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from tinyfake.errors import UserError
from tinyfake.firmware.board_schema import check_board
from tinyfake.paths import BOARDS_DIR

DEFAULT_BOARD = "stm32h743"  # what every command targets without --board

# Parts of the image a profile places; `arena` may list fallbacks.
PROFILE_KEYS = ("text", "rodata", "data", "bss", "stack", "arena")


def parse_size(value: int | str) -> int:
    """2097152, "2M", "128K", "0x400" -> bytes."""
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*(0x[0-9a-fA-F]+|\d+)\s*([KkMm]?)\s*", str(value))
    if not m:
        raise ValueError(f"bad size {value!r} (use bytes, '64K' or '2M')")
    n = int(m.group(1), 0)
    return n * {"": 1, "k": 1 << 10, "m": 1 << 20}[m.group(2).lower()]


@dataclass(frozen=True)
class Region:
    name: str
    origin: int
    size: int
    kind: str  # "rom" (flash) or "ram"


@dataclass(frozen=True)
class Profile:
    text: str
    rodata: str
    data: str
    bss: str
    stack: str
    stack_size: int
    arena: tuple[str, ...]  # candidates, first that links wins


@dataclass(frozen=True)
class Board:
    name: str
    title: str
    family: str
    cpu: str
    fpu: str
    clock_hz: int
    regions: dict[str, Region]
    profile: Profile
    console: dict = field(default_factory=dict)
    clock: dict = field(default_factory=dict)
    flash: dict = field(default_factory=dict)
    simulator: str | None = None
    banks: dict[str, Region] = field(default_factory=dict)
    qemu: dict = field(default_factory=dict)
    renode: dict = field(default_factory=dict)  # platform + overlay script (harness/renode.py)
    qspi: dict = field(default_factory=dict)    # memory-mapped QSPI flash the HAL sets up at boot
    part: str = ""     # the die within the family (its reference manual), for the HAL
    path: Path | None = None

    def sim_board(self) -> "Board":
        """The board whose machine runs this board's firmware in simulation."""
        return load_board(self.simulator) if self.simulator else self


def board_dirs() -> list[Path]:
    """Where boards are looked up, first match wins: the project's, then tinyfake's."""
    project = Path.cwd() / "boards"
    mine = [project] if project.is_dir() and project.resolve() != BOARDS_DIR.resolve() else []
    return mine + [BOARDS_DIR]


def list_boards() -> list[str]:
    names = sorted({p.stem for d in board_dirs() for p in d.glob("*.toml")})
    if not names:
        raise UserError(f"no board descriptions (*.toml) in {BOARDS_DIR}: this tinyfake installation "
                        "is incomplete; reinstall it")
    return names


def board_file(name: str) -> Path | None:
    return next((d / f"{name}.toml" for d in board_dirs() if (d / f"{name}.toml").is_file()), None)


def _regions(table: dict, where: str) -> dict[str, Region]:
    out = {}
    for name, r in table.items():
        try:
            out[name] = Region(name, int(r["origin"]), parse_size(r["size"]), r.get("kind", "ram"))
        except (KeyError, ValueError) as exc:
            raise UserError(f"{where}: region {name}: {exc}") from None
    return out


def load_board(name: str) -> Board:
    path = board_file(name)
    if path is None:
        raise UserError(f"unknown board {name!r}; known boards: {', '.join(list_boards())} "
                        f"(add one as boards/{name}.toml in this folder)")
    try:
        with open(path, "rb") as f:
            d = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"{path}: not a readable TOML board description ({exc})") from None
    check_board(d, path)
    if d.get("name") != name:
        raise UserError(f"{path}: name = {d.get('name')!r} differs from the file name {name!r}; "
                        "make them the same (boards are found by file name)")
    try:
        regions = _regions(d["regions"], str(path))
        p = d["profile"]
        arena = p["arena"]
        profile = Profile(text=p["text"], rodata=p["rodata"], data=p["data"], bss=p["bss"],
                          stack=p["stack"], stack_size=parse_size(p["stack_size"]),
                          arena=tuple([arena] if isinstance(arena, str) else arena))
        board = Board(name=d["name"], title=d.get("title", d["name"]), family=d["family"],
                      cpu=d["cpu"], fpu=d.get("fpu", ""), clock_hz=int(d["clock_hz"]),
                      regions=regions, profile=profile, console=d.get("console", {}),
                      clock=d.get("clock", {}), flash=d.get("flash", {}),
                      simulator=d.get("simulator"), banks=_regions(d.get("banks", {}), str(path)),
                      qemu=d.get("qemu", {}), renode=d.get("renode", {}), qspi=d.get("qspi", {}),
                      part=d.get("part", ""), path=path)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{path}: bad board description: {exc}") from None
    used = [profile.text, profile.rodata, profile.data, profile.bss, profile.stack, *profile.arena]
    for r in used:
        if r not in regions:
            raise UserError(f"{path}: profile names region {r!r}, which is not in [regions]")
    return board
