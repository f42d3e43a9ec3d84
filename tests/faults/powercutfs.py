"""powercutfs: a FUSE filesystem for tests that loses exactly what a real disk may lose when
the power goes.

The durability model (ALICE / CrashMonkey style)
-----------------------------------------------
Every operation changes the *live* state at once, and every reader sees the live state
(the page cache). The *durable* state is what a reboot finds:

* File content (data and size) is per inode. Writes, truncates, fallocates and hole
  punches are queued on the inode as *unsynced content ops*; `fsync` and `fdatasync` on
  any descriptor of the inode apply them to the inode's durable content. Closing a file
  syncs nothing, neither does `sync_file_range`.
* Directory entries are per directory. create, mkdir, link, symlink, unlink, rmdir and
  rename are queued, in order, on one journal of unsynced *namespace ops*. `fsync` of a
  directory makes durable every queued op that touches that directory, plus every earlier
  op that touches a directory of an op made durable (the dependency closure), in order. So
  each directory's durable entries are always some past live state of it, and a rename
  between two directories is durable in both or in neither (no file ever has two durable
  names it did not have live, no directory two parents). fsync of a *file* does not make
  its own directory entry durable (POSIX does not promise that; ext4 happens to).
* A new inode's durable content is empty: a file whose entry became durable but whose
  content was never synced comes back empty (or with the content of its last sync).
  Inodes that no durable entry reaches are gone after the cut.
* Modes, owners and times are kept live = durable (nothing here depends on them).

Cutting the power (`cut(mode, seed)`) computes the state a reboot finds, saves it to the
state file and unmounts; mounting again with the same state file presents it as the new
live state. Modes:

* ``lose``: every unsynced op is lost.
* ``prefix``: the disk wrote queued data in order and stopped somewhere: each inode keeps a
  random prefix of its unsynced content ops, the last of them torn at a random byte, and
  the namespace journal keeps a random prefix of its ops.
* ``pages``: the disk wrote dirty 4 KiB pages in any order: each page an inode's unsynced
  ops changed is independently new or old, the size is the old or the new one (pages past
  the old size that were not written read as zeros); the namespace journal keeps a random
  prefix.

An *armed* cut (`arm(mode, seed, skip, path_contains)`) happens at the moment the disk is
busiest: when the (skip+1)-th fsync/fdatasync of a matching file arrives, before it makes
anything durable (it fails with EIO, as does every later operation). That lands a cut
between a WAL's write and its fdatasync, the moment a torn batch exists.

A clean unmount (`unmount()`) makes everything durable first, like a clean shutdown.

`python powercutfs.py --tree STATEFILE` lists what a cut left (sizes, no mount needed).

The filesystem runs in its own process (`python powercutfs.py MOUNTPOINT STATEFILE`): the
FUSE loop on the main thread (single-threaded), commands on stdin (``cut MODE SEED``,
``arm MODE SEED SKIP [PATH]``, ``sync``, ``stats``, ``umount``), one JSON answer line
each on stdout. The kernel keeps POSIX and flock locks itself (no `lock`/`flock` ops are
registered), which is what RocksDB's LOCK file needs. mmap reads work through the page
cache (no direct_io). A file unlinked while open can still be read, written, truncated and
synced through its descriptor, but `fstat` on it fails with ESTALE (libfuse's high-level
API has no path for it; pydrant and RocksDB do not do that).
`PowerCutFS` below drives that process from a test; `unavailable_reason()` says why FUSE
cannot be used here, if it cannot.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import pickle
import random
import shutil
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

PAGE = 4096
ROOT = 1

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02


class FsError(OSError):
    def __init__(self, code: int):
        super().__init__(code, os.strerror(code))


# --------------------------------------------------------------------------------------
# The model (pure Python, no FUSE): usable and testable on its own.
# --------------------------------------------------------------------------------------


def apply_content_op(buf: bytearray, op: tuple) -> None:
    """Apply one content op to `buf` in place: ("w", offset, data) | ("t", size) | ("x", size)
    (extend to at least size)."""
    kind = op[0]
    if kind == "w":
        offset, data = op[1], op[2]
        end = offset + len(data)
        if end > len(buf):
            buf.extend(bytes(end - len(buf)))
        buf[offset:end] = data
    elif kind == "t":
        size = op[1]
        if size < len(buf):
            del buf[size:]
        else:
            buf.extend(bytes(size - len(buf)))
    elif kind == "x":
        if op[1] > len(buf):
            buf.extend(bytes(op[1] - len(buf)))
    else:  # pragma: no cover
        raise ValueError(op)


class Inode:
    __slots__ = ("ino", "kind", "mode", "data", "durable", "pending", "entries", "target", "nlink", "mtime_ns", "ctime_ns")

    def __init__(self, ino: int, kind: str, mode: int):
        self.ino = ino
        self.kind = kind  # "f" file, "d" directory, "l" symlink
        self.mode = mode
        self.data = bytearray()  # live content (files)
        self.durable = bytearray()  # durable content (files)
        self.pending: list[tuple] = []  # unsynced content ops, oldest first
        self.entries: dict[str, int] = {}  # live entries (directories)
        self.target = ""  # symlinks (durable with their entry)
        self.nlink = 0
        self.mtime_ns = self.ctime_ns = time.time_ns()


class Model:
    """Live state + durable state of one filesystem (see the module docstring)."""

    def __init__(self, state: dict | None = None):
        self.inodes: dict[int, Inode] = {}
        self.durable_entries: dict[int, dict[str, int]] = {}  # dir ino -> durable entries
        self.journal: list[tuple] = []  # unsynced namespace ops, oldest first
        self.handles: dict[int, int] = {}  # fh -> ino
        self.next_fh = 1
        self.frozen = False  # after a cut: every op fails with EIO
        self.stats = {"writes": 0, "bytes_written": 0, "fsyncs": 0, "dir_fsyncs": 0, "cuts": 0}
        if state is None:
            root = Inode(ROOT, "d", stat.S_IFDIR | 0o755)
            root.nlink = 2
            self.inodes[ROOT] = root
            self.durable_entries[ROOT] = {}
            self.next_ino = ROOT + 1
        else:
            self._load(state)

    # ---- state files --------------------------------------------------------------

    def _load(self, state: dict) -> None:
        self.next_ino = state["next_ino"]
        for ino, (kind, mode, value) in state["inodes"].items():
            node = Inode(ino, kind, mode)
            if kind == "f":
                node.data = bytearray(value)
                node.durable = bytearray(value)
            elif kind == "d":
                node.entries = dict(value)
                self.durable_entries[ino] = dict(value)
            else:
                node.target = value
            self.inodes[ino] = node
        for node in self.inodes.values():
            if node.kind == "d":
                node.nlink += 2
                for child in node.entries.values():
                    child_node = self.inodes[child]
                    child_node.nlink += 1 if child_node.kind != "d" else 0
                    if child_node.kind == "d":
                        node.nlink += 1

    def durable_state(self, mode: str = "lose", rng: random.Random | None = None) -> dict:
        """The state a reboot finds if the power is cut now (module docstring), as a
        picklable dict of only the inodes that durable entries reach from the root."""
        rng = rng or random.Random()
        entries = {ino: dict(e) for ino, e in self.durable_entries.items()}
        if mode != "lose" and self.journal:
            keep = rng.randint(0, len(self.journal))
            for op, _dirs in self.journal[:keep]:
                self._apply_namespace_op(entries, op)
        inodes: dict[int, tuple] = {}
        stack, seen = [ROOT], set()
        while stack:
            ino = stack.pop()
            if ino in seen or ino not in self.inodes:
                continue
            seen.add(ino)
            node = self.inodes[ino]
            if node.kind == "d":
                mine = {name: child for name, child in entries.get(ino, {}).items() if child in self.inodes}
                inodes[ino] = ("d", node.mode, mine)
                stack.extend(mine.values())
            elif node.kind == "l":
                inodes[ino] = ("l", node.mode, node.target)
            else:
                inodes[ino] = ("f", node.mode, self._durable_content(node, mode, rng))
        return {"next_ino": self.next_ino, "inodes": inodes}

    def _durable_content(self, node: Inode, mode: str, rng: random.Random) -> bytes:
        if not node.pending or mode == "lose":
            return bytes(node.durable)
        if mode == "prefix":
            buf = bytearray(node.durable)
            keep = rng.randint(0, len(node.pending))
            for i, op in enumerate(node.pending[:keep]):
                if i == keep - 1 and op[0] == "w" and len(op[2]) > 1 and rng.random() < 0.75:
                    op = ("w", op[1], op[2][: rng.randrange(len(op[2]))])  # torn at a random byte
                apply_content_op(buf, op)
            return bytes(buf)
        if mode == "pages":
            old, new = node.durable, node.data
            size = rng.choice((len(old), len(new)))
            out = bytearray(size)
            for start in range(0, size, PAGE):
                stop = min(start + PAGE, size)
                old_page = old[start:stop].ljust(stop - start, b"\0")
                new_page = new[start:stop].ljust(stop - start, b"\0")
                out[start:stop] = new_page if old_page != new_page and rng.random() < 0.5 else old_page
            return bytes(out)
        raise ValueError(f"unknown cut mode {mode!r}")

    @staticmethod
    def _apply_namespace_op(entries: dict[int, dict[str, int]], op: tuple) -> None:
        kind = op[0]
        if kind == "link":
            _, parent, name, ino = op
            entries.setdefault(parent, {})[name] = ino
        elif kind == "unlink":
            _, parent, name, ino = op
            if entries.setdefault(parent, {}).get(name) == ino:
                del entries[parent][name]
        elif kind == "rename":
            _, sparent, sname, dparent, dname, ino = op
            if entries.setdefault(sparent, {}).get(sname) == ino:
                del entries[sparent][sname]
            entries.setdefault(dparent, {})[dname] = ino
        elif kind == "exchange":
            _, sparent, sname, dparent, dname, sino, dino = op
            entries.setdefault(sparent, {})[sname] = dino
            entries.setdefault(dparent, {})[dname] = sino
        else:  # pragma: no cover
            raise ValueError(op)

    # ---- durability ops -----------------------------------------------------------

    def fsync_inode(self, ino: int) -> None:
        node = self.inodes[ino]
        if node.kind == "d":
            self.fsync_dir(ino)
            return
        self.stats["fsyncs"] += 1
        for op in node.pending:
            apply_content_op(node.durable, op)
        node.pending.clear()

    def fsync_dir(self, ino: int) -> None:
        """Make durable every journal op touching `ino`, with the ops they depend on."""
        self.stats["dir_fsyncs"] += 1
        touched = {ino}
        chosen = [False] * len(self.journal)
        for i in range(len(self.journal) - 1, -1, -1):  # latest first: earlier ops join the closure
            dirs = self.journal[i][-1]
            if touched & dirs:
                chosen[i] = True
                touched |= dirs
        keep = []
        for i, entry in enumerate(self.journal):
            if chosen[i]:
                self._apply_namespace_op(self.durable_entries, entry[0])
            else:
                keep.append(entry)
        self.journal = keep

    def sync_all(self) -> None:
        for node in self.inodes.values():
            if node.kind == "f" and node.pending:
                self.fsync_inode(node.ino)
        for entry in self.journal:
            self._apply_namespace_op(self.durable_entries, entry[0])
        self.journal.clear()

    def _log(self, op: tuple, *dirs: int) -> None:
        self.journal.append((op, frozenset(dirs)))

    # ---- namespace ----------------------------------------------------------------

    def check(self) -> None:
        if self.frozen:
            raise FsError(errno.EIO)

    def lookup(self, path: str) -> Inode:
        node = self.inodes[ROOT]
        for part in path.split("/"):
            if not part:
                continue
            if node.kind != "d":
                raise FsError(errno.ENOTDIR)
            child = node.entries.get(part)
            if child is None:
                raise FsError(errno.ENOENT)
            node = self.inodes[child]
        return node

    def parent_of(self, path: str) -> tuple[Inode, str]:
        head, _, name = path.rstrip("/").rpartition("/")
        parent = self.lookup(head or "/")
        if parent.kind != "d":
            raise FsError(errno.ENOTDIR)
        if not name:
            raise FsError(errno.EINVAL)
        return parent, name

    def new_inode(self, kind: str, mode: int) -> Inode:
        node = Inode(self.next_ino, kind, mode)
        self.next_ino += 1
        self.inodes[node.ino] = node
        if kind == "d":
            self.durable_entries[node.ino] = {}
        return node

    def add_entry(self, path: str, kind: str, mode: int) -> Inode:
        self.check()
        parent, name = self.parent_of(path)
        if name in parent.entries:
            raise FsError(errno.EEXIST)
        node = self.new_inode(kind, mode)
        parent.entries[name] = node.ino
        if kind == "d":
            node.nlink = 2
            parent.nlink += 1
        else:
            node.nlink = 1
        parent.mtime_ns = time.time_ns()
        self._log(("link", parent.ino, name, node.ino), parent.ino)
        return node

    def link(self, new_path: str, existing: str) -> None:
        self.check()
        node = self.lookup(existing)
        if node.kind == "d":
            raise FsError(errno.EPERM)
        parent, name = self.parent_of(new_path)
        if name in parent.entries:
            raise FsError(errno.EEXIST)
        parent.entries[name] = node.ino
        node.nlink += 1
        self._log(("link", parent.ino, name, node.ino), parent.ino)

    def remove(self, path: str, want_dir: bool) -> None:
        self.check()
        parent, name = self.parent_of(path)
        ino = parent.entries.get(name)
        if ino is None:
            raise FsError(errno.ENOENT)
        node = self.inodes[ino]
        if want_dir:
            if node.kind != "d":
                raise FsError(errno.ENOTDIR)
            if node.entries:
                raise FsError(errno.ENOTEMPTY)
            parent.nlink -= 1
            node.nlink = 0
        else:
            if node.kind == "d":
                raise FsError(errno.EISDIR)
            node.nlink -= 1
        del parent.entries[name]
        self._log(("unlink", parent.ino, name, ino), parent.ino)
        self._maybe_forget(node)

    def rename(self, old: str, new: str, flags: int = 0) -> None:
        self.check()
        sparent, sname = self.parent_of(old)
        dparent, dname = self.parent_of(new)
        sino = sparent.entries.get(sname)
        if sino is None:
            raise FsError(errno.ENOENT)
        node = self.inodes[sino]
        dino = dparent.entries.get(dname)
        if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE):
            raise FsError(errno.EINVAL)
        if flags & RENAME_EXCHANGE:
            if dino is None:
                raise FsError(errno.ENOENT)
            sparent.entries[sname], dparent.entries[dname] = dino, sino
            self._log(("exchange", sparent.ino, sname, dparent.ino, dname, sino, dino), sparent.ino, dparent.ino)
            return
        if dino == sino:
            return
        if node.kind == "d":  # no directory into its own subtree
            probe = new.rstrip("/") + "/"
            if probe.startswith(old.rstrip("/") + "/"):
                raise FsError(errno.EINVAL)
        if dino is not None:
            if flags & RENAME_NOREPLACE:
                raise FsError(errno.EEXIST)
            target = self.inodes[dino]
            if target.kind == "d":
                if node.kind != "d":
                    raise FsError(errno.EISDIR)
                if target.entries:
                    raise FsError(errno.ENOTEMPTY)
                target.nlink = 0
                dparent.nlink -= 1
            else:
                if node.kind == "d":
                    raise FsError(errno.ENOTDIR)
                target.nlink -= 1
        del sparent.entries[sname]
        dparent.entries[dname] = sino
        if node.kind == "d" and sparent is not dparent:
            sparent.nlink -= 1
            dparent.nlink += 1
        self._log(("rename", sparent.ino, sname, dparent.ino, dname, sino), sparent.ino, dparent.ino)
        if dino is not None:
            self._maybe_forget(self.inodes[dino])

    def _maybe_forget(self, node: Inode) -> None:
        """Drop the live bytes of an unlinked, unopened file early; the durable copy and
        the unsynced ops stay (an entry to it may still be durable)."""
        if node.nlink <= 0 and node.kind == "f" and node.ino not in self.handles.values():
            node.data = bytearray()

    # ---- files --------------------------------------------------------------------

    def open_handle(self, ino: int) -> int:
        self.check()
        fh = self.next_fh
        self.next_fh += 1
        self.handles[fh] = ino
        return fh

    def release(self, fh: int) -> None:
        ino = self.handles.pop(fh, None)
        if ino is not None and ino in self.inodes:
            self._maybe_forget(self.inodes[ino])

    def node_of(self, path: str | None, fh: int | None) -> Inode:
        if fh is not None and fh in self.handles:
            return self.inodes[self.handles[fh]]
        if path is None:
            raise FsError(errno.EBADF)
        return self.lookup(path)

    def content_op(self, node: Inode, op: tuple) -> None:
        self.check()
        if node.kind != "f":
            raise FsError(errno.EISDIR)
        apply_content_op(node.data, op)
        node.pending.append(op)
        node.mtime_ns = time.time_ns()

    def write(self, node: Inode, data: bytes, offset: int) -> int:
        self.stats["writes"] += 1
        self.stats["bytes_written"] += len(data)
        self.content_op(node, ("w", offset, bytes(data)))
        return len(data)

    def read(self, node: Inode, size: int, offset: int) -> bytes:
        self.check()
        return bytes(node.data[offset : offset + size])

    def fallocate(self, node: Inode, mode: int, offset: int, length: int) -> None:
        if mode == 0:
            self.content_op(node, ("x", offset + length))
        elif mode == FALLOC_FL_KEEP_SIZE:
            self.check()  # reserves blocks only: nothing visible changes
        elif mode == FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE:
            stop = min(offset + length, len(node.data))
            if stop > offset:
                self.content_op(node, ("w", offset, bytes(stop - offset)))
        else:
            raise FsError(errno.EOPNOTSUPP)


# --------------------------------------------------------------------------------------
# The FUSE process
# --------------------------------------------------------------------------------------


def _fuse_main(mountpoint: str, state_file: str) -> int:
    import mfusepy

    state = None
    if os.path.exists(state_file):
        with open(state_file, "rb") as f:
            state = pickle.load(f)
    model = Model(state)
    lock = threading.Lock()
    out = sys.stdout
    uid, gid = os.getuid(), os.getgid()

    def reply(obj) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    def locked(method):
        @functools.wraps(method)
        def run(*args, **kwargs):
            with lock:
                try:
                    return method(*args, **kwargs)
                except FsError as exc:
                    raise mfusepy.FuseOSError(exc.errno) from None

        return run

    class Ops(mfusepy.Operations):
        use_ns = True

        def init(self, path):
            reply({"ready": True, "pid": os.getpid()})

        @locked
        def getattr(self, path, fh=None):
            node = model.node_of(path, fh)
            if node.kind == "d":
                fmt, size = stat.S_IFDIR, PAGE
            elif node.kind == "l":
                fmt, size = stat.S_IFLNK, len(node.target.encode())
            else:
                fmt, size = stat.S_IFREG, len(node.data)
            return {
                "st_mode": fmt | (node.mode & 0o7777),
                "st_ino": node.ino,
                "st_nlink": max(node.nlink, 0),
                "st_size": size,
                "st_blocks": (size + 511) // 512,
                "st_blksize": PAGE,
                "st_uid": uid,
                "st_gid": gid,
                "st_atime": node.mtime_ns,
                "st_mtime": node.mtime_ns,
                "st_ctime": node.ctime_ns,
            }

        @locked
        def readdir(self, path, fh):
            node = model.node_of(path, fh)
            if node.kind != "d":
                raise FsError(errno.ENOTDIR)
            # with use_ino an entry must carry its inode number: d_ino 0 reads as "no entry"
            kinds = {"d": stat.S_IFDIR, "f": stat.S_IFREG, "l": stat.S_IFLNK}
            parent = node.ino  # '..' is not tracked; any non-zero number will do
            items = [(".", {"st_mode": stat.S_IFDIR, "st_ino": node.ino}, 0),
                     ("..", {"st_mode": stat.S_IFDIR, "st_ino": parent}, 0)]
            for name, ino in node.entries.items():
                items.append((name, {"st_mode": kinds[model.inodes[ino].kind], "st_ino": ino}, 0))
            return items

        @locked
        def opendir(self, path):
            node = model.lookup(path)
            if node.kind != "d":
                raise FsError(errno.ENOTDIR)
            return model.open_handle(node.ino)

        @locked
        def releasedir(self, path, fh):
            model.release(fh)
            return 0

        @locked
        def fsyncdir(self, path, datasync, fh):
            model.check()
            node = model.node_of(path, fh)
            model.fsync_dir(node.ino)
            return 0

        @locked
        def mkdir(self, path, mode):
            model.add_entry(path, "d", stat.S_IFDIR | (mode & 0o7777))
            return 0

        @locked
        def rmdir(self, path):
            model.remove(path, want_dir=True)
            return 0

        @locked
        def unlink(self, path):
            model.remove(path, want_dir=False)
            return 0

        @locked
        def rename(self, old, new, flags=0):
            model.rename(old, new, flags)
            return 0

        @locked
        def link(self, target, source):
            model.link(target, source)
            return 0

        @locked
        def symlink(self, target, source):
            node = model.add_entry(target, "l", stat.S_IFLNK | 0o777)
            node.target = source
            return 0

        @locked
        def readlink(self, path):
            node = model.lookup(path)
            if node.kind != "l":
                raise FsError(errno.EINVAL)
            return node.target

        @locked
        def create(self, path, mode, flags=0):
            node = model.add_entry(path, "f", stat.S_IFREG | (mode & 0o7777))
            return model.open_handle(node.ino)

        @locked
        def open(self, path, flags):
            node = model.lookup(path)
            if node.kind == "d" and flags & (os.O_WRONLY | os.O_RDWR):
                raise FsError(errno.EISDIR)
            return model.open_handle(node.ino)

        @locked
        def release(self, path, fh):
            model.release(fh)
            return 0

        @locked
        def flush(self, path, fh):
            return 0  # close() makes nothing durable

        @locked
        def read(self, path, size, offset, fh):
            return model.read(model.node_of(path, fh), size, offset)

        @locked
        def write(self, path, data, offset, fh):
            return model.write(model.node_of(path, fh), data, offset)

        @locked
        def truncate(self, path, length, fh=None):
            model.content_op(model.node_of(path, fh), ("t", length))
            return 0

        @locked
        def fallocate(self, path, mode, offset, size, fh):
            model.fallocate(model.node_of(path, fh), mode, offset, size)
            return 0

        @locked
        def fsync(self, path, datasync, fh):
            model.check()
            if armed and armed["path"] in (path or ""):
                if armed["skip"] <= 0:  # the power goes while this fsync waits for the disk
                    # frozen, not unmounted: the test kills the users, then `cut` unmounts
                    cut_locked(armed["mode"], armed["seed"], f"fsync of {path}")
                    raise FsError(errno.EIO)
                armed["skip"] -= 1
            model.fsync_inode(model.node_of(path, fh).ino)
            return 0

        @locked
        def chmod(self, path, mode):
            node = model.lookup(path)
            node.mode = (node.mode & ~0o7777) | (mode & 0o7777)
            return 0

        @locked
        def chown(self, path, uid_, gid_):
            model.lookup(path)
            return 0

        @locked
        def utimens(self, path, times=None):
            node = model.lookup(path)
            node.mtime_ns = times[1] if times else time.time_ns()
            return 0

        def statfs(self, path):
            return {"f_bsize": PAGE, "f_frsize": PAGE, "f_blocks": 1 << 24, "f_bfree": 1 << 23,
                    "f_bavail": 1 << 23, "f_files": 1 << 20, "f_ffree": 1 << 19, "f_namemax": 255}

    class Fuse(mfusepy.FUSE):
        def rename_fuse_3(self, old, new, flags):  # mfusepy drops renameat2 flags: keep them
            return self.operations.rename(old.decode(), new.decode(), flags)

        def truncate_fuse_3(self, path, length, fip):  # and ftruncate's handle (unlinked files)
            fh = fip.contents.fh if fip else None
            return self.operations.truncate(None if path is None else path.decode(), length, fh)

    armed: dict = {}  # an armed cut: mode, seed, skip (fsyncs to let through), path filter
    last_cut: dict = {}

    def cut_locked(mode: str, seed: int | None, trigger: str) -> dict:
        """Cut the power now (the caller holds the lock): save the durable state, freeze."""
        info = {"mode": mode, "seed": seed, "trigger": trigger, "time": time.time(),
                "unsynced_files": sum(1 for n in model.inodes.values() if n.pending),
                "unsynced_dir_ops": len(model.journal)}
        state = model.durable_state(mode, random.Random(seed))
        model.frozen = True  # the power is off: nothing changes any more
        model.stats["cuts"] += 1
        save(state)
        info["files"] = sum(1 for v in state["inodes"].values() if v[0] == "f")
        armed.clear()
        last_cut.update(info)
        return info

    def save(state: dict) -> None:
        tmp = state_file + ".tmp"
        with open(tmp, "wb") as f:
            pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, state_file)

    def unmount_soon() -> None:
        threading.Thread(target=_unmount, args=(mountpoint,), daemon=True).start()

    def control() -> None:
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            try:
                if words[0] == "cut":
                    mode = words[1] if len(words) > 1 else "lose"
                    seed = int(words[2]) if len(words) > 2 else None
                    with lock:
                        info = dict(last_cut) if model.frozen else cut_locked(mode, seed, "command")
                    reply({"ok": True, **info})
                    unmount_soon()
                elif words[0] == "arm":  # arm MODE SEED SKIP [PATH_SUBSTRING]
                    with lock:
                        armed.update(mode=words[1], seed=int(words[2]), skip=int(words[3]),
                                     path=words[4] if len(words) > 4 else "")
                    reply({"ok": True})
                elif words[0] == "sync":
                    with lock:
                        model.sync_all()
                    reply({"ok": True})
                elif words[0] == "stats":
                    with lock:
                        reply({"ok": True, **model.stats, "inodes": len(model.inodes),
                               "cut": dict(last_cut) or None,
                               "unsynced_files": sum(1 for n in model.inodes.values() if n.pending),
                               "unsynced_dir_ops": len(model.journal)})
                elif words[0] == "umount":  # clean shutdown: everything durable
                    with lock:
                        if not model.frozen:
                            model.sync_all()
                            save(model.durable_state("lose"))
                            model.frozen = True
                    reply({"ok": True})
                    unmount_soon()
                else:
                    reply({"ok": False, "error": f"unknown command {words[0]!r}"})
            except Exception as exc:  # keep the FS alive; tell the test
                reply({"ok": False, "error": repr(exc)})
        # stdin closed: the test went away without unmounting
        unmount_soon()

    threading.Thread(target=control, daemon=True).start()
    Fuse(Ops(), mountpoint, foreground=True, nothreads=True, hard_remove=True, use_ino=True,
         fsname="powercutfs", subtype="powercutfs")
    return 0


def _unmount(mountpoint: str) -> None:
    for cmd in (["fusermount3", "-u", "-z", mountpoint], ["fusermount", "-u", "-z", mountpoint], ["umount", "-l", mountpoint]):
        if shutil.which(cmd[0]) is None:
            continue
        if subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
            return


# --------------------------------------------------------------------------------------
# The test side
# --------------------------------------------------------------------------------------


class FuseUnavailable(RuntimeError):
    pass


def unavailable_reason() -> str | None:
    """None if a powercutfs can probably be mounted here, else why not."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    try:
        import mfusepy  # noqa: F401  (loads libfuse: fails without the system library)
    except Exception as exc:  # ImportError, OSError, EnvironmentError from the ctypes loader
        return f"FUSE binding mfusepy not importable: {exc!r}"
    if not any(shutil.which(c) for c in ("fusermount3", "fusermount", "umount")):
        return "no fusermount3/fusermount/umount to unmount with"
    return None


class PowerCutFS:
    """A powercutfs mounted at `mountpoint` whose durable state lives in `state_file`
    between mounts. mount() -> ... -> cut() -> mount() -> ... -> unmount()."""

    def __init__(self, mountpoint: Path | str, state_file: Path | str, log_file: Path | str | None = None):
        self.mountpoint = Path(mountpoint)
        self.state_file = Path(state_file)
        self.log_file = Path(log_file) if log_file else self.state_file.with_suffix(".log")
        self.proc: subprocess.Popen | None = None

    @property
    def mounted(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def mount(self, timeout: float = 20.0) -> PowerCutFS:
        if self.mounted:
            raise RuntimeError("already mounted")
        reason = unavailable_reason()
        if reason:
            raise FuseUnavailable(reason)
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        log = open(self.log_file, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, __file__, str(self.mountpoint), str(self.state_file)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1,
        )
        log.close()
        answer = self._read_answer(timeout)
        if answer is None or not answer.get("ready"):
            self._reap()
            raise FuseUnavailable(f"powercutfs did not mount: {answer!r}; {self._log_tail()}")
        deadline = time.monotonic() + timeout
        while not os.path.ismount(self.mountpoint):
            if time.monotonic() > deadline or not self.mounted:
                self._reap()
                raise FuseUnavailable(f"mount point never appeared; {self._log_tail()}")
            time.sleep(0.01)
        return self

    def cut(self, mode: str = "lose", seed: int | None = None, wait: bool = True) -> dict:
        """Cut the power: keep only the durable state (module docstring), unmount. From the
        cut on every operation on the mount fails with EIO. The unmount completes when no
        process has a file open on the mount any more: SIGKILL the users first, or pass
        wait=False, close your files and call wait_unmounted()."""
        answer = self._command(f"cut {mode} {seed if seed is not None else random.randrange(2**32)}")
        if wait:
            self.wait_unmounted()
        return answer

    def wait_unmounted(self, timeout: float = 20.0) -> None:
        self._wait_gone(timeout)

    def arm(self, mode: str, seed: int, skip: int = 0, path_contains: str = "") -> None:
        """Cut the power at a moment the disk is busy: when the (skip+1)-th fsync or
        fdatasync of a file whose path contains `path_contains` arrives, before it makes
        anything durable. That fsync fails with EIO, and so does every later operation.
        Poll with cut_happened(); then kill the users and call cut() (which answers with
        that cut's details and unmounts)."""
        if " " in path_contains or "\n" in path_contains:
            raise ValueError("path_contains may not hold spaces")
        self._command(f"arm {mode} {seed} {skip} {path_contains}".rstrip())

    def cut_happened(self) -> dict | None:
        """The details of the cut once one happened (armed or commanded), else None."""
        return self.stats().get("cut")

    def sync(self) -> dict:
        return self._command("sync")

    def stats(self) -> dict:
        return self._command("stats")

    def unmount(self) -> None:
        """Clean unmount: everything written so far becomes durable."""
        if self.mounted:
            try:
                self._command("umount")
            except RuntimeError:
                pass
            self._wait_gone()

    def __enter__(self) -> PowerCutFS:
        return self.mount()

    def __exit__(self, *exc) -> None:
        self.unmount()

    # ---- helpers ------------------------------------------------------------------

    def _command(self, line: str, timeout: float = 60.0) -> dict:
        if not self.mounted:
            raise RuntimeError("powercutfs is not running")
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self._read_answer(timeout)
        if not answer or not answer.get("ok"):
            raise RuntimeError(f"powercutfs {line!r} failed: {answer!r}; {self._log_tail()}")
        return answer

    def _read_answer(self, timeout: float) -> dict | None:
        result: list = []
        reader = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not result or not result[0]:
            return None
        return json.loads(result[0])

    def _wait_gone(self, timeout: float = 20.0) -> None:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _unmount(str(self.mountpoint))
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reap()

    def _reap(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
        if os.path.ismount(self.mountpoint):
            _unmount(str(self.mountpoint))

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def tree(state_file: Path | str) -> list[str]:
    """The paths of a saved state with their sizes (files) or a trailing / (directories),
    for looking at what a cut left without mounting it."""
    with open(state_file, "rb") as f:
        inodes = pickle.load(f)["inodes"]
    lines: list[str] = []

    def walk(ino: int, prefix: str) -> None:
        for name, child in sorted(inodes[ino][2].items()):
            kind, _mode, value = inodes[child]
            if kind == "d":
                lines.append(f"{prefix}{name}/")
                walk(child, f"{prefix}{name}/")
            elif kind == "l":
                lines.append(f"{prefix}{name} -> {value}")
            else:
                lines.append(f"{prefix}{name} {len(value)}")

    walk(ROOT, "/")
    return lines


if __name__ == "__main__":
    if sys.argv[1] == "--tree":  # python powercutfs.py --tree STATEFILE
        print("\n".join(tree(sys.argv[2])))
        sys.exit(0)
    sys.exit(_fuse_main(sys.argv[1], sys.argv[2]))
