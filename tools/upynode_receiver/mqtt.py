"""The receiver's MQTT subscriber: stores what nodes publish, as POST /api/readings does.

Subscribes with QoS 1 to
  <base>/+/state       the live message: one record plus the node's diagnostics
  <base>/+/backlog     one queued record per message, oldest first
  <discovery>/sensor/+/+/config   retained Home Assistant discovery: the quantities' units
and stores each record through the same checks and the same (node, boot, seq, quantity)
deduplication as the HTTP API (the node is the topic's node id). A bad message is one
log line naming its topic and what is wrong, never the end of the subscriber. paho's
network thread reconnects after the broker goes away (1 s, doubling up to
reconnect_max_s) and subscribes again on every connect. Its session is persistent
(client id upynode-receiver-<base>): messages published while it is away are kept by
the broker for it (a broker restart without persistence loses them).

In a test or a script:
    with MqttIngest(db_path, "127.0.0.1", port) as ingest:   # waits until subscribed
        ...
        store.held(db_path, node)                            # [[boot, seq], ...]
"""
import json
import logging
import threading
import time

import paho.mqtt.client as paho
from werkzeug.exceptions import HTTPException

from . import store
from .validate import (MAX_UNIT_CHARS, NAME_RE, QUANTITY_RE, bad, parse_json_body, parse_record,
                       record_rows)

log = logging.getLogger("upynode_receiver.mqtt")

KINDS = ("state", "backlog")
MAX_PAYLOAD_BYTES = 64 * 1024       # as the HTTP API's MAX_BODY_BYTES; a record is ~200 bytes


def default_client_id(base_topic):
    return "upynode-receiver-" + base_topic.replace("/", "-")


def parse_host_port(text, default_port=1883):
    """'host:port' or 'host' -> (host, port); ValueError names what is wrong."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, str(default_port)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--mqtt: expected HOST:PORT, e.g. 127.0.0.1:1883, got {text!r}")
    return host, int(port)


class MqttIngest:
    """Subscribe to nodes' state and backlog topics and store their readings in db_path.
    start() returns at once (the connection is made in paho's thread, retried until the
    broker answers); wait_subscribed() waits for the subscription."""

    def __init__(self, db_path, host="127.0.0.1", port=1883, base_topic="home",
                 discovery_prefix="homeassistant", client_id=None, username=None, password=None,
                 reconnect_max_s=30):
        store.init_db(db_path)
        self.db_path = str(db_path)
        self.host, self.port = host, port
        self.base_topic = base_topic.strip("/")
        self.discovery_prefix = discovery_prefix.strip("/")
        self.topics = [f"{self.discovery_prefix}/sensor/+/+/config"] + \
            [f"{self.base_topic}/+/{kind}" for kind in KINDS]
        self.units = {}             # node -> {quantity: unit}, from discovery configs
        self.booted_at = {}         # node -> (boot, unix time it booted), from live messages
        self.stored = self.duplicates = 0       # rows
        self.handled = self.rejected = 0        # messages on the nodes' topics, bad ones
        self.subscribed = threading.Event()
        self.connects = 0           # how many times it subscribed (reconnects show here)
        # A persistent session (clean_session False) under a fixed client id: while the
        # receiver restarts, the broker keeps the nodes' QoS 1 messages for it. Two
        # receivers on one broker need ids of their own (they would throw each other off).
        self.client_id = client_id or default_client_id(self.base_topic)
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                  clean_session=False)
        if username:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=reconnect_max_s)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    # --- running --------------------------------------------------------------------

    def start(self):
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        return self

    def wait_subscribed(self, timeout=15):
        if not self.subscribed.wait(timeout):
            raise RuntimeError(f"mqtt {self.host}:{self.port}: not subscribed within {timeout} s")
        return self

    def stop(self):
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self):
        return self.start().wait_subscribed()

    def __exit__(self, *exc):
        self.stop()

    # --- paho callbacks (paho's network thread) -------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties=None):
        if reason_code.is_failure:
            log.warning("mqtt %s:%d: connection refused: %s", self.host, self.port, reason_code)
            return
        client.subscribe([(topic, 1) for topic in self.topics])

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties=None):
        failed = [str(code) for code in reason_codes if code.is_failure]
        if failed:
            log.warning("mqtt %s:%d: subscription refused: %s", self.host, self.port, ", ".join(failed))
            return
        self.connects += 1
        log.info("mqtt %s:%d: subscribed to %s", self.host, self.port, ", ".join(self.topics))
        self.subscribed.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None):
        self.subscribed.clear()
        if reason_code != 0:
            log.warning("mqtt %s:%d: connection lost (%s), reconnecting", self.host, self.port,
                        reason_code)

    def _on_message(self, client, userdata, message):
        # An exception here would end paho's thread: every problem is one log line.
        try:
            self.handle(message.topic, message.payload)
        except HTTPException as exc:
            self.rejected += 1
            log.warning("%s: %s", message.topic, exc.description)
        except Exception as exc:
            self.rejected += 1
            log.warning("%s: %s: %s", message.topic, type(exc).__name__, exc)
        finally:
            if not message.topic.startswith(self.discovery_prefix + "/"):
                self.handled += 1

    # --- one message ----------------------------------------------------------------

    def handle(self, topic, payload, now=None):
        """Store one message's record, or learn a unit; (stored, duplicates) rows.
        Raises HTTPException (400) naming what is wrong with it."""
        now = time.time() if now is None else now
        if topic.startswith(self.discovery_prefix + "/"):
            self._learn_unit(topic, payload)
            return 0, 0
        node, _, kind = topic[len(self.base_topic) + 1:].partition("/")
        if kind not in KINDS or not NAME_RE.fullmatch(node):
            bad(f"node id must match {NAME_RE.pattern}")
        if len(payload) > MAX_PAYLOAD_BYTES:
            bad(f"message larger than {MAX_PAYLOAD_BYTES} bytes")
        body = parse_json_body(payload)
        if not isinstance(body, dict):
            bad("message must be a JSON object (a reading record)")

        def ts_of_up(up):
            # A live message is dated when it arrives, and says when its boot began;
            # a queued record of that boot is dated from that.
            if kind == "state":
                self.booted_at[node] = (body.get("boot"), now - up)
                return now
            boot, booted_at = self.booted_at.get(node, (None, None))
            if boot == body.get("boot") and booted_at + up <= now:
                return booted_at + up
            return now

        record = parse_record(body, "", now, ts_of_up)
        rows = record_rows(node, record, self.units.get(node, {}))
        conn = store.connect(self.db_path)
        try:
            stored, duplicates = store.insert_readings(conn, rows, received=now)
        finally:
            conn.close()
        self.stored += stored
        self.duplicates += duplicates
        return stored, duplicates

    def _learn_unit(self, topic, payload):
        # <prefix>/sensor/<node>/<quantity>/config; an empty payload removes the entity.
        parts = topic[len(self.discovery_prefix) + 1:].split("/")
        if len(parts) != 4 or not NAME_RE.fullmatch(parts[1]) or not QUANTITY_RE.fullmatch(parts[2]):
            return      # not an entity of a node of ours
        node, quantity = parts[1], parts[2]
        units = self.units.setdefault(node, {})
        units.pop(quantity, None)
        if not payload:
            return
        try:
            config = json.loads(payload)
        except (ValueError, RecursionError):
            bad("discovery config is not JSON")
        unit = config.get("unit_of_measurement", config.get("unit_of_meas", "")) \
            if isinstance(config, dict) else ""
        if isinstance(unit, str) and len(unit) <= MAX_UNIT_CHARS and unit.isprintable():
            units[quantity] = unit
