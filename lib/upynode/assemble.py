# Builds the loop's Node from the checked config: the sensors, the LED,
# the transports, deep sleep's state. Runs once, at start; node.run()
# releases the module after, so its code costs the loop nothing.
import upynode
from upynode import sensors as S
from upynode.led import Led
from upynode.stamp import Clock, next_boot


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
        elif cfg["http"]["target"] == "ha":
            from upynode.ha import Ha
            out.append(Ha(cfg, cfg["node_id"], units, log, sens))
        elif cfg["http"]["target"] == "receiver":
            from upynode.receiver import Receiver
            out.append(Receiver(cfg, cfg["node_id"], units, log))
        else:
            from upynode.flask import Flask
            out.append(Flask(cfg, cfg["node_id"], units, log))
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
    n.sens = S.load(cfg["sensors"], log)
    n.led = Led(cfg["led"])
    n.txs = transports(cfg, S.units(n.sens), n.led, log, n.sens)
    if "mqtt" not in cfg["transports"]:  # boot.py loaded it early
        import sys
        upynode.release("mqtt")
        sys.modules.pop("umqtt.simple", None)
    if n.led.mode == "ha_state":
        from upynode.http import prime_url
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
    drop = ["sensors", "webrepl", "led", "ntp", "sleep", "awake_max_s"]
    if "http" not in cfg["transports"] and n.led.mode != "ha_state":  # ha.state() reads both
        drop.append("http")
        drop.append("homeassistant")
    for k in drop:
        cfg.pop(k, None)
    n.boot = next_boot(n.wake is None)
    n.sta = network.WLAN(network.STA_IF)
    n.wifi_down = False
    n.wifi_fails = 0
    n.wifi_retry = 0
    n.oom = 0
    n.lost = 0  # readings a sink with a queue lost to MemoryError (node.cycle)
    n.oomed = False  # this cycle ran out of memory
    n.awake_ms = 0
