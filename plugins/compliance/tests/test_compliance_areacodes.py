"""The shipped area-code table: what the installed phonenumbers gives, and all that a process needs of it."""

from __future__ import annotations

import subprocess
import sys
from importlib.resources import files
from textwrap import dedent

import phonenumbers

from smsconnector_compliance.areacodes import COMMAND, build, render
from smsconnector_compliance.location import AREA_CODE_FILE


def test_the_shipped_table_is_what_the_installed_phonenumbers_gives() -> None:
    shipped = files("smsconnector_compliance").joinpath(AREA_CODE_FILE).read_text(encoding="utf-8")

    assert render(build()) == shipped, (
        f"{AREA_CODE_FILE} is not what phonenumbers {phonenumbers.__version__} gives: run `{COMMAND}` "
        "in a checkout where the plugin is installed editable, and commit the file")


def test_locating_a_number_does_not_load_the_geocoder() -> None:
    # In a fresh process: this one has loaded the geocoder to build the table.
    code = dedent("""
        import sys
        import smsconnector_compliance.hooks
        from smsconnector_compliance.location import locate
        assert locate("+18504441234").area_zones == ("America/Chicago", "America/New_York")
        assert "phonenumbers.geocoder" not in sys.modules, "phonenumbers.geocoder was imported"
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)

    assert run.returncode == 0, run.stderr
