# The offline queue: readings a sink did not acknowledge, kept on flash
# until it does, oldest first. One queue per transport.
#
# backlog_<name>.q: a 4-byte header (b"UQ" + generation), then records
#   [length: 2 bytes][CRC-16 of the data: 2 bytes][data], appended only.
#   A power cut mid-append leaves a torn last record: its length runs past
#   the end or its CRC fails; it is dropped when the queue opens and never
#   touches the records before it. Bytes that are not a record elsewhere (a
#   flipped bit, an append cut short by a full flash) are skipped up to the
#   next record that checks out, a state message ("{"): every record it
#   found whole is kept. Whatever was lost is counted in `dropped` (the
#   state message's "drop") and logged with its reason.
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
        self.dropped = 0  # records lost since open: a full queue's oldest, corrupt and torn ones
        self.gen = self.start = self.end = self.n = 0
        self.clean = True  # nothing in the file between start and end but records
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
            at, d = self._find(f, self.start, size)
            bad = at > self.start and d is not None
            if d is not None:
                self.start = at
            self.end = self.start
            while d is not None:
                self.n += 1
                self.end = at + _REC + len(d)
                at, d = self._find(f, self.end, size)
                bad += at > self.end and d is not None
        if bad:
            self._lost(bad, "corrupt record(s) skipped")
        if self.end < size:
            # a torn append runs past the end; a whole one that fails its CRC went bad
            with open(self.path, "rb") as f:
                f.seek(self.end)
                h = f.read(2)
            whole = len(h) == 2 and self.end + _REC + (h[0] << 8 | h[1]) == size
            self._lost(1, "a corrupt record at the end" if whole else
                       "a torn record at the end (power cut while writing)")
        if bad or self.end < size:
            self.clean = not bad
            try:
                self._compact()
            except OSError as e:
                # a full flash: appends go after those bytes, and the walk
                # skips them again (counted once more when they come first)
                _remove(self.path + ".tmp")
                self.end, self.clean = size, False
                self.log("backlog %s: not rewritten: %s" % (self.name, e))
        elif not self.n:
            self._clear()

    def _lost(self, n, why):
        self.dropped += n
        self.log("backlog %s: %s: %d counted in drop" % (self.name, why, n))

    def _find(self, f, at, end):
        # The first whole record at or after at: (offset, data), or (end,
        # None). Past bytes that are not one, a record is looked for only
        # where a state message ("{") starts 4 bytes on: a chance match of
        # length and CRC in garbage is then rarer still.
        f.seek(at)
        d = self._read(f, end - at)
        if d is not None:
            return at, d
        at += 1
        while at + _REC < end:
            f.seek(at + _REC)
            b = f.read(min(256, end - at - _REC))
            i = b.find(b"{")
            if i < 0:
                at += len(b)
                continue
            at += i
            f.seek(at)
            d = self._read(f, end - at)
            if d is not None:
                return at, d
            at += 1
        return end, None

    def _read(self, f, left):
        # The next record's data, or None if it is torn or corrupt.
        h = f.read(_REC)
        if len(h) < _REC:
            return None
        n = h[0] << 8 | h[1]
        if not n or _REC + n > left or _REC + n > self.max // 4:
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
            end = _HEAD
            if self.n:
                with open(self.path, "rb") as f:
                    at, d = self.start, b""
                    if self.clean:  # bytes as they are: no CRC per record, a WDT's worth
                        f.seek(at)
                        left = self.end - at
                        while left:
                            b = f.read(min(left, 256))
                            out.write(b)
                            left -= len(b)
                        end += self.end - at
                        d = None
                    while d is not None:  # record by record, leaving what is not one
                        at, d = self._find(f, at, self.end)
                        if d is not None:
                            f.seek(at)
                            out.write(f.read(_REC + len(d)))
                            end += _REC + len(d)
                            at += _REC + len(d)
        self.end = end
        self.clean = True
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
        # An append the flash has no room for fails here, before writing (an
        # append cut short would leave bytes that the walk must skip): a
        # block for the data and one for the file system's own records.
        try:
            st = os.statvfs(self.path)
            if st[0] * st[3] < need + 2 * st[0]:
                raise OSError(28)  # ENOSPC, as the file system says it
        except AttributeError:
            pass
        try:
            with open(self.path, "ab") as f:
                f.write(bytes((len(data) >> 8, len(data) & 0xFF, c >> 8, c & 0xFF)) + data)
        except OSError:
            # what reached the flash, if anything, is no record: later ones
            # go after it, and the walk skips it (counted once more there)
            self.end = max(self.end, _size(self.path))
            self.clean = False
            raise
        self.end += need
        self.n += 1
        if dropped:
            self._save_pos()

    def peek(self, n):
        # Up to n of the oldest records, oldest first.
        out = []
        if not self.n:
            return out
        if self._head():  # the oldest is whole (or the queue is empty now)
            with open(self.path, "rb") as f:
                at = self.start
                while len(out) < min(n, self.n):
                    at, d = self._find(f, at, self.end)
                    if d is None:
                        break
                    at += _REC + len(d)
                    out.append(d)
        return out

    def _head(self):
        # Make the oldest record one that checks out: bytes that went bad
        # while the queue was open are skipped, counted, and what is left
        # is counted again. -> whether a record is left.
        with open(self.path, "rb") as f:
            at, d = self._find(f, self.start, self.end)
            if at > self.start:
                self._lost(1, "corrupt record(s) skipped")
                self.start, self.n = at, 0
                self.clean = False
                while d is not None:
                    self.n += 1
                    at, d = self._find(f, at + _REC + len(d), self.end)
                self._save_pos()
        return self.n

    def _skip(self, n):
        # the n oldest records, as peek() gave them
        with open(self.path, "rb") as f:
            for _ in range(min(n, self.n)):
                at, d = self._find(f, self.start, self.end)
                if d is None:
                    self.n = 0
                    break
                self.start = at + _REC + len(d)
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
    # A sink that refused a batch for good is sent one record at a time
    # until the record it refuses is found and dropped (a dead letter):
    # one bad reading must not hold the queue, nor the good ones with it.
    recs = t.q.peek(1 if getattr(t, "one", False) else n.cfg["backlog"]["per_cycle"])
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
    why = getattr(t, "refused", None)
    if why and not acked:
        if len(recs) > 1:
            t.one = True
        else:
            t.q.pop(1)
            t.one = False
            t.q._lost(1, "refused for good (%s)" % why)
            acked = -1  # not a failure of the sink: the next goes now
    t.q.pop(max(acked, 0))
    n.log("backlog %s: replayed %d, %d left" % (t.name, max(acked, 0), len(t.q)))
    if acked < 0:
        return
    if acked < len(recs):
        t.fails = 1
        t.retry_at = n._backoff(1, time.ticks_ms())
