"""Bearer-token authentication.

Accepted tokens are configured as sha256 hex digests (``ApiSettings.token_hashes``), plus an
optional plain ``dev_token`` hashed at start-up. A presented token is hashed and compared with
every accepted digest using `hmac.compare_digest` (constant time, no early exit).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from journeylens.api.problems import ApiProblem
from journeylens.settings import ApiSettings

bearer_scheme = HTTPBearer(
    auto_error=False, scheme_name="bearer", description="An API token (Authorization: Bearer)."
)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenVerifier:
    """Holds the accepted digests; `verify` is the check."""

    def __init__(self, digests: Iterable[str]) -> None:
        self.digests = tuple(d.strip().lower() for d in digests if d.strip())

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> TokenVerifier:
        digests = list(settings.token_hashes)
        if settings.dev_token is not None and settings.dev_token.get_secret_value():
            digests.append(token_digest(settings.dev_token.get_secret_value()))
        return cls(digests)

    def verify(self, token: str) -> bool:
        presented = token_digest(token)
        matched = False
        for digest in self.digests:
            matched |= hmac.compare_digest(presented, digest)
        return matched


def require_token(verifier: TokenVerifier) -> Callable[..., Awaitable[None]]:
    """A FastAPI dependency answering 401 (``WWW-Authenticate: Bearer``) unless authorised.

    ``async`` although it never awaits: it does not block, and FastAPI would run a plain ``def``
    dependency in its threadpool (a thread hop on every request)."""

    async def dependency(
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),  # noqa: B008
    ) -> None:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise ApiProblem(
                401,
                "unauthorized",
                "Unauthorized",
                "send an API token as 'Authorization: Bearer <token>'",
                {"WWW-Authenticate": 'Bearer realm="journeylens"'},
            )
        if not verifier.verify(credentials.credentials):
            raise ApiProblem(
                401,
                "invalid-token",
                "Unauthorized",
                "the bearer token is not accepted",
                {"WWW-Authenticate": 'Bearer realm="journeylens", error="invalid_token"'},
            )

    return dependency
