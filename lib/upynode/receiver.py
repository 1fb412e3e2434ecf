# The reference receiver's batch API (tools/upynode_receiver): the
# "receiver" HTTP target. One POST /api/readings per cycle carries the
# reading with its identity and time; queued readings go the same way, a
# batch per cycle, and a 2xx acknowledges the whole batch (the receiver
# drops duplicates on node, boot and seq, so a lost answer costs nothing).
# upynode.http serves the receiver only while the node is built (setup()):
# this module keeps no reference to it (not even one of its functions: a
# function keeps its module's globals), and assemble releases it, so the
# loop of a node that posts only to the receiver does without it. make
# bench --quick, the full configuration's loop from ROMFS: 33,312 -> 32,544 B
# in the 64-bit VM, 18,864 -> 18,512 B in 32 bits (est.).
import json


def post(t, path, headers, body):
    # POST body (bytes parts, written as they come) to t.base + path; the
    # HTTP status. Written here rather than with urequests: the body is the
    # state message or up to backlog.per_cycle queued ones, and joined (then
    # encoded) it wanted 330-byte blocks twice in a heap with 8 KB free in
    # pieces (full configuration at the chip's heap, 64-bit VM); and a node
    # that posts only to the receiver never loads urequests. HTTP/1.0 as
    # urequests speaks it; the status line is all that is read.
    from upynode.sock import Net, getaddrinfo
    u = t.base.split("/", 3)  # http: '' [user@]host[:port] [path] (base: no trailing /)
    host, _, port = u[2].split("@")[-1].partition(":")
    ai = getaddrinfo(host, int(port) if port.isdigit() else 80, 0, Net.SOCK_STREAM)[0]
    net = Net(t.h["timeout_s"])
    try:
        s = net.socket(ai[0], ai[1], ai[2])
        s.connect(ai[-1])
        n = 0
        for p in body:
            n += len(p)
        s.write(b"POST %s%s HTTP/1.0\r\nHost: %s\r\n" % ("/" + u[3] if len(u) > 3 else "", path, host))
        for k in headers:
            s.write(b"%s: %s\r\n" % (k, headers[k]))
        s.write(b"Content-Length: %d\r\nConnection: close\r\n\r\n" % n)
        for p in body:
            s.write(p)
        st = s.readline().split(None, 2)
        if len(st) < 2 or not st[1].isdigit():
            raise OSError(-1)  # "connection closed": no status line
        st = int(st[1])
        why = b""
        if 400 <= st < 500:  # the receiver says why in its body: the first 80 bytes of it
            while s.readline() not in (b"\r\n", b"\n", b""):
                pass
            why = s.read(80)
        return st, why
    finally:
        net.close()


class Receiver:
    name = "receiver"
    key = "http.api_key"
    only = ""
    history = True
    def poll(self):  # HTTP takes no commands; every request closes its socket
        pass
    close = poll  # its own: a function of upynode.http would keep that module's globals
    clock = None  # the node's Clock (set by the loop): the envelope's "up"

    def __init__(self, cfg, node_id, units, log=print):
        from upynode import http
        http.setup(self, cfg, node_id, units, log, cfg["http"]["url"])
        self.hd = {"X-API-Key": self.h["api_key"], "Content-Type": "application/json"}
        # the envelope's fixed part, built once; bytes, as it is sent ("°C")
        self.head = ('{"node":%s,"units":%s,' % (json.dumps(node_id), json.dumps(self.units))).encode()

    refused = None  # why the receiver refused the last POST for good (a 4xx), else None

    def _post(self, recs):
        # recs: the readings as JSON bytes -> True if the receiver took them.
        # The body goes in parts (post()), never joined.
        self.refused = None
        up = self.clock.uptime() if self.clock else 0
        body = [self.head, b'"up":%d,"readings":[' % up]
        for r in recs:
            if len(body) > 2:
                body.append(b",")
            body.append(r)
        body.append(b"]}")
        try:
            st, why = post(self, "/api/readings", self.hd, body)
        except MemoryError:
            raise
        except Exception as e:
            from upynode.sock import describe
            self.log("http: %s: %s" % (self.where, describe(e)))
            return False
        if 200 <= st < 300:
            return True
        why = why.decode("utf-8", "replace").strip()
        if 400 <= st < 500 and st not in (401, 403, 408, 429):
            # for good: sent again it gets the same answer (backlog.replay
            # finds the record and drops it); 401 and 403 (the key, or its
            # nodes: the user's to fix), 408 and 429 (too soon) are worth
            # another try
            self.refused = "HTTP %d %s" % (st, why)
        self.log("http: %s: HTTP %d%s %s" % (self.where, st, " (check %s)" % self.key if st in (401, 403) else "",
                                             why))
        return False

    def send(self, msg, text):
        return self._post((text.encode(),))

    def replay(self, records):
        return len(records) if self._post([r if isinstance(r, bytes) else r.encode() for r in records]) else 0
