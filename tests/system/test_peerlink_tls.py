"""Mutual TLS on the command link between the two vigild ([cluster]
link_tls, docs/pki.md): with the cluster's certificates the link speaks TLS
and each side must show a certificate of the cluster's CA naming the node
it is; a stranger's certificate is refused with a clear log line."""

import subprocess
import time

import console as con

TIMEOUT = 20


def _log_has(lab, k, text, timeout=10):
    lab.wait_for(lambda: text in lab.vigild_log(k, lines=400), timeout, what=f"node{k} log: {text!r}")


def test_link_is_mutual_tls_with_the_cluster_ca(lab, tmp_path):
    lab.setup_cluster()
    con.make_pki(lab, 1)
    lab.start_vigild(1)
    lab.start_vigild(2)
    lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)
    _log_has(lab, 1, "peer link: mutual TLS with /etc/vigil/pki/node1.crt")
    # A command relayed over the link works.
    lab.vigilctl(1, "failover", "off", "--node", "node2")
    assert [n["failover"] for n in lab.status(1)["nodes"]] == [True, False]
    lab.vigilctl(1, "failover", "on", "--node", "node2")

    # From the outside: the port speaks TLS, and wants a client certificate.
    ca = lab.node(1).host_path("/etc/vigil/pki/cacert.crt")
    # (TLS 1.3 says "certificate required" after the handshake: stdin
    # stays open a moment so that the alert is read.)
    cp = lab.client.run(["sh", "-c", f"sleep 1 | openssl s_client -connect 10.0.0.1:8888 -CAfile {ca} "
                         "-verify_return_error -brief 2>&1"], check=False, timeout=15)
    out = cp.stdout
    assert "Protocol version: TLSv1.3" in out and "Peer certificate: CN = node1" in out, out
    assert "Verification: OK" in out, out
    assert "certificate required" in out, out
    _log_has(lab, 1, "peer link: TLS with 10.0.0.200")


def test_a_certificate_of_another_ca_is_refused(lab, tmp_path):
    lab.setup_cluster()
    con.make_pki(lab, 1)
    # node2 gets a CA and certificate of its own making: same names, other CA.
    n2 = lab.node(2)
    for f in ("cacert.crt", "ca.key", "node1.crt", "node1.key", "node2.crt", "node2.key"):
        p = n2.host_path(f"/etc/vigil/pki/{f}")
        if p.exists():
            p.unlink()
    lab.vigilctl(2, "pki")
    lab.start_vigild(1)
    lab.start_vigild(2)
    # Heartbeats still make a cluster; the command link refuses the stranger.
    lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)
    cp = lab.vigilctl(1, "failover", "off", "--node", "node2", check=False)
    assert cp.returncode != 0
    assert "TLS" in cp.stderr, cp.stderr
    _log_has(lab, 2, "peer link: TLS with 10.0.")
    assert [n["failover"] for n in lab.status(2)["nodes"] if n["name"] == "node2"] == [True]


def test_link_tls_on_without_certificates_does_not_start(lab):
    cfg = lab.setup_cluster()
    cfg = cfg.replace("run_dir = /run/vigil\n", "run_dir = /run/vigil\nlink_tls = on\n")
    for n in lab.nodes:
        lab.write_config(n.k, cfg)
    p = lab.start_vigild(1)
    deadline = time.monotonic() + 10
    while p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert p.poll() is not None and p.returncode != 0, "vigild started without the certificates"
    log = lab.vigild_log(1, lines=50)
    assert "link_tls = on" in log and "vigilctl pki" in log, log
