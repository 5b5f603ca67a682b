"""bench.losses (under construction)."""
