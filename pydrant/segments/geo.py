"""Great-circle distance, once: the `geo` crate's Haversine, which Qdrant's geo radius
filter and its `geo_distance` formula expression both use.

On a sphere of radius `EARTH_RADIUS_M` = 6371008.8 m (`geo::MEAN_EARTH_RADIUS`), from
(lon1, lat1) to (lon2, lat2) in degrees:

    a = sin^2(rad(lat2 - lat1) / 2) + cos(rad lat1) cos(rad lat2) sin^2(rad(lon2 - lon1) / 2)
    d = R (2 asin(sqrt a))

`sqrt a` is clipped to 1 (rounding can lift it a hair above, where asin is undefined).
`haversine_m` is the scalar form (the payload check of a point); `haversine_m_array` the
same operations over arrays (payload indexes answering a radius condition). NumPy's and
libm's sin/cos may differ in the last bit, so callers comparing the two leave points
within a relative 1e-9 of a radius to the scalar form (field_index.py).
"""

from __future__ import annotations

import math

import numpy as np

EARTH_RADIUS_M = 6371008.8


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres between two (lon, lat) points in degrees."""
    a = (math.sin(math.radians(lat2 - lat1) / 2.0) ** 2
         + math.cos(math.radians(lat1)) * math.cos(math.radians(lat2)) * math.sin(math.radians(lon2 - lon1) / 2.0) ** 2)
    return EARTH_RADIUS_M * (2.0 * math.asin(min(1.0, math.sqrt(a))))


def haversine_m_array(lon: float, lat: float, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    """`haversine_m(lon, lat, lons[i], lats[i])` for every i, vectorised."""
    lons, lats = np.asarray(lons, np.float64), np.asarray(lats, np.float64)
    a = (np.sin(np.radians(lats - lat) / 2.0) ** 2
         + math.cos(math.radians(lat)) * np.cos(np.radians(lats)) * np.sin(np.radians(lons - lon) / 2.0) ** 2)
    return EARTH_RADIUS_M * (2.0 * np.arcsin(np.minimum(1.0, np.sqrt(a))))
