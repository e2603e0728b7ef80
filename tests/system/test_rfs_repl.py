"""vigil-rfs replication, standalone on loopback (issue 4, stage 2): a PRIM
mounted over its directory ships every change to a SECOND that applies it
to its own copy.

Each test runs tests/rfs/repl.py as pid 1 of a private mount+pid+net
namespace (`unshare --mount --propagation private --pid --fork --kill-child
--mount-proc --net`): whatever happens, the namespace dies with that process,
taking the FUSE mount, both vigil-rfs and their sockets with it.

- Every fsx.py case runs on the PRIM mount; after a barrier (the SECOND has
  applied every op PRIM assigned a seq to) the SECOND's copy must equal the
  mounted tree: fsx.snapshot with mtimes, plus st_blocks of regular files,
  compared with both copies' page cache dropped (repl.py settle: on ext4 a
  cached unwritten extent reads as data to SEEK_DATA). After unmount, PRIM's
  backing directory must equal the SECOND's copy too.
- sync: a write() does not return while the SECOND is SIGSTOPped, nor does
  fsync(); async: both return at once.
- SIGKILL of the SECOND: PRIM keeps serving, its link is "lost" and it says
  the SECOND is not up to date.

Needs root and a built vigil-rfs (VIGIL_BUILD, default <repo>/build).
"""

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

import lab as labmod

REPO = Path(__file__).resolve().parents[2]
REPL = REPO / "tests" / "rfs" / "repl.py"
RFS = labmod.BUILD / "src" / "vigil-rfs"
PYTHON = labmod.PYTHON

sys.path.insert(0, str(REPL.parent))
import fsx  # noqa: E402

SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:")
STOPPED_WINDOW_MS = 1500
PROMPT_MS = 500         # "returns at once": well under the stopped window


@pytest.fixture
def base(rfs_base):
    """The conftest's rfs_base under the name these tests use."""
    return rfs_base


def in_namespace(base, command, *extra, timeout=120):
    cmd = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
           "--kill-child", "--mount-proc", "--net", PYTHON, str(REPL), command,
           "--rfs", str(RFS), "--base", base, *extra]
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert cp.returncode == 0, f"repl.py {command} failed ({cp.returncode}):\n{cp.stderr[-6000:]}"
    return json.loads(cp.stdout)


def _only_index_blocks(ra, rb):
    """True if two regular files differ only in st_blocks, by at most one
    4 KiB block per 64 MiB, and are at least 16 MiB: ext4 counts extent
    tree index blocks in st_blocks, and how many a large file needs depends
    on the order its data was written (a reintegration copying a file while
    it is appended to). A fallocated range or a hole shows in "map" or is
    larger; small files are compared exactly."""
    if ra.get("type") != "reg" or set(ra) != set(rb):
        return False
    if any(ra[k] != rb[k] for k in ra if k != "blocks"):
        return False
    size = ra.get("size", 0)
    slack = 8 * (1 + size // (64 << 20))
    return size >= 16 << 20 and abs(ra["blocks"] - rb["blocks"]) <= slack


def tree_difference(a, b, what=("prim", "second")):
    """'' when equal; else the first differing path with each differing
    field, and how many paths differ in all."""
    pa = {r["path"]: r for r in a}
    pb = {r["path"]: r for r in b}
    order = [r["path"] for r in a] + [r["path"] for r in b if r["path"] not in pa]
    lines = []
    for p in order:
        if p not in pb:
            lines.append(f"{p}: only on {what[0]} ({pa[p]['type']})")
        elif p not in pa:
            lines.append(f"{p}: only on {what[1]} ({pb[p]['type']})")
        elif pa[p] != pb[p] and not _only_index_blocks(pa[p], pb[p]):
            ra, rb = pa[p], pb[p]
            lines.append("; ".join(f"{p}: {k}: {what[0]} {ra.get(k)!r} != {what[1]} "
                                   f"{rb.get(k)!r}"
                                   for k in sorted(set(ra) | set(rb)) if ra.get(k) != rb.get(k)))
    if not lines:
        return ""
    more = f"\n(+{len(lines) - 8} more paths differ)" if len(lines) > 8 else ""
    return "\n".join(lines[:8]) + more


def check_barrier(b, where):
    assert b["ok"], (f"{where}: the SECOND did not apply up to PRIM's seq {b['seq']} within "
                     f"the barrier: prim status {b.get('prim')}, second status {b.get('second')}")


def check_outputs(res):
    for side in ("prim", "second"):
        out = res["output"][side]
        assert not SANITIZER.search(out), f"{side}:\n{out[-6000:]}"


def check_end(res):
    """PRIM unmounted cleanly, SECOND stopped cleanly, and the backing dir
    after unmount equals the SECOND's copy."""
    check_barrier(res["barrier_end"], "end")
    out = res["output"]
    assert res["prim_rc"] == 0, f"vigil-rfs prim exited {res['prim_rc']}:\n{out['prim'][-3000:]}"
    assert not res["still_mounted"], "still mounted after fusermount3 -u"
    assert res["second_rc"] == 0, \
        f"vigil-rfs second exited {res['second_rc']}:\n{out['second'][-3000:]}"
    diff = tree_difference(res["tree_backing"], res["tree_second"],
                           ("prim backing after unmount", "second"))
    if diff:
        pytest.fail(f"after unmount:\n{diff}")
    check_outputs(res)


def check_repl(res, names):
    assert list(res["cases"]) == names
    failed = []
    for name, c in res["cases"].items():
        assert any(step[1] == "OK" for step in c["log"]), f"case {name} did nothing: {c['log']}"
        check_barrier(c["barrier"], f"case {name}")
        # The trees hold every case so far: judge this case's own dir (and
        # the root, whose mtime it moved), so each failing case shows.
        def mine(tree):
            return [r for r in tree if r["path"] in (".", name)
                    or r["path"].startswith(name + "/")]
        diff = tree_difference(mine(c["prim"]), mine(c["second"]), ("prim mount", "second"))
        if diff:
            failed.append(f"case {name}: the SECOND's copy differs from the PRIM mount:\n{diff}")
    if failed:
        pytest.fail("\n".join(failed))
    check_end(res)


CASES_DIRECT = [n for n in fsx.CASES if n != "mmap"]   # shared mmap is ENODEV with direct I/O


@pytest.mark.parametrize("case", CASES_DIRECT)
def test_second_copy_equals_prim(base, case):
    check_repl(in_namespace(base, "repl", "--case", case), [case])


def test_second_copy_equals_prim_mmap_page_cache(base):
    res = in_namespace(base, "repl", "--cache", "page", "--case", "mmap")
    log = res["cases"]["mmap"]["log"]
    assert log[1][:2] == ["shared mmap write", "OK"], log
    check_repl(res, ["mmap"])


def test_second_copy_equals_prim_all_cases_async(base):
    """Every case on one PRIM in async mode: batched ops, the async queue,
    the fid table across all of them."""
    args = [x for n in CASES_DIRECT for x in ("--case", n)]
    check_repl(in_namespace(base, "repl", "--mode", "async", *args, timeout=300),
               CASES_DIRECT)


def check_prompt(r, what):
    assert r["returned_while_stopped"], f"{what} blocked while the SECOND was stopped: {r}"
    assert r["ms"] < PROMPT_MS, f"{what} took {r['ms']} ms: {r}"
    assert r["result"][0] == "OK", r


def check_blocked(r, what):
    assert not r["returned_while_stopped"], \
        f"{what} returned within {STOPPED_WINDOW_MS} ms although the SECOND was stopped: {r}"
    assert r["returned"], f"{what} did not return within 15 s of SIGCONT: {r}"
    assert r["ms"] >= STOPPED_WINDOW_MS, r
    assert r["result"][0] == "OK", r


def check_sigstop(res):
    for b in ("barrier_before", "barrier_after_write", "barrier_after_fsync"):
        check_barrier(res[b], b)
    diff = tree_difference(res["tree_prim"], res["tree_second_live"], ("prim mount", "second"))
    if diff:
        pytest.fail(f"the SECOND's copy differs from the PRIM mount:\n{diff}")
    check_end(res)


def test_sync_write_and_fsync_wait_for_stopped_second(base):
    res = in_namespace(base, "sigstop", "--mode", "sync")
    check_blocked(res["write"], "write() of 4 KiB")
    assert res["write"]["result"] == ["OK", 4096], res["write"]
    check_blocked(res["fsync"], "fsync()")
    check_sigstop(res)


def test_async_write_and_fsync_do_not_wait_for_stopped_second(base):
    res = in_namespace(base, "sigstop", "--mode", "async")
    check_prompt(res["write"], "write() of 4 KiB")
    assert res["write"]["result"] == ["OK", 4096], res["write"]
    check_prompt(res["fsync"], "fsync()")  # async: fsync is local (docs/design/rfs.md §4.4)
    check_sigstop(res)


def test_prim_keeps_serving_when_second_is_killed(base):
    res = in_namespace(base, "lost")
    check_barrier(res["barrier_before"], "before the kill")
    assert res["second_rc"] == -9
    for w in ("write right after the kill", "write once lost"):
        r = res[w]
        assert r["result"] == ["OK", 4096], f"{w}: {r}"
        assert r["ms"] < 5000, f"{w}: took {r['ms']} ms"
    assert "lost" in res["links after the kill"], \
        f"PRIM's link went {res['links after the kill']}, never 'lost': {res['prim status']}"
    assert res["prim alive"]
    assert res["listing"] == ["after1", "after2", "before"]
    assert res["prim_rc"] == 0, res["output"]["prim"][-3000:]
    assert not res["still_mounted"]
    out = res["output"]["prim"]
    assert re.search(r"not up to date", out, re.I), \
        f"PRIM's log does not say the SECOND is not up to date:\n{out[-3000:]}"
    backing = {r["path"]: r for r in res["tree_backing"]}
    second = {r["path"]: r for r in res["tree_second"]}
    assert set(backing) == {".", "before", "after1", "after2"}
    assert "before" in second and second["before"] == backing["before"], \
        f"fsynced before the kill: prim {backing.get('before')}, second {second.get('before')}"
    check_outputs(res)


def test_three_dirs_on_one_stream(base):
    """Three replicated dirs in one PRIM and one SECOND: each case in its
    dir, every dir's copy equal to its PRIM mount after each; one signal
    stops all three mounts."""
    res = in_namespace(base, "multi")
    failed = []
    for name, c in res["cases"].items():
        check_barrier(c["barrier"], f"case {name}")
        for i, (tp, ts) in enumerate(c["trees"]):
            diff = tree_difference(tp, ts, (f"prim dir {i}", f"second dir {i}"))
            if diff:
                failed.append(f"after case {name} (in dir {c['dir']}), dir {i}:\n{diff}")
        assert any(r["path"].startswith(name) for r in c["trees"][c["dir"]][0]), \
            f"case {name} left nothing in dir {c['dir']}"
    if failed:
        pytest.fail("\n".join(failed))
    assert res["umount_rc"] == 0, res["output"]["prim"][-3000:]
    assert res["still_mounted"] == [False, False, False]
    assert res["second_rc"] == 0, res["output"]["second"][-3000:]
    check_outputs(res)


def test_nested_or_repeated_dirs_are_refused(base):
    os.makedirs(os.path.join(base, "a", "b"))
    secret = os.path.join(base, "secret")
    with open(secret, "w") as f:
        f.write("0123456789abcdef0123")
    for dirs, words in (([f"{base}/a", f"{base}/a/b"], "must not nest"),
                        ([f"{base}/a", f"{base}/a/"], "same directory"),
                        ([f"{base}/nope"], "no such directory")):
        cp = subprocess.run([str(RFS), "prim", *dirs, "--peer", "127.0.0.1:9", "--secret", secret,
                             "--state", os.path.join(base, "state")],
                            capture_output=True, text=True, timeout=30)
        assert cp.returncode == 2, (dirs, cp.returncode, cp.stderr)
        assert words in cp.stderr, (dirs, cp.stderr)


EXCLUDED = re.compile(r"(^|/)(scratch|[^/]*\.tmp)(/|$)")


def test_excluded_names_stay_on_prim(base):
    """exclude *.tmp and scratch: after each step the SECOND's copy equals
    the PRIM mount without the excluded names, mtimes, holes and
    directory times included; a file renamed from x.tmp arrives whole."""
    res = in_namespace(base, "exclude")
    failed = []
    for name, s in res["steps"].items():
        check_barrier(s["barrier"], name)
        # A directory's link count counts its subdirectories, excluded
        # ones too: not something the copy can match.
        def no_dir_nlink(tree):
            return [{k: v for k, v in r.items() if not (k == "nlink" and r["type"] == "dir")}
                    for r in tree]
        kept = [r for r in s["prim"] if not EXCLUDED.search(r["path"])]
        diff = tree_difference(no_dir_nlink(kept), no_dir_nlink(s["second"]),
                               ("prim mount without excluded", "second"))
        if diff:
            failed.append(f"after '{name}':\n{diff}")
    if failed:
        pytest.fail("\n".join(failed))
    steps = res["steps"]
    paths = {n: {r["path"] for r in s["second"]} for n, s in steps.items()}
    assert "db.tmp" in {r["path"] for r in steps["excluded files written"]["prim"]}
    assert not any(EXCLUDED.search(p) for s in paths.values() for p in s), paths
    assert "db" in paths["renamed into a replicated name"]
    assert "old" not in paths["renamed to an excluded name"]
    assert res["copied"] == 150000
    assert res["prim_status"]["link"] == "connected", res["prim_status"]
    assert res["umount_rc"] == 0 and res["second_rc"] == 0, res["output"]
    check_outputs(res)


def check_steps(res):
    """Every step's barrier reached and the trees equal after it."""
    failed = []
    for name, s in res["steps"].items():
        check_barrier(s["barrier"], name)
        diff = tree_difference(s["prim"], s["second"], ("prim mount", "second"))
        if diff:
            failed.append(f"after '{name}':\n{diff}")
    if failed:
        pytest.fail("\n".join(failed) + "\n" + res["output"]["prim"][-3000:])


def test_reintegration_after_second_was_away(base):
    """A PRIM dir with content before the first start is copied whole (the
    empty SECOND copy is set aside); the SECOND killed while PRIM writes,
    renames and deletes; back, PRIM's record brings its copy up to date in
    place while a writer keeps writing: identical trees, up to date again."""
    res = in_namespace(base, "reintegrate")
    check_steps(res)
    init = {r["path"] for r in res["steps"]["initial copy"]["second"]}
    assert {"pre/sub/f", "pre/link", "pre/hard"} <= init, init
    after = res["steps"]["after reintegration"]
    assert after["second_status"]["uptodate"] is True, after["second_status"]
    assert "while-away" in {r["path"] for r in after["second"]}
    assert res["writes_during"] > 0
    assert "pre" not in res["aside_entries"], res["aside_entries"]
    assert "reintegration done (incremental)" in res["output"]["prim"], \
        res["output"]["prim"][-3000:]
    assert res["prim_status"]["link"] == "connected", res["prim_status"]
    assert res["umount_rc"] == 0 and res["second_rc"] == 0, res["output"]
    check_outputs(res)


INCR_DONE = re.compile(r"reintegration done \(incremental\): (\d+) files, (\d+) bytes")
HASHED = re.compile(r"resync: (\d+) files compared by block hashes: (\d+) bytes were equal")


def test_incremental_reintegration_sends_only_what_changed(base):
    """SECOND away while PRIM changes ranges of a few files, truncates,
    changes only metadata, deletes, renames (a file, over another file, a
    directory, two files swapping names, a file renamed then deleted and
    its old name reused), links and creates; back, the bytes copied are those of the
    changed ranges plus the linked and new files (whole). The renamed files
    and directory are found on SECOND under their old names and compared by
    block hashes: none of their bytes travel. Nothing is set aside, and the
    trees are equal."""
    res = in_namespace(base, "incremental")
    check_steps(res)
    m = INCR_DONE.search(res["output"]["prim"])
    assert m, res["output"]["prim"][-3000:]
    sent, exp = int(m.group(2)), res["expect"]
    assert exp["min"] <= sent <= exp["max"], (sent, exp, res["output"]["prim"][-2000:])
    # f02, f07, f09, f10, olddir, and stale (renamed then deleted: found,
    # and taken by nobody, unless the new "stale" got the old one's inode
    # number: then it takes it, and the compare sends what differs).
    assert re.search(r"rfs dir 0: 6 renamed objects found under their old names, [56] of "
                     r"them moved", res["output"]["second"]), res["output"]["second"][-2000:]
    h = HASHED.search(res["output"]["prim"])
    assert h and int(h.group(2)) >= exp["matched_min"], (exp, res["output"]["prim"][-2000:])
    assert sent < res["full_bytes"] // 2, (sent, res["full_bytes"])
    # The first copy (an empty SECOND) may leave one aside; the merge none.
    assert sum(x.startswith("aside-") for x in res["aside"]) <= 1, res["aside"]
    after = res["steps"]["after reintegration"]
    paths = {r["path"] for r in after["second"]}
    assert {"data/f07r", "data/f11h", "newdir/deep/g0", "new1"} <= paths, sorted(paths)
    assert not {"data/f08", "data/f02", "data/f07", "olddir", "data/swap", "data/stale2"} & paths
    assert after["second_status"]["uptodate"] is True, after["second_status"]
    assert res["writes_during"] > 0
    assert res["umount_rc"] == 0 and res["second_rc"] == 0, res["output"]
    check_outputs(res)


def test_prim_crash_while_alone_keeps_its_record(base):
    """SECOND away; PRIM changes ranges, lets them cool, changes more and is
    SIGKILLed; restarted alone it changes one more range. SECOND back: the
    journal survived the crash, so the reintegration is incremental, the
    cooled and later ranges go as ranges, new and renamed files whole, and a
    file hot at the crash is compared by block hashes (only what differs
    travels); nothing is set aside and the trees are equal."""
    res = in_namespace(base, "crashalone", timeout=240)
    out = res["output"]
    assert res["prim_killed_rc"] == -9, res["prim_killed_rc"]
    assert "files were hot at the crash" in out["prim"], out["prim"][-3000:]
    m = INCR_DONE.search(out["prim"])
    assert m, out["prim"][-3000:]
    sent, exp = int(m.group(2)), res["expect"]
    assert exp["min"] <= sent <= exp["max"], (sent, exp, out["prim"][-2000:])
    assert sent < res["full_bytes"] // 3, (sent, res["full_bytes"])
    # f03 (appended to, hot at the crash) was compared by block hashes: its
    # first 4 MiB, equal there, did not travel.
    h = HASHED.search(out["prim"])
    assert h and int(h.group(1)) >= 1 and int(h.group(2)) >= 4 * 1024 * 1024, out["prim"][-3000:]
    assert sent <= exp["max"] - 4 * 1024 * 1024, (sent, exp)
    # The estimate reads the same record without hashing: files hot at the
    # crash, and f07 (written just before), count whole; an upper bound.
    assert res["estimate"].get("full_copy") is False, res["estimate"]
    assert sent <= res["estimate"]["bytes"] <= exp["max"] + 4 * 1024 * 1024, (res["estimate"], sent)
    assert sum(x.startswith("aside-") for x in res["aside"]) <= 1, res["aside"]
    after = res["steps"]["after reintegration"]
    diff = tree_difference(after["prim"], after["second"], ("prim mount", "second"))
    if diff:
        pytest.fail(f"after the reintegration:\n{diff}")
    paths = {r["path"] for r in after["second"]}
    assert {"data/f04r", "newdir/x", "data/new1"} <= paths, sorted(paths)
    assert not {"data/f04", "data/f05"} & paths
    assert after["second_status"]["uptodate"] is True, after["second_status"]
    assert res["umount_rc"] == 0 and res["second_rc"] == 0, out
    check_outputs(res)


COMPARE_DONE = re.compile(r"reintegration done \(compare\): (\d+) files, (\d+) bytes")


def test_sync_full_compares_by_block_hashes(base):
    """SECOND's copy damaged by hand while it was stopped (a block, a
    truncated file, lost and stray files, a symlink), then `outdate --full`
    (what `vigilctl sync full` runs on it): back, the whole copy is compared
    by block hashes, only what differs is sent, the trees are equal, nothing
    is set aside and the mark is gone."""
    res = in_namespace(base, "syncfull")
    out = res["output"]
    assert res["outdate_rc"] == 0 and res["verify_mark"], res
    m = COMPARE_DONE.search(out["prim"])
    assert m, out["prim"][-3000:]
    sent = int(m.group(2))
    assert 3 * 1024 * 1024 + 4 * 1024 * 1024 <= sent <= res["expect_max"], (sent, res["expect_max"])
    h = HASHED.search(out["prim"])
    assert h and int(h.group(2)) >= 4 * 4 * 1024 * 1024, out["prim"][-3000:]
    after = res["steps"]["after the compare"]
    diff = tree_difference(after["prim"], after["second"], ("prim mount", "second"))
    if diff:
        pytest.fail(f"after the compare:\n{diff}")
    asides = lambda names: [x for x in names if x.startswith("aside-")]
    assert asides(res["aside"]) == asides(res["aside_before"]), res["aside"]
    assert not res["verify_mark_after"]
    assert after["second_status"]["uptodate"] is True, after["second_status"]
    assert res["umount_rc"] == 0 and res["second_rc"] == 0, out
    check_outputs(res)


def test_clean_restart_keeps_the_copy(base):
    """Both stopped cleanly, then started again: equal generations, so no
    rebuild and nothing set aside; the stream goes on."""
    res = in_namespace(base, "restart")
    out = res["output"]
    check_barrier(res["barrier1"], "before the restart")
    check_barrier(res["barrier2"], "after the restart")
    assert res["umount_rc"] == 0 and res["second_rc"] == 0, out
    diff = tree_difference(res["prim"], res["second"], ("prim mount", "second"))
    if diff:
        pytest.fail(f"after the restart:\n{diff}")
    assert "data equal" in out["prim-2.log"], out["prim-2.log"][-3000:]
    assert "resync:" not in out["prim-2.log"], out["prim-2.log"][-3000:]
    assert res["aside_after"] == res["aside_before"], (res["aside_before"], res["aside_after"])
    assert res["second_status"]["uptodate"] is True, res["second_status"]
    assert res["umount2_rc"] == 0 and res["second2_rc"] == 0, out


def test_no_acknowledged_write_lost_when_prim_is_killed(base):
    """5 rounds: fsync and O_DSYNC writers on the PRIM, which is SIGKILLed
    at a random moment: every write whose fsync (or O_DSYNC write) returned
    is in the SECOND's copy. VIGIL_SEED=N repeats a run."""
    seed = int(os.environ.get("VIGIL_SEED", "0")) or random.randrange(1, 1 << 30)
    res = in_namespace(base, "zeroloss", "--rounds", "5", "--seed", str(seed))
    for i, r in enumerate(res["rounds"]):
        assert r["acked"]["fsync"] > 0 and r["acked"]["dsync"] > 0, (i, r)
        assert r["missing"] == {"fsync": [], "dsync": []}, \
            f"round {i}: acknowledged writes missing on the SECOND (VIGIL_SEED={seed}): {r}"
        assert r["second_rc"] == 0, r


def test_disk_full_on_second(base):
    """SECOND's copy on a 32 MiB tmpfs, 48 MiB written on PRIM: SECOND
    reports the disk full with the op and file, PRIM loses it with that
    reason and goes on serving every write."""
    res = in_namespace(base, "diskfull")
    out = res["output"]
    assert res["prim_write_errors"] == [], res["prim_write_errors"]
    assert res["prim_files"] == [f"big{i}" for i in range(6)], res["prim_files"]
    err = res["prim_status"]["error"]
    assert "No space left on device" in err and "WRITE" in err, res["prim_status"]
    assert "No space left on device" in out["second"], out["second"][-3000:]
    assert res["second_status"]["uptodate"] is False, res["second_status"]
    assert res["umount_rc"] == 0 and res["second_rc"] == 0, out
    check_outputs(res)


def test_ten_percent_packet_loss(base):
    """10 % of the stream's packets dropped (nftables in the test's own
    network namespace) for 15 s of fsynced writes: no write fails, and the
    copies end identical."""
    res = in_namespace(base, "lossy", "--seconds", "15", timeout=300)
    assert res["files_written"] > 10, res["files_written"]
    assert res["dropped_packets"] > 10, res["dropped_packets"]
    check_barrier(res["barrier"], "after the loss")
    diff = tree_difference(res["prim"], res["second"], ("prim mount", "second"))
    if diff:
        pytest.fail(f"after 10 % loss:\n{diff}")
    assert res["umount_rc"] == 0 and res["second_rc"] == 0, res["output"]
    check_outputs(res)
