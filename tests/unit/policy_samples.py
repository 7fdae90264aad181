"""Sample documents shared by the unit tests (functions, so no test can mutate another's)."""

from __future__ import annotations

from typing import Any

NODE = "arn:aws:iam::111111111111:role/atc-node"
NODE_SID = "AtcXaccount111111111111atcnodef6a57fd6"
NODE2 = "arn:aws:iam::444444444444:role/atc-node"
NODE2_SID = "AtcXaccount444444444444atcnode021f994b"
PARTNER = "arn:aws:iam::333333333333:role/partner"
ACCESS_ROLE = "arn:aws:iam::222222222222:role/atc-s3-access-keys"


def ec2_statement() -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Principal": {"Service": "ec2.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }


def partner_statement() -> dict[str, Any]:
    return {
        "Sid": "PartnerAnalytics",
        "Effect": "Allow",
        "Principal": {"AWS": PARTNER},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": "partner-ext-id-1234"}},
    }


def sample_trust() -> dict[str, Any]:
    """The access role as the seed procedure leaves it: EC2 statement plus a partner grant."""
    return {"Version": "2012-10-17", "Statement": [ec2_statement(), partner_statement()]}


def grant(sid: str, principal: str, ids: str | list[str]) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": ids}},
    }
