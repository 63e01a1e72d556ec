"""How much Lambda concurrency the stack may reserve in this account.

Reserved concurrency is also a cap, which makes it a cost guard: a flood of requests cannot
run more than that many copies of a function. But Lambda keeps at least 100 executions
unreserved in an account (10 in a new account whose whole quota is 10), so reserving in a
small account makes the deploy fail. `deploy` therefore asks the account first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mobile_backup.deploy._errors import translate

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

PER_FUNCTION = 20
"""Reserved for (and the cap on) each function: far above a household's peak."""
FUNCTIONS = 2
MIN_UNRESERVED = 100
"""What Lambda leaves unreserved in an account (a standard quota of 1,000)."""


@dataclass(frozen=True, slots=True)
class Concurrency:
    """What to reserve per function, and why in words."""

    per_function: int
    reason: str


def reserved_concurrency(lambda_client: LambdaClient) -> Concurrency:
    """`PER_FUNCTION` if the account's quota leaves room for it, else 0 (and why)."""
    with translate("read the account's Lambda concurrency quota"):
        limit = lambda_client.get_account_settings()["AccountLimit"]["ConcurrentExecutions"]
    unreserved_after = limit - FUNCTIONS * PER_FUNCTION
    if unreserved_after >= MIN_UNRESERVED:
        return Concurrency(
            PER_FUNCTION,
            f"each function reserves (and is capped at) {PER_FUNCTION} concurrent executions",
        )
    return Concurrency(
        0,
        f"the account's Lambda quota is {limit} concurrent executions, too few to reserve "
        f"any (Lambda keeps {MIN_UNRESERVED} unreserved); ask AWS for more to cap the "
        "functions' cost",
    )
