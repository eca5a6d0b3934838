"""How many subscriptions one connection and one user may hold at once."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class SubscriptionLimits:
    per_connection: int = 100
    per_user: int = 500
    active: Counter[str] = field(default_factory=Counter)
    # Every open subscription, counted against a user or not.
    open: int = 0

    def acquire(self, user: str | None, held_by_connection: int) -> str | None:
        """Reserve a slot; None when allowed, otherwise why not."""
        if held_by_connection >= self.per_connection:
            return f"At most {self.per_connection} subscriptions per connection."
        if user is not None:
            if self.active[user] >= self.per_user:
                return f"At most {self.per_user} subscriptions per user."
            self.active[user] += 1
        self.open += 1
        return None

    def release(self, user: str | None) -> None:
        self.open = max(0, self.open - 1)
        if user is not None and self.active[user] > 0:
            self.active[user] -= 1
            if not self.active[user]:
                del self.active[user]
