"""Errors raised by the PC agent.

    MobileBackupError
    └── AgentError                     root of this package's errors
        ├── UnsafePathError            a path would leave the library root (also
        │                              InvalidInputError); nothing is written
        ├── MalformedMessageError      a queue message that is not a valid download message
        │                              (also InvalidInputError); left for the dead-letter queue
        ├── DownloadIntegrityError     downloaded bytes do not match the declared size or
        │   │                          SHA-256 (also IntegrityError); never placed
        │   └── ContentMismatchError   the whole object was read and its SHA-256 is not the
        │                              one its key names: the cloud copy is garbage
        ├── DownloadError              the object could not be fetched (also ServiceError)
        │   └── ObjectMissingError     the object is not in the bucket (any more)
        ├── NotMediaError              verified bytes that are not a photo or video (also
        │                              InvalidInputError); never filed, the message settled
        ├── ServiceInstallError        the service could not be installed or removed
        ├── LibraryInUseError          another agent is running on this library (also
        │                              ConfigError); nothing is started
        └── LibraryOfAnotherPcError    the library belongs to another PC of the household
                                       (also ConfigError): a PC needs a library of its own

boto3 errors are translated into these at the S3/SQS boundary (`_transfer.py`,
`_queue.py`). A stopping agent raises core's `CancelledError`: the work is released.
"""

from __future__ import annotations

from mobile_backup.core import (
    ConfigError,
    IntegrityError,
    InvalidInputError,
    MobileBackupError,
    ServiceError,
)


class AgentError(MobileBackupError):
    """Root of the agent's errors."""

    code = "agent_error"


class UnsafePathError(AgentError, InvalidInputError):
    """A path that would resolve outside the library root."""

    code = "unsafe_path"


class MalformedMessageError(AgentError, InvalidInputError):
    """A downloads-queue message that is not a download message we can act on."""

    code = "malformed_message"


class DownloadIntegrityError(AgentError, IntegrityError):
    """The downloaded bytes are not the bytes the ledger promised."""

    code = "download_integrity_error"


class ContentMismatchError(DownloadIntegrityError):
    """Every byte of the object was read and hashes to another SHA-256 than its key's.

    Only this proves the cloud copy itself is bad (a short read or a size that disagrees
    with the ledger may be the transfer's fault), so only this tags it for expiry.
    """

    code = "content_mismatch"


class DownloadError(AgentError, ServiceError):
    """S3 would not give us the object (missing, forbidden, or unreachable)."""

    code = "download_failed"


class ObjectMissingError(DownloadError):
    """The object is not in the bucket (any more): expired after delivery, or never there."""

    code = "object_missing"


class NotMediaError(AgentError, InvalidInputError):
    """The object's bytes (verified against its key) are not a photo or video."""

    code = "not_media"


class ServiceInstallError(AgentError):
    """`agent install` / `uninstall` could not do its job (one readable line)."""

    code = "service_install_failed"


class LibraryInUseError(AgentError, ConfigError):
    """A second `agent run` on a library a running agent holds (a unit and a terminal)."""

    code = "library_in_use"


class LibraryOfAnotherPcError(AgentError, ConfigError):
    """Two PC names on one library would give two receipts for one copy."""

    code = "library_of_another_pc"
