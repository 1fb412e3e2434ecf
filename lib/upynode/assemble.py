# Builds the loop's Node from the checked config: the sensors, the LED,
# the transports, deep sleep's state. Runs once, at start; node.run()
# releases the module after, so its code costs the loop nothing.
import upynode
from upynode import save
from upynode.led import Led
from upynode.stamp import Clock


# Boot-only helpers, here rather than in the loop's modules (sensors, sock,
# http, stamp), which keep every function's raw code and function object in
# RAM, even from ROMFS. With them, Led.follow (now ha.follow), Led.set and
# .value, Clock.fix, Node.queued and Mqtt.open went: the loop keeps 352 B
# less (node) and 416 B (full) from ROMFS in the 64-bit VM, 608 and 832 B
# with .mpy files in 32 bits (make bench --quick, row 1, at a65b86c).

def load_sensors(entries, log=print):
    # -> [(type, Sensor or None)], in config order
    from upynode import drivers, release
    out = drivers.start(entries, log)
    release("drivers")
    return out


def sensor_units(sensors):
    # [(quantity, unit)] in config order (MicroPython's dicts keep no order)
    return [u[:2] for kind, s in sensors if s is not None for u in s.units]


def sensor_about(sensors):
    # {quantity: (HA device class, display precision)} as the drivers
    # declare them, for discovery.configs() and the HTTP attributes
    out = {}
    for kind, s in sensors:
        if s is not None:
            for u in s.units:
                out[u[0]] = u[2:]
    return out


def prime(host, port, log):
    # Resolve a sink's host now, at boot, while a slow DNS answer cannot
    # starve the watchdog; upynode.sock keeps the address (and refuses
    # lookups once the loop runs).
    from upynode import sock
    if host:
        try:
            sock.getaddrinfo(host, port, 0, sock.usocket.SOCK_STREAM)
        except OSError:
            log("dns: cannot resolve %s: give its IP address in config.json "
                "(the name is looked up at boot only)" % host)


def prime_url(url, log):
    hp = url.split("/")[2].split("@")[-1] if url.count("/") >= 2 else ""
    h, _, p = hp.partition(":")
    prime(h, int(p) if p.isdigit() else 80, log)


BOOT_FILE = "boot.n"


def next_boot(count=True, path=BOOT_FILE):
    # -> (boot, epoch). count=False: a deep-sleep wake, the same boot as the
    # last wake (no flash write per wake: a wake a minute would wear the
    # sector out). The epoch is a random number made when the count starts
    # over (a new node, or boot.n erased: a re-flash): sent with every
    # reading ("ep"), it keeps (node, boot, seq) from repeating a reading
    # the receiver already holds, which it would drop as a duplicate.
    try:
        with open(path) as f:
            t = f.read().split()
        n = int(t[0]) + count
        ep = int(t[1]) if len(t) > 1 else None
    except (OSError, ValueError, IndexError):
        n, ep = 1, None
        count = True
    if ep is None:
        from random import getrandbits
        ep = getrandbits(30)  # a small int on the chip: no heap
        count = True
    if count:
        try:
            save(path, "%d %d" % (n, ep))
        except OSError:
            # A full flash: the node runs on with n (a boot must never fail
            # on this); the next boot counts from the old number again.
            pass
    return n, ep


def transports(cfg, units, led, log=print, sens=None):
    # Each has a name (for the cycle's line), `where` (name and address, for
    # the log), send(msg, text) (the state message and it as JSON, written
    # once by the loop) -> True if it was acknowledged, poll() and close();
    # those that can take old readings (history = True) also replay(records)
    # -> how many were acknowledged. Only the configured ones are imported.
    out = []
    for t in cfg["transports"]:
        if t == "mqtt":
            from upynode.mqtt import Mqtt
            out.append(Mqtt(cfg["mqtt"], cfg["node_id"], units, led, log))
            prime(cfg["mqtt"]["host"], cfg["mqtt"]["port"], log)
            continue
        if cfg["http"]["target"] == "ha":
            from upynode.ha import Ha
            out.append(Ha(cfg, cfg["node_id"], units, log, sens))
        elif cfg["http"]["target"] == "receiver":
            from upynode.receiver import Receiver
            out.append(Receiver(cfg, cfg["node_id"], units, log))
        else:
            from upynode.flask import Flask
            out.append(Flask(cfg, cfg["node_id"], units, log))
        prime_url(out[-1].base, log)
    # The targets that use upynode.http in the loop (ha, flask) hold it
    # themselves; the receiver's node does without it.
    upynode.release("http")
    return out


def cause(machine):
    # Why the node started: machine.reset_cause(), or the cause before the
    # boot's own restart (startup.restart), once.
    import os
    try:
        with open("reset.why") as f:  # startup.CAUSE
            c = int(f.read())
        os.remove("reset.why")
        return c
    except (OSError, ValueError):
        return machine.reset_cause()


def build(n, cfg, log):
    import machine
    import network
    n.cfg = cfg
    n.log = log
    n.reset = cause(machine)
    n.sens = load_sensors(cfg["sensors"], log)
    n.led = Led(cfg["led"])
    n.txs = transports(cfg, sensor_units(n.sens), n.led, log, n.sens)
    if "mqtt" not in cfg["transports"]:  # boot.py loaded it early
        import sys
        upynode.release("mqtt")
        sys.modules.pop("umqtt.simple", None)
    if n.led.mode == "ha_state":
        prime_url(cfg["homeassistant"]["url"], log)
    n.retry = cfg["retry"]
    n.clock = Clock(cfg["ntp"]["host"], log)
    # Deep sleep: a wake (reset cause DEEPSLEEP_RESET with our RTC memory)
    # goes on from the last one: same boot, the next seq, discovery done.
    n.sleepy = cfg["sleep"] == "deep"
    n.awake_max = cfg["awake_max_s"]
    n.wake = None
    if n.sleepy:
        from upynode import rtcmem
        if machine.reset_cause() == machine.DEEPSLEEP_RESET:
            n.wake = rtcmem.load()
        for t in n.txs:
            t.sleepy = True
            if n.wake and n.wake["disc"] and hasattr(t, "announce"):
                t.announce = 0
    for t in n.txs:
        t.cause = n.reset
        t.fails = 0
        t.retry_at = 0
        t.clock = n.clock
        t.q = None
        if getattr(t, "history", False):
            n.queue(t, False)
    # What the loop does not read again: the sensor entries above all
    # (a dict each, with every default), freed for the loop's heap.
    drop = ["sensors", "webrepl", "led", "ntp", "sleep", "awake_max_s", "wifi"]
    if "http" not in cfg["transports"] and n.led.mode != "ha_state":  # ha.state() reads both
        drop.append("http")
        drop.append("homeassistant")
    for k in drop:
        cfg.pop(k, None)
    n.boot, n.ep = next_boot(n.wake is None)
    n.sta = network.WLAN(network.STA_IF)
    n.wifi_down = False
    n.wifi_fails = 0
    n.wifi_retry = 0
    n.oom = 0
    n.lost = 0  # readings a sink with a queue lost to MemoryError (node.cycle)
    n.oomed = False  # this cycle ran out of memory
    n.done = 0  # the last seq every sink had (node.Node.cycle)
    # A new image on trial (update.py): the first reading a sink
    # acknowledges keeps it; n.trial is when the node restarts if none was
    # (update.TRIAL: "<boots> <seconds>"; at least 3 intervals, so that a
    # slow node gets its tries), and that boot counts towards the rollback.
    n.trial = None
    try:
        import time
        with open("romfs.trial") as f:  # update.TRIAL
            t = f.read().split()
        s = max(int(t[1]) if len(t) > 1 else 600, 3 * cfg["interval_s"])  # update.TRIAL_S
        n.trial = time.ticks_add(time.ticks_ms(), s * 1000)
    except (OSError, ValueError):
        pass
    n.awake_ms = 0
