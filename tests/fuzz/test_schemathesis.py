"""Schema-driven fuzzing: every operation of Qdrant's v1.15.5 spec, against a real server.

The rule: whatever the request, the server never answers 5xx, a 4xx comes in Qdrant's
error envelope (`{"status": {"error": "..."}, "time": ...}`), and the server stays up.

Design
------
- The spec is the vendored copy, `spec/qdrant-openapi-v1.15.5.json`. schemathesis makes one
  pytest item per operation (71) and generates requests from it, valid ones and invalid ones
  (its "positive" and "negative" modes: wrong types, missing fields, out-of-range values).
- One real server (tests/serverproc.py) for the module, with fixture collections created
  first so requests get past 404s: `fuzz_plain` (an unnamed 4-d Cosine vector, keyword and
  integer payload indexes), `fuzz_named` (named dense `image`, multivector `colbert`,
  sparse `sparse`), the alias `fuzz_alias` of `fuzz_plain`, and a few points in each.
  `collection_name` is mostly one of these (a seeded choice), sometimes the generated
  value (unknown names: 404s, and collection creation with fuzzed configs); `id` and
  `field_name` are mostly existing ones.
- Every response is checked; a 5xx does not stop the run: each distinct one (operation,
  status, error message) is recorded with a curl reproducer, and the last test fails listing
  them all and checks the server is still healthy (/healthz, /readyz, the fixtures).
- Examples per operation: `PYDRANT_FUZZ_EXAMPLES` (default 6, the CI pass, derandomized so a
  CI run is reproducible). A long pass is one command:

      PYDRANT_FUZZ_EXAMPLES=200 python -m pytest tests/fuzz -q

  (random, unless `PYDRANT_FUZZ_DERANDOMIZE=1`; `PYDRANT_FUZZ_PHASES` below). The summary
  line gives operations, requests and 5xx; `PYDRANT_FUZZ_REPORT=path` also writes them as
  JSON (and each new problem, as found, to `path.live`).

What is excluded or repaired, and why
-------------------------------------
Nothing of the spec is excluded from generation; destructive operations are steered so they
cannot break the rest of the run:
- DELETE /collections/{name} never gets a fixture name (it would take the fixtures away from
  every later operation); it runs against unknown names and `fuzz_doomed`, recreated after.
- PATCH /collections/{name} gets `fuzz_patch` (or unknown names), not the fixtures: a fuzzed
  strict-mode or optimizer config would change what every later request gets. Other
  operations also go to `fuzz_patch` now and then, so they meet whatever config it got.
- A collection that PUT /collections/{name} created is deleted right away (its WAL
  files are preallocated; a long pass creates thousands).
- After a points write to a fixture collection (delete, vectors or payload changes, batch)
  the seed points are upserted again; a deleted fixture payload index is recreated; after
  POST /locks the write lock is lifted; after POST /collections/aliases `fuzz_alias` is
  restored. These repairs are requests of their own and must not fail either.
- Operations pydrant does not implement yet (see docs/api-coverage.md) are fuzzed like
  the others: they must answer 4xx, not 5xx.
- One 5xx is Qdrant's own answer and expected (QDRANT_5XX): `POST /cluster/recover` on a
  node without distributed mode is Qdrant's 500 "Qdrant is running in standalone mode"
  (src/actix/api/cluster_api.rs -> toc.request_snapshot -> StorageError::service_error).
  Only that operation with exactly that message is let through.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from urllib.parse import quote

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck

from serverproc import ServerProcess

pytestmark = pytest.mark.e2e

SPEC = Path(__file__).resolve().parents[2] / "spec" / "qdrant-openapi-v1.15.5.json"
EXAMPLES = int(os.environ.get("PYDRANT_FUZZ_EXAMPLES", "6"))
DERANDOMIZE = os.environ.get("PYDRANT_FUZZ_DERANDOMIZE", "1" if EXAMPLES <= 6 else "0") == "1"
SEED = 0 if DERANDOMIZE else random.randrange(2**32)
REQUEST_TIMEOUT = 60

FIXTURES = ("fuzz_plain", "fuzz_named", "fuzz_alias")
DOOMED = "fuzz_doomed"
PATCHED = "fuzz_patch"
SEED_IDS = [1, 2, 3, 4, 5, "6a1c2b3d-0000-4000-8000-000000000006"]
INDEXED_FIELDS = {"city": "keyword", "count": "integer"}

schema = schemathesis.openapi.from_path(SPEC)
# schemathesis's phases: `fuzzing` (hypothesis-generated cases, EXAMPLES per operation),
# `coverage` (boundary and invalid values of every parameter, and unexpected methods) and
# `examples` (cases combined from the spec's `example` values: ~60 s only to build at
# collection, then tens of thousands of requests, over 45,000 for /points/query alone, almost
# all 400s). CI runs `fuzzing`; the long pass `coverage,fuzzing`; all three with
# PYDRANT_FUZZ_PHASES=examples,coverage,fuzzing (about 40 minutes on 2 cores).
PHASES = set(os.environ.get("PYDRANT_FUZZ_PHASES", "fuzzing" if EXAMPLES <= 6 else "coverage,fuzzing").split(","))
schema.config.phases.examples.enabled = "examples" in PHASES
schema.config.phases.coverage.enabled = "coverage" in PHASES
schema.config.phases.fuzzing.enabled = "fuzzing" in PHASES


# -- fixtures on the server --------------------------------------------------------------


def _seed_points(name: str) -> list[dict]:
    points = []
    for i, point_id in enumerate(SEED_IDS):
        payload = {"city": ["Berlin", "Paris", "Tokyo"][i % 3], "count": i, "tags": ["a", "b"][: i % 3],
                   "nested": {"x": i * 0.5, "flag": i % 2 == 0}}
        if name == "fuzz_plain":
            vector = [float(i + 1), 1.0, -float(i), 0.5]
        else:
            vector = {
                "image": [1.0, float(i), 0.0, -1.0],
                "colbert": [[1.0, float(i)], [0.5, -0.5]],
                "sparse": {"indices": [i, i + 10], "values": [1.0, 0.5]},
            }
        points.append({"id": point_id, "vector": vector, "payload": payload})
    return points


def _put(session, url, body):
    r = session.put(url, json=body, timeout=REQUEST_TIMEOUT)
    assert r.status_code == 200, f"fixture set-up PUT {url}: {r.status_code} {r.text}"


def _create_collection(session, base: str, name: str) -> None:
    if name == "fuzz_plain":
        config = {"vectors": {"size": 4, "distance": "Cosine"}}
    else:
        config = {
            "vectors": {
                "image": {"size": 4, "distance": "Dot"},
                "colbert": {"size": 2, "distance": "Cosine", "multivector_config": {"comparator": "max_sim"}},
            },
            "sparse_vectors": {"sparse": {}},
        }
    _put(session, f"{base}/collections/{name}", config)


def _reseed(session, base: str, name: str) -> None:
    _put(session, f"{base}/collections/{name}/points?wait=true", {"points": _seed_points(name)})


def _ensure_indexes(session, base: str) -> None:
    for field, kind in INDEXED_FIELDS.items():
        _put(session, f"{base}/collections/fuzz_plain/index?wait=true", {"field_name": field, "field_schema": kind})


def _ensure_alias(session, base: str) -> None:
    r = session.post(f"{base}/collections/aliases", json={"actions": [
        {"delete_alias": {"alias_name": "fuzz_alias"}},
        {"create_alias": {"alias_name": "fuzz_alias", "collection_name": "fuzz_plain"}},
    ]}, timeout=REQUEST_TIMEOUT)
    if r.status_code != 200:  # the alias was not there to delete
        r = session.post(f"{base}/collections/aliases", json={"actions": [
            {"create_alias": {"alias_name": "fuzz_alias", "collection_name": "fuzz_plain"}}]}, timeout=REQUEST_TIMEOUT)
    assert r.status_code == 200, r.text


class Fuzz:
    """The server, an HTTP session and what the run found."""

    def __init__(self, server: ServerProcess):
        self.server = server
        self.base = server.url
        self.session = requests.Session()
        self.requests = 0
        self.operations: set[str] = set()
        self.statuses: dict[int, int] = {}
        self.failures: dict[tuple, dict] = {}
        # steers path parameters (schemathesis's own examples phase rules out `@given`)
        self.rng = random.Random(SEED)

    def set_up(self) -> None:
        for name in ("fuzz_plain", "fuzz_named"):
            _create_collection(self.session, self.base, name)
            _reseed(self.session, self.base, name)
        _ensure_indexes(self.session, self.base)
        _ensure_alias(self.session, self.base)
        _create_collection(self.session, self.base, PATCHED)  # named vectors, so PATCHes can name them
        _put(self.session, f"{self.base}/collections/{DOOMED}", {"vectors": {"size": 4, "distance": "Dot"}})

    def record(self, case, response) -> None:
        self.requests += 1
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        problem = _problem(response)
        if problem is None:
            return
        key = (case.operation.label, response.status_code, problem[:200])
        if key in QDRANT_5XX:
            return
        if key not in self.failures and os.environ.get("PYDRANT_FUZZ_REPORT"):  # as found, for long passes
            with open(os.environ["PYDRANT_FUZZ_REPORT"] + ".live", "a") as live:
                live.write(f"{key[0]} -> {key[1]}: {key[2]}\n    {case.as_curl_command(base_url=self.base)}\n")
        entry = self.failures.setdefault(key, {"count": 0, "curl": case.as_curl_command(base_url=self.base)})
        entry["count"] += 1


# 5xx answers that are Qdrant's own for that operation (see the module docstring).
QDRANT_5XX = {("POST /cluster/recover", 500, "Service internal error: Qdrant is running in standalone mode")}


def _problem(response) -> str | None:
    """What is wrong with a response, or None."""
    status = response.status_code
    if status >= 500:
        try:
            return str(response.json()["status"]["error"])
        except Exception:
            return response.text[:300] or "(empty body)"
    if 400 <= status < 500:
        try:
            body = response.json()
            ok = isinstance(body["status"]["error"], str) and "time" in body
        except Exception:
            ok = False
        if not ok:
            return f"a {status} without Qdrant's error envelope: {response.text[:200]!r}"
    return None


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    server = ServerProcess(root / "storage").start()
    state = Fuzz(server)
    state.set_up()
    yield state
    state.session.close()
    server.stop()


# -- the fuzz test --------------------------------------------------------------------------


def _operation_id(case) -> str:
    return case.operation.definition.raw.get("operationId", case.operation.label)


def _steer(case, rng: random.Random, operation_id: str) -> None:
    """Point path parameters at the fixtures (mostly), keeping destructive operations off them."""
    params = case.path_parameters
    if params is None:
        return
    if "collection_name" in params:
        if operation_id == "delete_collection":
            choices = [DOOMED, None]
        elif operation_id == "update_collection":
            choices = [PATCHED, None]
        elif operation_id == "create_collection":
            choices = [None, None, "fuzz_plain"]  # mostly new names, so fuzzed configs are created
        else:
            choices = [*FIXTURES, "fuzz_named", PATCHED, None]
        name = rng.choice(choices)
        if name is not None:
            params["collection_name"] = name
    if "id" in params and rng.random() < 0.5:
        params["id"] = rng.choice(SEED_IDS)
    if "field_name" in params and rng.random() < 0.5:
        params["field_name"] = rng.choice(sorted(INDEXED_FIELDS))


POINT_WRITES = {
    "upsert_points", "delete_points", "update_vectors", "delete_vectors", "set_payload", "overwrite_payload",
    "delete_payload", "clear_payload", "batch_update",
}


def _repair(fuzz: Fuzz, case, operation_id: str, response) -> None:
    """Undo what a destructive operation may have done to the fixtures."""
    name = (case.path_parameters or {}).get("collection_name")
    if operation_id == "create_collection" and response.status_code == 200:
        # a created collection is deleted at once: a long pass creates thousands, each with
        # its WAL files preallocated (the deletion must not fail either)
        r = fuzz.session.delete(f"{fuzz.base}/collections/{quote(name, safe='')}", timeout=REQUEST_TIMEOUT)
        fuzz.record(case, r)
    if operation_id in POINT_WRITES and name in FIXTURES:
        _reseed(fuzz.session, fuzz.base, "fuzz_plain" if name == "fuzz_alias" else name)
    elif operation_id == "delete_field_index" and name in FIXTURES:
        _ensure_indexes(fuzz.session, fuzz.base)
    elif operation_id == "post_locks":
        r = fuzz.session.post(f"{fuzz.base}/locks", json={"write": False}, timeout=REQUEST_TIMEOUT)
        assert r.status_code == 200, r.text
    elif operation_id == "update_aliases":
        _ensure_alias(fuzz.session, fuzz.base)
    elif operation_id == "delete_collection" and name == DOOMED:
        if fuzz.session.get(f"{fuzz.base}/collections/{DOOMED}/exists").json()["result"]["exists"] is False:
            _put(fuzz.session, f"{fuzz.base}/collections/{DOOMED}", {"vectors": {"size": 4, "distance": "Dot"}})


@schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=DERANDOMIZE,
    suppress_health_check=list(HealthCheck),
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],  # no shrinking: 5xx are collected, not raised
)
def test_no_5xx(fuzz, case):
    operation_id = _operation_id(case)
    _steer(case, fuzz.rng, operation_id)
    fuzz.operations.add(operation_id)
    try:
        response = case.call(base_url=fuzz.base, session=fuzz.session, timeout=REQUEST_TIMEOUT)
    except requests.ConnectionError as exc:
        pytest.fail(f"the server went away on {case.operation.label}:\n{case.as_curl_command(base_url=fuzz.base)}\n"
                    f"{exc}\n{fuzz.server.log_tail()}")
    fuzz.record(case, response)
    _repair(fuzz, case, operation_id, response)


def test_no_5xx_found_and_server_still_up(fuzz, capsys):
    """Runs last: the server answers health checks, the fixtures are there, and no request
    of the run got a 5xx (each distinct one listed with a curl reproducer)."""
    assert fuzz.server.proc.poll() is None, fuzz.server.log_tail()
    for path in ("/healthz", "/readyz", "/collections/fuzz_plain", "/collections/fuzz_named"):
        assert fuzz.session.get(fuzz.base + path, timeout=REQUEST_TIMEOUT).status_code == 200, path
    summary = (
        f"fuzz: {len(fuzz.operations)} operations, {fuzz.requests} requests "
        f"({EXAMPLES} examples per operation{', derandomized' if DERANDOMIZE else ''}), "
        f"statuses {dict(sorted(fuzz.statuses.items()))}, {len(fuzz.failures)} distinct problems"
    )
    with capsys.disabled():
        print(f"\n{summary}")
    if os.environ.get("PYDRANT_FUZZ_REPORT"):
        Path(os.environ["PYDRANT_FUZZ_REPORT"]).write_text(json.dumps({
            "operations": len(fuzz.operations), "requests": fuzz.requests, "examples": EXAMPLES,
            "statuses": fuzz.statuses,
            "problems": [{"operation": k[0], "status": k[1], "error": k[2], **v} for k, v in fuzz.failures.items()],
        }, indent=1, default=str))
    problems = "\n\n".join(
        f"{label} -> {status} ({entry['count']}x): {error}\n    {entry['curl']}"
        for (label, status, error), entry in fuzz.failures.items()
    )
    assert not fuzz.failures, f"{summary}\n\n{problems}"
