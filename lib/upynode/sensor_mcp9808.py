# MCP9808 temperature sensor on I2C (datasheet DS25095): what a config
# entry may say and what it publishes. Boot only; the loop keeps read_mcp9808.
TYPES = ("mcp9808",)
DEFAULTS = {"scl": 5, "sda": 4, "address": 0x18, "prefix": ""}
# GPIO keys; I2C sensors may share their bus, so the tag says which line.
PINS = {"scl": "i2c.scl", "sda": "i2c.sda"}


def quantities(c):
    # (name, unit, HA device class, display precision): 1/16 degC steps,
    # +-0.25 degC typical accuracy
    return ((c["prefix"] + "temperature", "°C", "temperature", 2),)


def check(e):
    # 0x18-0x1F by A0-A2; any 7-bit address for a look-alike part
    e.whole("address", 8, 119)


def start(c, units):
    from upynode.read_mcp9808 import Sensor
    return Sensor(c, units)
