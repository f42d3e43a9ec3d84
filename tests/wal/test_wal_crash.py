"""A process appending to the WAL is SIGKILLed mid-stream, again and again.

The child prints an op_num only after `append_many` returned for the batch ending there:
that is the acknowledgement. After each kill the log is reopened (cutting whatever torn
tail the kill left): every acknowledged op must be there, with its value, and the log must
be a gap-free run from op 1, since the child always continues at `last_op_num + 1`.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

import numpy as np

from pydrant.wal import Wal

CAPACITY = 16 * 1024  # small: kills also land around file roll-overs
CYCLES = 6

CHILD = """
import sys
import numpy as np
from pydrant.wal import Wal

wal = Wal(sys.argv[1], capacity_bytes=int(sys.argv[2]))
rng = np.random.default_rng(int(sys.argv[3]))
op_num = (wal.last_op_num or 0) + 1
while True:
    size = int(rng.integers(1, 16))
    batch = [
        (op, {"type": "upsert", "id": op, "vector": np.full(int(rng.integers(1, 200)), op, np.float32)})
        for op in range(op_num, op_num + size)
    ]
    wal.append_many(batch)
    print(batch[-1][0], flush=True)
    op_num += size
"""


def run_and_kill(directory, seed: int) -> int:
    """Start a writer, SIGKILL it after a random number of acks; the highest acked op."""
    rng = random.Random(seed)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(directory), str(CAPACITY), str(seed)],
        stdout=subprocess.PIPE,
        text=True,
    )
    acked = 0
    try:
        for _ in range(rng.randint(5, 60)):
            line = child.stdout.readline()
            assert line, f"writer exited early with status {child.wait()}"
            acked = int(line)
        time.sleep(rng.random() * 0.005)  # kill at a random point of the next batch
    finally:
        child.send_signal(signal.SIGKILL)
        rest = child.stdout.read()  # acknowledged before the kill, not read yet
        child.wait()
    for line in rest.splitlines():
        acked = int(line)
    return acked


def test_every_acknowledged_op_survives_sigkill(tmp_path):
    directory = tmp_path / "wal"
    highest_acked = 0
    for cycle in range(CYCLES):
        highest_acked = max(highest_acked, run_and_kill(directory, seed=cycle))
        with Wal(directory, capacity_bytes=CAPACITY) as wal:
            records = list(wal.read())
        ops = [op for op, _ in records]
        assert ops == list(range(1, len(ops) + 1)), f"cycle {cycle}: gap or disorder"
        assert ops[-1] >= highest_acked, f"cycle {cycle}: acknowledged op {highest_acked} lost"
        for op, value in records:
            assert value["id"] == op and np.all(value["vector"] == op)
    assert len(list(directory.glob("*.wal"))) > 1  # the kills crossed file boundaries
