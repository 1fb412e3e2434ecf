# Setup mode: the node keeps its access point and WebREPL up and waits for a
# fix: a config.json that validates (written over WebREPL), or, when only
# WiFi failed, the network coming back (after a power cut the router often
# boots slower than the node). Either one resets the node into normal mode.
# Nothing may end it but a reset: a node that dies here is in a reset loop,
# or dead in the wall, with nobody to press the button. config, the largest
# module, is loaded only to check a changed file, and released after.
import gc
import os
import time

from upynode import startup
from upynode.startup import CONFIG, WIFI

PATH = "config.json"  # config.PATH
MAX_BYTES = 4096  # config.MAX_BYTES
POLL_S = 5
REMIND_S = 60
GIVE_UP_S = 600  # a failure that is neither config nor WiFi: try a fresh boot


def _stamp():
    # What tells a changed config.json from the one seen last, without
    # holding the file in RAM: its size and SHA-256, read in small pieces;
    # a file too big to read (config.load refuses it) by size and time.
    # None: no file.
    try:
        st = os.stat(PATH)
    except OSError:
        return None
    if st[6] > MAX_BYTES:
        return st[6], st[8]
    import hashlib
    h = hashlib.sha256()
    startup._digest(h, PATH)
    return st[6], h.digest()


def _load():
    # -> the config, or raises ConfigError (or whatever a bad file provokes)
    from upynode import config, release
    try:
        return config.load()
    finally:
        release("config")


def _current():
    # The config boot checked (config.ok, no config module), else checked now.
    c = startup.cached(startup.key())
    return c if c is not None else _load()


def run(log=print):
    # What put the node here (startup.CONFIG, startup.WIFI, or None when
    # boot.py failed) decides what to wait for; the words for it are
    # repeated on the console every REMIND_S.
    failed, reason = startup.failed, startup.reason or "boot.py failed"
    # A bad config: check the file at the first poll even if it looks like
    # the one boot.py saw, since it may have been fixed in between.
    seen = -1
    first = startup.checked  # the file boot checked
    waited = 0
    retry_s = 0
    try:
        if failed != CONFIG:  # the config was fine (WiFi failed, or boot.py did): wait for a change
            seen = _stamp()
        if failed == WIFI:
            retry_s = _current()["wifi"]["retry_s"]
    except Exception as e:  # changed or unreadable since boot: the first poll looks again
        seen = -1
        log("setup mode: %s: %s" % (type(e).__name__, e))
    while True:
        time.sleep(POLL_S)
        waited += POLL_S
        try:
            stamp = _stamp()
            if stamp != seen:
                seen = stamp
                try:
                    c = _load()
                except Exception as e:  # ConfigError, MemoryError, anything a bad file provokes
                    if isinstance(e, MemoryError) and stamp != first:
                        # A new file, and this heap (setup mode's, fragmented)
                        # cannot check it: a boot checks it in a fresh one. The
                        # file setup mode started with is never retried so.
                        log("setup: no heap here to check the new config.json: restarting to check it at boot")
                        restart()
                    r = "%s: %s" % (CONFIG, e if type(e).__name__ == "ConfigError" else
                                    "%s: %s" % (type(e).__name__, e))
                    if r != reason:
                        failed, reason = CONFIG, r
                        log("setup mode: " + reason)
                    retry_s = 0
                    continue
                log("setup: config.json is valid now: restarting")
                try:  # checked: the boot need not check it again
                    startup.save_checked(startup.key(), c)
                except Exception as e:
                    log("setup: %s: %s" % (type(e).__name__, e))
                restart()
            if retry_s and waited % retry_s < POLL_S:
                import network
                # One attempt, and none while someone is on the setup AP: joining
                # moves the AP's channel and would drop their WebREPL session.
                if not network.WLAN(network.AP_IF).isconnected():
                    from upynode import wifi
                    w = _current()["wifi"]
                    w["retries"] = 1
                    if wifi.join(w, log):
                        log("setup: WiFi is back: restarting")
                        restart()
            if failed is None and waited >= GIVE_UP_S:
                restart()
            if waited % REMIND_S < POLL_S:
                log("setup mode: " + reason)
        except Exception as e:  # MemoryError included: log, free, and keep waiting
            try:
                log("setup mode: %s: %s" % (type(e).__name__, e))
            except Exception:
                pass
        finally:
            gc.collect()


def restart():
    import machine
    machine.reset()
