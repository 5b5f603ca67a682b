"""Statistics, figures and reports over long result tables (reads results/, never bench.engine)."""
