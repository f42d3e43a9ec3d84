"""Offline snapshot tools: `pydrant snapshot inspect|verify|restore` (docs/snapshots.md "Tools").

They work on a snapshot file alone, with no server: `inspect` describes it, `verify`
checks it as recovery would (and more), `restore` puts it into the storage directory of a
stopped server. The tar is read through the same checks recovery uses
(`collection/snapshots.py`: `checked_members`, `extract`, `unpack`, `validate_loadable`);
the snapshot file itself is never written. Long passes (checksum, reading the tar,
extracting it) report their bytes on stderr when stderr is a terminal, or always with
`--progress`.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import IO, cast

from pydrant.collection import snapshots
from pydrant.collection.collection import CONFIG_FILE, MANIFEST_FILE, SEGMENTS_DIR
from pydrant.collection.config import vector_schema
from pydrant.collection.sharded import SHARDS_DIR, SHARDS_FILE, is_sharded
from pydrant.errors import BadInput, ServiceError, ValidationFailed
from pydrant.fsutil import fsync_dir, mkdir_durable, read_json
from pydrant.segments.open import open_segment
from pydrant.storage.names import validate_name
from pydrant.storage import full_snapshots
from pydrant.storage.toc import COLLECTIONS_DIR, PENDING_DIR, exchange_directories
from pydrant.wal import codec

EXIT_OK = 0
EXIT_PROBLEM = 1
MAX_META_BYTES = 1 << 20  # snapshot.json is a few hundred bytes


class Problem(Exception):
    """A snapshot that fails a check; the message is one line."""


def _reason(exc: BaseException) -> str:
    text = str(exc).removeprefix("Wrong input: ")
    return " ".join(text.split())


# -- progress -------------------------------------------------------------------------------


class Progress:
    """`label: 12.0 / 340.5 MiB` on stderr, rewritten in place at most 10 times a second;
    silent when stderr is not a terminal, unless `Progress.force` (`--progress`)."""

    force = False  # set by the commands' --progress option

    def __init__(self, label: str, total: int, stream: IO[str] | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = Progress.force or bool(getattr(self.stream, "isatty", lambda: False)())
        self.label = label
        self.total = total
        self._last = 0.0
        self._shown = False

    def update(self, done: int, total: int | None = None) -> None:
        """`done` bytes of `total` (of the total given at construction if None); fits the
        `progress(done, total)` callback of `snapshots.extract` / `unpack`."""
        if total is not None:
            self.total = total
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and done < self.total:
            return
        self._last = now
        self._shown = True
        mib = 1 << 20
        self.stream.write(f"\r{self.label}: {done / mib:.1f} / {self.total / mib:.1f} MiB")
        self.stream.flush()

    def done(self) -> None:
        """End the progress line (once; a second call writes nothing)."""
        if self.enabled and self._shown:
            self._shown = False
            self.stream.write("\n")
            self.stream.flush()


class _CountingReader(io.RawIOBase):
    """A read-only, seekable view of a file that reports its position to a Progress."""

    def __init__(self, raw: IO[bytes], progress: Progress):
        self._raw = raw
        self._progress = progress

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._progress.update(self._raw.tell())
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()


# -- checks ---------------------------------------------------------------------------------


def checksum_file(path: Path) -> Path:
    return path.with_name(path.name + snapshots.CHECKSUM_SUFFIX)


def expected_checksum(path: Path, given: str | None) -> tuple[str | None, str | None]:
    """(expected sha256, where it came from): `--checksum`, else the `.checksum` file beside
    the snapshot, else (None, None)."""
    if given:
        return given.strip().lower(), "--checksum"
    try:
        text = checksum_file(path).read_text().strip().lower()
    except OSError:
        return None, None
    return (text or None), checksum_file(path).name


def sha256(path: Path, progress_label: str = "checksum") -> str:
    progress = Progress(progress_label, path.stat().st_size)
    digest = hashlib.sha256()
    done = 0
    with open(path, "rb") as f:
        while chunk := f.read(snapshots.CHUNK):
            digest.update(chunk)
            done += len(chunk)
            progress.update(done)
    progress.done()
    return digest.hexdigest()


def scan(path: Path) -> tuple[list[tuple[tarfile.TarInfo, str]], dict | None]:
    """Every member checked as recovery checks them (`snapshots.checked_members`), plus
    duplicates, without extracting anything; and `snapshot.json` if the tar has one.
    Problem for a tar recovery would refuse."""
    progress = Progress("reading", path.stat().st_size)
    try:
        with open(path, "rb") as raw:
            reader = _CountingReader(raw, progress)
            with tarfile.open(fileobj=cast(IO[bytes], reader), mode="r:") as tar:
                members = snapshots.checked_members(tar)
                seen: set[str] = set()
                meta = None
                for member, name in members:
                    if member.isfile():
                        if name in seen:
                            raise Problem(f"snapshot refused: member `{member.name}` appears twice")
                        seen.add(name)
                    if name == snapshots.META_FILE and member.isfile() and member.size <= MAX_META_BYTES:
                        source = tar.extractfile(member)
                        if source is not None:
                            try:
                                meta = json.loads(source.read())
                            except ValueError:
                                meta = None
    except BadInput as exc:
        raise Problem(_reason(exc)) from exc
    except (tarfile.TarError, EOFError) as exc:
        raise Problem(f"snapshot is not a valid tar archive: {exc}") from exc
    finally:
        progress.done()
    return members, meta if isinstance(meta, dict) else None


def format_status(meta: dict | None) -> str | None:
    """None if recovery reads this snapshot.json's format, else why not (one line)."""
    if meta is None or meta.get("format") != snapshots.FORMAT:
        return f"not a pydrant collection snapshot: no readable {snapshots.META_FILE} naming `{snapshots.FORMAT}`"
    return snapshots.version_problem(meta, snapshots.FORMAT_VERSION, reader="this pydrant")


def count_segments(directory: Path, config: dict, segment_ids: list) -> list[dict]:
    """Open every segment of a collection directory and count its points (the WAL records
    are not applied). Raises on a segment that cannot be opened."""
    schema = vector_schema(config)
    found = []
    for segment_id in segment_ids:
        segment = open_segment(directory / SEGMENTS_DIR / segment_id, schema)
        try:
            kind = "indexed" if (directory / SEGMENTS_DIR / segment_id / "segment.json").exists() else "appendable"
            found.append({"id": segment_id, "kind": kind, "points": segment.count()})
        finally:
            segment.close()
    return found


# -- inspect --------------------------------------------------------------------------------


def inspect(path: Path, checksum: str | None = None) -> dict:
    """What the snapshot holds. Problem if it cannot be read at all (not a tar, hostile
    member); a damaged part is reported under `problems`, not raised."""
    report: dict = {"file": str(path), "size": path.stat().st_size, "problems": []}
    expected, source = expected_checksum(path, checksum)
    if expected is None:
        report["checksum"] = {"status": "no checksum file", "sha256": None}
    else:
        actual = sha256(path)
        report["checksum"] = {
            "status": "ok" if actual == expected else "mismatch",
            "sha256": actual,
            "expected": expected,
            "from": source,
        }
        if actual != expected:
            report["problems"].append(f"checksum mismatch: expected {expected}, got {actual}")
    members, meta = scan(path)
    report["members"] = len(members)
    report["format"] = meta.get("format") if meta else None
    report["format_version"] = meta.get("format_version") if meta else None
    for key in ("collection", "op_num", "created", "pydrant_version"):
        report[key] = meta.get(key) if meta else None
    if is_full(meta):
        report["format_supported"] = True
        return _inspect_full(path, report)
    unsupported = format_status(meta)
    report["format_supported"] = unsupported is None
    if unsupported is not None:
        report["problems"].append(unsupported)
        return report
    with tempfile.TemporaryDirectory(prefix="pydrant-inspect-") as tmp:
        target = Path(tmp) / "collection"
        extracting = Progress("extracting", 0)
        try:
            snapshots.extract(path, target, progress=extracting.update)
        except BadInput as exc:
            report["problems"].append(_reason(exc))
            return report
        finally:
            extracting.done()
        try:
            config = read_json(target / CONFIG_FILE)
        except Exception as exc:
            report["problems"].append(f"snapshot is incomplete or damaged: {type(exc).__name__}: {exc}")
            return report
        report["config"] = config_summary(config)
        if meta is not None and meta.get("format_version") == snapshots.SHARDED_VERSION:
            return _inspect_shards(target, config, meta, report)
        shard = _inspect_shard(target, config, report["problems"])
        report.update({k: v for k, v in shard.items() if k != "id"})
    return report


def _inspect_shard(directory: Path, config: dict, problems: list[str], where: str = "") -> dict:
    """A one-shard directory of an extracted snapshot: its segments with their points, and
    the WAL records it carries. Problems are appended to `problems`."""
    found: dict = {"id": directory.name}
    try:
        manifest = read_json(directory / MANIFEST_FILE)
        records = codec.decode((directory / snapshots.WAL_RECORDS_FILE).read_bytes())
    except Exception as exc:
        problems.append(f"snapshot is incomplete or damaged{where}: {type(exc).__name__}: {exc}")
        return found
    found["wal_records"] = len(records) if isinstance(records, list) else None
    if isinstance(records, list) and records:
        found["wal_op_nums"] = [records[0][0], records[-1][0]]
    segment_ids = manifest.get("segments") if isinstance(manifest, dict) else None
    try:
        found["segments"] = count_segments(directory, config, segment_ids or [])
        found["points"] = sum(s["points"] for s in found["segments"])
    except Exception as exc:
        found["segments"] = [{"id": s} for s in segment_ids or []]
        problems.append(f"a segment cannot be opened{where}: {type(exc).__name__}: {exc}")
    return found


def _inspect_shards(target: Path, config: dict, meta: dict, report: dict) -> dict:
    """A sharded collection's snapshot (format version 2): its sharding method and, per
    shard, its key, op_num, segments, points and WAL records; `points` is their sum."""
    report["sharding_method"] = meta.get("sharding_method")
    listed = meta.get("shards") if isinstance(meta.get("shards"), list) else []
    report["shards"] = []
    for entry in listed:
        if not isinstance(entry, dict):
            report["problems"].append(f"{snapshots.META_FILE} lists a shard that is not an object: {entry!r}")
            continue
        shard_id = entry.get("id")
        directory = target / SHARDS_DIR / str(shard_id)
        if not directory.is_dir():
            report["problems"].append(f"shard {shard_id} listed in {snapshots.META_FILE} is missing")
            continue
        found = _inspect_shard(directory, config, report["problems"], f" (shard {shard_id})")
        report["shards"].append({"id": shard_id, "key": entry.get("key"), "op_num": entry.get("op_num"),
                                 **{k: v for k, v in found.items() if k != "id"}})
    report["points"] = sum(shard.get("points", 0) for shard in report["shards"])
    report["wal_records"] = sum(shard.get("wal_records") or 0 for shard in report["shards"])
    return report


def config_summary(config: dict) -> dict:
    params = config.get("params", {}) if isinstance(config, dict) else {}
    vectors = params.get("vectors")
    if isinstance(vectors, dict) and "size" in vectors:
        vectors = {"": vectors}
    dense = {
        name: f"{v.get('size')} {v.get('distance')}" + (" multivector" if v.get("multivector_config") else "")
        for name, v in (vectors or {}).items()
        if isinstance(v, dict)
    }
    return {
        "vectors": dense,
        "sparse_vectors": sorted((params.get("sparse_vectors") or {}).keys()),
        "shard_number": params.get("shard_number"),
        "on_disk_payload": params.get("on_disk_payload"),
        "quantization": bool(config.get("quantization_config")) if isinstance(config, dict) else False,
    }


def render_inspect(report: dict) -> str:
    lines = [f"file: {report['file']} ({report['size']} bytes, {report.get('members', '?')} members)"]
    c = report.get("checksum") or {}
    if c.get("status") == "no checksum file":
        lines.append("checksum: no .checksum file beside it (pass --checksum HEX to check)")
    else:
        lines.append(f"checksum: {c.get('status')} (sha256 {c.get('sha256')}, from {c.get('from')})")
    lines.append(
        f"format: {report.get('format')} version {report.get('format_version')}"
        + ("" if report.get("format_supported") else " (not supported)")
    )
    if report.get("collection") is not None:
        op_num = f"  op_num: {report.get('op_num')}" if "shards" not in report else ""
        lines.append(
            f"collection: {report['collection']}{op_num}  created: {report.get('created')}"
            f"  pydrant: {report.get('pydrant_version')}"
        )
    if "config" in report:
        cfg = report["config"]
        vectors = ", ".join(f"{n or '(default)'}: {d}" for n, d in cfg["vectors"].items()) or "none"
        lines.append(f"vectors: {vectors}")
        if cfg["sparse_vectors"]:
            lines.append(f"sparse vectors: {', '.join(cfg['sparse_vectors'])}")
        if cfg["quantization"]:
            lines.append("quantization: yes")
    if report.get("kind") == "full":
        lines.append(f"aliases: {', '.join(f'{a} -> {c}' for a, c in report.get('aliases', {}).items()) or 'none'}")
        for name, inner in report.get("collections", {}).items():
            if "shards" in inner:
                lines.append(f"collection {name}: {inner.get('points', '?')} points in {len(inner['shards'])} shards,"
                             f" {inner.get('size')} bytes")
                continue
            lines.append(f"collection {name}: {inner.get('points', '?')} points in {len(inner.get('segments', []))} segments,"
                         f" op_num {inner.get('op_num')}, {inner.get('size')} bytes")
    if "shards" in report:
        lines.append(f"sharding: {report.get('sharding_method')}, {len(report['shards'])} shards")
    for shard in report.get("shards", []):
        key = f" (key {shard['key']!r})" if shard.get("key") is not None else ""
        lines.append(f"shard {shard['id']}{key}: {shard.get('points', '?')} points in {len(shard.get('segments', []))} "
                     f"segments, op_num {shard.get('op_num')}, {shard.get('wal_records', '?')} WAL records")
        for segment in shard.get("segments", []):
            lines.append(f"  segment {segment['id']}: {segment.get('kind', '?')}, {segment.get('points', '?')} points")
    for segment in report.get("segments", []):
        lines.append(f"segment {segment['id']}: {segment.get('kind', '?')}, {segment.get('points', '?')} points")
    if "points" in report:
        lines.append(f"points in segments: {report['points']}")
    if "wal_records" in report and "shards" not in report:
        extra = f" (op {report['wal_op_nums'][0]}..{report['wal_op_nums'][1]})" if report.get("wal_op_nums") else ""
        lines.append(f"WAL records included: {report['wal_records']}{extra}")
    for problem in report["problems"]:
        lines.append(f"problem: {problem}")
    return "\n".join(lines)


# -- full snapshots -------------------------------------------------------------------------


def is_full(meta: dict | None) -> bool:
    return isinstance(meta, dict) and meta.get("format") == full_snapshots.FORMAT


def _open_full(path: Path, tmp: str) -> full_snapshots.FullSnapshot:
    """The full snapshot extracted as `--storage-snapshot` extracts it (members, format
    version, mapping and each collection snapshot's sha256 checked)."""
    extracting = Progress("extracting", 0)
    try:
        return full_snapshots.open_full_snapshot(path, Path(tmp) / "full", progress=extracting.update)
    except BadInput as exc:
        raise Problem(_reason(exc)) from exc
    finally:
        extracting.done()


def _inspect_full(path: Path, report: dict) -> dict:
    """A full snapshot's report: its aliases, and each collection snapshot it holds
    inspected as a collection snapshot file is (its checksum was checked on the way)."""
    report["kind"] = "full"
    with tempfile.TemporaryDirectory(prefix="pydrant-inspect-") as tmp:
        try:
            full = _open_full(path, tmp)
        except Problem as exc:
            report["problems"].append(str(exc))
            return report
        report["aliases"] = dict(full.aliases)
        report["collections"] = {}
        for name, file in sorted(full.collections.items()):
            inner = inspect(file)
            inner.pop("file", None)
            report["collections"][name] = inner
            report["problems"].extend(f"collection {name}: {problem}" for problem in inner["problems"])
    return report


def _verify_full(path: Path, problems: list[str], facts: dict) -> tuple[list[str], dict]:
    """Every collection snapshot of a full snapshot verified as `verify` verifies one."""
    facts.update(collections=0, segments=0, points=0)
    with tempfile.TemporaryDirectory(prefix="pydrant-verify-") as tmp:
        try:
            full = _open_full(path, tmp)
        except Problem as exc:
            return problems + [str(exc)], facts
        for name, file in sorted(full.collections.items()):
            inner_problems, inner = verify(file)
            problems.extend(f"collection {name}: {problem}" for problem in inner_problems)
            facts["collections"] += 1
            facts["segments"] += inner.get("segments", 0)
            facts["points"] += inner.get("points", 0)
        facts["aliases"] = len(full.aliases)
    return problems, facts


# -- verify ---------------------------------------------------------------------------------


def verify(path: Path, checksum: str | None = None) -> tuple[list[str], dict]:
    """Every problem found (one line each; empty: the snapshot would recover), and what was
    counted. Checks: the checksum (if one is known), the tar's members as recovery checks
    them, the format version, the unpack recovery does (config, manifest, segments, WAL
    records), every segment opened and counted, and the collection loaded once."""
    problems: list[str] = []
    facts: dict = {}
    expected, source = expected_checksum(path, checksum)
    facts["checksum"] = source
    if expected is not None:
        actual = sha256(path)
        if actual != expected:
            problems.append(f"checksum mismatch: expected {expected} ({source}), got {actual}")
    try:
        members, meta = scan(path)
    except Problem as exc:
        return problems + [str(exc)], facts
    facts["members"] = len(members)
    if is_full(meta):
        return _verify_full(path, problems, facts)
    unsupported = format_status(meta)
    if unsupported is not None:
        return problems + [unsupported], facts
    with tempfile.TemporaryDirectory(prefix="pydrant-verify-") as tmp:
        target = Path(tmp) / "collection"
        extracting = Progress("extracting", 0)
        try:
            config = snapshots.unpack(path, target, progress=extracting.update)
        except (BadInput, ServiceError) as exc:
            return problems + [_reason(exc)], facts
        finally:
            extracting.done()
        shard_dirs = [target]
        if is_sharded(target):
            shard_dirs = [target / SHARDS_DIR / str(s["id"]) for s in read_json(target / SHARDS_FILE)["shards"]]
            facts["shards"] = len(shard_dirs)
        facts["segments"] = facts["points"] = 0
        for directory in shard_dirs:
            where = f" (shard {directory.name})" if directory != target else ""
            try:
                segments = count_segments(directory, config, read_json(directory / MANIFEST_FILE)["segments"])
            except Exception as exc:
                return problems + [f"a segment cannot be opened{where}: {type(exc).__name__}: {exc}"], facts
            facts["segments"] += len(segments)
            facts["points"] += sum(s["points"] for s in segments)
        try:
            snapshots.validate_loadable(target)
        except (BadInput, ServiceError) as exc:
            problems.append(_reason(exc))
    return problems, facts


# -- restore --------------------------------------------------------------------------------


def restore(path: Path, storage: Path, name: str | None = None, *, force: bool = False, checksum: str | None = None) -> tuple[str, Path]:
    """Unpack `path` into `<storage>/collections/<name>` of a stopped server, as recovery
    does: checksum (if known), members checked, unpacked into `<storage>/pending/`, opened
    once, then renamed into place (an existing collection is swapped out with one rename
    exchange, only with `force`). Returns (name, directory). Problem on any refusal;
    nothing in `collections/` changes then."""
    if not storage.is_dir():
        raise Problem(f"storage directory {storage} does not exist")
    expected, source = expected_checksum(path, checksum)
    if expected is not None:
        actual = sha256(path)
        if actual != expected:
            raise Problem(f"checksum mismatch: expected {expected} ({source}), got {actual}")
    _members, meta = scan(path)
    if is_full(meta):
        raise Problem("a full snapshot (every collection and the aliases): restore it with "
                      "`pydrant serve --storage-snapshot FILE`, or one of its collections after "
                      "`pydrant snapshot inspect` shows their files")
    unsupported = format_status(meta)
    if unsupported is not None:
        raise Problem(unsupported)
    assert meta is not None
    name = name or meta.get("collection")
    if not isinstance(name, str):
        raise Problem("the snapshot names no collection: pass --name")
    try:
        validate_name(name)
    except ValidationFailed as exc:
        raise Problem(_reason(exc)) from exc
    if "/" in name or "\\" in name or name in (".", ".."):
        raise Problem(f"invalid collection name `{name}`")
    collections = storage / COLLECTIONS_DIR
    pending = storage / PENDING_DIR
    final = collections / name
    if final.exists() and not force:
        raise Problem(f"collection `{name}` exists in {storage}: pass --force to replace it")
    mkdir_durable(collections)
    mkdir_durable(pending)
    # pending/ is emptied when the server starts: a crash here leaves nothing behind
    staging = pending / f"restore-{uuid.uuid4().hex}"
    try:
        extracting = Progress("extracting", 0)
        try:
            snapshots.unpack(path, staging, progress=extracting.update)
            extracting.done()
            snapshots.validate_loadable(staging)
        except (BadInput, ServiceError) as exc:
            raise Problem(_reason(exc)) from exc
        finally:
            extracting.done()
        if final.exists():
            exchange_directories(staging, final)  # staging now holds the old collection
        else:
            staging.rename(final)
        fsync_dir(collections)
        fsync_dir(pending)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return name, final


# -- commands (called by pydrant/cli.py) ----------------------------------------------------


def _progress_option(options) -> None:
    Progress.force = bool(getattr(options, "progress", False))


def run_inspect(options) -> int:
    _progress_option(options)
    path = Path(options.file)
    if not path.is_file():
        print(f"pydrant snapshot inspect: {path}: no such file", file=sys.stderr)
        return EXIT_PROBLEM
    try:
        report = inspect(path, options.checksum)
    except (Problem, OSError) as exc:
        if options.json:
            print(json.dumps({"file": str(path), "problems": [str(exc)]}))
        else:
            print(f"problem: {exc}")
        return EXIT_PROBLEM
    print(json.dumps(report, indent=2) if options.json else render_inspect(report))
    return EXIT_PROBLEM if report["problems"] else EXIT_OK


def run_verify(options) -> int:
    _progress_option(options)
    path = Path(options.file)
    if not path.is_file():
        print(f"problem: {path}: no such file")
        return EXIT_PROBLEM
    try:
        problems, facts = verify(path, options.checksum)
    except OSError as exc:
        problems, facts = [f"cannot read or unpack it: {exc}"], {}
    for problem in problems:
        print(f"problem: {problem}")
    if problems:
        return EXIT_PROBLEM
    checked = "checksum ok" if facts.get("checksum") else "no checksum to compare"
    held = f"{facts['collections']} collections, {facts['aliases']} aliases, " if "collections" in facts else ""
    held += f"{facts['shards']} shards, " if "shards" in facts else ""
    print(f"ok: {path.name}: {checked}, {facts['members']} members, {held}{facts['segments']} segments, {facts['points']} points")
    return EXIT_OK


def run_restore(options) -> int:
    _progress_option(options)
    path = Path(options.file)
    if not path.is_file():
        print(f"problem: {path}: no such file", file=sys.stderr)
        return EXIT_PROBLEM
    try:
        name, directory = restore(path, Path(options.into), options.name, force=options.force, checksum=options.checksum)
    except (Problem, OSError) as exc:
        print(f"problem: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    print(f"restored collection `{name}` into {directory}")
    return EXIT_OK

