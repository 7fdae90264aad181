"""What the access chain is judged on, and what it answers: documents in, links out (pure).

`chain_reads` fills the documents from both accounts; `iam_links` and `s3_links` judge
them into `Link`s; `ChainReport` is the verdict the doctor prints and Verify records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from atc_xaccount.arns import split_arn
from atc_xaccount.evaluate import UNDECIDABLE

OK, BROKEN = "ok", "broken"

#: What the ATC documentation says atc-s3-policy must grant (bucket ARN, object ARN).
BUCKET_ACTIONS = ("s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads")
OBJECT_ACTIONS = (
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
)
#: S3 asks KMS for a data key to write and to decrypt one to read (and to finish multipart uploads).
KMS_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")

#: Cluster Manager's session length is not documented; AssumeRole's default is one hour,
#: which every role allows (MaxSessionDuration is 3,600 to 43,200 seconds).
DEFAULT_SESSION_SECONDS = 3600
#: atc-node's own credentials are an EC2 role session: its AssumeRole is role chaining,
#: which AWS caps at one hour whatever the assumed role's MaxSessionDuration says.
ROLE_CHAINING_MAX_SECONDS = 3600


@dataclass(frozen=True)
class RoleDocs:
    """A role as IAM holds it: trust, identity policies (name, document), boundary."""

    arn: str
    unique_id: str | None = None
    trust: dict[str, Any] | None = None
    #: Attached managed policies' default versions, then inline policies, as (name, document).
    policies: tuple[tuple[str, dict[str, Any]], ...] = ()
    #: The permissions boundary as (policy ARN, default document), or None.
    boundary: tuple[str, dict[str, Any]] | None = None
    max_session_duration: int | None = None
    #: Documents that could not be read (name -> why): an unread policy might deny.
    unreadable: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    @property
    def account(self) -> str:
        return split_arn(self.arn)[3]


@dataclass(frozen=True)
class KeyDocs:
    """A KMS key as DescribeKey and GetKeyPolicy show it."""

    arn: str
    manager: str  # "AWS" (aws/s3) or "CUSTOMER"
    policy: dict[str, Any] | None = None


@dataclass(frozen=True)
class BucketDocs:
    """A bucket's policy and default encryption; `unreadable` says what could not be read."""

    name: str
    policy: dict[str, Any] | None = None
    #: The first rule's ApplyServerSideEncryptionByDefault (SSEAlgorithm, KMSMasterKeyID).
    encryption: dict[str, Any] | None = None
    key: KeyDocs | None = None
    unreadable: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ChainDocuments:
    """Everything the chain is judged on; a role that does not exist is None."""

    node_role_arn: str
    access_role_arn: str
    node: RoleDocs | None
    access: RoleDocs | None
    buckets: tuple[BucketDocs, ...] = ()
    #: Account -> its AWS Organizations ID (None: in no organization); an absent account is unknown.
    organizations: Mapping[str, str | None] = field(default_factory=dict)
    access_policy_name: str = "atc-s3-policy"
    assume_policy_name: str = "atc-s3-assume-role"


@dataclass(frozen=True)
class Link:
    """One link of the chain: its verdict, the statements that decided it, and the fix."""

    name: str
    claim: str
    verdict: str
    statements: tuple[str, ...] = ()
    detail: str = ""
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "link": self.name,
            "claim": self.claim,
            "verdict": self.verdict,
            "statements": list(self.statements),
            "detail": self.detail,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class ChainReport:
    links: tuple[Link, ...]

    @property
    def first_broken(self) -> Link | None:
        return next((link for link in self.links if link.verdict == BROKEN), None)

    @property
    def verdict(self) -> str:
        verdicts = {link.verdict for link in self.links}
        return BROKEN if BROKEN in verdicts else UNDECIDABLE if UNDECIDABLE in verdicts else OK

    @property
    def exit_code(self) -> int:
        """0 every link ok, 1 something broken, 3 only undecidable links left."""
        return {OK: 0, BROKEN: 1, UNDECIDABLE: 3}[self.verdict]

    def link(self, name: str) -> Link:
        return next(link for link in self.links if link.name == name)

    def to_dict(self) -> dict[str, Any]:
        first = self.first_broken
        return {
            "verdict": self.verdict,
            "firstBroken": first.to_dict() if first else None,
            "links": [link.to_dict() for link in self.links],
        }
