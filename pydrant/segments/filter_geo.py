"""Geo conditions: bounding box, radius and polygon tests on (lon, lat) in degrees.

- Bounding box: strictly inside, in the manner of Qdrant. When `top_left.lon` is greater
  than `bottom_right.lon` the box crosses the antimeridian and covers lon > left or
  lon < right.
- Radius: the haversine great-circle distance of `geo.py` (the `geo` crate's, on a sphere of
  radius 6371008.8 m), strictly less than `radius` metres.
- Polygon: planar in (lon, lat), as Qdrant's (unprojected, datum-agnostic). A location
  matches when it is inside the exterior ring or on any ring's boundary, and not strictly
  inside an interior ring (a hole).
"""

from __future__ import annotations

from collections.abc import Callable

from pydrant.segments.geo import EARTH_RADIUS_M, haversine_m  # noqa: F401  (re-exported)

_BOUNDARY_EPS = 1e-12

GeoCheck = Callable[[float, float], bool]


def bounding_box_check(left: float, top: float, right: float, bottom: float) -> GeoCheck:
    if left > right:

        def check(lon: float, lat: float) -> bool:
            return (lon > left or lon < right) and bottom < lat < top

    else:

        def check(lon: float, lat: float) -> bool:
            return left < lon < right and bottom < lat < top

    return check


def radius_check(center_lon: float, center_lat: float, radius: float) -> GeoCheck:
    def check(lon: float, lat: float) -> bool:
        return haversine_m(center_lon, center_lat, lon, lat) < radius

    return check


Ring = tuple  # ((lon, lat), ...) with the first point repeated at the end


def _on_boundary(ring: Ring, x: float, y: float) -> bool:
    for (ax, ay), (bx, by) in zip(ring, ring[1:]):
        if min(ax, bx) - _BOUNDARY_EPS <= x <= max(ax, bx) + _BOUNDARY_EPS and (
            min(ay, by) - _BOUNDARY_EPS <= y <= max(ay, by) + _BOUNDARY_EPS
        ):
            cross = (bx - ax) * (y - ay) - (by - ay) * (x - ax)
            if abs(cross) <= _BOUNDARY_EPS * max(1.0, abs(bx - ax) + abs(by - ay)):
                return True
    return False


def _inside(ring: Ring, x: float, y: float) -> bool:
    """Even-odd ray casting; points on the boundary may go either way (checked apart)."""
    inside = False
    for (ax, ay), (bx, by) in zip(ring, ring[1:]):
        if (ay > y) != (by > y):
            x_cross = ax + (y - ay) * (bx - ax) / (by - ay)
            if x < x_cross:
                inside = not inside
    return inside


def polygon_check(exterior: Ring, interiors: list[Ring]) -> GeoCheck:
    xs = [p[0] for p in exterior]
    ys = [p[1] for p in exterior]
    min_x, max_x, min_y, max_y = min(xs), max(xs), min(ys), max(ys)

    def check(lon: float, lat: float) -> bool:
        if not (min_x <= lon <= max_x and min_y <= lat <= max_y):
            return False
        if _on_boundary(exterior, lon, lat):
            return True
        if not _inside(exterior, lon, lat):
            return False
        for hole in interiors:
            if _on_boundary(hole, lon, lat):
                return True
            if _inside(hole, lon, lat):
                return False
        return True

    return check
