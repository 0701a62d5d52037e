"""Pure collection logic: which markets, their quotes, BTC spot. No Dagster import."""
