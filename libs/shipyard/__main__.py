"""``python -m shipyard`` is the ``shipyard`` command."""

from shipyard.cli.main import main

main()
