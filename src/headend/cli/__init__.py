"""The ``headend`` command."""
