"""What the Python stand-ins (kubeadm, kubectl, kubelet, kube-apiserver) share: where the
rootfs and kubeadm's files are, the calls log, kubeconfigs, certificates made with openssl, and
an HTTPS client of the API server.

The stand-ins run on the hosts with Debian 12's python3 and its standard library only; what a
minimal Debian 12 lacks (openssl, PyYAML's pure Python part) the image carries in lib/standin/.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import ipaddress
import json
import os
import platform
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.realpath(__file__))
ROOTFS = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.join(ROOTFS, "bin")
sys.path.insert(0, HERE)  # PyYAML's pure Python part, carried per architecture

K8S = "/etc/kubernetes"
PKI = f"{K8S}/pki"
ADMIN_CONF = f"{K8S}/admin.conf"
KUBELET_CONF = f"{K8S}/kubelet.conf"
KUBELET_DIR = "/var/lib/kubelet"
# the API servers a node's clients fall back to when the configured one does not answer (what
# sealer's VIP does on a real cluster): the masters' addresses, kept by the kubelet
ETCD_DATA = "/var/lib/etcd"
UNIT_DIR = "/etc/systemd/system"
# every unit, link and file the stand-ins install carries this mark; reset removes only those
MARK = "# installed by sealer's example base (the kubeadm stand-in); kubeadm reset removes it"
API_PORT = 6443
CONNECT_TIMEOUT = 3  # seconds to wait for an API server's TCP connection
HEARTBEAT_GRACE = 40  # seconds after which a node whose kubelet stopped posting reads NotReady


def _read_version() -> str:
    try:
        with open(os.path.join(ROOTFS, "etc", "kube-version")) as f:
            return f.read().strip() or "v1.19.8"
    except OSError:
        return "v1.19.8"


# read once, when the program starts, as a real binary has its version built in: a kubelet or an
# API server keeps reporting the version it started with until it is restarted from a new rootfs
VERSION = _read_version()


def version() -> str:
    """The Kubernetes version this base was built at (Kubefile ARG KUBE_VERSION)."""
    return VERSION


def version_tuple(text: str) -> tuple[int, int, int]:
    """(major, minor, patch) of ``v1.20.15``; (0, 0, 0) for what is not a version."""
    parts = text.lstrip("v").split("-")[0].split(".")
    try:
        major, minor, patch = (int(p) for p in [*parts, "0", "0"][:3])
    except ValueError:
        return (0, 0, 0)
    return (major, minor, patch)


def version_info() -> dict[str, str]:
    v = version()
    major, minor = v.lstrip("v").split(".")[:2]
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {
        "major": major, "minor": minor, "gitVersion": v, "gitCommit": "sealer-stand-in",
        "gitTreeState": "clean", "buildDate": "2021-02-17T00:00:00Z", "goVersion": "go1.15.8",
        "compiler": "gc", "platform": f"linux/{arch}",
    }  # fmt: skip


def log_call(tool: str, words: list[str]) -> None:
    """One line per call in the log beside the rootfs (tests read it)."""
    path = os.environ.get("SEALER_STANDIN_LOG") or os.path.join(os.path.dirname(ROOTFS), "standin-calls.log")
    line = f"{int(time.time())} {tool}[{platform.machine()}] {' '.join(words)}\n"
    try:
        with open(path, "a") as f:
            f.write(line)
    except OSError:
        pass


class Fail(Exception):
    """A message for stderr and an exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def run(args: list[str], input: str | None = None, check: bool = True, pass_fds: tuple[int, ...] = ()) -> str:
    proc = subprocess.run(args, input=input, capture_output=True, text=True, check=False, pass_fds=pass_fds)
    if check and proc.returncode != 0:
        raise Fail(f"{os.path.basename(args[0])} {args[1] if len(args) > 1 else ''}: {proc.stderr.strip()}")
    return proc.stdout


# --- certificates (openssl: Python's standard library cannot make X.509) ---------------------


def openssl() -> str:
    carried = os.path.join(HERE, "openssl")
    return carried if os.access(carried, os.X_OK) else "openssl"


OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,digitalSignature,keyEncipherment,keyCertSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = {usage}
{san}
"""


def _ssl_env() -> dict[str, str]:
    return {**os.environ, "OPENSSL_CONF": "/dev/null"}


def make_cert(
    cert: str, key: str, subject: str, ca: tuple[str, str] | None = None,
    usage: str = "clientAuth", sans: list[str] | None = None, days: int = 3650,
) -> None:  # fmt: skip
    """An ECDSA P-256 key and a certificate for it: a CA of its own (``ca`` None) or signed by
    ``ca`` (cert, key). ``sans``: DNS names and IP addresses."""
    os.makedirs(os.path.dirname(cert), exist_ok=True)
    alt = []
    for name in dict.fromkeys(sans or []):
        try:
            ipaddress.ip_address(name)
            alt.append(f"IP:{name}")
        except ValueError:
            alt.append(f"DNS:{name}")
    san = f"subjectAltName = {','.join(alt)}" if alt else ""
    with tempfile.NamedTemporaryFile("w", suffix=".cnf") as cnf:
        cnf.write(OPENSSL_CNF.format(usage=usage, san=san))
        cnf.flush()
        args = [openssl(), "req", "-config", cnf.name, "-x509", "-new", "-newkey", "ec",
                "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                "-subj", subject, "-days", str(days), "-extensions", "ca" if ca is None else "leaf"]  # fmt: skip
        if ca is not None:
            args += ["-CA", ca[0], "-CAkey", ca[1]]
        old = os.umask(0o077)
        try:
            proc = subprocess.run(args, capture_output=True, text=True, env=_ssl_env(), check=False)
        finally:
            os.umask(old)
        if proc.returncode != 0:
            raise Fail(f"openssl could not make {cert}: {proc.stderr.strip()}")
    os.chmod(cert, 0o644)


def sign_csr(csr_pem: str, ca: tuple[str, str], usage: str = "clientAuth", days: int = 365) -> str:
    """A certificate for a CSR (PEM), signed by ``ca``: what the cluster's signer does."""
    with tempfile.TemporaryDirectory() as tmp:
        csr, cnf = os.path.join(tmp, "csr"), os.path.join(tmp, "cnf")
        with open(csr, "w") as f:
            f.write(csr_pem)
        with open(cnf, "w") as f:
            f.write(OPENSSL_CNF.format(usage=usage, san=""))
        proc = subprocess.run(
            [openssl(), "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-set_serial",
             str(int.from_bytes(os.urandom(8), "big")), "-days", str(days), "-extfile", cnf, "-extensions", "leaf"],
            capture_output=True, text=True, env=_ssl_env(), check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise Fail(f"openssl could not sign the request: {proc.stderr.strip()}")
        return proc.stdout


def make_csr(key: str, subject: str) -> str:
    """A new ECDSA key at ``key`` and a certificate signing request for it (PEM)."""
    os.makedirs(os.path.dirname(key), exist_ok=True)
    old = os.umask(0o077)
    try:
        proc = subprocess.run(
            [openssl(), "req", "-config", "/dev/null", "-new", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-subj", subject],
            capture_output=True, text=True, env=_ssl_env(), check=False,
        )  # fmt: skip
    finally:
        os.umask(old)
    if proc.returncode != 0:
        raise Fail(f"openssl could not make a key: {proc.stderr.strip()}")
    return proc.stdout


def ca_hash(ca_pem: str) -> str:
    """kubeadm's discovery hash: sha256 of the CA's public key (its DER SubjectPublicKeyInfo)."""
    pub = subprocess.run([openssl(), "x509", "-noout", "-pubkey"], input=ca_pem.encode(), capture_output=True,
                         env=_ssl_env(), check=True).stdout  # fmt: skip
    der = subprocess.run([openssl(), "pkey", "-pubin", "-outform", "DER"], input=pub, capture_output=True,
                         env=_ssl_env(), check=True).stdout  # fmt: skip
    return "sha256:" + hashlib.sha256(der).hexdigest()


def cert_subject(pem_file: str) -> str:
    return run([openssl(), "x509", "-noout", "-subject", "-in", pem_file]).strip()


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


def write(path: str, text: str, mode: int = 0o644) -> None:
    """Written whole or not at all."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.standin-new"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def b64decode(text: str) -> bytes:
    return base64.b64decode(text)


# --- kubeconfigs: written as JSON (which is YAML, and which kubectl reads) ----------------------


def kubeconfig(server: str, ca_pem: str, user: str, cert_pem: str = "", key_pem: str = "", token: str = "") -> str:
    creds = {"token": token} if token else {
        "client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)
    }  # fmt: skip
    doc = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "kubernetes", "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)}}],
        "users": [{"name": user, "user": creds}],
        "contexts": [{"name": f"{user}@kubernetes", "context": {"cluster": "kubernetes", "user": user}}],
        "current-context": f"{user}@kubernetes", "preferences": {},
    }  # fmt: skip
    return json.dumps(doc, indent=2) + "\n"


def load_kubeconfig(path: str) -> dict[str, str]:
    """server, ca, cert, key, token of a kubeconfig's current context."""
    try:
        text = read(path)
    except OSError as err:
        raise Fail(f"error: stat {path}: {err.strerror.lower() if err.strerror else err}") from err
    return load_kubeconfig_text(text, path)


def load_kubeconfig_text(text: str, path: str = "kubeconfig") -> dict[str, str]:
    try:
        doc = json.loads(text)
    except ValueError:
        import yaml  # a kubeconfig someone wrote in YAML

        doc = yaml.safe_load(text)
    try:
        ctx_name = doc.get("current-context")
        ctx = next(c["context"] for c in doc["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in doc["users"] if u["name"] == ctx["user"])
    except (KeyError, StopIteration, TypeError, AttributeError) as err:
        raise Fail(f"error: {path}: no usable current context") from err
    out = {"server": cluster["server"], "ca": "", "cert": "", "key": "", "token": user.get("token", "")}
    if "certificate-authority-data" in cluster:
        out["ca"] = unb64(cluster["certificate-authority-data"])
    elif "certificate-authority" in cluster:
        out["ca"] = read(cluster["certificate-authority"])
    if "client-certificate-data" in user:
        out["cert"], out["key"] = unb64(user["client-certificate-data"]), unb64(user["client-key-data"])
    elif "client-certificate" in user:
        out["cert"], out["key"] = read(user["client-certificate"]), read(user["client-key"])
    return out


def client_context(ca_pem: str | None, cert_pem: str = "", key_pem: str = "") -> ssl.SSLContext:
    if ca_pem is None:  # discovery: the CA is checked against the hash afterwards
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cadata=ca_pem)
    if cert_pem:
        # the standard library loads a client certificate from files only: a private temporary one
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = os.path.join(tmp, "c"), os.path.join(tmp, "k")
            write(cert, cert_pem, 0o600)
            write(key, key_pem, 0o600)
            ctx.load_cert_chain(cert, key)
    return ctx


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, object]) -> None:
        super().__init__(str(body.get("message") or status))
        self.status = status
        self.body = body


class Client:
    """An API server client: the kubeconfig's server, at the address its name resolves to (a node
    reaches the masters through sealer's load balancer there, as a real client does)."""

    def __init__(self, server: str, ctx: ssl.SSLContext, token: str = "", timeout: float = 15) -> None:
        url = urllib.parse.urlsplit(server)
        self.name, self.port = url.hostname or "", url.port or 443
        self.ctx, self.token, self.timeout = ctx, token, timeout
        self.addresses: list[str] | None = None  # set: only these, not the name's

    @classmethod
    def from_kubeconfig(cls, path: str, timeout: float = 15) -> Client:
        kc = load_kubeconfig(path)
        return cls(kc["server"], client_context(kc["ca"] or None, kc["cert"], kc["key"]), kc["token"], timeout)

    def _addresses(self) -> list[str]:
        if self.addresses is not None:
            return self.addresses
        try:
            return [socket.gethostbyname(self.name)]
        except OSError:
            return [self.name]

    def request(self, method: str, path: str, body: object = None, content_type: str = "application/json") -> dict:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json", "User-Agent": "kubectl/sealer-stand-in"}
        if data is not None:
            headers["Content-Type"] = content_type
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        last: Exception | None = None
        for address in self._addresses():
            try:
                # a host that is down answers nothing: a short wait before the next
                sock = socket.create_connection((address, self.port), timeout=CONNECT_TIMEOUT)
                sock.settimeout(self.timeout)
            except OSError as err:
                last = err
                continue
            try:
                conn = http.client.HTTPSConnection(self.name, self.port, timeout=self.timeout)
                conn.sock = self.ctx.wrap_socket(sock, server_hostname=self.name)
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException) as err:
                last = err
                sock.close()
                continue
            conn.close()
            try:
                out = json.loads(raw) if raw else {}
            except ValueError:
                out = {"message": raw.decode(errors="replace").strip()}
            if resp.status >= 500:  # this master cannot serve (its etcd, say): another one may
                last = ApiError(resp.status, out if isinstance(out, dict) else {"message": str(out)})
                continue
            if resp.status >= 400:
                raise ApiError(resp.status, out if isinstance(out, dict) else {"message": str(out)})
            return out
        if isinstance(last, ApiError):
            raise last
        raise Fail(
            f"The connection to the server {self.name}:{self.port} was refused"
            f" - did you specify the right host or port? ({last})"
        )


# --- addresses and units -----------------------------------------------------------------------


def source_address(towards: str | None = None) -> str:
    """The address this host reaches ``towards`` from, or its default interface's address."""
    for target in ([towards] if towards else []) + ["10.255.255.255"]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.connect((target, 9))
                return str(s.getsockname()[0])
            except OSError:
                continue
    words = run(["hostname", "-I"], check=False).split()
    if not words:
        raise Fail("cannot find this host's address: pass --apiserver-advertise-address")
    return words[0]


def node_name() -> str:
    return socket.gethostname().lower()


def systemctl(*args: str, check: bool = True) -> None:
    run(["systemctl", *args], check=check)


def install_unit(name: str, description: str, exec_start: list[str], env: dict[str, str] | None = None) -> None:
    lines = [MARK, "[Unit]", f"Description={description}", "After=network-online.target", "",
             "[Service]", "ExecStart=" + " ".join(exec_start), "Restart=always", "RestartSec=5",
             "Environment=PYTHONDONTWRITEBYTECODE=1"]  # fmt: skip
    lines += [f"Environment={k}={v}" for k, v in (env or {}).items()]
    lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
    write(f"{UNIT_DIR}/{name}", "\n".join(lines))


def wait_for(what: str, probe, timeout: float = 120, every: float = 0.5):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = probe()
            if result:
                return result
        except Exception as err:  # any failure is a not-yet
            last = err
        time.sleep(every)
    raise Fail(f"{what} did not happen within {timeout:.0f} s{f': {last}' if last else ''}")


def now_rfc3339(at: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if at is None else at))


def parse_rfc3339(text: str) -> float:
    import calendar

    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))


def age(stamp: str) -> str:
    """kubectl's AGE column."""
    try:
        s = int(time.time() - parse_rfc3339(stamp))
    except (ValueError, TypeError):
        return "<unknown>"
    if s < 120:
        return f"{s}s"
    if s < 600:
        return f"{s // 60}m{s % 60}s" if s % 60 else f"{s // 60}m"
    if s < 3 * 3600:
        return f"{s // 60}m"
    if s < 48 * 3600:
        return f"{s // 3600}h"
    return f"{s // 86400}d"
