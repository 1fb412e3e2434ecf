# MCP9808 on I2C: ambient temperature is register 5. The config keys are
# declared in sensor_mcp9808.
AMBIENT = 5  # ambient temperature register


class Sensor:
    def __init__(self, c, units):
        from machine import Pin, SoftI2C
        self.i2c = SoftI2C(scl=Pin(c["scl"]), sda=Pin(c["sda"]))
        self.addr = c["address"]
        self.buf = bytearray(2)
        self.units = units  # sensor_mcp9808.quantities(c)

    def read(self):
        # A missing device raises OSError (ENODEV): the caller reports it.
        self.i2c.readfrom_mem_into(self.addr, AMBIENT, self.buf)
        return ((self.units[0][0], decode(self.buf[0], self.buf[1])),)


def decode(hi, lo):
    # 13 bits in 1/16 degC; bit 12 is the sign; the top 3 bits are alert
    # flags (Tcrit, Tupper, Tlower) and are not part of the temperature.
    t = (hi & 0x0F) * 16 + lo / 16
    if hi & 0x10:
        t -= 256
    return t
