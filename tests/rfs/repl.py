#!/usr/bin/env python3
"""Driver for the vigil-rfs replication tests (tests/system/test_rfs_repl.py).

Run INSIDE a private mount, pid and network namespace (`unshare --mount
--propagation private --pid --fork --kill-child --mount-proc --net`) as its
pid 1, so every mount, process and socket it makes dies with it. It brings
up the namespace's own loopback; PRIM and SECOND talk over 127.0.0.1 there.
Commands (JSON on stdout):

  repl --rfs BIN --base DIR [--case NAME]... [--cache MODE] [--mode MODE] [--verbose]
      SECOND applies to DIR/second, PRIM is mounted over DIR/prim; each case
      of fsx.py runs in DIR/prim/NAME; after a barrier (the SECOND has
      applied everything PRIM assigned a seq to) both trees are snapshotted
      with mtimes. At the end PRIM is unmounted and its backing directory
      snapshotted again, then the SECOND is stopped and snapshotted.
  sigstop --rfs BIN --base DIR --mode sync|async
      write() and fsync() through the mount while the SECOND is SIGSTOPped.
  lost --rfs BIN --base DIR
      SIGKILL the SECOND: PRIM keeps serving and says it is alone.

Only the standard library and fsx.py are used.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import traceback

import fsx
from fsx import CASES, MiB, Obs, mounted, snapshot, wait_until

STOPPED_WINDOW = 1.5    # seconds a sync write/fsync must stay blocked while SECOND is stopped
BARRIER_TIMEOUT = 30


class Rfs:
    """One vigil-rfs process (prim or second) in the foreground, its output
    in a file and its --status JSON."""

    def __init__(self, argv, logpath, status):
        self.argv = argv
        self.logpath = logpath
        self.status_path = status
        self.log = open(logpath, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)

    def status(self):
        try:
            with open(self.status_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")

    def wait(self, timeout=30):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{self.argv[1]} still running {timeout}s after being stopped:\n"
                               f"{self.output()[-3000:]}")
        self.log.close()
        return rc

    def signal(self, sig):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()
        if not self.log.closed:
            self.log.close()


class Pair:
    """A SECOND applying to BASE/second and a PRIM mounted over BASE/prim."""

    def __init__(self, rfs, base, mode="sync", cache="direct", cluster=None, verbose=False,
                 ndirs=1, exclude=(), prefill=None, second_root=None):
        os.umask(0o022)
        os.chmod(base, 0o755)       # the as_user cases walk into it
        self.base = base
        self.pdir = os.path.join(base, "prim")
        self.sdir = os.path.join(base, "second")
        # More dirs on one stream: BASE/prim1 -> BASE/second1, ...
        self.pdirs = [self.pdir] + [os.path.join(base, f"prim{i}") for i in range(1, ndirs)]
        if second_root:     # the SECOND's copy and state elsewhere (another file system)
            self.sdir = os.path.join(second_root, "second")
        self.sdirs = [self.sdir] + [os.path.join(base, f"second{i}") for i in range(1, ndirs)]
        self.sstate = os.path.join(second_root or base, "state-second")
        for d in self.pdirs + self.sdirs:
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o755)
        if prefill:
            prefill(self.pdir)
        # The copies start identical, the roots' times included (a differing
        # SECOND copy would be set aside and rebuilt: other tests do that).
        for pd, sd in zip(self.pdirs, self.sdirs):
            st = os.stat(pd)
            os.utime(sd, ns=(st.st_atime_ns, st.st_mtime_ns))
        self.secret = os.path.join(base, "secret")
        fd = os.open(self.secret, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        os.write(fd, os.urandom(16).hex().encode())
        os.close(fd)
        # PRIM's backing directory as the daemon sees it, under the mount.
        self.backing_fds = [os.open(d, os.O_PATH | os.O_DIRECTORY) for d in self.pdirs]
        port = free_port()
        common = ["--secret", self.secret, "--foreground"]
        if cluster:
            common += ["--cluster", cluster]
        if verbose:
            common.append("--verbose")
        self.port = port
        self.second_argv = [rfs, "second", *self.sdirs, "--listen", f"127.0.0.1:{port}",
                            "--state", self.sstate,
                            "--status", os.path.join(base, "second.status"), *common]
        self.second = Rfs(self.second_argv,
                          os.path.join(base, "second.log"), os.path.join(base, "second.status"))
        self.prim = None
        try:
            self._wait(self.second, lambda s: s.get("link") == "listening", 10,
                       "the SECOND to listen")
            self.prim_argv = [rfs, "prim", *self.pdirs, "--peer", f"127.0.0.1:{port}",
                              "--state", os.path.join(base, "state-prim"),
                              "--status", os.path.join(base, "prim.status"), "--mode", mode,
                              "--cache", cache, *[x for g in exclude for x in ("--exclude", g)],
                              *common]
            self.prim = Rfs(self.prim_argv, os.path.join(base, "prim.log"),
                            os.path.join(base, "prim.status"))
            wait_until(lambda: all(mounted(d) for d in self.pdirs) or
                       self.prim.proc.poll() is not None, 20,
                       f"vigil-rfs prim to mount {self.pdirs}")
            if not all(mounted(d) for d in self.pdirs):
                raise RuntimeError(f"vigil-rfs prim exited {self.prim.proc.returncode} "
                                   f"without mounting")
            self._wait(self.prim, lambda s: s.get("link") == "connected", 10,
                       "PRIM's link to be connected")
        except BaseException:
            self.kill()
            raise

    def _wait(self, d, pred, timeout, what):
        try:
            wait_until(lambda: d.proc.poll() is not None or pred(d.status() or {}),
                       timeout, what)
        except RuntimeError:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}; status "
                               f"{d.status()}") from None
        if d.proc.poll() is not None:
            raise RuntimeError(f"{d.argv[1]} exited {d.proc.returncode} while waiting "
                               f"for {what}")

    def barrier(self, timeout=BARRIER_TIMEOUT):
        """Waits until the SECOND has applied every op PRIM assigned a seq
        to before this call. The status files lag by up to ~50 ms: the
        target seq is read after that much has passed."""
        time.sleep(0.15)
        t0 = time.monotonic()
        target = (self.prim.status() or {}).get("seq")
        last = {}

        def reached():
            p, s = self.prim.status() or {}, self.second.status() or {}
            last.update(prim=p, second=s)
            return (isinstance(target, int) and p.get("link") == "connected"
                    and isinstance(p.get("applied"), int) and p["applied"] >= target
                    and isinstance(s.get("applied"), int) and s["applied"] >= target)

        def hopeless():     # no reconnection in stage 2: do not wait for nothing
            return (self.prim.proc.poll() is not None or self.second.proc.poll() is not None
                    or last["prim"].get("link") == "lost")
        try:
            wait_until(lambda: reached() or hopeless(), timeout, "the barrier")
        except RuntimeError:
            pass
        ok = reached()
        return {"ok": ok, "seq": target, "ms": round((time.monotonic() - t0) * 1000),
                "prim_exited": self.prim.proc.poll(), "second_exited": self.second.proc.poll(),
                **last}

    def snapshots(self, i=0):
        """The PRIM mount and the SECOND's copy of dir i, mtimes included,
        after dropping the page cache of both copies (see settle)."""
        settle(f"/proc/self/fd/{self.backing_fds[i]}")
        settle(self.sdirs[i])
        return tree(self.pdirs[i]), tree(self.sdirs[i])

    def unmount_prim(self, timeout=60):
        cp = subprocess.run(["fusermount3", "-u", self.pdir], capture_output=True, text=True)
        if cp.returncode != 0:
            raise RuntimeError(f"fusermount3 -u {self.pdir}: {cp.stderr.strip()}")
        return self.prim.wait(timeout)

    def stop_second(self, timeout=30):
        self.second.signal(signal.SIGTERM)
        return self.second.wait(timeout)

    def outputs(self):
        return {"prim": self.prim.output() if self.prim else "",
                "second": self.second.output()}

    def kill(self):
        if self.prim:
            self.prim.kill()
            for d in self.pdirs:
                if mounted(d):
                    subprocess.run(["fusermount3", "-uz", d], capture_output=True)
        self.second.kill()


def settle(root):
    """fdatasync and drop the page cache of every regular file under root.
    On ext4, SEEK_DATA reports an unwritten (fallocated, never written)
    extent as data wherever its pages are cached, and a read caches them: a
    file read on PRIM only (by the case or through the mount) would show a
    data extent that the SECOND's never-read copy shows as a hole. Local
    page-cache state is not replicated; dropping it on both sides makes the
    SEEK_DATA map compare what is on disk."""
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not stat.S_ISREG(os.lstat(path).st_mode):
                continue
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NOATIME)
            try:
                os.fdatasync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def tree(root):
    """fsx.snapshot with mtimes, plus st_blocks of regular files: with the
    page cache dropped, SEEK_DATA shows an unwritten extent as a hole, and
    only the block count still tells a fallocated range from a hole."""
    recs = snapshot(root, times=True)
    for r in recs:
        if r["type"] == "reg":
            r["blocks"] = os.lstat(os.path.join(root, r["path"])).st_blocks
    return recs


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lo_up():
    cp = subprocess.run(["ip", "link", "set", "lo", "up"], capture_output=True, text=True)
    if cp.returncode != 0:
        raise RuntimeError(f"ip link set lo up: {cp.stderr.strip()}")


def finish(pair, res):
    """Unmounts PRIM, stops the SECOND, and records both exits, outputs and
    the final trees (PRIM's backing dir after unmount, SECOND's copy after
    it stopped)."""
    res["barrier_end"] = pair.barrier()
    res["prim_rc"] = pair.unmount_prim()
    res["still_mounted"] = mounted(pair.pdir)
    res["second_rc"] = pair.stop_second()
    settle(pair.pdir)
    settle(pair.sdir)
    res["tree_backing"] = tree(pair.pdir)
    res["tree_second"] = tree(pair.sdir)


def cmd_repl(a):
    pair = Pair(a.rfs, a.base, mode=a.mode, cache=a.cache, verbose=a.verbose)
    res = {"mode": a.mode, "cache": a.cache, "cases": {}}
    try:
        for name in a.case or list(CASES):
            ob = Obs(os.path.join(pair.pdir, name))
            os.mkdir(ob.root)
            CASES[name](ob)
            b = pair.barrier()
            tree_prim, tree_second = pair.snapshots()
            res["cases"][name] = {"log": ob.log, "barrier": b,
                                  "prim": tree_prim, "second": tree_second}
        finish(pair, res)
    finally:
        pair.kill()
        res["output"] = pair.outputs()
    return res


def cmd_multi(a):
    """Three dirs on one stream: each case runs in the dir its index picks,
    and every dir's copy is compared after each."""
    pair = Pair(a.rfs, a.base, mode=a.mode, cache=a.cache, verbose=a.verbose, ndirs=3)
    res = {"cases": {}}
    try:
        for k, name in enumerate(a.case or ["tree", "rename", "link", "xattr", "truncate"]):
            d = pair.pdirs[k % 3]
            ob = Obs(os.path.join(d, name))
            os.mkdir(ob.root)
            CASES[name](ob)
            b = pair.barrier()
            res["cases"][name] = {"dir": k % 3, "barrier": b,
                                  "trees": [pair.snapshots(i) for i in range(3)]}
        res["umount_rc"] = pair.unmount_prim()
        res["still_mounted"] = [mounted(d) for d in pair.pdirs]
        res["second_rc"] = pair.stop_second()
    finally:
        pair.kill()
        res["output"] = pair.outputs()
    return res


def cmd_exclude(a):
    """--exclude '*.tmp': excluded names stay on PRIM; moves across the
    boundary arrive as creations (whole content) and removals."""
    pair = Pair(a.rfs, a.base, verbose=a.verbose, exclude=["*.tmp", "scratch"])
    d = pair.pdir
    res = {"steps": {}}

    def step(name):
        b = pair.barrier()
        tp, ts = pair.snapshots()
        res["steps"][name] = {"barrier": b, "prim": tp, "second": ts}

    def write(path, data, off=0):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o640)
        try:
            os.pwrite(fd, data, off)
        finally:
            os.close(fd)
    try:
        big = os.urandom(3 * MiB + 123)
        write(f"{d}/db.tmp", big)
        write(f"{d}/db.tmp", b"tail after a hole", 8 * MiB)     # sparse
        os.mkdir(f"{d}/scratch")
        write(f"{d}/scratch/inside", b"never shipped")
        os.setxattr(f"{d}/db.tmp", "user.note", b"x")
        step("excluded files written")
        os.rename(f"{d}/db.tmp", f"{d}/db")                       # enters replication
        step("renamed into a replicated name")
        write(f"{d}/db", b"later write", 100)
        write(f"{d}/old", b"to be replaced")
        write(f"{d}/new.tmp", b"replacement")
        os.rename(f"{d}/new.tmp", f"{d}/old")                     # over a replicated file
        step("renamed over a replicated file")
        os.rename(f"{d}/old", f"{d}/gone.tmp")                    # leaves replication
        write(f"{d}/gone.tmp", b"changed while excluded")
        step("renamed to an excluded name")
        write(f"{d}/src.tmp", os.urandom(200000))
        fi = os.open(f"{d}/src.tmp", os.O_RDONLY)
        fo = os.open(f"{d}/dst", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            n = os.copy_file_range(fi, fo, 150000, 1000, 500)   # count, src off, dst off
        finally:
            os.close(fi)
            os.close(fo)
        res["copied"] = n
        step("copied from an excluded file")
        os.unlink(f"{d}/gone.tmp")
        os.unlink(f"{d}/scratch/inside")
        os.rmdir(f"{d}/scratch")
        step("excluded names removed")
        res["prim_status"] = pair.prim.status()
        res["umount_rc"] = pair.unmount_prim()
        res["second_rc"] = pair.stop_second()
    finally:
        pair.kill()
        res["output"] = pair.outputs()
    return res


def cmd_zeroloss(a):
    """Writers append numbered records and fsync (one file) or write with
    O_DSYNC (another), noting each record once the call returned; the PRIM
    is SIGKILLed at a random moment. Every noted record must be in the
    SECOND's copy."""
    import random
    rnd = random.Random(a.seed)
    res = {"rounds": []}
    for rnd_no in range(a.rounds):
        base = os.path.join(a.base, f"r{rnd_no}")
        os.mkdir(base)
        pair = Pair(a.rfs, base, verbose=a.verbose)
        acked = {"fsync": [], "dsync": []}
        stop = threading.Event()

        def writer(kind):
            path = os.path.join(pair.pdir, kind)
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_DSYNC if kind == "dsync" else 0)
            try:
                fd = os.open(path, flags, 0o644)
                i = 0
                while not stop.is_set():
                    os.write(fd, f"{i:09d}\n".encode() * 8)
                    if kind == "fsync":
                        os.fsync(fd)
                    acked[kind].append(i)
                    i += 1
            except OSError:
                pass            # the PRIM died under us
        threads = [threading.Thread(target=writer, args=(k,), daemon=True) for k in acked]
        try:
            for t in threads:
                t.start()
            time.sleep(rnd.uniform(0.3, 1.5))
            pair.prim.proc.kill()
            pair.prim.proc.wait(10)
            stop.set()
            for t in threads:
                t.join(10)
            rc = pair.stop_second()
            got = {}
            for kind in acked:
                try:
                    with open(os.path.join(pair.sdir, kind)) as f:
                        lines = f.read().split()
                except FileNotFoundError:
                    lines = []
                got[kind] = sorted({int(x) for x in lines})
            res["rounds"].append({
                "acked": {k: len(v) for k, v in acked.items()},
                "last_acked": {k: (v[-1] if v else None) for k, v in acked.items()},
                "missing": {k: sorted(set(acked[k]) - set(got[k]))[:10] for k in acked},
                "second_rc": rc})
        finally:
            stop.set()
            pair.kill()
            res["rounds"][-1:] and res["rounds"][-1].update(output=pair.outputs()["second"][-2000:])
    return res


def cmd_diskfull(a):
    """The SECOND's copy (and state dir) on a 32 MiB tmpfs; the PRIM writes
    48 MiB: SECOND fails with ENOSPC, says so, and the PRIM goes on."""
    sbase = os.path.join(a.base, "small")
    os.mkdir(sbase)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", sbase], check=True)
    res = {}
    pair = None
    try:
        pair = Pair(a.rfs, a.base, verbose=a.verbose, second_root=sbase)
        d = pair.pdir
        t0 = time.monotonic()
        errs = []
        for i in range(6):
            try:
                with open(f"{d}/big{i}", "wb") as f:
                    f.write(os.urandom(8 * MiB))
                    os.fsync(f.fileno())
            except OSError as e:
                errs.append(os.strerror(e.errno))
        res["prim_write_errors"] = errs
        res["seconds"] = round(time.monotonic() - t0, 1)
        wait_until(lambda: (pair.prim.status() or {}).get("link") in ("lost", "off"), 20,
                   "PRIM to see the SECOND fail")
        res["prim_status"] = pair.prim.status()
        res["second_status"] = pair.second.status()
        res["prim_files"] = sorted(os.listdir(d))
        res["umount_rc"] = pair.unmount_prim()
        res["second_rc"] = pair.stop_second()
    finally:
        if pair:
            pair.kill()
            res["output"] = pair.outputs()
        subprocess.run(["umount", "-l", sbase], capture_output=True)
    return res


def cmd_lossy(a):
    """nftables drops 10 % of the loopback packets of the stream's port
    for the whole run (this namespace's own loopback): writes go on, and
    the copies end identical."""
    pair = Pair(a.rfs, a.base, verbose=a.verbose)
    rules = (f"table inet lossy {{\n chain in {{\n  type filter hook input priority 0;\n"
             f"  tcp dport {pair.port} numgen random mod 10 == 0 counter drop\n"
             f"  tcp sport {pair.port} numgen random mod 10 == 0 counter drop\n }}\n}}\n")
    res = {}
    try:
        subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True)
        d = pair.pdir
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < a.seconds:
            with open(f"{d}/f{n % 50}", "wb") as f:
                f.write(os.urandom(256 * 1024))
                os.fsync(f.fileno())
            n += 1
        res["files_written"] = n
        listing = subprocess.run(["nft", "list", "table", "inet", "lossy"], capture_output=True,
                                 text=True).stdout
        res["dropped_packets"] = sum(int(x) for x in re.findall(r"counter packets (\d+)", listing))
        subprocess.run(["nft", "delete", "table", "inet", "lossy"], check=True)
        res["barrier"] = pair.barrier(timeout=120)
        res["prim"], res["second"] = pair.snapshots()
        res["prim_status"] = pair.prim.status()
        res["umount_rc"] = pair.unmount_prim()
        res["second_rc"] = pair.stop_second()
    finally:
        subprocess.run(["nft", "delete", "table", "inet", "lossy"], capture_output=True)
        pair.kill()
        res["output"] = pair.outputs()
    return res


def cmd_restart(a):
    """A clean stop of both, then a restart: the generations are equal, so
    the copy is kept as it is (no rebuild, nothing set aside) and the
    stream goes on."""
    pair = Pair(a.rfs, a.base, verbose=a.verbose)
    d = pair.pdir
    res = {}
    try:
        with open(f"{d}/before", "wb") as f:
            f.write(os.urandom(2 * MiB))
        res["barrier1"] = pair.barrier()
        res["umount_rc"] = pair.unmount_prim()
        res["second_rc"] = pair.stop_second()
        res["aside_before"] = sorted(os.listdir(os.path.join(a.base, "state-second")))
        pair.second = Rfs(pair.second_argv, os.path.join(a.base, "second-2.log"),
                          os.path.join(a.base, "second.status"))
        wait_until(lambda: (pair.second.status() or {}).get("link") == "listening", 10,
                   "the SECOND to listen again")
        pair.prim = Rfs(pair.prim_argv, os.path.join(a.base, "prim-2.log"),
                        os.path.join(a.base, "prim.status"))
        wait_until(lambda: mounted(d) or pair.prim.proc.poll() is not None, 20, "the mount")
        wait_until(lambda: (pair.prim.status() or {}).get("link") == "connected", 10,
                   "PRIM to connect again")
        with open(f"{d}/after", "wb") as f:
            f.write(os.urandom(MiB))
        res["barrier2"] = pair.barrier()
        res["prim"], res["second"] = pair.snapshots()
        res["aside_after"] = sorted(os.listdir(os.path.join(a.base, "state-second")))
        res["second_status"] = pair.second.status()
        res["umount2_rc"] = pair.unmount_prim()
        res["second2_rc"] = pair.stop_second()
    finally:
        pair.kill()
        res["output"] = pair.outputs()
        for n in ("prim-2.log", "second-2.log"):
            try:
                with open(os.path.join(a.base, n), errors="replace") as f:
                    res["output"][n] = f.read()
            except OSError:
                res["output"][n] = ""
    return res


def take_step(pair, res, name):
    """After a barrier: both trees and the SECOND's status as res["steps"][name]."""
    b = pair.barrier(timeout=120)
    tp, ts = pair.snapshots()
    res["steps"][name] = {"barrier": b, "prim": tp, "second": ts,
                          "second_status": pair.second.status()}


def stop_rejoined(pair, res):
    """The end of a reintegration scenario: PRIM's last status, unmount, stop."""
    res["prim_status"] = pair.prim.status()
    res["umount_rc"] = pair.unmount_prim()
    res["second_rc"] = pair.stop_second()


def end_rejoined(pair, a, res, stop):
    """Whatever happened: the writer stopped, both killed, every log kept
    (second2.log is the SECOND that came back)."""
    if stop:
        stop.set()
    pair.kill()
    res["output"] = pair.outputs()
    try:
        with open(os.path.join(a.base, "second2.log"), errors="replace") as f:
            res["output"]["second2"] = f.read()
    except OSError:
        pass


def cmd_reintegrate(a):
    """Content before the first start (initial copy); SECOND killed while
    PRIM changes things; SECOND back: reintegration while a writer keeps
    writing; then the trees must be identical and the old copy set aside."""
    def prefill(d):
        os.makedirs(f"{d}/pre/sub")
        with open(f"{d}/pre/sub/f", "wb") as f:
            f.write(os.urandom(3 * MiB))
        os.symlink("sub/f", f"{d}/pre/link")
        os.link(f"{d}/pre/sub/f", f"{d}/pre/hard")
        os.setxattr(f"{d}/pre/sub/f", "user.k", b"v")
    pair = Pair(a.rfs, a.base, verbose=a.verbose, prefill=prefill)
    d = pair.pdir
    res = {"steps": {}}

    def step(name):
        take_step(pair, res, name)
    try:
        step("initial copy")
        for name in ("tree", "rename", "sparse"):
            ob = Obs(os.path.join(d, name))
            os.mkdir(ob.root)
            CASES[name](ob)
        step("cases")
        pair.second.kill()
        res["second_killed_rc"] = pair.second.proc.returncode
        wait_until(lambda: (pair.prim.status() or {}).get("link") == "lost", 10, "PRIM to lose SECOND")
        # Changes SECOND misses.
        with open(f"{d}/while-away", "wb") as f:
            f.write(os.urandom(20 * MiB))
        os.rename(f"{d}/pre/sub/f", f"{d}/pre/moved")
        os.unlink(f"{d}/pre/link")
        os.chmod(f"{d}/pre/hard", 0o600)
        shutil.rmtree(f"{d}/tree")
        os.mkdir(f"{d}/new-dir")
        with open(f"{d}/new-dir/x", "w") as f:
            f.write("x")
        # SECOND back, with a writer busy during the reintegration.
        stop = threading.Event()
        written = []

        def writer():
            i = 0
            while not stop.is_set():
                with open(f"{d}/busy", "ab") as f:
                    f.write(f"{i:08d}".encode() * 512)
                os.rename(f"{d}/busy", f"{d}/busy2") if i % 7 == 3 else None
                if os.path.exists(f"{d}/busy2"):
                    os.rename(f"{d}/busy2", f"{d}/busy")
                written.append(i)
                i += 1
        th = threading.Thread(target=writer, daemon=True)
        th.start()
        pair.second = Rfs(pair.second_argv, os.path.join(a.base, "second2.log"),
                          os.path.join(a.base, "second.status"))
        try:
            wait_until(lambda: (pair.prim.status() or {}).get("link") == "connected", 20,
                       "PRIM to reconnect")
            time.sleep(1.0)
        finally:
            stop.set()
            th.join(10)
        res["writes_during"] = len(written)
        step("after reintegration")
        aside = os.path.join(a.base, "state-second")
        res["aside"] = sorted(os.listdir(aside))
        res["aside_entries"] = sorted(os.listdir(os.path.join(aside, res["aside"][0], "0"))) \
            if any(x.startswith("aside-") for x in res["aside"]) else []
        stop_rejoined(pair, res)
    finally:
        end_rejoined(pair, a, res, locals().get("stop"))
    return res


BLOCK = 4096


def _span(off, length):
    """Bytes of [off, off+length) rounded out to the record's 4 KiB blocks."""
    start = off // BLOCK * BLOCK
    end = -(-(off + length) // BLOCK) * BLOCK
    return end - start


def cmd_incremental(a):
    """SECOND away while PRIM changes a few things in a larger tree; back,
    only what changed is copied (counted from PRIM's log), the copy is merged
    (not set aside) while a writer keeps writing, and the trees are equal."""
    nfiles, fsize = 12, 4 * MiB

    def prefill(d):
        os.makedirs(f"{d}/data")
        os.makedirs(f"{d}/olddir/deep")
        for i in range(nfiles):
            with open(f"{d}/data/f{i:02d}", "wb") as f:
                f.write(os.urandom(fsize))
        for i in range(2):
            with open(f"{d}/olddir/deep/g{i}", "wb") as f:
                f.write(os.urandom(MiB))
        with open(f"{d}/data/small", "w") as f:
            f.write("small")
        with open(f"{d}/data/stale", "wb") as f:
            f.write(os.urandom(64 * 1024))
        os.symlink("f00", f"{d}/data/sym")
        os.setxattr(f"{d}/data/f10", "user.keep", b"1")
        os.setxattr(f"{d}/data/f10", "user.gone", b"2")
        os.mkfifo(f"{d}/data/fifo")
    pair = Pair(a.rfs, a.base, verbose=a.verbose, prefill=prefill)
    d = pair.pdir
    res = {"steps": {}}
    expect = {"min": 0, "max": 0}

    def step(name):
        take_step(pair, res, name)

    def changed(off, length):
        expect["min"] += length
        expect["max"] += _span(off, length)

    try:
        step("initial copy")
        pair.second.kill()
        wait_until(lambda: (pair.prim.status() or {}).get("link") == "lost", 10,
                   "PRIM to lose SECOND")
        # Data changes: only these ranges must travel.
        with open(f"{d}/data/f03", "r+b") as f:
            f.seek(MiB + 100)
            f.write(os.urandom(64 * 1024))
        changed(MiB + 100, 64 * 1024)
        with open(f"{d}/data/f04", "ab") as f:
            f.write(os.urandom(100 * 1024))
        changed(fsize, 100 * 1024)
        os.truncate(f"{d}/data/f05", MiB)               # shrink: nothing to send
        os.truncate(f"{d}/data/f06", 2 * MiB)           # shrink, then regrow past it
        with open(f"{d}/data/f06", "r+b") as f:
            f.seek(3 * MiB)
            f.write(b"z" * 10)
        expect["min"] += 10                             # the zeros between go as a hole
        expect["max"] += _span(2 * MiB, MiB + 10)
        # Metadata only: nothing to send.
        os.chmod(f"{d}/data/f09", 0o600)
        os.utime(f"{d}/data/f01", ns=(1_000_000_000, 2_000_000_000))
        os.removexattr(f"{d}/data/f10", "user.gone")
        os.setxattr(f"{d}/data/f10", "user.new", b"3")
        os.unlink(f"{d}/data/f08")
        os.unlink(f"{d}/data/sym")
        os.symlink("f01", f"{d}/data/sym")
        # Names: a renamed file and a renamed directory are found on SECOND
        # under their old names and compared by block hashes (nothing to
        # send); a hard link and new files are sent whole.
        os.rename(f"{d}/data/f07", f"{d}/data/f07r")
        os.link(f"{d}/data/f11", f"{d}/data/f11h")
        os.rename(f"{d}/olddir", f"{d}/newdir")
        # A renamed file over one SECOND has: the old content must not stay.
        os.rename(f"{d}/data/f02", f"{d}/data/f00")
        # Two files swap names (each keeps its mode and xattrs).
        os.rename(f"{d}/data/f09", f"{d}/data/swap")
        os.rename(f"{d}/data/f10", f"{d}/data/f09")
        os.rename(f"{d}/data/swap", f"{d}/data/f10")
        # Renamed, then gone, and a new file under the old name: SECOND's
        # old one is found but claimed by nobody; the new one goes whole.
        os.rename(f"{d}/data/stale", f"{d}/data/stale2")
        os.unlink(f"{d}/data/stale2")
        with open(f"{d}/data/stale", "wb") as f:
            f.write(b"new stale\n")
        changed(0, 10)
        with open(f"{d}/new1", "wb") as f:
            f.write(os.urandom(256 * 1024))
        expect["max"] += fsize + 256 * 1024                   # f11 (linked), new1
        # f00 (was f02), f07r, f09 and f10 (swapped); g0, g1
        expect["matched_min"] = 4 * fsize + 2 * MiB
        res["expect"] = expect
        res["full_bytes"] = sum(os.path.getsize(os.path.join(r, n))
                                for r, _, fs in os.walk(d) for n in fs
                                if os.path.isfile(os.path.join(r, n)) and
                                not os.path.islink(os.path.join(r, n)))
        stop = threading.Event()
        written = []

        def writer():
            # From the reconnection on: the walk holds it back, then its
            # writes flow with the copy (and are not part of the count).
            wait_until(lambda: stop.is_set() or
                       (pair.prim.status() or {}).get("link") == "connected", 20,
                       "PRIM to reconnect")
            i = 0
            while not stop.is_set():
                with open(f"{d}/busy", "ab") as f:
                    f.write(f"{i:08d}".encode() * 512)
                written.append(i)
                i += 1
                time.sleep(0.002)
        th = threading.Thread(target=writer, daemon=True)
        th.start()
        pair.second = Rfs(pair.second_argv, os.path.join(a.base, "second2.log"),
                          os.path.join(a.base, "second.status"))
        try:
            wait_until(lambda: (pair.prim.status() or {}).get("link") == "connected", 20,
                       "PRIM to reconnect")
            wait_until(lambda: (pair.second.status() or {}).get("uptodate") is True, 60,
                       "SECOND to be up to date")
            wait_until(lambda: len(written) >= 20, 10, "the writer to write after the copy")
        finally:
            stop.set()
            th.join(10)
        res["writes_during"] = len(written)
        step("after reintegration")
        res["aside"] = sorted(os.listdir(os.path.join(a.base, "state-second")))
        stop_rejoined(pair, res)
    finally:
        end_rejoined(pair, a, res, locals().get("stop"))
    return res


def cmd_crashalone(a):
    """SECOND away; PRIM changes ranges of files, waits until they have
    cooled (their extents are on disk, nothing is hot), then changes more
    (creates, a rename, a new directory, appends) and is SIGKILLed at once.
    Restarted alone, it changes one more range. SECOND back: the record
    survived the crash, so the reintegration is incremental: the cooled
    files go as their ranges, the files hot at the crash whole, and the
    trees end equal with nothing set aside."""
    nfiles, fsize = 10, 4 * MiB

    def prefill(d):
        os.makedirs(f"{d}/data")
        for i in range(nfiles):
            with open(f"{d}/data/f{i:02d}", "wb") as f:
                f.write(os.urandom(fsize))
        os.symlink("f00", f"{d}/data/sym")
    pair = Pair(a.rfs, a.base, verbose=a.verbose, prefill=prefill)
    d = pair.pdir
    res = {"steps": {}}
    expect = {"min": 0, "max": 0}

    def step(name):
        take_step(pair, res, name)

    def ranged(path, off, length):
        with open(path, "r+b") as f:
            f.seek(off)
            f.write(os.urandom(length))
        expect["min"] += length
        expect["max"] += _span(off, length)

    try:
        step("initial copy")
        pair.second.kill()
        wait_until(lambda: (pair.prim.status() or {}).get("link") == "lost", 10,
                   "PRIM to lose SECOND")
        # Cooled before the crash: their extents must survive it.
        ranged(f"{d}/data/f01", MiB + 100, 64 * 1024)
        ranged(f"{d}/data/f02", 0, 8192)
        time.sleep(22)      # two cooling periods of 10 s, and a flush
        # Hot at the crash: sent whole.
        with open(f"{d}/data/f03", "ab") as f:
            f.write(os.urandom(100 * 1024))
        os.rename(f"{d}/data/f04", f"{d}/data/f04r")
        os.mkdir(f"{d}/newdir")
        with open(f"{d}/newdir/x", "wb") as f:
            f.write(os.urandom(300 * 1024))
        with open(f"{d}/data/new1", "wb") as f:
            f.write(os.urandom(200 * 1024))
        os.unlink(f"{d}/data/f05")
        os.unlink(f"{d}/data/sym")
        os.symlink("f06", f"{d}/data/sym")
        expect["max"] += 2 * fsize + 100 * 1024 + 300 * 1024 + 200 * 1024  # f03, f04r, x, new1
        pair.prim.proc.kill()
        pair.prim.proc.wait(10)
        res["prim_killed_rc"] = pair.prim.proc.returncode
        first_log = pair.prim.output()
        subprocess.run(["fusermount3", "-uz", d], capture_output=True)
        pair.prim = Rfs(pair.prim_argv + ["--connect-timeout", "500"],
                        os.path.join(a.base, "prim2.log"), os.path.join(a.base, "prim.status"))
        wait_until(lambda: mounted(d) or pair.prim.proc.poll() is not None, 20, "the mount")
        # Alone again after the restart: exact ranges once more.
        ranged(f"{d}/data/f07", 2 * MiB, 4096)
        res["expect"] = expect
        # What vigild's `sync estimate` runs: the record on disk (flushed
        # within a second) against the tree.
        time.sleep(1.5)
        cp = subprocess.run([a.rfs, "estimate", d, "--state", os.path.join(a.base, "state-prim")],
                            capture_output=True, text=True, timeout=60)
        res["estimate"] = json.loads(cp.stdout.strip().splitlines()[-1]) if cp.returncode == 0 \
            else {"rc": cp.returncode, "stderr": cp.stderr}
        res["full_bytes"] = sum(os.path.getsize(os.path.join(r, n))
                                for r, _, fs in os.walk(d) for n in fs
                                if os.path.isfile(os.path.join(r, n)) and
                                not os.path.islink(os.path.join(r, n)))
        pair.second = Rfs(pair.second_argv, os.path.join(a.base, "second2.log"),
                          os.path.join(a.base, "second.status"))
        wait_until(lambda: (pair.prim.status() or {}).get("link") == "connected", 20,
                   "PRIM to reconnect")
        wait_until(lambda: (pair.second.status() or {}).get("uptodate") is True, 60,
                   "SECOND to be up to date")
        step("after reintegration")
        res["aside"] = sorted(os.listdir(os.path.join(a.base, "state-second")))
        stop_rejoined(pair, res)
    finally:
        end_rejoined(pair, a, res, None)
        res["output"]["prim_before_crash"] = locals().get("first_log", "")
    return res


def cmd_syncfull(a):
    """The copies equal; SECOND stopped and its copy damaged by hand (a
    changed block, a lost file, a stray file, a truncated file, a changed
    symlink); `vigil-rfs outdate --full` on it (what `vigilctl sync full`
    runs there); SECOND back: the whole copy is compared by block hashes
    and only what differs travels; nothing is set aside."""
    nfiles, fsize = 6, 4 * MiB

    def prefill(d):
        os.makedirs(f"{d}/data/sub")
        for i in range(nfiles):
            with open(f"{d}/data/f{i:02d}", "wb") as f:
                f.write(os.urandom(fsize))
        with open(f"{d}/data/sub/small", "w") as f:
            f.write("small\n")
        os.symlink("f00", f"{d}/data/sym")
    pair = Pair(a.rfs, a.base, verbose=a.verbose, prefill=prefill)
    s = pair.sdir
    res = {"steps": {}}
    try:
        take_step(pair, res, "initial copy")
        res["stop_rc"] = pair.stop_second()
        res["aside_before"] = sorted(os.listdir(pair.sstate))
        wait_until(lambda: (pair.prim.status() or {}).get("link") == "lost", 10,
                   "PRIM to lose SECOND")
        with open(f"{s}/data/f01", "r+b") as f:      # one damaged 64 KiB block
            f.seek(MiB + 10)
            f.write(b"\0" * 100)
        os.truncate(f"{s}/data/f02", MiB)            # 3 MiB to send back
        os.unlink(f"{s}/data/f03")                   # 4 MiB to send back
        os.unlink(f"{s}/data/sub/small")
        with open(f"{s}/data/stray", "w") as f:
            f.write("stray\n")
        os.unlink(f"{s}/data/sym")
        os.symlink("f05", f"{s}/data/sym")
        res["expect_max"] = 64 * 1024 + 3 * MiB + fsize + len("small\n")
        cp = subprocess.run([a.rfs, "outdate", "--full", "--state", pair.sstate],
                            capture_output=True, text=True, timeout=30)
        res["outdate_rc"], res["outdate_err"] = cp.returncode, cp.stderr
        res["verify_mark"] = os.path.exists(os.path.join(pair.sstate, "verify"))
        pair.second = Rfs(pair.second_argv, os.path.join(a.base, "second2.log"),
                          os.path.join(a.base, "second.status"))
        wait_until(lambda: (pair.prim.status() or {}).get("link") == "connected", 20,
                   "PRIM to reconnect")
        wait_until(lambda: (pair.second.status() or {}).get("uptodate") is True, 60,
                   "SECOND to be up to date")
        take_step(pair, res, "after the compare")
        res["verify_mark_after"] = os.path.exists(os.path.join(pair.sstate, "verify"))
        res["aside"] = sorted(os.listdir(pair.sstate))
        stop_rejoined(pair, res)
    finally:
        end_rejoined(pair, a, res, None)
    return res


class Timed(threading.Thread):
    """Runs fn in a daemon thread and notes when it returned."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn = fn
        self.t0 = time.monotonic()
        self.t_end = None
        self.result = None

    def run(self):
        try:
            self.result = ["OK", fsx.norm(self.fn())]
        except OSError as e:
            self.result = ["ERR", os.strerror(e.errno)]
        self.t_end = time.monotonic()


def while_stopped(pair, fn):
    """fn() in a thread while the SECOND is stopped for STOPPED_WINDOW s,
    then SIGCONT: when it returned, relative to the stop and the cont."""
    pair.second.signal(signal.SIGSTOP)
    try:
        th = Timed(fn)
        th.start()
        th.join(STOPPED_WINDOW)
        r = {"returned_while_stopped": not th.is_alive(),
             "prim_status_while_stopped": pair.prim.status()}
    finally:
        t_cont = time.monotonic()
        pair.second.signal(signal.SIGCONT)
    th.join(15)
    r["result"] = th.result
    if th.t_end is None:
        r["returned"] = False
    else:
        r["returned"] = True
        r["ms"] = round((th.t_end - th.t0) * 1000)
        r["ms_after_cont"] = max(0, round((th.t_end - t_cont) * 1000))
    return r


def cmd_sigstop(a):
    pair = Pair(a.rfs, a.base, mode=a.mode)
    res = {"mode": a.mode}
    try:
        path = os.path.join(pair.pdir, "f")
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            os.write(fd, b"before the stop\n")
            res["barrier_before"] = pair.barrier()
            res["write"] = while_stopped(pair, lambda: os.pwrite(fd, fsx.pattern(4096, 5), 0))
            res["barrier_after_write"] = pair.barrier()
            os.pwrite(fd, b"to be fsynced\n", 8192)
            res["fsync"] = while_stopped(pair, lambda: os.fsync(fd))
        finally:
            os.close(fd)
        res["barrier_after_fsync"] = pair.barrier()
        res["tree_prim"], res["tree_second_live"] = pair.snapshots()
        finish(pair, res)
    finally:
        pair.kill()
        res["output"] = pair.outputs()
    return res


def cmd_lost(a):
    pair = Pair(a.rfs, a.base, mode="sync")
    res = {}
    try:
        with open(os.path.join(pair.pdir, "before"), "wb") as f:
            f.write(b"replicated before the kill\n")
            os.fsync(f.fileno())
        res["barrier_before"] = pair.barrier()
        pair.second.proc.kill()
        res["second_rc"] = pair.second.wait(10)
        t_kill = time.monotonic()

        def write(name):
            def w():
                with open(os.path.join(pair.pdir, name), "wb") as f:
                    n = f.write(fsx.pattern(4096, 9))
                    f.flush()
                    os.fsync(f.fileno())
                return n
            th = Timed(w)
            th.start()
            th.join(15)
            return {"result": th.result,
                    "ms": None if th.t_end is None else round((th.t_end - th.t0) * 1000)}
        res["write right after the kill"] = write("after1")
        links = []

        def seen_lost():
            link = (pair.prim.status() or {}).get("link")
            if not links or links[-1] != link:
                links.append(link)
            return link == "lost"
        try:
            wait_until(seen_lost, 10, "PRIM's link to be lost")
        except RuntimeError:
            pass
        res["links after the kill"] = links
        res["ms to lost"] = round((time.monotonic() - t_kill) * 1000)
        res["prim status"] = pair.prim.status()
        res["write once lost"] = write("after2")
        res["prim alive"] = pair.prim.proc.poll() is None
        res["listing"] = sorted(os.listdir(pair.pdir))
        res["prim_rc"] = pair.unmount_prim()
        res["still_mounted"] = mounted(pair.pdir)
        res["tree_backing"] = snapshot(pair.pdir, times=False)
        res["tree_second"] = snapshot(pair.sdir, times=False)
    finally:
        pair.kill()
        res["output"] = pair.outputs()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["repl", "sigstop", "lost", "multi", "exclude",
                                        "reintegrate", "restart", "zeroloss", "diskfull", "crashalone", "syncfull",
                                        "lossy", "incremental"])
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rfs", required=True)
    ap.add_argument("--base", required=True)
    ap.add_argument("--case", action="append", choices=list(CASES))
    ap.add_argument("--cache", choices=["direct", "page"], default="direct")
    ap.add_argument("--mode", choices=["sync", "async"], default="sync")
    ap.add_argument("--verbose", action="store_true", help="both vigil-rfs log every change")
    a = ap.parse_args()
    if os.getpid() != 1:
        sys.exit("repl.py: run me as pid 1 of a private pid+mount+net namespace (unshare "
                 "--mount --propagation private --pid --fork --kill-child --mount-proc --net)")
    try:
        lo_up()
        res = {"repl": cmd_repl, "sigstop": cmd_sigstop, "lost": cmd_lost,
               "multi": cmd_multi, "exclude": cmd_exclude,
               "reintegrate": cmd_reintegrate, "restart": cmd_restart,
               "crashalone": cmd_crashalone, "syncfull": cmd_syncfull,
               "zeroloss": cmd_zeroloss, "diskfull": cmd_diskfull,
               "lossy": cmd_lossy, "incremental": cmd_incremental}[a.command](a)
    except Exception:
        traceback.print_exc()
        for name in ("prim.log", "second.log"):
            try:
                with open(os.path.join(a.base, name), errors="replace") as f:
                    sys.stderr.write(f"---- {name} (tail)\n{f.read()[-3000:]}\n")
            except OSError:
                pass
        sys.exit(1)
    json.dump(res, sys.stdout)


if __name__ == "__main__":
    main()
