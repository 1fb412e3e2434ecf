# DS18B20 on 1-Wire (the firmware's onewire and ds18x20 modules). A
# conversion takes 750 ms (12 bits): rather than block the loop for it on
# every cycle, each read starts the next conversion, which finishes while
# the node waits for its next cycle. A reading is therefore the
# temperature at the end of the previous cycle (up to interval_s old);
# only the first read, or one after a failure, waits out its conversion.
# The config keys are declared in sensor_ds18b20.
import time

CONVERSION_MS = 750


class Sensor:
    def __init__(self, c, units):
        import ds18x20
        import onewire
        from machine import Pin
        self.ds = ds18x20.DS18X20(onewire.OneWire(Pin(c["pin"])))
        self.want = c["rom"]
        self.rom = None     # found on the first read (and after a failure)
        self.since = None   # ticks of the conversion under way
        self.units = units  # sensor_ds18b20.quantities(c)
        self._convert()

    def _convert(self):
        # Every DS18B20 on the bus converts at once (skip ROM).
        try:
            self.ds.convert_temp()
            self.since = time.ticks_ms()
        except Exception:  # no sensor answers: read() reports it
            self.since = None

    def _find(self):
        roms = ["".join("%02x" % b for b in r) for r in self.ds.scan()]
        if self.want:
            roms = [r for r in roms if r == self.want]
        if not roms:
            raise OSError(19)  # ENODEV: "no device"
        if len(roms) > 1:
            raise ValueError("%d sensors on the pin: set \"rom\" to one of %s" % (len(roms), ", ".join(roms)))
        import binascii
        return bytearray(binascii.unhexlify(roms[0]))

    def read(self):
        try:
            if self.since is None:
                self._convert()
                if self.since is None:
                    raise OSError(19)
            wait = CONVERSION_MS - time.ticks_diff(time.ticks_ms(), self.since)
            if wait > 0:
                time.sleep_ms(wait)
            if self.rom is None:
                self.rom = self._find()
            t = self.ds.read_temp(self.rom)
        except Exception:
            self.rom = self.since = None  # look again next time
            raise
        self._convert()  # for the next cycle
        return ((self.units[0][0], t),)

