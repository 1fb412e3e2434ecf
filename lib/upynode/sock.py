# TCP sockets for umqtt.simple and urequests (neither has a timeout of its
# own): every wait is bounded by the transport's timeout_s, and sliced into
# waits of SLICE_S with the watchdog fed between them (upynode.feed). Host
# names are resolved before the watchdog starts and kept: a DNS lookup on
# the ESP8266 waits up to several seconds without feeding it.
#
# Every read is bounded: what the network sends is never held in RAM beyond
# MAX_IN bytes at once. umqtt.simple reads a whole incoming payload with one
# read(n) (a retained message of 100 KB on a subscribed topic reset the
# node in a loop: it comes back at every reconnect); a read of more than
# MAX_IN is taken off the socket in pieces of MAX_IN, thrown away, and
# answered with b"", the size left in `dropped` for the caller to report.
# readline() stops at MAX_IN too (HTTP status and header lines).
import time

import socket as usocket  # "socket" on MicroPython 1.2x and CPython alike

from upynode import feed

SLICE_S = 1
MAX_IN = 256  # commands are a few bytes; an HTTP status line fits
_TIMEOUTS = (11, 110, 116)  # EAGAIN, ETIMEDOUT (lwIP and the unix port)
_addrs = {}
dns = True  # False once the watchdog runs: then only resolved names connect


def getaddrinfo(host, port, *a):
    k = "%s:%d" % (host, port)
    if k not in _addrs:
        if not dns and not _is_ip(host):
            raise OSError(-2)  # "host name not found": resolved at boot only
        _addrs[k] = usocket.getaddrinfo(host, port, *a)
    return _addrs[k]


def _is_ip(h):
    p = h.split(".")
    return len(p) == 4 and all(x.isdigit() for x in p)


class Sock:
    # What umqtt.simple and urequests (the pinned versions) ask of a socket;
    # no settimeout(): neither calls it, and timeout_s rules every wait.
    def __init__(self, t, *a):
        self.s = usocket.socket(*a)
        self.t = t * 1000
        self.blocking = True
        self.s.settimeout(SLICE_S)
        self.rx = time.ticks_ms()  # when the peer last said anything
        self.dropped = 0  # the size of the last read thrown away (over MAX_IN)

    def connect(self, addr):
        feed()
        self.s.connect(addr)

    def _wait(self, fn, *a):
        # fn(*a), tried again after each slice's timeout until t has passed
        end = time.ticks_add(time.ticks_ms(), self.t)
        while True:
            feed()
            try:
                return fn(*a)
            except OSError as e:
                if e.args[0] not in _TIMEOUTS or time.ticks_diff(end, time.ticks_ms()) <= 0:
                    raise

    def read(self, n=-1):
        if n < 0 or n > MAX_IN:
            return self._drop(n)
        if not self.blocking:
            b = self.s.read(n)
        else:
            b = b""
            while len(b) < n:
                more = self._wait(self.s.read, n - len(b))
                if not more:
                    break  # closed by the peer
                b += more
        if b:
            self.rx = time.ticks_ms()
        return b

    def _drop(self, n):
        # Read n bytes (n < 0: up to the end) in pieces and forget them.
        self.dropped = 0
        while n:
            b = self._wait(self.s.read, MAX_IN if n < 0 else min(n, MAX_IN))
            if not b:
                break  # closed by the peer
            self.dropped += len(b)
            n -= len(b) if n > 0 else 0
        self.rx = time.ticks_ms()
        return b""

    def readline(self):
        return self._wait(self.s.readline, MAX_IN)

    def write(self, data, n=None):
        if n is not None:
            data = memoryview(data)[:n]
        return self._wait(self.s.write, data)

    def setblocking(self, flag):
        # umqtt asks for blocking after the first byte of a message: here
        # that means "wait up to timeout_s, in slices"
        self.blocking = flag
        if flag:
            self.s.settimeout(SLICE_S)
        else:
            self.s.setblocking(False)

    def close(self):
        self.s.close()


class Net:
    # Stands in for the socket module inside umqtt.simple and urequests.
    SOCK_STREAM = usocket.SOCK_STREAM

    def __init__(self, t):
        self.t = t
        self.socks = []  # to close even where urequests forgets to
        self.getaddrinfo = getaddrinfo

    def socket(self, *a):
        s = Sock(self.t, *a)
        self.socks.append(s)
        return s

    def close(self):
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass
        self.socks = []


# Network errors in words, for the serial console (mqtt and http). Here, not
# in a module of its own: sock is loaded with the loop, and a module costs
# the heap its object and globals dict besides its functions.
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
