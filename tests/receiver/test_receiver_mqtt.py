"""The receiver's MQTT subscriber (upynode_receiver.mqtt) against a real broker on
127.0.0.1: it stores the nodes' live and queued records as the HTTP API does, learns units
from retained discovery configs, logs a bad message in one line and goes on, and comes back
after the broker restarts. Each test has base and discovery topics of its own."""
import json
import logging
import time
import uuid

import paho.mqtt.client as paho
import pytest

from upynode_receiver import store
from upynode_receiver.mqtt import MqttIngest, parse_host_port
from upynode_vboard import brokers
from upynode_vboard.receiver_process import ReceiverProcess

NODE = "esp8266_0a1b2c"


@pytest.fixture
def topics():
    """(base topic, discovery prefix) of this test alone: the broker is shared by the session."""
    tag = uuid.uuid4().hex[:8]
    return f"home{tag}", f"ha{tag}"


class Publisher:
    """A node's side of the broker, as far as these tests need it: QoS 1 publishes."""

    def __init__(self, port):
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"test-node-{uuid.uuid4().hex[:8]}")
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()

    def publish(self, topic, payload, retain=False):
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def node(broker):
    publisher = Publisher(broker.port)
    yield publisher
    publisher.close()


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "readings.sqlite3"


@pytest.fixture
def ingest(broker, db_path, topics):
    base, prefix = topics
    with MqttIngest(db_path, "127.0.0.1", broker.port, base_topic=base, discovery_prefix=prefix,
                    client_id=f"receiver-{base}") as ing:
        yield ing


def rows(db_path, node=NODE):
    conn = store.connect(db_path)
    try:
        return [dict(r) for r in conn.execute(
            "SELECT quantity, value, unit, ts, boot, seq FROM readings WHERE node = ?"
            " ORDER BY boot, seq, quantity", (node,))]
    finally:
        conn.close()


def wait_for(predicate, timeout=15):
    t_end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < t_end, "timed out"
        time.sleep(0.05)


def wait_handled(ing, messages, timeout=15):
    """Wait until the subscriber has stored, counted as duplicate or rejected `messages`."""
    wait_for(lambda: ing.handled >= messages, timeout)


def test_live_and_queued_records_are_stored_once_with_learned_units(ingest, node, db_path, topics):
    base, prefix = topics
    now = int(time.time())
    # The node's retained discovery config, as lib/upynode/discovery.py writes it.
    node.publish(f"{prefix}/sensor/{NODE}/temperature/config",
                  json.dumps({"~": f"{base}/{NODE}", "stat_t": "~/state", "unit_of_meas": "°C"}), retain=True)
    node.publish(f"{prefix}/sensor/{NODE}/humidity/config",
                  json.dumps({"unit_of_measurement": "%"}), retain=True)
    live = {"boot": 7, "seq": 3, "ts": now, "temperature": 21.5, "humidity": 40,
            "heap": 20000, "rssi": -60, "q": 2, "reset": 1, "err": {"light": "ADC stuck"}}
    node.publish(f"{base}/{NODE}/state", json.dumps(live))
    for seq in (1, 2, 3):      # the queue: two old readings and a copy of the live one
        node.publish(f"{base}/{NODE}/backlog",
                      json.dumps({"boot": 7, "seq": seq, "ts": now - 60 * (3 - seq), "temperature": 20 + seq}))
    wait_handled(ingest, 4)
    assert rows(db_path) == [
        {"quantity": "temperature", "value": 21, "unit": "°C", "ts": now - 120, "boot": 7, "seq": 1},
        {"quantity": "temperature", "value": 22, "unit": "°C", "ts": now - 60, "boot": 7, "seq": 2},
        {"quantity": "humidity", "value": 40, "unit": "%", "ts": now, "boot": 7, "seq": 3},
        {"quantity": "temperature", "value": 21.5, "unit": "°C", "ts": now, "boot": 7, "seq": 3},
    ]
    assert (ingest.stored, ingest.duplicates, ingest.rejected) == (4, 1, 0)
    assert store.held(db_path, NODE) == [[7, 1], [7, 2], [7, 3]]


def test_records_without_clock_are_dated_from_the_live_messages_uptime(ingest, node, db_path, topics):
    base, _ = topics
    before = time.time()
    # Live: boot 2 has been up 100 s; the queued reading of that boot was taken at up=40.
    node.publish(f"{base}/{NODE}/state", json.dumps({"boot": 2, "seq": 9, "up": 100, "t": 1}))
    node.publish(f"{base}/{NODE}/backlog", json.dumps({"boot": 2, "seq": 3, "up": 40, "t": 2}))
    # One of an earlier boot: nothing says when that boot began, so it is dated on arrival.
    node.publish(f"{base}/{NODE}/backlog", json.dumps({"boot": 1, "seq": 5, "up": 40, "t": 3}))
    wait_handled(ingest, 3)
    after = time.time()
    dates = {(r["boot"], r["seq"]): r["ts"] for r in rows(db_path)}
    assert before <= dates[2, 9] <= after
    assert before - 60 <= dates[2, 3] <= after - 60
    assert before <= dates[1, 5] <= after


@pytest.mark.parametrize("topic_node, payload, problem", [
    (NODE, b"not json", "message must be a JSON object"),
    (NODE, b"\xff\xfe\x00garbage", "message must be a JSON object"),
    (NODE, b"[1, 2]", "message must be a JSON object"),
    (NODE, b"", "message must be a JSON object"),
    (NODE, b'{"boot": 1, "seq": 1, "t": 1}', "ts or up is missing"),
    (NODE, b'{"seq": 1, "ts": 1700000000, "t": 1}', "boot is missing"),
    (NODE, b'{"boot": 1, "seq": 1, "ts": 1700000000, "t": "warm"}', "t must be a finite number"),
    (NODE, b'{"boot": 1, "seq": 1, "ts": 1700000000, "t": 1%s}' % (b"0" * 400), "t must be a finite number"),
    (NODE, b"[" * 30000 + b"]" * 30000, "nests deeper than 8 levels"),
    (NODE, b'{"boot": 1, "seq": 1, "ts": 100, "t": 1}', "ts must be unix seconds"),
    ("bad%node", b'{"boot": 1, "seq": 1, "ts": 1700000000, "t": 1}', "node id must match"),
])
def test_a_bad_message_is_one_log_line_and_the_next_is_stored(ingest, node, db_path, topics, caplog,
                                                              topic_node, payload, problem):
    base, _ = topics
    caplog.set_level(logging.INFO, logger="upynode_receiver.mqtt")
    node.publish(f"{base}/{topic_node}/state", payload)
    good = {"boot": 1, "seq": 2, "ts": int(time.time()), "t": 5}
    node.publish(f"{base}/{NODE}/backlog", json.dumps(good))
    wait_handled(ingest, 2)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and lines[0].startswith(f"{base}/{topic_node}/state: ") and problem in lines[0], lines
    assert (ingest.stored, ingest.rejected) == (1, 1)
    assert store.held(db_path, NODE) == [[1, 2]]


@pytest.mark.broker      # a broker of its own, to restart: not the session's `broker` fixture
def test_it_reconnects_and_subscribes_again_after_a_broker_restart(db_path, caplog):
    caplog.set_level(logging.INFO, logger="upynode_receiver.mqtt")
    port = brokers.free_port()
    broker = brokers.Broker(port=port).start()
    try:
        with MqttIngest(db_path, "127.0.0.1", port, reconnect_max_s=1,
                        client_id=f"receiver-{uuid.uuid4().hex[:8]}") as ing:
            node = Publisher(port)
            node.publish(f"home/{NODE}/state", json.dumps({"boot": 1, "seq": 1, "up": 5, "t": 1}))
            node.close()
            wait_handled(ing, 1)
            broker.stop()
            wait_for(lambda: not ing.subscribed.is_set())
            broker = brokers.Broker(port=port).start()
            wait_for(lambda: ing.connects == 2, timeout=20)
            node = Publisher(port)
            node.publish(f"home/{NODE}/backlog", json.dumps({"boot": 1, "seq": 2, "up": 9, "t": 2}))
            node.close()
            wait_handled(ing, 2)
        assert store.held(db_path, NODE) == [[1, 1], [1, 2]]
        assert any("connection lost" in r.getMessage() for r in caplog.records)
    finally:
        broker.stop()


def test_the_receiver_command_subscribes_with_mqtt_and_answers_what_it_holds(broker, node, tmp_path, topics):
    base, _ = topics
    with ReceiverProcess(str(tmp_path / "rx.sqlite3"), "k", mqtt=f"127.0.0.1:{broker.port}",
                         base_topic=base) as rx:
        node.publish(f"{base}/{NODE}/state", b"{broken")
        for seq in (1, 2, 4):
            node.publish(f"{base}/{NODE}/backlog", json.dumps({"boot": 3, "seq": seq, "up": seq, "t": seq}))
        wait_for(lambda: rx.held(NODE) == [[3, 1], [3, 2], [3, 4]])
        assert f"{base}/{NODE}/state: message must be a JSON object" in rx.log_text()
        assert rx.proc.poll() is None


def test_what_nodes_publish_while_the_receiver_restarts_is_stored_after(broker, node, tmp_path, topics):
    base, _ = topics
    rx = ReceiverProcess(str(tmp_path / "rx.sqlite3"), "k", mqtt=f"127.0.0.1:{broker.port}", base_topic=base)
    with rx:
        node.publish(f"{base}/{NODE}/state", json.dumps({"boot": 1, "seq": 1, "up": 1, "t": 1}))
        wait_for(lambda: rx.held(NODE) == [[1, 1]])
    # Stopped (killed, no goodbye to the broker): its persistent session keeps QoS 1 messages.
    node.publish(f"{base}/{NODE}/state", json.dumps({"boot": 1, "seq": 2, "up": 2, "t": 2}))
    node.publish(f"{base}/{NODE}/backlog", json.dumps({"boot": 1, "seq": 3, "up": 3, "t": 3}))
    with rx:
        wait_for(lambda: rx.held(NODE) == [[1, 1], [1, 2], [1, 3]])


@pytest.mark.parametrize("text, expected", [("127.0.0.1:1884", ("127.0.0.1", 1884)),
                                            ("broker.lan", ("broker.lan", 1883)),
                                            ("[::1]:1883", ("[::1]", 1883))])
def test_mqtt_address_parsing(text, expected):
    assert parse_host_port(text) == expected


@pytest.mark.parametrize("text", ["", ":1883", "host:", "host:port", "host:0", "host:70000"])
def test_bad_mqtt_address_is_refused(text):
    with pytest.raises(ValueError, match="expected HOST:PORT"):
        parse_host_port(text)


@pytest.mark.parametrize("argv, env, message", [
    (["--mqtt", "broker:port"], {"UPYNODE_API_KEYS": "k"}, "expected HOST:PORT"),
    (["--rate-limit", "-1"], {"UPYNODE_API_KEYS": "k"}, "--rate-limit must be 0"),
    ([], {}, "no API keys"),
])
def test_the_command_refuses_bad_options(monkeypatch, capsys, argv, env, message):
    from upynode_receiver import __main__ as command
    for name in ("UPYNODE_API_KEYS", "UPYNODE_KEYS_FILE", "UPYNODE_MQTT", "UPYNODE_RATE_LIMIT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exit_:
        command.main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err
