# The reference receiver's batch API (tools/upynode_receiver): the
# "receiver" HTTP target. One POST /api/readings per cycle carries the
# reading with its identity and time; queued readings go the same way, a
# batch per cycle, and a 2xx acknowledges the whole batch (the receiver
# drops duplicates on node, boot and seq, so a lost answer costs nothing).
import json

from upynode import http


class Receiver:
    name = "receiver"
    key = "http.api_key"
    only = ""
    history = True
    poll = close = http.idle
    clock = None  # the node's Clock (set by the loop): the envelope's "up"

    def __init__(self, cfg, node_id, units, log=print):
        http.setup(self, cfg, node_id, units, log, cfg["http"]["url"])
        self.hd = {"X-API-Key": self.h["api_key"], "Content-Type": "application/json"}
        # the envelope's fixed part, built once
        self.head = '{"node":%s,"units":%s,' % (json.dumps(node_id), json.dumps(self.units))

    def _post(self, recs):
        # recs: the readings as JSON text -> True if the receiver took them
        up = self.clock.uptime() if self.clock else 0
        body = '%s"up":%d,"readings":[%s]}' % (self.head, up, ",".join(recs))
        try:
            st = http.request("POST", self.base + "/api/readings", self.h["timeout_s"], self.hd, body.encode())[0]
        except MemoryError:
            raise
        except Exception as e:
            self.log("http: %s: %s" % (self.where, http.why(e)))
            return False
        if 200 <= st < 300:
            return True
        self.log("http: %s: HTTP %d%s" % (self.where, st, " (check %s)" % self.key if st == 401 else ""))
        return False

    def send(self, msg, text):
        return self._post([text])

    def replay(self, records):
        return len(records) if self._post([r.decode() if isinstance(r, bytes) else r for r in records]) else 0
