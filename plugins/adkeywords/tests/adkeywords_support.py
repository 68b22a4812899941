"""What the ad keywords plugin's tests share beside the entry-point test kit."""

from __future__ import annotations

#: the stats endpoint wants an administrator: the tests' apps configure ``api.admin_tokens = ["admintoken"]``
ADMIN = {"Authorization": "Bearer admintoken"}
#: the plugin's table, for snapshots that show a refusal stored nothing
TABLE = "adkeyword_counts"
