"""Print docs/api-coverage.md: every operation of Qdrant's REST spec and how far pydrant has it.

Usage:
    python tools/api_coverage.py [SPEC_JSON] > docs/api-coverage.md

SPEC_JSON defaults to the vendored spec/qdrant-openapi-v1.15.5.json; tests/test_generated.py
checks the committed page is current.
The state of each operation is kept in COVERAGE below, the one place to edit; every
operation not listed there is "not yet". The script fails on an operationId that is not
in the spec or on an unknown state, so a typo cannot hide an operation.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from specfile import SPEC

HTTP_METHODS = ("get", "post", "put", "patch", "delete")

DONE, PARTIAL, NOT_YET = "done", "partial", "not yet"
STATES = (DONE, PARTIAL, NOT_YET)

# operationId -> (state, note). Edit here, then regenerate the page (command above).
# Example: "root": (DONE, ""), "update_collection": (PARTIAL, "optimizer settings only"),
COVERAGE: dict[str, tuple[str, str]] = {
    # Collections (issue 2)
    "get_collections": (DONE, ""),
    "get_collection": (DONE, "status green/yellow/red from the optimizer, indexed_vectors_count, segments_count"),
    "create_field_index": (DONE, "all 8 types and their params; logged, built on existing data, rebuilt on open; is_tenant/is_principal/on_disk stored, no layout effect yet"),
    "delete_field_index": (DONE, ""),
    "create_collection": (DONE, "all fields validated and persisted; HNSW, quantization, sparse index and optimizer settings take effect, per vector too; vector size 1..=65536; `init_from` copies points, payloads and payload indexes before the create is acknowledged (docs/configuration.md)"),
    "update_collection": (DONE, "config changes persisted; hnsw/quantization/on_disk changes (per vector too) rebuild indexed segments; metadata merged key by key, null removes a key"),
    "delete_collection": (DONE, ""),
    "collection_exists": (DONE, ""),
    "update_aliases": (DONE, "create/delete/rename applied atomically; an alias named as a collection is 409"),
    "get_collection_aliases": (DONE, ""),
    "get_collections_aliases": (DONE, ""),
    # Points (issue 3)
    "get_point": (DONE, ""),
    "get_points": (DONE, "with_payload true/false/list/include/exclude, with_vector true/false/names; shard_key"),
    "upsert_points": (DONE, "list and batch forms, named/sparse/multi vectors, update_filter, shard_key (one key or a list: the point goes to each key's shards)"),
    "delete_points": (DONE, "by ids or by filter; shard_key"),
    "update_vectors": (DONE, "shard_key"),
    "delete_vectors": (DONE, "by ids or by filter; shard_key"),
    "set_payload": (DONE, "with `key` for nested paths; by ids or by filter; shard_key"),
    "overwrite_payload": (DONE, "shard_key"),
    "delete_payload": (DONE, "shard_key"),
    "clear_payload": (DONE, "shard_key"),
    "batch_update": (DONE, "one WAL record per operation; a bad operation rejects the whole batch, except a shard key a sharded collection lacks (see below); each operation's own shard_key"),
    "scroll_points": (DONE, "by id with offset, or `order_by` over range indexes with start_from; shard_key"),
    "count_points": (DONE, "approximate counts are exact; shard_key"),
    "facet": (DONE, "keyword/integer/bool/uuid indexes, filter, limit; counts always exact; shard_key"),
    # Search family (issue 5; graph search and quantization: issue 6)
    "search_points": (DONE, "all vector forms, filter, params (hnsw_ef, exact, quantization, indexed_only), offset, score_threshold, with_payload/with_vector, shard_key"),
    "search_batch_points": (DONE, "searches on one vector and filter share one matrix product; each search's shard_key (searches of one key run together, answers in order)"),
    "search_point_groups": (DONE, "group_by keyword/integer (arrays join each group), group_size, with_lookup, shard_key"),
    "search_matrix_pairs": (DONE, "random sample among matching points having the vector; shard_key"),
    "search_matrix_offsets": (DONE, "shard_key"),
    "recommend_points": (DONE, "average_vector, best_score, sum_scores; ids or vectors; lookup_from (with its shard_key); examples excluded; shard_key"),
    "recommend_batch_points": (DONE, "each request's shard_key"),
    "recommend_point_groups": (DONE, "shard_key"),
    "discover_points": (DONE, "target + context pairs, or context only; lookup_from (with its shard_key); shard_key"),
    "discover_batch_points": (DONE, "each request's shard_key"),
    "query_points": (DONE, "every query variant incl. fusion rrf/dbsf, rrf k, formula, MMR, order_by, sample; nested prefetch; server-side inference for qdrant/bm25 Documents only (other models: 400); shard_key, lookup_from.shard_key"),
    "query_batch_points": (DONE, "each request's shard_key"),
    "query_points_groups": (DONE, "shard_key"),
    # Collection snapshots (issue 15, first slice: docs/snapshots.md)
    "create_snapshot": (DONE, "a tar of a consistent cut (flushed under the apply lock, RocksDB checkpoints and hard-linked index files), sha256 `.checksum` beside it, written to a temporary name and renamed; `wait=false` answers 202 accepted"),
    "list_snapshots": (DONE, ""),
    "get_snapshot": (DONE, "streamed with Content-Length"),
    "delete_snapshot": (DONE, ""),
    "recover_from_snapshot": (DONE, "file:// locations, plain paths and http(s) URLs (downloaded streamed to a temporary file with timeouts, `api_key` sent as the `api-key` header; a URL that cannot be fetched, answers non-2xx or times out is 400); `priority` accepted (one node: all the same); `checksum` checked (400); replaces the collection atomically, a failed recovery changes nothing"),
    "recover_from_uploaded_snapshot": (DONE, "multipart `snapshot`, `checksum`, `priority`, `wait`; the uploaded file is not kept in the snapshots directory (Qdrant keeps it)"),
    # Full and shard snapshots (issue 15: docs/snapshots.md)
    "create_full_snapshot": (DONE, "every collection (each cut consistent, all taken under one lock) and the aliases in one tar with Qdrant's config.json, sha256 `.checksum`, temporary name then rename; collections that failed to load are left out (logged, listed in snapshot.json); restored at start with `pydrant serve --storage-snapshot PATH`"),
    "list_full_snapshots": (DONE, ""),
    "get_full_snapshot": (DONE, "streamed with Content-Length"),
    "delete_full_snapshot": (DONE, ""),
    "create_shard_snapshot": (DONE, "shard 0 (a collection's one shard): a collection snapshot tar marked `shard_id`, in `<collection>/shards/0/`; other shard ids 404 as Qdrant's missing shard"),
    "list_shard_snapshots": (DONE, ""),
    "get_shard_snapshot": (DONE, "streamed with Content-Length"),
    "delete_shard_snapshot": (DONE, ""),
    "recover_shard_from_snapshot": (DONE, "http(s) URL (downloaded as for collections, `api_key`, `checksum`) or a snapshot name in the shard's directory; other URL schemes 400; replaces the points, keeps the collection's config, payload index declarations and aliases; vectors config must match (400)"),
    "recover_shard_from_uploaded_snapshot": (DONE, "multipart `snapshot`, `checksum`, `priority`, `wait`"),
    # Distributed API on one node (issue 16: pydrant/http/cluster.py)
    "cluster_status": (DONE, "`disabled`, as Qdrant with distributed mode off"),
    "collection_cluster_info": (DONE, "one local shard (id 0, Active, its points), no remote shards or transfers; peer id kept in storage/peer.json or `cluster.peer_id`"),
    "update_collection_cluster": (DONE, "body validated, then Qdrant's standalone answer: 400 Distributed mode disabled"),
    "create_shard_key": (PARTIAL, "body validated, then Qdrant's standalone answer (400 Distributed mode disabled); custom shard keys on local shards: issue 16 item 6"),
    "delete_shard_key": (PARTIAL, "as create_shard_key"),
    "remove_peer": (DONE, "Qdrant's standalone answers: shards on this peer (400) unless force, else 400 Distributed mode disabled."),
    "recover_current_peer": (DONE, "Qdrant's standalone answer: 500 running in standalone mode"),
    # Service (issue 2)
    "root": (DONE, "reports the Qdrant API version and pydrant's own"),
    "telemetry": (PARTIAL, "Qdrant's sections, details levels, anonymize and per-endpoint REST statistics; single node (no cluster, no gRPC), memory approximated (docs/observability.md)"),
    "metrics": (DONE, "app info, collections, points, WAL fsyncs, requests and latencies per endpoint"),
    "get_locks": (DONE, ""),
    "post_locks": (DONE, ""),
    "healthz": (DONE, ""),
    "livez": (DONE, ""),
    "readyz": (DONE, "ready only after storage has loaded"),
    "get_issues": (DONE, "Qdrant's `UNINDEXED_FIELD` (slow filtered searches, `service.slow_query_secs`), collection load failures, WAL write/apply/flush failures, disk almost full, and pydrant's optimizer failed/stuck and too-many-segments issues (docs/observability.md \"Issues\"); a collection token sees its collections' issues only"),
    "clear_issues": (DONE, "clears the board; a condition still present is reported again"),
}


def load_operations(spec: dict) -> list[dict]:
    """Every operation of the spec, in the spec's tag order, then path order."""
    tag_order = {tag["name"]: index for index, tag in enumerate(spec.get("tags", []))}
    operations = []
    for path, item in spec["paths"].items():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            tag = (operation.get("tags") or ["(untagged)"])[0]
            operations.append(
                {"method": method.upper(), "path": path, "id": operation["operationId"], "tag": tag}
            )
    # sorted() is stable, so operations keep the spec's path order within each tag.
    return sorted(operations, key=lambda op: tag_order.get(op["tag"], len(tag_order)))


# Where pydrant knowingly answers differently from Qdrant 1.15.5, and why. Rendered under the
# table; keep it short and true (each line: the behaviour, Qdrant's, the reason).
DIFFERENCES: list[str] = [
    "**Inference:** only `qdrant/bm25` Documents are embedded on the server. Other models answer "
    "400 with Qdrant's `InferenceService is not initialized` text; Qdrant answers that with a 500, "
    "but the request can be fixed by the client and nothing failed inside the server.",
    "**`init_from`** copies the source's points before the create is acknowledged, and a failed "
    "copy fails the create (no half-created collection). Qdrant acknowledges first and copies in "
    "the background, only logging a failure.",
    "**Aliases:** renaming an alias onto an existing collection's name is refused (409); Qdrant "
    "does not check, and the alias would hide the collection. Deleting an alias that does not "
    "exist is a 404 (Qdrant 1.15's answer could not be confirmed).",
    "**Request parsing:** a body that fits several variants of an untagged union is read as the "
    "variant with the most fields set (pydantic), where serde takes the first that fits; the two "
    "differ only on bodies that mix variants. `with_vector` and `with_vectors` together, and "
    "`wait=1`/`wait=0`, are accepted where Qdrant refuses them. `size: 0` is a 422 range error "
    "here; Qdrant's `NonZeroU64` makes it a 400 deserialize error.",
    "**Formula variables** read the stored payload; Qdrant reads a numeric payload index when there "
    "is one, so there a string stored under an integer-indexed key counts as missing (its default "
    "applies) and here it is an error.",
    "**Text:** the `multilingual` tokenizer (full-text index and BM25) approximates charabia: "
    "scripts written without spaces are split per character, not by dictionary words "
    "(segments/text_analyzer.py).",
    "**Numbers:** f32 values print in their shortest round-tripping form as Qdrant's, but large and "
    "small exponents are written `3.4e+38` (orjson) where Qdrant's ryu writes `3.4e38`; both parse "
    "to the same f32.",
    "**Snapshots:** a full snapshot leaves no collection snapshots behind in the collections' "
    "directories (Qdrant's stay listed); a shard snapshot is pydrant's collection snapshot format "
    "(shard 0 is the whole collection), not Qdrant's shard layout, and its recovery refuses a "
    "snapshot whose vectors config differs from the collection's (Qdrant does not check); "
    "`--snapshot` together with `--storage-snapshot` is refused at start (Qdrant ignores "
    "`--snapshot`). Snapshot files are pydrant's own format: Qdrant's snapshots are refused (400).",
    "**Telemetry and metrics:** one node, no gRPC; memory figures are approximated from "
    "`/proc/self/status`, hardware counters are not measured (docs/observability.md).",
    "**Shard keys** (`shard_key` of every point read and write): a key the collection lacks is "
    "400 as in Qdrant, but found at another step. A write's points and filters are checked "
    "before its key (Qdrant routes first); scroll, count, facet and retrieve check the key before "
    "strict mode (Qdrant after it); the search family checks it before looking up example ids "
    "(Qdrant after). A `POST /points/batch` naming a key the collection lacks is refused whole, "
    "before any of its operations is applied (Qdrant applies a batch one operation at a time and "
    "keeps the ones before the bad key). A malformed key is a 400 format error in pydantic's "
    "words, not serde's.",
]


def check_coverage(operations: list[dict], coverage: dict[str, tuple[str, str]]) -> None:
    known = {op["id"] for op in operations}
    unknown = sorted(set(coverage) - known)
    if unknown:
        raise SystemExit(f"COVERAGE names operations that are not in the spec: {', '.join(unknown)}")
    bad = sorted(op_id for op_id, (state, _) in coverage.items() if state not in STATES)
    if bad:
        raise SystemExit(f"COVERAGE has states other than {STATES} for: {', '.join(bad)}")


def state_of(op_id: str) -> tuple[str, str]:
    return COVERAGE.get(op_id, (NOT_YET, ""))


def render(operations: list[dict], spec_name: str) -> str:
    counts = Counter(state_of(op["id"])[0] for op in operations)
    lines = [
        "# API coverage",
        "",
        f"Every operation of Qdrant's REST API ({spec_name}, {len(operations)} operations) and how far",
        "pydrant implements it:",
        "",
        "- **done**: implemented as Qdrant documents it, parameters and errors included, and tested.",
        "- **partial**: answers, but some parameters or behaviours are missing; the note says which.",
        "- **not yet**: not implemented.",
        "",
        "This page is generated; edit `COVERAGE` in `tools/api_coverage.py`, then run",
        "",
        "```",
        "python tools/api_coverage.py > docs/api-coverage.md",
        "```",
        "",
        "Summary: " + ", ".join(f"{counts.get(state, 0)} {state}" for state in STATES) + ".",
        "",
        "| Tag | Method | Path | operationId | State | Note |",
        "|---|---|---|---|---|---|",
    ]
    for op in operations:
        state, note = state_of(op["id"])
        lines.append(f"| {op['tag']} | {op['method']} | `{op['path']}` | `{op['id']}` | {state} | {note} |")
    lines += ["", "## Where pydrant still differs from Qdrant", ""]
    lines += [f"- {difference}" for difference in DIFFERENCES]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", type=Path, default=SPEC, help="OpenAPI JSON of Qdrant")
    args = parser.parse_args(argv)
    spec = json.loads(args.spec.read_text(encoding="utf-8"))
    operations = load_operations(spec)
    check_coverage(operations, COVERAGE)
    sys.stdout.write(render(operations, args.spec.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
