# Fake `machine` for the virtual NodeMCU. Every public name here exists in
# micropython-esp8266-stubs with a compatible signature (tests check it).
import binascii
import time

import _world

PWRON_RESET = 0
WDT_RESET = 1
SOFT_RESET = 4
DEEPSLEEP_RESET = 5
HARD_RESET = 6
DEEPSLEEP = 4

_RESET_EXIT = 42  # exit status that tells the VM runner to boot again

_GPIOS = (0, 1, 2, 3, 4, 5, 12, 13, 14, 15, 16)


def unique_id():
    return binascii.unhexlify(_world.get("chip_id"))


def reset_cause():
    return _world.get_state("reset_cause", PWRON_RESET)


def reset():
    _world.put_state("reset_cause", SOFT_RESET)
    raise SystemExit(_RESET_EXIT)


def deepsleep(time_ms=0):
    _world.put_state("reset_cause", DEEPSLEEP_RESET)
    _world.put_state("sleep_ms", time_ms)
    raise SystemExit(_RESET_EXIT)


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1

    def __init__(self, id, mode=-1, pull=-1, *, value=None, drive=None, alt=None):
        if id not in _GPIOS:
            raise ValueError("invalid pin")
        self.id = id
        self._mode = self.IN
        self._level = 0
        self.init(mode, pull, value=value)

    def init(self, mode=-1, pull=-1, *, value=None, drive=None, alt=None):
        if mode != -1:
            self._mode = mode
        if value is not None:
            self.value(value)

    def value(self, x=None):
        if x is None:
            return self._level
        self._level = 1 if x else 0
        if self._mode != self.IN:
            _world.put_state("gpio%d" % self.id, self._level)

    def __call__(self, x=None):
        return self.value(x)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class Signal:
    def __init__(self, pin_obj, *args, invert=False, **kwargs):
        if not isinstance(pin_obj, Pin):
            pin_obj = Pin(pin_obj, *args, **kwargs)
        self._pin = pin_obj
        self._invert = bool(invert)

    def value(self, x=None):
        if x is None:
            return self._pin.value() ^ self._invert
        self._pin.value((1 if x else 0) ^ self._invert)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class ADC:
    def __init__(self, id):
        if id not in (0, 1):
            raise ValueError("invalid ADC")
        self._id = id

    def read(self):
        if self._id == 1:  # ADC(1) reads the supply voltage in mV on ESP8266
            return 3300
        return max(0, min(1024, int(_world.get("light"))))

    def read_u16(self):
        return min(65535, self.read() * 64)


def _mcp9808(reg):
    # The MCP9808 register model (datasheet DS25095). Tcrit, Tupper and
    # Tlower power up as 0 degC, so the alert flags in the top 3 bits of
    # the temperature register are set in normal use: a driver that does not
    # mask them reads nonsense, as on the real chip.
    if reg == 5:
        t = float(_world.get("temperature"))
        raw = int(round(t * 16)) & 0x1FFF
        flags = (0x80 if t >= 0 else 0) | (0x40 if t > 0 else 0) | (0x20 if t < 0 else 0)
        return bytes(((raw >> 8) | flags, raw & 0xFF))
    return {6: b"\x00\x54", 7: b"\x04\x00", 8: b"\x03"}.get(reg, b"\x00\x00")


class I2C:
    def __init__(self, id=-1, *, scl=None, sda=None, freq=400000, timeout=50000):
        self._scl, self._sda = scl, sda

    def _devices(self):
        return [] if _world.fault("mcp9808") == "absent" else [0x18]

    def scan(self):
        return self._devices()

    def readfrom_mem(self, addr, memaddr, nbytes, *, addrsize=8):
        if addr not in self._devices():
            raise OSError(19)  # ENODEV: nothing acknowledged the address
        data = _mcp9808(memaddr)
        return (data + bytes(nbytes))[:nbytes]

    def readfrom_mem_into(self, addr, memaddr, buf, *, addrsize=8):
        data = self.readfrom_mem(addr, memaddr, len(buf), addrsize=addrsize)
        for i in range(len(buf)):
            buf[i] = data[i]

    def writeto_mem(self, addr, memaddr, buf, *, addrsize=8):
        if addr not in self._devices():
            raise OSError(19)


class SoftI2C(I2C):
    def __init__(self, scl, sda, *, freq=400000, timeout=50000):
        I2C.__init__(self, -1, scl=scl, sda=sda, freq=freq, timeout=timeout)


class RTC:
    def __init__(self, id=0):
        pass

    def datetime(self, datetimetuple=None):
        if datetimetuple is None:
            t = time.localtime()
            return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0)

    def memory(self, data=None):
        # RTC memory survives reset and deep sleep, not a power cut.
        if data is None:
            return binascii.unhexlify(_world.get_state("rtc", ""))
        if len(data) > 492:
            raise ValueError("buffer too long")
        _world.put_state("rtc", binascii.hexlify(bytes(data)).decode())


class WDT:
    def __init__(self, *, id=0, timeout=5000):
        _world.put_state("wdt", timeout)

    def feed(self):
        pass
