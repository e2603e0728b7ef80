"""vigil-rfs as a file system: a faithful passthrough of the directory it is
mounted over (issue 4, step 1).

Each test runs tests/rfs/fsx.py as pid 1 of a private mount+pid namespace
(`unshare -m --propagation private -p --fork --kill-child --mount-proc`):
whatever happens, the namespace dies with that process, taking every FUSE
mount and vigil-rfs process with it. fsx.py runs pjdfstest-style cases once
on a plain directory and once on the mounted one and records every result
and errno; the test asserts they are identical, that the mounted tree equals
the plain one, and that after unmounting the backing directory holds exactly
what the mount showed (mtimes included).

Needs root and a built vigil-rfs (VIGIL_BUILD, default <repo>/build).
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import lab as labmod

REPO = Path(__file__).resolve().parents[2]
FSX = REPO / "tests" / "rfs" / "fsx.py"
RFS = labmod.BUILD / "src" / "vigil-rfs"
PYTHON = labmod.PYTHON

sys.path.insert(0, str(FSX.parent))
import fsx  # noqa: E402

SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:")


@pytest.fixture
def base(rfs_base):
    """The conftest's rfs_base under the name these tests use."""
    return rfs_base


def in_namespace(base, command, *extra, timeout=300):
    cmd = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
           "--kill-child", "--mount-proc", PYTHON, str(FSX), command,
           "--rfs", str(RFS), "--base", base, *extra]
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert cp.returncode == 0, f"fsx.py {command} failed ({cp.returncode}):\n{cp.stderr[-4000:]}"
    return json.loads(cp.stdout)


def first_difference(plain, mnt):
    for i, (a, b) in enumerate(zip(plain, mnt)):
        if a != b:
            return f"step {i}: plain {a!r}\n        mounted {b!r}"
    return f"plain made {len(plain)} steps, mounted {len(mnt)}"


def tree_difference(a, b, what):
    pa = {r["path"]: r for r in a}
    pb = {r["path"]: r for r in b}
    out = [f"only in {what[0]}: {p}" for p in sorted(set(pa) - set(pb))]
    out += [f"only in {what[1]}: {p}" for p in sorted(set(pb) - set(pa))]
    out += [f"{p}: {what[0]} {pa[p]} != {what[1]} {pb[p]}" for p in sorted(set(pa) & set(pb))
            if pa[p] != pb[p]]
    return "\n".join(out[:20])


MMAP_ZEROS = fsx.norm(b"\0" * 16384)


def check_mmap_direct(c):
    """--cache direct: a shared mmap fails with ENODEV (the documented price),
    and the file is left as it was."""
    plain, mnt = c["plain"], c["mnt"]
    assert plain[1][:2] == ["shared mmap write", "OK"], plain
    assert mnt[0] == plain[0]
    assert mnt[1] == ["shared mmap write", "ERR", "ENODEV"], mnt
    assert mnt[2] == ["read back", "OK", MMAP_ZEROS], mnt


def check_run(res, cache):
    cases = dict(res["cases"])
    skip = ()
    if cache == "direct" and "mmap" in cases:
        check_mmap_direct(cases.pop("mmap"))
        skip = ("mmap/",)
    for name, c in cases.items():
        assert c["mnt"] == c["plain"], \
            f"case {name}: mounted differs from plain\n{first_difference(c['plain'], c['mnt'])}"
        assert any(step[1] == "OK" for step in c["mnt"]), f"case {name} did nothing"

    def tree(key):
        return [r for r in res[key] if not r["path"].startswith(skip)]
    assert tree("tree_mnt") == tree("tree_plain"), \
        tree_difference(tree("tree_plain"), tree("tree_mnt"), ("plain", "mounted"))
    assert res["tree_backing_times"] == res["tree_mnt_times"], \
        tree_difference(res["tree_mnt_times"], res["tree_backing_times"],
                        ("mounted", "backing after unmount"))
    out = res["rfs_output"]
    assert res["rfs_rc"] == 0, f"vigil-rfs exited {res['rfs_rc']}:\n{out[-3000:]}"
    assert not res["still_mounted"], "still mounted after fusermount3 -u"
    assert not SANITIZER.search(out), out[-6000:]
    assert f"cache {cache}," in out, out[-3000:]
    m = re.search(r"(\d+) changes journaled", out)
    assert m and int(m.group(1)) > 0, f"no change went through the journal hook:\n{out}"


@pytest.mark.parametrize("cache", ["direct", "page"])
@pytest.mark.parametrize("case", list(fsx.CASES))
def test_case_same_as_plain_dir(base, case, cache):
    check_run(in_namespace(base, "run", "--cache", cache, "--case", case), cache)


@pytest.mark.parametrize("cache", ["direct", "page"])
def test_all_cases_in_one_mount(base, cache):
    """Every case on one mount: the inode table across all of them."""
    res = in_namespace(base, "run", "--cache", cache, timeout=600)
    assert set(res["cases"]) == set(fsx.CASES)
    check_run(res, cache)


def test_refuses_bad_dir_with_clear_message(base):
    res = in_namespace(base, "refuse")
    expect = {
        "missing": r": no such directory$",
        "file": r"/file: not a directory$",
        "under file": r"/file/sub: not a directory",
        "no dir": r"mount needs a DIR",
        "no command": r"missing command",
        "bad option": r"unknown option '--frobnicate'",
        "bad cache": r"--cache: must be direct or page; got 'bogus'",
        "fuse mount": r"/mnt: already on a FUSE file system",
        "inside fuse mount": r"/mnt/sub: already on a FUSE file system",
    }
    for what, pattern in expect.items():
        r = res[what]
        assert r["rc"] == 2, f"{what}: exit {r['rc']}, stderr {r['stderr']!r}"
        first = r["stderr"].splitlines()[0]
        assert first.startswith("vigil-rfs: ") and re.search(pattern, first), \
            f"{what}: {first!r}"
    # The refused second mount did not disturb the first.
    assert res["first still serves"] == ["sub"]
    assert res["first rc"] == 0


def test_sigkill_leaves_a_mount_lazy_unmount_removes(base):
    res = in_namespace(base, "sigkill")
    assert res["rc"] == -9
    assert res["stat after kill"] == "ENOTCONN"
    assert res["mounted after kill"] is True
    assert res["fusermount3 -uz"][0] == 0, res["fusermount3 -uz"]
    assert res["mounted after cleanup"] is False
    assert res["backing file"] == "written before the kill"


def test_signals_and_background_mode_unmount_cleanly(base):
    res = in_namespace(base, "stop")
    for sig in ("SIGTERM", "SIGINT"):
        r = res[sig]
        assert r["rc"] == 0, r
        assert r["mounted"] is False, r
        assert r["file"] == sig
        assert re.search(r"stopping on signal \d+\n.*unmounted", r["output"], re.S), r["output"]
        assert not SANITIZER.search(r["output"]), r["output"]
    bg = res["background"]
    assert bg["rc"] == 0 and bg["mounted"] is True and bg["daemons"] == 1, bg
    assert bg["fusermount3 -u"] == 0 and bg["exited"] is True, bg
    assert bg["file"] == "bg"
