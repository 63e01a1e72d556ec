"""The user pool's password rules, and how to say them to a person.

The pool (infra/template.yaml, `UserPool.Policies.PasswordPolicy`) enforces these; a
signed-in phone cannot read them (that needs AWS credentials), so they are kept here too,
and a test holds this copy to the template's.
"""

from __future__ import annotations

import secrets
import string

PASSWORD_POLICY: dict[str, int | bool] = {
    "MinimumLength": 10,
    "RequireLowercase": True,
    "RequireUppercase": True,
    "RequireNumbers": True,
    "RequireSymbols": False,
}


def password_rules(policy: dict[str, int | bool] | None = None) -> str:
    """The policy in words: "at least 10 characters, with a lower-case letter, …"."""
    p = PASSWORD_POLICY if policy is None else policy
    needs = [
        what
        for key, what in (
            ("RequireLowercase", "a lower-case letter"),
            ("RequireUppercase", "an upper-case letter"),
            ("RequireNumbers", "a number"),
            ("RequireSymbols", "a symbol"),
        )
        if p.get(key)
    ]
    text = f"at least {p.get('MinimumLength', 8)} characters"
    if needs:
        text += ", with " + (
            ", ".join(needs[:-1]) + " and " + needs[-1] if len(needs) > 1 else needs[0]
        )
    return text


def password_problem(password: str, policy: dict[str, int | bool] | None = None) -> str | None:
    """Why `password` breaks the rules (checked before asking the pool), or None."""
    p = PASSWORD_POLICY if policy is None else policy
    ok = (
        len(password) >= int(p.get("MinimumLength", 8))
        and (not p.get("RequireLowercase") or any(c.islower() for c in password))
        and (not p.get("RequireUppercase") or any(c.isupper() for c in password))
        and (not p.get("RequireNumbers") or any(c.isdigit() for c in password))
        and (not p.get("RequireSymbols") or any(c in string.punctuation for c in password))
    )
    return None if ok else f"the password needs {password_rules(p)}"


def temporary_password() -> str:
    """A random password that meets the rules (for a new member's first sign-in)."""
    while True:
        candidate = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(14))
        if password_problem(candidate) is None:
            return candidate
