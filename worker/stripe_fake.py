"""localstripe, the Stripe fake of ``amends dev``, as a child process that keeps its store in the data directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def command(store_path: Path, port: int) -> list[str]:
    """The child's command line; it names localstripe, which is how a reader of ``ps`` tells it apart."""
    return [sys.executable, "-m", "worker.stripe_fake", "localstripe", str(store_path), "--port", str(port)]


def localstripe_main(store_path: str, argv: list[str]) -> None:
    """Run localstripe with its store in ``store_path``.

    localstripe pickles its whole store to /tmp/localstripe.pickle after
    every write, a path shared by every localstripe on the machine (the
    tests start their own). Here the store lives in the data directory,
    beside the incidents whose payments it holds, and is replaced
    atomically: a torn pickle would stop localstripe from starting again.
    """
    import pickle

    from localstripe import resources, server

    def load(store) -> None:
        try:
            with open(store_path, "rb") as f:
                old = pickle.load(f)
        except FileNotFoundError:
            return
        store.clear()
        store.update(old)

    def dump(store) -> None:
        tmp = store_path + ".tmp"
        with open(tmp, "wb") as f:
            pickle.dump(dict(store), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, store_path)

    resources.Store.try_load_from_disk = load
    resources.Store.dump_to_disk = dump
    sys.argv = ["localstripe", *argv]
    server.start()


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "localstripe":
        localstripe_main(sys.argv[2], sys.argv[3:])
    else:
        sys.exit("usage: python -m worker.stripe_fake localstripe STORE_PATH [--port PORT]  (use `amends dev`)")
