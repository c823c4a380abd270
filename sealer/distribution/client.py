"""A client of the OCI distribution protocol (docker-registry, any OCI registry), on requests.

Blobs are checked with HEAD before upload and skipped when present, mounted from another
repository of the same registry when sealer knows one holds them, uploaded monolithically
(POST then PUT) or in chunks (PATCH); downloads verify digest and size before a blob is
stored. Temporary errors (5xx, 429, resets) are retried with backoff. Basic and Bearer-token
authentication both work, with credentials from the Docker ``config.json`` convention.
Plain HTTP is used only for loopback registries and those named insecure.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests

from sealer.distribution.config import RegistryConfig, is_loopback, load_credentials
from sealer.errors import AuthError, DigestMismatchError, ManifestTooLargeError, NotFoundError, RegistryError
from sealer.oci.descriptor import INDEX_TYPES, MANIFEST_TYPES, MAX_JSON_BLOB
from sealer.oci.digest import Digest
from sealer.store.layout import CHUNK, BlobWriter

ACCEPT_MANIFESTS = ", ".join((*INDEX_TYPES, *MANIFEST_TYPES))
RETRY_STATUS = {429, 500, 502, 503, 504}
MONOLITHIC_LIMIT = 64 * 1024 * 1024


_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, int | None]:
    """Host and effective port: ``reg``, ``REG:443`` and ``reg:443`` are one origin for https."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # a port that is no number: no origin to match
        return ("", None)
    return ((parts.hostname or "").lower(), port if port is not None else _DEFAULT_PORTS.get(parts.scheme))


class RegistryClient:
    """One registry; thread-safe for parallel blob transfers."""

    def __init__(self, registry: str, config: RegistryConfig | None = None, retries: int = 4) -> None:
        self.registry = registry
        self.config = config or RegistryConfig()
        plain = is_loopback(registry) or registry in self.config.insecure
        self.base = f"{'http' if plain else 'https'}://{registry}"
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "sealer"
        self.session.max_redirects = 5
        if self.config.ca_file:
            self.session.verify = self.config.ca_file
        self.creds = load_credentials(registry)
        self.retries = retries
        self._tokens: dict[str, str] = {}
        self._basic = False
        self._lock = threading.Lock()

    # ---- requests with auth and retries ------------------------------------------------

    def _auth_header(self, scope: str) -> dict[str, str]:
        with self._lock:
            if scope in self._tokens:
                return {"Authorization": f"Bearer {self._tokens[scope]}"}
            if self._basic and self.creds:
                raw = f"{self.creds.username}:{self.creds.password}".encode()
                return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        return {}

    def _authenticate(self, challenge: str, scope: str) -> None:
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() == "basic":
            if not self.creds:
                raise AuthError(f"{self.registry}: authentication required: run 'sealer login {self.registry}'")
            with self._lock:
                self._basic = True
            return
        if scheme.lower() != "bearer":
            raise AuthError(f"{self.registry}: unsupported authentication scheme {scheme!r}")
        fields = dict(_CHALLENGE.findall(params))
        realm = fields.get("realm")
        if not realm:
            raise AuthError(f"{self.registry}: bearer challenge without a realm")
        query = {"service": fields.get("service", "")}
        if scope:
            query["scope"] = scope
        auth = (self.creds.username, self.creds.password) if self.creds else None
        try:
            resp = self.session.get(f"{realm}?{urlencode(query)}", auth=auth, timeout=30)
        except requests.RequestException as err:
            where = urlsplit(realm).netloc or realm
            raise AuthError(f"{self.registry}: token service {where}: cannot connect: {failure_reason(err)}") from err
        if resp.status_code in (401, 403):
            raise AuthError(f"{self.registry}: the token service refused {'the credentials' if auth else 'anonymous'}")
        if resp.status_code != 200:
            raise AuthError(f"{self.registry}: token service answered {resp.status_code}")
        body = resp.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise AuthError(f"{self.registry}: token service gave no token")
        with self._lock:
            self._tokens[scope] = token

    def request(
        self,
        method: str,
        url: str,
        scope: str,
        ok: tuple[int, ...],
        data: Any = None,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        rewind: Callable[[], Any] | None = None,
    ) -> requests.Response:
        """A request with auth and retries on temporary failures: retrying wraps authenticating,
        which wraps one exchange."""
        full = url if url.startswith("http") else self.base + url
        if _origin(full) != _origin(self.base):
            # credentials and uploads go to the registry named, never where its answers point
            raise RegistryError(f"{self.registry}: refused to follow it to another host: {method} {full}")
        delay = 0.2
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            body = rewind() if rewind is not None and attempt else data
            try:
                resp = self._authenticated(method, full, scope, body, headers, stream, rewind)
            except (requests.ConnectionError, requests.Timeout) as err:
                if last:
                    raise RegistryError(f"{self.registry}: cannot connect: {failure_reason(err)}") from err
            except requests.RequestException as err:
                raise RegistryError(f"{self.registry}: {method} {url}: {failure_reason(err)}") from err
            else:
                if last or resp.status_code not in RETRY_STATUS:
                    return self._expected(resp, method, url, ok)
                resp.close()
            time.sleep(delay)
            delay *= 2
        raise RegistryError(f"{self.registry}: {method} {url}: gave up after {self.retries} retries")

    def _authenticated(
        self, method: str, full: str, scope: str, data: Any, headers: dict[str, str] | None, stream: bool,
        rewind: Callable[[], Any] | None,
    ) -> requests.Response:  # fmt: skip
        """One exchange; a challenge (401) is answered once and the exchange made again."""
        resp = self._exchange(method, full, scope, data, headers, stream)
        if resp.status_code == 401:
            resp.close()
            self._authenticate(resp.headers.get("WWW-Authenticate", ""), scope)
            resp = self._exchange(method, full, scope, rewind() if rewind is not None else data, headers, stream)
        return resp

    def _exchange(
        self, method: str, full: str, scope: str, data: Any, headers: dict[str, str] | None, stream: bool
    ) -> requests.Response:
        resp = self.session.request(
            method, full, data=data, headers={**(headers or {}), **self._auth_header(scope)},
            stream=stream, timeout=(10, 300), allow_redirects=method in ("GET", "HEAD"),
        )  # fmt: skip
        self._refuse_downgrade(resp)
        return resp

    def _expected(self, resp: requests.Response, method: str, url: str, ok: tuple[int, ...]) -> requests.Response:
        if resp.status_code == 401:
            raise AuthError(f"{self.registry}: unauthorized: run 'sealer login {self.registry}'")
        if resp.status_code == 404 and 404 not in ok:
            raise NotFoundError(f"{self.registry}: {url.split('/v2/', 1)[-1]} not found")
        if resp.status_code not in ok:
            raise RegistryError(f"{self.registry}: {method} {url}: {resp.status_code} {_error_text(resp)}")
        return resp

    def _refuse_downgrade(self, resp: requests.Response) -> None:
        if self.base.startswith("https:") and any(urlsplit(r.url).scheme != "https" for r in [*resp.history, resp]):
            resp.close()
            raise RegistryError(f"{self.registry}: redirected from HTTPS to plain HTTP ({resp.url}); refused")

    # ---- the protocol ------------------------------------------------------------------

    def ping(self) -> None:
        self.request("GET", "/v2/", "", (200,))

    def has_blob(self, repo: str, digest: str) -> bool:
        resp = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", _pull(repo), (200, 404))
        return resp.status_code == 200

    def mount_blob(self, repo: str, digest: str, source_repo: str) -> bool:
        """Ask the registry to link a blob it holds in ``source_repo``; False when it would not."""
        query = urlencode({"mount": digest, "from": source_repo})
        scope = f"{_push(repo)} {_pull(source_repo)}"
        resp = self.request("POST", f"/v2/{repo}/blobs/uploads/?{query}", scope, (201, 202))
        if resp.status_code == 201:
            return True
        location = resp.headers.get("Location")
        if location:  # an upload was opened instead: cancel it
            with contextlib.suppress(RegistryError):
                self.request("DELETE", urljoin(self.base + "/", location), _push(repo), (204, 404, 405))
        return False

    def upload_blob(self, repo: str, digest: str, size: int, path: Path, advance: Callable[[int], None]) -> None:
        resp = self.request("POST", f"/v2/{repo}/blobs/uploads/", _push(repo), (202,))
        location = urljoin(self.base + "/", resp.headers["Location"])
        if size <= MONOLITHIC_LIMIT:
            with open(path, "rb") as f:
                self.request(
                    "PUT", _with_query(location, {"digest": digest}), _push(repo), (201,),
                    data=_Reader(f, size, advance), headers={"Content-Type": "application/octet-stream"},
                    rewind=lambda: (f.seek(0), _Reader(f, size, lambda n: None))[1],
                )  # fmt: skip
            return
        offset = 0
        with open(path, "rb") as f:
            while offset < size:
                chunk = f.read(MONOLITHIC_LIMIT)
                headers = {
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                    "Content-Length": str(len(chunk)),
                }
                resp = self.request("PATCH", location, _push(repo), (202,), data=chunk, headers=headers)
                location = urljoin(self.base + "/", resp.headers["Location"])
                offset += len(chunk)
                advance(len(chunk))
        self.request("PUT", _with_query(location, {"digest": digest}), _push(repo), (201,),
                     headers={"Content-Length": "0"})  # fmt: skip

    def get_manifest(self, repo: str, reference: str) -> tuple[bytes, str, Digest]:
        """(bytes, media type, digest); the digest is verified when ``reference`` is one."""
        resp = self.request("GET", f"/v2/{repo}/manifests/{reference}", _pull(repo), (200,),
                            headers={"Accept": ACCEPT_MANIFESTS}, stream=True)  # fmt: skip
        data = _read_limited(resp, MAX_JSON_BLOB, f"{self.registry}/{repo}:{reference}")
        digest = Digest.of(data)
        if Digest.is_digest(reference) and digest != reference:
            raise DigestMismatchError(reference, f"{self.registry}/{repo} served a manifest hashing to {digest}")
        media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        try:
            media_type = json.loads(data).get("mediaType") or media_type
        except (json.JSONDecodeError, AttributeError) as err:
            raise DigestMismatchError(digest, f"{self.registry}/{repo}:{reference} is not JSON") from err
        return data, media_type, digest

    def get_small_blob(self, repo: str, digest: str) -> bytes:
        """A config-sized blob, in memory, verified against its digest."""
        resp = self.request("GET", f"/v2/{repo}/blobs/{digest}", _pull(repo), (200,), stream=True)
        data = _read_limited(resp, MAX_JSON_BLOB, f"{self.registry}/{repo}@{digest}")
        if Digest.of(data) != digest:
            raise DigestMismatchError(digest, f"{self.registry}/{repo} served a blob hashing to {Digest.of(data)}")
        return data

    def put_manifest(self, repo: str, reference: str, data: bytes, media_type: str) -> None:
        self.request("PUT", f"/v2/{repo}/manifests/{reference}", _push(repo), (201,), data=data,
                     headers={"Content-Type": media_type})  # fmt: skip

    def fetch_blob(self, repo: str, digest: str, size: int, writer: BlobWriter, advance: Callable[[int], None]) -> None:
        """Download into ``writer`` and commit it only if digest and size hold."""
        for attempt in range(self.retries + 1):
            resp = self.request("GET", f"/v2/{repo}/blobs/{digest}", _pull(repo), (200,), stream=True)
            try:
                with resp:
                    for chunk in resp.iter_content(CHUNK):
                        if writer.size + len(chunk) > size:
                            raise DigestMismatchError(digest, f"{self.registry}/{repo} sent more than {size} bytes")
                        writer.write(chunk)
                        advance(len(chunk))
                break
            except requests.RequestException as err:  # the stream broke off: fetch the blob again
                if attempt == self.retries:
                    raise RegistryError(
                        f"{self.registry}/{repo}: download of {digest} broke off: {failure_reason(err)}"
                    ) from err
                advance(-writer.size)
                writer.restart()
                time.sleep(0.2 * 2**attempt)
        writer.commit(digest, size)


def failure_reason(err: BaseException) -> str:
    """What went wrong under a requests exception, in words (no urllib3 pool or class names)."""
    seen: set[int] = set()
    stack: list[BaseException] = [err]
    found: list[str] = []
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted ({e.verify_message})"
        if isinstance(e, ssl.SSLError):
            found.append(f"TLS failed ({e.reason or e.strerror})")
        elif isinstance(e, ConnectionRefusedError):
            return "connection refused"
        elif isinstance(e, socket.gaierror):
            return "unknown host"
        elif isinstance(e, (TimeoutError, requests.Timeout)):
            found.append("timed out")
        elif isinstance(e, ConnectionResetError):
            found.append("connection reset")
        elif isinstance(e, OSError) and e.errno:
            found.append(os.strerror(e.errno).lower())
        stack += [x for x in (e.__cause__, e.__context__, getattr(e, "reason", None)) if isinstance(x, BaseException)]
        stack += [x for x in e.args if isinstance(x, BaseException)]
    if found:
        return found[0]
    if isinstance(err, requests.TooManyRedirects):
        return "too many redirects"
    return "connection failed"


def _pull(repo: str) -> str:
    return f"repository:{repo}:pull"


def _push(repo: str) -> str:
    return f"repository:{repo}:pull,push"


def _with_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


def _error_text(resp: requests.Response) -> str:
    try:
        errors = resp.json().get("errors") or []
        return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors) or resp.reason
    except (ValueError, AttributeError):
        return resp.reason or ""


def _read_limited(resp: requests.Response, limit: int, what: str) -> bytes:
    out = bytearray()
    for chunk in resp.iter_content(65536):
        out += chunk
        if len(out) > limit:
            resp.close()
            raise ManifestTooLargeError(f"{what}: manifest is larger than {limit // 1024 // 1024} MiB")
    return bytes(out)


class _Reader:
    """A file for requests to stream with a Content-Length, counting bytes as they go."""

    def __init__(self, f: Any, size: int, advance: Callable[[int], None]) -> None:
        self.f = f
        self.size = size
        self.advance = advance

    def __len__(self) -> int:
        return self.size

    def read(self, n: int = -1) -> bytes:
        data: bytes = self.f.read(CHUNK if n is None or n < 0 else n)
        self.advance(len(data))
        return data

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(CHUNK):
            yield chunk
