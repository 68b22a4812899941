"""An entry-point plugin in miniature: texts starting with EXAMPLE go to the ``examples`` skill with a reply."""

from __future__ import annotations

from typing import Any

from smsconnector import ConfigError, InboundMessage, Routing, hookimpl


class ExamplePlugin:
    """Instantiated once per app by the host, so its settings never leak between apps."""

    def __init__(self) -> None:
        self.greeting = "Thanks for trying the example."

    @hookimpl
    def smsconnector_configure(self, app: Any) -> None:
        """Read ``[plugins.example] greeting``."""
        value = app.config.plugin("example").get("greeting", self.greeting)
        if not isinstance(value, str) or not value:
            raise ConfigError("plugins.example.greeting", "must be a non-empty string")
        self.greeting = value

    @hookimpl
    def smsconnector_route(self, message: InboundMessage) -> Routing | None:
        """Claim messages that start with EXAMPLE."""
        if not message.text.upper().startswith("EXAMPLE"):
            return None
        return Routing(handled_by="example", skill="examples", entry_point="example", replies=(self.greeting,),
                       context={"keyword": "EXAMPLE"})
