"""Lambda's context object, for the functions' handlers when they run on this machine."""

from __future__ import annotations

import time


class LocalLambdaContext:
    """The LambdaContext attributes handlers and Powertools read."""

    function_version = "$LATEST"
    log_stream_name = "local"

    def __init__(
        self,
        aws_request_id: str = "",
        *,
        function_name: str = "mobile-backup-local",
        memory_limit_in_mb: int = 512,
        timeout_seconds: float = 30.0,
    ) -> None:
        self.aws_request_id = aws_request_id
        self.function_name = function_name
        self.memory_limit_in_mb = memory_limit_in_mb
        self.invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{function_name}"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
