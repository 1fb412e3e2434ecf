# Fake `dht`: DHT11 (whole numbers) and DHT22 (tenths) reading the world.
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
        self._t = self._h = None
        self._tries = 0

    def measure(self):
        now = time.ticks_ms()
        too_soon = self._last is not None and time.ticks_diff(now, self._last) < self._gap_ms
        self._last = now
        self._tries += 1
        f = _world.fault("dht")
        if too_soon or f == "timeout" or (f == "flaky" and self._tries % 2):
            raise OSError(110)  # ETIMEDOUT
        self._t = float(_world.get("temperature"))
        self._h = float(_world.get("humidity"))


class DHT11(DHTBase):
    _gap_ms = 1000

    def humidity(self):
        return int(round(self._h))

    def temperature(self):
        return int(round(self._t))


class DHT22(DHTBase):
    def humidity(self):
        return round(self._h, 1)

    def temperature(self):
        return round(self._t, 1)
