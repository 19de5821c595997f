"""Sync every ``tenant_%`` schema to model v2 in a process of its own (for the fault tests).

usage: python faults_sync.py URL REPORT_PATH [WORKERS]

When the run ends, writes its report (JSON) to REPORT_PATH and exits 0.  On Ctrl-C
(SIGINT) writes the report of what happened, from ``TenantSync.last_report``, and exits 130.
"""

from __future__ import annotations

import faulthandler
import signal
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    # Ctrl-C must raise KeyboardInterrupt even when started from a shell that ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # A test that finds this process hung asks it, with SIGUSR1, where every thread is.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/, for models
    from models import model_v2

    from tenant_sync import TenantSync

    url, report_path = argv[1], argv[2]
    workers = int(argv[3]) if len(argv) > 3 else 4
    with TenantSync(url, model_v2(), tenants="tenant_%", workers=workers) as ts:
        try:
            report = ts.sync_all()
        except KeyboardInterrupt:
            if ts.last_report is not None:
                ts.last_report.write(report_path)
            print("interrupted", flush=True)
            return 130
    report.write(report_path)
    print(report.summary(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
