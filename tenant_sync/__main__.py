"""``python -m tenant_sync``: the ``tenant-sync`` command."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
