"""vigilctl snapshot: one archive with what support needs from this node
(status, config, scripts, logs, node.json, system facts), mode 0600, never
the cluster secret, even pasted into the config; bad output names are
refused and leave nothing behind."""

import json
import os
import re
import secrets
import tarfile
import zipfile
from pathlib import Path

from lab import cluster_config

TIMEOUT = 10.0
OUT_DIR = "/var/lib/vigil/support"     # private per node (/tmp is the host's)
TOP_RE = re.compile(r"^vigil-snapshot-node1-\d{8}-\d{6}$")

EXPECTED = {
    "status.json", "config/vigil.conf", "config/scripts/web-start", "config/scripts/web-stop",
    "config/scripts/notes.txt", "logs/module.log", "logs/module-verbose.log",
    "logs/application.log", "logs/commands.log", "state/node.json", "system/ps.txt",
    "system/ip-addr.txt", "system/ip-route.txt", "system/uname.txt", "system/date.txt",
    "version.txt",
}


def tmp_dirs():
    return {p.name for p in Path("/tmp").glob("vigil-snapshot-*")}


def no_sanitizer_report(cp):
    assert "Sanitizer" not in cp.stderr, cp.stderr


def extracted(node, archive, into):
    """Extracts archive inside the node with tar; {relative path: bytes}
    below the single top directory, and that directory's name."""
    node.run(["mkdir", "-p", into])
    node.run(["tar", "-xzf", archive, "-C", into])
    root = node.host_path(into)
    tops = os.listdir(root)
    assert len(tops) == 1, tops
    files = {}
    for dirpath, _, names in os.walk(root / tops[0]):
        for name in names:
            p = Path(dirpath) / name
            files[str(p.relative_to(root / tops[0]))] = p.read_bytes()
    return tops[0], files


def test_snapshot_holds_what_support_needs_and_never_the_secret(lab):
    secret = secrets.token_hex(32).encode()
    lab.setup_cluster(cluster_config(lab), secret=secret)
    n1 = lab.node(1)
    # Someone pasted the secret into the config (as a comment: vigild still
    # loads it) and into a file under scripts/.
    conf = n1.read_file("/etc/vigil/vigil.conf")
    n1.write_file("/etc/vigil/vigil.conf", f"# secret was {secret.decode()}\n{conf}")
    n1.write_file("/etc/vigil/scripts/notes.txt", f"keep\nkey={secret.decode()} here\nend\n")
    lab.start_vigild(1)
    lab.start_vigild(2)
    lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)
    n1.run(["mkdir", "-p", OUT_DIR])
    before = tmp_dirs()

    out = f"{OUT_DIR}/snap.tar.gz"
    cp = lab.vigilctl(1, "snapshot", "-o", out)
    no_sanitizer_report(cp)
    m = re.fullmatch(rf"snapshot of node1 written to {re.escape(out)} \((\d+) bytes\)\n", cp.stdout)
    assert m, cp.stdout
    hp = n1.host_path(out)
    st = os.stat(hp)
    assert st.st_mode & 0o777 == 0o600, oct(st.st_mode)
    assert st.st_size == int(m.group(1))
    assert os.listdir(n1.host_path(OUT_DIR)) == ["snap.tar.gz"], "a temporary file was left"
    assert tmp_dirs() == before, "the temporary directory was left in /tmp"

    # tar lists one top directory holding everything
    names = [l.rstrip("/") for l in n1.run(["tar", "-tzf", out]).stdout.splitlines()]
    tops = {n.split("/")[0] for n in names}
    assert len(tops) == 1 and TOP_RE.match(tops.pop()), names

    top, files = extracted(n1, out, "/var/lib/vigil/extract")
    assert TOP_RE.match(top), top
    assert EXPECTED <= set(files), sorted(EXPECTED - set(files))
    assert not [f for f in files if f.endswith(".error.txt")], sorted(files)

    status = json.loads(files["status.json"])
    assert {n["name"] for n in status["nodes"]} == {"node1", "node2"}
    assert [n["name"] for n in status["nodes"] if n.get("local")] == ["node1"]
    json.loads(files["state/node.json"])
    assert b"vigilctl " in files["version.txt"]
    assert b"10.0.0.1/24" in files["system/ip-addr.txt"]
    assert b"10.0.1.0/24" in files["system/ip-route.txt"]
    assert b"vigild" in files["system/ps.txt"] and b"PPID" in files["system/ps.txt"]
    assert files["system/uname.txt"].startswith(b"Linux ")
    assert b"utc: " in files["system/date.txt"]
    assert b"PRIM" in files["logs/module.log"]
    assert files["config/scripts/web-start"] == n1.read_file("/etc/vigil/scripts/web-start", True)

    # The secret: nowhere, not even in ps (vigild's own arguments), and the
    # lines that held it are said to be removed, the rest kept.
    for name, data in files.items():
        assert secret not in data, f"{name} holds the secret"
    assert not any(os.path.basename(f) == "secret" for f in files)
    conf_out = files["config/vigil.conf"].decode()
    assert conf_out.splitlines()[0].startswith("# [vigil snapshot: line removed")
    assert conf_out.splitlines()[1:] == conf.splitlines()
    assert files["config/scripts/notes.txt"].decode().splitlines()[0::2] == ["keep", "end"]
    assert "2 line(s) removed" in files["snapshot.txt"].decode()

    # --json, and the same file name again replaces the archive
    doc = json.loads(lab.vigilctl(1, "snapshot", "-o", out, "--json").stdout)
    assert doc == {"file": out, "bytes": os.stat(hp).st_size}
    assert os.stat(hp).st_mode & 0o777 == 0o600


def test_snapshot_without_vigild_and_as_zip(lab):
    lab.setup_cluster(cluster_config(lab))
    n1 = lab.node(1)
    n1.run(["mkdir", "-p", OUT_DIR])
    # vigild never ran: no status, no node.json; the snapshot goes on
    out = f"{OUT_DIR}/s.zip"
    cp = lab.vigilctl(1, "snapshot", "-o", out)
    no_sanitizer_report(cp)
    hp = n1.host_path(out)
    assert os.stat(hp).st_mode & 0o777 == 0o600
    with zipfile.ZipFile(hp) as z:
        names = z.namelist()
        top = names[0].split("/")[0]
        assert TOP_RE.match(top), names
        files = {n[len(top) + 1:]: z.read(n) for n in names if not n.endswith("/")}
    assert "status.json" not in files
    assert b"cannot reach vigild" in files["status-error.txt"]
    assert b"node.json" in files["state/node.json.error.txt"]
    assert "system/ps.txt" in files and "config/vigil.conf" in files


def test_snapshot_bad_output_is_refused(lab):
    lab.setup_cluster(cluster_config(lab))
    n1 = lab.node(1)
    before = tmp_dirs()

    cp = lab.vigilctl(1, "snapshot", check=False)
    assert cp.returncode == 2 and "-o FILE" in cp.stderr, (cp.returncode, cp.stderr)
    no_sanitizer_report(cp)

    cp = lab.vigilctl(1, "snapshot", "-o", "/nonexistent-dir/x.tar.gz", check=False)
    assert cp.returncode == 1, (cp.returncode, cp.stderr)
    assert "/nonexistent-dir" in cp.stderr and "No such file" in cp.stderr, cp.stderr
    no_sanitizer_report(cp)
    assert n1.run(["test", "-e", "/nonexistent-dir"], check=False).returncode != 0

    cp = lab.vigilctl(1, "snapshot", "-o", f"{OUT_DIR}/x.rar", check=False)
    assert cp.returncode == 2 and "x.rar" in cp.stderr, (cp.returncode, cp.stderr)

    cp = lab.vigilctl(1, "status", "-o", f"{OUT_DIR}/x.tgz", check=False)
    assert cp.returncode == 2 and "-o applies to snapshot only" in cp.stderr, cp.stderr

    # a directory under the name: refused, nothing left next to it
    n1.run(["mkdir", "-p", f"{OUT_DIR}/d.tgz"])
    cp = lab.vigilctl(1, "snapshot", "-o", f"{OUT_DIR}/d.tgz", check=False)
    assert cp.returncode == 1 and "d.tgz" in cp.stderr, (cp.returncode, cp.stderr)
    assert os.listdir(n1.host_path(OUT_DIR)) == ["d.tgz"]
    assert tmp_dirs() == before
