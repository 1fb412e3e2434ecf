"""The daily loop, end to end, as a user lives it: an empty virtual board on a
serial port (upynode_vboard.vserial: the real MicroPython VM behind a pty), the
real `upynode` command as a subprocess, the real MQTT broker on 127.0.0.1,
and WebREPL served by that VM as the firmware starts it (fakehw/webrepl.py,
on a free port the world names).

    deploy --port --config --reset   ->  the node boots and publishes
    config set ... --reset --host    ->  over its WebREPL; the reset reboots
                                         the VM, which publishes where it was told
    deploy --host                    ->  over WebREPL: nothing to send
"""
import json
import re
import time

import pytest

from helpers import HOME_AP, NODE_ID as NODE, cli as run_cli, deploy_summary, node_config
from upynode_cli import firmware_config
from upynode_vboard import brokers, runner
from upynode_vboard.services import free_port
from upynode_vboard.vserial import VirtualSerial

pytestmark = pytest.mark.vm
PASSWORD = "s3cret"          # the node's webrepl.password, typed by the user
TEMPERATURE = 19.25          # what the fake MCP9808 measures (a multiple of 1/16 degC)


def cli(*args, timeout=90):
    r = run_cli(*args, password=PASSWORD, timeout=timeout)
    assert r.returncode == 0, "upynode %s: exit %d\n%s%s" % (args[0], r.returncode, r.stdout, r.stderr)
    return r


summary = deploy_summary


def first_reading(watch, topic, timeout=30):
    """The node's first reading after a boot (seq 1) on topic."""
    def found(messages):
        return [json.loads(p) for t, p, retained in messages
                if t == topic and not retained and json.loads(p).get("seq") == 1]
    return found(watch.wait(lambda m: found(m), timeout))[0]


def wait_until(cond, timeout, what):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out waiting for " + what
        time.sleep(0.05)


def build_count(r):
    """How many files deploy's own build produced (config.json not among them)."""
    m = re.search(r"build: (\d+) files", r.stderr)
    assert m, r.stderr
    return int(m.group(1))


@pytest.fixture
def broker():
    # A broker of its own: the node's retained discovery and status (under
    # "garden" by the end) must not reach other tests on the session broker.
    with brokers.Broker() as b:
        yield b


@pytest.fixture
def empty_board(tmp_path):
    """An empty board (no boot.py, no main.py: a freshly flashed chip) on a
    pty, in a world with the home access point, where the node's WebREPL
    (once its firmware starts it) listens on 127.0.0.1:v.webrepl_port, with
    the heap that costs the VM (runner.WEBREPL_HEAPSIZE)."""
    device = tmp_path / "device"
    device.mkdir()
    state = tmp_path / "state"  # $UPYNODE_VBOARD of the VM: the fakes read world.json here
    state.mkdir()
    port = free_port()
    (state / "world.json").write_text(json.dumps({"aps": HOME_AP, "temperature": TEMPERATURE,
                                                  "webrepl_port": port}))
    with VirtualSerial(device, heapsize=runner.WEBREPL_HEAPSIZE, state_dir=state) as v:
        v.webrepl_port = port
        yield v


def test_deploy_configure_over_webrepl_redeploy(empty_board, broker, watch, tmp_path):
    v = empty_board
    config = tmp_path / "config.json"
    config.write_text(json.dumps(node_config(broker.port, webrepl={"password": PASSWORD}), indent=1))

    # 1. First deploy onto the empty board: everything goes, config.json too.
    # the virtual board's firmware has no ROMFS partition: .mpy files, asked
    # for (without --files deploy refuses a config that would not fit a chip)
    r = cli("deploy", "--port", v.device, "--config", config, "--reset", "--files")
    n_build = build_count(r)
    assert summary(r) == (n_build + 3, 0, 0)  # + config.json, config.ok and discovery.bin
    assert "board reset" in r.stderr
    assert (v.board / "config.json").read_bytes() == config.read_bytes()

    # 2. The node boots on its own and its readings reach the broker.
    got = first_reading(watch, "home/%s/state" % NODE)
    assert got["temperature"] == TEMPERATURE

    # 3. Change a setting over the running node's WebREPL (its firmware
    # started it); --reset reboots the VM and the change takes effect.
    host = "127.0.0.1:%d" % v.webrepl_port
    resets, before = v.resets, (v.board / "config.json").stat().st_ino
    r = cli("config", "set", "mqtt.base_topic=garden", "--reset", "--host", host)
    assert "config.json written" in r.stderr and "node reset" in r.stderr
    wait_until(lambda: v.resets == resets + 1, 15, "the virtual board to reboot")
    text = (v.board / "config.json").read_text()
    cfg = firmware_config().parse(text)  # valid for the firmware itself
    assert cfg["mqtt"]["base_topic"] == "garden"
    assert json.loads(text)["wifi"] == node_config(broker.port)["wifi"]  # the rest untouched
    assert (v.board / "config.json").stat().st_ino != before  # written beside, renamed over
    assert not (v.board / "config.json.tmp").exists()
    got = first_reading(watch, "garden/%s/state" % NODE)  # seq 1: from the new boot
    assert got["temperature"] == TEMPERATURE

    # 4. Deploying again over WebREPL with nothing changed sends nothing,
    # and keeps the node's own config.json (no --config).
    r = cli("deploy", "--host", host, "--files")
    assert summary(r) == (0, n_build, 0)
    assert "[1/" not in r.stderr
    assert (v.board / "config.json").read_text() == text
