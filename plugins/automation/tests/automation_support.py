"""What the automation plugin's tests share beside the entry-point test kit."""

from __future__ import annotations

TOKEN = "automation-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: the plugin's table, for snapshots that show a refusal stored nothing
TABLE = "automation_sends"
