"""Secret placeholders and the stream swapper (pure)."""

from __future__ import annotations

import pytest

from nullspace.egress.secrets import SecretError, SecretSet, StreamSwapper, make_secrets

VALUE = "sk-0123456789abcdefghij"


def test_placeholders_are_random_and_as_long_as_the_value() -> None:
    a = make_secrets({"K": (VALUE, ["api.example.com"])})["K"]
    b = make_secrets({"K": (VALUE, ["api.example.com"])})["K"]
    assert len(a.placeholder) == len(VALUE.encode()) and a.placeholder != b.placeholder
    assert VALUE not in repr(a) and a.placeholder.isalnum()


@pytest.mark.parametrize(("value", "hosts"), [("short", ["a.com"]), (VALUE, []), ("x" * 20 + "\n", ["a.com"]),
                                              (VALUE, ["10.0.0.1"])])
def test_unusable_secrets(value: str, hosts: list[str]) -> None:
    with pytest.raises(ValueError):
        make_secrets({"K": (value, hosts)})


def test_outbound_only_to_listed_hosts_over_tls() -> None:
    secrets = SecretSet(make_secrets({"K": (VALUE, ["*.example.com"]), "L": (VALUE + "x", ["other.org"])}))
    swaps, forbidden = secrets.outbound("api.example.com", tls=True)
    assert [v for _, v in swaps] == [VALUE.encode()] and [s.name for s in forbidden] == ["L"]
    swaps, forbidden = secrets.outbound("api.example.com", tls=False)
    assert swaps == [] and {s.name for s in forbidden} == {"K", "L"}
    assert [p for _, p in secrets.inbound("api.example.com")] == [secrets.items["K"].placeholder]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 10_000])
def test_stream_swapper_across_chunk_boundaries(size: int) -> None:
    secret = make_secrets({"K": (VALUE, ["a.com"])})["K"]
    data = b"head " + secret.placeholder + b" middle " + secret.placeholder + b" tail"
    swapper = StreamSwapper([(secret.placeholder, secret.value)])
    out = b""
    for i in range(0, len(data), size):
        chunk, _ = swapper.feed(data[i:i + size])
        out += chunk
    out += swapper.flush()
    assert out == data.replace(secret.placeholder, secret.value) and len(out) == len(data)


def test_stream_swapper_reports_forbidden_placeholders_split_in_two() -> None:
    secret = make_secrets({"K": (VALUE, ["a.com"])})["K"]
    swapper = StreamSwapper([], [secret])
    half = len(secret.placeholder) // 2
    assert swapper.feed(b"x" * 100 + secret.placeholder[:half])[1] == []
    assert swapper.feed(secret.placeholder[half:])[1] == [secret]


def test_too_many_secrets() -> None:
    with pytest.raises(SecretError):
        make_secrets({f"K{i}": (VALUE, ["a.com"]) for i in range(65)})
