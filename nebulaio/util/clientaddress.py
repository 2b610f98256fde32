"""Where a request came from, for `aws:SourceIp`, the access and audit logs and the login throttle.

Behind a reverse proxy every request arrives from the proxy's address. A proxy named in
`trusted_proxies` is believed when it says whom it forwards for (`X-Forwarded-For`, else
`X-Real-IP`); anyone else's headers are ignored, since any client can send them.

The console logs users in through the Admin API over loopback, so the Admin API would see
every browser as 127.0.0.1: one throttle for all of them, and an audit log that says nothing of
where a login came from. The console names the browser's address in a header sealed with a key
derived from `admin_secret`; the Admin API believes the header only when the seal is right.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

from nebulaio.util.purposekeys import CLIENT_ADDRESS, derive

HEADER = "X-NebulaIO-Client-Address"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class TrustedProxies:
    """The `trusted_proxies` setting: addresses and networks whose forwarding headers are believed."""

    __slots__ = ("networks",)

    def __init__(self, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]):
        self.networks = networks

    @classmethod
    def parse(cls, setting: str) -> TrustedProxies:
        """Comma- or space-separated addresses and CIDRs; ValueError names the first bad one."""
        networks = []
        for item in setting.replace(",", " ").split():
            try:
                network = ipaddress.ip_network(item)
            except ValueError as exc:
                raise ValueError(
                    f"trusted_proxies: {item!r} is not an IPv4 or IPv6 address or CIDR network ({exc})"
                ) from None
            networks.append(network)
        return cls(tuple(networks))

    def trusts(self, address: Address) -> bool:
        return any(address in network for network in self.networks)

    def forwarded_https(self, environ: dict) -> bool:
        """Whether a trusted proxy says the client reached it over TLS (X-Forwarded-Proto: https)."""
        if not self.networks or environ.get("HTTP_X_FORWARDED_PROTO") != "https":
            return False
        address = parse_address(environ.get("REMOTE_ADDR") or "")
        return address is not None and self.trusts(address)

    def client_address(self, environ: dict) -> str:
        """The request's client: its peer, unless the peer is a trusted proxy that names another.

        X-Forwarded-For is walked from the right (the hop the peer added) past every trusted
        proxy, as nginx's `real_ip_recursive on` does: the first address not trusted is the
        client; when every hop is trusted, the leftmost. A hop that is not an address ends the
        walk at the last good one, since whatever lies left of it came from no trusted hand.
        """
        peer = environ.get("REMOTE_ADDR") or ""
        if not self.networks:
            return peer
        address = parse_address(peer)
        if address is None or not self.trusts(address):
            return peer
        forwarded = environ.get("HTTP_X_FORWARDED_FOR")
        if forwarded is None:
            real = parse_address(environ.get("HTTP_X_REAL_IP") or "")
            return peer if real is None else str(real)
        client = address
        for hop in reversed(forwarded.split(",")):
            if not hop.strip():
                continue
            hop_address = parse_address(hop)
            if hop_address is None:
                break
            client = hop_address
            if not self.trusts(client):
                break
        return peer if client == address else str(client)


def parse_address(text: str) -> Address | None:
    """An address as proxies write it (`192.0.2.1`, `192.0.2.1:5678`, `2001:db8::1`,
    `[2001:db8::1]:5678`), IPv4-mapped IPv6 as IPv4; None for anything else."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return getattr(address, "ipv4_mapped", None) or address


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
