"""The recording pool (issue 6, docs/pool.md) in the lab: a master, real
recorders and spares running vigild in their [pool] role, real cameras and
ffmpeg recordings (tests/lab/pool.py)."""

import json
import os
import time

import console
import lab as labmod
from cameras import recording_gaps
from pool import CONF, Pool, PORT, RECORDINGS, member_config


def test_killed_recorders_go_to_their_groups_spares_then_the_queue(poollab):
    """1 master, 3 recorders, 2 spares in two groups. A killed recorder's
    cameras are recorded by its group's spare with its cached settings; a
    second killed recorder of the same group gets the spare of its
    secondary group; a third waits in the queue and starts when a spare
    frees (the first recorder back)."""
    pool = Pool(poollab, recorders={2: ("north", "south"), 3: ("north", "south"), 4: ("north", "")},
                spares={5: "north", 6: "south"}, cameras=2,
                master_kw={"extra": "\n[notify]\ncommand = cat >> /var/lib/vigil/notified\n"})
    pool.start()
    st = pool.status()
    assert pool.rec(st, 2)["group"] == "north" and pool.rec(st, 2)["served_by"] == ""
    assert pool.rec(st, 2)["health"]["cameras"] == 2
    before = pool.recorder(2).segments(probe_them=False, checksum=False)

    pool.crash(2)
    st = pool.wait(lambda st: pool.rec(st, 2)["state"] == "FAILED_OVER", timeout=20,
                   what="node2 FAILED_OVER")
    assert pool.rec(st, 2)["served_by"] == "node5"          # its group's spare, not south's
    assert pool.spare(st, 5)["state"] == "SERVING" and pool.spare(st, 5)["serving"] == "node2"
    assert pool.spare(st, 6)["state"] == "FREE"
    # the spare got node2's cached settings, byte for byte
    for f in ("recorder.json", "schedules/always.txt"):
        assert poollab.node(5).read_file(f"/var/lib/vms/settings/node2/{f}") == \
            poollab.node(2).read_file(f"/var/lib/vms/settings/{f}")
    # and records node2's cameras, into its own directory for node2
    served = pool.serving(5, 2)
    served.wait_segments(2, timeout=15)
    after = served.segments()
    assert set(after) == set(pool.cam_of[2])
    assert all(s.name.split("-")[1] == "node5" for segs in after.values() for s in segs)
    gaps = recording_gaps(before, after)
    assert set(gaps) == set(pool.cam_of[2]) and all(g < 10 for g in gaps.values()), gaps

    # [notify] heard of it
    def notified():
        try:
            lines = poollab.node(1).read_file("/var/lib/vigil/notified").splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(x) for x in lines if '"type":"pool"' in x]
    poollab.wait_for(lambda: any(e["node"] == "node2" and e["to"] == "FAILED_OVER" for e in notified()),
                     timeout=10, what="the pool event sent to [notify]")
    log = pool.log()
    fo = [e for e in log if e["event"] == "failover" and e["recorder"] == "node2"]
    assert fo and fo[-1]["spare"] == "node5" and fo[-1]["trigger"] in ("lost", "absent"), log
    assert any(e["result"] == "done" for e in fo), log

    # the second: north's spare is busy, south's takes it; the third waits
    pool.crash(3)
    st = pool.wait(lambda st: pool.rec(st, 3)["state"] == "FAILED_OVER", what="node3 failed over")
    assert pool.rec(st, 3)["served_by"] == "node6"
    pool.crash(4)
    st = pool.wait(lambda st: pool.rec(st, 4)["state"] == "QUEUED", what="node4 queued")
    assert st["queue"] == ["node4"] and pool.rec(st, 4)["served_by"] == ""
    assert any(e["recorder"] == "node4" and e["result"] == "queued" for e in pool.log())
    # node2 comes back: node5 stops for it and goes to the queue first
    pool.revive(2)
    st = pool.wait(lambda st: pool.rec(st, 4)["state"] == "FAILED_OVER", timeout=30,
                   what="node4 served by the spare node2 freed")
    assert pool.rec(st, 4)["served_by"] == "node5" and st["queue"] == []
    assert pool.rec(st, 2)["state"] in ("OK", "COPYING")
    pool.serving(5, 4).wait_segments(2, timeout=15)


def test_triggers_roles_and_the_queue(poollab):
    """Three recorders of group north (secondary group south), a spare in
    each group. A manual failover (refused for a viewer, done for an
    operator) takes north's spare; a disk failure then takes south's (the
    secondary group); a watchdog failure, with no spare left in either
    group, waits in the queue and gets the spare that a failback frees."""
    pool = Pool(poollab, recorders={2: ("north", "south"), 3: ("north", "south"), 4: ("north", "south")},
                spares={5: "north", 6: "south"}, cameras=1, small_disk={3})
    pool.start()

    cp = poollab.vigilctl(1, "pool", "failover", "node2", "--role", "viewer", check=False)
    assert cp.returncode == 1 and "role viewer may not" in cp.stderr, cp
    assert pool.rec(pool.status(), 2)["state"] == "OK"
    cp = poollab.vigilctl(1, "pool", "failover", "node2", "--role", "operator")
    assert "FAILING_OVER" in cp.stdout, cp.stdout
    # healthy but held: BACK at once, waiting for a failback by command
    st = pool.wait(lambda st: pool.rec(st, 2)["state"] == "BACK" and pool.rec(st, 2)["served_by"],
                   what="node2 failed over")
    assert pool.rec(st, 2)["trigger"] == "manual" and pool.rec(st, 2)["link"] == "held"
    first = pool.rec(st, 2)["served_by"]
    assert first == "node5"                 # its primary group first
    pool.serving(int(first[-1]), 2).wait_segments(2, timeout=15)

    pool.fill_disk(3)
    st = pool.wait(lambda st: pool.rec(st, 3)["state"] == "FAILED_OVER", what="node3 failed over (disk)")
    assert pool.rec(st, 3)["trigger"] == "disk" and pool.rec(st, 3)["health"]["disks_failed"]
    assert pool.rec(st, 3)["served_by"] == "node6"     # north's is busy: the secondary group

    pool.break_start(4)
    pool.recorder(4).kill()                 # its service dies and cannot start again
    st = pool.wait(lambda st: pool.rec(st, 4)["state"] == "QUEUED", timeout=30, what="node4 queued")
    assert st["queue"] == ["node4"] and pool.rec(st, 4)["trigger"] == "watchdog"
    assert poollab.vigilctl(1, "pool", "queue", json=True)["queue"] == ["node4"]
    assert any(e["recorder"] == "node4" and e["result"] == "queued" for e in pool.log())

    # node2 is healthy and held: an operator gives it its cameras back; the
    # spare it frees goes to the queue first
    poollab.vigilctl(1, "pool", "failback", "node2", "--role", "operator")
    st = pool.wait(lambda st: pool.rec(st, 4)["state"] == "FAILED_OVER" and
                   pool.rec(st, 2)["state"] in ("OK", "COPYING"), timeout=30,
                   what="node4 served by the spare node2 gave back")
    assert pool.rec(st, 4)["served_by"] == first and st["queue"] == []
    pool.recorder(2).wait_segments(pool.recorder(2).count()[next(iter(pool.cam_of[2]))] + 2, timeout=15)
    pool.serving(int(first[-1]), 4).wait_segments(2, timeout=15)


def test_failback_copies_every_segment_home(poollab):
    """A crashed recorder comes back: the spare stops, the recorder records
    again, and every segment the spare recorded for it is copied home (same
    names, same SHA-256), none lost, none twice; the spare is free again."""
    pool = Pool(poollab, recorders={2: ("north", "")}, spares={5: "north"}, cameras=2)
    pool.start()
    pool.keep_stopped(5)
    own_before = pool.files(2, RECORDINGS)
    pool.crash(2)
    pool.wait(lambda st: pool.rec(st, 2)["state"] == "FAILED_OVER", what="node2 failed over")
    pool.serving(5, 2).wait_segments(4, timeout=20)
    # the spare's vigild restarts: its recording goes on, and its hello
    # says it still records for node2 (no second failover)
    poollab.stop_vigild(5)
    poollab.start_vigild(5)
    pool.wait(lambda st: pool.spare(st, 5)["state"] == "SERVING" and pool.spare(st, 5)["connected"],
              what="node5 back, still serving node2")
    assert [e["result"] for e in pool.log() if e["event"] == "failover"] == ["started", "done"]

    pool.revive(2)
    st = pool.wait(lambda st: pool.rec(st, 2)["state"] == "OK" and pool.spare(st, 5)["state"] == "FREE",
                   timeout=40, what="failback and copy-back done")
    assert pool.rec(st, 2)["copy"]["files_done"] == pool.rec(st, 2)["copy"]["files_total"] > 0, st
    made = pool.files(5, "/var/lib/vigil/stopped/node2")    # what the spare had recorded, at its stop
    assert len(made) >= 2 * 4 and all("-node5-" in p for p in made), made
    home = pool.files(2, RECORDINGS)
    copied = {p: h for p, h in home.items() if "-node5-" in p}
    assert copied == made                                    # every file, byte for byte, and no other
    assert not [p for p in home if p.endswith(".vigil-part")]
    # its own complete segments (not the one each camera was writing) are untouched
    writing = {max(p for p in own_before if p.startswith(cam + "/")) for cam in pool.cam_of[2]}
    assert all(home[p] == h for p, h in own_before.items() if p not in writing)
    assert pool.files(5, f"{RECORDINGS}/node2") == {}        # the spare keeps nothing
    # the recorder records again itself
    pool.recorder(2).wait_segments(max(pool.recorder(2).count().values()) + 2, timeout=20)
    events = [(e["event"], e["result"]) for e in pool.log() if e["recorder"] == "node2"]
    assert ("failback", "done") in events and ("copy", "done") in events, events


# A TLS server with a given certificate that asks for the client's, as the
# master does, and then says nothing.
FAKE_MASTER = """
import socket, ssl, sys, threading
addr, port, crt, key, ca = sys.argv[1:6]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(crt, key)
ctx.load_verify_locations(ca)
ctx.verify_mode = ssl.CERT_REQUIRED
srv = socket.create_server((addr, int(port)))
def serve(c):
    try:
        s = ctx.wrap_socket(c, server_side=True)
        s.recv(1)
    except OSError:
        pass
    c.close()
while True:
    threading.Thread(target=serve, args=(srv.accept()[0],), daemon=True).start()
"""


def test_master_restart_and_bad_input(poollab):
    """The registry survives a master restart, and recorders that reconnect
    are not failed over. Bad input is refused with a clear error and changes
    nothing: an unknown recorder, settings over the limit, a machine
    claiming another's name, a spare in no group."""
    pool = Pool(poollab, recorders={2: ("north", ""), 3: ("north", "")}, spares={5: "north"}, cameras=1,
                master_kw={"extra": "settings_max_bytes = 4096\n"})
    pool.start()

    # an agent's own view: vigilctl status on a recorder and on a spare;
    # the pool is the master's to show
    a = poollab.vigilctl(2, "status", json=True)["pool_agent"]
    assert (a["name"], a["role"], a["group"], a["connected"], a["recording"], a["master"]) == \
        ("node2", "recorder", "north", True, True, "10.0.0.1:4810"), a
    assert a["cameras"] == 1 and not a["disks_failed"] and not a["watchdog_failed"], a
    out = poollab.vigilctl(5, "status").stdout
    assert "pool spare node5 (group north)" in out and "10.0.0.1:4810: connected" in out and \
        "recording  no (free)" in out, out
    cp = poollab.vigilctl(2, "pool", "status", check=False)
    assert cp.returncode == 1 and "the pool recorder node2: it answers status only" in cp.stderr, cp
    # a second vigild on the same machine stops at the socket, before it
    # starts the recording service again
    # (and says so before it detaches: exit 1, on a master node as well)
    for k, fg in ((2, ["--foreground"]), (2, []), (1, [])):
        cp = poollab.node(k).run([str(poollab.vigild_path()), "-c", CONF, *fg], check=False, timeout=15)
        assert cp.returncode == 1 and "another vigild is already listening" in cp.stdout + cp.stderr, (k, fg, cp)
        assert "pool-start" not in cp.stdout + cp.stderr, cp

    # vigilctl's own checks: usage errors (exit 2) before anything is sent
    for args, words in ((["pool"], "pool needs status"), (["pool", "failover"], "needs a recorder's name"),
                        (["pool", "status", "node2"], "takes no argument"),
                        (["pool", "explode", "node2"], "pool needs status"),
                        (["pool", "failover", "node2", "--role", "boss"], "--role: expected"),
                        (["status", "--role", "viewer"], "--role applies to pool only"),
                        (["pool", "failover", "node2", "extra"], "unexpected argument")):
        cp = poollab.vigilctl(1, *args, check=False)
        assert cp.returncode == 2 and words in cp.stderr, (args, cp)
    # unknown recorder
    before = pool.status()
    cp = poollab.vigilctl(1, "pool", "failover", "nosuch", check=False)
    assert cp.returncode == 1 and "no recorder 'nosuch' in the pool" in cp.stderr, cp
    cp = poollab.vigilctl(1, "pool", "failover", "node5", check=False)
    assert cp.returncode == 1 and "(it is a spare)" in cp.stderr, cp
    assert [(r["name"], r["state"]) for r in pool.status()["recorders"]] == \
        [(r["name"], r["state"]) for r in before["recorders"]]
    # the same through the HTTP API
    # (the master's mirror peer is absent: the password is set on node1 only)
    cp = console.set_password(poollab, 1, check=False)
    assert "changed on node1 only" in cp.stderr, cp
    api = console.Api(poollab, poollab.node(1).addr())
    try:
        assert api.login().code == 200
        a = api.get("/api/v1/pool")
        assert a.code == 200 and [r["name"] for r in a.json()["recorders"]] == ["node2", "node3"]
        assert api.get("/api/v1/pool/queue").json() == {"queue": []}
        a = api.post("/api/v1/pool/recorders/nosuch/failover")
        assert a.code == 409 and "no recorder 'nosuch'" in a.json()["error"], a
        a = api.post("/api/v1/pool/recorders/node2/failover", {"role": "viewer"})
        assert a.code == 409 and "role viewer may not" in a.json()["error"], a
        a = api.post("/api/v1/pool/recorders/node2/failover", {"role": "boss"})
        assert a.code == 409 and "unknown role 'boss'" in a.json()["error"], a
        a = api.post("/api/v1/pool/recorders/node2/failover", {"who": 1})
        assert a.code == 400, a
        assert api.post("/api/v1/pool/recorders/node2/explode").code == 409
    finally:
        api.cleanup()
    assert pool.rec(pool.status(), 2)["state"] == "OK"

    # settings over the limit: refused, the cached version kept
    poollab.node(3).write_file("/var/lib/vms/settings/masks/huge.bin", os.urandom(8192))
    st = pool.wait(lambda st: "settings_max_bytes" in pool.rec(st, 3)["settings"]["error"], timeout=15,
                   what="the oversized upload refused")
    assert pool.rec(st, 3)["settings"]["files"] == 2 and pool.rec(st, 3)["state"] == "OK"
    assert "masks/huge.bin" in pool.rec(st, 3)["settings"]["error"]

    # node4 claims to be node2 with its own key: refused, node2 untouched
    n4 = poollab.node(4)
    poollab.vigilctl(1, "pki", "member", "node4")
    for ext in ("crt", "key"):
        n4.write_file(f"/etc/vigil/pki/node2.{ext}",
                      poollab.node(1).read_file(f"/etc/vigil/pki/node4.{ext}", binary=True), 0o600)
    n4.write_file("/etc/vigil/pki/cacert.crt", poollab.node(1).read_file("/etc/vigil/pki/cacert.crt",
                                                                          binary=True))
    for f in ("pool-start", "pool-stop", "pool-check"):
        n4.write_file(f"/etc/vigil/{f}", poollab.node(2).read_file(f"/etc/vigil/{f}"), 0o755)
    poollab.write_config(4, member_config(poollab, 2, "recorder", "north"))   # says name = node2
    poollab.start_vigild(4)
    poollab.wait_for(lambda: "hello names 'node2' but the certificate is for 'node4'"
                     in poollab.vigild_log(1, 400), timeout=15, what="the impostor refused")
    st = pool.status()
    assert pool.rec(st, 2)["state"] == "OK" and pool.rec(st, 2)["address"].startswith("10.0.0.2:")
    assert [r["name"] for r in st["recorders"]] == ["node2", "node3"]
    poollab.stop_vigild(4)
    # a node's certificate (the master's mirror peer's) is no pool member's
    for ext in ("crt", "key"):
        n4.write_file(f"/etc/vigil/pki/mirror.{ext}",
                      poollab.node(1).read_file(f"/etc/vigil/pki/mirror.{ext}", binary=True), 0o600)
    poollab.write_config(4, member_config(poollab, 4, "recorder", "north").replace("name = node4",
                                                                                    "name = mirror"))
    poollab.start_vigild(4)
    poollab.wait_for(lambda: "the certificate for 'mirror' is not a pool member's"
                     in poollab.vigild_log(1, 400), timeout=15, what="a node's certificate refused")
    assert [r["name"] for r in pool.status()["recorders"]] == ["node2", "node3"]
    poollab.stop_vigild(4)

    # a spare in no group: its config is refused, naming the key
    bad = member_config(poollab, 6, "spare", "north").replace("group = north\n", "")
    poollab.write_config(6, bad)
    cp = poollab.node(6).run([str(poollab.vigild_path()), "--check-config", "-c", "/etc/vigil/vigil.conf"],
                             check=False)
    assert cp.returncode == 1 and "group" in cp.stderr and "spare" in cp.stderr, cp

    # node3 drops a schedule: the cache drops it too (and keeps it dropped)
    poollab.node(3).host_path("/var/lib/vms/settings/schedules/always.txt").unlink()
    pool.wait(lambda st: pool.rec(st, 3)["settings"]["files"] == 1, timeout=15, what="the schedule dropped")

    # a failover in the registry, then the master restarts
    pool.crash(3)
    pool.wait(lambda st: pool.rec(st, 3)["state"] == "FAILED_OVER", what="node3 failed over")
    log_before = pool.log()
    poollab.stop_vigild(1)
    # while it is down, a machine with a member's key (node4's) poses as the
    # master on its address: the agents refuse it
    fake = poollab.node(1).popen([labmod.PYTHON, "-c", FAKE_MASTER, poollab.node(1).addr(), str(PORT),
                                  *[f"/etc/vigil/pki/{f}" for f in ("node4.crt", "node4.key", "cacert.crt")]])
    try:
        for k in (2, 5):
            poollab.wait_for(lambda: "shows the pool member certificate of 'node4', not a master's"
                             in poollab.vigild_log(k, 200), timeout=15,
                             what=f"node{k} refusing a master with a member's certificate")
    finally:
        fake.kill()
        fake.wait()
    restarted = time.time()
    poollab.start_vigild(1)
    st = pool.wait(lambda st: st["active"] and pool.rec(st, 2)["state"] == "OK" and
                   pool.spare(st, 5)["state"] == "SERVING", timeout=20, what="the master back")
    assert pool.rec(st, 3)["state"] == "FAILED_OVER" and pool.rec(st, 3)["served_by"] == "node5"
    assert pool.rec(st, 3)["settings"]["files"] == 1          # the cache came back from the registry
    assert not poollab.node(5).host_path("/var/lib/vms/settings/node3/schedules/always.txt").exists()
    assert pool.log()[:len(log_before)] == log_before
    # past the restart grace (2 x detect_timeout): node2 was never failed over
    time.sleep(max(0, restarted + 5 - time.time()))
    st = pool.status()
    assert pool.rec(st, 2)["state"] == "OK" and pool.rec(st, 2)["served_by"] == ""
    assert not [e for e in pool.log() if e["recorder"] == "node2"]


def test_after_failure_swap(poollab):
    """after_failure = swap: the repaired recorder becomes a free spare and
    the spare that served it goes on recording as the recorder, without a
    gap; the roles hold across a failure of the new recorder."""
    pool = Pool(poollab, recorders={2: ("north", "")}, spares={5: "north"}, cameras=2,
                master_kw={"after": "swap"})
    pool.start()
    pool.crash(2)
    pool.wait(lambda st: pool.rec(st, 2)["state"] == "FAILED_OVER", what="node2 failed over")
    served = pool.serving(5, 2)
    served.wait_segments(2, timeout=15)

    pool.revive(2)
    st = pool.wait(lambda st: [r["name"] for r in st["recorders"]] == ["node5"] and
                   [s["name"] for s in st["spares"]] == ["node2"] and
                   pool.spare(st, 2)["state"] == "FREE" and pool.rec(st, 5)["state"] == "OK",
                   timeout=30, what="node5 the recorder, node2 a free spare")
    assert pool.rec(st, 5)["group"] == "north" and pool.rec(st, 5)["served_by"] == ""
    assert any(e["event"] == "swap" for e in pool.log()), pool.log()
    poollab.wait_for(lambda: not pool.recorder(2).running(), timeout=15, what="node2's own recording stopped")
    # node5 never stopped recording node2's cameras
    n = min(served.count().values())
    served.wait_segments(n + 2, timeout=15)
    segs = served.segments(probe_them=False, checksum=False)
    assert all(len(v) >= n + 2 for v in segs.values())

    # the new recorder fails: the new spare (node2) takes node2's old cameras
    pool.crash(5)
    st = pool.wait(lambda st: pool.rec(st, 5)["state"] == "FAILED_OVER", timeout=20,
                   what="node5 failed over to node2")
    assert pool.rec(st, 5)["served_by"] == "node2"
    back = Pool.serving(pool, 2, 2)
    back.out_dir = f"{RECORDINGS}/node5"
    back.wait_segments(2, timeout=15)
    assert set(back.count()) == set(pool.cam_of[2])
