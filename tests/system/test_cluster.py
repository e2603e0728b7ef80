"""Scenarios of the mirror core on the netns lab: each asserts the node
states, who holds the virtual IP, who answers on it, and the order in which
the resource scripts ran (the lab's script journal)."""

import signal
import time

import lab as labmod
from lab import cluster_config

TIMEOUT = 10.0


def start_pair(lab, config=None):
    lab.setup_cluster(config)
    lab.start_vigild(1)
    lab.start_vigild(2)
    lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)
    lab.wait_for(lambda: lab.client_get() == "node1", TIMEOUT, what="node1 to answer on the VIP")


def starts_stops(lab):
    return [(n, a) for n, r, a, _ in lab.journal() if r == "web"]


def test_first_start(lab):
    start_pair(lab)
    assert lab.vip_owner() == "node1"
    assert starts_stops(lab) == [("node1", "start")]
    st = lab.status(2)
    assert st["cluster"] == "lab"
    names = [n["name"] for n in st["nodes"]]
    assert names == ["node1", "node2"]
    n1, n2 = st["nodes"]
    assert n1["resources"] == [{"name": "web", "state": "started"}] or \
        {"name": "web", "state": "started"}.items() <= n1["resources"][0].items()
    assert n2["resources"][0]["state"] == "stopped"
    assert n1["vip"]["held"] is True and n2["vip"]["held"] is False
    # Both heartbeat networks are up, seen from each side.
    assert all(net["up"] for net in n1["networks"]) and len(n1["networks"]) == 2
    # No [replication]: each node says so; switches at their defaults.
    for n in (n1, n2):
        assert n["sync"] == "not configured"
        assert n["failover"] is True and n["checkers"] is True and n["errd"] == "active"
        assert n["alarms"] == [] and n["checkers_state"] == []


def test_kill_prim_then_return_as_second(lab):
    start_pair(lab)
    t0 = time.monotonic()
    lab.node(1).kill()
    lab.wait_states(2, {"node2": "ALONE", "node1": None}, TIMEOUT)
    lab.wait_for(lambda: lab.client_get() == "node2", TIMEOUT, what="node2 to answer on the VIP")
    took = time.monotonic() - t0
    assert took < 5, f"failover took {took:.2f}s with timeout_ms=600"
    assert lab.vip_holders() == ["node2"] or lab.vip_holders() == ["node1", "node2"]
    # node1's namespace still has the address, but its link is down: only
    # node2 answers. Bring node1 back: it must join as SECOND and drop it.
    lab.node(1).revive()
    lab.start_vigild(1)
    lab.wait_states(1, {"node1": "SECOND", "node2": "PRIM"}, TIMEOUT)
    lab.wait_for(lambda: lab.vip_owner() == "node2", TIMEOUT, what="the VIP on node2 only")
    assert lab.client_get() == "node2"
    ss = starts_stops(lab)
    assert ss[0] == ("node1", "start") and ("node2", "start") in ss
    # The returning node never started the service again.
    assert ss.count(("node1", "start")) == 1


def test_swap_stops_before_starting(lab):
    start_pair(lab)
    # Swap asked on the SECOND is carried out by the PRIM.
    lab.vigilctl(2, "swap")
    lab.wait_states(2, {"node1": "SECOND", "node2": "PRIM"}, TIMEOUT)
    lab.wait_for(lambda: lab.client_get() == "node2", TIMEOUT, what="node2 to answer")
    assert lab.vip_owner() == "node2"
    j = [(n, a, t) for n, r, a, t in lab.journal() if r == "web"]
    stop1 = [t for n, a, t in j if (n, a) == ("node1", "stop")]
    start2 = [t for n, a, t in j if (n, a) == ("node2", "start")]
    assert len(stop1) == 1 and len(start2) == 1
    assert stop1[0] < start2[0], "node2 started before node1 finished stopping"
    # And back.
    lab.vigilctl(1, "swap")
    lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)
    lab.wait_for(lambda: lab.client_get() == "node1", TIMEOUT, what="node1 to answer")


def test_clean_stop_of_prim_hands_over(lab):
    start_pair(lab)
    out = lab.vigilctl(2, "--node", "node1", "stop").stdout
    assert "node1" in out
    lab.wait_for(lambda: lab.states(2) == {"node1": ("STOP", "red", True),
                                          "node2": ("ALONE", "green", True)},
                 TIMEOUT, what="node1 STOP and node2 ALONE")
    lab.wait_for(lambda: lab.client_get() == "node2", TIMEOUT, what="node2 to answer")
    assert lab.vip_owner() == "node2"
    j = [(n, a, t) for n, r, a, t in lab.journal() if r == "web"]
    stop1 = [t for n, a, t in j if (n, a) == ("node1", "stop")][0]
    start2 = [t for n, a, t in j if (n, a) == ("node2", "start")][0]
    assert stop1 < start2
    # The stopped node is shown as such, and starting it again makes it SECOND.
    lab.vigilctl(1, "start")
    lab.wait_states(1, {"node1": "SECOND", "node2": "PRIM"}, TIMEOUT)
    cmds = "\n".join(lab.vigilctl(1, "log", "commands", json=True)["lines"])
    assert "stop" in cmds and "start" in cmds


def test_both_stopped_then_started(lab):
    start_pair(lab)
    lab.vigilctl(1, "stop", "--all")
    lab.wait_for(lambda: lab.states(1) == {"node1": ("STOP", "red", True),
                                          "node2": ("STOP", "red", True)},
                 TIMEOUT, what="both STOP")
    assert lab.vip_owner() is None
    assert lab.client_get() is None
    lab.vigilctl(2, "start", "--all")
    # The preferred node (listed first) becomes PRIM.
    lab.wait_states(2, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)
    lab.wait_for(lambda: lab.client_get() == "node1", TIMEOUT, what="node1 to answer")


def test_vigild_restart_on_prim_keeps_service(lab):
    config = cluster_config(lab, interval_ms=100, timeout_ms=3000)
    start_pair(lab, config)
    before = list(lab.journal())
    lab.stop_vigild(1, sig=signal.SIGKILL)
    lab.start_vigild(1)
    deadline = time.monotonic() + 4
    # During and after the restart node2 never leaves SECOND and the
    # service keeps answering from node1.
    while time.monotonic() < deadline:
        st = lab.states(2)
        assert st["node2"][0] == "SECOND", st
        assert lab.client_get() == "node1"
        time.sleep(0.2)
    lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)
    assert lab.journal() == before, "scripts ran again although nothing failed"
    assert lab.vip_owner() == "node1"
    log = "\n".join(lab.vigilctl(1, "log", "--verbose", json=True)["lines"])
    assert "resum" in log


def test_partition_of_one_network_is_not_a_failover(lab):
    start_pair(lab)
    lab.partition(1, net=0)
    try:
        # Three timeouts long: still PRIM/SECOND, the VIP does not move.
        end = time.monotonic() + 3 * 0.6 + 0.5
        while time.monotonic() < end:
            assert lab.states(2) == {"node1": ("PRIM", "green", True),
                                     "node2": ("SECOND", "green", True)}
            time.sleep(0.1)
        nets = lab.status(2)["nodes"][1]["networks"]
        assert [n["up"] for n in nets] == [False, True]
        assert lab.vip_owner() == "node1"
    finally:
        lab.heal(1)
    lab.wait_for(lambda: all(n["up"] for n in lab.status(2)["nodes"][1]["networks"]),
                 TIMEOUT, what="network 0 up again")
    assert starts_stops(lab) == [("node1", "start")]


def test_failing_start_script(lab):
    lab.setup_cluster()
    lab.write_script(1, "web", "start", "echo 'port 80 is busy on node1' >&2; exit 3")
    lab.start_vigild(1)
    lab.start_vigild(2)
    # node1 fails cleanly to STOP; node2 takes the service.
    lab.wait_for(lambda: lab.states(2) == {"node1": ("STOP", "red", True),
                                          "node2": ("ALONE", "green", True)},
                 TIMEOUT, what="node1 STOP after its failed start, node2 ALONE")
    lab.wait_for(lambda: lab.client_get() == "node2", TIMEOUT, what="node2 to answer")
    st1 = [n for n in lab.status(1)["nodes"] if n["name"] == "node1"][0]
    assert "port 80 is busy" in st1["reason"], st1["reason"]
    app = "\n".join(lab.vigilctl(1, "log", "application", json=True)["lines"])
    assert "port 80 is busy on node1" in app
    mod = "\n".join(lab.vigilctl(1, "log", "module", json=True)["lines"])
    assert "start of resource web failed (exit 3)" in mod
    # node1 ran its stop script after the failure, before node2 started.
    j = [(n, a, t) for n, r, a, t in lab.journal() if r == "web"]
    stop1 = [t for n, a, t in j if (n, a) == ("node1", "stop")]
    start2 = [t for n, a, t in j if (n, a) == ("node2", "start")]
    assert stop1 and start2 and stop1[0] < start2[0]


def test_vip_in_use_by_a_third_host(lab):
    intruder = lab.add_host("intruder", labmod.VIP)
    lab.setup_cluster()
    lab.start_vigild(1)
    lab.start_vigild(2)
    lab.wait_for(lambda: lab.states(1)["node1"][:2] == ("WAIT", "red"), TIMEOUT,
                 what="node1 WAIT red: VIP in use")
    time.sleep(1.0)
    assert lab.vip_holders() == [], "a node took an address another host answers for"
    assert lab.client_get() == "intruder" or lab.client_get() is None
    st = [n for n in lab.status(1)["nodes"] if n["name"] == "node1"][0]
    assert "in use" in st["reason"], st["reason"]
    mod = "\n".join(lab.vigilctl(1, "log", json=True)["lines"])
    assert "answered ARP" in mod or "in use by" in mod
    assert [a for _, r, a, _ in lab.journal() if r == "web"] == []
    # The other host gives the address up: node1 takes it at its next retry.
    intruder.run(["ip", "addr", "del", labmod.VIP_CIDR, "dev", "eth0"])
    lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)
    lab.wait_for(lambda: lab.client_get() == "node1", TIMEOUT, what="node1 to answer")
    assert lab.vip_owner() == "node1"


def test_boot_modes_and_state_across_restarts(lab):
    start_pair(lab)
    # keep (default): a clean restart of SECOND's vigild brings it back SECOND.
    lab.stop_vigild(2)
    lab.wait_for(lambda: lab.states(1)["node1"] == ("ALONE", "green", True), TIMEOUT,
                 what="node1 ALONE while node2's vigild is down")
    lab.start_vigild(2)
    lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)
    # off: node2 stays STOP after a restart, and says why.
    out = lab.vigilctl(1, "--node", "node2", "boot", "off").stdout
    assert "boot off" in out
    lab.stop_vigild(2)
    lab.start_vigild(2)
    lab.wait_for(lambda: lab.states(1)["node2"] == ("STOP", "red", True), TIMEOUT,
                 what="node2 STOP with boot off")
    time.sleep(1.0)
    assert lab.states(1)["node2"] == ("STOP", "red", True)
    st2 = [n for n in lab.status(2)["nodes"] if n["name"] == "node2"][0]
    assert st2["boot"] == "off" and "boot is off" in st2["reason"]
    # on: starts although the last command was stop.
    lab.vigilctl(2, "boot", "on")
    lab.vigilctl(2, "stop")
    lab.stop_vigild(2)
    lab.start_vigild(2)
    lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)
    # keep again, after a stop: the node stays stopped.
    lab.vigilctl(2, "boot", "keep")
    lab.vigilctl(2, "stop")
    lab.stop_vigild(2)
    lab.start_vigild(2)
    lab.wait_for(lambda: lab.states(1)["node2"] == ("STOP", "red", True), TIMEOUT,
                 what="node2 STOP (keep, stopped before)")
    # A bad mode is refused and changes nothing.
    cp = lab.vigilctl(2, "boot", "sometimes", check=False)
    assert cp.returncode != 0
    st2 = [n for n in lab.status(2)["nodes"] if n["name"] == "node2"][0]
    assert st2["boot"] == "keep"


def test_lossy_heartbeat_network_is_not_a_failover(lab):
    start_pair(lab)
    # 20% loss on network 0 and network 1 down: heartbeats every 100 ms,
    # timeout 600 ms; six losses in a row (p ~ 0.3% over the test) would be
    # needed for a false failover.
    lab.drop_share(1, 20, net=0)
    lab.cut_link(1, 1)
    try:
        end = time.monotonic() + 4
        while time.monotonic() < end:
            assert lab.states(2) == {"node1": ("PRIM", "green", True),
                                     "node2": ("SECOND", "green", True)}
            time.sleep(0.2)
    finally:
        lab.heal(1)
        lab.heal_link(1, 1)
    assert starts_stops(lab) == [("node1", "start")]


def test_restart_command_restarts_in_place(lab):
    start_pair(lab)
    lab.vigilctl(2, "--node", "node1", "restart")
    # The SECOND never takes over while the PRIM restarts its resources.
    end = time.monotonic() + 2
    while time.monotonic() < end:
        assert lab.states(2)["node2"][0] == "SECOND"
        time.sleep(0.1)
    lab.wait_states(2, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)
    lab.wait_for(lambda: lab.client_get() == "node1", TIMEOUT, what="node1 to answer again")
    assert starts_stops(lab) == [("node1", "start"), ("node1", "stop"), ("node1", "start")]
    assert lab.vip_owner() == "node1"
    # restart of a stopped node is refused with a reason.
    lab.vigilctl(2, "stop")
    lab.wait_for(lambda: lab.states(1)["node2"] == ("STOP", "red", True), TIMEOUT, what="node2 STOP")
    cp = lab.vigilctl(1, "--node", "node2", "restart", check=False)
    assert cp.returncode == 1 and "stopped" in cp.stderr


def test_split_brain_without_witness_heals_to_the_older_primary(lab):
    start_pair(lab)
    lab.partition(1)          # every network of node1: a full split
    try:
        lab.wait_states(2, {"node2": "ALONE", "node1": None}, TIMEOUT)
        lab.wait_states(1, {"node1": "ALONE", "node2": None}, TIMEOUT)
    finally:
        lab.heal(1)
    # The node that was PRIM before the split keeps the service; the other
    # yields and says a split happened and when (the keeper may never see
    # the peer as ALONE if the peer yields first), in the status seen from
    # either node.
    lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)
    lab.wait_for(lambda: lab.vip_owner() == "node1", TIMEOUT, what="the VIP on node1 only")
    lab.wait_for(lambda: lab.client_get() == "node1", TIMEOUT, what="node1 to answer")
    for k in (1, 2):
        n2 = [n for n in lab.status(k)["nodes"] if n["name"] == "node2"][0]
        assert "split_brain" in n2, n2
    mod = "\n".join(lab.vigilctl(2, "log", json=True)["lines"])
    assert "split brain" in mod


def test_failover_off_holds_then_on_takes_over(lab):
    start_pair(lab)
    out = lab.vigilctl(1, "--node", "node2", "failover", "off").stdout
    assert "failover off" in out
    st2 = [n for n in lab.status(2)["nodes"] if n["name"] == "node2"][0]
    assert st2["failover"] is False
    lab.node(1).kill()
    # node2 notices the loss but does not take over: WAIT (red), no VIP.
    lab.wait_for(lambda: lab.states(2)["node2"] == ("WAIT", "red", True), TIMEOUT,
                 what="node2 WAIT red with failover off")
    time.sleep(1.5)
    assert lab.states(2)["node2"] == ("WAIT", "red", True)
    assert lab.vip_holders() in ([], ["node1"])   # node1's dead namespace may keep it
    assert lab.client_get() is None
    assert ("node2", "start") not in starts_stops(lab)
    st2 = [n for n in lab.status(2)["nodes"] if n["name"] == "node2"][0]
    assert "failover is off" in st2["reason"]
    # The switch survives a restart of vigild.
    lab.stop_vigild(2, sig=signal.SIGKILL)
    lab.start_vigild(2)
    # Hearing nobody after its restart, it still does not start the service.
    lab.wait_for(lambda: lab.states(2)["node2"] == ("WAIT", "red", True), TIMEOUT,
                 what="node2 WAIT red after restart with failover off")
    time.sleep(1.0)
    assert lab.states(2)["node2"] == ("WAIT", "red", True)
    assert lab.client_get() is None
    st2 = [n for n in lab.status(2)["nodes"] if n["name"] == "node2"][0]
    assert st2["failover"] is False
    lab.vigilctl(2, "failover", "on")
    lab.wait_states(2, {"node2": "ALONE", "node1": None}, TIMEOUT)
    lab.wait_for(lambda: lab.client_get() == "node2", TIMEOUT, what="node2 to answer")
    cmds = "\n".join(lab.vigilctl(2, "log", "commands", json=True)["lines"])
    assert "failover off" in cmds and "failover on" in cmds


def test_stopstart_on_prim_is_a_failover(lab):
    start_pair(lab)
    out = lab.vigilctl(2, "--node", "node1", "stopstart").stdout
    assert "stopping, then starting again" in out
    # node2 takes over once node1's stop scripts are done; node1 comes back
    # as SECOND by itself.
    lab.wait_states(1, {"node1": "SECOND", "node2": "PRIM"}, TIMEOUT)
    lab.wait_for(lambda: lab.client_get() == "node2", TIMEOUT, what="node2 to answer")
    assert lab.vip_owner() == "node2"
    j = [(n, a, t) for n, r, a, t in lab.journal() if r == "web"]
    assert [(n, a) for n, a, _ in j] == [("node1", "start"), ("node1", "stop"), ("node2", "start")]
    assert j[1][2] < j[2][2], "node2 started before node1's stop finished"
    # Still started for boot keep, and the commands log has it.
    st1 = [n for n in lab.status(1)["nodes"] if n["name"] == "node1"][0]
    assert st1["state"] == "SECOND"
    cmds = "\n".join(lab.vigilctl(1, "log", "commands", json=True)["lines"])
    assert "stopstart" in cmds
    # On a stopped node it is refused with a reason.
    lab.vigilctl(1, "stop")
    lab.wait_for(lambda: lab.states(2)["node1"] == ("STOP", "red", True), TIMEOUT, what="node1 STOP")
    cp = lab.vigilctl(1, "stopstart", check=False)
    assert cp.returncode == 1 and "use start" in cp.stderr
