"""Hostile and broken registry answers, made by a proxy in front of a real docker-registry:
temporary failures are retried, anything that does not hold up is refused with one line, and
a refused pull leaves the store as it was (no image, no blob, nothing in tmp/)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.faultproxy import Answer, FaultProxy, Rule
from tests.helpers import Registry, Sealer
from tests.reliability.conftest import SMALL, store_state

REPO = "hostile/app"


@pytest.fixture(scope="module")
def pushed(small_store: Sealer, registry: Registry) -> str:
    """SMALL pushed straight to the real registry; tests pull it through the proxy."""
    target = f"{registry.address}/{REPO}:v1"
    small_store.run("tag", SMALL, target)
    small_store.run("push", target)
    return target


@pytest.fixture(scope="module")
def proxy(registry: Registry, pushed: str) -> Iterator[FaultProxy]:
    p = FaultProxy(registry.address)
    yield p
    p.close()


@pytest.fixture(scope="module")
def other() -> Iterator[FaultProxy]:
    """Another host a hostile registry points to; it answers only what a rule says."""
    p = FaultProxy("127.0.0.1:9")  # never forwards: every test gives it a rule
    yield p
    p.close()


def blob_get(answer: Callable[[int], Answer | None]) -> Rule:
    return lambda method, path, n: answer(n) if method == "GET" and "/blobs/sha256:" in path else None


def manifest_get(answer: Callable[[int, str], Answer | None]) -> Rule:
    return lambda method, path, n: answer(n, path) if method == "GET" and "/manifests/" in path else None


def flip(data: bytes) -> bytes:
    return bytes([data[0] ^ 1]) + data[1:] if data else data


INDEX = "application/vnd.oci.image.index.v1+json"
INDEX_OF_INDEX = json.dumps({
    "schemaVersion": 2, "mediaType": INDEX,
    "manifests": [{"mediaType": INDEX, "digest": "sha256:" + "1" * 64, "size": 10,
                   "platform": {"architecture": "amd64", "os": "linux"}}],
}).encode()  # fmt: skip
EVIL_TYPE = b'{"mediaType": "application/x-evil", "schemaVersion": 2}'


def json_answer(body: bytes, media_type: str) -> Answer:
    return Answer(status=200, body=body, headers={"Content-Type": media_type})


def redirect_blobs_to(other: FaultProxy) -> Rule:
    def rule(method: str, path: str, n: int) -> Answer | None:
        if method == "GET" and "/blobs/sha256:" in path:
            return Answer(status=307, headers={"Location": f"http://{other.address}{path}"})
        return None

    return rule


def on(method: str, part: str, answer: Answer, first_only: bool = True) -> Rule:
    return lambda m, p, n: answer if m == method and part in p and (n == 0 or not first_only) else None


# ---- pull: retried, then it works ----------------------------------------------------------

RETRIED: dict[str, Rule] = {
    "blob 500 then 200": blob_get(lambda n: Answer(status=500) if n == 0 else None),
    "blob 503 twice then 200": blob_get(lambda n: Answer(status=503) if n < 2 else None),
    "blob 429 then 200": blob_get(lambda n: Answer(status=429, headers={"Retry-After": "0"}) if n == 0 else None),
    "manifest 502 then 200": manifest_get(lambda n, p: Answer(status=502) if n == 0 else None),
    "blob stream cut short once": blob_get(lambda n: Answer(cut_after=1000) if n == 0 else None),
}


@pytest.mark.parametrize("case", list(RETRIED))
def test_pull_retries_temporary_failures(case: str, proxy: FaultProxy, sealer: Sealer, small_store: Sealer) -> None:
    proxy.reset(RETRIED[case])
    sealer.run("pull", f"{proxy.address}/{REPO}:v1")
    ids = {r["platform"]["architecture"]: r["id"] for r in sealer.images()}
    want = {r["platform"]["architecture"]: r["id"] for r in small_store.images() if r["name"] == SMALL}
    assert ids == want
    assert sealer.run("fsck").returncode == 0
    statuses = [s.status for s in proxy.seen]
    assert any(s in (500, 502, 503, 429) for s in statuses) or case.startswith("blob stream")
    if case.startswith("blob stream"):
        gets = [s.path for s in proxy.seen if s.method == "GET" and "/blobs/" in s.path]
        assert len(gets) > len(set(gets))  # the broken download was fetched again


# ---- pull: refused, the store unchanged ----------------------------------------------------

REFUSED: dict[str, tuple[Rule, str]] = {
    "blob always 500": (blob_get(lambda n: Answer(status=500)), "500"),
    "blob with a flipped byte": (blob_get(lambda n: Answer(edit=flip)), "hashes to"),
    "blob longer than its size": (blob_get(lambda n: Answer(edit=lambda d: d + b"x")), "sent more than"),
    "blob shorter than its size": (blob_get(lambda n: Answer(edit=lambda d: d[:-1])), "size is"),
    "blob stream always cut short": (blob_get(lambda n: Answer(cut_after=10)), "broke off"),
    "blob missing (404)": (blob_get(lambda n: Answer(status=404, body=b'{"errors":[]}')), "not found"),
    "redirect loop": (
        blob_get(lambda n: Answer(status=302, headers={"Location": "/v2/hostile/app/blobs/sha256:" + "0" * 64})),
        "redirects",
    ),
    "manifest not JSON": (
        manifest_get(
            lambda n, p: Answer(status=200, body=b"<html>hello</html>", headers={"Content-Type": "text/html"})
        ),
        "not JSON",
    ),
    "manifest larger than 4 MiB": (
        manifest_get(lambda n, p: json_answer(b" " * (5 << 20), INDEX)),
        "larger than",
    ),
    "platform manifest not matching its digest": (
        manifest_get(lambda n, p: Answer(edit=lambda d: d.replace(b"}", b" }", 1)) if "sha256:" in p else None),
        "hashing to",
    ),
    "index naming a missing manifest": (
        manifest_get(lambda n, p: Answer(status=404, body=b"{}") if "sha256:" in p else None),
        "not found",
    ),
    "index listing only indexes (a loop)": (
        manifest_get(lambda n, p: json_answer(INDEX_OF_INDEX, INDEX) if "sha256:" not in p else None),
        "lists no platform image manifest",
    ),
    "unknown manifest media type": (
        manifest_get(lambda n, p: json_answer(EVIL_TYPE, "application/x-evil") if "sha256:" not in p else None),
        "unsupported manifest type",
    ),
    "401 with an unknown scheme": (
        lambda m, p, n: Answer(status=401, headers={"WWW-Authenticate": 'Negotiate realm="x"'}),
        "unsupported authentication scheme",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_pull_refuses_and_keeps_the_store(case: str, proxy: FaultProxy, sealer: Sealer) -> None:
    rule, message = REFUSED[case]
    before = store_state(sealer)
    proxy.reset(rule)
    proc = sealer.run("pull", f"{proxy.address}/{REPO}:v1", check=False)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr  # one line, no traceback
    assert store_state(sealer) == before


# ---- redirects to another host ---------------------------------------------------------------


def test_blob_redirect_to_another_host_is_followed_without_credentials(
    auth_registry: Registry, small_store: Sealer, sealer: Sealer, other: FaultProxy
) -> None:
    """Registries send blob downloads to storage elsewhere: follow, verify, never send it the login."""
    auth_proxy = FaultProxy(auth_registry.address)
    try:
        target = f"{auth_proxy.address}/{REPO}:v1"
        small_store.run("tag", SMALL, target)
        small_store.run("login", auth_proxy.address, "-u", str(auth_registry.user), "-p", str(auth_registry.password))
        small_store.run("push", target)
        sealer.run("login", auth_proxy.address, "-u", str(auth_registry.user), "-p", str(auth_registry.password))

        def serve_from_store(method: str, path: str, n: int) -> Answer:
            digest = path.rsplit("/", 1)[-1]
            return Answer(status=200, body=(small_store.root / "blobs" / "sha256" / digest.split(":")[1]).read_bytes())

        other.reset(serve_from_store)
        auth_proxy.reset(redirect_blobs_to(other))
        sealer.run("pull", target)
        assert len(sealer.images()) == 2
        assert other.seen, "the blobs were not fetched from the other host"
        assert not [s for s in other.seen if "authorization" in {k.lower() for k in s.headers}]
        assert any("authorization" in {k.lower() for k in s.headers} for s in auth_proxy.seen)
    finally:
        auth_proxy.close()


def test_blob_redirect_to_another_host_with_wrong_bytes_is_refused(
    proxy: FaultProxy, other: FaultProxy, sealer: Sealer
) -> None:
    before = store_state(sealer)
    other.reset(lambda m, p, n: Answer(status=200, body=b"not the blob you are looking for"))
    proxy.reset(redirect_blobs_to(other))
    proc = sealer.run("pull", f"{proxy.address}/{REPO}:v1", check=False)
    assert proc.returncode != 0 and "sha256:" in proc.stderr
    assert store_state(sealer) == before


# ---- push -----------------------------------------------------------------------------------


@pytest.fixture
def pusher(small_store: Sealer, tmp_path: Path) -> Sealer:
    """A store of its own holding SMALL (tags made by one test do not leak into the next)."""
    s = Sealer(tmp_path / "pusher")
    archive = tmp_path / "small.tar"
    small_store.run("save", "-o", str(archive), SMALL)
    s.run("load", "-i", str(archive))
    return s


PUSH_RETRIED: dict[str, Rule] = {
    "blob HEAD 500 then answered": on("HEAD", "/blobs/", Answer(status=500)),
    "upload PUT 503 then 201": on("PUT", "/uploads/", Answer(status=503)),
    "manifest PUT 500 then 201": on("PUT", "/manifests/", Answer(status=500)),
}


@pytest.mark.parametrize("case", list(PUSH_RETRIED))
def test_push_retries_temporary_failures(case: str, proxy: FaultProxy, pusher: Sealer, registry: Registry) -> None:
    repo = "retry/" + "-".join(case.split()[:2]).lower()
    target = f"{proxy.address}/{repo}:v1"
    pusher.run("tag", SMALL, target)
    proxy.reset(PUSH_RETRIED[case])
    pusher.run("push", target)
    assert any(s.status >= 500 for s in proxy.seen)
    from tests.helpers import sh

    raw = json.loads(sh("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{registry.address}/{repo}:v1"))
    assert len(raw["manifests"]) == 2


def test_push_refuses_an_upload_location_on_another_host(proxy: FaultProxy, other: FaultProxy, pusher: Sealer) -> None:
    target = f"{proxy.address}/elsewhere/app:v1"
    pusher.run("tag", SMALL, target)
    other.reset(lambda m, p, n: Answer(status=202))
    proxy.reset(
        on("POST", "/uploads/", Answer(status=202, headers={"Location": f"http://{other.address}/up/1"}), False)
    )
    proc = pusher.run("push", target, check=False)
    assert proc.returncode != 0 and "another host" in proc.stderr
    assert other.seen == []


def test_push_fails_clearly_when_the_registry_keeps_failing(proxy: FaultProxy, pusher: Sealer) -> None:
    target = f"{proxy.address}/broken/app:v1"
    pusher.run("tag", SMALL, target)
    proxy.reset(on("PUT", "/manifests/", Answer(status=500), first_only=False))
    proc = pusher.run("push", target, check=False)
    assert proc.returncode != 0 and "500" in proc.stderr and proc.stderr.count("\n") == 1
