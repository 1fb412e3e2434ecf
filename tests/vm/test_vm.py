"""Scenarios on the virtual NodeMCU: the firmware as deployed (.mpy, heap
limited) in the real MicroPython VM, against a real broker on 127.0.0.1.
Assertions are on what the broker received and what the board shows."""
import json
import time

import pytest

from helpers import CHIP_HEX, HOME_AP, NODE_ID, node_config
from upynode_vboard import brokers
from upynode_vboard.mqttwatch import Watch
from upynode_vboard.services import free_port

STATE = "home/%s/state" % NODE_ID
BACKLOG = "home/%s/backlog" % NODE_ID
AP_LINE = r'access point "upynode-%s"' % CHIP_HEX


def readings(watch):
    return [json.loads(p) for p, _ in watch.on(STATE)]


def wait_readings(watch, predicate, timeout=30):
    watch.wait(lambda m: predicate([json.loads(p) for t, p, _ in m if t == STATE]), timeout)
    return readings(watch)


def test_boot_wifi_and_readings_that_follow_the_world(broker, watch, make_vboard):
    cfg = node_config(broker.port, led={"mode": "threshold", "quantity": "temperature", "threshold": 20})
    vb = make_vboard(cfg, aps=HOME_AP, temperature=18.0, light=256)
    with vb:
        vb.wait_for(r'wifi: connected to "home"')
        got = wait_readings(watch, lambda r: len(r) >= 3)
        assert [r["seq"] for r in got[:3]] == [1, 2, 3]
        assert got[0]["temperature"] == 18.0 and got[0]["light"] == 25.0 and got[0]["light_raw"] == 256
        assert vb.state("gpio2") == 1  # 18 < 20: LED off (active-low pin high)

        vb.world(temperature=-7.5)
        got = wait_readings(watch, lambda r: r[-1]["temperature"] == -7.5)
        vb.world(temperature=24.25, light=1024)
        got = wait_readings(watch, lambda r: r[-1]["temperature"] == 24.25)
        assert got[-1]["light"] == 100.0
        assert vb.state("gpio2") == 0  # 24.25 >= 20: LED on

        seqs = [r["seq"] for r in got]
        assert seqs == list(range(1, len(seqs) + 1))  # none lost, none repeated
    assert "out of memory" not in vb.output()
    assert vb.boots == 1


def test_a_failing_sensor_is_reported_and_the_others_go_on(broker, watch, make_vboard):
    cfg = node_config(broker.port, sensors=[{"type": "adc"}, {"type": "mcp9808"}, {"type": "dht11", "prefix": "room_"}])
    vb = make_vboard(cfg, aps=HOME_AP, faults={"mcp9808": "absent", "dht": "timeout"})
    with vb:
        got = wait_readings(watch, lambda r: len(r) >= 1)
        assert got[0]["err"] == {"mcp9808": "no device", "dht11": "timeout"}
        assert "temperature" not in got[0] and got[0]["light_raw"] == 512
        vb.world(faults={})
        got = wait_readings(watch, lambda r: "err" not in r[-1])
        assert got[-1]["temperature"] == 21.5 and got[-1]["room_humidity"] == 45


BAD_CONFIGS = [
    (None, r"config\.json is missing"),
    ("{\"wifi\": {\"ssid\": \"home\",}", r"not valid JSON"),
    (json.dumps({"wifi": {"ssid": "home"}, "interval_s": "often", "mqtt": {"host": "127.0.0.1"}}),
     r'interval_s = "often": expected a number'),
    (json.dumps({"wifi": {"password": "secret123"}, "mqtt": {"host": "127.0.0.1"}}), r"wifi\.ssid"),
    # the drivers are listed from the package's folder on the device too
    (json.dumps({"wifi": {"ssid": "home"}, "mqtt": {"host": "127.0.0.1"}, "webrepl": {"password": "s3cret"},
                 "sensors": [{"type": "bme280"}]}),
     r'sensors\[0\]\.type = "bme280": expected one of adc, dht11, dht22, ds18b20, mcp9808'),
]


@pytest.mark.parametrize("text, why", BAD_CONFIGS, ids=["missing", "broken-json", "wrong-type", "no-ssid", "unknown-sensor"])
def test_bad_config_ends_in_setup_mode_with_the_reason(make_vboard, text, why):
    vb = make_vboard(aps=HOME_AP)
    if text is not None:
        vb.write_file("config.json", text)
    with vb:
        line = vb.wait_for(r"^setup mode: ")
        assert "config" in line
        vb.wait_for(why, start=0)
        vb.wait_for(AP_LINE)
        vb.wait_for(r"WebREPL server started")
        time.sleep(2)
        assert vb.running() and vb.boots == 1  # waiting for a fix, not a boot loop
    ap = vb.state("ap")
    assert ap["active"] and ap["ssid"] == "upynode-" + CHIP_HEX and ap["security"] == 0
    assert "secret123" not in vb.output()


def test_setup_mode_restarts_into_the_loop_once_the_config_is_fixed(broker, watch, make_vboard):
    vb = make_vboard(aps=HOME_AP)
    vb.write_file("config.json", "{")
    with vb:
        vb.wait_for(r"^setup mode: config")
        # what `upynode config put` over WebREPL leaves on the board
        vb.write_config(node_config(broker.port))
        # checked here, or (setup mode's heap too fragmented) by a fresh boot
        vb.wait_for(r"config\.json is valid now: restarting|restarting to check it at boot", timeout=20)
        wait_readings(watch, lambda r: len(r) >= 1)
    assert vb.boots == 2


def test_wifi_that_comes_back_after_a_power_cut_brings_the_node_back(broker, watch, make_vboard):
    # After a power cut the router boots slower than the node.
    cfg = node_config(broker.port, wifi={"timeout_s": 1, "retries": 1, "retry_s": 10})
    vb = make_vboard(cfg, aps={})
    with vb:
        vb.wait_for(r'wifi: "home" attempt 1/1: network not found')
        vb.wait_for(r'setup mode: wifi: could not join "home"')
        vb.wait_for(AP_LINE)
        assert vb.state("ap")["active"]
        vb.world(aps=HOME_AP)
        vb.wait_for(r"WiFi is back: restarting", timeout=30)
        wait_readings(watch, lambda r: len(r) >= 1)
    assert not vb.state("ap")["active"]


def test_a_dead_broker_loses_no_reading(make_vboard):
    # Down: each reading waits on flash. Back: live readings go on, and the
    # queued ones follow on the backlog topic, oldest first.
    port = free_port()
    vb = make_vboard(node_config(port, mqtt={"timeout_s": 2}, retry={"min_s": 1, "max_s": 2}), aps=HOME_AP)
    with vb:
        vb.wait_for(r"^1\.3: .*mqtt queued")
        assert "connection refused" in vb.output()
        with brokers.Broker(port=port) as b:
            w = Watch(b.port, (STATE, BACKLOG))
            try:
                w.wait(lambda m: {json.loads(p)["seq"] for t, p, _ in m if t == BACKLOG} >= {1, 2, 3}
                       and any(t == STATE for t, p, _ in m))
                live = [json.loads(p) for p, _ in w.on(STATE)]
                old = [json.loads(p) for p, _ in w.on(BACKLOG)]
            finally:
                w.close()
        assert [r["seq"] for r in old][:3] == [1, 2, 3]  # oldest first
        assert min(r["seq"] for r in live) > 3 and all(r["boot"] == 1 for r in old + live)
        assert "heap" not in old[0] and "light_raw" in old[0]  # the reading, not the diagnostics
    assert vb.boots == 1


def test_the_embedded_fallback_broker_works_too(make_vboard):
    # amqtt is what `make sim` uses where mosquitto is not installed.
    with brokers.Broker("amqtt") as b:
        w = Watch(b.port, (STATE,))
        try:
            vb = make_vboard(node_config(b.port), aps=HOME_AP, temperature=12.5)
            with vb:
                got = wait_readings(w, lambda r: len(r) >= 2)
            assert got[0]["temperature"] == 12.5 and got[1]["seq"] == got[0]["seq"] + 1
        finally:
            w.close()


def test_a_broker_that_never_answers_costs_only_its_cycles(make_vboard):
    # Accepts the TCP connection, never sends CONNACK: without a socket
    # timeout from before connect(), umqtt.simple would wait forever.
    import socket
    import threading
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                pass
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        vb = make_vboard(node_config(srv.getsockname()[1], mqtt={"timeout_s": 1}), aps=HOME_AP)
        with vb:
            vb.wait_for(r"^1\.1: .*mqtt queued", timeout=15)
            vb.wait_for(r"^1\.2: .*mqtt queued", timeout=15)
        assert "timed out" in vb.output() and len(held) >= 1
    finally:
        stop.set()
        t.join()
        for c in held:
            c.close()
        srv.close()


def test_a_broker_gone_silent_is_noticed_by_the_keepalive(make_vboard):
    # A frozen broker keeps the TCP connection open: QoS 0 publishes still
    # "succeed" into the buffer. Only the unanswered ping tells.
    import signal
    with brokers.Broker() as b:
        vb = make_vboard(node_config(b.port, interval_s=2, mqtt={"keepalive": 10, "timeout_s": 2}), aps=HOME_AP)
        with vb:
            vb.wait_for(r"^1\.1: .*mqtt sent")
            b.proc.send_signal(signal.SIGSTOP)
            try:
                start = len(vb.lines)
                vb.wait_for(r"mqtt: mqtt 127\.0\.0\.1:\d+: timed out", timeout=25, start=start)
            finally:
                b.proc.send_signal(signal.SIGCONT)
            w = Watch(b.port, (STATE,))
            try:
                wait_readings(w, lambda r: len(r) >= 1)  # and it comes back by itself
            finally:
                w.close()
