"""Deploy the stack to the owner's AWS account, add household members, estimate the bill.

Used by `mobile-backup deploy`, `users add` and `cost`; `python -m mobile_backup.deploy
build DIR` is the build step `sam build` runs (infra/lambda/Makefile). Nothing here runs in
Lambda. AWS clients are passed in; every botocore error becomes a `DeployError` (or a
`NoCredentialsError`) with one readable line.
"""

from __future__ import annotations

from mobile_backup.deploy._artifact import (
    RUNTIME_PROVIDED,
    Artifact,
    LambdaTarget,
    build_artifact,
    find_compiler,
    lambda_packages,
    lambda_requirements,
    lambda_target,
    pip_command,
)
from mobile_backup.deploy._bucket import ArtifactStore, artifacts_bucket_name
from mobile_backup.deploy._cost import (
    SEED_ESTIMATE,
    CostLine,
    Estimate,
    Usage,
    estimate,
    usage_from_records,
)
from mobile_backup.deploy._errors import translate
from mobile_backup.deploy._prices import (
    PRICE_SOURCE,
    PRICES,
    PRICES_AS_OF,
    Prices,
    prices_age_warning,
)
from mobile_backup.deploy._profile import (
    write_deploy_profile,
)
from mobile_backup.deploy._quota import reserved_concurrency
from mobile_backup.deploy._stack import (
    CAPABILITIES,
    DeployResult,
    RetainedResource,
    StackDeployer,
    StackEvent,
    check_stack_name,
    retained_logical_ids,
    with_code_location,
)
from mobile_backup.deploy._users import (
    Member,
    add_member,
    list_members,
    reinvite_member,
    remove_member,
)
from mobile_backup.deploy.exceptions import (
    BuildError,
    DeployError,
    InvalidStackNameError,
    NoCredentialsError,
)

__all__ = [
    "CAPABILITIES",
    "PRICES",
    "PRICES_AS_OF",
    "PRICE_SOURCE",
    "RUNTIME_PROVIDED",
    "SEED_ESTIMATE",
    "Artifact",
    "ArtifactStore",
    "BuildError",
    "CostLine",
    "DeployError",
    "DeployResult",
    "Estimate",
    "InvalidStackNameError",
    "LambdaTarget",
    "Member",
    "NoCredentialsError",
    "Prices",
    "RetainedResource",
    "StackDeployer",
    "StackEvent",
    "Usage",
    "add_member",
    "artifacts_bucket_name",
    "build_artifact",
    "check_stack_name",
    "estimate",
    "find_compiler",
    "lambda_packages",
    "lambda_requirements",
    "lambda_target",
    "list_members",
    "pip_command",
    "prices_age_warning",
    "reinvite_member",
    "remove_member",
    "reserved_concurrency",
    "retained_logical_ids",
    "translate",
    "usage_from_records",
    "with_code_location",
    "write_deploy_profile",
]
