# The virtual board's world: what the fake sensors measure, which access
# points exist, which faults are switched on. Runs under MicroPython (the
# unix port) and CPython alike.
#
# In the VM, $UPYNODE_VBOARD names a folder: tests and the simulator write
# world.json there (atomically) and the fakes reread it on every access, so
# a change takes effect on the next reading. The fakes leave their own state
# there too (pin levels, the access point, RTC memory, the reset cause), for
# the tests to read and to survive a reset as on a real chip.
# Under CPython unit tests there is no folder: tests change WORLD and STATE.
import json
import os

DEFAULTS = {
    "temperature": 21.5,   # degC, MCP9808 and DHT
    "humidity": 45.0,      # %RH, DHT
    "light": 512,          # ADC counts 0..1024
    "aps": {},             # ssid -> {"password": str, "up": bool, "bssid": "aa:bb:..",
                           #          "channel": int, "rssi": dBm}; "up" false takes it down
    # How long joining takes: a full scan + association + DHCP (~4 s on the
    # chip), with the AP's BSSID given (~1.5 s), and what a static IP saves
    # of either (DHCP, ~0.5 s); scaled down 1:13 for the tests.
    "connect_ms": 300,
    "connect_ms_known": 110,
    "dhcp_ms": 40,
    # "sleep_scale" (the runner's, default 0.01): deep sleeps last x this
    # The station MAC (Espressif's 5c:cf:7f): machine.unique_id() is its
    # last three bytes reversed plus 0 (1e3a8b00), the AP's MAC the same
    # with 0x02 set in the first byte.
    "mac": "5c:cf:7f:8b:3a:1e",
    "i2c": {"scl": 5, "sda": 4},  # the GPIOs the MCP9808 is wired to
    "inputs": {},          # GPIO (str) -> level driven from outside
    # DS18B20s on the 1-Wire bus: ROM code hex -> degC, null = "temperature"
    "ds18b20": {"28ff6a2b3c4d5eb3": None},
    "ntp_offset_s": 0,     # what the NTP server (fake ntptime) is wrong by
    # The flash's filesystem in KB (_boardfs.py): writes past it fail with
    # OSError(28). ESP8266_GENERIC on a 4 MB board: 763 blocks of 4 KB
    "fs_kb": 3052,
    "faults": {},          # "dht": "timeout" | "flaky", "mcp9808": "absent",
                           # "ds18b20": "absent" | "crc", "ntptime": "timeout"
}

WORLD = {}
STATE = {}
DIR = os.getenv("UPYNODE_VBOARD")


def _read(name):
    try:
        with open(DIR + "/" + name) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def get(key):
    w = _read("world.json") if DIR else WORLD
    if w and key in w:
        return w[key]
    return DEFAULTS[key]


def fault(name):
    return get("faults").get(name)


def get_state(name, default=None):
    if not DIR:
        return STATE.get(name, default)
    v = _read(name + ".json")
    return default if v is None else v


def put_state(name, value):
    if not DIR:
        STATE[name] = value
        return
    path = DIR + "/" + name + ".json"
    with open(path + ".tmp", "w") as f:
        json.dump(value, f)
    os.rename(path + ".tmp", path)
