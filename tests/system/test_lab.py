"""Tests of the lab itself (tests/lab/lab.py): no vigild needed."""

import configparser
import os
import re
import signal
import subprocess
import sys
import time

import pytest

import lab as labmod
from conftest import leftovers

LAB_PY = str(labmod.LAB_PY)


def loss(host, addr, count=100):
    """Packet loss in % of `count` fast pings."""
    cp = host.run(["busybox", "ping", "-q", "-c", str(count), "-i", "0.01", "-W", "1", addr],
                  check=False, timeout=30)
    m = re.search(r"(\d+)% packet loss", cp.stdout)
    assert m, f"no loss figure in ping output: {cp.stdout!r} {cp.stderr!r}"
    return int(m.group(1))


def test_topology(netlab):
    n1, n2 = netlab.node(1), netlab.node(2)
    nss = labmod._list_netns()
    for ns in (n1.ns, n2.ns, netlab.client.ns, netlab.sw):
        assert ns in nss
    for n in (n1, n2):
        out = n.run(["ip", "-4", "-o", "addr"]).stdout
        for i in range(2):
            assert re.search(rf"\beth{i}\s+inet 10\.0\.{i}\.{n.k}/24", out), out
        assert "inet 127.0.0.1/8" in out
    for br in netlab.bridges:
        netlab_sw = labmod.sh(["ip", "-n", netlab.sw, "-d", "link", "show", br]).stdout
        assert "bridge" in netlab_sw
    # interface names the kernel accepts, and nothing in the host's netns
    host_links = labmod.sh(["ip", "-o", "link"]).stdout
    assert netlab.prefix not in host_links


def test_ping_both_nets(netlab):
    n1, n2 = netlab.node(1), netlab.node(2)
    assert n1.ping("10.0.0.2") and n1.ping("10.0.1.2")
    assert n2.ping("10.0.0.1") and n2.ping("10.0.1.1")
    assert netlab.client.ping("10.0.0.1") and netlab.client.ping("10.0.0.2")
    # the client is on net 0 only
    assert not netlab.client.ping("10.0.1.1")


def test_mount_isolation(netlab):
    n1, n2 = netlab.node(1), netlab.node(2)
    for d in ("/etc/vigil", "/var/lib/vigil", "/run/vigil"):
        n1.run(["sh", "-c", f"echo one > {d}/probe"])
        assert n1.run(["cat", f"{d}/probe"]).stdout == "one\n"
        assert n2.run(["test", "-e", f"{d}/probe"], check=False).returncode == 1
        assert not os.path.exists(f"{d}/probe")
        assert (n1.host_path(f"{d}/probe")).read_text() == "one\n"
    n2.write_file("/etc/vigil/secret", b"s" * 32, 0o600)
    assert n2.run(["stat", "-c", "%a %s", "/etc/vigil/secret"]).stdout.split() == ["600", "32"]
    assert n2.read_file("/etc/vigil/secret", binary=True) == b"s" * 32
    assert n1.run(["test", "-e", "/etc/vigil/secret"], check=False).returncode == 1
    with pytest.raises(ValueError):
        n1.write_file("/etc/passwd", "no")
    # a lost bind (as when some other test removes the host's /run/vigil) is restored
    n1.run(["umount", "/run/vigil"])
    assert n1.run(["test", "-e", "/run/vigil/probe"], check=False).returncode == 1
    n1.ensure_private_mounts()
    assert n1.run(["cat", "/run/vigil/probe"]).stdout == "one\n"


def test_kill_revive(netlab):
    n1 = netlab.node(1)
    p = n1.popen(["sleep", "1000"])
    n1.run("sleep 1000 >/dev/null 2>&1 &")          # a daemon not tracked by the lab
    pids = n1.pids()
    assert p.pid in pids and len(pids) >= 2
    netlab.node(2).popen(["sleep", "1000"])
    n1.kill()
    assert n1.pids() == []
    assert p.poll() == -signal.SIGKILL
    assert len(netlab.node(2).pids()) == 1          # the other node untouched
    assert not netlab.node(2).ping("10.0.0.1") and not netlab.node(2).ping("10.0.1.1")
    for ifname, outside in n1.ifaces.values():
        assert "state DOWN" in n1.run(["ip", "link", "show", ifname]).stdout
        assert "state DOWN" in labmod.sh(["ip", "-n", netlab.sw, "link", "show", outside]).stdout
    n1.revive()
    assert netlab.node(2).ping("10.0.0.1", count=3) and netlab.node(2).ping("10.0.1.1", count=3)
    assert n1.pids() == []


def test_cut_heal(netlab):
    n1 = netlab.node(1)
    netlab.cut_link(1, 0)
    assert not n1.ping("10.0.0.2")
    assert n1.ping("10.0.1.2")
    # as with a pulled cable: still administratively up, but no carrier
    flags = n1.run(["ip", "link", "show", "eth0"]).stdout.split("<")[1].split(">")[0]
    assert set(flags.split(",")) >= {"UP", "NO-CARRIER"}, flags
    netlab.heal_link(1, 0)
    assert n1.ping("10.0.0.2", count=3)
    netlab.cut_link(1, 0)
    netlab.cut_link(1, 1)
    assert not n1.ping("10.0.0.2") and not n1.ping("10.0.1.2")
    netlab.heal(1)
    assert n1.ping("10.0.0.2", count=3) and n1.ping("10.0.1.2", count=3)


def test_partition_heal(netlab):
    n1, n2 = netlab.node(1), netlab.node(2)
    netlab.partition(1, net=0)
    assert labmod.NFT_TABLE in netlab.nft_ruleset(1)
    assert not n2.ping("10.0.0.1") and not n1.ping("10.0.0.2")
    assert n2.ping("10.0.1.1")
    # ARP is dropped too: a fresh neighbour lookup fails
    n2.run(["ip", "neigh", "flush", "dev", "eth0"])
    assert not n2.ping("10.0.0.1")
    netlab.partition(1)
    assert not n2.ping("10.0.1.1")
    assert netlab.nft_ruleset(2).strip() == ""        # rules are in node1 only
    netlab.heal()
    assert labmod.NFT_TABLE not in netlab.nft_ruleset(1)
    assert n2.ping("10.0.0.1", count=3) and n2.ping("10.0.1.1", count=3)


def test_drop_share(netlab):
    n1 = netlab.node(1)
    # resolve ARP first: with 75% of ARP round trips lost too, the few
    # seconds of pinging could be spent waiting for the neighbour
    assert n1.ping("10.0.0.2") and n1.ping("10.0.1.2")
    netlab.drop_share(1, 50, net=0)
    # 50% each way: about 75% of the round trips are lost
    lost = loss(n1, "10.0.0.2", 200)
    assert 55 <= lost <= 92, lost
    assert loss(n1, "10.0.1.2", 50) == 0
    netlab.drop_share(1, 0, net=0)
    assert loss(n1, "10.0.0.2", 50) == 0
    netlab.drop_share(1, 100)
    assert loss(n1, "10.0.1.2", 20) == 100
    netlab.heal(1)
    assert loss(n1, "10.0.0.2", 50) == 0
    with pytest.raises(ValueError):
        netlab.drop_share(1, 101)


def test_extra_host_and_vip_helpers(netlab):
    n1, n2 = netlab.node(1), netlab.node(2)
    h = netlab.add_host("other", "10.0.0.50")
    assert n1.ping("10.0.0.50")
    assert netlab.vip_owner() is None
    h.run(["ip", "addr", "add", "10.0.0.100/24", "dev", "eth0"])
    assert netlab.vip_owner() is None                  # only nodes count
    assert n1.ping("10.0.0.100")                       # the conflicting holder answers
    h.run(["ip", "addr", "del", "10.0.0.100/24", "dev", "eth0"])

    netlab.write_scripts()
    assert n1.run(["/etc/vigil/scripts/web-start"]).returncode == 0
    assert n2.run(["/etc/vigil/scripts/web-start"]).returncode == 0
    assert netlab.client_get(addr="10.0.0.1") == "node1"
    assert netlab.client_get(addr="10.0.0.2") == "node2"
    assert netlab.client_get() is None
    n1.run("ip addr add 10.0.0.100/24 dev eth0 && busybox arping -q -U -c 1 -I eth0 10.0.0.100")
    assert netlab.vip_owner() == "node1"
    assert netlab.client_get() == "node1"
    n1.run("ip addr del 10.0.0.100/24 dev eth0")
    n1.run(["/etc/vigil/scripts/web-stop"])
    assert netlab.client_get(addr="10.0.0.1") is None
    assert n1.run(["test", "-e", "/run/vigil/web.pid"], check=False).returncode == 1
    n2.run("ip addr add 10.0.0.100/24 dev eth0 && busybox arping -q -U -c 1 -I eth0 10.0.0.100")
    assert netlab.vip_owner() == "node2"
    assert netlab.client_get() == "node2"
    n1.run("ip addr add 10.0.0.100/24 dev eth0")
    assert netlab.vip_owner() == "node1+node2"
    j = netlab.journal()
    assert [(e[0], e[2]) for e in j] == [("node1", "start"), ("node2", "start"),
                                         ("node1", "stop")]
    assert j[0][3] < j[1][3] < j[2][3] <= time.monotonic_ns()


def test_poller(netlab):
    n1 = netlab.node(1)
    netlab.start_web_all()
    p = netlab.client.popen([labmod.PYTHON, "-S", LAB_PY, "poll", "10.0.0.1"],
                            stdout=subprocess.PIPE, text=True)
    first = p.stdout.readline().split()
    assert first[1] == "start"
    line = p.stdout.readline().split()
    assert line[1] == "node1" and int(line[0]) >= int(first[0])
    t0 = time.monotonic_ns()
    n1.run("kill $(cat /run/vigil/web.pid)")
    line = p.stdout.readline().split()
    assert line[1] == "-" and int(line[0]) > t0
    assert int(line[0]) - t0 < 500_000_000


def test_cluster_config(netlab):
    text = labmod.cluster_config(netlab)
    cp = configparser.ConfigParser()
    cp.read_string(text)
    assert cp["cluster"]["name"] == "lab"
    assert cp["node node1"]["address"] == "10.0.0.1, 10.0.1.1"
    assert cp["node node2"]["address"] == "10.0.0.2, 10.0.1.2"
    assert cp["heartbeat"]["interval_ms"] == "100" and cp["heartbeat"]["timeout_ms"] == "600"
    assert cp["vip"]["address"] == "10.0.0.100/24" and cp["vip"]["interface"] == "eth0"
    assert cp["resource web"]["when"] == "prim"
    text = labmod.cluster_config(netlab, interval_ms=1000, timeout_ms=5000, vip=None,
                                 resources={}, heartbeat={"port": 9999})
    cp = configparser.ConfigParser()
    cp.read_string(text)
    assert "vip" not in cp and not any(s.startswith("resource") for s in cp.sections())
    assert cp["heartbeat"]["port"] == "9999" and cp["heartbeat"]["timeout_ms"] == "5000"


def test_wait_for_message():
    seen = iter(range(1000))
    with pytest.raises(AssertionError, match=r"waiting for the answer; last observed: False"):
        labmod.wait_for(lambda: next(seen) < 0, 0.2, what="the answer")
    vals = iter([0, None, 7])
    assert labmod.wait_for(lambda: next(vals), 2, interval=0.01) == 7
    with pytest.raises(AssertionError, match=r"last observed: 'OSError: boom'"):
        labmod.wait_for(lambda: (_ for _ in ()).throw(OSError("boom")), 0.1, what="x")


# ------------------------------------------------- cleanup in all the ways

CHILD = r"""
import sys, time
sys.path.insert(0, {labdir!r})
import lab
l = lab.Lab()
l.start()
l.write_scripts()
l.node(1).run(["/etc/vigil/scripts/web-start"])
l.node(2).popen(["sleep", "1000"])
print(l.prefix, flush=True)
{tail}
"""


def _child(tail):
    code = CHILD.format(labdir=str(labmod.LAB_PY.parent), tail=tail)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    prefix = p.stdout.readline().strip()
    assert labmod.PREFIX_RE.match(prefix), (prefix, p.stderr.read() if p.poll() else "")
    assert leftovers(prefix), "the child's lab should exist now"
    return p, prefix


def _host_state():
    return (os.path.isdir("/etc/vigil"), os.path.isdir("/var/lib/vigil"),
            os.path.isdir("/run/vigil"))


@pytest.mark.parametrize("how", ["sigterm", "sigint", "exception", "exit"])
def test_cleanup_paths(how):
    before = _host_state()
    tail = {"sigterm": "time.sleep(60)", "sigint": "time.sleep(60)",
            "exception": "1/0",
            "exit": "sys.exit(0)"}[how]
    p, prefix = _child(tail)
    if how == "sigterm":
        p.send_signal(signal.SIGTERM)
    elif how == "sigint":
        p.send_signal(signal.SIGINT)
    rc = p.wait(timeout=30)
    expect = {"sigterm": 128 + signal.SIGTERM, "sigint": -signal.SIGINT, "exception": 1, "exit": 0}[how]
    assert rc == expect, p.stderr.read()
    assert leftovers(prefix) == []
    assert _host_state() == before


def test_context_manager_cleans_on_exception():
    with pytest.raises(ZeroDivisionError):
        with labmod.Lab() as lab:
            prefix = lab.prefix
            lab.node(1).popen(["sleep", "1000"])
            1 / 0
    assert leftovers(prefix) == []


def test_cleanup_stale():
    p, prefix = _child("time.sleep(60)")
    # a live lab is left alone
    cp = subprocess.run([sys.executable, LAB_PY, "cleanup-stale"], capture_output=True,
                        text=True, timeout=60)
    assert f"{prefix}: in use" in cp.stdout
    assert leftovers(prefix)
    os.killpg(p.pid, signal.SIGKILL)                   # no chance to clean up
    p.wait()
    assert leftovers(prefix), "SIGKILL leaves the lab behind"
    cp = subprocess.run([sys.executable, LAB_PY, "cleanup-stale"], capture_output=True,
                        text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert f"{prefix}: cleaning" in cp.stdout
    assert leftovers(prefix) == []
    # processes of the dead lab (httpd, sleep) are gone too
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "/var/lib/vigil/www" not in ps
