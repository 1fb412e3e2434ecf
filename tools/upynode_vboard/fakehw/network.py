# Fake `network`: WLAN in STA and AP mode against the world's scripted
# access points, which can come and go while the node runs. No traffic
# goes anywhere: the node's sockets are the VM's real ones, on loopback.
#
# As on the chip (ports/esp8266/network_wlan.c, the SDK underneath), the
# SDK keeps in flash which interfaces are active and the last station
# credentials, and with auto-connect on (its default) the station joins
# that network again by itself after a reset. The flash is the state file
# "wifi_flash"; it survives resets and power cuts.
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
_AP_ONLY = ("ssid", "security", "key", "channel", "hidden")


def _flash():
    # A fresh chip: AP up as MicroPython-xxxxxx, station off, nothing saved.
    f = _world.get_state("wifi_flash")
    if f is None:
        import machine
        f = {"sta": False, "ap": True, "ssid": "", "key": "", "auto": True,
             "ap_ssid": "MicroPython-" + _hex(machine._mac()[3:]), "ap_security": AUTH_WPA_WPA2_PSK,
             "ap_key": "micropythoN"}
    return f


def _save(**changes):
    f = _flash()
    f.update(changes)
    _world.put_state("wifi_flash", f)


def _hex(b):
    return "".join("%02x" % x for x in b)


class WLAN:
    IF_STA = 0
    IF_AP = 1
    SEC_OPEN = 0
    SEC_WEP = 1
    SEC_WPA = 2
    SEC_WPA2 = 3
    SEC_WPA_WPA2 = 4
    PM_NONE = 0
    PM_POWERSAVE = 1
    PM_PERFORMANCE = 2

    def __init__(self, interface_id=STA_IF):
        if interface_id not in (STA_IF, AP_IF):
            raise ValueError
        # One state per interface, as on the chip, however often it is made.
        if interface_id not in _IFACES:
            f = _flash()
            # t0: when the join began, None while the AP is gone; ifconfig:
            # a static address set, else None (DHCP)
            s = {"target": None, "t0": 0, "hostname": "upynode", "pm": 2, "ifconfig": None}
            if interface_id == STA_IF and f["sta"] and f["auto"] and f["ssid"]:
                s["target"], s["t0"] = (f["ssid"], f["key"], f.get("bssid")), time.ticks_ms()
            _IFACES[interface_id] = s
        self._s = _IFACES[interface_id]
        self._if = interface_id
        if interface_id == AP_IF:
            self._publish()

    def _publish(self):
        f = _flash()
        _world.put_state("ap", {"active": f["ap"], "ssid": f["ap_ssid"], "security": f["ap_security"]})

    def active(self, is_active=None):
        key = "sta" if self._if == STA_IF else "ap"
        if is_active is None:
            return _flash()[key]
        _save(**{key: bool(is_active)})
        if not is_active:
            self._s["target"] = None
        if self._if == AP_IF:
            self._publish()

    def _require(self, iface):
        if self._if != iface:
            raise OSError("STA required" if iface == STA_IF else "AP required")

    def connect(self, ssid=None, password=None, *, bssid=None):
        self._require(STA_IF)
        if not self.active():
            raise OSError("Cannot connect to AP")
        f = _flash()
        if bssid is not None and len(bssid) != 6:
            raise ValueError
        if ssid is not None or password is not None or bssid is not None:
            # wifi_station_set_config() of a zeroed station_config: written to
            # flash at once, and what is not given is cleared (bssid_set too)
            f["ssid"], f["key"] = ssid or "", password or ""
            f["bssid"] = _hex(bssid) if bssid is not None else None
            _save(ssid=f["ssid"], key=f["key"], bssid=f["bssid"])
        self._s["target"] = (f["ssid"], f["key"], f.get("bssid"))
        self._s["t0"] = time.ticks_ms()

    def disconnect(self):
        self._require(STA_IF)
        self._s["target"] = None

    def status(self, param=None):
        s = self._s
        if param is not None:
            if param == "rssi" and self._if == STA_IF:
                if not self.isconnected():
                    return 31  # the SDK's "no value"
                return _world.get("aps")[s["target"][0]].get("rssi", -60)
            raise ValueError("unknown status param")
        if self._if != STA_IF:
            return -1
        if not self.active() or s["target"] is None:
            return STAT_IDLE
        ssid, key, bssid = s["target"]
        ap = _world.get("aps").get(ssid)
        found = ap and ap.get("up", True) and (bssid is None or bssid == _mac_of(ssid, ap))
        if s["t0"] is None:
            if not found:
                return STAT_NO_AP_FOUND
            # The AP is back: the SDK's auto-reconnect joins again, which
            # takes as long as a join
            s["t0"] = time.ticks_ms()
        # With bssid_set the SDK looks for that AP only (no full scan); a
        # static IP skips DHCP.
        ms = _world.get("connect_ms_known" if bssid else "connect_ms")
        if s["ifconfig"]:
            ms -= _world.get("dhcp_ms")
        if time.ticks_diff(time.ticks_ms(), s["t0"]) < ms:
            return STAT_CONNECTING
        if not found:
            # Gone while joined too: the link drops (isconnected() False)
            # and the SDK keeps looking for it
            s["t0"] = None
            return STAT_NO_AP_FOUND
        if ap.get("password", "") != key:
            return STAT_WRONG_PASSWORD
        return STAT_GOT_IP

    def isconnected(self):
        # The AP "is connected" when a station has joined it: none here.
        return self._if == STA_IF and self.status() == STAT_GOT_IP

    def ifconfig(self, ip_mask_gateway_dns=None):
        # network_wlan.c esp_ifconfig(): setting takes exactly 4 items and
        # stops the station's DHCP client (a static address, kept until a
        # reset here); reading gives what is set, joined or not.
        if ip_mask_gateway_dns is not None:
            v = tuple(ip_mask_gateway_dns)
            if len(v) != 4:  # mp_obj_get_array_fixed_n()
                raise ValueError
            self._s["ifconfig"] = v
            return
        if self._s["ifconfig"]:
            return self._s["ifconfig"]
        up = self.isconnected() if self._if == STA_IF else self.active()
        if not up:
            return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")

    def config(self, *args, **kwargs):
        if args and kwargs:
            raise TypeError("either pos or kw args are allowed")
        f = _flash()
        ap = self._if == AP_IF
        if args:
            if len(args) != 1:
                raise TypeError("can query only one param")
            p = _ALIASES.get(args[0], args[0])
            if p == "mac":
                return _mac(self._if)
            if p == "ssid":
                return f["ap_ssid"] if ap else f["ssid"]
            if p in ("security", "channel", "hidden"):
                self._require(AP_IF)
                return {"security": f["ap_security"], "channel": 1, "hidden": False}[p]
            if p == "hostname":
                self._require(STA_IF)
                return self._s["hostname"]
            if p == "pm":
                return self._s["pm"]
            raise ValueError("unknown config param")
        saved = {}
        for k in kwargs:
            p = _ALIASES.get(k, k)
            if p in _AP_ONLY:
                self._require(AP_IF)
                if p in ("ssid", "security", "key"):
                    saved["ap_" + p] = kwargs[k]
            elif p in ("hostname", "pm"):
                self._s[p] = kwargs[k]
            else:
                raise ValueError("unknown config param")
        if saved:
            _save(**saved)
        if ap:
            self._publish()

    def scan(self):
        self._require(STA_IF)
        if not self.active():
            raise OSError("STA must be active")
        aps = _world.get("aps")
        import binascii
        return [(ssid.encode(), binascii.unhexlify(_mac_of(ssid, aps[ssid])), aps[ssid].get("channel", 6),
                 aps[ssid].get("rssi", -60), AUTH_WPA2_PSK, 0)
                for ssid in aps if aps[ssid].get("up", True)]


def _mac_of(ssid, ap):
    # The AP's MAC (BSSID) as 12 hex digits: the world's, or one made from
    # the name
    b = ap.get("bssid")
    if b:
        return b.replace(":", "").lower()
    return _hex(bytes([2, len(ssid) & 255]) + (ssid.encode() + b"\0\0\0\0")[:4])


def _mac(iface):
    # The SDK's soft-AP MAC is the station's with the locally administered
    # bit (0x02) set in the first byte.
    import machine
    m = bytearray(machine._mac())
    if iface == AP_IF:
        m[0] |= 0x02
    return bytes(m)
