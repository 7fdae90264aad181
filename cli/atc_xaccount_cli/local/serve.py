"""`atc-xaccount local serve`: the embedded emulator as a local AWS endpoint.

A moto server (in this process, over HTTP) with the application deployed into it as the
emulator deploys it (real ASL, real handlers, the bootstrap roles enforced), a world
seeded, and a CloudFormation stack whose outputs name what was deployed — so the operator
commands find the deployment exactly as they find one `sam deploy` made, and run
unchanged with nothing but the exported endpoint, region and credentials.

What an operator puts on the bus is delivered by the template's rules to their state
machines (`bus.py`), as EventBridge does. Services moto lacks answer over HTTP as they
answer in-process: IAM Access Analyzer is "not implemented" (HTTP 404,
`UnknownOperationException`), which the steps and `plan` report as unavailable — not a
500 page retried three times.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from atc_xaccount_cli.local import bus
from atc_xaccount_cli.local.engine import AUTOMATION_ACCOUNT, REGION, Emulator

#: Credential scope (service) -> the service's name: moto has no backend for these.
MISSING_SERVICES = {"access-analyzer": "IAM Access Analyzer"}
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
#: The emulator's credentials (moto maps them to the automation account).
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def missing_services(app: Wsgi) -> Wsgi:
    """Answer requests for services moto lacks as moto does in-process: not implemented (404)."""

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        found = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        service = found.group(1) if found else ""
        if service in MISSING_SERVICES:
            body = json.dumps(
                {
                    "__type": "UnknownOperationException",
                    "message": f"Not yet implemented: the emulator has no {MISSING_SERVICES[service]}",
                }
            ).encode()
            start_response(
                "404 Not Found", [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))]
            )
            return [body]
        return app(environ, start_response)

    return middleware


class Server(ThreadedMotoServer):  # type: ignore[misc]
    """moto's threaded server with the missing services answered; port 0 picks a free one."""

    def _server_entry(self) -> None:
        app = missing_services(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


@dataclass(frozen=True)
class Serving:
    endpoint: str
    region: str
    stack: str
    emulator: Emulator

    def exports(self) -> list[str]:
        """What a shell needs to talk to this endpoint, as to AWS."""
        values = {"AWS_ENDPOINT_URL": self.endpoint, "AWS_REGION": self.region, **CREDENTIALS}
        return [f"export {k}={shlex.quote(v)}" for k, v in values.items()] + ["unset AWS_PROFILE"]


@contextmanager
def serving(
    root: Path,
    world: dict[str, Any],
    *,
    host: str = "127.0.0.1",
    port: int,
    stack: str = "atc-xaccount",
    parameters: dict[str, str] | None = None,
    verbose: bool = False,
) -> Iterator[Serving]:
    """Start the server, deploy and seed, publish the stack; stop everything on exit."""
    if not verbose:  # one log line per request otherwise
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = Server(ip_address=host, port=port, verbose=False)
    server.start()
    try:
        bound_host, bound_port = server.get_host_and_port()
        endpoint = f"http://{bound_host}:{bound_port}"
        with (
            bus.delivering(),
            Emulator(root, parameters=parameters, verbose=verbose, endpoint_url=endpoint) as emulator,
        ):
            emulator.seed(world)
            bus.install_rules(emulator)
            publish_stack(emulator, stack)
            yield Serving(endpoint, REGION, stack, emulator)
    finally:
        server.stop()


def publish_stack(emulator: Emulator, stack: str) -> None:
    """A CloudFormation stack in the automation account whose outputs and parameters describe the deployment."""
    outputs = {f"{logical}Arn": arn for logical, arn in emulator.state_machine_arns.items()}
    outputs.update({f"{logical}Name": name for logical, name in emulator.tables.items()})
    outputs.update({f"{logical}Name": name for logical, name in emulator.buckets.items()})
    parameters = {
        "EventBusName": emulator.app.parameters.get("EventBusName", "default"),
        "AutomationRoleName": emulator.automation_role_name,
    }
    template = {
        "Description": f"atc-xaccount on the embedded emulator (account {AUTOMATION_ACCOUNT})",
        "Parameters": {name: {"Type": "String"} for name in parameters},
        # CloudFormation needs one resource; this one creates nothing.
        "Resources": {"Deployed": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {key: {"Value": value} for key, value in sorted(outputs.items())},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # moto: "Tried to parse AWS::CloudFormation::WaitConditionHandle"
        emulator.client("cloudformation").create_stack(
            StackName=stack,
            TemplateBody=json.dumps(template),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        )
