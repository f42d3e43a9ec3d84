"""Raise the process's soft limit on open files to its hard limit, as Qdrant does at start.

A node holds files open for every segment of every collection (each segment is a RocksDB
database: SST files, WAL, MANIFEST, info LOG; docs/segments.md) besides its own WALs and
client sockets. Shells and service managers often start processes with a soft
RLIMIT_NOFILE of 1,024 under a far higher hard limit, which any unprivileged process may
raise its soft limit to. `pydrant serve` does so before opening any collection.
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger("pydrant.fdlimit")

# Used instead of an unlimited hard limit, which the soft limit cannot be set to
# (Linux caps open files at fs.nr_open, macOS at kern.maxfilesperproc).
UNLIMITED_TARGET = 1 << 20
MACOS_TARGET = 10_240  # OPEN_MAX: what macOS accepts for an unlimited hard limit


def raise_open_files_limit() -> tuple[int, int] | None:
    """Set the soft RLIMIT_NOFILE to the hard limit; (before, after), or None if unsupported.

    Never lowers the limit and never raises: a limit that cannot be changed is logged and
    left as it is.
    """
    try:
        import resource
    except ImportError:  # not a POSIX system
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:
        target = MACOS_TARGET if sys.platform == "darwin" else UNLIMITED_TARGET
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open files limit from %s to %s: %s", soft, target, exc)
            return soft, soft
        log.info("open files limit (RLIMIT_NOFILE) raised from %s to %s", soft, target)
        return soft, target
    log.info("open files limit (RLIMIT_NOFILE) is %s (hard limit %s)", _show(soft), _show(hard))
    return soft, soft


def _show(limit: int) -> str:
    import resource

    return "unlimited" if limit == resource.RLIM_INFINITY else str(limit)
