#!/usr/bin/env python3
"""File-system exerciser and driver for the vigil-rfs tests.

Run by tests/system/test_rfs_fs.py INSIDE a private mount and pid namespace
(`unshare -m --propagation private -p --fork --kill-child --mount-proc`), so
every mount and process it makes dies with it. Commands (JSON on stdout):

  run --rfs BIN --base DIR [--cache MODE] [--case NAME]...
      mounts vigil-rfs over DIR/mnt, runs each case (pjdfstest-style) once
      in DIR/plain/NAME and once in DIR/mnt/NAME, recording every result
      and errno; snapshots both trees; unmounts; snapshots DIR/mnt again
      (now the backing directory).
  refuse --rfs BIN --base DIR    vigil-rfs on bad DIRs: exit codes, messages
  sigkill --rfs BIN --base DIR   SIGKILL the daemon, then `fusermount3 -uz`
  stop --rfs BIN --base DIR      SIGTERM / fusermount3 -u / background mode

Only the standard library is used.
"""

import argparse
import ctypes
import errno
import hashlib
import json
import mmap
import os
import signal
import stat
import subprocess
import sys
import threading
import time

libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
FALLOC_FL_KEEP_SIZE = 1
FALLOC_FL_PUNCH_HOLE = 2
FALLOC_FL_ZERO_RANGE = 0x10
GiB = 1 << 30
MiB = 1 << 20
USER = 1000          # the unprivileged caller of the as_user cases
OTHER_GROUP = 4242

CASES = {}


def case(fn):
    CASES[fn.__name__[len("case_"):]] = fn
    return fn


# ---- libc calls Python lacks ----

def _check(r):
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def renameat2(old, new, flags):
    return _check(libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new),
                                 ctypes.c_uint(flags)))


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def utimensat(path, atime, mtime, nofollow=False):
    """atime/mtime: (sec, nsec) or UTIME_NOW / UTIME_OMIT."""
    def ts(t):
        return Timespec(0, t) if isinstance(t, int) else Timespec(*t)
    times = (Timespec * 2)(ts(atime), ts(mtime))
    return _check(libc.utimensat(AT_FDCWD, os.fsencode(path), times,
                                 0x100 if nofollow else 0))


def fallocate(fd, mode, off, length):
    return _check(libc.fallocate(fd, mode, ctypes.c_long(off), ctypes.c_long(length)))


def syncfs(fd):
    return _check(libc.syncfs(fd))


def acl_xattr(entries):
    """POSIX ACL xattr value: [(tag, perm, id)], tags 1 user_obj, 2 user,
    4 group_obj, 8 group, 0x10 mask, 0x20 other."""
    out = (2).to_bytes(4, "little")
    for tag, perm, ident in entries:
        out += tag.to_bytes(2, "little") + perm.to_bytes(2, "little")
        out += (0xFFFFFFFF if ident is None else ident).to_bytes(4, "little")
    return out


# ---- recording ----

TYPE_NAMES = {stat.S_IFREG: "reg", stat.S_IFDIR: "dir", stat.S_IFLNK: "lnk",
              stat.S_IFIFO: "fifo", stat.S_IFCHR: "chr", stat.S_IFBLK: "blk",
              stat.S_IFSOCK: "sock"}


def norm_stat(st):
    t = stat.S_IFMT(st.st_mode)
    d = {"type": TYPE_NAMES.get(t, t), "mode": oct(stat.S_IMODE(st.st_mode)),
         "nlink": st.st_nlink, "uid": st.st_uid, "gid": st.st_gid}
    if t in (stat.S_IFREG, stat.S_IFLNK, stat.S_IFDIR):
        d["size"] = st.st_size
    if t in (stat.S_IFCHR, stat.S_IFBLK):
        d["rdev"] = [os.major(st.st_rdev), os.minor(st.st_rdev)]
    return d


def norm(v):
    if isinstance(v, os.stat_result):
        return norm_stat(v)
    if isinstance(v, os.statvfs_result):
        return {"bsize": v.f_bsize, "frsize": v.f_frsize, "blocks": v.f_blocks,
                "files": v.f_files, "namemax": v.f_namemax,
                "flags": v.f_flag & (os.ST_RDONLY | os.ST_NOSUID | os.ST_NODEV | os.ST_NOEXEC)}
    if isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        if len(b) <= 48:
            return "b:" + b.hex()
        return f"b[{len(b)}]:" + hashlib.sha256(b).hexdigest()[:24]
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    if isinstance(v, dict):
        return {str(k): norm(x) for k, x in v.items()}
    if v is None or isinstance(v, (int, str, bool, float)):
        return v
    return repr(v)


class Obs:
    """Runs calls under a root directory and records each outcome."""

    def __init__(self, root):
        self.root = root
        self.log = []

    def p(self, *parts):
        return os.path.join(self.root, *parts)

    def do(self, label, fn, *a, **kw):
        try:
            r = fn(*a, **kw)
        except OSError as e:
            self.log.append([label, "ERR", errno.errorcode.get(e.errno, str(e.errno))])
            return None
        self.log.append([label, "OK", norm(r)])
        return r

    def val(self, label, v):
        self.log.append([label, "VAL", norm(v)])

    # Small compound steps that must not leak fds.
    def write_file(self, label, rel, data, flags=os.O_CREAT | os.O_WRONLY | os.O_TRUNC,
                   mode=0o644):
        def w():
            fd = os.open(self.p(rel), flags, mode)
            try:
                n = os.write(fd, data) if data else 0
                return [n, os.fstat(fd)]
            finally:
                os.close(fd)
        return self.do(label, w)

    def read_file(self, label, rel):
        def r():
            with open(self.p(rel), "rb") as f:
                return f.read()
        return self.do(label, r)

    def open_close(self, label, rel, flags, mode=0o644):
        def oc():
            fd = os.open(self.p(rel), flags, mode)
            try:
                return os.fstat(fd)
            finally:
                os.close(fd)
        return self.do(label, oc)


def as_user(ob, label, fn, uid=USER, gid=USER, groups=()):
    """Runs fn(ob2) in a child with the given ids; its records join ob's."""
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rd)
        code = 0
        try:
            os.setgroups(list(groups))
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            ob2 = Obs(ob.root)
            fn(ob2)
            os.write(wr, json.dumps(ob2.log).encode())
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            os.write(wr, json.dumps([[label, "CRASH", repr(e)]]).encode())
            code = 1
        finally:
            os._exit(code)
    os.close(wr)
    chunks = []
    while True:
        b = os.read(rd, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(rd)
    os.waitpid(pid, 0)
    for entry in json.loads(b"".join(chunks) or b"[]"):
        entry[0] = f"{label}: {entry[0]}"
        ob.log.append(entry)


def seek_map(fd, size):
    """[(data_start, data_end)] by SEEK_DATA/SEEK_HOLE."""
    out, off = [], 0
    while off < size:
        try:
            d = os.lseek(fd, off, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:
                break
            raise
        h = os.lseek(fd, d, os.SEEK_HOLE)
        out.append([d, h])
        off = h
    return out


def fd_map(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        return {"size": st.st_size, "map": seek_map(fd, st.st_size), "blocks": st.st_blocks}
    finally:
        os.close(fd)


def pattern(n, seed=1):
    h = hashlib.sha256(str(seed).encode()).digest()
    return (h * (n // len(h) + 1))[:n]


# ---- the cases: each gets an empty directory ob.root ----

@case
def case_create_write_read(ob):
    ob.write_file("create", "f", b"hello world\n" * 1000, mode=0o640)
    ob.read_file("read", "f")
    ob.do("stat", os.stat, ob.p("f"))

    def overwrite():
        fd = os.open(ob.p("f"), os.O_RDWR)
        try:
            os.pwrite(fd, b"XYZ", 5000)
            return os.pread(fd, 20, 4995)
        finally:
            os.close(fd)
    ob.do("pwrite middle", overwrite)
    ob.write_file("O_TRUNC", "f", b"short", flags=os.O_WRONLY | os.O_TRUNC)
    ob.read_file("read after trunc", "f")
    old = os.umask(0o077)
    try:
        ob.open_close("create under umask 077", "g", os.O_CREAT | os.O_WRONLY, 0o666)
    finally:
        os.umask(old)
    ob.open_close("create suid", "s", os.O_CREAT | os.O_WRONLY, 0o4755)
    ob.open_close("create rdonly+creat", "r", os.O_CREAT | os.O_RDONLY, 0o400)
    ob.write_file("big write", "big", pattern(3 * MiB + 17))
    ob.read_file("big read", "big")


@case
def case_open_errors(ob):
    ob.do("open missing", os.open, ob.p("nope"), os.O_RDONLY)
    ob.do("create in missing dir", os.open, ob.p("nodir", "x"), os.O_CREAT | os.O_WRONLY, 0o644)
    ob.write_file("file", "f", b"data")
    ob.do("open through a file", os.open, ob.p("f", "x"), os.O_RDONLY)
    ob.do("O_EXCL on existing", os.open, ob.p("f"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    ob.open_close("O_CREAT on existing keeps mode", "f", os.O_CREAT | os.O_WRONLY, 0o600)
    ob.do("mkdir", os.mkdir, ob.p("d"))
    ob.do("open dir for writing", os.open, ob.p("d"), os.O_WRONLY)
    ob.do("name too long", os.open, ob.p("a" * 300), os.O_CREAT | os.O_WRONLY, 0o644)
    ob.do("O_DIRECTORY on file", os.open, ob.p("f"), os.O_RDONLY | os.O_DIRECTORY)
    ob.do("symlink", os.symlink, "f", ob.p("l"))
    ob.do("O_NOFOLLOW on symlink", os.open, ob.p("l"), os.O_RDONLY | os.O_NOFOLLOW)
    ob.do("O_EXCL on symlink", os.open, ob.p("l"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    ob.do("dangling symlink", os.symlink, "made-through-link", ob.p("dl"))
    ob.open_close("create through dangling symlink", "dl", os.O_CREAT | os.O_WRONLY, 0o640)
    ob.do("list", lambda: sorted(os.listdir(ob.root)))
    ob.do("chmod 000", os.chmod, ob.p("f"), 0)
    ob.open_close("root opens mode-000 file", "f", os.O_RDONLY)


@case
def case_rename(ob):
    ob.write_file("a", "a", b"AAAA")
    ob.write_file("b", "b", b"BB")
    for d in ("d1", "d2", "e"):
        ob.do("mkdir " + d, os.mkdir, ob.p(d))
    ob.write_file("d1/x", "d1/x", b"x")
    ob.write_file("e/f", "e/f", b"f")
    ob.do("rename a c", os.rename, ob.p("a"), ob.p("c"))
    ob.do("stat a", os.stat, ob.p("a"))
    ob.do("rename c over b", os.rename, ob.p("c"), ob.p("b"))
    ob.read_file("b now", "b")
    ob.do("stat c", os.stat, ob.p("c"))
    ob.do("rename across dirs", os.rename, ob.p("d1", "x"), ob.p("d2", "x"))
    ob.do("list d1", lambda: sorted(os.listdir(ob.p("d1"))))
    ob.do("list d2", lambda: sorted(os.listdir(ob.p("d2"))))
    ob.do("file over dir", os.rename, ob.p("b"), ob.p("d2"))
    ob.do("dir over file", os.rename, ob.p("d1"), ob.p("b"))
    ob.do("mkdir d3", os.mkdir, ob.p("d3"))
    ob.do("dir over empty dir", os.rename, ob.p("d1"), ob.p("d3"))
    ob.do("dir over non-empty dir", os.rename, ob.p("d3"), ob.p("e"))
    ob.do("missing source", os.rename, ob.p("nope"), ob.p("x"))
    ob.do("dir into itself", os.rename, ob.p("d2"), ob.p("d2", "sub"))
    ob.do("link h1", os.link, ob.p("b"), ob.p("h1"))
    ob.do("rename onto own hard link", os.rename, ob.p("b"), ob.p("h1"))
    ob.do("stat b", os.stat, ob.p("b"))

    def rename_open():
        fd = os.open(ob.p("h1"), os.O_RDWR)
        try:
            os.rename(ob.p("h1"), ob.p("d2", "moved"))
            os.write(fd, b"via-fd")
            return os.pread(fd, 100, 0)
        finally:
            os.close(fd)
    ob.do("rename an open file", rename_open)
    ob.read_file("moved", "d2/moved")
    ob.write_file("n1", "n1", b"one")
    ob.write_file("n2", "n2", b"two")
    ob.do("NOREPLACE onto existing", renameat2, ob.p("n1"), ob.p("n2"), RENAME_NOREPLACE)
    ob.do("NOREPLACE onto new", renameat2, ob.p("n1"), ob.p("n3"), RENAME_NOREPLACE)
    ob.do("EXCHANGE files", renameat2, ob.p("n2"), ob.p("n3"), RENAME_EXCHANGE)
    ob.read_file("n2 after exchange", "n2")
    ob.read_file("n3 after exchange", "n3")
    ob.do("EXCHANGE file and dir", renameat2, ob.p("n2"), ob.p("e"), RENAME_EXCHANGE)
    ob.do("stat e", os.lstat, ob.p("e"))
    ob.do("list n2 (now the dir)", lambda: sorted(os.listdir(ob.p("n2"))))
    ob.do("EXCHANGE with missing", renameat2, ob.p("n3"), ob.p("zz"), RENAME_EXCHANGE)
    ob.do("list", lambda: sorted(os.listdir(ob.root)))


@case
def case_unlink(ob):
    ob.write_file("f", "f", b"x")
    ob.do("unlink", os.unlink, ob.p("f"))
    ob.do("unlink again", os.unlink, ob.p("f"))
    ob.do("mkdir", os.mkdir, ob.p("d"))
    ob.do("unlink dir", os.unlink, ob.p("d"))
    ob.do("unlink in missing dir", os.unlink, ob.p("nodir", "x"))

    def unlink_open():
        fd = os.open(ob.p("g"), os.O_CREAT | os.O_RDWR, 0o644)
        try:
            os.write(fd, b"before ")
            os.unlink(ob.p("g"))
            os.write(fd, b"after unlink")
            st = os.fstat(fd)
            return [st.st_nlink, st.st_size, os.pread(fd, 100, 0)]
        finally:
            os.close(fd)
    ob.do("write to an unlinked open file", unlink_open)
    ob.do("list", lambda: sorted(os.listdir(ob.root)))


@case
def case_link(ob):
    ob.write_file("a", "a", b"data")
    ob.do("link", os.link, ob.p("a"), ob.p("b"))
    ob.do("stat a", os.stat, ob.p("a"))
    ob.write_file("append via b", "b", b"+more", flags=os.O_WRONLY | os.O_APPEND)
    ob.read_file("read a", "a")
    ob.do("link onto existing", os.link, ob.p("a"), ob.p("b"))
    ob.do("mkdir", os.mkdir, ob.p("d"))
    ob.do("link a dir", os.link, ob.p("d"), ob.p("d2"))
    ob.do("link into subdir", os.link, ob.p("b"), ob.p("d", "b"))
    ob.do("unlink a", os.unlink, ob.p("a"))
    ob.do("stat b", os.stat, ob.p("b"))
    ob.do("link missing", os.link, ob.p("nope"), ob.p("x"))
    ob.do("symlink", os.symlink, "b", ob.p("sl"))
    ob.do("hard link of the symlink", os.link, ob.p("sl"), ob.p("sl2"), follow_symlinks=False)
    ob.do("lstat sl2", os.lstat, ob.p("sl2"))
    ob.do("readlink sl2", os.readlink, ob.p("sl2"))


@case
def case_symlink(ob):
    ob.do("symlink", os.symlink, "target", ob.p("l"))
    ob.do("readlink", os.readlink, ob.p("l"))
    ob.do("lstat", os.lstat, ob.p("l"))
    ob.do("stat dangling", os.stat, ob.p("l"))
    ob.write_file("target", "target", b"t")
    ob.do("stat through", os.stat, ob.p("l"))
    ob.read_file("read through", "l")
    ob.do("symlink onto existing", os.symlink, "x", ob.p("l"))
    ob.do("readlink a file", os.readlink, ob.p("target"))
    long_target = "/".join(["d" * 200] * 19)
    ob.do("long target", os.symlink, long_target, ob.p("long"))
    ob.do("readlink long", os.readlink, ob.p("long"))
    ob.do("absolute target", os.symlink, "/etc/hostname", ob.p("abs"))
    ob.do("readlink abs", os.readlink, ob.p("abs"))
    ob.do("mkdir", os.mkdir, ob.p("d"))
    ob.do("symlink to dir", os.symlink, "d", ob.p("ld"))
    ob.write_file("create through dir link", "ld/inner", b"i")
    ob.do("list d", lambda: sorted(os.listdir(ob.p("d"))))
    ob.do("loop", os.symlink, "loop", ob.p("loop"))
    ob.do("open loop", os.open, ob.p("loop"), os.O_RDONLY)


@case
def case_truncate(ob):
    ob.write_file("f", "f", pattern(10000))
    ob.do("truncate up", os.truncate, ob.p("f"), 100000)
    ob.do("stat", os.stat, ob.p("f"))
    ob.read_file("read", "f")
    ob.do("map", fd_map, ob.p("f"))
    ob.do("truncate down", os.truncate, ob.p("f"), 50)
    ob.read_file("read small", "f")

    def ftrunc():
        fd = os.open(ob.p("f"), os.O_RDWR)
        try:
            os.ftruncate(fd, 0)
            a = os.fstat(fd).st_size
            os.ftruncate(fd, 4096)
            return [a, os.fstat(fd).st_size, os.pread(fd, 10, 4000)]
        finally:
            os.close(fd)
    ob.do("ftruncate", ftrunc)

    def ftrunc_ro():
        fd = os.open(ob.p("f"), os.O_RDONLY)
        try:
            os.ftruncate(fd, 1)
        finally:
            os.close(fd)
    ob.do("ftruncate read-only fd", ftrunc_ro)
    ob.do("truncate missing", os.truncate, ob.p("nope"), 1)
    ob.do("mkdir", os.mkdir, ob.p("d"))
    ob.do("truncate dir", os.truncate, ob.p("d"), 0)
    ob.do("truncate negative", os.truncate, ob.p("f"), -1)
    ob.do("stat end", os.stat, ob.p("f"))


@case
def case_chmod(ob):
    ob.write_file("f", "f", b"x")
    for mode in (0, 0o644, 0o4755, 0o2755, 0o1777, 0o7777, 0o600):
        ob.do(f"chmod {oct(mode)}", os.chmod, ob.p("f"), mode)
        ob.do("stat", os.stat, ob.p("f"))
    ob.do("mkdir", os.mkdir, ob.p("d"))
    ob.do("chmod dir 3775", os.chmod, ob.p("d"), 0o3775)
    ob.do("stat dir", os.stat, ob.p("d"))
    ob.do("chmod missing", os.chmod, ob.p("nope"), 0o644)

    def fchmod():
        fd = os.open(ob.p("f"), os.O_RDONLY)
        try:
            os.fchmod(fd, 0o640)
            return os.fstat(fd)
        finally:
            os.close(fd)
    ob.do("fchmod", fchmod)
    ob.do("symlink", os.symlink, "f", ob.p("l"))
    ob.do("chmod through symlink", os.chmod, ob.p("l"), 0o611)
    ob.do("stat f", os.stat, ob.p("f"))
    ob.do("lstat l", os.lstat, ob.p("l"))


@case
def case_chown(ob):
    ob.write_file("f", "f", b"x")
    ob.do("chown", os.chown, ob.p("f"), 1234, 5678)
    ob.do("stat", os.stat, ob.p("f"))
    ob.do("chown group only", os.chown, ob.p("f"), -1, 42)
    ob.do("stat", os.stat, ob.p("f"))
    ob.do("symlink", os.symlink, "f", ob.p("l"))
    ob.do("lchown", os.chown, ob.p("l"), 7, 8, follow_symlinks=False)
    ob.do("lstat", os.lstat, ob.p("l"))
    ob.do("stat f", os.stat, ob.p("f"))

    def fchown():
        fd = os.open(ob.p("f"), os.O_RDONLY)
        try:
            os.fchown(fd, 99, 98)
            return os.fstat(fd)
        finally:
            os.close(fd)
    ob.do("fchown", fchown)
    ob.do("chmod 6755", os.chmod, ob.p("f"), 0o6755)
    ob.do("chown clears set-id bits", os.chown, ob.p("f"), 1, 1)
    ob.do("stat", os.stat, ob.p("f"))
    ob.do("mkdir", os.mkdir, ob.p("d"))
    ob.do("chmod dir 2775", os.chmod, ob.p("d"), 0o2775)
    ob.do("chown dir", os.chown, ob.p("d"), 5, 6)
    ob.do("stat dir", os.stat, ob.p("d"))
    ob.do("chown missing", os.chown, ob.p("nope"), 1, 1)


@case
def case_as_user(ob):
    """Objects created for an unprivileged caller, and what it may not do."""
    ob.do("mkdir pub 777", os.mkdir, ob.p("pub"))
    ob.do("chmod pub", os.chmod, ob.p("pub"), 0o777)
    ob.do("mkdir priv", os.mkdir, ob.p("priv"), 0o755)
    ob.do("mkdir sg", os.mkdir, ob.p("sg"))
    ob.do("chown sg", os.chown, ob.p("sg"), 0, OTHER_GROUP)
    ob.do("chmod sg 2777", os.chmod, ob.p("sg"), 0o2777)
    ob.do("mkdir sticky", os.mkdir, ob.p("sticky"))
    ob.do("chmod sticky 1777", os.chmod, ob.p("sticky"), 0o1777)
    ob.write_file("root file in sticky", "sticky/rootf", b"r")
    ob.write_file("root file", "rootfile", b"root data")
    ob.do("chmod rootfile 600", os.chmod, ob.p("rootfile"), 0o600)

    def user(o):
        o.open_close("create", "pub/u", os.O_CREAT | os.O_WRONLY, 0o640)
        o.do("mkdir", os.mkdir, o.p("pub", "ud"), 0o750)
        o.do("stat dir", os.stat, o.p("pub", "ud"))
        o.do("symlink", os.symlink, "u", o.p("pub", "ul"))
        o.do("lstat symlink", os.lstat, o.p("pub", "ul"))
        o.do("mkfifo", os.mkfifo, o.p("pub", "uf"), 0o600)
        o.do("stat fifo", os.stat, o.p("pub", "uf"))
        o.do("create in root's 755 dir", os.open, o.p("priv", "x"), os.O_CREAT | os.O_WRONLY, 0o644)
        o.do("read root's 600 file", os.open, o.p("rootfile"), os.O_RDONLY)
        o.do("chmod root's file", os.chmod, o.p("rootfile"), 0o666)
        o.do("chown own file to root", os.chown, o.p("pub", "u"), 0, 0)
        o.do("chown own file to other group", os.chown, o.p("pub", "u"), -1, OTHER_GROUP)
        o.open_close("create in set-gid dir", "sg/f", os.O_CREAT | os.O_WRONLY, 0o664)
        o.do("mkdir in set-gid dir", os.mkdir, o.p("sg", "sd"), 0o775)
        o.do("stat sg/sd", os.stat, o.p("sg", "sd"))
        o.open_close("create own suid file", "pub/suid", os.O_CREAT | os.O_WRONLY, 0o4755)
        o.write_file("write own suid file", "pub/suid", b"x", flags=os.O_WRONLY)
        o.do("stat suid after write", os.stat, o.p("pub", "suid"))
        o.do("chmod 6775 again", os.chmod, o.p("pub", "suid"), 0o6775)
        o.do("truncate own suid file", os.truncate, o.p("pub", "suid"), 100)
        o.do("stat suid after truncate", os.stat, o.p("pub", "suid"))
        o.do("chmod 2755 again", os.chmod, o.p("pub", "suid"), 0o2755)
        o.write_file("append to sgid file", "pub/suid", b"x", flags=os.O_WRONLY | os.O_APPEND)
        o.do("chmod 2745", os.chmod, o.p("pub", "suid"), 0o2745)
        o.write_file("write sgid without group exec", "pub/suid", b"y", flags=os.O_WRONLY)
        o.do("touch root's file (NOW)", utimensat, o.p("rootfile"), UTIME_NOW, UTIME_NOW)
        o.do("set times of root's file", utimensat, o.p("rootfile"), (1, 0), (2, 0))
        o.do("unlink root's file in sticky dir", os.unlink, o.p("sticky", "rootf"))
        o.do("rename own file", os.rename, o.p("pub", "u"), o.p("pub", "u2"))
        o.do("link own file", os.link, o.p("pub", "u2"), o.p("pub", "u3"))
        o.do("stat u3", os.stat, o.p("pub", "u3"))
        o.do("setxattr user.* own file", os.setxattr, o.p("pub", "u2"), "user.k", b"v")
        o.do("setxattr trusted.*", os.setxattr, o.p("pub", "u2"), "trusted.k", b"v")
    as_user(ob, "uid 1000", user)
    ob.do("list pub", lambda: sorted(os.listdir(ob.p("pub"))))


@case
def case_acl(ob):
    """Default ACLs decide the mode instead of the umask; ACLs are enforced."""
    full, rx = 7, 5
    ob.do("mkdir", os.mkdir, ob.p("d"))
    ob.do("set default ACL", os.setxattr, ob.p("d"), "system.posix_acl_default",
          acl_xattr([(1, full, None), (4, rx, None), (0x20, 0, None)]))
    old = os.umask(0o077)
    try:
        ob.open_close("create under default ACL", "d/f", os.O_CREAT | os.O_WRONLY, 0o666)
        ob.do("mkdir under default ACL", os.mkdir, ob.p("d", "sub"), 0o777)
    finally:
        os.umask(old)
    ob.do("stat sub", os.stat, ob.p("d", "sub"))
    ob.do("inherited default ACL", os.getxattr, ob.p("d", "sub"), "system.posix_acl_default")
    ob.write_file("file", "secret", b"for user 1000 only")
    ob.do("chmod 600", os.chmod, ob.p("secret"), 0o600)
    ob.do("grant user 1000 read", os.setxattr, ob.p("secret"), "system.posix_acl_access",
          acl_xattr([(1, 6, None), (2, 4, USER), (4, 0, None), (0x10, 4, None), (0x20, 0, None)]))
    ob.do("stat secret", os.stat, ob.p("secret"))
    ob.do("access ACL back", os.getxattr, ob.p("secret"), "system.posix_acl_access")

    def user(o):
        o.read_file("read through ACL", "secret")
        o.do("write denied", os.open, o.p("secret"), os.O_WRONLY)
    as_user(ob, "uid 1000", user)
    as_user(ob, "uid 1001", lambda o: o.read_file("read denied", "secret"), uid=1001, gid=1001)


@case
def case_utimens(ob):
    ob.write_file("f", "f", b"x")

    def times(path, follow=True):
        st = os.stat(path, follow_symlinks=follow)
        return [st.st_atime_ns, st.st_mtime_ns]
    ob.do("utime ns", os.utime, ob.p("f"), ns=(1_000_000_123, 2_000_000_456))
    ob.do("times", times, ob.p("f"))
    ob.do("OMIT atime", utimensat, ob.p("f"), UTIME_OMIT, (3, 999_999_999))
    ob.do("times", times, ob.p("f"))
    ob.do("OMIT both", utimensat, ob.p("f"), UTIME_OMIT, UTIME_OMIT)
    ob.do("times", times, ob.p("f"))
    before = time.time_ns() - 10_000_000
    ob.do("NOW mtime only", utimensat, ob.p("f"), UTIME_OMIT, UTIME_NOW)
    after = time.time_ns() + 10_000_000
    t = times(ob.p("f"))
    ob.val("atime kept, mtime now", [t[0], before <= t[1] <= after])
    ob.do("symlink", os.symlink, "f", ob.p("l"))
    ob.do("utime symlink itself", os.utime, ob.p("l"), ns=(5, 6), follow_symlinks=False)
    ob.do("symlink times", times, ob.p("l"), False)
    ob.val("target untouched", times(ob.p("f")) == t)
    ob.do("mkdir", os.mkdir, ob.p("d"))
    ob.do("utime dir", os.utime, ob.p("d"), ns=(7_000_000_000, 8_000_000_000))
    ob.do("dir times", times, ob.p("d"))

    def futimens():
        fd = os.open(ob.p("f"), os.O_RDONLY)
        try:
            os.utime(fd, ns=(9, 10))
            st = os.fstat(fd)
            return [st.st_atime_ns, st.st_mtime_ns]
        finally:
            os.close(fd)
    ob.do("futimens", futimens)
    ob.do("utime missing", os.utime, ob.p("nope"), ns=(1, 1))
    ob.do("invalid nsec", utimensat, ob.p("f"), (1, 1_000_000_000), (1, 0))


@case
def case_xattr(ob):
    ob.write_file("f", "f", b"x")
    ob.do("set", os.setxattr, ob.p("f"), "user.a", b"1")
    ob.do("get", os.getxattr, ob.p("f"), "user.a")
    ob.do("set big", os.setxattr, ob.p("f"), "user.big", pattern(4000))
    ob.do("get big", os.getxattr, ob.p("f"), "user.big")
    ob.do("set empty", os.setxattr, ob.p("f"), "user.empty", b"")
    ob.do("get empty", os.getxattr, ob.p("f"), "user.empty")
    ob.do("list", lambda: sorted(os.listxattr(ob.p("f"))))
    ob.do("CREATE existing", os.setxattr, ob.p("f"), "user.a", b"2", os.XATTR_CREATE)
    ob.do("REPLACE missing", os.setxattr, ob.p("f"), "user.zz", b"2", os.XATTR_REPLACE)
    ob.do("REPLACE existing", os.setxattr, ob.p("f"), "user.a", b"3", os.XATTR_REPLACE)
    ob.do("get", os.getxattr, ob.p("f"), "user.a")
    ob.do("remove", os.removexattr, ob.p("f"), "user.a")
    ob.do("get removed", os.getxattr, ob.p("f"), "user.a")
    ob.do("remove missing", os.removexattr, ob.p("f"), "user.a")
    ob.do("list", lambda: sorted(os.listxattr(ob.p("f"))))
    ob.do("mkdir", os.mkdir, ob.p("d"))
    ob.do("set on dir", os.setxattr, ob.p("d"), "user.d", b"dir")
    ob.do("get on dir", os.getxattr, ob.p("d"), "user.d")
    ob.do("symlink", os.symlink, "f", ob.p("l"))
    ob.do("user.* on symlink", os.setxattr, ob.p("l"), "user.l", b"l", follow_symlinks=False)
    ob.do("trusted.* on symlink", os.setxattr, ob.p("l"), "trusted.l", b"L", follow_symlinks=False)
    ob.do("get trusted.* on symlink", os.getxattr, ob.p("l"), "trusted.l", follow_symlinks=False)
    ob.do("list symlink", lambda: sorted(os.listxattr(ob.p("l"), follow_symlinks=False)))
    ob.do("get through symlink", os.getxattr, ob.p("l"), "user.big")
    ob.do("trusted.* on file", os.setxattr, ob.p("f"), "trusted.t", b"T")
    ob.do("get trusted", os.getxattr, ob.p("f"), "trusted.t")
    ob.do("bad namespace", os.setxattr, ob.p("f"), "bogus.x", b"1")
    ob.do("value too big", os.setxattr, ob.p("f"), "user.huge", b"x" * 70000)
    ob.do("on missing", os.getxattr, ob.p("nope"), "user.a")


@case
def case_sparse(ob):
    def build():
        fd = os.open(ob.p("s"), os.O_CREAT | os.O_RDWR, 0o644)
        try:
            os.pwrite(fd, b"A" * 4096, 1 * MiB)
            os.pwrite(fd, b"B" * 4096, 3 * MiB)
            st = os.fstat(fd)
            out = [st.st_size, st.st_blocks, seek_map(fd, st.st_size)]
            for whence, off in ((os.SEEK_HOLE, 0), (os.SEEK_DATA, 0), (os.SEEK_DATA, 2 * MiB)):
                out.append(os.lseek(fd, off, whence))
            return out
        finally:
            os.close(fd)
    ob.do("two extents", build)

    def seek_past_end():
        fd = os.open(ob.p("s"), os.O_RDONLY)
        try:
            return os.lseek(fd, 10 * MiB, os.SEEK_DATA)
        finally:
            os.close(fd)
    ob.do("SEEK_DATA past end", seek_past_end)

    def falloc(mode, off, length):
        fd = os.open(ob.p("s"), os.O_RDWR)
        try:
            fallocate(fd, mode, off, length)
            st = os.fstat(fd)
            return [st.st_size, st.st_blocks, seek_map(fd, st.st_size)]
        finally:
            os.close(fd)
    ob.do("punch hole", falloc, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1 * MiB, 4096)
    ob.do("allocate past end", falloc, 0, 5 * MiB, 1 * MiB)
    ob.do("allocate keep size", falloc, FALLOC_FL_KEEP_SIZE, 8 * MiB, 1 * MiB)
    ob.do("zero range", falloc, FALLOC_FL_ZERO_RANGE, 3 * MiB, 1024)
    ob.do("punch without keep size", falloc, FALLOC_FL_PUNCH_HOLE, 0, 4096)

    def posix_falloc():
        fd = os.open(ob.p("p"), os.O_CREAT | os.O_RDWR, 0o644)
        try:
            os.posix_fallocate(fd, 0, 2 * MiB)
            st = os.fstat(fd)
            return [st.st_size, st.st_blocks]
        finally:
            os.close(fd)
    ob.do("posix_fallocate", posix_falloc)
    ob.read_file("content", "s")


@case
def case_large_offset(ob):
    off = 5 * GiB + 123

    def big():
        fd = os.open(ob.p("big"), os.O_CREAT | os.O_RDWR, 0o644)
        try:
            os.pwrite(fd, b"far away", off)
            st = os.fstat(fd)
            return [st.st_size, st.st_blocks, os.pread(fd, 20, off - 4),
                    os.lseek(fd, 0, os.SEEK_DATA), os.lseek(fd, 0, os.SEEK_HOLE)]
        finally:
            os.close(fd)
    ob.do("write above 4 GiB", big)
    ob.do("truncate to 4 GiB + 1", os.truncate, ob.p("big"), 4 * GiB + 1)
    ob.do("map", fd_map, ob.p("big"))


@case
def case_mkdir_rmdir(ob):
    nlink = lambda: os.stat(ob.root).st_nlink  # noqa: E731
    ob.val("parent nlink", nlink())
    ob.do("mkdir 750", os.mkdir, ob.p("d"), 0o750)
    ob.do("stat", os.stat, ob.p("d"))
    ob.val("parent nlink", nlink())
    ob.do("mkdir existing", os.mkdir, ob.p("d"))
    ob.write_file("d/f", "d/f", b"f")
    ob.do("rmdir non-empty", os.rmdir, ob.p("d"))
    ob.do("rmdir a file", os.rmdir, ob.p("d", "f"))
    ob.do("rmdir missing", os.rmdir, ob.p("nope"))
    ob.do("unlink d/f", os.unlink, ob.p("d", "f"))
    ob.do("rmdir", os.rmdir, ob.p("d"))
    ob.val("parent nlink", nlink())
    ob.do("mkdir in missing parent", os.mkdir, ob.p("no", "sub"))
    ob.write_file("file", "file", b"")
    ob.do("mkdir under a file", os.mkdir, ob.p("file", "sub"))
    ob.do("rmdir dot", os.rmdir, ob.p("."))
    old = os.umask(0o022)
    try:
        ob.do("mkdir 1777 umask 022", os.mkdir, ob.p("t"), 0o1777)
    finally:
        os.umask(old)
    ob.do("stat t", os.stat, ob.p("t"))

    def deep():
        path = ob.root
        for i in range(20):
            path = os.path.join(path, f"l{i}")
            os.mkdir(path)
        os.rename(ob.p("l0"), ob.p("top"))
        return sorted(os.listdir(os.path.join(ob.p("top"), *[f"l{i}" for i in range(1, 19)])))
    ob.do("deep tree, renamed top", deep)


@case
def case_readdir(ob):
    def build():
        for i in range(600):
            with open(ob.p(f"f{i:03d}"), "wb") as f:
                f.write(b"x" * (i % 7))
        for i in range(20):
            os.mkdir(ob.p(f"dir{i:02d}"))
        for i in range(10):
            os.symlink(f"f{i:03d}", ob.p(f"link{i}"))
        os.mkfifo(ob.p("fifo"))
        with open(ob.p("n" * 255), "wb"):
            pass
    ob.do("build", build)

    def listing():
        with os.scandir(ob.root) as it:
            return sorted([e.name, e.is_dir(follow_symlinks=False),
                           e.is_file(follow_symlinks=False),
                           e.is_symlink()] for e in it)
    ob.do("scandir", listing)

    def remove_some():
        for i in range(0, 600, 2):
            os.unlink(ob.p(f"f{i:03d}"))
        return sorted(os.listdir(ob.root))
    ob.do("after removing half", remove_some)

    def unlink_while_listing():
        seen = []
        with os.scandir(ob.root) as it:
            for e in it:
                seen.append(e.name)
                if e.name.startswith("f") and e.is_file(follow_symlinks=False):
                    os.unlink(e.path)
        return sorted(os.listdir(ob.root))
    ob.do("unlink while listing", unlink_while_listing)
    ob.do("mkdir empty", os.mkdir, ob.p("empty"))
    ob.do("list empty", os.listdir, ob.p("empty"))
    ob.do("list a file", os.listdir, ob.p("fifo"))


@case
def case_append(ob):
    def interleave():
        fa = os.open(ob.p("f"), os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
        fb = os.open(ob.p("f"), os.O_WRONLY | os.O_APPEND)
        ft = os.open(ob.p("f"), os.O_WRONLY)
        try:
            for i in range(5):
                os.write(fa, f"a{i} ".encode())
                os.write(fb, f"b{i} ".encode())
            os.pwrite(fa, b"[pwrite at 0 appends]", 0)
            os.ftruncate(ft, 3)
            os.write(fb, b"<after truncate>")
            return os.fstat(fa).st_size
        finally:
            for fd in (fa, fb, ft):
                os.close(fd)
    ob.do("interleaved appends", interleave)
    ob.read_file("content", "f")

    def concurrent():
        def writer(tag):
            fd = os.open(ob.p("c"), os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
            try:
                for i in range(400):
                    os.write(fd, f"{tag}{i:05d}".encode().ljust(99, b".") + b"\n")
            finally:
                os.close(fd)
        ts = [threading.Thread(target=writer, args=(t,)) for t in "ABC"]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        with open(ob.p("c"), "r+b") as f:
            lines = f.read().split(b"\n")
            # The interleaving differs from run to run: keep a canonical
            # content for the tree comparison.
            f.seek(0)
            f.write(b"\n".join(sorted(lines)))
        return [len(lines), sorted(lines) == sorted(
            [f"{t}{i:05d}".encode().ljust(99, b".") for t in "ABC" for i in range(400)] + [b""])]
    ob.do("three concurrent appenders", concurrent)


@case
def case_fsync(ob):
    def syncs():
        out = []
        fd = os.open(ob.p("f"), os.O_CREAT | os.O_RDWR, 0o644)
        try:
            os.write(fd, b"data")
            out.append(os.fsync(fd))
            os.write(fd, b"more")
            out.append(os.fdatasync(fd))
            out.append(os.pwritev(fd, [b"dsync"], 100, os.RWF_DSYNC))
            out.append(os.pwritev(fd, [b"sync"], 200, os.RWF_SYNC))
            out.append(syncfs(fd))
        finally:
            os.close(fd)
        dfd = os.open(ob.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            out.append(os.fsync(dfd))
            out.append(os.fdatasync(dfd))
        finally:
            os.close(dfd)
        for flag, name in ((os.O_SYNC, "osync"), (os.O_DSYNC, "odsync")):
            fd = os.open(ob.p(name), os.O_CREAT | os.O_WRONLY | flag, 0o644)
            try:
                out.append(os.write(fd, pattern(65536)))
            finally:
                os.close(fd)
        return out
    ob.do("fsync, fdatasync, RWF_*, O_SYNC, O_DSYNC, syncfs", syncs)
    ob.read_file("f", "f")
    ob.read_file("osync", "osync")


@case
def case_statfs(ob):
    ob.do("statvfs", os.statvfs, ob.root)


@case
def case_copy_range(ob):
    ob.write_file("src", "src", pattern(1 * MiB, 7))
    ob.write_file("dst", "dst", b"")

    def copy(src_off, dst_off, n, same=False):
        fi = os.open(ob.p("src"), os.O_RDWR)
        fo = fi if same else os.open(ob.p("dst"), os.O_RDWR)
        try:
            return os.copy_file_range(fi, fo, n, src_off, dst_off)
        finally:
            os.close(fi)
            if not same:
                os.close(fo)
    ob.do("copy", copy, 300000, 1000, 5000)
    ob.read_file("dst", "dst")
    ob.do("copy from past end", copy, 2 * MiB, 0, 10)
    ob.do("overlapping in one file", copy, 0, 10, 100, True)
    ob.do("stat dst", os.stat, ob.p("dst"))


@case
def case_odirect(ob):
    def direct():
        buf = mmap.mmap(-1, 8192)
        buf.write(pattern(8192, 3))
        fd = os.open(ob.p("d"), os.O_CREAT | os.O_RDWR | os.O_DIRECT, 0o644)
        out = []
        try:
            out.append(os.pwrite(fd, buf, 0))
            for what, data, off in (("unaligned length", memoryview(buf)[:100], 0),
                                    ("unaligned offset", memoryview(buf)[:4096], 100)):
                try:
                    out.append(os.pwrite(fd, data, off))
                except OSError as e:
                    out.append(what + " " + errno.errorcode[e.errno])
            rbuf = mmap.mmap(-1, 8192)
            out.append(os.preadv(fd, [rbuf], 0))
            out.append(rbuf[:] == buf[:])
        finally:
            os.close(fd)
        return out
    ob.do("O_DIRECT", direct)
    ob.read_file("buffered read back", "d")


@case
def case_mknod(ob):
    ob.do("mkfifo", os.mkfifo, ob.p("p"), 0o640)
    ob.do("stat fifo", os.stat, ob.p("p"))
    ob.do("char device", os.mknod, ob.p("c"), 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    ob.do("stat chr", os.stat, ob.p("c"))
    ob.do("block device", os.mknod, ob.p("b"), 0o600 | stat.S_IFBLK, os.makedev(7, 200))
    ob.do("stat blk", os.stat, ob.p("b"))
    ob.do("regular by mknod", os.mknod, ob.p("r"), 0o644 | stat.S_IFREG)
    ob.do("stat reg", os.stat, ob.p("r"))
    ob.do("socket by mknod", os.mknod, ob.p("s"), 0o755 | stat.S_IFSOCK)
    ob.do("stat sock", os.stat, ob.p("s"))
    ob.do("mknod existing", os.mknod, ob.p("p"), 0o644 | stat.S_IFIFO)


@case
def case_mmap(ob):
    ob.write_file("f", "f", b"\0" * 16384)

    def shared_write():
        fd = os.open(ob.p("f"), os.O_RDWR)
        try:
            m = mmap.mmap(fd, 16384)
            m[100:110] = b"via mmap!!"
            m[9000:9004] = b"page"
            m.flush()
            m.close()
            return os.pread(fd, 16384, 0)
        finally:
            os.close(fd)
    ob.do("shared mmap write", shared_write)
    ob.read_file("read back", "f")


@case
def case_tree(ob):
    """Many objects, renames of whole subtrees, removal: the inode table
    under lookups and forgets."""
    def build():
        n = 0
        for a in range(8):
            for b in range(8):
                d = ob.p(f"a{a}", f"b{b}")
                os.makedirs(d)
                for c in range(8):
                    with open(os.path.join(d, f"f{c}"), "wb") as f:
                        f.write(pattern(a * 100 + b * 10 + c, n))
                    n += 1
        return n
    ob.do("build", build)
    ob.do("rename subtree", os.rename, ob.p("a1"), ob.p("a0", "moved"))
    ob.read_file("read in moved subtree", "a0/moved/b3/f4")

    def rmtree(path):
        for dirpath, dirnames, filenames in os.walk(path, topdown=False):
            for f in filenames:
                os.unlink(os.path.join(dirpath, f))
            for d in dirnames:
                os.rmdir(os.path.join(dirpath, d))
        os.rmdir(path)
    ob.do("remove subtree", rmtree, ob.p("a2"))
    ob.do("list", lambda: sorted(os.listdir(ob.root)))


# ---- tree snapshots ----

def snapshot(root, times):
    """Everything observable of a tree but atime/ctime (mtime if times)."""
    out, first = [], {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in [None] + sorted(dirnames + filenames):
            path = dirpath if name is None else os.path.join(dirpath, name)
            if name is None and dirpath != root:
                continue
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            rec = {"path": rel, **norm_stat(st)}
            if times:
                rec["mtime_ns"] = st.st_mtime_ns
            key = (st.st_dev, st.st_ino)
            if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
                rec["link_of"] = first.setdefault(key, rel)
            if stat.S_ISREG(st.st_mode):
                fd = os.open(path, os.O_RDONLY | os.O_NOATIME)
                try:
                    m = seek_map(fd, st.st_size)
                    h = hashlib.sha256()
                    for start, end in m:
                        h.update(f"{start}:".encode())
                        off = start
                        while off < end:
                            chunk = os.pread(fd, min(MiB, end - off), off)
                            if not chunk:
                                break
                            h.update(chunk)
                            off += len(chunk)
                finally:
                    os.close(fd)
                rec["map"] = m
                rec["sha"] = h.hexdigest()[:24]
            elif stat.S_ISLNK(st.st_mode):
                rec["target"] = os.readlink(path)
            xa = {}
            for n in sorted(os.listxattr(path, follow_symlinks=False)):
                xa[n] = norm(os.getxattr(path, n, follow_symlinks=False))
            if xa:
                rec["xattrs"] = xa
            out.append(rec)
    return out


# ---- the daemon ----

def mounted(path):
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[4] == path and fields[sep + 1] == "fuse.vigil-rfs":
                return True
    return False


def wait_until(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.02)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


class Daemon:
    def __init__(self, rfs, mnt, logpath, extra=()):
        self.mnt = mnt
        self.logpath = logpath
        self.log = open(logpath, "wb")
        self.proc = subprocess.Popen([rfs, "mount", mnt, "--foreground", *extra],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(lambda: mounted(mnt) or self.proc.poll() is not None, 20,
                   f"vigil-rfs to mount {mnt}")
        if not mounted(mnt):
            raise RuntimeError(f"vigil-rfs exited {self.proc.returncode} without mounting: "
                               f"{self.output()}")

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")

    def unmount(self, timeout=60):
        cp = subprocess.run(["fusermount3", "-u", self.mnt], capture_output=True, text=True)
        if cp.returncode != 0:
            raise RuntimeError(f"fusermount3 -u {self.mnt}: {cp.stderr.strip()}")
        return self.wait(timeout)

    def wait(self, timeout=60):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"vigil-rfs still running {timeout}s after unmount")
        self.log.close()
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if mounted(self.mnt):
            subprocess.run(["fusermount3", "-uz", self.mnt], capture_output=True)
        if not self.log.closed:
            self.log.close()


def setup_base(base):
    os.umask(0o022)
    os.chmod(base, 0o755)       # the as_user cases walk into it
    plain, mnt = os.path.join(base, "plain"), os.path.join(base, "mnt")
    for d in (plain, mnt):
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
    return plain, mnt


def cmd_run(a):
    plain, mnt = setup_base(a.base)
    names = a.case or list(CASES)
    d = Daemon(a.rfs, mnt, os.path.join(a.base, "rfs.log"), ["--cache", a.cache])
    res = {"cases": {}}
    try:
        for name in names:
            obs = {}
            for side, root in (("plain", plain), ("mnt", mnt)):
                ob = Obs(os.path.join(root, name))
                os.mkdir(ob.root)
                CASES[name](ob)
                obs[side] = ob.log
            res["cases"][name] = obs
        res["tree_plain"] = snapshot(plain, times=False)
        res["tree_mnt"] = snapshot(mnt, times=False)
        res["tree_mnt_times"] = snapshot(mnt, times=True)
        res["rfs_rc"] = d.unmount()
        res["still_mounted"] = mounted(mnt)
        res["tree_backing_times"] = snapshot(mnt, times=True)
    finally:
        d.kill()
    res["rfs_output"] = d.output()
    json.dump(res, sys.stdout)


def run_rfs(rfs, *args, timeout=20):
    cp = subprocess.run([rfs, *args], capture_output=True, text=True, timeout=timeout)
    return {"rc": cp.returncode, "stderr": cp.stderr, "stdout": cp.stdout}


def cmd_refuse(a):
    plain, mnt = setup_base(a.base)
    f = os.path.join(a.base, "file")
    with open(f, "w") as fh:
        fh.write("x")
    res = {
        "missing": run_rfs(a.rfs, "mount", os.path.join(a.base, "nope"), "--foreground"),
        "file": run_rfs(a.rfs, "mount", f, "--foreground"),
        "under file": run_rfs(a.rfs, "mount", f + "/sub", "--foreground"),
        "no dir": run_rfs(a.rfs, "mount"),
        "no command": run_rfs(a.rfs),
        "bad option": run_rfs(a.rfs, "mount", mnt, "--frobnicate"),
        "bad cache": run_rfs(a.rfs, "mount", mnt, "--cache", "bogus"),
    }
    os.mkdir(os.path.join(mnt, "sub"))
    d = Daemon(a.rfs, mnt, os.path.join(a.base, "rfs.log"))
    try:
        res["fuse mount"] = run_rfs(a.rfs, "mount", mnt, "--foreground")
        res["inside fuse mount"] = run_rfs(a.rfs, "mount", os.path.join(mnt, "sub"),
                                           "--foreground")
        res["first still serves"] = os.listdir(mnt)
        res["first rc"] = d.unmount()
    finally:
        d.kill()
    json.dump(res, sys.stdout)


def cmd_sigkill(a):
    plain, mnt = setup_base(a.base)
    d = Daemon(a.rfs, mnt, os.path.join(a.base, "rfs.log"))
    res = {}
    try:
        with open(os.path.join(mnt, "kept"), "wb") as f:
            f.write(b"written before the kill")
            os.fsync(f.fileno())
        d.proc.send_signal(signal.SIGKILL)
        res["rc"] = d.proc.wait(10)
        try:
            os.stat(mnt)
            res["stat after kill"] = "ok"
        except OSError as e:
            res["stat after kill"] = errno.errorcode[e.errno]
        res["mounted after kill"] = mounted(mnt)
        cp = subprocess.run(["fusermount3", "-uz", mnt], capture_output=True, text=True)
        res["fusermount3 -uz"] = [cp.returncode, cp.stderr]
        res["mounted after cleanup"] = mounted(mnt)
        with open(os.path.join(mnt, "kept"), "rb") as f:
            res["backing file"] = f.read().decode()
    finally:
        d.kill()
    json.dump(res, sys.stdout)


def rfs_pids(rfs):
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if argv and argv[0] == os.fsencode(rfs):
                out.append(int(p))
    return out


def cmd_stop(a):
    plain, mnt = setup_base(a.base)
    res = {}
    for sig in ("SIGTERM", "SIGINT"):
        d = Daemon(a.rfs, mnt, os.path.join(a.base, "rfs.log"))
        try:
            with open(os.path.join(mnt, sig), "w") as f:
                f.write(sig)
            d.proc.send_signal(getattr(signal, sig))
            rc = d.wait(20)
            res[sig] = {"rc": rc, "mounted": mounted(mnt), "output": d.output(),
                        "file": open(os.path.join(mnt, sig)).read()}
        finally:
            d.kill()
    # Background: returns once mounted; fusermount3 -u stops it.
    r = run_rfs(a.rfs, "mount", mnt)
    r["mounted"] = mounted(mnt)
    pids = rfs_pids(a.rfs)
    r["daemons"] = len(pids)
    if r["mounted"]:
        with open(os.path.join(mnt, "bg"), "w") as f:
            f.write("bg")
        cp = subprocess.run(["fusermount3", "-u", mnt], capture_output=True, text=True)
        r["fusermount3 -u"] = cp.returncode
        try:
            wait_until(lambda: not rfs_pids(a.rfs), 20, "the background vigil-rfs to exit")
            r["exited"] = True
        except RuntimeError:
            r["exited"] = False
            for p in rfs_pids(a.rfs):
                os.kill(p, signal.SIGKILL)
            subprocess.run(["fusermount3", "-uz", mnt], capture_output=True)
        r["file"] = open(os.path.join(mnt, "bg")).read()
    res["background"] = r
    json.dump(res, sys.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["run", "refuse", "sigkill", "stop", "list"])
    ap.add_argument("--rfs")
    ap.add_argument("--base")
    ap.add_argument("--case", action="append")
    ap.add_argument("--cache", choices=["direct", "page"], default="direct")
    a = ap.parse_args()
    if a.command == "list":
        print("\n".join(CASES))
        return
    if os.getpid() != 1:
        sys.exit("fsx.py: run me as pid 1 of a private pid+mount namespace "
                 "(unshare -m --propagation private -p --fork --kill-child --mount-proc)")
    {"run": cmd_run, "refuse": cmd_refuse, "sigkill": cmd_sigkill, "stop": cmd_stop}[a.command](a)


if __name__ == "__main__":
    main()
