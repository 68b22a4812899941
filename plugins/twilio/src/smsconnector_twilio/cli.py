"""The ``smsconnector-twilio`` command: the account's numbers, read with the deployment's own configuration.

::

    smsconnector-twilio numbers list
    smsconnector-twilio numbers buy --country US --area-code 415
    smsconnector-twilio numbers point +14155550100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.response import Response
from twilio.rest import Client

from smsconnector.config import Config, default_config_path, load_config
from smsconnector.plugin import ConfigError, InvalidNumber, to_e164

from .client import NETWORK_ERRORS, close_client, make_client
from .numbers import INBOUND_PATH, Number, NumberError, buy_number, list_numbers, point_number
from .send import reason
from .settings import NAME, Settings, load_settings


def _inbound_url(config: Config) -> str | None:
    return config.public_url + INBOUND_PATH if config.public_url else None


async def cmd_list(client: Client, config: Config, args: argparse.Namespace) -> int:
    numbers = await list_numbers(client)
    ours = _inbound_url(config)
    if args.json:
        print(json.dumps([{**asdict(n), "points_here": n.sms_url == ours} for n in numbers], indent=2))
        return 0
    rows = [("NUMBER", "SID", "SMS", "HERE", "SMS WEBHOOK")]
    rows += [(n.phone_number, n.sid, "yes" if n.sms else "no", "yes" if ours and n.sms_url == ours else "no",
              _webhook(n)) for n in numbers]
    widths = [max(len(row[c]) for row in rows) for c in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(widths[c]) for c, cell in enumerate(row[:4])) + "  " + row[4])
    return 0


async def cmd_buy(client: Client, config: Config, args: argparse.Namespace) -> int:
    sms_url = None if args.no_point else _inbound_url(config)
    number = await buy_number(client, args.country, area_code=args.area_code, sms_url=sms_url)
    print(f"bought {number.phone_number} ({number.sid})")
    if sms_url:
        print(f"its SMS webhook is {sms_url}")
    else:
        print("its SMS webhook is not set: run 'smsconnector-twilio numbers point' once public_url is configured")
    return 0


async def cmd_point(client: Client, config: Config, args: argparse.Namespace) -> int:
    sms_url = _inbound_url(config)
    if sms_url is None:
        raise ConfigError("public_url", "needed to point a number at this deployment")
    try:
        phone_number = to_e164(args.number)
    except InvalidNumber as exc:
        raise NumberError(str(exc)) from None
    number = await point_number(client, phone_number, sms_url)
    print(f"{number.phone_number} ({number.sid}) now posts incoming messages to {sms_url}")
    if number.sms_application_sid:
        print(f"warning: TwiML App {number.sms_application_sid} handles this number's messages and overrides "
              "the webhook; remove it in the console", file=sys.stderr)
    return 0


def _refusal(exc: TwilioException) -> str:
    if isinstance(exc, (TwilioRestException, TwilioServiceException)):
        return f"HTTP {exc.status}, code {exc.code}: {reason(exc)}"
    # A list page that failed to load raises the bare TwilioException with the response beside it.
    response = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], Response) else None
    if response is None:
        return str(exc)
    try:
        body = json.loads(response.text)
    except ValueError:
        body = {}
    detail = body.get("detail") or body.get("message") or ""
    return f"HTTP {response.status_code}, code {body.get('code', '-')}: {detail}"


def _webhook(number: Number) -> str:
    if number.sms_application_sid:
        return f"(TwiML App {number.sms_application_sid})"
    return f"{number.sms_method or 'POST'} {number.sms_url}" if number.sms_url else "-"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smsconnector-twilio", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="TOML configuration file (default: $SMSCONNECTOR_CONFIG "
                                                    "or ./smsconnector.toml)")
    commands = parser.add_subparsers(dest="command", required=True)
    numbers = commands.add_parser("numbers", help="the account's phone numbers").add_subparsers(
        dest="numbers_command", required=True)

    listing = numbers.add_parser("list", help="list the account's numbers and where their SMS webhooks point")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)

    buy = numbers.add_parser("buy", help="buy an SMS-capable local number and point it at this deployment")
    buy.add_argument("--country", required=True, help="ISO country code, e.g. US")
    buy.add_argument("--area-code", help="area code (US and CA only)")
    buy.add_argument("--no-point", action="store_true", help="leave the new number's SMS webhook unset")
    buy.set_defaults(func=cmd_buy)

    point = numbers.add_parser("point", help="set a number's SMS webhook to this deployment's public_url")
    point.add_argument("number", help="the number in E.164, e.g. +14155550100")
    point.set_defaults(func=cmd_point)
    return parser


async def _run(args: argparse.Namespace, config: Config, settings: Settings) -> int:
    client = make_client(settings, pool_size=1)
    try:
        return int(await args.func(client, config, args))
    finally:
        await close_client(client)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config or default_config_path())
        settings = load_settings(config)
        if settings is None:
            raise ConfigError(f"plugins.{NAME}", "missing: add a [plugins.twilio] section with account_sid and "
                                                 "auth_token")
        return asyncio.run(_run(args, config, settings))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except NumberError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except TwilioException as exc:
        print(f"error: Twilio refused: {_refusal(exc)}", file=sys.stderr)
        return 1
    except NETWORK_ERRORS as exc:
        print(f"error: cannot reach Twilio: {type(exc).__name__}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
