# ADC(0): read() gives 0-1024; most boards (NodeMCU, D1 mini) divide 3.3 V
# down to the chip's 1.0 V full scale. The scaled value maps 0..1024 onto
# min..max. The config keys are declared in sensor_adc.


class Sensor:
    def __init__(self, c, units):
        from machine import ADC
        self.adc = ADC(0)
        self.lo = c["min"]
        self.span = c["max"] - c["min"]
        self.units = units  # sensor_adc.quantities(c)

    def read(self):
        raw = self.adc.read()
        return ((self.units[0][0], round(self.lo + raw * self.span / 1024, 1)),
                (self.units[1][0], raw))
