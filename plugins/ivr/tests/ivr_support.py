"""What the IVR plugin's tests share beside the entry-point test kit."""

from __future__ import annotations

from smsconnector.testing.entrypoints import CONSUMER

TOKEN = "ivr-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: the caller on hold who is offered a text
CALLER = CONSUMER
#: the plugin's table, for snapshots that show a refusal stored nothing
TABLE = "ivr_deflections"
