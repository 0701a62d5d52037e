"""The live edges of open up/down markets, minute by minute (stopped by default)."""
