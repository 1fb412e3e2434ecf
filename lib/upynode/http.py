# HTTP with urequests, shared by the two HTTP transports (upynode.ha: Home
# Assistant's REST API; upynode.flask: the 2016 tutorial's Flask URL) and the
# ha_state LED: only the configured one is imported. Every request has a
# socket timeout and closes its socket. Secrets never reach the log.
# Functions rather than a base class: a class costs heap and buys nothing
# here. A target class takes setup(), send and idle from here and gives
# `name` (for the loop's log), `key` (the config key to check on a 401),
# `only` (what limits the quantities sent, or "") and _one(quantity, value)
# -> HTTP status, or None if that quantity is not sent.


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


def why(e):
    from upynode.neterr import describe
    return describe(e)


def setup(t, cfg, node_id, units, log, url):
    # What every target keeps.
    t.h = cfg["http"]
    t.node_id = node_id
    t.units = dict(units)  # [(quantity, unit)] or {quantity: unit}: what to send
    t.log = log
    t.base = url.rstrip("/")
    t.where = "%s %s" % (t.name, t.base)  # for log lines: no secrets


def idle(t):  # poll() and close(): HTTP takes no commands, every request closes its socket
    pass


def send(t, msg):
    # One request per quantity in msg; True if every one was accepted.
    # A network error stops the rest: they would each wait a timeout.
    ok, sent = True, 0
    for q in t.units:
        v = msg.get(q)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        try:
            st = t._one(q, v)
        except MemoryError:
            raise
        except Exception as e:
            t.log("http: %s: %s" % (t.where, why(e)))
            return False
        if st is None:
            continue
        sent += 1
        if not 200 <= st < 300:
            t.log("http: %s: %s: HTTP %d%s" % (t.where, q, st, " (check %s)" % t.key if st == 401 else ""))
            ok = False
    if not sent:
        t.log("http: %s: nothing sent: no reading%s" % (t.where, t.only))
    return ok and sent > 0
