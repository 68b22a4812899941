"""The public API for provider plugins: the set-up that Twilio, OpenMarket and Vonage have in common.

A provider plugin reads its ``[plugins.<name>]`` section, opens a pooled client to its API when the host starts,
closes it when the host stops, and may accept its webhooks with methods other than POST. :class:`Provider`
does all of that; a subclass adds the hooks that differ (receive, normalize, segment policy, send)::

    class Acme(Provider[Settings, httpx.AsyncClient]):
        name = "acme"
        settings_model = Settings

        def open_client(self, settings: Settings) -> httpx.AsyncClient:
            return httpx.AsyncClient(base_url=settings.api_base_url)

``docs/writing-a-provider.md`` walks through a whole plugin.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Generic, TypeVar

from pydantic import BaseModel

from .config import plugin_settings
from .plugins import hookimpl

if TYPE_CHECKING:
    from .app import App

__all__ = ["Provider"]

S = TypeVar("S", bound=BaseModel)
C = TypeVar("C")


class Provider(Generic[S, C]):
    """Base of a provider plugin's class, instantiated once per app: it reads ``[plugins.<name>]`` into
    ``settings_model`` (``smsconnector_configure``), opens the client at start-up and closes it at shut-down,
    and names the methods its webhooks arrive in (``smsconnector_webhook_methods``).

    A subclass sets ``name`` (the provider's name: its configuration section and its ``/webhooks/<name>/``
    URLs), ``settings_model`` and, when its webhooks may come as GET, ``webhook_methods``; it overrides
    :meth:`open_client` and may extend :meth:`configure`. It adds its own hooks as ``@hookimpl`` methods, each
    declining other providers first (``if provider != self.name: return None``).
    """

    #: the provider's name, as the ``provider`` of its numbers and messages and its configuration section
    name: str
    settings_model: type[S]
    #: the HTTP methods its webhooks may arrive in; ``None`` is POST only
    webhook_methods: Collection[str] | None = None

    def __init__(self) -> None:
        #: ``[plugins.<name>]``, once read at start-up
        self.settings: S | None = None
        #: what :meth:`open_client` opened, from start-up to shut-down
        self.client: C | None = None

    @hookimpl
    def smsconnector_configure(self, app: App) -> None:
        """Read ``[plugins.<name>]``; a wrong value stops start-up naming its key. Then :meth:`configure`."""
        self.settings = plugin_settings(app.config, self.name, self.settings_model)
        self.configure(app)

    def configure(self, app: App) -> None:
        """Further set-up once ``settings`` are read; raise :class:`ConfigError` to stop start-up. Nothing here."""

    @hookimpl
    async def smsconnector_startup(self, app: App) -> None:
        """Open the client (:meth:`open_client`) in the event loop that sends, once settings are read."""
        if self.settings is not None:
            self.client = self.open_client(self.settings)

    def open_client(self, settings: S) -> C | None:
        """The client the plugin sends through, pooled for the whole run; ``None`` (here) for none."""
        return None

    @hookimpl
    async def smsconnector_shutdown(self) -> None:
        """Close the client (its ``aclose()``, when it has one); the host has let in-flight sends finish."""
        if self.client is not None:
            aclose = getattr(self.client, "aclose", None)
            if aclose is not None:
                await aclose()
            self.client = None

    @hookimpl
    def smsconnector_webhook_methods(self, provider: str) -> Collection[str] | None:
        """``webhook_methods`` for this provider's webhooks; ``None`` (POST only) for any other's."""
        return self.webhook_methods if provider == self.name else None
