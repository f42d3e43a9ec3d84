"""The `pydrant` command.

    pydrant serve [--config PATH] [--host HOST] [--port PORT]
                  [--snapshot PATH:NAME ...] [--storage-snapshot PATH] [--force-snapshot]
    pydrant config [--config PATH] [--host HOST] [--port PORT]
    pydrant wal inspect PATH [--json]
    pydrant wal replay WAL_PATH --into DIR [--collection-config FILE]
    pydrant snapshot inspect FILE [--json] [--checksum HEX] [--progress]
    pydrant snapshot verify FILE [--checksum HEX] [--progress]
    pydrant snapshot restore FILE --into STORAGE_DIR [--name NAME] [--force] [--checksum HEX] [--progress]
    pydrant restore --snapshot FILE --until OP_NUM|TIME|CURSOR --into STORAGE_DIR [--wal WAL_DIR|COLLECTION_DIR]
                    [--name NAME] [--progress]
    pydrant version

`serve` and `config` read settings as pydrant.config describes (defaults <- YAML file <-
environment <- flags); a bad setting is reported on stderr with exit status 2. The `wal`
commands hand their arguments, untouched, to the tool that implements them, so that tool's
own `--help` is the authority on its options. The `snapshot` commands work offline on a
snapshot file (pydrant/snapshot_tools.py, docs/snapshots.md "Tools"): exit status 0 when
all is well, 1 with one line per problem. `restore` is a point-in-time restore
(collection/point_in_time.py, docs/point-in-time.md): a snapshot plus the retained WAL,
replayed up to an operation or a time (a sharded collection: a time, or one operation per
shard, CURSOR `0:12,1:40`, from its collection directory's shard WALs), into the storage
directory of a stopped server; exit status 1 with one `problem:` line when the log does not
cover the range.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence

from pydrant import QDRANT_API_VERSION, __version__
from pydrant.config import ConfigError, Settings, load_settings, log_levels
from pydrant.fdlimit import raise_open_files_limit

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2  # argparse's status for bad usage; a bad setting is bad usage too

# `pydrant wal <name> ...` -> module whose `main(argv) -> int` does the work. Imported only
# when run: `serve` should not pay for them, and a tool that fails to import must not
# break the other commands.
DELEGATED = {
    ("wal", "inspect"): ("pydrant.wal.inspect", "print a WAL's records and check their CRCs"),
    ("wal", "replay"): ("pydrant.collection.replay", "rebuild a collection from its WAL alone"),
}

log = logging.getLogger("pydrant.cli")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    delegated = DELEGATED.get(tuple(args[:2]))
    if delegated is not None:
        return _run_delegated(delegated[0], args[2:])
    parser = build_parser()
    options = parser.parse_args(args)
    if not hasattr(options, "handler"):
        return _usage(parser)
    return options.handler(options)


def _usage(parser: argparse.ArgumentParser) -> int:
    """A command group given without a command: show its help, as bad usage."""
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pydrant",
        description=f"A vector database server speaking Qdrant's REST API v{QDRANT_API_VERSION}.",
    )
    parser.add_argument("--version", action="version", version=version_text())
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP server")
    _add_settings_options(serve)
    _add_restore_options(serve)
    serve.set_defaults(handler=run_serve)

    show = commands.add_parser("config", help="print the effective settings as YAML and exit")
    _add_settings_options(show)
    show.set_defaults(handler=run_show_config)

    wal = commands.add_parser("wal", help="inspect or replay a write-ahead log")
    wal.set_defaults(handler=lambda options: _usage(wal))
    wal_commands = wal.add_subparsers(title="wal commands", metavar="WAL_COMMAND")
    # Listed for --help only: main() hands these argument lists to the tools before parsing.
    for (_, name), (_, summary) in DELEGATED.items():
        wal_commands.add_parser(name, help=f"{summary} (see `pydrant wal {name} --help`)", add_help=False)

    _add_snapshot_commands(commands)
    _add_restore_command(commands)

    version = commands.add_parser("version", help="print pydrant's version and the Qdrant API version")
    version.set_defaults(handler=run_version)
    return parser


def _add_snapshot_commands(commands) -> None:
    snapshot = commands.add_parser("snapshot", help="inspect, verify or restore a collection snapshot file offline")
    snapshot.set_defaults(handler=lambda options: _usage(snapshot))
    tools = snapshot.add_subparsers(title="snapshot commands", metavar="SNAPSHOT_COMMAND")
    checksum_help = "expected sha256 (hex); default: the FILE.checksum beside it, if any"
    progress_help = "show the progress of long passes on stderr even when it is not a terminal"

    inspect = tools.add_parser("inspect", help="describe a snapshot: format, config, segments, WAL records")
    inspect.add_argument("file", metavar="FILE")
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    inspect.add_argument("--checksum", metavar="HEX", help=checksum_help)
    inspect.add_argument("--progress", action="store_true", help=progress_help)
    inspect.set_defaults(handler=_snapshot_tool("run_inspect"))

    verify = tools.add_parser("verify", help="check a snapshot as recovery would: exit 0 ok, 1 problem")
    verify.add_argument("file", metavar="FILE")
    verify.add_argument("--checksum", metavar="HEX", help=checksum_help)
    verify.add_argument("--progress", action="store_true", help=progress_help)
    verify.set_defaults(handler=_snapshot_tool("run_verify"))

    restore = tools.add_parser("restore", help="restore a snapshot into the storage directory of a stopped server")
    restore.add_argument("file", metavar="FILE")
    restore.add_argument("--into", metavar="STORAGE_DIR", required=True, help="the server's storage.storage_path")
    restore.add_argument("--name", help="collection name (default: the snapshot's)")
    restore.add_argument("--force", action="store_true", help="replace a collection of that name")
    restore.add_argument("--checksum", metavar="HEX", help=checksum_help)
    restore.add_argument("--progress", action="store_true", help=progress_help)
    restore.set_defaults(handler=_snapshot_tool("run_restore"))


def _add_restore_options(serve: argparse.ArgumentParser) -> None:
    """Qdrant's start-up recovery flags (docs/snapshots.md "Restore at start")."""
    serve.add_argument(
        "--snapshot", "--collection-snapshot", dest="snapshot", action="append", metavar="PATH:NAME",
        help="recover collection NAME from the collection snapshot PATH before serving (repeatable)",
    )
    serve.add_argument(
        "--storage-snapshot", metavar="PATH", help="restore every collection and alias of the full snapshot PATH before serving",
    )
    serve.add_argument(
        "-f", "--force-snapshot", action="store_true",
        help="let --snapshot/--storage-snapshot replace existing collections and aliases (else refused)",
    )


def _snapshot_tool(function: str) -> Callable[[argparse.Namespace], int]:
    def handler(options: argparse.Namespace) -> int:
        from pydrant import snapshot_tools  # loads the storage stack only for these commands

        return getattr(snapshot_tools, function)(options)

    return handler


def _add_restore_command(commands) -> None:
    restore = commands.add_parser(
        "restore",
        help="point-in-time restore: a snapshot plus the retained WAL, up to an operation or a time",
        description="Restore a collection snapshot and replay the retained WAL on top of it up to (and "
        "including) an operation, or the last operation committed at or before a time, into the storage "
        "directory of a stopped server, as a new collection (docs/point-in-time.md).",
    )
    restore.add_argument("--snapshot", metavar="FILE", required=True, help="a collection snapshot file")
    restore.add_argument(
        "--until", metavar="OP_NUM|TIME|CURSOR", required=True,
        help="an op_num (42), an ISO-8601 time (2026-12-03T14:05:07Z; no zone: UTC), ms since the epoch (1764770400042ms) "
        "or, for a sharded collection, one op_num per shard as the change feed's cursor gives them (0:12,1:40,2:7); "
        "a sharded collection takes a time or a cursor, not one op_num",
    )
    restore.add_argument("--into", metavar="STORAGE_DIR", required=True, help="the server's storage.storage_path")
    restore.add_argument(
        "--wal", metavar="WAL_DIR|COLLECTION_DIR",
        help="the collection's retained WAL: <storage>/collections/<name>/wal of the source server (running or "
        "stopped; only read) or a copy; for a sharded collection its directory <storage>/collections/<name> (each "
        "shard's shards/<id>/wal); without it only the snapshot's own records are replayed",
    )
    restore.add_argument("--name", help="name of the new collection (default: the snapshot's)")
    restore.add_argument("--progress", action="store_true", help="show progress on stderr even when it is not a terminal")
    restore.set_defaults(handler=run_restore)


def _add_settings_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="PATH", help="YAML settings file (default: config/config.yaml, if present)"
    )
    parser.add_argument("--host", help="address to bind (overrides service.host)")
    parser.add_argument("--port", type=int, help="HTTP port (overrides service.http_port)")


def version_text() -> str:
    return f"pydrant {__version__} (Qdrant REST API {QDRANT_API_VERSION})"


# --- commands ------------------------------------------------------------------------------


def run_version(options: argparse.Namespace) -> int:
    print(version_text())
    return EXIT_OK


def run_serve(options: argparse.Namespace) -> int:
    settings = _settings_or_none(options)
    if settings is None:
        return EXIT_USAGE
    try:
        configure_logging(settings)
    except ConfigError as exc:
        _report(exc)
        return EXIT_USAGE
    _warn_about_unused(settings)
    raise_open_files_limit()  # before any segment opens its files
    if not _restore_snapshots(options, settings):
        return EXIT_FAILURE
    from pydrant.http.server import serve  # the web stack loads only for `serve`

    serve(settings)
    return EXIT_OK


def _restore_snapshots(options: argparse.Namespace, settings: Settings) -> bool:
    """`--snapshot` / `--storage-snapshot`: restore into the storage before it loads. False
    (the reason on stderr, nothing changed) when a snapshot cannot be restored."""
    mappings = getattr(options, "snapshot", None)
    full = getattr(options, "storage_snapshot", None)
    if not mappings and full is None:
        return True
    from pathlib import Path

    from pydrant.storage.full_snapshots import RestoreError, restore_at_start

    try:
        restore_at_start(Path(settings.storage.storage_path), mappings, full, force=options.force_snapshot)
    except (RestoreError, OSError) as exc:
        print(f"pydrant: cannot restore snapshots at start: {exc}", file=sys.stderr)
        return False
    return True


def run_restore(options: argparse.Namespace) -> int:
    """`pydrant restore`: build the collection in `<storage>/pending/point-in-time-<random>`
    and rename it to `<storage>/collections/<name>` only once it is complete (a server
    empties `pending/` when it starts, so an interrupted restore leaves nothing)."""
    import shutil
    import uuid
    from pathlib import Path

    from pydrant.collection import point_in_time as pit
    from pydrant.errors import PydrantError
    from pydrant.fsutil import fsync_dir, fsync_tree, mkdir_durable
    from pydrant.storage.names import validate_name
    from pydrant.storage.toc import COLLECTIONS_DIR, PENDING_DIR

    def problem(message: str) -> int:
        print(f"problem: {' '.join(message.removeprefix('Wrong input: ').split())}", file=sys.stderr)
        return EXIT_FAILURE

    snapshot, storage = Path(options.snapshot), Path(options.into)
    wal: Path | pit.ShardLogs | None = Path(options.wal) if options.wal else None
    if not snapshot.is_file():
        return problem(f"{snapshot}: no such file")
    if not storage.is_dir():
        return problem(f"storage directory {storage} does not exist")
    staging = storage / PENDING_DIR / f"point-in-time-{uuid.uuid4().hex}"
    progress = ReplayProgress(sys.stderr, always=options.progress)
    try:
        until = pit.parse_until(options.until)
        if isinstance(wal, Path) and wal.is_dir():
            wal = pit.shard_logs(wal) or wal  # a sharded collection's directory: its shards' WALs
        name = options.name or pit.read_head(snapshot).collection
        if not name:
            return problem("the snapshot names no collection: pass --name")
        validate_name(name)
        collections = storage / COLLECTIONS_DIR
        final = collections / name
        if final.exists():
            return problem(f"collection `{name}` exists in {storage}: pass another --name, or delete it first")
        mkdir_durable(collections)
        mkdir_durable(staging.parent)
        try:
            summary = pit.restore(snapshot, staging, until, wal, progress.update)
        finally:
            progress.done()
        fsync_tree(staging)
        staging.rename(final)
        fsync_dir(collections)
        fsync_dir(staging.parent)
    except PydrantError as exc:
        return problem(exc.message)
    except OSError as exc:
        return problem(str(exc))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    when = f", committed at {pit.format_ms(summary['timestamp'])}" if summary["timestamp"] is not None else ""
    if "shards" in summary:
        shards = "; ".join(
            f"shard {shard['shard_id']}: cut at {shard['snapshot_op_num']}, {shard['replayed']} replayed, up to "
            f"operation {shard['op_num']}" for shard in summary["shards"]
        )
        print(
            f"restored collection `{name}` into {final}: {len(summary['shards'])} shards, {summary['replayed']} "
            f"operations replayed, the last{when} ({shards}); {summary['points']} points"
        )
        return EXIT_OK
    print(
        f"restored collection `{name}` into {final}: snapshot cut at operation {summary['snapshot_op_num']}, "
        f"{summary['replayed']} operations replayed, up to operation {summary['op_num']}{when}; {summary['points']} points"
    )
    return EXIT_OK


class ReplayProgress:
    """`replaying: 1200 / 50000 operations` on stderr: rewritten in place at most 10 times a
    second on a terminal; elsewhere, with `always`, one line a second; else silent."""

    def __init__(self, stream, always: bool = False):
        self.stream = stream
        self.terminal = bool(getattr(stream, "isatty", lambda: False)())
        self.enabled = self.terminal or always
        self._last = 0.0
        self._shown = False

    def update(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < (0.1 if self.terminal else 1.0) and done < total:
            return
        self._last = now
        self._shown = True
        text = f"replaying: {done} / {total} operations"
        self.stream.write(f"\r{text}" if self.terminal else f"{text}\n")
        self.stream.flush()

    def done(self) -> None:
        if self.terminal and self._shown:
            self.stream.write("\n")
            self.stream.flush()


def run_show_config(options: argparse.Namespace) -> int:
    import yaml

    settings = _settings_or_none(options)
    if settings is None:
        return EXIT_USAGE
    print(yaml.safe_dump(settings.to_dict(), sort_keys=False), end="")
    return EXIT_OK


def _settings_or_none(options: argparse.Namespace) -> Settings | None:
    """Settings from file, environment and flags; None after reporting a ConfigError."""
    try:
        return load_settings(options.config, overrides=_flag_overrides(options))
    except ConfigError as exc:
        _report(exc)
        return None


def _report(exc: ConfigError) -> None:
    print(f"pydrant: configuration error: {exc}", file=sys.stderr)


def _flag_overrides(options: argparse.Namespace) -> dict:
    overrides = {}
    if options.host is not None:
        overrides["service.host"] = options.host
    if options.port is not None:
        overrides["service.http_port"] = options.port
    return overrides


def _run_delegated(module_name: str, argv: list[str]) -> int:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise  # the tool exists but something it imports is missing: show the real error
        print(f"pydrant: this command is not available ({module_name} is missing)", file=sys.stderr)
        return EXIT_FAILURE
    tool_main: Callable[[list[str]], int | None] = module.main
    status = tool_main(argv)
    return EXIT_OK if status is None else int(status)


def _warn_about_unused(settings: Settings) -> None:
    names = settings.changed_but_not_acted_on()
    if names:
        log.warning(
            "these settings are accepted but pydrant does not act on them yet: %s (docs/configuration.md)",
            ", ".join(names),
        )


# --- logging -------------------------------------------------------------------------------

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the fields Qdrant's json log format has."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "target": record.name,
            "fields": {"message": record.getMessage()},
        }
        extra = getattr(record, "fields", None)  # structured facts, e.g. the access log's
        if isinstance(extra, dict):
            entry["fields"].update(extra)
        if record.exc_info:
            entry["fields"]["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _formatter(kind: str) -> logging.Formatter:
    return JsonFormatter() if kind == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(settings: Settings) -> None:
    """Apply `log_level` and `logger` to the root logger: stderr, plus a file if configured.

    Only handlers this function added before are replaced, so calling it twice (tests, or a
    library embedding pydrant) never removes anyone else's handlers.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_pydrant", False)]:
        root.removeHandler(handler)
        handler.close()
    level, targets = log_levels(settings.log_level)
    # Per-target levels ("segment=debug") may be lower than the root's: the console handler
    # must let their records through; the root logger's level still filters everyone else.
    console_level = min([level, *targets.values()])
    handlers = [_tagged(logging.StreamHandler(sys.stderr), settings.logger.format, console_level)]
    on_disk = settings.logger.on_disk
    if on_disk.enabled:
        file_level = log_levels(on_disk.log_level)[0] if on_disk.log_level else level
        handlers.append(_tagged(_file_handler(on_disk.log_file), on_disk.format, file_level))
        level = min(level, file_level)  # the root must let through what the file wants
    root.setLevel(level)
    for handler in handlers:
        root.addHandler(handler)
    for target, target_level in targets.items():
        logging.getLogger(target).setLevel(target_level)


def _file_handler(path: str) -> logging.Handler:
    try:
        return logging.FileHandler(path, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"setting 'logger.on_disk.log_file': cannot open {path!r}: {exc.strerror}") from exc


def _tagged(handler: logging.Handler, kind: str, level: int) -> logging.Handler:
    handler.setFormatter(_formatter(kind))
    handler.setLevel(level)
    handler._pydrant = True  # marks handlers configure_logging owns
    return handler


if __name__ == "__main__":
    sys.exit(main())
