"""One handler per job type the media worker consumes, each in its own module."""
