# Home Assistant's REST API: the "ha" HTTP target (a POST per quantity to
# /api/states/sensor.<node_id>_<quantity>) and the ha_state LED's question
# (state(): what an entity is now).
import json

from upynode import http


def entity(node_id, quantity):
    # HA entity ids are [a-z0-9_], no "__", no "_" at either end.
    s = ""
    for ch in (node_id + "_" + quantity).lower():
        ch = ch if ("a" <= ch <= "z" or "0" <= ch <= "9") else "_"
        if ch != "_" or (s and s[-1] != "_"):
            s += ch
    return "sensor." + s.strip("_")


class Ha:
    name = "ha"
    key = "homeassistant.token"
    only = ""
    send = http.send
    poll = close = http.idle

    def __init__(self, cfg, node_id, units, log=print, sens=None):
        self.ha = cfg["homeassistant"]
        http.setup(self, cfg, node_id, units, log, self.ha["url"])
        # The HA device class of each quantity that has one: its driver's,
        # else its unit's. Worked out once here, so that the loop keeps a
        # few short strings and not the discovery module.
        from upynode import discovery, release
        from upynode.assemble import sensor_about  # Ha is built by assemble
        a = sensor_about(sens or ())
        self.cls = {}
        for q, u in self.units.items():
            c = a.get(q, (None,))[0] or discovery.dev_class(q, u)
            if c:
                self.cls[q] = c
        release("discovery")
        if self.ha["api_password"]:
            log("http: api_password ignored: HA removed x-ha-access in 2019; "
                "set homeassistant.token to a long-lived token")

    def _one(self, q, v):
        u = self.units[q]
        # The name as MQTT discovery has HA show it: "<node> Kitchen temperature"
        a = {"friendly_name": "%s %s%s" % (self.node_id, q[0].upper(), q[1:].replace("_", " ")),
             "state_class": "measurement"}
        if u and u != "raw":
            a["unit_of_measurement"] = u
        if q in self.cls:
            a["device_class"] = self.cls[q]
        hd = {"Authorization": "Bearer " + self.ha["token"],
              "Content-Type": "application/json"}
        # HA keeps states as strings. bytes: Content-Length must count
        # bytes, and "°C" is 2 of them
        body = json.dumps({"state": str(v), "attributes": a}).encode()
        return http.request("POST", "%s/api/states/%s" % (self.base, entity(self.node_id, q)),
                            self.h["timeout_s"], hd, body)[0]


def _state(f):
    # The top-level "state" of the JSON object read from f, scanned as it
    # comes in 64-byte chunks: an entity's attributes may be many KB (a
    # weather forecast), the node has ~30 KB. Only the chunk and one
    # top-level string (cut at 260 bytes: HA's states are at most 255
    # characters) are in RAM. -> the state, or None if it has none.
    d = 0          # depth in {} and []
    s = None       # the top-level string being read
    esc = text = False
    key = 0        # 1: the last top-level string was "state"; 2: and its ":" came
    while True:
        chunk = f.read(64)
        if not chunk:
            return None
        for b in chunk:
            if text:
                if esc:
                    esc = False
                elif b == 92:  # backslash
                    esc = True
                elif b == 34:  # the closing quote
                    text = False
                    if s is not None:
                        if key == 2:
                            return json.loads(b'"' + s + b'"') if len(s) < 260 else None
                        key = s == b"state"
                        s = None
                    continue
                if s is not None and len(s) < 260:
                    s.append(b)
            elif b == 34:  # an opening quote
                text = True
                if d == 1:
                    s = bytearray()
            elif b in b" \t\r\n":
                pass
            elif key == 2:
                return None  # not a string (HA's states are)
            elif b == 58 and d == 1 and key:  # ":" after "state"
                key = 2
            else:
                key = 0
                if b in b"{[":
                    d += 1
                elif b in b"}]":
                    d -= 1


# A token HA refuses (401): HA logs a failed login for each request and
# raises a notification, and the ha_state LED asks every cycle. After a 401
# the question waits 1, 2, 4 ... minutes, at most an hour; an answer that
# is not a 401 ends the wait.
_denied = 0  # 401s in a row
_retry_at = 0  # ticks before which state() does not ask


def state(cfg, entity_id, log=print):
    # What a Home Assistant entity is now: its state string; "unknown" when
    # HA answered without one (an error status, no state: logged); None
    # only when HA could not be reached (logged); False while it waits
    # after a 401 (asks nothing).
    global _denied, _retry_at
    import time
    if _denied and time.ticks_diff(_retry_at, time.ticks_ms()) > 0:
        return False
    ha = cfg["homeassistant"]
    try:
        st, v = http.request("GET", "%s/api/states/%s" % (ha["url"].rstrip("/"), entity_id),
                             cfg["http"]["timeout_s"], {"Authorization": "Bearer " + ha["token"]}, read=_state)
    except MemoryError:
        raise
    except Exception as e:
        log("ha: %s: %s" % (entity_id, http.why(e)))
        return None
    if st == 401:
        _denied += 1
        wait = min(3600, 60 << min(_denied - 1, 6))
        _retry_at = time.ticks_add(time.ticks_ms(), wait * 1000)
        log("ha: %s: HTTP 401 (check homeassistant.token): asked again in %d s" % (entity_id, wait))
        return "unknown"
    _denied = 0
    if v is not None:
        return v
    log("ha: %s: %s" % (entity_id, "HA's answer has no state" if st == 200 else "HTTP %d%s" % (
        st, " (no such entity)" if st == 404 else "")))
    return "unknown"


def follow(led, state, log=print):
    # The ha_state LED (upynode.led.Led) after state(): "on"/"off", or a
    # number against its threshold; unknown, unavailable or no answer keep
    # the last state. Here, not in Led: only an ha_state node loads this
    # module, and a method of Led takes every node's loop heap (see
    # assemble).
    if state is False:  # not asked (state(): a refused token's wait)
        return
    if state is None or state in ("unknown", "unavailable"):
        log("led: %s is %s: keeping the LED %s" % (led.entity, state or "unreachable",
                                                  "on" if led.sig.value() else "off"))
        return
    if state in ("on", "off"):
        led.sig.value(1 if state == "on" else 0)
        return
    try:
        led.sig.value(1 if float(state) >= led.threshold else 0)
    except ValueError:
        log("led: %s is %r, not a number: keeping the LED" % (led.entity, state[:20]))
