"""The console logs users in through the Admin API over loopback, so the Admin API would see
every browser as 127.0.0.1: one throttle for all of them, and an audit log that says nothing of
where a login came from. The console names the browser's address in a header sealed with a key
derived from `admin_secret`; the Admin API believes the header only when the seal is right.
"""

from __future__ import annotations

import hashlib
import hmac

from nebulaio.util.purposekeys import CLIENT_ADDRESS, derive

HEADER = "X-NebulaIO-Client-Address"


def seal(admin_secret: str, address: str) -> str:
    """The header's value naming `address`."""
    key = derive(admin_secret, CLIENT_ADDRESS)
    return f"{address} {hmac.new(key, address.encode(), hashlib.sha256).hexdigest()}"


def opened(admin_secrets: list[str], value: str | None) -> str | None:
    """The address a sealed header names, or None when it is missing or not sealed with one of
    these secrets (the console seals with the current one; a rotation accepts the earlier ones)."""
    address = (value or "").rpartition(" ")[0]
    if not address or not any(hmac.compare_digest(seal(secret, address), value) for secret in admin_secrets):
        return None
    return address
