"""upynode config over USB (--port), on a virtual board behind a pty
(upynode_vboard.vserial: the MicroPython VM): the same commands as over
WebREPL, through mpremote's serial transport and the same safe write."""
import json

import pytest

from helpers import cli, one_line_error
from upynode_vboard.vserial import VirtualSerial

pytestmark = pytest.mark.vm

CONFIG = {"wifi": {"ssid": "home", "password": "hunter22"},
          "mqtt": {"host": "192.168.1.10", "password": "mqttpw"},
          "webrepl": {"password": "s3cret"},
          "interval_s": 60}


@pytest.fixture
def vboard(tmp_path):
    board = tmp_path / "device"
    board.mkdir()
    (board / "config.json").write_text(json.dumps(CONFIG))
    with VirtualSerial(board, state_dir=tmp_path / "state") as v:
        yield v


def board_config(v):
    return json.loads((v.board / "config.json").read_text())


def test_get_over_serial(vboard):
    r = cli("config", "get", "--port", vboard.device)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)  # stdout holds the config and nothing else
    assert got["wifi"] == {"ssid": "home", "password": "***"} and got["interval_s"] == 60
    assert "hunter22" not in r.stdout + r.stderr
    r = cli("config", "get", "--show-secrets", "--port", vboard.device)
    assert r.returncode == 0 and json.loads(r.stdout) == CONFIG


def test_set_over_serial(vboard):
    r = cli("config", "set", "interval_s=30", "wifi.ssid=1234", "--port", vboard.device)
    assert r.returncode == 0, r.stderr
    assert "config.json written on %s" % vboard.device in r.stderr
    cfg = board_config(vboard)
    assert cfg["interval_s"] == 30 and cfg["wifi"] == {"ssid": "1234", "password": "hunter22"}
    assert not (vboard.board / "config.json.tmp").exists()
    # validated before anything is sent, over USB as over WiFi
    one_line_error(cli("config", "set", "interval_s=0", "--port", vboard.device), "interval_s = 0")
    assert board_config(vboard)["interval_s"] == 30


def test_set_with_reset_over_serial(vboard):
    r = cli("config", "set", "interval_s=120", "--reset", "--port", vboard.device)
    assert r.returncode == 0 and "node reset" in r.stderr, r.stderr
    assert board_config(vboard)["interval_s"] == 120
    # the board rebooted (vserial counts it) and answers again
    r = cli("config", "get", "--port", vboard.device)
    assert r.returncode == 0 and json.loads(r.stdout)["interval_s"] == 120
    assert vboard.resets == 1


def test_get_without_config_over_serial(vboard):
    (vboard.board / "config.json").unlink()
    one_line_error(cli("config", "get", "--port", vboard.device), "cannot read config.json", vboard.device)
