"""PostgreSQL as a vigil resource in the lab, its data directory replicated
([replication] dirs = /srv/vms/db): used by the zero-loss test and the demo.

`pgledger.py` is the client: it runs in the lab's client namespace against
the virtual IP and prints the id of every insert PostgreSQL confirmed."""

import glob
import os
import shlex
import subprocess
from pathlib import Path

PGDATA = "/srv/vms/db/pg"
SOCK = "/run/vigil/pg"
LEDGER_CLIENT = Path(__file__).resolve().parent / "pgledger.py"


def bindir():
    """The newest /usr/lib/postgresql/N/bin, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return os.path.dirname(found[-1]) if found else None


def start_body(bd):
    """A postmaster.pid copied from the node that died names a PID that means
    nothing here (as a Pacemaker agent would, it is removed unless that PID
    is a live process of this node: in the lab, the same network namespace,
    not a zombie)."""
    ctl = shlex.quote(f"{bd}/pg_ctl")
    pidf = f"{PGDATA}/postmaster.pid"
    return (f"if [ -f {pidf} ]; then\n"
            f"  pid=$(head -n1 {pidf}); st=$(cut -d' ' -f3 /proc/$pid/stat 2>/dev/null)\n"
            f"  if [ -z \"$st\" ] || [ \"$st\" = Z ] || [ \"$(stat -L -c %i /proc/$pid/ns/net 2>/dev/null)\" != "
            f"\"$(stat -L -c %i /proc/self/ns/net)\" ]; then\n"
            f"    echo \"pg-start: removing {pidf} of PID $pid, not a server of this node\"; rm -f {pidf}\n"
            f"  fi\nfi\n"
            f"mkdir -p {SOCK} && chown postgres:postgres {SOCK} || exit 1\n"
            f"runuser -u postgres -- {ctl} -D {PGDATA} -w -t 60 -l {SOCK}/log start "
            f"-o \"-c listen_addresses='*' -c unix_socket_directories={SOCK}\" || exit 1")


def stop_body(bd):
    ctl = shlex.quote(f"{bd}/pg_ctl")
    return (f"runuser -u postgres -- {ctl} -D {PGDATA} status >/dev/null 2>&1 || exit 0\n"
            f"runuser -u postgres -- {ctl} -D {PGDATA} -w -t 60 -m fast stop || exit 1")


def resources(bd):
    """The [resource pg] keys for cluster_config."""
    return {"pg": {"start": "/etc/vigil/scripts/pg-start", "stop": "/etc/vigil/scripts/pg-stop",
                   "when": "prim", "timeout_ms": 60000}}


def setup(lab, bd, k=1):
    """Scripts on every node; initdb in node k's /srv/vms/db/pg (before vigild
    starts: the SECOND gets it by replication)."""
    for n in lab.nodes:
        lab.write_script(n.k, "pg", "start", start_body(bd))
        lab.write_script(n.k, "pg", "stop", stop_body(bd))
    initdb = shlex.quote(f"{bd}/initdb")
    lab.node(k).run(["sh", "-c",
                     f"mkdir -p {PGDATA} && chown postgres:postgres {PGDATA} && chmod 700 {PGDATA} && "
                     f"runuser -u postgres -- {initdb} -D {PGDATA} -A trust -U postgres >/dev/null && "
                     f"echo 'host all all 10.0.0.0/16 trust' >> {PGDATA}/pg_hba.conf"], timeout=120)


def psql(lab, sql, host="10.0.0.100", check=True):
    """Runs sql on the server at host from the client namespace; stdout."""
    cp = lab.client.run(["psql", "-h", host, "-U", "postgres", "-d", "postgres", "-qAtX",
                         "-v", "ON_ERROR_STOP=1", "-c", sql], check=check, timeout=30)
    return cp.stdout


def ledger_client(lab, first, host="10.0.0.100"):
    """pgledger.py in the client namespace: a Popen whose stdout lines are
    confirmed ids."""
    return lab.client.popen(["python3", str(LEDGER_CLIENT), host, str(first)],
                            stdout=subprocess.PIPE, text=True)
