"""make bench (upynode-bench): what the firmware costs, beside the 2016
tutorial's MQTT publisher, all measured in one run; one table, and the same
figures in build/bench.json to compare across commits.

Four programs on the same virtual board, precompiled the same way:
- tutorial: the 2016 tutorial's publisher (TUTORIAL_* below): reads ADC(0)
  and publishes the raw value to home/esp8266_<id> with umqtt.simple every
  cycle. It publishes with QoS 1 (the tutorial used QoS 0) so that both
  programs wait for the broker's PUBACK and row 6 times the same thing;
- minimal: the same boot.py and connection, then one JSON reading per
  cycle, {"seq": n, "light": adc.read()}, at QoS 1 (MINIMAL_*: issue 18);
- node: the firmware as a user configures it: MQTT with Home Assistant
  discovery, ADC + MCP9808 + DHT22, LED heartbeat, the offline queue;
- full: the same plus HTTP to the reference receiver.

Rows:
1. 32-bit heap per stage (boot, loop set-up, first cycle, announce,
   cycles): the bytes kept after each, measured in MicroPython's
   WebAssembly port (heap32.py), less the interpreter and the stand-ins for
   the chip's modules. That port grows its heap instead of collecting while
   code runs, so it shows no peaks: a stage's peak is the smallest -X
   heapsize in which the 64-bit VM gets through it, less the VM's floor,
   scaled by the 64/32-bit ratio of the objects the loop keeps (est.).
   With lib/ in ROMFS (deploy --romfs): the 64-bit VM measures each stage
   with the image mounted before its floor (the image, in flash on the
   chip, is not counted); the WebAssembly port has no vfs.VfsRom, so the
   32-bit figures are the .mpy ones less the 64-bit saving, scaled (est.;
   rom_rows). --quick: what the stages keep, no ROMFS peaks.
2. The smallest -X heapsize (1 KB steps) in which the 64-bit VM boots and
   delivers 20 cycles (5 with --quick), every one acknowledged, and so do
   the next 3 sizes up (fragmentation: Bench.min_heap), as deployed
   (.mpy), from source, and from ROMFS (the heap besides what the runner
   adds for the image: runner.romfs_heap_kb).
3. Heap drift: gc.mem_alloc() after gc.collect() at cycle 20 and 2,000.
4. Bytes on the wire per cycle each way and round trips (TCP connects plus
   answers after the node spoke), counted by a loopback proxy in front of
   the broker and the receiver; per deep-sleep wake, first and later.
5. The deployed size: every file, and the five largest modules.
6. Boot to the first PUBACK, median of 5 boots, real time.
7. A redeploy with nothing changed: the bytes `upynode deploy --host`
   sends to the running node over WebREPL and gets back, with lib/ in
   ROMFS and as .mpy files ("redeploy_bytes"; below the table).

Below the table, net of the VM's own floor (interpreter and fakes, which a
chip does not have): each program's need in chip bytes at its worst moment
(chip_need: row 2's minimum heap converted as calibrate() converts the
other way), "headroom_kb" on a chip with 32,768 B free (node and full from
ROMFS, and mqtt_mpy: an MQTT node with ADC + MCP9808 + LED + discovery from
.mpy files, the stock-firmware case, measured for row 2 and row 1's ratio
only), "need_ratio_vs_minimal"; and the loop's interned names from ROMFS,
with the margin to the next pool step ("names": loop_names, pool_steps).
Each node board is booted once first (announce_boot): that boot builds the
announcement (discovery.bin) and restarts, as on the chip.

--modules prints instead what importing each module alone keeps, as
.mpy and from source.

Rows 2-4 run the VM on a clock whose sleeps return at once
(heap32_vm/time.py): 2,000 cycles take seconds, and the firmware still sees
its intervals pass. Row 6 runs on the real clock: it times the firmware's
own waits too (WiFi join, the DHT's power-up).
"""
import argparse
import json
import os
import re
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from upynode_cli import build
from upynode_cli.project import BUILD, REPO, micropython

from . import brokers, heap32, mpyfile, runner
from .receiver_process import ReceiverProcess

SSID, WIFI_PASSWORD = "bench", "bench-wifi"
API_KEY = "bench-api-key"
CONFIGS = ("tutorial", "minimal", "node", "full")
# Programs of a few lines on umqtt.simple (boot.py joins the WiFi), not the firmware.
SIMPLE = ("tutorial", "minimal")
# Measured for row 2 (.mpy) and its headroom only, not in the table: the
# stock-firmware case (no ROMFS partition) of an MQTT node (make_config).
MQTT_MPY = "mqtt_mpy"

# The 2016 tutorial, as its readers typed it (boot.py joins the WiFi).
TUTORIAL_BOOT = """import network
sta = network.WLAN(network.STA_IF)
sta.active(True)
sta.connect(%(ssid)r, %(password)r)
while not sta.isconnected():
    pass
"""
TUTORIAL_SETUP = """import machine, ubinascii, time
from umqtt.simple import MQTTClient
CLIENT_ID = b"esp8266_" + ubinascii.hexlify(machine.unique_id())
TOPIC = b"home/" + CLIENT_ID
adc = machine.ADC(0)
c = MQTTClient(CLIENT_ID, %(host)r, %(port)d)
c.connect()
"""
TUTORIAL_CYCLE = """c.publish(TOPIC, str(adc.read()).encode(), qos=1)
"""
# The minimal publisher (issue 18): the tutorial's boot.py and set-up, then
# one JSON reading per cycle, numbered, at QoS 1. n is the cycle's number.
MINIMAL_SETUP = TUTORIAL_SETUP.replace("import machine, ubinascii, time\n",
                                       "import machine, ubinascii, time, json\n") + "n = 0\n"
MINIMAL_CYCLE = """c.publish(TOPIC, json.dumps({"seq": n, "light": adc.read()}), qos=1)
"""
PROGRAMS = {"tutorial": (TUTORIAL_SETUP, TUTORIAL_CYCLE), "minimal": (MINIMAL_SETUP, MINIMAL_CYCLE)}


def simple_main(kind, host, port, interval, marks=()):
    """main.py of a simple program (SIMPLE). marks: cycles after which to
    print the heap in use (row 3); every cycle prints its number, as the
    node's console does."""
    setup, body = PROGRAMS[kind]
    if marks:
        body += ("print('%s: cycle', n)\nif n in %r:\n    import gc\n    gc.collect()\n"
                 "    print('bench: cycle %%d alloc %%d' %% (n, gc.mem_alloc()))\n" % (kind, tuple(marks)))
    loop = "n = 0\nwhile True:\n    n += 1\n" + "".join("    " + line + "\n" for line in body.splitlines())
    return setup % {"host": host, "port": port} + loop + "    time.sleep(%d)\n" % interval


def tutorial_main(host, port, interval, marks=()):
    return simple_main("tutorial", host, port, interval, marks)


def node_config(kind, mqtt_port, http_url="", interval=2, sleep="none"):
    cfg = {"wifi": {"ssid": SSID, "password": WIFI_PASSWORD},
           "webrepl": {"password": "bench"},
           "interval_s": interval,
           "sensors": [{"type": "adc", "quantity": "light"}, {"type": "mcp9808"},
                       {"type": "dht22", "prefix": "room_"}],
           "led": {"mode": "heartbeat"},
           "mqtt": {"host": "127.0.0.1", "port": mqtt_port}}
    if sleep != "none":
        cfg["sleep"] = sleep
    if kind == MQTT_MPY:  # no DHT, no HTTP: what stock firmware should run from .mpy files
        cfg["sensors"] = cfg["sensors"][:2]
    if kind == "full":
        cfg["transports"] = ["mqtt", "http"]
        cfg["http"] = {"target": "receiver", "url": http_url, "api_key": API_KEY}
    return cfg


# -- the boards --------------------------------------------------------------

def export(rev, dest):
    """boot.py, main.py, update.py and lib/ as committed at rev, into dest:
    others' uncommitted work in the checkout is not measured as that commit."""
    names = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, "--", "lib", *build.TOP],
                           cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for n in names:
        data = subprocess.run(["git", "show", "%s:%s" % (rev, n)], cwd=REPO, capture_output=True,
                              check=True).stdout
        os.makedirs(os.path.dirname(os.path.join(dest, n)) or dest, exist_ok=True)
        with open(os.path.join(dest, n), "wb") as f:
            f.write(data)


def build_from(tree, out, source):
    # upynode build, on the tree given instead of the checkout's lib/; the
    # top-level files it has (update.py is not in commits before 601f6d0)
    from pathlib import Path
    saved = build.REPO, build.LIB, build.TOP
    build.REPO, build.LIB = Path(tree), Path(tree) / "lib"
    build.TOP = tuple(n for n in build.TOP if os.path.exists(os.path.join(tree, n)))
    try:
        build.build(out, source=source)
    finally:
        build.REPO, build.LIB, build.TOP = saved


def clock_shim(d):
    """d, holding the bench's clock (heap32_vm/time.py) as time.mpy: put
    first on MICROPYPATH, the firmware's sleeps return at once."""
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "time.mpy"), "wb") as f:
        f.write(heap32.clock_mpy(d))
    os.remove(os.path.join(d, "time.py"))
    return d


class Boards:
    """Board folders built once: the node's as deployed (.mpy) and from
    source, from the commit rev (None: the checkout as it is); the
    tutorial's take umqtt.simple from them."""

    def __init__(self, root, rev="HEAD"):
        self.root = root
        self.node = {}
        tree = REPO
        if rev:
            tree = os.path.join(root, "tree")
            export(rev, tree)
        for how in ("mpy", "py"):
            d = os.path.join(root, "node-" + how)
            build_from(tree, d, how == "py")
            self.node[how] = d
        self.shim = clock_shim(os.path.join(root, "shim"))  # the clock, first on MICROPYPATH

    def make(self, kind, how, cfg_or_port, dest):
        """A fresh board in dest: the node with its config, or the tutorial
        (boot.py, main.py, umqtt.simple) publishing to the port given."""
        rom = how == "rom"  # the .mpy build, its lib/ in the ROMFS partition
        src = self.node["mpy" if rom else how]
        if kind in SIMPLE:
            os.makedirs(os.path.join(dest, "lib"))
            shutil.copytree(os.path.join(src, "lib", "umqtt"), os.path.join(dest, "lib", "umqtt"))
            port, marks = cfg_or_port
            with open(os.path.join(dest, "boot.py"), "w") as f:
                f.write(TUTORIAL_BOOT % {"ssid": SSID, "password": WIFI_PASSWORD})
            with open(os.path.join(dest, "main.py"), "w") as f:
                f.write(simple_main(kind, "127.0.0.1", port, 2, marks))
        else:
            shutil.copytree(src, dest)
            runner.check_loopback(cfg_or_port)
            with open(os.path.join(dest, "config.json"), "w") as f:
                json.dump(cfg_or_port, f)
            with open(os.path.join(dest, "config.ok"), "w") as f:  # as `upynode deploy --config` leaves it
                f.write(heap32.checked_entry(dest, cfg_or_port))
        if rom:
            rom_board(dest, dest + ".state")
        if kind not in SIMPLE:
            announce_boot(self.shim, dest)
        return dest


# What the first boot after `upynode deploy --config` writes before it
# restarts: the announcement (startup.announcement) and the reset cause.
PREPARED = ("discovery.bin", "discovery.fp", "reset.why")


def announce_boot(shim, board, heap="256K", state=None):
    """The board's first boot, in a large heap: a boot that finds the
    announcement to Home Assistant missing (or stale) builds it
    (discovery.bin) and restarts (since 6c9703e). The chip does that once
    per config change; every figure here is of the boots after it, whose
    loop streams the file. -> the files that boot wrote ({name: bytes})."""
    state = state or board + ".state"
    os.makedirs(state, exist_ok=True)
    if not os.path.exists(os.path.join(state, "world.json")):  # a world of its own (tests) is kept
        world = {"aps": {SSID: {"password": WIFI_PASSWORD}}}
        if os.path.exists(os.path.join(state, runner.ROMFS_FILE)):
            world["romfs_kb"] = runner.ROMFS_KB
        with open(os.path.join(state, "world.json"), "w") as f:
            json.dump(world, f)
    argv, env = runner.vm_argv(board, heap, state, boot=False, rom_stand_in=False)
    if shim:
        env["MICROPYPATH"] = shim + os.pathsep + env["MICROPYPATH"]
    before = set(os.listdir(board))
    r = subprocess.run(argv + ["-c", runner.rom_boot_code(state) + "import _vboot; _vboot.run(('boot.py',))"],
                       cwd=board, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    out = {}
    for n in sorted(set(os.listdir(board)) - before):
        if n in PREPARED:
            with open(os.path.join(board, n), "rb") as f:
                out[n] = f.read()
    if r.returncode not in (0, runner.RESET_EXIT):
        raise RuntimeError("bench: the board's first boot failed (%d): %s"
                           % (r.returncode, r.stdout.decode("utf-8", "replace")[-500:]))
    return out


def rom_board(board, state):
    """Move the board's lib/ into the ROMFS partition of its state folder,
    as `upynode deploy --romfs` lays it out (runner: ROMFS_KB); the
    image's size in bytes."""
    from upynode_cli.cmd_deploy import local_files
    from upynode_cli.romfs import build_image

    image = build_image(local_files(board))
    runner.write_romfs(state, image)
    shutil.rmtree(os.path.join(board, "lib"))
    return len(image)


def deployed_size(board):
    files = {}
    for dirpath, dirnames, names in os.walk(board):
        for n in names:
            p = os.path.join(dirpath, n)
            if n.endswith((".py", ".mpy")):
                files[os.path.relpath(p, board)] = os.path.getsize(p)
    largest = sorted(files.items(), key=lambda kv: -kv[1])[:5]
    return {"total": sum(files.values()), "files": len(files), "largest": largest}


# -- the wire ------------------------------------------------------------------

class Proxy:
    """A TCP proxy on 127.0.0.1 in front of a sink. Counts bytes each way,
    TCP connects, and turns (the sink sending after the node spoke: with the
    connects, the round trips). marks: the counters as each cycle began:
    with mqtt_topic, at each PUBLISH to a topic that matches; else at each
    new connection. Cycle k is from mark k-1 to mark k; the first one
    also carries everything before (connect, subscribe, announce). first_puback: monotonic time of the
    sink's first PUBACK."""

    def __init__(self, target_port, mqtt_topic=None):
        self.target = target_port
        self.topic = re.compile(mqtt_topic) if mqtt_topic else None
        self.up = self.down = self.conns = self.turns = self.pubacks = 0
        self.marks = []
        self.first_puback = None
        self.lock = threading.Lock()
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.port = self.srv.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def counters(self):
        with self.lock:
            return (self.up, self.down, self.conns, self.turns)

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            try:
                s = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                c.close()
                continue
            for sock in (c, s):  # the proxy adds no delay of its own
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                if not self.topic:
                    self.marks.append((self.up, self.down, self.conns, self.turns))
                self.conns += 1
            threading.Thread(target=self._pipe, args=(c, s), daemon=True).start()

    def _pipe(self, c, s):
        last = None
        bufs = {c: b"", s: b""}
        try:
            while not self.closed:
                r, _, _ = select.select([c, s], [], [], 0.5)
                for sock in r:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is c and hasattr(socket, "TCP_QUICKACK"):
                        # Linux delays an ACK up to 40 ms; a client that writes
                        # a packet in pieces with Nagle on (umqtt.simple
                        # does) would wait that long per packet on loopback
                        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                    (s if sock is c else c).sendall(data)
                    with self.lock:
                        if sock is c:
                            self.up += len(data)
                        else:
                            self.down += len(data)
                            if last is c:
                                self.turns += 1
                        last = sock
                        if self.topic:
                            bufs[sock] = self._packets(bufs[sock] + data, sock is c)
        except OSError:
            pass
        finally:
            c.close()
            s.close()

    def _packets(self, buf, upstream):
        # Whole MQTT packets off the front of buf; the rest is kept.
        while len(buf) >= 2:
            n, shift, i = 0, 0, 1
            while True:
                if i >= len(buf):
                    return buf
                n |= (buf[i] & 0x7F) << shift
                shift += 7
                i += 1
                if not buf[i - 1] & 0x80:
                    break
            if len(buf) < i + n:
                return buf
            kind = buf[0] >> 4
            if upstream and kind == 3:
                tlen = buf[i] << 8 | buf[i + 1]
                topic = buf[i + 2:i + 2 + tlen].decode("utf-8", "replace")
                if self.topic.search(topic):  # as the packet began
                    self.marks.append((self.up - len(buf), self.down, self.conns, self.turns))
            elif not upstream and kind == 4:
                self.pubacks += 1
                if self.first_puback is None:
                    self.first_puback = time.monotonic()
            buf = buf[i + n:]
        return buf

    def close(self):
        self.closed = True
        self.srv.close()


def span(marks, a, b):
    """[bytes up, bytes down, round trips] per cycle from mark a to mark b."""
    (u0, d0, c0, t0), (u1, d1, c1, t1) = marks[a], marks[b]
    n = b - a
    return [round((u1 - u0) / n, 1), round((d1 - d0) / n, 1), round((c1 - c0 + t1 - t0) / n, 2)]


# -- the VM --------------------------------------------------------------------

class VM:
    """The unix port booting a board (boot.py, [_bench.py,] main.py), on the
    bench's clock unless real_clock; boots again after a reset or deep sleep
    while boots < max_boots; lines: its console."""

    def __init__(self, boards, board, heap, real_clock=False, pre=None, max_boots=1, on_boot_end=None,
                 stages=0):
        self.board = board
        self.state = board + ".state"
        os.makedirs(self.state, exist_ok=True)
        world = {"aps": {SSID: {"password": WIFI_PASSWORD}}}
        if os.path.exists(os.path.join(self.state, runner.ROMFS_FILE)):  # Boards.make(how="rom")
            world["romfs_kb"] = runner.ROMFS_KB
        with open(os.path.join(self.state, "world.json"), "w") as f:
            json.dump(world, f)
        argv, env = runner.vm_argv(board, heap, self.state, boot=False, rom_stand_in=False)
        if not real_clock:
            env["MICROPYPATH"] = boards.shim + os.pathsep + env["MICROPYPATH"]
        names = ("boot.py", "main.py")
        if pre:
            with open(os.path.join(board, "_bench.py"), "w") as f:
                f.write(pre)
            names = ("boot.py", "_bench.py", "main.py")
        code = VM_STAGES % stages if stages else "import _vboot; _vboot.run(%r)" % (names,)
        # a ROMFS board mounts its image first, before any baseline is taken
        self.argv = argv + ["-c", runner.rom_boot_code(self.state) + code]
        self.env = env
        self.max_boots = max_boots
        self.on_boot_end = on_boot_end
        self.lines = []
        self.exits = []
        self.cond = threading.Condition()
        self.proc = None
        self.stopped = False
        self.t0 = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped and len(self.exits) < self.max_boots:
            if self.t0 is None:
                self.t0 = time.monotonic()
            self.proc = subprocess.Popen(self.argv, cwd=self.board, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for raw in self.proc.stdout:
                with self.cond:
                    self.lines.append(raw.decode("utf-8", "replace").rstrip())
                    self.cond.notify_all()
            rc = self.proc.wait()
            if self.on_boot_end:
                self.on_boot_end(rc)
            with self.cond:
                self.exits.append(rc)
                self.cond.notify_all()
            if rc != runner.RESET_EXIT:
                break
        with self.cond:
            self.stopped = True
            self.cond.notify_all()

    def wait(self, predicate, timeout):
        """predicate(lines) -> True (done), False (failed) or None (not yet):
        its answer; None when the time ran out."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                r = predicate(self.lines)
                if r is not None:
                    return r
                if self.stopped:
                    return predicate(self.lines) or False
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 0.5))

    def stop(self):
        self.stopped = True
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        self.thread.join(10)


CYCLE_LINE = re.compile(r"^(?:\d+\.)?(\d+): \{.*\} -> (.*)$")
# Row 2: a heap counts when it and the sizes up to STABLE_KB - 1 above it
# all deliver (see Bench.min_heap).
STABLE_KB = 4
FAILED = re.compile(r"out of memory|MemoryError|not enough memory|Traceback|restarting in")
OUT_OF_MEMORY = re.compile(r"out of memory|MemoryError|not enough memory")


def node_progress(n, sinks=1):
    """A predicate: True once cycles 1..n were each acknowledged by every
    sink, False at the first sign of trouble."""
    def check(lines):
        done = set()
        for line in lines:
            if FAILED.search(line):
                return False
            m = CYCLE_LINE.match(line)
            if m:
                words = m.group(2).split(", ")
                if len(words) != sinks or not all(w.endswith(" sent") for w in words):
                    return False
                done.add(int(m.group(1)))
        return True if set(range(1, n + 1)) <= done else None
    return check


def tutorial_progress(proxy, n):
    def check(lines):
        if any(FAILED.search(line) for line in lines):
            return False
        return True if proxy.pubacks >= n else None
    return check


class Sinks:
    """The broker and the receiver, for the whole run."""

    def __init__(self, tmp):
        self.broker = brokers.Broker().start()
        self.rx = ReceiverProcess(os.path.join(tmp, "receiver.sqlite3"), API_KEY).start()
        self.rx_port = int(self.rx.url.rsplit(":", 1)[1])

    def close(self):
        self.rx.stop()
        self.broker.stop()


class Bench:
    def __init__(self, quick=False, log=print, rev="HEAD"):
        self.quick = quick
        self.log = log
        self.tmp = tempfile.mkdtemp(prefix="upynode-bench-")
        self.boards = Boards(os.path.join(self.tmp, "boards"), rev)
        self.sinks = Sinks(self.tmp)
        self.runs = 0
        self.cycles = 5 if quick else 20
        self.marks = (5, 50) if quick else (20, 2000)

    def close(self):
        self.sinks.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _start(self, kind, how, heap, marks=(), real_clock=False, sleep="none", max_boots=1, on_boot_end=None):
        """(vm, mqtt proxy, http proxy or None) for a fresh board."""
        self.runs += 1
        topic = r"^home/esp8266_[0-9a-f]+$" if kind in SIMPLE else r"/state$"
        mp = Proxy(self.sinks.broker.port, topic)
        hp = Proxy(self.sinks.rx_port) if kind == "full" else None
        dest = os.path.join(self.tmp, "run%d" % self.runs)
        if kind in SIMPLE:
            self.boards.make(kind, how, (mp.port, marks), dest)
            pre = None
        else:
            url = "http://127.0.0.1:%d" % hp.port if hp else ""
            interval = 10 if sleep == "deep" else 2
            self.boards.make(kind, how, node_config(kind, mp.port, url, interval, sleep), dest)
            pre = DRIFT_PRE % (tuple(marks),) if marks else None
        vm = VM(self.boards, dest, heap, real_clock, pre, max_boots, on_boot_end)
        return vm, mp, hp

    def _finish(self, vm, *proxies):
        vm.stop()
        for p in proxies:
            if p:
                p.close()
        shutil.rmtree(vm.board, ignore_errors=True)
        shutil.rmtree(vm.state, ignore_errors=True)

    def delivers(self, kind, how, heap_kb, n, tries=3):
        """Whether the program boots and delivers n cycles in heap_kb. Only
        running out of memory is an answer at once: a reading not
        acknowledged in time (this machine is shared) is tried again."""
        for _ in range(tries):
            vm, mp, hp = self._start(kind, how, "%dK" % heap_kb)
            try:
                check = tutorial_progress(mp, n) if kind in SIMPLE else node_progress(n, 2 if hp else 1)
                if vm.wait(check, 60) is True:
                    return True
                if any(OUT_OF_MEMORY.search(line) for line in vm.lines):
                    return False
            finally:
                self._finish(vm, mp, hp)
        return False

    def min_heap(self, kind, how, guess=None, lo=8, hi=256):
        """Row 2: the smallest heap in KB that delivers every cycle, and so
        do the next STABLE_KB - 1 sizes up. Near its limit the heap fails
        on fragmentation, and not monotonically in its size (the node of
        2026-11-26 passed at 75K and 77K, failed at 76K, every time): a
        bisection alone lands anywhere in that band. guess (KB, e.g. from
        row 1's stages) narrows the search when it holds: it must fail
        2 KB below and pass 8 KB above."""
        if guess and lo < guess - 2 < guess + 8 < hi:
            if not self.delivers(kind, how, guess - 2, self.cycles):
                lo = guess - 2
                if self.delivers(kind, how, guess + 8, self.cycles):
                    hi = guess + 8
        if hi == 256 and not self.delivers(kind, how, hi, self.cycles):
            return None
        top = hi  # delivers
        while True:
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if self.delivers(kind, how, mid, self.cycles):
                    hi = mid
                else:
                    lo = mid
            bad = next((hi + k for k in range(1, STABLE_KB) if hi + k < top
                        and not self.delivers(kind, how, hi + k, self.cycles)), None)
            if bad is None:
                return hi
            lo, hi = bad, top

    def min_heap_rom(self, kind, mpy_kb):
        """Row 2 with lib/ in ROMFS: the heap the runner gives the board
        besides the image (runner.romfs_heap_kb: the image and the stand-in
        for the chip's vfs.rom_ioctl, which the chip keeps in flash). It
        needs no more than the .mpy board, give or take fragmentation:
        searched below that first."""
        hi = (mpy_kb or 252) + 4
        if hi < 256 and self.delivers(kind, "rom", hi, self.cycles):
            return self.min_heap(kind, "rom", lo=8, hi=hi)
        return self.min_heap(kind, "rom")

    def rom_image(self, kind):
        """The ROMFS image's size and what the runner adds to the heap for it."""
        self.runs += 1
        board = os.path.join(self.tmp, "run%d" % self.runs)
        self.boards.make(kind, "rom", (1883, ()) if kind in SIMPLE else node_config(kind, 1883, "http://127.0.0.1:1"),
                         board)
        state = board + ".state"
        n = runner.romfs_image_len(state)
        added = runner.romfs_heap_kb(state)
        shutil.rmtree(board, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)
        return {"image_bytes": n, "heap_added_kb": added}

    def drift_and_wire(self, kind, heap="256K"):
        """Rows 3 and 4: heap in use at the marks; bytes per cycle."""
        vm, mp, hp = self._start(kind, "mpy", heap, self.marks)
        last = self.marks[-1]
        rx = re.compile(r"^bench: cycle (\d+) alloc (\d+)")
        try:
            def check(lines):
                if any(FAILED.search(line) for line in lines):
                    return False
                return True if any(line.startswith("bench: cycle %d " % last) for line in lines) else None
            ok = vm.wait(check, 600)
            alloc = {}
            for line in vm.lines:
                m = rx.match(line)
                if m:
                    alloc[int(m.group(1))] = int(m.group(2))
            out = {"drift": {str(k): alloc.get(k) for k in self.marks}, "ok": bool(ok)}
            if not ok:
                out["error"] = "\n".join(vm.lines[-5:])
            a, b = (2, self.marks[-1] - 2)
            wire = {}
            for name, p in (("mqtt", mp), ("http", hp)):
                if p is None:
                    continue
                if len(p.marks) > b:
                    m = p.marks[1]
                    wire[name] = {"first": [m[0], m[1], m[2] + m[3]], "cycle": span(p.marks, a, b)}
            out["wire"] = wire
            return out
        finally:
            self._finish(vm, mp, hp)

    def wakes(self, kind, wakes=4):
        """Row 4, deep sleep: bytes and round trips per wake (first, later)."""
        snaps = []
        holder = {}

        def on_boot_end(rc):
            snaps.append([p.counters() if p else (0, 0, 0, 0) for p in holder["proxies"]])

        vm = None
        try:
            vm, mp, hp = self._start(kind, "mpy", "256K", sleep="deep", max_boots=wakes,
                                     on_boot_end=on_boot_end)
            holder["proxies"] = (mp, hp)
            def check(lines):
                if len(vm.exits) >= wakes:
                    return True
                if vm.exits and vm.exits[-1] != runner.RESET_EXIT:
                    return False
                # readings go on and on without a sleep: the loop does not sleep
                return False if sum(1 for x in lines if CYCLE_LINE.match(x)) > 5 * wakes else None
            if not vm.wait(check, 120):
                return None
        finally:
            if vm:
                self._finish(vm, mp, hp)
        if len(snaps) < 2:
            return None
        per = []
        prev = [(0, 0, 0, 0)] * len(snaps[0])
        for s in snaps:
            up = sum(c[0] - p[0] for c, p in zip(s, prev))
            down = sum(c[1] - p[1] for c, p in zip(s, prev))
            rt = sum(c[2] - p[2] + c[3] - p[3] for c, p in zip(s, prev))
            per.append((up, down, rt))
            prev = s
        later = per[1:]
        return {"first": list(per[0]),
                "later": [round(statistics.mean(x[i] for x in later), 1) for i in range(3)],
                "wakes": len(per)}

    def names(self, kind):
        """The loop's interned names from ROMFS (loop_names): count and
        margin to the next pool step."""
        self.runs += 1
        dest = os.path.join(self.tmp, "run%d" % self.runs)
        url = "http://127.0.0.1:%d" % self.sinks.rx_port if kind == "full" else ""
        self.boards.make(kind, "rom", node_config(kind, self.sinks.broker.port, url), dest)
        try:
            r = loop_names(dest, shim=self.boards.shim)
        finally:
            shutil.rmtree(dest, ignore_errors=True)
            shutil.rmtree(dest + ".state", ignore_errors=True)
        return {k: r.get(k) for k in ("count", "margin", "next_step", "floor", "error")}

    def boot_to_puback(self, kind, times=5):
        """Row 6: seconds from starting the VM to the first PUBACK, real clock."""
        got = []
        for _ in range(times):
            vm, mp, hp = self._start(kind, "mpy", "256K", real_clock=True)
            try:
                vm.wait(lambda lines: True if mp.first_puback else None, 60)
                if mp.first_puback:
                    got.append(mp.first_puback - vm.t0)
            finally:
                self._finish(vm, mp, hp)
        return round(statistics.median(got), 3) if got else None


def redeploy_bytes(bench):
    """Row 7: the bytes of `upynode deploy --host` with nothing changed
    (issue 19's goal: under 3 KB), counted by a proxy in front of the
    running node's WebREPL: up (host to board), down, for lib/ in ROMFS
    (deploy hashes the partition on the board, not the image's files) and
    as .mpy files (it hashes each file). The second of two deploys in a
    row is counted: the first may find the board's files as the bench left
    them. A generous heap: bytes, not memory, are measured here."""
    import shutil

    from .services import free_port
    exe = os.path.join(os.path.dirname(sys.executable), "upynode")  # the venv's console script
    out = {}
    for how, flag in (("rom", "--romfs"), ("mpy", "--files")):
        dest = os.path.join(bench.tmp, "redeploy-" + how)
        bench.boards.make("node", how, node_config("node", bench.sinks.broker.port), dest)
        state = dest + ".state"
        port = free_port()
        vb = runner.VBoard(dest, state, heapsize="256K")
        vb.world(webrepl_port=port)
        env = dict(os.environ, UPYNODE_WEBREPL_PASSWORD="bench")
        try:
            with vb:
                vb.wait_for(r"^\d+\.1: ", timeout=60)
                for i in range(2):
                    proxy = Proxy(port)
                    try:
                        r = subprocess.run([exe, "deploy", "--host", "127.0.0.1:%d" % proxy.port,
                                                                "--build-dir", bench.boards.node["mpy"], flag],
                                           env=env, capture_output=True, text=True, timeout=120,
                                           stdin=subprocess.DEVNULL)
                    finally:
                        proxy.close()
                    if r.returncode:
                        raise RuntimeError("bench: deploy %s failed: %s" % (flag, r.stderr[-500:]))
                up, down = proxy.counters()[:2]
                out[how] = {"up": up, "down": down, "sent": re.findall(r"upynode: (\d+) sent", r.stderr)[-1]}
        finally:
            shutil.rmtree(dest, ignore_errors=True)
            shutil.rmtree(state, ignore_errors=True)
    return out


# Row 3, the node: the heap in use after the given cycles, from a wrapper
# around Node.cycle (run between boot.py and main.py; node is imported a
# little earlier than main.py imports it, which rows 2 and 6 do not do).
DRIFT_PRE = """import gc
from upynode import node as _node
_cycle = _node.Node.cycle
def _counted(self, seq):
    r = _cycle(self, seq)
    if seq in %r:
        gc.collect()
        print('bench: cycle %%d alloc %%d' %% (seq, gc.mem_alloc()))
    return r
_node.Node.cycle = _counted
del _node
"""


# -- row 1: the 32-bit heap -------------------------------------------------------

NODE_STAGES = [
    # boot.py survives its own failures (into setup mode): that is no fit
    ("boot", "exec(open('boot.py').read())\nif not startup.cfg:\n    raise RuntimeError(startup.reason)\n"),
    # main.py, then what node.run() does before its loop
    ("loop set-up", "from upynode import startup\ncfg = startup.cfg\n"
                    "if not cfg:\n    raise RuntimeError(startup.reason)\nstartup.release()\ndel startup\n"
                    "import gc\ngc.collect()\nfrom upynode import node\n_n = node.Node(cfg)\n"
                    # node.run() forgets the builder as soon as the node is built
                    "import upynode\nif hasattr(upynode, 'release'):\n    upynode.release('assemble')\n"
                    # connects and announces (node.run, since 2026-11-25)
                    "if hasattr(_n, 'start'):\n    _n.start()\n"),
    ("first cycle", "_n.cycle(1)\n"),  # connects and announces, unless loop set-up did
    # Home Assistant restarted: every entity again, from the poll between cycles
    ("announce", "for _t in _n.txs:\n    if hasattr(_t, 'announce'):\n        _t.announce = 2\n"
                 "    _t.poll()\n"),
    ("cycle 2", "_n.cycle(2)\nfor _t in _n.txs:\n    _t.poll()\n"),
    ("cycle 3", "_n.cycle(3)\nfor _t in _n.txs:\n    _t.poll()\n"),
]
def simple_stages(kind, mqtt_port=1883):
    """Row 1's stages of a simple program (SIMPLE)."""
    setup, cycle = PROGRAMS[kind]
    cycle = "n += 1\n" + cycle if kind == "minimal" else cycle
    return [("boot", "exec(open('boot.py').read())\n"),
            ("loop set-up", setup % {"host": "127.0.0.1", "port": mqtt_port}),
            ("first cycle", cycle), ("cycle 2", cycle), ("cycle 3", cycle)]


TUTORIAL_STAGES = simple_stages("tutorial")


# The VM's stages start as its boot does (runner.boot_line): the fakes are
# imported by the firmware as it needs them, not before boot.py. Importing
# them first changed where MicroPython's qstr table (one block that doubles)
# grows, and boot.py then ran out of memory in 105K where the node boots in
# 97K. Their cost is measured apart (vm_base_and_fakes) and subtracted.
VM_START = ("interpreter", "import _vboot\n_vboot.fs()\n")
# Runs the stages in the unix port, each read from its file (their text
# does not stay in the heap), the heap in use after each: or where it failed.
# As in heap32_vm/run.mjs, two collections before each count.
VM_STAGES = """import gc, micropython
for _i in range(%d):
    try:
        exec(open('_stage%%d.py' %% _i).read())
    except MemoryError:
        print('\\x01stage', _i, 'MemoryError')
        raise SystemExit(3)
    except Exception as _e:
        print('\\x01stage', _i, 'error', repr(_e))
        raise SystemExit(4)
    gc.collect()
    gc.collect()
    micropython.qstr_info()
    print('\\x01stage', _i, gc.mem_alloc())
import sys
print('\\x01modules', ' '.join(sys.modules))
"""


# -- row 1b: the interned-name budget ----------------------------------------

# MicroPython interns the names a program brings (identifiers, short
# strings) in pools; when the last is full, py/qstr.c (qstr_add, v1.28)
# allocates one twice its size, in one block (640 entries, ~4.5 KB on a
# chip, at the 621st name). The pool before the first on the heap is in
# ROM: mp_qstr_const_pool, whose alloc is MICROPY_ALLOC_QSTR_ENTRIES_INIT
# (10), or on a port with frozen modules such as ESP8266_GENERIC
# mp_qstr_frozen_const_pool, alloc min(its length, 10) (tools/mpy-tool.py):
# so the heap's pools hold 20, 40, 80, ... names, on the chip as in the VM.
# pool_steps() reads the steps off the VM itself (n_pool against n_qstr
# from micropython.qstr_info() as names are added one by one; it reports
# only the heap's pools); the chip's steps are the same cumulative counts,
# counted from boot.py: the chip interns no name in its heap before it
# (its firmware's and frozen modules' names are in ROM), where the VM has
# its interpreter's and the fakes' (runner.names_module), which are
# subtracted. The margin is the names the loop can add before the next
# pool: the loop's count after cycle 3 to the next step.
POOL_PROBE = """import micropython
p = 0
for i in range(%d):
    exec('n_%%d = 0' %% i)
    micropython.qstr_info()
"""
POOL_INFO = re.compile(r"n_pool=(\d+), n_qstr=(\d+)")
NAMES_MIN_MARGIN = 40  # issue 18: a change that leaves less fails tests/vm/test_vm_names.py
_steps = []


def pool_steps(upto=2600):
    """The cumulative name counts at which the VM's heap holds one pool
    more ([20, 60, 140, 300, 620, 1260, 2540]): n_qstr when a pool is
    full, i.e. just before n_pool grows (the probe's own few names are
    the first ones counted, as a program's are)."""
    if _steps:
        return list(_steps)
    r = subprocess.run([micropython(), "-X", "heapsize=1M", "-c", POOL_PROBE % upto], capture_output=True,
                       text=True, check=True)
    seen = [tuple(map(int, m)) for m in POOL_INFO.findall(r.stdout)]
    out = []
    for (p0, q0), (p1, q1) in zip(seen, seen[1:]):
        if p1 > p0:
            out.append(q0)
    _steps.extend(out)
    return out


def name_margin(count, steps=None):
    """Names the loop can add before MicroPython allocates the next pool."""
    steps = steps or pool_steps()
    nxt = next((s for s in steps if s >= count), None)
    return None if nxt is None else nxt - count


# The names run starts as VM_START does, and interns the stages' own
# names (_n, _t) and imports time (the bench's clock, or the VM's) before
# the count starts: the chip has neither.
NAMES_START = ("interpreter", "import _vboot, time\n_vboot.fs()\n_n = _t = 0\n")


def loop_names(board, state=None, shim=None, timeout=90):
    """The board (a node's config, its announcement built: announce_boot)
    run through NODE_STAGES in the 64-bit VM at 256K, micropython.qstr_info()
    after each stage: {"floor": n_qstr before boot.py, "stages": {name:
    [n_pool, n_qstr]}, "count": names interned from boot.py to cycle 3,
    "next_step", "margin", "error"}. shim: the bench's clock (Boards.shim)."""
    state = state or board + ".state"
    stages = [NAMES_START] + NODE_STAGES
    for i, (_, code) in enumerate(stages):
        with open(os.path.join(board, "_stage%d.py" % i), "w") as f:
            f.write(code)
    argv, env = runner.vm_argv(board, "256K", state, boot=False, rom_stand_in=False)
    if shim:
        env["MICROPYPATH"] = shim + os.pathsep + env["MICROPYPATH"]
    r = subprocess.run(argv + ["-c", runner.rom_boot_code(state) + VM_STAGES % len(stages)], cwd=board, env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    for i in range(len(stages)):
        os.remove(os.path.join(board, "_stage%d.py" % i))
    out, info, error = {}, None, None
    for line in r.stdout.splitlines():
        m = POOL_INFO.search(line)
        if m:
            info = [int(m.group(1)), int(m.group(2))]
        elif line.startswith("\x01stage"):
            i, word = line.split()[1:3]
            if not word.isdigit():
                error = line[7:]
                break
            out[stages[int(i)][0]] = info
    res = {"stages": out, "error": error or (None if "cycle 3" in out else "exit %d: %s"
                                              % (r.returncode, r.stdout[-300:]))}
    if "cycle 3" in out and "interpreter" in out:
        steps = pool_steps()
        res["floor"] = out["interpreter"][1]
        res["count"] = out["cycle 3"][1] - res["floor"]
        res["next_step"] = next((s for s in steps if s >= res["count"]), None)
        res["margin"] = name_margin(res["count"], steps)
    return res


def stage_lists(kind, mqtt_port):
    """(stages for the 32-bit port, stages for the 64-bit VM): the same
    after their stand-ins' stage."""
    if kind in SIMPLE:
        stages = simple_stages(kind, mqtt_port)
    else:
        stages = NODE_STAGES
    return ([heap32.stand_ins_stage()] + stages, [VM_START] + stages)


class StagePeaks:
    """Row 1 of one program: bytes kept after each stage in both ports, and
    each stage's peak: the smallest -X heapsize in which the 64-bit VM runs
    the stages up to it, scaled to 32 bits by the program's 64/32 ratio of
    the bytes it keeps in its loop (a stage that keeps little says nothing
    about its ratio). The search assumes that a bigger heap never fails
    where a smaller one ran: fragmentation can make that untrue by a KB."""

    def __init__(self, bench, kind, step, how="mpy"):
        self.b, self.kind, self.step, self.how = bench, kind, step, how
        self.cache = {}
        url = "http://127.0.0.1:%d" % bench.sinks.rx_port if kind == "full" else ""
        self.cfg = None if kind in SIMPLE else node_config(kind, bench.sinks.broker.port, url)
        self.wasm_stages, self.vm_stages = stage_lists(kind, bench.sinks.broker.port)

    def vm_run(self, heap):
        """[(bytes in use, of which qstr pools) after each stage that ran]:
        a MemoryError or an error ends it."""
        if heap in self.cache:
            return self.cache[heap]
        b = self.b
        b.runs += 1
        dest = os.path.join(b.tmp, "run%d" % b.runs)
        b.boards.make(self.kind, self.how, (b.sinks.broker.port, ()) if self.kind in SIMPLE else self.cfg, dest)
        for i, (_, code) in enumerate(self.vm_stages):
            with open(os.path.join(dest, "_stage%d.py" % i), "w") as f:
                f.write(code)
        # heap is the VM's whole heap: on a ROMFS board the runner adds the
        # image's share to what it is given, so it is given that much less
        added = runner.romfs_heap_kb(dest + ".state") * 1024 if self.how == "rom" else 0
        vm = VM(b.boards, dest, str(heap - added), stages=len(self.vm_stages))
        vm.wait(lambda lines: None, 60)
        out = []
        qstr = 0
        self.modules = set()
        for line in vm.lines:
            if line.startswith("\x01modules"):
                self.modules = set(line.split()[1:])
            m = re.search(r"n_total_bytes=(\d+)", line)
            if m:
                qstr = int(m.group(1))
            if line.startswith("\x01stage"):
                v = line.split()[2]
                if not v.isdigit():
                    break
                out.append((int(v), qstr))
        b._finish(vm)
        self.cache[heap] = out
        return out

    def measure(self, port, files, hi=256 * 1024, peaks=True):
        """{"stages": [{"name", "kept32", "kept64", "qstr32", "qstr64",
        "peak64", "peak32", "error"}], "stand_ins32", "floor64", "ratio_64_32"}"""
        k32 = heap32.measure(port, files, self.wasm_stages)
        if self.kind not in SIMPLE:
            unsent(self.kind, k32)
        return self.measure_vm(k32, hi, peaks)

    def measure_vm(self, k32, hi=256 * 1024, peaks=True):
        """The 64-bit figures, beside k32 (heap32.measure's, or None). On a
        ROMFS board the image is mounted before the VM's first stage, so
        the floor it is counted from holds it: the figures exclude it."""
        if k32 is None:
            k32 = [{"kept": None, "qstr": None, "error": None, "stand_ins": None}] * len(self.vm_stages)
        big = self.vm_run(hi)
        self.loaded = set(self.modules)  # the modules the whole run loaded (rom_rows)
        base64, qbase64 = big[0] if big else (None, None)
        # the fakes the program imported by its last stage count from the
        # start: until it imports the last of them (dht, ntptime: loop
        # set-up) its figures are low by those
        fakes64, qfakes64 = vm_base_and_fakes(self.b.boards, True, [m for m in FAKES if m in self.modules])[1:]
        floor64 = base64 + fakes64 if big else None
        qfloor64 = qbase64 + qfakes64 if big else None
        rows = []
        lo = 4096
        for i, (name, _) in enumerate(self.vm_stages):
            if i == 0:
                continue
            r = {"name": name, "kept32": k32[i]["kept"], "qstr32": k32[i]["qstr"], "error": k32[i]["error"],
                 "kept64": big[i][0] - floor64 if len(big) > i else None,
                 "qstr64": big[i][1] - qfloor64 if len(big) > i else None, "peak64": None, "peak32": None}
            if r["kept64"] is not None and peaks:
                a, z = max(lo, big[i][0]), hi
                while z - a > self.step:
                    mid = (a + z) // 2 // self.step * self.step
                    if len(self.vm_run(mid)) > i:
                        z = mid
                    else:
                        a = mid
                lo = a
                r["peak64"] = z - floor64
            rows.append(r)
        # The ratio of the objects the loop keeps, without the interned
        # strings (bytes alike in both, and grown a chunk at a time); a
        # peak is scaled by it, its strings carried over as they are.
        last = rows[-1]
        ratio = None
        if last["kept64"] and last["kept32"]:
            ratio = (last["kept64"] - last["qstr64"]) / (last["kept32"] - last["qstr32"])
        for r in rows:
            if ratio and r["peak64"] and r["qstr64"] is not None and r["qstr32"] is not None:
                r["peak32"] = int((r["peak64"] - r["qstr64"]) / ratio + r["qstr32"])
        return {"stand_ins32": k32[0]["stand_ins"], "floor64": floor64, "fakes64": fakes64, "stages": rows,
                "frozen64": frozen_cost(self.b.boards, self.loaded),
                "ratio_64_32": round(ratio, 3) if ratio else None}


def heap32_rows(bench, quick=False):
    """Row 1 for each program; for MQTT_MPY what its stages keep only (its
    64/32-bit ratio and interned strings, for its headroom), no peaks."""
    out = {}
    with heap32.Port() as port:
        stand_ins = heap32.stand_in_files()
        for kind in CONFIGS + (MQTT_MPY,):
            sp = StagePeaks(bench, kind, 2048 if quick else 512)
            files = dict(stand_ins)
            if kind in SIMPLE:
                files["/boot.py"] = (TUTORIAL_BOOT % {"ssid": SSID, "password": WIFI_PASSWORD}).encode()
                files.update(heap32.world_file({SSID: {"password": WIFI_PASSWORD}}))
                with open(os.path.join(bench.boards.node["mpy"], "lib", "umqtt", "simple.mpy"), "rb") as f:
                    files["/lib/umqtt/simple.mpy"] = f.read()
            else:
                # the board as its loop boots: its announcement built (announce_boot)
                board = bench.boards.make(kind, "mpy", sp.cfg, os.path.join(bench.tmp, "wasm-" + kind))
                files.update(heap32.board_files(board, sp.cfg))
                for n in PREPARED:
                    if os.path.exists(os.path.join(board, n)):
                        with open(os.path.join(board, n), "rb") as f:
                            files["/" + n] = f.read()
            out[kind] = sp.measure(port, files, peaks=kind != MQTT_MPY)
    return out


def unsent(kind, stages):
    """Raise if a cycle in the 32-bit port did not reach every sink: its
    figures would hold the queue a failing sink loads (a stand-in that
    answered wrongly once cost the full configuration 3.4 KB that way)."""
    for st in stages:
        for line in st.get("out") or ():
            m = CYCLE_LINE.match(line)
            if m and any(w.split(" ", 1)[-1] != "sent" for w in m.group(2).split(", ")):
                raise RuntimeError("%s, %s, 32-bit port: not delivered: %s" % (kind, st["name"], line[-160:]))


def module_files(lib, modules):
    """The .mpy files in lib/ of these module names (the loaded ones)."""
    out = []
    for m in sorted(modules):
        for p in (m.replace(".", os.sep) + ".mpy", os.path.join(m.replace(".", os.sep), "__init__.mpy")):
            if os.path.exists(os.path.join(lib, p)):
                out.append(os.path.join(lib, p))
                break
    return out


def rom_rows(bench, h, quick=False):
    """Row 1 with lib/ in ROMFS, for each program. MicroPython's WebAssembly
    port (the pyscript build) has no vfs.VfsRom: the 64-bit VM measures
    each stage with the image mounted (before its floor: the image is not
    counted), and the 32-bit figure is the .mpy one (h) less what ROMFS
    saves. That saving is bytes that a file load copies into the heap and
    a ROMFS load leaves in flash (mpyfile): bytecode, long constants and
    interned names' text, the same bytes in both ports; only the GC's
    rounding of the copies differs (32 B blocks in the 64-bit VM, 16 B on
    the chip), read from the loaded modules' files: the 64-bit saving less
    that difference ("saving_32_64": their ratio, applied to every stage).
    The program's own 64/32-bit ratio ("ratio_64_32") is then that of
    everything its loop keeps from ROMFS (objects, pools, the text of the
    names it makes): chip_need scales row 2 by it."""
    out = {}
    lib = os.path.join(bench.boards.node["mpy"], "lib")
    for kind in CONFIGS:
        sp = StagePeaks(bench, kind, 512, how="rom")
        r = sp.measure_vm(None, peaks=not quick)  # --quick: what each stage keeps, no peaks
        mpy = {st["name"]: st for st in h[kind]["stages"]}
        last = r["stages"][-1] if r["stages"] else {}
        m_last = mpy.get(last.get("name"))
        copies = mpyfile.rom_saving(module_files(lib, sp.loaded))
        saving64 = m_last["kept64"] - last["kept64"] if m_last and None not in (m_last["kept64"],
                                                                                  last.get("kept64")) else None
        factor = (saving64 - copies["bytes64"] + copies["bytes32"]) / saving64 if saving64 else None
        for st in r["stages"]:
            m = mpy.get(st["name"])
            for k64, k32 in (("kept64", "kept32"), ("peak64", "peak32")):
                st[k32] = None
                if m and factor and None not in (st[k64], m[k64], m[k32]):
                    st[k32] = int(m[k32] - (m[k64] - st[k64]) * factor)
        r["ratio_64_32"] = round(last["kept64"] / last["kept32"], 3) if last.get("kept32") else None
        r["rom_copies"] = dict(copies, saving64=saving64, saving_32_64=round(factor, 3) if factor else None)
        r["measured"] = ("64-bit VM, image mounted before the floor; 32-bit estimated from the .mpy "
                         "figures less the saving (the WebAssembly port has no vfs.VfsRom)")
        out[kind] = r
    return out


def stage_figures(h):
    """The four figures of row 1 from the stages."""
    st = {s["name"]: s for s in h["stages"]}
    peaks = [s["peak32"] for s in h["stages"] if s["peak32"] is not None]

    def get(name, key):
        return st[name][key] if name in st else None
    return {"boot_peak": get("boot", "peak32"), "loop_resident": get("cycle 3", "kept32"),
            "announce_peak": get("announce", "peak32"),
            "cycle_peak": max(peaks) if peaks else None, "loop_resident64": get("cycle 3", "kept64")}


# -- calibration -------------------------------------------------------------------

CALIBRATE = """import gc, micropython
import _vboot
_vboot.fs()
gc.collect()
a = gc.mem_alloc()
micropython.qstr_info()
for m in %r:
    __import__(m)
gc.collect()
micropython.qstr_info()
print('\\x01', a, gc.mem_alloc() - a)
"""
# The chip's modules the fakes stand in for, and the bench's clock.
FAKES = ("_world", "machine", "_machine_more", "network", "dht", "esp", "webrepl", "ntptime", "onewire",
         "ds18x20", "time")
NODE_FAKES = ("machine", "network", "dht", "esp", "webrepl", "_world", "ntptime", "time")


def vm_base_and_fakes(boards, clock, modules=NODE_FAKES):
    """(bytes the unix port holds once it runs _vboot, bytes the fakes
    given add, of which interned strings) in the VM; clock: with the
    bench's clock."""
    env = dict(os.environ, UPYNODE_VBOARD=tempfile.mkdtemp(dir=boards.root))
    path = [runner.compiled_fakes(), os.path.join(runner.compiled_fakes(), "board_os")]
    if clock:
        path.insert(0, boards.shim)
    env["MICROPYPATH"] = os.pathsep.join(path)
    r = subprocess.run([micropython(), "-X", "heapsize=256K", "-c", CALIBRATE % (tuple(modules),)],
                       capture_output=True, text=True, env=env, check=True, cwd=env["UPYNODE_VBOARD"])
    q = [int(x) for x in re.findall(r"n_total_bytes=(\d+)", r.stdout)]
    base, fakes = map(int, r.stdout.split("\x01", 1)[1].split())
    return base, fakes, q[1] - q[0]


# Of the chip's modules, these are Python frozen into the ESP8266's firmware
# (ports/esp8266/boards/manifest.py, v1.28), not C: their code and names
# sit in flash as a ROMFS module's do, but their module objects, classes and
# functions are made in the heap when imported, as the program's own are.
FROZEN_PY = ("dht", "ntptime", "webrepl", "onewire", "ds18x20")
FROZEN_COST = """import gc, sys, vfs
import machine, network, esp, _world
data = bytearray(%d)
open(%r, 'rb').readinto(data)
vfs.mount(vfs.VfsRom(data), '/rom')
sys.path.insert(0, '/rom/lib')
gc.collect()
a = gc.mem_alloc()
for m in %r:
    __import__(m)
gc.collect()
print('\\x01', gc.mem_alloc() - a)
"""


def frozen_cost(boards, modules):
    """Bytes the 64-bit VM keeps for these fakes (FROZEN_PY) imported from
    a ROMFS image, as the chip imports its frozen modules: their code in
    flash, their objects in the heap. 0 for none."""
    modules = [m for m in modules if m in FROZEN_PY]
    if not modules:
        return 0
    from upynode_cli.romfs import build_image

    fakes = runner.compiled_fakes()
    files = {}
    for m in modules:
        with open(os.path.join(fakes, m + ".mpy"), "rb") as f:
            files["lib/%s.mpy" % m] = f.read()
    image = os.path.join(tempfile.mkdtemp(dir=boards.root), "frozen.rom")
    with open(image, "wb") as f:
        n = f.write(build_image(files))
    env = dict(os.environ, UPYNODE_VBOARD=os.path.dirname(image),
               MICROPYPATH=os.pathsep.join([boards.shim, fakes]))
    r = subprocess.run([micropython(), "-X", "heapsize=256K", "-c", FROZEN_COST % (n, image, tuple(modules))],
                       capture_output=True, text=True, env=env, check=True)
    return int(r.stdout.split("\x01", 1)[1].split()[0])


def calibrate(boards, h, chip_free=32768, rom=None):
    """The -X heapsize at which the node in the 64-bit VM runs out where a
    chip with chip_free bytes free after boot would, from row 1 (h): the
    VM's own floor (interpreter and fakes, without the bench's clock), plus
    chip_free scaled by the 64/32-bit ratio of the objects the loop keeps,
    but the interned strings of the highest peak's stage at 1:1 (.mpy
    files). rom: the node's ROMFS row 1 (rom_rows), for "rom_heapsize_kb",
    the same with lib/ in ROMFS (runner.CHIP_HEAPSIZE), converted as
    chip_need converts ROMFS figures."""
    base, fakes, _ = vm_base_and_fakes(boards, False)
    fakes_clock = vm_base_and_fakes(boards, True)[1]
    out = {"vm_base": base, "vm_fakes": fakes, "vm_clock": fakes_clock - fakes, "chip_free": chip_free}
    st = [r for r in h["stages"] if r["peak32"]]
    r = h.get("ratio_64_32")
    if st and r:
        top = max(st, key=lambda x: x["peak32"])
        # its strings take as much in both; the rest of the chip's heap scales
        heap = base + fakes + top["qstr64"] + (chip_free - top["qstr32"]) * r
        # base holds the fakes' names, interned first (runner.names_module),
        # and the board's filesystem (_vboot.fs()): the runner adds their
        # share to every -X heapsize it is given
        heap -= (runner.NAMES_HEAP_KB + runner.FS_HEAP_KB) * 1024
        out.update({"stage": top["name"], "peak64": top["peak64"], "peak32": top["peak32"],
                    "qstr64": top["qstr64"], "qstr32": top["qstr32"],
                    "ratio_64_32": r, "heapsize_kb": int(-(-heap // 1024))})
    if rom and rom.get("ratio_64_32"):
        # lib/ in ROMFS, as the VM tests run it: the whole heap scales by the
        # ROMFS loop's ratio (chip_need), and the chip's frozen Python
        # modules' objects are part of its 32 KB, not of the VM's floor
        heap = (base + fakes - (rom.get("frozen64") or 0) + chip_free * rom["ratio_64_32"]
                - (runner.NAMES_HEAP_KB + runner.FS_HEAP_KB) * 1024)
        out.update({"rom_ratio_64_32": rom["ratio_64_32"], "rom_frozen64": rom.get("frozen64") or 0,
                    "rom_heapsize_kb": int(heap // 1024)})
    return out


# -- --modules: each module's import alone ---------------------------------------

IMPORT_PROBE = """import gc
import machine, network, dht, _world, webrepl, esp
gc.collect()
before = gc.mem_alloc()
__import__(%r)
gc.collect()
print('\\x01kept', gc.mem_alloc() - before)
"""


def import_cost(boards, how, module, heap_kb):
    """Bytes the import of module keeps (fakes loaded first, not counted),
    or None when it fails in heap_kb."""
    env = dict(os.environ, UPYNODE_VBOARD=tempfile.mkdtemp(dir=boards.root),
               MICROPYPATH=os.pathsep.join([runner.compiled_fakes(), os.path.join(boards.node[how], "lib")]))
    r = subprocess.run([micropython(), "-X", "heapsize=%dK" % heap_kb, "-c", IMPORT_PROBE % module],
                       capture_output=True, text=True, env=env)
    m = re.search(r"\x01kept (\d+)", r.stdout)
    return int(m.group(1)) if r.returncode == 0 and m else None


def modules_table(boards):
    """Each module imported alone in a fresh 64-bit VM, as deployed and from
    source: the bytes it keeps and the smallest heap the import succeeds in
    (shared imports are counted in each)."""
    lib = os.path.join(boards.node["mpy"], "lib")
    mods = sorted(os.path.relpath(os.path.join(d, f), lib)[:-4].replace(os.sep, ".")
                  for d, _, fs in os.walk(lib) for f in fs if f.endswith(".mpy") and f != "__init__.mpy")
    lines = ["  %-24s %10s %10s %14s %14s" % ("module", "kept .mpy", "kept .py", "min heap .mpy", "min heap .py")]
    for m in mods:
        cells = []
        for how in ("mpy", "py"):
            lo, hi = 8, 256
            kept = import_cost(boards, how, m, hi)
            while kept is not None and hi - lo > 1:
                mid = (lo + hi) // 2
                if import_cost(boards, how, m, mid) is None:
                    lo = mid
                else:
                    hi = mid
            cells.append((kept, hi if kept is not None else None))
        lines.append("  %-24s %10s %10s %13sK %13sK" % (m, fmt(cells[0][0]), fmt(cells[1][0]),
                                                          fmt(cells[0][1]), fmt(cells[1][1])))
    return "\n".join(lines)


# The modules of the full configuration's loop, in the order it loads them.
LOOP_MODULES = ("upynode", "upynode.sock", "upynode.stamp", "upynode.led", "upynode.sensors",
                "upynode.read_adc", "upynode.read_mcp9808", "upynode.read_dht", "upynode.node",
                "umqtt.simple", "upynode.mqtt", "upynode.http", "upynode.receiver",
                "upynode.discovery", "upynode.backlog")
QSTR_BYTES = re.compile(r"n_total_bytes=(\d+)")


def rom_modules_table(boards):
    """The loop's modules from ROMFS, imported one after the other in the
    64-bit VM (a module's own imports counted where they first come): what
    each keeps, and how much of that is interned names (the pool grows by
    doubling, so one import can pay for the next ones' names)."""
    dest = os.path.join(boards.root, "rom-modules")
    boards.make("full", "rom", node_config("full", 1883, "http://127.0.0.1:1"), dest)
    stages = [VM_START, ("fakes", "import machine, network, dht, esp, webrepl, _world, ntptime\n")]
    stages += [(m, "__import__(%r)\n" % m) for m in LOOP_MODULES]
    for i, (_, code) in enumerate(stages):
        with open(os.path.join(dest, "_stage%d.py" % i), "w") as f:
            f.write(code)
    vm = VM(boards, dest, "256K", stages=len(stages))
    try:
        vm.wait(lambda lines: True if any(ln.startswith("\x01modules") for ln in lines) else None, 120)
    finally:
        vm.stop()
    lines = ["  %-24s %10s %12s" % ("module (ROMFS, in turn)", "kept", "of it names")]
    prev = qstr = prev_qstr = None
    i = total = 0
    for line in vm.lines:
        m = QSTR_BYTES.search(line)
        if m:
            qstr = int(m.group(1))
        elif line.startswith("\x01stage"):
            word = line.split()[2]
            if not word.isdigit():
                lines.append("  %-24s %s" % (stages[i][0], " ".join(line.split()[2:])))
                break
            if prev is not None and i >= 2:
                lines.append("  %-24s %10d %12d" % (stages[i][0], int(word) - prev, qstr - prev_qstr))
                total += int(word) - prev
            prev, prev_qstr = int(word), qstr
            i += 1
    lines.append("  %-24s %10d" % ("all of them", total))
    return "\n".join(lines)


# -- the table -------------------------------------------------------------------------

def git_state(rev):
    """(the commit measured, whether the firmware measured differs from it)"""
    def git(*a):
        r = subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else None
    dirty = False if rev else bool(git("status", "--porcelain", "--", "lib", *build.TOP))
    return git("rev-parse", "--short", rev or "HEAD"), dirty


def ratio(a, b):
    return round(a / b, 2) if a and b else None


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return "%.2f%s" % (v, unit)
    return "%s%s" % (v, unit)


def table(res):
    c = res["configs"]
    rows = []

    def row(label, key, unit="", ratio_of=None):
        vals = [key(c[k]) for k in CONFIGS]
        cells = [fmt(v, unit) for v in vals]
        r = [ratio(v, vals[0]) if isinstance(v, (int, float)) and isinstance(vals[0], (int, float)) else None
             for v in vals[2:]]  # node and full against the tutorial
        rows.append((label, cells, ["%.2fx" % x if x else "" for x in r]))

    def g(*path):
        def get(d):
            for p in path:
                if d is None:
                    return None
                d = d[p] if isinstance(p, int) and isinstance(d, (list, tuple)) and len(d) > p else (
                    d.get(p) if isinstance(d, dict) else None)
            return d
        return get
    rows.append(("1. 32-bit heap (WebAssembly port), bytes", None, None))
    for k, label in (("boot_peak", "boot peak (est.)"), ("loop_resident", "loop resident"),
                     ("announce_peak", "announce peak (est.)"), ("cycle_peak", "cycle peak (est.)")):
        row("   " + label, g("heap32", k))
    rows.append(("   with lib/ in ROMFS (est.: the 64-bit saving scaled)", None, None))
    for k, label in (("boot_peak", "boot peak (est.)"), ("loop_resident", "loop resident (est.)"),
                     ("announce_peak", "announce peak (est.)"), ("cycle_peak", "cycle peak (est.)")):
        row("   " + label, g("heap32_rom", k))
    rows.append(("   64-bit VM, loop resident (measured)", None, None))
    row("   .mpy files", g("heap32", "loop_resident64"))
    row("   ROMFS, image not counted", g("heap32_rom", "loop_resident64"))
    rows.append(("2. min -X heapsize, 64-bit VM, %d cycles" % res["cycles"], None, None))
    row("   as deployed (.mpy)", g("min_heap_kb", "mpy"), "K")
    row("   from source (.py)", g("min_heap_kb", "py"), "K")
    row("   ROMFS (heap besides the image)", g("min_heap_kb", "rom"), "K")
    row("   ROMFS image, bytes", g("rom", "image_bytes"))
    rows.append(("3. heap in use (gc.mem_alloc), 64-bit VM", None, None))
    for m in res["marks"]:
        row("   at cycle %d" % m, g("drift", str(m)))
    rows.append(("4. bytes on the wire (up/down) and round trips", None, None))
    for sink in ("mqtt", "http"):
        for when in ("first", "cycle"):
            for i, what in enumerate(("up", "down", "round trips")):
                row("   %s %s cycle, %s" % (sink, "first" if when == "first" else "per", what),
                    g("wire", sink, when, i))
    for when in ("first", "later"):
        for i, what in enumerate(("up", "down", "round trips")):
            row("   deep-sleep wake, %s, %s" % (when, what), g("wake", when, i))
    rows.append(("5. deployed size", None, None))
    row("   total bytes", g("size", "total"))
    rows.append(("6. boot to first PUBACK, median of 5", None, None))
    row("   seconds", g("boot_to_puback_s"))
    w = max(len(r[0]) for r in rows) + 2
    form = "%-*s" + " %10s" * len(CONFIGS) + " %9s %9s"
    out = [form % ((w, "") + CONFIGS + ("node/tut", "full/tut"))]
    for label, cells, ratios in rows:
        if cells is None:
            out.append(label)
        else:
            out.append(form % ((w, label) + tuple(cells) + tuple(ratios)))
    return "\n".join(out)


def run(quick=False, out_path=None, log=print, rev="HEAD"):
    t0 = time.monotonic()
    commit, dirty = git_state(rev)
    b = Bench(quick, log, rev)
    res = {"commit": commit, "lib_uncommitted_changes": dirty, "quick": quick, "cycles": b.cycles,
           "marks": list(b.marks), "configs": {k: {} for k in CONFIGS}, "seconds": {}}
    last = [t0]

    def took(what):  # where the run's time goes, in bench.json
        now = time.monotonic()
        res["seconds"][what] = round(now - last[0], 1)
        last[0] = now
    try:
        took("build")
        log("bench: row 1, the 32-bit heap (WebAssembly port)")
        try:
            h = heap32_rows(b, quick)
        except (OSError, subprocess.CalledProcessError, RuntimeError) as e:
            # e.g. no npm or no Node: the other rows still mean something
            log("bench: row 1 not measured: %s" % e)
            res["heap32_error"] = str(e)
            h = {k: {"stages": [], "floor64": None, "stand_ins32": None, "ratio_64_32": None}
                 for k in CONFIGS + (MQTT_MPY,)}
        took("row 1")
        for k in CONFIGS:
            res["configs"][k]["heap32"] = dict(stage_figures(h[k]), **h[k])
        log("bench: row 1 with ROMFS (64-bit VM; 32-bit estimated)")
        hr = rom_rows(b, h, quick)
        for k in CONFIGS:
            res["configs"][k]["heap32_rom"] = dict(stage_figures(hr[k]), **hr[k])
        took("row 1, ROMFS")
        for k in CONFIGS:
            c = res["configs"][k]
            log("bench: %s: rows 2-6" % k)
            hows = ("mpy",) if quick else ("mpy", "py")
            peaks = [st["peak64"] for st in c["heap32"]["stages"] if st["peak64"]]
            guess = (c["heap32"]["floor64"] + max(peaks)) // 1024 if peaks and c["heap32"]["floor64"] else None
            c["min_heap_kb"] = {how: b.min_heap(k, how, guess if how == "mpy" else None) for how in hows}
            c["min_heap_kb"]["rom"] = b.min_heap_rom(k, c["min_heap_kb"]["mpy"])
            c["rom"] = b.rom_image(k)
            took(k + " row 2")
            d = b.drift_and_wire(k)
            took(k + " rows 3-4")
            c["drift"] = d["drift"]
            c["wire"] = d["wire"]
            if not d["ok"]:
                c["drift_error"] = d.get("error")
            c["wake"] = b.wakes(k) if k not in SIMPLE and deep_sleep_exists() else None
            took(k + " row 4, wakes")
            board = os.path.join(b.tmp, "size-" + k)
            b.boards.make(k, "mpy", (1883, ()) if k in SIMPLE else node_config(k, 1883, "http://127.0.0.1:1"),
                          board)
            c["size"] = deployed_size(board)
            c["boot_to_puback_s"] = b.boot_to_puback(k, 1 if quick else 5)
            took(k + " rows 5-6")
        log("bench: row 7, a redeploy with nothing changed")
        try:
            res["redeploy_bytes"] = redeploy_bytes(b)
        except (OSError, RuntimeError, AssertionError, subprocess.SubprocessError) as e:
            log("bench: row 7 not measured: %s" % e)
            res["redeploy_bytes"] = {"error": str(e)[:300]}
        took("row 7")
        log("bench: %s: row 2 (.mpy) only" % MQTT_MPY)
        res[MQTT_MPY] = {"config": node_config(MQTT_MPY, 1883), "heap32": h[MQTT_MPY],
                         "min_heap_kb": {"mpy": b.min_heap(MQTT_MPY, "mpy")}}
        took(MQTT_MPY + " row 2")
        log("bench: interned names, node and full from ROMFS")
        res["names"] = {k: b.names(k) for k in ("node", "full")}
        res["names"]["pool_steps"] = pool_steps()
        took("names")
        node, tut = res["configs"]["node"], res["configs"]["tutorial"]
        res["boot_ratio_vs_tutorial"] = ratio(node["boot_to_puback_s"], tut["boot_to_puback_s"])
        res["calibration"] = cal = calibrate(b.boards, node["heap32"], rom=node["heap32_rom"])
        res["runner_heapsize"] = runner.CHIP_HEAPSIZE
        needs = res["chip_need"] = {}
        for k in CONFIGS:
            c = res["configs"][k]
            for how, hh in (("mpy", c["heap32"]), ("romfs", c["heap32_rom"])):
                needs["%s_%s" % (k, how)] = chip_need(c["min_heap_kb"].get("rom" if how == "romfs" else how), hh,
                                                      cal, rom=how == "romfs")
        needs[MQTT_MPY] = chip_need(res[MQTT_MPY]["min_heap_kb"]["mpy"], h[MQTT_MPY], cal)
        res["headroom_kb"] = {k: headroom_kb(needs.get(n)) for k, n in
                              (("node_romfs", "node_romfs"), ("full_romfs", "full_romfs"), (MQTT_MPY, MQTT_MPY))}
        res["need_ratio_vs_minimal"] = {k: ratio((needs.get(k) or {}).get("bytes"),
                                                 (needs.get("minimal_" + k[5:]) or {}).get("bytes"))
                                        for k in ("node_romfs", "node_mpy")}
    finally:
        b.close()
    res["runtime_s"] = round(time.monotonic() - t0, 1)
    out_path = out_path or str(BUILD / "bench.json")
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as f:
        json.dump(res, f, indent=1)
    return res


CHIP_FREE = 32768  # a chip's heap free after its own boot (issue 18)


def top_stage(h):
    """The stage whose interned strings the chip_need conversion carries
    over 1:1: the highest 32-bit peak, as calibrate() takes; without peaks
    (MQTT_MPY, ROMFS in --quick) the last stage (strings only grow)."""
    st = [r for r in h.get("stages", []) if r.get("peak32")]
    if st:
        return max(st, key=lambda x: x["peak32"])
    st = [r for r in h.get("stages", []) if r.get("qstr64") is not None]
    return st[-1] if st else None


def chip_need(min_kb, h, cal, rom=False):
    """A program's need in chip bytes at its worst moment, from row 2's
    min -X heapsize (min_kb: it boots, announces and delivers every cycle
    there), calibrate() run backwards: the VM's heap (min_kb, + the
    NAMES_HEAP_KB the runner adds) less its floor (the interpreter,
    cal["vm_base"], and the fakes the program imports with the bench's
    clock, on which row 2 runs: h["fakes64"], but for what the chip's
    frozen Python modules among them keep: h["frozen64"]), scaled to 32
    bits.
    From .mpy files: the top stage's interned strings in 64 bits are taken
    out, the rest scaled by the program's 64/32-bit ratio, and those
    strings put back as the 32-bit port measured them (their text is the
    same bytes in both). From ROMFS (rom; min_kb is besides the image
    already) most of that text is in flash, not in the heap, and
    qstr_info() counts it all the same, so the whole is scaled by the
    ratio of what the ROMFS loop keeps (rom_rows). None without min_kb or
    a ratio."""
    r = h.get("ratio_64_32") if h else None
    if not min_kb or not r or "vm_base" not in cal:
        return None
    fakes = h.get("fakes64")
    if fakes is None:
        fakes = cal["vm_fakes"] + cal["vm_clock"]
    # the chip's frozen Python modules (dht, ntptime, webrepl) cost it their
    # objects: counted as the program's, not as the VM's floor
    fakes -= h.get("frozen64") or 0
    # (the runner also adds FS_HEAP_KB for the board's filesystem, which
    # the floor holds: _vboot.fs())
    vm = min_kb * 1024 + (runner.NAMES_HEAP_KB + runner.FS_HEAP_KB) * 1024 - cal["vm_base"] - fakes
    top = None if rom else top_stage(h)
    q64 = q32 = None
    if top:
        q64, q32 = top.get("qstr64"), top.get("qstr32")
    if q64 is None or q32 is None:
        q64 = q32 = 0
    return {"bytes": int((vm - q64) / r + q32), "min_heap_kb": min_kb, "vm_floor": cal["vm_base"] + fakes,
            "frozen64": h.get("frozen64") or 0,
            "stage": top["name"] if top and q64 else None, "qstr64": q64, "qstr32": q32, "ratio_64_32": r}


def headroom_kb(need, chip_free=CHIP_FREE):
    """KB a chip with chip_free bytes free after boot keeps free at the
    program's worst moment (est.)."""
    return round((chip_free - need["bytes"]) / 1024, 1) if need else None


def deep_sleep_exists():
    from upynode_cli import firmware_config  # the firmware's own config module, from lib/
    return "sleep" in firmware_config().DEFAULTS


def report(res):
    lines = ["bench of %s%s, %s run in %.0f s" % (res["commit"], " + uncommitted firmware changes"
                                                  if res["lib_uncommitted_changes"] else "",
                                                  "quick" if res["quick"] else "full", res["runtime_s"]),
             table(res), ""]
    node = res["configs"]["node"]
    lines.extend(headroom_lines(res))
    lines.append("node, five largest modules: " + ", ".join("%s %d" % kv for kv in node["size"]["largest"]))
    rd = res.get("redeploy_bytes") or {}
    if "rom" in rd:
        lines.append("row 7, `upynode deploy --host` with nothing changed (WebREPL, the second of two in a row), "
                     "bytes up / down: ROMFS %d / %d, .mpy files %d / %d (goal: under 3 KB up)"
                     % (rd["rom"]["up"], rd["rom"]["down"], rd["mpy"]["up"], rd["mpy"]["down"]))
    elif rd.get("error"):
        lines.append("row 7 not measured: " + rd["error"])
    cal = res.get("calibration") or {}
    if "heapsize_kb" in cal:
        lines.append("calibration: the VM holds %(vm_base)d B (interpreter) + %(vm_fakes)d B (fakes) before the "
                     "firmware; the node's highest peak (%(stage)s) is %(peak64)d B in 64 bits, %(peak32)d B in 32 "
                     "(the loop's objects x%(ratio_64_32)s in 64 bits, interned strings as measured): a chip with %(chip_free)d B "
                     "free -> -X heapsize=%(heapsize_kb)dK with .mpy files" % cal)
    if "rom_heapsize_kb" in cal:
        lines.append("calibration, lib/ in ROMFS as the VM tests run it: (%(vm_base)d + %(vm_fakes)d - %(rom_frozen64)d "
                     "(what the chip's frozen Python modules keep) + %(chip_free)d x %(rom_ratio_64_32)s - the runner's "
                     "names) -> -X heapsize=%(rom_heapsize_kb)dK" % dict(cal, chip_free=CHIP_FREE)
                     + " (runner.CHIP_HEAPSIZE is %s)" % res["runner_heapsize"])
    if res.get("heap32_error"):
        lines.append("row 1 not measured: " + res["heap32_error"])
    elif node["heap32"]["stand_ins32"]:
        lines.append("32-bit figures: floats boxed (16 B each) as on the unix port; the ESP8266 keeps small floats "
                     "in the object word. The stand-ins for the chip's modules (%d B) are subtracted; peaks "
                     "are the 64-bit VM's scaled by the loop's 64/32-bit ratio." % node["heap32"]["stand_ins32"])
    return "\n".join(lines)


def headroom_lines(res):
    """The floor-free figures and how they are derived, for the report."""
    hk, nr, needs = res["headroom_kb"], res["need_ratio_vs_minimal"], res["chip_need"]
    out = ["headroom_kb (chip KB free at the worst moment, est.): node_romfs %s, full_romfs %s, %s %s (.mpy); "
           "need_ratio_vs_minimal: node_romfs %s, node_mpy %s; boot time ratio to the tutorial: %s"
           % (hk["node_romfs"], hk["full_romfs"], MQTT_MPY, hk[MQTT_MPY], nr["node_romfs"], nr["node_mpy"],
              res["boot_ratio_vs_tutorial"])]
    out.append("  chip need (B; min heap: row 2, 64-bit VM): " + ", ".join(
        "%s %s (%sK)" % (k, v["bytes"], v["min_heap_kb"]) for k, v in needs.items() if v))
    n = needs.get("node_romfs")
    if n:
        out.append("  derivation: need = (row 2's min -X heapsize + %dK the runner adds - the VM's floor (interpreter "
                   "with the board's filesystem, and the fakes the program imports, on the bench's clock, less what "
                   "the chip's frozen Python "
                   "modules among them keep) - the top stage's interned strings (64-bit, .mpy only)) / the "
                   "program's 64/32-bit ratio + those strings (32-bit); headroom = (%d - need) / 1024. "
                   "node_romfs: (%dK + %dK - %d - %d) / %s + %d = %d B -> (%d - %d) / 1024 = %s KB"
                   % (runner.NAMES_HEAP_KB + runner.FS_HEAP_KB, CHIP_FREE, n["min_heap_kb"],
                      runner.NAMES_HEAP_KB + runner.FS_HEAP_KB, n["vm_floor"],
                      n["qstr64"], n["ratio_64_32"], n["qstr32"], n["bytes"], CHIP_FREE, n["bytes"],
                      hk["node_romfs"]))
    nm = res.get("names") or {}
    if nm.get("node") and nm["node"].get("count") is not None:
        steps = nm.get("pool_steps") or []
        out.append("interned names, boot.py to cycle 3, ROMFS (n_qstr less the VM's %s before boot.py): node %s "
                   "(margin %s to the pool step at %s), full %s (margin %s to %s); a new pool (twice the last) at "
                   "%s names (the VM's n_pool against n_qstr, names added one by one; the chip's pools are the "
                   "same, py/qstr.c, and hold none before boot.py)"
                   % (nm["node"]["floor"], nm["node"]["count"], nm["node"]["margin"], nm["node"]["next_step"],
                      nm["full"].get("count"), nm["full"].get("margin"), nm["full"].get("next_step"),
                      ", ".join(map(str, steps))))
    else:
        out.append("interned names: not measured: %s" % ((nm.get("node") or {}).get("error"),))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="upynode-bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="fewer cycles, coarser searches, no source build: seconds, for the tests")
    ap.add_argument("--out", help="where to write the JSON (default build/bench.json)")
    ap.add_argument("--rev", default="HEAD", help="the commit whose firmware to measure (default HEAD)")
    ap.add_argument("--worktree", action="store_true",
                    help="measure the firmware as it is in the checkout, uncommitted changes and all")
    ap.add_argument("--modules", action="store_true",
                    help="only the import cost of each module alone, as .mpy and from source, and of the "
                         "loop's modules in turn from ROMFS (minutes)")
    a = ap.parse_args(argv)
    if not (BUILD / "deps" / "lib").is_dir():
        sys.exit("bench: build/deps is missing: run `upynode build` (or `make bench`)")
    import signal  # stopped: stop the broker, the receiver and the VMs too
    signal.signal(signal.SIGTERM, lambda *a: sys.exit("bench: terminated"))
    if a.modules:
        root = tempfile.mkdtemp(prefix="upynode-bench-")
        try:
            boards = Boards(root, None if a.worktree else a.rev)
            print("bench: each module imported alone in the 64-bit VM (%s; fakes loaded first, not counted)"
                  % git_state(None if a.worktree else a.rev)[0])
            print(modules_table(boards))
            print("bench: the full configuration's loop modules from ROMFS, imported in turn (64-bit VM)")
            print(rom_modules_table(boards))
        finally:
            shutil.rmtree(root, ignore_errors=True)
        return
    res = run(a.quick, a.out, log=lambda s: print(s, file=sys.stderr, flush=True),
              rev=None if a.worktree else a.rev)
    print(report(res))


if __name__ == "__main__":
    main()
