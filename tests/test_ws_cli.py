"""`orbitdockctl ws pair`: loopback URL without token; off loopback the token and a QR code."""

from __future__ import annotations

import json

from orbitdock.cli import main


def test_pair_on_loopback_has_no_token(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ORBITDOCK_HOME", str(tmp_path))
    assert main(["ws", "pair"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "http://127.0.0.1:4000/"
    assert not (tmp_path / "ws-token").exists()


def test_pair_off_loopback_prints_the_token_and_a_qr_code(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ORBITDOCK_HOME", str(tmp_path))
    monkeypatch.setenv("ORBITDOCK_WS__ADDRESS", "0.0.0.0")
    monkeypatch.setenv("ORBITDOCK_WS__PORT", "4555")
    assert main(["ws", "pair", "--host", "studio.local"]) == 0
    out = capsys.readouterr().out.splitlines()
    token = (tmp_path / "ws-token").read_text().strip()
    assert (tmp_path / "ws-token").stat().st_mode & 0o777 == 0o600
    assert out[0] == f"http://studio.local:4555/?token={token}"
    assert sum("█" in line for line in out) > 10  # the QR code
    assert main(["--json", "ws", "pair", "--host", "studio.local"]) == 0
    assert json.loads(capsys.readouterr().out)["url"] == out[0]  # the same token again
