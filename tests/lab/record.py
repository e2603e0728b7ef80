#!/usr/bin/python3
"""A simulated VMS recording service: ffmpeg pulls each camera's RTSP stream
and records it, without re-encoding, into segment files.

    record.py start [--id ID] [--settings FILE] [--out DIR] [--segment-time S]
                    [--name NAME] [--wait S] [CAM=URL ...]
    record.py stop  [--id ID] [--timeout S]
    record.py kill  [--id ID]                  SIGKILL, as a crashed recorder
    record.py status [--id ID]                 JSON; exit 1 if not running

`record-start` and `record-stop` (symlinks to this file) are `start` and
`stop`: a vigil resource or a pool spare runs them as its start and stop
commands, no shell logic needed, e.g.

    start = /path/to/tests/lab/record-start --id rec1 --settings /var/lib/vms/settings/rec1/recorder.json
    stop  = /path/to/tests/lab/record-stop --id rec1

The settings file (JSON, what a recorder would upload to the pool master)
holds {"cameras": {"cam1": "rtsp://...", ...}, "out": DIR,
"segment_time": S}; command-line options and CAM=URL arguments override it.

`start` daemonizes a supervisor (its own session; its pid in
/run/vigil/record-ID.pid) that runs one ffmpeg per camera and restarts one
that exits (camera not announced yet: backing off to 2 s) or that wrote no
new segment for segment_time + 2.5 s (stream lost), as a VMS reconnects.
With --wait S (default 10) `start` returns once every camera has a segment
file (started = recording) and fails, leaving nothing running, if one has
none after S seconds. `stop` SIGTERMs the supervisor, which SIGTERMs its
ffmpegs (each closes its segment) and SIGKILLs what outlives 3 s.

Segments: OUT/CAM/<UTC start, ms>-<NAME>-<nnnnn>.ts, MPEG-TS (readable after
a crash), timestamps reset per segment, each packet written at once
(flush_packets) so that a killed recorder loses nothing it received. A
restarted ffmpeg starts a new name prefix: names never collide, and sort in
time order per writer.

Standard library only: it runs inside the lab's namespaces.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

RUN_DIR = "/run/vigil"
DEFAULT_OUT = "/srv/vms/recordings"
FFMPEG = "ffmpeg"
RESTART_DELAY = 0.3       # s between an ffmpeg's exit and its restart
TERM_GRACE = 3.0          # s the supervisor gives its ffmpegs after SIGTERM
STALL_AFTER = 2.5         # s past segment_time without a new segment: restart


def pidfile(rid):
    return os.path.join(RUN_DIR, f"record-{rid}.pid")


def logdir(rid):
    return os.path.join(RUN_DIR, f"record-{rid}")


def alive(pid):
    """Exists and is no zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def read_pid(rid):
    try:
        with open(pidfile(rid)) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def ffmpeg_cmd(url, out_pattern, segment_time):
    return [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "warning",
            # rtsp-server-perl relays RTP over UDP only (no interleaved TCP);
            # no data for 3 s ends the read, and the supervisor reconnects
            "-rtsp_transport", "udp", "-timeout", "3000000",
            "-analyzeduration", "500000",
            "-i", url, "-map", "0:v", "-c", "copy",
            "-f", "segment", "-segment_time", str(segment_time),
            "-segment_format", "mpegts", "-segment_format_options", "flush_packets=1",
            "-reset_timestamps", "1", out_pattern]


def segment_prefix(name):
    t = time.time()
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z-{name}"


# ------------------------------------------------------------ supervisor

def supervise(cfg):
    """Runs until SIGTERM/SIGINT: one ffmpeg per camera, restarted on exit."""
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    ldir = logdir(cfg["id"])
    os.makedirs(ldir, exist_ok=True)
    procs = {}                 # cam -> Popen
    next_start = {cam: 0.0 for cam in cfg["cameras"]}
    delay = {cam: RESTART_DELAY / 2 for cam in cfg["cameras"]}

    def spawn(cam, url):
        d = os.path.join(cfg["out"], cam)
        os.makedirs(d, exist_ok=True)
        pattern = os.path.join(d, segment_prefix(cfg["name"]) + "-%05d.ts")
        with open(os.path.join(ldir, f"{cam}.log"), "ab") as log:
            log.write(f"=== {time.strftime('%H:%M:%S')} {url} -> {pattern}\n".encode())
            log.flush()
            return subprocess.Popen(ffmpeg_cmd(url, pattern, cfg["segment_time"]),
                                    stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT)

    started = {}               # cam -> wall-clock time its ffmpeg started
    stall = cfg["segment_time"] + STALL_AFTER
    while not stop:
        now = time.monotonic()
        for cam, url in cfg["cameras"].items():
            p = procs.get(cam)
            if p is not None and p.poll() is None and _stalled(cfg, cam, started[cam], stall):
                p.kill()       # its segment is on disk already (flush_packets)
                p.wait()
            if p is not None and p.poll() is not None:
                procs.pop(cam)
                # quick failures (camera not announced) back off to 2 s
                quick = time.time() - started[cam] < 2.0
                delay[cam] = min(2.0, delay[cam] * 2) if quick else RESTART_DELAY
                next_start[cam] = now + delay[cam]
            if cam not in procs and now >= next_start[cam]:
                procs[cam] = spawn(cam, url)
                started[cam] = time.time()
        time.sleep(0.1)

    for p in procs.values():
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + TERM_GRACE
    for p in procs.values():
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return 0


def _stalled(cfg, cam, started, stall):
    """No new segment file for `stall` s: the stream is lost. ffmpeg itself
    notices a silent RTSP/UDP stream only after 10 s; a recorder watches its
    files, as a VMS watches its streams. The directory's mtime changes with
    each new segment, so this costs one stat."""
    try:
        last = max(os.stat(os.path.join(cfg["out"], cam)).st_mtime, started)
    except OSError:
        last = started
    return time.time() - last > stall


# -------------------------------------------------------------- commands

def load_config(a):
    cfg = {"cameras": {}, "out": DEFAULT_OUT, "segment_time": 1}
    if a.settings:
        path = a.settings
        if os.path.isdir(path):
            path = os.path.join(path, "recorder.json")
        with open(path) as f:
            doc = json.load(f)
        cfg.update({k: doc[k] for k in ("cameras", "out", "segment_time") if k in doc})
    for arg in a.cams:
        cam, sep, url = arg.partition("=")
        if not sep or not cam or not url or "/" in cam:
            raise SystemExit(f"record: bad camera {arg!r}: use NAME=URL")
        cfg["cameras"][cam] = url
    if a.out:
        cfg["out"] = a.out
    if a.segment_time:
        cfg["segment_time"] = a.segment_time
    if not cfg["cameras"]:
        raise SystemExit("record: no cameras (give CAM=URL arguments or --settings)")
    if any("%" in c or "/" in c for c in cfg["cameras"]) or "%" in a.name:
        raise SystemExit("record: camera and recorder names must not contain '%' or '/'")
    cfg["id"] = a.id
    cfg["name"] = a.name
    return cfg


def cmd_start(a):
    cfg = load_config(a)
    pid = read_pid(a.id)
    if pid and alive(pid):
        print(f"record {a.id}: already running (pid {pid})")
        return 0
    os.makedirs(RUN_DIR, exist_ok=True)
    os.makedirs(cfg["out"], exist_ok=True)
    before = {cam: set(_ls(os.path.join(cfg["out"], cam))) for cam in cfg["cameras"]}
    with open(os.path.join(RUN_DIR, f"record-{a.id}.log"), "ab") as log:
        p = subprocess.Popen([sys.executable, os.path.realpath(__file__), "_run",
                              json.dumps(cfg)], stdin=subprocess.DEVNULL, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
    with open(pidfile(a.id) + ".tmp", "w") as f:
        f.write(f"{p.pid}\n")
    os.replace(pidfile(a.id) + ".tmp", pidfile(a.id))
    if a.wait <= 0:
        return 0
    deadline = time.monotonic() + a.wait
    while True:
        missing = [cam for cam in cfg["cameras"]
                   if not set(_ls(os.path.join(cfg["out"], cam))) - before[cam]]
        if not missing:
            return 0
        if p.poll() is not None or time.monotonic() > deadline:
            _kill_group(p.pid)
            os.unlink(pidfile(a.id))
            print(f"record {a.id}: no segment after {a.wait:g}s for {', '.join(missing)} "
                  f"(logs in {logdir(a.id)}); stopped", file=sys.stderr)
            return 1
        time.sleep(0.05)


def _ls(d):
    try:
        return [n for n in os.listdir(d) if n.endswith(".ts")]
    except FileNotFoundError:
        return []


def _kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def cmd_stop(a):
    pid = read_pid(a.id)
    if pid is None or not alive(pid):
        _unlink(pidfile(a.id))
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + a.timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    rc = 0
    if alive(pid):
        print(f"record {a.id}: still running {a.timeout:g}s after SIGTERM; killed",
              file=sys.stderr)
        rc = 1
    _kill_group(pid)          # whatever is left of the group
    _unlink(pidfile(a.id))
    return rc


def cmd_kill(a):
    pid = read_pid(a.id)
    if pid is not None:
        _kill_group(pid)
    return 0


def cmd_status(a):
    pid = read_pid(a.id)
    up = bool(pid and alive(pid))
    print(json.dumps({"id": a.id, "pid": pid, "running": up}))
    return 0 if up else 1


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_run"]:
        return supervise(json.loads(argv[1]))
    prog = os.path.basename(sys.argv[0])
    if prog in ("record-start", "record-stop"):
        argv.insert(0, prog.split("-", 1)[1])
    ap = argparse.ArgumentParser(prog="record.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start")
    s.add_argument("--settings", help="JSON settings file (or a directory with recorder.json)")
    s.add_argument("--out", help=f"output directory (default {DEFAULT_OUT})")
    s.add_argument("--segment-time", type=float, help="segment length in seconds (default 1)")
    s.add_argument("--name", default=os.uname().nodename,
                   help="this recorder's name, in every segment's file name")
    s.add_argument("--wait", type=float, default=10.0,
                   help="seconds to wait for a segment of every camera (0: return at once)")
    s.add_argument("cams", nargs="*", metavar="CAM=URL")
    for name in ("stop", "kill", "status"):
        p = sub.add_parser(name)
        if name == "stop":
            p.add_argument("--timeout", type=float, default=10.0)
    for p in sub.choices.values():
        p.add_argument("--id", default="default", help="instance name (several may run)")
    a = ap.parse_args(argv)
    if "/" in a.id or not a.id:
        ap.error("--id: a plain name")
    return {"start": cmd_start, "stop": cmd_stop, "kill": cmd_kill,
            "status": cmd_status}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
