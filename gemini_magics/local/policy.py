"""What the local stand-ins may do on the user's machine: run code, and which hosts they may fetch.

The data a prompt carries is untrusted (reviews, scraped pages, other people's documents), so both are
closed by default: code execution is off until the user turns it on, and only hosts the user names are
fetched. A host on loopback or a private network is fetched only when it is named itself (an address,
a network, or the exact name): ``*`` and ``*.example.com`` admit public hosts only, so a public name
that resolves to 127.0.0.1 (DNS rebinding) is refused.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Policy", "fetch_refusal", "MAX_URLS_PER_REQUEST"]

MAX_URLS_PER_REQUEST = 20
"""URLs one request may have fetched (the API's url_context takes up to 20)."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Policy:
    code_execution: bool = False
    """Run the model's ``code_execution`` calls on this machine (in a limited, isolated process)."""
    fetch_hosts: frozenset[str] = field(default_factory=frozenset)
    """Hosts ``url_context`` and agents may fetch: names, ``*.suffix``, ``*`` (public hosts), addresses
    or networks (``127.0.0.1``, ``10.0.0.0/8``)."""

    def to_dict(self) -> dict[str, Any]:
        return {"code_execution": self.code_execution, "fetch_hosts": sorted(self.fetch_hosts)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Policy:
        return cls(bool(data.get("code_execution", False)),
                   frozenset(str(h).strip().lower() for h in data.get("fetch_hosts", ()) if str(h).strip()))  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> Policy:
        try:
            data = json.loads(text or "{}")
        except ValueError:
            return cls()
        return cls.from_dict(data) if isinstance(data, dict) else cls()


def _addresses(host: str) -> list[IPAddress] | None:
    """The addresses ``host`` is (an IP literal) or resolves to; None when it does not resolve."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return None
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def _named(entry: str, host: str, addresses: list[IPAddress]) -> bool:
    """``entry`` names this very host: its exact name, one of its addresses, or a network holding them."""
    if entry == host:
        return True
    try:
        network = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
    return bool(addresses) and all(address in network for address in addresses)


def _wildcard(entry: str, host: str) -> bool:
    return entry == "*" or (entry.startswith("*.") and host.endswith(entry[1:]))


def fetch_refusal(url: str, policy: Policy) -> str | None:
    """Why ``url`` may not be fetched under ``policy`` (one line), or None when it may."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"not fetched: only http and https URLs are fetched, not {parts.scheme or 'this'}"
    host = (parts.hostname or "").lower()
    if not host:
        return "not fetched: the URL has no host"
    addresses = _addresses(host)
    if addresses is None:
        return f"not fetched: {host} does not resolve"
    if any(_named(entry, host, addresses) for entry in policy.fetch_hosts):
        return None
    if any(_wildcard(entry, host) for entry in policy.fetch_hosts):
        if all(address.is_global for address in addresses):
            return None
        return (f"not fetched: {host} is on this machine or a private network; name it in the allowed hosts "
                "to fetch it")  # fmt: skip
    return f"not fetched: host not allowed ({host}; allow it with InteractMagics.local_fetch_hosts)"
