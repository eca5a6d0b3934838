"""Reelgraph's command line and the wiring that runs every service as a process."""
