# MQTT with umqtt.simple: the state message (JSON, or one bare value per
# quantity in "raw" format), availability (last will "offline", "online"
# after each connect), Home Assistant discovery, and the LED switch.
# A failure closes the connection and costs this one message; the next
# publish reconnects and restores the subscriptions (umqtt does not).
import json

FP_FILE = "discovery.fp"  # what was announced: fingerprint, then quantities


class Mqtt:
    def __init__(self, c, node_id, units=None, led=None, log=print):
        self.c = c
        self.node_id = node_id
        self.order = [q for q, u in units or ()]
        self.units = dict(units or ())
        self.led = led if led is not None and led.mode == "remote" else None
        self.log = log
        self.client = None
        self.base = "%s/%s" % (c["base_topic"], node_id)
        self.state_topic = self.base + ("/state" if c["format"] == "json" else "")
        self.status_topic = self.base + "/status"
        self.discovery = c["discovery"] and c["format"] == "json"
        self.ha_status = c["discovery_prefix"] + "/status"
        self.announce = self.discovery  # check what HA has on the next connect
        self.where = "mqtt %s:%d" % (c["host"], c["port"])

    def connect(self):
        from umqtt.simple import MQTTClient
        c = self.c
        cl = MQTTClient(self.node_id, c["host"], c["port"], c["user"] or None,
                        c["password"] or None, c["keepalive"])
        cl.set_last_will(self.status_topic, "offline", True)
        cl.set_callback(self._message)
        cl.connect()
        self.client = cl
        # umqtt.simple has no timeout of its own: without one a half-open
        # connection blocks the node forever.
        cl.sock.settimeout(c["timeout_s"])
        cl.publish(self.status_topic, "online", True)
        if self.led:
            cl.subscribe(self.base + "/led/set")
            self._led_state()
        if self.discovery:
            cl.subscribe(self.ha_status)
        self.log("mqtt: connected to %s:%d" % (c["host"], c["port"]))

    def close(self):
        if self.client:
            try:
                self.client.sock.close()
            except Exception:
                pass
        self.client = None

    def _message(self, topic, msg):
        topic = topic.decode()
        if topic == self.ha_status and msg == b"online":
            self.announce = 2  # Home Assistant restarted: announce whatever we had
        elif self.led and topic.endswith("/led/set"):
            if msg in (b"ON", b"OFF"):
                self.led.set(msg == b"ON")
                self._led_state()
            else:
                self.log("mqtt: led/set wants ON or OFF, not %r" % msg[:20])

    def _led_state(self):
        self.client.publish(self.base + "/led/state", "ON" if self.led.value() else "OFF", True)

    def _announce(self):
        import gc
        gc.collect()  # the import and the payloads want the heap in one piece
        from upynode import discovery as D
        force, self.announce = self.announce == 2, False
        led = self.led is not None
        fp = "%d" % D.fingerprint(D.configs(self.node_id, self.units, self.c, led))
        try:
            with open(FP_FILE) as f:
                old = f.read().split("\n")
        except OSError:
            old = ["", ""]
        if fp == old[0] and not force:
            _release("discovery")
            return
        for topic, payload in D.configs(self.node_id, self.units, self.c, led):
            # bytes: umqtt counts len() of a str, and "°C" is 2 bytes but 1
            # character, which would corrupt the stream.
            self.client.publish(topic, payload.encode(), True)
        # A quantity no sensor measures any more: clear its retained config.
        for q in old[1].split(",") if len(old) > 1 and old[1] else ():
            if q not in self.units:
                self.client.publish(D.topic("sensor", self.node_id, q, self.c), "", True)
        with open(FP_FILE, "w") as f:
            f.write(fp + "\n" + ",".join(self.order))
        self.log("mqtt: announced %d entities to Home Assistant" % (len(self.units) + led))
        _release("discovery")

    def poll(self):
        # Between readings: take LED commands and HA's restarts as they come.
        if self.client is None:
            return
        try:
            while self.client.check_msg() is not None:
                pass
            self.client.sock.settimeout(self.c["timeout_s"])  # check_msg cleared it
            if self.announce:
                self._announce()
        except MemoryError:
            raise
        except Exception as e:
            self.log("mqtt: %s: %s" % (self.where, describe(e)))
            self.close()

    def send(self, msg):
        try:
            if self.client is None:
                self.connect()
            if self.announce:
                self._announce()
            if self.c["format"] == "json":
                self.client.publish(self.state_topic, json.dumps(msg).encode())
            else:
                self._send_raw(msg)
            return True
        except MemoryError:
            raise
        except Exception as e:
            self.log("mqtt: %s: %s" % (self.where, describe(e)))
            self.close()
            return False

    def _send_raw(self, msg):
        # The tutorial's format: a bare value per quantity, and the first
        # quantity also on <base_topic>/<node_id>, where its YAML looks.
        first = True
        for q in self.order:
            if q in msg:
                if first:
                    self.client.publish(self.base, str(msg[q]))
                    first = False
                self.client.publish(self.base + "/" + q, str(msg[q]))


def _release(name):
    # Needed once per connect at most: give its RAM back to the loop.
    import sys
    import upynode
    sys.modules.pop("upynode." + name, None)
    if name in upynode.__dict__:
        delattr(upynode, name)


def describe(e):
    if isinstance(e, OSError) and e.args:
        n = e.args[0]
        return {103: "connection aborted", 104: "connection reset", 110: "timed out",
                111: "connection refused", 113: "host unreachable", 116: "timed out",
                -2: "host name not found", -1: "connection closed"}.get(n, "network error %s" % n)
    if type(e).__name__ == "MQTTException":
        return "broker refused the connection (code %s: 4 = bad user or password, 5 = not authorised)" % e
    return "%s %s" % (type(e).__name__, e)
