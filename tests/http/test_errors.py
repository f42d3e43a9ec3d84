"""Every engine exception maps to an HTTP status (Qdrant's codes)."""

import inspect

from pydrant import errors
from pydrant.http.errors import STATUS_BY_ERROR, status_for


def engine_error_classes():
    return [
        cls for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.PydrantError)
    ]


def test_every_engine_error_has_a_status():
    for cls in engine_error_classes():
        assert any(base in STATUS_BY_ERROR for base in cls.__mro__), cls


def test_statuses_follow_qdrant():
    assert status_for(errors.BadInput("x")) == 400
    assert status_for(errors.ValidationFailed("x")) == 422
    assert status_for(errors.NotFound("x")) == 404
    assert status_for(errors.AlreadyExists("x")) == 409
    assert status_for(errors.Unauthorized("x")) == 401
    assert status_for(errors.Forbidden("x")) == 403
    assert status_for(errors.PayloadTooLarge("x")) == 413
    assert status_for(errors.CorruptWal("f", 12, "bad crc")) == 500
