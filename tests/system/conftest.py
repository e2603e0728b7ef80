"""Fixtures of the system tests: the netns lab (tests/lab/lab.py).

- `lab`: a two-node lab for vigil scenarios. Requires root and a built
  vigild/vigilctl (VIGIL_BUILD, default <repo>/build); fails (never skips)
  with a clear message otherwise.
- `netlab`: the same lab without the vigild requirement (tests of the lab).
- `poollab`: six nodes on one network, for the recording pool.
- `rfs_base`: a temp dir for the vigil-rfs tests, which run outside the lab
  in private namespaces; requires root, a built vigil-rfs and the FUSE
  tools, and checks afterwards that no mount under it is left on the host.

Both always clean up and then check that nothing of the lab is left. On a
failing test, the tail of each node's vigild log, and of the recording
workload's logs, is added to the report, and every log of its lab is kept
in build/test-artifacts/labs/<test>/ ($VIGIL_ARTIFACTS/labs; with
VIGIL_KEEP_LAB_LOGS=1, every test's).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))

import lab as labmod  # noqa: E402

LOG_TAIL_LINES = 60
# where a failed test's lab logs are kept (all tests' with VIGIL_KEEP_LAB_LOGS=1)
ARTIFACTS = Path(os.environ.get("VIGIL_ARTIFACTS") or
                 Path(__file__).resolve().parents[2] / "build" / "test-artifacts")
WORKLOAD_TAIL_LINES = 20


def _require_root():
    if os.geteuid() != 0:
        pytest.fail("the system tests need root (they create network and mount "
                    "namespaces); run them as root, e.g. sudo make test", pytrace=False)


def _require_vigil():
    missing = [str(p) for p in (labmod.Lab.vigild_path(), labmod.Lab.vigilctl_path())
               if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(f"not built: {', '.join(missing)} (build with `meson setup build && "
                    f"ninja -C build`, or point VIGIL_BUILD at a build dir)", pytrace=False)


def leftovers(prefix):
    """What of lab `prefix` still exists on the host (empty list = nothing)."""
    out = [f"netns {ns}" for ns in labmod._list_netns() if ns.startswith(prefix + "-")]
    root = str(labmod.BASE_DIR / prefix)
    out += [f"mount {m}" for m in labmod._proc_mounts()
            if m == root or m.startswith(root + "/")]
    if os.path.exists(root):
        out.append(f"dir {root}")
    return out


def _make_lab(request, nodes=2, nets=2):
    _require_root()
    the_lab = labmod.Lab(nodes=nodes, nets=nets)
    request.node._vigil_lab = the_lab
    the_lab.start()
    try:
        yield the_lab
    finally:
        if getattr(request.node, "_vigil_failed", False) or os.environ.get("VIGIL_KEEP_LAB_LOGS"):
            _keep_logs(the_lab, request.node.nodeid)
        the_lab.cleanup()
        left = leftovers(the_lab.prefix)
        assert not left, f"lab {the_lab.prefix} left behind: {left}"


@pytest.fixture
def lab(request):
    _require_root()
    _require_vigil()
    yield from _make_lab(request)


@pytest.fixture
def netlab(request):
    yield from _make_lab(request)


@pytest.fixture
def poollab(request):
    """Six nodes on one network: a pool master, recorders and spares
    (tests/lab/pool.py)."""
    _require_root()
    _require_vigil()
    yield from _make_lab(request, nodes=6, nets=1)


def _require_rfs():
    rfs = labmod.BUILD / "src" / "vigil-rfs"
    if os.geteuid() != 0:
        pytest.fail("the vigil-rfs tests need root (FUSE mounts in a mount namespace)",
                    pytrace=False)
    if not os.access(rfs, os.X_OK):
        pytest.fail(f"not built: {rfs} (ninja -C BUILD src/vigil-rfs, or point VIGIL_BUILD "
                    f"at a build dir)", pytrace=False)
    for need in ("/dev/fuse", shutil.which("fusermount3"), shutil.which("unshare"),
                 shutil.which("ip")):
        if not need or not os.path.exists(need):
            pytest.fail(f"missing {need or 'fusermount3/unshare/ip'} (scripts/install-deps)",
                        pytrace=False)


def _host_mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f
                if line.split()[4] == path or line.split()[4].startswith(path + "/")]


@pytest.fixture
def rfs_base():
    _require_rfs()
    d = tempfile.mkdtemp(prefix="vigil-rfs-", dir="/tmp")
    try:
        yield d
    finally:
        left = _host_mounts_under(d)
        for m in left:
            subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)
        assert not left, f"mounts left on the host: {left}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    lab = getattr(item, "_vigil_lab", None)
    # The logs live in the lab dir, which teardown removes: read them now.
    if lab is None or not rep.failed or rep.when not in ("setup", "call"):
        return
    item._vigil_failed = True
    for n in lab.nodes:
        if n.log.exists():
            rep.sections.append((f"vigild log {n.name} (last {LOG_TAIL_LINES} lines)",
                                 lab.vigild_log(n.k, LOG_TAIL_LINES)))
    if lab.journal_path.exists() and lab.journal_path.stat().st_size:
        rep.sections.append(("script journal", lab.journal_path.read_text()))
    # The recording workload's logs (tests/lab/cameras.py, record.py): the
    # camera host's encoders and RTSP server, each recorder's ffmpegs.
    for path in _workload_logs(lab.dir):
        tail = path.read_text(errors="replace").splitlines()[-WORKLOAD_TAIL_LINES:]
        if tail:
            rep.sections.append((f"{path.relative_to(lab.dir)} (last {WORKLOAD_TAIL_LINES} "
                                 f"lines)", "\n".join(tail)))


def _keep_logs(lab, nodeid):
    """Copies every log of the lab (vigild's, the workload's, the script
    journal) to ARTIFACTS/labs/<test>/, before the lab dir goes."""
    dest = ARTIFACTS / "labs" / re.sub(r"[^\w.-]+", "_", nodeid)
    try:
        shutil.rmtree(dest, ignore_errors=True)
        for p in lab.dir.rglob("*"):
            if p.is_file() and not p.is_symlink() and (p.suffix == ".log" or p.name == "journal"):
                (dest / p.relative_to(lab.dir)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(p, dest / p.relative_to(lab.dir))
    except OSError as e:
        print(f"lab logs: could not keep them in {dest}: {e}", file=sys.stderr)


def _workload_logs(lab_dir):
    try:
        return sorted(p for p in lab_dir.rglob("*.log")
                      if p.is_file() and p.name != "vigild.log"
                      and (p.parent.name == "cams" or "record-" in str(p)))
    except OSError:
        return []
