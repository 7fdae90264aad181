"""The steps' own roles on the emulator: translated as `sam deploy` would, and enforced.

Each `AWS::Serverless::Function` gets an execution role from SAM: its `Policies`
(statements, SAM policy templates, this template's managed policies, AWS managed
policies) become the role's inline policies and `ManagedPolicyArns`. The emulator does
not copy them by hand: it translates `template.yaml` with `aws-sam-translator` (the
library `sam deploy` runs, at the version aws-sam-cli pins), resolves the intrinsics for
the emulator's account, region and resources, and reads AWS managed policies' documents
from moto's copy of them.

Who judges: the project's evaluator (`atc_xaccount.evaluate.evaluate_identity`), not
moto's IAM authorization. moto authorizes only requests signed with credentials it
issued and, outside IAM and S3, passes `*` as the resource, so a table- or secret-scoped
grant could not be judged faithfully; the step's calls are signed with the emulated
Lambda's environment credentials. A step call is judged in the botocore seam that counts
it (dispatch.py): its IAM action and resource ARN, and the request context keys the
template's conditions use (`dynamodb:EnclosingOperation`, `aws:TagKeys`, ...). A denied
call raises the ClientError AWS returns (`AccessDeniedException`, or `AccessDenied` for
the query and REST-XML protocols: STS, IAM, S3), before the request reaches moto.

Calls made with the automation role's credentials (the target accounts) are not judged
here: authz.py judges them against the bootstrap role.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from atc_xaccount.evaluate import evaluate_identity
from atc_xaccount_cli.local.template import Resolver, TemplateError, load_yaml

#: Where `sam package` would have put each artifact: the translator wants S3 URIs.
PACKAGED = "s3://atc-xaccount-local-artifacts/"

#: The S3 operations whose IAM action is not `s3:<Operation>` (and whether it is a bucket action).
S3_ACTIONS: dict[str, tuple[str, bool]] = {
    "HeadObject": ("s3:GetObject", False),
    "HeadBucket": ("s3:ListBucket", True),
    "ListObjects": ("s3:ListBucket", True),
    "ListObjectsV2": ("s3:ListBucket", True),
    "ListObjectVersions": ("s3:ListBucketVersions", True),
    "CreateMultipartUpload": ("s3:PutObject", False),
    "UploadPart": ("s3:PutObject", False),
    "CompleteMultipartUpload": ("s3:PutObject", False),
    "CopyObject": ("s3:PutObject", False),
    "DeleteObjects": ("s3:DeleteObject", False),
}

#: DynamoDB transactions are authorized per item, as the item's own action.
TRANSACT_ITEM_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}

#: A mutation of the translated roles (tests remove one grant): function -> documents.
RoleMutation = Callable[[dict[str, list[dict[str, Any]]]], dict[str, list[dict[str, Any]]]]


class StepRoleError(TemplateError):
    """template.yaml's roles cannot be built as `sam deploy` would build them."""


@dataclass(frozen=True)
class Request:
    """One authorization IAM makes for a call: action, resource ARN, context keys."""

    action: str
    resource: str
    context: dict[str, Any] = field(default_factory=dict)


def translate(template: dict[str, Any], parameters: dict[str, str], region: str) -> dict[str, Any]:
    """The CloudFormation template `sam deploy` would submit (artifacts as packaged)."""
    import boto3
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    # The translator's usage metrics are never published here: its warning says so on stderr.
    logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)
    packaged = copy.deepcopy(template)
    for logical_id, resource in (packaged.get("Resources") or {}).items():
        props = resource.get("Properties") or {}
        for key in ("CodeUri", "DefinitionUri", "ContentUri"):
            if isinstance(props.get(key), str):
                props[key] = f"{PACKAGED}{logical_id}/{key}"

    def managed_policy_map() -> dict[str, str]:
        # Only asked for when a policy names an AWS managed policy by bare name (SAM then
        # calls iam:ListPolicies); the template uses ARNs, which need no lookup.
        raise StepRoleError("template.yaml names an AWS managed policy by name; use its ARN")

    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    try:
        return translator.translate(
            packaged, parameter_values=dict(parameters), get_managed_policy_map=managed_policy_map
        )
    except InvalidDocumentException as exc:
        raise StepRoleError(f"aws-sam-translator refused template.yaml: {exc}") from exc


@functools.cache
def _aws_managed_catalogue() -> dict[str, Any]:
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    return dict(json.loads(aws_managed_policies_data))


def aws_managed_policy(arn: str) -> dict[str, Any]:
    """An AWS managed policy's default document, from moto's copy of AWS's catalogue."""
    name = arn.rsplit("/", 1)[-1]
    catalogue = _aws_managed_catalogue()
    if name not in catalogue:
        raise StepRoleError(f"unknown AWS managed policy {arn}")
    return copy.deepcopy(dict(catalogue[name]["Document"]))


def function_roles(translated: dict[str, Any], resolver: Resolver) -> dict[str, list[dict[str, Any]]]:
    """function logical id -> the identity policy documents of its execution role."""
    resources = translated.get("Resources") or {}
    roles: dict[str, list[dict[str, Any]]] = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        role_ref = (resource.get("Properties") or {}).get("Role")
        if not (isinstance(role_ref, dict) and "Fn::GetAtt" in role_ref):
            raise StepRoleError(f"{logical_id}: its Role is not one the template creates")
        role_id = role_ref["Fn::GetAtt"][0]
        props = resources[role_id].get("Properties") or {}
        docs = [resolver.resolve(p["PolicyDocument"]) for p in props.get("Policies") or []]
        for arn in props.get("ManagedPolicyArns") or []:
            if isinstance(arn, dict) and set(arn) == {"Ref"} and arn["Ref"] in resources:
                policy = resources[arn["Ref"]]
                if policy.get("Type") != "AWS::IAM::ManagedPolicy":
                    raise StepRoleError(f"{logical_id}: {arn['Ref']} is not a managed policy")
                docs.append(resolver.resolve(policy["Properties"]["PolicyDocument"]))
            else:
                docs.append(aws_managed_policy(str(resolver.resolve(arn))))
        roles[logical_id] = docs
    return roles


# --- what IAM authorizes for a call -----------------------------------------------------


@dataclass(frozen=True)
class Place:
    partition: str
    region: str
    account: str


def requests_for(prefix: str, operation: str, params: dict[str, Any], where: Place) -> list[Request]:
    """The authorizations IAM makes for one API call (several for transactions)."""
    p, r, a = where.partition, where.region, where.account
    if prefix == "dynamodb":
        return _dynamodb(operation, params, f"arn:{p}:dynamodb:{r}:{a}:table/")
    if prefix == "s3":
        return [_s3(operation, params, p)]
    if prefix == "secretsmanager":
        return _secrets(operation, params, f"arn:{p}:secretsmanager:{r}:{a}:secret:")
    if prefix == "sts":
        return [Request(f"sts:{operation}", str(params.get("RoleArn") or "*"))]
    if prefix == "states":
        arn = next((params[k] for k in ("executionArn", "stateMachineArn", "mapRunArn") if params.get(k)), "*")
        return [Request(f"states:{operation}", str(arn))]
    if prefix == "events" and operation == "PutEvents":
        buses = {str(e.get("EventBusName") or "default") for e in params.get("Entries") or []}
        return [
            Request("events:PutEvents", bus if bus.startswith("arn:") else f"arn:{p}:events:{r}:{a}:event-bus/{bus}")
            for bus in sorted(buses)
        ]
    # Access Analyzer's ValidatePolicy and the like have no resource type.
    return [Request(f"{prefix}:{operation}", "*")]


def _dynamodb(operation: str, params: dict[str, Any], tables: str) -> list[Request]:
    def arn(table: str, index: str | None = None) -> str:
        base = table if table.startswith("arn:") else f"{tables}{table}"
        return f"{base}/index/{index}" if index else base

    if operation in ("TransactWriteItems", "TransactGetItems"):
        found = []
        for item in params.get("TransactItems") or []:
            for kind, spec in item.items():
                context = {"dynamodb:EnclosingOperation": operation}
                found.append(Request(TRANSACT_ITEM_ACTIONS[kind], arn(spec["TableName"]), context))
        return found
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [Request(f"dynamodb:{operation}", arn(t)) for t in sorted(params.get("RequestItems") or {})]
    return [Request(f"dynamodb:{operation}", arn(str(params.get("TableName", "*")), params.get("IndexName")))]


def _s3(operation: str, params: dict[str, Any], partition: str) -> Request:
    action, bucket_level = S3_ACTIONS.get(operation, (f"s3:{operation}", "Key" not in params))
    bucket = str(params.get("Bucket", "*"))
    resource = f"arn:{partition}:s3:::{bucket}" if bucket_level else f"arn:{partition}:s3:::{bucket}/{params['Key']}"
    return Request(action, resource)


def _secrets(operation: str, params: dict[str, Any], secrets: str) -> list[Request]:
    name = str(params.get("SecretId") or params.get("Name") or "*")
    # A secret's ARN ends in a random six-character suffix after its name.
    arn = name if name.startswith("arn:") else f"{secrets}{name}-AbCdEf"
    tags = [str(t.get("Key")) for t in params.get("Tags") or []]
    context: dict[str, Any] = {"aws:TagKeys": tags} if tags else {}
    found = [Request(f"secretsmanager:{operation}", arn, context)]
    if operation == "CreateSecret" and tags:
        found.append(Request("secretsmanager:TagResource", arn, context))
    return found


# --- the emulator's side ------------------------------------------------------------------


def access_denied(protocol: str, operation: str, principal: str, request: Request, reason: str) -> ClientError:
    """The error AWS returns for an identity-policy denial, in the service's protocol."""
    json_protocol = protocol in ("json", "rest-json")
    resource = f'"{request.resource}"' if request.action.startswith("s3:") else request.resource
    message = (
        f"User: {principal} is not authorized to perform: {request.action} on resource: {resource} "
        f"because no identity-based policy allows the {request.action} action"
    )
    if reason.startswith("explicitly denied"):
        message = (
            f"User: {principal} is not authorized to perform: {request.action} on resource: {resource} "
            "with an explicit deny in an identity-based policy"
        )
    response: dict[str, Any] = {
        "Error": {"Code": "AccessDeniedException" if json_protocol else "AccessDenied", "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": 400 if json_protocol else 403},
    }
    if not json_protocol:
        response["Error"]["Type"] = "Sender"
    return ClientError(response, operation)


@dataclass
class StepRoles:
    """Every step's execution role, and the judge of the calls a step makes with it."""

    roles: dict[str, list[dict[str, Any]]]
    where: Place
    #: The Lambda environment's access key: calls signed with it are the step's own.
    own_access_key: str
    enabled: bool = True
    #: (function, action) -> how many calls were judged and allowed.
    allowed: Counter[tuple[str, str]] = field(default_factory=Counter, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_template(
        cls,
        root: Path,
        parameters: dict[str, str],
        resolver: Resolver,
        where: Place,
        own_access_key: str,
        *,
        enabled: bool = True,
    ) -> StepRoles:
        translated = translate(load_yaml(root / "template.yaml"), parameters, where.region)
        return cls(function_roles(translated, resolver), where, own_access_key, enabled)

    def principal(self, function: str) -> str:
        """The assumed-role ARN Lambda's credentials carry (role named after SAM's logical id)."""
        return f"arn:{self.where.partition}:sts::{self.where.account}:assumed-role/{function}Role/{function}"

    def judge(self, function: str, client: Any, operation: str, params: dict[str, Any]) -> None:
        """Raise AWS's AccessDenied when `function`'s role does not allow this call."""
        if not self.enabled or function not in self.roles:
            return
        credentials = getattr(getattr(client, "_request_signer", None), "_credentials", None)
        if credentials is None or credentials.access_key != self.own_access_key:
            return  # an assumed automation role: authz.py judges it
        model = client.meta.service_model
        prefix = model.signing_name or model.endpoint_prefix
        if f"{prefix}:{operation}" == "sts:GetCallerIdentity":
            return  # allowed to every principal, whatever the policies say
        for request in requests_for(prefix, operation, params, self.where):
            decision = evaluate_identity(
                self.roles[function], request.action, request.resource, context=request.context
            )
            if not decision.allowed:
                raise access_denied(model.protocol, operation, self.principal(function), request, decision.reason)
            with self.lock:
                self.allowed[(function, request.action)] += 1

    @contextmanager
    def changed(self, mutation: RoleMutation) -> Iterator[None]:
        """The roles changed by `mutation` for the block (a test removes one grant)."""
        saved = self.roles
        self.roles = mutation(copy.deepcopy(saved))
        try:
            yield
        finally:
            self.roles = saved


def without_grant(function: str, sid: str, action: str | None = None) -> RoleMutation:
    """A mutation removing one action (or the whole statement `sid`) from `function`'s role."""

    def mutate(roles: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        found = False
        for doc in roles[function]:
            kept = []
            for stmt in doc.get("Statement", []):
                if stmt.get("Sid") != sid:
                    kept.append(stmt)
                    continue
                found = True
                actions = [stmt["Action"]] if isinstance(stmt["Action"], str) else list(stmt["Action"])
                if action is not None and action not in actions:
                    raise KeyError(f"{function} {sid} does not grant {action}")
                rest = [a for a in actions if a != action] if action is not None else []
                if rest:
                    kept.append({**stmt, "Action": rest})
            doc["Statement"] = kept
        if not found:
            raise KeyError(f"{function}'s role has no statement {sid}")
        return roles

    return mutate
