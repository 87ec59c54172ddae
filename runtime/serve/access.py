"""Who may reach the server: loopback without a token, any other address only with one.

A face stream is personal data. Bound to a loopback address, only this machine can
connect (an SSH tunnel brings a remote browser here); the Host header must then name a
loopback host too, so that a web page whose DNS name was re-pointed at 127.0.0.1 cannot
read the stream from the user's browser. Bound to any other address, a token is required:
a random one (`secrets.token_urlsafe`, printed once as a URL) or one read from a file. It
is compared in constant time on every route and is never logged.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from hemiface.runtime.errors import HemifaceError

TOKEN_BYTES = 24  # 32 URL-safe characters
MIN_TOKEN_CHARS = 16
MAX_TOKEN_FILE_BYTES = 4096
LOOPBACK_NAMES = ("localhost",)
TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and "localhost"; False for 0.0.0.0, :: and the rest."""
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def read_token_file(path: Path) -> str:
    """The token in `path` (surrounding whitespace ignored); a bad file is one line."""
    try:
        if path.stat().st_size > MAX_TOKEN_FILE_BYTES:
            raise HemifaceError(f"{path}: --token-file is larger than {MAX_TOKEN_FILE_BYTES} bytes")
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise HemifaceError(f"{path}: cannot read the token file ({exc})") from None
    if len(token) < MIN_TOKEN_CHARS or not set(token) <= TOKEN_CHARS:
        raise HemifaceError(
            f"{path}: the token must be at least {MIN_TOKEN_CHARS} characters of "
            "A-Z a-z 0-9 - _ . ~ (it travels in URLs)"
        )
    return token


@dataclass(frozen=True)
class AccessPolicy:
    """Where the server listens and the token every request must carry (None: none)."""

    host: str
    token: str | None = None

    def __post_init__(self) -> None:
        if self.token is None and not is_loopback(self.host):
            raise HemifaceError(
                f"--host {self.host} is reachable from other machines: add --token (a random "
                "one is printed) or --token-file FILE, or keep the default 127.0.0.1 and use "
                "an SSH tunnel"
            )

    @classmethod
    def make(cls, host: str, random_token: bool, token_file: Path | None) -> AccessPolicy:
        """The policy the command line asks for; a random token when `random_token`."""
        if random_token and token_file is not None:
            raise HemifaceError("give --token or --token-file, not both")
        token = None
        if token_file is not None:
            token = read_token_file(token_file)
        elif random_token:
            token = secrets.token_urlsafe(TOKEN_BYTES)
        return cls(host, token)

    def refusal(self, path: str, bearer: str | None, host_header: str | None) -> int:
        """0 when the request may go on, else its HTTP status: 401 without a token, 403
        with a wrong one (or, with no token needed, a Host header that is not loopback).
        The token comes from `Authorization: Bearer` or the `token` query parameter."""
        if self.token is None:
            ok = host_header is not None and is_loopback(_host_name(host_header))
            return 0 if ok else 403
        given = bearer if bearer is not None else query_token(path)
        if given is None:
            return 401
        same = hmac.compare_digest(given.encode("utf-8"), self.token.encode("utf-8"))
        return 0 if same else 403


def query_token(path: str) -> str | None:
    """The `token` query parameter of a request path, if there is exactly one."""
    values = parse_qs(urlsplit(path).query).get("token", [])
    return values[0] if len(values) == 1 else None


def bearer_token(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _host_name(host_header: str) -> str:
    """The host of a Host header: "127.0.0.1:8080" -> 127.0.0.1, "[::1]:80" -> ::1."""
    value = host_header.strip()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    return value.rpartition(":")[0] if value.count(":") == 1 else value
