"""A paho-mqtt subscriber that records what the broker delivered, for the
simulator and the tests (what a Home Assistant would see)."""
import threading
import time

import paho.mqtt.client as mqtt


class Watch:
    def __init__(self, port, topics=("#",), host="127.0.0.1"):
        self.messages = []  # (topic, payload bytes, retain flag)
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="upynode-watch-%d" % id(self))
        self.client.on_connect = lambda c, u, f, rc, p=None: c.subscribe([(t, 0) for t in topics])
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("could not subscribe on %s:%d" % (host, port))

    def _on_message(self, client, userdata, msg):
        with self._cond:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))
            self._cond.notify_all()

    def on(self, topic):
        with self._cond:
            return [(p, r) for t, p, r in self.messages if t == topic]

    def wait(self, predicate, timeout=30):
        """Wait until predicate(messages) is true; returns the messages."""
        t_end = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.messages):
                left = t_end - time.monotonic()
                if left <= 0:
                    raise AssertionError("broker did not deliver the expected messages in %ss; got %r"
                                         % (timeout, self.messages[-10:]))
                self._cond.wait(left)
            return list(self.messages)

    def publish(self, topic, payload, retain=False):
        self.client.publish(topic, payload, retain=retain).wait_for_publish(10)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()
