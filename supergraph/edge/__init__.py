"""Edge features of the router, each its own piece: persisted queries, authentication,
limits, rate limits, CORS and security headers, telemetry. They attach at named points of
the request pipeline in `supergraph/server.py`."""
