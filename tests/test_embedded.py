"""The embedded server starts, answers, stops, and leaves no process behind, even after SIGKILL."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers import require_loopback

from tenant_sync.demo import embedded
from tenant_sync.demo.embedded import (
    EmbeddedPostgres,
    EmbeddedServerError,
    embedded_available,
    server_answers,
)

needs_wheel = pytest.mark.skipif(
    not embedded_available(), reason="the tenant_sync[embedded] extra is not installed"
)
needs_proc = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="reads processes from /proc"
)

# Started in a child Python, which the tests then kill with SIGKILL.
_CHILD = """
import sys
from tenant_sync.demo import embedded, processes
if sys.argv[1] == "no-parent-death-signal":
    processes._prctl = None  # as on a system without one, e.g. macOS
server = embedded.EmbeddedPostgres()
server.start()
print(server.pid, server.directory, flush=True)
sys.stdin.read()
"""


def _await(condition: Callable[[], bool], timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _stat_fields(pid: str) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name: state, ppid, pgrp, session, ..."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return []


def _session_processes(session: int) -> list[int]:
    """Live processes of a session; the server leads its own, so these are all of its processes."""
    found = []
    for entry in Path("/proc").iterdir():
        fields = _stat_fields(entry.name) if entry.name.isdigit() else []
        if fields and fields[0] != "Z" and int(fields[3]) == session:
            found.append(int(entry.name))
    return found


def _process_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for process {pid}")


@contextmanager
def _killed_parent(mode: str) -> Iterator[tuple[int, Path]]:
    """Start a server in a child Python, kill that child with SIGKILL, yield (server pid, directory)."""
    child = subprocess.Popen(
        [sys.executable, "-W", "error", "-c", _CHILD, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stderr is not None
    server_pid = None
    try:
        ready, _, _ = select.select([child.stdout], [], [], 30)
        line = child.stdout.readline() if ready else ""
        assert line, (
            f"the child did not start a server: {child.stderr.read() if ready else 'timeout'}"
        )
        pid_text, directory = line.split(maxsplit=1)
        server_pid = int(pid_text)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        yield server_pid, Path(directory.strip())
    finally:
        child.kill()
        child.wait(10)
        for stream in (child.stdin, child.stdout, child.stderr):
            if stream is not None:
                stream.close()
        if server_pid is not None and _session_processes(server_pid):
            os.killpg(server_pid, signal.SIGKILL)  # keep a failed test from leaving a server


@needs_wheel
@needs_proc
def test_server_answers_queries_runs_unprivileged_and_stops_without_leftovers() -> None:
    with EmbeddedPostgres() as server:
        assert server.pid is not None and server.directory is not None
        pid, directory = server.pid, server.directory
        engine = sa.create_engine(server.url, poolclass=sa.NullPool)
        with engine.connect() as conn:
            version, user = conn.execute(sa.text("SELECT version(), current_user")).one()
        engine.dispose()
        assert version.startswith("PostgreSQL ")
        assert user == "postgres"
        assert _process_uid(pid) != 0
        assert _session_processes(pid)
    assert _session_processes(pid) == []
    assert not directory.exists()
    assert server.pid is None


@needs_wheel
@needs_proc
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux's")
def test_server_stops_when_its_parent_is_killed() -> None:
    with _killed_parent("default") as (server_pid, _):
        assert _await(lambda: _session_processes(server_pid) == []), "server outlived its parent"


@needs_wheel
@needs_proc
def test_next_start_stops_a_server_left_without_parent_death_signal() -> None:
    with _killed_parent("no-parent-death-signal") as (server_pid, directory):
        assert _session_processes(server_pid), "the server runs on after its parent"
        with EmbeddedPostgres():
            assert _await(lambda: _session_processes(server_pid) == [])
            assert not directory.exists()


def test_missing_extra_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded, "_WHEEL_PACKAGE", "tenant_sync_no_such_wheel")
    assert not embedded_available()
    with pytest.raises(EmbeddedServerError) as caught:
        EmbeddedPostgres().start()
    assert "tenant_sync[embedded]" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_url_needs_a_running_server() -> None:
    with pytest.raises(EmbeddedServerError, match="start"):
        _ = EmbeddedPostgres().url


def test_server_answers_tells_a_listening_port_from_a_closed_one() -> None:
    require_loopback()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = int(listener.getsockname()[1])
        assert server_answers("127.0.0.1", port, timeout_s=1.0)
    assert not server_answers("127.0.0.1", port, timeout_s=1.0)
