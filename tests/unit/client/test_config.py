from __future__ import annotations

import ssl

from nullspace.client._config import (
    DEFAULT_REQUEST_TIMEOUT,
    LOCAL_BASE_URL,
    ConnectionConfig,
    stream_read_timeout,
)


def test_api_url_argument_wins_over_env_and_key_comes_from_env() -> None:
    env = {"NULLSPACE_API_URL": "http://env:1", "NULLSPACE_API_KEY": "env-key"}
    cfg = ConnectionConfig.resolve(api_url="https://ns.example.com/", env=env)
    assert cfg.base_url == "https://ns.example.com"
    assert not cfg.is_local and cfg.socket_path is None
    assert cfg.headers["X-API-Key"] == "env-key"
    assert cfg.headers["User-Agent"].startswith("nullspace-python/")


def test_api_url_from_env_and_explicit_key() -> None:
    cfg = ConnectionConfig.resolve(api_key="arg", env={"NULLSPACE_API_URL": "http://env:1"})
    assert cfg.base_url == "http://env:1" and cfg.api_key == "arg"


def test_no_key_means_no_header() -> None:
    cfg = ConnectionConfig.resolve(api_url="http://x", env={})
    assert "X-API-Key" not in cfg.headers


def test_local_default_socket_under_the_data_dir() -> None:
    cfg = ConnectionConfig.resolve(env={})
    assert cfg.is_local and cfg.base_url == LOCAL_BASE_URL
    assert cfg.socket_path == "/var/lib/nullspace/nullspace.sock"
    assert cfg.data_dir == "/var/lib/nullspace"
    cfg = ConnectionConfig.resolve(env={"NULLSPACE_HOME": "/srv/ns"})
    assert cfg.socket_path == "/srv/ns/nullspace.sock" and cfg.data_dir == "/srv/ns"
    cfg = ConnectionConfig.resolve(env={"NULLSPACE_HOME": "/srv/ns", "NULLSPACE_SOCKET": "/run/x"})
    assert cfg.socket_path == "/run/x" and cfg.data_dir == "/srv/ns"


def test_empty_env_values_count_as_unset() -> None:
    cfg = ConnectionConfig.resolve(env={"NULLSPACE_API_URL": "", "NULLSPACE_SOCKET": ""})
    assert cfg.is_local and cfg.socket_path == "/var/lib/nullspace/nullspace.sock"


def test_request_timeout_default_and_override() -> None:
    assert ConnectionConfig.resolve(env={}).request_timeout == DEFAULT_REQUEST_TIMEOUT
    assert ConnectionConfig.resolve(request_timeout=5, env={}).request_timeout == 5.0


def test_stream_read_timeout_outlasts_the_run_timeout() -> None:
    assert stream_read_timeout(None, 60) == 60
    assert stream_read_timeout(10, 60) == 60
    assert stream_read_timeout(300, 60) == 330
    assert stream_read_timeout(300, 600) == 600


def test_tls_verify_is_a_shared_no_ca_context_only_where_tls_cannot_happen() -> None:
    local = ConnectionConfig.resolve(env={}).tls_verify
    plain = ConnectionConfig.resolve(api_url="http://ns:1", env={}).tls_verify
    assert isinstance(local, ssl.SSLContext) and plain is local  # built once, not per client
    assert local.verify_mode == ssl.CERT_REQUIRED and not local.get_ca_certs()  # TLS would fail
    assert ConnectionConfig.resolve(api_url="https://ns.example.com", env={}).tls_verify is True
