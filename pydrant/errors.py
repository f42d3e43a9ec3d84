"""Engine exceptions, shared by every layer below `http/`.

Each class stands for one kind of failure a caller can act on. `http/errors.py` maps
every class here to an HTTP status code in one function; `tests/http/test_errors.py`
checks that no class is left without a mapping. Messages are written for the user who
sent the request: they name the field, collection or point that is wrong.
"""


class PydrantError(Exception):
    """Base of every engine error. `message` is what the user sees."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadInput(PydrantError):
    """The request is well-formed but its content is wrong (400 in Qdrant)."""


class ValidationFailed(PydrantError):
    """The request does not fit the schema (422 in Qdrant)."""


class NotFound(PydrantError):
    """A collection, alias, point, snapshot or index does not exist (404)."""


class AlreadyExists(PydrantError):
    """Creating something whose name is taken (409)."""


class Forbidden(PydrantError):
    """The caller's key or token does not allow this (403)."""


class Unauthorized(PydrantError):
    """No valid credentials were given (401)."""


class PayloadTooLarge(PydrantError):
    """The request body exceeds `max_request_size_mb` (413)."""


class Timeout(PydrantError):
    """The operation did not finish within the request's `timeout` (408 in Qdrant)."""


class Locked(PydrantError):
    """Writes are locked with `POST /locks` (403 in Qdrant, with the lock's message)."""


class RateLimited(PydrantError):
    """A collection's strict-mode read or write rate limit is exhausted (429 in Qdrant,
    with a Retry-After header of `retry_after_s` rounded up when it is known)."""

    def __init__(self, message: str, retry_after_s: float | None):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ServiceError(PydrantError):
    """An internal failure: storage, WAL or a bug (500). Logged with its traceback."""


class CorruptWal(ServiceError):
    """A WAL record before the tail failed its checksum or length check.

    Never silently skipped: loading stops and the message names the file and offset.
    """

    def __init__(self, path, offset: int, reason: str):
        super().__init__(f"WAL corrupt in {path} at offset {offset}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason
