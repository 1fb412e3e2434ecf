# WiFi station with a deadline and retries (the tutorials' busy-wait on
# isconnected() hangs forever), and the setup access point.
import time

import network

REASONS = {network.STAT_WRONG_PASSWORD: "wrong password",
           network.STAT_NO_AP_FOUND: "network not found",
           network.STAT_CONNECT_FAIL: "connection failed"}


def join(w, log=print):
    sta = network.WLAN(network.STA_IF)
    sta.active(True)
    for attempt in range(1, w["retries"] + 1):
        sta.connect(w["ssid"], w["password"])
        t0 = time.ticks_ms()
        why = "no answer within %d s" % w["timeout_s"]
        while not sta.isconnected():
            st = sta.status()
            if st in REASONS:
                why = REASONS[st]
                break
            if time.ticks_diff(time.ticks_ms(), t0) > w["timeout_s"] * 1000:
                break
            time.sleep_ms(100)
        if sta.isconnected():
            network.WLAN(network.AP_IF).active(False)
            log("wifi: connected to \"%s\": %s" % (w["ssid"], sta.ifconfig()))
            return True
        log("wifi: \"%s\" attempt %d/%d: %s" % (w["ssid"], attempt, w["retries"], why))
        sta.disconnect()
    return False


def connected():
    return network.WLAN(network.STA_IF).isconnected()


def start_ap(name, log=print):
    # An open AP: the WebREPL password protects the node; WPA2 would need a
    # key of 8+ characters that a node with a broken config cannot know.
    ap = network.WLAN(network.AP_IF)
    ap.active(True)
    ap.config(ssid=name, security=network.AUTH_OPEN)
    # The chip rejoins the network it last knew by itself; joining moves the
    # AP's channel and would drop a user's WebREPL session. Only setup mode's
    # own retries (join()) may join.
    sta = network.WLAN(network.STA_IF)
    if sta.active():
        sta.disconnect()
    log("setup: access point \"%s\" at %s" % (name, ap.ifconfig()[0]))
