"""The Reelgraph federation router: compose → plan → execute, with subscriptions and edge
features. Built in issue 3; this package is its home."""
