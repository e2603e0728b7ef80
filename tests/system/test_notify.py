"""[notify]: every transition of a failover reaches the notify command in
order, with the event in the environment and as JSON on stdin; a notify
command that hangs or does not exist delays nothing."""

import json
import time

from lab import cluster_config

TIMEOUT = 10.0

ON_EVENT = r"""#!/bin/sh
json=$(cat)
echo "$VIGIL_SEQ|$VIGIL_EVENT|$VIGIL_NODE|$VIGIL_FROM|$VIGIL_TO|$VIGIL_COLOR|$json" >> /var/lib/vigil/events.log
"""

NOTIFY = """
[notify]
command = /etc/vigil/scripts/on-event
timeout_ms = 2000

[notify slow]
command = sleep 30
timeout_ms = 1000

[notify missing]
command = /etc/vigil/scripts/no-such-notifier
"""


def events(lab, k):
    try:
        text = lab.node(k).read_file("/var/lib/vigil/events.log")
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        seq, ev, node, frm, to, color, js = line.split("|", 6)
        out.append({"seq": int(seq), "event": ev, "node": node, "from": frm, "to": to,
                    "color": color, "json": json.loads(js)})
    return out


def test_notify_sees_a_failover_in_order_and_never_delays_it(lab):
    lab.setup_cluster(cluster_config(lab, extra=NOTIFY))
    for n in lab.nodes:
        n.write_file("/etc/vigil/scripts/on-event", ON_EVENT, 0o755)
    lab.start_vigild(1)
    lab.start_vigild(2)
    lab.wait_states(1, {"node1": "PRIM", "node2": "SECOND"}, TIMEOUT)
    lab.wait_for(lambda: lab.client_get() == "node1", TIMEOUT, what="node1 answers")
    lab.wait_for(lambda: any(e["to"] == "SECOND" and e["color"] == "green" for e in events(lab, 2)),
                 TIMEOUT, what="node2's start events")
    before = len(events(lab, 2))

    t0 = time.monotonic()
    lab.node(1).kill()
    lab.wait_for(lambda: lab.client_get() == "node2", TIMEOUT, what="node2 to answer")
    took = time.monotonic() - t0
    # Detection 600 ms + start; a notifier that hangs 1 s per event and one
    # that does not exist must not add to it.
    assert took < 3.0, f"failover took {took:.2f} s"

    lab.wait_for(lambda: any(e["to"] == "ALONE" and e["color"] == "green" for e in events(lab, 2)),
                 TIMEOUT, what="node2's failover events")
    ev = events(lab, 2)[before:]
    kinds = [(e["event"], e["from"], e["to"], e["color"]) for e in ev]
    assert kinds[:3] == [("failover", "SECOND", "ALONE", "magenta"),
                         ("transition", "SECOND", "ALONE", "magenta"),
                         ("transition", "ALONE", "ALONE", "green")], kinds
    seqs = [e["seq"] for e in events(lab, 2)]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
    for e in ev:
        j = e["json"]
        assert j["type"] == e["event"] and j["node"] == "node2" and j["cluster"] == "lab"
        assert j["from"] == e["from"] and j["to"] == e["to"] and j["seq"] == e["seq"]
    assert "peer lost" in ev[0]["json"]["reason"]

    # Each event is also one greppable log line, and the broken notifiers
    # are reported with their words.
    verbose = "\n".join(lab.vigilctl(2, "log", "--verbose", "--lines", "2000", json=True)["lines"])
    lines = [l for l in verbose.splitlines() if " EVENT {" in l]
    assert any('"type":"failover"' in l for l in lines), lines[-5:]
    assert "no-such-notifier" in verbose and "127" in verbose
