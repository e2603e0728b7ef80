"""A recording pool in the lab (docs/pool.md): node1 is the master (a
mirror node whose peer never comes, so it runs ALONE), the other nodes are
recorders and spares running vigild in their [pool] role, and a camera
host serves RTSP cameras (cameras.py). Recorders and spares record with
tests/lab/record-start/record-stop, so "recording goes on" is checked on
real segment files.

    pool = Pool(lab, recorders={2: ("north", "south"), 3: ("north", "")},
                spares={5: "north"}, cameras=2)
    pool.start()
    pool.status()            # vigilctl pool status --json on the master
"""

import hashlib
import json
import os
import time

import lab as labmod
from cameras import Cameras, Recorder

LAB_DIR = os.path.dirname(os.path.abspath(__file__))
RECORD_START = os.path.join(LAB_DIR, "record-start")
RECORD_STOP = os.path.join(LAB_DIR, "record-stop")
RECORD_PY = os.path.join(LAB_DIR, "record.py")
PORT = 4810
SETTINGS = "/var/lib/vms/settings"
RECORDINGS = "/var/lib/vms/recordings"
CONF = "/etc/vigil/vigil.conf"
FAIL_START = "/var/lib/vigil/fail-start"
KEEP_STOPPED = "/var/lib/vigil/keep-stopped"


def master_config(lab, detect_ms=2000, heartbeat_ms=500, failback="auto", after="failback", extra=""):
    """extra: more [pool] keys (the section is the last)."""
    m = lab.node(1)
    return labmod._ini([
        ("cluster", {"name": "pool", "secret_file": "/etc/vigil/secret",
                     "state_dir": "/var/lib/vigil", "run_dir": "/run/vigil"}),
        (f"node {m.name}", {"address": m.addr()}),
        # the mirror peer of the master is not part of these tests: it never
        # answers, so node1 runs the service ALONE
        ("node mirror", {"address": "10.0.0.99"}),
        ("heartbeat", {"port": labmod.HB_PORT, "interval_ms": 100, "timeout_ms": 600}),
        ("pool", {"role": "master", "listen": f"{m.addr()}:{PORT}",
                  "detect_timeout_ms": detect_ms, "heartbeat_ms": heartbeat_ms,
                  "failback": failback, "after_failure": after}),
    ]) + extra


# The recording service's commands, as a VMS would ship them. FAIL_START,
# when present, makes the service unable to start (the watchdog's failure).
START_SH = f"""#!/bin/sh
if [ -e {FAIL_START} ]; then echo 'cannot start: {FAIL_START} exists' >&2; exit 1; fi
exec {RECORD_START} --id "$VIGIL_POOL_RECORDER" --settings "$VIGIL_POOL_SETTINGS" \\
    --out "$VIGIL_POOL_RECORDINGS" --name "$VIGIL_POOL_NAME" --wait 15
"""
# With KEEP_STOPPED present, a spare's stop keeps a copy of what it recorded
# for the recorder (/var/lib/vigil/stopped/RECORDER): what the copy-back
# must bring home, file for file.
STOP_SH = f"""#!/bin/sh
{RECORD_STOP} --id "$VIGIL_POOL_RECORDER" || exit 1
if [ -e {KEEP_STOPPED} ] && [ "$VIGIL_POOL_ROLE" = spare ]; then
    rm -rf "/var/lib/vigil/stopped/$VIGIL_POOL_RECORDER"
    mkdir -p /var/lib/vigil/stopped
    cp -a "$VIGIL_POOL_RECORDINGS" "/var/lib/vigil/stopped/$VIGIL_POOL_RECORDER"
fi
"""
CHECK_SH = f"""#!/bin/sh
exec {RECORD_PY} status --id "$VIGIL_POOL_RECORDER" >/dev/null
"""


def member_config(lab, k, role, group, secondary="", check=True, copy_port=4811):
    kv = {"role": role, "name": lab.node(k).name, "master": f"{lab.node(1).addr()}:{PORT}",
          "group": group, "settings_dir": SETTINGS, "recordings_dir": RECORDINGS,
          "start": "/etc/vigil/pool-start", "stop": "/etc/vigil/pool-stop", "script_timeout_ms": 30000}
    if role == "recorder":
        kv["copy_port"] = copy_port
        if secondary:
            kv["secondary_group"] = secondary
        if check:
            # the watchdog: is the recording service running?
            kv["check"] = "/etc/vigil/pool-check"
    return labmod._ini([("cluster", {"state_dir": "/var/lib/vigil", "run_dir": "/run/vigil"}),
                        ("pool", kv)])


class Pool:
    def __init__(self, lab, recorders, spares, cameras=2, master_kw=None, small_disk=()):
        self.lab = lab
        self.recorders = dict(recorders)       # k -> (group, secondary)
        self.spares = dict(spares)             # k -> group
        self.cams = Cameras(lab, cameras * len(self.recorders))
        names = list(self.cams.urls())
        # each recorder has its own cameras
        self.cam_of = {}
        for i, k in enumerate(sorted(self.recorders)):
            self.cam_of[k] = {n: self.cams.urls()[n] for n in names[i * cameras:(i + 1) * cameras]}
        self.master_kw = master_kw or {}
        self.small_disk = set(small_disk)       # nodes whose recordings_dir is a 16 MiB tmpfs

    def name(self, k):
        return self.lab.node(k).name

    # ---- setup -------------------------------------------------------
    def write(self):
        lab = self.lab
        lab.write_config(1, master_config(lab, **self.master_kw))
        lab.write_secret(1, os.urandom(32).hex().encode())
        lab.vigilctl(1, "pki")
        m = lab.node(1)
        for k in list(self.recorders) + list(self.spares):
            lab.vigilctl(1, "pki", "member", self.name(k))
            n = lab.node(k)
            for f in ("cacert.crt", f"{n.name}.crt", f"{n.name}.key"):
                n.write_file(f"/etc/vigil/pki/{f}", m.read_file(f"/etc/vigil/pki/{f}", binary=True),
                             0o600 if f.endswith(".key") else 0o644)
        for k in list(self.recorders) + list(self.spares):
            n = lab.node(k)
            n.write_file("/etc/vigil/pool-start", START_SH, 0o755)
            n.write_file("/etc/vigil/pool-stop", STOP_SH, 0o755)
            n.write_file("/etc/vigil/pool-check", CHECK_SH, 0o755)
        for k, (group, secondary) in self.recorders.items():
            lab.write_config(k, member_config(lab, k, "recorder", group, secondary))
            settings = json.dumps({"cameras": self.cam_of[k], "segment_time": 1}, indent=1) + "\n"
            lab.node(k).write_file(f"{SETTINGS}/recorder.json", settings)
            lab.node(k).write_file(f"{SETTINGS}/schedules/always.txt", "00:00-24:00 record\n")
        for k, group in self.spares.items():
            lab.write_config(k, member_config(lab, k, "spare", group))

    def start(self, wait=True):
        self.write()
        for k in self.small_disk:
            n = self.lab.node(k)
            n.run(["mkdir", "-p", RECORDINGS])
            # inside the node's own mount namespace: gone with the lab
            n.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", RECORDINGS])
        self.lab.start_vigild(1)
        for k in list(self.recorders) + list(self.spares):
            self.lab.start_vigild(k)
        if wait:
            self.wait(lambda st: all(r["state"] == "OK" for r in st["recorders"]) and
                      all(s["state"] == "FREE" for s in st["spares"]) and
                      len(st["recorders"]) == len(self.recorders) and
                      len(st["spares"]) == len(self.spares) and
                      all(r["settings"]["files"] == 2 for r in st["recorders"]),
                      timeout=40, what="every recorder OK with its settings, every spare FREE")
            # (a small disk is a mount inside the node: not seen from here)
            for k in set(self.recorders) - self.small_disk:
                self.recorder(k).wait_segments(2, timeout=20)

    # ---- views -------------------------------------------------------
    def status(self):
        return self.lab.vigilctl(1, "pool", "status", json=True)

    def log(self):
        return self.lab.vigilctl(1, "pool", "log", json=True)["log"]

    def rec(self, st, k):
        return next(r for r in st["recorders"] if r["name"] == self.name(k))

    def spare(self, st, k):
        return next(s for s in st["spares"] if s["name"] == self.name(k))

    def wait(self, pred, timeout=20, what="pool state"):
        last = {}

        def check():
            try:
                last["st"] = self.status()
            except labmod.LabError:
                return False
            return pred(last["st"])
        try:
            labmod.wait_for(check, timeout, interval=0.2, what=what)
            return last["st"]
        except labmod.LabError as e:
            raise labmod.LabError(f"{e}; last status: {json.dumps(last.get('st'))}") from None

    def recorder(self, k):
        """The segments a recorder writes itself."""
        return Recorder(self.lab, k, self.cam_of[k], out_dir=RECORDINGS, rid=self.name(k))

    def serving(self, spare_k, rec_k):
        """The segments spare_k writes in rec_k's place."""
        return Recorder(self.lab, spare_k, self.cam_of[rec_k], out_dir=f"{RECORDINGS}/{self.name(rec_k)}",
                        rid=self.name(rec_k))

    # ---- faults --------------------------------------------------------
    def crash(self, k):
        """The machine dies: every process (vigild and the recording) and
        its links. Returns the wall-clock time."""
        t = time.time()
        self.lab.node(k).kill()
        return t

    def fill_disk(self, k):
        """The recording disk of a small_disk node runs out: every write
        fails (ENOSPC), the recording and the disk probe alike."""
        self.lab.node(k).run(["sh", "-c", f"dd if=/dev/zero of={RECORDINGS}/fill bs=1M 2>/dev/null; "
                                          f"dd if=/dev/zero of={RECORDINGS}/fill2 bs=4k 2>/dev/null; true"])

    def keep_stopped(self, k):
        self.lab.node(k).write_file(KEEP_STOPPED, "")

    def files(self, k, path):
        """{relative path: sha256} of every file under path on node k."""
        root = self.lab.node(k).host_path(path)
        out = {}
        for dirpath, _, names in os.walk(root):
            for n in names:
                p = os.path.join(dirpath, n)
                with open(p, "rb") as f:
                    out[os.path.relpath(p, root)] = hashlib.sha256(f.read()).hexdigest()
        return out

    def break_start(self, k, broken=True):
        if broken:
            self.lab.node(k).write_file(FAIL_START, "")
        else:
            self.lab.node(k).host_path(FAIL_START).unlink(missing_ok=True)

    def revive(self, k):
        self.lab.node(k).revive()
        self.lab.start_vigild(k)
