"""``python -m worker.cli``: the same as the ``amends`` command (the tests run it so)."""

from worker.cli import main

main()
