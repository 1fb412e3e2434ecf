# Fake `dht`: the sensor's 5 bytes from the world, decoded by the code of
# MicroPython's own driver (drivers/dht/dht.py, frozen in the ESP8266
# firmware): a DHT11 gives whole numbers (the integral byte: 21.5 -> 21;
# the part measures 0-50 degC, so no negatives), a DHT22 tenths with a sign
# bit. Before the first measure() the buffer is zeros, as in the driver.
# A read sooner than the part's minimum interval times out, as a real one
# tends to, so a driver that reads too often fails its tests.
import time

import _world


class DHTBase:
    _gap_ms = 2000

    def __init__(self, pin):
        self.pin = pin
        self.buf = bytearray(5)
        self._last = None
        self._tries = 0

    def measure(self):
        now = time.ticks_ms()
        too_soon = self._last is not None and time.ticks_diff(now, self._last) < self._gap_ms
        self._last = now
        self._tries += 1
        f = _world.fault("dht")
        if too_soon or f == "timeout" or (f == "flaky" and self._tries % 2):
            raise OSError(110)  # ETIMEDOUT
        buf = self.buf
        buf[0:4] = self._frame(float(_world.get("temperature")), float(_world.get("humidity")))
        buf[4] = (buf[0] + buf[1] + buf[2] + buf[3]) & 0xFF
        if f == "checksum":  # a bit flipped on the wire
            buf[4] ^= 0x01
        # micropython-lib's dht.py checks the frame as the chip's does
        if (buf[0] + buf[1] + buf[2] + buf[3]) & 0xFF != buf[4]:
            raise Exception("checksum error")


class DHT11(DHTBase):
    _gap_ms = 1000

    def _frame(self, t, h):
        t = min(max(t, 0.0), 50.0)
        h = min(max(h, 0.0), 99.0)
        return bytes((int(h), 0, int(t), int(t * 10) % 10))

    def humidity(self):
        return self.buf[0]

    def temperature(self):
        return self.buf[2]


class DHT22(DHTBase):
    def _frame(self, t, h):
        rh = int(round(min(max(h, 0.0), 100.0) * 10))
        raw = int(round(abs(t) * 10)) & 0x7FFF
        return bytes((rh >> 8, rh & 0xFF, (raw >> 8) | (0x80 if t < 0 else 0), raw & 0xFF))

    def humidity(self):
        return (self.buf[0] << 8 | self.buf[1]) * 0.1

    def temperature(self):
        t = ((self.buf[2] & 0x7F) << 8 | self.buf[3]) * 0.1
        if self.buf[2] & 0x80:
            t = -t
        return t
