"""Repositories build and run statements inside a session they are given; they never commit."""
