"""The health asset: the original tracker's success metrics against its targets."""
