# DS18B20 temperature sensors on a 1-Wire bus (one GPIO, 4.7 kOhm pull-up
# to 3V3): what a config entry may say and what it publishes. Several
# DS18B20s may share one pin, each entry naming its sensor by ROM code.
# Boot only; the loop keeps read_ds18b20.
TYPES = ("ds18b20",)
DEFAULTS = {"pin": 12, "rom": "", "prefix": ""}
PINS = {"pin": "onewire"}  # a bus: other DS18B20 entries may share it


def quantities(c):
    # (name, unit, HA device class, display precision): 1/16 degC steps,
    # +-0.5 degC accuracy
    return ((c["prefix"] + "temperature", "°C", "temperature", 1),)


def check(e):
    if e.c["pin"] == 15:
        # GPIO15 must be low at boot; the bus's pull-up holds it high
        e.fail("pin", "another GPIO: a 1-Wire pull-up on GPIO15 (D8) stops the board from booting")
    r = e.c["rom"]
    if r and (len(r) != 16 or r[:2] != "28" or any(ch not in "0123456789abcdef" for ch in r)):
        e.fail("rom", "\"\" (the only sensor on the pin) or a DS18B20's ROM code: "
               "16 lowercase hex digits starting with 28 (with several on one pin and no rom, the "
               "node names them in its err field)")


def start(c, units):
    from upynode.read_ds18b20 import Sensor
    return Sensor(c, units)
