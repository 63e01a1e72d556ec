"""Recording of every AWS call a process makes, labelled with the component that made it.

The emulator does not enforce IAM, so the tests prove invariant 7 ("the template grants
exactly what the code calls") another way: with `MOBILE_BACKUP_RECORD_AWS_CALLS=FILE` set,
every client built by `core._aws` appends one JSON line per API call (presigned URLs
included, since the phone's request runs under the signer's role) to FILE:

    {"component": "agent", "service": "s3", "operation": "GetObject",
     "params": {"Bucket": "...", "Key": "media/..."}}

The component is named by whoever builds the client (`aws.s3_client(settings,
component="agent")`): the role the code runs under, said where it is known, not guessed
from the call stack (the ledger is shared code: a receipt written by the agent is the
agent's call, because the agent built the client). The IAM test
(`tests/test_zz_iam_calls.py`) reads the file and checks each call against the role that
component runs under in `infra/template.yaml`. Off (no handler at all) unless the
variable is set.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

# The request parameters that name a resource or a policy condition key; nothing else
# (never a body, a token or a filename) is written.
_KEPT = ("Bucket", "Key", "Prefix", "QueueUrl", "QueueName", "TableName", "IndexName",
         "UserPoolId", "SourceArn", "DestinationArn")  # fmt: skip


class CallRecorder:
    """Appends one line per call to `path`; safe across threads and processes (O_APPEND)."""

    _lock = threading.Lock()

    def __init__(self, path: str, *, component: str) -> None:
        self._path = path
        self._component = component

    def attach(self, client: Any) -> None:
        """Record every call `client` makes, through botocore's own event hook."""
        client.meta.events.register("before-parameter-build.*.*", self._on_call)

    def _on_call(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        kept: dict[str, Any] = {k: params[k] for k in _KEPT if k in params}
        if "RequestItems" in params:  # BatchGetItem / BatchWriteItem: the tables
            kept["TableNames"] = sorted(params["RequestItems"])
        line = {
            "component": self._component,
            "service": model.service_model.endpoint_prefix,
            "operation": model.name,
            "params": kept,
        }
        data = (json.dumps(line, sort_keys=True) + "\n").encode()
        with self._lock:
            fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)


def record_calls(client: Any, *, component: str) -> None:
    """Record `client`'s calls as `component`'s when the run asks for it (the IAM test)."""
    from mobile_backup.core import record_calls_path

    path = record_calls_path()
    if path:
        CallRecorder(path, component=component).attach(client)
