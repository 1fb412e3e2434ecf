"""The fault-injection suite's tools (make faults, issue 7: no reading lost).

Every scenario checks the same thing: after dedupe on (boot, seq), what the
receivers hold equals what the node produced, except readings a full queue
dropped and said so. This module has what the scenarios share:

- produced(lines), drops_reported(lines): the node's console, parsed
  ("<boot>.<seq>: {json} -> ..." per reading taken; "backlog <t>: full:
  dropped <n> oldest, <total> since boot" per drop)
- row(...): one line of the table (produced, delivered, duplicates dropped,
  lost, lost and reported with a reason, result); Table collects them, writes
  build/faults.json and prints them
- Collector: a paho subscriber on the node's state and backlog topics
  (QoS 1, a session the broker keeps, reconnecting within a second)
- FaultBroker: mosquitto that can be killed (SIGKILL) and restarted on its
  port, frozen (SIGSTOP) and resumed
- SilentServer: accepts TCP connections and never answers
- FlakyHttp: a receiver for http.target "receiver" that is down, answers
  500, or takes the batch (and keeps it, or passes it on to the reference
  receiver)
- wait_readings(), settle(): wait for the node's readings; end a scenario
  once the node has replayed its queue and sent a live reading, and the
  receivers hold what it logged
- queue_power_cuts(): the offline queue's writer in the VM, SIGKILLed at
  random points, restarted on the same flash folder, checked after each cut

`python -m upynode_vboard.faults [build/faults.json]` prints the table of
the last run and exits 1 if a scenario lost a reading it should not have.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .services import free_port, terminate, wait_listening

# What the live message carries besides the reading (diagnostics of the
# moment it was sent): a backlog record has none of them.
DIAGNOSTICS = ("heap", "rssi", "q", "drop", "reset", "awake_ms")
READING_LINE = re.compile(r"^(\d+)\.(\d+): (\{.*\}) -> (.*)$")
DROP_LINE = re.compile(r"^backlog (\S+): full: dropped (\d+) oldest, (\d+) since boot$")
COUNTED_LINE = re.compile(r"^backlog (\S+): .*: (\d+) counted in drop$")
REPLAY_LINE = re.compile(r"^backlog (\S+): replayed (\d+), (\d+) left$")

COLUMNS = ("scenario", "produced", "delivered", "duplicates dropped", "lost",
           "lost, reported", "result")


# -- the node's console ---------------------------------------------------
def reading(record):
    """A record as the receivers must hold it: without the live message's diagnostics."""
    return {k: v for k, v in record.items() if k not in DIAGNOSTICS}


def key(record):
    return (record["boot"], record["seq"])


def same_reading(got, want):
    """got (delivered) is the reading want (produced): the same quantities
    and errors, and the same time, except that a reading taken before NTP
    answered ("up") may arrive with the "ts" the node gave it before replay."""
    g = {k: v for k, v in got.items() if k not in ("up", "ts")}
    w = {k: v for k, v in want.items() if k not in ("up", "ts")}
    if g != w:
        return False
    if "ts" in want:
        return got.get("ts") == want["ts"]
    return got.get("up") == want.get("up") or ("ts" in got and "up" not in got)


def produced(lines):
    """{(boot, seq): reading} of every reading the node took, from its console.
    A reading logged twice (it never should be) keeps the first."""
    out = {}
    for line in lines:
        m = READING_LINE.match(line)
        if m:
            rec = json.loads(m.group(3))
            k = (int(m.group(1)), int(m.group(2)))
            if (rec.get("boot"), rec.get("seq")) != k:
                raise AssertionError("console line's %d.%d disagrees with its record: %s" % (k + (line,)))
            out.setdefault(k, reading(rec))
    return out


def outcomes(lines, transport):
    """{(boot, seq): "sent" | "queued" | "skipped" | ...} per reading for one transport."""
    out = {}
    for line in lines:
        m = READING_LINE.match(line)
        if m:
            for part in m.group(4).split(","):
                words = part.split()
                if len(words) >= 2 and words[0] == transport:
                    out[(int(m.group(1)), int(m.group(2)))] = " ".join(words[1:])
    return out


def drops_reported(lines, transport=None):
    """Readings the node said it lost, each with its reason (all transports,
    or one): a full queue's oldest ("full: dropped N oldest"), the queue's
    corrupt, torn or refused records ("...: N counted in drop"), and
    readings it could not queue or a sink refused for good (a cycle's
    "LOST (why)" or "REFUSED (why)")."""
    n = 0
    for line in lines:
        m = DROP_LINE.match(line) or COUNTED_LINE.match(line)
        if m and transport in (None, m.group(1)):
            n += int(m.group(2))
        m = READING_LINE.match(line)
        if m:
            for part in m.group(4).split(", "):
                words = part.split(" ", 1)
                if len(words) == 2 and transport in (None, words[0]) and words[1].startswith(("LOST (", "REFUSED (")):
                    n += 1
    return n


# A reading line taken with the queue empty and sent: everything queued
# before it has been replayed and acknowledged.
DRAINED = r'^\d+\.\d+: \{(?!.*"q": ?).*\} -> %s sent'


def wait_readings(vb, n, timeout=60, start=0):
    """Wait until the node has logged n readings from console line `start` on."""
    t_end = time.monotonic() + timeout
    while len(produced(vb.lines[start:])) < n:
        if time.monotonic() > t_end or not vb.running():
            raise AssertionError("the node logged %d of %d readings %s; console:\n%s"
                                 % (len(produced(vb.lines[start:])), n,
                                    "in %d s" % timeout if vb.running() else "and stopped",
                                    "\n".join(vb.lines[-40:])))
        time.sleep(0.2)


def settle(vb, receivers, transport="mqtt", timeout=60, start=0):
    """The end of a scenario: wait until the node has replayed its queue and
    sent a reading live (it is alive and publishing), power it off, and wait
    until the receivers hold every reading it logged. Returns (produced,
    delivered): a reading the node was sending as it was switched off (so
    never logged) is left out of delivered."""
    vb.wait_for(DRAINED % transport, timeout=timeout, start=start)
    vb.stop()
    made = produced(vb.lines)
    want = set(made)
    t_end = time.monotonic() + 20
    while time.monotonic() < t_end:
        if want <= {key(r) for c in receivers for r in c.records()}:
            break
        time.sleep(0.2)
    last = max(made) if made else (0, 0)
    delivered = [r for c in receivers for r in c.records() if key(r) <= last]
    return made, delivered


# -- the table -------------------------------------------------------------
NOT_TAKEN_LINE = re.compile(r"^(\d+)\.(\d+)-(\d+): not taken")


def not_taken(lines):
    """Intervals the node logged as not taken (the cycle before overran)."""
    n = 0
    for line in lines:
        m = NOT_TAKEN_LINE.match(line)
        if m:
            n += int(m.group(3)) - int(m.group(2)) + 1
    return n


def row(scenario, produced, delivered, dropped=0, may_lose=0, console=None):
    """One row of the table.

    produced: {(boot, seq): reading}; delivered: every record the receivers
    got, duplicates included; dropped: records the node reported dropping
    from a full queue; may_lose: losses the scenario allows (a reading being
    written when the power went). A row is "ok" when, after dedupe, every
    produced reading arrived unchanged except exactly the reported drops
    (plus at most may_lose), and nothing arrived that was never produced.
    """
    got = {}
    dup = 0
    bad = []
    for rec in delivered:
        k = key(rec)
        if k in got:
            dup += 1
            if not same_reading(reading(rec), got[k]) and not same_reading(got[k], reading(rec)):
                bad.append("(boot %d, seq %d) delivered twice with different contents" % k)
            continue
        got[k] = reading(rec)
    notes = []
    if console is not None:
        gaps = not_taken(console)
        boots = len({b for b, s in produced})
        notes.append("%d boot(s); %d interval(s) not taken (a cycle overran: a gap in seq, no reading to deliver)"
                     % (boots, gaps))
    missing = sorted(set(produced) - set(got))
    extra = sorted(set(got) - set(produced))
    changed = [k for k in sorted(set(got) & set(produced)) if not same_reading(got[k], produced[k])]
    lost = len(missing)
    unexplained = lost - dropped
    problems = list(bad)
    if extra:
        problems.append("delivered but never produced: %s" % _keys(extra))
    if changed:
        k = changed[0]
        problems.append("delivered with other contents than produced: %s (%d.%d: delivered %s, produced %s)"
                        % ((_keys(changed),) + k + (json.dumps(got[k], sort_keys=True), json.dumps(produced[k], sort_keys=True))))
    if unexplained < 0:
        problems.append("reported %d dropped but only %d lost" % (dropped, lost))
    elif unexplained > may_lose:
        problems.append("lost %d beyond the %d reported dropped%s: %s"
                        % (unexplained, dropped, " and %d allowed" % may_lose if may_lose else "", _keys(missing)))
    if unexplained > may_lose:
        result = "LOST %d" % (unexplained - may_lose)
    elif problems:
        result = "FAIL"
    else:
        result = "ok"
    return {"scenario": scenario, "produced": len(produced), "delivered": len(got),
            "duplicates dropped": dup, "lost": lost, "lost, reported": dropped,
            "result": result, "problems": problems, "missing": [list(k) for k in missing[:50]], "notes": notes}


def _keys(keys, at_most=12):
    s = ", ".join("%d.%d" % k for k in keys[:at_most])
    return s + (" ... (%d in all)" % len(keys) if len(keys) > at_most else "")


def lost_beyond_allowed(r):
    return r["result"].startswith("LOST")


class Table:
    """The suite's rows, in the order the scenarios ran."""

    def __init__(self):
        self.rows = []
        self.current = None  # the test running: its rows carry its name

    def add(self, r):
        r.setdefault("test", self.current)
        self.rows = [x for x in self.rows if x["scenario"] != r["scenario"]] + [r]
        return r

    def write(self, path):
        os.makedirs(os.path.dirname(str(path)), exist_ok=True)
        with open(str(path) + ".tmp", "w") as f:
            json.dump({"columns": COLUMNS, "rows": self.rows}, f, indent=1)
        os.replace(str(path) + ".tmp", str(path))

    def format(self):
        return format_table(self.rows)


def format_table(rows):
    heads = ("scenario", "produced", "delivered", "dups", "lost", "reported", "result")
    cells = [[str(r[c]) for c in COLUMNS] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(heads)]

    def line(vals):
        return "  ".join(v.ljust(w) if i == 0 or i == len(vals) - 1 else v.rjust(w)
                         for i, (v, w) in enumerate(zip(vals, widths))).rstrip()
    out = [line(heads), line(["-" * w for w in widths])] + [line(c) for c in cells]
    for r in rows:
        for p in list(r.get("problems", [])) + list(r.get("notes", [])):
            out.append("  %s: %s" % (r["scenario"], p))
    return "\n".join(out)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print("usage: python -m upynode_vboard.faults [build/faults.json]\n"
              "Prints the fault suite's table; exits 1 if a scenario lost a reading it should not have.")
        return 0
    path = argv[0] if argv else os.path.join("build", "faults.json")
    try:
        with open(path) as f:
            rows = json.load(f)["rows"]
    except (OSError, ValueError, KeyError) as e:
        print("faults: no table in %s (%s): did the suite run?" % (path, e), file=sys.stderr)
        return 1
    print(format_table(rows))
    lost = [r["scenario"] for r in rows if lost_beyond_allowed(r)]
    failed = [r["scenario"] for r in rows if r["result"] != "ok"]
    if lost:
        print("faults: readings lost in: %s" % ", ".join(lost), file=sys.stderr)
    elif failed:
        print("faults: failed: %s" % ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


# -- what the MQTT receivers got -------------------------------------------
class Collector:
    """Subscribes to <base>/<node>/state and /backlog with QoS 1 in a session
    the broker keeps across this client's reconnects, and reconnects within a
    second after the broker comes back. records(): every record received,
    duplicates included, state and backlog alike."""

    def __init__(self, port, node_id, base="home", host="127.0.0.1", also=()):
        # also: more topic filters to record (Home Assistant discovery, say)
        import paho.mqtt.client as mqtt
        self.state_topic = "%s/%s/state" % (base, node_id)
        self.backlog_topic = "%s/%s/backlog" % (base, node_id)
        self.also = tuple(also)
        self.messages = []  # (topic, payload bytes, retain flag)
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="upynode-faults-%d" % os.getpid(),
                                  clean_session=False)
        self.client.reconnect_delay_set(min_delay=0.1, max_delay=1)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port, keepalive=60)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("could not subscribe on %s:%d" % (host, port))

    def _on_connect(self, client, userdata, flags, rc, props=None):
        client.subscribe([(self.state_topic, 1), (self.backlog_topic, 1)] + [(t, 1) for t in self.also])

    def _on_message(self, client, userdata, msg):
        with self._cond:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))
            self._cond.notify_all()

    def records(self, topic=None):
        with self._cond:
            msgs = list(self.messages)
        want = (self.state_topic, self.backlog_topic) if topic is None else (topic,)
        return [json.loads(p) for t, p, r in msgs if t in want]

    def live(self, prefix):
        """(topic, payload) of what was published while this client listened
        (not retained copies the broker replays at each subscribe)."""
        with self._cond:
            return [(t, p) for t, p, r in self.messages if t.startswith(prefix) and not r]

    def state(self):
        return self.records(self.state_topic)

    def wait(self, predicate, timeout=30, what="the expected records"):
        """Wait until predicate(records()) holds."""
        t_end = time.monotonic() + timeout
        while True:
            recs = self.records()
            if predicate(recs):
                return recs
            left = t_end - time.monotonic()
            if left <= 0:
                raise AssertionError("the broker did not deliver %s in %ss; last: %r" % (what, timeout, recs[-5:]))
            with self._cond:
                self._cond.wait(min(left, 0.5))

    def wait_for_all(self, keys, timeout=30):
        """Wait until every (boot, seq) in keys has arrived."""
        want = set(keys)
        return self.wait(lambda recs: want <= {key(r) for r in recs}, timeout,
                         "all %d readings produced" % len(want))

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


# -- a broker that fails -----------------------------------------------------
class FaultBroker:
    """mosquitto on 127.0.0.1:port that keeps its sessions on disk every
    second, so that a subscriber's session survives a SIGKILL and the node's
    readings find it after the restart, as a Home Assistant's broker would."""

    def __init__(self, port=None):
        from .brokers import mosquitto_path
        self.exe = mosquitto_path()
        if not self.exe:
            raise RuntimeError("the fault suite needs mosquitto (apt-get install mosquitto)")
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="upynode-faultbroker-")
        # started as root, mosquitto runs as the user "mosquitto": it must
        # be able to write its sessions here
        os.chmod(self.dir, 0o777)
        self.proc = None
        self.log = None

    def start(self):
        conf = os.path.join(self.dir, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\n"
                    "persistence true\npersistence_location %s/\nautosave_interval 1\n"
                    "log_dest stderr\nlog_type error\nlog_type warning\n" % (self.port, self.dir))
        os.chmod(conf, 0o644)
        self.log = open(os.path.join(self.dir, "broker.log"), "a")
        t_end = time.monotonic() + 15
        while True:  # the port can stay busy for a moment after a kill
            self.proc = subprocess.Popen([self.exe, "-c", conf], stdout=self.log, stderr=subprocess.STDOUT)
            try:
                wait_listening(self.port, self.proc)
                return self
            except RuntimeError:
                if time.monotonic() > t_end:
                    raise
                time.sleep(0.5)

    def kill(self):
        """The broker dies at once (SIGKILL): no goodbye to any client."""
        self.thaw()
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    def restart(self):
        return self.start()

    def freeze(self):
        """SIGSTOP: connections stay open, nothing answers."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self):
        if self.proc:
            self.thaw()
            terminate(self.proc)
        if self.log:
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def listener(port, backlog):
    """A listening TCP socket on 127.0.0.1:port (reusable at once)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(backlog)
    return s


class SilentServer:
    """Listens on 127.0.0.1:port, accepts every connection and never answers
    (a broker hung in its accept loop, a captive firewall)."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.accepted = []
        self._sock = None
        self._thread = None

    def start(self):
        self._sock = listener(self.port, 16)
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        return self

    def _accept(self):
        while True:
            try:
                c, _ = self._sock.accept()
            except OSError:
                return
            self.accepted.append(c)

    def stop(self):
        if self._sock:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
            self._sock = None
        for c in self.accepted:
            c.close()
        if self._thread:
            self._thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class CutLink:
    """A TCP relay on 127.0.0.1 in front of `target` (a port) that counts
    the bytes of its connections, both ways, and cuts the link (closes both
    sides, as a WiFi drop looks to each end) once `cut_after` of them have
    passed (None: never). .passed: bytes relayed so far, over all
    connections (.up of them from the client, .down to it); .cut: whether
    it cut."""

    def __init__(self, target, cut_after=None):
        self.target, self.cut_after = target, cut_after
        self.port = free_port()
        self.passed = self.up = self.down = 0
        self.cut = False
        self._lock = threading.Lock()
        self._socks = []
        self._ls = None

    def start(self):
        self._ls = listener(self.port, 4)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self):
        while True:
            try:
                c, _ = self._ls.accept()
            except OSError:
                return
            if self.cut:
                c.close()
                continue
            u = socket.create_connection(("127.0.0.1", self.target))
            self._socks += [c, u]
            threading.Thread(target=self._pump, args=(c, u, "up"), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, "down"), daemon=True).start()

    def _pump(self, a, b, way):
        while True:
            try:
                data = a.recv(4096)
            except OSError:
                data = b""
            with self._lock:
                if self.cut_after is not None and data:
                    data = data[:max(0, self.cut_after - self.passed)]
                self.passed += len(data)
                setattr(self, way, getattr(self, way) + len(data))
                if data:
                    try:
                        b.sendall(data)
                    except OSError:
                        data = b""
                if not data or (self.cut_after is not None and self.passed >= self.cut_after):
                    if self.cut_after is not None and self.passed >= self.cut_after:
                        self.cut = True
                    for s in (a, b):
                        try:
                            s.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                    return

    def stop(self):
        if self._ls:
            self._ls.close()
        for s in self._socks:
            try:
                s.close()
            except OSError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class FlakyHttp:
    """A receiver for http.target "receiver" on 127.0.0.1:port whose mode
    the test switches: "ok" (takes the batch: 201), "500" (answers 500 and
    keeps nothing), or down (stop(): nothing listens on the port); in any
    mode a batch holding a reading in `refuse` ((boot, seq)) is a 400. With an
    upstream (the reference receiver's URL), "ok" passes each request on and
    answers what the receiver answered: the node meets the real receiver,
    and the test sees every batch it took, duplicates included.
    batches: every body taken (2xx) in "ok" mode; records(): their readings."""

    def __init__(self, api_key, port=None, upstream=None):
        self.api_key = api_key
        self.upstream = upstream
        self.port = port or free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.mode = "ok"
        self.batches = []
        self.refused = 0
        # (boot, seq) of readings refused for good: a batch holding one is a
        # 400 with a reason, as the reference receiver answers a bad record
        self.refuse = set()
        self.refused_for_good = 0
        self.bad = []  # requests that did not follow the contract
        self._server = None
        self._lock = threading.Lock()

    def start(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                code = outer._take(self.path, self.headers, body)
                answer = b'{"error":"readings: refused by the test"}' if code == 400 else b"{}"
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        t_end = time.monotonic() + 15
        while True:
            try:
                self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
                break
            except OSError:
                if time.monotonic() > t_end:
                    raise
                time.sleep(0.3)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        return self

    def _take(self, path, headers, body):
        with self._lock:
            if path != "/api/readings" or headers.get("X-API-Key") != self.api_key:
                self.bad.append((path, dict(headers), body[:200]))
                return 404 if path != "/api/readings" else 401
            if self.mode == "500":
                self.refused += 1
                return 500
            try:
                batch = json.loads(body)
                assert isinstance(batch["readings"], list) and batch["node"]
            except (ValueError, KeyError, TypeError, AssertionError):
                self.bad.append((path, dict(headers), body[:200]))
                return 400
            if any((r.get("boot"), r.get("seq")) in self.refuse for r in batch["readings"]):
                self.refused_for_good += 1
                return 400
            code = 201
            if self.upstream:
                import urllib.error
                import urllib.request
                req = urllib.request.Request(self.upstream + path, data=body, method="POST",
                                             headers={"X-API-Key": self.api_key, "Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(req, timeout=10) as r:
                        code = r.status
                except urllib.error.HTTPError as e:
                    code = e.code
                except OSError:
                    code = 502
            if 200 <= code < 300:
                self.batches.append(batch)
            return code

    def records(self):
        with self._lock:
            return [r for b in self.batches for r in b["readings"]]

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()



# -- power cuts while the queue is written -----------------------------------
# Runs in the VM on the board's lib/ with the flash folder as its cwd: opens
# the queue and lists it ("O" + its records), then appends and acknowledges
# in a loop until it is killed, saying what it attempts and what completed.
# Records are "<id>:<filler made from the id>", so the host can tell an
# intact record from a torn or mixed one. Ids go up by one across trials.
QUEUE_SCRIPT = """
from upynode.backlog import Backlog
MAX, NEXT, PUTS, POPS = %d, %d, %d, %d
def rec(i):
    return ("%%d:" %% i) + ("%%d" %% (i * 7919)) * (1 + i %% 5)
b = Backlog("t", MAX, lambda s: print("L " + s))
print("O " + " ".join(r.decode() for r in b.peek(len(b))))
i = NEXT
while True:
    for _ in range(PUTS):
        print("P %%d" %% i)
        b.put(rec(i).encode())
        print("p %%d" %% i)
        i += 1
    if POPS:
        got = b.peek(POPS)
        ids = " ".join(r.decode().split(":")[0] for r in got)
        print("Q " + ids)
        b.pop(len(got))
        print("q " + ids)
    if not PUTS and not len(b):
        print("E")
        break
"""


def queue_record_ok(text):
    """The id of an intact trial record, else None."""
    head, _, body = text.partition(":")
    if not head.isdigit():
        return None
    i = int(head)
    return i if body == str(i * 7919) * (1 + i % 5) else None


def queue_power_cuts(lib_dir, flash_dir, trials=200, seed=7, max_bytes=1024, heapsize="85K"):
    """SIGKILL the queue's writer at random points, `trials` times, each run
    restarting on the same flash folder; then drain the queue. Returns
    {"produced", "delivered", "dropped", "torn", "problems", "kills_after_open"}:
    produced {(1, id): record}, delivered [record] (duplicates included),
    dropped: records a full queue dropped (and said so) that never got out,
    torn: trials whose record being written did not survive (the power cut
    took it), problems: what broke the queue's promises."""
    import random
    from upynode_cli.project import micropython
    rnd = random.Random(seed)
    env = dict(os.environ)
    env["MICROPYPATH"] = str(lib_dir)
    env.pop("UPYNODE_VBOARD", None)
    os.makedirs(str(flash_dir), exist_ok=True)
    attempted = []        # every id the writer started to put
    delivered = []        # ids acknowledged (sent), in order, repeats included
    dropped = set()       # ids a full queue dropped
    live = []             # what the queue holds, as far as the host knows
    problems = []
    torn = kills_after_open = 0
    next_id = 1
    t_open = 0.1  # how long the VM takes to open the queue, learnt as it goes
    prev_inflight = None  # the id being written when the last trial was killed
    prev_popping = ()     # the ids being acknowledged then

    def run(puts, pops, kill):
        # kill: None (let it finish), ("open", s): s after the queue opened,
        # ("start", s): s after the VM started (while it opens the queue)
        argv = [micropython(), "-X", "heapsize=" + heapsize, "-c", QUEUE_SCRIPT % (max_bytes, next_id, puts, pops)]
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, cwd=str(flash_dir), env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        lines = []
        opened = threading.Event()

        def read():
            for ln in proc.stdout:
                if ln.startswith(b"O"):
                    opened.t = time.monotonic() - t0
                    opened.set()
                lines.append(ln.decode("utf-8", "replace").rstrip("\n"))
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        if kill is None:
            proc.wait(60)
        else:
            if kill[0] == "open":
                opened.wait(20)
            time.sleep(kill[1])
            proc.kill()
            proc.wait()
        reader.join(10)
        return proc.returncode, lines, getattr(opened, "t", None)

    for trial in range(trials + 1):
        final = trial == trials
        puts, pops = (0, 8) if final else (rnd.randint(1, 4), rnd.choice((0, 1, 2, 3, 5)))
        if final:
            kill = None
        elif rnd.random() < 0.15:  # during start-up and the queue's open (and its repair)
            kill = ("start", rnd.uniform(0.5 * t_open, 1.1 * t_open))
        else:  # while appending, acknowledging, compacting
            kill = ("open", rnd.uniform(0, 0.06))
        rc, lines, took = run(puts, pops, kill)
        if os.environ.get("UPYNODE_FAULTS_TRACE"):
            print("trial %d: puts %d pops %d kill %s rc %s" % (trial, puts, pops, kill, rc), *lines, sep="\n  ")
        if not final and rc != -signal.SIGKILL:
            problems.append("trial %d: the writer exited by itself (status %s): %s" % (trial, rc, " | ".join(lines[-5:])))
            break
        if final and (rc != 0 or "E" not in lines):
            problems.append("draining: status %s: %s" % (rc, " | ".join(lines[-5:])))
        inflight = None
        popping = ()
        opened = False
        for ln in lines:
            kind, _, rest = ln.partition(" ")
            if kind == "O":
                opened = True
                if took:
                    t_open = 0.8 * t_open + 0.2 * took
                got = rest.split()
                ids = [queue_record_ok(r) for r in got]
                if None in ids:
                    problems.append("trial %d: corrupt record(s) at open: %s" % (trial, [r for r, i in zip(got, ids) if i is None][:3]))
                    ids = [i for i in ids if i is not None]
                if ids != sorted(set(ids)):
                    problems.append("trial %d: queue out of order or repeated: %s" % (trial, ids))
                # acknowledged records whose pop the cut interrupted may be gone or not
                missing = [i for i in live if i not in ids and i not in prev_popping]
                if missing:
                    problems.append("trial %d: lost from the queue: %s" % (trial, missing))
                strange = [i for i in ids if i not in live and i != prev_inflight
                           and i not in dropped and i not in delivered]
                if strange:
                    problems.append("trial %d: records the queue should not hold: %s" % (trial, strange))
                if prev_inflight is not None and prev_inflight not in ids:
                    torn += 1
                live = ids
            elif kind == "P":
                inflight = int(rest)
                attempted.append(inflight)
            elif kind == "p":
                live.append(int(rest))
                inflight = None
            elif kind == "L":
                m = DROP_LINE.match(rest)
                if m:
                    n = int(m.group(2))
                    dropped.update(live[:n])
                    live = live[n:]
                elif "torn" not in rest:
                    problems.append("trial %d: the queue said: %s" % (trial, rest))
            elif kind == "Q":
                ids = [int(x) for x in rest.split()]
                if ids != live[:len(ids)]:
                    problems.append("trial %d: peek gave %s, not the oldest %s" % (trial, ids, live[:len(ids)]))
                delivered.extend(ids)
                popping = ids
            elif kind == "q":
                live = live[len(rest.split()):]
                popping = ()
            elif kind != "E" and ln.strip():
                problems.append("trial %d: %s" % (trial, ln))
        if opened and not final:
            kills_after_open += 1
        if opened:  # else it was cut before the queue opened: nothing changed
            prev_inflight, prev_popping = inflight, popping
        if attempted:
            next_id = attempted[-1] + 1
    if live:
        problems.append("records left after draining: %s" % live[:20])
    return {"produced": {(1, i): {"boot": 1, "seq": i} for i in attempted},
            "delivered": [{"boot": 1, "seq": i} for i in delivered],
            "dropped": len(dropped - set(delivered)), "torn": torn, "problems": problems,
            "kills_after_open": kills_after_open}

if __name__ == "__main__":
    sys.exit(main())
