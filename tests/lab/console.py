"""The console's HTTP(S) API, driven from the lab's client namespace with
curl (the lab's nodes live in their own network namespaces; the client
reaches them as a browser would)."""

import json as jsonlib
import os
import tempfile
from pathlib import Path

PASSWORD = "Vigil_2026.ok"
CONF_DIR = "/etc/vigil"


def set_password(lab, k, password=PASSWORD, check=True):
    """vigilctl password on node k (one line on stdin); CompletedProcess."""
    return lab.node(k).run([str(lab.vigilctl_path()), "-c", f"{CONF_DIR}/vigil.conf", "password"],
                           input=password + "\n", check=check, timeout=30)


def make_pki(lab, k=1):
    """vigilctl pki on node k, then the pki directory copied to the other
    node (what the setup wizard does)."""
    lab.vigilctl(k, "pki")
    src = Path(lab.node(k).host_path(f"{CONF_DIR}/pki"))
    for other in lab.nodes:
        if other.k == k:
            continue
        for f in sorted(src.iterdir()):
            mode = f.stat().st_mode & 0o777
            other.write_file(f"{CONF_DIR}/pki/{f.name}", f.read_bytes(), mode)


def start_cluster(lab, timeout=20):
    """PKI made on node1 and copied, both vigild started, PRIM/SECOND,
    the admin password set: a cluster whose console is ready. The lab is
    set up (lab.setup_cluster) by the caller."""
    make_pki(lab, 1)
    lab.start_vigild(1)
    lab.start_vigild(2)
    lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, timeout)
    cp = set_password(lab, 1)
    assert "both nodes" in cp.stdout + cp.stderr, cp


class Answer:
    def __init__(self, code, body, headers):
        self.code = code
        self.body = body
        self.headers = headers

    def json(self):
        return jsonlib.loads(self.body)

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return f"<{self.code} {self.body[:200]!r}>"


class Api:
    """One browser-like client of one node's console: its own cookie jar."""

    def __init__(self, lab, addr, https=False, port=None, cacert=None, host=None):
        self.lab = lab
        self.host = host or lab.client
        self.https = https
        self.addr = addr
        self.port = port or (9453 if https else 9010)
        self.cacert = cacert
        self.dir = tempfile.mkdtemp(prefix="vigil-api-")
        self.jar = os.path.join(self.dir, "cookies")
        self.csrf = None

    def url(self, path):
        return f"{'https' if self.https else 'http'}://{self.addr}:{self.port}{path}"

    def request(self, method, path, body=None, raw=None, csrf=True, headers=(), out=None,
                timeout=30, cookies=True):
        hdr_file = os.path.join(self.dir, "headers")
        cmd = ["curl", "-sS", "--path-as-is", "-X", method, "-D", hdr_file,
               "-o", out or "/dev/stdout", "-w", "\n%{http_code}", "--max-time", str(timeout)]
        if cookies:
            cmd += ["-b", self.jar, "-c", self.jar]
        if self.https:
            cmd += ["--cacert", self.cacert] if self.cacert else ["-k"]
        data = None
        if body is not None:
            data = jsonlib.dumps(body)
        elif raw is not None:
            data = raw
        if data is not None:
            path_data = os.path.join(self.dir, "body")
            Path(path_data).write_bytes(data.encode() if isinstance(data, str) else data)
            cmd += ["-H", "Content-Type: application/json", "--data-binary", "@" + path_data]
        if csrf and self.csrf and method != "GET":
            cmd += ["-H", f"X-CSRF-Token: {self.csrf}"]
        for h in headers:
            cmd += ["-H", h]
        cmd.append(self.url(path))
        cp = self.host.run(cmd, check=False, timeout=timeout + 5)
        if cp.returncode != 0:
            return Answer(0, cp.stderr, [])
        text, _, code = cp.stdout.rpartition("\n")
        hdrs = []
        try:
            for line in Path(hdr_file).read_text(errors="replace").splitlines()[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    hdrs.append((k.strip(), v.strip()))
        except FileNotFoundError:
            pass
        return Answer(int(code), text, hdrs)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def login(self, password=PASSWORD, user="admin"):
        a = self.post("/api/v1/login", {"user": user, "password": password}, csrf=False)
        if a.code == 200:
            self.csrf = a.json()["csrf"]
        return a

    def cleanup(self):
        for f in Path(self.dir).iterdir():
            f.unlink()
        os.rmdir(self.dir)
