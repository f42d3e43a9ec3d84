"""`pydrant wal inspect PATH [--json] [--records] [--from OP]`: check a WAL without changing it.

Prints each file of the WAL directory with its records, batches (group commits), op_num
range and the state of its end: clean, a torn tail (an incomplete last batch, cut whole
the next time the WAL is opened) or corruption (opening the WAL fails). `--records` lists
the records too, with their place in their batch; `--json` prints all of it as one JSON
object.

Exit status: 0 when the WAL would open (a torn tail included), 1 when it is corrupt,
2 on bad usage or a PATH that is not a directory. Nothing is written: the scan is the
read-only `pydrant.wal.scan.scan_log` that `Wal` itself runs before repairing anything.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from pydrant.wal.scan import CORRUPT, TORN, FileScan, LogScan, iter_records, scan_log

EXIT_HEALTHY = 0
EXIT_CORRUPT = 1
EXIT_USAGE = 2
SUMMARY_WIDTH = 160  # characters of a record's value shown by --records without --json


def inspect_wal(path: Path | str, *, include_records: bool = False, from_op_num: int | None = None) -> dict:
    """A JSON-ready report on the WAL in `path`.

    With include_records, `record_list` holds every good record with op_num >= from_op_num:
    its place, a one-line `summary` and the full `value` (arrays as dtype, shape, values).
    """
    scan = scan_log(Path(path))
    report = {
        "path": str(path),
        "healthy": scan.healthy,
        "files": [_file_report(f) for f in scan.files],
        "records": scan.records,
        "first_op_num": scan.first_op_num,
        "last_op_num": scan.last_op_num,
        "bytes": sum(f.data_end for f in scan.files),
        "spare_files": [p.name for p in scan.spares],
        "forensic_files": [p.name for p in scan.forensic],
    }
    if include_records:
        report["record_list"] = list(_record_reports(scan, from_op_num))
    return report


def _file_report(file_scan: FileScan) -> dict:
    return {
        "name": file_scan.path.name,
        "size": file_scan.size,
        "data_bytes": file_scan.data_end,
        "records": file_scan.records,
        "batches": file_scan.batches,
        "first_op_num": file_scan.first_op_num,
        "last_op_num": file_scan.last_op_num,
        "state": file_scan.state,
        "offset": file_scan.problem_offset,
        "reason": file_scan.problem,
        "torn_bytes": file_scan.torn_bytes,
        "torn_records": file_scan.torn_records,
    }


def _record_reports(scan: LogScan, from_op_num: int | None):
    """Every good record (those before a file's first bad one), as JSON-ready dicts."""
    for file_scan in scan.files:
        if not file_scan.records or file_scan.last_op_num is None:
            continue
        if from_op_num is not None and file_scan.last_op_num < from_op_num:
            continue
        for record in iter_records(file_scan.path, file_scan.data_end, from_op_num=from_op_num):
            yield {
                "op_num": record.op_num,
                "file": file_scan.path.name,
                "offset": record.offset,
                "bytes": record.size,
                "batch_start": record.batch_start,
                "records_after": record.records_after,
                "timestamp": record.timestamp,
                "summary": summarize(record.value),
                "value": to_json_ready(record.value),
            }


def to_json_ready(value, *, arrays_as_lists: bool = False):
    """`value` with arrays as {"dtype", "shape", "values"} (with arrays_as_lists: as nested
    lists, the change feed's form) and other non-JSON types as text."""
    if isinstance(value, np.ndarray):
        if arrays_as_lists:
            return value.tolist()
        return {"dtype": str(value.dtype), "shape": list(value.shape), "values": value.tolist()}
    if isinstance(value, dict):
        return {str(key): to_json_ready(item, arrays_as_lists=arrays_as_lists) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_ready(item, arrays_as_lists=arrays_as_lists) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, bytes):
        return value.hex()
    return repr(value)


# --- text output ---------------------------------------------------------------------------


def format_report(report: dict) -> str:
    lines = [f"WAL {report['path']}"]
    ops = _op_range(report["first_op_num"], report["last_op_num"])
    status = "healthy" if report["healthy"] else "CORRUPT: opening this WAL fails (docs/wal.md, Recovery)"
    lines.append(
        f"  {len(report['files'])} files, {report['records']} records, ops {ops}, "
        f"{report['bytes']} bytes of records: {status}"
    )
    for file_report in report["files"]:
        lines.append("  " + _file_line(file_report))
    if report["spare_files"]:
        lines.append(f"  spare files: {len(report['spare_files'])}")
    if report["forensic_files"]:
        lines.append(f"  torn tails saved by earlier repairs: {', '.join(report['forensic_files'])}")
    for record in report.get("record_list", []):
        lines.append("  " + _record_line(record))
    return "\n".join(lines)


def _file_line(file_report: dict) -> str:
    ops = _op_range(file_report["first_op_num"], file_report["last_op_num"])
    head = (
        f"{file_report['name']}  {file_report['records']:>7} records {_batches(file_report['batches'])}  "
        f"ops {ops:<15}  {file_report['data_bytes']:>9} of {file_report['size']} bytes  "
    )
    if file_report["state"] == TORN:
        cut, bad = file_report["data_bytes"], file_report["offset"]
        if cut == bad:
            what = file_report["reason"]
        else:  # the incomplete batch starts before its first bad record
            what = (
                f"an unacknowledged batch: {file_report['torn_records']} intact records, "
                f"then at offset {bad}: {file_report['reason']}"
            )
        return head + (
            f"torn tail at offset {cut} ({file_report['torn_bytes']} bytes: {what}); "
            "cut when the WAL is next opened"
        )
    if file_report["state"] == CORRUPT:
        return head + f"CORRUPT at offset {file_report['offset']}: {file_report['reason']}"
    return head + "clean"


def _batches(count: int) -> str:
    return f"{count:>6} batch  " if count == 1 else f"{count:>6} batches"


def _record_line(record: dict) -> str:
    place = f"{record['file']}@{record['offset']}"
    batch = ""
    if record["batch_start"] != record["offset"] or record["records_after"]:  # a batch of several
        after = f"{record['records_after']} more" if record["records_after"] else "last"
        batch = f"batch@{record['batch_start']} {after}  "
    when = f"{_format_timestamp(record['timestamp'])}  " if record.get("timestamp") is not None else ""
    return f"op {record['op_num']:>8}  {place}  {record['bytes']:>6} B  {when}{batch}{record['summary']}"


def _format_timestamp(timestamp: int) -> str:
    """A commit timestamp (ms since the epoch) as UTC ISO 8601 with milliseconds."""
    try:
        moment = datetime.fromtimestamp(timestamp // 1000, tz=UTC)
    except (OverflowError, ValueError, OSError):  # not a date a clock gives: show the number
        return f"t={timestamp}ms"
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{timestamp % 1000:03d}Z"


def summarize(value, width: int = SUMMARY_WIDTH) -> str:
    """One line of JSON-like text, arrays shown as "float32[4]", cut at `width` characters."""
    text = json.dumps(_abbreviated(value), ensure_ascii=False)
    return text if len(text) <= width else text[: width - 3] + "..."


def _abbreviated(value):
    if isinstance(value, np.ndarray):
        return f"{value.dtype}[{'x'.join(map(str, value.shape))}]"
    if isinstance(value, dict):
        return {str(key): _abbreviated(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_abbreviated(item) for item in value]
    return to_json_ready(value)


def _op_range(first: int | None, last: int | None) -> str:
    return "-" if first is None else f"{first}..{last}"


# --- command line --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pydrant wal inspect",
        description="Check a WAL directory's records and CRCs without changing any file.",
        epilog="Exit status: 0 healthy (a torn tail is repaired on open), 1 corrupt, 2 bad usage.",
    )
    parser.add_argument("path", type=Path, help="the WAL directory (a collection's wal/)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--records", action="store_true", help="list the records too")
    parser.add_argument("--from", dest="from_op_num", type=int, metavar="OP", help="list records from this op_num")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        options = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or bad usage (2): a status, not an exit
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if not options.path.is_dir():
        print(f"pydrant wal inspect: {options.path} is not a directory", file=sys.stderr)
        return EXIT_USAGE
    report = inspect_wal(options.path, include_records=options.records, from_op_num=options.from_op_num)
    text = json.dumps(report, indent=2) if options.json else format_report(report)
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # `... | head` stopped reading: the verdict is still the exit status. Point stdout
        # at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_HEALTHY if report["healthy"] else EXIT_CORRUPT


if __name__ == "__main__":
    raise SystemExit(main())
