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
        self.sens = sens or ()  # their drivers tell the HA device classes
        http.setup(self, cfg, node_id, units, log, self.ha["url"])
        if self.ha["api_password"]:
            log("http: api_password ignored: HA removed x-ha-access in 2019; "
                "set homeassistant.token to a long-lived token")

    def _one(self, q, v):
        u = self.units[q]
        a = {"friendly_name": "%s %s" % (self.node_id, q), "state_class": "measurement"}
        if u and u != "raw":
            a["unit_of_measurement"] = u
        from upynode.discovery import dev_class
        from upynode.sensors import about
        c = about(self.sens).get(q, (None,))[0] or dev_class(q, u)  # the driver's, else by unit
        if c:
            a["device_class"] = c
        hd = {"Authorization": "Bearer " + self.ha["token"],
              "Content-Type": "application/json"}
        # HA keeps states as strings. bytes: Content-Length must count
        # bytes, and "°C" is 2 of them
        body = json.dumps({"state": str(v), "attributes": a}).encode()
        return http.request("POST", "%s/api/states/%s" % (self.base, entity(self.node_id, q)),
                            self.h["timeout_s"], hd, body)[0]


def state(cfg, entity_id, log=print):
    # The state string of a Home Assistant entity, or None (logged).
    ha = cfg["homeassistant"]
    try:
        st, body = http.request("GET", "%s/api/states/%s" % (ha["url"].rstrip("/"), entity_id),
                                cfg["http"]["timeout_s"], {"Authorization": "Bearer " + ha["token"]}, limit=2048)
        if st == 200:
            return json.loads(body)["state"]
        log("ha: %s: HTTP %d%s" % (entity_id, st, " (no such entity)" if st == 404 else
                                   " (check homeassistant.token)" if st == 401 else ""))
    except MemoryError:
        raise
    except Exception as e:
        log("ha: %s: %s" % (entity_id, http.why(e)))
    return None
