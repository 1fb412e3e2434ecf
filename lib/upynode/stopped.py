# The loop stopped by Ctrl-C (a person at the REPL, or `upynode deploy` /
# `config` over WebREPL): node.run() loads this then, so the loop's heap
# never holds it. The watchdog the loop started cannot be stopped and is
# not fed at the REPL: a timer feeds it from now on, or the chip would
# reset under the person within 2 s.
import upynode

ORPHAN_S = 60  # stopped over WebREPL, then no session for this long: back to the loop


def _session():
    # A WebREPL client is connected: dupterm slot 0 holds its stream (the
    # UART is slot 1). Taken and put back at once, as webrepl.py does.
    import os
    s = os.dupterm(None)
    os.dupterm(s)
    return s is not None


def keep_awake():
    # Stopped over WebREPL, the node must not stay at its REPL once that
    # session is gone (a dropped link mid-deploy, a deploy without --reset,
    # a closed browser tab): after ORPHAN_S with no session it restarts
    # into its loop. Stopped over USB (no session then), it stays.
    from machine import Timer
    left = [2 * ORPHAN_S if _session() else -1]  # timer periods

    def keep(t):
        upynode.wdt.feed()
        if left[0] < 0:
            return
        left[0] = 2 * ORPHAN_S if _session() else left[0] - 1
        if not left[0]:
            print("node: stopped over WebREPL and no session for %d s: restarting" % ORPHAN_S)
            import machine
            machine.reset()
    upynode.keeper = Timer(-1)
    upynode.keeper.init(period=500, mode=Timer.PERIODIC, callback=keep)
