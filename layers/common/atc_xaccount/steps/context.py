"""What every step needs besides its input, and the ARNs a request is about."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from atc_xaccount.arns import partition_for_region, policy_arn, role_arn
from atc_xaccount.model import ClusterRequest, Defaults
from atc_xaccount.redact import Fingerprints
from atc_xaccount.sessions import AccountSessions


@dataclass(frozen=True)
class StepContext:
    """What every step needs besides its input: sessions and deployment settings."""

    sessions: AccountSessions
    secret_prefix: str
    defaults: Defaults
    registry_table: str = ""
    locks_table: str = ""
    dry_run: bool = False
    #: False where IAM Access Analyzer does not exist (the embedded emulator).
    access_analyzer: bool = True
    #: The secret holding the deployment's fingerprint key (template.yaml FingerprintKey);
    #: empty: a key of this process's own (tests, one-shot tools).
    fingerprint_key_secret: str = ""
    #: The execution this step serves: the owner of the locks it holds.
    execution: str | None = None

    @property
    def partition(self) -> str:
        return self.sessions.partition

    @property
    def fingerprints(self) -> Fingerprints:
        """External-ID fingerprints under the deployment's key (read once per process).

        botocore is imported with the first read, not with this module (cold start).
        """
        from atc_xaccount import external_ids

        return external_ids.fingerprints(self.sessions.local_client("secretsmanager"), self.fingerprint_key_secret)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], execution: str | None) -> StepContext:
        region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        sessions = AccountSessions(
            automation_role_name=environ.get("AUTOMATION_ROLE_NAME", "atc-xaccount-automation"),
            partition=partition_for_region(region),
            region=region,
            execution=execution,
        )
        return cls(
            sessions=sessions,
            secret_prefix=environ.get("EXTERNAL_ID_SECRET_PREFIX", "atc-xaccount"),
            defaults=Defaults.from_env(environ),
            registry_table=environ.get("REGISTRY_TABLE", ""),
            locks_table=environ.get("LOCKS_TABLE", ""),
            access_analyzer=environ.get("ACCESS_ANALYZER", "enabled") != "unavailable",
            fingerprint_key_secret=environ.get("FINGERPRINT_KEY_SECRET", ""),
            execution=execution,
        )


@dataclass(frozen=True)
class Targets:
    """The ARNs one cluster's three changes are about, in the region's partition."""

    node_role_arn: str
    access_role_arn: str
    assume_policy_arn: str

    @classmethod
    def of(cls, request: ClusterRequest, partition: str) -> Targets:
        return cls(
            node_role_arn=role_arn(partition, request.cluster_manager_account_id, request.node_role_name),
            access_role_arn=role_arn(partition, request.s3_account_id, request.access_role_name),
            assume_policy_arn=policy_arn(partition, request.cluster_manager_account_id, request.assume_policy_name),
        )
