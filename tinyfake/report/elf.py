"""The sections and symbols of a linked firmware ELF, read with pyelftools:
what the memory report and the instruction-count markers need."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection


@dataclass(frozen=True)
class Section:
    name: str
    type: str          # SHT_PROGBITS, SHT_NOBITS, ...
    flags: int
    addr: int
    size: int
    offset: int = 0    # in the file

    @property
    def alloc(self) -> bool:
        return bool(self.flags & SH_FLAGS.SHF_ALLOC)

    @property
    def loaded(self) -> bool:
        """Occupies bytes in the image (flash), not just RAM."""
        return self.alloc and self.type != "SHT_NOBITS"


class Elf:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            with open(self.path, "rb") as f:
                elf = ELFFile(f)
                self.sections = [Section(s.name, s["sh_type"], s["sh_flags"], s["sh_addr"], s["sh_size"],
                                         s["sh_offset"]) for s in elf.iter_sections()]
                self._symbols = {sym.name: sym["st_value"] & ~1 if sym["st_info"]["type"] == "STT_FUNC"
                                 else sym["st_value"]  # Thumb bit cleared for functions
                                 for table in elf.iter_sections() if isinstance(table, SymbolTableSection)
                                 for sym in table.iter_symbols() if sym.name}
        except ELFError as exc:
            raise ValueError(f"{path}: not an ELF file ({exc})") from None

    def symbols(self) -> dict[str, int]:
        """Symbol name -> value (Thumb bit cleared for functions)."""
        return dict(self._symbols)

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)
