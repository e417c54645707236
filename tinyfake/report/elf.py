"""Just enough of ELF32 (little-endian ARM) to read sections and symbols:
what the memory report and the instruction-count markers need."""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

SHT_NOBITS = 8
SHT_SYMTAB = 2
SHF_ALLOC = 0x2


@dataclass(frozen=True)
class Section:
    name: str
    type: int
    flags: int
    addr: int
    size: int
    offset: int = 0    # in the file

    @property
    def alloc(self) -> bool:
        return bool(self.flags & SHF_ALLOC)

    @property
    def loaded(self) -> bool:
        """Occupies bytes in the image (flash), not just RAM."""
        return self.alloc and self.type != SHT_NOBITS


class Elf:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.data = self.path.read_bytes()
        d = self.data
        if d[:4] != b"\x7fELF" or d[4] != 1 or d[5] != 1:
            raise ValueError(f"{path}: not a little-endian ELF32 file")
        (self.shoff,) = struct.unpack_from("<I", d, 0x20)
        self.shentsize, self.shnum, self.shstrndx = struct.unpack_from("<HHH", d, 0x2E)
        raw = [struct.unpack_from("<IIIIIIIIII", d, self.shoff + i * self.shentsize)
               for i in range(self.shnum)]
        names = raw[self.shstrndx]
        self._raw = raw
        self.sections = [Section(self._str(names[4], r[0]), r[1], r[2], r[3], r[5], r[4]) for r in raw]

    def _str(self, table_off: int, idx: int) -> str:
        start = table_off + idx
        return self.data[start:self.data.index(b"\0", start)].decode()

    def symbols(self) -> dict[str, int]:
        """Symbol name -> value (Thumb bit cleared for functions)."""
        out = {}
        for r in self._raw:
            if r[1] != SHT_SYMTAB:
                continue
            strtab = self._raw[r[6]][4]
            for i in range(r[5] // 16):
                name_idx, value, _size, info, _other, _shndx = struct.unpack_from(
                    "<IIIBBH", self.data, r[4] + i * 16)
                if name_idx:
                    is_func = (info & 0xF) == 2
                    out[self._str(strtab, name_idx)] = value & ~1 if is_func else value
        return out

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)
