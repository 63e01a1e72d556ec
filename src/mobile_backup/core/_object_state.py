"""What a cloud copy's `state` tag says, and so how long the bucket keeps it.

Untagged objects are never expired: a copy no PC has verified is the only copy there may be.
Each tag below is written by exactly one component once it knows, and each has its own
lifecycle rule in `infra/template.yaml` (a test reads this enum against the template).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import TaggingTypeDef

STATE_TAG = "state"


class ObjectState(enum.StrEnum):
    """The value of a media object's `state` tag."""

    DOWNLOADED = "downloaded"
    """A PC verified and placed it (the agent, after its receipt): kept `RetentionDays`."""
    CORRUPT = "corrupt"
    """Its bytes do not hash to its key (the agent): garbage, expired after 30 days."""
    REFUSED = "refused"
    """Not a photo or video by its content (the agent never files it): 30 days."""
    QUARANTINED = "quarantined"
    """Not an upload the API presigned for a known member (the ingest never files it): 30
    days, time for the owner to look."""


def state_tagging(state: ObjectState) -> TaggingTypeDef:
    """S3's `Tagging` argument that sets `state`."""
    return {"TagSet": [{"Key": STATE_TAG, "Value": state.value}]}
