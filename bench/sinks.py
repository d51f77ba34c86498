"""The SMTP sink and the webhook receiver of ``amends dev``, in a process of their own.

The benchmark measures its own process's CPU as the client's and the
worker's; the stand-ins for the outside world run here so that their CPU
is counted apart (as integrations), not as amends'.

    python -m bench.sinks --smtp-port N --webhook-port M --secret whsec_…
"""

from __future__ import annotations

import argparse
import asyncio

from worker.mailsink import start_sink
from worker.webhook_sink import start_webhook_sink


async def serve(smtp_port: int, webhook_port: int, secret: str) -> None:
    controller, _ = start_sink("127.0.0.1", smtp_port)
    runner, _ = await start_webhook_sink("127.0.0.1", webhook_port, secret)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        controller.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--webhook-port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.smtp_port, args.webhook_port, args.secret))


if __name__ == "__main__":
    main()
