"""A collection snapshot taken under load restores on another server, whole (issue 15;
docs/snapshots.md), driven with qdrant-client 1.15.1.

The source collection has three named dense vectors (one with scalar quantization, one
with product quantization, one a max_sim multivector), a sparse vector, payload indexes of
eight kinds, an HNSW-indexed segment (built by the optimizer: green, indexed vectors) and
an appendable segment with fresh points. The snapshot is created while writer threads
upsert, delete and set payloads and searcher threads query; every search must succeed
meanwhile, and every write acknowledged before the create call began must be in the
snapshot. It is downloaded and recovered on a second server by upload (raw multipart with
`priority` and `checksum`) and by URL from the first server; each recovered collection must
equal the snapshot: every point with every vector and payload, the payload index schema,
the full config, status green, and the same search answers as the source.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time

import httpx
import pytest
from qdrant_client import QdrantClient, models

from serverproc import ServerProcess

pytestmark = pytest.mark.e2e

NAME = "rt"
DIM = 16
BASE = 600  # points written before the snapshot and never touched by the load
FRESH = range(BASE, BASE + 40)  # written after the HNSW segment was built: the appendable segment
WRITERS = 2
IDS_PER_WRITER = 30
WRITER_ID0 = 100_000


def _dense(i: int, salt: int = 0) -> list[float]:
    rng = random.Random(i * 7919 + salt)
    return [rng.uniform(-1, 1) for _ in range(DIM)]


def _vectors(i: int, salt: int = 0) -> dict:
    rng = random.Random(i * 31 + salt)
    return {
        "dense": _dense(i, salt),
        "pq": _dense(i, salt + 1),
        "multi": [[rng.uniform(-1, 1) for _ in range(4)] for _ in range(1 + i % 3)],
        "text": models.SparseVector(indices=sorted(rng.sample(range(200), 3)), values=[rng.uniform(0.1, 2) for _ in range(3)]),
    }


def _payload(i: int) -> dict:
    return {
        "origin": "base",
        "city": ["Berlin", "Paris", "Tokyo", "Lima"][i % 4],
        "n": i,
        "price": i * 0.25,
        "title": f"snapshot round trip number {i} {'even' if i % 2 == 0 else 'odd'}",
        "loc": {"lon": 13.0 + (i % 50) * 0.1, "lat": 52.0 - (i % 40) * 0.1},
        "ts": f"2026-12-{1 + i % 28:02d}T10:{i % 60:02d}:00Z",
        "flag": i % 3 == 0,
        "uid": f"00000000-0000-4000-8000-{i:012d}",
    }


def _points(ids) -> list[models.PointStruct]:
    return [models.PointStruct(id=i, vector=_vectors(i), payload=_payload(i)) for i in ids]


INDEXES = {
    "city": models.PayloadSchemaType.KEYWORD,
    "n": models.PayloadSchemaType.INTEGER,
    "price": models.PayloadSchemaType.FLOAT,
    "title": models.TextIndexParams(type=models.TextIndexType.TEXT, tokenizer=models.TokenizerType.WORD, lowercase=True),
    "loc": models.PayloadSchemaType.GEO,
    "ts": models.PayloadSchemaType.DATETIME,
    "flag": models.PayloadSchemaType.BOOL,
    "uid": models.PayloadSchemaType.UUID,
    "origin": models.PayloadSchemaType.KEYWORD,
}


def _wait_green(client: QdrantClient, name: str, timeout: float = 90) -> models.CollectionInfo:
    deadline = time.monotonic() + timeout
    while True:
        info = client.get_collection(name)
        if info.status == models.CollectionStatus.GREEN:
            return info
        assert time.monotonic() < deadline, f"{name} never turned green: {info.status}"
        time.sleep(0.1)


def _rounded(vector):
    if isinstance(vector, models.SparseVector):
        return ("sparse", tuple(vector.indices), tuple(round(v, 4) for v in vector.values))
    if vector and isinstance(vector[0], list):
        return tuple(tuple(round(x, 4) for x in row) for row in vector)
    return tuple(round(x, 4) for x in vector)


def _state(client: QdrantClient, name: str) -> dict:
    """id -> (payload, {vector name: rounded vector}) of every point."""
    out, offset = {}, None
    while True:
        records, offset = client.scroll(name, limit=500, offset=offset, with_payload=True, with_vectors=True)
        for r in records:
            out[r.id] = (r.payload, {k: _rounded(v) for k, v in (r.vector or {}).items()})
        if offset is None:
            return out


def _schema(info: models.CollectionInfo) -> dict:
    return {k: (v.data_type, v.params) for k, v in info.payload_schema.items()}


BASE_ONLY = models.Filter(must=[models.FieldCondition(key="origin", match=models.MatchValue(value="base"))])


def _searches(client: QdrantClient, name: str) -> list:
    """The answers of a set of queries over the points the load never touches."""
    answers = []
    exact = models.SearchParams(exact=True)
    rescored = models.SearchParams(quantization=models.QuantizationSearchParams(rescore=True, oversampling=2.0))
    for q in (3, 77, 250, BASE + 5):
        for using, params in (("dense", exact), ("dense", rescored), ("pq", exact), ("pq", None), ("multi", exact)):
            hits = client.query_points(name, query=_vectors(q, salt=5)[using], using=using, limit=8,
                                       query_filter=BASE_ONLY, search_params=params).points
            answers.append((q, using, [(h.id, round(h.score, 3)) for h in hits]))
        hits = client.query_points(name, query=_vectors(q)["text"], using="text", limit=8, query_filter=BASE_ONLY).points
        answers.append((q, "text", [(h.id, round(h.score, 3)) for h in hits]))
    filtered = models.Filter(must=[
        models.FieldCondition(key="city", match=models.MatchValue(value="Paris")),
        models.FieldCondition(key="price", range=models.Range(gte=10, lt=120)),
        models.FieldCondition(key="title", match=models.MatchText(text="even")),
        models.FieldCondition(key="ts", range=models.DatetimeRange(gte="2026-12-05T00:00:00Z")),
        models.FieldCondition(key="loc", geo_radius=models.GeoRadius(center=models.GeoPoint(lon=14.0, lat=51.0), radius=200_000)),
    ])
    answers.append(("count", client.count(name, count_filter=filtered, exact=True).count))
    hits = client.query_points(name, query=_dense(9), using="dense", limit=10, query_filter=filtered,
                               search_params=exact).points
    answers.append(("filtered", [(h.id, round(h.score, 3)) for h in hits]))
    return answers


class Writer(threading.Thread):
    """Owns a range of ids: upserts, deletes and payload updates on them, one at a time,
    recording for each operation when it was sent and when it was acknowledged."""

    def __init__(self, url: str, index: int, seed: int):
        super().__init__(daemon=True)
        self.url = url
        self.ids = list(range(WRITER_ID0 + index * IDS_PER_WRITER, WRITER_ID0 + (index + 1) * IDS_PER_WRITER))
        self.rng = random.Random(seed)
        self.state: dict = {}
        self.log: list[tuple[int, object, float, float]] = []  # (id, state after, sent, acknowledged)
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self):
        with httpx.Client(base_url=self.url, timeout=30) as http:
            n = 0
            while not self.stop.is_set():
                n += 1
                point_id = self.rng.choice(self.ids)
                current = self.state.get(point_id)
                wait = "true" if self.rng.random() < 0.5 else "false"
                path = f"/collections/{NAME}/points"
                roll = self.rng.random()
                if current is not None and roll < 0.2:
                    new, request = None, ("POST", f"{path}/delete?wait={wait}", {"points": [point_id]})
                elif current is not None and roll < 0.5:
                    extra = {"tick": n}
                    new = {**current, **extra}
                    request = ("POST", f"{path}/payload?wait={wait}", {"payload": extra, "points": [point_id]})
                else:
                    new = {"origin": "writer", "n": point_id, "round": n}
                    vectors = _vectors(point_id, salt=n)
                    vectors["text"] = vectors["text"].model_dump()
                    request = ("PUT", f"{path}?wait={wait}", {"points": [{"id": point_id, "vector": vectors, "payload": new}]})
                sent = time.monotonic()
                response = http.request(request[0], request[1], json=request[2])
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code} {response.text[:200]}")
                    return
                self.log.append((point_id, new, sent, time.monotonic()))
                self.state[point_id] = new
                if new is None:
                    del self.state[point_id]

    def allowed(self, point_id, started: float, finished: float) -> list:
        """The states of `point_id` a snapshot created between `started` and `finished`
        may hold: every operation acknowledged before `started` is in, none sent after
        `finished` is."""
        ops = [(new, sent, acked) for pid, new, sent, acked in self.log if pid == point_id]
        must = sum(1 for _, _, acked in ops if acked < started)
        may = sum(1 for _, sent, _ in ops if sent <= finished)
        states = [None] + [new for new, _, _ in ops]
        return states[must:may + 1]


class Searcher(threading.Thread):
    def __init__(self, url: str, seed: int):
        super().__init__(daemon=True)
        self.url = url
        self.rng = random.Random(seed)
        self.done: list[tuple[float, float]] = []
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self):
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self.stop.is_set():
                using = self.rng.choice(["dense", "pq", "multi"])
                query = _vectors(self.rng.randrange(BASE), salt=9)[using]
                start = time.monotonic()
                response = http.post(f"/collections/{NAME}/points/query", json={"query": query, "using": using, "limit": 5})
                if response.status_code != 200 or len(response.json()["result"]["points"]) != 5:
                    self.failures.append(f"{response.status_code} {response.text[:200]}")
                self.done.append((start, time.monotonic()))


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    root = tmp_path_factory.mktemp("roundtrip")
    source = ServerProcess(root / "a" / "storage")
    target = ServerProcess(root / "b" / "storage")
    for s in (source, target):
        s.storage.parent.mkdir(parents=True)
        s.start()
    yield source, target
    for s in (source, target):
        s.stop()


@pytest.fixture(scope="module")
def taken(servers, tmp_path_factory):
    """The source collection, a snapshot of it created under load, and what it must hold."""
    source, _ = servers
    client = QdrantClient(url=source.url, timeout=60)
    client.create_collection(
        NAME,
        vectors_config={
            "dense": models.VectorParams(size=DIM, distance=models.Distance.COSINE, quantization_config=models.ScalarQuantization(
                scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, quantile=0.99, always_ram=True))),
            "pq": models.VectorParams(size=DIM, distance=models.Distance.EUCLID, quantization_config=models.ProductQuantization(
                product=models.ProductQuantizationConfig(compression=models.CompressionRatio.X4))),
            "multi": models.VectorParams(size=4, distance=models.Distance.DOT,
                                         multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM)),
        },
        sparse_vectors_config={"text": models.SparseVectorParams(modifier=models.Modifier.NONE)},
        hnsw_config=models.HnswConfigDiff(m=8, ef_construct=40),
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=1, flush_interval_sec=1),
    )
    for field, schema in INDEXES.items():
        client.create_payload_index(NAME, field, schema, wait=True)
    for start in range(0, BASE, 200):
        client.upsert(NAME, _points(range(start, min(start + 200, BASE))), wait=True)
    info = _wait_green(client, NAME)
    assert info.indexed_vectors_count > 0, info  # an HNSW-indexed segment
    # Fresh points stay in an appendable segment: indexing is put off from now on.
    client.update_collection(NAME, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=100_000))
    client.upsert(NAME, _points(FRESH), wait=True)
    info = _wait_green(client, NAME)
    assert info.segments_count >= 2, info
    base_state = _state(client, NAME)
    assert len(base_state) == BASE + len(FRESH)

    writers = [Writer(source.url, i, 40 + i) for i in range(WRITERS)]
    searchers = [Searcher(source.url, 80 + i) for i in range(2)]
    for t in writers + searchers:
        t.start()
    time.sleep(1.0)
    started = time.monotonic()
    description = client.create_snapshot(NAME, wait=True)
    finished = time.monotonic()
    time.sleep(0.5)
    for t in writers + searchers:
        t.stop.set()
    for t in writers + searchers:
        t.join(30)
    assert [f for t in writers + searchers for f in t.failures] == []
    assert all(len(w.log) > 10 for w in writers), [len(w.log) for w in writers]
    during = [d for s in searchers for d in s.done if d[1] > started and d[0] < finished]
    assert during, "no search ran while the snapshot was created"

    path = tmp_path_factory.mktemp("download") / description.name
    with httpx.stream("GET", f"{source.url}/collections/{NAME}/snapshots/{description.name}", timeout=60) as response:
        assert response.status_code == 200
        with open(path, "wb") as out:
            for chunk in response.iter_bytes():
                out.write(chunk)
    data = path.read_bytes()
    assert len(data) == description.size
    assert hashlib.sha256(data).hexdigest() == description.checksum
    expected = {
        "info": client.get_collection(NAME),
        "base": base_state,
        "searches": _searches(client, NAME),
        "allowed": {pid: w.allowed(pid, started, finished) for w in writers for pid in w.ids},
    }
    client.close()
    return description, path, expected


def _check_recovered(client: QdrantClient, name: str, expected: dict) -> None:
    info = _wait_green(client, name)
    source_info = expected["info"]
    assert info.config == source_info.config  # vectors, quantization, hnsw, optimizers, sparse, wal...
    assert info.config.params.vectors["dense"].quantization_config is not None
    assert info.config.params.vectors["multi"].multivector_config is not None
    assert _schema(info) == _schema(source_info)
    assert set(info.payload_schema) == set(INDEXES)
    assert info.indexed_vectors_count > 0  # the HNSW segment came along, not rebuilt from nothing

    state = _state(client, name)
    base = {pid: v for pid, v in state.items() if pid < WRITER_ID0}
    assert base == expected["base"]  # every vector (dense, quantized, multi, sparse) and payload
    wrong = []
    for pid, allowed in expected["allowed"].items():
        got = state.get(pid)
        if (got[0] if got else None) not in allowed:
            wrong.append((pid, got[0] if got else None, allowed))
    assert wrong == [], wrong[:5]  # every write acknowledged before the create is in it
    assert set(state) - set(base) <= set(expected["allowed"])
    assert _searches(client, name) == expected["searches"]


def test_recover_by_upload_on_another_server(servers, taken):
    _, target = servers
    description, path, expected = taken
    with open(path, "rb") as f:
        response = httpx.post(
            f"{target.url}/collections/{NAME}/snapshots/upload",
            params={"priority": "snapshot", "checksum": description.checksum},
            files={"snapshot": (description.name, f, "application/octet-stream")},
            timeout=120,
        )
    assert response.status_code == 200, response.text
    assert response.json()["result"] is True
    client = QdrantClient(url=target.url, timeout=60)
    try:
        _check_recovered(client, NAME, expected)
    finally:
        client.close()


def test_recover_by_url_from_the_source_server(servers, taken):
    source, target = servers
    description, _, expected = taken
    client = QdrantClient(url=target.url, timeout=120)
    try:
        assert client.recover_snapshot(
            "rt_url", location=f"{source.url}/collections/{NAME}/snapshots/{description.name}",
            checksum=description.checksum, wait=True,
        )
        _check_recovered(client, "rt_url", expected)
    finally:
        client.close()
