"""Deploy's errors at the AWS boundary: the boundary's table, and DeployError for the rest."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from mobile_backup.aws import CredentialsError, aws_call
from mobile_backup.deploy.exceptions import DeployError, NoCredentialsError

__all__ = ["translate"]


@contextlib.contextmanager
def translate(doing: str) -> Iterator[None]:
    """Turn a botocore failure inside the block into one readable line: what the boundary
    knows (not found, access denied, refused, ...) as its error, missing or expired
    credentials as NoCredentialsError, anything else as DeployError. `doing` is what was
    being done, as a verb: "read stack x"."""
    try:
        with aws_call(doing, error=DeployError):
            yield
    except NoCredentialsError:
        raise
    except CredentialsError as exc:
        raise NoCredentialsError(str(exc), aws_code=exc.aws_code) from exc
