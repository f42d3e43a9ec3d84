"""Parsing upsert bodies with the vectors going straight into numpy.

A bulk upsert of 1,000 x 384-d vectors is ~4 MB of JSON. orjson turns it into 384,000
Python floats (~17 ms) that numpy then converts again (~6 ms); simdjson (pysimdjson) parses
it and copies each vector array into a float64 buffer without creating Python objects.
Everything else in the body (ids, payloads, options) becomes plain Python as orjson would
make it.

`as_buffer` flattens nested arrays, so `[1, [2]]` would pass for `[1, 2]`. To be sure that
every array taken as a vector (or as a column of vectors) is flat, the `[` characters of
the raw body are counted and must equal the arrays the parse accounts for: the vector
arrays, plus every array and every `[` inside strings or keys of the parts converted to
Python. Any mismatch, any value of another shape and any body simdjson refuses falls back
to orjson and the usual per-point checks, so error messages are unchanged.
"""

from __future__ import annotations

import threading

import numpy as np
import simdjson

from pydrant.http.validation import check_depth, parse_json


_PARSERS = threading.local()  # a simdjson parser keeps its buffers between documents


def _parse_document(raw: bytes):
    parser = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = simdjson.Parser()
    try:
        return parser.parse(raw)
    except RuntimeError:
        # "re-use a parser while ... objects still exist": a caller still holds a value
        # of the last document; that parser stays theirs.
        parser = _PARSERS.parser = simdjson.Parser()
        return parser.parse(raw)


class _NotBulk(Exception):
    """The body is not a plain bulk upsert; parse it the ordinary way."""


def parse_upsert_body(raw: bytes):
    """The body of `PUT /points` as plain JSON types, with vectors as float64 ndarrays."""
    try:
        return _BulkParse().run(raw)
    except (_NotBulk, ValueError, TypeError, RuntimeError, KeyError):
        return parse_json(raw)  # orjson, with its error messages


class _BulkParse:
    def __init__(self):
        self.brackets = 0  # `[` characters accounted for so far

    def run(self, raw: bytes) -> dict:
        document = _parse_document(raw)
        if not isinstance(document, simdjson.Object):
            raise _NotBulk
        body = {}
        for key, value in self.entries(document):
            if key == "batch" and isinstance(value, simdjson.Object):
                body[key] = self.batch(value)
            elif key == "points" and isinstance(value, simdjson.Array):
                self.brackets += 1
                body[key] = [self.point(p) for p in value]
            else:
                body[key] = self.plain(value)
        if raw.count(b"[") != self.brackets:
            raise _NotBulk  # a nested array hides inside something taken as a vector
        check_depth(body)  # the vectors are arrays now: this walks ids and payloads
        return body

    def batch(self, batch) -> dict:
        out = {}
        for key, value in self.entries(batch):
            if key == "vectors" and isinstance(value, simdjson.Array):
                out[key] = self.matrix(value)
            elif key == "vectors" and isinstance(value, simdjson.Object):
                out[key] = {name: self.matrix(column) for name, column in self.entries(value)}
            else:
                out[key] = self.plain(value)
        return out

    def point(self, point):
        if not isinstance(point, simdjson.Object):
            return self.plain(point)
        out = {}
        for key, value in self.entries(point):
            out[key] = self.vector(value) if key == "vector" else self.plain(value)
        return out

    def vector(self, value):
        """A flat list of numbers as a 1-d array; other values (named vectors) as Python."""
        if not isinstance(value, simdjson.Array) or len(value) == 0:
            return self.plain(value)
        flat = _numbers(value)
        if flat is None:
            return self.plain(value)
        self.brackets += 1
        return flat

    def matrix(self, value):
        """A list of equally long flat lists of numbers as a 2-d array, else Python."""
        if not isinstance(value, simdjson.Array) or len(value) == 0:
            return self.plain(value)
        rows = len(value)
        first = value[0]
        width = len(first) if isinstance(first, simdjson.Array) else 0
        if width == 0 or any(not isinstance(row, simdjson.Array) or len(row) != width for row in value):
            return self.plain(value)
        flat = _numbers(value)
        if flat is None or flat.size != rows * width:
            return self.plain(value)
        self.brackets += 1 + rows
        return flat.reshape(rows, width)

    def entries(self, obj):
        # Object.items() converts values to Python; indexing keeps arrays and objects lazy.
        for key in obj.keys():
            self.brackets += key.count("[")
            yield key, obj[key]

    def plain(self, value):
        """A simdjson value as the Python value orjson would give."""
        if isinstance(value, simdjson.Object):
            value = value.as_dict()
        elif isinstance(value, simdjson.Array):
            value = value.as_list()
        self.brackets += _brackets_in(value)
        return value


def _numbers(array) -> np.ndarray | None:
    try:
        return np.frombuffer(array.as_buffer(of_type="d"), dtype=np.float64)
    except TypeError:  # a string, bool, null or object among the values
        return None


def _brackets_in(value) -> int:
    """`[` characters the JSON text of a plain value holds (arrays, strings, keys)."""
    if isinstance(value, str):
        return value.count("[")
    if isinstance(value, list):
        return 1 + sum(_brackets_in(item) for item in value)
    if isinstance(value, dict):
        return sum(key.count("[") + _brackets_in(item) for key, item in value.items())
    return 0
