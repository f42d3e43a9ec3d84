"""config.json and manifest.json writes that fail (EIO, ENOSPC) at each step of the atomic
switch (pydrant/fsutil.py write_atomic: write the temporary, fsync it, rename it over the
target, fsync the directory): the target always holds the old content or the new one,
whole, never an empty or torn file, and no temporary is left behind. A collection whose
manifest write fails keeps serving from its old segments and reopens whole."""

from __future__ import annotations

import errno as errnos
import os

import orjson
import pytest
import trio

from pydrant import fsutil
from pydrant.collection import collection as collection_module
from pydrant.collection.collection import MANIFEST_FILE, Collection
from pydrant.collection.config import CollectionDefaults, build_config

OLD = {"segments": ["a", "b"], "note": "old"}
NEW = {"segments": ["a", "b", "c"], "note": "new" * 1000}
ERRNOS = [pytest.param(errnos.EIO, id="EIO"), pytest.param(errnos.ENOSPC, id="ENOSPC")]
STEPS = ["write", "fsync", "replace", "fsync_dir"]


class FailingFile:
    def __init__(self, f, err):
        self._f, self._err = f, err

    def write(self, data):
        self._f.write(data[: len(data) // 2])  # a short write, then the error
        raise OSError(self._err, os.strerror(self._err))

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def inject(monkeypatch, step: str, err: int) -> None:
    def fail(*args, **kwargs):
        raise OSError(err, os.strerror(err) + " (injected)")

    if step == "write":
        monkeypatch.setattr(fsutil, "open", lambda path, mode="r": FailingFile(open(path, mode), err), raising=False)
    elif step == "fsync":  # the temporary's fsync (the first fsync of write_atomic)
        real = os.fsync
        calls = {"n": 0}

        def fsync(fd):
            calls["n"] += 1
            if calls["n"] == 1:
                fail()
            return real(fd)

        monkeypatch.setattr(fsutil.os, "fsync", fsync)
    elif step == "replace":
        monkeypatch.setattr(fsutil.os, "replace", fail)
    elif step == "fsync_dir":
        monkeypatch.setattr(fsutil, "fsync_dir", fail)


def leftovers(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("err", ERRNOS)
@pytest.mark.parametrize("step", STEPS)
def test_write_atomic_failure_leaves_the_old_or_the_new_content_whole(tmp_path, monkeypatch, step, err):
    target = tmp_path / "config.json"
    fsutil.write_json_atomic(target, OLD)
    inject(monkeypatch, step, err)
    with pytest.raises(OSError) as raised:
        fsutil.write_json_atomic(target, NEW)
    assert raised.value.errno == err
    monkeypatch.undo()
    content = orjson.loads(target.read_bytes())  # never empty, never torn
    if step == "fsync_dir":
        assert content in (OLD, NEW)  # renamed; only the directory entry's durability failed
    else:
        assert content == OLD
    assert leftovers(tmp_path) == []
    fsutil.write_json_atomic(target, NEW)  # and the next write works
    assert orjson.loads(target.read_bytes()) == NEW


def make_config() -> dict:
    return build_config(
        {"vectors": {"size": 4, "distance": "Dot"}, "optimizers_config": {"max_optimization_threads": 0}},
        CollectionDefaults(),
    )


@pytest.mark.parametrize("err", ERRNOS)
@pytest.mark.parametrize("step", ["write", "fsync", "replace"])
async def test_failed_manifest_write_keeps_the_old_segments(tmp_path, monkeypatch, step, err):
    """Adding a segment (as the optimizer does) while manifest.json cannot be written: the
    call fails, the collection keeps its segments in memory, the manifest on disk is the
    old one, whole, and a reopen finds every segment it names."""
    path = tmp_path / "c"
    Collection.initialise(path, "c", make_config())
    collection = await trio.to_thread.run_sync(Collection.load, path)
    manifest_before = (path / MANIFEST_FILE).read_bytes()
    segments_before = list(collection.segments)
    inject(monkeypatch, step, err)
    with pytest.raises(OSError):
        with collection.apply_lock:
            collection.add_appendable_segment()
    monkeypatch.undo()
    assert collection.segments == segments_before
    assert (path / MANIFEST_FILE).read_bytes() == manifest_before
    assert leftovers(path) == []
    await collection.close()
    reopened = await trio.to_thread.run_sync(Collection.load, path)
    assert [s.path.name for s in reopened.segments] == orjson.loads(manifest_before)["segments"]
    await reopened.close()


def test_collection_writes_its_files_through_write_atomic():
    # the injection points above are the ones the collection's writes go through
    assert collection_module.write_json_atomic is fsutil.write_json_atomic
