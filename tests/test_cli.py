"""The `pydrant` command: parsing, settings errors, delegation to tools, logging.

The real server is never started here: `pydrant.http.server` is replaced by a fake module
that records the settings `serve` receives.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml

from pydrant import QDRANT_API_VERSION, __version__
from pydrant import cli
from pydrant.config import Settings, load_settings


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No config/config.yaml, no PYDRANT__/QDRANT__ variables, and the root logger restored."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.upper().startswith(("PYDRANT__", "QDRANT__")):
            monkeypatch.delenv(name)
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


@pytest.fixture
def fake_server(monkeypatch):
    """Replace pydrant.http.server with a module whose serve() only records its settings."""
    served: list[Settings] = []
    module = types.ModuleType("pydrant.http.server")
    module.serve = served.append
    monkeypatch.setitem(sys.modules, "pydrant.http.server", module)
    return served


def fake_tool(monkeypatch, module_name: str, status: int | None = 0) -> list[list[str]]:
    """Install a fake tool module whose main(argv) records argv and returns `status`."""
    calls: list[list[str]] = []
    module = types.ModuleType(module_name)

    def main(argv):
        calls.append(list(argv))
        return status

    module.main = main
    monkeypatch.setitem(sys.modules, module_name, module)
    return calls


# --- version and usage ---------------------------------------------------------------------


def test_version_prints_both_versions(capsys):
    assert cli.main(["version"]) == 0
    out = capsys.readouterr().out
    assert out == f"pydrant {__version__} (Qdrant REST API {QDRANT_API_VERSION})\n"


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert QDRANT_API_VERSION in capsys.readouterr().out


def test_no_command_prints_usage_and_fails(capsys):
    assert cli.main([]) == 2
    assert "serve" in capsys.readouterr().err


def test_wal_without_subcommand_prints_its_usage(capsys):
    assert cli.main(["wal"]) == 2
    err = capsys.readouterr().err
    assert "inspect" in err and "replay" in err


def test_unknown_command_is_a_usage_error():
    with pytest.raises(SystemExit) as info:
        cli.main(["frobnicate"])
    assert info.value.code == 2


def test_serve_options_are_parsed():
    options = cli.build_parser().parse_args(["serve", "--config", "c.yaml", "--host", "::1", "--port", "7000"])
    assert (options.config, options.host, options.port) == ("c.yaml", "::1", 7000)
    assert options.handler is cli.run_serve


def test_serve_options_default_to_none():
    options = cli.build_parser().parse_args(["serve"])
    assert (options.config, options.host, options.port) == (None, None, None)


def test_port_must_be_a_number(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["serve", "--port", "abc"])
    assert info.value.code == 2
    assert "--port" in capsys.readouterr().err


def test_module_runs_as_a_script():
    done = subprocess.run(
        [sys.executable, "-m", "pydrant.cli", "version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert done.stdout.strip() == cli.version_text()


# --- serve ---------------------------------------------------------------------------------


def test_serve_passes_settings_to_the_server(fake_server):
    assert cli.main(["serve"]) == 0
    assert fake_server == [Settings()]


def test_serve_reads_the_config_file(tmp_path, fake_server):
    path = tmp_path / "my.yaml"
    path.write_text("service:\n  http_port: 7000\nstorage:\n  storage_path: /data\n")
    assert cli.main(["serve", "--config", str(path)]) == 0
    assert fake_server[0].service.http_port == 7000
    assert fake_server[0].storage.storage_path == "/data"


def test_flags_override_environment(monkeypatch, fake_server):
    monkeypatch.setenv("PYDRANT__SERVICE__HTTP_PORT", "7000")
    monkeypatch.setenv("PYDRANT__SERVICE__HOST", "10.0.0.1")
    assert cli.main(["serve", "--host", "127.0.0.1", "--port", "7001"]) == 0
    assert (fake_server[0].service.host, fake_server[0].service.http_port) == ("127.0.0.1", 7001)


def test_serve_with_unknown_setting_in_file_exits_2_naming_it(tmp_path, capsys, fake_server):
    path = tmp_path / "typo.yaml"
    path.write_text("service:\n  http_prot: 7000\n")
    assert cli.main(["serve", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err
    assert "'service.http_prot'" in err
    assert fake_server == []


def test_serve_with_ill_typed_environment_exits_2_naming_it(monkeypatch, capsys, fake_server):
    monkeypatch.setenv("QDRANT__STORAGE__WAL__WAL_CAPACITY_MB", "lots")
    assert cli.main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "'storage.wal.wal_capacity_mb' must be an integer" in err
    assert "QDRANT__STORAGE__WAL__WAL_CAPACITY_MB" in err
    assert fake_server == []


def test_serve_with_missing_config_file_exits_2(tmp_path, capsys, fake_server):
    assert cli.main(["serve", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_serve_with_port_out_of_range_exits_2(capsys, fake_server):
    assert cli.main(["serve", "--port", "70000"]) == 2
    assert "'service.http_port' must be between 0 and 65535" in capsys.readouterr().err


def test_serve_with_unwritable_log_file_exits_2(tmp_path, monkeypatch, capsys, fake_server):
    monkeypatch.setenv("PYDRANT__LOGGER__ON_DISK__ENABLED", "true")
    monkeypatch.setenv("PYDRANT__LOGGER__ON_DISK__LOG_FILE", str(tmp_path / "no" / "such" / "dir.log"))
    assert cli.main(["serve"]) == 2
    assert "'logger.on_disk.log_file'" in capsys.readouterr().err


def test_serve_warns_about_settings_it_does_not_act_on(monkeypatch, caplog, fake_server):
    monkeypatch.setenv("PYDRANT__SERVICE__GRPC_PORT", "7334")
    with caplog.at_level(logging.WARNING, logger="pydrant.cli"):
        assert cli.main(["serve"]) == 0
    assert "service.grpc_port" in caplog.text


def test_config_command_prints_effective_settings(monkeypatch, capsys):
    monkeypatch.setenv("PYDRANT__STORAGE__HNSW_INDEX__M", "32")
    assert cli.main(["config", "--port", "7000"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["storage"]["hnsw_index"]["m"] == 32
    assert printed["service"]["http_port"] == 7000
    assert printed == load_settings(env={"PYDRANT__STORAGE__HNSW_INDEX__M": "32"}, overrides={"service.http_port": 7000}).to_dict()


def test_config_command_reports_errors(monkeypatch, capsys):
    monkeypatch.setenv("PYDRANT__SERVICE__NOPE", "1")
    assert cli.main(["config"]) == 2
    assert "unknown setting 'service.nope'" in capsys.readouterr().err


# --- delegated tools -----------------------------------------------------------------------


def test_wal_inspect_hands_its_arguments_to_the_tool(monkeypatch):
    calls = fake_tool(monkeypatch, "pydrant.wal.inspect", status=3)
    assert cli.main(["wal", "inspect", "/data/wal", "--json"]) == 3
    assert calls == [["/data/wal", "--json"]]


def test_wal_inspect_passes_options_before_the_path_untouched(monkeypatch):
    calls = fake_tool(monkeypatch, "pydrant.wal.inspect")
    assert cli.main(["wal", "inspect", "--json", "/data/wal"]) == 0
    assert calls == [["--json", "/data/wal"]]


def test_wal_replay_hands_its_arguments_to_the_tool(monkeypatch):
    calls = fake_tool(monkeypatch, "pydrant.collection.replay", status=None)
    argv = ["wal", "replay", "/c/wal", "--into", "/new", "--collection-config", "/c/config.json"]
    assert cli.main(argv) == 0
    assert calls == [["/c/wal", "--into", "/new", "--collection-config", "/c/config.json"]]


def test_missing_tool_is_reported(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pydrant.wal.inspect", None)  # makes the import fail
    assert cli.main(["wal", "inspect", "x"]) == 1
    assert "pydrant.wal.inspect" in capsys.readouterr().err


# --- logging -------------------------------------------------------------------------------


def ours(root: logging.Logger) -> list[logging.Handler]:
    return [h for h in root.handlers if getattr(h, "_pydrant", False)]


def test_logging_level_and_targets():
    cli.configure_logging(load_settings(env={"PYDRANT__LOG_LEVEL": "warn,pydrant.wal=debug"}))
    assert logging.getLogger().level == logging.WARNING
    assert logging.getLogger("pydrant.wal").level == logging.DEBUG
    logging.getLogger("pydrant.wal").setLevel(logging.NOTSET)


def test_configure_logging_twice_keeps_one_handler():
    settings = load_settings(env={})
    cli.configure_logging(settings)
    cli.configure_logging(settings)
    assert len(ours(logging.getLogger())) == 1


def test_log_file_in_json(tmp_path: Path):
    log_file = tmp_path / "pydrant.log"
    env = {
        "PYDRANT__LOGGER__ON_DISK__ENABLED": "true",
        "PYDRANT__LOGGER__ON_DISK__LOG_FILE": str(log_file),
        "PYDRANT__LOGGER__ON_DISK__FORMAT": "json",
        "PYDRANT__LOGGER__ON_DISK__LOG_LEVEL": "debug",
    }
    cli.configure_logging(load_settings(env=env))
    logging.getLogger("pydrant.test").debug("hello %s", "file")
    for handler in ours(logging.getLogger()):
        handler.flush()
    entry = json.loads(log_file.read_text().splitlines()[-1])
    assert entry["level"] == "DEBUG"
    assert entry["target"] == "pydrant.test"
    assert entry["fields"]["message"] == "hello file"
    # The console stays at INFO although the file takes DEBUG.
    console = [h for h in ours(logging.getLogger()) if not isinstance(h, logging.FileHandler)]
    assert console[0].level == logging.INFO
