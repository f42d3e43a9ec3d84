"""The write barrier of a sharded collection (collection/sharded.py): what lets a snapshot
cut every shard with no request half in the cut.

A request's operation is split into parts, one per shard, each logged and applied by its
shard's own update worker. A cut taken shard by shard while parts are on their way could
hold the part of shard 0 and miss the part of shard 2. So the router's writes pass the
barrier (`writing`) from before their parts are queued until every part is answered
(logged for `wait=false`, applied for `wait=true`), and a snapshot (or the swap of one
shard) `pause`s it: new writes wait at the gate, the pause waits until the writes in
flight are answered, and then holds while the shards are cut. Each part of every operation
is then in its shard's WAL (and in the cut: applied, or a WAL record after the cut) or in
none of them.

Writes do not wait for each other here; they wait only while a pause is held, for as long
as the writes in flight take to be answered plus the work done under the pause.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio


class WriteBarrier:
    def __init__(self) -> None:
        self._active = 0  # writes past the gate, not yet answered
        self._idle = trio.Event()
        self._idle.set()
        self._gate: trio.Event | None = None  # set while a pause holds: new writes wait for it
        self._pause_lock = trio.Lock()  # one pause at a time

    @property
    def paused(self) -> bool:
        return self._gate is not None

    @property
    def active(self) -> int:
        return self._active

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        """Held by one operation from before its parts are queued until they are answered."""
        while self._gate is not None:
            await self._gate.wait()
        self._active += 1
        if self._active == 1:
            self._idle = trio.Event()
        try:
            yield
        finally:
            self._active -= 1
            if self._active == 0:
                self._idle.set()

    @asynccontextmanager
    async def pause(self) -> AsyncIterator[None]:
        """No write passes the gate while this is held, and none is in flight once it is
        entered."""
        async with self._pause_lock:
            gate = self._gate = trio.Event()
            try:
                await self._idle.wait()
                yield
            finally:
                self._gate = None
                gate.set()
