"""The SSRF guard: which addresses a delivery may go to, and what a refusal does to the delivery."""

from __future__ import annotations

import re
import socket

import pytest

from worker.egress import Egress, internal, parse_allowlist
from worker.errors import ConfigError, DeliveryError
from worker.settings import load_settings


def resolving(*addresses: str) -> Egress:
    return Egress(resolve=lambda host, port: list(addresses))


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
    "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "224.0.0.1",
])
def test_private_loopback_and_link_local_addresses_are_refused_by_default(address: str) -> None:
    with pytest.raises(DeliveryError, match="private, loopback or link-local") as caught:
        resolving(address).check("https://hooks.example.com/x")
    assert caught.value.permanent
    assert "APOLOGY_ALLOW_PRIVATE_TARGETS" in str(caught.value)


def test_a_public_address_is_allowed() -> None:
    resolving("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946").check("https://hooks.example.com/x")
    assert not internal(__import__("ipaddress").ip_address("8.8.8.8"))


def test_one_private_address_among_public_ones_is_enough_to_refuse() -> None:
    with pytest.raises(DeliveryError, match=re.escape("10.0.0.5")):
        resolving("93.184.216.34", "10.0.0.5").check("https://hooks.example.com/x")


def test_ip_literals_are_checked_through_the_real_resolver_too() -> None:
    with pytest.raises(DeliveryError, match=re.escape("169.254.169.254")):
        Egress().check("http://169.254.169.254/latest/meta-data/")
    with pytest.raises(DeliveryError, match=re.escape("127.0.0.1")):
        Egress().check("http://127.0.0.1:6379/")


def test_allowing_private_targets_or_listing_them_lets_them_through() -> None:
    Egress(allow_private=True, resolve=lambda h, p: ["127.0.0.1"]).check("http://127.0.0.1:8080/hook")
    listed = Egress.from_settings(False, "10.0.0.0/8, hooks.internal",
                                  resolve=lambda h, p: ["10.2.3.4"])
    listed.check("http://hooks.internal/x")  # by name
    listed.check("http://other.internal/x")  # by network


def test_a_non_empty_allow_list_limits_every_target_to_it() -> None:
    guard = Egress.from_settings(False, "*.example.com", resolve=lambda h, p: ["93.184.216.34"])
    guard.check("https://hooks.example.com/x")
    with pytest.raises(DeliveryError, match="not on APOLOGY_TARGET_ALLOWLIST") as caught:
        guard.check("https://evil.test/x")
    assert caught.value.permanent


def test_a_host_that_does_not_resolve_is_retried_not_refused() -> None:
    def fail(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(DeliveryError, match="cannot resolve") as caught:
        Egress(resolve=fail).check("https://hooks.example.com/x")
    assert not caught.value.permanent


@pytest.mark.parametrize("url", ["ftp://hooks.example.com/x", "https:///nohost", "http://h:99999999/"])
def test_urls_without_an_http_host_are_refused(url: str) -> None:
    with pytest.raises(DeliveryError) as caught:
        resolving("93.184.216.34").check(url)
    assert caught.value.permanent


def test_the_allow_list_is_validated_at_start() -> None:
    hosts, networks = parse_allowlist("a.example.com,*.b.example.com, 192.168.0.0/16 ,::1")
    assert hosts == {"a.example.com", "*.b.example.com"} and len(networks) == 2
    with pytest.raises(ConfigError, match="APOLOGY_TARGET_ALLOWLIST"):
        parse_allowlist("http://x/")
    with pytest.raises(ConfigError, match="APOLOGY_TARGET_ALLOWLIST"):
        load_settings(target_allowlist="not a host!")
    assert load_settings(allow_private_targets=True).allow_private_targets
