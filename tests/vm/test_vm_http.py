"""The HTTP transports (lib/upynode/ha.py: Home Assistant's REST API, lib/upynode/flask.py:
the tutorial's Flask URL, both on lib/upynode/http.py) run INSIDE the MicroPython VM (the unix
port, the virtual board's heap, its fakes, lib/ precompiled with mpy-cross as it is
deployed) against:
  - the reference receiver (upynode-receiver, a real waitress process),
  - a plain HTTP server that records the bytes the node sends (Recorder),
  - servers that refuse, never answer, or answer garbage.
Everything is on 127.0.0.1. What Home Assistant itself makes of the node's
requests is tested against a real one in tests/ha/test_ha_http.py.
"""
import json
import os
import re
import socket
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers import run_in_vm
from upynode_cli.build import fetch_and_build
from upynode_vboard.receiver_process import ReceiverProcess
from upynode_vboard.services import free_port
from upynode import config, discovery

KEY = "rcv-key-7f3a"
TOKEN = "llat-token-9c2e5d"
API_PASSWORD = "legacy-pw-4b1d"
MAC = "5c:cf:7f:c0:ff:ee"    # a board other than the default one: the world's station MAC
UNITS = {"temperature": "°C", "humidity": "%", "light": "%", "light_raw": "raw"}

PRELUDE = """
import gc, json, time
def log(s):
    print("LOG " + s)
def out(x):
    print("@" + json.dumps(x))
def fds():
    import os
    return len(os.listdir("/proc/self/fd"))
CFG = json.loads(%r)
UNITS = json.loads(%r)
"""


@pytest.fixture(scope="session")
def vm_lib(tmp_path_factory):
    """lib/ and the fetched deps compiled as `upynode build` does, into a fresh board folder."""
    out = tmp_path_factory.mktemp("httpboard")
    fetch_and_build(out)
    return os.path.join(str(out), "lib")


@pytest.fixture
def vm(vm_lib, tmp_path):
    """vm(cfg, code) -> (results, log lines, wall seconds) of code run in the VM."""
    state = tmp_path / "vboard"
    state.mkdir()
    (state / "world.json").write_text(json.dumps({"mac": MAC}))

    def run(cfg, code, timeout=60, raw=False):
        src = PRELUDE % (json.dumps(cfg), json.dumps(UNITS)) + code
        t0 = time.monotonic()
        p = run_in_vm(src, state, path=[vm_lib], cwd=tmp_path, timeout=timeout)
        wall = time.monotonic() - t0
        text = p.stdout.decode("utf-8", "replace")
        assert p.returncode == 0, text + p.stderr.decode("utf-8", "replace")
        results = [json.loads(ln[1:]) for ln in text.splitlines() if ln.startswith("@")]
        logs = [ln[4:] for ln in text.splitlines() if ln.startswith("LOG ")]
        if raw:
            logs = [ln for ln in text.splitlines() if not ln.startswith("@")]
        return results, logs, wall
    return run


def node_cfg(**over):
    # A valid HA section unless a test gives its own; nothing dials it here.
    user = {"wifi": {"ssid": "home"}, "transports": ["http"], "webrepl": {"password": "s3cret"},
            "homeassistant": {"url": "http://127.0.0.1:9", "token": "unused"}}
    user.update(over)
    return config.parse(json.dumps(user))


def no_secrets(logs, *secrets):
    text = "\n".join(logs)
    for s in secrets:
        assert s not in text, "secret in the log:\n" + text


# --- the reference receiver -------------------------------------------------------------

@pytest.fixture
def receiver(tmp_path):
    with ReceiverProcess(str(tmp_path / "r.sqlite3"), KEY, log_path=str(tmp_path / "server.log")) as rx:
        yield rx.url


def stored(url):
    with urllib.request.urlopen(url + "/api/readings", timeout=10) as r:
        return json.load(r)


def test_flask_target_readings_land_in_the_reference_receiver(vm, receiver):
    cfg = node_cfg(http={"target": "flask", "url": receiver + "/", "api_key": KEY, "timeout_s": 5})
    results, logs, _ = vm(cfg, """
from upynode.flask import Flask
h = Flask(CFG, "attic", UNITS, log)
out(h.send({"seq": 1, "temperature": 21.5, "humidity": 45.0, "light": 50.2, "light_raw": 514, "heap": 9000}))
# the DHT failed: only what was read is sent
out(h.send({"seq": 2, "temperature": -3.25, "err": {"dht22": "timeout"}, "heap": 9000}))
""")
    assert results == [True, True], logs
    rows = stored(receiver)
    got = sorted((r["node"], r["field"], r["quantity"], r["value"]) for r in rows)
    assert got == sorted([(MAC, 1, "temperature", 21.5), (MAC, 2, "humidity", 45.0),
                          (MAC, 3, "light", 50.2), (MAC, 1, "temperature", -3.25)])
    no_secrets(logs, KEY)


def test_a_reading_the_receiver_refuses_for_good_says_why(vm, receiver):
    # A quantity name over the receiver's limit: 400 with its reason, which
    # the node logs and keeps (refused), rather than "HTTP 400" alone; a
    # good reading after it is stored.
    cfg = node_cfg(http={"target": "receiver", "url": receiver, "api_key": KEY, "timeout_s": 5})
    results, logs, _ = vm(cfg, """
from upynode.receiver import Receiver
h = Receiver(CFG, "n1", UNITS, log)
bad = {"boot": 1, "seq": 1, "up": 5, "t" * 40: 20.5}
out([h.send(bad, json.dumps(bad)), h.refused])
good = {"boot": 1, "seq": 2, "up": 6, "temperature": 20.5}
out([h.send(good, json.dumps(good)), h.refused])
""")
    (ok, why), (ok2, why2) = results
    assert ok is False and why.startswith("HTTP 400 ") and "ttttt is neither" in why, results  # 80 bytes of it
    assert ok2 is True and why2 is None
    assert any("HTTP 400" in ln and "is neither" in ln for ln in logs), logs
    assert [r["quantity"] for r in stored(receiver)] == ["temperature"]


def test_flask_target_fields_are_configurable_and_wrong_key_is_reported(vm, receiver):
    cfg = node_cfg(http={"target": "flask", "url": receiver, "api_key": "wrong-" + KEY,
                         "fields": {"light_raw": 4}, "timeout_s": 5})
    results, logs, _ = vm(cfg, """
from upynode.flask import Flask
out(Flask(CFG, "attic", UNITS, log).send({"seq": 1, "temperature": 20.0, "light_raw": 300}))
""")
    assert results == [False]
    assert any("401" in ln and "http.api_key" in ln for ln in logs), logs
    assert stored(receiver) == []
    no_secrets(logs, KEY)
    cfg["http"]["api_key"] = KEY
    results, logs, _ = vm(cfg, """
from upynode.flask import Flask
out(Flask(CFG, "attic", UNITS, log).send({"seq": 1, "temperature": 20.0, "light_raw": 300}))
""")
    assert results == [True], logs
    # only light_raw has a field number in this config
    assert [(r["field"], r["value"]) for r in stored(receiver)] == [(4, 300)]


# --- Home Assistant's REST API: the bytes the node sends -----------------------------------

class Recorder:
    """A plain HTTP server that records every request (method, path,
    headers, raw body) and answers POSTs 201 {} and GETs with `get` (bytes,
    200) or 404. Not Home Assistant: only what the node sends is checked
    against it."""

    def __init__(self, get=None):
        self.requests = []
        self.get = get
        rec = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self, code, raw):
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    self.wfile.write(raw)
                except OSError:
                    pass  # the node read what it wanted and closed
                self.close_connection = True

            def _record(self, method):
                n = int(self.headers.get("Content-Length") or 0)
                rec.requests.append({"method": method, "path": self.path,
                                     "headers": dict(self.headers.items()),
                                     "body": self.rfile.read(n) if n else b""})

            def do_POST(self):
                self._record("POST")
                self._answer(201, b"{}")

            def do_GET(self):
                self._record("GET")
                if rec.get is None:
                    self._answer(404, b'{"message":"Entity not found."}')
                else:
                    self._answer(200, rec.get)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder():
    r = Recorder()
    yield r
    r.close()


def ha_cfg(url, **over):
    h = {"url": url, "token": TOKEN}
    h.update(over)
    return node_cfg(http={"target": "ha", "timeout_s": 5}, homeassistant=h)


def test_ha_target_sends_the_token_and_never_the_api_password(vm, recorder):
    cfg = ha_cfg(recorder.url + "/", api_password=API_PASSWORD)
    results, logs, _ = vm(cfg, """
from upynode.ha import Ha
h = Ha(CFG, "Attic-1", UNITS, log)
import sys
out("upynode.discovery" in sys.modules)  # its device classes taken, it goes
out(h.send({"seq": 1, "temperature": 21.5, "humidity": 45.0, "light": 50.2, "light_raw": 514, "heap": 9000}))
out("upynode.discovery" in sys.modules)
""")
    assert results == [False, True, False], logs
    posts = [r for r in recorder.requests if r["method"] == "POST"]
    # HA entity ids are lowercase [a-z0-9_]: "Attic-1" becomes attic_1; one
    # POST per quantity, none for the diagnostics
    assert sorted(r["path"] for r in posts) == ["/api/states/sensor.attic_1_humidity", "/api/states/sensor.attic_1_light",
                                                "/api/states/sensor.attic_1_light_raw",
                                                "/api/states/sensor.attic_1_temperature"]
    for r in posts:
        # the body parsed whole: Content-Length counts the bytes of "°C"
        assert int(r["headers"]["Content-Length"]) == len(r["body"])
        body = json.loads(r["body"])
        assert isinstance(body["state"], str)  # HA keeps states as strings
        assert r["headers"]["Authorization"] == "Bearer " + TOKEN
        assert not any(k.lower() == "x-ha-access" for k in r["headers"])
        assert API_PASSWORD.encode() not in r["body"]
        assert API_PASSWORD not in json.dumps(r["headers"]) + r["path"]
    # The api_password is explained, once, and no secret is logged.
    assert sum("2019" in ln and "long-lived" in ln and "homeassistant.token" in ln for ln in logs) == 1, logs
    no_secrets(logs, TOKEN, API_PASSWORD)


def test_refused_connection_returns_false_fast(vm):
    port = free_port()     # nothing listens there any more
    results, logs, _ = vm(ha_cfg("http://127.0.0.1:%d" % port), """
from upynode.ha import Ha
t0 = time.ticks_ms()
out(Ha(CFG, "n1", UNITS, log).send({"temperature": 20.5, "humidity": 40}))
out(time.ticks_diff(time.ticks_ms(), t0))
""")
    ok, ms = results
    assert ok is False and ms < 2000
    assert any("refused" in ln for ln in logs), logs
    # One failed connection stops the cycle: the other quantity is not tried.
    assert len(logs) == 1, logs


class Silent:
    """Accepts connections and reads, never answers (a hung server)."""

    def __init__(self, mode="silent"):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.requests = []  # "garbage": each request's head, as received
        self.mode = mode
        self.stop = False
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if self.mode == "garbage":     # reads the request, answers no status line
                threading.Thread(target=self._garbage, args=(c,), daemon=True).start()
            else:
                self.conns.append(c)

    def _garbage(self, c):
        c.settimeout(5)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = c.recv(4096)
                if not chunk:
                    break
                data += chunk
            self.requests.append(data)
            time.sleep(0.2)                # the body, if any, has arrived too
            c.sendall(b"garbage\r\n")
        finally:
            c.close()

    def close(self):
        self.stop = True
        for c in self.conns:
            c.close()
        self.sock.close()


# The send of each HTTP target: the receiver's takes the message as JSON too
# (upynode.http.post writes its POST; ha and flask go through urequests).
SEND = {"ha": ("ha", "Ha", "m"), "flask": ("flask", "Flask", "m"), "receiver": ("receiver", "Receiver", "m, json.dumps(m)")}


@pytest.mark.parametrize("target", ["ha", "flask", "receiver"])
def test_server_that_never_answers_does_not_hang_the_node(vm, target):
    srv = Silent()
    try:
        url = "http://127.0.0.1:%d" % srv.port
        if target == "ha":
            cfg = ha_cfg(url)
        else:
            cfg = node_cfg(http={"target": target, "url": url, "api_key": KEY})
        cfg["http"]["timeout_s"] = 1
        results, logs, wall = vm(cfg, """
from upynode.%s import %s as T
h = T(CFG, "n1", UNITS, log)
def send(m):
    return h.send(%s)
n0 = fds()
t0 = time.ticks_ms()
out(send({"temperature": 20.5, "humidity": 40, "light": 3}))
out(time.ticks_diff(time.ticks_ms(), t0))
for i in range(3):
    send({"temperature": 20.5})
out(fds() - n0)
""" % SEND[target], timeout=30)
    finally:
        srv.close()
    ok, ms, leaked = results
    assert ok is False
    assert 900 <= ms <= 2500, ms        # waited for its timeout (1 s), then gave up
    assert any("timed out" in ln for ln in logs), logs
    assert leaked == 0                   # every timed-out socket was closed
    assert wall < 20


@pytest.mark.parametrize("target", ["ha", "receiver"])
def test_garbage_answer_returns_false_and_closes_the_socket(vm, target):
    # urequests raises IndexError (not OSError) on a missing status line and does
    # not close its socket then; the transport must.
    srv = Silent("garbage")
    try:
        url = "http://127.0.0.1:%d" % srv.port
        cfg = ha_cfg(url) if target == "ha" else node_cfg(http={"target": target, "url": url, "api_key": KEY})
        results, logs, _ = vm(cfg, """
from upynode.%s import %s as T
h = T(CFG, "n1", UNITS, log)
def send(m):
    return h.send(%s)
n0 = fds()
for i in range(5):
    out(send({"temperature": 20.5}))
out(fds() - n0)
""" % SEND[target])
    finally:
        srv.close()
    assert results == [False] * 5 + [0], logs
    assert len(logs) == 5 and all("connection closed" in ln or "Error" in ln for ln in logs), logs
    if target == "receiver":  # its own request line, as urequests would write it
        assert srv.requests[0].startswith(b"POST /api/readings HTTP/1.0\r\nHost: 127.0.0.1\r\n"), srv.requests[0]


def test_many_sends_leak_no_sockets_or_heap(vm, recorder):
    results, logs, _ = vm(ha_cfg(recorder.url), """
from upynode.ha import Ha
h = Ha(CFG, "n1", UNITS, log)
h.send({"temperature": 20.0, "light": 1})
gc.collect()
n0, m0 = fds(), gc.mem_alloc()
for i in range(30):
    h.send({"temperature": 20.0 + i, "light": i})
gc.collect()
out([fds() - n0, gc.mem_alloc() - m0])
""")
    (dfd, dheap), = results
    assert dfd == 0 and dheap < 512, (dfd, dheap)
    posts = [r for r in recorder.requests if r["method"] == "POST"]
    assert len(posts) == 62
    assert json.loads(posts[-2]["body"])["state"] == "49.0"


# --- the HA state follower ------------------------------------------------------------

def test_ha_state_reads_a_big_entity_in_a_heap_smaller_than_it(vm):
    # The state is read from the answer as it streams: a 150 KB entity (a
    # long forecast, "state" after it and in it) in a VM whose free heap is
    # smaller than that.
    big = json.dumps({"entity_id": "weather.home",
                      "attributes": {"forecast": [{"state": "sunny", "t": i} for i in range(5000)]},
                      "state": "rainy", "last_changed": "2026-11-25T00:00:00+00:00"}).encode()
    assert len(big) > 150 * 1024
    rec = Recorder(get=big)
    try:
        results, logs, _ = vm(ha_cfg(rec.url), """
from upynode import ha
import upynode.http, upynode.sock, urequests
gc.collect()
out(gc.mem_free())
out(ha.state(CFG, "weather.home", log))
""")
    finally:
        rec.close()
    free, st = results
    assert free < len(big), free
    assert st == "rainy", logs
    assert logs == []


def test_ha_state_is_none_only_when_home_assistant_cannot_be_reached(vm, recorder):
    # No answer: None (the LED says "unreachable"). An answer without a
    # state (404 here; 401 and HA's own are in tests/ha): "unknown".
    srv = Silent()
    try:
        cfgs = [ha_cfg("http://127.0.0.1:%d" % free_port()), ha_cfg("http://127.0.0.1:%d" % srv.port),
                ha_cfg(recorder.url)]
        cfgs[1]["http"]["timeout_s"] = 1
        out = []
        for cfg in cfgs:
            results, logs, _ = vm(cfg, """
from upynode import ha
t0 = time.ticks_ms()
out(ha.state(CFG, "input_boolean.node_led", log))
out(time.ticks_diff(time.ticks_ms(), t0))
""")
            out.append((results, logs))
    finally:
        srv.close()
    (refused, lr), (hung, lh), (missing, lm) = out
    assert refused[0] is None and any("refused" in ln for ln in lr), lr
    assert hung[0] is None and hung[1] <= 2500 and any("timed out" in ln for ln in lh), lh
    assert missing[0] == "unknown" and lm == ["ha: input_boolean.node_led: HTTP 404 (no such entity)"], lm
    gets = [r for r in recorder.requests if r["method"] == "GET"]
    assert [r["path"] for r in gets] == ["/api/states/input_boolean.node_led"]
    assert gets[0]["headers"]["Authorization"] == "Bearer " + TOKEN


# --- discovery in the VM, and what the modules cost -------------------------------------

def test_discovery_payloads_are_identical_in_the_vm(vm):
    c = dict(config.DEFAULTS["mqtt"], expire_after=300)
    cfg = node_cfg(mqtt={"host": "127.0.0.1", "expire_after": 300})
    results, logs, _ = vm(cfg, """
from upynode import discovery
out([[t, "".join(discovery.flat(p))] for t, p in discovery.configs("attic", UNITS, CFG["mqtt"], True, None, True)])
out(discovery.fingerprint(discovery.configs("attic", UNITS, CFG["mqtt"], True, None, True)))
""")
    pairs, fp = results
    host = [[t, "".join(discovery.flat(p))] for t, p in discovery.configs("attic", UNITS, c, True, None, True)]
    assert pairs == host
    assert fp == discovery.fingerprint(discovery.configs("attic", UNITS, c, True, None, True))


HEAP_CODE = """
import micropython
import upynode.config, upynode.sensors, upynode.mqtt, upynode.led
gc.collect(); a = gc.mem_alloc()
micropython.qstr_info()
for m in %r:
    __import__(m)
gc.collect(); b = gc.mem_alloc()
micropython.qstr_info()
out(b - a)
"""


def test_heap_cost_of_the_modules(vm, capsys):
    # Each in a fresh VM, after what the node has imported anyway. The heap
    # delta includes the qstr pools the import had to add (pools grow in
    # chunks, so that part moves with import order); reported separately.
    cost = {}
    for mods in (["upynode.discovery"], ["upynode.ha"], ["upynode.flask"], ["urequests"],
                 ["upynode.ha", "urequests"]):
        results, logs, _ = vm(node_cfg(), HEAP_CODE % (mods,), raw=True)
        q = [int(re.search(r"n_total_bytes=(\d+)", ln).group(1)) for ln in logs if ln.startswith("qstr pool")]
        cost[" + ".join(m.split(".")[-1] for m in mods)] = (results[0], q[1] - q[0])
    with capsys.disabled():
        print("\n  heap cost of imports in the VM, (bytes, of which qstr pool), .mpy, 64-bit unix port:", cost)
    # The unix port's words are twice the ESP8266's: the chip's cost is lower.
    code = {k: v[0] - v[1] for k, v in cost.items()}
    # Each HTTP target imports only itself and the shared request helper
    # (http). discovery grew with the diagnostics, the origin and the
    # readable names (issue 10); it is loaded only to announce. ha grew
    # with the streaming state reader (no 2 KB body held, no dict of the
    # entity parsed). discovery's payloads in parts (announcing never holds
    # one whole) cost its code 50 B more. Since discovery runs only in a
    # boot of its own (startup.announcement, which saves ready packets)
    # and in ha's set-up, never in the loop, write() and packet() took it
    # to 6,548 B. ha took in follow(), the ha_state LED's (it was Led's, and
    # every node kept it): 5,801 B. The firmware's id in the device block
    # and the update taken back as attributes of "Last reset cause" (issue
    # 19) took discovery to 6,822 B. The ha_state poll's wait after a 401
    # (issue 21: HA logs and notifies each failed login) took ha from 5,801
    # to 6,020 B.
    assert code["discovery"] < 7000 and code["ha"] < 6100 and code["flask"] < 4000, code
    # What the loop of a node with the HA target keeps: ha and urequests.
    # The sockets module (upynode.sock) comes with ha: MQTT shares it.
    # discovery is released once Ha has worked out its device classes.
    assert code["ha + urequests"] < 9400, code  # 9,052 B with follow(), 9,319 with the 401 wait