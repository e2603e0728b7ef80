#!/usr/bin/env python3
"""vigil demo (make demo): failover and return of a web server and a
PostgreSQL database on the VIP, with the database's data replicated.

Two nodes in the netns lab; busybox httpd is the vigil resource `web`
(when = prim) serving the node's name on the virtual IP 10.0.0.100, and
PostgreSQL the resource `pg`, its data directory /srv/vms/db/pg replicated
by vigil-rfs ([replication] dirs = /srv/vms/db, mode sync). A client asks
http://10.0.0.100/ every 200 ms and the demo prints each change; another
inserts rows into the database on the VIP, one transaction each, and
counts those PostgreSQL confirmed. After each change of PRIM the demo
checks that the new PRIM's database holds every one of them.

Steps: start both nodes (node1 PRIM); kill node1 (node2 takes over);
revive node1 and start its vigild (it returns as SECOND, its copy rebuilt);
`vigilctl swap` (node1 PRIM again). Heartbeat interval_ms 200, timeout_ms
1000. Then, in a lab of its own, the recording pool (demo_pool.py): a
recorder killed and served by a spare, then back with its recordings.

Needs root and a built vigild/vigilctl (VIGIL_BUILD, default <repo>/build).
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import console as con  # noqa: E402
import demo_pool  # noqa: E402
import lab as labmod  # noqa: E402
import pg  # noqa: E402

REPL = ("\n[replication]\ndirs = /srv/vms/db\nmode = sync\nport = 5600\n"
        "aside_dir = /srv/vms/.rfs\n")

INTERVAL_MS, TIMEOUT_MS = 200, 1000
STEP_TIMEOUT = 20.0


class Demo:
    def __init__(self, lab):
        self.lab = lab
        self.t_start = time.monotonic_ns()
        self.rows = []

    def t(self, ns=None):
        return ((ns or time.monotonic_ns()) - self.t_start) / 1e9

    def say(self, msg):
        print(f"[{self.t():6.2f}s] {msg}", flush=True)

    def client_change(self, ns, answer):
        shown = f"{answer} answers" if answer != "-" else "no answer"
        print(f"[{self.t(ns):6.2f}s]     client: {shown}", flush=True)

    def states(self, k):
        st = self.lab.status(k)
        return ", ".join(f"{n['name']} {n['state']} ({n['color']}"
                         f"{'' if n['reachable'] else ', unreachable'})" for n in st["nodes"])

    def step(self, name, fn):
        self.say(f"== {name}")
        t0 = time.monotonic_ns()
        detail = fn(t0)
        secs = (time.monotonic_ns() - t0) / 1e9
        self.rows.append((name, secs, detail))
        self.say(f"   done in {secs:.2f} s{': ' + detail if detail else ''}")


def main():
    if os.geteuid() != 0:
        sys.exit("demo: needs root (network and mount namespaces)")
    for exe in (labmod.Lab.vigild_path(), labmod.Lab.vigilctl_path()):
        if not os.access(exe, os.X_OK):
            sys.exit(f"demo: {exe} is not built (ninja -C {labmod.BUILD}, or set VIGIL_BUILD)")
    if not pg.bindir():
        sys.exit("demo: PostgreSQL is not installed (apt-get install postgresql; make deps does)")
    print(f"vigil demo: two nodes, virtual IP {labmod.VIP}, resources web (busybox httpd) and "
          f"pg (PostgreSQL, data in /srv/vms/db replicated by vigil-rfs).\n"
          f"Heartbeat interval_ms {INTERVAL_MS}, timeout_ms {TIMEOUT_MS} "
          "(snappier than the default 1000/5000).\n")
    with labmod.Lab() as lab:
        demo = Demo(lab)
        try:
            run(lab, demo)
        except (AssertionError, labmod.LabError) as e:
            print(f"\ndemo FAILED: {e}\n", file=sys.stderr)
            for n in lab.nodes:
                print(f"--- vigild log {n.name} (last 30 lines)\n{lab.vigild_log(n.k, 30)}",
                      file=sys.stderr)
            return 1
    try:
        demo_pool.run(demo)
    except (AssertionError, labmod.LabError) as e:
        print(f"\ndemo FAILED: {e}\n", file=sys.stderr)
        for n in demo.lab.nodes:
            print(f"--- vigild log {n.name} (last 30 lines)\n{demo.lab.vigild_log(n.k, 30)}", file=sys.stderr)
        return 1
    print("\n| step | duration s | |\n| --- | ---: | --- |")
    for name, secs, detail in demo.rows:
        print(f"| {name} | {secs:.2f} | {detail} |")
    print("\nlab removed.")
    return 0


def check_ledger(lab, demo, ledger, node):
    n = len(ledger.ids)
    have = set(int(x) for x in pg.psql(lab, "select id from ledger").split())
    lost = [i for i in ledger.ids[:n] if i not in have]
    if lost:
        raise AssertionError(f"{node}'s database lacks {len(lost)} committed inserts: {lost[:10]}")
    demo.say(f"   database on {node}: all {n} inserts the client saw committed are there")
    return n


def run(lab, demo):
    bd = pg.bindir()
    for n in lab.nodes:
        n.host_path("/srv/vms/db").mkdir(parents=True, exist_ok=True)
    resources = {"web": {"start": "/etc/vigil/scripts/web-start", "stop": "/etc/vigil/scripts/web-stop",
                         "when": "prim"}, **pg.resources(bd)}
    lab.setup_cluster(labmod.cluster_config(lab, interval_ms=INTERVAL_MS, timeout_ms=TIMEOUT_MS,
                                            resources=resources, extra=REPL))
    pg.setup(lab, bd)
    con.make_pki(lab, 1)
    demo.say(f"lab {lab.prefix} ready: node1 10.0.0.1/10.0.1.1, node2 10.0.0.2/10.0.1.2, "
             f"client {labmod.CLIENT_ADDR}; PostgreSQL initialised in node1's /srv/vms/db/pg")
    poller = lab.client_poller(timeout=0.15, interval=0.2, on_change=demo.client_change)
    ledger = None

    def wait_uptodate(k):
        lab.wait_for(lambda: all(n.get("sync") == "uptodate" for n in lab.status(k)["nodes"]),
                     STEP_TIMEOUT, what="both copies up to date")

    def start_both(t0):
        lab.start_vigild(1)
        lab.start_vigild(2)
        lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, timeout=STEP_TIMEOUT)
        ts = poller.wait_answer("node1", t0, timeout=STEP_TIMEOUT)
        wait_uptodate(1)
        pg.psql(lab, "create table ledger (id bigint primary key)")
        nonlocal ledger
        ledger = labmod.Acked(pg.ledger_client(lab, 1))
        lab.wait_for(lambda: len(ledger.ids) >= 20, STEP_TIMEOUT, what="commits on node1")
        return (f"{demo.states(1)}; node1 answers after {(ts - t0) / 1e9:.2f} s; "
                "both copies up to date; the client commits inserts")

    def kill_node1(t0):
        lab.node(1).kill()
        ts = poller.wait_answer("node2", t0, timeout=STEP_TIMEOUT)
        took = (ts - t0) / 1e9
        demo.say(f"   first answer from node2 {took:.2f} s after the kill")
        lab.wait_states(2, {"node2": "ALONE", "node1": None}, timeout=STEP_TIMEOUT)
        n = check_ledger(lab, demo, ledger, "node2")
        return (f"first answer from node2 after {took:.2f} s; {demo.states(2)}; "
                f"{n} committed inserts, none lost")

    def return_node1(t0):
        lab.node(1).revive()
        lab.start_vigild(1)
        lab.wait_states(1, {"node1": "SECOND", "node2": "PRIM"}, timeout=STEP_TIMEOUT)
        if poller.last() != "node2":
            raise AssertionError(f"the client should still get node2, got {poller.last()}")
        wait_uptodate(1)
        return demo.states(1) + "; node1's copy rebuilt, up to date"

    def swap(t0):
        out = lab.vigilctl(1, "swap").stdout.strip()
        if out:
            demo.say(f"   vigilctl swap: {out}")
        ts = poller.wait_answer("node1", t0, timeout=STEP_TIMEOUT)
        took = (ts - t0) / 1e9
        lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, timeout=STEP_TIMEOUT)
        n = check_ledger(lab, demo, ledger, "node1")
        return f"node1 answers after {took:.2f} s; {demo.states(1)}; {n} committed inserts, none lost"

    def web_console(t0):
        con.set_password(lab, 1)
        ca = lab.dir / "demo-cacert.crt"
        ca.write_bytes(lab.node(1).host_path(f"{con.CONF_DIR}/pki/cacert.crt").read_bytes())
        api = con.Api(lab, labmod.VIP, https=True, cacert=str(ca))
        try:
            if api.login("not-the-password").code != 401:
                raise AssertionError("the console took a wrong password")
            a = api.login()
            if a.code != 200:
                raise AssertionError(f"console login failed: {a}")
            a = api.get("/api/v1/cluster")
            if a.code != 200:
                raise AssertionError(f"GET /api/v1/cluster: {a}")
            seen = ", ".join(f"{n['name']} {n['state']} ({n['color']})" for n in a.json()["nodes"])
        finally:
            api.cleanup()
        return (f"https://{labmod.VIP}:9453/ (user admin) verified with the cluster CA; "
                f"wrong password refused; the API shows {seen}")

    demo.step("start both nodes", start_both)
    demo.step("kill node1", kill_node1)
    demo.step("revive node1, start its vigild", return_node1)
    demo.step("vigilctl swap", swap)
    demo.step("web console over HTTPS", web_console)
    time.sleep(0.5)
    ledger.stop()
    poller.stop()
    order = [f"{n} {r} {a}" for n, r, a, _ in lab.journal()]
    demo.say("script journal: " + ", ".join(order))


if __name__ == "__main__":
    sys.exit(main())
