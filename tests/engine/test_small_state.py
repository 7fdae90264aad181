"""Small state: bucket and key policies never travel in the execution (issue 16 item 5).

Bucket policies are up to 20 KB and key policies 32 KB; carried in Preflight's result, 5
to 25 of them passed Step Functions' 256 KiB payload quota: `States.DataLimitExceeded`,
which no Catch handles, with the locks held. Preflight now judges the links those
documents decide and hands Verify their verdicts and the documents' hashes; an event
names at most 25 buckets (`MAX_BUCKETS`).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from atc_xaccount.model import MAX_BUCKETS
from atc_xaccount_cli.local.limits import PAYLOAD_BYTES
from tests.engine.conftest import S3, onboard, with_detail

BUCKET_POLICY_BYTES = 20 * 1024  # S3's quota on a bucket policy


def bucket_policy(bucket: str) -> dict[str, Any]:
    """A bucket policy just under 20 KB: partner read grants that leave the access role alone."""
    statements: list[dict[str, Any]] = []
    policy: dict[str, Any] = {"Version": "2012-10-17", "Statement": statements}
    while True:
        n = len(statements)
        statement = {
            "Sid": f"PartnerRead{n:03d}",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::333333333333:root"},
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": f"arn:aws:s3:::{bucket}/partners/partner-{n:03d}/*",
        }
        if len(json.dumps({**policy, "Statement": [*statements, statement]})) > BUCKET_POLICY_BYTES - 64:
            return policy
        statements.append(statement)


def many_buckets(world: dict[str, Any], count: int) -> tuple[dict[str, Any], list[str]]:
    world = copy.deepcopy(world)
    s3 = world["accounts"][S3]
    names = [f"atc-many-{i:02d}" for i in range(count)]
    s3["buckets"] = [*s3.get("buckets", []), *names]
    s3["bucketPolicies"] = {name: bucket_policy(name) for name in names}
    access = s3["policies"]["atc-s3-policy"]["document"]["Statement"]
    for statement in access:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        many = "arn:aws:s3:::atc-many-*/*" if any(r.endswith("/*") for r in resources) else "arn:aws:s3:::atc-many-*"
        statement["Resource"] = [*resources, many]
    return world, names


def test_twenty_five_buckets_with_20_kb_policies_onboard_under_the_payload_limit(sample_world, registered_event):
    world, names = many_buckets(sample_world, MAX_BUCKETS)
    policies = world["accounts"][S3]["bucketPolicies"]
    assert all(len(json.dumps(p)) > BUCKET_POLICY_BYTES - 1024 for p in policies.values())
    assert sum(len(json.dumps(p)) for p in policies.values()) > PAYLOAD_BYTES, "the documents could not travel"

    report = onboard(with_detail(registered_event, buckets=names), world, prove=False)

    assert report.result.status == "SUCCEEDED", report.cause_message
    assert report.largest_payload < PAYLOAD_BYTES // 2, report.largest_payload
    output = json.dumps(report.result.output)
    assert "PartnerRead000" not in output, "no bucket policy in the state"
    preflight = report.result.output["preflight"]
    judged = {c["check"].split(": ", 1)[0] for c in preflight["chainChecks"]}
    assert {f"bucket-policy:{name}" for name in names} <= judged
    assert set(preflight["chainDocuments"]["buckets"]) == set(names)
    assert all(len(h["policy"]) == 32 for h in preflight["chainDocuments"]["buckets"].values())


def test_more_buckets_than_an_event_may_name_are_refused_naming_the_cap(sample_world, registered_event):
    names = [f"atc-many-{i:02d}" for i in range(MAX_BUCKETS + 1)]

    report = onboard(with_detail(registered_event, buckets=names), sample_world, prove=False)

    assert report.result.error == "InvalidEvent", report.cause_message
    assert f"detail.buckets: at most {MAX_BUCKETS} buckets per event (MAX_BUCKETS), got 26" in report.cause_message
    assert report.calls["total"] == 0
