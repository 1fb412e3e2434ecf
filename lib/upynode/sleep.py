# Deep sleep between readings (config "sleep": "deep"; GPIO16 wired to
# RST): the chip wakes through a reset, so what a wake must know travels in
# RTC memory (upynode.rtcmem). Boot calls chained() first thing, the loop
# nap() when its reading is out.
import time

import machine

from upynode import rtcmem

# machine.deepsleep() hands the SDK ms * 1000 as uint32 microseconds: above
# 4294967 ms (71.6 min) it wraps (ports/esp8266/modmachine.c). Longer
# intervals sleep in links of at most MAX_MS.
MAX_MS = 3600000
WINDOW_S = 30  # awake this long after a power-on, for WebREPL
# This wake's start: the module is imported first thing at boot (the ROM
# boot and the interpreter's start before it, ~0.1-0.3 s, are not counted).
_T0 = time.ticks_ms()


def chained():
    # First thing at boot, before WiFi: a wake that only continues a long
    # sleep goes back to sleep at once (on the chip this never returns).
    if machine.reset_cause() != machine.DEEPSLEEP_RESET:
        return False
    m = rtcmem.load()
    if not m or not m["chain_ms"]:
        return False
    step = min(m["chain_ms"], MAX_MS)
    m["chain_ms"] -= step
    rtcmem.save(m)
    machine.deepsleep(step)
    return True


def nap(interval_s, awake_ms, log=print, state=None, ts=0):
    # Sleep until the next reading: interval_s after this wake began, so the
    # readings keep their interval whatever a wake took. state: the rtcmem
    # dict to keep (seq, disc, led, ...), else the saved one; ts: unix
    # seconds now if the clock is synced (0 if not), for wall().
    ms = max(1, interval_s * 1000 - awake_ms)
    m = state or rtcmem.load() or rtcmem.empty()
    step = min(ms, MAX_MS)
    m["chain_ms"], m["sleep_ms"], m["ts"] = ms - step, ms, ts
    m["wakes"] += 1
    rtcmem.save(m)
    log("sleep: %d ms%s" % (ms, " in %d links" % ((ms + MAX_MS - 1) // MAX_MS) if ms > MAX_MS else ""))
    machine.deepsleep(step)


def awake_ms():
    # How long this wake has been up
    return time.ticks_diff(time.ticks_ms(), _T0)


def awake_left_ms(awake_max_s):
    # What is left of the awake cap (config awake_max_s); <= 0: sleep now
    return awake_max_s * 1000 - awake_ms()


def wall(m):
    # Unix seconds at this wake's start from the last nap's ts and length,
    # or None if the clock was not synced then. The RTC timer drifts (a few
    # %), so resync NTP now and then.
    return m["ts"] + m["sleep_ms"] // 1000 if m and m["ts"] else None


def wake(n, log):
    # The loop of a sleeping node (node.Node n): one reading per wake, within
    # the awake cap, then sleep.
    m = n.wake or rtcmem.empty()
    seq = m["seq"] + 1
    t = wall(m)
    if t:  # the clock from the last wake: no NTP round trip
        n.clock.epoch = t - n.clock.uptime()
    else:
        n.clock.sync()
    if n.wake and m["sleep_ms"]:
        # the last wake's awake time: what the battery pays per reading
        n.awake_ms = n.cfg["interval_s"] * 1000 - m["sleep_ms"]
    try:
        n.cycle(seq)
    except MemoryError:
        n.out_of_memory(seq)
    except Exception as e:
        log("%d.%d: %s: %s" % (n.boot, seq, type(e).__name__, e))
    m["seq"] = seq
    # Announced on every sink (or nothing to announce): later wakes skip it.
    # A sink whose announcement was cut short or had no memory still has
    # it pending (Mqtt.announce): the next wake announces.
    m["disc"] = 0 if any(getattr(t, "announce", 0) for t in n.txs) else 1
    stay = max([getattr(t, "stay_s", 0) for t in n.txs] or [0])
    if stay:
        # Asked to stay awake (retained <base>/<node>/awake: deploy
        # --wait-awake), for an update over WebREPL, then sleep on
        log("sleep: asked to stay awake %d s: WebREPL is open till then" % stay)
        if n.wake:  # a timer wake started no WebREPL (startup): with the password the power-on saved
            try:
                import webrepl
                webrepl.start()
            except Exception as e:
                log("webrepl: not started: %s" % e)
        n.idle(time.ticks_add(time.ticks_ms(), stay * 1000))
    elif not n.wake:
        # After a power-on or reset (not a timer wake) someone may be there:
        # a window for WebREPL before the first sleep.
        log("sleep: first sleep in %d s: WebREPL is open till then (Ctrl-C there keeps the node awake)" % WINDOW_S)
        n.idle(time.ticks_add(time.ticks_ms(), WINDOW_S * 1000))
    for t in n.txs:
        if hasattr(t, "bye"):
            t.bye()
    ts = n.clock.epoch + n.clock.uptime() if n.clock.epoch is not None else 0
    nap(n.cfg["interval_s"], awake_ms(), log, m, ts)
