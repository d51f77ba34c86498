"""Which behaviour a run takes: one marker per run for every change made so far.

Each change of behaviour went behind its own ``workflow.patched(id)``
(docs/versioning.md), and every new run recorded one marker per id it
reached: seven markers of ~100 bytes each, in every incident, forever. A
*release* folds them into one: a run that starts on this code records the
release's marker once, at its first ``patched`` question, and takes every
patch listed below without a marker of its own. A run recorded before the
release (no release marker) is asked each patch as it was, so it replays as
it ran. The release travels in the state (``RecoveryState.release``), so the
runs an incident continues into never record it again.

New behaviour of this release is asked as ``release()``: no marker of its
own either. The next change of behaviour goes behind a new patch id as
before; when several have gathered, the next release folds them in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import workflow

if TYPE_CHECKING:
    from workflows.state import RecoveryState

RELEASE = "release-2026-12"

# The patches whose new path every run since RELEASE takes.
FOLDED = frozenset({
    "anniversary-gift", "goodwill-ceiling", "refund-outcome-unknown", "verified-actors", "independent-channels",
    "pause-only-on-customer", "cancel-work-orders", "notice-entries", "upsert-on-change", "continue-mid-recovery",
})


class Versions:
    """One run's answers, kept in ``state.release`` so that continue-as-new carries them."""

    def __init__(self, state: RecoveryState) -> None:
        self.s = state

    def release(self) -> bool:
        """This run (or the one it continued from) records RELEASE: it takes this release's behaviour.

        The first question comes at the run's first line, so a run recorded before the release answers
        it while replaying (no marker: no) and the SDK keeps that answer for the rest of the run.
        """
        if self.s.release != RELEASE and workflow.patched(RELEASE):
            self.s.release = RELEASE
        return self.s.release == RELEASE

    def patched(self, patch_id: str) -> bool:
        """``workflow.patched(patch_id)``, answered without a marker since the release folded it in."""
        assert patch_id in FOLDED, f"{patch_id} is not folded into {RELEASE}: ask workflow.patched"
        return self.release() or workflow.patched(patch_id)
