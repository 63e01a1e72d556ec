"""The emulator's Cognito, made as strict as Cognito where our sign-in relies on it (part of
`_emulator_fixes.py`, which installs these; tested in `tests/integration/test_emulator_fixes.py`).
"""

from __future__ import annotations

import uuid
from typing import Any


def enforce_client_write_attributes() -> None:
    """Cognito refuses UpdateUserAttributes for an attribute the token's app client may not
    write ("A client attempted to write unauthorized attribute"); moto writes anything. The
    template keeps members from writing the attributes their library folder is named from,
    so the local stack must refuse too."""
    from moto.cognitoidp import models
    from moto.cognitoidp.exceptions import NotAuthorizedError

    backend_cls: Any = models.CognitoIdpBackend
    update = getattr(backend_cls, "update_user_attributes", None)
    if not callable(update):
        raise RuntimeError("moto changed: update_user_attributes is gone; update this fix")

    def update_user_attributes(self: Any, access_token: str, attributes: list[Any]) -> None:
        for pool in self.user_pools.values():
            if access_token in pool.access_tokens:
                client_id, _ = pool.access_tokens[access_token]
                client = pool.clients.get(client_id)
                allowed = client.extended_config.get("WriteAttributes") if client else None
                if allowed is not None and any(a["Name"] not in allowed for a in attributes):
                    raise NotAuthorizedError("A client attempted to write unauthorized attribute")
        update(self, access_token, attributes)

    backend_cls.update_user_attributes = update_user_attributes


def require_mfa_setup_at_password_sign_in() -> None:
    """Where a pool requires MFA, Cognito answers a member without a second factor with the
    MFA_SETUP challenge at every sign-in; moto does so only after a new password, and signs
    a password-only member straight in. Codes are checked against moto's fixed secret
    (MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP, set by the emulator)."""
    from moto.cognitoidp import models

    backend_cls: Any = models.CognitoIdpBackend
    initiate = getattr(backend_cls, "initiate_auth", None)
    if not callable(initiate):
        raise RuntimeError("moto changed: initiate_auth is gone; update this fix")

    def initiate_auth(
        self: Any, client_id: str, auth_flow: str, auth_parameters: dict[str, str]
    ) -> dict[str, Any]:
        answer: dict[str, Any] = initiate(self, client_id, auth_flow, auth_parameters)
        if "AuthenticationResult" not in answer or auth_flow != "USER_PASSWORD_AUTH":
            return answer
        pool = next((p for p in self.user_pools.values() if client_id in p.clients), None)
        user = pool._get_user(auth_parameters.get("USERNAME")) if pool is not None else None
        needs_setup = (
            pool is not None
            and user is not None
            and pool.mfa_config == "ON"
            and pool.token_mfa_config == {"Enabled": True}
            and not user.token_verified
            and not user.software_token_mfa_enabled
        )
        if not needs_setup or user is None:
            return answer
        session = str(uuid.uuid4())
        self.sessions[session] = (user.username, pool)
        return {
            "ChallengeName": "MFA_SETUP",
            "ChallengeParameters": {"MFAS_CAN_SETUP": '["SOFTWARE_TOKEN_MFA"]'},
            "Session": session,
        }

    backend_cls.initiate_auth = initiate_auth
