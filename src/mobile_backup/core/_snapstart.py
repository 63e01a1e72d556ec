"""Lambda SnapStart: build at publish time what the first request would build, and re-seed
what must differ between the environments restored from one snapshot.

With the template's `SnapStart` parameter on, Lambda runs each function's init once when
it publishes a version and snapshots the memory; every cold start after that is a restore.
A handler calls `snapshot_init()` at import: when Lambda is taking a snapshot
(`AWS_LAMBDA_INITIALIZATION_TYPE=snap-start`) it builds its app and clients there, so the
snapshot holds them, and `reseed_after_restore()` makes every restored environment re-seed
`random` (botocore's retry jitter). Nothing else of ours needs it: ids and passwords come
from `uuid4` and `secrets`, which read the OS's randomness at each call.
"""

from __future__ import annotations

import logging
import os
import random

INIT_TYPE_ENV = "AWS_LAMBDA_INITIALIZATION_TYPE"

_log = logging.getLogger(__name__)


def snapshot_init() -> bool:
    """True while Lambda initialises a function to snapshot it (SnapStart)."""
    return os.environ.get(INIT_TYPE_ENV) == "snap-start"


def reseed_after_restore() -> bool:
    """Register a re-seed of `random` to run after each restore; False where the runtime
    has no SnapStart hooks (anywhere but Lambda)."""
    try:
        from snapshot_restore_py import (  # type: ignore[import-not-found]  # Lambda's own
            register_after_restore,
        )
    except ImportError:
        _log.debug("no SnapStart runtime hooks here")
        return False
    register_after_restore(random.seed)
    return True
