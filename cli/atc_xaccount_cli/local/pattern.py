"""EventBridge event pattern matching, for checking an event against the template's rule.

moto's `TestEventPattern` returns no result (DESIGN 5), so the emulator matches the
rule's pattern itself. Supported: exact values, nested fields, `prefix`, `suffix`,
`anything-but`, `exists`, `numeric`, `equals-ignore-case`.
"""

from __future__ import annotations

from typing import Any

_MISSING = object()


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """True when `event` satisfies every field of `pattern` (EventBridge semantics)."""
    for key, expected in pattern.items():
        actual = event.get(key, _MISSING) if isinstance(event, dict) else _MISSING
        if isinstance(expected, dict):
            if not isinstance(actual, dict) or not matches(expected, actual):
                return False
        elif isinstance(expected, list):
            if not _field_matches(expected, actual):
                return False
        else:
            raise ValueError(f"pattern field {key!r} must be an object or a list")
    return True


def _field_matches(rules: list[Any], actual: Any) -> bool:
    values = actual if isinstance(actual, list) else [actual]
    return any(_rule_matches(rule, value, actual) for rule in rules for value in values) or (
        not values and any(isinstance(r, dict) and r.get("exists") is False for r in rules)
    )


def _rule_matches(rule: Any, value: Any, whole: Any) -> bool:
    if not isinstance(rule, dict):
        # JSON true is not the number 1, though Python's bool is an int.
        return value is not _MISSING and type(value) is type(rule) and value == rule
    ((kind, arg),) = rule.items()
    if kind == "exists":
        return (whole is not _MISSING) is bool(arg)
    if value is _MISSING:
        return False
    if kind in ("prefix", "suffix"):
        if not isinstance(value, str):
            return False
        text, ignore_case = _text(arg)
        subject = value.lower() if ignore_case else value
        return subject.startswith(text) if kind == "prefix" else subject.endswith(text)
    if kind == "equals-ignore-case":
        return isinstance(value, str) and value.lower() == str(arg).lower()
    if kind == "anything-but":
        excluded = arg if isinstance(arg, list) else [arg]
        if excluded and isinstance(excluded[0], dict):
            return not _rule_matches(excluded[0], value, whole)
        return value not in excluded
    if kind == "numeric":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and _numeric(arg, value)
    raise ValueError(f"unsupported pattern operator {kind!r}")


def _text(arg: Any) -> tuple[str, bool]:
    """The prefix/suffix text, lower-cased when given as {"equals-ignore-case": ...}."""
    if isinstance(arg, dict):
        return str(arg.get("equals-ignore-case", "")).lower(), True
    return str(arg), False


def _numeric(conditions: list[Any], value: float) -> bool:
    checks = {
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        "=": lambda a, b: a == b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    pairs = zip(conditions[::2], conditions[1::2], strict=True)
    return all(checks[op](value, bound) for op, bound in pairs)


# --- who may put an event on the bus -----------------------------------------------------


class EventRefused(LookupError):
    """The bus would refuse the event: its account has no permission to put it there."""


def bus_statements(template: dict[str, Any], resolver: Any, bus: str) -> list[dict[str, Any]]:
    """The statements of the template's `AWS::Events::EventBusPolicy` resources on `bus`
    whose `Condition` holds for the deployment's parameters, intrinsics resolved."""
    conditions = template.get("Conditions") or {}
    found = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::Events::EventBusPolicy":
            continue
        name = resource.get("Condition")
        if name is not None and not _holds(conditions, conditions.get(name), resolver):
            continue
        props = resource.get("Properties") or {}
        if str(resolver.resolve(props.get("EventBusName", "default"))) != bus:
            continue
        statement = props.get("Statement")
        if not isinstance(statement, dict):
            raise ValueError(f"{logical_id}: only the Statement form of AWS::Events::EventBusPolicy is supported")
        found.append({**resolver.resolve({k: v for k, v in statement.items()}), "Sid": logical_id})
    return found


def admit(statements: list[dict[str, Any]], event: dict[str, Any], bus_account: str, partition: str) -> None:
    """Raise EventRefused unless the bus admits a PutEvents of `event` by its `account`.

    An event from the bus's own account needs no resource policy. Another account's is
    judged by the project's evaluator against the bus policy, with the condition keys
    EventBridge sets (`events:source`, `events:detail-type`); `aws:PrincipalOrgID` is
    not known here, so an organization-wide statement admits nobody on the emulator.
    """
    from atc_xaccount.evaluate import evaluate_trust

    account = str(event.get("account") or bus_account)
    if account == bus_account:
        return
    principal = f"arn:{partition}:iam::{account}:root"
    context = {"events:source": event.get("source"), "events:detail-type": event.get("detail-type")}
    for statement in statements:
        # An account listed in Principal: the account's root ARN, as IAM stores it.
        doc = {"Version": "2012-10-17", "Statement": [_with_root_arns(statement, partition)]}
        if evaluate_trust(doc, principal, None, action="events:PutEvents", context=context).allowed:
            return
    raise EventRefused(
        f"account {account} may not put {event.get('source')}/{event.get('detail-type')} events on this bus: "
        "add it to the template parameter EventSourceAccounts (or its organization to EventSourceOrganizationId), "
        "and forward the events from there with bootstrap/event-forwarder.yaml"
    )


def _with_root_arns(statement: dict[str, Any], partition: str) -> dict[str, Any]:
    principal = statement.get("Principal")
    if not isinstance(principal, dict):
        return statement
    entries = principal.get("AWS")
    listed = entries if isinstance(entries, list) else [entries]
    arns = [f"arn:{partition}:iam::{e}:root" if isinstance(e, str) and e.isdigit() else e for e in listed if e]
    return {**statement, "Principal": {**principal, "AWS": arns}}


def _holds(conditions: dict[str, Any], expression: Any, resolver: Any) -> bool:
    """A template Condition: Fn::Equals / Not / And / Or / Condition over resolved values."""
    if not isinstance(expression, dict) or len(expression) != 1:
        raise ValueError(f"unsupported condition {expression!r}")
    ((key, arg),) = expression.items()
    if key == "Condition":
        return _holds(conditions, conditions[arg], resolver)
    if key == "Fn::Not":
        return not _holds(conditions, arg[0], resolver)
    if key == "Fn::And":
        return all(_holds(conditions, a, resolver) for a in arg)
    if key == "Fn::Or":
        return any(_holds(conditions, a, resolver) for a in arg)
    if key == "Fn::Equals":
        left, right = (_value(a, resolver) for a in arg)
        return bool(left == right)
    raise ValueError(f"unsupported condition function {key}")


def _value(value: Any, resolver: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        separator, items = value["Fn::Join"]
        items = resolver.resolve(items)
        return str(separator).join(str(i) for i in (items if isinstance(items, list) else [items]))
    return resolver.resolve(value)
