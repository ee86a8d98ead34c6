"""The one place that creates AWS clients, and the one boundary that turns botocore's
exceptions into PlannerError messages (keeping AWS's error code, never credentials).

botocore is imported here and only when a client is needed, so commands on the local backend
start fast. ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL_CLOUDFRONT``
are honoured by botocore itself.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from planner.backends.fence import Fence, attach
from planner.errors import AwsError


MAKING = threading.RLock()  # what Clients makes is made once, even if threads ask at once


def once(make: Callable[[Any], Any]) -> Any:
    """A property made on first use and kept (``functools.cached_property``, which Python
    3.12 no longer makes under a lock): the state's reads and HeadObject pools run on threads."""
    name = make.__name__

    @functools.wraps(make)
    def get(self: Any) -> Any:
        try:
            return self.__dict__[name]
        except KeyError:
            pass
        with MAKING:
            if name not in self.__dict__:
                self.__dict__[name] = make(self)
            return self.__dict__[name]

    return property(get)


@dataclass
class Clients:
    """Lazily created clients sharing one session."""

    profile: str | None = None
    region: str | None = None
    max_attempts: int = 5  # botocore's retries: every attempt, the first included
    retry_mode: str = "standard"  # or "adaptive" (client-side rate limiting too)

    @once
    def session(self) -> Any:
        """botocore's session (profiles, regions, credentials, ``AWS_ENDPOINT_URL*``): boto3's
        layer on top of it is not loaded (about a tenth of a second at every start), only
        its managed transfer, for a file big enough to need one (``S3Backend.put_stream``)."""
        import botocore.session

        with aws_errors("AWS session"):
            session = botocore.session.Session(profile=self.profile)
            if self.region:
                session.set_config_variable("region", self.region)
            session.get_scoped_config()  # a missing profile fails here, as boto3's would
            return session

    def _config(self) -> Any:
        from botocore.config import Config

        return Config(
            # total_max_attempts counts the first request too (max_attempts would not).
            retries={"mode": self.retry_mode, "total_max_attempts": self.max_attempts},
            max_pool_connections=64,
        )

    @once
    def fence(self) -> Any:
        """S3's clock and the lease that bounds every write (see :mod:`planner.backends.fence`)."""

        return Fence()

    @once
    def s3(self) -> Any:

        with aws_errors("S3 client"):
            client = self.session.create_client("s3", config=self._config())
        attach(client, self.fence)
        return client

    @once
    def cloudfront(self) -> Any:
        # CloudFront is a global service; its API lives in us-east-1.
        with aws_errors("CloudFront client"):
            return self.session.create_client(
                "cloudfront", region_name="us-east-1", config=self._config()
            )


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


@contextlib.contextmanager
def aws_errors(what: str) -> Iterator[None]:
    """Turn botocore exceptions raised inside into AwsError("<what>: <Code>: <message>")."""
    try:
        yield
    except AwsError:
        raise
    except Exception as exc:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        if isinstance(exc, NoCredentialsError):
            raise AwsError(f"{what}: no AWS credentials found (set AWS_PROFILE or keys)") from None
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
            code = err.get("Code") or f"HTTP {status}".strip()
            message = err.get("Message") or f"HTTP {status}".strip()
            raise AwsError(f"{what}: {code}: {message}", code=code) from None
        if isinstance(exc, BotoCoreError):
            raise AwsError(f"{what}: {exc}") from None
        raise
