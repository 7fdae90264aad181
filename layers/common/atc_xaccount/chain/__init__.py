"""The whole access chain of an ATC access key, evaluated link by link (pure).

From the node role to the bytes in the bucket, every link an access key in Cluster
Manager (Credentials -> Assume Role) needs, judged with `evaluate`'s three-valued
judgements over the documents of both accounts:

  a. atc-node may call sts:AssumeRole on the access role (its policies and boundary);
  b. the access role's trust policy admits atc-node with the external ID (and names the
     current atc-node, not the unique ID of a deleted one);
  c. the access role may do each action atc-s3-policy is documented to need, per bucket;
  d. the bucket policy denies none of them;
  e. with SSE-KMS under a customer managed key, the role may use the key (IAM and key policy);
  f. the access role's MaxSessionDuration covers the session Cluster Manager asks for.

Each link is `ok`, `broken` or `undecidable` (a condition on request context this project
cannot know: never "ok"), names the statements that decided it and says how to fix it.
No AWS call here: `chain_reads` reads the documents, the doctor and Verify evaluate them.

The package, by concern: `model` (the documents and the report), `context` (what every
link shares), `iam_links` (a, b, f) and `s3_links` (c, d, e).
"""

from __future__ import annotations

from atc_xaccount.chain.iam_links import assume_link, session_link, trust_link
from atc_xaccount.chain.model import (
    BROKEN,
    BUCKET_ACTIONS,
    DEFAULT_SESSION_SECONDS,
    KMS_ACTIONS,
    OBJECT_ACTIONS,
    OK,
    BucketDocs,
    ChainDocuments,
    ChainReport,
    KeyDocs,
    Link,
    RoleDocs,
)
from atc_xaccount.chain.s3_links import bucket_links
from atc_xaccount.evaluate import UNDECIDABLE

__all__ = [
    "BROKEN",
    "BUCKET_ACTIONS",
    "DEFAULT_SESSION_SECONDS",
    "KMS_ACTIONS",
    "OBJECT_ACTIONS",
    "OK",
    "UNDECIDABLE",
    "BucketDocs",
    "ChainDocuments",
    "ChainReport",
    "KeyDocs",
    "Link",
    "RoleDocs",
    "evaluate_chain",
    "normalize_prefix",
]


def normalize_prefix(path: str | None) -> str:
    """Cluster Manager's Path ("/" for the whole bucket) as an S3 key prefix ("" or "dir/")."""
    cleaned = (path or "").strip("/")
    return f"{cleaned}/" if cleaned else ""


def evaluate_chain(
    docs: ChainDocuments,
    external_id: str | None,
    *,
    region: str,
    prefix: str | None = None,
    requested_session_seconds: int = DEFAULT_SESSION_SECONDS,
    secure_transport: bool | None = True,
) -> ChainReport:
    """Judge every link; `secure_transport` says whether the nodes reach S3 over HTTPS (None: unknown)."""
    links: list[Link] = [assume_link(docs, external_id), trust_link(docs, external_id)]
    if docs.access is not None:
        key_prefix = normalize_prefix(prefix)
        for bucket in docs.buckets:
            links.extend(bucket_links(docs, docs.access, bucket, key_prefix, region, secure_transport))
    links.append(session_link(docs, requested_session_seconds))
    return ChainReport(tuple(links))
