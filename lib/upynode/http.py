# HTTP, shared by the HTTP transports (upynode.ha: Home Assistant's REST API,
# upynode.flask: the 2016 tutorial's Flask URL, both with urequests;
# upynode.receiver, which writes its own POST) and the ha_state LED: only the
# configured one is imported. Every request has a
# socket timeout and closes its socket. Secrets never reach the log.
# Functions rather than a base class: a class costs heap and buys nothing
# here. A target class takes setup(), send and idle from here and gives
# `name` (for the loop's log), `key` (the config key to check on a 401),
# `only` (what limits the quantities sent, or "") and _one(quantity, value)
# -> HTTP status, or None if that quantity is not sent.
from upynode.sensors import num


def request(method, url, t, headers, data=None, read=None):
    # -> (status, read(the response's socket) for a 200 answer, else None):
    # read takes what it needs of the body as it comes, the body is never
    # held whole. Raises on network errors; the sockets are closed either way.
    import urequests
    from upynode.sock import Net
    net = Net(t)
    real = urequests.usocket
    urequests.usocket = net  # every socket it makes is one of ours (upynode.sock)
    try:
        # parse_headers=False: no dict of headers nobody reads
        r = urequests.request(method, url, data=data, headers=headers, parse_headers=False)
        return r.status_code, (read(r.raw) if read and r.status_code == 200 else None)
    finally:
        urequests.usocket = real
        net.close()


def hide_url(u):
    # u with the password of its user (http://user:pw@host) as ***, for
    # every line that names it. The last "@" ends the user part: a
    # password may hold "@", "/" or ":"; an "@" in a path hides too much,
    # never too little.
    i = u.find("://") + 3
    j = u.rfind("@")
    if i < 3 or j < i:
        return u
    k = u.find(":", i)
    k = k if i <= k < j else i - 1
    return u[:k + 1] + "***" + u[j:]


def why(e):
    from upynode.sock import describe
    return describe(e)


def setup(t, cfg, node_id, units, log, url):
    # What every target keeps.
    t.h = cfg["http"]
    t.node_id = node_id
    t.units = dict(units)  # [(quantity, unit)] or {quantity: unit}: what to send
    t.log = log
    t.base = url.rstrip("/")
    t.where = "%s %s" % (t.name, hide_url(t.base))  # for log lines: no secrets


def idle(t):  # poll() and close(): HTTP takes no commands, every request closes its socket
    pass


def send(t, msg, text=None):
    # One request per quantity in msg; True if every one was accepted.
    # A network error stops the rest: they would each wait a timeout.
    ok, sent = True, 0
    for q in t.units:
        v = msg.get(q)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        try:
            st = t._one(q, num(v))  # as text, without float noise
        except MemoryError:
            raise
        except Exception as e:
            t.log("http: %s: %s" % (t.where, why(e)))
            return False
        if st is None:
            continue
        sent += 1
        if st == 401:
            # Wrong credentials: one failed login, not one per quantity (HA
            # notifies each and may ban the address); the loop backs off.
            t.log("http: %s: HTTP 401 (check %s)" % (t.where, t.key))
            return False
        if not 200 <= st < 300:
            t.log("http: %s: %s: HTTP %d" % (t.where, q, st))
            ok = False
    if not sent:
        t.log("http: %s: nothing sent: no reading%s" % (t.where, t.only))
    return ok and sent > 0
