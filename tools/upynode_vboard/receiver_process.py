"""The receiver as a separate process on 127.0.0.1 (waitress), for the
simulator and the tests.

    with ReceiverProcess(db, "key", mqtt="127.0.0.1:%d" % broker.port) as rx:
        ...                      # a node posts to rx.url, or publishes on the broker
        rx.held("node-id")       # [[boot, seq], ...] the receiver holds of that node

With mqtt, start() returns once the receiver has subscribed to the nodes' topics; stop()
then start() again is a receiver restart (the broker kept its session meanwhile).
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
import urllib.request

from .services import free_port, terminate, wait_listening

SUBSCRIBED_LINE = "subscribed to"       # what upynode_receiver.mqtt logs on each subscription


class ReceiverProcess:
    def __init__(self, db, api_key, port=None, log_path=None, mqtt=None, base_topic="home",
                 rate_limit=0, args=()):
        self.db, self.api_key, self.port = db, api_key, port or free_port()
        self.args = list(args)  # more of upynode-receiver's options, e.g. --key KEY=node
        self.url = "http://127.0.0.1:%d" % self.port
        # No rate limit unless asked for: virtual nodes post every second or faster.
        self.mqtt, self.base_topic, self.rate_limit = mqtt, base_topic, rate_limit
        # Its own MQTT client id, kept across stop() and start(): the broker keeps what
        # nodes publish while this receiver is stopped, and another test's receiver on the
        # same broker gets none of it.
        self.mqtt_client_id = "upynode-receiver-test-" + uuid.uuid4().hex[:12]
        # The log is read back to see the MQTT subscription; a temporary file unless named.
        self._own_log = log_path is None
        self.log_path = log_path or tempfile.mkstemp(prefix="upynode-receiver-", suffix=".log")[1]
        self.proc = None

    def start(self, timeout=20):
        env = {k: v for k, v in os.environ.items() if not k.startswith("UPYNODE_")}
        env["UPYNODE_API_KEYS"] = self.api_key
        argv = [sys.executable, "-m", "upynode_receiver", "--port", str(self.port), "--db", self.db]
        if self.mqtt:
            argv += ["--mqtt", self.mqtt, "--base-topic", self.base_topic,
                     "--mqtt-client-id", self.mqtt_client_id]
        if self.rate_limit is not None:
            argv += ["--rate-limit", str(self.rate_limit)]
        argv += self.args
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_listening(self.port, self.proc, timeout, "receiver")
            if self.mqtt:
                self.wait_subscribed(timeout)
        except RuntimeError:
            self.stop()
            raise
        return self

    def log_text(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def wait_subscribed(self, timeout=20, times=1):
        """Wait until the receiver has subscribed `times` times in all (a reconnect after a
        broker restart subscribes again)."""
        t_end = time.monotonic() + timeout
        while self.log_text().count(SUBSCRIBED_LINE) < times:
            if self.proc.poll() is not None:
                raise RuntimeError("receiver exited with status %s:\n%s" % (self.proc.returncode,
                                                                            self.log_text()[-2000:]))
            if time.monotonic() > t_end:
                raise RuntimeError("receiver did not subscribe on mqtt %s within %d s:\n%s"
                                   % (self.mqtt, timeout, self.log_text()[-2000:]))
            time.sleep(0.1)

    def held(self, node):
        """[[boot, seq], ...] of the readings of `node` the receiver holds (GET /api/held)."""
        query = urllib.parse.urlencode({"node": node})
        with urllib.request.urlopen("%s/api/held?%s" % (self.url, query), timeout=10) as response:
            return json.load(response)["held"]

    def stop(self):
        terminate(self.proc)
        if self.proc:
            self.log.close()
            self.proc = None
            if self._own_log:
                os.unlink(self.log_path)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
