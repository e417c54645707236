"""Where tinyfake finds the files that are not Python: the firmware's C
sources (`firmware/`) and the board descriptions (`boards/`), and where it
keeps what it caches.

In a checkout they are the repository's own folders. An installed wheel
carries copies in `tinyfake/_tree/` (setup.py's build step puts them there),
so the same relative paths (`firmware/runtime/tfk.h`, as listed in a compiled
model's `sources.txt`) resolve under SOURCE_ROOT either way.
"""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
_WHEEL_TREE = PACKAGE / "_tree"
# The repository holding this package, when it runs from a checkout (None when installed).
CHECKOUT: Path | None = PACKAGE.parent if (PACKAGE.parent / ".git").exists() else None
SOURCE_ROOT = _WHEEL_TREE if (_WHEEL_TREE / "firmware").is_dir() else PACKAGE.parent
FIRMWARE_DIR = SOURCE_ROOT / "firmware"
BOARDS_DIR = SOURCE_ROOT / "boards"
CACHE_ROOT = Path(os.environ.get("TINYFAKE_CACHE", Path.home() / ".cache" / "tinyfake"))
