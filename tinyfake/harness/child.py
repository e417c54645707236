"""Simulator processes (QEMU, Renode): the local port they serve the board's
UART on, and a start that ends them with tinyfake: a `tinyfake verify` killed
by a timeout, SIGKILL or a cancelled CI job must not leave a simulator
running (and holding a core) with no one to talk to."""
from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def _die_with(parent: int):
    def tie() -> None:  # in the child, between fork and exec (kept across exec)
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the tie was made
            os._exit(1)
    return tie


def popen_tied(cmd: list[str], **kw) -> subprocess.Popen:
    """subprocess.Popen whose process the kernel kills when this one dies (Linux)."""
    tie = _die_with(os.getpid()) if sys.platform.startswith("linux") else None
    return subprocess.Popen(cmd, preexec_fn=tie, **kw)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
