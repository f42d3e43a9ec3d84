"""Engine exceptions to HTTP status codes, in one place.

`status_for` walks the exception's class hierarchy, so a new subclass inherits its
parent's status; `tests/http/test_errors.py` checks every class in `pydrant.errors` maps.
"""

from pydrant import errors

STATUS_BY_ERROR: dict[type, int] = {
    errors.BadInput: 400,
    errors.ValidationFailed: 422,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.Locked: 403,
    errors.NotFound: 404,
    errors.Timeout: 408,
    errors.AlreadyExists: 409,
    errors.PayloadTooLarge: 413,
    errors.RateLimited: 429,
    errors.ServiceError: 500,
    errors.PydrantError: 500,
}


def status_for(exc: errors.PydrantError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500
