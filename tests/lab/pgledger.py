"""Inserts ids into table ledger of the PostgreSQL server at HOST, one
transaction each, and prints an id only once its COMMIT was confirmed.

    python3 pgledger.py HOST FIRST

Runs until killed; connection errors (a failover) are retried with the
next id: an id whose outcome is unknown is never printed."""

import os
import subprocess
import sys
import time


def main():
    host, n = sys.argv[1], int(sys.argv[2])
    env = dict(os.environ, PGCONNECT_TIMEOUT="1")
    while True:
        try:
            cp = subprocess.run(["psql", "-h", host, "-U", "postgres", "-d", "postgres", "-qAtX",
                                 "-v", "ON_ERROR_STOP=1", "-c", f"insert into ledger values ({n})"],
                                env=env, capture_output=True, timeout=5)
            ok = cp.returncode == 0
        except subprocess.TimeoutExpired:
            ok = False
        if ok:
            print(n, flush=True)
        else:
            time.sleep(0.05)
        n += 1


if __name__ == "__main__":
    main()
