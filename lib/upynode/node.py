# The loop: every interval_s read the sensors, publish one JSON state
# message, drive the LED. A failure costs at most its own cycle.
import gc
import json
import time

from upynode import sensors as S

OOM_RESET = 3  # MemoryErrors in a row before a reset (the heap is fragmented)


def run(cfg, log=print, cycles=0):
    nid = cfg["node_id"]  # resolved by startup
    sens = S.load(cfg["sensors"], log)
    from upynode.led import Led
    led = Led(cfg["led"])
    from upynode.mqtt import Mqtt
    tx = Mqtt(cfg["mqtt"], nid, log)
    gc.collect()
    log("node %s: %d sensor(s), every %d s, to %s" % (nid, len(sens), cfg["interval_s"], tx.state_topic))
    step = cfg["interval_s"] * 1000
    due = time.ticks_ms()
    seq = oom = 0
    while not cycles or seq < cycles:
        seq += 1
        try:
            cycle(seq, sens, led, tx, log)
            oom = 0
        except MemoryError:
            tx.close()
            gc.collect()
            oom += 1
            log("%d: out of memory (%d in a row), %d bytes free" % (seq, oom, gc.mem_free()))
            if oom >= OOM_RESET:
                import machine
                machine.reset()
        except Exception as e:
            log("%d: %s: %s" % (seq, type(e).__name__, e))
        gc.collect()
        due = time.ticks_add(due, step)
        wait = time.ticks_diff(due, time.ticks_ms())
        if wait < 0:  # the cycle overran: start again from now, no burst
            due = time.ticks_ms()
            wait = 0
        time.sleep_ms(wait)
    return seq


def cycle(seq, sens, led, tx, log=print):
    values, errors = S.read_all(sens, log)
    msg = {"seq": seq}
    msg.update(values)
    if errors:
        msg["err"] = errors
    msg["heap"] = gc.mem_free()
    payload = json.dumps(msg)
    ok = tx.publish(payload)
    led.update(values, ok)
    log("%d: %s -> %s" % (seq, payload, "sent" if ok else "NOT SENT"))
    return ok
