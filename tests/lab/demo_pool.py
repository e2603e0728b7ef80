"""The recording pool part of `make demo` (docs/pool.md): a master (node1),
a recorder (node2, two simulated cameras recorded with ffmpeg) and a spare
(node3). Steps: start; kill node2 (the spare records its cameras; the
demo prints the recording gap measured on the segment files); revive
node2 (failback: the spare stops, node2 records again, every segment the
spare made is copied home and checked)."""

import time

import lab as labmod
from cameras import recording_gaps
from pool import Pool, RECORDINGS


def run(demo):
    with labmod.Lab(nodes=3, nets=1) as lab:
        demo.lab = lab
        pool = Pool(lab, recorders={2: ("north", "")}, spares={3: "north"}, cameras=2)

        def show(st):
            recs = ", ".join(f"{r['name']} {r['state']}" + (f" (served by {r['served_by']})" if r["served_by"]
                                                             else "") for r in st["recorders"])
            spares = ", ".join(f"{s['name']} {s['state']}" for s in st["spares"])
            return f"recorders: {recs}; spares: {spares}"

        def start(t0):
            pool.start()
            n = sum(pool.recorder(2).count().values())
            return f"{show(pool.status())}; node2 has recorded {n} segments"

        def kill(t0):
            pool.crash(2)
            st = pool.wait(lambda st: pool.rec(st, 2)["state"] == "FAILED_OVER", timeout=20,
                           what="node2 failed over")
            served = pool.serving(3, 2)
            served.wait_segments(2, timeout=20)
            gaps = recording_gaps(pool.recorder(2).segments(), served.segments())
            return (f"{show(st)}; recording gap per camera: "
                    + ", ".join(f"{c} {g:.2f} s" for c, g in sorted(gaps.items())))

        def revive(t0):
            pool.keep_stopped(3)
            pool.revive(2)
            st = pool.wait(lambda st: pool.rec(st, 2)["state"] == "OK" and pool.spare(st, 3)["state"] == "FREE",
                           timeout=40, what="failback and copy-back")
            made = pool.files(3, "/var/lib/vigil/stopped/node2")
            home = {p: h for p, h in pool.files(2, RECORDINGS).items() if "-node3-" in p}
            if home != made:
                raise AssertionError(f"copy-back: {len(made)} segments made by the spare, {len(home)} home")
            return (f"{show(st)}; all {len(made)} segments the spare recorded are home, "
                    "same SHA-256")

        demo.say("recording pool: master node1, recorder node2 (2 cameras), spare node3; "
                 "detect_timeout_ms 2000")
        demo.step("pool: start", start)
        demo.step("pool: kill recorder node2", kill)
        demo.step("pool: revive node2 (failback, copy-back)", revive)
        time.sleep(0.1)
