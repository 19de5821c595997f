"""One ``sync_all`` in a process of its own, for test_load.py.

    python load_sync_all.py URL PATTERN WORKERS READY_FILE GO_FILE REPORT_FILE

Builds the TenantSync (imports and engine ready), creates READY_FILE, waits for
GO_FILE so both processes and the signups start together, syncs every tenant
matching PATTERN to model v2 and writes the report as JSON to REPORT_FILE.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/, for models

from models import model_v2

from tenant_sync import TenantSync

#: Seconds to wait for the go signal before giving up.
GO_TIMEOUT_S = 120.0


def main(url: str, pattern: str, workers: str, ready: str, go: str, report: str) -> int:
    with TenantSync(url, model_v2(), tenants=pattern, workers=int(workers)) as ts:
        Path(ready).touch()
        deadline = time.monotonic() + GO_TIMEOUT_S
        while not Path(go).exists():
            if time.monotonic() > deadline:
                print(f"no go signal within {GO_TIMEOUT_S}s", file=sys.stderr)
                return 2
            time.sleep(0.01)
        ts.sync_all().write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
