"""The plain-boto3 anchor of the cold-start bench: a minimal handler, no layer, no Powertools.

It makes exactly the AWS calls one of our steps made in its first (recorded, untimed)
invocation, in the same order, with the same parameters, the same clients (one per
service and credentials) and the same credentials: calls the step signed with
credentials from an `sts:AssumeRole` are signed with what the replayed `AssumeRole`
returned. A call that failed for the step must fail here with the same error code;
anything else is an error of the anchor. What a hand-written handler would have to do to
make those calls, and nothing more (no validation, no logging, no retries of our own).
"""

import base64
import os

import boto3
from botocore import xform_name
from botocore.exceptions import ClientError


def _value(value):
    if isinstance(value, dict):
        if set(value) == {"__bytes__"}:
            return base64.b64decode(value["__bytes__"])
        return {k: _value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_value(v) for v in value]
    return value


def lambda_handler(event, context):
    # Access key the step signed with -> the session that signs the replay: the function's
    # own credentials, or what a replayed AssumeRole returned.
    sessions = {os.environ["AWS_ACCESS_KEY_ID"]: boto3.Session()}
    clients = {}
    for call in event["calls"]:
        key = call["access_key"]
        session = sessions.get(key)
        if session is None:
            raise RuntimeError(f"{call['service']}:{call['operation']} signed with credentials no replayed call issued")
        client = clients.get((key, call["service"], call["region"]))
        if client is None:
            client = clients[(key, call["service"], call["region"])] = session.client(
                call["service"], region_name=call["region"]
            )
        method = getattr(client, xform_name(call["operation"]))
        try:
            answer = method(**_value(call["params"]))
        except ClientError as exc:
            if exc.response["Error"]["Code"] != call["error"]:
                raise
            continue
        if call["error"] is not None:
            raise RuntimeError(f"{call['operation']} succeeded; the step's call failed with {call['error']}")
        if call["operation"] == "AssumeRole":
            creds = answer["Credentials"]
            sessions[call["issued_access_key"]] = boto3.Session(
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
            )
    return {"calls": len(event["calls"])}
