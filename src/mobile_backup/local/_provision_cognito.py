"""The template's Cognito user pool and app client on the emulator.

Pools and clients are found by name, so a re-run updates them instead of adding more.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mobile_backup.local._provision_stack import Stack, pick

__all__ = ["LOCAL_ONLY_AUTH_FLOW", "provision_user_pool", "provision_user_pool_client"]

# The local app client also allows USER_PASSWORD_AUTH: the CLI signs in with it against the
# emulator only (moto has no SRP). The deployed client allows SRP and refresh only.
LOCAL_ONLY_AUTH_FLOW = "ALLOW_USER_PASSWORD_AUTH"

# User pool properties that CreateUserPool takes under the same names and shapes.
_POOL_PROPERTIES = {
    "AccountRecoverySetting",
    "AdminCreateUserConfig",
    "AliasAttributes",
    "AutoVerifiedAttributes",
    "DeletionProtection",
    "EmailConfiguration",
    "MfaConfiguration",
    "Policies",
    "Schema",
    "UserAttributeUpdateSettings",
    "UsernameAttributes",
    "UsernameConfiguration",
    "UserPoolTags",
    "VerificationMessageTemplate",
}

# App client properties that Create/UpdateUserPoolClient take under the same names and shapes.
_CLIENT_PROPERTIES = {
    "AccessTokenValidity",
    "AllowedOAuthFlows",
    "AllowedOAuthFlowsUserPoolClient",
    "AllowedOAuthScopes",
    "AuthSessionValidity",
    "CallbackURLs",
    "DefaultRedirectURI",
    "EnablePropagateAdditionalUserContextData",
    "EnableTokenRevocation",
    "ExplicitAuthFlows",
    "GenerateSecret",
    "IdTokenValidity",
    "LogoutURLs",
    "PreventUserExistenceErrors",
    "ReadAttributes",
    "RefreshTokenValidity",
    "SupportedIdentityProviders",
    "TokenValidityUnits",
    "WriteAttributes",
}


def provision_user_pool(stack: Stack, logical_id: str) -> None:
    """Create an `AWS::Cognito::UserPool`, or reuse the one with the same name."""
    props = stack.props(logical_id)
    pick(props, "AWS::Cognito::UserPool", {*_POOL_PROPERTIES, "UserPoolName", "EnabledMfas"})
    name = props.get("UserPoolName") or f"{stack.pseudo['AWS::StackName']}-{logical_id}"
    config = {k: v for k, v in props.items() if k in _POOL_PROPERTIES}
    # CloudFormation's EnabledMfas is SetUserPoolMfaConfig's business in the API.
    mfa = config.pop("MfaConfiguration", "OFF")
    totp = "SOFTWARE_TOKEN_MFA" in props.get("EnabledMfas", [])
    idp = stack.idp
    existing = _find(
        lambda token: idp.list_user_pools(MaxResults=60, **token),
        "UserPools",
        name,
        "Name",
    )
    if existing is None:
        pool = idp.create_user_pool(PoolName=name, **config)["UserPool"]
    else:
        pool = idp.describe_user_pool(UserPoolId=existing["Id"])["UserPool"]
    pool_id = pool["Id"]
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id,
        SoftwareTokenMfaConfiguration={"Enabled": totp},
        MfaConfiguration=mfa,
    )
    stack.refs[logical_id] = pool_id
    stack.attrs[f"{logical_id}.Arn"] = pool["Arn"]
    stack.attrs[f"{logical_id}.UserPoolId"] = pool_id
    stack.attrs[f"{logical_id}.ProviderName"] = (
        f"cognito-idp.{stack.region}.amazonaws.com/{pool_id}"
    )
    stack.attrs[f"{logical_id}.ProviderURL"] = (
        f"https://cognito-idp.{stack.region}.amazonaws.com/{pool_id}"
    )


def provision_user_pool_client(stack: Stack, logical_id: str) -> None:
    """Create an `AWS::Cognito::UserPoolClient`, or update the one with the same name."""
    props = stack.props(logical_id)
    pick(
        props,
        "AWS::Cognito::UserPoolClient",
        {*_CLIENT_PROPERTIES, "ClientName", "UserPoolId"},
    )
    pool_id = props["UserPoolId"]
    name = props.get("ClientName") or f"{stack.pseudo['AWS::StackName']}-{logical_id}"
    config = {k: v for k, v in props.items() if k in _CLIENT_PROPERTIES}
    flows = list(config.get("ExplicitAuthFlows", []))
    if LOCAL_ONLY_AUTH_FLOW not in flows:
        # Deliberate divergence from the template: see LOCAL_ONLY_AUTH_FLOW.
        flows.append(LOCAL_ONLY_AUTH_FLOW)
    config["ExplicitAuthFlows"] = flows
    idp = stack.idp
    existing = _find(
        lambda token: idp.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60, **token),
        "UserPoolClients",
        name,
        "ClientName",
    )
    if existing is None:
        client = idp.create_user_pool_client(UserPoolId=pool_id, ClientName=name, **config)
        client_id = client["UserPoolClient"]["ClientId"]
    else:
        client_id = existing["ClientId"]
        # GenerateSecret cannot be changed after creation.
        config.pop("GenerateSecret", None)
        idp.update_user_pool_client(
            UserPoolId=pool_id, ClientId=client_id, ClientName=name, **config
        )
    stack.refs[logical_id] = client_id
    stack.attrs[f"{logical_id}.ClientId"] = client_id


def _find(
    page: Callable[[dict[str, str]], Any], items: str, name: str, field: str
) -> dict[str, Any] | None:
    """The first listed item whose `field` is `name`, following NextToken across pages."""
    token: dict[str, str] = {}
    while True:
        resp = page(token)
        for item in resp.get(items, []):
            if item.get(field) == name:
                found: dict[str, Any] = item
                return found
        if not resp.get("NextToken"):
            return None
        token = {"NextToken": resp["NextToken"]}
