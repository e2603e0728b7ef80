"""The console's HTTP(S) API (docs/api.md) on a two-node lab cluster:
sessions, CSRF, the password rules, throttling, HTTPS with the cluster's
own CA, relaying to the other node, bad input."""

import os
import re
import subprocess
import time
import tarfile

import pytest

import console as con
import lab as labmod

TIMEOUT = 20
N1, N2 = "10.0.0.1", "10.0.0.2"

READS = ["/api/v1/cluster", "/api/v1/info", "/api/v1/session", "/api/v1/nodes/node1/logs/module",
         "/api/v1/nodes/node2/logs/commands", "/api/v1/nodes/node1/snapshot",
         "/api/v1/nodes/node2/info"]
CHANGES = ["/api/v1/logout", "/api/v1/password", "/api/v1/nodes/node1/stop",
           "/api/v1/nodes/node2/swap", "/api/v1/nodes/node1/boot", "/api/v1/nodes/node2/failover"]


@pytest.fixture
def cluster(lab):
    lab.setup_cluster()
    con.start_cluster(lab, TIMEOUT)
    apis = []

    def api(addr=N1, **kw):
        a = con.Api(lab, addr, **kw)
        apis.append(a)
        return a

    yield api
    for a in apis:
        a.cleanup()


def states(lab, k=1):
    return {n["name"]: n["state"] for n in lab.status(k)["nodes"]}


def test_every_endpoint_needs_a_session_and_changes_a_csrf_token(lab, cluster):
    anon = cluster()
    for path in READS:
        a = anon.get(path)
        assert a.code == 401, (path, a)
        assert "not logged in" in a.json()["error"]
    for path in CHANGES:
        a = anon.post(path, {})
        assert a.code == 401, (path, a)
    # A forged cookie is no session either.
    a = anon.get("/api/v1/cluster", headers=["Cookie: vigil_session=" + "0" * 64])
    assert a.code == 401, a

    api = cluster()
    a = api.login()
    assert a.code == 200, a
    assert len(a.json()["csrf"]) == 64
    cookie = a.header("Set-Cookie")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie, cookie
    assert "Secure" not in cookie, "plain HTTP cannot carry a Secure cookie"
    for path in CHANGES:
        a = api.post(path, {}, csrf=False)
        assert a.code == 403, (path, a)
        a = api.post(path, {}, csrf=False, headers=["X-CSRF-Token: " + "f" * 64])
        assert a.code == 403, (path, a)
    assert states(lab) == {"node1": "PRIM", "node2": "SECOND"}, "a refused change changed something"

    # The session's token is the one GET session gives back (a reloaded page).
    a = api.get("/api/v1/session")
    assert a.code == 200 and a.json()["csrf"] == api.csrf, a
    a = api.post("/api/v1/logout", {})
    assert a.code == 200, a
    assert api.get("/api/v1/cluster").code == 401


def test_cluster_is_the_status_of_vigilctl_and_either_node_answers(lab, cluster):
    api = cluster(N1)
    assert api.login().code == 200
    a = api.get("/api/v1/cluster")
    assert a.code == 200, a
    mine = a.json()
    ctl = lab.status(1)
    assert set(mine) == set(ctl)
    assert [(n["name"], n["state"], n["color"]) for n in mine["nodes"]] == \
        [(n["name"], n["state"], n["color"]) for n in ctl["nodes"]]

    # node2's log, asked of node1.
    a = api.get("/api/v1/nodes/node2/logs/module?lines=50")
    assert a.code == 200, a
    assert a.json()["node"] == "node2" and a.json()["lines"], a
    a = api.get("/api/v1/nodes/node2/info")
    assert a.code == 200 and a.json()["node"] == "node2", a
    assert a.json()["config"]["vip"]["address"] == labmod.VIP

    # An action on node2 sent to node1: node2 stops, node1 is ALONE.
    a = api.post("/api/v1/nodes/node2/stop")
    assert a.code == 200, a
    lab.wait_for(lambda: states(lab) == {"node1": "ALONE", "node2": "STOP"}, TIMEOUT,
                 what="node1 ALONE, node2 STOP")
    a = api.get("/api/v1/nodes/node1/logs/commands")
    lines = "\n".join(a.json()["lines"])
    assert f"admin@{labmod.CLIENT_ADDR} (http): stop --node node2 -> ok" in lines, lines
    assert f"admin@{labmod.CLIENT_ADDR} (http): login -> ok" in lines, lines
    a = api.post("/api/v1/nodes/node2/start")
    assert a.code == 200, a
    lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)

    # node2's console knows the same password and answers for node1.
    api2 = cluster(N2)
    assert api2.login().code == 200
    a = api2.get("/api/v1/nodes/node1/logs/application")
    assert a.code == 200 and a.json()["node"] == "node1", a


def test_password_rules_and_change_on_both_nodes(lab, cluster):
    api = cluster()
    assert api.login().code == 200
    for bad, rule in [("abc", "6 to 32"), ("x" * 33, "6 to 32"), ("pass word", "letters, digits"),
                      ("mot-de-passe!", "letters, digits"), ("pässwörd", "letters, digits")]:
        a = api.post("/api/v1/password", {"password": bad})
        assert a.code == 400, (bad, a)
        assert rule in a.json()["error"], (bad, a)
    assert api.post("/api/v1/password", {}).code == 400
    assert api.post("/api/v1/password", {"password": 123456}).code == 400
    before = lab.node(1).read_file("/etc/vigil/console.passwd")
    assert before.startswith("$argon2id$"), "the file holds the hash, never the password"
    assert con.PASSWORD not in before

    other = cluster(N2)
    assert other.login().code == 200 and other.get("/api/v1/cluster").code == 200
    new = "New(pass)_2.x"
    a = api.post("/api/v1/password", {"password": new})
    assert a.code == 200, a
    h1 = lab.node(1).read_file("/etc/vigil/console.passwd")
    h2 = lab.node(2).read_file("/etc/vigil/console.passwd")
    assert h1 == h2 and h1 != before and h1.startswith("$argon2id$")
    # Every session, on both nodes, ended with the old password.
    assert api.get("/api/v1/cluster").code == 401
    assert other.get("/api/v1/cluster").code == 401
    api2 = cluster(N2)
    assert api2.login(con.PASSWORD).code == 401
    assert api2.login(new).code == 200
    # vigilctl refuses a bad one with the rule, and changes nothing.
    cp = con.set_password(lab, 2, "short", check=False)
    assert cp.returncode != 0 and "6 to 32" in cp.stderr, cp
    assert lab.node(2).read_file("/etc/vigil/console.passwd") == h2


def test_failed_logins_are_throttled(lab, cluster):
    api = cluster()
    codes = [api.login("wrong-" + str(i)).code for i in range(20)]
    assert codes[0] == 401
    assert 429 in codes, codes
    first = codes.index(429)
    assert first <= 10, codes
    assert all(c == 429 for c in codes[first:]), codes
    a = api.login()
    assert a.code == 429, "a locked-out client is refused even with the right password"
    assert int(a.header("Retry-After")) > 0
    assert "retry in" in a.json()["error"]
    assert api.login(user="root").code == 429
    # Another client address is not locked out by this one's failures.
    other = lab.add_host("other", "10.0.0.201")
    api2 = cluster(N1, host=other)
    assert api2.login().code == 200
    assert api2.login(user="root").code == 401


def test_https_verifies_against_the_exported_ca_and_names_the_vip(lab, cluster, tmp_path):
    exp = tmp_path / "ca"
    exp.mkdir()
    lab.vigilctl(1, "cert", "export", str(exp))
    ca = exp / "cacert.crt"
    assert ca.read_text().startswith("-----BEGIN CERTIFICATE-----")
    for addr in (labmod.VIP, N1, N2):
        api = cluster(addr, https=True, cacert=str(ca))
        a = api.login()
        assert a.code == 200, (addr, a)
        assert "Secure" in a.header("Set-Cookie")
        assert api.get("/api/v1/cluster").code == 200
    # The certificate names the VIP and both nodes.
    out = lab.client.run(["sh", "-c", f"openssl s_client -connect {labmod.VIP}:9453 "
                          f"-CAfile {ca} -verify_return_error </dev/null 2>/dev/null | "
                          "openssl x509 -noout -ext subjectAltName"]).stdout
    assert f"IP Address:{labmod.VIP}" in out, out
    assert "DNS:node1" in out and "DNS:node2" in out, out
    # Another CA does not vouch for it.
    other = tmp_path / "other.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(tmp_path / "other.key"), "-out", str(other),
                    "-subj", "/CN=other", "-days", "1"], check=True, capture_output=True)
    bad = cluster(labmod.VIP, https=True, cacert=str(other))
    assert bad.login().code == 0


def test_snapshot_downloads_from_either_node(lab, cluster, tmp_path):
    api = cluster()
    assert api.login().code == 200
    for node in ("node1", "node2"):
        out = tmp_path / f"{node}.tar.gz"
        a = api.get(f"/api/v1/nodes/{node}/snapshot", out=str(out), timeout=120)
        assert a.code == 200, (node, a, out.read_bytes()[:300] if out.exists() else "")
        disp = a.header("Content-Disposition")
        assert disp.startswith(f'attachment; filename="vigil-{node}-') and disp.endswith('.tar.gz"'), disp
        with tarfile.open(out) as t:
            names = t.getnames()
        assert any(n.endswith("status.json") or "status" in n for n in names), names
        assert any("vigil.conf" in n for n in names), names
        secret = lab.node(1).read_file("/etc/vigil/secret")
        with tarfile.open(out) as t:
            for m in t.getmembers():
                if m.isfile():
                    assert secret.strip() not in t.extractfile(m).read().decode(errors="replace"), m.name


def dumps(lab, k):
    d = lab.node(k).host_path("/var/lib/vigil/dumps")
    return sorted(os.listdir(d)) if d.exists() else []


def test_dump_is_kept_on_the_node_newest_three(lab, cluster):
    api = cluster()
    assert api.login().code == 200
    made = []
    for i in range(4):
        if i:
            time.sleep(1.1)  # names carry the second
        a = api.post("/api/v1/nodes/node1/dump", timeout=120)
        assert a.code == 200, a
        r = a.json()["result"]
        assert r["node"] == "node1" and r["size"] > 0, r
        assert r["message"] == f"node1: dump written to {r['path']}", r
        made.append(os.path.basename(r["path"]))
    assert all(re.fullmatch(r"dump_\d{8}_\d{6}\.tar\.gz", m) for m in made), made
    assert dumps(lab, 1) == made[1:], "the newest 3 are kept, the oldest removed"
    with tarfile.open(lab.node(1).host_path(f"/var/lib/vigil/dumps/{made[-1]}")) as t:
        assert any("vigil.conf" in n for n in t.getnames())
    # node2's dump, asked through node1, is written on node2; the CLI too.
    a = api.post("/api/v1/nodes/node2/dump", timeout=120)
    assert a.code == 200 and a.json()["result"]["node"] == "node2", a
    assert len(dumps(lab, 2)) == 1
    cp = lab.vigilctl(1, "--node", "node2", "dump", timeout=150)
    assert "node2: dump written to /var/lib/vigil/dumps/dump_" in cp.stdout, cp
    assert 1 <= len(dumps(lab, 2)) <= 2
    assert dumps(lab, 1) == made[1:]
    log = api.get("/api/v1/nodes/node1/logs/commands").json()["lines"]
    assert any("dump" in line and "admin" in line for line in log), log[-5:]


def test_bad_input_is_refused_and_changes_nothing(lab, cluster):
    api = cluster()
    assert api.login().code == 200
    before = states(lab)
    cases = [
        ("POST", "/api/v1/nodes/node1/stop", {"raw": "{not json"}, 400, "not valid JSON"),
        ("POST", "/api/v1/nodes/node1/stop", {"raw": "[1,2]"}, 400, "JSON object"),
        ("POST", "/api/v1/nodes/node1/stop", {"body": {"force": True}}, 400, "unknown field 'force'"),
        ("POST", "/api/v1/nodes/node1/boot", {"body": {"mode": 3}}, 400, "\"mode\" must be a string"),
        ("POST", "/api/v1/nodes/node1/swap", {"body": {"nosync": "yes"}}, 400, "true or false"),
        ("POST", "/api/v1/nodes/node1/stop", {"raw": "{\"a\":\"" + "x" * 70000 + "\"}"}, 413, None),
        ("POST", "/api/v1/nodes/node9/stop", {}, 404, "unknown node 'node9'"),
        ("POST", "/api/v1/nodes/node1/explode", {}, 404, "unknown action 'explode'"),
        ("GET", "/api/v1/nodes/node1/logs/secret", {}, 404, "unknown log 'secret'"),
        ("GET", "/api/v1/nodes/node1/logs/../../../etc/passwd", {}, 400, "bad path"),
        ("GET", "/api/v1/nodes/node1/logs/..%2f..%2fetc%2fpasswd", {}, 400, "bad path"),
        ("GET", "/api/v1/nodes/..%2fnode1/snapshot", {}, 400, "bad path"),
        ("GET", "/api/v1/nodes/node1/snapshot/..", {}, 400, "bad path"),
        ("GET", "/api/v1/nodes/node1/logs/module?lines=0", {}, 400, "lines must be"),
        ("GET", "/api/v1/nodes/node1/logs/module?verbose=yes", {}, 400, "verbose must be"),
        ("GET", "/api/v1/nodes/node1/stop", {}, 405, "only POST"),
        ("POST", "/api/v1/cluster", {}, 405, "only GET"),
        ("GET", "/api/v1/nothing", {}, 404, "no such endpoint"),
        ("GET", "/../../etc/passwd", {}, 400, "bad path"),
        ("GET", "/nothing.html", {}, 404, None),
    ]
    for method, path, kw, code, text in cases:
        a = api.request(method, path, **kw)
        assert a.code == code, (method, path, a)
        if text:
            assert text in a.json()["error"], (method, path, a)
    anon = cluster()
    a = anon.post("/api/v1/login", raw="{\"user\": \"admin\", \"password\": ")
    assert a.code == 400 and "not valid JSON" in a.json()["error"], a
    a = anon.post("/api/v1/login", {"user": "admin"})
    assert a.code == 400, a
    assert states(lab) == before
    # Still serving after all that.
    assert api.get("/api/v1/cluster").code == 200


def test_console_page_and_languages(lab, cluster):
    anon = cluster()
    a = anon.get("/")
    assert a.code == 200 and "<html" in a.body.lower(), a
    assert "default-src 'self'" in a.header("Content-Security-Policy")
    assert a.header("X-Frame-Options") == "DENY"
    assert anon.get("/app.js").code == 200
    for accept, lang in [("fr-FR,fr;q=0.9,en;q=0.8", "fr"), ("ja,en;q=0.5", "ja"), ("de-DE", "en"),
                         ("de, ja;q=0.3, fr;q=0.6", "fr"), ("", "en")]:
        a = anon.get("/i18n.json", headers=[f"Accept-Language: {accept}"])
        assert a.code == 200 and a.json()["lang"] == lang, (accept, a)
    en = anon.get("/i18n.json").json()["strings"]
    fr = anon.get("/i18n.json", headers=["Accept-Language: fr"]).json()["strings"]
    assert set(en) == set(fr) and en != fr and len(en) > 20
    assert fr["view_monitoring"] == "Surveillance", fr.get("view_monitoring")


def test_a_certificate_near_expiry_raises_an_alarm(lab):
    lab.setup_cluster()
    lab.vigilctl(1, "pki", "--days", "10")
    lab.start_vigild(1)
    lab.wait_for(lambda: any("expires in" in a["message"]
                             for a in lab.status(1)["nodes"][0]["alarms"]), TIMEOUT,
                 what="node1's certificate alarm")
    alarm = [a["message"] for a in lab.status(1)["nodes"][0]["alarms"] if "expires in" in a["message"]][0]
    assert "/etc/vigil/pki/node1.crt" in alarm and ("9 days" in alarm or "10 days" in alarm), alarm
    assert "ALARM" in lab.vigild_log(1, lines=200)
    info = con.Api(lab, N1)
    try:
        con.set_password(lab, 1, check=False)  # node2 is away: changed on node1 only
        assert info.login().code == 200
        certs = info.get("/api/v1/info").json()["certificates"]
        assert {c["use"] for c in certs} == {"console (HTTPS)"}, certs
        assert certs[0]["days_left"] in (9, 10), certs
    finally:
        info.cleanup()


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=cwd)


def test_custom_certificates_and_client_certificates(lab, tmp_path):
    """The seeds' custom certificates: server.crt/server.key and
    clcacert.crt dropped into the config directory replace the generated
    ones; with clcacert.crt a browser must show a client certificate."""
    lab.setup_cluster()
    con.make_pki(lab, 1)
    d = str(tmp_path)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "corp.key", "-out", "corp.crt", "-subj", "/CN=Corp CA",
             "-days", "30", "-addext", "basicConstraints=critical,CA:TRUE", cwd=d)
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=vms.example", cwd=d)
    (tmp_path / "ext").write_text(f"subjectAltName=IP:{N1},DNS:vms.example\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "corp.crt", "-CAkey", "corp.key", "-CAcreateserial",
             "-out", "server.crt", "-days", "30", "-extfile", "ext", cwd=d)
    _openssl("req", "-x509", *ec, "-keyout", "clca.key", "-out", "clca.crt", "-subj", "/CN=Clients",
             "-days", "30", "-addext", "basicConstraints=critical,CA:TRUE", cwd=d)
    _openssl("req", *ec, "-keyout", "op.key", "-out", "op.csr", "-subj", "/CN=operator", cwd=d)
    _openssl("x509", "-req", "-in", "op.csr", "-CA", "clca.crt", "-CAkey", "clca.key", "-CAcreateserial",
             "-out", "op.crt", "-days", "30", cwd=d)
    n1 = lab.node(1)
    n1.write_file("/etc/vigil/server.crt", (tmp_path / "server.crt").read_bytes())
    n1.write_file("/etc/vigil/server.key", (tmp_path / "server.key").read_bytes(), 0o600)
    n1.write_file("/etc/vigil/clcacert.crt", (tmp_path / "clca.crt").read_bytes())
    lab.start_vigild(1)
    lab.start_vigild(2)
    lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)
    con.set_password(lab, 1)
    corp = str(tmp_path / "corp.crt")
    base = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", corp]
    url = f"https://{N1}:9453/api/v1/session"
    # The custom certificate is served (it verifies against the corporate CA)...
    cp = lab.client.run(base + ["--cert", str(tmp_path / "op.crt"), "--key", str(tmp_path / "op.key"), url],
                        check=False)
    assert cp.stdout == "401", cp  # TLS fine; no session yet
    # ... and without a client certificate the handshake is refused.
    cp = lab.client.run(base + [url], check=False)
    assert cp.returncode != 0 and cp.stdout in ("", "000"), cp
    # A client certificate of another CA neither.
    cp = lab.client.run(base + ["--cert", corp, "--key", str(tmp_path / "corp.key"), url], check=False)
    assert cp.returncode != 0, cp
    # node2 has no custom files: it serves the generated certificate, and
    # asks for no client certificate.
    api = con.Api(lab, N2, https=True, cacert=str(n1.host_path("/etc/vigil/pki/cacert.crt")))
    try:
        assert api.login().code == 200
    finally:
        api.cleanup()
