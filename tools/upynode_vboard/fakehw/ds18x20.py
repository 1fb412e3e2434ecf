# Fake `ds18x20` (frozen in the ESP8266 firmware): DS18B20s on a fake
# onewire bus. As on the part, convert_temp() starts a 750 ms conversion on
# every sensor of the bus and read_temp() returns the scratchpad: the last
# *finished* conversion, 85.0 (the power-on value) before the first one. A
# driver that reads too early gets a stale or 85.0 reading and fails its
# tests. Temperatures are the world's "ds18b20" {rom hex: degC or null}
# (null: the world's "temperature"), in the part's 1/16 degC steps. The
# fault "ds18b20": "crc" makes every read fail its CRC, as a long unshielded
# cable does.
import binascii
import time

import _world

_CONVERSION_MS = 750


class DS18X20:
    def __init__(self, onewire):
        self.ow = onewire
        self.buf = bytearray(9)
        self._start = None    # ticks of the conversion under way
        self._pending = {}    # what it will latch
        self._latched = {}    # the scratchpads: rom hex -> degC

    def scan(self):
        return [rom for rom in self.ow.scan() if rom[0] in (0x10, 0x22, 0x28)]

    def _settle(self):
        if self._start is not None and time.ticks_diff(time.ticks_ms(), self._start) >= _CONVERSION_MS:
            self._latched.update(self._pending)
            self._start = None

    def convert_temp(self):
        self.ow.reset(True)
        self._settle()
        world = _world.get("ds18b20")
        self._pending = {}
        for rom in world:
            t = world[rom]
            self._pending[rom] = float(_world.get("temperature") if t is None else t)
        self._start = time.ticks_ms()

    def read_temp(self, rom):
        self.ow.reset(True)
        self._settle()
        key = binascii.hexlify(bytes(rom)).decode()
        if _world.fault("ds18b20") == "crc" or key not in _world.get("ds18b20"):
            raise Exception("CRC error")  # nobody answered: all ones
        return round(self._latched.get(key, 85.0) * 16) / 16
