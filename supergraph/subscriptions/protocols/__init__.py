"""Wire protocols, one module each, kept apart from the transports that carry them."""
