"""keepalived (Debian's) as the reference for bench/failover.

VRRP v3 unicast between node1 (MASTER, priority 150) and node2 (BACKUP,
priority 100) on net 0; the virtual IP 10.0.0.100/24 on eth0. VRRP v3
because v2 cannot advertise faster than once a second (advert_int 0.1).

Each node's keepalived runs inside the node (its netns and mount ns):
config in its /etc/vigil/keepalived.conf, pid files in its /run/vigil,
console log in <lab dir>/node<k>/keepalived.log.
"""

import subprocess
import time

import lab as labmod

PRIORITY = {1: 150, 2: 100}
VRID = 51


def config_text(lab, k, advert_int=1.0):
    n = lab.node(k)
    peers = "\n".join(f"        {o.addr(0)}" for o in lab.nodes if o.k != k)
    state = "MASTER" if k == 1 else "BACKUP"
    return f"""# written by tests/lab/keepalived.py
global_defs {{
    router_id {n.name}
    vrrp_version 3
    # announce at once and do not repeat late: like vigil's burst
    vrrp_garp_master_delay 0
    vrrp_garp_master_repeat 3
}}

vrrp_instance VI_1 {{
    state {state}
    interface eth0
    virtual_router_id {VRID}
    priority {PRIORITY.get(k, 50)}
    advert_int {advert_int:g}
    unicast_src_ip {n.addr(0)}
    unicast_peer {{
{peers}
    }}
    virtual_ipaddress {{
        {labmod.VIP_CIDR} dev eth0
    }}
}}
"""


def start(lab, k, advert_int=1.0):
    """Starts keepalived on node k; returns its Popen (tracked by the lab)."""
    n = lab.node(k)
    n.ensure_private_mounts()
    n.write_file("/etc/vigil/keepalived.conf", config_text(lab, k, advert_int))
    log = open(n.dir / "keepalived.log", "ab")
    try:
        # -n foreground, -l log to console, -D detailed, -G no syslog, -P VRRP
        # only; every pid file of this instance in the node's own /run/vigil.
        return n.popen(["keepalived", "-n", "-l", "-D", "-G", "-P",
                        "-f", "/etc/vigil/keepalived.conf",
                        "-p", "/run/vigil/keepalived.pid",
                        "-r", "/run/vigil/keepalived-vrrp.pid",
                        "-c", "/run/vigil/keepalived-checkers.pid",
                        "-b", "/run/vigil/keepalived-bfd.pid"],
                       stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


def version():
    cp = subprocess.run(["keepalived", "--version"], capture_output=True, text=True)
    out = (cp.stdout + cp.stderr).split()
    return out[1] if len(out) > 1 and out[0] == "Keepalived" else "?"


def log_tail(lab, k, lines=30):
    p = lab.node(k).dir / "keepalived.log"
    return "\n".join(p.read_text(errors="replace").splitlines()[-lines:]) if p.exists() else ""


def start_cluster(lab, advert_int=1.0, timeout=15.0):
    """node1 first, and once it holds the VIP node2, which must stay BACKUP
    (it has heard node1 for more than its master-down interval)."""
    start(lab, 1, advert_int)
    labmod.wait_for(lambda: lab.vip_owner() == "node1", timeout,
                    what="keepalived on node1 to hold the VIP")
    start(lab, 2, advert_int)
    # master-down interval = 3 adverts + skew: past it node2 would have taken over
    time.sleep(3.5 * advert_int + 0.3)
    owner = lab.vip_owner()
    if owner != "node1":
        raise labmod.LabError(f"keepalived: VIP on {owner} after node2 started, not node1\n"
                              f"node2 log:\n{log_tail(lab, 2)}")
