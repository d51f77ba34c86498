"""A real worker process for the crash test.

With ``--pause-after-refund DIR`` its refund activity makes the Stripe call,
writes ``DIR/<item key>`` and then hangs, so that the test can kill -9 the
process exactly between "money moved" and "activity completed". Without it,
this is the plain amends worker.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from temporalio import activity

from activities.payments import PaymentActivities, stripe_client
from worker.config import Settings, connect
from worker.main import activities_for, build_worker
from workflows.payloads import RefundRequest, RefundResult


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--pause-after-refund", type=Path)
    args = parser.parse_args()
    settings = Settings.from_env()
    activities = activities_for(settings)
    if args.pause_after_refund:
        real = PaymentActivities(stripe_client(settings.stripe_api_key, settings.stripe_api_base))

        @activity.defn(name="refund_payment")
        async def refund_then_hang(req: RefundRequest) -> RefundResult:
            result = await real.refund_payment(req)
            marker = args.pause_after_refund / req.idempotency_key.replace("/", "_")
            partial = marker.with_suffix(".partial")
            partial.write_text(result.refund_id)
            partial.rename(marker)  # atomic: the test sees the whole id or nothing
            await asyncio.sleep(3600)  # killed here
            return result

        activities = [a for a in activities if getattr(a, "__name__", "") != "refund_payment"] + [refund_then_hang]
    client = await connect(args.address)
    async with build_worker(client, settings, activities):
        print("worker ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
