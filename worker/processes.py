"""Child processes of ``amends dev``, and waiting for their ports.

The children run in their own session, so a Ctrl-C in the terminal reaches
only ``amends dev`` and its shutdown keeps its order; on Linux they are also
asked to die with it (``PR_SET_PDEATHSIG``) should it be killed outright.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("amends.dev")

READY_TIMEOUT = 90.0  # seconds: a first start on a slow 2-core machine creates the SQLite schema
STOP_TIMEOUT = 20.0  # seconds each child gets to stop after SIGTERM before SIGKILL


class DevError(Exception):
    """The runtime could not start; the message says why and what to do."""


_PR_SET_PDEATHSIG = 1
_libc = None
if sys.platform.startswith("linux"):
    with contextlib.suppress(OSError):
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _child_setup(parent: int) -> Callable[[], None]:
    def setup() -> None:  # runs in the child between fork and exec: nothing fancy here
        os.setsid()
        if _libc is not None:
            _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)

    return setup


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    log_path: Path

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0fs; killing it", self.name, timeout)
                self._signal(signal.SIGKILL)
                self.proc.wait()

    def _signal(self, sig: int) -> None:
        # The child leads its own process group; until it is reaped (only
        # ``proc.wait``/``poll`` here do that) its pid cannot be reused.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)


def spawn(name: str, cmd: list[str], log_path: Path, cwd: Path) -> Child:
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_child_setup(os.getpid()),
        )
    return Child(name, proc, log_path)


# ---------------------------------------------------------------- ports


def free_port() -> int:
    """A loopback port nothing listens on now, chosen by the kernel (for the tests and the benchmark)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as err:
            return err.errno == errno.EADDRINUSE
    return False


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


async def wait_for_port(port: int, what: str, child: Child | None = None, timeout: float = READY_TIMEOUT) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if listening(port):
            return
        if child is not None and child.proc.poll() is not None:
            raise DevError(
                f"{child.name} exited with code {child.proc.returncode} before listening on port {port}; "
                f"last lines of {child.log_path}:\n{child.tail()}"
            )
        await asyncio.sleep(0.1)
    raise DevError(f"{what} is not listening on port {port} after {timeout:.0f}s")
