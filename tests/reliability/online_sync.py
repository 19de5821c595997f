"""Sync every ``tenant_%`` schema to the online model's v2, every table online, in a
process of its own (for the kill tests).

usage: python online_sync.py URL REPORT_PATH
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/, for the model
    from online_models import events_model

    from tenant_sync import TenantSync

    url, report_path = argv[1], argv[2]
    with TenantSync(url, events_model(True), tenants="tenant_%", online="always") as ts:
        report = ts.sync_all()
    report.write(report_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
