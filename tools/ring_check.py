"""Check pydrant's hash ring (pydrant/collection/hash_ring.py) against a real Qdrant.

    python tools/ring_check.py --url http://localhost:6333 [--shards 3] [--ints 50] [--uuids 20]
                               [--name ring_check] [--api-key KEY] [--replace] [--keep]

Meant for a real Qdrant 1.15.5 (or any version to re-check), which this repository does not
have: run it wherever one runs, e.g. `docker run -p 6333:6333 qdrant/qdrant:v1.15.5`.
Qdrant's REST API cannot read one shard, so the tool watches the shards' point counts:

1. creates collection NAME with `shard_number` N (1-d vectors) — an existing NAME is
   refused unless --replace;
2. upserts the ids one at a time (`wait=true`): integer ids 0..INTS-1, then UUIDS UUIDs
   (Qdrant's example UUID 550e8400-e29b-41d4-a716-446655440000 and uuid5 names);
3. after each upsert reads `GET /collections/NAME/cluster` and takes the shard whose
   `local_shards[].points_count` grew by one as the shard Qdrant chose (the counts are
   approximate in Qdrant, `exact: false`, but exact for a fresh collection with no
   deletions);
4. prints one line per id (predicted shard, observed shard) and deletes the collection
   unless --keep.

Exit status 0 if every id landed where `HashRing(range(N))` predicts, 1 on any difference
(including shards other than 0..N-1, or an upsert that no single shard counted; `?` in the
observed column), 2 if NAME exists without --replace.
Against pydrant (one shard per collection until docs/design/local-shards.md step S2) only
`--shards 1` is meaningful: it checks the tool's plumbing, not the ring.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from pydrant.collection.hash_ring import HashRing  # noqa: E402

EXAMPLE_UUID = "550e8400-e29b-41d4-a716-446655440000"
UUID_NAMESPACE = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")  # RFC 4122 URL namespace


class Api:
    def __init__(self, url: str, api_key: str | None, timeout: float):
        self.url = url.rstrip("/")
        self.headers = {"content-type": "application/json"}
        if api_key:
            self.headers["api-key"] = api_key
        self.timeout = timeout

    def call(self, method: str, path: str, body: object = None, ok_404: bool = False) -> dict | None:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            if ok_404 and error.code == 404:
                return None
            detail = error.read().decode(errors="replace")[:500]
            raise SystemExit(f"{method} {path}: HTTP {error.code}: {detail}") from None
        except urllib.error.URLError as error:
            raise SystemExit(f"{method} {path}: cannot reach {self.url}: {error.reason}") from None


def test_ids(ints: int, uuids: int) -> list[int | str]:
    names = [EXAMPLE_UUID] + [str(uuid.uuid5(UUID_NAMESPACE, f"ring-check-{i}")) for i in range(uuids - 1)]
    return list(range(ints)) + names[:uuids]


def shard_counts(api: Api, name: str) -> dict[int, int]:
    info = api.call("GET", f"/collections/{name}/cluster")["result"]  # type: ignore[index]
    return {int(s["shard_id"]): int(s.get("points_count") or 0) for s in info["local_shards"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Compare pydrant's point-id -> shard hash ring with a real Qdrant's routing "
        "(needs a running Qdrant 1.15.5, not available in this repository; against pydrant, "
        "which has one shard per collection, only --shards 1 checks the plumbing).",
    )
    parser.add_argument("--url", required=True, help="the Qdrant REST URL, e.g. http://localhost:6333")
    parser.add_argument("--shards", type=int, default=3, help="shard_number of the test collection (3)")
    parser.add_argument("--ints", type=int, default=50, help="integer ids 0..INTS-1 to route (50)")
    parser.add_argument("--uuids", type=int, default=20, help="UUID ids to route (20)")
    parser.add_argument("--name", default="ring_check", help="test collection name (ring_check)")
    parser.add_argument("--api-key", help="the server's api key, if it has one")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request (30)")
    parser.add_argument("--replace", action="store_true", help="delete an existing collection NAME first")
    parser.add_argument("--keep", action="store_true", help="keep the test collection afterwards")
    args = parser.parse_args(argv)
    if args.shards < 1:
        parser.error("--shards must be at least 1")

    api = Api(args.url, args.api_key, args.timeout)
    version = (api.call("GET", "/") or {}).get("version", "?")
    print(f"server {args.url}: version {version}")
    if api.call("GET", f"/collections/{args.name}", ok_404=True) is not None:
        if not args.replace:
            print(f"collection {args.name!r} exists; pass --replace to delete it first", file=sys.stderr)
            return 2
        api.call("DELETE", f"/collections/{args.name}")
    api.call("PUT", f"/collections/{args.name}", {"vectors": {"size": 1, "distance": "Dot"}, "shard_number": args.shards})
    failures = 0
    try:
        counts = shard_counts(api, args.name)
        shard_ids = sorted(counts)
        if shard_ids != list(range(args.shards)):  # standalone auto sharding: shards 0..N-1
            print(f"DIFFERENT: asked for {args.shards} shards, the server reports shards {shard_ids}")
            failures += 1
        ring = HashRing(range(args.shards))
        ids = test_ids(args.ints, args.uuids)
        predicted = ring.shard_of_points(ids)
        print(f"{'id':<38} {'predicted':>9} {'observed':>8}")
        for point_id, expect in zip(ids, predicted):
            api.call("PUT", f"/collections/{args.name}/points?wait=true", {"points": [{"id": point_id, "vector": [1.0]}]})
            after = shard_counts(api, args.name)
            grew = [s for s in after if after[s] != counts.get(s, 0)]
            observed = str(grew[0]) if len(grew) == 1 and after[grew[0]] == counts.get(grew[0], 0) + 1 else "?"
            counts = after
            same = observed == str(int(expect))
            failures += not same
            print(f"{point_id!s:<38} {int(expect):>9} {observed:>8}{'' if same else '  DIFFERENT'}")
    finally:
        if not args.keep:
            api.call("DELETE", f"/collections/{args.name}")
    total = args.ints + args.uuids
    print(f"{total} ids over {args.shards} shards: {'all as predicted' if not failures else f'{failures} difference(s)'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
