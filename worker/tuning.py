"""How much one worker process holds and runs at once, as ``Worker`` arguments.

The values and their defaults are declared once, with the other settings, in
``worker.settings`` (``AMENDS_MAX_CACHED_WORKFLOWS`` and the rest); this module
only carries them to the SDK, and imports nothing of amends, so that the
benchmark's bare worker (``bench.scale_worker``) is tuned the same way without
loading amends.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from temporalio.worker import PollerBehaviorSimpleMaximum


class WorkerTuning(BaseModel):
    max_cached_workflows: int
    max_concurrent_workflow_tasks: int
    max_concurrent_activities: int
    max_concurrent_local_activities: int
    workflow_task_pollers: int
    activity_task_pollers: int

    def worker_options(self) -> dict[str, Any]:
        """The ``temporalio.worker.Worker`` keyword arguments."""
        return {
            "max_cached_workflows": self.max_cached_workflows,
            "max_concurrent_workflow_tasks": self.max_concurrent_workflow_tasks,
            "max_concurrent_activities": self.max_concurrent_activities,
            "max_concurrent_local_activities": self.max_concurrent_local_activities,
            "workflow_task_poller_behavior": PollerBehaviorSimpleMaximum(self.workflow_task_pollers),
            "activity_task_poller_behavior": PollerBehaviorSimpleMaximum(self.activity_task_pollers),
        }
