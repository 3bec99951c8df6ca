"""Allow-list rules, policies and the operator ceiling (pure)."""

from __future__ import annotations

import ipaddress

import pytest

from nullspace.egress.addresses import forbidden_reason, parse_networks
from nullspace.egress.rules import NetworkPolicy, Rule, RuleError, check_ceiling, host_port


def test_rule_parsing() -> None:
    assert Rule.parse("PyPI.org.") == Rule("pypi.org", False, (80, 443))
    assert Rule.parse("*.example.com:443,8443") == Rule("example.com", True, (443, 8443))
    assert str(Rule.parse("*.example.com:8443")) == "*.example.com:8443"
    assert str(Rule.parse("example.com:443,80")) == "example.com"


@pytest.mark.parametrize("bad", ["", "10.0.0.1", "[::1]:443", "localhost", "a..b", "-a.com", "x.com:0",
                                 "x.com:99999", "x.com:http", "*.*.com", "a.com/path", "ex ample.com"])
def test_bad_rules_are_refused(bad: str) -> None:
    with pytest.raises(RuleError):
        Rule.parse(bad)


def test_matching() -> None:
    policy = NetworkPolicy.parse(None, ["pypi.org", "*.githubusercontent.com", "api.x.com:8443"])
    assert policy.mode == "allow"
    assert policy.permits("pypi.org", 443) and policy.permits("pypi.org", 80)
    assert not policy.permits("pypi.org", 22) and policy.name_listed("pypi.org")
    assert not policy.permits("evilpypi.org", 443) and not policy.permits("pypi.org.evil.com", 443)
    assert policy.permits("raw.githubusercontent.com", 443) and policy.permits("a.b.githubusercontent.com", 443)
    assert not policy.permits("githubusercontent.com", 443)  # a wildcard is for names under it
    assert policy.permits("api.x.com", 8443) and not policy.permits("api.x.com", 443)
    assert not NetworkPolicy().permits("pypi.org", 443)
    assert NetworkPolicy.parse("open", None).permits("anything.example", 5432)


def test_policy_modes() -> None:
    assert NetworkPolicy.parse(None, None).mode == "none"
    with pytest.raises(RuleError):
        NetworkPolicy.parse("open", ["pypi.org"])
    with pytest.raises(RuleError):
        NetworkPolicy.parse("everything", None)
    with pytest.raises(RuleError):
        NetworkPolicy.parse("allow", [f"h{i}.com" for i in range(300)])


def test_ceiling() -> None:
    ceiling = [Rule.parse(r) for r in ("*.pypi.org", "files.pythonhosted.org", "*.example.com:443")]
    check_ceiling(NetworkPolicy.parse(None, ["x.pypi.org", "*.a.pypi.org", "files.pythonhosted.org:443"]), ceiling, False)
    for outside in (["pypi.org"], ["*.other.org"], ["a.example.com:80"], ["evil.com"]):
        with pytest.raises(RuleError, match="outside what this server permits"):
            check_ceiling(NetworkPolicy.parse(None, outside), ceiling, False)
    check_ceiling(NetworkPolicy.parse(None, ["anything.com"]), None, False)  # no ceiling: any name
    with pytest.raises(RuleError, match="does not permit open internet"):
        check_ceiling(NetworkPolicy.parse("open", None), None, False)
    check_ceiling(NetworkPolicy.parse("open", None), None, True)


def test_host_port() -> None:
    assert host_port("Example.com:443") == ("example.com", 443)
    assert host_port("example.com", 80) == ("example.com", 80)
    assert host_port("[2001:db8::1]:443") == ("2001:db8::1", 443)
    for bad in ("example.com", "example.com:x", "example.com:70000", "[::1"):
        with pytest.raises(ValueError):
            host_port(bad)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"), ("::1", "loopback"), ("0.0.0.0", "loopback"),
        ("169.254.169.254", "metadata"), ("169.254.1.1", "link-local"), ("fe80::1", "link-local"),
        ("10.1.2.3", "private"), ("192.168.0.1", "private"), ("172.16.0.1", "private"),
        ("100.64.0.1", "private"), ("fd00::1", "private"), ("::ffff:10.0.0.1", "private"),
        ("::ffff:127.0.0.1", "loopback"), ("224.0.0.1", "multicast"), ("198.18.0.5", "private"),
    ],
)
def test_non_public_addresses_are_refused(address: str, reason: str) -> None:
    found = forbidden_reason(ipaddress.ip_address(address))
    assert found is not None and reason in found


def test_public_and_operator_allowed_addresses() -> None:
    assert forbidden_reason(ipaddress.ip_address("93.184.216.34")) is None
    assert forbidden_reason(ipaddress.ip_address("198.18.0.5"), parse_networks(["198.18.0.0/24"])) is None
    # the operator's exception never covers loopback or metadata
    assert forbidden_reason(ipaddress.ip_address("127.0.0.1"), parse_networks(["127.0.0.0/8"])) is not None
    assert forbidden_reason(ipaddress.ip_address("169.254.169.254"), parse_networks(["169.254.0.0/16"])) is not None

