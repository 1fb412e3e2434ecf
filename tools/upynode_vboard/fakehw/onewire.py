# Fake `onewire` (frozen in the ESP8266 firmware): a 1-Wire bus on one pin.
# The devices on it are the world's "ds18b20" ROM codes (fakehw ds18x20
# plays their function commands); the fault "ds18b20": "absent" empties it.
import binascii

import _world


class OneWireError(Exception):
    pass


class OneWire:
    SEARCH_ROM = 0xF0
    MATCH_ROM = 0x55
    SKIP_ROM = 0xCC

    def __init__(self, pin):
        self.pin = pin

    def _roms(self):
        if _world.fault("ds18b20") == "absent":
            return []
        return sorted(_world.get("ds18b20"))

    def reset(self, required=False):
        # The presence pulse: any device on the bus answers.
        present = bool(self._roms())
        if required and not present:
            raise OneWireError
        return present

    def scan(self):
        return [bytearray(binascii.unhexlify(r)) for r in self._roms()]

    def crc8(self, data):
        crc = 0
        for b in data:
            for _ in range(8):
                mix = (crc ^ b) & 1
                crc >>= 1
                if mix:
                    crc ^= 0x8C
                b >>= 1
        return crc
