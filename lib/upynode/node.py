# The loop: every interval_s read the sensors, send one state message on
# every configured transport, drive the LED. A reading a sink did not
# acknowledge goes to that sink's queue on flash (upynode.backlog) and is
# replayed, a few per cycle, once the sink answers again. A failure costs
# at most its own cycle; between cycles the transports take commands.
import gc
import time

import upynode
from upynode import feed
from upynode import sensors as S
from upynode import sock  # noqa: F401  (loaded with the loop: see boot.py)

OOM_RESET = 3  # MemoryErrors in a row before a reset (the heap is fragmented)
POLL_MS = 200  # how often commands are looked for between readings


class Node:
    # What the loop keeps between cycles.
    def __init__(self, cfg, log=print):
        # Built by code the loop never runs again (upynode.assemble)
        from upynode import assemble
        assemble.build(self, cfg, log)

    def start(self):
        # Before the first reading: connect (and announce to Home Assistant)
        # while the heap holds only the loop's objects. The connection's
        # objects then sit beside them, and the announcement's garbage is
        # gone before a cycle's objects are made. Announcing from the first
        # cycle, between its live objects, ran out of memory with 8 KB free
        # in pieces (bench, ROMFS board). A sink that fails here waits its
        # backoff like one that failed in a cycle; the reading is queued.
        if not self.wifi():
            return
        for t in self.txs:
            if hasattr(t, "announce"):  # MQTT: connect and announce, no reading
                feed()
                if not t.send(None, None):
                    t.fails = 1
                    t.retry_at = self._backoff(1, time.ticks_ms())
            gc.collect()

    def queue(self, t, make=True):
        # t's queue on flash. Loaded when first needed (a sink failed, or
        # a queue was left from before): online, the module costs no heap.
        if t.q is None:
            if not make:
                import os
                try:
                    os.stat("backlog_%s.q" % t.name)
                except OSError:
                    return None
            from upynode.backlog import Backlog
            t.q = Backlog(t.name, self.cfg["backlog"]["max_kb"] * 1024, self.log)
        return t.q

    def _backoff(self, fails, now):
        # Exponential, capped, with jitter (50-100 %): nodes that lost the
        # broker together do not come back at the same instant.
        from random import getrandbits
        d = min(self.retry["max_s"], self.retry["min_s"] << min(fails - 1, 20)) * 1000
        return time.ticks_add(now, d // 2 + (d // 2) * getrandbits(8) // 255)

    def wifi(self):
        # The ESP8266 rejoins by itself, mostly; a kick now and then (with
        # backoff) covers the rest. While WiFi is down nothing is tried.
        if self.sta.isconnected():
            if self.wifi_down:
                self.log("wifi: back")
                self.wifi_down = False
                self.wifi_fails = 0
                for t in self.txs:
                    t.fails = 0  # try each sink at once
            return True
        now = time.ticks_ms()
        if not self.wifi_down:
            self.log("wifi: connection lost")
            self.wifi_down = True
            for t in self.txs:
                t.close()
        elif time.ticks_diff(now, self.wifi_retry) >= 0:
            self.wifi_fails += 1
            self.wifi_retry = self._backoff(self.wifi_fails, now)
            try:
                # the network and password the boot's join left in the
                # chip's flash (wifi.join): config.json's wifi is not kept
                # for this (assemble: 192 B less in the loop from ROMFS,
                # 64-bit VM, make bench --quick at 052504e)
                self.sta.connect()
            except OSError as e:
                self.log("wifi: %s" % e)
        return False

    def cycle(self, seq):
        values, errors = S.read_all(self.sens, self.log)
        rec = {"ep": self.ep, "boot": self.boot, "seq": seq}
        self.clock.stamp(rec)
        rec.update(values)
        if errors:
            rec["err"] = errors
        self.led.show(values)
        online = self.wifi()
        msg = dict(rec)
        msg["up"] = self.clock.up_ms // 1000  # seconds since boot (HA: uptime), stamp() just counted
        msg["heap"] = gc.mem_free()
        if online:
            msg["rssi"] = self.sta.status("rssi")
        n, d = 0, self.lost  # queued; and lost: full, corrupt or torn queues, no memory, no flash
        for t in self.txs:
            if t.q is not None:
                n += len(t.q)
                d += t.q.dropped
        if n:
            msg["q"] = n
        if d:
            msg["drop"] = d
        if self.reset is not None:
            msg["reset"] = self.reset
        if self.awake_ms:
            msg["awake_ms"] = self.awake_ms
        text = S.dumps(msg)  # once, for every transport and the console
        words = []
        sent = False
        now = time.ticks_ms()
        for t in self.txs:
            ok = oom = no = False
            if online and (not t.fails or time.ticks_diff(now, t.retry_at) >= 0):
                feed()
                try:
                    ok = t.send(msg, text)
                    # refused for good (the receiver's 4xx): the sink is up,
                    # and queued the reading would only be refused again
                    no = not ok and getattr(t, "refused", None)
                except MemoryError:
                    # The reading is not lost with the connection: it is
                    # queued below like any unacknowledged one, then counted.
                    t.close()
                    gc.collect()
                    oom = True
                if ok or no:
                    t.fails = 0
                else:
                    t.fails += 1
                    t.retry_at = self._backoff(t.fails, time.ticks_ms())
            if ok:
                word = "sent"
                sent = True
            elif no:
                self.lost += 1
                word = "REFUSED (%s)" % no
            elif getattr(t, "history", False):
                try:
                    self.queue(t).put(S.dumps(rec))
                    word = "queued"
                except MemoryError:
                    # Not even the queue found the memory (its import, a
                    # buffer): the reading is lost to this sink. Counted in
                    # "drop" from the next message on, never silently.
                    self.lost += 1
                    word = "LOST (out of memory)"
                    oom = True
                except Exception as e:
                    # A full flash (OSError 28), or a record too big for the
                    # queue: lost to this sink, counted, and the cycle goes
                    # on to the other sinks.
                    self.lost += 1
                    word = "LOST (%s)" % ("flash full" if e.args[:1] == (28,) else e)
            else:
                word = "NOT SENT"
            words.append(t.name + " " + word)
            if oom:
                self.out_of_memory(seq)  # may reset: the reading is on flash already
        self.done = seq  # every sink has had it: sent, queued or counted lost
        if sent:
            self.reset = None  # reported
            self.awake_ms = 0
            if self.trial is not None:  # a new image on trial delivered: it stays (update.py)
                self.trial = None
                import os
                try:
                    os.remove("romfs.trial")  # update.TRIAL
                    self.log("update: the new image delivered a reading: it stays")
                except OSError:
                    pass
        self.led.update(values, sent)
        self.log("%d.%d: %s -> %s" % (self.boot, seq, text, ", ".join(words)))
        if self.trial is not None and time.ticks_diff(time.ticks_ms(), self.trial) >= 0:
            # A new image on trial that delivered nothing in its time: one
            # more boot on trial (update.py), the reading is on flash
            self.log("update: the new image delivered no reading in its time on trial: restarting")
            import machine
            machine.reset()
        for t in self.txs:
            if t.q and not t.fails and online and not self.oomed:  # out of memory: closed
                from upynode.backlog import replay  # loaded with the queue
                replay(self, t)
        return sent

    def idle(self, due):
        # Commands and keepalives until the next reading is due; at least
        # one look even when the cycle overran, so a slow cycle never
        # starves the LED switch or the broker's keepalive.
        while True:
            feed()
            for t in self.txs:
                t.poll()
            left = time.ticks_diff(due, time.ticks_ms())
            if left <= 0:
                return
            time.sleep_ms(min(left, POLL_MS))

    def out_of_memory(self, seq):
        # Drop the connections (their buffers) and count: the heap fragments.
        for t in self.txs:
            t.close()
        gc.collect()
        self.oom += 1
        self.oomed = True
        self.log("%d.%d: out of memory (%d in a row), %d bytes free" % (self.boot, seq, self.oom, gc.mem_free()))
        if self.oom >= OOM_RESET:
            import machine
            machine.reset()


def run(cfg, log=print, cycles=0):
    try:
        return _run(cfg, log, cycles)
    except KeyboardInterrupt:
        if upynode.wdt:  # stopped at the REPL: see upynode.stopped
            gc.collect()  # what the stopped loop left: the REPL, WebREPL and this import want it
            try:
                from upynode import stopped
                stopped.keep_awake()
            except Exception as e:  # the Ctrl-C must reach the REPL whatever happens here
                print("watchdog: nothing feeds it at the REPL: %s" % e)
        raise


def _run(cfg, log, cycles):
    n = Node(cfg, log)
    upynode.release("assemble")  # built: the loop never runs it again
    # A wedged node resets itself. From here on every wait is sliced and
    # feeds it (upynode.feed), and no DNS lookup happens (upynode.sock).
    import machine
    sock.dns = False
    upynode.wdt = machine.WDT()
    if n.sleepy:
        from upynode import sleep
        return sleep.wake(n, log)
    gc.collect()
    log("node %s: %d sensor(s), every %d s, to %s; boot %d" % (
        cfg["node_id"], len(n.sens), cfg["interval_s"], ", ".join(t.where for t in n.txs), n.boot))
    try:
        n.start()
    except MemoryError:
        n.out_of_memory(0)
    step = cfg["interval_s"] * 1000
    due = time.ticks_ms()
    seq = taken = 0
    while not cycles or taken < cycles:
        # seq numbers the intervals since boot: an interval whose reading
        # could not be taken (the cycle before overran) leaves a gap.
        seq += 1
        taken += 1
        try:
            feed()
            n.clock.sync()
            feed()
            n.cycle(seq)
            if n.led.mode == "ha_state" and not n.wifi_down:
                from upynode import ha
                ha.follow(n.led, ha.state(cfg, n.led.entity, log), log)
            if not n.oomed:
                n.oom = 0
            n.oomed = False
        except MemoryError:
            if n.done != seq:  # before a sink had the reading: lost, and counted in "drop"
                n.lost += 1
            n.out_of_memory(seq)
        except Exception as e:
            log("%d.%d: %s: %s" % (n.boot, seq, type(e).__name__, e))
        gc.collect()
        due = time.ticks_add(due, step)
        missed = 0
        while time.ticks_diff(time.ticks_ms(), time.ticks_add(due, step)) >= 0:
            due = time.ticks_add(due, step)
            missed += 1
        if missed:
            log("%d.%d-%d: not taken: the cycle before overran its interval" % (n.boot, seq + 1, seq + missed))
            seq += missed
        try:
            n.idle(due)
        except MemoryError:  # e.g. announcing to HA between readings
            n.out_of_memory(seq)
    return seq
