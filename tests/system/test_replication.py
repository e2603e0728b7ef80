"""[replication] under vigild on the netns lab: vigild runs vigil-rfs as the
role says (prim: the dirs mounted over themselves; second: applying), the
status shows each node's "sync", a takeover serves every acknowledged
write, and a copy that is not up to date never takes over by itself."""

import hashlib
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from lab import Acked, cluster_config

TIMEOUT = 15.0
DIRS = ("/srv/vms/db", "/srv/vms/conf")
REPL = ("\n[replication]\ndirs = /srv/vms/db, /srv/vms/conf\nexclude = *.tmp\n"
        "mode = sync\nport = 5600\naside_dir = /srv/vms/.rfs\nack_timeout_ms = 1500\n"
        "connect_timeout_ms = 3000\n")


def setup_repl(lab, extra="", cluster=None):
    for n in lab.nodes:
        for d in DIRS:
            n.host_path(d).mkdir(parents=True, exist_ok=True)
    return lab.setup_cluster(cluster_config(lab, cluster=cluster, extra=REPL + extra))


def sync_of(lab, k):
    return {n["name"]: n.get("sync") for n in lab.status(k)["nodes"]}


def wait_sync(lab, k, expected, timeout=TIMEOUT):
    lab.wait_for(lambda: sync_of(lab, k) == expected, timeout,
                 what=f"sync {expected} (last {sync_of(lab, k)})")


def start_pair(lab, cluster=None):
    setup_repl(lab, cluster=cluster)
    lab.start_vigild(1)
    lab.start_vigild(2)
    lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)
    wait_sync(lab, 1, {"node1": "uptodate", "node2": "uptodate"})


def wait_state(lab, k, name, state, color="green", timeout=TIMEOUT):
    seen = []

    def reached():
        seen[:] = [lab.states(k).get(name)]
        return seen[0] is not None and seen[0][:2] == (state, color)
    # Not a status call in the message: it would run before the wait, and
    # fail while a just started vigild is not yet listening.
    try:
        lab.wait_for(reached, timeout, what=f"node{k} to show {name} {state} {color}")
    except AssertionError as e:
        raise AssertionError(f"{e}; last state seen: {seen}") from None


def rfs_pids(lab, k):
    """node k's vigil-rfs processes (pids are shared by the lab's namespaces:
    those in node k's network namespace)."""
    out = []
    for p in lab.node(k).pids():
        try:
            if open(f"/proc/{p}/comm").read().strip() == "vigil-rfs":
                out.append(p)
        except FileNotFoundError:
            pass
    return sorted(out)


def kill_rfs(lab, k):
    """SIGKILL node k's vigil-rfs."""
    pids = rfs_pids(lab, k)
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert len(pids) == 1, f"node{k}: {len(pids)} vigil-rfs killed"


def rejoin_as_second(lab, k, prim, timeout=30):
    """Killed node k back: links up, vigild started; it joins as SECOND of
    prim and its copy is rebuilt."""
    lab.node(k).revive()
    lab.start_vigild(k)
    lab.wait_states(k, {f"node{k}": "SECOND", f"node{prim}": "PRIM"}, TIMEOUT)
    wait_sync(lab, prim, {"node1": "uptodate", "node2": "uptodate"}, timeout)


def sh(lab, k, script, check=True):
    return lab.node(k).run(["sh", "-c", script], check=check)


def tree(lab, k):
    """{relative path: sha256} of the replicated dirs, read on the host from
    the node's backing directory (not through its mount)."""
    out = {}
    for d in DIRS:
        root = lab.node(k).host_path(d)
        for dp, dns, fns in os.walk(root):
            for f in fns:
                p = os.path.join(dp, f)
                out[os.path.relpath(p, root.parent)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def trees_equal(lab, a, b):
    """True when node a's tree equals node b's, both without the excluded
    *.tmp (local to each node); raises naming the paths that differ, so a
    wait_for that times out shows them."""
    ta = {k: v for k, v in tree(lab, a).items() if not k.endswith(".tmp")}
    tb = {k: v for k, v in tree(lab, b).items() if not k.endswith(".tmp")}
    diff = sorted(k for k in ta.keys() | tb.keys() if ta.get(k) != tb.get(k))
    if diff:
        raise AssertionError(f"node{a} and node{b} differ in {diff}")
    return True


def fuse_mounts(lab, k):
    mounts = sh(lab, k, "cat /proc/self/mounts").stdout
    return sorted(line.split()[1] for line in mounts.splitlines() if "vigil-rfs" in line)


def test_prim_serves_and_second_applies(lab):
    start_pair(lab)
    # The PRIM's dirs are FUSE mounts; the SECOND's are plain.
    assert fuse_mounts(lab, 1) == sorted(DIRS)
    assert fuse_mounts(lab, 2) == []
    sh(lab, 1, "echo hello > /srv/vms/db/a && mkdir /srv/vms/conf/sub && "
               "echo cfg > /srv/vms/conf/sub/c && echo skip > /srv/vms/db/x.tmp && sync")
    # sync mode: each write returned after node2 received it.
    assert lab.node(2).read_file("/srv/vms/db/a") == "hello\n"
    lab.wait_for(lambda: tree(lab, 2) == {k: v for k, v in tree(lab, 1).items()
                                          if not k.endswith(".tmp")},
                 TIMEOUT, what="node2's copy equal to node1's (x.tmp excluded)")
    assert not lab.node(2).host_path("/srv/vms/db/x.tmp").exists()


def test_takeover_keeps_every_acknowledged_write(lab):
    start_pair(lab)
    sh(lab, 1, "for i in $(seq 1 50); do echo $i > /srv/vms/db/f$i; done; sync")
    before = tree(lab, 1)
    lab.node(1).kill()
    lab.wait_states(2, {"node2": "ALONE", "node1": None}, TIMEOUT)
    # Taking over from a lost peer does not wait for it: served at once.
    assert fuse_mounts(lab, 2) == sorted(DIRS)
    assert {k: v for k, v in tree(lab, 2).items() if k in before} == before
    assert sync_of(lab, 2)["node2"] == "connection error"
    sh(lab, 2, "echo after > /srv/vms/db/new && rm /srv/vms/db/f1 && sync")
    # node1 comes back as SECOND: its copy is rebuilt from node2's.
    lab.node(1).revive()
    # Its killed prim left dead FUSE mounts: vigil-rfs detaches them.
    assert fuse_mounts(lab, 1) == sorted(DIRS)
    lab.start_vigild(1)
    lab.wait_states(1, {"node1": "SECOND", "node2": "PRIM"}, TIMEOUT)
    wait_sync(lab, 2, {"node1": "uptodate", "node2": "uptodate"}, 30)
    assert fuse_mounts(lab, 1) == []
    lab.wait_for(lambda: tree(lab, 1) == tree(lab, 2), TIMEOUT, what="identical copies")
    assert "db/new" in tree(lab, 1) and "db/f1" not in tree(lab, 1)


def test_outdated_copy_waits_and_forcestart_serves_it(lab):
    start_pair(lab)
    sh(lab, 1, "echo one > /srv/vms/db/a && sync")
    # node2's vigil-rfs dies: node1 holds changes until node2's vigild
    # marked its copy outdated, then goes on alone.
    kill_rfs(lab, 2)
    t0 = time.monotonic()
    sh(lab, 1, "echo two > /srv/vms/db/b && sync")
    assert time.monotonic() - t0 < 10
    # node2's vigild restarts its vigil-rfs, and the copy is rebuilt.
    wait_sync(lab, 1, {"node1": "uptodate", "node2": "uptodate"}, 30)
    assert lab.node(2).read_file("/srv/vms/db/b") == "two\n"
    # Now stop node2 and write: its copy is outdated while it is away.
    lab.vigilctl(2, "stop")
    wait_state(lab, 1, "node1", "ALONE")
    sh(lab, 1, "echo three > /srv/vms/db/c && sync")
    lab.wait_for(lambda: sync_of(lab, 2)["node2"] == "not uptodate", TIMEOUT,
                 what="node2 not uptodate")
    # node1 dies; node2, started, must not serve its stale copy.
    lab.node(1).kill()
    lab.vigilctl(2, "start")
    wait_state(lab, 2, "node2", "WAIT", "red")
    st = {n["name"]: n for n in lab.status(2)["nodes"]}["node2"]
    assert st["color"] == "red" and "data not up to date" in st["reason"], st
    assert fuse_mounts(lab, 2) == []
    out = lab.vigilctl(2, "forcestart").stdout
    assert "not up to date" in out, out
    wait_state(lab, 2, "node2", "ALONE")
    assert fuse_mounts(lab, 2) == sorted(DIRS)
    assert lab.node(2).read_file("/srv/vms/db/b") == "two\n"


LEDGER = Path(__file__).resolve().parents[1] / "lab" / "ledger.py"
ROUNDS = int(os.environ.get("VIGIL_ZERO_LOSS_ROUNDS", "10"))


def test_zero_loss_of_acknowledged_writes_over_killed_prims(lab):
    """Each round: a writer on the PRIM fsyncs records and says which were
    acknowledged; the PRIM node is killed (all processes, links down) at a
    random moment; the other node takes over, and must hold every
    acknowledged record and file. The killed node returns as SECOND and is
    rebuilt; the next round kills the other one."""
    start_pair(lab, cluster={"max_failovers": 64})
    rng = random.Random(os.environ.get("VIGIL_SEED") or time.time_ns())
    prim, first = 1, 0
    for rnd in range(ROUNDS):
        other = 3 - prim
        writer = Acked(lab.node(prim).popen(["python3", str(LEDGER), "/srv/vms/db", str(first)],
                                            stdout=subprocess.PIPE, text=True))
        time.sleep(rng.uniform(0.3, 1.5))
        lab.node(prim).kill()
        writer.join()
        acked = writer.ids
        assert acked, f"round {rnd}: the writer on node{prim} acknowledged nothing"
        lab.wait_states(other, {f"node{other}": "ALONE", f"node{prim}": None}, TIMEOUT)
        ledger = set(int(x) for x in lab.node(other).read_file("/srv/vms/db/ledger").split())
        lost = [n for n in acked if n not in ledger]
        assert not lost, f"round {rnd}: node{other} lacks acknowledged records {lost[:10]}"
        for n in acked:
            if n % 10 == 0:
                got = lab.node(other).read_file(f"/srv/vms/db/r{n}")
                assert got == f"{n}\n" * 100, f"round {rnd}: r{n} on node{other} is wrong"
        rejoin_as_second(lab, prim, other)
        first = max(acked) + 1000
        prim = other


def block_repl(lab, k, on=True):
    """Drops the replication port on node k (nftables in its namespace)."""
    if on:
        sh(lab, k, "nft add table inet rfsblock && nft add chain inet rfsblock in "
                   "'{ type filter hook input priority 0; }' && "
                   "nft add rule inet rfsblock in tcp dport 5600 drop")
    else:
        sh(lab, k, "nft delete table inet rfsblock")


def test_swap_waits_for_the_copy_and_sync_commands(lab):
    start_pair(lab)
    sh(lab, 1, "mkdir -p /srv/vms/db/d && head -c 300000 /dev/urandom > /srv/vms/db/d/big && "
               "echo c > /srv/vms/conf/c && echo t > /srv/vms/db/t.tmp && sync")
    est = lab.vigilctl(2, "sync", "estimate", json=True)
    assert (est["files"], est["bytes"], est["full_copy"]) == (0, 0, False), est
    # node2's copy falls behind: its vigil-rfs dies and cannot be reached.
    block_repl(lab, 2)
    kill_rfs(lab, 2)
    wait_sync(lab, 1, {"node1": "connection error", "node2": "not uptodate"})
    sh(lab, 1, "echo later > /srv/vms/db/later && sync")
    # node1's record (on disk) is complete since node2 was last equal: the
    # estimate names "later" (new, so whole), plus the files still hot from
    # just before the loss (counted whole until they cool), never *.tmp.
    est = lab.vigilctl(1, "sync", "estimate", json=True)
    assert est["full_copy"] is False and 1 <= est["files"] <= 3, est
    assert len("later\n") <= est["bytes"] <= 300000 + len("c\n") + len("later\n"), est
    # swap waits for the copy; here it gives up after --wait.
    cp = lab.vigilctl(1, "swap", "--wait", "2", check=False)
    assert cp.returncode == 4 and "not connected" in cp.stderr and "--nosync" in cp.stderr, cp
    assert lab.states(1)["node1"][0] == "PRIM"
    # The link back: node2 is rebuilt, and swap goes through.
    block_repl(lab, 2, on=False)
    wait_sync(lab, 1, {"node1": "uptodate", "node2": "uptodate"}, 30)
    lab.vigilctl(1, "swap", "--wait", "20")
    lab.wait_states(1, {"node1": "SECOND", "node2": "PRIM"}, TIMEOUT)
    assert lab.node(2).read_file("/srv/vms/db/later") == "later\n"
    # sync full on the new PRIM: node1's copy is compared whole by block
    # hashes. A damaged block, a lost file and a stray one are put right;
    # nothing is set aside, nothing else is copied; node1's own excluded
    # t.tmp (from when it served) stays, as excluded names are local.
    wait_sync(lab, 2, {"node1": "uptodate", "node2": "uptodate"}, 30)
    asides = lambda: sorted(p.name for p in lab.node(1).host_path("/srv/vms/.rfs").glob("aside-*"))
    before = asides()
    with open(lab.node(1).host_path("/srv/vms/db/d/big"), "r+b") as f:
        f.seek(70000)
        f.write(b"X" if f.read(1) != b"X" else b"Y")
    lab.node(1).host_path("/srv/vms/conf/c").unlink()
    lab.node(1).host_path("/srv/vms/db/stray").write_text("stray\n")
    with pytest.raises(AssertionError):
        trees_equal(lab, 1, 2)
    out = lab.vigilctl(1, "sync", "full").stdout
    assert "compared whole" in out, out
    lab.wait_for(lambda: trees_equal(lab, 1, 2), TIMEOUT, what="node1's copy put right")
    assert lab.node(1).host_path("/srv/vms/db/t.tmp").read_text() == "t\n"
    wait_sync(lab, 2, {"node1": "uptodate", "node2": "uptodate"}, 30)
    assert asides() == before, (before, asides())
    # swap --nosync with node1 behind: it serves what it has, and node2's
    # newer file is set aside on node2, not dropped.
    block_repl(lab, 1)
    kill_rfs(lab, 1)
    wait_sync(lab, 2, {"node1": "not uptodate", "node2": "connection error"})
    sh(lab, 2, "echo only-on-2 > /srv/vms/db/newer && sync")
    before2 = sorted(p.name for p in lab.node(2).host_path("/srv/vms/.rfs").glob("aside-*"))
    cp = lab.vigilctl(2, "swap", "--nosync")
    assert "swapping without an up-to-date copy" in cp.stderr, cp
    block_repl(lab, 1, on=False)
    lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)
    assert not lab.node(1).host_path("/srv/vms/db/newer").exists()
    wait_sync(lab, 1, {"node1": "uptodate", "node2": "uptodate"}, 30)
    after2 = sorted(p.name for p in lab.node(2).host_path("/srv/vms/.rfs").glob("aside-*"))
    new = [a for a in after2 if a not in before2]
    assert new, "node2's copy was not set aside"
    kept = lab.node(2).host_path(f"/srv/vms/.rfs/{new[-1]}/0/newer")
    assert kept.read_text() == "only-on-2\n"


def test_vigil_rfs_killed_on_prim_fails_over_without_loss(lab):
    """The PRIM's vigil-rfs dies: the service sees errors on its dirs, vigild
    fails over to node2, which holds every acknowledged write."""
    start_pair(lab)
    w = lab.node(1).popen(["python3", str(LEDGER), "/srv/vms/db", "0"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writer = Acked(w)
    acked = writer.ids
    lab.wait_for(lambda: len(acked) >= 20, TIMEOUT, what="acknowledged writes on node1")
    kill_rfs(lab, 1)
    # The writer gets an error (ECONNABORTED for the request in flight,
    # ENOTCONN after) instead of an acknowledgement.
    w.wait(TIMEOUT)
    writer.join()
    err = w.stderr.read()
    assert w.returncode != 0 and ("[Errno 103]" in err or "[Errno 107]" in err), err
    # node1 stops after the failure; node2 takes over (at once: no SECOND
    # to wait for), holding every acknowledged write.
    t0 = time.monotonic()
    wait_state(lab, 2, "node2", "ALONE")
    assert time.monotonic() - t0 < 5
    node1 = {n["name"]: n for n in lab.status(1)["nodes"]}["node1"]
    assert node1["state"] == "STOP" and "vigil-rfs prim ended" in node1["reason"], node1
    ledger = set(int(x) for x in lab.node(2).read_file("/srv/vms/db/ledger").split())
    assert not [n for n in acked if n not in ledger]
    # Started again, node1 is SECOND: its dead mounts were detached.
    lab.vigilctl(1, "start")
    lab.wait_states(2, {"node2": "PRIM", "node1": "SECOND"}, TIMEOUT)
    wait_sync(lab, 2, {"node1": "uptodate", "node2": "uptodate"}, 30)
    assert fuse_mounts(lab, 1) == []


def test_vigild_killed_on_prim_keeps_the_mounts(lab):
    """vigild dies while PRIM: vigil-rfs goes on serving like the resources
    do, and the restarted vigild takes it over instead of mounting again."""
    start_pair(lab)
    sh(lab, 1, "echo before > /srv/vms/db/a && sync")
    rfs = rfs_pids(lab, 1)
    assert len(rfs) == 1
    lab.stop_vigild(1, sig=signal.SIGKILL)
    sh(lab, 1, "echo during > /srv/vms/db/b && sync")
    lab.start_vigild(1)
    lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)
    assert rfs_pids(lab, 1) == rfs, "vigil-rfs was replaced"
    assert fuse_mounts(lab, 1) == sorted(DIRS)
    assert "took over vigil-rfs prim" in lab.vigild_log(1, 200)
    sh(lab, 1, "echo after > /srv/vms/db/c && sync")
    wait_sync(lab, 1, {"node1": "uptodate", "node2": "uptodate"})
    assert [lab.node(2).read_file(f"/srv/vms/db/{f}") for f in "abc"] == ["before\n", "during\n", "after\n"]
    # The adopted child is stopped like any other.
    lab.vigilctl(1, "stop")
    lab.wait_for(lambda: rfs_pids(lab, 1) == [], TIMEOUT, what="vigil-rfs stopped on node1")
    assert fuse_mounts(lab, 1) == []


def test_split_brain_keeps_the_losers_changes_aside(lab):
    """Both nodes run alone and both write; on heal the older PRIM keeps the
    service, and the other's copy, with what only it wrote, is set aside
    under the replication state_dir, never dropped."""
    start_pair(lab)
    sh(lab, 1, "echo common > /srv/vms/db/common && sync")
    lab.partition(1)
    try:
        lab.wait_states(2, {"node2": "ALONE", "node1": None}, TIMEOUT)
        lab.wait_states(1, {"node1": "ALONE", "node2": None}, TIMEOUT)
        sh(lab, 1, "echo one > /srv/vms/db/on1 && sync")
        sh(lab, 2, "echo two > /srv/vms/db/on2 && echo changed > /srv/vms/db/common && sync")
    finally:
        lab.heal(1)
    lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)
    wait_sync(lab, 1, {"node1": "uptodate", "node2": "uptodate"}, 30)
    # node1's data everywhere ...
    assert lab.node(2).read_file("/srv/vms/db/on1") == "one\n"
    assert lab.node(2).read_file("/srv/vms/db/common") == "common\n"
    assert not lab.node(2).host_path("/srv/vms/db/on2").exists()
    # ... and node2's own changes kept aside, with the place in its log.
    asides = sorted(lab.node(2).host_path("/srv/vms/.rfs").glob("aside-*"))
    assert asides, "nothing set aside on node2"
    kept = asides[-1] / "0"
    assert (kept / "on2").read_text() == "two\n" and (kept / "common").read_text() == "changed\n"


LOSS_SECONDS = float(os.environ.get("VIGIL_LOSS_SECONDS", "60"))


def test_lossy_replication_link_loses_nothing(lab):
    """10% of the packets of the replication network dropped for a minute
    (the heartbeats also run on the other network): writes go on, no
    failover, and the SECOND ends with every acknowledged write."""
    start_pair(lab)
    writer = Acked(lab.node(1).popen(["python3", str(LEDGER), "/srv/vms/db", "0"],
                                     stdout=subprocess.PIPE, text=True))
    acked = writer.ids
    lab.drop_share(2, 10, net=0)
    try:
        end = time.monotonic() + LOSS_SECONDS
        while time.monotonic() < end:
            assert lab.states(1)["node1"][:2] == ("PRIM", "green")
            time.sleep(0.5)
    finally:
        lab.heal(2)
    n = len(acked)
    assert n > 100, f"only {n} writes acknowledged in {LOSS_SECONDS:g} s"
    writer.stop()
    wait_sync(lab, 1, {"node1": "uptodate", "node2": "uptodate"}, 60)
    ledger = set(int(x) for x in lab.node(2).read_file("/srv/vms/db/ledger").split())
    assert not [i for i in acked if i not in ledger]
    assert starts_stops(lab) == [("node1", "start")]


def test_disk_full_on_second_is_shown_and_blocks_its_takeover(lab):
    """node2's /srv/vms fills up: writes on node1 go on, node2's copy is
    not up to date (status says why), and node2 does not take over."""
    for d in DIRS:
        lab.node(2).host_path(d).mkdir(parents=True, exist_ok=True)
    sh(lab, 2, "mount -t tmpfs -o size=2m tmpfs /srv/vms && mkdir /srv/vms/db /srv/vms/conf")
    start_pair(lab)
    sh(lab, 1, "head -c 4000000 /dev/urandom > /srv/vms/db/big && sync")
    sh(lab, 1, "echo still > /srv/vms/db/small && sync")
    wait_sync(lab, 1, {"node1": "connection error", "node2": "not uptodate"})
    st = {n["name"]: n for n in lab.status(1)["nodes"]}
    assert "No space left on device" in st["node1"].get("sync_error", ""), st["node1"]
    lab.node(1).kill()
    wait_state(lab, 2, "node2", "WAIT", "red")


def starts_stops(lab):
    return [(n, a) for n, r, a, _ in lab.journal() if r == "web"]


def test_prim_crash_while_alone_then_both_back_identical(lab):
    """node2 stopped; node1 writes alone and is killed; node1 restarts
    (its copy is the newest), node2 comes back as SECOND and ends with the
    same tree."""
    start_pair(lab)
    lab.vigilctl(2, "stop")
    wait_state(lab, 1, "node1", "ALONE")
    sh(lab, 1, "for i in $(seq 1 30); do echo $i > /srv/vms/db/alone$i; done; "
               "mkdir /srv/vms/conf/n && mv /srv/vms/db/alone1 /srv/vms/conf/n/moved && "
               "rm /srv/vms/db/alone2 && sync")
    before = tree(lab, 1)
    lab.node(1).kill()
    lab.node(1).revive()
    lab.start_vigild(1)
    lab.vigilctl(1, "start", check=False)
    wait_state(lab, 1, "node1", "ALONE")
    assert tree(lab, 1) == before
    lab.vigilctl(2, "start")
    lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)
    wait_sync(lab, 1, {"node1": "uptodate", "node2": "uptodate"}, 30)
    lab.wait_for(lambda: tree(lab, 2) == tree(lab, 1) == before, TIMEOUT, what="identical trees")
