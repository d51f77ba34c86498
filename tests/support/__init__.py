"""What the tests share, and only that: factories, step walking, history and mail helpers, servers.

Test modules import helpers from here, never from one another; fixtures stay
in the ``conftest.py`` files. Nothing here starts a server on import.
"""
