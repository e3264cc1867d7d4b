"""Config loading: defaults, precedence file < environment < overrides, and errors naming the field."""

from __future__ import annotations

import pathlib

import pytest

from shipyard import envs
from shipyard.config import ShipyardConfig, describe, documented_defaults, load_config
from shipyard.errors import InvalidArgument


def _write(path: pathlib.Path, text: str) -> pathlib.Path:
    path.write_text(text, encoding="utf-8")
    return path


def _fields(exc: InvalidArgument) -> dict[str, str]:
    return {v.field: v.description for v in exc.violations}


def test_defaults_match_the_documented_platform_settings(tmp_path: pathlib.Path) -> None:
    config = load_config(environ={"SHIPYARD_DATA_DIR": str(tmp_path)})

    assert config.storage.root == f"file://{tmp_path}/storage"
    assert config.storage.multipart_chunk_bytes == 8 * 1024 * 1024
    assert config.grpc.host == "127.0.0.1"
    assert (config.grpc.ports.ingest, config.grpc.ports.agents) == (50051, 50056)
    assert config.grpc.max_message_bytes == 64 * 1024 * 1024
    assert config.telemetry.log_format == "json" and config.telemetry.metrics_port == 9090
    assert config.ingest.executor == "local" and config.ingest.workers >= 1


def test_data_dir_default_expands_home() -> None:
    config = load_config(environ={})

    assert "~" not in str(config.storage.data_dir)
    assert config.storage.root == f"file://{config.storage.data_dir}/storage"


def test_precedence_is_file_then_environment_then_overrides(tmp_path: pathlib.Path) -> None:
    path = _write(
        tmp_path / "shipyard.yaml",
        "grpc:\n  host: from-file\n  ports: {ingest: 1001, training: 1002}\ntelemetry: {log_level: debug}\n",
    )
    environ = {"SHIPYARD_CONFIG": str(path), "SHIPYARD_GRPC_HOST": "from-env", "SHIPYARD_INGEST_PORT": "2001"}

    config = load_config(overrides={"grpc.ports.ingest": 3001}, environ=environ)

    assert config.grpc.host == "from-env"  # env beats file
    assert config.grpc.ports.ingest == 3001  # overrides beat env
    assert config.grpc.ports.training == 1002  # file beats defaults
    assert config.grpc.ports.finetune == 50053  # untouched default
    assert config.telemetry.log_level == "DEBUG"  # case-insensitive


def test_explicit_path_wins_over_shipyard_config(tmp_path: pathlib.Path) -> None:
    env_file = _write(tmp_path / "env.yaml", "grpc: {host: env-file}\n")
    explicit = _write(tmp_path / "explicit.yaml", "grpc: {host: explicit-file}\n")

    config = load_config(explicit, environ={"SHIPYARD_CONFIG": str(env_file)})

    assert config.grpc.host == "explicit-file"


def test_nested_and_dotted_overrides_merge() -> None:
    config = load_config(overrides={"grpc": {"ports": {"ingest": 0}}, "grpc.ports.training": 0}, environ={})

    assert (config.grpc.ports.ingest, config.grpc.ports.training) == (0, 0)


def test_empty_environment_value_counts_as_unset() -> None:
    assert load_config(environ={"SHIPYARD_GRPC_HOST": ""}).grpc.host == "127.0.0.1"


def test_auth_token_is_secret() -> None:
    config = load_config(environ={"SHIPYARD_AUTH_TOKEN": "s3cret"})

    assert config.grpc.auth_token is not None
    assert config.grpc.auth_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(config) and "s3cret" not in str(describe(config))


def test_bad_port_names_the_field_and_the_variable_it_came_from() -> None:
    with pytest.raises(InvalidArgument) as caught:
        load_config(environ={"SHIPYARD_INGEST_PORT": "not-a-port"})

    described = _fields(caught.value)
    assert list(described) == ["grpc.ports.ingest"]
    assert "integer" in described["grpc.ports.ingest"]
    assert "$SHIPYARD_INGEST_PORT" in described["grpc.ports.ingest"]


def test_every_bad_field_is_reported_at_once(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path / "bad.yaml", "telemetry: {log_format: xml}\ngrpc: {ports: {training: 70000}}\n")

    with pytest.raises(InvalidArgument) as caught:
        load_config(path, overrides={"grpc.prot": 1, "storage.root": "gs://bucket/x"}, environ={})

    described = _fields(caught.value)
    assert set(described) == {"telemetry.log_format", "grpc.ports.training", "grpc.prot", "storage.root"}
    assert "'json' or 'text'" in described["telemetry.log_format"]
    assert "65535" in described["grpc.ports.training"]
    assert "unsupported scheme 'gs'" in described["storage.root"]
    assert f"config file {path}" in described["grpc.ports.training"]
    assert "overrides" in described["grpc.prot"]


def test_multipart_chunk_below_s3_minimum_is_rejected() -> None:
    with pytest.raises(InvalidArgument) as caught:
        load_config(overrides={"storage.multipart_chunk_bytes": 1024}, environ={})

    assert "storage.multipart_chunk_bytes" in _fields(caught.value)


def test_tls_needs_both_certificate_and_key() -> None:
    with pytest.raises(InvalidArgument, match="tls_cert_file and tls_key_file must be set together"):
        load_config(environ={"SHIPYARD_TLS_CERT": "/etc/tls/cert.pem"})


@pytest.mark.parametrize(
    ("text", "reason"),
    [("grpc: [1, 2\n", "not valid YAML"), ("- a\n- b\n", "must hold a mapping")],
)
def test_malformed_file_is_invalid_argument_on_shipyard_config(
    tmp_path: pathlib.Path, text: str, reason: str
) -> None:
    path = _write(tmp_path / "c.yaml", text)

    with pytest.raises(InvalidArgument) as caught:
        load_config(environ={"SHIPYARD_CONFIG": str(path)})

    assert reason in _fields(caught.value)["SHIPYARD_CONFIG"]


def test_missing_file_is_reported_on_the_path_argument(tmp_path: pathlib.Path) -> None:
    with pytest.raises(InvalidArgument) as caught:
        load_config(tmp_path / "nope.yaml", environ={})

    assert "cannot read config file" in _fields(caught.value)["path"]


def test_empty_file_means_defaults(tmp_path: pathlib.Path) -> None:
    assert load_config(_write(tmp_path / "empty.yaml", ""), environ={}).grpc.ports.ingest == 50051


def test_relative_storage_root_is_made_absolute(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    config = load_config(environ={"SHIPYARD_STORAGE_ROOT": "artifacts"})

    assert config.storage.root == f"file://{tmp_path}/artifacts"


def test_config_is_immutable() -> None:
    config = ShipyardConfig()

    with pytest.raises(ValueError):
        config.grpc.host = "0.0.0.0"  # type: ignore[misc]
    assert (
        config.model_copy(update={"ingest": config.ingest.model_copy(update={"workers": 3})}).ingest.workers
        == 3
    )


def test_every_variable_maps_to_a_real_field_and_is_documented() -> None:
    rows = {row.name: row for row in describe()}

    for var in envs.VARIABLES:
        assert var.doc and var.name.startswith("SHIPYARD_")
        if var.field is not None:
            assert var.field in rows, var.name
            assert rows[var.field].env == var.name


def test_every_field_has_a_type_default_and_doc() -> None:
    rows = describe()

    assert {"grpc.ports.ingest", "storage.root", "ingest.workers", "telemetry.metrics_port"} <= {
        r.name for r in rows
    }
    assert all(r.type and r.default and r.doc for r in rows)
    table = documented_defaults()
    assert "| `grpc.ports.ingest` | `int` | `50051` | SHIPYARD_INGEST_PORT |" in table
    assert "`file://<data_dir>/storage`" in table


def test_describe_shows_current_values() -> None:
    config = load_config(overrides={"grpc.host": "0.0.0.0"}, environ={})

    values = {row.name: row.value for row in describe(config)}

    assert values["grpc.host"] == "0.0.0.0"
    assert values["grpc.auth_token"] == ""
