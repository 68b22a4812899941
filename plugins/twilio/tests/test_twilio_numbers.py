"""The ``smsconnector-twilio numbers`` commands against the fake Twilio, with the deployment's own configuration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smsconnector_twilio.cli import main

from .twilio_support import ACCOUNT_SID, AUTH_TOKEN, BRAND

PUBLIC = "https://sms.example.com"
WEBHOOK = PUBLIC + "/webhooks/twilio/inbound"


def write_config(path: Path, fake_url: str, *, public_url: str | None = PUBLIC, twilio: str | None = None) -> Path:
    section = twilio if twilio is not None else f'auth_token = "{AUTH_TOKEN}"\n'
    text = (f'public_url = "{public_url}"\n' if public_url else "") + (
        f'[plugins.twilio]\naccount_sid = "{ACCOUNT_SID}"\napi_base_url = "{fake_url}"\n{section}'
        if twilio != "" else "")
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def config(tmp_path: Path, fake_twilio) -> Path:
    return write_config(tmp_path / "smsconnector.toml", fake_twilio.url)


def run(config: Path, *args: str) -> int:
    return main(["--config", str(config), "numbers", *args])


def test_list_shows_each_number_and_whether_it_points_here(config, fake_twilio, capsys):
    fake_twilio.add_number(BRAND, sms_url=WEBHOOK)
    fake_twilio.add_number("+12125550100", sms_url="https://old.example.com/sms")

    assert run(config, "list") == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NUMBER", "SID", "SMS", "HERE", "SMS", "WEBHOOK"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows[BRAND][2:] == ["yes", "yes", "POST", WEBHOOK]
    assert rows["+12125550100"][2:] == ["yes", "no", "POST", "https://old.example.com/sms"]


def test_list_as_json(config, fake_twilio, capsys):
    number = fake_twilio.add_number(BRAND, sms_url=WEBHOOK)

    assert run(config, "list", "--json") == 0

    [listed] = json.loads(capsys.readouterr().out)
    assert (listed["sid"], listed["phone_number"], listed["points_here"]) == (number["sid"], BRAND, True)


def test_buy_searches_the_area_code_buys_the_first_offer_and_points_it_here(config, fake_twilio, capsys):
    assert run(config, "buy", "--country", "US", "--area-code", "415") == 0

    search, purchase = fake_twilio.requests
    assert (search.method, search.path) == ("GET", f"/2010-04-01/Accounts/{ACCOUNT_SID}/AvailablePhoneNumbers/US/"
                                                   "Local.json")
    assert dict(search.query) == {"AreaCode": "415", "SmsEnabled": "true", "PageSize": "1"}
    assert (purchase.method, purchase.params) == ("POST", {"PhoneNumber": "+14155550101", "SmsUrl": WEBHOOK,
                                                           "SmsMethod": "POST"})
    [bought] = fake_twilio.numbers.values()
    assert (bought["phone_number"], bought["sms_url"]) == ("+14155550101", WEBHOOK)
    assert capsys.readouterr().out.startswith(f"bought +14155550101 ({bought['sid']})")


def test_buy_with_nothing_on_offer_buys_nothing(config, fake_twilio, capsys):
    assert run(config, "buy", "--country", "US", "--area-code", "999") == 1

    assert "no SMS-capable local number in US area code 999" in capsys.readouterr().err
    assert fake_twilio.numbers == {}


def test_point_sets_only_the_sms_webhook(config, fake_twilio, capsys):
    number = fake_twilio.add_number(BRAND, sms_url="https://old.example.com/sms", status_callback="https://calls")

    assert run(config, "point", "+1 (415) 555-0100") == 0

    update = fake_twilio.requests[-1]
    assert (update.method, update.path) == ("POST", f"/2010-04-01/Accounts/{ACCOUNT_SID}/IncomingPhoneNumbers/"
                                                    f"{number['sid']}.json")
    assert update.params == {"SmsUrl": WEBHOOK, "SmsMethod": "POST"}
    assert (number["sms_url"], number["status_callback"]) == (WEBHOOK, "https://calls")  # call callbacks untouched
    assert WEBHOOK in capsys.readouterr().out


def test_point_warns_when_a_twiml_app_overrides_the_webhook(config, fake_twilio, capsys):
    fake_twilio.add_number(BRAND, sms_application_sid="AP" + "cd" * 16)

    assert run(config, "point", BRAND) == 0

    assert "overrides the webhook" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["point", "+12125550199"], 1, "the account has no number +12125550199"),
        (["point", "not-a-number"], 1, "not a phone number"),
    ],
)
def test_point_refuses_what_it_cannot_do(args, code, message, config, capsys):
    assert run(config, *args) == code

    assert message in capsys.readouterr().err


def test_point_needs_the_public_url(tmp_path, fake_twilio, capsys):
    config = write_config(tmp_path / "c.toml", fake_twilio.url, public_url=None)
    fake_twilio.add_number(BRAND)

    assert run(config, "point", BRAND) == 2

    assert "configuration public_url: needed to point a number" in capsys.readouterr().err
    assert fake_twilio.requests == []  # refused before asking Twilio anything


def test_without_a_twilio_section_the_commands_say_what_to_add(tmp_path, fake_twilio, capsys):
    config = write_config(tmp_path / "c.toml", fake_twilio.url, twilio="")

    assert run(config, "list") == 2

    assert "plugins.twilio: missing" in capsys.readouterr().err


def test_wrong_credentials_are_reported_with_twilios_code(tmp_path, fake_twilio, capsys):
    config = write_config(tmp_path / "c.toml", fake_twilio.url, twilio=f'auth_token = "{"f" * 32}"\n')

    assert run(config, "list") == 1

    assert "Twilio refused: HTTP 401, code 20003" in capsys.readouterr().err


def test_the_console_script_reads_the_environment_like_the_host(tmp_path, fake_twilio):
    config = write_config(tmp_path / "c.toml", fake_twilio.url, twilio="")  # no [plugins.twilio] in the file
    fake_twilio.add_number(BRAND, sms_url=WEBHOOK)
    env = {**os.environ, "SMSCONNECTOR_CONFIG": str(config), "SMSCONNECTOR_PUBLIC_URL": PUBLIC,
           "SMSCONNECTOR_PLUGINS__TWILIO__ACCOUNT_SID": ACCOUNT_SID,
           "SMSCONNECTOR_PLUGINS__TWILIO__AUTH_TOKEN": AUTH_TOKEN,
           "SMSCONNECTOR_PLUGINS__TWILIO__API_BASE_URL": fake_twilio.url}
    script = Path(sys.executable).with_name("smsconnector-twilio")

    done = subprocess.run([str(script), "numbers", "list", "--json"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)

    assert done.returncode == 0, done.stderr
    assert [n["phone_number"] for n in json.loads(done.stdout)] == [BRAND]
