"""tools/synth.py: the seeded generator of the on-disk segment benchmarks (issue 17, B0).

A small fake "real" set is made here (no ../shared needed): 300 random unit rows of 24
dimensions, blocks of 250 points, so a block can be part real, part derived.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import synth  # noqa: E402

N_REAL, DIM, BLOCK = 300, 24, 250


@pytest.fixture
def real() -> np.ndarray:
    rows = np.random.default_rng(11).standard_normal((N_REAL, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def make(real, cache_dir: Path, seed: int = 5) -> synth.Synth:
    return synth.Synth(real, seed=seed, cache_dir=cache_dir, block_size=BLOCK)


def test_blocks_are_deterministic_per_seed_and_block_and_regenerate_alone(real, tmp_path):
    first = make(real, tmp_path / "c1")
    walked = [first.block(b) for b in range(4)]
    # a fresh generator (other cache dir: the table is recomputed) asked only for block 3
    alone = make(real, tmp_path / "c2").block(3)
    np.testing.assert_array_equal(alone, walked[3])
    np.testing.assert_array_equal(make(real, tmp_path / "c1").block(2), walked[2])
    other_seed = make(real, tmp_path / "c1", seed=6).block(2)
    assert not np.allclose(other_seed[N_REAL - 2 * BLOCK :], walked[2][N_REAL - 2 * BLOCK :])


def test_rows_are_float32_unit_norm_and_blocks_differ(real, tmp_path):
    gen = make(real, tmp_path)
    blocks = [gen.block(b) for b in range(3)]
    for rows in blocks:
        assert rows.dtype == np.float32 and rows.shape == (BLOCK, DIM)
        np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    # blocks 1 and 2 are fully derived; rows at the same position start from other real rows
    assert not np.allclose(blocks[1], blocks[2])
    assert len(np.unique(np.concatenate(blocks), axis=0)) == 3 * BLOCK  # no duplicate point


def test_first_points_are_the_real_vectors(real, tmp_path):
    gen = make(real, tmp_path)
    np.testing.assert_array_equal(gen.points(0, N_REAL), gen.real)
    np.testing.assert_allclose(gen.real, real, atol=1e-6)  # renormalised copy of the input
    # block 1 holds real rows 250..299 then derived points 300..499
    np.testing.assert_array_equal(gen.block(1)[: N_REAL - BLOCK], gen.real[BLOCK:])


def test_neighbour_table_is_brute_force_and_cached(real, tmp_path):
    gen = make(real, tmp_path)
    table = gen.neighbours()
    sims = gen.real @ gen.real.T
    np.fill_diagonal(sims, -np.inf)
    expected = np.argsort(-sims, axis=1, kind="stable")[:, : synth.NEIGHBOURS]
    np.testing.assert_array_equal(table, expected)
    path = gen.neighbours_path()
    assert path.parent == tmp_path and path.exists()
    np.testing.assert_array_equal(np.load(path), table)
    # a second generator reads the cached file instead of computing (a marked file proves it)
    marked = table.copy()
    marked[0, 0] = (marked[0, 0] + 1) % N_REAL
    np.save(path, marked)
    assert make(real, tmp_path).neighbours()[0, 0] == marked[0, 0]
    # another real set gets another file
    assert make(real[::-1].copy(), tmp_path).neighbours_path() != path


def test_derived_points_follow_the_formula(real, tmp_path):
    gen = make(real, tmp_path)
    block = 2
    a, b, t, eps = gen.derivation(block)
    table = gen.neighbours()
    index = np.arange(block * BLOCK, (block + 1) * BLOCK)
    np.testing.assert_array_equal(a, index % N_REAL)
    assert all(b[r] in table[a[r]] for r in range(BLOCK))  # b is one of a's 16 neighbours
    assert t.min() >= 0.0 and t.max() < synth.T_MAX
    x = gen.real
    expected = x[a] + t[:, None] * (x[b] - x[a]) + np.float32(synth.SIGMA) * eps
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(gen.block(block), expected, atol=1e-6)
    # a derived point is near its start: closer to x_a than a typical other real row
    cos_a = np.einsum("ij,ij->i", gen.block(block), x[a])
    assert np.median(cos_a) > np.median(real @ real[0])


def test_points_across_blocks_equal_the_blocks(real, tmp_path):
    gen = make(real, tmp_path)
    whole = np.concatenate([gen.block(b) for b in range(3)])
    np.testing.assert_array_equal(gen.points(240, 610), whole[240:610])
    np.testing.assert_array_equal(gen.points(0, 0), whole[:0])
    with pytest.raises(ValueError):
        gen.points(5, 4)


def test_ground_truth_equals_brute_force(real, tmp_path):
    gen = make(real, tmp_path)
    n_points = 2 * BLOCK + 77  # ends inside block 2
    points = gen.points(0, n_points)
    queries = np.random.default_rng(3).standard_normal((40, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    ids, scores = gen.ground_truth(queries, n_points, k=10)
    sims = queries @ points.T
    expected = np.argsort(-sims, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(sims, expected, axis=1), rtol=1e-6)
    assert ids.max() < n_points


def test_import_reads_no_data_and_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="base_a.f16.npy"):
        synth.Synth.from_data_dir(tmp_path, seed=1, cache_dir=tmp_path / "cache")
    with pytest.raises(FileNotFoundError, match="extra.f16.npy"):
        synth.load_queries(tmp_path, 10)


def test_data_dir_format_round_trip(real, tmp_path):
    """The on-disk format of ../shared/data (float16 .npy halves, extra as queries)."""
    np.save(tmp_path / "base_a.f16.npy", real[:150].astype(np.float16))
    np.save(tmp_path / "base_b.f16.npy", real[150:].astype(np.float16))
    np.save(tmp_path / "extra.f16.npy", real[:20].astype(np.float16))
    gen = synth.Synth.from_data_dir(tmp_path, seed=1, cache_dir=tmp_path / "cache", block_size=BLOCK)
    assert gen.n_real == N_REAL
    np.testing.assert_allclose(gen.points(0, N_REAL), real, atol=2e-3)
    queries = synth.load_queries(tmp_path, 20)
    assert queries.shape == (20, DIM) and queries.dtype == np.float32
    with pytest.raises(ValueError, match="only 20"):
        synth.load_queries(tmp_path, 21)
