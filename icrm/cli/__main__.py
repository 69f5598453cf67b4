"""``python -m icrm.cli``: the ``icrm`` command."""

from . import main

main()
