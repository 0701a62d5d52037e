"""Pure feature code (polars / plain Python): market terms, indicators, quality."""
