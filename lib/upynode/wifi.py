# WiFi station with a deadline and retries (the tutorials' busy-wait on
# isconnected() hangs forever), and the setup access point.
import time

import network

REASONS = {network.STAT_WRONG_PASSWORD: "wrong password",
           network.STAT_NO_AP_FOUND: "network not found",
           network.STAT_CONNECT_FAIL: "connection failed"}


def join(w, log=print, learn=False):
    # learn: a deep-sleep node. After its first join it finds the AP's BSSID
    # and channel (a scan, ~2 s, once per power-on) and keeps them in RTC
    # memory; every later wake then joins that AP by BSSID, without the full
    # scan (~1.5 s instead of ~4 s). A static wifi.ifconfig skips DHCP.
    sta = network.WLAN(network.STA_IF)
    sta.active(True)
    if w.get("ifconfig"):
        sta.ifconfig(tuple(w["ifconfig"]))
    hint = _known() if learn else None
    # After a reset or wake the SDK is already joining the network it keeps
    # in flash: when that is ours, a connect() would only start it over. If
    # it fails (a changed password), the attempts below use config.json's.
    if not hint and sta.config("ssid") == w["ssid"] and sta.status() in (network.STAT_CONNECTING,
                                                                         network.STAT_GOT_IP):
        if not _wait(sta, w["timeout_s"]):
            return _joined(sta, w, log, learn)
    for attempt in range(1, w["retries"] + 1):
        if hint and attempt == 1:
            sta.connect(w["ssid"], w["password"], bssid=hint)
        else:  # the AP may have been replaced: no BSSID from the second attempt on
            sta.connect(w["ssid"], w["password"])
        why = _wait(sta, w["timeout_s"])
        if not why:
            return _joined(sta, w, log, learn and (not hint or attempt > 1))
        log("wifi: \"%s\" attempt %d/%d: %s" % (w["ssid"], attempt, w["retries"], why))
        sta.disconnect()
    return False


def _joined(sta, w, log, learn):
    network.WLAN(network.AP_IF).active(False)
    log("wifi: connected to \"%s\": %s" % (w["ssid"], sta.ifconfig()))
    if learn:
        _learn(sta, w["ssid"], log)
    return True


def _wait(sta, timeout_s):
    # None once joined, else why not
    t0 = time.ticks_ms()
    while not sta.isconnected():
        st = sta.status()
        if st in REASONS:
            return REASONS[st]
        if time.ticks_diff(time.ticks_ms(), t0) > timeout_s * 1000:
            return "no answer within %d s" % timeout_s
        time.sleep_ms(100)


def _known():
    # The BSSID kept by an earlier join of this power-on (RTC memory)
    from upynode import rtcmem
    m = rtcmem.load()
    return m["bssid"] if m else None


def _learn(sta, ssid, log):
    # The strongest AP of our network: its BSSID and channel, for the wakes
    from upynode import rtcmem
    try:
        aps = [a for a in sta.scan() if a[0] == ssid.encode()]
    except OSError as e:
        log("wifi: scan failed: %s" % e)
        return
    if aps:
        a = max(aps, key=lambda a: a[3])
        m = rtcmem.load() or rtcmem.empty()
        m["bssid"], m["ch"] = a[1], a[2]
        rtcmem.save(m)


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
