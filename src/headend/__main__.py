"""``python -m headend`` runs the ``headend`` command."""

from headend.cli.main import main

main()
