"""The simulator under ``smsconnector serve``: off unless the configuration enables it, and loud when it is on."""

from __future__ import annotations

import httpx

from smsconnector.testing import Database

from .processes import serving

BRAND = "+15555550100"
TEXT = {"id": "sim-1", "from": "+14155550123", "to": BRAND, "text": "Hi"}
WARNING = ("WARNING smsconnector.app: plugin 'simulator' is enabled ([plugins] enabled): a test provider: its "
           "webhooks take consumers' messages")


def _configuration(database: str, enabled: str = "") -> str:
    return f"""
database_url = "{database}"
[plugins]
{enabled}
[[numbers]]
number = "{BRAND}"
provider = "simulator"
"""


def test_serve_leaves_the_simulator_off_unless_the_configuration_enables_it(tmp_path):
    database = f"sqlite:///{tmp_path / 'sms.db'}"
    with serving(tmp_path, _configuration(database)) as server:
        outbox = httpx.get(f"{server.url}/simulator/outbox")
        inbound = httpx.post(f"{server.url}/webhooks/simulator/inbound", json=TEXT)
        status = httpx.post(f"{server.url}/webhooks/simulator/status", json={"id": "SIM1", "status": "delivered"})

    assert (outbox.status_code, inbound.status_code, status.status_code) == (404, 404, 404)
    db = Database(database)
    assert db.count("inbox") == 0 and db.count("messages") == 0
    db.close()
    assert "plugin 'simulator' is enabled" not in server.logged()


def test_serve_with_the_simulator_enabled_takes_its_messages_and_warns_at_start_up(tmp_path):
    database = f"sqlite:///{tmp_path / 'sms.db'}"
    with serving(tmp_path, _configuration(database, 'enabled = ["simulator"]')) as server:
        inbound = httpx.post(f"{server.url}/webhooks/simulator/inbound", json=TEXT)
        outbox = httpx.get(f"{server.url}/simulator/outbox")

    assert (inbound.status_code, outbox.status_code, outbox.json()) == (200, 200, [])
    db = Database(database)
    assert db.count("inbox") == 1
    db.close()
    assert WARNING in server.logged()
