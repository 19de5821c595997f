"""Child processes tied to their parent: a parent-death signal, an orderly stop, liveness.

The embedded server's process plumbing, apart from what it knows about PostgreSQL.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["kill_group", "parent_death_signal", "pid_alive", "shut_down", "unix_socket_answers"]

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


# Looked up once, here: the child of a fork should run as little Python as it can.
_prctl = _load_prctl()


def parent_death_signal(parent_pid: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the child sent SIGINT when ``parent_pid`` dies (Linux), or None."""
    prctl = _prctl
    if prctl is None:
        return None

    def preexec() -> None:
        # Runs after the switch to the server's account, which clears the setting.
        # SIGINT asks PostgreSQL for a fast shutdown, which removes its socket.
        if prctl(_PR_SET_PDEATHSIG, int(signal.SIGINT)) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent_pid:  # the parent died before prctl
            os._exit(1)

    return preexec


def shut_down(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Ask ``process`` to stop (SIGINT); kill its process group if it has not within ``timeout_s``."""
    # SIGINT is a fast shutdown: sessions are ended rather than waited for.
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        log.warning("embedded PostgreSQL did not stop within %g s; killing it", timeout_s)
        kill_group(process, timeout_s)


def kill_group(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Kill ``process`` and every process of its group (SIGKILL), and reap it."""
    # The child leads its own session, so its group holds every process it started.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout_s)


def pid_alive(pid: int) -> bool:
    """Tell whether process ``pid`` runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: a zombie counts as alive
    return stat.rpartition(")")[2].split()[0] != "Z"


def unix_socket_answers(path: Path) -> bool:
    """Tell whether something accepts connections on the Unix socket ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True
