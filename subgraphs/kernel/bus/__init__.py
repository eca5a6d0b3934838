"""The event bus: durable consumer groups and live fan-out over SQLite (one machine) or Redis."""

from __future__ import annotations

from subgraphs.kernel.bus.base import Bus, Message
from subgraphs.kernel.settings import Settings

__all__ = ["Bus", "Message", "open_bus"]


def open_bus(settings: Settings) -> Bus:
    """Build the backend `settings.bus` names. Connections are opened lazily on first use."""
    if settings.bus == "redis":
        from subgraphs.kernel.bus.redis import RedisBus

        return RedisBus(
            settings.redis_url,
            namespace=settings.bus_namespace,
            visibility_timeout=settings.bus_visibility_timeout,
            retention=settings.bus_retention,
        )
    from subgraphs.kernel.bus.local import LocalBus

    return LocalBus(
        settings.data_dir / "bus.db",
        visibility_timeout=settings.bus_visibility_timeout,
        retention=settings.bus_retention,
    )
