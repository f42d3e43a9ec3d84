"""The access log (pydrant/http/access_log.py): one INFO record per answered request on
`pydrant.access`, with structured fields, and never a key, a query string or a body."""

from __future__ import annotations

import logging

import pytest
from inprocess import running_app

SECRET = "s3cr3t-key-value"


def access_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "pydrant.access"]


@pytest.mark.trio
async def test_every_answer_is_logged_with_its_fields(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pydrant.access")
    async with running_app(tmp_path) as client:
        created = await client.put("/collections/logged", json={"vectors": {"size": 2, "distance": "Dot"}},
                                   headers={"User-Agent": "probe/1"})
        assert created.status_code == 200
        missing = await client.get("/collections/absent")
        assert missing.status_code == 404
    records = access_records(caplog)
    assert [(r.fields["method"], r.fields["path"], r.fields["status"], r.fields["collection"]) for r in records] == [
        ("PUT", "/collections/logged", 200, "logged"),
        ("GET", "/collections/absent", 404, "absent"),
    ]
    first = records[0]
    assert first.levelno == logging.INFO
    assert first.fields["user_agent"] == "probe/1" and first.fields["duration_s"] >= 0
    assert first.fields["bytes"] and first.fields["bytes"] > 0
    assert '"PUT /collections/logged HTTP/' in first.getMessage() and " 200 " in first.getMessage()


@pytest.mark.trio
async def test_keys_query_strings_and_bodies_are_never_logged(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pydrant.access")
    async with running_app(tmp_path, {"service.api_key": SECRET}) as client:
        refused = await client.get("/collections?api-key=" + SECRET, headers={"api-key": "wrong-" + SECRET})
        assert refused.status_code == 401
        accepted = await client.put("/collections/c?wait=true", json={"vectors": {"size": 2, "distance": "Dot"}},
                                    headers={"Authorization": f"Bearer {SECRET}"})
        assert accepted.status_code == 200
    records = access_records(caplog)
    assert [r.fields["status"] for r in records] == [401, 200]
    for record in records:
        shown = record.getMessage() + repr(record.fields)
        assert SECRET not in shown and "Dot" not in shown and "wait=true" not in shown


@pytest.mark.trio
async def test_the_access_log_is_silenced_like_any_logger(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="pydrant.access")
    async with running_app(tmp_path) as client:
        assert (await client.get("/collections")).status_code == 200
    assert access_records(caplog) == []


def test_the_json_log_format_carries_the_fields():
    import json

    from pydrant.cli import JsonFormatter

    record = logging.LogRecord("pydrant.access", logging.INFO, __file__, 1, "line", (), None)
    record.fields = {"method": "GET", "status": 200, "collection": "c"}
    entry = json.loads(JsonFormatter().format(record))
    assert entry["target"] == "pydrant.access"
    assert entry["fields"] == {"message": "line", "method": "GET", "status": 200, "collection": "c"}
