"""One exception class per failure mode; the state machine Retries/Catches them by class name."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

_JSON_SCALARS = (str, int, float, bool, type(None))


def _json_safe(value: Any) -> Any:
    """Keep error payloads serialisable, since Lambda turns them into the ASL error cause."""
    if isinstance(value, _JSON_SCALARS):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return repr(value)[:200]


class AtcXaccountError(Exception):
    """Base of every failure the workflow names; `to_dict` is what reports and events carry."""

    def __init__(self, message: str, *, account: str | None = None) -> None:
        super().__init__(message)
        self.account = account

    def to_dict(self) -> dict[str, Any]:
        """Class name, message and every public attribute, JSON-safe."""
        data: dict[str, Any] = {"error": type(self).__name__, "message": str(self)}
        for key, value in vars(self).items():
            if not key.startswith("_"):
                data[key] = _json_safe(value)
        return data


class InvalidEvent(AtcXaccountError):
    """The input event breaks a contract rule; fails before any write so nothing needs undoing."""

    def __init__(
        self,
        field: str,
        rule: str,
        value: Any = None,
        *,
        problems: Sequence[tuple[str, str]] | None = None,
    ) -> None:
        listed = list(problems) if problems else [(field, rule)]
        super().__init__("; ".join(f"{f}: {r}" for f, r in listed))
        self.field = field
        self.rule = rule
        # An external ID is a shared secret: never keep it on an error that gets logged.
        self.value = None if field.lower().endswith("externalid") else value
        self.problems = [{"field": f, "rule": r} for f, r in listed]


class PrerequisiteMissing(AtcXaccountError):
    """Something the procedure assumes exists (e.g. the access role) does not."""

    def __init__(self, resource_type: str, name: str, account: str) -> None:
        super().__init__(f"{resource_type} {name} does not exist in account {account}", account=account)
        self.resource_type = resource_type
        self.name = name


class UnsupportedRolePath(AtcXaccountError):
    """A node or access role lives under a path (`/service/atc-node`): refused before any write.

    Its real ARN carries the path; the grant's principal, the assume policy's resource, the
    bootstrap role's permissions and Verify all name roles at the default path `/`.
    """

    def __init__(self, account: str, role_name: str, path: str, arn: str) -> None:
        super().__init__(
            f"role {role_name} in account {account} has the path {path} (its ARN is {arn}): atc-xaccount grants, "
            "verifies and may change only roles at the default path /, so nothing was written; recreate the "
            f"role at / (aws iam create-role --role-name {role_name} ... without --path) or name a role at / "
            "in the event",
            account=account,
        )
        self.role_name = role_name
        self.path = path
        self.arn = arn


class QuotaExceeded(AtcXaccountError):
    """A write would cross an IAM quota; the message says which quota and how to raise it."""

    def __init__(self, quota: str, resource: str, account: str, size: int, limit: int, how_to_raise: str) -> None:
        super().__init__(
            f"{resource} in account {account} would need {size} against the quota {quota} "
            f"of {limit}; to raise it: {how_to_raise}",
            account=account,
        )
        self.quota = quota
        self.resource = resource
        self.size = size
        self.limit = limit
        self.how_to_raise = how_to_raise


class PolicyLintFailed(AtcXaccountError):
    """The document we are about to write has error findings; we refuse to write it."""

    def __init__(self, policy_name: str, account: str, findings: list[dict[str, Any]]) -> None:
        summary = "; ".join(f"{f.get('code')}: {f.get('message')}" for f in findings)
        super().__init__(
            f"policy {policy_name} in account {account} failed lint with {len(findings)} error(s): {summary}",
            account=account,
        )
        self.policy_name = policy_name
        self.findings = findings


class AutomationRoleUnavailable(AtcXaccountError):
    """We cannot get into a target account, so nothing there can be checked or changed."""

    def __init__(self, account: str, role_arn: str, reason: str) -> None:
        super().__init__(
            f"cannot assume automation role {role_arn} in account {account}: {reason}",
            account=account,
        )
        self.role_arn = role_arn
        self.reason = reason


class AutomationRoleDenied(AtcXaccountError):
    """The automation role in a target account refused a call: its bootstrap stack instance
    was deployed for other names. The message says which parameter to set, and to what."""

    def __init__(
        self,
        account: str,
        action: str,
        resource: str,
        parameter: str | None,
        value: str | None,
        aws_message: str,
        *,
        fix: str | None = None,
    ) -> None:
        fix = fix or bootstrap_fix(account, parameter, value)
        super().__init__(
            f"the automation role in account {account} may not call {action} on {resource} (AccessDenied): {fix}",
            account=account,
        )
        #: AWS's error code, as `AwsOperationFailed.code` carries it.
        self.code = "AccessDenied"
        self.action = action
        self.resource = resource
        self.parameter = parameter
        self.value = value
        self.aws_message = aws_message


def bootstrap_fix(account: str, parameter: str | None, value: str | None) -> str:
    """What to do about an AutomationRoleDenied: the stack instance parameter to set, if known."""
    if parameter and value:
        return (
            f"deploy that account's bootstrap stack instance (bootstrap/automation-role.yaml) with "
            f"{parameter}={value}, e.g. aws cloudformation update-stack-instances --accounts {account} "
            f"--parameter-overrides ParameterKey={parameter},ParameterValue={value} ..."
        )
    return (
        "check the parameters that account's bootstrap stack instance (bootstrap/automation-role.yaml) "
        "was deployed with"
    )


class IamThrottled(AtcXaccountError):
    """IAM/STS answered `Throttling`; retryable with backoff."""

    def __init__(self, operation: str, account: str) -> None:
        super().__init__(f"{operation} was throttled in account {account}", account=account)
        self.operation = operation


class IamConcurrentModification(AtcXaccountError):
    """IAM answered `ConcurrentModification`; botocore does not retry it, the ASL does."""

    def __init__(self, operation: str, account: str) -> None:
        super().__init__(
            f"{operation} in account {account} conflicted with a concurrent modification",
            account=account,
        )
        self.operation = operation


class IamPropagationDelay(AtcXaccountError):
    """IAM is eventually consistent: a new principal is not valid in a trust policy yet ("Invalid
    principal in policy"), a new policy not attachable, a detached one not deletable; retry later."""

    def __init__(self, operation: str, account: str, reason: str | None = None) -> None:
        why = (
            f"IAM is eventually consistent: {reason}"
            if reason
            else "refused with 'Invalid principal in policy': a newly created principal can take up to "
            "~2 minutes to become visible to IAM"
        )
        super().__init__(f"{operation} in account {account} was {why}; retried later", account=account)
        self.operation = operation


class AwsOperationFailed(AtcXaccountError):
    """Any other AWS error, with its code kept so the cause stays visible."""

    def __init__(self, operation: str, account: str, code: str, message: str) -> None:
        super().__init__(f"{operation} failed in account {account}: {code}: {message}", account=account)
        self.operation = operation
        self.code = code
        self.aws_message = message


class VerificationFailed(AtcXaccountError):
    """After the writes, the resulting state does not grant what it should."""

    def __init__(self, account: str, checks: list[dict[str, Any]]) -> None:
        failed = [c for c in checks if not c.get("ok", False)] or checks
        summary = "; ".join(
            str(c.get("check") or c.get("name") or "check") + (f" ({c['detail']})" if c.get("detail") else "")
            for c in failed
        )
        super().__init__(f"verification failed in account {account}: {summary}", account=account)
        self.checks = checks


class ResourceLocked(AtcXaccountError):
    """Another execution holds the lock on a role or policy; the state machine retries."""

    def __init__(self, key: str, holder: str | None) -> None:
        super().__init__(f"{key} is being changed by execution {holder or 'unknown'}; retry after it finishes")
        self.key = key
        self.holder = holder


class StaleRead(AtcXaccountError):
    """Under its lock, IAM returned another document than the one the last holder left.

    IAM is eventually consistent for reads too: right after a write, GetRole or GetPolicy
    may answer with the previous version. Nothing is written; the state machine retries
    (bounded), then fails with this error.
    """

    def __init__(self, key: str, read: str, left: str) -> None:
        super().__init__(
            f"{key}: IAM returned a document (hash {read[:12]}) other than the one its last writer left "
            f"(hash {left[:12]}): a stale read; nothing was written, retry"
        )
        self.key = key


class SecretDeletionPending(AtcXaccountError):
    """The cluster's external ID secret is still being deleted (Secrets Manager deletes
    asynchronously): it cannot be created again yet; the state machine retries with backoff."""

    def __init__(self, name: str) -> None:
        super().__init__(f"secret {name} is still being deleted by Secrets Manager; retry shortly")
        self.name = name


class CommitPending(AtcXaccountError):
    """This onboarding's change is queued on a shared document whose lock another execution
    holds; that holder serves it (group commit). The state machine tries again shortly."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__(f"queued on {', '.join(keys)}: another execution is writing it; retry")
        self.keys = keys


class GroupCommitFailed(AtcXaccountError):
    """The execution that wrote a shared document for this cluster refused its change."""

    def __init__(self, key: str, error: dict[str, Any]) -> None:
        super().__init__(f"{key}: {error.get('error')}: {error.get('message')}", account=error.get("account"))
        self.key = key
        self.cause_error = error.get("error")


class RegistrationMismatch(AtcXaccountError):
    """A deregistration names accounts that differ from what the cluster was registered with."""

    def __init__(self, cluster_id: str, field: str, registered: str, given: str) -> None:
        super().__init__(
            f"cluster {cluster_id} is registered with {field} {registered}, but the event says {given}; "
            "nothing was changed"
        )
        self.cluster_id = cluster_id
        self.field = field
        self.registered = registered
        self.given = given


class OwnedStatementModified(AtcXaccountError):
    """A statement carries our Sid but not our whole shape: someone edited it, a human decides.

    We never rewrite it (that could turn a Deny into an Allow, drop a condition, or steal a
    partner's grant); onboarding stops before any write and the audit reports it.
    """

    def __init__(self, account: str | None, resource: str, sid: str, differences: Sequence[str]) -> None:
        where = f" in account {account}" if account else ""
        super().__init__(
            f"statement {sid} of {resource}{where} carries this project's Sid but not the shape it writes "
            f"({'; '.join(differences)}); it was changed by hand, so nothing was written: review it, then "
            "remove the statement or give it another Sid",
            account=account,
        )
        self.resource = resource
        self.sid = sid
        self.differences = list(differences)


class WouldWidenAccess(AtcXaccountError):
    """The document about to be written grants more than this change adds, or drops a Deny."""

    def __init__(self, account: str | None, resource: str, violations: Sequence[str]) -> None:
        where = f" in account {account}" if account else ""
        super().__init__(f"refusing to write {resource}{where}: it would {'; '.join(violations)}", account=account)
        self.resource = resource
        self.violations = list(violations)


#: Where a message that carries what was left starts its JSON list (see `left_from_cause`).
LEFT_MARKER = " left: "


class UndoIncomplete(AtcXaccountError):
    """A step failed after a write and could not undo it itself; `left` is for Compensate.

    The message ends with the left records as JSON (a retired policy version with its
    document, a change record), so Compensate, reading the error's cause, can finish the undo.
    """

    def __init__(self, summary: str, left: list[dict[str, Any]], *, account: str | None = None) -> None:
        super().__init__(
            f"{summary};{LEFT_MARKER}{json.dumps(_json_safe(left), separators=(',', ':'))}", account=account
        )
        self.left = left


class CompensationIncomplete(AtcXaccountError):
    """Compensation could not undo everything, even after retries: `left` names each change left."""

    def __init__(self, after: str | None, left: list[dict[str, Any]]) -> None:
        names = ", ".join(f"{item.get('change')} ({item.get('what', '')})" for item in left)
        super().__init__(
            f"compensation after {after or 'a failure'} left {len(left)} change(s) in place: {names};"
            f"{LEFT_MARKER}{json.dumps(_json_safe(left), separators=(',', ':'))}"
        )
        self.after = after
        self.left = left


def left_from_cause(cause: str | None) -> list[dict[str, Any]]:
    """The `left` records an UndoIncomplete (or CompensationIncomplete) put in an ASL error cause.

    The cause is Lambda's error payload (`{"errorMessage": ...}`) or the bare message.
    """
    if not cause:
        return []
    decoder = json.JSONDecoder()
    message = cause
    try:
        payload = decoder.raw_decode(cause)[0]  # the payload may be followed by more text
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        message = str(payload.get("errorMessage", ""))
    _, found, rest = message.partition(LEFT_MARKER)
    if not found:
        return []
    try:
        left = decoder.raw_decode(rest)[0]
    except ValueError:
        return []
    return [item for item in left if isinstance(item, dict)] if isinstance(left, list) else []


class RequestNotAuthorized(AtcXaccountError):
    """The request may not be made: its sender is not the account it speaks for, or the
    deployment does not connect those accounts. Refused before any call into a target account."""

    def __init__(self, reason: str, *, fix: str, account: str | None = None, **facts: str | None) -> None:
        super().__init__(f"request not authorized: {reason}; nothing was changed: {fix}", account=account)
        self.reason = reason
        self.fix = fix
        for key, value in facts.items():
            setattr(self, key, value)


class DeregistrationIncomplete(AtcXaccountError):
    """The cluster's deregistration started (the registry says REVOKING) and has not finished:
    nothing may grant its access again until a deregistration runs to the end."""

    def __init__(self, cluster_id: str, execution: str | None) -> None:
        super().__init__(
            f"cluster {cluster_id} is being deregistered (registry state REVOKING, execution "
            f"{execution or 'unknown'}); nothing was changed: re-run its deregistration to finish it, "
            "then register it again if its access should exist"
        )
        self.cluster_id = cluster_id
        self.execution = execution


class NotRepairable(AtcXaccountError):
    """A repair restores only what the registry says should exist (a READY cluster)."""

    def __init__(self, cluster_id: str, state: str | None) -> None:
        super().__init__(
            f"cluster {cluster_id} is {state or 'not registered'} in the registry: a repair only restores the "
            "access of a READY cluster; nothing was changed"
        )
        self.cluster_id = cluster_id
        self.state = state


class ExternalIdSecretMismatch(AtcXaccountError):
    """The cluster's secret holds another external ID than the one the registry recorded.

    The registry's fingerprint is the truth: whoever can write one secret must not be able
    to widen the trust by it, so nothing is granted until a human puts the registered
    value back (or rotates the ID on purpose).
    """

    def __init__(self, cluster_id: str, secret: str, detail: str) -> None:
        super().__init__(
            f"the external ID in {secret} is not the one the registry recorded for cluster {cluster_id} ({detail}); "
            "nothing was granted: put the registered value back, or rotate the external ID (rotate-external-id)"
        )
        self.cluster_id = cluster_id
        self.secret = secret


# --- the cluster's Node API (issue 19; docs/node-api.md) -----------------------------------


class NodeApiUnavailable(AtcXaccountError):
    """The cluster's Node API could not be reached, or answered 5xx; the ASL retries a few times."""

    def __init__(self, url: str, operation: str, reason: str) -> None:
        super().__init__(f"the Node API at {url} could not serve {operation}: {reason}")
        self.url = url
        self.operation = operation
        self.reason = reason


class NodeApiCredentialsInvalid(AtcXaccountError):
    """The node user's secret is missing or malformed, or the Node API refused that user (401/403)."""

    def __init__(self, url: str, secret: str, reason: str) -> None:
        super().__init__(
            f"the node user of {url} (secret {secret}) cannot manage access keys: {reason}; the secret must hold "
            '{"username": ..., "password": ...} of a node user with the key_master ACL'
        )
        self.url = url
        self.secret = secret
        self.reason = reason


class AccessKeyRejected(AtcXaccountError):
    """The Node API refused to create, update or delete the cluster's access key; `answer` is its
    reply (`HTTP 400: reason: user_message`)."""

    def __init__(self, url: str, operation: str, status: int, answer: str, *, kept: str = "") -> None:
        super().__init__(f"the Node API at {url} refused {operation} ({answer})" + (f"; {kept}" if kept else ""))
        self.url = url
        self.operation = operation
        self.status = status
        self.answer = answer


class AccessKeyUnusable(AtcXaccountError):
    """Browsing through the access key kept failing (IAM propagation retried); `answer` is the last reply."""

    def __init__(self, url: str, key_id: str, attempts: int, answer: str, *, kept: str = "") -> None:
        super().__init__(
            f"the access key {key_id} on {url} cannot browse its storage after {attempts} attempt(s): {answer}"
            + (f"; {kept}" if kept else "")
        )
        self.url = url
        self.key_id = key_id
        self.attempts = attempts
        self.answer = answer
