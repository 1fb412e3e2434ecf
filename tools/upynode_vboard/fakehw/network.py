# Fake `network`: WLAN in STA and AP mode against the world's scripted
# access points, which can come and go while the node runs. No traffic
# goes anywhere: the node's sockets are the VM's real ones, on loopback.
import time

import _world

STA_IF = 0
AP_IF = 1
STAT_IDLE = 0
STAT_CONNECTING = 1
STAT_WRONG_PASSWORD = 2
STAT_NO_AP_FOUND = 3
STAT_CONNECT_FAIL = 4
STAT_GOT_IP = 5
AUTH_OPEN = 0
AUTH_WEP = 1
AUTH_WPA_PSK = 2
AUTH_WPA2_PSK = 3
AUTH_WPA_WPA2_PSK = 4

_IFACES = {}
_ALIASES = {"essid": "ssid", "authmode": "security", "password": "key"}


class WLAN:
    def __init__(self, interface_id=STA_IF):
        # One state per interface, as on the chip, however often it is made.
        if interface_id not in _IFACES:
            # The ESP8266 starts with its AP up (MicroPython-xxxxxx).
            _IFACES[interface_id] = {
                "active": interface_id == AP_IF, "target": None, "t0": 0,
                "ssid": "MicroPython-" + _world.get("chip_id")[-6:] if interface_id == AP_IF else "",
                "security": AUTH_WPA_WPA2_PSK, "key": "", "hostname": "upynode"}
        self._s = _IFACES[interface_id]
        self._if = interface_id
        if interface_id == AP_IF:
            self._publish()

    def _publish(self):
        s = self._s
        _world.put_state("ap", {"active": s["active"], "ssid": s["ssid"], "security": s["security"]})

    def active(self, is_active=None):
        if is_active is None:
            return self._s["active"]
        self._s["active"] = bool(is_active)
        if not is_active:
            self._s["target"] = None
        if self._if == AP_IF:
            self._publish()

    def connect(self, ssid=None, password=None, *, bssid=None):
        if self._if != STA_IF or not self._s["active"]:
            raise OSError("STA must be active")
        self._s["target"] = (ssid, password or "")
        self._s["t0"] = time.ticks_ms()

    def disconnect(self):
        self._s["target"] = None

    def status(self, param=None):
        s = self._s
        if param is not None:
            return -60  # rssi in dBm
        if self._if != STA_IF or not s["active"] or s["target"] is None:
            return STAT_IDLE
        if time.ticks_diff(time.ticks_ms(), s["t0"]) < _world.get("connect_ms"):
            return STAT_CONNECTING
        ssid, key = s["target"]
        ap = _world.get("aps").get(ssid)
        if not ap or not ap.get("up", True):
            return STAT_NO_AP_FOUND
        if ap.get("password", "") != key:
            return STAT_WRONG_PASSWORD
        return STAT_GOT_IP

    def isconnected(self):
        return self.status() == STAT_GOT_IP

    def ifconfig(self, ip_mask_gateway_dns=None):
        if ip_mask_gateway_dns is not None:
            return
        up = self.isconnected() if self._if == STA_IF else self._s["active"]
        if not up:
            return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")

    def config(self, *args, **kwargs):
        s = self._s
        if args:
            p = _ALIASES.get(args[0], args[0])
            if p == "mac":
                return b"\x5c\xcf\x7f" + _mac_tail(self._if)
            if p == "ssid" and self._if == STA_IF:
                return s["target"][0] if s["target"] else ""
            if p not in s:
                raise ValueError("unknown config param")
            return s[p]
        for k in kwargs:
            p = _ALIASES.get(k, k)
            if p not in ("ssid", "security", "key", "hostname", "channel", "hidden"):
                raise ValueError("unknown config param")
            s[p] = kwargs[k]
        if self._if == AP_IF:
            self._publish()

    def scan(self):
        aps = _world.get("aps")
        return [(ssid.encode(), b"\x00" * 6, 6, -60, AUTH_WPA2_PSK, 0)
                for ssid in aps if aps[ssid].get("up", True)]


def _mac_tail(iface):
    import binascii
    tail = bytearray(binascii.unhexlify(_world.get("chip_id"))[-3:])
    tail[2] = (tail[2] + iface) & 0xFF
    return bytes(tail)
