"""The setup wizard (`vigilctl setup`, docs/setup.md) on the lab: a two-node
cluster from nothing in three steps (secondary on node2, primary on node1,
finish on node2), the security code refusing the wrong machine and the wrong
code, `setup remove` leaving no process, mount or address behind and the
data in place, and bad input changing nothing.

The wizard starts vigild itself (not the lab's start_vigild): the daemons
live in the nodes' namespaces, where the lab's cleanup kills them."""

import os
import re

import console as con
import lab as labmod

TIMEOUT = 30
CONF = "/etc/vigil/vigil.conf"
N1, N2 = "10.0.0.1", "10.0.0.2"
PEERS = "10.0.0.2,10.0.1.2"
DATA = "/srv/vms/db"
ASIDE = "/srv/vms/.rfs"
CODE_RE = re.compile(r"Security code: ([A-Z2-7]{4}(?:-[A-Z2-7]{4}){4})")
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def run_setup(lab, k, *args, input=None, timeout=60):
    return lab.node(k).run([str(lab.vigilctl_path()), "-c", CONF, "setup", *args], input=input,
                           check=False, timeout=timeout)


def module_logs(lab):
    out = []
    for n in lab.nodes:
        try:
            text = n.read_file("/var/lib/vigil/module.log")
        except OSError:
            text = "(none)"
        out.append(f"--- {n.name} module.log\n" + "\n".join(text.splitlines()[-30:]))
    return "\n".join(out)


def etc(lab, k):
    """What is in node k's config directory."""
    return sorted(os.listdir(lab.node(k).host_path("/etc/vigil")))


def secondary(lab, *args, password=con.PASSWORD):
    cp = run_setup(lab, 2, "secondary", "--timeout", "300", *args, input=password + "\n")
    assert cp.returncode == 0, cp
    m = CODE_RE.search(cp.stdout)
    assert m, cp.stdout
    return m.group(1)


def primary(lab, code, *args, vip=labmod.VIP_CIDR, peer=PEERS):
    return run_setup(lab, 1, "primary", "--peer", peer, "--vip", vip, "--code", code, *args)


def other_code(code, part):
    """code with its key part (0) or its random part (1) changed."""
    raw = code.replace("-", "")
    at = 0 if part == 0 else 19
    c = B32[(B32.index(raw[at]) + 1) % 32]
    raw = raw[:at] + c + raw[at + 1:]
    return "-".join(raw[i:i + 4] for i in range(0, 20, 4))


def wizard(lab, replicate=True):
    """The three steps; returns node1's primary output."""
    assert etc(lab, 1) == [] and etc(lab, 2) == [], "the lab nodes start from nothing"
    extra = []
    if replicate:
        for n in lab.nodes:
            n.host_path(DATA).mkdir(parents=True, exist_ok=True)
            n.host_path(ASIDE).mkdir(parents=True, exist_ok=True)
        extra = ["--replicate", DATA, "--aside-dir", ASIDE]
    code = secondary(lab)
    cp = primary(lab, code, *extra)
    assert cp.returncode == 0, f"{cp}\n{module_logs(lab)}"
    cp2 = run_setup(lab, 2, "finish")
    assert cp2.returncode == 0, f"{cp2}\n{module_logs(lab)}"
    try:
        lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)
        lab.wait_states(2, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{module_logs(lab)}") from None
    return cp.stdout


def vigil_procs(lab, k):
    out = []
    for p in lab.node(k).pids():
        try:
            with open(f"/proc/{p}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{p}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, IndexError):
            continue
        if comm in ("vigild", "vigil-rfs") and state not in ("Z", "X"):
            out.append((p, comm))
    return out


def agent_log(lab):
    try:
        return lab.node(2).read_file("/etc/vigil/setup/agent.log")
    except OSError:
        return ""


def test_wizard_sets_up_a_cluster_from_nothing(lab, tmp_path):
    out = wizard(lab)
    assert "exported to /etc/vigil/cacert-export.crt" in out, out
    assert lab.vip_owner() == "node1"
    # Both nodes share the secret and the password hash; node2 never gets
    # the CA key; the setup state is gone.
    for name in ("secret", "console.passwd"):
        a = lab.node(1).host_path(f"/etc/vigil/{name}")
        b = lab.node(2).host_path(f"/etc/vigil/{name}")
        assert a.read_bytes() == b.read_bytes(), name
        assert a.stat().st_mode & 0o777 == 0o600 and b.stat().st_mode & 0o777 == 0o600, name
    assert lab.node(1).read_file("/etc/vigil/console.passwd").startswith("$argon2id$")
    assert con.PASSWORD not in lab.node(1).read_file("/etc/vigil/console.passwd")
    assert "ca.key" in os.listdir(lab.node(1).host_path("/etc/vigil/pki"))
    assert sorted(os.listdir(lab.node(2).host_path("/etc/vigil/pki"))) == \
        ["cacert.crt", "node1.crt", "node2.crt", "node2.key"]
    assert "setup" not in etc(lab, 2)
    assert not [f for f in etc(lab, 1) + etc(lab, 2) if f.startswith(".setup")]
    for k in (1, 2):
        cp = lab.node(k).run([str(lab.vigild_path()), "--check-config", "-c", CONF])
        assert f"this machine is node{k}" in cp.stdout, cp
    # The console: the password set on node2, over HTTPS verified with the
    # exported CA, on both nodes and the VIP; no plain HTTP (--https).
    ca = tmp_path / "cacert.crt"
    ca.write_bytes(lab.node(1).host_path("/etc/vigil/cacert-export.crt").read_bytes())
    apis = [con.Api(lab, addr, https=True, cacert=str(ca)) for addr in (N1, N2, labmod.VIP)]
    try:
        for api in apis:
            assert api.login("Wrong_pass1").code == 401, api.addr
            a = api.login()
            assert a.code == 200, (api.addr, a)
            a = api.get("/api/v1/cluster")
            assert a.code == 200 and [n["state"] for n in a.json()["nodes"]] == ["PRIM", "SECOND"], a
        assert con.Api(lab, N1).get("/api/v1/cluster").code == 0, "HTTP was not chosen"
    finally:
        for api in apis:
            api.cleanup()
    # The cluster works: replicated data, and a swap.
    lab.node(1).run(["sh", "-c", f"echo one > {DATA}/first.txt && sync"])
    lab.vigilctl(1, "swap", "--wait", "60", timeout=90)
    lab.wait_states(1, {"node1": "SECOND", "node2": "PRIM"}, TIMEOUT)
    lab.wait_for(lambda: lab.vip_owner() == "node2", TIMEOUT, what="the VIP on node2")
    assert lab.node(2).run(["cat", f"{DATA}/first.txt"]).stdout == "one\n"


def test_wrong_security_code_is_refused_and_the_right_one_still_works(lab):
    code = secondary(lab)
    # Another machine's code (its key part differs): node1 refuses before
    # sending anything.
    cp = primary(lab, other_code(code, 0))
    assert cp.returncode == 1, cp
    assert "security code does not match node2's: wrong code or not the right machine" in cp.stderr, cp
    assert etc(lab, 1) == [], "a refused setup writes nothing on node1"
    # The right machine, a wrong code: the agent refuses it and says so.
    cp = primary(lab, other_code(code, 1))
    assert cp.returncode == 1, cp
    assert "node2 refused: wrong security code" in cp.stderr, cp
    assert "4 more attempts" in cp.stderr, cp
    assert etc(lab, 1) == []
    assert "wrong security code from 10.0.0.1 (1 of 5)" in agent_log(lab)
    # Not a code at all.
    cp = primary(lab, "not-a-code")
    assert cp.returncode == 2 and "expected 20 characters" in cp.stderr, cp
    # Lower case and without dashes is the same code.
    cp = primary(lab, code.replace("-", "").lower())
    assert cp.returncode == 0, f"{cp}\n{agent_log(lab)}"
    cp = run_setup(lab, 2, "finish")
    assert cp.returncode == 0, cp
    lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)


def test_agent_stops_after_five_wrong_codes(lab):
    code = secondary(lab)
    for i in range(5):
        cp = primary(lab, other_code(code, 1))
        assert cp.returncode == 1 and "wrong security code" in cp.stderr, (i, cp)
    assert "5 wrong security codes: stopped" in agent_log(lab)
    cp = primary(lab, code)
    assert cp.returncode == 1 and "cannot reach node2's setup agent" in cp.stderr, cp
    assert etc(lab, 1) == []
    cp = run_setup(lab, 2, "finish")
    assert cp.returncode == 1 and "the setup agent has stopped" in cp.stderr, cp
    # Starting over gives a new code.
    assert secondary(lab) != code


def test_setup_remove_leaves_nothing_but_the_data(lab):
    wizard(lab)
    lab.node(1).run(["sh", "-c", f"echo keep > {DATA}/keep.txt && sync"])
    lab.wait_for(lambda: lab.node(2).host_path(f"{DATA}/keep.txt").exists(), TIMEOUT,
                 what="keep.txt on node2")
    mounts = lab.node(1).run(["cat", "/proc/mounts"]).stdout
    assert "fuse.vigil-rfs" in mounts, "the PRIM serves the data through vigil-rfs"
    assert vigil_procs(lab, 1) and vigil_procs(lab, 2)
    for k in (2, 1):
        cp = run_setup(lab, k, "remove", "--yes")
        assert cp.returncode == 0, cp
        assert "Stopped vigild" in cp.stdout, cp
    for k in (1, 2):
        n = lab.node(k)
        assert vigil_procs(lab, k) == [], k
        assert "fuse" not in n.run(["cat", "/proc/mounts"]).stdout, k
        for dev in ("eth0", "eth1"):
            assert labmod.VIP not in n.run(["ip", "-4", "-o", "addr", "show", "dev", dev]).stdout
        assert etc(lab, k) == [], (k, etc(lab, k))
        assert not n.host_path("/var/lib/vigil/node.json").exists()
        # Data and logs stay.
        assert n.read_file(f"{DATA}/keep.txt") == "keep\n", k
        assert n.host_path("/var/lib/vigil/module.log").exists()
    root = str(lab.dir)
    assert not [m for m in labmod._proc_mounts() if m.startswith(root) and "fuse" in m]
    # Nothing left to remove: still fine; and the node can be set up again.
    cp = run_setup(lab, 1, "remove", "--yes")
    assert cp.returncode == 0, cp
    wizard(lab, replicate=False)


def test_remove_stops_a_waiting_agent_and_needs_confirmation(lab):
    secondary(lab)
    assert "setup" in etc(lab, 2)
    cp = run_setup(lab, 2, "remove")
    assert cp.returncode == 1 and "add --yes" in cp.stderr, cp
    assert "setup" in etc(lab, 2)
    cp = run_setup(lab, 2, "remove", "--yes")
    assert cp.returncode == 0 and "Stopped the setup agent" in cp.stdout, cp
    assert etc(lab, 2) == []
    cp = primary(lab, "AAAA-AAAA-AAAA-AAAA-AAAA")
    assert cp.returncode == 1 and "cannot reach" in cp.stderr, cp


def test_bad_input_is_refused_and_writes_nothing(lab):
    # finish with nothing under way, then with nothing received yet.
    cp = run_setup(lab, 2, "finish")
    assert cp.returncode == 1 and "no setup under way" in cp.stderr, cp
    # A password outside the rules: refused, no agent started.
    cp = run_setup(lab, 2, "secondary", input="short\n")
    assert cp.returncode == 1 and "6 to 32" in cp.stderr, cp
    cp = run_setup(lab, 2, "secondary", input="")
    assert cp.returncode == 1 and "no password" in cp.stderr, cp
    assert etc(lab, 2) == []
    code = secondary(lab)
    cp = run_setup(lab, 2, "finish")
    assert cp.returncode == 1 and "nothing received from node1 yet" in cp.stderr, cp
    cp = run_setup(lab, 2, "secondary", input=con.PASSWORD + "\n")
    assert cp.returncode == 1 and "already waits" in cp.stderr, cp
    # Bad --vip: caught before node2 is asked, or once its addresses are known.
    for vip, why in [("10.0.0.300/24", "not an IPv4 address"), ("10.0.0.100/33", "from 1 to 32"),
                     ("10.0.0.100/abc", "from 1 to 32"), ("10.0.0.0/24", "network address"),
                     ("10.0.0.255/24", "broadcast address"), ("10.0.0.1/24", "already an address"),
                     ("10.9.9.9/24", "no interface"), ("10.0.0.2/24", "already an address of node2")]:
        cp = primary(lab, code, vip=vip)
        assert cp.returncode in (1, 2) and why in cp.stderr, (vip, cp)
        assert etc(lab, 1) == [], vip
    # Other bad options.
    for args, why in [(["--peer", "node2.example"], "not an IPv4 address"),
                      (["--peer", "10.0.0.9"], "cannot reach"),
                      (["--peer", "10.0.0.1"], "an address of this machine"),
                      (["--name", "bad name"], "--name 'bad name'"),
                      (["--node1", "a", "--node2", "a"], "different names"),
                      (["--replicate", "/srv/vms/nope"], "/srv/vms/nope"),
                      (["--aside-dir", "/tmp"], "goes with --replicate"),
                      (["--address", "10.0.0.7,10.0.1.1"], "not an address of this machine"),
                      (["--export", "/nonexistent"], "/nonexistent")]:
        a = list(args)
        peer = PEERS
        if a[0] == "--peer":
            peer = a[1]
            a = a[2:]
        cp = primary(lab, code, *a, peer=peer)
        assert cp.returncode in (1, 2) and why in cp.stderr, (args, cp)
        assert etc(lab, 1) == [], args
    cp = run_setup(lab, 1, "primary", "--peer", PEERS)
    assert cp.returncode == 2 and "--vip and --code are needed" in cp.stderr, cp
    cp = run_setup(lab, 1, "explode")
    assert cp.returncode == 2 and "unknown command 'explode'" in cp.stderr, cp
    # The agent went on waiting through all that (node1 gave up each time).
    assert "gave up" in agent_log(lab)
    # A config already present: refused on either side.
    lab.node(1).write_file(CONF, "# somebody's\n")
    cp = primary(lab, code)
    assert cp.returncode == 1 and "already configured" in cp.stderr and "setup remove" in cp.stderr, cp
    assert etc(lab, 1) == ["vigil.conf"]
    assert lab.node(1).read_file(CONF) == "# somebody's\n"
    lab.node(1).host_path(CONF).unlink()
    cp = primary(lab, code)
    assert cp.returncode == 0, cp
    cp = run_setup(lab, 2, "secondary", input=con.PASSWORD + "\n")
    assert cp.returncode == 1 and "setup finish" in cp.stderr, cp
    lab.node(2).write_file(CONF, "# somebody's\n")
    cp = run_setup(lab, 2, "finish")
    assert cp.returncode == 1 and "already configured" in cp.stderr, cp
    assert lab.node(2).read_file(CONF) == "# somebody's\n"
    lab.node(2).host_path(CONF).unlink()
    cp = run_setup(lab, 2, "finish")
    assert cp.returncode == 0, cp
    lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)
    # A configured node refuses a new setup.
    cp = run_setup(lab, 2, "secondary", input=con.PASSWORD + "\n")
    assert cp.returncode == 1 and "already configured" in cp.stderr, cp


def test_remove_after_vigild_was_killed_cleans_up_itself(lab):
    """vigild and vigil-rfs killed (a crash): nobody released the VIP or the
    FUSE mount; setup remove does."""
    wizard(lab)
    lab.wait_for(lambda: lab.vip_owner() == "node1", TIMEOUT, what="the VIP on node1")
    for p, comm in vigil_procs(lab, 1):
        os.kill(p, 9)
    lab.wait_for(lambda: not vigil_procs(lab, 1), TIMEOUT, what="vigild and vigil-rfs gone on node1")
    n = lab.node(1)
    assert labmod.VIP in n.run(["ip", "-4", "-o", "addr", "show", "dev", "eth0"]).stdout
    assert "fuse.vigil-rfs" in n.run(["cat", "/proc/mounts"]).stdout
    cp = run_setup(lab, 1, "remove", "--yes")
    assert cp.returncode == 0, cp
    assert f"Removed the virtual IP {labmod.VIP} from eth0" in cp.stdout, cp
    assert "Unmounted vigil-rfs from /srv/vms/db" in cp.stdout, cp
    assert vigil_procs(lab, 1) == []
    assert labmod.VIP not in n.run(["ip", "-4", "-o", "addr", "show"]).stdout
    assert "fuse" not in n.run(["cat", "/proc/mounts"]).stdout
    assert etc(lab, 1) == []
    cp = run_setup(lab, 2, "remove", "--yes")
    assert cp.returncode == 0, cp
    assert vigil_procs(lab, 2) == [] and etc(lab, 2) == []
    assert labmod.VIP not in lab.node(2).run(["ip", "-4", "-o", "addr", "show"]).stdout
