"""Finding, loading and calling plugins.

Plugins come from the entry-point group ``smsconnector``; the host's own (the router, the simulator) are
listed there too, so they are found, listed and disabled exactly like external ones. An entry point names
a module of ``@hookimpl`` functions, or a class that is instantiated once per app (for plugins with state).

An installed plugin is enabled unless ``[plugins] disabled`` names it, except the few in :data:`OPT_IN`, which
stay off until ``[plugins] enabled`` names them (``smsconnector demo`` enables the simulator).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from . import hookspecs
from .errors import ConfigError, PluginConfigError, PluginError, UnknownProvider

if TYPE_CHECKING:
    from datetime import datetime

    from sqlmodel.ext.asyncio.session import AsyncSession
    from starlette.routing import BaseRoute

    from .app import App
    from .decisions import ConsentSignal, Routing, SegmentPolicy, Verdict
    from .messages import InboundMessage, OutboundMessage, SendResult, StatusUpdate
    from .store.models import Conversation
    from .webhooks import Received, WebhookRequest

PROJECT = "smsconnector"
GROUP = "smsconnector"
#: Plugins that keep consumers safe: once installed, configuration cannot disable them.
ESSENTIAL = frozenset({"compliance"})
#: Plugins that are off until configuration enables them, and why: what a deployment exposes once it does.
OPT_IN = {
    "simulator": "a test provider: its webhooks take consumers' messages, and /simulator/outbox shows what was sent, "
                 "without credentials unless [plugins.simulator] token is set; nothing sent through it reaches a phone",
}
#: What a provider's webhooks may use when its plugin does not implement ``smsconnector_webhook_methods``.
DEFAULT_WEBHOOK_METHODS = frozenset({"POST"})

hookimpl = pluggy.HookimplMarker(PROJECT)
log = logging.getLogger(__name__)
T = TypeVar("T")


async def await_maybe(value: T | Awaitable[T]) -> T:
    """Await ``value`` when a hook implementation returned an awaitable."""
    if inspect.isawaitable(value):
        return await value
    return value


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """What ``smsconnector plugins`` shows about one plugin."""

    name: str
    distribution: str | None
    version: str | None
    enabled: bool
    hooks: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.distribution} {self.version}" if self.distribution else self.name


def _distribution(ep: EntryPoint) -> tuple[str | None, str | None]:
    dist = ep.dist
    return (dist.name, dist.version) if dist is not None else (None, None)


def _instantiate(loaded: Any) -> Any:
    return loaded() if inspect.isclass(loaded) else loaded


def load_plugins(
    disabled: Iterable[str] = (), *, enabled: Iterable[str] = (), extra: Sequence[tuple[str, Any]] = ()
) -> tuple[pluggy.PluginManager, list[PluginInfo]]:
    """Create a fresh plugin manager with every installed, enabled plugin registered.

    :param disabled: names from ``plugins.disabled``; they are never imported.
    :param enabled: names from ``plugins.enabled``: the :data:`OPT_IN` plugins among them are registered too.
    :param extra: ``(name, plugin)`` pairs registered after the installed ones (tests, embedding).
    :raises ConfigError: ``plugins.disabled`` names an essential or unknown plugin, ``plugins.enabled`` an unknown
        one, or both name the same plugin.
    :raises PluginError: a plugin failed to import or does not match the hook contract.
    """
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    disabled, enabled = set(disabled), set(enabled)
    found = sorted(entry_points(group=GROUP), key=lambda ep: ep.name)  # deterministic order
    names = {ep.name for ep in found} | {name for name, _ in extra}
    for name in sorted(disabled):
        if name in ESSENTIAL:
            raise ConfigError("plugins.disabled", f"'{name}' keeps consumers safe and cannot be disabled")
        if name not in names:
            raise ConfigError("plugins.disabled", f"no installed plugin is named '{name}'")
    for name in sorted(enabled):
        if name not in names:
            raise ConfigError("plugins.enabled", f"no installed plugin is named '{name}'")
        if name in disabled:
            raise ConfigError("plugins.enabled", f"'{name}' is in plugins.disabled too")
    disabled |= OPT_IN.keys() - enabled

    infos: list[PluginInfo] = []
    for ep in found:
        dist, version = _distribution(ep)
        label = f"{dist} {version}" if dist else None
        if ep.name in disabled:
            pm.set_blocked(ep.name)
            infos.append(PluginInfo(ep.name, dist, version, False, ()))
            continue
        if pm.has_plugin(ep.name):
            raise PluginError(ep.name, "two installed distributions use this plugin name", distribution=label)
        try:
            plugin = _instantiate(ep.load())
        except Exception as exc:  # any import-time failure must name the plugin, whatever it is
            raise PluginError(ep.name, f"failed to import {ep.value}: {exc!r}", distribution=label) from exc
        _register(pm, ep.name, plugin, label)
        infos.append(PluginInfo(ep.name, dist, version, True, _hook_names(pm, plugin)))
    for name, plugin in extra:
        if name in disabled:
            infos.append(PluginInfo(name, None, None, False, ()))
            continue
        _register(pm, name, plugin, None)
        infos.append(PluginInfo(name, None, None, True, _hook_names(pm, plugin)))
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(getattr(exc, "plugin_name", "?") or "?", str(exc)) from exc
    return pm, infos


def _register(pm: pluggy.PluginManager, name: str, plugin: Any, label: str | None) -> None:
    try:
        pm.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise PluginError(name, str(exc), distribution=label) from exc


def _hook_names(pm: pluggy.PluginManager, plugin: Any) -> tuple[str, ...]:
    return tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or ()))


class Hooks:
    """One typed method per hook: calls with keywords, awaits what needs awaiting, names failing plugins."""

    def __init__(self, pm: pluggy.PluginManager, app: App) -> None:
        self.pm = pm
        self._hook = pm.hook
        self._app = app
        self._webhook_methods: dict[str, frozenset[str]] = {}

    def configure(self) -> None:
        # Called one implementation at a time so that a failure names its plugin.
        for impl in self._hook.smsconnector_configure.get_hookimpls():
            try:
                impl.function(**{arg: self._app for arg in impl.argnames})
            except ConfigError as exc:
                raise PluginConfigError(impl.plugin_name, exc.key, exc.reason) from exc
            except Exception as exc:
                raise PluginError(impl.plugin_name, f"failed to configure: {exc!r}") from exc

    def migrations(self) -> list[Path]:
        return [Path(p) for p in self._hook.smsconnector_migrations() if p]

    def routes(self) -> list[BaseRoute]:
        return [route for routes in self._hook.smsconnector_register_routes(app=self._app) for route in routes or ()]

    async def startup(self) -> None:
        for impl in reversed(self._hook.smsconnector_startup.get_hookimpls()):  # registration order
            try:
                await await_maybe(impl.function(**{arg: self._app for arg in impl.argnames}))
            except Exception as exc:
                raise PluginError(impl.plugin_name, f"failed to start: {exc!r}") from exc

    async def shutdown(self) -> None:
        for impl in self._hook.smsconnector_shutdown.get_hookimpls():
            try:
                await await_maybe(impl.function(**{arg: self._app for arg in impl.argnames}))
            except Exception:
                log.exception("plugin %r failed to shut down", impl.plugin_name)

    def webhook_methods(self, provider: str) -> frozenset[str]:
        """The HTTP methods ``provider``'s webhooks may use (``POST`` unless its plugin says otherwise); asked once."""
        methods = self._webhook_methods.get(provider)
        if methods is None:
            methods = DEFAULT_WEBHOOK_METHODS
            # Called one implementation at a time (in pluggy's order) so that a wrong answer names its plugin.
            for impl in self._hook.smsconnector_webhook_methods.get_hookimpls()[::-1]:
                kwargs = {"provider": provider, "app": self._app}
                declared = impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
                if declared is None:
                    continue
                if isinstance(declared, str) or not declared or not all(isinstance(m, str) for m in declared):
                    raise PluginError(impl.plugin_name,
                                      f"smsconnector_webhook_methods must name HTTP methods, got {declared!r}")
                methods = frozenset(m.upper() for m in declared)
                break
            self._webhook_methods[provider] = methods
        return methods

    async def receive(self, provider: str, request: WebhookRequest) -> Received:
        result = self._hook.smsconnector_receive(provider=provider, request=request, app=self._app)
        if result is None:
            raise UnknownProvider(f"no enabled plugin receives webhooks for provider '{provider}'")
        return await await_maybe(result)

    def normalize(self, provider: str, event: Any) -> InboundMessage | StatusUpdate | None:
        return self._hook.smsconnector_normalize(provider=provider, event=event, app=self._app)

    def segment_policy(self, provider: str, message: InboundMessage) -> SegmentPolicy | None:
        return self._hook.smsconnector_segment_policy(provider=provider, message=message, app=self._app)

    async def route_prefetch(self, messages: Sequence[InboundMessage], session: AsyncSession) -> None:
        for r in self._hook.smsconnector_route_prefetch(messages=messages, app=self._app, session=session):
            await await_maybe(r)

    async def route(
        self, message: InboundMessage, conversation: Conversation | None, session: AsyncSession
    ) -> Routing | None:
        # firstresult stops at the first non-None *synchronous* result; an awaited None must fall through
        # to the next implementation, so the chain is walked here rather than by pluggy.
        for impl in self._hook.smsconnector_route.get_hookimpls()[::-1]:
            if impl.wrapper or impl.hookwrapper:
                continue  # observers of route are not supported: the chain is awaited here, not by pluggy
            kwargs = {"message": message, "conversation": conversation, "app": self._app, "session": session}
            result = await await_maybe(impl.function(**{arg: kwargs[arg] for arg in impl.argnames}))
            if result is not None:
                return result
        return None

    async def check_outbound(self, message: OutboundMessage, session: AsyncSession) -> list[Verdict]:
        results = self._hook.smsconnector_check_outbound(message=message, app=self._app, session=session)
        verdicts = [await await_maybe(r) for r in results]
        return [v for v in verdicts if v is not None]

    async def send(self, provider: str, message: OutboundMessage) -> SendResult:
        result = self._hook.smsconnector_send(provider=provider, message=message, app=self._app)
        if result is None:
            raise UnknownProvider(f"no enabled plugin sends through provider '{provider}'")
        return await await_maybe(result)

    async def find_sent(self, provider: str, message: OutboundMessage, since: datetime) -> SendResult | None:
        result = self._hook.smsconnector_find_sent(provider=provider, message=message, since=since, app=self._app)
        return None if result is None else await await_maybe(result)

    async def status_recorded(self, update: StatusUpdate, message_id: int, session: AsyncSession) -> None:
        for r in self._hook.smsconnector_status_recorded(
            update=update, message_id=message_id, app=self._app, session=session
        ):
            await await_maybe(r)

    async def consent_signal(self, signal: ConsentSignal, session: AsyncSession) -> None:
        for r in self._hook.smsconnector_consent_signal(signal=signal, app=self._app, session=session):
            await await_maybe(r)
