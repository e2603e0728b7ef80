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
failing test, the tail of each node's vigild log is added to the report.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))

import lab as labmod  # noqa: E402

LOG_TAIL_LINES = 60


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
    for n in lab.nodes:
        if n.log.exists():
            rep.sections.append((f"vigild log {n.name} (last {LOG_TAIL_LINES} lines)",
                                 lab.vigild_log(n.k, LOG_TAIL_LINES)))
    if lab.journal_path.exists() and lab.journal_path.stat().st_size:
        rep.sections.append(("script journal", lab.journal_path.read_text()))
