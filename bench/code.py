"""Which tenant_sync is measured: the working tree, or a snapshot of a git revision.

Others edit ``tenant_sync/`` while a long benchmark runs; a snapshot taken with
``git archive`` at the start keeps every measurement of a run on the same code.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from pathlib import Path

__all__ = ["ROOT", "pin_tenant_sync"]

#: The repository root.
ROOT = Path(__file__).resolve().parent.parent


def pin_tenant_sync(ref: str) -> tuple[Path, str]:
    """Extract ``tenant_sync/`` at git revision ``ref`` into a new temporary directory.

    Returns ``(directory, short commit)``; put the directory first on ``sys.path`` (or
    run there with ``python -m``) to import that tenant_sync.  The caller removes it.
    """
    commit = subprocess.run(
        ["git", "rev-parse", "--short", f"{ref}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, "tenant_sync"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    target = Path(tempfile.mkdtemp(prefix=f"bench_tenant_sync_{commit}_"))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target, commit
