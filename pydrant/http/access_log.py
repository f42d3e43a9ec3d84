"""The access log: one INFO line per answered request on the `pydrant.access` logger.

As Qdrant's (actix's request logger, on by default at INFO), with the request's own facts
as structured fields for the JSON log format: remote address, method, path, status,
response bytes, duration, user agent, and the collection the path names. Never the query
string, the body or any header that can carry a secret (`api-key`, `Authorization`).
Silence it like any logger: `log_level: "INFO,pydrant.access=warn"`.
"""

from __future__ import annotations

import logging

log = logging.getLogger("pydrant.access")


def record_request(request, response, seconds: float) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    fields = access_fields(request, response, seconds)
    log.info(
        '%s "%s %s HTTP/%s" %d %s "%s" %.6f',
        fields["remote"], fields["method"], fields["path"], fields["http_version"], fields["status"],
        fields["bytes"] if fields["bytes"] is not None else "-", fields["user_agent"] or "-", seconds,
        extra={"fields": fields},
    )


def access_fields(request, response, seconds: float) -> dict:
    view_args = request.view_args or {}
    return {
        "remote": request.remote_addr or "-",
        "method": request.method,
        "path": request.path,
        "http_version": request.http_version,
        "status": response.status_code,
        "bytes": response.content_length,
        "duration_s": round(seconds, 6),
        "user_agent": request.headers.get("User-Agent"),
        "collection": view_args.get("name"),
    }
