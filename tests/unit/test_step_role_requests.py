"""What IAM authorizes for a step's call, as the emulator's step-role judge computes it."""

from __future__ import annotations

from atc_xaccount_cli.local.step_roles import Place, Request, access_denied, requests_for

HERE = Place("aws", "us-east-1", "123456789012")
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/"


def test_a_transaction_is_authorized_per_item_with_its_enclosing_operation():
    params = {
        "TransactItems": [
            {"Update": {"TableName": "LocksTable"}},
            {"Update": {"TableName": "ClusterRegistryTable"}},
            {"ConditionCheck": {"TableName": "LocksTable"}},
        ]
    }
    enclosing = {"dynamodb:EnclosingOperation": "TransactWriteItems"}
    assert requests_for("dynamodb", "TransactWriteItems", params, HERE) == [
        Request("dynamodb:UpdateItem", f"{TABLE}LocksTable", enclosing),
        Request("dynamodb:UpdateItem", f"{TABLE}ClusterRegistryTable", enclosing),
        Request("dynamodb:ConditionCheckItem", f"{TABLE}LocksTable", enclosing),
    ]


def test_a_query_on_an_index_is_authorized_on_the_index():
    params = {"TableName": "ClusterRegistryTable", "IndexName": "byClusterManagerAccount"}
    assert requests_for("dynamodb", "Query", params, HERE) == [
        Request("dynamodb:Query", f"{TABLE}ClusterRegistryTable/index/byClusterManagerAccount")
    ]


def test_create_secret_with_tags_is_also_tag_resource_with_the_tag_keys():
    params = {"Name": "atc-xaccount/c1", "Tags": [{"Key": "atc-xaccount:cluster-id", "Value": "c1"}]}
    found = requests_for("secretsmanager", "CreateSecret", params, HERE)
    assert [r.action for r in found] == ["secretsmanager:CreateSecret", "secretsmanager:TagResource"]
    assert all(
        r.resource.startswith("arn:aws:secretsmanager:us-east-1:123456789012:secret:atc-xaccount/c1-") for r in found
    )
    assert all(r.context == {"aws:TagKeys": ["atc-xaccount:cluster-id"]} for r in found)


def test_s3_object_and_bucket_actions():
    assert requests_for("s3", "PutObject", {"Bucket": "b", "Key": "reports/x.json"}, HERE) == [
        Request("s3:PutObject", "arn:aws:s3:::b/reports/x.json")
    ]
    assert requests_for("s3", "HeadObject", {"Bucket": "b", "Key": "k"}, HERE) == [
        Request("s3:GetObject", "arn:aws:s3:::b/k")
    ]
    assert requests_for("s3", "ListObjectsV2", {"Bucket": "b"}, HERE) == [Request("s3:ListBucket", "arn:aws:s3:::b")]


def test_assume_role_and_put_events_and_resourceless_actions():
    arn = "arn:aws:iam::111111111111:role/atc-xaccount-automation"
    # The role's account, and its organization when known (AutomationRoleAssumePolicy's conditions).
    assert requests_for("sts", "AssumeRole", {"RoleArn": arn}, HERE) == [
        Request("sts:AssumeRole", arn, {"aws:ResourceAccount": "111111111111"})
    ]
    orgs = {"111111111111": "o-abcdefghij"}
    assert requests_for("sts", "AssumeRole", {"RoleArn": arn}, HERE, orgs)[0].context == {
        "aws:ResourceAccount": "111111111111",
        "aws:ResourceOrgID": "o-abcdefghij",
    }
    entries = {"Entries": [{"EventBusName": "b"}, {}]}
    assert [r.resource for r in requests_for("events", "PutEvents", entries, HERE)] == [
        "arn:aws:events:us-east-1:123456789012:event-bus/b",
        "arn:aws:events:us-east-1:123456789012:event-bus/default",
    ]
    assert requests_for("access-analyzer", "ValidatePolicy", {}, HERE) == [
        Request("access-analyzer:ValidatePolicy", "*")
    ]


def test_the_denial_has_the_protocol_s_code_and_status():
    request = Request("dynamodb:GetItem", f"{TABLE}T")
    json_error = access_denied("json", "GetItem", "arn:aws:sts::1:assumed-role/R/F", request, "implicitly denied")
    assert json_error.response["Error"]["Code"] == "AccessDeniedException"
    assert json_error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    query_error = access_denied("query", "AssumeRole", "p", Request("sts:AssumeRole", "arn:r"), "implicitly denied")
    assert query_error.response["Error"]["Code"] == "AccessDenied"
    assert query_error.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    explicit = access_denied("json", "GetItem", "p", request, "explicitly denied by X")
    assert "with an explicit deny in an identity-based policy" in explicit.response["Error"]["Message"]
