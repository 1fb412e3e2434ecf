"""Home Assistant over MQTT on the virtual NodeMCU, against a real broker:
discovery, availability, the LED switch and the tutorial's raw format."""
import contextlib
import json
import os
import time

import pytest

from helpers import HOME_AP, NODE_ID, node_config
from upynode_vboard import brokers
from upynode_vboard.mqttwatch import Watch
from upynode_vboard.services import free_port

NODE = NODE_ID
BASE = "home/" + NODE
DISCOVERY = "homeassistant/sensor/%s/" % NODE
DIAGNOSTICS = ("rssi", "heap", "up", "q", "reset")  # the node's own, announced with its sensors


@pytest.fixture
def broker():
    # A broker per test: retained discovery from another test must not count.
    with brokers.Broker() as b:
        yield b


def config_msgs(watch):
    return [(t, p, r) for t, p, r in watch.messages if t.startswith("homeassistant/") and t.endswith("/config")]


def states(watch):
    return [json.loads(p) for p, _ in watch.on(BASE + "/state")]


def test_discovery_is_retained_and_announced_once_across_two_wakes(broker, make_vboard, board_build):
    w = Watch(broker.port, ("homeassistant/#", BASE + "/#"))
    try:
        vb = make_vboard(node_config(broker.port), aps=HOME_AP)
        with vb:
            w.wait(lambda m: any(t == BASE + "/state" for t, _, _ in m))
        first = config_msgs(w)
        assert sorted(t for t, _, _ in first) == [DISCOVERY + q + "/config" for q in sorted(
            ("light", "light_raw", "temperature") + DIAGNOSTICS)]
        temp = json.loads([p for t, p, _ in first if t.endswith("/temperature/config")][0])
        assert temp["uniq_id"] == NODE + "_temperature" and temp["dev_cla"] == "temperature"
        assert temp["unit_of_meas"] == "°C" and temp["val_tpl"] == "{{value_json.get('temperature','None')}}"
        assert temp["sug_dsp_prc"] == 2  # the MCP9808 driver's precision (1/16 degC steps)
        light = json.loads([p for t, p, _ in first if t.endswith("/light/config")][0])
        assert light["sug_dsp_prc"] == 1 and "dev_cla" not in light  # light in %: no HA class fits
        assert temp["~"] == BASE and temp["stat_t"] == "~/state" and temp["avty_t"] == "~/status"
        # the node's info, retained once per connect: its address, why it
        # started, and the firmware (upynode build's id: HA's device page too)
        with open(os.path.join(board_build, "lib/upynode/build.txt")) as f:  # the board make_vboard copies
            fw = "0.3.0+" + f.read().strip()
        assert [json.loads(p) for p, _ in w.on(BASE + "/info")] == [{"ip": "127.0.0.1", "reset": 0, "fw": fw}]
        assert temp["dev"]["sw"] == fw
        n = len(w.on(BASE + "/state"))

        vb.start()  # the second wake: same config, same entities
        w.wait(lambda m: len([1 for t, _, _ in m if t == BASE + "/state"]) > n)
        vb.stop()
        assert len(config_msgs(w)) == len(first)  # not announced again
    finally:
        w.close()
    # A Home Assistant that starts later still finds them: they are retained.
    late = Watch(broker.port, (DISCOVERY + "+/config", BASE + "/info"))
    try:
        got = late.wait(lambda m: len(m) >= 4 + len(DIAGNOSTICS), timeout=10)
        assert all(r for _, _, r in got)
        assert [json.loads(p) for p, _ in late.on(BASE + "/info")] == [{"ip": "127.0.0.1", "reset": 0, "fw": fw}]
    finally:
        late.close()


@contextlib.contextmanager
def announced(broker, make_vboard):
    """A running node with an MCP9808, once its first announcement and
    reading are out: (watch on its configs and state, the board, how many
    entities it announces)."""
    w = Watch(broker.port, ("homeassistant/+/" + NODE + "/+/config", BASE + "/state"))
    try:
        vb = make_vboard(node_config(broker.port, sensors=[{"type": "mcp9808"}]), aps=HOME_AP)
        with vb:
            n = 1 + len(DIAGNOSTICS)  # the MCP9808's temperature and the diagnostics
            w.wait(lambda m: len(config_msgs(w)) == n and len(states(w)) >= 1)
            yield w, vb, n
    finally:
        w.close()


def test_home_assistant_restart_gets_a_new_announcement(broker, make_vboard):
    with announced(broker, make_vboard) as (w, vb, n):
        w.publish("homeassistant/status", "online")
        # within 30 s of the first announcement: the second waits for them (mqtt._AGAIN_MS)
        w.wait(lambda m: len(config_msgs(w)) == 2 * n, timeout=45)
        vb.wait_for("announced %d entities" % n)


def test_the_led_switch_follows_commands_and_reports_its_state(broker, make_vboard):
    cfg = node_config(broker.port, interval_s=30, led={"mode": "remote"})
    vb = make_vboard(cfg, aps=HOME_AP)
    w = Watch(broker.port, (BASE + "/led/state", "homeassistant/switch/#"))
    try:
        with vb:
            switch_topic = "homeassistant/switch/%s/led/config" % NODE
            w.wait(lambda m: w.on(BASE + "/led/state") and w.on(switch_topic))
            assert w.on(BASE + "/led/state")[0][0] == b"OFF" and vb.state("gpio2") == 1
            switch = json.loads(w.on(switch_topic)[0][0])
            assert switch["cmd_t"] == "~/led/set" and switch["stat_t"] == "~/led/state"
            # Commands are taken between readings (interval 30 s), not at the next one.
            t0 = time.monotonic()
            w.publish(BASE + "/led/set", "ON")
            w.wait(lambda m: w.on(BASE + "/led/state")[-1][0] == b"ON", timeout=5)
            assert time.monotonic() - t0 < 5
            assert vb.state("gpio2") == 0  # active-low: lit
            w.publish(BASE + "/led/set", "OFF")
            w.wait(lambda m: w.on(BASE + "/led/state")[-1][0] == b"OFF", timeout=5)
            assert vb.state("gpio2") == 1
            w.publish(BASE + "/led/set", "BLINK")
            vb.wait_for("led/set wants ON or OFF", timeout=5)
    finally:
        w.close()


def test_subscriptions_come_back_after_the_broker_restarts(make_vboard):
    port = free_port()
    cfg = node_config(port, interval_s=1, led={"mode": "remote"}, mqtt={"timeout_s": 2},
                      retry={"min_s": 1, "max_s": 2})
    vb = make_vboard(cfg, aps=HOME_AP)
    with vb:
        with brokers.Broker(port=port):
            vb.wait_for("mqtt: connected")
        start = len(vb.lines)
        vb.wait_for("mqtt queued", start=start)
        with brokers.Broker(port=port):
            vb.wait_for("mqtt: connected", start=start)
            w = Watch(port, (BASE + "/led/state",))
            try:
                w.publish(BASE + "/led/set", "ON")
                w.wait(lambda m: any(p == b"ON" for _, p, _ in m), timeout=5)
                assert vb.state("gpio2") == 0
            finally:
                w.close()


def test_a_killed_node_leaves_offline_retained(broker, make_vboard):
    vb = make_vboard(node_config(broker.port), aps=HOME_AP)
    w = Watch(broker.port, (BASE + "/status",))
    try:
        with vb:
            w.wait(lambda m: any(p == b"online" for _, p, _ in m))
        # vb.stop() kills the VM: no DISCONNECT, so the broker sends the will
        w.wait(lambda m: m[-1][1] == b"offline", timeout=10)
    finally:
        w.close()
    late = Watch(broker.port, (BASE + "/status",))
    try:
        got = late.wait(lambda m: len(m) >= 1, timeout=10)
        assert got[0][1:] == (b"offline", True)
    finally:
        late.close()


def test_raw_format_keeps_the_tutorials_topics(broker, make_vboard):
    # The tutorial's Home Assistant YAML: platform: mqtt, state_topic: home/esp8266_<id>
    cfg = node_config(broker.port, mqtt={"format": "raw"}, sensors=[{"type": "mcp9808"}, {"type": "adc"}])
    vb = make_vboard(cfg, aps=HOME_AP, temperature=-3.25, light=512)
    w = Watch(broker.port, (BASE, BASE + "/+", "homeassistant/#"))
    try:
        with vb:
            w.wait(lambda m: len(w.on(BASE)) >= 2 and len(w.on(BASE + "/light_raw")) >= 2)
        assert w.on(BASE)[0][0] == b"-3.25"
        assert w.on(BASE + "/temperature")[0][0] == b"-3.25"
        assert w.on(BASE + "/light")[0][0] == b"50.0"
        assert not config_msgs(w)  # raw format: no discovery
    finally:
        w.close()


def test_oversized_messages_cost_no_reading_and_no_reset(broker, make_vboard):
    # Retained before the node connects, so that it gets them back at every
    # connect: 100 KB on its LED command topic, 10 KB on HA's status topic
    # (umqtt.simple alone would read each whole into RAM).
    w = Watch(broker.port, (BASE + "/state",))
    try:
        w.publish(BASE + "/led/set", b"x" * 100000, retain=True)
        w.publish("homeassistant/status", b"y" * 10000, retain=True)
        vb = make_vboard(node_config(broker.port, led={"mode": "remote"}), aps=HOME_AP)
        with vb:
            w.wait(lambda m: len(states(w)) >= 10, timeout=90)
        seqs = [s["seq"] for s in states(w)]
        assert seqs == list(range(1, len(seqs) + 1))  # every reading live, in order, none missing
        out = vb.output()
        assert out.count("ignored a message of 100000 bytes on %s/led/set" % BASE) == 1
        assert out.count("ignored a message of 10000 bytes on homeassistant/status") == 1
        # one loop, one boot: the node never restarted after it started reading
        assert len([ln for ln in vb.lines if ln.startswith("node %s:" % NODE)]) == 1
        assert "queued" not in out
    finally:
        w.close()


def test_an_online_storm_makes_one_announcement_per_30_s(broker, make_vboard):
    with announced(broker, make_vboard) as (w, vb, n):
        t0 = time.monotonic()
        # 20 "online" a second for 20 s: nothing announced again within
        # 30 s of the last announcement, and one announcement after
        while time.monotonic() - t0 < 20:
            w.publish("homeassistant/status", "online")
            time.sleep(0.05)
        assert len(config_msgs(w)) == n
        w.wait(lambda m: len(config_msgs(w)) == 2 * n, timeout=30)
        time.sleep(5)
        assert len(config_msgs(w)) == 2 * n and len(states(w)) >= 20
        assert vb.output().count("announced %d entities" % n) == 2
