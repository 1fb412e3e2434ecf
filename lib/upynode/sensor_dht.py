# DHT11 / DHT22 on one GPIO: what a config entry may say and what it
# publishes. Boot only; the loop keeps read_dht.
TYPES = ("dht11", "dht22")
DEFAULTS = {"pin": 14, "prefix": "", "retries": 1}
PINS = {"pin": None}  # a DHT's data line is its own


def quantities(c):
    # (name, unit, HA device class, display precision): the DHT11 gives
    # whole numbers, the DHT22 tenths
    p, d = c["prefix"], 1 if c["type"] == "dht22" else 0
    return ((p + "temperature", "°C", "temperature", d),
            (p + "humidity", "%", "humidity", d))


def check(e):
    e.whole("retries", 0, 5)
    if e.c["pin"] == 15:
        # GPIO15 must be low at boot; the DHT's pull-up holds it high
        e.fail("pin", "another GPIO: a DHT on GPIO15 (D8) stops the board from booting")


def start(c, units):
    from upynode.read_dht import Sensor
    return Sensor(c, units)
