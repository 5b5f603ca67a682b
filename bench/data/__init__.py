"""bench.data (under construction)."""
