# Publishes the state message over MQTT with umqtt.simple. A failure closes
# the connection and costs this one message; the next publish reconnects.
class Mqtt:
    def __init__(self, c, node_id, log=print):
        self.c = c
        self.node_id = node_id
        self.log = log
        self.client = None
        self.state_topic = "%s/%s/state" % (c["base_topic"], node_id)

    def connect(self):
        from umqtt.simple import MQTTClient
        c = self.c
        cl = MQTTClient(self.node_id, c["host"], c["port"], c["user"] or None,
                        c["password"] or None, c["keepalive"])
        cl.connect()
        # umqtt.simple has no timeout of its own: without one a half-open
        # connection blocks the node forever.
        cl.sock.settimeout(c["timeout_s"])
        self.client = cl
        self.log("mqtt: connected to %s:%d" % (c["host"], c["port"]))

    def close(self):
        if self.client:
            try:
                self.client.sock.close()
            except Exception:
                pass
        self.client = None

    def publish(self, payload):
        try:
            if self.client is None:
                self.connect()
            self.client.publish(self.state_topic, payload)
            return True
        except MemoryError:
            raise
        except Exception as e:
            self.log("mqtt: %s:%d: %s" % (self.c["host"], self.c["port"], describe(e)))
            self.close()
            return False


def describe(e):
    if isinstance(e, OSError) and e.args:
        n = e.args[0]
        return {103: "connection aborted", 104: "connection reset", 110: "timed out",
                111: "connection refused", 113: "host unreachable", 116: "timed out",
                -2: "host name not found", -1: "connection closed"}.get(n, "network error %s" % n)
    if type(e).__name__ == "MQTTException":
        return "broker refused the connection (code %s: 4 = bad user or password, 5 = not authorised)" % e
    return "%s %s" % (type(e).__name__, e)
