"""Invariant 7: every AWS call each component made in this test run is allowed to the role
it runs under in `infra/template.yaml` (after the SAM transform), and every grant of those
roles was used by some call (least privilege both ways).

The calls are recorded by every client the code builds (`mobile_backup.instrument._calls`, set up
in `conftest.py` for the whole run, child processes included); this module runs last. Only
the whole suite makes the "unused grant" half meaningful, so a partial run checks the calls
it recorded and skips that half, saying so.
"""

from __future__ import annotations

import fnmatch
import os
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from _iam import (
    CHECKED,
    STACK,
    Call,
    Policy,
    Request,
    Statement,
    name_patterns,
    physical_names,
    read_calls,
    role_policies,
    transform,
)
from conftest import FULL_RUN, RECORD_ENV
from mobile_backup.infra import load_template

pytestmark = pytest.mark.last

# Grants our code never calls because AWS calls them for us: Lambda's event source mapping
# polls the events queue with the ingest function's role (the local stack's poller stands in
# for it and makes only some of those calls). Marked in the template by the statement's Sid.
AWS_SIDE_SID_PREFIX = "LambdaService"


@dataclass
class Verdict:
    denied: list[str] = field(default_factory=list)
    used: set[tuple[str, str, str]] = field(default_factory=set)
    unmapped: set[str] = field(default_factory=set)
    checked: int = 0


def requests_of(calls: list[Call], names: dict[str, str]) -> list[tuple[Call, list[Request]]]:
    """Each call with what IAM checks for it (computed once: the tests judge them often)."""
    return [(call, call.requests(names)) for call in calls]


def judge(
    policies: dict[str, Policy],
    requests: list[tuple[Call, list[Request]]],
    *,
    track_used: bool = True,
) -> Verdict:
    verdict = Verdict()
    denied: dict[str, set[str]] = defaultdict(set)
    # Names the code makes from the stack's own (a PC's queue), as the template grants them.
    made = {
        resource
        for policy in policies.values()
        for _, _, resource in policy.grants()
        if f"<{STACK}>" in resource
    }
    for call, reqs in requests:
        policy = policies[call.component]
        for req in reqs:
            made_here = f"<{STACK}>" in req.resource
            if ("<" not in req.resource and req.resource != "*") or (
                made_here and not any(fnmatch.fnmatchcase(req.resource, p) for p in made)
            ):
                # A resource a test made itself (SeaweedFS, a scratch queue): not the template's.
                verdict.unmapped.add(f"{call.component} {call.operation} {req.resource}")
                continue
            verdict.checked += 1
            if not policy.decide(req):
                context = f" with {dict(req.context)}" if req.context else ""
                denied[call.component].add(
                    f"{call.operation} → {req.action} on {req.resource}{context}"
                )
            for statement, action, resource in policy.grants() if track_used else ():
                one = Statement("Allow", (action,), (), (resource,), (), {})
                if statement.covers(req) and one.covers(req):
                    verdict.used.add((call.component, action, resource))
    verdict.denied = [f"{component} may not {what}" for component, whats in sorted(denied.items())
                      for what in sorted(whats)]  # fmt: skip
    return verdict


@pytest.fixture(scope="module")
def policies() -> dict[str, Policy]:
    return role_policies(transform(load_template(), AlarmEmail="owner@example.com"))


@pytest.fixture(scope="module")
def recorded() -> list[tuple[Call, list[Request]]]:
    calls = [c for c in read_calls(Path(os.environ[RECORD_ENV])) if c.component in CHECKED]
    return requests_of(calls, physical_names(calls, name_patterns(load_template())))


def test_every_recorded_call_is_allowed_and_every_grant_is_used(
    policies: dict[str, Policy],
    recorded: list[tuple[Call, list[Request]]],
    request: pytest.FixtureRequest,
) -> None:
    calls = [call for call, _ in recorded]
    full = request.config.stash.get(FULL_RUN, False)
    if not calls and not full:
        pytest.skip("partial run: no component made an AWS call to check")
    assert set(policies) == set(CHECKED), "each component runs under one policy"
    verdict = judge(policies, recorded)
    problems = list(verdict.denied)
    if full:
        for component in CHECKED:
            assert any(c.component == component for c in calls), f"no {component} call recorded"
            for statement, action, resource in policies[component].grants():
                if statement.sid.startswith(AWS_SIDE_SID_PREFIX):
                    continue
                if (component, action, resource) not in verdict.used:
                    problems.append(
                        f"{component}: {action} on {resource} ({statement.sid}) is granted but "
                        "no test ever uses it"
                    )
    assert not problems, "\n".join(problems)
    # Most calls were checked, not waved through as "unmapped".
    assert len(verdict.unmapped) < max(10, verdict.checked // 10), sorted(verdict.unmapped)[:20]


def test_removing_any_grant_the_code_uses_is_caught(
    policies: dict[str, Policy], recorded: list[tuple[Call, list[Request]]]
) -> None:
    """The check has teeth: drop any one used action from its statement and some recorded
    call is denied (the template's own statements, one at a time)."""
    used = judge(policies, recorded).used
    if not used:
        pytest.skip("partial run: no component made an AWS call to check")
    for component, action, _resource in sorted(used):
        policy = policies[component]
        weakened = Policy(
            policy.name,
            [replace(s, actions=tuple(a for a in s.actions if a != action))
             for s in policy.statements],
        )  # fmt: skip
        # Only requests for that action can be denied by removing it: judge those alone.
        affected = [
            (call, hit)
            for call, reqs in recorded
            if call.component == component
            and (hit := [r for r in reqs if fnmatch.fnmatchcase(r.action.lower(), action.lower())])
        ]
        verdict = judge({**policies, component: weakened}, affected, track_used=False)
        assert verdict.denied, f"removing {action} from {component} went unnoticed"
