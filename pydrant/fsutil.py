"""Durable-file helpers (ground floor: segments, collection and storage use them).

Crash-safe file switches: write a temporary file, fsync it, rename it over the target,
fsync the directory. A crash at any moment leaves either the old or the new content."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import orjson


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` by `data`. Raises if any step fails, and then `path` still holds the
    old content or the new one, whole (never empty); no temporary file is left behind.

    The temporary name is unique per call: two writers of the same file (two PATCH
    requests) must not write into one temporary and rename a mix of both."""
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(path.parent)


def write_json_atomic(path: Path, value) -> None:
    write_atomic(path, orjson.dumps(value, option=orjson.OPT_INDENT_2))


def read_json(path: Path):
    return orjson.loads(path.read_bytes())


def mkdir_durable(path: Path) -> None:
    """`mkdir -p` whose new directories survive a power cut: after each directory it
    creates, its parent is fsynced (a new entry is durable only once its directory is)."""
    missing = []
    current = Path(path)
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        directory.mkdir(exist_ok=True)
        fsync_dir(directory.parent)


def fsync_file(path: Path | str) -> None:
    """fsync one existing file's content (opened read-only: fsync needs no write access)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """fsync every file under `root`, then each directory (its own entries), so a power
    cut loses none of them once this returns. Nothing happens when `root` does not exist."""
    if not root.exists():
        return
    for directory, _dirs, files in os.walk(root):
        for file_name in files:
            fsync_file(os.path.join(directory, file_name))
        fsync_dir(Path(directory))
