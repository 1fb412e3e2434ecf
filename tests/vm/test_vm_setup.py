"""Setup mode on the virtual board, where the chip matters: MicroPython
reads the file, its UnicodeError says nowhere what is wrong, its heap is the
chip's. A bad config.json must end in setup mode with the reason, the access
point up, and no reset loop; a fix written over WebREPL brings the node back.
"""
import json
import os
import time

import pytest

from helpers import CHIP_HEX, HOME_AP, node_config
from upynode_cli.build import fetch_and_build
from upynode_vboard.services import free_port

AP_LINE = r'access point "upynode-%s"' % CHIP_HEX
POLL_S = 5  # setupmode.POLL_S: how often setup mode rereads config.json


@pytest.fixture(scope="module")
def board_build(tmp_path_factory):
    """The board built from lib/ as it is now (2 s): build/board may be older."""
    out = tmp_path_factory.mktemp("setupboard")
    fetch_and_build(out)
    return str(out)


def write_bytes(vb, name, data):
    with open(os.path.join(vb.board, name), "wb") as f:
        f.write(data)


def outlives_polls(vb, polls=2):
    """Setup mode is still waiting after `polls` rereads of config.json: no
    crash, no reset (a crash there resets the node 30 s later, every time)."""
    time.sleep(POLL_S * polls + 1)
    out = vb.output()
    assert vb.running() and vb.boots == 1, out
    assert "Traceback" not in out and "main: restarting" not in out, out


def test_a_latin1_config_ends_in_setup_mode_that_waits_and_takes_the_fix(make_vboard):
    cfg = node_config(free_port(), wifi={"password": "caf\u00e9-pw"})
    bad = json.dumps(cfg, ensure_ascii=False).encode("latin-1")
    vb = make_vboard(aps=HOME_AP)
    write_bytes(vb, "config.json", bad)
    with vb:
        vb.wait_for(r"^setup mode: config: config\.json is not UTF-8 text \(byte 0xe9 at offset %d\): save it as UTF-8$"
                    % bad.index(b"\xe9"))
        vb.wait_for(AP_LINE)
        outlives_polls(vb)
        vb.write_config(node_config(free_port()))  # what `upynode config put` leaves
        vb.wait_for(r"^setup: config\.json is valid now: restarting$", timeout=POLL_S * 3)
        vb.wait_for(r'wifi: connected to "home"', timeout=30)
    assert vb.boots == 2


@pytest.mark.parametrize("kb", [6, 64])
def test_an_oversized_config_is_refused_by_size_and_the_access_point_stays_up(make_vboard, kb):
    # One wrong value padded with spaces: at 6 KB setup mode ran out of
    # memory rereading it, at 64 KB the access point failed too.
    text = json.dumps(node_config(free_port(), interval_s="often")) + " " * (kb * 1024)
    vb = make_vboard(aps=HOME_AP)
    vb.write_file("config.json", text)
    with vb:
        vb.wait_for(r"^setup mode: config: config\.json is %d bytes, over the 4096 a node reads" % len(text))
        vb.wait_for(AP_LINE)
        outlives_polls(vb)
    assert vb.state("ap")["active"]
    assert "MemoryError" not in vb.output() and "access point failed" not in vb.output()


def test_boot_removes_interrupted_writes_and_saves_the_webrepl_password_whole(make_vboard):
    vb = make_vboard(node_config(free_port()), aps=HOME_AP)
    vb.write_file("config.json.tmp", '{"wifi": {"ss')  # `config put` cut mid-upload
    vb.write_file("webrepl_cfg.py", "PASS = 'old1'\n")
    vb.write_file("webrepl_cfg.py.tmp", "PASS = 'ne")  # a cut mid-save
    with vb:
        vb.wait_for(r"^boot: removed config\.json\.tmp \(an interrupted write\)$")
        vb.wait_for(r"^boot: removed webrepl_cfg\.py\.tmp")
        vb.wait_for(r'wifi: connected to "home"')
        vb.wait_for(r"WebREPL server started")
        assert vb.state("webrepl")["password"] == "s3cret"
    assert not [n for n in os.listdir(vb.board) if n.endswith(".tmp")]
    with open(os.path.join(vb.board, "webrepl_cfg.py")) as f:
        assert f.read() == "PASS = 's3cret'\n"
