"""Access Analyzer ValidatePolicy: blocking only in our statements, honest when absent."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from atc_xaccount import analyzer
from atc_xaccount.errors import PolicyLintFailed
from atc_xaccount.lint import raise_on_errors

DOC = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "Partner", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"},
        {
            "Sid": "AtcXaccountOurs",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::1:role/x"},
            "Action": "sts:AssumeRole",
        },
    ],
}


def finding(kind: str, index: int) -> dict:
    return {
        "findingDetails": "something is wrong",
        "findingType": kind,
        "issueCode": "EXAMPLE_ISSUE",
        "learnMoreLink": "https://example.invalid",
        "locations": [
            {
                "path": [{"value": "Statement"}, {"index": index}, {"value": "Principal"}],
                "span": {"start": {"line": 1, "column": 1, "offset": 1}, "end": {"line": 1, "column": 2, "offset": 2}},
            }
        ],
    }


def stubbed(findings: list[dict]) -> tuple[object, Stubber]:
    client = boto3.client("accessanalyzer", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    stub = Stubber(client)
    stub.add_response("validate_policy", {"findings": findings})
    stub.activate()
    return client, stub


@pytest.mark.parametrize(
    ("kind", "index", "blocks"),
    [
        ("SECURITY_WARNING", 1, True),
        ("ERROR", 1, True),
        ("WARNING", 1, False),
        ("SUGGESTION", 1, False),
        ("SECURITY_WARNING", 0, False),  # a foreign statement is reported, never fatal
    ],
)
def test_only_blocking_findings_in_our_statements_stop_the_write(kind, index, blocks):
    client, _ = stubbed([finding(kind, index)])
    status, findings = analyzer.validate(client, DOC, analyzer.TRUST, {"AtcXaccountOurs"})

    assert status == "findings"
    assert findings[0].sid == DOC["Statement"][index]["Sid"]
    if blocks:
        with pytest.raises(PolicyLintFailed, match="ACCESS_ANALYZER_EXAMPLE_ISSUE"):
            raise_on_errors(findings, "trust policy of r", "222222222222")
    else:
        raise_on_errors(findings, "trust policy of r", "222222222222")


def test_trust_policies_are_validated_as_assume_role_documents():
    client, stub = stubbed([])
    stub.deactivate()
    stub = Stubber(client)
    stub.add_response(
        "validate_policy",
        {"findings": []},
        {
            "policyDocument": __import__("json").dumps(DOC),
            "policyType": "RESOURCE_POLICY",
            "validatePolicyResourceType": "AWS::IAM::AssumeRolePolicyDocument",
        },
    )
    stub.activate()

    assert analyzer.validate(client, DOC, analyzer.TRUST, set()) == ("passed", [])
    stub.assert_no_pending_responses()


def test_where_the_service_is_absent_the_result_says_so():
    with mock_aws():
        client = boto3.client("accessanalyzer", region_name="us-east-1")
        status, findings = analyzer.validate(client, DOC, analyzer.IDENTITY, set())

    assert status.startswith("unavailable")
    assert findings == []


def test_access_denied_is_not_mistaken_for_absence():
    client = boto3.client("accessanalyzer", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    stub = Stubber(client)
    stub.add_client_error("validate_policy", service_error_code="AccessDeniedException", http_status_code=403)
    stub.activate()

    with pytest.raises(Exception, match="AccessDenied"):
        analyzer.validate(client, DOC, analyzer.IDENTITY, set())
