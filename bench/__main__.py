"""``python -m bench``: amends against a bare workflow of its shape (``bench.yardstick``)."""

from bench.yardstick import main

main()
