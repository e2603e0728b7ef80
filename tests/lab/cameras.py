#!/usr/bin/env python3
"""A realistic recording workload for the lab: simulated IP cameras and
ffmpeg recorders (issue 6, the pool of recording servers).

Cameras(lab, n)      a camera host (lab.add_host) running an RTSP server,
                     `rtsp-server-perl` (Debian), and n cameras: each an
                     ffmpeg encoding a test pattern (testsrc2, 320x240,
                     10 fps, H.264 ultrafast, one keyframe a second) and
                     publishing it to the server (ANNOUNCE/RECORD on
                     127.0.0.1:5545). Recorders PULL rtsp://ADDR/camI, as VMS
                     recorders pull from cameras; any number of clients at
                     once, and a new one (a spare after a killed recorder)
                     is served at once: the encoders never restart.
                     start() returns once a client on the camera host got
                     a video packet from each (silent() names those that
                     send none; one is restarted with the camera host).
Recorder(lab, k, cameras, out_dir)
                     tests/lab/record.py on node k (inside its network and
                     mount namespaces): one ffmpeg per camera recording it,
                     codec copied, to 1 s MPEG-TS segments under out_dir
                     (default /srv/vms/recordings, private to the node);
                     start(), stop(), kill() (SIGKILL, a crashed recorder),
                     segments() with size, mtime, sha256 and the time span
                     each covers (ffprobe).
recording_gap(old, new)
                     the gap between the last segment one recorder wrote and
                     the first another wrote (the pool's failover benchmark).

Every process runs in one of the lab's network namespaces, so the lab's
cleanup kills it (also when a test fails); the camera processes are also
the lab's tracked Popens.

Why rtsp-server-perl: ffmpeg has no RTSP server (its rtsp muxer pushes to
one; `-rtsp_flags listen` receives), and its HTTP `-listen 1` serves one
client per process, so a spare connecting while the old recorder's socket
lingers, or a viewer next to the recorder, would need a restart loop and
lose the first seconds. rtsp-server-perl relays each published stream to
many RTSP clients (RTP over UDP only: recorders use -rtsp_transport udp).
"""

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lab as labmod  # noqa: E402
from lab import LabError, wait_for  # noqa: E402
from record import alive  # noqa: E402

HERE = Path(__file__).resolve().parent
RECORD_PY = HERE / "record.py"
CAMERAS_PY = Path(__file__).resolve()
RTSP_SERVER = "rtsp-server-perl"
SOURCE_PORT = 5545          # where the cameras publish (127.0.0.1 of the camera host)
DEFAULT_CAM_ADDR = "10.0.0.60"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# one colour per camera, drawn as a square on the test pattern so that no
# two cameras give the same bytes
COLOURS = ["red", "green", "blue", "yellow", "cyan", "magenta", "white", "black",
           "orange", "purple"]


def proc_cpu_seconds(pid):
    """user + system CPU seconds of a live process (0.0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def _terminate(proc, timeout=5):
    """SIGTERM, then SIGKILL after timeout s; True if it had to be killed."""
    if proc.poll() is not None:
        return False
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
        return False
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return True


def _pgid_members(pgid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] != "Z":
                    out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


def ffmpeg_pids():
    """Every live ffmpeg/ffprobe process on the machine (any namespace)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/comm") as f:
                    comm = f.read().strip()
                with open(f"/proc/{d}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if comm in ("ffmpeg", "ffprobe") and state != "Z":
                out.append(int(d))
    return out


# ------------------------------------------------------------------ cameras

@dataclass
class Camera:
    name: str
    url: str                                 # what recorders pull
    publish_url: str                         # where the encoder pushes
    proc: object = None                      # the encoder's Popen

    def cpu_seconds(self):
        return proc_cpu_seconds(self.proc.pid) if self.proc else 0.0


class Cameras:
    """n simulated cameras on one camera host; see the module doc."""

    def __init__(self, lab, n, host="cams", addr=DEFAULT_CAM_ADDR, net=0, port=554,
                 size="320x240", fps=10, gop=None, start=True, timeout=15.0):
        if not 1 <= n <= 99:
            raise ValueError(f"n={n}: 1..99 cameras")
        self.lab = lab
        self.n = n
        self.addr = addr
        self.port = port
        self.size = size
        self.fps = fps
        self.gop = gop or fps                # one keyframe a second
        self.host = lab.hosts.get(host) or lab.add_host(host, addr, net)
        self.dir = lab.dir / host
        self.dir.mkdir(exist_ok=True)
        self.server = None
        self.restarts = 0                    # camera host restarts by start()
        hostport = addr if port == 554 else f"{addr}:{port}"
        self.cameras = [Camera(f"cam{i}", f"rtsp://{hostport}/cam{i}",
                               f"rtsp://127.0.0.1:{SOURCE_PORT}/cam{i}")
                        for i in range(1, n + 1)]
        if start:
            self.start(timeout)

    def __iter__(self):
        return iter(self.cameras)

    def __len__(self):
        return len(self.cameras)

    def __getitem__(self, name):
        for c in self.cameras:
            if c.name == name:
                return c
        raise KeyError(name)

    def urls(self):
        """{camera name: RTSP URL}."""
        return {c.name: c.url for c in self.cameras}

    def _log(self, name):
        return open(self.dir / f"{name}.log", "ab")

    def start(self, timeout=15.0, _retry=True):
        if self.server is None or self.server.poll() is not None:
            with self._log("rtsp-server") as log:
                self.server = self.host.popen(
                    [RTSP_SERVER, "--clientport", self.port, "--serverport", SOURCE_PORT,
                     "--source_listen_address", "127.0.0.1", "--loglevel", "1"],
                    stdout=log, stderr=subprocess.STDOUT)
            wait_for(self._server_listening, timeout, interval=0.05,
                     what=f"{RTSP_SERVER} to listen on :{self.port} and :{SOURCE_PORT} "
                          f"(log {self.dir / 'rtsp-server.log'})")
        for i, c in enumerate(self.cameras):
            if c.proc is None or c.proc.poll() is not None:
                self._start_camera(i, c)
        self.wait_ready(timeout)
        silent = self.silent()
        if silent:
            # A camera that answers DESCRIBE but sends nothing would fail the
            # test that uses it, for a reason that is not the test's: restart
            # the camera host once, and say so.
            if _retry:
                print(f"cameras: {', '.join(silent)} answered DESCRIBE but sent no video; "
                      f"restarting the camera host (logs in {self.dir})", file=sys.stderr)
                self.restarts += 1
            self.stop()
            self.server = None
            for c in self.cameras:
                c.proc = None
            if not _retry:
                raise LabError(f"cameras {', '.join(silent)} send no video, even after a "
                               f"restart of the camera host (logs in {self.dir})")
            return self.start(timeout, _retry=False)
        return self

    def silent(self, timeout=4.0):
        """The cameras from which a client on the camera host gets no video
        packet within `timeout` s (all are pulled at once)."""
        pulls = {}
        for c in self.cameras:
            pulls[c.name] = self.host.popen(
                ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
                 "-rtsp_transport", "udp", "-timeout", "3000000",
                 "-analyzeduration", "100000", "-probesize", "32768",
                 "-i", f"rtsp://127.0.0.1:{self.port}/{c.name}",
                 "-map", "0:v", "-frames:v", "1", "-c", "copy", "-f", "null", "-"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        out = []
        for name, p in pulls.items():
            try:
                if p.wait(timeout=max(0.1, deadline - time.monotonic())) != 0:
                    out.append(name)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                out.append(name)
        return out

    def _server_listening(self):
        if self.server.poll() is not None:
            raise LabError(f"{RTSP_SERVER} exited with {self.server.returncode}")
        out = self.host.run(["ss", "-Hltn"]).stdout
        return all(re.search(rf":{p}\s", out) for p in (self.port, SOURCE_PORT))

    def _start_camera(self, i, c):
        colour = COLOURS[i % len(COLOURS)]
        w = 16
        vf = (f"drawbox=x={8 + (i % 16) * w}:y=8:w={w}:h={w}:color={colour}:t=fill")
        with self._log(c.name) as log:
            c.proc = self.host.popen(
                ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning", "-re",
                 "-f", "lavfi", "-i", f"testsrc2=size={self.size}:rate={self.fps}",
                 "-vf", vf, "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
                 "-threads", "1", "-g", str(self.gop), "-pix_fmt", "yuv420p",
                 "-f", "rtsp", "-muxdelay", "0.1", c.publish_url],
                stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout=15.0):
        """Waits until the server answers DESCRIBE for every camera (each
        encoder has announced its stream)."""
        cp = self.host.run([labmod.PYTHON, "-S", str(CAMERAS_PY), "describe",
                            "--timeout", str(timeout),
                            *[f"rtsp://127.0.0.1:{self.port}/{c.name}" for c in self.cameras]],
                           check=False, timeout=timeout + 10)
        if cp.returncode != 0:
            dead = [c.name for c in self.cameras if c.proc.poll() is not None]
            raise LabError(f"cameras not served after {timeout:g}s: {cp.stdout.strip()} "
                           f"{cp.stderr.strip()}; exited encoders: {dead or 'none'} "
                           f"(logs in {self.dir})")

    def stop_camera(self, name):
        """Stops one camera's encoder (a camera lost); start() brings it back.

        SIGTERM: ffmpeg then sends TEARDOWN, which is what frees the mount
        point in rtsp-server-perl. An encoder that dies without it (SIGKILL)
        leaves the mount behind, and the server refuses the camera's next
        ANNOUNCE (403) until the server itself restarts."""
        c = self[name]
        if c.proc and _terminate(c.proc):
            raise LabError(f"{name}: encoder ignored SIGTERM; killed (its mount "
                           f"point stays in use until the RTSP server restarts)")

    def stop(self):
        for c in self.cameras:
            self.stop_camera(c.name)
        if self.server:
            _terminate(self.server)

    def pids(self):
        out = [c.proc.pid for c in self.cameras if c.proc and c.proc.poll() is None]
        if self.server and self.server.poll() is None:
            out.append(self.server.pid)
        return out

    def cpu_seconds(self):
        """{camera name: CPU seconds of its encoder, "server": the RTSP server's}."""
        out = {c.name: c.cpu_seconds() for c in self.cameras}
        out["server"] = proc_cpu_seconds(self.server.pid) if self.server else 0.0
        return out


# ----------------------------------------------------------------- segments

@dataclass
class Segment:
    camera: str
    name: str
    path: str                 # as the node sees it
    host_path: Path           # the same file from the host
    size: int
    mtime_ns: int             # CLOCK_REALTIME of the last write: the segment's end
    duration: float = None    # media seconds (ffprobe), None if not probed
    sha256: str = None
    probe: dict = field(default=None, repr=False)

    @property
    def end(self):
        """Wall-clock time (s) of the segment's last frame: its last write
        (each packet is flushed as it arrives)."""
        return self.mtime_ns / 1e9

    @property
    def start(self):
        """Wall-clock time (s) its first frame arrived: end - duration."""
        if self.duration is None:
            raise ValueError(f"{self.path}: not probed")
        return self.end - self.duration


def probe(path):
    """ffprobe of a video file: {"codec", "width", "height", "duration",
    "packets"}; raises LabError if ffprobe finds no video stream."""
    cp = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
                         "-show_entries",
                         "stream=codec_name,width,height,nb_read_packets,r_frame_rate"
                         ":format=duration", "-of", "json", str(path)],
                        capture_output=True, text=True, timeout=30)
    try:
        doc = json.loads(cp.stdout)
        st = doc["streams"][0]
    except (ValueError, KeyError, IndexError) as e:
        raise LabError(f"ffprobe {path}: no video stream (exit {cp.returncode}): "
                       f"{cp.stderr.strip()}") from e
    packets = int(st.get("nb_read_packets") or 0)
    num, _, den = st.get("r_frame_rate", "0/1").partition("/")
    fps = float(num) / float(den or 1) if float(den or 1) else 0.0
    dur = doc.get("format", {}).get("duration")
    # an N/A duration (a segment cut short by a crash) is its frame count
    duration = float(dur) if dur not in (None, "N/A") else (packets / fps if fps else 0.0)
    return {"codec": st.get("codec_name"), "width": st.get("width"),
            "height": st.get("height"), "packets": packets, "fps": fps,
            "duration": duration}


def decodes(path):
    """True if ffmpeg decodes the whole file without an error."""
    cp = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"],
                        capture_output=True, text=True, timeout=60)
    return cp.returncode == 0 and not cp.stderr.strip()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def list_segments(node, out_dir, cameras=None, probe_them=True, checksum=True):
    """{camera: [Segment]} under out_dir on `node` (a lab Node; out_dir under
    one of its private directories, read from the host), each list in time
    order (file name: writer's start time, then number)."""
    root = node.host_path(out_dir)
    out = {}
    cams = cameras if cameras is not None else \
        (sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else [])
    for cam in cams:
        segs = []
        d = root / cam
        names = sorted(p.name for p in d.iterdir() if p.name.endswith(".ts")) \
            if d.is_dir() else []
        for name in names:
            hp = d / name
            try:
                st = hp.stat()
            except FileNotFoundError:
                continue
            s = Segment(cam, name, os.path.join(out_dir, cam, name), hp, st.st_size,
                        st.st_mtime_ns)
            if probe_them and st.st_size:
                try:
                    s.probe = probe(hp)
                    s.duration = s.probe["duration"]
                except LabError:
                    s.probe = None
            if checksum:
                s.sha256 = sha256_file(hp)
            segs.append(s)
        out[cam] = segs
    return out


def recording_gap(old, new):
    """Seconds between the end of the last segment in `old` (the failed
    recorder's, of one camera) and the start of the first in `new` (the
    spare's, same camera): new[0].start - old[-1].end. Segments must be
    probed. Negative if they overlap."""
    if not old or not new:
        raise ValueError("recording_gap: need segments on both sides")
    last = max(old, key=lambda s: s.end)
    first = min((s for s in new if s.duration), key=lambda s: s.start)
    return first.start - last.end


def recording_gaps(old, new):
    """{camera: gap} for every camera in both {camera: [Segment]} maps."""
    return {cam: recording_gap(old[cam], new[cam]) for cam in old
            if old.get(cam) and new.get(cam)}


def internal_gaps(segs, tolerance=0.25):
    """[(a, b, gap)] where one writer's consecutive segments leave more than
    `tolerance` s uncovered (a recorder that lost its stream)."""
    out = []
    for a, b in zip(segs, segs[1:]):
        if a.duration is not None and b.duration is not None:
            g = b.start - a.end
            if g > tolerance:
                out.append((a.name, b.name, g))
    return out


# ----------------------------------------------------------------- recorder

class Recorder:
    """tests/lab/record.py on one node: see the module doc.

    node: a node number or a Node (segments are read from the host through
    its private directories: out_dir must be under one). cameras:
    a Cameras, a {name: url} dict or [(name, url)]. rid: the instance name
    (a spare serving two recorders runs two). name: the writer's name in
    every segment file name (default: the node's name)."""

    def __init__(self, lab, node, cameras, out_dir="/srv/vms/recordings",
                 segment_time=1, rid="rec", name=None):
        self.lab = lab
        self.node = lab.node(node) if isinstance(node, int) else node
        if isinstance(cameras, Cameras):
            cameras = cameras.urls()
        self.cameras = dict(cameras)
        self.out_dir = out_dir
        self.segment_time = segment_time
        self.rid = rid
        self.name = name or self.node.name
        self.started_at = None
        self.stopped_at = None

    def settings(self):
        """The JSON a recorder would upload as its settings (record.py
        start --settings FILE reads it)."""
        return json.dumps({"cameras": self.cameras, "out": self.out_dir,
                           "segment_time": self.segment_time}, indent=1) + "\n"

    def command(self, action, *extra):
        """The argv that runs `record.py ACTION` for this instance."""
        args = [labmod.PYTHON, str(RECORD_PY), action, "--id", self.rid]
        if action == "start":
            args += ["--out", self.out_dir, "--segment-time", str(self.segment_time),
                     "--name", self.name]
        return args + [str(e) for e in extra] + (
            [f"{k}={v}" for k, v in self.cameras.items()] if action == "start" else [])

    def start(self, wait=10.0):
        """Starts recording; with wait > 0 returns once every camera has a
        segment file (LabError if not within `wait` s)."""
        if hasattr(self.node, "ensure_private_mounts"):
            self.node.ensure_private_mounts()
        self.started_at = time.time()
        self.node.run(self.command("start", "--wait", wait), timeout=wait + 15)
        return self

    def stop(self, timeout=10.0):
        """SIGTERM: every ffmpeg closes its segment; LabError if it had to
        SIGKILL."""
        self.node.run(self.command("stop", "--timeout", timeout), timeout=timeout + 15)
        self.stopped_at = time.time()

    def pid(self):
        try:
            text = self._host_file(f"/run/vigil/record-{self.rid}.pid").read_text()
            return int(text.split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _host_file(self, path):
        return self.node.host_path(path)

    def pids(self):
        """The supervisor and its ffmpegs (one process group)."""
        pid = self.pid()
        return _pgid_members(pid) if pid else []

    def running(self):
        return bool(self.pids())

    def kill(self):
        """SIGKILL the supervisor and every ffmpeg at once: a crashed
        recording service. Returns the wall-clock time of the kill."""
        pid = self.pid()
        t = time.time()
        if pid:
            try:
                os.killpg(pid, 9)
            except ProcessLookupError:
                pass
            wait_for(lambda: not _pgid_members(pid), 5, what=f"{self.rid} to die")
        self.stopped_at = t
        return t

    def cpu_seconds(self):
        return sum(proc_cpu_seconds(p) for p in self.pids())

    def segments(self, probe_them=True, checksum=True):
        """{camera: [Segment]} in time order (this writer's and any other's
        in the same out_dir)."""
        return list_segments(self.node, self.out_dir, list(self.cameras), probe_them, checksum)

    def count(self):
        """{camera: number of segment files} (cheap: no probe, no checksum)."""
        return {cam: len(v) for cam, v in self.segments(False, False).items()}

    def wait_segments(self, n, timeout=15.0):
        """Waits until every camera has at least n segment files."""
        return wait_for(lambda: min(self.count().values()) >= n, timeout, interval=0.1,
                        what=f"{n} segments per camera on {self.node.name} "
                             f"(have {self.count()})")

    def log(self, cam):
        try:
            return self._host_file(f"/run/vigil/record-{self.rid}/{cam}.log").read_text()
        except OSError:
            return ""


# ---------------------------------------------------------------- CLI

def describe(url, timeout=1.0):
    """The RTSP status code of DESCRIBE url (None if no answer)."""
    m = re.match(r"rtsp://([^/:]+)(?::(\d+))?/", url)
    if not m:
        raise ValueError(f"{url}: not rtsp://HOST[:PORT]/PATH")
    try:
        with socket.create_connection((m.group(1), int(m.group(2) or 554)), timeout) as s:
            s.sendall(f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n"
                      .encode())
            line = s.makefile("rb").readline().decode(errors="replace").split()
            return int(line[1]) if len(line) >= 2 and line[0].startswith("RTSP/") else None
    except (OSError, ValueError):
        return None


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description="camera helpers run inside the lab's namespaces")
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("describe", help="wait until every URL answers DESCRIBE with 200")
    d.add_argument("--timeout", type=float, default=10.0)
    d.add_argument("urls", nargs="+")
    a = ap.parse_args(argv)
    deadline = time.monotonic() + a.timeout
    pending = list(a.urls)
    while pending:
        pending = [u for u in pending if describe(u) != 200]
        if not pending:
            break
        if time.monotonic() > deadline:
            print("not served: " + " ".join(pending))
            return 1
        time.sleep(0.1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
