"""bench.engine (under construction)."""
