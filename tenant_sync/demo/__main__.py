"""``python -m tenant_sync.demo [URL]``: the same as ``tenant-sync demo [--url URL]``."""

from __future__ import annotations

import sys

from ..cli import main

if __name__ == "__main__":
    raise SystemExit(main(["demo", *(["--url", sys.argv[1]] if len(sys.argv) > 1 else [])]))
