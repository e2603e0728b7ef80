"""The pool's recording workload (tests/lab/cameras.py, record.py): real
cameras served over RTSP from a camera host, real ffmpeg recorders on the
nodes, real segment files. No vigild needed."""

import json
import time

import cameras as camsmod
from cameras import Cameras, Recorder, recording_gaps, internal_gaps


def assert_valid(seg):
    assert seg.size > 0, seg
    assert seg.probe is not None, f"{seg.path}: ffprobe finds no video"
    assert seg.probe["codec"] == "h264" and (seg.probe["width"], seg.probe["height"]) == \
        (320, 240), seg.probe
    assert seg.probe["packets"] > 0 and seg.duration > 0, seg.probe


def test_record_kill_and_take_over(netlab, capsys):
    cams = Cameras(netlab, 3)
    assert len(cams) == 3 and cams["cam1"].url == "rtsp://10.0.0.60/cam1"

    rec1 = Recorder(netlab, 1, cams)
    t0 = time.time()
    rec1.start()                       # returns once every camera has a segment
    cpu0 = cams.cpu_seconds()
    rec1.wait_segments(3, timeout=10)
    first = rec1.segments()
    rec1.wait_segments(5, timeout=10)
    later = rec1.segments()
    for cam in cams.urls():
        assert len(later[cam]) > len(first[cam]), (cam, first[cam], later[cam])
        # complete segments (all but the one being written): valid video,
        # about segment_time long, one after the other without a hole
        done = later[cam][:-1]
        for s in done:
            assert_valid(s)
            assert 0.5 <= s.duration <= 2.5, s
        assert not internal_gaps(done), internal_gaps(done)
        assert len({s.sha256 for s in done}) == len(done)
    # the cameras are distinct streams: no segment is byte-identical across them
    shas = [s.sha256 for segs in later.values() for s in segs[:-1]]
    assert len(shas) == len(set(shas))
    assert camsmod.decodes(later["cam1"][1].host_path)

    # a crashed recorder, and another node pulling the same cameras at once
    rec_cpu_pct = round(100 * rec1.cpu_seconds() / (time.time() - rec1.started_at), 2)
    killed_at = rec1.kill()
    assert not rec1.running()
    rec2 = Recorder(netlab, 2, cams)
    rec2.start()
    restart_s = time.time() - killed_at
    rec2.wait_segments(2, timeout=10)  # the first is complete: probed duration
    old = rec1.segments()
    new = rec2.segments()
    assert set(new) == set(cams.urls())
    for cam, segs in new.items():
        assert all(s.name.split("-")[1] == "node2" for s in segs), segs
        assert_valid(segs[0])
    # node1's files are its own, untouched by the kill
    assert all(s.name.split("-")[1] == "node1" for segs in old.values() for s in segs)
    assert_valid(old["cam1"][-1])      # the segment cut short by SIGKILL still plays
    gaps = recording_gaps(old, new)
    assert set(gaps) == set(cams.urls())
    # the spare started within restart_s of the kill; the gap is that plus
    # connect, probe and the wait for a keyframe (1 s GOP)
    assert all(-0.3 < g < 3.0 for g in gaps.values()), (gaps, restart_s)

    # a clean stop closes every segment
    rec2.stop()
    assert not rec2.running()
    final = rec2.segments()
    for cam, segs in final.items():
        for s in segs:
            assert_valid(s)

    cpu1 = cams.cpu_seconds()
    secs = time.time() - t0
    cpu_pct = {k: round(100 * (cpu1[k] - cpu0[k]) / secs, 2) for k in cpu1}
    with capsys.disabled():
        print("\nworkload: " + json.dumps({"gap_s": {k: round(v, 3) for k, v in gaps.items()},
                                           "restart_s": round(restart_s, 3),
                                           "cpu_pct": cpu_pct,
                                           "recorder_cpu_pct_3_cams": rec_cpu_pct}))
    assert all(v < 25 for v in cpu_pct.values()) and rec_cpu_pct < 25, (cpu_pct, rec_cpu_pct)

    # node1 back (as after a failback): recording there again, in new files
    rec1.start()
    assert all(segs[-1].name.split("-")[1] == "node1" and segs[-1].mtime_ns > killed_at * 1e9
               for segs in rec1.segments(probe_them=False, checksum=False).values())
    # every process is in the lab's namespaces: its cleanup (also on a
    # failed test) leaves no ffmpeg, recorder or RTSP server behind
    # (a recorder's ffmpeg that exits is restarted 0.3 s later, as a VMS
    # reconnects: count once each is there)
    def all_there():
        c, r = cams.pids(), rec1.pids()
        assert len(c) == 3 + 1 and len(r) == 1 + 3, \
            (f"camera host {c} (3 encoders + RTSP server {cams.server.pid}), "
             f"recorder {r} (supervisor {rec1.pid()} + 3 ffmpegs)")
        return True
    netlab.wait_for(all_there, 5, what="every workload process")
    ours = set(cams.pids()) | set(rec1.pids())
    assert set(camsmod.ffmpeg_pids()) >= ours - {cams.server.pid, rec1.pid()}
    netlab.cleanup()
    assert not [p for p in ours if camsmod.alive(p)]


def test_record_scripts_settings_and_restart(netlab):
    """record-start/record-stop as a vigil resource or a pool spare runs them:
    a settings file, an instance id; the recorder reconnects to a camera that
    comes back."""
    cams = Cameras(netlab, 1)
    n1 = netlab.node(1)
    rec = Recorder(netlab, 1, cams, rid="rec7")
    n1.write_file("/var/lib/vigil/settings/recorder.json", rec.settings())
    start = camsmod.HERE / "record-start"
    stop = camsmod.HERE / "record-stop"
    n1.run([str(start), "--id", "rec7", "--settings", "/var/lib/vigil/settings"])
    assert rec.running()
    # already running: a second start is a no-op
    assert "already running" in n1.run([str(start), "--id", "rec7", "--settings",
                                        "/var/lib/vigil/settings"]).stdout
    rec.wait_segments(2)
    # camera lost, then back: the recorder reconnects by itself
    cams.stop_camera("cam1")
    n = rec.count()["cam1"]
    cams.start()
    try:
        rec.wait_segments(n + 2, timeout=15)
    except AssertionError:
        print(rec.log("cam1"))
        raise
    n1.run([str(stop), "--id", "rec7"])
    assert not rec.running()
    segs = rec.segments()["cam1"]
    assert len({s.name.split("-")[0] for s in segs}) >= 2      # two ffmpeg runs
    for s in segs:
        assert_valid(s)
    # bad input: clear errors, nothing started
    cp = n1.run([str(start), "--id", "bad", "cam1"], check=False)
    assert cp.returncode != 0 and "NAME=URL" in cp.stderr
    cp = n1.run([str(start), "--id", "bad"], check=False)
    assert cp.returncode != 0 and "no cameras" in cp.stderr
    # a camera that never answers: start fails after --wait, nothing left running
    cp = n1.run([str(start), "--id", "bad", "--wait", "2",
                 "cam9=rtsp://10.0.0.60/cam9"], check=False)
    assert cp.returncode == 1 and "no segment" in cp.stderr
    assert n1.run([str(camsmod.RECORD_PY), "status", "--id", "bad"], check=False).returncode == 1
    assert n1.run(["pgrep", "-f", "cam9"], check=False).returncode == 1


def test_a_silent_camera_restarts_the_camera_host(netlab, capsys):
    """A camera whose encoder died without TEARDOWN keeps its mount in
    rtsp-server-perl: DESCRIBE still answers, but no video comes, and a new
    encoder is refused. Cameras.start() notices (a pull gets no packet),
    restarts the camera host once and says so."""
    cams = Cameras(netlab, 2)
    assert cams.restarts == 0 and cams.silent() == []
    cams["cam1"].proc.kill()             # SIGKILL: no TEARDOWN
    cams["cam1"].proc.wait()
    cams.start()
    assert cams.restarts == 1
    assert "cam1 answered DESCRIBE but sent no video" in capsys.readouterr().err
    assert cams.silent() == []
    rec = Recorder(netlab, 1, cams)
    rec.start()                          # every camera has a segment
    rec.stop()
