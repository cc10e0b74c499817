"""Which address the allowed-client-IP check sees, and the check itself."""

from __future__ import annotations

import pytest

from workbay.manager.api.middleware import DEFAULT_TRUSTED_PROXIES, _networks, client_ip, ip_allowed

TRUSTED = _networks(DEFAULT_TRUSTED_PROXIES)


@pytest.mark.parametrize("peer, xff, expected", [
    ("203.0.113.5", None, "203.0.113.5"),
    ("203.0.113.5", "10.0.0.1", "203.0.113.5"),                 # untrusted peer: header ignored
    ("127.0.0.1", "198.51.100.7", "198.51.100.7"),              # the webserver on loopback
    ("127.0.0.1", "10.9.9.9, 198.51.100.7", "198.51.100.7"),    # right-most untrusted hop
    ("127.0.0.1", "198.51.100.7, 127.0.0.2", "198.51.100.7"),   # skip trusted hops
    ("::1", "2001:db8::5", "2001:db8::5"),
    ("127.0.0.1", "garbage", "garbage"),
    ("127.0.0.1", "", "127.0.0.1"),
    ("127.0.0.1", " , ", "127.0.0.1"),
    (None, "198.51.100.7", None),
])
def test_client_ip(peer, xff, expected):
    assert client_ip(peer, xff, TRUSTED) == expected


@pytest.mark.parametrize("ip, allowed, ok", [
    ("10.1.2.3", None, True), ("10.1.2.3", [], True),
    ("10.1.2.3", ["10.0.0.0/8"], True), ("10.1.2.3", ["10.1.2.3"], True),
    ("10.1.2.4", ["10.1.2.3/32"], False), ("192.168.0.1", ["10.0.0.0/8", "192.168.0.0/16"], True),
    ("2001:db8::1", ["2001:db8::/32"], True), ("2001:db9::1", ["2001:db8::/32"], False),
    ("garbage", ["10.0.0.0/8"], False), (None, ["10.0.0.0/8"], False),
    ("10.1.2.3", ["not-a-network", "10.0.0.0/8"], True),
])
def test_ip_allowed(ip, allowed, ok):
    assert ip_allowed(ip, allowed) is ok
