"""The local world (DESIGN 3.3): seed moto from a world file, and read it back.

A world is the IAM and S3 state of every account involved. Seeding goes through the
AWS APIs of each account (credentials from STS, as a real snapshot would be taken), so
what the workflow later reads is what an account with that state would answer.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import boto3

from atc_xaccount_cli.local.iam_quotas import QUOTAS, set_quota
from atc_xaccount_cli.local.world_error import WorldError as WorldError  # re-exported: the world's error

ACCOUNT_RE = re.compile(r"^\d{12}$")
WORLD_KEYS = {"roles", "policies", "buckets", "secrets", "quotas", "registry", "bootstrap"}
#: The names an account's bootstrap stack instance was deployed with: the parameters of
#: bootstrap/automation-role.yaml that name what the automation role may touch.
BOOTSTRAP_KEYS = {"NodeRoleName", "AccessRoleName", "AssumePolicyName", "AccessPolicyName", "OperatorPrincipalArns"}
#: The world's operator: who runs the operator commands (`local doctor`), a role ARN.
OPERATOR_KEYS = {"principalArn"}
OPERATOR_ARN_RE = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})$")
ROLE_KEYS = {"trust", "attached", "path"}
#: IAM's role path: `/`, or `/` + printable ASCII + `/`, at most 512 characters.
ROLE_PATH_RE = re.compile(r"^/(?:[\x21-\x7e]{0,510}/)?$")
#: Optional keys the access chain (`local doctor`, issue 11) reads: per role, and per account.
CHAIN_ROLE_KEYS = {"inline", "boundary", "maxSessionDuration"}
CHAIN_KEYS = {"bucketPolicies", "bucketEncryption", "kmsKeys", "organizationId"}
POLICY_KEYS = {"document", "versions"}
POLICY_ARN_RE = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}|aws):policy/(?:[\w+=,.@/-]*/)?([\w+=,.@-]+)$")


def load_world(path: Path) -> dict[str, Any]:
    try:
        world = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise WorldError(f"{path}: no such file") from exc
    except json.JSONDecodeError as exc:
        raise WorldError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    validate_world(world)
    return world


def validate_world(world: Any) -> None:
    """Refuse a malformed world with the path of the first problem, before seeding."""
    if (
        not isinstance(world, dict)
        or set(world) - {"nodeApis", "operator"} != {"accounts"}
        or not isinstance(world["accounts"], dict)
    ):
        raise WorldError('world: must be an object {"accounts": {...}} (and optionally "nodeApis", "operator")')
    if "nodeApis" in world:
        from atc_xaccount_cli.local.nodeapi import validate_node_apis

        validate_node_apis(world["nodeApis"])
    if "operator" in world:
        _validate_operator(world["operator"])
    for account, state in world["accounts"].items():
        where = f"accounts.{account}"
        if not ACCOUNT_RE.match(str(account)):
            raise WorldError(f"{where}: account id must be 12 digits")
        if not isinstance(state, dict):
            raise WorldError(f"{where}: must be an object")
        _no_unknown(state, WORLD_KEYS | CHAIN_KEYS, where)
        for section in ("roles", "policies", "secrets", "quotas", "registry"):
            if not isinstance(state.get(section, {}), dict):
                raise WorldError(f"{where}.{section}: must be an object keyed by name")
        policies = state.get("policies") or {}
        for name, policy in policies.items():
            _no_unknown(policy, POLICY_KEYS, f"{where}.policies.{name}")
            if not isinstance(policy.get("document"), dict):
                raise WorldError(f"{where}.policies.{name}.document: must be a policy document object")
            versions = policy.get("versions", 1)
            if type(versions) is not int or not 1 <= versions <= 5:
                raise WorldError(f"{where}.policies.{name}.versions: must be a whole number from 1 to 5")
        for name, role in (state.get("roles") or {}).items():
            _validate_role(role, f"{where}.roles.{name}", account, set(policies))
        buckets = state.get("buckets", [])
        if not isinstance(buckets, list) or not all(isinstance(b, str) for b in buckets):
            raise WorldError(f"{where}.buckets: must be a list of bucket names")
        for name, value in (state.get("secrets") or {}).items():
            _validate_secret(value, f"{where}.secrets.{name}")
        for name, value in (state.get("quotas") or {}).items():
            if name not in QUOTAS or type(value) is not int:
                raise WorldError(f"{where}.quotas.{name}: known quotas are {', '.join(QUOTAS)}, each a whole number")
            _, floor, ceiling = QUOTAS[name]
            if not floor <= value <= ceiling:
                raise WorldError(
                    f"{where}.quotas.{name}: {value} is not a quota an account can have "
                    f"(IAM's default is {floor:,}, and it can only be raised)"
                )
        if "bootstrap" in state:
            _validate_bootstrap(state["bootstrap"], f"{where}.bootstrap")
        for cluster, entry in (state.get("registry") or {}).items():
            if not isinstance(entry, dict) or entry.get("clusterId", cluster) != cluster:
                raise WorldError(f"{where}.registry.{cluster}: must be the cluster's registry record")
        _validate_chain_keys(state, where)


def _validate_chain_keys(state: dict[str, Any], where: str) -> None:
    """Bucket policies, default encryption, KMS keys and the organization (all optional)."""
    buckets = set(state.get("buckets") or [])
    keys = state.get("kmsKeys") or {}
    for section in ("bucketPolicies", "bucketEncryption", "kmsKeys"):
        if not isinstance(state.get(section, {}), dict):
            raise WorldError(f"{where}.{section}: must be an object keyed by name")
    for bucket, policy in (state.get("bucketPolicies") or {}).items():
        if bucket not in buckets:
            raise WorldError(f"{where}.bucketPolicies.{bucket}: not a bucket of this account (list it under buckets)")
        if not isinstance(policy, dict):
            raise WorldError(f"{where}.bucketPolicies.{bucket}: must be a policy document object")
    for bucket, rule in (state.get("bucketEncryption") or {}).items():
        if bucket not in buckets:
            raise WorldError(f"{where}.bucketEncryption.{bucket}: not a bucket of this account (list it under buckets)")
        _no_unknown(rule, {"SSEAlgorithm", "KMSMasterKeyID"}, f"{where}.bucketEncryption.{bucket}")
        if rule.get("SSEAlgorithm") not in ("AES256", "aws:kms", "aws:kms:dsse"):
            raise WorldError(f"{where}.bucketEncryption.{bucket}.SSEAlgorithm: AES256, aws:kms or aws:kms:dsse")
        key = rule.get("KMSMasterKeyID")
        if key is not None and (not isinstance(key, str) or not key.startswith("alias/") or key[6:] not in keys):
            raise WorldError(
                f"{where}.bucketEncryption.{bucket}.KMSMasterKeyID: must be alias/NAME of a key under kmsKeys"
            )
    for name, key in keys.items():
        _no_unknown(key, {"policy", "description"}, f"{where}.kmsKeys.{name}")
        if not isinstance(key.get("policy"), dict) or name.startswith("aws/"):
            raise WorldError(f"{where}.kmsKeys.{name}: a customer managed key needs its key policy (aws/* is AWS's)")
    org = state.get("organizationId")
    if org is not None and not (isinstance(org, str) and re.fullmatch(r"o-[a-z0-9]{10,32}", org)):
        raise WorldError(f"{where}.organizationId: must be an AWS Organizations ID (o- and 10-32 letters/digits)")


#: The staging labels a world keeps beside AWSCURRENT: a rotation's pending ID, an event's staged ID.
SECRET_STAGES = ("AWSPENDING", "ATCXACCOUNT_REQUESTED")


def _validate_secret(value: Any, where: str) -> None:
    """The secret's string value, or {"AWSCURRENT": value, <label>: value, ...} with labelled versions."""
    if isinstance(value, str):
        return
    if not isinstance(value, dict) or not isinstance(value.get("AWSCURRENT"), str):
        raise WorldError(f"{where}: must be the secret's string value, or an object of AWSCURRENT and labelled values")
    for label, version in value.items():
        if label != "AWSCURRENT" and (label not in SECRET_STAGES or not isinstance(version, str)):
            raise WorldError(
                f"{where}.{label}: only {', '.join(SECRET_STAGES)} (string values) are kept beside AWSCURRENT"
            )


def _validate_operator(operator: Any) -> None:
    _no_unknown(operator, OPERATOR_KEYS, "operator")
    arn = operator.get("principalArn")
    if not isinstance(arn, str) or OPERATOR_ARN_RE.match(arn) is None:
        raise WorldError("operator.principalArn: must be an IAM role ARN (arn:aws:iam::<12 digits>:role/NAME)")


def _validate_bootstrap(bootstrap: Any, where: str) -> None:
    if not isinstance(bootstrap, dict):
        raise WorldError(f"{where}: must be an object of bootstrap parameters ({', '.join(sorted(BOOTSTRAP_KEYS))})")
    unknown = set(bootstrap) - BOOTSTRAP_KEYS
    if unknown:
        raise WorldError(
            f"{where}: unknown bootstrap parameter(s) {', '.join(sorted(unknown))}; "
            f"bootstrap/automation-role.yaml names what it may touch with {', '.join(sorted(BOOTSTRAP_KEYS))}"
        )
    for name, value in bootstrap.items():
        if not isinstance(value, str):
            raise WorldError(f"{where}.{name}: must be the parameter's string value")


def _validate_role(role: Any, where: str, account: str, policies: set[str]) -> None:
    _no_unknown(role, ROLE_KEYS | CHAIN_ROLE_KEYS, where)
    inline = role.get("inline", {})
    if not isinstance(inline, dict) or not all(isinstance(d, dict) for d in inline.values()):
        raise WorldError(f"{where}.inline: must be an object of inline policy name -> document")
    boundary = role.get("boundary")
    if boundary is not None:
        match = POLICY_ARN_RE.match(boundary) if isinstance(boundary, str) else None
        if match is None or (match.group(1) != "aws" and (match.group(1) != account or match.group(2) not in policies)):
            raise WorldError(f"{where}.boundary: must be the ARN of a policy of this account (or an AWS managed one)")
    duration = role.get("maxSessionDuration", 3600)
    if type(duration) is not int or not 3600 <= duration <= 43200:
        raise WorldError(f"{where}.maxSessionDuration: a whole number of seconds from 3600 to 43200")
    if not isinstance(role.get("trust"), dict):
        raise WorldError(f"{where}.trust: must be a policy document object")
    path = role.get("path", "/")
    if not isinstance(path, str) or ROLE_PATH_RE.match(path) is None or "//" in path:
        raise WorldError(f"{where}.path: an IAM path, / or /name/.../ (printable ASCII, at most 512 characters)")
    attached = role.get("attached", [])
    if not isinstance(attached, list):
        raise WorldError(f"{where}.attached: must be a list of policy ARNs")
    for index, arn in enumerate(attached):
        match = POLICY_ARN_RE.match(arn) if isinstance(arn, str) else None
        if match is None:
            raise WorldError(f"{where}.attached[{index}]: must be a policy ARN")
        owner, name = match.group(1), match.group(2)
        if owner != "aws" and (owner != account or name not in policies):
            raise WorldError(
                f"{where}.attached[{index}]: {arn} is not a policy of this world (define it under "
                f"accounts.{owner}.policies)"
            )


def _no_unknown(obj: Any, allowed: set[str], where: str) -> None:
    if not isinstance(obj, dict):
        raise WorldError(f"{where}: must be an object")
    unknown = set(obj) - allowed
    if unknown:
        raise WorldError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")


def account_session(account: str, region: str, role_name: str, *, path: str = "/") -> boto3.Session:
    """Credentials in `account` (moto routes calls by the credentials' account)."""
    sts = boto3.client("sts", region_name=region)
    role_arn = f"arn:aws:iam::{account}:role{path}{role_name}"
    creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="atc-xaccount-local")["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=region,
    )


def seed_account(session: boto3.Session, account: str, state: dict[str, Any], partition: str) -> None:
    """Create the account's policies, roles, attachments, buckets and secrets."""
    iam = session.client("iam")
    for name, policy in (state.get("policies") or {}).items():
        text = json.dumps(policy["document"])
        arn = iam.create_policy(PolicyName=name, PolicyDocument=text)["Policy"]["Arn"]
        for _ in range(int(policy.get("versions", 1)) - 1):
            iam.create_policy_version(PolicyArn=arn, PolicyDocument=text, SetAsDefault=True)
    for name, role in (state.get("roles") or {}).items():
        extra: dict[str, Any] = {}
        if role.get("boundary"):
            extra["PermissionsBoundary"] = role["boundary"]
        if role.get("maxSessionDuration"):
            extra["MaxSessionDuration"] = role["maxSessionDuration"]
        if role.get("path", "/") != "/":
            extra["Path"] = role["path"]
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(role["trust"]), **extra)
        for arn in role.get("attached", []):
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        for policy_name, document in (role.get("inline") or {}).items():
            iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document))
    kms = session.client("kms")
    for name, key in (state.get("kmsKeys") or {}).items():
        created = kms.create_key(Policy=json.dumps(key["policy"]), Description=key.get("description", name))
        kms.create_alias(AliasName=f"alias/{name}", TargetKeyId=created["KeyMetadata"]["KeyId"])
    s3 = session.client("s3")
    for bucket in state.get("buckets") or []:
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if session.region_name != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": session.region_name}
        s3.create_bucket(**kwargs)
    for bucket, policy in (state.get("bucketPolicies") or {}).items():
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    for bucket, rule in (state.get("bucketEncryption") or {}).items():
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": rule}]},
        )
    secrets = session.client("secretsmanager")
    for name, value in (state.get("secrets") or {}).items():
        versions = value if isinstance(value, dict) else {"AWSCURRENT": value}
        secrets.create_secret(Name=name, SecretString=versions["AWSCURRENT"])
        for label in SECRET_STAGES:
            if label in versions:
                secrets.put_secret_value(SecretId=name, SecretString=versions[label], VersionStages=[label])
    for name, quota in (state.get("quotas") or {}).items():
        set_quota(account, partition, name, int(quota))  # moto has no Service Quotas


def snapshot_account(session: boto3.Session, *, skip_roles: set[str], secret_prefix: str | None) -> dict[str, Any]:
    """Read an account back into the world format (the bootstrap role is left out)."""
    iam = session.client("iam")
    roles: dict[str, Any] = {}
    for page in iam.get_paginator("list_roles").paginate():
        for role in page["Roles"]:
            name = role["RoleName"]
            if name in skip_roles:
                continue
            got = iam.get_role(RoleName=name)["Role"]
            attached = [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]]
            roles[name] = {"trust": got["AssumeRolePolicyDocument"], "attached": sorted(attached)}
            if got.get("Path", "/") != "/":
                roles[name]["path"] = got["Path"]
            roles[name].update(_chain_role_keys(iam, name, got))
    policies: dict[str, Any] = {}
    for page in iam.get_paginator("list_policies").paginate(Scope="Local"):
        for policy in page["Policies"]:
            arn = policy["Arn"]
            document = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"][
                "Document"
            ]
            versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
            policies[policy["PolicyName"]] = {"document": document, "versions": len(versions)}
    buckets = sorted(b["Name"] for b in session.client("s3").list_buckets().get("Buckets", []))
    state: dict[str, Any] = {"roles": roles, "policies": policies, "buckets": buckets}
    state.update(snapshot_chain(session, buckets))
    secrets = _secrets(session, secret_prefix) if secret_prefix else {}
    if secrets:
        state["secrets"] = secrets
    return state


def _chain_role_keys(iam: Any, name: str, role: dict[str, Any]) -> dict[str, Any]:
    """A role's inline policies, boundary and MaxSessionDuration, each only when not the default."""
    keys: dict[str, Any] = {}
    inline = {
        policy: iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]
    }
    if inline:
        keys["inline"] = inline
    boundary = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    if boundary:
        keys["boundary"] = boundary
    if role.get("MaxSessionDuration", 3600) != 3600:
        keys["maxSessionDuration"] = role["MaxSessionDuration"]
    return keys


def snapshot_chain(session: boto3.Session, buckets: list[str]) -> dict[str, Any]:
    """Bucket policies, default encryption other than SSE-S3, and the customer managed keys they use."""
    import contextlib

    from botocore.exceptions import ClientError

    s3, kms = session.client("s3"), session.client("kms")
    aliases = {a["TargetKeyId"]: a["AliasName"] for a in kms.list_aliases().get("Aliases", []) if "TargetKeyId" in a}
    state: dict[str, Any] = {}
    for bucket in buckets:
        with contextlib.suppress(ClientError):  # NoSuchBucketPolicy
            state.setdefault("bucketPolicies", {})[bucket] = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        try:
            rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        except ClientError:
            continue
        rule = dict((rules[0] if rules else {}).get("ApplyServerSideEncryptionByDefault") or {})
        if rule.get("SSEAlgorithm", "AES256") == "AES256":
            continue
        key_id = rule.get("KMSMasterKeyID")
        if key_id and not str(key_id).startswith("alias/"):
            metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
            alias = aliases.get(metadata["KeyId"])
            if metadata.get("KeyManager") == "CUSTOMER" and alias:
                rule["KMSMasterKeyID"] = alias
        state.setdefault("bucketEncryption", {})[bucket] = rule
    for key_id, alias in sorted(aliases.items(), key=lambda item: item[1]):
        if alias.startswith("alias/aws/"):
            continue
        policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
        state.setdefault("kmsKeys", {})[alias[len("alias/") :]] = {"policy": policy}
    return state


def _secrets(session: boto3.Session, prefix: str) -> dict[str, Any]:
    """Each secret's current value; an object with the labelled versions when it has any."""
    from botocore.exceptions import ClientError

    client = session.client("secretsmanager")
    found: dict[str, Any] = {}
    for page in client.get_paginator("list_secrets").paginate():
        for secret in page["SecretList"]:
            if not secret["Name"].startswith(f"{prefix}/"):
                continue
            labels = {label for stages in (secret.get("SecretVersionsToStages") or {}).values() for label in stages}
            versions: dict[str, str] = {}
            for label in ("AWSCURRENT", *SECRET_STAGES):
                if label not in labels:
                    continue
                try:
                    versions[label] = client.get_secret_value(SecretId=secret["ARN"], VersionStage=label)[
                        "SecretString"
                    ]
                except ClientError:
                    continue
            if "AWSCURRENT" in versions:
                found[secret["Name"]] = versions["AWSCURRENT"] if len(versions) == 1 else versions
    return dict(sorted(found.items()))


def seed_registry(dynamodb: Any, table: str, entries: dict[str, Any]) -> None:
    """The automation account's cluster registry, as the world file holds it."""
    from boto3.dynamodb.types import TypeSerializer

    from atc_xaccount.registry import PLACEMENTS, SEEN

    serializer = TypeSerializer()
    for cluster, entry in entries.items():
        item = {"clusterId": cluster, **entry}
        # As registry.put writes it: every fingerprint the cluster had, the current one included.
        seen = {*(entry.get("formerExternalIdFingerprints") or []), entry.get("externalIdFingerprint")} - {None}
        if seen:
            item[SEEN] = seen
        if entry.get(PLACEMENTS):  # a string set, as registry.update_item ADDs to it
            item[PLACEMENTS] = set(entry[PLACEMENTS])
        dynamodb.put_item(TableName=table, Item={k: serializer.serialize(v) for k, v in item.items()})


def snapshot_registry(dynamodb: Any, table: str) -> dict[str, Any]:
    """The registry as the product reads it (`registry.from_item`), so a world round-trips."""
    from atc_xaccount.registry import from_item

    entries: dict[str, Any] = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            entry = from_item(item)
            if len(entry) > 1:  # an item that holds nothing but its key reads as none (users.remove)
                entries[entry["clusterId"]] = entry
    return dict(sorted(entries.items()))


def snapshot_named(session: boto3.Session, roles: list[str], policies: list[str]) -> dict[str, Any]:
    """One account's state for the named roles and policies only (what the bootstrap role may read).

    Buckets are not read (the automation role has no S3 permission, by design) and a
    policy whose versions cannot be listed counts as one version.
    """
    from botocore.exceptions import ClientError

    iam = session.client("iam")
    account = session.client("sts").get_caller_identity()["Account"]
    state: dict[str, Any] = {"roles": {}, "policies": {}, "buckets": []}
    for name in roles:
        try:
            trust = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
        except iam.exceptions.NoSuchEntityException:
            continue
        attached = [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]]
        state["roles"][name] = {"trust": trust, "attached": sorted(attached)}
    for name in policies:
        arn = f"arn:{session.get_partition_for_region(session.region_name or 'us-east-1')}:iam::{account}:policy/{name}"
        try:
            policy = iam.get_policy(PolicyArn=arn)["Policy"]
        except iam.exceptions.NoSuchEntityException:
            continue
        document = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"][
            "Document"
        ]
        try:
            versions = len(iam.list_policy_versions(PolicyArn=arn)["Versions"])
        except ClientError:
            versions = 1
        state["policies"][name] = {"document": document, "versions": versions}
    for role in state["roles"].values():
        role["attached"] = [a for a in role["attached"] if a.rsplit("/", 1)[-1] in state["policies"]]
    return state
