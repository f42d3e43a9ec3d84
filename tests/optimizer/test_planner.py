"""The optimizer's planner (pydrant/optimizer/planner.py): which optimization comes next."""

from pydrant.optimizer.planner import SegmentFacts, next_plan

WANTED = {"dense": {"": {"hnsw": {"m": 16, "ef_construct": 100}, "quantization": None, "on_disk": False}}, "sparse": {}}
CONFIG = {"indexing_threshold": 100, "default_segment_number": 2, "deleted_threshold": 0.2, "vacuum_min_vector_number": 100}


def facts(name, kb=10.0, indexed=False, used=100, dead=0, settings=WANTED):
    return SegmentFacts(name, not indexed, indexed, kb, used, dead, settings if indexed else None)


def test_nothing_to_do():
    assert next_plan([facts("w")], CONFIG, WANTED) is None
    assert next_plan([facts("a", 500, indexed=True), facts("w")], CONFIG, WANTED) is None


def test_indexing_past_the_threshold():
    plan = next_plan([facts("w", kb=100)], CONFIG, WANTED)
    assert (plan.kind, plan.sources, plan.indexed) == ("indexing", ["w"], True)


def test_indexing_threshold_zero_disables_indexing():
    assert next_plan([facts("w", kb=1e9)], {**CONFIG, "indexing_threshold": 0}, WANTED) is None


def test_max_optimization_threads_zero_disables_everything():
    config = {**CONFIG, "max_optimization_threads": 0}
    assert next_plan([facts("w", kb=1e9, used=1000, dead=900)], config, WANTED) is None


def test_vacuum_needs_share_and_minimum():
    assert next_plan([facts("a", indexed=True, used=1000, dead=201), facts("w")], CONFIG, WANTED).kind == "vacuum"
    assert next_plan([facts("a", indexed=True, used=1000, dead=200), facts("w")], CONFIG, WANTED) is None
    assert next_plan([facts("a", indexed=True, used=99, dead=90), facts("w")], CONFIG, WANTED) is None


def test_config_mismatch_rebuilds_indexed_segments():
    other = {"dense": {"": {"hnsw": {"m": 32, "ef_construct": 100}, "quantization": None, "on_disk": False}}, "sparse": {}}
    plan = next_plan([facts("a", 500, indexed=True, settings=other), facts("w")], CONFIG, WANTED)
    assert (plan.kind, plan.sources, plan.indexed) == ("config_mismatch", ["a"], True)


def test_merge_smallest_non_appendable_segments_past_the_target():
    segments = [facts("big", 900, indexed=True), facts("s1", 5), facts("s2", 7), facts("s3", 9), facts("w", 1)]
    plan = next_plan(segments, {**CONFIG, "indexing_threshold": 10_000}, WANTED)
    assert plan.kind == "merge" and plan.sources == ["s1", "s2", "s3"] and not plan.indexed
    # within max_segment_size only
    plan = next_plan(segments, {**CONFIG, "indexing_threshold": 10_000, "max_segment_size": 13}, WANTED)
    assert plan.sources == ["s1", "s2"]
    assert next_plan(segments[-2:], CONFIG, WANTED) is None  # two segments: at the target


def test_server_defaults_reach_new_collections(tmp_path):
    """storage.hnsw_index / storage.optimizers / storage.collection.quantization settings are
    the defaults of new collections' configs, which the optimizer acts on."""
    from pydrant.collection.config import build_config, index_settings
    from pydrant.config import load_settings
    from pydrant.storage.toc import defaults_from_settings

    path = tmp_path / "config.yaml"
    path.write_text(
        "storage:\n  hnsw_index:\n    m: 24\n  optimizers:\n    indexing_threshold_kb: 123\n"
        "  collection:\n    quantization:\n      scalar:\n        type: int8\n"
    )
    defaults = defaults_from_settings(load_settings(path, env={}))
    config = build_config({"vectors": {"size": 4, "distance": "Dot"}}, defaults)
    assert config["optimizer_config"]["indexing_threshold"] == 123
    assert config["quantization_config"] == {"scalar": {"type": "int8"}}
    assert index_settings(config)["dense"][""]["hnsw"]["m"] == 24
    explicit = build_config(
        {"vectors": {"size": 4, "distance": "Dot"}, "quantization_config": {"binary": {}}}, defaults
    )
    assert explicit["quantization_config"] == {"binary": {}}
