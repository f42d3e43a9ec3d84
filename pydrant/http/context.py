"""Accessors for the app-wide objects handlers need."""

from quart import current_app

from pydrant.errors import Locked


def toc():
    return current_app.extensions["toc"]


def settings():
    return current_app.extensions["settings"]


def check_write_allowed() -> None:
    """Writes are refused while `POST /locks` holds the write lock (403, its message)."""
    locks = current_app.extensions["locks"]
    if locks["write"]:
        raise Locked(locks.get("error_message") or "Write operations are forbidden")
