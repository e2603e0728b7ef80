"""A writer that records what was acknowledged (run inside a lab node).

    python3 ledger.py DIR FIRST

Appends record N (N = FIRST, FIRST+1, ...) to DIR/ledger, fsyncs it, and
every tenth record also writes DIR/rN.tmp, fsyncs it, renames it to DIR/rN
and fsyncs DIR. Only then prints N: a printed N is a write the file system
acknowledged as durable. The reader (the test, outside the node) keeps the
printed lines, so they survive the node's death."""

import os
import sys


def main():
    d, n = sys.argv[1], int(sys.argv[2])
    fd = os.open(os.path.join(d, "ledger"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    while True:
        rec = f"{n}\n".encode()
        os.write(fd, rec)
        os.fsync(fd)
        if n % 10 == 0:
            path = os.path.join(d, f"r{n}")
            f = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(f, rec * 100)
            os.fsync(f)
            os.close(f)
            os.rename(path + ".tmp", path)
            dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
            os.fsync(dfd)
            os.close(dfd)
        print(n, flush=True)
        n += 1


if __name__ == "__main__":
    main()
