"""The studio's guards, as pure functions: the session token, the Host header and the served paths.

A local server is reachable from every page the user's browser opens, so every request must carry the
session's token (a query parameter once, then a cookie, or an ``Authorization: token …`` header, as
Jupyter does), name the server itself in its Host header (a DNS-rebinding page names its own host),
and may read files only under the folders the session allows (symlinks resolved first).
"""

from __future__ import annotations

import hmac
import socket
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

COOKIE = "luckystack_studio_token"


def new_token() -> str:
    """A fresh random session token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def token_matches(given: str | None, token: str) -> bool:
    """Whether ``given`` is the session token, compared in constant time."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def request_token(query: Mapping[str, str], headers: Mapping[str, str], cookies: Mapping[str, str]) -> str | None:
    """The token a request carries: ``?token=``, ``Authorization: token …`` or the session cookie."""
    if "token" in query:
        return query["token"]
    auth = headers.get("authorization", "")
    if auth.lower().startswith("token "):
        return auth[6:].strip()
    return cookies.get(COOKIE)


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def allowed_hosts(host: str, port: int) -> set[str]:
    """The Host header values that name this server, with the port: its own address, ``localhost`` and
    127.0.0.1 when it listens on the loopback; for a wildcard address (0.0.0.0, ::) also this computer's
    name and addresses. A rebinding page's host name is never among them."""
    names = {host}
    if host in LOOPBACK or host in ("0.0.0.0", "::"):
        names |= set(LOOPBACK)
    if host in ("0.0.0.0", "::"):
        names.discard(host)
        me = socket.gethostname()
        names |= {me, socket.getfqdn()}
        try:
            names |= {info[4][0] for info in socket.getaddrinfo(me, None)}
        except OSError:
            pass
    return {(f"[{n}]" if ":" in n else n).lower() + f":{port}" for n in names}


def host_allowed(header: str | None, allowed: Iterable[str]) -> bool:
    """Whether a request's Host header is one of ``allowed`` (a rebinding page's host is not)."""
    return header is not None and header.strip().lower() in set(allowed)


def resolve_under(path: str | Path, roots: Iterable[Path]) -> Path | None:
    """``path`` resolved (symlinks followed), if it is a file under one of ``roots``; else None."""
    try:
        real = Path(path).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not real.is_file():
        return None
    for root in roots:
        try:
            real.relative_to(Path(root).resolve())
            return real
        except (ValueError, OSError):
            continue
    return None
