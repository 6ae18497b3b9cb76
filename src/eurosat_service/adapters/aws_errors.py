"""botocore exceptions -> domain errors whose message says what to do, for the deploy adapters.

``@translates_aws_errors`` on an adapter class wraps each public method, so no boto3 error
reaches the edge as a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Iterator
from typing import TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSOError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
)

from eurosat_service.domain.errors import CloudAccessError, DeploymentError

EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
REJECTED = {"InvalidClientTokenId", "UnrecognizedClientException", "AuthFailure", "SignatureDoesNotMatch",
            "InvalidAccessKeyId", "InvalidToken"}
DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException"}
NO_CREDENTIALS = ("no AWS credentials found: run `aws configure` (or `aws sso login`), pass --profile, "
                  "or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")

NO_REGION = ("no AWS region: pass --region, set EUROSAT_AWS_REGION or AWS_REGION, or set `region` "
             "in your AWS profile (`aws configure`)")
# set by aws_session on an error raised inside a client's call: the profile that client's session uses
PROFILE_ATTRIBUTE = "eurosat_aws_profile"
T = TypeVar("T")


def sso_login_needed(exc: BaseException) -> str:
    """An SSO profile with no cached token (never logged in, or a fresh HOME) or an expired one."""
    profile = getattr(exc, PROFILE_ATTRIBUTE, None)
    login = f"aws sso login --profile {profile}" if profile else "aws sso login --profile <the profile in use>"
    # botocore's own text for an expired legacy token only says to log in, without the profile
    detail = "" if isinstance(exc, UnauthorizedSSOTokenError) else f" ({exc})"
    return (f"the AWS SSO login{f' of profile {profile}' if profile else ''} is missing or expired{detail}: "
            f"run `{login}` and retry")


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


@contextlib.contextmanager
def aws_errors(action: str) -> Iterator[None]:
    try:
        yield
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise CloudAccessError(NO_CREDENTIALS) from exc
    except ProfileNotFound as exc:
        raise CloudAccessError(f"{exc}: check --profile / EUROSAT_AWS_PROFILE and ~/.aws/config") from exc
    except (SSOError, TokenRetrievalError) as exc:  # TokenRetrievalError: only the SSO token provider raises it
        raise CloudAccessError(sso_login_needed(exc)) from exc
    except NoRegionError as exc:
        raise CloudAccessError(NO_REGION) from exc
    except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError) as exc:
        raise CloudAccessError(f"cannot reach AWS while {action}: {exc} (check the network or --endpoint-url)") from exc
    except ClientError as exc:
        code, message = error_code(exc), exc.response.get("Error", {}).get("Message", "")
        if code in EXPIRED:
            raise CloudAccessError(f"AWS credentials expired ({code}): refresh them and retry") from exc
        if code in REJECTED:
            raise CloudAccessError(f"AWS rejected the credentials ({code}): check the access key or profile") from exc
        if code in DENIED:
            raise CloudAccessError(
                f"access denied while {action}: {message} (the IAM identity needs ECS, EC2, IAM, "
                "CloudWatch Logs and ECR permissions; see the README)") from exc
        raise DeploymentError(f"AWS refused {action}: {code}: {message}") from exc
    except BotoCoreError as exc:
        raise DeploymentError(f"AWS call failed while {action}: {exc}") from exc


def translates_aws_errors(cls: type[T]) -> type[T]:
    """Wrap every public method of an adapter in ``aws_errors(<method name in words>)``."""
    for name, method in list(vars(cls).items()):
        if name.startswith("_") or not inspect.isfunction(method):
            continue

        def wrap(method=method, action=name.replace("_", " ")):
            @functools.wraps(method)
            def wrapper(*args, **kwargs):
                with aws_errors(action):
                    return method(*args, **kwargs)

            return wrapper

        setattr(cls, name, wrap())
    return cls
