# MCP9808 temperature sensor on I2C (datasheet DS25095, register 5).
DEFAULTS = {"scl": 5, "sda": 4, "address": 0x18, "prefix": ""}

AMBIENT = 5  # ambient temperature register


class Sensor:
    def __init__(self, c):
        from machine import Pin, SoftI2C
        self.i2c = SoftI2C(scl=Pin(c["scl"]), sda=Pin(c["sda"]))
        self.addr = c["address"]
        self.buf = bytearray(2)
        self.name = c["prefix"] + "temperature"
        self.units = ((self.name, "°C"),)

    def read(self):
        # A missing device raises OSError (ENODEV): the caller reports it.
        self.i2c.readfrom_mem_into(self.addr, AMBIENT, self.buf)
        return ((self.name, decode(self.buf[0], self.buf[1])),)


def decode(hi, lo):
    # 13 bits in 1/16 degC; bit 12 is the sign; the top 3 bits are alert
    # flags (Tcrit, Tupper, Tlower) and are not part of the temperature.
    t = (hi & 0x0F) * 16 + lo / 16
    if hi & 0x10:
        t -= 256
    return t
