"""The one vocabulary of statuses, for tasks in the journal and images in the manifest.

Every place that writes or compares a status uses `Status`; it is a `StrEnum`, so the
values stored in SQLite, CSV and JSON stay the plain strings users filter on
(`df[df.status == "ok"]`).
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Where a task (journal) or an image (manifest) stands."""

    # -- both ---------------------------------------------------------------
    PENDING = "pending"  # not started (yet): the next run sends it
    OK = "ok"  # a good image on disk, whichever run made it
    FAILED = "failed"  # refused or broken; not billed unless an image came back
    UNSAFE = "unsafe"  # 422, or a billed image withheld by the safety check
    IN_DOUBT = "in_doubt"  # sent, no answer: it may have run and been billed
    DOWNLOAD_EXPIRED = "download_expired"  # billed, but its URL died before the download
    NOT_SAVED = "not_saved"  # billed and answered, but not yet on disk (local failure)
    SKIPPED_BUDGET = "skipped_budget"  # not started: it would have passed the budget cap
    SKIPPED_PARENT = "skipped_parent"  # not started: an image it needs was not produced
    # -- journal tasks only -------------------------------------------------
    SENDING = "sending"  # committed before the request leaves
    RESPONDED = "responded"  # the answer is journaled; downloads not finished
    DONE = "done"  # every image of the answer has an outcome


#: Image statuses whose request certainly ran and was billed.
BILLED = frozenset({Status.OK, Status.UNSAFE, Status.DOWNLOAD_EXPIRED, Status.NOT_SAVED})
#: Image statuses that never reached the provider (nothing billed).
NOT_SENT = frozenset({Status.PENDING, Status.SKIPPED_BUDGET, Status.SKIPPED_PARENT})
