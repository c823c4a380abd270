"""Which URLs count as the registry itself: credentials and uploads go nowhere else."""

from __future__ import annotations

import pytest

from sealer.distribution.client import _origin


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://reg.example.com/v2/", "https://reg.example.com:443/v2/x/blobs/uploads/1"),
        ("http://10.0.0.1/v2/", "http://10.0.0.1:80/up"),
        ("https://REG.example.com:5000/v2/", "https://reg.example.com:5000/up"),
        ("http://[::1]:5000/v2/", "http://[::1]:5000/up"),
    ],
)
def test_the_same_registry_spelled_differently_is_one_origin(a: str, b: str) -> None:
    assert _origin(a) == _origin(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://reg.example.com/v2/", "https://other.example.com/up"),
        ("https://reg.example.com/v2/", "https://reg.example.com:5000/up"),
        ("https://reg.example.com/v2/", "http://reg.example.com/up"),  # 443 is not 80
        ("http://127.0.0.1:5000/v2/", "http://127.0.0.1:5001/up"),
        ("http://127.0.0.1:5000/v2/", "http://127.0.0.1:notaport/up"),
    ],
)
def test_another_host_or_port_is_another_origin(a: str, b: str) -> None:
    assert _origin(a) != _origin(b)
