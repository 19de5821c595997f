"""The README's console sessions run as written, and print what the README shows.

Every fenced ``console`` block that follows a ``<!-- readme-console: NAME -->`` comment
is a scene: the test builds what the scene's text describes (``SCENES`` below: the
application's ``myapp/models.py`` at each step, the tenant schemas, a view in the way),
runs each ``$ command`` in bash against the test server, in a working directory of its
own, and compares what it prints with the README, once times, durations, process ids
and the order of lines that parallel workers print in any order are written out of
both.  The README's database URL stands for the test database's.

``TENANT_SYNC_UPDATE_README=1 pytest tests/test_readme_console.py`` writes the output
of the run into the README instead, for a change that means to change it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

ROOT = Path(__file__).resolve().parent.parent
README_PATH = ROOT / "README.md"
README_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/app"
UPDATE = os.environ.get("TENANT_SYNC_UPDATE_README") == "1"

_BLOCK = re.compile(r"<!-- readme-console: ([a-z0-9-]+) -->\n+```console\n(.*?)^```", re.S | re.M)

# customers and invoices; each step of a scene writes myapp/models.py anew.
MODELS = {
    "v1": """
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


status = sa.Enum("draft", "sent", "paid", name="invoice_status")


class Customer(Base):
    __tablename__ = "customers"
    id = sa.Column(sa.Integer, primary_key=True)
    name = sa.Column(sa.String(50), nullable=False)
    legacy_code = sa.Column(sa.String(10))


class Invoice(Base):
    __tablename__ = "invoices"
    id = sa.Column(sa.Integer, primary_key=True)
    customer_id = sa.Column(sa.ForeignKey("customers.id"), nullable=False)
    total = sa.Column(sa.Integer, nullable=False)
    status = sa.Column(status, nullable=False, server_default="draft")
""",
}
# The session's model change: payments, invoices.due_date and its index, no legacy_code.
MODELS["v2"] = (
    MODELS["v1"]
    .replace("    legacy_code = sa.Column(sa.String(10))\n", "")
    .replace(
        '    customer_id = sa.Column(sa.ForeignKey("customers.id"), nullable=False)\n',
        '    customer_id = sa.Column(sa.ForeignKey("customers.id"), nullable=False, index=True)\n'
        "    due_date = sa.Column(sa.Date)\n",
    )
    + """

class Payment(Base):
    __tablename__ = "payments"
    id = sa.Column(sa.Integer, primary_key=True)
    invoice_id = sa.Column(sa.ForeignKey("invoices.id"), nullable=False)
    amount_cents = sa.Column(sa.Integer, nullable=False)
"""
)
# The "in sync" example's change: an enum label, a widening, a rewrite, a column, an index.
MODELS["v1-changed"] = (
    MODELS["v1"]
    .replace('"draft", "sent", "paid",', '"draft", "sent", "paid", "refunded",')
    .replace("sa.String(50)", "sa.String(200)")
    .replace("    legacy_code = sa.Column(sa.String(10))\n", "")
    .replace("total = sa.Column(sa.Integer,", "total = sa.Column(sa.BigInteger,")
    .replace(
        '    customer_id = sa.Column(sa.ForeignKey("customers.id"), nullable=False)\n',
        '    customer_id = sa.Column(sa.ForeignKey("customers.id"), nullable=False, index=True)\n'
        "    due_date = sa.Column(sa.Date)\n",
    )
)

# The online path's change: an index and a CHECK on invoices, big in one tenant.
MODELS["v1-online"] = (
    MODELS["v1"]
    .replace(
        '    customer_id = sa.Column(sa.ForeignKey("customers.id"), nullable=False)\n',
        '    customer_id = sa.Column(sa.ForeignKey("customers.id"), nullable=False, index=True)\n',
    )
    .replace(
        '    __tablename__ = "invoices"\n',
        '    __tablename__ = "invoices"\n'
        '    __table_args__ = (sa.CheckConstraint("total >= 0", name="ck_invoices_total"),)\n',
    )
)

# The data steps' change: customers.display_name, NOT NULL, filled by a step.
MODELS["v1-steps"] = MODELS["v1"].replace(
    "    legacy_code = sa.Column(sa.String(10))\n",
    "    legacy_code = sa.Column(sa.String(10))\n"
    "    display_name = sa.Column(sa.String(50), nullable=False)\n",
)
STEPS = """
import sqlalchemy as sa
from tenant_sync import Steps

steps = Steps()


@steps.step("2026-12 fill customers.display_name")
def fill_display_name(conn, tenant):
    conn.execute(sa.text("UPDATE customers SET display_name = name WHERE display_name IS NULL"))
"""

TENANTS = ("tenant_acme", "tenant_globex", "tenant_initech")


@dataclass
class Stage:
    """Where a scene runs: the test database, and the application's directory."""

    engine: Engine
    url: URL
    workdir: Path
    #: What the scene's ``export`` commands set, for the commands after them.
    exports: dict[str, str] = field(default_factory=dict)
    #: The exit status of the scene's latest command, for ``echo $?``.
    status: int = 0
    #: Databases the scene made beside the test's own, dropped when it ends.
    databases: list[URL] = field(default_factory=list)

    def database(self, suffix: str, name: str | None = None) -> URL:
        """A new database beside the test's, ``<test database>_<suffix>`` (or ``name``)."""
        url = self.url.set(database=name or f"{self.url.database}_{suffix}")
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
        self.databases.append(url)
        return url

    def drop_databases(self) -> None:
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for url in self.databases:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))

    def model(self, version: str) -> None:
        """Write ``myapp/models.py`` at ``version``."""
        package = self.workdir / "myapp"
        package.mkdir(exist_ok=True)
        (package / "__init__.py").write_text("")
        (package / "models.py").write_text(MODELS[version])

    def sql(self, *statements: str) -> None:
        """Run statements on the scene's database."""
        engine = sa.create_engine(self.url, poolclass=sa.NullPool)
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
        engine.dispose()

    def tenant_sync(self, *args: str) -> None:
        """Run a command quietly (a step the scene's text describes, not one it shows)."""
        done = subprocess.run(
            [sys.executable, "-m", "tenant_sync.cli", *args],
            cwd=self.workdir,
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr

    def environment(self) -> dict[str, str]:
        """The commands' environment: this venv's ``tenant-sync`` first on PATH."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENANT_SYNC_")}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONPATH"] = str(self.workdir)
        env["COLUMNS"] = "100"
        env.update(self.exports)
        return env


def _in_sync_example(stage: Stage) -> None:
    stage.exports["TENANT_SYNC_DATABASE_URL"] = _text(stage.url)
    stage.sql(*(f"CREATE SCHEMA {name}" for name in TENANTS))
    stage.model("v1")
    stage.tenant_sync("sync", "--url", _text(stage.url), "--model", "myapp.models:Base")
    stage.model("v1-changed")


def _choosing_tenants(stage: Stage) -> None:
    stage.exports["TENANT_SYNC_DATABASE_URL"] = _text(stage.url)
    stage.sql(
        *(f"CREATE SCHEMA {name}" for name in ("tenant_acme", "tenant_globex", "tenants_backup")),
        "CREATE SCHEMA analytics",
        "CREATE TABLE analytics.events (id bigint PRIMARY KEY)",
        "CREATE TABLE analytics.daily (day date PRIMARY KEY, cents bigint)",
        "INSERT INTO analytics.daily VALUES ('2026-12-01', 1250)",
    )
    stage.model("v1")


def _session_start(stage: Stage) -> None:
    stage.sql(
        *(f"CREATE SCHEMA {name}" for name in (*TENANTS, "analytics")),
        "CREATE TABLE analytics.daily_revenue (day date PRIMARY KEY, cents bigint)",
        "INSERT INTO analytics.daily_revenue VALUES ('2026-12-01', 1250)",
    )
    stage.model("v1")


def _session_change(stage: Stage) -> None:
    stage.model("v2")
    stage.sql("CREATE VIEW tenant_initech.payments AS SELECT 1 AS id")


def _session_view_dropped(stage: Stage) -> None:
    stage.sql("DROP VIEW tenant_initech.payments")


def _history(stage: Stage) -> None:
    stage.exports["TENANT_SYNC_DATABASE_URL"] = _text(stage.url)
    stage.sql("CREATE SCHEMA tenant_acme")
    for version in ("v1", "v2"):
        stage.model(version)
        stage.tenant_sync("sync", "--model", "myapp.models:Base")


def _steps(stage: Stage) -> None:
    stage.exports["TENANT_SYNC_DATABASE_URL"] = _text(stage.url)
    stage.sql("CREATE SCHEMA tenant_acme")
    stage.model("v1")
    stage.tenant_sync("sync", "--model", "myapp.models:Base")
    stage.sql("INSERT INTO tenant_acme.customers (name) VALUES ('Ada'), ('Grace')")
    stage.model("v1-steps")
    (stage.workdir / "myapp" / "steps.py").write_text(STEPS)


def _online(stage: Stage) -> None:
    stage.exports["TENANT_SYNC_DATABASE_URL"] = _text(stage.url)
    stage.sql(*(f"CREATE SCHEMA {name}" for name in TENANTS[:2]))
    stage.model("v1")
    stage.tenant_sync("sync", "--model", "myapp.models:Base")
    stage.sql(
        "INSERT INTO tenant_acme.customers (id, name) VALUES (1, 'Ada')",
        "INSERT INTO tenant_acme.invoices (customer_id, total)"
        " SELECT 1, i FROM generate_series(1, 5000) AS i",
        "ANALYZE tenant_acme.invoices",
    )
    stage.model("v1-online")


def _three_tenants_then_v2(stage: Stage) -> None:
    """The three tenants at v1, synced quietly; the model then at v2."""
    stage.exports["TENANT_SYNC_DATABASE_URL"] = _text(stage.url)
    stage.sql(*(f"CREATE SCHEMA {name}" for name in TENANTS))
    stage.model("v1")
    stage.tenant_sync("sync", "--model", "myapp.models:Base")
    stage.model("v2")


def _shards(stage: Stage) -> None:
    # A share is a hash of the database's name and the schema: the scene's database has
    # a name of its own, the same in every run, so that each share holds the same tenants.
    stage.url = stage.database("", name="tenant_sync_readme")
    _three_tenants_then_v2(stage)


def _waves_canary(stage: Stage) -> None:
    _three_tenants_then_v2(stage)
    stage.sql("CREATE VIEW tenant_globex.payments AS SELECT 1 AS id")


def _fleet(stage: Stage) -> None:
    readme_server = sa.make_url(README_URL)
    if (stage.url.host, stage.url.port) != (readme_server.host, readme_server.port):
        # The down database's error line names the server's address, as the README shows it.
        pytest.skip("the fleet scene shows a server at 127.0.0.1:5432; this run's is elsewhere")
    stage.model("v1")
    eu, us = stage.database("eu"), stage.database("us")
    ap = stage.url.set(database=f"{stage.url.database}_ap")  # never made: that one is down
    for url, tenants in ((eu, TENANTS[:2]), (us, TENANTS[2:])):
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        with engine.begin() as conn:
            for name in tenants:
                conn.execute(sa.text(f"CREATE SCHEMA {name}"))
        engine.dispose()
        stage.tenant_sync("sync", "--url", _text(url), "--model", "myapp.models:Base")
    (stage.workdir / "fleet.toml").write_text(
        "[databases]\n"
        + "".join(f'{k} = "{_text(u)}"\n' for k, u in (("eu", eu), ("us", us), ("ap", ap)))
    )
    stage.model("v2")


Setup = Callable[[Stage], None]
#: Each scene's steps, by the name in its README comment: what to set up before it.
SCENES: dict[str, dict[str, Setup | None]] = {
    "in-sync": {"in-sync-plan": _in_sync_example},
    "choosing": {"choosing-tenants": _choosing_tenants},
    "waves": {"waves-canary": _waves_canary},
    "online": {"online-sync": _online},
    "steps": {"steps-sync": _steps},
    "fleet": {"fleet-sync": _fleet},
    "shards": {"sharded-sync": _shards},
    "history": {"history": _history},
    "session": {
        "session-list": _session_start,
        "session-plan": _session_change,
        "session-sync": None,
        "session-report": None,
        "session-rerun": _session_view_dropped,
        "session-signup": None,
        "session-errors": None,
    },
}

#: Commands whose output depends on the network (name resolution, a closed port's
#: error text inside a network namespace): shown, not run.
NOT_RUN = ("@127.0.0.1:6432/", "@db.example/")


def readme_blocks() -> dict[str, str]:
    """Every named console block of the README, by name."""
    return {name: body for name, body in _BLOCK.findall(README_PATH.read_text("utf-8"))}


@pytest.mark.parametrize("scene", sorted(SCENES))
def test_the_readme_console_sessions_print_what_the_readme_shows(
    scene: str, database_url: URL, engine: Engine, tmp_path: Path
) -> None:
    blocks = readme_blocks()
    stage = Stage(engine, database_url, tmp_path)
    (tmp_path / "logs").mkdir()
    outputs: dict[str, str] = {}
    try:
        for name, setup in SCENES[scene].items():
            assert name in blocks, f"the README has no console block named {name!r}"
            if setup is not None:
                setup(stage)
            outputs[name] = run_block(blocks[name], stage)
    finally:
        stage.drop_databases()
    if UPDATE:
        _write_readme(outputs)
        return
    for name, shown in outputs.items():
        assert normalized(shown) == normalized(blocks[name]), name


def run_block(block: str, stage: Stage) -> str:
    """Run the block's commands in one bash; return the transcript as the README writes it."""
    transcript: list[str] = []
    url = _text(stage.url)
    for command, shown in _commands(block):
        if any(marker in command for marker in NOT_RUN):
            transcript += [f"$ {command}", *shown]
            continue
        transcript.append(f"$ {command}")
        transcript += _run(command.replace(README_URL, url), stage)
    # Errors name a scene's databases by name alone: the test's database reads "app".
    text = "\n".join(transcript).replace(url, README_URL)
    return text.replace(str(stage.url.database), README_URL.rsplit("/", 1)[1]) + "\n"


def _commands(block: str) -> list[tuple[str, list[str]]]:
    commands: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        elif commands:
            commands[-1][1].append(line)
    return commands


def _run(command: str, stage: Stage) -> list[str]:
    if command == "echo $?":
        return [str(stage.status)]
    if command.startswith("export "):
        name, _, value = command[len("export ") :].partition("=")
        stage.exports[name] = value
        return []
    # On a terminal, as a reader types it: stdout and stderr are the terminal.
    terminal, side = os.openpty()
    process = subprocess.Popen(
        ["bash", "-c", command],
        cwd=stage.workdir,
        env=stage.environment(),
        stdin=subprocess.DEVNULL,
        stdout=side,
        stderr=side,
    )
    os.close(side)
    printed = _read_all(terminal)
    stage.status = process.wait(timeout=120)
    return _as_seen(printed).splitlines()


def _read_all(terminal: int) -> bytes:
    chunks: list[bytes] = []
    try:
        while chunk := os.read(terminal, 65536):
            chunks.append(chunk)
    except OSError:  # EIO: every process holding the terminal's other side has exited
        pass
    finally:
        os.close(terminal)
    return b"".join(chunks)


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _as_seen(printed: bytes) -> str:
    """What stays on the screen: colours gone, a line redrawn after ``\\r`` as redrawn."""
    text = _ANSI.sub("", printed.decode("utf-8", "replace").replace("\r\n", "\n"))
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


_VARYING = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00"), "<time>"),
    (re.compile(r"\brun [0-9a-f]{12}\b"), "run <id>"),
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \d+ "), "<time> <pid> "),
    (re.compile(r"^\d\d:\d\d:\d\d ", re.M), "<hh:mm:ss> "),
    (re.compile(r"\b\d+\.\d+s\b"), "<d>s"),
    (re.compile(r"\b\d+m\d\ds\b"), "<d>s"),
    (re.compile(r"\bran in \d+\.\d+ s\b"), "ran in <d> s"),
    (re.compile(r"pid \d+"), "pid <pid>"),
    # The server's and the libraries' versions are those of the machine the test runs on.
    (re.compile(r"\(PostgreSQL [0-9.]+\)"), "(PostgreSQL <version>)"),
    (re.compile(r"(?<=[a-z_]) \d+(\.\d+)+(?=,|$)", re.M), " <version>"),
    (re.compile(r"[ \t]+"), " "),
]


def normalized(text: str) -> list[str]:
    """``text`` without what varies from run to run, lines that come in any order sorted."""
    for pattern, replacement in _VARYING:
        text = pattern.sub(replacement, text)
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return _sorted_runs(lines)


def _sorted_runs(lines: list[str]) -> list[str]:
    """Sort each run of log lines, and each "Slowest tenants" list (their order is timing)."""
    result: list[str] = []
    run: list[str] = []
    in_slowest = False
    for line in lines:
        is_log = line.startswith("<hh:mm:ss> ")
        in_slowest = (in_slowest and line.startswith(" ")) or line == "Slowest tenants"
        if (is_log or (in_slowest and line.startswith(" "))) and (
            not run or _kind(run[0]) == _kind(line)
        ):
            run.append(line)
            continue
        result += sorted(run)
        run = [line] if is_log or (in_slowest and line.startswith(" ")) else []
        if not run:
            result.append(line)
    return result + sorted(run)


def _kind(line: str) -> str:
    return "log" if line.startswith("<hh:mm:ss> ") else "list"


def _write_readme(outputs: dict[str, str]) -> None:
    text = README_PATH.read_text("utf-8")
    for name, output in outputs.items():
        pattern = re.compile(
            rf"(<!-- readme-console: {re.escape(name)} -->\n+```console\n)(.*?)(^```)", re.S | re.M
        )
        text = pattern.sub(lambda m, out=output: m.group(1) + out + m.group(3), text, count=1)
    README_PATH.write_text(text, "utf-8")


def _text(url: URL) -> str:
    return url.render_as_string(hide_password=False)
