# Stand-in for the chip's `usocket` in MicroPython's WebAssembly port, which
# has no sockets: a peer in memory that answers as an MQTT broker (CONNACK,
# PUBACK for QoS 1, SUBACK, PINGRESP) or an HTTP server (200 and "{}") does,
# so the firmware runs its real code paths. On the chip the socket code is
# C in flash; this module's heap is measured and subtracted (heap32.py).
AF_INET = 2
SOCK_STREAM = 1
IPPROTO_TCP = 6
SOL_SOCKET = 1
SO_REUSEADDR = 4
_HTTP_REPLY = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    return [(AF_INET, SOCK_STREAM, IPPROTO_TCP, "", (host, port))]


class socket:
    def __init__(self, *args):
        self.out = b""    # what the peer has sent back, not yet read
        self.req = b""    # what the node wrote, until a whole MQTT packet
        self.http = None  # decided by the first byte written
        self.nb = False

    def connect(self, addr):
        pass

    def settimeout(self, t):
        self.nb = t == 0

    def setblocking(self, flag):
        self.nb = not flag

    def setsockopt(self, *args):
        pass

    def close(self):
        self.out = self.req = b""

    def write(self, buf, n=None):
        b = buf if n is None else buf[:n]
        b = b.encode() if isinstance(b, str) else bytes(b)  # urequests writes str too
        if self.http is None and b:
            self.http = b[0] >= 0x41  # "GET", "POST": MQTT's first byte is 0x10
            if self.http:
                self.out = _HTTP_REPLY
        if not self.http:
            self.req += b
            self._mqtt()
        return len(b)

    send = write

    def _mqtt(self):
        r = self.req
        while len(r) >= 2:
            n = sh = 0
            i = 1
            while True:
                if i >= len(r):
                    return
                c = r[i]
                n |= (c & 0x7F) << sh
                sh += 7
                i += 1
                if not c & 0x80:
                    break
            if len(r) < i + n:
                return
            kind = r[0] >> 4
            if kind == 1:    # CONNECT
                self.out += b"\x20\x02\x00\x00"
            elif kind == 3 and r[0] & 6:  # PUBLISH, QoS 1: the packet id follows the topic
                t = i + 2 + (r[i] << 8 | r[i + 1])
                self.out += b"\x40\x02" + r[t:t + 2]
            elif kind == 8:  # SUBSCRIBE
                self.out += b"\x90\x03" + r[i:i + 2] + b"\x00"
            elif kind == 12:  # PINGREQ
                self.out += b"\xd0\x00"
            r = self.req = r[i + n:]

    def read(self, n=4096):
        if not self.out:
            if self.http:
                return b""  # the server closed the connection after its reply
            if self.nb:
                return None
            raise OSError(110)  # ETIMEDOUT: a blocking read with nothing to come
        b, self.out = self.out[:n], self.out[n:]
        return b

    recv = read

    def readline(self, limit=-1):  # the chip's stream readline takes a limit too
        i = self.out.find(b"\n") + 1 or len(self.out)
        if 0 <= limit < i:
            i = limit
        b, self.out = self.out[:i], self.out[i:]
        return b

    def readinto(self, buf, n=None):
        b = self.read(len(buf) if n is None else n)
        if b is None:
            return None
        buf[:len(b)] = b
        return len(b)
