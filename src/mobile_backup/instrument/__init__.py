"""Instrumentation for tests and the torture run, inert in production: crash points (a named
instant at which an armed process kills itself) and the recording of every AWS call a
component makes (the IAM test's evidence).

Product code reaches it through one small seam each: `crash_point(name)` (one comparison
unless armed) and `record_calls(client, component=...)`, which the AWS client factory calls
for every client it builds (a no-op unless recording is switched on).
"""

from __future__ import annotations

from mobile_backup.instrument._calls import record_calls
from mobile_backup.instrument._crash import crash_point, crash_points

__all__ = ["crash_point", "crash_points", "record_calls"]
