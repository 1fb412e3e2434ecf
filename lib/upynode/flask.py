# The 2016 tutorial's Flask URL: the "flask" HTTP target, a GET per
# quantity that has a field number in http.fields, keyed by the node's MAC
# (the reference receiver, tools/upynode_receiver, takes it).
from upynode import http


class Flask:
    name = "flask"
    key = "http.api_key"
    only = " has a number in http.fields"
    send = http.send
    poll = close = http.idle

    def __init__(self, cfg, node_id, units, log=print):
        http.setup(self, cfg, node_id, units, log, cfg["http"]["url"])
        import network
        m = network.WLAN(network.STA_IF).config("mac")
        self.mac = ":".join("%02x" % b for b in m)

    def _one(self, q, v):
        f = self.h["fields"].get(q)
        if not f:
            return None  # not a tutorial field
        return http.request("GET", "%s/update/API_key=%s/mac=%s/field=%d/data=%s"
                            % (self.base, self.h["api_key"], self.mac, f, v), self.h["timeout_s"], {})[0]
