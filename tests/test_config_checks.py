"""Config values are checked before the daemon starts: one line naming the key, exit 2.

And `orbitdockd --print-config` shows every effective value with where it came from.
"""

from __future__ import annotations

import socket

import pytest

from orbitdock.config import ConfigError, load_with_origins, validate
from orbitdock.protocol import messages as m

EXIT_TIMEOUT_S = 15.0


@pytest.mark.parametrize("env,key,allowed", [
    ({"ORBITDOCK_PERSISTENCE__SYNCHRONOUS": "SOMETIMES"}, "persistence.synchronous",
     "OFF, NORMAL, FULL, EXTRA"),
    ({"ORBITDOCK_LOGGING__LEVEL": "LOUD"}, "logging.level", "DEBUG, INFO"),
    ({"ORBITDOCK_GATEWAY__HEARTBEAT_INTERVAL_S": "-1"}, "gateway.heartbeat_interval_s",
     "0 or more"),
    ({"ORBITDOCK_WATCHER__READ_CHUNK_BYTES": "0"}, "watcher.read_chunk_bytes", "above 0"),
    ({"ORBITDOCK_PERSISTENCE__BATCH_SIZE": "many"}, "persistence.batch_size", "expected int"),
])
def test_a_bad_value_is_one_line_naming_the_key_and_exit_2(daemon_factory, env, key,
                                                           allowed):
    d = daemon_factory(wait=False, **env)
    code, _, err = d.wait_exit(EXIT_TIMEOUT_S)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert key in err and allowed in err and "ORBITDOCK_" in err  # where it came from
    assert not d.home.joinpath("orbitdock.db").exists()  # nothing was started


def test_a_bad_value_in_the_file_names_the_file(tmp_path):
    conf = tmp_path / "o.toml"
    conf.write_text('[persistence]\nsynchronous = "fast"\n[codex]\nsession_nice = 40\n')
    cfg, origins = load_with_origins(conf, env={})
    with pytest.raises(ConfigError, match=rf"synchronous = 'fast' \(from file {conf}\)"):
        validate(cfg, origins)
    cfg.persistence.synchronous = "full"  # case does not matter
    with pytest.raises(ConfigError, match="session_nice = 40 .*from -20 to 19"):
        validate(cfg, origins)


def test_the_defaults_pass():
    cfg, origins = load_with_origins(None, env={"ORBITDOCK_HOME": "/nonexistent"})
    validate(cfg, origins)


def test_print_config_shows_each_value_and_its_source(daemon_factory, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    conf = home / "orbitdock.toml"
    conf.write_text("[gateway]\ndrain_batch = 7\n")
    d = daemon_factory("--print-config", "--log-level", "DEBUG", home=home, wait=False,
                       ORBITDOCK_SESSIONS__RESTORE_LIMIT="9")
    code, out, err = d.wait_exit(EXIT_TIMEOUT_S)
    assert code == 0, err
    lines = out.splitlines()
    assert f"drain_batch = 7  # file {conf}" in lines
    assert "restore_limit = 9  # env ORBITDOCK_SESSIONS__RESTORE_LIMIT" in lines
    assert 'level = "DEBUG"  # command line' in lines
    assert f'data_dir = "{home}"  # env ORBITDOCK_HOME' in lines
    assert "subscriber_hwm = 200000  # default" in lines
    assert not (home / "orbitdock.db").exists()  # printing starts nothing


@pytest.mark.parametrize("flag,endpoint", [
    ("--request-endpoint", "tcp://0.0.0.0:4710"),
    ("--event-endpoint", "tcp://*:4711"),
    ("--request-endpoint", "tcp://192.168.1.10:4710"),
    ("--event-endpoint", "tcp://eth0:4711"),
    ("--request-endpoint", "ws://127.0.0.1:4710"),
])
def test_an_endpoint_reachable_from_the_network_is_refused(daemon_factory, flag, endpoint):
    d = daemon_factory(flag, endpoint, wait=False)
    code, _, err = d.wait_exit(EXIT_TIMEOUT_S)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert endpoint in err and "loopback" in err and "CURVE" in err
    assert not d.home.joinpath("orbitdock.db").exists()


@pytest.mark.parametrize("endpoint", [
    "", "ipc:///run/x/request.sock", "tcp://127.0.0.1:4710", "tcp://127.3.2.1:*",
    "tcp://[::1]:4710", "tcp://localhost:4710", "tcp://LOCALHOST:4710"])
def test_local_endpoints_are_allowed(endpoint):
    cfg, origins = load_with_origins(None, env={"ORBITDOCK_HOME": "/nonexistent"},
                                     overrides={"gateway.request_endpoint": endpoint})
    validate(cfg, origins)


def test_a_daemon_on_loopback_tcp_serves(daemon_factory):
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    d = daemon_factory("--request-endpoint", f"tcp://127.0.0.1:{ports[0]}",
                       "--event-endpoint", f"tcp://127.0.0.1:{ports[1]}")
    with d.client() as client:
        assert client.request(m.GetStatus()).pid == d.proc.pid


def test_print_config_shows_the_demo_home(daemon_factory, tmp_path):
    home = tmp_path / "home"
    d = daemon_factory("--demo", "--print-config", home=home, wait=False)
    code, out, err = d.wait_exit(EXIT_TIMEOUT_S)
    assert code == 0, err
    assert f'data_dir = "{home / "demo"}"  # env ORBITDOCK_HOME, + /demo (--demo)' in out
