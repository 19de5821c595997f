"""Writing the reports' files."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_text_atomically"]


def write_text_atomically(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` so that a reader never sees half of it; return the path.

    A regular file (or a new one) is written beside the target and renamed over it.  A
    path that exists and is not a regular file (``/dev/stdout``, a named pipe) is
    written to as it is: renaming over it would replace the device with a file.
    """
    target = Path(path)
    if target.exists() and not target.is_file():
        with target.open("w", encoding="utf-8") as stream:
            stream.write(text)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(target)
    return target
