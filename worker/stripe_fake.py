"""localstripe, the Stripe fake of ``amends dev`` and of the tests, as a child process.

It keeps its store in the data directory, and is taught what localstripe
1.15 lacks and amends needs: single-use coupons (``max_redemptions``) and
promotion codes.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any


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
    teach(resources, server)
    serve_on_loopback(server, argv)


def serve_on_loopback(server: Any, argv: list[str]) -> None:
    """localstripe's own start-up, bound to 127.0.0.1 (its ``start`` listens on every interface)."""
    import argparse
    import socket

    from aiohttp import web

    parser = argparse.ArgumentParser(prog="localstripe")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--from-scratch", action="store_true")
    args = parser.parse_args(argv)
    if not args.from_scratch:
        server.store.try_load_from_disk()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    web.run_app(server.app, sock=sock, access_log=None, print=None)


def teach(resources: Any, server: Any) -> None:
    """Add what localstripe lacks: ``max_redemptions`` on coupons, and a minimal PromotionCode.

    A promotion code is created with ``coupon`` (or, as Stripe's current API
    has it, ``promotion[type]=coupon&promotion[coupon]=…``), ``code``,
    ``max_redemptions`` and ``metadata``; listed by ``coupon``, ``code``
    (case-insensitive) and ``active``; retrieved by id. Redemptions are not
    simulated: ``times_redeemed`` stays 0.
    """
    if hasattr(resources, "PromotionCode"):
        return
    UserError = resources.UserError
    to_int = resources.try_convert_to_int
    coupon_init = resources.Coupon.__init__

    def positive(value: Any) -> int | None:
        value = to_int(value)
        if value is not None and (type(value) is not int or value < 1):
            raise UserError(400, "max_redemptions must be a positive integer")
        return value

    def init_coupon(self: Any, *args: Any, max_redemptions: Any = None, **kwargs: Any) -> None:
        limit = positive(max_redemptions)
        coupon_init(self, *args, **kwargs)
        self.max_redemptions = limit

    resources.Coupon.__init__ = init_coupon

    class PromotionCode(resources.StripeObject):
        object = "promotion_code"
        _id_prefix = "promo_"

        def __init__(self, coupon: Any = None, promotion: Any = None, code: Any = None, max_redemptions: Any = None,
                     metadata: Any = None, active: Any = None, **kwargs: Any) -> None:
            if kwargs:
                raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
            if isinstance(promotion, dict):
                if promotion.get("type") != "coupon":
                    raise UserError(400, "promotion[type] must be 'coupon'")
                coupon = promotion.get("coupon")
            if type(coupon) is not str or not coupon:
                raise UserError(400, "Missing required param: promotion[coupon]")
            found = resources.store.get(f"coupon:{coupon}")
            if found is None:
                raise UserError(400, f"No such coupon: '{coupon}'")
            limit = positive(max_redemptions)
            if limit is not None and found.max_redemptions is not None and limit > found.max_redemptions:
                raise UserError(400, "max_redemptions cannot exceed the coupon's max_redemptions")
            code = resources.random_id(12).upper() if code is None else code
            if type(code) is not str or not re.fullmatch(r"[A-Za-z0-9-]+", code):
                raise UserError(400, "code may hold only letters, digits and dashes")
            if PromotionCode._matching(code=code, active=True):
                raise UserError(400, f"An active promotion code with the code '{code}' already exists")
            if metadata is not None and type(metadata) is not dict:
                raise UserError(400, "Bad request")
            # All exceptions must be raised before this point.
            super().__init__()
            self.code = code
            self.promotion = {"type": "coupon", "coupon": coupon}
            self.active = active not in (False, "false")
            self.max_redemptions = limit
            self.times_redeemed = 0
            self.metadata = metadata or {}
            self.customer = None
            self.expires_at = None

        @classmethod
        def _matching(cls, coupon: Any = None, code: Any = None, active: Any = None) -> list[Any]:
            want_active = None if active is None else active in (True, "true")
            return [
                obj for key, obj in resources.store.items()
                if key.startswith(cls.object + ":")
                and (coupon is None or obj.promotion["coupon"] == coupon)
                and (code is None or obj.code.lower() == str(code).lower())
                and (want_active is None or obj.active == want_active)
            ]

        @classmethod
        def _api_list_all(cls, url: str, coupon: Any = None, code: Any = None, active: Any = None,
                          limit: Any = None, starting_after: Any = None, **kwargs: Any) -> Any:
            if kwargs:
                raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
            li = resources.List(url, limit=limit, starting_after=starting_after)
            li._list = cls._matching(coupon, code, active)
            return li

    # Pickled with the rest of the store, so it must be found where pickle looks.
    PromotionCode.__module__, PromotionCode.__qualname__ = resources.__name__, "PromotionCode"
    resources.PromotionCode = PromotionCode
    url = "/v1/promotion_codes"
    for method, path, handler in (("POST", url, server.api_create), ("GET", url, server.api_list_all),
                                  ("GET", url + "/{id}", server.api_retrieve)):
        server.app.router.add_route(method, path, handler(PromotionCode, path))


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "localstripe":
        localstripe_main(sys.argv[2], sys.argv[3:])
    else:
        sys.exit("usage: python -m worker.stripe_fake localstripe STORE_PATH [--port PORT]  (use `amends dev`)")
