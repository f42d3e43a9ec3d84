"""Settings: Qdrant's defaults, and the layers file <- environment <- overrides."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
import yaml

from pydrant.config import (
    ACTED_ON,
    ConfigError,
    Settings,
    load_settings,
    log_levels,
    setting_names,
)

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = REPO / "config" / "config.yaml"


@pytest.fixture(autouse=True)
def empty_workdir(tmp_path, monkeypatch):
    """Run each test where no config/config.yaml exists, so only what a test gives counts."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_yaml(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value and f"{prefix}{key}" != "storage.collection.quantization":
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# --- defaults --------------------------------------------------------------------------


# The values of Qdrant v1.15's config/config.yaml.
QDRANT_DEFAULTS = {
    "log_level": "INFO",
    "storage.storage_path": "./storage",
    "storage.snapshots_path": "./snapshots",
    "storage.snapshots_config.snapshots_storage": "local",
    "storage.temp_path": None,
    "storage.on_disk_payload": True,
    "storage.update_concurrency": None,
    "storage.wal.wal_capacity_mb": 32,
    "storage.wal.wal_segments_ahead": 0,
    "storage.node_type": "Normal",
    "storage.performance.max_search_threads": 0,
    "storage.performance.optimizer_cpu_budget": 0,
    "storage.performance.update_rate_limit": None,
    "storage.optimizers.deleted_threshold": 0.2,
    "storage.optimizers.vacuum_min_vector_number": 1000,
    "storage.optimizers.default_segment_number": 0,
    "storage.optimizers.max_segment_size_kb": None,
    "storage.optimizers.memmap_threshold_kb": None,
    "storage.optimizers.indexing_threshold_kb": 10000,
    "storage.optimizers.flush_interval_sec": 5,
    "storage.optimizers.max_optimization_threads": None,
    "storage.hnsw_index.m": 16,
    "storage.hnsw_index.ef_construct": 100,
    "storage.hnsw_index.full_scan_threshold_kb": 10000,
    "storage.hnsw_index.max_indexing_threads": 0,
    "storage.hnsw_index.on_disk": False,
    "storage.hnsw_index.payload_m": None,
    "storage.shard_transfer_method": None,
    "storage.collection.replication_factor": 1,
    "storage.collection.write_consistency_factor": 1,
    "storage.collection.vectors.on_disk": None,
    "storage.collection.quantization": None,
    "service.max_request_size_mb": 32,
    "service.max_workers": 0,
    "service.host": "0.0.0.0",
    "service.http_port": 6333,
    "service.grpc_port": 6334,
    "service.enable_cors": True,
    "service.enable_tls": False,
    "service.verify_https_client_certificate": False,
    "service.api_key": None,
    "service.read_only_api_key": None,
    "cluster.enabled": False,
    "cluster.p2p.port": 6335,
    "cluster.p2p.enable_tls": False,
    "cluster.consensus.tick_period_ms": 100,
    "cluster.consensus.compact_wal_entries": 128,
    "telemetry_disabled": False,
    "tls.cert": "./tls/cert.pem",
    "tls.key": "./tls/key.pem",
    "tls.ca_cert": "./tls/cacert.pem",
    "tls.cert_ttl": 3600,
}


@pytest.mark.parametrize("name", sorted(QDRANT_DEFAULTS))
def test_defaults_equal_qdrants(name):
    assert flat(load_settings(env={}).to_dict())[name] == QDRANT_DEFAULTS[name]


def test_defaults_need_no_file_and_no_environment():
    assert load_settings(env={}) == Settings()


def test_settings_expose_attributes():
    settings = load_settings(env={})
    assert settings.service.http_port == 6333
    assert settings.storage.storage_path == "./storage"
    assert settings.storage.wal.wal_capacity_mb == 32
    assert settings.storage.optimizers.flush_interval_sec == 5
    assert settings.storage.hnsw_index.m == 16
    assert settings.tls.cert == "./tls/cert.pem"


def test_settings_are_frozen():
    settings = load_settings(env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.service.http_port = 1


def test_to_dict_has_the_shape_of_config_yaml():
    tree = load_settings(env={}).to_dict()
    assert tree["service"]["http_port"] == 6333
    assert tree["storage"]["wal"] == {
        "wal_capacity_mb": 32, "wal_segments_ahead": 0, "wal_retain_age_sec": None, "wal_retain_size_mb": None
    }


def test_example_config_file_holds_every_default():
    assert load_settings(EXAMPLE_CONFIG, env={}) == Settings()


def test_example_config_file_names_every_setting():
    in_file = set(flat(yaml.safe_load(EXAMPLE_CONFIG.read_text())))
    assert in_file == set(flat(Settings().to_dict()))


def test_configuration_doc_names_every_setting():
    doc = (REPO / "docs" / "configuration.md").read_text()
    missing = [name for name in setting_names() if f"`{name}`" not in doc]
    assert missing == []


def test_acted_on_names_are_real_settings():
    assert ACTED_ON <= set(setting_names())


# --- the YAML file ---------------------------------------------------------------------


def test_yaml_file_overrides_defaults(tmp_path):
    path = write_yaml(tmp_path / "my.yaml", "service:\n  http_port: 7000\nstorage:\n  wal:\n    wal_capacity_mb: 64\n")
    settings = load_settings(path, env={})
    assert settings.service.http_port == 7000
    assert settings.storage.wal.wal_capacity_mb == 64
    # Untouched neighbours keep their defaults.
    assert settings.service.host == "0.0.0.0"
    assert settings.storage.wal.wal_segments_ahead == 0


def test_config_yaml_in_working_directory_is_read_by_default(empty_workdir):
    write_yaml(empty_workdir / "config" / "config.yaml", "service:\n  http_port: 7100\n")
    assert load_settings(env={}).service.http_port == 7100


def test_given_path_replaces_the_default_file(empty_workdir):
    write_yaml(empty_workdir / "config" / "config.yaml", "service:\n  http_port: 7100\n")
    other = write_yaml(empty_workdir / "other.yaml", "service:\n  host: 127.0.0.1\n")
    settings = load_settings(other, env={})
    assert settings.service.host == "127.0.0.1"
    assert settings.service.http_port == 6333


def test_nonexistent_config_path_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found: .*missing.yaml"):
        load_settings(tmp_path / "missing.yaml", env={})


def test_empty_yaml_file_means_defaults(tmp_path):
    assert load_settings(write_yaml(tmp_path / "empty.yaml", ""), env={}) == Settings()


def test_invalid_yaml_is_an_error(tmp_path):
    path = write_yaml(tmp_path / "bad.yaml", "service: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(path, env={})


def test_yaml_top_level_must_be_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="mapping of settings"):
        load_settings(write_yaml(tmp_path / "list.yaml", "- a\n- b\n"), env={})


def test_yaml_keys_are_case_insensitive(tmp_path):
    path = write_yaml(tmp_path / "c.yaml", "Service:\n  HTTP_PORT: 7001\n")
    assert load_settings(path, env={}).service.http_port == 7001


def test_unknown_setting_in_yaml_is_named_with_its_file(tmp_path):
    path = write_yaml(tmp_path / "typo.yaml", "service:\n  http_prot: 7000\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert "unknown setting 'service.http_prot'" in str(info.value)
    assert "typo.yaml" in str(info.value)


def test_unknown_section_in_yaml_is_named(tmp_path):
    path = write_yaml(tmp_path / "s.yaml", "servce:\n  http_port: 7000\n")
    with pytest.raises(ConfigError, match="unknown setting 'servce'"):
        load_settings(path, env={})


def test_wrong_type_in_yaml_is_named(tmp_path):
    path = write_yaml(tmp_path / "t.yaml", "service:\n  http_port: abc\n")
    with pytest.raises(ConfigError, match="setting 'service.http_port' must be an integer, got 'abc'"):
        load_settings(path, env={})


def test_section_given_a_value_is_an_error(tmp_path):
    path = write_yaml(tmp_path / "v.yaml", "storage:\n  wal: 5\n")
    with pytest.raises(ConfigError, match="'storage.wal' is a section"):
        load_settings(path, env={})


def test_value_given_a_mapping_is_an_error(tmp_path):
    path = write_yaml(tmp_path / "m.yaml", "service:\n  http_port:\n    a: 1\n")
    with pytest.raises(ConfigError, match="'service.http_port' must be an integer, got a mapping"):
        load_settings(path, env={})


def test_key_given_twice_in_different_case_is_an_error(tmp_path):
    path = write_yaml(tmp_path / "d.yaml", "service:\n  http_port: 1\n  HTTP_PORT: 2\n")
    with pytest.raises(ConfigError, match="'service.http_port' is given twice"):
        load_settings(path, env={})


def test_optional_section_accepts_null_and_mapping(tmp_path):
    path = write_yaml(
        tmp_path / "s3.yaml",
        "storage:\n  snapshots_config:\n    snapshots_storage: s3\n    s3_config:\n      bucket: backups\n",
    )
    s3 = load_settings(path, env={}).storage.snapshots_config.s3_config
    assert s3.bucket == "backups" and s3.region is None
    assert load_settings(env={}).storage.snapshots_config.s3_config is None


def test_free_form_mapping_keeps_the_case_of_its_keys(tmp_path):
    path = write_yaml(
        tmp_path / "mv.yaml",
        "storage:\n  collection:\n    strict_mode:\n      multivector_config:\n        ColBERT:\n          max_vectors: 8\n",
    )
    config = load_settings(path, env={}).storage.collection.strict_mode.multivector_config
    assert config == {"ColBERT": {"max_vectors": 8}}


def test_quantization_takes_one_kind(tmp_path):
    good = write_yaml(tmp_path / "q.yaml", "storage:\n  collection:\n    quantization:\n      scalar:\n        type: int8\n")
    assert load_settings(good, env={}).storage.collection.quantization == {"scalar": {"type": "int8"}}
    bad = write_yaml(tmp_path / "bad.yaml", "storage:\n  collection:\n    quantization:\n      fancy: {}\n")
    with pytest.raises(ConfigError, match="'storage.collection.quantization' must have exactly one of the keys"):
        load_settings(bad, env={})


# --- environment -----------------------------------------------------------------------


def test_pydrant_environment_variable_overrides_file(tmp_path):
    path = write_yaml(tmp_path / "f.yaml", "service:\n  http_port: 7000\n")
    settings = load_settings(path, env={"PYDRANT__SERVICE__HTTP_PORT": "7001"})
    assert settings.service.http_port == 7001


def test_qdrant_environment_variable_is_read():
    settings = load_settings(env={"QDRANT__SERVICE__API_KEY": "secret"})
    assert settings.service.api_key == "secret"


def test_pydrant_name_wins_over_qdrant_name():
    env = {"QDRANT__SERVICE__HTTP_PORT": "8000", "PYDRANT__SERVICE__HTTP_PORT": "9000"}
    assert load_settings(env=env).service.http_port == 9000


def test_qdrant_name_still_applies_where_pydrant_names_another_setting():
    env = {"QDRANT__SERVICE__HTTP_PORT": "8000", "PYDRANT__SERVICE__HOST": "127.0.0.1"}
    settings = load_settings(env=env)
    assert (settings.service.host, settings.service.http_port) == ("127.0.0.1", 8000)


def test_environment_names_are_case_insensitive():
    assert load_settings(env={"pydrant__Service__Http_Port": "7002"}).service.http_port == 7002


def test_environment_reaches_nested_sections():
    env = {
        "PYDRANT__STORAGE__OPTIMIZERS__FLUSH_INTERVAL_SEC": "1",
        "PYDRANT__STORAGE__HNSW_INDEX__M": "32",
        "PYDRANT__CLUSTER__P2P__PORT": "7335",
    }
    settings = load_settings(env=env)
    assert settings.storage.optimizers.flush_interval_sec == 1
    assert settings.storage.hnsw_index.m == 32
    assert settings.cluster.p2p.port == 7335


def test_unrelated_environment_variables_are_ignored():
    env = {"PATH": "/bin", "QDRANT_URL": "http://x", "PYDRANT_HOME": "/tmp"}
    assert load_settings(env=env) == Settings()


@pytest.mark.parametrize(
    ("name", "text", "attribute", "expected"),
    [
        ("SERVICE__HTTP_PORT", "7000", ("service", "http_port"), 7000),
        ("SERVICE__ENABLE_CORS", "false", ("service", "enable_cors"), False),
        ("SERVICE__ENABLE_CORS", "TRUE", ("service", "enable_cors"), True),
        ("STORAGE__OPTIMIZERS__DELETED_THRESHOLD", "0.5", ("storage", "optimizers", "deleted_threshold"), 0.5),
        ("STORAGE__OPTIMIZERS__DELETED_THRESHOLD", "1", ("storage", "optimizers", "deleted_threshold"), 1.0),
        ("SERVICE__SLOW_QUERY_SECS", "1e3", ("service", "slow_query_secs"), 1000.0),
        ("SERVICE__GRPC_PORT", "null", ("service", "grpc_port"), None),
        ("STORAGE__OPTIMIZERS__INDEXING_THRESHOLD_KB", "~", ("storage", "optimizers", "indexing_threshold_kb"), None),
        # String settings take the text verbatim: no YAML reading of "0123" as a number.
        ("SERVICE__API_KEY", "0123", ("service", "api_key"), "0123"),
        ("SERVICE__API_KEY", "true", ("service", "api_key"), "true"),
        ("SERVICE__API_KEY", "", ("service", "api_key"), None),
        ("STORAGE__NODE_TYPE", "listener", ("storage", "node_type"), "Listener"),
    ],
)
def test_environment_values_are_coerced_to_the_setting_type(name, text, attribute, expected):
    value = load_settings(env={f"PYDRANT__{name}": text})
    for part in attribute:
        value = getattr(value, part)
    assert value == expected
    assert type(value) is type(expected)


def test_whole_section_from_one_variable_as_yaml_mapping():
    settings = load_settings(env={"PYDRANT__STORAGE__WAL": "{wal_capacity_mb: 64}"})
    assert settings.storage.wal.wal_capacity_mb == 64


def test_mapping_setting_from_nested_variable_names():
    settings = load_settings(env={"PYDRANT__STORAGE__COLLECTION__QUANTIZATION__SCALAR__TYPE": "int8"})
    assert settings.storage.collection.quantization == {"scalar": {"type": "int8"}}


def test_environment_null_clears_a_mapping_from_the_file(tmp_path):
    path = write_yaml(tmp_path / "q.yaml", "storage:\n  collection:\n    quantization:\n      binary: {}\n")
    env = {"PYDRANT__STORAGE__COLLECTION__QUANTIZATION": "null"}
    assert load_settings(path, env=env).storage.collection.quantization is None


@pytest.mark.parametrize("prefix", ["PYDRANT", "QDRANT"])
def test_unknown_setting_in_environment_is_named_with_its_variable(prefix):
    with pytest.raises(ConfigError) as info:
        load_settings(env={f"{prefix}__SERVICE__HTTP_PROT": "7000"})
    assert "unknown setting 'service.http_prot'" in str(info.value)
    assert f"{prefix}__SERVICE__HTTP_PROT" in str(info.value)


def test_wrong_type_in_environment_is_named():
    with pytest.raises(ConfigError) as info:
        load_settings(env={"PYDRANT__SERVICE__HTTP_PORT": "abc"})
    assert str(info.value) == (
        "setting 'service.http_port' must be an integer, got 'abc' (environment variable PYDRANT__SERVICE__HTTP_PORT)"
    )


def test_bool_setting_rejects_a_number():
    with pytest.raises(ConfigError, match="'service.enable_tls' must be a boolean, got '2'"):
        load_settings(env={"PYDRANT__SERVICE__ENABLE_TLS": "2"})


def test_integer_setting_rejects_a_boolean():
    with pytest.raises(ConfigError, match="'storage.hnsw_index.m' must be an integer, got 'true'"):
        load_settings(env={"PYDRANT__STORAGE__HNSW_INDEX__M": "true"})


def test_non_optional_setting_rejects_null():
    with pytest.raises(ConfigError, match="'service.http_port' must be an integer, got 'null'"):
        load_settings(env={"PYDRANT__SERVICE__HTTP_PORT": "null"})


def test_value_and_section_under_one_name_is_an_error():
    env = {"PYDRANT__STORAGE__WAL": "1", "PYDRANT__STORAGE__WAL__WAL_CAPACITY_MB": "2"}
    with pytest.raises(ConfigError, match="'storage.wal' is both a value and a section"):
        load_settings(env=env)


# --- ranges and choices ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("SERVICE__HTTP_PORT", "70000", "'service.http_port' must be between 0 and 65535, got 70000"),
        ("SERVICE__HTTP_PORT", "-1", "'service.http_port' must be between 0 and 65535, got -1"),
        ("SERVICE__MAX_REQUEST_SIZE_MB", "0", "'service.max_request_size_mb' must be at least 1, got 0"),
        ("STORAGE__WAL__WAL_CAPACITY_MB", "0", "'storage.wal.wal_capacity_mb' must be at least 1, got 0"),
        ("STORAGE__OPTIMIZERS__DELETED_THRESHOLD", "1.5", "'storage.optimizers.deleted_threshold' must be between 0.0 and 1.0"),
        ("STORAGE__HNSW_INDEX__EF_CONSTRUCT", "2", "'storage.hnsw_index.ef_construct' must be at least 4"),
        ("STORAGE__NODE_TYPE", "Leader", "'storage.node_type' must be one of 'Normal', 'Listener', got 'Leader'"),
        ("LOGGER__FORMAT", "xml", "'logger.format' must be one of 'text', 'json'"),
        ("LOG_LEVEL", "LOUD", "'log_level' has unknown log level 'LOUD'"),
        ("TLS__CERT_TTL", "0", "'tls.cert_ttl' must be at least 1"),
    ],
)
def test_out_of_range_values_are_named(name, text, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(env={f"PYDRANT__{name}": text})


def test_optimizer_cpu_budget_may_be_negative():
    budget = load_settings(env={"PYDRANT__STORAGE__PERFORMANCE__OPTIMIZER_CPU_BUDGET": "-2"})
    assert budget.storage.performance.optimizer_cpu_budget == -2


def test_log_level_filter_with_targets():
    assert load_settings(env={"PYDRANT__LOG_LEVEL": "warn,pydrant.wal=debug"}).log_level == "warn,pydrant.wal=debug"
    assert log_levels("warn,pydrant.wal=debug") == (logging.WARNING, {"pydrant.wal": logging.DEBUG})
    assert log_levels("TRACE") == (logging.DEBUG, {})


# --- settings that depend on each other ------------------------------------------------


def test_tls_needs_its_certificate_files(tmp_path):
    with pytest.raises(ConfigError, match="'tls.cert': file './tls/cert.pem' does not exist"):
        load_settings(env={"PYDRANT__SERVICE__ENABLE_TLS": "true"})
    cert = write_yaml(tmp_path / "cert.pem", "x")
    key = write_yaml(tmp_path / "key.pem", "x")
    env = {"PYDRANT__SERVICE__ENABLE_TLS": "true", "PYDRANT__TLS__CERT": str(cert), "PYDRANT__TLS__KEY": str(key)}
    assert load_settings(env=env).service.enable_tls is True


def test_log_file_is_required_when_logging_to_disk():
    with pytest.raises(ConfigError, match="'logger.on_disk.log_file' must be set"):
        load_settings(env={"PYDRANT__LOGGER__ON_DISK__ENABLED": "true"})


def test_s3_snapshots_need_a_bucket():
    with pytest.raises(ConfigError, match="'storage.snapshots_config.s3_config.bucket' must be set"):
        load_settings(env={"PYDRANT__STORAGE__SNAPSHOTS_CONFIG__SNAPSHOTS_STORAGE": "s3"})


# --- explicit overrides ----------------------------------------------------------------


def test_overrides_win_over_environment_and_file(tmp_path):
    path = write_yaml(tmp_path / "f.yaml", "service:\n  http_port: 7000\n")
    env = {"PYDRANT__SERVICE__HTTP_PORT": "7001"}
    assert load_settings(path, env=env, overrides={"service.http_port": 7002}).service.http_port == 7002


def test_overrides_may_be_nested():
    settings = load_settings(env={}, overrides={"service": {"host": "127.0.0.1"}, "storage.wal.wal_capacity_mb": 8})
    assert settings.service.host == "127.0.0.1"
    assert settings.storage.wal.wal_capacity_mb == 8


def test_bad_override_is_named():
    with pytest.raises(ConfigError, match=r"'service.http_port' must be between 0 and 65535, got 99999 \(command-line"):
        load_settings(env={}, overrides={"service.http_port": 99999})


def test_changed_settings_that_pydrant_ignores_are_listed():
    settings = load_settings(env={"PYDRANT__SERVICE__GRPC_PORT": "7334", "PYDRANT__SERVICE__HTTP_PORT": "7333"})
    assert settings.changed_but_not_acted_on() == ["service.grpc_port"]
    assert Settings().changed_but_not_acted_on() == []


def test_new_collections_default_to_the_settings_defaults():
    """One copy of each default: a collection's are the server settings' (config.yaml's),
    under the API's names; nothing in collection/config.py spells a value of its own."""
    from pydrant.collection.config import CollectionDefaults
    from pydrant.config import DEFAULTS

    assert DEFAULTS == Settings()
    defaults = CollectionDefaults()
    assert defaults == CollectionDefaults.from_settings(Settings())
    assert defaults.hnsw_config == {
        "m": 16, "ef_construct": 100, "full_scan_threshold": 10000, "max_indexing_threads": 0, "on_disk": False,
    }
    assert defaults.optimizer_config == {
        "deleted_threshold": 0.2, "vacuum_min_vector_number": 1000, "default_segment_number": 0,
        "max_segment_size": None, "memmap_threshold": None, "indexing_threshold": 10000,
        "flush_interval_sec": 5, "max_optimization_threads": None,
    }
    assert defaults.wal_config == {"wal_capacity_mb": 32, "wal_segments_ahead": 0, "wal_retain_closed": 1}
    assert defaults.on_disk_payload is True and defaults.quantization_config is None


def test_collection_defaults_follow_the_loaded_settings():
    from pydrant.collection.config import CollectionDefaults

    settings = load_settings(env={}, overrides={
        "storage.hnsw_index.m": 32, "storage.hnsw_index.payload_m": 8,
        "storage.optimizers.indexing_threshold_kb": 500, "storage.wal.wal_capacity_mb": 4,
        "storage.on_disk_payload": False, "storage.collection.quantization": {"binary": {}},
    })
    defaults = CollectionDefaults.from_settings(settings)
    assert defaults.hnsw_config["m"] == 32 and defaults.hnsw_config["payload_m"] == 8
    assert defaults.optimizer_config["indexing_threshold"] == 500
    assert defaults.wal_config["wal_capacity_mb"] == 4
    assert defaults.on_disk_payload is False and defaults.quantization_config == {"binary": {}}
