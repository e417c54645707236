"""Flash and RAM per memory region, read from a linked ELF.

Flash = .text + .rodata + .data (its initial values live in flash).
RAM per region = .data + .bss + arena + stack reservation; the measured
stack high-water mark comes from the device (STAT) and is added by the
report, not here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tinyfake.firmware.boards import Region
from tinyfake.report.elf import Elf

# output section -> what the report calls it
PARTS = {".isr_vector": "code", ".text": "code", ".ARM.extab": "code", ".ARM.exidx": "code",
         ".rodata": "rodata", ".tf_check": "rodata", ".data": "data", ".bss": "bss",
         ".noinit": "bss", ".arena": "arena", ".stack": "stack"}


@dataclass
class RegionUse:
    name: str
    origin: int
    size: int
    kind: str
    parts: dict[str, int] = field(default_factory=dict)

    @property
    def used(self) -> int:
        return sum(self.parts.values())

    @property
    def free(self) -> int:
        return self.size - self.used

    def as_dict(self) -> dict:
        return {"origin": self.origin, "size": self.size, "kind": self.kind,
                "used": self.used, "free": self.free, "parts": dict(self.parts)}


def region_usage(elf_path: str | Path, regions: dict[str, Region], load_region: str) -> dict[str, RegionUse]:
    """Bytes per region and part. `load_region` holds .data's initial values."""
    out = {r.name: RegionUse(r.name, r.origin, r.size, r.kind) for r in regions.values()}
    for s in Elf(elf_path).sections:
        if not s.alloc or s.size == 0:
            continue
        part = PARTS.get(s.name, s.name.lstrip("."))
        home = next((r for r in regions.values() if r.origin <= s.addr < r.origin + r.size), None)
        if home is None:
            continue
        use = out[home.name]
        use.parts[part] = use.parts.get(part, 0) + s.size
        if s.loaded and home.kind == "ram":
            flash = out[load_region]
            flash.parts["data_init"] = flash.parts.get("data_init", 0) + s.size
    return out


def flash_bytes(usage: dict[str, RegionUse]) -> int:
    return sum(u.used for u in usage.values() if u.kind == "rom")


def ram_bytes(usage: dict[str, RegionUse]) -> int:
    return sum(u.used for u in usage.values() if u.kind == "ram")
