# ADC(0): the ESP8266's one analog input, e.g. a photocell divider on A0.
# read() gives 0-1024; most boards (NodeMCU, D1 mini) divide 3.3 V down to
# the chip's 1.0 V full scale. The scaled value maps 0..1024 onto min..max.
DEFAULTS = {"quantity": "light", "unit": "%", "min": 0, "max": 100,
            "prefix": ""}


class Sensor:
    def __init__(self, c):
        from machine import ADC
        self.adc = ADC(0)
        self.name = c["prefix"] + c["quantity"]
        self.lo = c["min"]
        self.span = c["max"] - c["min"]
        self.units = ((self.name, c["unit"]), (self.name + "_raw", "raw"))

    def read(self):
        raw = self.adc.read()
        return ((self.name, round(self.lo + raw * self.span / 1024, 1)),
                (self.name + "_raw", raw))
