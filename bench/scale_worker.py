"""The worker of ``bench.scale``, alone in its process so that its RSS is its own.

    python -m bench.scale_worker --kind bare|amends --address HOST:PORT --queue Q --data DIR --tuning JSON --stats FILE

It prints ``ready`` once it polls, writes its figures (memory from /proc, the
Python heap, the workflows in its sticky cache) to ``--stats`` on
``SIGUSR1``, and stops on ``SIGTERM``. The bare worker imports nothing of
amends but its data converter (the same payload codec as amends), so its
memory is a bare worker's: amends' modules are loaded only for ``amends``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import signal
import sys
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from bench.bare import BareIncident, bare_noop
from worker.tuning import WorkerTuning
from workflows.codec import KeyRing
from workflows.converter import encrypted_converter


def status() -> dict[str, float]:
    """This process's memory from /proc (MB), and its Python heap (allocated blocks)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)

    def mb(name: str) -> float:
        return int(fields[name].split()[0]) / 1024

    return {"rss_mb": mb("VmRSS"), "hwm_mb": mb("VmHWM"), "anon_mb": mb("RssAnon"),
            "py_blocks": sys.getallocatedblocks(), "modules": len(sys.modules)}


def cached(worker: Worker) -> int:
    """Workflows in the worker's sticky cache (the SDK keeps no public count)."""
    running = getattr(getattr(worker, "_workflow_worker", None), "_running_workflows", None)
    return len(running) if running is not None else -1


def amends_worker(client: Client, args: argparse.Namespace, tuning: WorkerTuning) -> Worker:
    from activities.identity import IdentityConfig
    from bench.noop import noop_activities
    from worker.config import Settings
    from worker.main import activities_for, build_worker

    settings = Settings(task_queue=args.queue, identity=IdentityConfig.load(Path(args.data) / "identity.toml"),
                        tuning=tuning)
    return build_worker(client, settings, noop_activities(activities_for(settings)))


async def serve(args: argparse.Namespace) -> None:
    converter = encrypted_converter(KeyRing.load(Path(args.data) / "codec-keys.toml"))
    client = await Client.connect(args.address, data_converter=converter)
    tuning = WorkerTuning.model_validate_json(args.tuning)
    if args.kind == "amends":
        worker = amends_worker(client, args, tuning)
    else:
        # The SDK's sandbox as amends' worker has it (amends' extra passthroughs name modules bare never imports).
        worker = Worker(client, task_queue=args.queue, workflows=[BareIncident], activities=[bare_noop],
                        workflow_runner=SandboxedWorkflowRunner(), **tuning.worker_options())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def report_figures() -> None:
        gc.collect()
        out = Path(args.stats)
        out.with_suffix(".tmp").write_text(json.dumps(status() | {"cached": cached(worker)}))
        out.with_suffix(".tmp").rename(out)

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, report_figures)
    async with worker:
        print("ready", flush=True)
        await stop.wait()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)  # the SDK's warnings (evictions, failed tasks)
    parser = argparse.ArgumentParser(prog="python -m bench.scale_worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=("bare", "amends"), required=True)
    for name in ("--address", "--queue", "--data", "--tuning", "--stats"):
        parser.add_argument(name, required=True)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
