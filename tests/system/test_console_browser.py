"""The web console in a real browser: tests/browser/console.mjs (playwright-core
driving Debian's chromium, headless) run in the lab's client namespace
against a two-node cluster. Login, monitoring, swap, stop/start, the log
views, the snapshot download and the translations; a screenshot per step
is kept in <repo>/build/test-artifacts/console/ ($VIGIL_ARTIFACTS/console
if that is set)."""

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

import console as con
import lab as labmod

TIMEOUT = 20
REPO = labmod.REPO
BROWSER_DIR = REPO / "tests" / "browser"
SETUP = BROWSER_DIR / "setup"
SCRIPT = BROWSER_DIR / "console.mjs"
# The script bounds itself (timeout_s); the test kills it a little later.
RUN_TIMEOUT = 170
SCRIPT_TIMEOUT = 150
# What the resource scripts print: the application log must show it.
APP_START = "console-test: web started on {name}"
APP_STOP = "console-test: web stopped on {name}"


def artifacts_dir():
    root = os.environ.get("VIGIL_ARTIFACTS")
    base = Path(root) if root else REPO / "build" / "test-artifacts"
    return base / "console"


@pytest.fixture(scope="module")
def browser_setup():
    """tests/browser/setup: chromium, node, playwright-core. A failure is a
    failure, never a skip."""
    try:
        cp = subprocess.run([str(SETUP)], capture_output=True, text=True, timeout=900,
                            stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.fail(f"{SETUP} did not run: {e}", pytrace=False)
    if cp.returncode != 0:
        pytest.fail(f"{SETUP} failed (exit {cp.returncode}); the browser test cannot run\n"
                    f"stdout: {cp.stdout}\nstderr: {cp.stderr}", pytrace=False)
    node = shutil.which("node")
    if not node:
        pytest.fail(f"{SETUP} succeeded but there is no node on PATH", pytrace=False)
    return node


def write_scripts(lab):
    """The lab's web resource, with scripts that also print a line each, so
    the application log has something to show."""
    for n in lab.nodes:
        n.write_file("/var/lib/vigil/www/index.html", n.name + "\n")
        lab.write_script(n.k, "web", "start",
                         f"echo '{APP_START.format(name=n.name)}'\n{labmod.WEB_START}")
        lab.write_script(n.k, "web", "stop",
                         f"{labmod.WEB_STOP}\necho '{APP_STOP.format(name=n.name)}'")


@pytest.fixture
def cluster(lab):
    lab.setup_cluster(scripts=False)
    write_scripts(lab)
    con.start_cluster(lab, TIMEOUT)
    return lab


def _cmdline(pid):
    try:
        return f"{pid} " + Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
    except OSError:
        return str(pid)


def _kill_group(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()


def test_console_in_a_browser(browser_setup, cluster, capsys):
    lab = cluster
    art = artifacts_dir()
    shutil.rmtree(art, ignore_errors=True)
    art.mkdir(parents=True)
    with capsys.disabled():
        print(f"\n{__name__}: screenshots of each step in {art}")
    config = {
        "url": "http://10.0.0.1:9010/",
        "password": con.PASSWORD,
        "wrong_password": "Wrong_" + con.PASSWORD,
        "artifacts": str(art),
        "client_addr": labmod.CLIENT_ADDR,
        # node1: started at PRIM, stopped by the swap, started again at ALONE.
        "app_log": [APP_START.format(name="node1"), APP_STOP.format(name="node1"),
                    APP_START.format(name="node1")],
        "i18n_dir": str(REPO / "src" / "console" / "i18n"),
        "timeout_s": SCRIPT_TIMEOUT,
    }
    cfg_file = art / "config.json"
    cfg_file.write_text(json.dumps(config, indent=1) + "\n")
    out_file = art / "console.log"

    t0 = time.monotonic()
    with open(out_file, "w") as out:
        p = lab.client.popen([browser_setup, str(SCRIPT), str(cfg_file)],
                             stdout=out, stderr=subprocess.STDOUT, cwd=str(BROWSER_DIR))
        try:
            rc = p.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            _kill_group(p)
            rc = None
    took = time.monotonic() - t0
    output = out_file.read_text(errors="replace")
    print(f"console.mjs: exit {rc} after {took:.1f}s; screenshots in {art}\n{output}")
    assert rc is not None, f"console.mjs still running after {RUN_TIMEOUT}s, killed\n{output}"
    assert rc == 0, f"console.mjs failed (exit {rc}); screenshots in {art}\n{output}"
    shots = sorted(f.name for f in art.glob("*.png"))
    assert len(shots) >= 16 and not [f for f in shots if "FAILED" in f], shots
    assert list(art.glob("vigil-node1-*.tar.gz")), "no snapshot saved"

    # The browser is gone with the script: nothing left in the client's netns.
    deadline = time.monotonic() + 10
    while lab.client.pids() and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [_cmdline(pid) for pid in lab.client.pids()]
    assert not left, f"processes left in the client namespace after console.mjs: {left}"
    assert lab.states(1) == {"node1": ("PRIM", "green", True), "node2": ("SECOND", "green", True)}
