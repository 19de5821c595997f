"""The README's examples run as written, so README and code cannot drift apart.

Its Python examples run against the test server: ``myapp.models`` is a module made for
the test (the tests' own model), and the example's URL is replaced by the test
database's.  The ``tenant-sync list`` commands of "Choosing tenants" print what the README
shows, on the schemas it describes.  Its test command is the one ``.ci/run`` runs.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers import make_schemas, tables
from sqlalchemy.engine import URL, Engine

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
EXAMPLE_URL = "postgresql+psycopg://app:secret@db/app"

MYAPP_MODELS = """
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


class Project(Base):
    __tablename__ = "projects"
    id = sa.Column(sa.Integer, primary_key=True)
    name = sa.Column(sa.String(100), nullable=False)
"""


def python_examples() -> list[str]:
    """Every fenced ``python`` block of the README, in order."""
    return re.findall(r"^```python\n(.*?)^```", README, flags=re.S | re.M)


@pytest.fixture
def myapp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A package ``myapp.models`` with a declarative ``Base``, importable; cwd is tmp_path."""
    package = tmp_path / "myapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(MYAPP_MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for name in ("myapp.models", "myapp"):
        sys.modules.pop(name, None)


def test_the_use_example_runs_as_written(database_url: URL, engine: Engine, myapp: Path) -> None:
    example = next(code for code in python_examples() if "from myapp.models import" in code)
    assert EXAMPLE_URL in example
    url = database_url.render_as_string(hide_password=False)
    make_schemas(engine, ["tenant_acme", "tenant_globex", "tenants_backup"])

    exec(compile(example.replace(EXAMPLE_URL, url), "README.md", "exec"), {})

    assert (myapp / "sync-report.json").exists()
    for tenant in ("tenant_acme", "tenant_globex", "tenant_new"):
        assert "projects" in tables(engine, tenant)
    assert tables(engine, "tenants_backup") == set(), "the escaped pattern leaves it alone"


def test_the_data_steps_example_runs_as_written(database_url: URL, engine: Engine) -> None:
    example = next(code for code in python_examples() if "@ts.step(" in code)
    url = database_url.render_as_string(hide_password=False)
    make_schemas(engine, ["tenant_acme", "tenant_globex"])
    with engine.begin() as conn:
        for tenant, rows in (("tenant_acme", 12_001), ("tenant_globex", 0)):
            conn.execute(
                sa.text(
                    f"CREATE TABLE {tenant}.customers (id serial PRIMARY KEY, name text NOT NULL)"
                )
            )
            conn.execute(
                sa.text(
                    f"INSERT INTO {tenant}.customers (name) SELECT 'c' || i FROM generate_series(1, :n) i"
                ),
                {"n": rows},
            )
    namespace: dict[str, object] = {}

    exec(compile(example.replace(EXAMPLE_URL, url), "README.md", "exec"), namespace)

    plan, report = namespace["plan"], namespace["report"]
    assert [r.steps for r in plan.results] == [["2026-12 fill customers.full_name"]] * 2  # type: ignore[attr-defined]
    assert report.ok, report.summary()  # type: ignore[attr-defined]
    with engine.connect() as conn:
        mismatched = conn.execute(
            sa.text("SELECT count(*) FROM tenant_acme.customers WHERE full_name <> 'c' || id")
        ).scalar_one()
        history = conn.execute(
            sa.text(
                "SELECT operations[1] FROM tenant_acme.tenant_sync_history WHERE step IS NOT NULL"
            )
        ).scalar_one()
    assert mismatched == 0 and "3 batches of up to 5,000 rows" in history
    assert tables(engine, "tenant_acme") >= {"customers", "tenant_sync_history"}


def test_every_other_python_example_runs() -> None:
    others = [
        code
        for code in python_examples()
        if "from myapp.models import" not in code and "@ts.step(" not in code
    ]
    assert others, "the README has fragments beyond the Use example"
    for code in others:
        namespace: dict[str, object] = {"sa": sa}
        exec(compile(code, "README.md", "exec"), namespace)


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    block = re.search(r"# 2\. The tests.*?\n(.+?)\n", README)
    assert block is not None
    command = block.group(1)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert ci[-1] == command
