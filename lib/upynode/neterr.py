# Network errors in words, for the serial console (shared by mqtt and http).


def describe(e):
    if isinstance(e, OSError) and e.args:
        n = e.args[0]
        return {103: "connection aborted", 104: "connection reset", 110: "timed out",
                111: "connection refused", 113: "host unreachable", 115: "timed out connecting",
                116: "timed out", -2: "host name not found", -1: "connection closed"
                }.get(n, "network error %s" % n)
    if type(e).__name__ == "MQTTException":
        return "broker refused the connection (code %s: 4 = bad user or password, 5 = not authorised)" % e
    return "%s %s" % (type(e).__name__, e)
