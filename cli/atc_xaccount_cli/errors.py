"""The CLI's own errors: each is one line on stderr and an exit status, never a traceback."""

from __future__ import annotations

from atc_xaccount_cli.exitcodes import Exit


class CliError(Exception):
    """An error the user can act on: printed as `atc-xaccount: MESSAGE`, exit `exit_code`."""

    exit_code: int = Exit.USAGE


class UsageError(CliError, ValueError):
    """Bad command-line input (an option, a file, an event the template would not deliver)."""


class ConfigError(CliError):
    """What the command needs from the environment is missing: credentials, a region, a deployment.

    The message says what to do ("no credentials: set AWS_PROFILE or run `aws sso login`").
    """


class AwsRefused(CliError):
    """AWS answered with an error the command cannot go on from (e.g. AccessDenied)."""

    exit_code = Exit.FAILED


class ResultShapeError(CliError):
    """A result that lacks what its renderer needs (the workflow's output changed shape)."""

    exit_code = Exit.FAILED
