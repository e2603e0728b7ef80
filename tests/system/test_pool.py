"""The recording pool (issue 6, docs/pool.md) in the lab: a master, real
recorders and spares running vigild in their [pool] role, real cameras and
ffmpeg recordings (tests/lab/pool.py)."""

import hashlib
import time

import pytest

from cameras import recording_gaps
from pool import Pool, RECORDINGS


def by_name(segs):
    return {s.name: s for cam in segs.values() for s in cam}


def test_failover_to_a_spare_of_its_group_with_its_settings(poollab):
    pool = Pool(poollab, recorders={2: ("north", "")}, spares={5: "north", 6: "south"}, cameras=2)
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

    log = pool.log()
    fo = [e for e in log if e["event"] == "failover" and e["recorder"] == "node2"]
    assert fo and fo[-1]["spare"] == "node5" and fo[-1]["trigger"] in ("lost", "absent"), log
    assert any(e["result"] == "done" for e in fo), log
