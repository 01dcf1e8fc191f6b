"""Keeping the store in shape: partitions made ahead, interval data kept as long as set."""
