"""Config: conf/orbitdock.toml documents every key with the real default; bad keys are caught."""

from __future__ import annotations

import dataclasses
import re
import tomllib

import pytest

from conftest import REPO
from orbitdock.config import Config, ConfigError, load


def documented_defaults() -> dict[str, dict]:
    text = (REPO / "conf" / "orbitdock.toml").read_text()
    # Every key is present as a commented `# key = value` line under its [section].
    uncommented = re.sub(r"^# (\w+ = )", r"\1", text, flags=re.M)
    return tomllib.loads(uncommented)


def test_conf_file_lists_every_key_with_its_default():
    documented = documented_defaults()
    actual = Config().as_dict()
    assert documented == actual


def test_every_key_has_a_comment():
    lines = (REPO / "conf" / "orbitdock.toml").read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^# \w+ = ", line):
            assert lines[i - 1].startswith("# ") and not re.match(r"^# \w+ = ", lines[i - 1]), line


def test_precedence_file_env_flags(tmp_path):
    conf = tmp_path / "o.toml"
    conf.write_text("[gateway]\nsubscriber_hwm = 10\nheartbeat_interval_s = 2\n")
    cfg = load(conf, env={"ORBITDOCK_GATEWAY__SUBSCRIBER_HWM": "20"},
               overrides={"gateway.heartbeat_interval_s": 3.5})
    assert cfg.gateway.subscriber_hwm == 20
    assert cfg.gateway.heartbeat_interval_s == 3.5


def test_home_from_env_and_user_file(tmp_path):
    (tmp_path / "orbitdock.toml").write_text("[persistence]\nbatch_size = 7\n")
    cfg = load(env={"ORBITDOCK_HOME": str(tmp_path)})
    assert cfg.paths.data_dir == str(tmp_path)
    assert cfg.persistence.batch_size == 7


@pytest.mark.parametrize("text,hint", [
    ("[gateway]\nsubscribr_hwm = 1\n", "subscriber_hwm"),
    ("[gatway]\nsubscriber_hwm = 1\n", "gateway"),
])
def test_unknown_keys_get_did_you_mean(tmp_path, text, hint):
    conf = tmp_path / "o.toml"
    conf.write_text(text)
    with pytest.raises(ConfigError, match=hint):
        load(conf, env={})


def test_wrong_types_rejected(tmp_path):
    conf = tmp_path / "o.toml"
    conf.write_text('[persistence]\nbatch_size = "many"\n')
    with pytest.raises(ConfigError, match="expected int"):
        load(conf, env={})
    with pytest.raises(ConfigError, match="boolean"):
        load(None, env={"ORBITDOCK_HOME": str(tmp_path), "ORBITDOCK_WATCHER__ENABLED": "maybe"})


def test_sections_are_dataclasses():
    for f in dataclasses.fields(Config()):
        assert dataclasses.is_dataclass(getattr(Config(), f.name))
