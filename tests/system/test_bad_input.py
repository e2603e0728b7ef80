"""Bad input never changes anything: broken configs, forged or replayed
heartbeats, garbage on the control socket. Each gets a clear error."""

import base64
import json
import re
import secrets
import time

import pytest

import lab as labmod
from lab import PYTHON, cluster_config

TIMEOUT = 10.0
CONF = "/etc/vigil/bad.conf"


def good_config(lab):
    return cluster_config(lab)


BAD_CONFIGS = {
    "unknown key": (lambda t: t.replace("[heartbeat]\n", "[heartbeat]\nfrobnicate = 1\n"),
                    r"unknown key 'frobnicate' in \[heartbeat\]"),
    "missing section": (lambda t: re.sub(r"\[cluster\]\n(.*\n)*?\n", "", t, count=1),
                        r"missing required section \[cluster\]"),
    "bad address": (lambda t: t.replace("10.0.0.2, 10.0.1.2", "10.0.0.300, 10.0.1.2"),
                    r"'10\.0\.0\.300' is not an IPv4 address"),
    "negative timeout": (lambda t: re.sub(r"timeout_ms = \d+", "timeout_ms = -5", t, count=1),
                         r"timeout_ms: must be a whole number .*got '-5'"),
    "missing secret file": (lambda t: t.replace("/etc/vigil/secret", "/etc/vigil/no-such-secret"),
                            r"'/etc/vigil/no-such-secret': No such file or directory"),
    "checker of unknown type": (lambda t: t + "\n[checker web]\ntype = smtp\ntarget = 127.0.0.1:25\n",
                                r"type: must be one of tcp, http, process, custom, interface, ping; got 'smtp'"),
    "checker without target": (lambda t: t + "\n[checker web]\ntype = tcp\n",
                               r"\[checker web\]: a tcp checker needs target"),
    "checker target not HOST:PORT": (lambda t: t + "\n[checker web]\ntype = tcp\ntarget = web.example:80\n",
                                     r"checker web: .*web\.example:80"),
    "witness both modes": (lambda t: t + "\n[witness]\naddress = 10.0.0.3:4800\nping = 10.0.0.254\n",
                           r"address and ping exclude each other"),
    "replicated dir missing": (lambda t: t + "\n[replication]\ndirs = /srv/vms/nope\n",
                               r"\[replication\] dirs: /srv/vms/nope: does not exist"),
    "replicated dirs nested": (lambda t: t + "\n[replication]\ndirs = /srv/vms, /srv/vms/db\n",
                               r"\[replication\] dirs: /srv/vms/db is nested in /srv/vms"),
    "replicated dir holds state_dir": (lambda t: t + "\n[replication]\ndirs = /var/lib\n",
                                       r"\[replication\] dirs: /var/lib: contains state_dir /var/lib/vigil"),
    "replication exclude path": (lambda t: t + "\n[replication]\ndirs = /srv/vms/db\nexclude = a/b\n",
                                 r"exclude: 'a/b': a glob matches a file or directory name"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_is_refused_and_changes_nothing(lab, case):
    lab.setup_cluster()
    lab.node(1).host_path("/srv/vms/db").mkdir(parents=True, exist_ok=True)
    mangle, pattern = BAD_CONFIGS[case]
    text = mangle(good_config(lab))
    assert text != good_config(lab)
    n = lab.node(1)
    n.write_file(CONF, text)
    vigild = str(lab.vigild_path())
    cp = n.run([vigild, "--check-config", "-c", CONF], check=False)
    assert cp.returncode == 1, cp
    line = cp.stderr.strip().splitlines()[0]
    assert re.match(rf"^{re.escape(CONF)}:\d+: ", line), line
    assert re.search(pattern, line), line
    # Starting the daemon with it fails the same way and leaves no trace.
    cp = n.run([vigild, "-c", CONF, "--foreground"], check=False, timeout=10)
    assert cp.returncode == 1
    assert re.search(pattern, cp.stderr)
    assert not lab.node(1).host_path("/var/lib/vigil/node.json").exists()
    assert not lab.node(1).host_path("/run/vigil/vigild.sock").exists()
    # The good file still checks.
    cp = n.run([vigild, "--check-config", "-c", "/etc/vigil/vigil.conf"], check=False)
    assert cp.returncode == 0 and "ok" in cp.stdout


FORGE = r"""
import hashlib, hmac, json, socket, struct, sys
secret, cluster, node, net, state, inc, seq, key_ok, raw = json.loads(sys.argv[1])
secret = secret.encode()
if not key_ok:
    secret = b"not-the-cluster-secret-at-all!!"
k0 = hashlib.sha256(secret).digest()
key = hmac.new(k0, b"vigil v1 " + b"heartbeat" + cluster.encode(), hashlib.sha256).digest()
body = struct.pack(">IBBBBIQQQ", 0x56474c31, 1, node, net, state, 0, inc, seq, 0)
pkt = raw.encode() if raw else body + hmac.new(key, body, hashlib.sha256).digest()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.0.0.2", 0))
s.sendto(pkt, ("10.0.0.1", 8888))
"""


def test_forged_and_replayed_heartbeats_are_rejected(lab):
    secret = secrets.token_hex(24)
    lab.setup_cluster(secret=secret.encode())
    lab.start_vigild(1)
    lab.start_vigild(2)
    lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)
    inc2 = json.loads(lab.node(2).read_file("/var/lib/vigil/node.json"))["incarnation"]
    stop_state = 0  # S_STOP: a forged "peer stopped" would make node1 ALONE
    cases = [
        # (why it must be refused, args)
        ("bad signature", [secret, "lab", 1, 0, stop_state, inc2 + 10, 1, False, ""]),
        ("from an old incarnation", [secret, "lab", 1, 0, stop_state, inc2 - 1, 10**9, True, ""]),
        ("replayed (old sequence)", [secret, "lab", 1, 0, stop_state, inc2, 1, True, ""]),
        ("claims to come from another node", [secret, "lab", 0, 0, stop_state, inc2 + 10, 1, True, ""]),
        ("signed for another heartbeat network", [secret, "lab", 1, 1, stop_state, inc2 + 10, 1, True, ""]),
        ("wrong size", [secret, "lab", 1, 0, 0, 0, 0, True, "garbage"]),
        ("bad signature", [secret, "other-cluster", 1, 0, stop_state, inc2 + 10, 1, True, ""]),
    ]
    for _, args in cases:
        lab.node(2).run([PYTHON, "-c", FORGE, json.dumps(args)])
    time.sleep(1.0)
    assert lab.states(1) == {"node1": ("PRIM", "green", True), "node2": ("SECOND", "green", True)}
    verbose = "\n".join(lab.vigilctl(1, "log", "--verbose", "--lines", "2000", json=True)["lines"])
    rejected = [l for l in verbose.splitlines() if "heartbeat from 10.0.0.2" in l and "rejected: " in l]
    for why, _ in cases:
        assert any(why in l for l in rejected), why
    short = "\n".join(lab.vigilctl(1, "log", json=True)["lines"])
    assert "PRIM -> " not in short, "a forged heartbeat changed node1's state"
    assert lab.client_get() == "node1"


def control(lab, k, payload, timeout=5):
    """Sends raw bytes to node k's control socket, returns the raw answer."""
    code = ("import socket,sys\n"
            "s=socket.socket(socket.AF_UNIX); s.settimeout(%d); s.connect('/run/vigil/vigild.sock')\n"
            "import base64; s.sendall(base64.b64decode(sys.argv[1]))\n"
            "buf=b''\n"
            "while True:\n"
            "    try: d=s.recv(65536)\n"
            "    except Exception: break\n"
            "    if not d: break\n"
            "    buf+=d\n"
            "sys.stdout.write(buf.decode(errors='replace'))\n" % timeout)
    cp = lab.node(k).run([PYTHON, "-c", code, base64.b64encode(payload).decode()],
                         timeout=timeout + 10)
    return cp.stdout


def test_garbage_on_the_control_socket(lab):
    lab.setup_cluster()
    lab.start_vigild(1)
    lab.start_vigild(2)
    lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)
    answers = {
        b"\x00\xff garbage\n": "not JSON",
        b"[1, 2, 3]\n": "expected a JSON object",
        b'{"no": "cmd"}\n': '"cmd"',
        b'{"cmd": "explode"}\n': "unknown command 'explode'",
        b'{"cmd": "stop", "node": "node9"}\n': "unknown node 'node9'",
        b'{"cmd": "stop", "node": 7}\n': '"node" must be a string',
        b'{"cmd": "boot", "mode": "sometimes"}\n': "boot mode 'sometimes'",
        b'{"cmd": "log", "log": "secrets"}\n': "unknown log 'secrets'",
        b"x" * (70 * 1024) + b"\n": "longer than",
    }
    for payload, want in answers.items():
        out = control(lab, 1, payload)
        doc = json.loads(out.splitlines()[0])
        assert doc["ok"] is False and want in doc["error"], (payload[:40], doc)
    # Nothing changed, and vigild still answers.
    assert lab.states(1) == {"node1": ("PRIM", "green", True), "node2": ("SECOND", "green", True)}
    assert lab.client_get() == "node1"
    short = "\n".join(lab.vigilctl(1, "log", json=True)["lines"])
    assert "rejected" in short


def test_replay_right_after_our_restart_is_rejected(lab):
    """The replay window survives a restart of our own vigild: a heartbeat
    of an older peer incarnation is refused even when it is the first one
    heard after the restart."""
    import signal as sig
    secret = secrets.token_hex(24)
    lab.setup_cluster(secret=secret.encode())
    lab.start_vigild(1)
    lab.start_vigild(2)
    lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)
    inc2 = json.loads(lab.node(2).read_file("/var/lib/vigil/node.json"))["incarnation"]
    lab.wait_for(lambda: json.loads(lab.node(1).read_file("/var/lib/vigil/node.json"))
                 .get("peer_incarnation") == inc2, TIMEOUT, what="node1 to record node2's incarnation")
    p2 = lab.node(2).vigild
    p2.send_signal(sig.SIGSTOP)      # node2 goes silent, its state untouched
    try:
        lab.stop_vigild(1, sig=sig.SIGKILL)
        lab.start_vigild(1)
        lab.wait_for(lambda: lab.node(1).host_path("/run/vigil/vigild.sock").exists(), TIMEOUT,
                     what="node1's vigild up")
        # A heartbeat of node2's previous life, claiming it is stopped.
        lab.node(2).run([PYTHON, "-c", FORGE, json.dumps(
            [secret, "lab", 1, 0, 0, inc2 - 1, 10**9, True, ""])])
        lab.wait_for(lambda: "from an old incarnation" in "\n".join(
            lab.vigilctl(1, "log", "--verbose", json=True)["lines"]), TIMEOUT,
            what="node1 to reject the replay")
    finally:
        p2.send_signal(sig.SIGCONT)
    lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)
