# The offline queue: readings a sink did not acknowledge, kept on flash
# until it does, oldest first. One queue per transport.
#
# backlog_<name>.q: a 4-byte header (b"UQ" + generation), then records
#   [length: 2 bytes][CRC-16 of the data: 2 bytes][data], appended only.
#   A power cut mid-append leaves a torn last record: its length runs past
#   the end or its CRC fails; it is dropped when the queue opens and never
#   touches the records before it.
# backlog_<name>.pos: "<generation> <offset>": where the oldest record not
#   yet acknowledged starts. Acknowledging writes only this small file (tmp
#   + rename), never the queue. When the dead space before the offset grows
#   as large as the bound, the live records are copied to a new generation
#   (rarely: once per max_bytes written). A .pos of another generation
#   (a cut between the two renames) means "from the start".
# An empty queue has no files: online, the queue costs no flash writes.
import os

from upynode import save

_HEAD = 4
_REC = 4  # length + CRC


def crc16(data):
    # CRC-16/CCITT-FALSE. binascii.crc32 is not in the ESP8266 build, and a
    # 32-bit CRC would allocate a long int per byte there (small ints are 31 bits).
    c = 0xFFFF
    for b in data:
        c ^= b << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) & 0xFFFF if c & 0x8000 else (c << 1) & 0xFFFF
    return c


def _size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return -1


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


class Backlog:
    def __init__(self, name, max_bytes, log=print):
        self.path = "backlog_%s.q" % name
        self.pos_path = "backlog_%s.pos" % name
        self.name = name
        self.max = max_bytes
        self.log = log
        self.dropped = 0  # records dropped by a full queue since open
        self.gen = self.start = self.end = self.n = 0
        self._open()

    def __len__(self):
        return self.n

    def _open(self):
        size = _size(self.path)
        if size < _HEAD:
            _remove(self.path)  # absent, or cut while being created
            _remove(self.pos_path)
            return
        with open(self.path, "rb") as f:
            head = f.read(_HEAD)
            if head[:2] != b"UQ":
                self.log("backlog %s: not a queue file: starting a new one" % self.name)
                f.close()
                self._clear()
                return
            self.gen = head[2] << 8 | head[3]
            self.start = _HEAD
            try:
                with open(self.pos_path) as p:
                    g, off = p.read().split()
                if int(g) == self.gen and _HEAD <= int(off) <= size:
                    self.start = int(off)
            except (OSError, ValueError):
                pass
            # Walk the records from the read offset: count them, find the end.
            f.seek(self.start)
            at = self.start
            while at < size:
                r = self._read(f, size - at)
                if r is None:
                    break
                at += _REC + len(r)
                self.n += 1
            self.end = at
        if self.end < size:
            self.log("backlog %s: dropped a torn record at the end (power cut while writing)" % self.name)
            self._compact()
        elif not self.n:
            self._clear()

    @staticmethod
    def _read(f, left):
        # The next record's data, or None if it is torn or corrupt.
        h = f.read(_REC)
        if len(h) < _REC:
            return None
        n = h[0] << 8 | h[1]
        if not n or _REC + n > left:
            return None
        d = f.read(n)
        if len(d) < n or crc16(d) != h[2] << 8 | h[3]:
            return None
        return d

    def _clear(self):
        # Queue file first: a .pos without a queue is ignored and removed.
        _remove(self.path)
        _remove(self.pos_path)
        self.start = self.end = self.n = 0

    def _compact(self):
        # Copy the live records into a new generation of the file.
        self.gen = (self.gen + 1) & 0xFFFF
        tmp = self.path + ".tmp"
        with open(tmp, "wb") as out:
            out.write(b"UQ" + bytes((self.gen >> 8, self.gen & 0xFF)))
            if self.n:
                with open(self.path, "rb") as f:
                    f.seek(self.start)
                    left = self.end - self.start
                    while left:
                        b = f.read(min(left, 256))
                        out.write(b)
                        left -= len(b)
        self.end = _HEAD + self.end - self.start
        self.start = _HEAD
        try:
            os.rename(tmp, self.path)
        except OSError:  # FAT: no rename over a file
            _remove(self.path)
            os.rename(tmp, self.path)
        _remove(self.pos_path)

    def put(self, data):
        # Append one record; when the queue is full the oldest ones go first.
        if isinstance(data, str):
            data = data.encode()
        need = _REC + len(data)
        if need > self.max // 4 or need > 0xFFFF:
            raise ValueError("record of %d bytes is too big for the queue" % len(data))
        dropped = 0
        while self.n and self.end - self.start + need > self.max:
            self._skip(1)
            dropped += 1
        if dropped:
            self.dropped += dropped
            self.log("backlog %s: full: dropped %d oldest, %d since boot" % (self.name, dropped, self.dropped))
        if self.end and self.end + need > 2 * self.max:
            self._compact()
        if not self.end:
            self.gen = (self.gen + 1) & 0xFFFF
            with open(self.path, "wb") as f:
                f.write(b"UQ" + bytes((self.gen >> 8, self.gen & 0xFF)))
            self.start = self.end = _HEAD
        c = crc16(data)
        with open(self.path, "ab") as f:
            f.write(bytes((len(data) >> 8, len(data) & 0xFF, c >> 8, c & 0xFF)) + data)
        self.end += need
        self.n += 1
        if dropped:
            self._save_pos()

    def peek(self, n):
        # Up to n of the oldest records, oldest first.
        out = []
        if not self.n:
            return out
        with open(self.path, "rb") as f:
            f.seek(self.start)
            at = self.start
            while len(out) < min(n, self.n):
                d = self._read(f, self.end - at)
                if d is None:
                    break
                at += _REC + len(d)
                out.append(d)
        return out

    def _skip(self, n):
        with open(self.path, "rb") as f:
            f.seek(self.start)
            for _ in range(min(n, self.n)):
                h = f.read(_REC)
                ln = h[0] << 8 | h[1]
                self.start += _REC + ln
                f.seek(self.start)
                self.n -= 1

    def pop(self, n):
        # The n oldest records were acknowledged: forget them.
        if not self.n or n <= 0:
            return
        self._skip(n)
        if not self.n:
            self._clear()
        elif self.start - _HEAD >= self.max:
            self._compact()
        else:
            self._save_pos()

    def _save_pos(self):
        save(self.pos_path, "%d %d" % (self.gen, self.start))


def replay(n, t):
    # The oldest few records of sink t's queue (node.Node n), on the sink's
    # own history path (never as the current state); a record leaves the
    # queue only once acknowledged.
    import json
    import time
    from upynode.sensors import dumps
    recs = t.q.peek(n.cfg["backlog"]["per_cycle"])
    if not recs:
        return
    e = n.clock.epoch
    if e is not None:
        for i, r in enumerate(recs):
            d = json.loads(r)
            if "up" in d and d.get("boot") == n.boot:
                # taken this boot before NTP answered: its ts now (stamp.Clock)
                d["ts"] = e + d.pop("up")
                recs[i] = dumps(d)
    acked = t.replay(recs)
    t.q.pop(acked)
    n.log("backlog %s: replayed %d, %d left" % (t.name, acked, len(t.q)))
    if acked < len(recs):
        t.fails = 1
        t.retry_at = n._backoff(1, time.ticks_ms())
