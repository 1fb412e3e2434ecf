# What a deep-sleep wake must know, in the chip's RTC memory: it survives
# deep sleep and resets, not a power cut (after one, RTC.memory() is b"").
# 37 of its 492 bytes: magic, length and a Fletcher-16 of the fields, then
# the fields, so anything else found there (another layout, another
# firmware's data) reads as nothing saved.
import struct

import machine

MAGIC = 0x5531  # changes with the layout
_HEAD = "<HBH"  # magic, length of the fields, checksum
# wakes, seq, disc, led, bssid, ch, chain_ms, ts, sleep_ms
_BODY = "<IIIb6sBIII"
SIZE = struct.calcsize(_HEAD) + struct.calcsize(_BODY)  # 37


def empty():
    # wakes: deep-sleep naps since power-on; seq: the last reading's seq;
    # disc: fingerprint of the discovery announced (0: none yet); led: -1
    # not known, else 0/1; bssid (6 bytes or None) and ch: the AP joined;
    # chain_ms: sleep still to do before waking for real; ts: unix seconds
    # when the nap began (0: clock never synced); sleep_ms: that nap's length
    return {"wakes": 0, "seq": 0, "disc": 0, "led": -1, "bssid": None, "ch": 0,
            "chain_ms": 0, "ts": 0, "sleep_ms": 0}


def _sum(b):
    a = c = 0
    for x in b:
        a = (a + x) % 255
        c = (c + a) % 255
    return c << 8 | a


def load():
    # The saved fields as a dict (see empty()), or None when nothing valid is there.
    raw = machine.RTC().memory()
    n = struct.calcsize(_HEAD)
    if len(raw) < n:
        return None
    magic, size, chk = struct.unpack_from(_HEAD, raw)
    body = raw[n:n + size]
    if magic != MAGIC or size != len(body) or size != SIZE - n or chk != _sum(body):
        return None
    v = struct.unpack(_BODY, body)
    d = dict(zip(("wakes", "seq", "disc", "led", "bssid", "ch", "chain_ms", "ts", "sleep_ms"), v))
    if d["bssid"] == bytes(6):
        d["bssid"] = None
    return d


def save(d):
    body = struct.pack(_BODY, d["wakes"], d["seq"], d["disc"] & 0xFFFFFFFF, d["led"],
                       d["bssid"] or bytes(6), d["ch"], d["chain_ms"], d["ts"], d["sleep_ms"])
    machine.RTC().memory(struct.pack(_HEAD, MAGIC, len(body), _sum(body)) + body)


def clear():
    machine.RTC().memory(b"")
