"""The whole access chain, one case per cause an access key shows ERROR for, with exact verdicts."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest

from atc_xaccount.chain import (
    BROKEN,
    OK,
    UNDECIDABLE,
    BucketDocs,
    ChainDocuments,
    KeyDocs,
    RoleDocs,
    evaluate_chain,
    normalize_prefix,
)
from atc_xaccount.trust import grant_statement

CM, S3 = "111111111111", "222222222222"
NODE = f"arn:aws:iam::{CM}:role/atc-node"
ACCESS = f"arn:aws:iam::{S3}:role/atc-s3-access-keys"
NODE_ID, OLD_NODE_ID = "AROAQNODECURRENT0001", "AROAQNODEDELETED0001"
BUCKET = "atc-demo-transfers"
EXTERNAL_ID = "Zr8vQ2mK4pL7xN1cB5tY9wE3"
KEY = f"arn:aws:kms:us-east-1:{S3}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ORG, OTHER_ORG = "o-a1b2c3d4e5", "o-zzzzzzzzzz"


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


ASSUME_POLICY = doc({"Sid": "AtcS3AssumeRole", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": [ACCESS]})
ACCESS_POLICY = doc(
    {
        "Sid": "Bucket",
        "Effect": "Allow",
        "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
        "Resource": f"arn:aws:s3:::{BUCKET}",
    },
    {
        "Sid": "Objects",
        "Effect": "Allow",
        "Action": [
            "s3:GetObject",
            "s3:PutObject",
            "s3:DeleteObject",
            "s3:AbortMultipartUpload",
            "s3:ListMultipartUploadParts",
        ],
        "Resource": f"arn:aws:s3:::{BUCKET}/*",
    },
)
EC2 = {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
KMS_GRANT = {
    "Sid": "UseBucketKey",
    "Effect": "Allow",
    "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
    "Resource": KEY,
}
DEFAULT_KEY_POLICY = doc(
    {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{S3}:root"},
     "Action": "kms:*", "Resource": "*"}
)  # fmt: skip
SSE_KMS = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY}


def healthy() -> ChainDocuments:
    node = RoleDocs(NODE, NODE_ID, doc(EC2), (("atc-s3-assume-role", ASSUME_POLICY),), max_session_duration=3600)
    access = RoleDocs(
        ACCESS,
        "AROAQACCESS000000001",
        doc(EC2, grant_statement(NODE, [EXTERNAL_ID])),
        (("atc-s3-policy", ACCESS_POLICY),),
        max_session_duration=3600,
    )
    return ChainDocuments(
        NODE, ACCESS, node, access, (BucketDocs(BUCKET, encryption={"SSEAlgorithm": "AES256"}),), {CM: ORG, S3: ORG}
    )


def with_bucket(docs: ChainDocuments, **changes: Any) -> ChainDocuments:
    return replace(docs, buckets=(replace(docs.buckets[0], **changes),))


def with_access(docs: ChainDocuments, **changes: Any) -> ChainDocuments:
    assert docs.access is not None
    return replace(docs, access=replace(docs.access, **changes))


def with_node(docs: ChainDocuments, **changes: Any) -> ChainDocuments:
    assert docs.node is not None
    return replace(docs, node=replace(docs.node, **changes))


def deny_outside_org() -> ChainDocuments:
    policy = doc(
        {
            "Sid": "DenyOutsideOrg",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
            "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": OTHER_ORG}},
        }
    )
    return with_bucket(healthy(), policy=policy)


def deny_outside_vpce() -> ChainDocuments:
    policy = doc(
        {
            "Sid": "OnlyThroughVpce",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
            "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}},
        }
    )
    return with_bucket(healthy(), policy=policy)


def deny_insecure() -> ChainDocuments:
    policy = doc(
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )
    return with_bucket(healthy(), policy=policy)


def kms_without_grant() -> ChainDocuments:
    return with_bucket(healthy(), encryption=SSE_KMS, key=KeyDocs(KEY, "CUSTOMER", DEFAULT_KEY_POLICY))


def kms_with_grant(key_policy: dict[str, Any]) -> ChainDocuments:
    docs = with_bucket(healthy(), encryption=SSE_KMS, key=KeyDocs(KEY, "CUSTOMER", key_policy))
    granted = copy.deepcopy(ACCESS_POLICY)
    granted["Statement"].append(KMS_GRANT)
    return with_access(docs, policies=(("atc-s3-policy", granted),))


KEY_POLICY_ADMINS_ONLY = doc(
    {
        "Sid": "KeyAdmins",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{S3}:role/key-admin"},
        "Action": "kms:*",
        "Resource": "*",
    }
)
BOUNDARY = (
    f"arn:aws:iam::{CM}:policy/ec2-only-boundary",
    doc({"Sid": "Ec2Only", "Effect": "Allow", "Action": ["ec2:*", "s3:*"], "Resource": "*"}),
)
INLINE_DENY = doc({"Sid": "NoDeletes", "Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"})
FOREIGN_DENY = {
    "Sid": "DenyOtherAccounts",
    "Effect": "Deny",
    "Principal": {"AWS": "*"},
    "Action": "sts:AssumeRole",
    "Condition": {"StringNotEquals": {"aws:PrincipalAccount": S3}},
}
ONLY_HOME = doc(
    {
        "Sid": "Bucket",
        "Effect": "Allow",
        "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
        "Resource": f"arn:aws:s3:::{BUCKET}",
    },
    {
        "Sid": "HomeOnly",
        "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                   "s3:ListMultipartUploadParts"],
        "Resource": f"arn:aws:s3:::{BUCKET}/home/*",
    },
)  # fmt: skip


SESSION = f"arn:aws:sts::{S3}:assumed-role/atc-s3-access-keys/cluster-manager"


def not_principal_deny(spared: list[str]) -> dict[str, Any]:
    return {"Sid": "OnlyTheAccessRole", "Effect": "Deny", "NotPrincipal": {"AWS": spared}, "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]}  # fmt: skip


def stale_trust() -> ChainDocuments:
    grant = grant_statement(NODE, [EXTERNAL_ID])
    grant["Principal"] = {"AWS": OLD_NODE_ID}
    return with_access(healthy(), trust=doc(EC2, grant))


def foreign_deny() -> ChainDocuments:
    trust = doc(EC2, grant_statement(NODE, [EXTERNAL_ID]), FOREIGN_DENY)
    return with_access(healthy(), trust=trust)


#: (case, documents, options, the link that breaks first, its verdict, decided by, a phrase of the fix)
CASES = [
    (
        "bucket policy Deny on aws:PrincipalOrgID",
        deny_outside_org,
        {},
        f"bucket-policy:{BUCKET}",
        BROKEN,
        ("bucket policy:DenyOutsideOrg",),
        f"is in {ORG}",
    ),
    (
        "bucket policy Deny on aws:SourceVpce",
        deny_outside_vpce,
        {},
        f"bucket-policy:{BUCKET}",
        UNDECIDABLE,
        ("bucket policy:OnlyThroughVpce",),
        "check by hand",
    ),
    (
        "bucket policy Deny without TLS, nodes on HTTP",
        deny_insecure,
        {"secure_transport": False},
        f"bucket-policy:{BUCKET}",
        BROKEN,
        ("bucket policy:DenyInsecureTransport",),
        "DenyInsecureTransport",
    ),
    (
        "bucket policy Deny without TLS, transport unknown",
        deny_insecure,
        {"secure_transport": None},
        f"bucket-policy:{BUCKET}",
        UNDECIDABLE,
        ("bucket policy:DenyInsecureTransport",),
        "check by hand",
    ),
    (
        "SSE-KMS customer key, atc-s3-policy without kms:*",
        kms_without_grant,
        {},
        f"kms:{BUCKET}",
        BROKEN,
        ("key policy:Enable IAM User Permissions",),
        f"add kms:GenerateDataKey, kms:Decrypt on key {KEY} to atc-s3-policy",
    ),
    (
        "SSE-KMS key policy not delegating to IAM",
        lambda: kms_with_grant(KEY_POLICY_ADMINS_ONLY),
        {},
        f"kms:{BUCKET}",
        BROKEN,
        (),
        f"allowing arn:aws:iam::{S3}:root kms:*",
    ),
    (
        "permissions boundary on atc-node",
        lambda: with_node(healthy(), boundary=BOUNDARY),
        {},
        "assume",
        BROKEN,
        (),
        f"let the permissions boundary {BOUNDARY[0]} of atc-node allow sts:AssumeRole on {ACCESS}",
    ),
    (
        "inline Deny on the access role",
        lambda: with_access(healthy(), policies=(("atc-s3-policy", ACCESS_POLICY), ("guardrails", INLINE_DENY))),
        {},
        f"s3:{BUCKET}",
        BROKEN,
        ("guardrails:NoDeletes",),
        "remove or narrow the Deny guardrails:NoDeletes on atc-s3-access-keys",
    ),
    (
        "foreign Deny in the trust policy",
        foreign_deny,
        {},
        "trust",
        BROKEN,
        ("trust:DenyOtherAccounts",),
        "trust policy's Deny trust:DenyOtherAccounts",
    ),
    (
        "stale AROA principal in the grant",
        stale_trust,
        {},
        "trust",
        BROKEN,
        (grant_statement(NODE, [EXTERNAL_ID])["Sid"],),
        f"replaces the stale {OLD_NODE_ID} grant",
    ),
    (
        "access policy grants the bucket but not the path's objects",
        lambda: with_access(healthy(), policies=(("atc-s3-policy", ONLY_HOME),)),
        {"prefix": "/projects"},
        f"s3:{BUCKET}",
        BROKEN,
        (),
        f"add s3:GetObject, s3:PutObject, s3:DeleteObject, s3:AbortMultipartUpload, s3:ListMultipartUploadParts "
        f"on arn:aws:s3:::{BUCKET}/projects/* to atc-s3-policy",
    ),
    (
        "a two-hour session: role chaining caps it at one hour whatever MaxSessionDuration says",
        lambda: with_access(healthy(), max_session_duration=43200),
        {"requested_session_seconds": 7200},
        "session",
        BROKEN,
        (),
        "at most 3600 s",
    ),
    (
        "bucket policy Deny with NotPrincipal naming the role and account, not the session",
        lambda: with_bucket(healthy(), policy=doc(not_principal_deny([ACCESS, f"arn:aws:iam::{S3}:root"]))),
        {},
        f"bucket-policy:{BUCKET}",
        BROKEN,
        ("bucket policy:OnlyTheAccessRole",),
        f"ArnNotEquals aws:PrincipalArn {ACCESS}",
    ),
    (
        "bucket policy Deny with NotPrincipal naming one session: the session's name decides",
        lambda: with_bucket(healthy(), policy=doc(not_principal_deny([ACCESS, S3, SESSION]))),
        {},
        f"bucket-policy:{BUCKET}",
        UNDECIDABLE,
        ("bucket policy:OnlyTheAccessRole",),
        "check by hand",
    ),
    (
        "bucket policy Deny with NotPrincipal, access role with a permissions boundary",
        lambda: with_access(
            with_bucket(healthy(), policy=doc(not_principal_deny([ACCESS, S3, SESSION]))),
            boundary=(f"arn:aws:iam::{S3}:policy/s3-only", doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})),
        ),
        {},
        f"bucket-policy:{BUCKET}",
        BROKEN,
        ("bucket policy:OnlyTheAccessRole",),
        "denies every principal that has a permissions boundary",
    ),
]


@pytest.mark.parametrize(
    ("case", "make", "options", "link", "verdict", "decided_by", "fix"), CASES, ids=[c[0] for c in CASES]
)
def test_each_cause_is_named_with_its_fix(case, make, options, link, verdict, decided_by, fix):
    report = evaluate_chain(make(), EXTERNAL_ID, region="us-east-1", **options)

    wrong = [(x.name, x.verdict) for x in report.links if x.name != link and x.verdict != OK]
    assert wrong == [], f"{case}: only {link} should fail"
    named = report.link(link)
    assert named.verdict == verdict, named
    assert named.statements == decided_by, named
    assert fix in named.fix, named.fix
    if verdict == BROKEN:
        assert report.first_broken == named and report.exit_code == 1
    else:
        assert report.first_broken is None and report.exit_code == 3


def test_the_healthy_chain_is_ok_link_by_link():
    report = evaluate_chain(healthy(), EXTERNAL_ID, region="us-east-1", prefix="/")

    assert [(x.name, x.verdict) for x in report.links] == [
        ("assume", OK),
        ("trust", OK),
        (f"s3:{BUCKET}", OK),
        (f"bucket-policy:{BUCKET}", OK),
        (f"kms:{BUCKET}", OK),
        ("session", OK),
    ]
    assert report.link("assume").statements == ("atc-s3-assume-role:AtcS3AssumeRole",)
    assert report.link(f"s3:{BUCKET}").statements == ("atc-s3-policy:Bucket", "atc-s3-policy:Objects")
    assert report.exit_code == 0 and report.to_dict()["firstBroken"] is None


def test_the_fixed_kms_chain_is_ok():
    report = evaluate_chain(kms_with_grant(DEFAULT_KEY_POLICY), EXTERNAL_ID, region="us-east-1")
    kms = report.link(f"kms:{BUCKET}")
    assert kms.verdict == OK, kms
    assert kms.statements == ("key policy:Enable IAM User Permissions", "atc-s3-policy:UseBucketKey")


def test_a_key_policy_granting_the_role_itself_needs_no_iam_grant():
    direct = doc(
        {"Sid": "AtcRole", "Effect": "Allow", "Principal": {"AWS": ACCESS}, "Action": ["kms:GenerateDataKey",
         "kms:Decrypt"], "Resource": "*"}
    )  # fmt: skip
    docs = with_bucket(healthy(), encryption=SSE_KMS, key=KeyDocs(KEY, "CUSTOMER", direct))
    assert evaluate_chain(docs, EXTERNAL_ID, region="us-east-1").link(f"kms:{BUCKET}").verdict == OK


def test_the_aws_managed_key_needs_nothing():
    docs = with_bucket(healthy(), encryption={"SSEAlgorithm": "aws:kms"})
    assert evaluate_chain(docs, EXTERNAL_ID, region="us-east-1").exit_code == 0


def test_the_wrong_external_id_breaks_the_trust_link():
    report = evaluate_chain(healthy(), "someone-elses-id", region="us-east-1")
    assert report.first_broken is not None and report.first_broken.name == "trust"


def test_org_deny_is_undecidable_while_the_organization_is_unknown():
    docs = replace(deny_outside_org(), organizations={})
    link = evaluate_chain(docs, EXTERNAL_ID, region="us-east-1").link(f"bucket-policy:{BUCKET}")
    assert link.verdict == UNDECIDABLE and "aws:PrincipalOrgID" in link.detail


def test_the_current_role_id_in_the_grant_is_the_role_itself():
    grant = grant_statement(NODE, [EXTERNAL_ID])
    grant["Principal"] = {"AWS": NODE_ID}
    docs = with_access(healthy(), trust=doc(EC2, grant))
    assert evaluate_chain(docs, EXTERNAL_ID, region="us-east-1").link("trust").verdict == OK


def test_a_missing_access_role_is_broken_with_what_to_create():
    report = evaluate_chain(replace(healthy(), access=None), EXTERNAL_ID, region="us-east-1")
    assert report.first_broken is not None and report.first_broken.name == "trust"
    assert "create atc-s3-access-keys" in report.first_broken.fix


@pytest.mark.parametrize(("path", "prefix"), [(None, ""), ("/", ""), ("/a/b", "a/b/"), ("a/", "a/")])
def test_cluster_manager_paths_become_key_prefixes(path, prefix):
    assert normalize_prefix(path) == prefix


def test_a_bucket_policy_granting_the_role_itself_is_enough_in_its_account_but_not_past_a_boundary():
    grant = doc(
        {"Sid": "AtcObjects", "Effect": "Allow", "Principal": {"AWS": ACCESS}, "Action": "s3:*",
         "Resource": f"arn:aws:s3:::{BUCKET}/*"}
    )  # fmt: skip
    only_bucket = doc(ACCESS_POLICY["Statement"][0])
    docs = with_bucket(with_access(healthy(), policies=(("atc-s3-policy", only_bucket),)), policy=grant)
    assert evaluate_chain(docs, EXTERNAL_ID, region="us-east-1").link(f"s3:{BUCKET}").verdict == OK

    boundary = (f"arn:aws:iam::{S3}:policy/list-only", doc({"Effect": "Allow", "Action": "s3:List*", "Resource": "*"}))
    bounded = evaluate_chain(with_access(docs, boundary=boundary), EXTERNAL_ID, region="us-east-1")
    link = bounded.link(f"s3:{BUCKET}")
    assert link.verdict == BROKEN and link.fix.startswith(f"let the permissions boundary {boundary[0]}")


def test_a_root_grant_in_the_bucket_policy_does_not_replace_the_roles_own_permission():
    root = doc(
        {"Sid": "Account", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{S3}:root"}, "Action": "s3:*",
         "Resource": f"arn:aws:s3:::{BUCKET}/*"}
    )  # fmt: skip
    only_bucket = doc(ACCESS_POLICY["Statement"][0])
    docs = with_bucket(with_access(healthy(), policies=(("atc-s3-policy", only_bucket),)), policy=root)
    assert evaluate_chain(docs, EXTERNAL_ID, region="us-east-1").link(f"s3:{BUCKET}").verdict == BROKEN
