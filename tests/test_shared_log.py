"""Four processes share one rotating log file: no line lost, none interleaved, order kept."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

PROCESSES = 4
LINES = 400
MAX_BYTES = 16 * 1024  # about 120 lines a file: 13 files or so
BACKUP_COUNT = 200  # more than will ever be needed: no file is deleted

# Each writer logs its numbered lines as soon as the "go" file appears, so all four overlap.
_WRITER = """
import logging, sys, time
from pathlib import Path
from tenant_sync import add_shared_log_file
path, worker, count, go, max_bytes, backup_count = sys.argv[1:]
add_shared_log_file(path, max_bytes=int(max_bytes), backup_count=int(backup_count))
log = logging.getLogger("tenant_sync.shared_log_test")
print("ready", flush=True)
while not Path(go).exists():
    time.sleep(0.005)
for number in range(int(count)):
    log.info("worker=%s line=%05d %s end", worker, number, "x" * 60)
"""

LINE = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \d+ INFO tenant_sync\.shared_log_test: "
    r"worker=(\d) line=(\d{5}) x{60} end"
)


def _log_files(path: Path) -> list[Path]:
    """The base file and its backups, oldest first (``sync.log.N`` is the oldest)."""
    backups = sorted(
        (p for p in path.parent.glob(path.name + ".*") if p.suffix[1:].isdigit()),
        key=lambda p: int(p.suffix[1:]),
        reverse=True,
    )
    return [*backups, path]


def test_four_processes_share_one_rotating_log_file_without_losing_or_mixing_lines(
    tmp_path: Path,
) -> None:
    path = tmp_path / "logs" / "sync.log"
    go = tmp_path / "go"
    settings = [str(LINES), str(go), str(MAX_BYTES), str(BACKUP_COUNT)]
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), str(worker), *settings],
            stdout=subprocess.PIPE,
            text=True,
        )
        for worker in range(PROCESSES)
    ]
    try:
        for writer in writers:
            assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
        go.touch()
        deadline = time.monotonic() + 120
        for writer in writers:
            assert writer.wait(max(deadline - time.monotonic(), 0.1)) == 0
    finally:
        for writer in writers:
            writer.kill()
            writer.wait(10)
            if writer.stdout is not None:
                writer.stdout.close()

    files = _log_files(path)
    assert 4 <= len(files) <= BACKUP_COUNT, f"expected several rotations, got {len(files)} files"
    seen: Counter[tuple[int, int]] = Counter()
    last_line = dict.fromkeys(range(PROCESSES), -1)
    for file in files:
        for text in file.read_text(encoding="utf-8").splitlines():
            match = LINE.fullmatch(text)
            assert match, f"damaged or interleaved line in {file.name}: {text!r}"
            worker, number = int(match.group(1)), int(match.group(2))
            seen[worker, number] += 1
            assert number > last_line[worker], f"worker {worker}: line {number} out of order"
            last_line[worker] = number
    assert set(seen) == {(w, n) for w in range(PROCESSES) for n in range(LINES)}, "lines lost"
    assert set(seen.values()) == {1}, "lines duplicated"
