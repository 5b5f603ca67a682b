"""bench.models (under construction)."""
