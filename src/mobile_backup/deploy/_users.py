"""Household members: Cognito users that only the owner adds (the pool has no self sign-up)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mobile_backup.core import InvalidInputError
from mobile_backup.deploy._errors import error_code, translate

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_cognito_idp.type_defs import AttributeTypeTypeDef

__all__ = ["Member", "add_member"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Member:
    """A user of the pool: their e-mail, their `sub` (their folder) and their state."""

    email: str
    sub: str
    status: str


def add_member(
    idp: CognitoIdentityProviderClient,
    *,
    user_pool_id: str,
    email: str,
    password: str | None = None,
) -> Member:
    """Create a user.

    Without `password` Cognito e-mails a temporary one, to be changed at first sign-in.
    With one, the user is created silently with it as a permanent password (for people
    the owner hands the password to in person). An existing e-mail is refused.
    """
    from botocore.exceptions import ClientError

    email = email.strip()
    if "@" not in email or email.startswith("@") or email.endswith("@"):
        raise InvalidInputError(f"{email!r} is not an e-mail address")
    attributes: list[AttributeTypeTypeDef] = [
        {"Name": "email", "Value": email},
        {"Name": "email_verified", "Value": "true"},
    ]
    with translate(f"adding {email}"):
        try:
            if password is None:
                created = idp.admin_create_user(
                    UserPoolId=user_pool_id,
                    Username=email,
                    UserAttributes=attributes,
                    DesiredDeliveryMediums=["EMAIL"],
                )
            else:
                created = idp.admin_create_user(
                    UserPoolId=user_pool_id,
                    Username=email,
                    UserAttributes=attributes,
                    MessageAction="SUPPRESS",
                )
                try:
                    idp.admin_set_user_password(
                        UserPoolId=user_pool_id, Username=email, Password=password, Permanent=True
                    )
                except ClientError:
                    # A refused password must not leave a half-made member behind.
                    idp.admin_delete_user(UserPoolId=user_pool_id, Username=email)
                    raise
        except ClientError as exc:
            code = error_code(exc)
            message = exc.response.get("Error", {}).get("Message", code)
            if code == "UsernameExistsException":
                raise InvalidInputError(f"{email} is already a member", code="user_exists") from exc
            if code == "InvalidPasswordException":
                raise InvalidInputError(message, code="invalid_password") from exc
            if code == "InvalidParameterException":
                raise InvalidInputError(message) from exc
            raise
        user = idp.admin_get_user(UserPoolId=user_pool_id, Username=email)
    attrs = {a["Name"]: a["Value"] for a in user.get("UserAttributes", [])}
    logger.info("added %s to %s", email, user_pool_id)
    return Member(
        email=email,
        sub=attrs.get("sub", created["User"].get("Username", "")),
        status=str(user.get("UserStatus", "UNKNOWN")),
    )
