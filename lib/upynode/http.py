# Sends the readings over HTTP with urequests, to Home Assistant's REST API
# ("ha") or to the 2016 tutorial's Flask server ("flask"). Every request has
# a socket timeout and closes its socket. Secrets never reach the log.
import json


class _Net:
    # Stands in for usocket inside urequests only (urequests 0.9.1 has no
    # timeout): each socket it makes gets settimeout(t) before connect(), so
    # connect, send and every read are bounded. The sockets are kept so that
    # they are closed even where urequests forgets to (an error that is not
    # an OSError, a redirect).
    def __init__(self, t):
        import usocket
        self.u = usocket
        self.t = t
        self.socks = []
        self.getaddrinfo = usocket.getaddrinfo
        self.SOCK_STREAM = usocket.SOCK_STREAM

    def socket(self, *a):
        s = self.u.socket(*a)
        self.socks.append(s)
        s.settimeout(self.t)
        return s


def request(method, url, t, headers, data=None, limit=0):
    # -> (status, up to `limit` bytes of the body or None). Raises on
    # network errors; the sockets are closed either way.
    import urequests
    net = _Net(t)
    urequests.usocket = net
    r = None
    try:
        r = urequests.request(method, url, data=data, headers=headers)
        return r.status_code, (r.raw.read(limit) if limit else None)
    finally:
        urequests.usocket = net.u
        if r:
            r.close()
        for s in net.socks:
            try:
                s.close()
            except OSError:
                pass


def _why(e):
    from upynode.neterr import describe
    return describe(e)


def entity(node_id, quantity):
    # HA entity ids are [a-z0-9_], no "__", no "_" at either end.
    s = ""
    for ch in (node_id + "_" + quantity).lower():
        ch = ch if ("a" <= ch <= "z" or "0" <= ch <= "9") else "_"
        if ch != "_" or (s and s[-1] != "_"):
            s += ch
    return "sensor." + s.strip("_")


class Http:
    def __init__(self, cfg, node_id, units, log=print):
        self.h = cfg["http"]
        self.ha = cfg["homeassistant"]
        self.node_id = node_id
        self.units = dict(units)  # [(quantity, unit)] or {quantity: unit}: what to send
        self.log = log
        self.mac = None
        if self.h["target"] == "ha":
            self.base = self.ha["url"].rstrip("/")
            if self.ha["api_password"]:
                log("http: api_password ignored: HA removed x-ha-access in 2019; "
                    "set homeassistant.token to a long-lived token")
        else:
            self.base = self.h["url"].rstrip("/")
            import network
            m = network.WLAN(network.STA_IF).config("mac")
            self.mac = ":".join("%02x" % b for b in m)
        self.where = "%s %s" % (self.h["target"], self.base)  # for log lines: no secrets

    def poll(self):  # HTTP takes no commands
        pass

    def close(self):
        pass  # every request closes its own socket

    def send(self, msg):
        # One request per quantity in msg; True if every one was accepted.
        # A network error stops the rest: they would each wait a timeout.
        ok, sent = True, 0
        for q in self.units:
            v = msg.get(q)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            try:
                st = self._one(q, v)
            except MemoryError:
                raise
            except Exception as e:
                self.log("http: %s: %s" % (self.where, _why(e)))
                return False
            if st is None:
                continue
            sent += 1
            if not 200 <= st < 300:
                self.log("http: %s: %s: HTTP %d%s" % (self.where, q, st, " (check %s)" % (
                    "homeassistant.token" if self.mac is None else "http.api_key") if st == 401 else ""))
                ok = False
        if not sent:
            self.log("http: %s: nothing sent: no reading%s" % (
                self.where, "" if self.mac is None else " has a number in http.fields"))
        return ok and sent > 0

    def _one(self, q, v):
        t = self.h["timeout_s"]
        if self.mac is None:
            u = self.units[q]
            a = {"friendly_name": "%s %s" % (self.node_id, q), "state_class": "measurement"}
            if u and u != "raw":
                a["unit_of_measurement"] = u
            from upynode.discovery import dev_class
            c = dev_class(q, u)
            if c:
                a["device_class"] = c
            hd = {"Authorization": "Bearer " + self.ha["token"],
                  "Content-Type": "application/json"}
            # HA keeps states as strings. bytes: Content-Length must count
            # bytes, and "°C" is 2 of them
            body = json.dumps({"state": str(v), "attributes": a}).encode()
            return request("POST", "%s/api/states/%s" % (self.base, entity(self.node_id, q)),
                           t, hd, body)[0]
        f = self.h["fields"].get(q)
        if not f:
            return None  # not a tutorial field
        return request("GET", "%s/update/API_key=%s/mac=%s/field=%d/data=%s"
                       % (self.base, self.h["api_key"], self.mac, f, v), t, {})[0]


def ha_state(cfg, entity_id, log=print):
    # The state string of a Home Assistant entity, or None (logged).
    ha = cfg["homeassistant"]
    try:
        st, body = request("GET", "%s/api/states/%s" % (ha["url"].rstrip("/"), entity_id),
                           cfg["http"]["timeout_s"], {"Authorization": "Bearer " + ha["token"]}, limit=2048)
        if st == 200:
            return json.loads(body)["state"]
        log("ha: %s: HTTP %d%s" % (entity_id, st, " (no such entity)" if st == 404 else
                                   " (check homeassistant.token)" if st == 401 else ""))
    except MemoryError:
        raise
    except Exception as e:
        log("ha: %s: %s" % (entity_id, _why(e)))
    return None
