"""The Home Assistant the other tests in this folder use: installed as
issue 10 says, it starts clean, with MQTT connected, and serves its API."""
import urllib.error

import pytest

from conftest import hass


def test_home_assistant_starts_clean_with_mqtt_loaded(ha):
    assert ha.api("GET", "/api/")["message"] == "API running."
    cfg = ha.api("GET", "/api/config")
    assert cfg["version"] == hass.VERSION
    assert {"mqtt", "api", "config", "websocket_api"} <= set(cfg["components"])
    entries = ha.ws("config_entries/get", domain="mqtt")
    assert [(e["domain"], e["state"]) for e in entries] == [("mqtt", "loaded")]
    # Seeded as onboarded: HA serves no onboarding steps (it registers their
    # views only while some step is not done), so nothing waits for a browser.
    with pytest.raises(urllib.error.HTTPError) as e:
        ha.api("GET", "/api/onboarding")
    assert e.value.code == 404
    errors = [ln for ln in ha.start_log if " ERROR " in ln or " CRITICAL " in ln]
    assert errors == []


def test_a_wrong_token_is_refused(ha):
    with pytest.raises(urllib.error.HTTPError) as e:
        ha.api("GET", "/api/", token="not-the-token")
    assert e.value.code == 401
