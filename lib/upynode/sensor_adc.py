# ADC(0), the ESP8266's one analog input (A0), e.g. a photocell divider:
# what a config entry may say and what it publishes. Imported at boot only
# (config, assemble.load_sensors); the loop keeps read_adc.
TYPES = ("adc",)
DEFAULTS = {"quantity": "light", "unit": "%", "min": 0, "max": 100,
            "prefix": ""}
PINS = {}  # A0 is not a GPIO


def quantities(c):
    # (name, unit, HA device class, display precision). The quantity and
    # unit are the user's: None lets HA's unit rules pick the class
    # (discovery.dev_class: lx -> illuminance, V -> voltage, ...).
    n = c["prefix"] + c["quantity"]
    return ((n, c["unit"], None, 1), (n + "_raw", "raw", None, 0))


def check(e):
    e.name("quantity")
    e.text("unit", 0, 16)  # published as is: HA's unit_of_measurement
    if e.c["min"] == e.c["max"]:
        e.fail("max", "a value other than min (%s): the scale needs a span" % e.c["min"])


def start(c, units):
    from upynode.read_adc import Sensor
    return Sensor(c, units)
