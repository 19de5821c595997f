"""``python -m tenant_sync.cli``: the ``tenant-sync`` command."""

from . import main

raise SystemExit(main())
