"""Trusted proxies (addresses and CIDR ranges, refused when malformed) and the client address
read through them."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from starlette.requests import HTTPConnection

from subgraphs.kernel.proxies import InvalidTrustedProxies, client_ip, parse_trusted_proxies
from subgraphs.kernel.settings import Settings


def connection(peer: str | None, *forwarded_for: str) -> HTTPConnection:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": "/graphql",
        "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded_for],
        "client": (peer, 51234) if peer is not None else None,
    }
    return HTTPConnection(scope)


PROXIES = parse_trusted_proxies("127.0.0.1,10.0.0.2,::1")


def test_client_ip_is_the_peer_when_no_header_is_sent() -> None:
    assert client_ip(connection("203.0.113.9"), PROXIES) == "203.0.113.9"
    assert client_ip(connection("127.0.0.1"), PROXIES) == "127.0.0.1"


def test_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    assert client_ip(connection("203.0.113.9", "198.51.100.1"), PROXIES) == "203.0.113.9"


def test_forwarded_for_from_a_trusted_proxy_gives_the_client() -> None:
    assert client_ip(connection("127.0.0.1", "198.51.100.1"), PROXIES) == "198.51.100.1"
    assert client_ip(connection("::1", "2001:db8::7"), PROXIES) == "2001:db8::7"


def test_the_nearest_untrusted_hop_wins_over_spoofed_leftmost_entries() -> None:
    # The client wrote '6.6.6.6' itself; its proxy appended the real address, then our
    # second proxy appended the first one's.
    conn = connection("127.0.0.1", "6.6.6.6, 198.51.100.1, 10.0.0.2")

    assert client_ip(conn, PROXIES) == "198.51.100.1"


def test_forwarded_for_with_only_trusted_hops_gives_the_leftmost() -> None:
    assert client_ip(connection("127.0.0.1", "10.0.0.2, 127.0.0.1"), PROXIES) == "10.0.0.2"


def test_an_empty_forwarded_for_falls_back_to_the_peer() -> None:
    assert client_ip(connection("127.0.0.1", " , "), PROXIES) == "127.0.0.1"


def test_no_peer_address_is_unknown() -> None:
    assert client_ip(connection(None), PROXIES) == "unknown"


def test_no_trusted_proxies_means_the_peer_always() -> None:
    assert (
        client_ip(connection("127.0.0.1", "198.51.100.1"), parse_trusted_proxies("")) == "127.0.0.1"
    )


def test_a_spoofed_header_line_before_the_proxys_own_line_is_not_believed() -> None:
    # Some proxies (HAProxy's `option forwardfor`, for one) add their own X-Forwarded-For
    # line instead of appending to the client's; both lines form one list (RFC 9110 5.3).
    conn = connection("127.0.0.1", "6.6.6.6", "198.51.100.1")

    assert client_ip(conn, PROXIES) == "198.51.100.1"


# CIDR ranges


def test_ranges_and_single_addresses_are_both_trusted() -> None:
    proxies = parse_trusted_proxies(" 127.0.0.1 , ::1,10.0.0.0/8, 172.16.0.0/12,fd00::/8 ,")

    for trusted in ("127.0.0.1", "::1", "10.0.0.1", "10.255.3.4", "172.31.255.254", "fd12::5"):
        assert trusted in proxies, trusted
    for untrusted in (
        "127.0.0.2",
        "11.0.0.1",
        "172.32.0.1",
        "192.168.1.1",
        "fe80::1",
        "2001:db8::1",
    ):
        assert untrusted not in proxies, untrusted


def test_addresses_are_compared_as_addresses_not_text() -> None:
    proxies = parse_trusted_proxies("::1,10.0.0.0/8")

    assert "0:0:0:0:0:0:0:1" in proxies
    # A dual-stack socket reports IPv4 peers as IPv4-mapped IPv6 addresses.
    assert "::ffff:10.1.2.3" in proxies
    assert "::ffff:11.1.2.3" not in proxies


def test_what_is_not_an_address_is_never_trusted() -> None:
    proxies = parse_trusted_proxies("0.0.0.0/0,::/0")

    assert "203.0.113.9" in proxies
    for junk in ("unknown", "", "router", "10.0.0.1:443", "10.0.0.0/8"):
        assert junk not in proxies, junk
    assert None not in proxies


def test_an_empty_setting_trusts_nobody() -> None:
    assert "127.0.0.1" not in parse_trusted_proxies("")
    assert "127.0.0.1" not in parse_trusted_proxies(" , ")


def test_a_chain_of_proxies_in_a_trusted_range_is_walked_to_the_client() -> None:
    proxies = parse_trusted_proxies("127.0.0.1,10.0.0.0/8")
    conn = connection("10.0.3.7", "6.6.6.6, 198.51.100.1, 10.0.9.9, 10.0.0.5")

    assert client_ip(conn, proxies) == "198.51.100.1"
    # A client inside the trusted range, reported by the proxy, is still that client.
    assert client_ip(connection("10.0.3.7", "10.20.0.1"), proxies) == "10.20.0.1"
    # Outside the range, the header is not believed.
    assert client_ip(connection("11.0.0.1", "198.51.100.1"), proxies) == "11.0.0.1"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("127.0.0.1,router", "'router' is neither an IP address nor a CIDR range"),
        ("10.0.0.0/33", "'10.0.0.0/33' has an invalid prefix length '33'"),
        ("::1/129", "'::1/129' has an invalid prefix length '129'"),
        ("10.0.0.0/eight", "'10.0.0.0/eight' has an invalid prefix length 'eight'"),
        ("10.0.0.1/8", "'10.0.0.1/8' has bits set past its prefix length; the range is 10.0.0.0/8"),
        ("10.0.0", "'10.0.0' is neither an IP address nor a CIDR range"),
        ("127.0.0.1;10.0.0.1", "'127.0.0.1;10.0.0.1' is neither an IP address nor a CIDR range"),
        ("*", "'*' is neither an IP address nor a CIDR range"),
    ],
)
def test_a_bad_entry_is_refused_naming_the_setting_and_the_entry(
    setting: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InvalidTrustedProxies) as raised:
        parse_trusted_proxies(setting)
    assert str(raised.value).startswith(f"REELGRAPH_TRUSTED_PROXIES: {message}")

    # A process refuses to start on it: building its settings fails.
    monkeypatch.setenv("REELGRAPH_TRUSTED_PROXIES", setting)
    with pytest.raises(ValidationError) as invalid:
        Settings()
    (error,) = invalid.value.errors()
    assert error["loc"] == ("trusted_proxies",)
    assert message in error["msg"]


def test_settings_give_the_parsed_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELGRAPH_TRUSTED_PROXIES", "127.0.0.1, 192.168.0.0/16")

    proxies = Settings().trusted_proxy_set()

    assert "192.168.44.2" in proxies and "127.0.0.1" in proxies
    assert "::1" not in proxies
