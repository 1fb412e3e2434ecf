# The loop: every interval_s read the sensors, send one state message on
# every configured transport, drive the LED. A failure costs at most its
# own cycle; between cycles the transports take commands (the LED switch).
import gc
import json
import time

from upynode import sensors as S

OOM_RESET = 3  # MemoryErrors in a row before a reset (the heap is fragmented)
POLL_MS = 200  # how often commands are looked for between readings


def transports(cfg, units, led, log=print, sens=None):
    # Each has a name (for the cycle's line), `where` (name and address, for
    # the log), send(msg) -> True if it got through, poll() and close().
    # Only the configured ones are imported: every module costs heap.
    # sens: the sensors, whose drivers tell HA device classes and precision.
    out = []
    for t in cfg["transports"]:
        if t == "mqtt":
            from upynode.mqtt import Mqtt
            out.append(Mqtt(cfg["mqtt"], cfg["node_id"], units, led, log, sens))
        elif cfg["http"]["target"] == "ha":
            from upynode.ha import Ha
            out.append(Ha(cfg, cfg["node_id"], units, log, sens))
        else:
            from upynode.flask import Flask
            out.append(Flask(cfg, cfg["node_id"], units, log))
    return out


def run(cfg, log=print, cycles=0):
    sens = S.load(cfg["sensors"], log)
    from upynode.led import Led
    led = Led(cfg["led"])
    txs = transports(cfg, S.units(sens), led, log, sens)
    gc.collect()
    log("node %s: %d sensor(s), every %d s, to %s" % (cfg["node_id"], len(sens), cfg["interval_s"],
                                                      ", ".join(t.where for t in txs)))
    step = cfg["interval_s"] * 1000
    due = time.ticks_ms()
    seq = oom = 0
    while not cycles or seq < cycles:
        seq += 1
        try:
            cycle(seq, sens, led, txs, log)
            if led.mode == "ha_state":
                from upynode import ha
                led.follow(ha.state(cfg, led.entity, log), log)
            oom = 0
        except MemoryError:
            oom = out_of_memory(seq, oom, txs, log)
        except Exception as e:
            log("%d: %s: %s" % (seq, type(e).__name__, e))
        gc.collect()
        due = time.ticks_add(due, step)
        if time.ticks_diff(due, time.ticks_ms()) < 0:  # overran: start again from now, no burst
            due = time.ticks_ms()
        try:
            idle(txs, due)
        except MemoryError:  # e.g. announcing to HA between readings
            oom = out_of_memory(seq, oom, txs, log)
    return seq


def out_of_memory(seq, oom, txs, log):
    # Drop the connections (their buffers) and count: the heap fragments.
    for t in txs:
        t.close()
    gc.collect()
    oom += 1
    log("%d: out of memory (%d in a row), %d bytes free" % (seq, oom, gc.mem_free()))
    if oom >= OOM_RESET:
        import machine
        machine.reset()
    return oom


def idle(txs, due):
    while True:
        left = time.ticks_diff(due, time.ticks_ms())
        if left <= 0:
            return
        for t in txs:
            t.poll()
        time.sleep_ms(min(left, POLL_MS))


def cycle(seq, sens, led, txs, log=print):
    values, errors = S.read_all(sens, log)
    msg = {"seq": seq}
    msg.update(values)
    if errors:
        msg["err"] = errors
    msg["heap"] = gc.mem_free()
    led.show(values)
    sent = [t.send(msg) for t in txs]
    led.update(values, True in sent)
    log("%d: %s -> %s" % (seq, json.dumps(msg), ", ".join("%s %s" % (t.name, "sent" if ok else "NOT SENT")
                                                          for t, ok in zip(txs, sent))))
    return True in sent
