"""On-disk integer / float / datetime / geo payload indexes (segments/disk_index_runs.py).

The heart is differential: the same payloads go into the in-memory indexes of
`field_index.py` and into the on-disk arrays (frozen to read-only views, as a mapped pack
gives them, with the meta through JSON); every condition kind, facets, point counts and
ordered reads must answer the same over the live slots, and every answer must bound the
payload scan (yes within the matches, the matches within upper). Known differences are
where the on-disk index is exact and the in-memory one is not (integers beyond 2**53 in a
match, datetimes past 2255, NaN floats); those cases are compared with the scan only, and
have their own tests.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pydrant.errors import BadInput
from pydrant.segments import disk_index_runs as runs
from pydrant.segments import filter_plan
from pydrant.segments.appendable import AppendableSegment
from pydrant.segments.disk_index_runs import RunIndexBuilder, build_run_index, open_run_index, pick_ordered
from pydrant.segments.field_index import build_indexes
from pydrant.segments.filter_datetime import parse_datetime
from pydrant.segments.filters import compile_filter
from pydrant.segments.geo import EARTH_RADIUS_M, haversine_m
from pydrant.segments.payload import parse_path
from pydrant.segments.types import DenseVectorSpec, PointContext, PointInput, VectorSchema

INDEXES = {
    "i": {"type": "integer", "lookup": True, "range": True},
    "r": {"type": "integer", "lookup": False, "range": True},
    "l": {"type": "integer", "lookup": True, "range": False},
    "f": "float",
    "d": "datetime",
    "g": "geo",
    "a[].n": "integer",
}
ORDERABLE = ["i", "r", "f", "d", "a[].n"]
FACETABLE = ["i", "l", "a[].n"]
HUGE = [2**53, 2**53 + 1, -(2**53) - 1, 2**60]
DATES = ["2024-01-01T00:00:00Z", "2024-06-01", "2024-06-01T12:00:00+02:00", "1969-12-31T23:59:59.999999Z",
         "2024-06-01T10:00:00Z", "not a date"]


# ---------------------------------------------------------------------------------------
# Helpers.
# ---------------------------------------------------------------------------------------


def frozen(arrays: dict) -> dict:
    """Read-only views of a private buffer each: what `np.frombuffer` over a mapped pack gives."""
    out = {}
    for name, a in arrays.items():
        assert a.dtype.byteorder in "<|=" and a.flags.c_contiguous, name
        view = np.frombuffer(a.tobytes(), dtype=a.dtype).reshape(a.shape)
        assert not view.flags.writeable
        out[name] = view
    return out


def disk_index(key, schema, payloads):
    arrays, meta = build_run_index(key, schema, enumerate(payloads), len(payloads))
    reader = open_run_index(json.loads(json.dumps(meta)), frozen(arrays))
    reader.check()
    for _ in reader.check_steps(3):  # chunk seams must not look like damage
        pass
    return reader


def both(payloads, schemas=INDEXES):
    """{key: (in-memory index, on-disk reader)} over the same payloads (slot = position)."""
    memory = build_indexes(schemas, enumerate(payloads), np.zeros(max(1, len(payloads)), dtype=np.uint32))
    return {key: (memory[key], disk_index(key, schema, payloads)) for key, schema in schemas.items()}


def normalized(mask, live):
    return filter_plan.as_array(mask, len(live)) & live


def normalized_answer(answer, live):
    yes, upper = (None, True) if answer is None else answer
    return normalized(yes, live), normalized(upper, live)


def field_leaves(plan):
    """The ("field", path, condition) leaves of a plan."""
    if plan[0] == "field":
        yield plan
    elif plan[0] in ("all", "any", "at_least"):
        for child in plan[1]:
            yield from field_leaves(child)
    elif plan[0] == "not":
        yield from field_leaves(plan[1])


def scan(compiled, payloads, live):
    truth = np.zeros(len(payloads), dtype=bool)
    for slot, payload in enumerate(payloads):
        if live[slot]:
            truth[slot] = compiled.matches(PointContext(slot, lambda p=payload: p, lambda name: False))
    return truth


def in_memory_prefix(index, live, selected, descending, start_from, limit):
    """What AppendableSegment.read_ordered hands `_first_entries`: the filtered entries in
    walk order cut after `limit` and the entries tied with the limit-th."""
    gen = np.zeros(len(live), dtype=np.uint32)
    values, slots, gens = index.ordered_entries(gen, live)
    ok = selected[slots] & (gen[slots] == gens)
    if start_from is not None:
        ok &= values <= start_from if descending else values >= start_from
    values, slots = values[ok], slots[ok]
    if descending:
        values, slots = values[::-1], slots[::-1]
    if limit < len(values):
        boundary = values[limit - 1]
        stop = limit
        while stop < len(values) and values[stop] == boundary:
            stop += 1
        values, slots = values[:stop], slots[:stop]
    return values, slots


def exempt(index, condition) -> bool:
    """Conditions where the in-memory integer index rounds (|v| > 2**53): scan-checked only."""
    if index.data_type != "integer" or condition[0] not in ("value", "any", "except"):
        return False
    listed = [condition[1]] if condition[0] == "value" else list(condition[1])
    return any(type(v) is int and abs(v) > 2**53 for v in listed)


# ---------------------------------------------------------------------------------------
# Strategies.
# ---------------------------------------------------------------------------------------

junk = st.sampled_from([None, [], [[1]], {"x": 1}, "s", 1.5, True, False, "7"])
small_int = st.integers(-4, 4)
geo_point = st.builds(lambda lon, lat: {"lon": lon, "lat": lat}, st.floats(-6, 6), st.floats(-6, 6))
values_by_field = {
    "i": st.one_of(small_int, st.sampled_from(HUGE + [2.0, -0.0])),
    "r": st.one_of(small_int, st.sampled_from([2**53, 2**60, 0.5])),
    "l": small_int,
    "f": st.one_of(small_int, st.floats(-4, 4, allow_nan=False), st.sampled_from([2**60, -0.0, 0.0])),
    "d": st.sampled_from(DATES),
    "g": st.one_of(geo_point, st.sampled_from([{"lon": 1}, {"lon": "1", "lat": 2}])),
}


def field_value(name):
    one = values_by_field[name]
    return st.one_of(one, one, st.lists(st.one_of(one, junk), max_size=4), junk)


payloads = st.fixed_dictionaries(  # every field usually there; null (never indexed) or absent otherwise
    {name: st.one_of(field_value(name), field_value(name), st.none()) for name in values_by_field},
    optional={"a": st.lists(st.fixed_dictionaries({}, optional={"n": st.one_of(small_int, junk)}), max_size=3)},
).map(lambda p: {k: v for k, v in p.items() if v is not None or k == "i"})

bound = st.one_of(st.none(), small_int, st.sampled_from([-0.5, 1.5, 2**53, -(2**60)]))
ranges = st.fixed_dictionaries({}, optional={"lt": bound, "gt": bound, "lte": bound, "gte": bound})
date_bound = st.sampled_from(DATES[:5])
date_ranges = st.fixed_dictionaries({}, optional={"lt": date_bound, "gt": date_bound, "lte": date_bound,
                                                  "gte": date_bound})
match_int = st.one_of(small_int, small_int, st.sampled_from(HUGE))
int_list = st.lists(match_int, min_size=1, max_size=3)
listed = st.one_of(int_list, int_list, int_list, st.just(["red"]), st.just([]))
matches = st.one_of(
    st.builds(lambda v: {"value": v}, st.one_of(match_int, match_int, st.booleans(), st.just("red"))),
    st.builds(lambda vs: {"any": vs}, listed),
    st.builds(lambda vs: {"except": vs}, listed),
)
geo_conditions = st.one_of(
    st.builds(
        lambda a, b: {"geo_bounding_box": {"top_left": {"lon": min(a["lon"], b["lon"]), "lat": max(a["lat"], b["lat"])},
                                           "bottom_right": {"lon": max(a["lon"], b["lon"]),
                                                            "lat": min(a["lat"], b["lat"])}}},
        geo_point, geo_point,
    ),
    st.builds(lambda c, r: {"geo_radius": {"center": c, "radius": r}}, geo_point, st.floats(1, 900_000)),
    st.just({"geo_polygon": {"exterior": {"points": [
        {"lon": -2, "lat": -2}, {"lon": 3, "lat": -2}, {"lon": 0, "lat": 4}, {"lon": -2, "lat": -2}]}}}),
)
keys = st.sampled_from(list(INDEXES))
numeric_keys = st.sampled_from(["i", "r", "l", "f", "a[].n"])
conditions = st.one_of(
    st.builds(lambda k, m: {"key": k, "match": m}, st.one_of(keys, st.sampled_from(["i", "l", "a[].n"])), matches),
    st.builds(lambda k, r: {"key": k, "range": r}, st.one_of(numeric_keys, numeric_keys, keys), ranges),
    st.builds(lambda k, r: {"key": k, "range": r}, st.sampled_from(["d", "d", "d", "i", "f"]), date_ranges),
    st.builds(lambda k, g: {"key": k, **g}, st.sampled_from(["g", "g", "g", "i"]), geo_conditions),
    st.builds(lambda k: {"key": k, "match": {"text": "red fox"}}, keys),
)
order_starts = st.one_of(st.none(), st.sampled_from([-1.0, 0.0, 1.5, 3.0, float(2**53), -0.0]),
                         st.sampled_from(DATES[:5]).map(lambda d: float(parse_datetime(d))))


# ---------------------------------------------------------------------------------------
# The differential test.
# ---------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(payloads, min_size=5, max_size=30),
    st.data(),
)
def test_answers_facets_and_ordered_reads_equal_the_in_memory_index(payload_list, data):
    n = len(payload_list)
    live = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    gen = np.zeros(max(1, n), dtype=np.uint32)
    indexes = both(payload_list)

    for condition in data.draw(st.lists(conditions, min_size=1, max_size=6)):
        try:
            compiled = compile_filter({"must": [condition]})
        except BadInput:
            continue  # e.g. mixed date and number bounds: refused before any index sees it
        truth = scan(compiled, payload_list, live)
        for _, path, check in field_leaves(compiled.plan):
            key = next(k for k in INDEXES if parse_path(k) == path)
            memory, disk = indexes[key]
            yes, upper = normalized_answer(disk.answer(check, gen, live, n), live)
            assert not (yes & ~truth).any() and not (truth & ~upper).any(), (key, check)
            if not exempt(memory, check):
                want = normalized_answer(memory.answer(check, gen, live, n), live)
                assert np.array_equal(yes, want[0]) and np.array_equal(upper, want[1]), (key, check)

    for key, (memory, disk) in indexes.items():
        assert disk.points(gen, live) == memory.points(gen, live), key
        assert normalized(disk.other_mask(gen, live, n), live).tolist() == \
            normalized(memory.other_mask(gen, live, n), live).tolist(), key

    selected = live & np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    for key in FACETABLE:
        memory, disk = indexes[key]
        assert disk.facetable
        assert disk.facet_counts(gen, live, None) == memory.facet_counts(gen, live, None), key
        assert disk.facet_counts(gen, live, selected) == memory.facet_counts(gen, live, selected), key

    block = data.draw(st.sampled_from([1, 2, 3, runs.ORDER_BLOCK]))
    saved, runs.ORDER_BLOCK = runs.ORDER_BLOCK, block  # small blocks: every walk crosses several
    try:
        for _ in range(3):
            key = data.draw(st.sampled_from(ORDERABLE))
            descending = data.draw(st.booleans())
            start_from = data.draw(order_starts)
            limit = data.draw(st.integers(1, 6))
            memory, disk = indexes[key]
            assert disk.orderable
            want_values, want_slots = in_memory_prefix(memory, live, selected, descending, start_from, limit)
            values, slots = disk.ordered_prefix(descending, start_from, limit, selected)
            assert values.tolist() == want_values.tolist(), (key, descending, start_from, limit)
            assert slots.tolist() == want_slots.tolist(), (key, descending, start_from, limit)
    finally:
        runs.ORDER_BLOCK = saved


@settings(max_examples=150, deadline=None)
@given(st.lists(payloads, min_size=5, max_size=20), st.data())
def test_whole_filters_split_alike_through_filter_plan(payload_list, data):
    """Compound filters over several indexed fields: `filter_plan.split` gives the same
    (sure, to_check) with on-disk readers as with the in-memory indexes, and the matches
    (sure plus the checked rest) are the scan's."""
    n = len(payload_list)
    live = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    indexes = both(payload_list)

    class View:
        def __init__(self, which):
            self.n, self.live, self.gen = n, live, np.zeros(max(1, n), dtype=np.uint32)
            self.by_path = {parse_path(k): pair[which] for k, pair in indexes.items()}

        def index_for(self, path):
            return self.by_path.get(path)

        def ids_mask(self, ids):
            return filter_plan.as_array(None, n)

        def vector_mask(self, name):
            return None

    clause = st.lists(conditions, min_size=1, max_size=3)
    filter_ = data.draw(st.fixed_dictionaries({"must": clause}, optional={"should": clause, "must_not": clause}))
    try:
        compiled = compile_filter(filter_)
    except BadInput:
        return
    if any(exempt(indexes[next(k for k in INDEXES if parse_path(k) == leaf[1])][0], leaf[2])
           for leaf in field_leaves(compiled.plan)):
        return  # the in-memory index rounds that match: covered against the scan above
    disk_sure, disk_check = filter_plan.split(compiled.plan, View(1))
    memory_sure, memory_check = filter_plan.split(compiled.plan, View(0))
    assert disk_sure.tolist() == memory_sure.tolist()
    assert disk_check.tolist() == memory_check.tolist()
    matched = disk_sure.copy()
    for slot in np.flatnonzero(disk_check):
        matched[slot] = compiled.matches(PointContext(int(slot), lambda p=payload_list[slot]: p, lambda name: False))
    assert matched.tolist() == scan(compiled, payload_list, live).tolist()


# ---------------------------------------------------------------------------------------
# Geo: bands, antimeridian, poles, rims.
# ---------------------------------------------------------------------------------------


def destination(lon, lat, bearing_deg, distance_m):
    """The point `distance_m` from (lon, lat) along `bearing_deg`, on the haversine sphere."""
    phi, lam, theta = math.radians(lat), math.radians(lon), math.radians(bearing_deg)
    delta = distance_m / EARTH_RADIUS_M
    phi2 = math.asin(max(-1.0, min(1.0, math.sin(phi) * math.cos(delta)
                                   + math.cos(phi) * math.sin(delta) * math.cos(theta))))
    lam2 = lam + math.atan2(math.sin(theta) * math.sin(delta) * math.cos(phi),
                            math.cos(delta) - math.sin(phi) * math.sin(phi2))
    lon2 = (math.degrees(lam2) + 180.0) % 360.0 - 180.0
    return {"lon": lon2, "lat": math.degrees(phi2)}


world_lon = st.one_of(st.floats(-180, 180), st.floats(175, 180), st.floats(-180, -175), st.sampled_from([-180.0, 180.0]))
world_lat = st.one_of(st.floats(-90, 90), st.floats(85, 90), st.floats(-90, -85), st.sampled_from([-90.0, 90.0, 0.0]))
world_point = st.builds(lambda lon, lat: {"lon": lon, "lat": lat}, world_lon, world_lat)
invalid_point = st.sampled_from([{"lon": 200.0, "lat": 10.0}, {"lon": -500.0, "lat": 0.0}, {"lon": 10.0, "lat": 95.0},
                                 {"lon": 0.0, "lat": -120.0}, {"lon": float("nan"), "lat": 1.0},
                                 {"lon": 1.0, "lat": float("nan")}])
circle = st.tuples(world_lon, world_lat, st.one_of(st.floats(1, 20_100_000), st.floats(1, 5_000), st.floats(1e5, 3e6)))


@settings(max_examples=300, deadline=None)
@given(st.lists(circle, min_size=1, max_size=3), st.lists(st.one_of(world_point, invalid_point), max_size=20),
       st.data())
def test_geo_answers_equal_in_memory_around_the_globe(circles, extra_points, data):
    """Circles anywhere (antimeridian, poles, half the globe), points on and just off their
    rims (the longitude extremes included), boxes that wrap, invalid coordinates."""
    points = list(extra_points)
    for lon, lat, radius in circles:
        for bearing in data.draw(st.lists(st.one_of(st.sampled_from([90.0, 270.0, 0.0, 180.0]), st.floats(0, 360)),
                                          min_size=1, max_size=6)):
            for factor in (1 - 1e-9, 1.0, 1 + 1e-9, 1 + 1e-6, 1 - 1e-6):
                points.append(destination(lon, lat, bearing, radius * factor))
    payload_list = [{"g": p} for p in points]
    n = len(payload_list)
    live = np.ones(n, dtype=bool)
    gen = np.zeros(n, dtype=np.uint32)
    (memory, disk), = both(payload_list, {"g": "geo"}).values()
    invalid = np.array([not (-180 <= p["lon"] <= 180 and -90 <= p["lat"] <= 90) for p in points], dtype=bool)
    conditions_ = [{"geo_radius": {"center": {"lon": lon, "lat": lat}, "radius": radius}} for lon, lat, radius in circles]
    for _ in range(2):
        a, b = data.draw(world_point), data.draw(world_point)
        conditions_.append({"geo_bounding_box": {"top_left": {"lon": a["lon"], "lat": max(a["lat"], b["lat"])},
                                                 "bottom_right": {"lon": b["lon"], "lat": min(a["lat"], b["lat"])}}})
    ring = [data.draw(world_point) for _ in range(3)]
    conditions_.append({"geo_polygon": {"exterior": {"points": [*ring, ring[0]]}}})
    for condition in conditions_:
        compiled = compile_filter({"must": [{"key": "g", **condition}]})
        (_, _, check), = field_leaves(compiled.plan)
        got = normalized_answer(disk.answer(check, gen, live, n), live)
        want = normalized_answer(memory.answer(check, gen, live, n), live)
        assert got[0].tolist() == want[0].tolist() and got[1].tolist() == want[1].tolist(), condition
        # Invalid coordinates are left out of the scan comparison (the indexes agree with each
        # other on them, above): the scan's scalar haversine turns a NaN into half the globe
        # (min(1.0, nan) is 1.0), and a latitude past 90 folds over the pole to a point the
        # in-memory latitude band never looks at.
        truth = scan(compiled, payload_list, live)
        wrong = ((got[0] & ~truth) | (truth & ~got[1])) & ~invalid
        assert not wrong.any(), (condition, [payload_list[i] for i in np.flatnonzero(wrong)])


def test_antimeridian_box_and_circle():
    lons = [179.5, -179.5, 179.99, -179.99, 0.0, 178.0, -178.0, 180.0, -180.0]
    payload_list = [{"g": {"lon": lon, "lat": 1.0}} for lon in lons]
    n = len(payload_list)
    live = np.ones(n, dtype=bool)
    disk = disk_index("g", "geo", payload_list)
    box = ("geo_bbox", (179.0, 2.0, -179.0, 0.0))  # left > right: crosses the antimeridian
    yes, upper = disk.answer(box, None, live, n)
    assert np.flatnonzero(yes).tolist() == [0, 1, 2, 3, 7, 8]
    circle = ("geo_radius", (180.0, 1.0, 120_000.0))  # ~1.08 degrees of longitude at the equator
    yes, _ = disk.answer(circle, None, live, n)
    assert np.flatnonzero(yes).tolist() == [0, 1, 2, 3, 7, 8]
    polar = ("geo_radius", (0.0, 89.9, 50_000.0))  # holds the pole: every longitude
    polar_points = [{"g": {"lon": lon, "lat": 89.9}} for lon in (0.0, 90.0, 180.0, -90.0)] + [{"g": {"lon": 0.0, "lat": 89.5}}]
    disk = disk_index("g", "geo", polar_points)
    yes, _ = disk.answer(polar, None, np.ones(5, dtype=bool), 5)
    assert np.flatnonzero(yes).tolist() == [0, 1, 2, 3, 4]


def test_one_slot_with_two_points_of_equal_latitude_in_a_band():
    """Not a broken sort: a slot's points may tie on latitude within a band (found by the
    differential test). The layout orders them by longitude and the check accepts them."""
    payload_list = [{"g": [{"lon": -1.0, "lat": 0.0}, {"lon": -2.0, "lat": 0.0}]}, {"g": {"lon": -1.5, "lat": 0.0}}]
    disk = disk_index("g", "geo", payload_list)  # runs check() at two chunk sizes
    assert disk.lon.tolist() == [-2.0, -1.0, -1.5] and disk.slots.tolist() == [0, 0, 1]
    yes, _ = disk.answer(("geo_bbox", (-1.8, 1.0, -1.2, -1.0)), None, np.ones(2, dtype=bool), 2)
    assert yes.tolist() == [False, True]


def test_circle_reads_a_fraction_of_its_latitude_band():
    """The point of the bands: a 2,000 km circle at 50 N looks at the bands its longitude
    span crosses, not at the whole latitude band the in-memory index scans."""
    rng = np.random.default_rng(7)
    lons, lats = rng.uniform(-180, 180, 20_000), np.degrees(np.arcsin(rng.uniform(-1, 1, 20_000)))
    payload_list = [{"g": {"lon": float(a), "lat": float(b)}} for a, b in zip(lons, lats)]
    disk = disk_index("g", "geo", payload_list)
    lon, lat, radius = 10.0, 50.0, 2_000_000.0
    margin = radius / 111_000.0 + 1e-6
    candidates, _, _ = disk._candidates(runs._circle_bands(lon, lat, radius), lat - margin, lat + margin)
    latitude_band = int(np.count_nonzero((lats >= lat - margin) & (lats <= lat + margin)))
    inside = sum(haversine_m(lon, lat, float(a), float(b)) < radius for a, b in zip(lons, lats))
    assert inside <= len(candidates) < latitude_band / 3
    n = len(payload_list)
    yes, _ = disk.answer(("geo_radius", (lon, lat, radius)), None, np.ones(n, dtype=bool), n)
    assert abs(int(np.count_nonzero(yes)) - inside) <= 1  # rim points are left to the scan


# ---------------------------------------------------------------------------------------
# Where the on-disk index is exact and the in-memory one rounds.
# ---------------------------------------------------------------------------------------


def test_integer_matches_beyond_2_to_53_agree_with_the_scan():
    payload_list = [{"i": 2**53}, {"i": 2**53 + 1}, {"i": 5}]
    live = np.ones(3, dtype=bool)
    disk = disk_index("i", "integer", payload_list)
    for match in ({"value": 2**53 + 1}, {"any": [2**53 + 1, 5]}, {"except": [2**53 + 1]}, {"value": 2**53}):
        compiled = compile_filter({"must": [{"key": "i", "match": match}]})
        (_, _, check), = field_leaves(compiled.plan)
        yes, upper = normalized_answer(disk.answer(check, None, live, 3), live)
        truth = scan(compiled, payload_list, live)
        assert not (yes & ~truth).any() and not (truth & ~upper).any(), match
    yes, upper = disk.answer(("value", 2**53 + 1), None, live, 3)
    assert yes is None and upper.tolist() == [False, True, False]  # only `other` can hold it


def test_datetimes_are_exact_past_2255():
    stamps = ["9999-01-01T00:00:00.000001Z", "9999-01-01T00:00:00.000002Z", "9999-01-01T00:00:00.000003Z"]
    assert float(parse_datetime(stamps[0])) == float(parse_datetime(stamps[1]))  # float64 merges them
    payload_list = [{"d": s} for s in stamps]
    live = np.ones(3, dtype=bool)
    disk = disk_index("d", "datetime", payload_list)
    compiled = compile_filter({"must": [{"key": "d", "range": {"gt": stamps[0], "lte": stamps[1]}}]})
    (_, _, check), = field_leaves(compiled.plan)
    yes, upper = disk.answer(check, None, live, 3)
    assert yes.tolist() == upper.tolist() == scan(compiled, payload_list, live).tolist() == [False, True, False]
    values, slots = disk.ordered_prefix(True, None, 2, live)
    assert slots.tolist() == [2, 1] and values.dtype == np.float64


def test_nan_floats_never_match_a_range_and_order_like_today():
    payload_list = [{"f": float("nan")}, {"f": 1.0}, {"f": [float("nan"), 3.0]}, {"f": -1.0}]
    live = np.ones(4, dtype=bool)
    disk = disk_index("f", "float", payload_list)
    memory = build_indexes({"f": "float"}, enumerate(payload_list), np.zeros(4, dtype=np.uint32))["f"]
    yes, _ = disk.answer(("range", (None, 0.0, None, None)), None, live, 4)
    assert yes.tolist() == [False, True, True, False]  # the scan's answer: NaN >= 0 is false
    for descending in (False, True):
        for start_from in (None, 0.0):
            want = in_memory_prefix(memory, live, live, descending, start_from, 3)
            got = disk.ordered_prefix(descending, start_from, 3, live)
            assert np.array_equal(got[0], want[0], equal_nan=True) and got[1].tolist() == want[1].tolist()


# ---------------------------------------------------------------------------------------
# Ordered reads at the real block size, and through a segment.
# ---------------------------------------------------------------------------------------


def test_ordered_prefix_walks_blocks_and_long_tie_runs():
    rng = np.random.default_rng(3)
    n = 50_000
    values = rng.integers(0, 40, n)  # ~1,250 entries per value: tie runs span many blocks of small walks
    payload_list = [{"i": int(v)} for v in values]
    (memory, disk), = both(payload_list, {"i": "integer"}).values()
    live = rng.random(n) < 0.9
    sparse = live & (rng.random(n) < 0.001)  # ~45 selected: the walk crosses most of the run
    for selected in (live, sparse):
        for descending in (False, True):
            for start_from, limit in ((None, 10), (17.0, 5), (17.5, 3000), (None, 100_000)):
                want = in_memory_prefix(memory, live, selected, descending, start_from, limit)
                got = disk.ordered_prefix(descending, start_from, limit, selected)
                assert got[0].tolist() == want[0].tolist() and got[1].tolist() == want[1].tolist()


@pytest.mark.parametrize("block", [1, 2, 3, 5])
def test_ordered_prefix_ties_across_block_seams(block, monkeypatch):
    """Every limit over runs of equal values that straddle the block seams, both ways."""
    monkeypatch.setattr(runs, "ORDER_BLOCK", block)
    values = [1, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 4, 5, 5, 5, 5, 5, 5]
    payload_list = [{"i": v} for v in values]
    (memory, disk), = both(payload_list, {"i": "integer"}).values()
    n = len(values)
    live = np.ones(n, dtype=bool)
    for selected in (live, np.arange(n) % 3 != 1):
        for descending in (False, True):
            for start_from in (None, 2.0, 3.0, 4.5):
                for limit in range(1, n + 2):
                    want = in_memory_prefix(memory, live, selected, descending, start_from, limit)
                    got = disk.ordered_prefix(descending, start_from, limit, selected)
                    assert got[1].tolist() == want[1].tolist(), (descending, start_from, limit)
                    assert got[0].tolist() == want[0].tolist()


def test_nan_bounds_select_nothing():
    """Nothing compares with NaN (not reachable through JSON, but a contract of the reader)."""
    nan = float("nan")
    live = np.ones(3, dtype=bool)
    for key, schema in (("f", "float"), ("d", "datetime")):
        disk = disk_index(key, schema, [{"f": 1.0, "d": DATES[0]}, {"f": 2.0, "d": DATES[1]}, {}])
        for bounds in ((nan, None, None, None), (None, None, nan, None), (None, nan, None, 5e20)):
            assert disk.range_mask(bounds, 3) is None, (key, bounds)
        for descending in (False, True):
            assert disk.ordered_prefix(descending, nan, 5, live)[1].tolist() == []


def test_datetime_bounds_may_be_floats():
    """Bounds on int64 microseconds compare exactly whatever their Python type (an order_by
    start_from arrives as a float)."""
    micros = [10, 11, 12, 13]
    arrays, meta = build_run_index("d", "datetime", enumerate([{"d": None}] * 4), 4)
    arrays.update(values=np.array(micros, dtype="<i8"), slots=np.arange(4, dtype="<u4"),
                  present=np.ones(4, dtype=bool))
    disk = open_run_index({**meta, "entries": 4, "present": 4}, arrays)
    for gt, gte, lt, lte in [(10.5, None, None, None), (11.0, None, None, None), (None, 10.5, None, None),
                             (None, 11.0, 12.5, None), (None, None, 12.0, None), (None, None, None, 11.5),
                             (float("-inf"), None, float("inf"), None), (None, -1e30, None, 1e30), (1e30, None, None, None)]:
        want = [(gt is None or v > gt) and (gte is None or v >= gte) and (lt is None or v < lt)
                and (lte is None or v <= lte) for v in micros]
        got = filter_plan.as_array(disk.range_mask((gt, gte, lt, lte), 4), 4).tolist()
        assert got == want, (gt, gte, lt, lte)
    assert disk.ordered_prefix(True, 12.5, 2, np.ones(4, dtype=bool))[1].tolist() == [2, 1]
    assert disk.ordered_prefix(False, 11.5, 1, np.ones(4, dtype=bool))[1].tolist() == [2]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 10**6), st.one_of(small_int, st.lists(small_int, max_size=3), junk)),
                min_size=1, max_size=30, unique_by=lambda t: t[0]),
       st.data())
def test_read_ordered_equals_the_appendable_segment(tmp_path_factory, points, data):
    """`pick_ordered(ordered_prefix(...))` is `AppendableSegment.read_ordered`, id tie
    rule and deletions included."""
    schema = VectorSchema(dense={"": DenseVectorSpec(2, "Dot")})
    segment = AppendableSegment.create(tmp_path_factory.mktemp("seg") / "s", schema)
    try:
        segment.set_payload_indexes({"n": "integer"})
        for op_num, (point_id, value) in enumerate(points, start=1):  # slot = position in `points`
            segment.upsert_points(op_num, [PointInput(point_id, {"": np.ones(2, dtype=np.float32)}, {"n": value})])
        ids = [point_id for point_id, _ in points]
        assert segment._ids[: len(ids)] == ids
        deleted = data.draw(st.lists(st.sampled_from(ids), max_size=5))
        segment.delete_points(len(points) + 1, deleted)
        live = np.array([point_id not in deleted for point_id in ids], dtype=bool)
        disk = disk_index("n", "integer", [{"n": value} for _, value in points])
        for _ in range(4):
            descending, limit = data.draw(st.booleans()), data.draw(st.integers(1, 8))
            start_from = data.draw(st.sampled_from([None, -1.0, 0.0, 2.5]))
            values, slots = disk.ordered_prefix(descending, start_from, limit, live)
            got = pick_ordered(values, slots, limit, descending, ids.__getitem__)
            assert got == segment.read_ordered("n", descending, start_from, limit)
    finally:
        segment.close()


# ---------------------------------------------------------------------------------------
# Layout, opening and the structural check.
# ---------------------------------------------------------------------------------------


def sample_index(schema="integer", key="i"):
    payload_list = [{"i": 3, "g": {"lon": 10.0, "lat": 1.0}, "d": DATES[0]},
                    {"i": [1, 3], "g": {"lon": -170.0, "lat": -5.0}, "d": [DATES[1], DATES[4]]},
                    {"i": "x", "g": {"lon": -169.0, "lat": -1.0}}, {"d": DATES[1]},
                    {"i": 7, "g": {"lon": 300.0, "lat": 0.0}}]
    return build_run_index(key, schema, enumerate(payload_list), len(payload_list))


def test_layout_is_plain_little_endian_arrays_and_json_meta():
    arrays, meta = sample_index()
    assert meta == json.loads(json.dumps(meta))
    assert meta == {"format": 1, "type": "integer", "key": "i", "schema": "integer", "slots": 5, "entries": 4,
                    "present": 3, "other": 1, "distinct": 3}
    assert arrays["values"].tolist() == [1.0, 3.0, 3.0, 7.0] and arrays["slots"].tolist() == [1, 0, 1, 4]
    assert arrays["distinct"].tolist() == [1.0, 3.0, 7.0] and arrays["distinct_offsets"].tolist() == [0, 1, 3, 4]
    geo, geo_meta = sample_index("geo", "g")
    assert geo["band_offsets"].shape == (182,) and geo["band_offsets"][-1] == 4
    assert geo["slots"][-1] == 4  # lon 300: the outside band, last
    assert set(sample_index({"type": "integer", "lookup": False})[0]) == {"present", "other", "values", "slots"}
    dt, _ = build_run_index("d", "datetime", enumerate([{"d": DATES[0]}]), 1)
    assert dt["values"].dtype == np.dtype("<i8") and dt["values"].tolist() == [parse_datetime(DATES[0])]


@pytest.mark.parametrize("damage, message", [
    (lambda a, m: m.update(format=2), "format 2"),
    (lambda a, m: m.update(type="keyword"), "not a sorted-run index"),
    (lambda a, m: a.pop("distinct"), "arrays"),
    (lambda a, m: a.update(extra=np.zeros(1)), "arrays"),
    (lambda a, m: a.update(values=a["values"].astype(np.float32)), "array values"),
    (lambda a, m: a.update(slots=a["slots"][:-1]), "array slots"),
    (lambda a, m: m.update(slots=6), "array present"),
    (lambda a, m: m.pop("entries"), "unreadable meta"),
    (lambda a, m: m.update(schema={"type": "integer", "lookup": False}), "arrays"),  # distinct arrays extra
])
def test_open_refuses_what_does_not_match_its_meta(damage, message):
    arrays, meta = sample_index()
    damage(arrays, meta)
    with pytest.raises(ValueError, match=message):
        open_run_index(meta, arrays)


@pytest.mark.parametrize("schema, key, damage, message", [
    ("integer", "i", lambda a: a["values"].__setitem__(0, 9.0), "not sorted"),
    ("integer", "i", lambda a: a["slots"].__setitem__(1, 1), "slot order"),
    ("integer", "i", lambda a: a["slots"].__setitem__(0, 99), "out of range"),
    ("integer", "i", lambda a: a["present"].__setitem__(4, False), "present: 2 slots, meta says 3"),
    ("integer", "i", lambda a: (a["present"].__setitem__(4, False), a["present"].__setitem__(3, True)),
     "not marked present"),
    ("integer", "i", lambda a: a["other"].__setitem__(3, True), "other"),
    ("integer", "i", lambda a: a["distinct"].__setitem__(1, 4.0), "distinct"),
    ("integer", "i", lambda a: a["values"].__setitem__(3, 2.0), "not sorted"),  # the last pair
    ("integer", "i", lambda a: a["distinct_offsets"].__setitem__(2, 2), "distinct values do not match"),
    ("datetime", "d", lambda a: a["values"].__setitem__(2, 0), "not sorted"),
    ("datetime", "d", lambda a: a["slots"].__setitem__(2, 0), "slot order"),
    ("geo", "g", lambda a: a["lon"].__setitem__(0, 100.0), "wrong longitude band"),
    ("geo", "g", lambda a: a["lat"].__setitem__(0, 50.0), "not sorted by latitude"),
    ("geo", "g", lambda a: a["band_offsets"].__setitem__(181, 1), "band offsets"),
])
@pytest.mark.parametrize("chunk", [1, 2, runs.CHECK_CHUNK])
def test_check_reports_structural_damage(schema, key, damage, message, chunk, monkeypatch):
    monkeypatch.setattr(runs, "CHECK_CHUNK", chunk)
    arrays, meta = sample_index(schema, key)
    open_run_index(meta, arrays).check()
    damage(arrays)
    reader = open_run_index(meta, arrays)
    with pytest.raises(ValueError, match=f"payload index `{key}`: .*{message}"):
        reader.check()


def test_check_refuses_a_value_split_over_two_distinct_groups():
    arrays, meta = sample_index()  # values [1, 3, 3, 7]
    arrays.update(distinct=np.array([1.0, 3.0, 3.0, 7.0]), distinct_offsets=np.array([0, 1, 2, 3, 4], dtype="<u8"))
    reader = open_run_index({**meta, "distinct": 4}, arrays)
    with pytest.raises(ValueError, match="distinct values do not rise"):
        reader.check()


def test_check_steps_report_progress_and_stop_at_the_damaged_chunk():
    payload_list = [{"i": i % 7, "g": {"lon": float(i % 360 - 180), "lat": float(i % 180 - 90)}} for i in range(50)]
    for key, schema, total in (("i", "integer", 50 + 7), ("g", "geo", 50)):
        arrays, meta = build_run_index(key, schema, enumerate(payload_list), len(payload_list))
        reader = open_run_index(meta, arrays)
        steps = list(reader.check_steps(8))
        assert steps == sorted(steps) and steps[-1] == total and len(steps) >= 7, (key, steps)
    arrays, meta = build_run_index("i", "integer", enumerate(payload_list), len(payload_list))
    arrays["values"][40] = -1.0  # damage in the sixth chunk of 8
    steps = []
    with pytest.raises(ValueError, match="values not sorted"):
        for done in open_run_index(meta, arrays).check_steps(8):
            steps.append(done)
    assert steps == [8, 16, 24, 32]  # the chunk holding the pair (39, 40) raises


def test_builder_refuses_bad_slots_and_other_index_types():
    with pytest.raises(BadInput, match="not a sorted-run index"):
        RunIndexBuilder("k", "keyword")
    with pytest.raises(BadInput, match="'vector' index is not a sorted-run index"):
        RunIndexBuilder("k", "vector")
    builder = RunIndexBuilder("i", "integer")
    builder.add(3, {"i": 1})
    with pytest.raises(ValueError, match="not below"):
        builder.finish(3)
    builder.add(3, {"i": 2})
    with pytest.raises(ValueError, match="added twice"):
        builder.finish(4)


def test_empty_index_answers_nothing():
    live = np.ones(3, dtype=bool)
    for key, schema in INDEXES.items():
        disk = disk_index(key, schema, [{}, {"x": 1}, {}])
        assert disk.points(None, live) == 0 and disk.other_mask(None, live, 3) is None
        for condition in (("range", (None, 0.0, None, None)), ("value", 1), ("datetime_range", (None, 0, None, None)),
                          ("geo_bbox", (-10.0, 10.0, 10.0, -10.0)), ("geo_radius", (0.0, 0.0, 1e6))):
            answer = disk.answer(condition, None, live, 3)
            assert answer is None or answer[0] is None, (key, condition)
        if disk.facetable:
            assert disk.facet_counts(None, live, None) == {}
        if disk.orderable:
            assert [a.tolist() for a in disk.ordered_prefix(False, None, 5, live)] == [[], []]
