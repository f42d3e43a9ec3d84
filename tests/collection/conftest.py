"""Fixtures shared by the in-process collection tests."""

import pytest
from test_engine import Built


@pytest.fixture
def built(tmp_path):
    made = []

    def make(name="c", **kwargs) -> Built:
        b = Built(tmp_path / name, **kwargs)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()
