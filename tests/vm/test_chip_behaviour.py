"""The fakes behave as the ESP8266 does, not only look like it.

Beside the stub-conformance test (tests/unit/test_stubs.py: names,
signatures, constants), this runs a table of small programs in the
MicroPython VM on the virtual board's fakes (precompiled, as the board loads
them) and compares each result with what the ESP8266 port does. Each row
names where the chip's behaviour comes from: a file of micropython/micropython
(ports/esp8266/..., extmod/..., drivers/...) or its documentation
(docs/esp8266/quickref.rst). A program sets `result`; an exception becomes
["raises", type, text].

The fakes can only approximate what they do not simulate (PWM, timers,
UARTs, SPI, pin interrupts): those exist as on the chip and raise
NotImplementedError naming the virtual board, never silently do nothing.
"""
import json
import textwrap

import pytest

from helpers import CHIP_HEX, MAC, NODE_ID, run_in_vm
from upynode_vboard.runner import RESET_EXIT, WDT_EXIT, VBoard, clock_dir



def raises(kind, text=""):
    return ("raises", kind, text)


# (id, program, expected, world, source of the chip's behaviour)
TABLE = [
    # 1. chip id and MAC: one MAC, everything else derived from it
    ("unique_id_from_mac", """
import machine, network, binascii
sta, ap = network.WLAN(network.STA_IF), network.WLAN(network.AP_IF)
result = [binascii.hexlify(sta.config('mac')).decode(), binascii.hexlify(machine.unique_id()).decode(),
          binascii.hexlify(ap.config('mac')).decode(), ap.config('ssid')]
""", [MAC.replace(":", ""), CHIP_HEX, "5e" + MAC.replace(":", "")[2:], "MicroPython-" + MAC.replace(":", "")[6:]],
     None, "ports/esp8266/modmachine.c machine_unique_id(): system_get_chip_id() as 4 little-endian "
           "bytes, the MAC's last 3 bytes; ports/esp8266/modules/inisetup.py: AP ssid from the AP MAC"),
    ("unique_id_of_another_board", """
import machine, binascii
result = binascii.hexlify(machine.unique_id()).decode()
""", "eeffc000", {"mac": "5c:cf:7f:c0:ff:ee"}, "ports/esp8266/modmachine.c machine_unique_id()"),
    ("node_id", """
import machine, binascii
result = 'esp8266_' + binascii.hexlify(machine.unique_id()).decode()
""", NODE_ID, None, "lib/upynode/config.py node_id() on ports/esp8266/modmachine.c"),

    # 2. Pin
    ("pin_level_is_shared_by_every_pin_object", """
from machine import Pin
led = Pin(2, Pin.OUT)
led.on()
a = Pin(2).value()
led.off()
result = [a, Pin(2).value(), Pin(2)()]
""", [1, 0, 0], None, "ports/esp8266/machine_pin.c: one pyb_pin_obj per GPIO, pin_get() reads the hardware"),
    ("pull_up_input_reads_1", """
from machine import Pin
result = Pin(0, Pin.IN, Pin.PULL_UP).value()
""", 1, None, "ports/esp8266/machine_pin.c init: PIN_PULLUP_EN"),
    ("input_driven_low_reads_0", """
from machine import Pin
result = Pin(0, Pin.IN, Pin.PULL_UP).value()
""", 0, {"inputs": {"0": 0}}, "ports/esp8266/machine_pin.c pin_get(): GPIO_INPUT_GET"),
    ("write_to_an_input_drives_nothing", """
from machine import Pin
p = Pin(4, Pin.IN)
p.value(1)
result = p.value()
""", 0, None, "ports/esp8266/machine_pin.c pin_set(): GPIO_MODE_INPUT disables the output"),
    ("open_drain_releases_to_the_pull_up", """
from machine import Pin
p = Pin(4, Pin.OPEN_DRAIN, Pin.PULL_UP)
p(0)
a = p()
p(1)
result = [a, p()]
""", [0, 1], None, "ports/esp8266/machine_pin.c pin_set(): GPIO_MODE_OPEN_DRAIN"),
    ("toggle", """
from machine import Pin
p = Pin(2, Pin.OUT, value=0)
p.toggle()
a = p.value()
p.toggle()
result = [a, p.value()]
""", [1, 0], None, "ports/esp8266/machine_pin.c Pin.toggle()"),
    ("irq_constants", """
from machine import Pin
result = [Pin.IRQ_RISING, Pin.IRQ_FALLING]
""", [1, 2], None, "ports/esp8266/machine_pin.c: GPIO_PIN_INTR_POSEDGE, GPIO_PIN_INTR_NEGEDGE"),
    ("irq_query_without_handler", """
from machine import Pin
Pin(0, Pin.IN).irq()
result = 'ok'
""", "ok", None, "ports/esp8266/machine_pin.c pyb_pin_irq()"),
    ("irq_on_gpio16", """
from machine import Pin
Pin(16, Pin.IN).irq(lambda p: None)
""", raises("OSError", "pin does not have IRQ capabilities"), None, "ports/esp8266/machine_pin.c pyb_pin_irq()"),
    ("irq_with_handler_is_not_simulated", """
from machine import Pin
Pin(0, Pin.IN).irq(lambda p: None, Pin.IRQ_FALLING)
""", raises("NotImplementedError", "virtual board"), None, "(the fake: no edges happen)"),
    ("gpio9_and_10_exist", """
from machine import Pin
result = [Pin(9).id, Pin(10, Pin.IN).id]
""", [9, 10], None, "ports/esp8266/machine_pin.c pyb_pin_obj[]: 9 and 10 are there"),
    ("gpio6_to_8_and_11_do_not", """
from machine import Pin
r = []
for n in (6, 7, 8, 11, 17, -1):
    try:
        Pin(n)
        r.append('ok')
    except ValueError as e:
        r.append(str(e))
result = r
""", ["invalid pin"] * 6, None, "ports/esp8266/machine_pin.c mp_pin_make_new(): \"invalid pin\""),
    ("gpio16_has_no_pull_up", """
from machine import Pin
Pin(16, Pin.IN, Pin.PULL_UP)
""", raises("ValueError", "Pin(16) doesn't support pull"), None, "ports/esp8266/machine_pin.c init helper"),
    ("init_needs_a_mode", """
from machine import Pin
Pin(2).init()
""", raises("TypeError", "mode"), None, "ports/esp8266/machine_pin.c: ARG_mode is MP_ARG_REQUIRED"),
    ("pin_without_mode_keeps_its_configuration", """
from machine import Pin
Pin(2, Pin.OUT, value=1)
p = Pin(2)
p.off()
result = Pin(2).value()
""", 0, None, "ports/esp8266/machine_pin.c mp_pin_make_new(): no args, no init"),

    # 3. ADC
    ("adc_read_u16", """
from machine import ADC
result = [ADC(0).read(), ADC(0).read_u16()]
""", [700, 44799], {"light": 700}, "ports/esp8266/machine_adc.c: value * 65535 / 1024"),
    ("adc_read_u16_full_scale", """
from machine import ADC
result = ADC(0).read_u16()
""", 65535, {"light": 1024}, "ports/esp8266/machine_adc.c"),
    ("adc2_does_not_exist", """
from machine import ADC
ADC(2)
""", raises("ValueError", "ADC(2) doesn't exist"), None, "ports/esp8266/machine_adc.c"),

    # 4. I2C
    ("i2c_is_softi2c", """
import machine
result = machine.I2C is machine.SoftI2C
""", True, None, "docs/esp8266/quickref.rst: machine.I2C is an alias of machine.SoftI2C"),
    ("i2c_needs_both_pins", """
from machine import I2C, Pin
I2C(scl=Pin(5))
""", raises("TypeError"), None, "extmod/machine_i2c.c: scl and sda are MP_ARG_REQUIRED"),
    ("i2c_pins_are_pins", """
from machine import SoftI2C
SoftI2C(scl=5, sda=4)
""", raises("ValueError", "expecting a pin"), None, "ports/esp8266/machine_pin.c mp_obj_get_pin_obj()"),
    ("mcp9808_on_the_wired_pins", """
from machine import I2C, Pin
i2c = I2C(scl=Pin(5), sda=Pin(4))
result = [i2c.scan(), list(i2c.readfrom_mem(0x18, 5, 2))]
""", [[0x18], [0xC1, 0x58]], None, "extmod/machine_i2c.c; MCP9808 DS25095: 21.5 degC = 0x158, flags 0xC0"),
    ("mcp9808_scl_and_sda_swapped", """
from machine import I2C, Pin
i2c = I2C(scl=Pin(4), sda=Pin(5))
s = i2c.scan()
try:
    i2c.readfrom_mem(0x18, 5, 2)
    r = 'read'
except OSError as e:
    r = e.args[0]
result = [s, r]
""", [[], 19], None, "extmod/machine_i2c.c: no ACK -> OSError(ENODEV)"),
    ("mcp9808_wired_elsewhere", """
from machine import I2C, Pin
result = [I2C(scl=Pin(5), sda=Pin(4)).scan(), I2C(scl=Pin(14), sda=Pin(12)).scan()]
""", [[], [0x18]], {"i2c": {"scl": 14, "sda": 12}}, "extmod/machine_i2c.c"),

    # 5. DHT
    ("dht11_truncates", """
import dht
from machine import Pin
d = dht.DHT11(Pin(4))
d.measure()
result = [d.temperature(), d.humidity()]
""", [21, 45], {"temperature": 21.5, "humidity": 45.7}, "drivers/dht/dht.py DHT11.temperature(): buf[2]"),
    ("dht11_has_no_negatives", """
import dht
from machine import Pin
d = dht.DHT11(Pin(4))
d.measure()
result = d.temperature()
""", 0, {"temperature": -4.5}, "drivers/dht/dht.py: buf[2] is unsigned; the DHT11 measures 0-50 degC"),
    ("dht_before_measure", """
import dht
from machine import Pin
a, b = dht.DHT11(Pin(4)), dht.DHT22(Pin(5))
result = [a.temperature(), a.humidity(), b.temperature(), b.humidity()]
""", [0, 0, 0.0, 0.0], None, "drivers/dht/dht.py: buf = bytearray(5) until measure()"),
    ("dht22_tenths_and_sign", """
import dht
from machine import Pin
d = dht.DHT22(Pin(4))
d.measure()
result = [round(d.temperature(), 1), round(d.humidity(), 1), d.buf[2] & 0x80]
""", [-3.2, 45.7, 0x80], {"temperature": -3.2, "humidity": 45.7}, "drivers/dht/dht.py DHT22"),

    # 6. network
    ("ap_status", """
import network
ap = network.WLAN(network.AP_IF)
try:
    ap.status('rssi')
    r = 'rssi'
except ValueError as e:
    r = str(e)
result = [ap.status(), r, ap.isconnected()]
""", [-1, "unknown status param", False], None, "ports/esp8266/network_wlan.c esp_status(), esp_isconnected()"),
    ("wlan_constants", """
from network import WLAN
result = [WLAN.IF_STA, WLAN.IF_AP, WLAN.SEC_OPEN, WLAN.SEC_WEP, WLAN.SEC_WPA, WLAN.SEC_WPA2,
          WLAN.SEC_WPA_WPA2, WLAN.PM_NONE, WLAN.PM_PERFORMANCE, WLAN.PM_POWERSAVE]
""", [0, 1, 0, 1, 2, 3, 4, 0, 2, 1], None, "ports/esp8266/network_wlan.c: PM_* = NONE/MODEM/LIGHT_SLEEP_T"),
    ("fresh_chip_ap_up_sta_down", """
import network
result = [network.WLAN(network.STA_IF).active(), network.WLAN(network.AP_IF).active()]
""", [False, True], None, "ports/esp8266/modules/inisetup.py: the first boot sets up the AP"),
    ("ap_settings_need_the_ap", """
import network
network.WLAN(network.STA_IF).config(ssid='x')
""", raises("OSError", "AP required"), None, "ports/esp8266/network_wlan.c esp_config(): require_if"),

    ("sta_joins_faster_with_the_aps_bssid", """
import network, time, binascii
sta = network.WLAN(network.STA_IF)
sta.active(True)
sta.connect('home', 'secret123', bssid=binascii.unhexlify('c0ffee000001'))
time.sleep_ms(400)
a = sta.status()
sta.connect('home', 'secret123')
time.sleep_ms(400)
result = [a, sta.status()]
""", [5, 1], {"aps": {"home": {"password": "secret123", "bssid": "c0:ff:ee:00:00:01"}},
              "connect_ms": 3000, "connect_ms_known": 100},
     "SDK station_config.bssid_set (network_wlan.c esp_connect()): the SDK looks for that AP only; "
     "field figures ~1.5 s with the BSSID, ~4 s with a full scan and DHCP"),
    ("sta_bssid_of_another_ap_finds_nothing", """
import network, time
sta = network.WLAN(network.STA_IF)
sta.active(True)
sta.connect('home', 'secret123', bssid=b'\\x02\\x00\\x00\\x00\\x00\\x09')
time.sleep_ms(100)
result = [sta.status(), sta.isconnected()]
""", [3, False], {"aps": {"home": {"password": "secret123"}}, "connect_ms": 10, "connect_ms_known": 10},
     "SDK bssid_set: only that AP is joined"),
    ("sta_bssid_must_be_6_bytes", """
import network
sta = network.WLAN(network.STA_IF)
sta.active(True)
sta.connect('home', 'secret123', bssid=b'\\x02\\x00')
""", raises("ValueError"), None, "ports/esp8266/network_wlan.c esp_connect(): len != sizeof(config.bssid)"),
    ("sta_static_ifconfig", """
import network
sta = network.WLAN(network.STA_IF)
sta.active(True)
sta.ifconfig(('192.168.1.50', '255.255.255.0', '192.168.1.1', '192.168.1.1'))
a = list(sta.ifconfig())
try:
    sta.ifconfig(('192.168.1.50', '255.255.255.0', '192.168.1.1'))
    b = 'set'
except (ValueError, TypeError) as e:
    b = type(e).__name__
result = [a, b]
""", [["192.168.1.50", "255.255.255.0", "192.168.1.1", "192.168.1.1"], "ValueError"], None,
     "ports/esp8266/network_wlan.c esp_ifconfig(): mp_obj_get_array_fixed_n(4), wifi_station_dhcpc_stop()"),
    ("sta_rssi_and_scan", """
import network, time, binascii
sta = network.WLAN(network.STA_IF)
sta.active(True)
a = sta.status('rssi')
sta.connect('home', 'secret123')
while not sta.isconnected():
    time.sleep_ms(10)
s = sta.scan()[0]
result = [a, sta.status('rssi'), s[0].decode(), binascii.hexlify(s[1]).decode(), s[2], s[3]]
""", [31, -71, "home", "c0ffee000001", 11, -71],
     {"aps": {"home": {"password": "secret123", "bssid": "c0:ff:ee:00:00:01", "channel": 11, "rssi": -71}},
      "connect_ms": 10},
     "ports/esp8266/network_wlan.c esp_status() wifi_station_get_rssi() (31: no value), esp_scan_cb() "
     "(ssid, bssid, channel, rssi, authmode, hidden)"),
    ("sta_loses_the_ap_and_rejoins_when_it_is_back", """
import network, time, json
def world(up):
    w = {'aps': {'home': {'password': 'secret123', 'up': up}}, 'connect_ms': 300}
    open('world.json', 'w').write(json.dumps(w))
sta = network.WLAN(network.STA_IF)
sta.active(True)
sta.connect('home', 'secret123')
while not sta.isconnected():
    time.sleep_ms(10)
world(False)
down = [sta.isconnected(), sta.status()]
world(True)
back = [sta.isconnected(), sta.status()]
while not sta.isconnected():
    time.sleep_ms(10)
result = [down, back, sta.status()]
""", [[False, 3], [False, 1], 5], {"aps": {"home": {"password": "secret123"}}, "connect_ms": 300},
     "SDK auto-reconnect (wifi_station_set_reconnect_policy, on by default): the link drops with the AP "
     "and the station joins again, taking a join's time, when it returns"),

    # 7. names tutorials touch
    ("machine_freq", """
import machine
a = machine.freq()
machine.freq(160000000)
b = machine.freq()
try:
    machine.freq(100000000)
    c = 'set'
except ValueError as e:
    c = str(e)
result = [a, b, c]
""", [80000000, 160000000, "frequency can only be either 80Mhz or 160MHz"], None,
     "ports/esp8266/modmachine.c machine_freq()"),
    ("lightsleep_with_a_time_returns", """
import machine
result = machine.lightsleep(10)
""", None, None, "ports/esp8266/modmachine.c machine_lightsleep()"),
    ("timer_without_callback", """
from machine import Timer
t = Timer(-1)
t.deinit()
result = [Timer.ONE_SHOT, Timer.PERIODIC]
""", [0, 1], None, "ports/esp8266/modmachine.c esp_timer_type"),
    ("periodic_timer_calls_back_until_deinit", """
import time
from machine import Timer
n = []
t = Timer(-1)
t.init(period=50, mode=Timer.PERIODIC, callback=lambda t: n.append(1))
time.sleep_ms(300)
t.deinit()
seen = len(n)
time.sleep_ms(200)
result = [seen >= 3, len(n) <= seen + 1]
""", [True, True], None, "ports/esp8266/machine_timer.c (virtual timers, soft IRQ)"),
    ("one_shot_timer_is_not_simulated", """
from machine import Timer
Timer(-1).init(period=1000, mode=Timer.ONE_SHOT, callback=lambda t: None)
""", raises("NotImplementedError", "virtual board"), None, "(the fake)"),
    ("pwm_is_not_simulated", """
from machine import PWM, Pin
PWM(Pin(2), freq=500)
""", raises("NotImplementedError", "virtual board"), None, "ports/esp8266/machine_pwm.c exists; the fake raises"),
    ("uart_is_not_simulated", """
from machine import UART
UART(1, 115200)
""", raises("NotImplementedError", "virtual board"), None, "ports/esp8266/machine_uart.c exists; the fake raises"),
    ("spi_is_not_simulated", """
from machine import SPI
SPI(1)
""", raises("NotImplementedError", "virtual board"), None, "ports/esp8266/machine_hspi.c exists; the fake raises"),
    # WebREPL: micropython-lib's webrepl.py start() hands the password to
    # _webrepl.password() (extmod/modwebrepl.c), which takes a str of at most 9
    ("webrepl_password_over_9_characters", """
import webrepl
webrepl.start(password='0123456789')
""", raises("ValueError"), None,
     "extmod/modwebrepl.c webrepl_set_password(): len > sizeof(webrepl_passwd) - 1 -> ValueError"),
    ("webrepl_reads_webrepl_cfg_without_a_password", """
import sys, json, webrepl
open('webrepl_cfg.py', 'w').write("PASS = 'saved1'\\n")
sys.path.append('')
webrepl.start()
result = json.load(open('webrepl.json'))['password']
""", "saved1", None,
     "micropython-lib micropython/net/webrepl/webrepl.py start(): password None -> webrepl_cfg.PASS"),
    ("webrepl_without_any_password", """
import webrepl
webrepl.start()
""", raises("TypeError"), None,
     "micropython-lib webrepl.py start(): no webrepl_cfg leaves None, which _webrepl.password() "
     "cannot take as a str (extmod/modwebrepl.c)"),
    # 8. the watchdog, RTC memory, deep sleep
    ("wdt_timeout_cannot_be_chosen", """
import machine
machine.WDT(timeout=2000)
""", raises("ValueError"), None,
     "ports/esp8266/machine_wdt.c: 'The timeout on ESP8266 is fixed': timeout_ms != 5000 -> ValueError"),
    ("wdt_with_the_default_timeout_starts", """
import machine
machine.WDT(timeout=5000).feed()
machine.WDT().feed()
result = 'ok'
""", "ok", None, "ports/esp8266/machine_wdt.c; extmod/machine_wdt.c: timeout defaults to 5000"),
    ("wdt_1_does_not_exist", """
import machine
machine.WDT(id=1)
""", raises("ValueError"), None, "ports/esp8266/machine_wdt.c: only id 0"),
    ("rtc_memory_holds_492_bytes", """
import machine
rtc = machine.RTC()
rtc.memory(bytearray(492))
a = len(rtc.memory())
try:
    rtc.memory(b'x' * 493)
    b = 'stored'
except ValueError as e:
    b = str(e)
result = [a, b, len(rtc.memory())]
""", [492, "buffer too long", 492], None,
     "ports/esp8266/machine_rtc.c: MEM_USER_MAXLEN = 512 - (MEM_USER_DATA_ADDR - MEM_DELTA_ADDR) * 4 = 492"),
    ("rtc_memory_after_power_on_is_empty", """
import machine
result = machine.RTC().memory()
""", "b''", None, "ports/esp8266/machine_rtc.c mp_hal_rtc_init(): no magic -> user length 0"),
    # 9. the clock and NTP
    ("clock_reads_2000_after_power_on", """
import time
t = time.time()
result = [time.gmtime(0)[0], type(t).__name__, t < 60, list(time.localtime(0))]
""", [2000, "int", True, [2000, 1, 1, 0, 0, 0, 5, 1]], {"chip_clock": True},
     "docs/library/time.rst (v1.29): ports other than unix, windows, webassembly, alif, mimxrt and rp2 "
     "use the 2000 epoch; ports/esp8266/machine_rtc.c mp_hal_rtc_init(): delta 0 at power-on"),
    ("ntptime_settime_sets_the_clock", """
import network, time, ntptime, utime
sta = network.WLAN(network.STA_IF)
sta.active(True)
sta.connect('home', 'secret123')
while not sta.isconnected():
    time.sleep_ms(10)
ntptime.settime()
result = [ntptime.timeout, abs(time.time() + 946684800 - utime.time()) < 5, time.localtime()[0] >= 2026]
""", [1, True, True], {"aps": {"home": {"password": "secret123"}}, "connect_ms": 10, "chip_clock": True},
     "micropython-lib net/ntptime: NTP_DELTA by gmtime(0)[0], settime() -> RTC().datetime()"),
    ("ntptime_without_an_answer", """
import network, time, ntptime
sta = network.WLAN(network.STA_IF)
sta.active(True)
sta.connect('home', 'secret123')
while not sta.isconnected():
    time.sleep_ms(10)
ntptime.timeout = 0.1
try:
    ntptime.settime()
    r = 'set'
except OSError as e:
    r = e.args[0]
result = [r, time.time() < 60]
""", [110, True], {"aps": {"home": {"password": "secret123"}}, "connect_ms": 10, "faults": {"ntptime": "timeout"},
                    "chip_clock": True},
     "micropython-lib ntptime: s.settimeout(timeout); recv() -> OSError(ETIMEDOUT)"),
    ("ntptime_on_the_vms_own_clock", """
import network, time, ntptime
sta = network.WLAN(network.STA_IF)
sta.active(True)
sta.connect('home', 'secret123')
while not sta.isconnected():
    time.sleep_ms(10)
ntptime.settime()
result = [time.gmtime(0)[0], abs(ntptime.time() - time.time()) < 5]
""", [1970, True], {"aps": {"home": {"password": "secret123"}}, "connect_ms": 10},
     "(without chip_clock the VM keeps the unix port's 1970 clock, and ntptime follows its epoch)"),
    ("ntptime_without_wifi", """
import ntptime
ntptime.timeout = 0.1
ntptime.time()
""", raises("OSError", "110"), None, "(no network: nothing answers)"),
    ("ticks_wrap_at_2_to_the_30", """
import time
result = [time.ticks_add(0, -1), time.ticks_diff(0, 2**30 - 1), time.ticks_diff(time.ticks_add(5, 2**30), 5),
          time.ticks_ms() < 60000]
""", [2**30 - 1, 1, 0, True], {"chip_clock": True},
     "py/mphal + extmod/modtime.c: MICROPY_PY_TIME_TICKS_PERIOD = MICROPY_SMALL_INT_MAX + 1 = 2**30 on "
     "the 32-bit ports; ports/esp8266 ticks count from boot"),
    ("pin_number_must_be_an_int", """
import machine
machine.Pin(2.0)
""", raises("TypeError", "can't convert float to int"), None,
     "ports/esp8266/machine_pin.c mp_obj_get_pin_obj(): mp_obj_get_int() of the id"),
]

WRAP = """import json
try:
%s
except Exception as e:
    result = ['raises', type(e).__name__, str(e)]
if isinstance(result, bytes):
    result = repr(result)
print('@' + json.dumps(result))
"""


def run(program, state, world=None):
    state.mkdir(exist_ok=True)
    (state / "world.json").write_text(json.dumps(world or {}))
    # "chip_clock": the fake time (runner.clock_dir()) instead of the VM's
    path = (clock_dir(),) if (world or {}).get("chip_clock") else ()
    p = run_in_vm(WRAP % textwrap.indent(program.strip() + "\nresult = result", "    "), state, path=path)
    return p


def result_of(p):
    out = p.stdout.decode()
    assert p.returncode == 0, out + p.stderr.decode()
    lines = [ln[1:] for ln in out.splitlines() if ln.startswith("@")]
    assert len(lines) == 1, out
    return json.loads(lines[0])


@pytest.mark.parametrize("program, expected, world, source", [row[1:] for row in TABLE],
                         ids=[row[0] for row in TABLE])
def test_the_fakes_do_what_the_chip_does(tmp_path, program, expected, world, source):
    if "result = " not in program:
        program += "\nresult = None"
    got = result_of(run(program, tmp_path / "vboard", world))
    if isinstance(expected, tuple):
        assert got[:2] == ["raises", expected[1]] and expected[2] in got[2], (source, got)
    else:
        assert got == expected, source


def test_wifi_credentials_survive_a_reset_and_the_station_rejoins_by_itself(tmp_path):
    # ports/esp8266/network_wlan.c esp_connect(): wifi_station_set_config()
    # writes the SDK's flash, and with auto-connect (the SDK's default) the
    # station joins that network again after a reset, before any code runs.
    state = tmp_path / "vboard"
    world = {"aps": {"home": {"password": "secret123"}}, "connect_ms": 100}
    first = result_of(run("""
import network, time
sta = network.WLAN(network.STA_IF)
sta.active(True)
sta.connect('home', 'secret123')
while not sta.isconnected():
    time.sleep_ms(20)
network.WLAN(network.AP_IF).active(False)
result = sta.isconnected()
""", state, world))
    after_reset = result_of(run("""
import network, time
sta = network.WLAN(network.STA_IF)
a = [sta.active(), sta.status(), sta.config('ssid'), network.WLAN(network.AP_IF).active()]
time.sleep_ms(200)
result = a + [sta.isconnected()]
""", state, world))
    assert first is True
    assert after_reset == [True, 1, "home", False, True]  # STAT_CONNECTING, then joined


def test_esp_deepsleep_resets_as_machine_deepsleep_does(tmp_path):
    # ports/esp8266/modesp.c esp.deepsleep(time_us): the chip wakes by a reset
    # (GPIO16 wired to RST) with machine.DEEPSLEEP_RESET as the cause.
    state = tmp_path / "vboard"
    p = run("import esp\nesp.deepsleep(2000000)\nresult = 'still awake'", state)
    assert p.returncode == RESET_EXIT, p.stdout.decode() + p.stderr.decode()
    assert json.loads((state / "reset_cause.json").read_text()) == 5
    assert json.loads((state / "sleep_ms.json").read_text()) == 2000


def test_rtc_memory_survives_a_reset(tmp_path):
    # ports/esp8266/machine_rtc.c: RTC memory is kept while the RTC has
    # power (machine.reset(), deep sleep); the runner's power-on clears it.
    state = tmp_path / "vboard"
    p = run("import machine\nmachine.RTC().memory(b'kept')\nmachine.reset()", state)
    assert p.returncode == RESET_EXIT, p.stdout.decode() + p.stderr.decode()
    assert result_of(run("import machine\nresult = [machine.reset_cause(), repr(machine.RTC().memory())]",
                         state)) == [4, "b'kept'"]


WEDGED = """
import machine
wdt = machine.WDT()
%s
result = 'survived'
"""


def test_a_wedged_loop_is_reset_by_the_watchdog(tmp_path):
    # ports/esp8266/ets_alt_task.c: once machine.WDT is started only feed()
    # feeds the soft watchdog; a loop that never feeds resets the chip with
    # REASON_SOFT_WDT_RST (3), which is not machine.WDT_RESET (1).
    state = tmp_path / "vboard"
    p = run(WEDGED % "while True:\n    pass", state)
    assert p.returncode == WDT_EXIT, p.stdout.decode() + p.stderr.decode()
    assert json.loads((state / "reset_cause.json").read_text()) == 3


def test_sleeping_does_not_feed_the_watchdog(tmp_path):
    # mp_hal_delay_ms() runs ets_loop_iter(), which skips the feed once a
    # WDT exists: a time.sleep() longer than the watchdog's 1.6 s resets.
    state = tmp_path / "vboard"
    p = run(WEDGED % "import time\ntime.sleep_ms(4000)", state)
    assert p.returncode == WDT_EXIT, p.stdout.decode() + p.stderr.decode()


def test_a_fed_loop_keeps_running(tmp_path):
    state = tmp_path / "vboard"
    p = run(WEDGED % "import time\nfor i in range(8):\n    time.sleep_ms(500)\n    wdt.feed()", state)
    assert result_of(p) == "survived"


def test_the_board_boots_again_after_the_watchdog_fired(tmp_path):
    # The virtual board (runner.VBoard) boots again after a watchdog reset,
    # as the chip does, and the firmware reads why.
    board = tmp_path / "board"
    board.mkdir()
    (board / "main.py").write_text(
        "import machine\n"
        "print('cause', machine.reset_cause())\n"
        "if machine.reset_cause() == 0:\n"
        "    w = machine.WDT()\n"
        "    while True:\n"
        "        pass\n")
    with VBoard(board, tmp_path / "vboard") as vb:
        vb.wait_for(r"cause 3", timeout=30)
        vb.wait_for(r"VM exited with status 0", timeout=10)
    out = vb.output()
    assert out.index("cause 0") < out.index("[vboard: watchdog reset]") < out.index("cause 3"), out


def test_the_clock_runs_on_over_a_deep_sleep_and_not_over_a_power_cut(tmp_path):
    # ports/esp8266/machine_rtc.c rtc_prepare_deepsleep(): the RTC's delta
    # gains the sleep; a power cut loses RTC memory, so 2000-01-01 again.
    state = tmp_path / "vboard"
    world = {"aps": {"home": {"password": "secret123"}}, "connect_ms": 10, "chip_clock": True}
    p = run("""
import network, time, ntptime, machine
sta = network.WLAN(network.STA_IF)
sta.active(True)
sta.connect('home', 'secret123')
while not sta.isconnected():
    time.sleep_ms(10)
ntptime.settime()
machine.deepsleep(10)
""", state, world)
    assert p.returncode == RESET_EXIT, p.stdout.decode() + p.stderr.decode()
    woke = "import time, utime\nresult = abs(time.time() + 946684800 - utime.time()) < 5"
    assert result_of(run(woke, state, world)) is True
    (state / "clock.json").unlink()  # what VBoard.start() does: power on
    assert result_of(run("import time\nresult = time.time() < 60", state, world)) is True


FILL = """
import os
print("statvfs", os.statvfs("/")[:4])
n = 0
try:
    with open("fill.bin", "wb") as f:
        while True:
            n += f.write(b"x" * 1000)
except OSError as e:
    print("full", e.args[0], n, os.stat("fill.bin")[6])
print("statvfs", os.statvfs("/")[:4])
os.remove("fill.bin")
with open("after.txt", "w") as f:
    f.write("room again")
print("done", open("after.txt").read())
"""


def test_a_flash_of_a_given_size_fills_as_the_chips_does(tmp_path):
    # littlefs and FAT on the chip: a write past the filesystem's end fails
    # with OSError 28 (ENOSPC) after writing what fit; os.statvfs counts it
    board, state = tmp_path / "board", tmp_path / "vboard"
    board.mkdir()
    (board / "main.py").write_text(FILL)
    (board / "ballast.bin").write_bytes(b"." * 6000)
    vb = VBoard(str(board), str(state))
    vb.world(fs_kb=16)
    with vb:
        vb.wait_for(r"^done", timeout=30)
    lines = [ln.split() for ln in vb.lines if ln.startswith(("statvfs", "full", "done"))]
    files = 6000 + len(FILL)  # main.py and the ballast
    assert lines[0][0] == "statvfs" and lines[0][1:] == ["(4096,", "4096,", "4,", "%d)" % ((16384 - files) // 4096)]
    assert lines[1][:2] == ["full", "28"] and int(lines[1][3]) == 16384 - files  # written to the last byte
    assert lines[2][-1] == "0)"  # nothing free
    assert lines[3] == ["done", "room", "again"]


JAIL = """
import os
print("root", sorted(os.listdir("/")), os.getcwd())
for p in ("/etc/passwd", "/../../../../etc/hostname", "../../etc/hostname"):
    try:
        open(p).read()
        print("read", p)
    except OSError as e:
        print("refused", p, e.args[0])
with open("/../note.txt", "w") as f:  # above the root is the root, as on the chip
    f.write("kept")
os.mkdir("/d")
os.chdir("d")
with open("inner.txt", "w") as f:
    f.write("in d")
print("in d", os.getcwd(), os.listdir(), sorted(os.listdir("..")), open("/d/inner.txt").read())
os.chdir("/")
print("stat", os.stat("/note.txt")[6], os.statvfs("/")[:3])
print("done")
"""


def test_the_boards_root_is_its_folder_and_its_flash_a_4mb_boards(tmp_path):
    # "/" is the board's folder, nothing above it: a path to the host's
    # files finds nothing, and ".." stops at the root; the state folder
    # the fakes keep in the board's folder is not listed; the flash is
    # what ESP8266_GENERIC gives a 4 MB board (763 blocks of 4 KB)
    board, state = tmp_path / "board", tmp_path / "board" / ".vboard"
    board.mkdir()
    (board / "main.py").write_text(JAIL)
    vb = VBoard(str(board), str(state))
    with vb:
        vb.wait_for(r"^done", timeout=30)
    out = {ln.split()[0]: ln.split(None, 1)[1] for ln in vb.lines
           if ln.split() and ln.split()[0] in ("root", "in", "stat")}
    assert out["root"] == "['main.py'] /"
    refused = [ln.split()[1:] for ln in vb.lines if ln.startswith(("refused", "read "))]
    assert refused == [["/etc/passwd", "2"], ["/../../../../etc/hostname", "2"], ["../../etc/hostname", "2"]]
    assert out["in"] == "d /d ['inner.txt'] ['d', 'main.py', 'note.txt'] in d"
    assert out["stat"] == "4 (4096, 4096, 763)"
    assert (board / "note.txt").read_text() == "kept" and not (tmp_path / "note.txt").exists()
