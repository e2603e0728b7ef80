#!/usr/bin/env python3
"""The vigil network-namespace lab: nodes, networks, faults.

A Lab builds, per instance and under one unique prefix (vg + 4 hex):

  <prefix>-sw        a "switch" network namespace holding one bridge per
                     network (<prefix>-br<i>), so nothing of the lab touches
                     the host's own network namespace
  <prefix>-node<k>   node k: eth<i> = 10.0.<i>.<k>/24 on network i, lo up,
                     plus its own persistent MOUNT namespace (a file
                     /tmp/<prefix>/node<k>.mnt) in which /etc/vigil,
                     /var/lib/vigil, /run/vigil, /var/lib/vms (pool) and /srv/vms (replicated
                     data) are private bind mounts of
                     /tmp/<prefix>/node<k>/{etc,lib,run,srv}
  <prefix>-client    10.0.0.200/24 on network 0
  <prefix>-<name>    extra hosts on network 0 (add_host)

Everything created is removed by cleanup(): on leaving the `with` block
(also on exceptions), on SIGTERM/SIGINT of this process, and at exit.
`python3 tests/lab/lab.py cleanup-stale` removes what crashed runs left.

Faults use link state and nftables only (tc netem does not work here).

The vigil helpers (config, secret, scripts, vigild, vigilctl, status,
wait_states, client_get, vip_owner, journal) are at the end of the class.

Only the standard library is used; the module is also run inside the
namespaces (`lab.py poll`, the client poller of bench/failover).
"""

import atexit
import errno
import json as jsonlib
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("VIGIL_BUILD", REPO / "build")).resolve()
LAB_PY = Path(__file__).resolve()
# The real interpreter (not a pyenv shim): scripts in the nodes call it to
# read CLOCK_MONOTONIC, which the shell cannot.
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

PREFIX_RE = re.compile(r"^vg[0-9a-f]{4}$")
NS_RE = re.compile(r"^(vg[0-9a-f]{4})-[a-z0-9]+$")
MARKER = ".vigil-lab"
BASE_DIR = Path("/tmp")

# inside-node path -> subdirectory of the node's lab dir that backs it
PRIVATE_DIRS = {"/etc/vigil": "etc", "/var/lib/vigil": "lib", "/run/vigil": "run",
                "/srv/vms": "srv", "/var/lib/vms": "vms"}

VIP = "10.0.0.100"
VIP_CIDR = VIP + "/24"
CLIENT_ADDR = "10.0.0.200"
HB_PORT = 8888
NFT_TABLE = "vigil_lab"


class LabError(RuntimeError):
    pass


def net_addr(net, host):
    return f"10.0.{net}.{host}"


def _fmt_cmd(cmd):
    return cmd if isinstance(cmd, str) else " ".join(shlex.quote(str(c)) for c in cmd)


def sh(cmd, check=True, timeout=30, input=None):
    """Runs a host command (list, or string for sh -c); text output captured."""
    args = ["sh", "-c", cmd] if isinstance(cmd, str) else [str(c) for c in cmd]
    try:
        cp = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                            input=input)
    except subprocess.TimeoutExpired as e:
        raise LabError(f"command timed out after {timeout}s: {_fmt_cmd(cmd)}") from e
    if check and cp.returncode != 0:
        raise LabError(f"command failed (exit {cp.returncode}): {_fmt_cmd(cmd)}\n"
                       f"stdout: {cp.stdout.strip()}\nstderr: {cp.stderr.strip()}")
    return cp


def mono_ns():
    return time.monotonic_ns()


def wait_for(predicate, timeout=10.0, interval=0.05, what="condition"):
    """Calls predicate() until it returns a truthy value, which is returned.

    Exceptions from predicate count as "not yet" (and are shown if it never
    succeeds). Raises AssertionError naming `what` and the last value seen."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - reported below
            last = f"{type(e).__name__}: {e}"
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; "
                                 f"last observed: {last!r}")
        time.sleep(interval)


# ---------------------------------------------------------------- hosts

class Host:
    """A network namespace on the lab's networks (client, extra hosts)."""

    def __init__(self, lab, name, ns):
        self.lab = lab
        self.name = name
        self.ns = ns
        self.ifaces = {}          # net -> (inside name, switch-side name)
        self.procs = []

    def _prefix(self):
        return ["nsenter", f"--net=/run/netns/{self.ns}", "--"]

    def wrap(self, cmd):
        args = ["sh", "-c", cmd] if isinstance(cmd, str) else [str(c) for c in cmd]
        return self._prefix() + args

    def run(self, cmd, check=True, timeout=30, input=None):
        """Runs cmd (list, or string for sh -c) in this host; CompletedProcess."""
        try:
            cp = subprocess.run(self.wrap(cmd), capture_output=True, text=True,
                                timeout=timeout, input=input)
        except subprocess.TimeoutExpired as e:
            raise LabError(f"{self.name}: timed out after {timeout}s: {_fmt_cmd(cmd)}") from e
        if check and cp.returncode != 0:
            raise LabError(f"{self.name}: command failed (exit {cp.returncode}): "
                           f"{_fmt_cmd(cmd)}\nstdout: {cp.stdout.strip()}\n"
                           f"stderr: {cp.stderr.strip()}")
        return cp

    def popen(self, cmd, **kw):
        """Starts cmd in this host; the Popen is killed at cleanup."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("start_new_session", True)
        p = subprocess.Popen(self.wrap(cmd), **kw)
        self.procs.append(p)
        self.lab._procs.append(p)
        return p

    def pids(self):
        """Every process in this host's network namespace."""
        cp = sh(["ip", "netns", "pids", self.ns], check=False)
        return [int(x) for x in cp.stdout.split()]

    def kill_all(self, timeout=5.0):
        """SIGKILLs every process in the netns until none is left."""
        deadline = time.monotonic() + timeout
        while True:
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if time.monotonic() > deadline:
                raise LabError(f"{self.name}: processes survive SIGKILL: {pids}")
            time.sleep(0.01)
        for p in self.procs:
            try:
                p.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass

    def addr(self, net=0):
        raise NotImplementedError

    def ping(self, addr, count=1, timeout=1):
        """True if addr answers a ping from this host (any of count echoes;
        timeout in whole seconds)."""
        cp = self.run(["busybox", "ping", "-q", "-c", str(count), "-W", str(int(timeout)), addr],
                      check=False, timeout=count * timeout + 5)
        return cp.returncode == 0


class Node(Host):
    """A cluster node: network namespace plus its own mount namespace."""

    def __init__(self, lab, k):
        super().__init__(lab, f"node{k}", f"{lab.prefix}-node{k}")
        self.k = k
        self.dir = lab.dir / self.name
        self.mnt = lab.dir / f"{self.name}.mnt"
        self.log = self.dir / "vigild.log"
        self.vigild = None

    def _prefix(self):
        return ["nsenter", f"--net=/run/netns/{self.ns}", f"--mount={self.mnt}", "--"]

    def addr(self, net=0):
        return net_addr(net, self.k)

    def ensure_private_mounts(self):
        """(Re)binds /etc/vigil, /var/lib/vigil and /run/vigil in the node's
        mount namespace where missing. Removing the host's directory (some
        other test's rm -r /run/vigil) detaches the bind in every namespace;
        this puts it back, creating the host mountpoint if needed."""
        with _host_dirs_lock():
            for inside in PRIVATE_DIRS:
                if not os.path.isdir(inside):
                    os.makedirs(inside)
                    if inside not in self.lab._created_dirs:
                        self.lab._created_dirs.append(inside)
                        self.lab._write_marker()
            script = " ".join(
                f"mountpoint -q {inside} || mount --bind "
                f"{shlex.quote(str(self.dir / sub))} {inside} || exit 1;"
                for inside, sub in PRIVATE_DIRS.items())
            sh(["nsenter", f"--mount={self.mnt}", "--", "sh", "-c", script])

    def host_path(self, path):
        """The lab-dir path backing `path` as seen inside the node."""
        p = os.path.normpath(path)
        for inside, sub in PRIVATE_DIRS.items():
            if p == inside or p.startswith(inside + "/"):
                return self.dir / sub / os.path.relpath(p, inside)
        raise ValueError(f"{path}: not under one of the node's private directories "
                         f"{', '.join(PRIVATE_DIRS)}")

    def write_file(self, path, content, mode=0o644):
        hp = self.host_path(path)
        hp.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else bytes(content)
        fd = os.open(hp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.chmod(hp, mode)
        return hp

    def read_file(self, path, binary=False):
        hp = self.host_path(path)
        return hp.read_bytes() if binary else hp.read_text()

    # faults -----------------------------------------------------------
    def kill(self):
        """SIGKILL every process of the node and take all its links down."""
        self.kill_all()
        self.vigild = None
        for net in self.ifaces:
            self.lab._link(self, net, up=False, inside=True)

    def revive(self):
        """Links up again; processes stay dead (restart them yourself)."""
        for net in self.ifaces:
            self.lab._link(self, net, up=True, inside=True)


class Lab:
    """See the module doc. Usable as a context manager or start()/cleanup()."""

    def __init__(self, nodes=2, nets=2, prefix=None, base_dir=None):
        if not 1 <= nodes <= 9:
            raise ValueError(f"nodes={nodes}: must be 1..9")
        if not 1 <= nets <= 4:
            raise ValueError(f"nets={nets}: must be 1..4")
        if prefix is not None and not PREFIX_RE.match(prefix):
            raise ValueError(f"prefix={prefix!r}: must match {PREFIX_RE.pattern} "
                             "(cleanup-stale finds leftovers by that pattern)")
        self.nnodes = nodes
        self.nnets = nets
        self.prefix = prefix or self._new_prefix()
        self.dir = Path(base_dir or BASE_DIR) / self.prefix
        self.sw = f"{self.prefix}-sw"
        self.bridges = [f"{self.prefix}-br{i}" for i in range(nets)]
        self.nodes = [Node(self, k) for k in range(1, nodes + 1)]
        self.client = Host(self, "client", f"{self.prefix}-client")
        self.client.addr = lambda net=0: CLIENT_ADDR
        self.hosts = {}
        self.journal_path = self.dir / "journal"
        self._procs = []
        self._netns = []              # created, in order
        self._mounts = []             # mounted on the host, in order
        self._created_dirs = []       # host mountpoints we had to create
        self._faults = {}             # node k -> {net: "partition" | percent}
        self._started = False
        self._cleaning = False
        self._exit_after_cleanup = None
        self._cleaned = False

    @staticmethod
    def _new_prefix():
        existing = set(_list_netns())
        while True:
            p = "vg" + secrets.token_hex(2)
            if not any(n.startswith(p + "-") for n in existing) and \
                    not (BASE_DIR / p).exists():
                return p

    # ------------------------------------------------------------ lifecycle
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, et, ev, tb):
        # An error in cleanup must not hide the one that ended the block.
        self.cleanup(raise_errors=et is None)
        return False

    def node(self, k):
        if not 1 <= k <= self.nnodes:
            raise ValueError(f"node {k}: the lab has nodes 1..{self.nnodes}")
        return self.nodes[k - 1]

    def start(self):
        if os.geteuid() != 0:
            raise LabError("the lab needs root (network and mount namespaces)")
        if self._started:
            return self
        self._started = True
        _register(self)
        try:
            self._build()
        except BaseException:
            self.cleanup(raise_errors=False)
            raise
        return self

    def _add_netns(self, ns):
        sh(["ip", "netns", "add", ns])
        self._netns.append(ns)
        # IPv6 is not used by vigil; without it the nets carry no DAD or
        # router-solicitation noise.
        sh(["ip", "netns", "exec", ns, "sh", "-c",
            "sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 "
            "net.ipv6.conf.default.disable_ipv6=1; ip link set lo up"])

    def _build(self):
        self.dir.mkdir(mode=0o755)
        self._write_marker()
        self.journal_path.touch()
        self._add_netns(self.sw)
        for i, br in enumerate(self.bridges):
            sh(["ip", "-n", self.sw, "link", "add", br, "type", "bridge",
                "forward_delay", "0", "stp_state", "0", "mcast_snooping", "0"])
            sh(["ip", "-n", self.sw, "link", "set", br, "up"])
        for n in self.nodes:
            self._add_netns(n.ns)
            for i in range(self.nnets):
                self._attach(n, i, f"n{n.k}", n.addr(i))
        self._add_netns(self.client.ns)
        self._attach(self.client, 0, "c", CLIENT_ADDR)
        self._build_mounts()

    def _attach(self, host, net, tag, addr, ifname=None):
        outside = f"{self.prefix}-{tag}e{net}"
        tmp = f"{self.prefix}-{tag}i{net}"
        ifname = ifname or f"eth{net}"
        assert len(outside) <= 15 and len(tmp) <= 15, (outside, tmp)
        sh(["ip", "-n", self.sw, "link", "add", outside, "type", "veth",
            "peer", "name", tmp, "netns", host.ns])
        sh(["ip", "-n", self.sw, "link", "set", outside, "master", self.bridges[net], "up"])
        sh(["ip", "-n", host.ns, "link", "set", tmp, "name", ifname])
        sh(["ip", "-n", host.ns, "addr", "add", f"{addr}/24", "dev", ifname])
        sh(["ip", "-n", host.ns, "link", "set", ifname, "up"])
        host.ifaces[net] = (ifname, outside)

    def _build_mounts(self):
        # A private mount of the lab dir: the nsfs bind mounts of the node
        # mount namespaces must not propagate anywhere.
        sh(["mount", "--bind", str(self.dir), str(self.dir)])
        self._mounts.append(str(self.dir))
        sh(["mount", "--make-private", str(self.dir)])
        for n in self.nodes:
            for sub in PRIVATE_DIRS.values():
                (n.dir / sub).mkdir(parents=True, exist_ok=True)
            n.mnt.touch()
            # slave, not private: netns removals on the host (/run/netns is
            # shared) still reach the node's view; nothing flows back.
            sh(["unshare", f"--mount={n.mnt}", "--propagation", "slave", "true"])
            self._mounts.append(str(n.mnt))
            # Drop this namespace's copies of older nodes' nsfs mounts so that
            # no node namespace keeps another alive.
            drop = " ".join(f"umount {shlex.quote(str(o.mnt))} 2>/dev/null;"
                            for o in self.nodes if o.k < n.k)
            sh(["nsenter", f"--mount={n.mnt}", "--", "sh", "-c", f"{drop} true"])
            n.ensure_private_mounts()
        self._check_isolation()

    def _check_isolation(self):
        """A file in one node's /etc/vigil must be seen by that node only."""
        probe = f".isolation-{self.prefix}"
        for n in self.nodes:
            n.run(["sh", "-c", f"echo {n.name} > /etc/vigil/{probe}"])
        for n in self.nodes:
            got = n.run(["cat", f"/etc/vigil/{probe}"]).stdout.strip()
            if got != n.name:
                raise LabError(f"{n.name}: /etc/vigil/{probe} reads {got!r}: "
                               "mount namespaces are not isolated")
            (n.dir / "etc" / probe).unlink()
        if os.path.exists(f"/etc/vigil/{probe}"):
            raise LabError("node files leak into the host's /etc/vigil")

    def _write_marker(self):
        (self.dir / MARKER).write_text(jsonlib.dumps(
            {"pid": os.getpid(), "created_dirs": self._created_dirs}))

    def add_host(self, name, addr, net=0):
        """An extra namespace <prefix>-<name> on `net` with addr/24 (e.g. a
        host holding the virtual IP to test address conflicts)."""
        if not re.match(r"^[a-z][a-z0-9]{0,7}$", name) or name in ("sw", "client") \
                or name.startswith("node") or name.startswith("br"):
            raise ValueError(f"host name {name!r}: use 1-8 lowercase letters/digits, "
                             "not sw/client/node*/br*")
        if name in self.hosts:
            raise ValueError(f"host {name!r} exists")
        h = Host(self, name, f"{self.prefix}-{name}")
        h.addr = lambda net=0, a=addr: a
        self._add_netns(h.ns)
        self.hosts[name] = h
        self._attach(h, net, f"h{len(self.hosts)}", addr)
        return h

    def all_hosts(self):
        return list(self.nodes) + [self.client] + list(self.hosts.values())

    def cleanup(self, raise_errors=True):
        """Removes everything the lab created. Idempotent; errors are
        collected so that one failure does not leave the rest behind."""
        if self._cleaned or self._cleaning or not self._started:
            return
        self._cleaning = True
        errors = []

        def step(what, fn):
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - collected
                errors.append(f"{what}: {e}")

        for p in self._procs:
            step("kill process", lambda p=p: p.poll() is None and _killpg(p))
        for h in self.all_hosts():
            if h.ns in self._netns:
                step(f"kill processes in {h.ns}", h.kill_all)
        for p in self._procs:
            step("reap process", lambda p=p: p.wait(timeout=2))
        for m in reversed(self._mounts):
            step(f"umount {m}", lambda m=m: _umount(m))
        for ns in reversed(self._netns):
            step(f"delete netns {ns}", lambda ns=ns: sh(["ip", "netns", "del", ns]))
        with _host_dirs_lock():
            # rmdir of a mountpoint detaches it in every namespace: never
            # while another lab may have its nodes' binds on it
            if not _other_live_labs(self.prefix):
                for d in reversed(self._created_dirs):
                    step(f"rmdir {d}", lambda d=d: _rmdir_if_empty(d))
        step(f"remove {self.dir}", lambda: shutil.rmtree(self.dir)
             if self.dir.exists() else None)
        self._cleaned = True
        self._cleaning = False
        _unregister(self)
        if errors:
            msg = f"lab {self.prefix}: cleanup errors:\n  " + "\n  ".join(errors)
            if raise_errors and self._exit_after_cleanup is None:
                raise LabError(msg)
            print(msg, file=sys.stderr)
        if self._exit_after_cleanup is not None:
            _exit_for_signal(self._exit_after_cleanup)

    # --------------------------------------------------------------- faults
    def _link(self, host, net, up, inside):
        ifname, outside = host.ifaces[net]
        state = "up" if up else "down"
        sh(["ip", "-n", self.sw, "link", "set", outside, state])
        if inside:
            sh(["ip", "-n", host.ns, "link", "set", ifname, state])

    def cut_link(self, k, net):
        """Node k's link on `net` down at the bridge side (cable pulled)."""
        n = self.node(k)
        self._link(n, net, up=False, inside=False)

    def heal_link(self, k, net):
        self._link(self.node(k), net, up=True, inside=False)

    def _nets(self, net):
        if net is None:
            return list(range(self.nnets))
        if not 0 <= net < self.nnets:
            raise ValueError(f"net {net}: the lab has nets 0..{self.nnets - 1}")
        return [net]

    def partition(self, k, net=None):
        """nftables in node k drop everything in/out of its interface on
        `net` (all nets if None), ARP included (netdev ingress/egress)."""
        for i in self._nets(net):
            self._faults.setdefault(k, {})[i] = "partition"
        self._apply_nft(k)

    def split(self, k=1):
        """nftables in node k drop every IPv4 packet to or from the other
        nodes' addresses on every network (heartbeats, peer link): the nodes
        lose each other while other hosts (a witness, the client) still
        reach both."""
        others = [n.addr(i) for n in self.nodes if n.k != k for i in range(self.nnets)]
        self._faults.setdefault(k, {})[-1] = ("peers", others)
        self._apply_nft(k)

    def drop_share(self, k, percent, net=None):
        """nftables in node k drop `percent` % of packets, chosen at random,
        in each direction on `net` (all nets if None)."""
        if not 0 <= percent <= 100:
            raise ValueError(f"percent={percent}: must be 0..100")
        for i in self._nets(net):
            self._faults.setdefault(k, {})[i] = int(percent)
        self._apply_nft(k)

    def _apply_nft(self, k):
        n = self.node(k)
        faults = self._faults.get(k, {})
        # Declaring then deleting the table makes the replacement atomic and
        # works whether or not it exists.
        lines = [f"table netdev {NFT_TABLE}", f"delete table netdev {NFT_TABLE}"]
        if faults:
            lines.append(f"table netdev {NFT_TABLE} {{")
            for net, f in sorted(faults.items()):
                if net == -1:
                    addrs = ", ".join(f[1])
                    for dev, _ in n.ifaces.values():
                        for hook, key in (("ingress", "saddr"), ("egress", "daddr")):
                            lines.append(f"  chain peers_{hook}_{dev} {{ type filter hook {hook} "
                                         f"device \"{dev}\" priority -500; policy accept; "
                                         f"ip {key} {{ {addrs} }} drop; }}")
                    continue
                dev = n.ifaces[net][0]
                if f == 0:
                    continue
                # numgen values are 0..99: "< 100" is refused, 100 % is plain drop
                rule = "drop" if f in ("partition", 100) else \
                    f"numgen random mod 100 < {f} drop"
                for hook in ("ingress", "egress"):
                    lines.append(f"  chain {hook}_{dev} {{ type filter hook {hook} "
                                 f"device \"{dev}\" priority -500; policy accept; "
                                 f"{rule}; }}")
            lines.append("}")
        n.run(["nft", "-f", "-"], input="\n".join(lines) + "\n")

    def heal(self, k=None):
        """Removes every injected fault (nft rules, cut links, killed links)
        of node k, or of all nodes."""
        for n in (self.nodes if k is None else [self.node(k)]):
            self._faults.pop(n.k, None)
            self._apply_nft(n.k)
            for net in n.ifaces:
                self._link(n, net, up=True, inside=True)

    def nft_ruleset(self, k):
        return self.node(k).run(["nft", "list", "ruleset"]).stdout

    # -------------------------------------------------------- vigil helpers
    @staticmethod
    def vigild_path():
        return BUILD / "src" / "vigild"

    @staticmethod
    def vigilctl_path():
        return BUILD / "src" / "vigilctl"

    def write_config(self, k, text):
        self.node(k).write_file("/etc/vigil/vigil.conf", text, 0o644)

    def write_secret(self, k, data):
        self.node(k).write_file("/etc/vigil/secret", data, 0o600)

    def setup_cluster(self, config=None, secret=None, scripts=True):
        """Same config and secret on every node, plus the standard scripts."""
        config = cluster_config(self) if config is None else config
        secret = secret or secrets.token_hex(32).encode()
        for n in self.nodes:
            self.write_config(n.k, config)
            self.write_secret(n.k, secret)
        if scripts:
            self.write_scripts()
        return config

    def start_vigild(self, k, extra_args=()):
        n = self.node(k)
        if n.vigild is not None and n.vigild.poll() is None:
            raise LabError(f"{n.name}: vigild already running (pid {n.vigild.pid})")
        exe = self.vigild_path()
        if not os.access(exe, os.X_OK):
            raise LabError(f"{exe} is not built (set VIGIL_BUILD or run ninja -C build)")
        n.ensure_private_mounts()
        log = open(n.log, "ab")
        log.write(f"=== {time.strftime('%H:%M:%S')} lab: starting vigild on {n.name}\n".encode())
        log.flush()
        try:
            n.vigild = n.popen([str(exe), "-c", "/etc/vigil/vigil.conf", "--foreground",
                                *extra_args], stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        return n.vigild

    def stop_vigild(self, k, sig=signal.SIGTERM, timeout=10.0):
        """Signals vigild and waits for it; SIGKILL (and LabError) if it
        outlives timeout. Returns its exit status."""
        n = self.node(k)
        p = n.vigild
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                n.vigild = None
                raise LabError(f"{n.name}: vigild did not exit within {timeout}s of "
                               f"{signal.Signals(sig).name}; killed")
        n.vigild = None
        return p.returncode

    def vigild_log(self, k, lines=40):
        p = self.node(k).log
        if not p.exists():
            return ""
        return "\n".join(p.read_text(errors="replace").splitlines()[-lines:])

    def vigilctl(self, k, *args, json=False, check=True, timeout=15):
        """Runs vigilctl on node k. json=True adds --json and returns the
        parsed result (unwrapping {"ok","result"}); else a CompletedProcess."""
        cmd = [str(self.vigilctl_path()), "-c", "/etc/vigil/vigil.conf",
               *[str(a) for a in args]]
        if json:
            cmd.append("--json")
        cp = self.node(k).run(cmd, check=check, timeout=timeout)
        if not json:
            return cp
        try:
            doc = jsonlib.loads(cp.stdout)
        except ValueError as e:
            if not check:
                return None
            raise LabError(f"node{k}: vigilctl {' '.join(map(str, args))} --json printed "
                           f"no JSON: {cp.stdout!r} (stderr {cp.stderr!r})") from e
        if isinstance(doc, dict) and "ok" in doc and ("result" in doc or "error" in doc):
            if not doc["ok"]:
                if check:
                    raise LabError(f"node{k}: vigilctl {' '.join(map(str, args))}: "
                                   f"{doc.get('error')}")
                return doc
            return doc["result"]
        return doc

    def status(self, k):
        return self.vigilctl(k, "status", json=True)

    def states(self, k):
        """{node: (state, color, reachable)} as node k sees it."""
        st = self.status(k)
        return {n["name"]: (n["state"], n["color"], n["reachable"]) for n in st["nodes"]}

    def wait_states(self, k, expected, timeout=10.0, color="green"):
        """Waits until node k's status shows every node in `expected` in the
        given state with `color` and reachable; a value None means that
        node must be unreachable from k."""
        def check():
            seen = self.states(k)
            for name, want in expected.items():
                got = seen.get(name)
                if got is None:
                    return False
                if want is None:
                    if got[2]:
                        return False
                elif got != (want, color, True):
                    return False
            return seen or True
        return wait_for(check, timeout, what=f"node{k} to show {expected} ({color})",
                        interval=0.1)

    def wait_for(self, predicate, timeout=10.0, interval=0.05, what="condition"):
        return wait_for(predicate, timeout, interval, what)

    # scripts and journal
    def script_text(self, n, resource, action, body):
        jp = shlex.quote(str(self.journal_path))
        stamp = (f"echo \"{n.name} {resource} {action} "
                 f"$({PYTHON} -S -c 'import time; print(time.monotonic_ns())')\" >> {jp}")
        # A start is journaled when it begins, a stop when it has finished:
        # then "stop < start" in the journal proves the two never overlapped.
        first, last = (stamp, "") if action == "start" else ("", stamp)
        return ("#!/bin/sh\n# written by tests/lab/lab.py\n"
                f"{first}\n{body}\n{last}\nexit 0\n")

    def write_script(self, k, resource, action, body=""):
        """/etc/vigil/scripts/<resource>-<action> on node k: journals itself
        and runs body. Returns the path inside the node."""
        n = self.node(k)
        path = f"/etc/vigil/scripts/{resource}-{action}"
        n.write_file(path, self.script_text(n, resource, action, body), 0o755)
        return path

    def write_scripts(self, resource="web"):
        """The standard web resource on every node: busybox httpd on port 80
        serving /var/lib/vigil/www/index.html = the node's name."""
        for n in self.nodes:
            n.write_file("/var/lib/vigil/www/index.html", n.name + "\n")
            self.write_script(n.k, resource, "start", WEB_START)
            self.write_script(n.k, resource, "stop", WEB_STOP)

    def journal(self):
        """[(node, resource, action, mono_ns)] in the order written."""
        out = []
        for line in self.journal_path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 4:
                out.append((parts[0], parts[1], parts[2], int(parts[3])))
        return out

    def start_web_all(self):
        """busybox httpd on 0.0.0.0:80 on every node, outside vigil (bench)."""
        for n in self.nodes:
            n.write_file("/var/lib/vigil/www/index.html", n.name + "\n")
            n.run(["sh", "-c", WEB_START])
        for n in self.nodes:
            wait_for(lambda n=n: http_get(self, n.addr(0)) == n.name, 5,
                     what=f"httpd on {n.name}")

    def client_poller(self, addr=VIP, timeout=0.02, interval=0.01, on_change=None):
        """A Poller (lab.py poll) in the client namespace."""
        return Poller(self, addr, timeout, interval, on_change)

    def client_get(self, timeout=0.5, addr=VIP):
        return http_get(self, addr, timeout)

    def vip_holders(self, addr=VIP, dev="eth0"):
        out = []
        for n in self.nodes:
            cp = n.run(["ip", "-4", "-o", "addr", "show", "dev", dev], check=False)
            if re.search(rf"\binet {re.escape(addr)}/", cp.stdout):
                out.append(n.name)
        return out

    def vip_owner(self, addr=VIP, dev="eth0"):
        """The node holding addr on dev, None if none; "node1+node2" if several."""
        h = self.vip_holders(addr, dev)
        return "+".join(h) if h else None


WEB_START = r"""mkdir -p /var/lib/vigil/www /run/vigil
if [ -f /run/vigil/web.pid ] && kill -0 "$(cat /run/vigil/web.pid)" 2>/dev/null; then
	exit 0
fi
busybox httpd -f -p 80 -h /var/lib/vigil/www >/dev/null 2>&1 &
echo $! > /run/vigil/web.pid
# started = serving: wait (2 s at most) for the listening socket (port 80 =
# 0050, state 0A; httpd listens on IPv6 [::] when the kernel has IPv6)
i=0
while [ $i -lt 200 ] && ! grep -qE ':0050 0+:0000 0A' /proc/net/tcp /proc/net/tcp6 2>/dev/null; do
	sleep 0.01; i=$((i+1))
done"""

WEB_STOP = r"""# alive = exists and is no zombie: the orphaned httpd is reaped by the host's
# init, which may take its time
alive() { [ -r "/proc/$1/stat" ] && ! grep -q ') Z ' "/proc/$1/stat" 2>/dev/null; }
if [ -f /run/vigil/web.pid ]; then
	pid=$(cat /run/vigil/web.pid)
	kill "$pid" 2>/dev/null
	i=0
	while [ $i -lt 200 ] && alive "$pid"; do sleep 0.01; i=$((i+1)); done
	kill -9 "$pid" 2>/dev/null
	rm -f /run/vigil/web.pid
fi"""


class Acked:
    """The ids a child prints one per line as it gets each acknowledged
    (tests/lab/ledger.py, pgledger.py), read on a thread: the list outlives
    the child, which may die with its node."""

    def __init__(self, proc):
        self.proc = proc
        self.ids = []
        self.thread = threading.Thread(target=lambda: self.ids.extend(int(x) for x in proc.stdout),
                                       daemon=True)
        self.thread.start()

    def join(self, timeout=5.0):
        """After the child ended: every line it printed is in ids."""
        self.thread.join(timeout)

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.join()


class Poller:
    """Runs `lab.py poll` in the client namespace and collects its
    (CLOCK_MONOTONIC ns, answer) changes; on_change(ns, answer) is called
    from the reader thread for each."""

    def __init__(self, lab, addr=VIP, timeout=0.02, interval=0.01, on_change=None):
        self.events = []
        self.on_change = on_change
        self.lock = threading.Lock()
        self.p = lab.client.popen([PYTHON, "-S", str(LAB_PY), "poll", addr,
                                   "--timeout", str(timeout), "--interval", str(interval)],
                                  stdout=subprocess.PIPE, text=True)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stdout:
            parts = line.split()
            if len(parts) == 2 and parts[1] != "start":
                ev = (int(parts[0]), parts[1])
                with self.lock:
                    self.events.append(ev)
                if self.on_change:
                    self.on_change(*ev)

    def last(self):
        with self.lock:
            return self.events[-1][1] if self.events else None

    def first_after(self, t0, answer):
        """Time (ns) of the first change to `answer` at or after t0, or None."""
        with self.lock:
            for ts, ans in self.events:
                if ts >= t0 and ans == answer:
                    return ts
        return None

    def wait_answer(self, answer, t0=None, timeout=10.0):
        """Waits for a change to `answer` after t0 (default: now, or already
        answering); returns its time (ns)."""
        if t0 is None:
            t0 = mono_ns()
            with self.lock:
                if self.events and self.events[-1][1] == answer:
                    return self.events[-1][0]
        return wait_for(lambda: self.first_after(t0, answer), timeout, interval=0.01,
                        what=f"the client to get an answer from {answer} "
                             f"(last answer: {self.last()})")

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


def http_get(lab, addr, timeout=0.5):
    """GET http://addr/ from the client namespace: the body's first word
    (a node name), or None."""
    cp = lab.client.run(["curl", "-s", "-m", str(timeout), f"http://{addr}/"],
                        check=False, timeout=timeout + 5)
    words = cp.stdout.split()
    return words[0] if cp.returncode == 0 and words else None


def _ini(sections):
    out = []
    for name, kv in sections:
        out.append(f"[{name}]")
        for key, val in kv.items():
            if val is not None:
                out.append(f"{key} = {val}")
        out.append("")
    return "\n".join(out)


def cluster_config(lab, interval_ms=100, timeout_ms=600, cluster=None, heartbeat=None,
                   vip=(), resources=None, extra=""):
    """The standard cluster config text.

    Overrides: cluster/heartbeat/vip dicts are merged into their section (a
    value None removes a key); vip=None omits [vip]; resources maps a name
    to its keys (default: web, started on PRIM by the lab's scripts; {} for
    none); extra is appended verbatim."""
    nets = range(lab.nnets)
    secs = [("cluster", {"name": "lab", "secret_file": "/etc/vigil/secret",
                         "state_dir": "/var/lib/vigil", "run_dir": "/run/vigil",
                         **(cluster or {})})]
    for n in lab.nodes:
        secs.append((f"node {n.name}", {"address": ", ".join(n.addr(i) for i in nets)}))
    secs.append(("heartbeat", {"port": HB_PORT, "interval_ms": interval_ms,
                               "timeout_ms": timeout_ms, **(heartbeat or {})}))
    if vip is not None:
        secs.append(("vip", {"address": VIP_CIDR, "interface": "eth0", **dict(vip)}))
    if resources is None:
        resources = {"web": {"start": "/etc/vigil/scripts/web-start",
                             "stop": "/etc/vigil/scripts/web-stop", "when": "prim"}}
    for name, kv in resources.items():
        secs.append((f"resource {name}", kv))
    return _ini(secs) + extra


# ------------------------------------------------------- process helpers

def _killpg(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            p.kill()
        except ProcessLookupError:
            pass


def _rmdir_if_empty(d):
    """A created mountpoint that something else has since filled is no
    longer ours to remove."""
    try:
        os.rmdir(d)
    except FileNotFoundError:
        pass
    except OSError as e:
        if e.errno != errno.ENOTEMPTY:
            raise


def _umount(path):
    cp = sh(["umount", path], check=False)
    if cp.returncode != 0:
        sh(["umount", "-l", path])


def _list_netns():
    cp = sh(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in cp.stdout.splitlines() if line.strip()]


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _lab_dirs():
    for d in BASE_DIR.glob("vg????"):
        if PREFIX_RE.match(d.name) and (d / MARKER).exists():
            yield d


def _marker(d):
    try:
        return jsonlib.loads((d / MARKER).read_text())
    except (OSError, ValueError):
        return {}


class _host_dirs_lock:
    """Serializes, across processes, creating/binding the host mountpoints
    (/etc/vigil ...) with removing them."""

    def __enter__(self):
        import fcntl
        self.fd = os.open(str(BASE_DIR / ".vigil-lab.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)
        return False


def _other_live_labs(prefix):
    for d in _lab_dirs():
        if d.name != prefix and _pid_alive(_marker(d).get("pid", -1)):
            return True
    return bool(_ACTIVE and any(lab.prefix != prefix for lab in _ACTIVE))


# ------------------------------------- cleanup on signals and at exit

_ACTIVE = []
_OLD_HANDLERS = {}


def _on_signal(signum, frame):
    for lab in list(_ACTIVE):
        if lab._cleaning:
            # Interrupted our own cleanup: let it finish, it exits after.
            lab._exit_after_cleanup = signum
            return
    for lab in list(_ACTIVE):
        lab.cleanup(raise_errors=False)
    _exit_for_signal(signum)


def _exit_for_signal(signum):
    _restore_handlers()
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    sys.exit(128 + signum)


def _restore_handlers():
    for s, h in _OLD_HANDLERS.items():
        try:
            signal.signal(s, h)
        except (ValueError, TypeError):
            pass
    _OLD_HANDLERS.clear()


def _register(lab):
    _ACTIVE.append(lab)
    if threading.current_thread() is threading.main_thread() and not _OLD_HANDLERS:
        for s in (signal.SIGTERM, signal.SIGINT):
            _OLD_HANDLERS[s] = signal.getsignal(s)
            signal.signal(s, _on_signal)


def _unregister(lab):
    if lab in _ACTIVE:
        _ACTIVE.remove(lab)
    if not _ACTIVE and threading.current_thread() is threading.main_thread():
        _restore_handlers()


@atexit.register
def _cleanup_at_exit():
    for lab in list(_ACTIVE):
        lab.cleanup(raise_errors=False)


# ------------------------------------------------------------ cleanup-stale

def cleanup_stale(force=False, verbose=True):
    """Removes leftovers of labs whose process is gone (all labs if force).
    Returns the list of prefixes cleaned."""
    def say(msg):
        if verbose:
            print(msg)

    prefixes = set()
    for ns in _list_netns():
        m = NS_RE.match(ns)
        if m:
            prefixes.add(m.group(1))
    dirs = {d.name: d for d in _lab_dirs()}
    prefixes |= set(dirs)
    mounts = _proc_mounts()
    for mp in mounts:
        m = re.match(rf"^{re.escape(str(BASE_DIR))}/(vg[0-9a-f]{{4}})(/|$)", mp)
        if m:
            prefixes.add(m.group(1))
    cleaned = []
    for p in sorted(prefixes):
        info = _marker(dirs[p]) if p in dirs else {}
        pid = info.get("pid")
        live = [lab for lab in _ACTIVE if lab.prefix == p]
        if live or (pid and pid != os.getpid() and _pid_alive(pid) and not force):
            say(f"{p}: in use by live process {pid}, left alone (use --force)")
            continue
        say(f"{p}: cleaning")
        nss = [ns for ns in _list_netns() if ns.startswith(p + "-")]
        for ns in nss:
            for _ in range(100):
                cp = sh(["ip", "netns", "pids", ns], check=False)
                pids = [int(x) for x in cp.stdout.split()]
                if not pids:
                    break
                for pid_ in pids:
                    try:
                        os.kill(pid_, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.02)
        root = str(BASE_DIR / p)
        for mp in sorted((m for m in _proc_mounts() if m == root or
                          m.startswith(root + "/")), key=len, reverse=True):
            say(f"  umount {mp}")
            sh(["umount", "-l", mp], check=False)
        for ns in nss:
            say(f"  ip netns del {ns}")
            sh(["ip", "netns", "del", ns], check=False)
        with _host_dirs_lock():
            for d in ([] if _other_live_labs(p) else reversed(info.get("created_dirs", []))):
                try:
                    _rmdir_if_empty(d)
                    say(f"  rmdir {d}")
                except OSError as e:
                    say(f"  rmdir {d}: {e}")
        if p in dirs:
            shutil.rmtree(dirs[p], ignore_errors=True)
            say(f"  rm -r {dirs[p]}")
        cleaned.append(p)
    if not cleaned:
        say("no stale lab found")
    return cleaned


def _proc_mounts():
    out = []
    with open("/proc/self/mounts") as f:
        for line in f:
            mp = line.split()[1].replace("\\040", " ")
            out.append(mp)
    return out


# -------------------------------------------------------------- poller

def poll(addr, port=80, timeout=0.02, interval=0.01):
    """Polls http://addr:port/ forever; prints "<CLOCK_MONOTONIC ns> <answer>"
    on every change (answer = first word of the body, or "-")."""
    req = f"GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n".encode()
    last = None
    print(f"{mono_ns()} start", flush=True)
    while True:
        ans = "-"
        t_start = time.monotonic()
        try:
            with socket.create_connection((addr, port), timeout=timeout) as s:
                s.settimeout(timeout)
                s.sendall(req)
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            if head.startswith(b"HTTP/") and b" 200 " in head.split(b"\r\n")[0]:
                words = body.split()
                ans = words[0].decode(errors="replace") if words else "-"
        except OSError:
            pass
        now = mono_ns()
        if ans != last:
            print(f"{now} {ans}", flush=True)
            last = ans
        spent = time.monotonic() - t_start
        if spent < interval:
            time.sleep(interval - spent)


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="lab.py", description="vigil netns lab tools")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cleanup-stale", help="remove leftovers of crashed lab runs")
    c.add_argument("--force", action="store_true", help="also labs whose process lives")
    p = sub.add_parser("poll", help="HTTP poller (run in the client namespace)")
    p.add_argument("addr")
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--timeout", type=float, default=0.02)
    p.add_argument("--interval", type=float, default=0.01)
    sub.add_parser("shell", help="build a lab and print how to enter it; Ctrl-C cleans up")
    a = ap.parse_args(argv)
    if a.cmd == "cleanup-stale":
        cleanup_stale(force=a.force)
    elif a.cmd == "poll":
        try:
            poll(a.addr, a.port, a.timeout, a.interval)
        except (KeyboardInterrupt, BrokenPipeError):
            pass
    elif a.cmd == "shell":
        with Lab() as lab:
            for n in lab.nodes:
                print(f"{n.name}: nsenter --net=/run/netns/{n.ns} --mount={n.mnt} -- bash")
            print(f"client: nsenter --net=/run/netns/{lab.client.ns} -- bash")
            print("Ctrl-C to remove the lab")
            try:
                signal.pause()
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
