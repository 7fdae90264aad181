"""The operator's AWS session, and AWS's configuration errors told as what to do.

Region: `--region`, else `AWS_REGION`, else `AWS_DEFAULT_REGION` (click reads both, in
that order, as the AWS CLI does), else the profile's `region`. Credentials: the standard
chain (`--profile` / `AWS_PROFILE`, environment, SSO, instance role). A missing region or
credentials, an expired SSO session or an unreachable endpoint is a `ConfigError` (exit
2, nothing started) with the fix in one line; AWS refusing a call is `AwsRefused` (exit 1).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import boto3
from botocore import exceptions as boto
from botocore.parsers import ResponseParserError

from atc_xaccount_cli.errors import AwsRefused, ConfigError
from atc_xaccount_cli.paths import samconfig_value

NO_CREDENTIALS = (
    "no credentials: set AWS_PROFILE or run `aws sso login` (or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
)
#: Codes AWS gives for credentials that exist but are no good (expired, wrong, revoked).
BAD_CREDENTIALS = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "RequestExpired",
    }
)


def no_region() -> str:
    deployed = samconfig_value("region")
    hint = f" (samconfig.toml deploys to {deployed})" if deployed else ""
    return f"no region: pass --region or set AWS_REGION{hint}"


def open_session(profile: str | None, region: str | None) -> boto3.Session:
    """A session with a region and credentials, or a ConfigError saying which is missing."""
    with translated():
        try:
            session = boto3.Session(profile_name=profile or None, region_name=region or None)
        except boto.ProfileNotFound as exc:
            raise ConfigError(
                f"no AWS profile {profile!r}: check --profile / AWS_PROFILE (`aws configure list-profiles` lists them)"
            ) from exc
        if not session.region_name:
            raise ConfigError(no_region())
        if session.get_credentials() is None:
            raise ConfigError(NO_CREDENTIALS)
    return session


@contextmanager
def translated() -> Iterator[None]:
    """botocore's exceptions as the CLI's: a configuration problem, or AWS refusing."""
    try:
        yield
    except boto.NoCredentialsError as exc:
        raise ConfigError(NO_CREDENTIALS) from exc
    except boto.PartialCredentialsError as exc:
        raise ConfigError(f"incomplete credentials ({exc}): set AWS_PROFILE or run `aws sso login`") from exc
    except boto.NoRegionError as exc:
        raise ConfigError(no_region()) from exc
    except (boto.SSOTokenLoadError, boto.UnauthorizedSSOTokenError, boto.TokenRetrievalError) as exc:
        raise ConfigError(f"the SSO session is missing or expired: run `aws sso login` ({exc})") from exc
    except boto.EndpointConnectionError as exc:
        raise ConfigError(
            f"cannot reach {exc.kwargs.get('endpoint_url')}: check --region and the network "
            "(and AWS_ENDPOINT_URL, if set: e.g. is `atc-xaccount local serve` still running?)"
        ) from exc
    except boto.ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "?"), error.get("Message", "")
        operation = exc.operation_name
        if code in BAD_CREDENTIALS:
            raise ConfigError(
                f"credentials refused ({code}: {message}): they are expired or wrong; "
                "run `aws sso login` or set AWS_PROFILE"
            ) from exc
        raise AwsRefused(f"AWS refused {operation}: {code}: {message}") from exc
    except boto.BotoCoreError as exc:
        raise AwsRefused(f"AWS call failed: {exc}") from exc
    except ResponseParserError as exc:
        # Not an AWS answer at all (an HTML error page from a proxy or a broken endpoint).
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AwsRefused(f"the endpoint's answer is not an AWS response: {first}") from exc
