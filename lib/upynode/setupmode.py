# Setup mode: the node keeps its access point and WebREPL up and waits for a
# fix: a config.json that validates (written over WebREPL), or, when only
# WiFi failed, the network coming back (after a power cut the router often
# boots slower than the node). Either one resets the node into normal mode.
import time

from upynode import config
from upynode import startup
from upynode.startup import CONFIG, WIFI

POLL_S = 5
REMIND_S = 60
GIVE_UP_S = 600  # a failure that is neither config nor WiFi: try a fresh boot


def _read():
    try:
        with open(config.PATH) as f:
            return f.read()
    except OSError:
        return None


def run(log=print):
    # What put the node here (startup.CONFIG, startup.WIFI, or None when
    # boot.py failed) decides what to wait for; the words for it are
    # repeated on the console every REMIND_S.
    failed, reason = startup.failed, startup.reason or "boot.py failed"
    # A bad config: check the file at the first poll even if it looks like
    # the one boot.py saw, since it may have been fixed in between.
    seen = None
    waited = 0
    retry_s = 0
    if failed != CONFIG:  # the config was fine (WiFi failed, or boot.py did): wait for a change
        seen = _read()
    if failed == WIFI:
        retry_s = config.load()["wifi"]["retry_s"]
    while True:
        time.sleep(POLL_S)
        waited += POLL_S
        text = _read()
        if text != seen:
            seen = text
            try:
                config.parse(text or "")
            except Exception as e:  # ConfigError, or anything a bad file provokes
                r = "%s: %s" % (CONFIG, e)
                if r != reason:
                    failed, reason = CONFIG, r
                    log("setup mode: " + reason)
                retry_s = 0
                continue
            log("setup: config.json is valid now: restarting")
            restart()
        if retry_s and waited % retry_s < POLL_S:
            import network
            # One attempt, and none while someone is on the setup AP: joining
            # moves the AP's channel and would drop their WebREPL session.
            if not network.WLAN(network.AP_IF).isconnected():
                from upynode import wifi
                w = config.load()["wifi"]
                w["retries"] = 1
                if wifi.join(w, log):
                    log("setup: WiFi is back: restarting")
                    restart()
        if failed is None and waited >= GIVE_UP_S:
            restart()
        if waited % REMIND_S < POLL_S:
            log("setup mode: " + reason)


def restart():
    import machine
    machine.reset()
