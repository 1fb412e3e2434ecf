"""LED modes and WiFi joining against the fakes (CPython)."""

import json

import pytest

import _world
from helpers import CHIP_HEX
import network
from upynode import led as ledmod
from upynode import wifi

LED = {"pin": 2, "invert": True, "mode": "threshold", "quantity": "temperature", "threshold": 20.0, "entity_id": ""}


def gpio2():
    return _world.STATE.get("gpio2")


def test_threshold_led_is_on_at_or_above_the_value_and_active_low(world):
    led = ledmod.Led(LED)
    assert gpio2() == 1  # off: the on-board LED is active-low
    led.update({"temperature": 20.0}, True)
    assert gpio2() == 0 and led.sig.value() == 1
    led.update({"temperature": 19.9}, True)
    assert gpio2() == 1 and led.sig.value() == 0


def test_threshold_led_keeps_its_state_when_the_reading_is_missing(world):
    led = ledmod.Led(LED)
    led.update({"temperature": 25}, True)
    led.update({}, False)
    assert led.sig.value() == 1


def test_non_inverted_led_on_an_external_pin(world):
    led = ledmod.Led(dict(LED, pin=14, invert=False))
    led.update({"temperature": 30}, True)
    assert _world.STATE.get("gpio14") == 1


def test_off_mode_never_lights(world):
    led = ledmod.Led(dict(LED, mode="off"))
    led.update({"temperature": 99}, True)
    assert led.sig.value() == 0


W = {"ssid": "home", "password": "secret123", "timeout_s": 1, "retries": 2, "retry_s": 60}


def test_join_connects_turns_the_ap_off_and_prints_ifconfig(world):
    world["aps"] = {"home": {"password": "secret123"}}
    world["connect_ms"] = 50
    lines = []
    assert network.WLAN(network.AP_IF).active()  # the chip starts with its AP up
    assert wifi.join(W, lines.append)
    assert not network.WLAN(network.AP_IF).active()
    assert "connected to \"home\"" in lines[-1] and "127.0.0.1" in lines[-1]


@pytest.mark.parametrize("aps, why", [
    ({"home": {"password": "other"}}, "wrong password"),
    ({}, "network not found"),
])
def test_join_gives_up_after_its_retries_with_the_reason(world, aps, why):
    world["aps"] = aps
    world["connect_ms"] = 50
    lines = []
    assert not wifi.join(W, lines.append)
    assert lines == ['wifi: "home" attempt 1/2: ' + why, 'wifi: "home" attempt 2/2: ' + why]


def test_join_has_a_deadline_when_the_ap_never_answers(world, clock):
    world["aps"] = {"home": {"password": "secret123"}}
    world["connect_ms"] = 60000  # stuck "connecting"
    lines = []
    t0 = clock.ms
    assert not wifi.join(dict(W, retries=2, timeout_s=1), lines.append)
    assert 2000 <= clock.ms - t0 < 4000  # two attempts of 1 s, not 60 s
    assert "no answer within 1 s" in lines[0]


def reset_chip():
    # A reset: the VM's Python state goes, the SDK's flash stays.
    network._IFACES.clear()


def test_the_setup_ap_stops_the_chip_rejoining_its_old_network(world, clock):
    # After a reset with a bad config the chip would rejoin the network it
    # kept in flash by itself, moving the AP's channel under a user who is
    # fixing the config over WebREPL.
    world["aps"] = {"old": {"password": "oldpass1"}}
    world["connect_ms"] = 50
    sta = network.WLAN(network.STA_IF)
    sta.active(True)
    sta.connect("old", "oldpass1")
    reset_chip()
    sta = network.WLAN(network.STA_IF)  # at power-up it starts rejoining "old"
    wifi.start_ap("upynode-test", lambda m: None)
    clock.sleep_ms(1000)
    assert not sta.isconnected()


def test_join_uses_its_config_not_the_credentials_the_chip_kept(world):
    # The SDK keeps the last station credentials in flash and rejoins that
    # network by itself after a reset (ports/esp8266/network_wlan.c). The
    # node must not rely on that, nor fight it: it joins what config.json
    # says, and the chip keeps that from then on.
    world["aps"] = {"old": {"password": "oldpass1"}, "home": {"password": "secret123"}}
    world["connect_ms"] = 50
    sta = network.WLAN(network.STA_IF)
    sta.active(True)
    sta.connect("old", "oldpass1")
    reset_chip()
    sta = network.WLAN(network.STA_IF)
    assert sta.active() and sta.config("ssid") == "old"  # rejoining "old" on its own
    assert wifi.join(W, lambda m: None)
    assert sta.config("ssid") == "home" and sta.isconnected()
    reset_chip()
    assert network.WLAN(network.STA_IF).config("ssid") == "home"


def test_join_works_on_a_chip_that_kept_nothing(world):
    world["aps"] = {"home": {"password": "secret123"}}
    world["connect_ms"] = 50
    assert not network.WLAN(network.STA_IF).active()  # a fresh chip: station off
    assert wifi.join(W, lambda m: None)


def test_join_with_a_static_address_skips_dhcp(world, clock):
    world["aps"] = {"home": {"password": "secret123"}}
    world.update(connect_ms=300, dhcp_ms=100)
    t0 = clock.ms
    ip = ["192.168.1.50", "255.255.255.0", "192.168.1.1", "192.168.1.1"]
    lines = []
    assert wifi.join(dict(W, ifconfig=ip), lines.append)
    assert network.WLAN(network.STA_IF).ifconfig() == tuple(ip) and "192.168.1.50" in lines[-1]
    assert clock.ms - t0 < 300  # joined before a DHCP join could have


DEEP_AP = {"home": {"password": "secret123", "bssid": "c0:ff:ee:00:00:01", "channel": 11}}


def test_a_deep_sleep_node_learns_the_aps_bssid_once_and_joins_by_it_after(world, clock):
    # ~4 s with a full scan, ~1.5 s with the BSSID (the figures)
    from upynode import rtcmem
    world["aps"] = dict(DEEP_AP)
    world.update(connect_ms=4000, connect_ms_known=1500)
    w = dict(W, timeout_s=10)
    t0 = clock.ms
    assert wifi.join(w, lambda m: None, learn=True)
    first = clock.ms - t0
    m = rtcmem.load()
    assert (m["bssid"], m["ch"]) == (bytes.fromhex("c0ffee000001"), 11)
    network.WLAN(network.STA_IF).disconnect()
    reset_chip()  # a wake: RTC memory and the SDK's flash stay
    t0 = clock.ms
    assert wifi.join(w, lambda m: None, learn=True)
    assert first >= 4000 and clock.ms - t0 < 2000


def test_a_replaced_ap_is_joined_without_the_old_bssid_and_learnt_again(world, clock):
    from upynode import rtcmem
    world["aps"] = dict(DEEP_AP)
    world.update(connect_ms=400, connect_ms_known=150)
    assert wifi.join(W, lambda m: None, learn=True)
    network.WLAN(network.STA_IF).disconnect()
    reset_chip()
    world["aps"] = {"home": dict(DEEP_AP["home"], bssid="c0:ff:ee:00:00:02")}  # a new router
    lines = []
    assert wifi.join(W, lines.append, learn=True)
    assert "attempt 1/2: network not found" in lines[0]
    assert rtcmem.load()["bssid"] == bytes.fromhex("c0ffee000002")


def test_join_lets_the_chip_finish_rejoining_our_network_by_itself(world, clock, monkeypatch):
    # After a reset the SDK rejoins the network in its flash; when that is
    # ours, connect() would start the join over (and write the flash again).
    world["aps"] = {"home": {"password": "secret123"}}
    world["connect_ms"] = 300
    sta = network.WLAN(network.STA_IF)
    sta.active(True)
    sta.connect("home", "secret123")
    reset_chip()
    calls = []
    monkeypatch.setattr(network.WLAN, "connect", lambda self, *a, **k: calls.append(a))
    assert wifi.join(W, lambda m: None)
    assert calls == []


def test_join_uses_the_configs_password_when_the_chips_rejoin_fails(world, clock):
    world["aps"] = {"home": {"password": "newpass12"}}
    world["connect_ms"] = 50
    sta = network.WLAN(network.STA_IF)
    sta.active(True)
    sta.connect("home", "oldpass12")
    reset_chip()
    assert wifi.join(dict(W, password="newpass12", retries=1), lambda m: None)


def test_setup_ap_is_open_and_named_after_the_chip(world):
    wifi.start_ap("upynode-" + CHIP_HEX, lambda m: None)
    assert _world.STATE["ap"] == {"active": True, "ssid": "upynode-" + CHIP_HEX, "security": network.AUTH_OPEN}


@pytest.mark.parametrize("states, lit", [
    (["21.5"], True), (["19.9"], False), (["20"], True),
    (["on"], True), (["off"], False),
    (["25", "unknown"], True), (["25", "unavailable"], True), (["25", None], True),
    (["15", None], False), (["25", "warm"], True),
])
def test_ha_state_led_follows_the_entity_and_keeps_its_state_when_it_cannot(world, states, lit):
    led = ledmod.Led(dict(LED, mode="ha_state", entity_id="sensor.kitchen_temperature"))
    lines = []
    from upynode import ha
    for s in states:
        ha.follow(led, s, lines.append)
    assert led.sig.value() == (1 if lit else 0)
    if states[-1] in ("unknown", "unavailable", None):
        assert "sensor.kitchen_temperature is %s: keeping the LED" % (states[-1] or "unreachable") in lines[-1]


# --- setup mode: what it waits for follows what failed (startup.failed) ---------------

GOOD = {"wifi": {"ssid": "home", "password": "secret123", "timeout_s": 1, "retry_s": 60},
        "mqtt": {"host": "127.0.0.1"}, "webrepl": {"password": "s3cret"}}


def _setup_mode(monkeypatch, tmp_path, clock, failed, reason, config_text):
    from upynode import setupmode, startup
    monkeypatch.chdir(tmp_path)
    if config_text is not None:
        (tmp_path / "config.json").write_text(config_text if isinstance(config_text, str) else json.dumps(config_text))
    monkeypatch.setattr(startup, "failed", failed)
    monkeypatch.setattr(startup, "reason", reason)
    lines = []
    t0 = clock.ms
    with pytest.raises(SystemExit):  # machine.reset()
        setupmode.run(lines.append)
    return lines, (clock.ms - t0) // 1000


def test_setup_mode_after_wifi_failed_retries_wifi_and_restarts_when_it_is_back(world, monkeypatch, tmp_path, clock):
    from upynode import startup
    world["aps"] = {"home": {"password": "secret123"}}
    world["connect_ms"] = 50
    lines, s = _setup_mode(monkeypatch, tmp_path, clock, startup.WIFI, 'wifi: could not join "home"', GOOD)
    assert lines[-1] == "setup: WiFi is back: restarting" and 55 <= s <= 70  # wifi.retry_s


def test_setup_mode_after_a_boot_failure_tries_a_fresh_boot(world, monkeypatch, tmp_path, clock):
    from upynode import setupmode
    lines, s = _setup_mode(monkeypatch, tmp_path, clock, None, None, None)  # no config.json to wait for
    assert s >= setupmode.GIVE_UP_S and lines[0] == "setup mode: boot.py failed"


def test_setup_mode_after_a_boot_failure_does_not_restart_at_once_on_a_valid_config(world, monkeypatch, tmp_path, clock):
    # boot.py failed with a good config.json: restarting on it at the first
    # poll would put a node with a persistent bug into a reset loop every
    # few seconds; it waits GIVE_UP_S, unless the file changes.
    from upynode import setupmode
    lines, s = _setup_mode(monkeypatch, tmp_path, clock, None, None, GOOD)
    assert s >= setupmode.GIVE_UP_S and "setup: config.json is valid now: restarting" not in lines


def test_setup_mode_for_a_bad_config_waits_for_a_valid_one_however_long(world, monkeypatch, tmp_path, clock):
    from upynode import setupmode, startup
    import time
    sleep = time.sleep

    def fix_after_a_while(s):  # written over WebREPL after 20 minutes
        sleep(s)
        if clock.ms > 1000 + 1200 * 1000:
            (tmp_path / "config.json").write_text(json.dumps(GOOD))
    monkeypatch.setattr(time, "sleep", fix_after_a_while)
    lines, s = _setup_mode(monkeypatch, tmp_path, clock, startup.CONFIG, "config: not valid JSON", "{")
    assert s > setupmode.GIVE_UP_S  # no fresh boot: only a valid config ends it
    assert lines[0].startswith("setup mode: config: config.json is not valid JSON")  # the file's own words
    assert lines[-1] == "setup: config.json is valid now: restarting"


def test_a_refused_token_makes_the_ha_state_poll_wait_longer_each_time(world, clock, monkeypatch):
    # HA logs a failed login (and notifies) per request: after a 401 the
    # LED's question waits 1, 2, 4 ... minutes; an answer ends the wait
    from upynode import ha, http
    monkeypatch.setattr(ha, "_denied", 0)
    asked, answers = [], [401] * 4 + [200]
    monkeypatch.setattr(http, "request", lambda *a, **k: (asked.append(clock.ms // 1000) or answers.pop(0), "on"))
    cfg = {"homeassistant": {"url": "http://127.0.0.1:8123", "token": "t"}, "http": {"timeout_s": 5}}
    led = ledmod.Led(dict(LED, mode="ha_state", entity_id="light.porch"))
    lines = []
    t0 = clock.ms // 1000
    for _ in range(100):  # a poll every 10 s
        ha.follow(led, ha.state(cfg, "light.porch", lines.append), lines.append)
        clock.sleep(10)
    asked = [t - t0 for t in asked]
    assert asked[:6] == [0, 60, 180, 420, 900, 910]  # the token right again: asked at every poll
    assert len(asked) == 5 + (990 - 900) // 10
    assert lines.count("ha: light.porch: HTTP 401 (check homeassistant.token): asked again in 60 s") == 1
    assert "asked again in 480 s" in [ln for ln in lines if "HTTP 401" in ln][3] and led.sig.value() == 1
    assert ha._denied == 0
