"""Zero loss with PostgreSQL: its data directory replicated by vigil-rfs,
the server a vigil resource on the virtual IP, a client counting what it
saw committed. Each round kills the PRIM node (every process, links down)
at a random moment; the SECOND takes over, PostgreSQL starts on its copy
without manual repair, and every committed insert is there."""

import os
import random
import subprocess
import time

import pg
from lab import Acked, cluster_config
from test_replication import DIRS, REPL, rejoin_as_second, wait_sync

TIMEOUT = 30.0
ROUNDS = int(os.environ.get("VIGIL_PG_ROUNDS", "20"))


def pg_log(lab, k):
    try:
        return "\n".join(lab.node(k).read_file(pg.SOCK + "/log").splitlines()[-30:])
    except OSError as e:
        return str(e)


def test_zero_loss_postgresql_over_killed_prims(lab):
    bd = pg.bindir()
    assert bd, "PostgreSQL is not installed (apt-get install postgresql; scripts/install-deps does)"
    for n in lab.nodes:
        for d in DIRS:
            n.host_path(d).mkdir(parents=True, exist_ok=True)
    lab.setup_cluster(cluster_config(lab, cluster={"max_failovers": 64}, resources=pg.resources(bd),
                                     extra=REPL), scripts=False)
    pg.setup(lab, bd)
    lab.start_vigild(1)
    lab.start_vigild(2)
    lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)
    wait_sync(lab, 1, {"node1": "uptodate", "node2": "uptodate"}, TIMEOUT)
    pg.psql(lab, "create table ledger (id bigint primary key)")
    lab.client.run(["pgbench", "-h", "10.0.0.100", "-U", "postgres", "-i", "-q", "-s", "1", "postgres"],
                   timeout=120)
    rng = random.Random(os.environ.get("VIGIL_SEED") or time.time_ns())
    prim, first, total = 1, 0, 0
    for rnd in range(ROUNDS):
        other = 3 - prim
        client = Acked(pg.ledger_client(lab, first))
        acked = client.ids
        # pgbench (TPC-B like) as the load the kill lands in.
        bench = lab.client.popen(["pgbench", "-h", "10.0.0.100", "-U", "postgres", "-n", "-c", "2",
                                  "-T", "600", "postgres"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        lab.wait_for(lambda: len(acked) >= 5, TIMEOUT, what=f"round {rnd}: commits on node{prim}")
        time.sleep(rng.uniform(0.0, 1.5))
        lab.node(prim).kill()
        try:
            lab.wait_states(other, {f"node{other}": "ALONE", f"node{prim}": None}, TIMEOUT)
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- PostgreSQL log on node{other}:\n"
                                 f"{pg_log(lab, other)}") from None
        # A few commits on the new PRIM too, then the client stops.
        n0 = len(acked)
        lab.wait_for(lambda: len(acked) >= n0 + 3, TIMEOUT, what=f"round {rnd}: commits on node{other}")
        client.stop()
        bench.kill()
        bench.wait()
        have = set(int(x) for x in pg.psql(lab, f"select id from ledger where id >= {first}").split())
        lost = sorted(n for n in acked if n not in have)
        assert not lost, (f"round {rnd}: node{other} lacks {len(lost)} of {len(acked)} committed "
                          f"inserts: {lost[:10]}")
        total += len(acked)
        # pgbench's transactions are atomic: what the accounts hold is what
        # the history says was moved, after any number of crashes.
        bal, hist = pg.psql(lab, "select (select sum(abalance) from pgbench_accounts), "
                                 "(select coalesce(sum(delta), 0) from pgbench_history)").split("|")
        assert int(bal) == int(hist), f"round {rnd}: accounts {bal} != history {hist}"
        rejoin_as_second(lab, prim, other, 60)
        first = max(acked) + 1000
        prim = other
    rows = int(pg.psql(lab, "select count(*) from pgbench_history"))
    assert rows > 0, "pgbench committed nothing: the load did not run"
    print(f"{ROUNDS} rounds, {total} committed inserts checked, none lost; "
          f"{rows} pgbench transactions kept, accounts balanced")
