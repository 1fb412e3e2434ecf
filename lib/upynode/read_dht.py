# DHT11 / DHT22 on one GPIO. The sensor answers garbage or nothing when it
# is read too often, so reads are spaced by its minimum interval: asked
# again sooner, it gives its latest measurement rather than make the node
# wait (commands and the watchdog would wait too). A timeout (OSError
# ETIMEDOUT) or a checksum error is retried, then left to the caller to
# report. The config keys are declared in sensor_dht.
import time

from upynode import feed

MIN_GAP_MS = {"dht11": 1000, "dht22": 2000}


class Sensor:
    def __init__(self, c, units):
        import dht
        from machine import Pin
        kind = c["type"]
        self.dev = (dht.DHT11 if kind == "dht11" else dht.DHT22)(Pin(c["pin"]))
        self.gap = MIN_GAP_MS[kind]
        self.retries = c["retries"]
        # The sensor needs about a second after power-up: count from now.
        self.last = time.ticks_ms()
        self.units = units  # sensor_dht.quantities(c)
        self.latest = None

    def _measure(self):
        wait = self.gap - time.ticks_diff(time.ticks_ms(), self.last)
        while wait > 0:  # in slices: the watchdog is fed by feed() alone
            time.sleep_ms(min(wait, 500))
            feed()
            wait = self.gap - time.ticks_diff(time.ticks_ms(), self.last)
        self.last = time.ticks_ms()
        self.dev.measure()

    def read(self):
        if self.latest and time.ticks_diff(time.ticks_ms(), self.last) < self.gap:
            return self.latest
        self.latest = None
        for attempt in range(self.retries + 1):
            try:
                self._measure()
                break
            except MemoryError:
                raise
            except Exception:  # OSError timeout, or "checksum error"
                if attempt == self.retries:
                    raise
        # The driver's DHT22 values are tenths times 0.1 (51.300000000000004
        # where floats are doubles): round them to the part's tenths.
        self.latest = ((self.units[0][0], round(self.dev.temperature(), 1)),
                       (self.units[1][0], round(self.dev.humidity(), 1)))
        return self.latest
