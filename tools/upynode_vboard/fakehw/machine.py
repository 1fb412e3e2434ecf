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
# Few names and strings in the fakes: each takes a runtime qstr in the VM
# (the chip keeps its modules' names in ROM), and the firmware's qstr table
# grows in doubling pools that want one contiguous block each (~7 KB for
# the 640-entry pool the node would need mid-run: field notes).

# ports/esp8266/machine_pin.c: GPIO 0-5, 9, 10, 12-16 exist (6-8 and 11
# drive the flash); anything else is "invalid pin".
_GPIOS = (0, 1, 2, 3, 4, 5, 9, 10, 12, 13, 14, 15, 16)
# A GPIO is one piece of hardware however many Pin objects name it: its
# mode, pull-up and output latch live here, per id (one process, one chip).
_PINS = {}


def _mac():
    # The station MAC in flash, as 6 bytes: the one fact both
    # machine.unique_id() and network's MACs come from.
    return binascii.unhexlify(_world.get("mac").replace(":", ""))


def unique_id():
    # ports/esp8266/modmachine.c returns system_get_chip_id() as 4 bytes,
    # little-endian; the SDK's chip id is the MAC's last three bytes, so
    # this is those bytes reversed and a zero byte.
    m = _mac()
    return bytes((m[5], m[4], m[3], 0))


def reset_cause():
    return _world.get_state("reset_cause", PWRON_RESET)


def reset():
    _world.put_state("reset_cause", SOFT_RESET)
    raise SystemExit(_RESET_EXIT)


def deepsleep(time_ms=None):
    # ports/esp8266/modmachine.c machine_deepsleep(): no time sleeps until
    # the RST pin (sleep_us 0); a time <= 0 is 1 ms; the time goes to the SDK
    # as uint32 microseconds, so ms * 1000 wraps above 4294967 ms (71.6 min):
    # deepsleep(5000000) sleeps 705 s. The runner sleeps and boots again.
    # RTC memory and the clock stay; the CPU and RAM go (the VM ends).
    if time_ms is not None:
        time_ms = ((max(1, time_ms) * 1000) & 0xFFFFFFFF) // 1000
    _world.put_state("reset_cause", DEEPSLEEP_RESET)
    _world.put_state("sleep_ms", time_ms)
    raise SystemExit(_RESET_EXIT)


# What tutorials touch and the node does not (freq, lightsleep, PWM, Timer,
# UART, SPI) lives in _machine_more, loaded at first use: the fakes take the
# VM's heap, while the chip keeps its modules in flash.
_LAZY = ("freq", "lightsleep", "PWM", "Timer", "UART", "SPI")


def __getattr__(name):
    if name in _LAZY:
        import _machine_more
        return getattr(_machine_more, name)
    raise AttributeError(name)


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, id, mode=-1, pull=-1, *, value=None, drive=None, alt=None):
        if type(id) is not int:  # mp_obj_get_int(): 2.0 is not a pin number
            raise TypeError("can't convert %s to int" % type(id).__name__)
        if id not in _GPIOS:
            raise ValueError("invalid pin")
        self.id = id
        if id not in _PINS:
            _PINS[id] = {"mode": self.IN, "pull": 0, "out": 0}
        self._hw = _PINS[id]
        if mode != -1 or pull != -1 or value is not None:
            self.init(mode, pull, value=value)

    def init(self, mode=-1, pull=-1, *, value=None, drive=None, alt=None):
        if mode == -1:  # MP_ARG_REQUIRED in the port
            raise TypeError("'mode' argument required")
        pull = 0 if pull in (-1, None) else pull
        if self.id == 16 and pull:
            raise ValueError("Pin(16) doesn't support pull")
        self._hw["mode"], self._hw["pull"] = mode, pull & self.PULL_UP
        if value is not None:
            self.value(value)

    def value(self, x=None):
        hw = self._hw
        if x is None:
            if hw["mode"] == self.OUT or (hw["mode"] == self.OPEN_DRAIN and not hw["out"]):
                return hw["out"]
            driven = _world.get("inputs").get(str(self.id))
            if driven is not None:
                return 1 if driven else 0
            return hw["pull"]  # pulled up: 1; floating: 0 here
        if hw["mode"] == self.IN:
            return  # an input has no output driver: the write goes nowhere
        hw["out"] = 1 if x else 0
        _world.put_state("gpio%d" % self.id, hw["out"])

    def __call__(self, x=None):
        return self.value(x)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def toggle(self):
        self.value(1 - self._hw["out"])

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, *, priority=1, wake=None, hard=False):
        if self.id == 16:
            raise OSError("pin does not have IRQ capabilities")
        if handler is not None:
            raise NotImplementedError("virtual board: pin interrupts are not simulated")


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
            raise ValueError("ADC(%d) doesn't exist" % id)
        self._id = id

    def read(self):
        if self._id == 1:  # ADC(1) reads the supply voltage in mV on ESP8266
            return 3300
        return max(0, min(1024, int(_world.get("light"))))

    def read_u16(self):
        # ports/esp8266/machine_adc.c: value * 65535 / 1024, integer division
        return self.read() * 65535 // 1024


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


def _pin(p):
    # mp_obj_get_pin_obj() in ports/esp8266/machine_pin.c: a Pin, not a number
    if not isinstance(p, Pin):
        raise ValueError("expecting a pin")
    return p.id


class SoftI2C:
    # extmod/machine_i2c.c: scl and sda are required. The MCP9808 answers
    # only when scl and sda are the GPIOs the world wires it to.
    def __init__(self, scl, sda, *, freq=400000, timeout=50000):
        self._scl, self._sda = _pin(scl), _pin(sda)

    def _devices(self):
        wired = _world.get("i2c")
        if _world.fault("mcp9808") == "absent" or (self._scl, self._sda) != (wired["scl"], wired["sda"]):
            return []
        return [0x18]

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


# The ESP8266 has no I2C hardware: machine.I2C is machine.SoftI2C
# (docs/esp8266/quickref.rst).
I2C = SoftI2C


class RTC:
    def __init__(self, id=0):
        pass

    def datetime(self, datetimetuple=None):
        # ports/esp8266/machine_rtc.c: (year, month, day, weekday, hours,
        # minutes, seconds, milliseconds); setting ignores the weekday. The
        # clock itself is the fake time module's (in the VM).
        if datetimetuple is None:
            t = time.localtime()
            return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0)
        d = tuple(datetimetuple)
        if len(d) != 8:  # mp_obj_get_array_fixed_n()
            raise ValueError
        if hasattr(time, "settime"):  # the fake clock's (fakehw/clock); else the host's clock stays
            time.settime(time.mktime((d[0], d[1], d[2], d[4], d[5], d[6], 0, 0)))

    def memory(self, data=None):
        # RTC memory survives reset and deep sleep, not a power cut.
        if data is None:
            return binascii.unhexlify(_world.get_state("rtc", ""))
        if len(data) > 492:
            raise ValueError("buffer too long")
        _world.put_state("rtc", binascii.hexlify(bytes(data)).decode())


class WDT:
    # ports/esp8266/machine_wdt.c: "The timeout on ESP8266 is fixed":
    # WDT() or WDT(timeout=5000), anything else is ValueError. Starting it
    # sets ets_loop_dont_feed_sw_wdt, so from then on only feed() feeds the
    # SDK's soft watchdog: time.sleep_ms(), a socket waiting, a WiFi scan no
    # longer do (ets_loop_iter() skips its feed). It cannot be stopped.
    # The last feed's ticks_ms are _world.STATE["wdt"] (unused otherwise in
    # the VM: the state lives in files there).
    def __init__(self, *, id=0, timeout=5000):
        if id != 0 or timeout != 5000:
            raise ValueError
        if "wdt" not in _world.STATE and _world.DIR:  # in the VM only, not under CPython's tests
            import _thread
            _thread.start_new_thread(_watch, ())
        self.feed()

    def feed(self):
        _world.STATE["wdt"] = time.ticks_ms()


def _watch():
    # A thread, so that it fires whatever the firmware is doing (a busy
    # loop, a blocking socket), as the chip's timer interrupt does.
    # ports/esp8266/ets_alt_task.c: a 1.6 s timer counts up the SDK's soft
    # watchdog and a feed clears it; at 2 it resets the chip: 1.6 to 3.2 s
    # after the last feed, by the timer's phase. The fake takes the earliest
    # (1600 ms), the one a node must plan for. reset_cause() is then 3, the
    # SDK's REASON_SOFT_WDT_RST, which machine has no name for (WDT_RESET,
    # 1, is the hardware watchdog, which a Python loop cannot starve). The
    # VM ends by SIGUSR2 (runner.WDT_EXIT) and the runner boots it again.
    import os
    while True:
        time.sleep_ms(50)
        if time.ticks_diff(time.ticks_ms(), _world.STATE["wdt"]) > 1600:
            _world.put_state("reset_cause", 3)
            os.system("kill -USR2 $PPID")
            time.sleep_ms(1000)
