"""``python -m discover``: the same as the ``discover`` command."""

from discover.cli import main

main()
