"""Writing artifacts so that an interrupted stage never leaves a half-written
file that a later stage would take for a good one."""
from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write to a temporary name beside `path`, then rename over it: a kill
    or Ctrl-C mid-write leaves the old file or none, never a partial one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)
