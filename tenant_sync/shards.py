"""One run split into shares: ``shard=(I, N)`` takes a stable share of the tenants.

A tenant's share is a hash of its database's name and its schema, so it does not depend
on the order tenants are discovered in, on which other tenants exist, nor on the machine:
``N`` runs with ``I`` = 0 … N-1 (a Kubernetes Indexed Job's ``JOB_COMPLETION_INDEX``, a
CI matrix) take every tenant exactly once between them.  A tenant's advisory lock keeps
two runs of one share (or of overlapping shares) from syncing it at once: the second
finds it done.
"""

from __future__ import annotations

import hashlib

from .errors import ConfigurationError

__all__ = ["Shard", "check_shard", "in_shard", "parse_shard", "share_of"]

#: ``(index, count)``: share ``index`` (from 0) of ``count`` shares.
Shard = tuple[int, int]


def share_of(database: str, schema: str, count: int) -> int:
    """The share (0 … ``count``-1) that the tenant ``schema`` of ``database`` falls in."""
    digest = hashlib.sha256(f"{database}\x00{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def in_shard(database: str, schema: str, shard: Shard | None) -> bool:
    """True when the tenant is in ``shard`` (always, with no shard)."""
    return shard is None or share_of(database, schema, shard[1]) == shard[0]


def parse_shard(text: str) -> Shard:
    """Read ``"I/N"`` (share I of N, I from 0), as ``--shard`` takes it.

    :raises ConfigurationError: not of that form, or I not below N.
    """
    index, slash, count = text.strip().partition("/")
    if not slash or not index.strip().isdigit() or not count.strip().isdigit():
        raise ConfigurationError(
            f"--shard takes I/N, share I (from 0) of N, e.g. 0/4, not {text!r}"
        )
    return check_shard((int(index), int(count)))


def check_shard(shard: object) -> Shard:
    """``shard`` checked: a pair of whole numbers with 0 <= I < N.

    :raises ConfigurationError: it is not.
    """
    if (
        not isinstance(shard, tuple)
        or len(shard) != 2
        or not all(isinstance(part, int) and not isinstance(part, bool) for part in shard)
    ):
        raise ConfigurationError(f"shard must be a pair (I, N) of whole numbers, not {shard!r}")
    index, count = shard
    if count < 1 or not 0 <= index < count:
        raise ConfigurationError(
            f"shard ({index}, {count}): N must be at least 1 and I from 0 to N-1"
        )
    return index, count
