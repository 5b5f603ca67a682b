"""The three papers' published result tables as long CSVs (read them with analysis.paper)."""
