"""The small IAM evaluator behind the IAM test, tested on its own (tests/_iam.py)."""

from __future__ import annotations

import json

import pytest

from _iam import (
    Call,
    Policy,
    Request,
    Resolver,
    UnsupportedPolicyError,
    action_exists,
    name_patterns,
    physical_names,
    statement_from,
    symbolic,
)

BUCKET = "arn:aws:s3:::<MediaBucket>"


def policy(*statements: dict[str, object]) -> Policy:
    return Policy("p", [statement_from(s, lambda r: r) for s in statements])


def allow(action: object, resource: object, **extra: object) -> dict[str, object]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def test_actions_and_resources_match_with_wildcards_actions_ignoring_case() -> None:
    p = policy(allow(["s3:Get*"], f"{BUCKET}/media/*"))
    assert p.decide(Request("s3:GetObject", f"{BUCKET}/media/u/h"))
    assert p.decide(Request("S3:getobject", f"{BUCKET}/media/u/h"))
    assert not p.decide(Request("s3:PutObject", f"{BUCKET}/media/u/h"))
    assert not p.decide(Request("s3:GetObject", f"{BUCKET}/other/h"))
    assert not p.decide(Request("s3:GetObject", f"{BUCKET.upper()}/media/u/h"))


def test_an_explicit_deny_wins() -> None:
    p = policy(allow("s3:*", "*"), {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"})
    assert p.decide(Request("s3:GetObject", f"{BUCKET}/x"))
    assert not p.decide(Request("s3:DeleteObject", f"{BUCKET}/x"))


def test_a_condition_on_a_key_the_request_lacks_never_matches() -> None:
    p = policy(allow("s3:ListBucket", BUCKET, Condition={"StringLike": {"s3:prefix": "media/*"}}))
    assert p.decide(Request("s3:ListBucket", BUCKET, (("s3:prefix", "media/u/h"),)))
    assert not p.decide(Request("s3:ListBucket", BUCKET, (("s3:prefix", "other/"),)))
    assert not p.decide(Request("s3:ListBucket", BUCKET))  # no prefix: denied, as on AWS
    if_exists = policy(
        allow("s3:ListBucket", BUCKET, Condition={"StringLikeIfExists": {"s3:prefix": "media/*"}})
    )
    assert if_exists.decide(Request("s3:ListBucket", BUCKET))


def test_unknown_operators_and_keys_are_refused_not_guessed() -> None:
    p = policy(allow("s3:ListBucket", BUCKET, Condition={"NumericLessThan": {"s3:max-keys": "5"}}))
    with pytest.raises(UnsupportedPolicyError):
        p.decide(Request("s3:ListBucket", BUCKET, (("s3:max-keys", "1"),)))
    with pytest.raises(UnsupportedPolicyError):
        statement_from({"Effect": "Allow", "Action": "s3:*", "Principal": "*"}, str)


def call(service: str, operation: str, **params: object) -> Call:
    line = {"component": "api", "service": service, "operation": operation, "params": params}
    return Call.from_line(json.dumps(line))


def test_calls_become_the_actions_resources_and_keys_aws_checks() -> None:
    names = {"s-mediabucket": "MediaBucket", "s-ledger": "LedgerTable", "s-downloads": "Q"}
    (head,) = call("s3", "HeadObject", Bucket="s-mediabucket", Key="media/u/h").requests(names)
    assert head == Request("s3:GetObject", f"{BUCKET}/media/u/h")
    (listed,) = call("s3", "ListObjectsV2", Bucket="s-mediabucket", Prefix="media/u").requests(
        names
    )
    assert listed == Request("s3:ListBucket", BUCKET, (("s3:prefix", "media/u"),))
    # ListBucketMultipartUploads carries no s3:prefix key, whatever the request says.
    uploads_call = call("s3", "ListMultipartUploads", Bucket="s-mediabucket", Prefix="media/u")
    (uploads,) = uploads_call.requests(names)
    assert uploads == Request("s3:ListBucketMultipartUploads", BUCKET)
    (batch,) = call("dynamodb", "BatchGetItem", TableNames=["s-ledger"]).requests(names)
    assert batch.action == "dynamodb:BatchGetItem"
    assert batch.resource.endswith(":table/<LedgerTable>")
    (delete,) = call("sqs", "DeleteMessageBatch", QueueUrl="http://h/123/s-downloads").requests(
        names
    )
    assert delete.action == "sqs:DeleteMessage"
    assert delete.resource.endswith(":<Q>")
    assert all(action_exists(r.action) for r in (head, listed, uploads, batch, delete))
    assert not action_exists("s3:GetObjekt")


def test_template_names_are_read_back_from_physical_names() -> None:
    template = {
        "Resources": {
            "DownloadsQueue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"QueueName": {"Fn::Sub": "${AWS::StackName}-downloads"}},
            },
            "DownloadsDLQ": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"QueueName": {"Fn::Sub": "${AWS::StackName}-downloads-dlq"}},
            },
            "MediaBucket": {"Type": "AWS::S3::Bucket", "Properties": {}},
        }
    }
    calls = [
        call("sqs", "ReceiveMessage", QueueUrl="http://h/1/t1-downloads"),
        call("sqs", "ReceiveMessage", QueueUrl="http://h/1/t1-downloads-dlq"),
        call("s3", "GetObject", Bucket="t1-mediabucket", Key="media/x"),
    ]
    names = physical_names(calls, name_patterns(template))
    assert names == {
        "t1-downloads": "DownloadsQueue",
        "t1-downloads-dlq": "DownloadsDLQ",
        "t1-mediabucket": "MediaBucket",
        "t1": "AWS::StackName",  # read from the names made with ${AWS::StackName}
    }
    assert symbolic("arn:aws:s3:::t1-mediabucket/media/x", names) == f"{BUCKET}/media/x"
    # A name the code makes from the stack's (a PC's own queue) keeps its stack symbolic,
    # so it is checked against the template's `${AWS::StackName}-downloads-pc-*` grants.
    pc_queue = "arn:aws:sqs:us-east-1:123456789012:t1-downloads-pc-laptop"
    assert symbolic(pc_queue, names).endswith(":<AWS::StackName>-downloads-pc-laptop")
    assert symbolic("arn:aws:sqs:us-east-1:123456789012:t1-downloads", names).endswith(
        ":<DownloadsQueue>"
    )


def test_template_expressions_resolve_to_symbolic_arns() -> None:
    resolve = Resolver(
        {
            "Resources": {
                "MediaBucket": {"Type": "AWS::S3::Bucket"},
                "LedgerTable": {"Type": "AWS::DynamoDB::Table"},
            }
        }
    )
    assert resolve({"Fn::GetAtt": ["MediaBucket", "Arn"]}) == BUCKET
    assert resolve({"Fn::Sub": "${MediaBucket.Arn}/media/*"}) == f"{BUCKET}/media/*"
    assert resolve({"Fn::Sub": "${LedgerTable.Arn}/index/i"}).endswith(
        "table/<LedgerTable>/index/i"
    )
    with pytest.raises(UnsupportedPolicyError):
        resolve({"Fn::ImportValue": "x"})
