"""The one boundary where botocore's errors become deploy errors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from mobile_backup.core import error_code
from mobile_backup.deploy.exceptions import DeployError, NoCredentialsError

__all__ = ["error_code", "translate"]

_NO_CREDENTIALS = (
    "no AWS credentials found: run `aws configure` (or `aws sso login`), set AWS_PROFILE, "
    "or pass --aws-profile"
)


@contextlib.contextmanager
def translate(doing: str) -> Iterator[None]:
    """Turn a botocore failure inside the block into one readable DeployError line."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        PartialCredentialsError,
    )
    from botocore.exceptions import (
        NoCredentialsError as BotoNoCredentials,
    )

    try:
        yield
    except (BotoNoCredentials, PartialCredentialsError) as exc:
        raise NoCredentialsError(_NO_CREDENTIALS) from exc
    except ClientError as exc:
        code = error_code(exc)
        if code in {"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId"}:
            raise NoCredentialsError(
                f"{doing}: the AWS credentials are expired or invalid ({code}); sign in again"
            ) from exc
        message = exc.response.get("Error", {}).get("Message") or str(exc)
        raise DeployError(f"{doing}: {code}: {message}") from exc
    except BotoCoreError as exc:
        raise DeployError(f"{doing}: {exc}") from exc
