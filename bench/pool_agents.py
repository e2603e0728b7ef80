#!/usr/bin/python3
"""Light pool agents for bench/pool: N recorders on one event loop, each
with its own certificate (CN = its name), speaking the pool link
(docs/pool-protocol.md): hello, then a health report every heartbeat.

    pool_agents.py MASTER_IP:PORT PKI_DIR N SECONDS [--prefix rec]

Prints one JSON line when every agent has its welcome, and one at the end
with what it counted. Standard library only: it runs inside the lab."""

import asyncio
import json
import os
import ssl
import struct
import sys
import time


def frame(obj):
    body = json.dumps(obj, separators=(",", ":")).encode()
    return struct.pack(">I", len(body)) + body


async def agent(name, host, port, pki, stats, welcomed, stop):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.load_verify_locations(os.path.join(pki, "cacert.crt"))
    ctx.load_cert_chain(os.path.join(pki, f"{name}.crt"), os.path.join(pki, f"{name}.key"))
    reader, writer = await asyncio.open_connection(host, port, ssl=ctx)
    writer.write(frame({"type": "hello", "version": 1, "name": name, "role": "recorder", "group": "g",
                        "failover": True, "recording": True}))
    hb = 1.0

    async def read():
        nonlocal hb
        while True:
            hdr = await reader.readexactly(4)
            msg = json.loads(await reader.readexactly(struct.unpack(">I", hdr)[0]))
            stats["received"] += 1
            if msg.get("type") == "welcome":
                hb = msg["heartbeat_ms"] / 1000
                welcomed.add(name)
            elif msg.get("type") in ("resume", "stop"):
                writer.write(frame({"type": "result", "id": msg["id"], "ok": True}))
            elif msg.get("type") == "error":
                stats["errors"].append(msg.get("message"))
    rt = asyncio.create_task(read())
    seq = 0
    await asyncio.sleep(hb * (hash(name) % 1000) / 1000)        # spread the heartbeats
    while not stop.is_set():
        seq += 1
        writer.write(frame({"type": "health", "seq": seq, "disks_failed": False, "watchdog_failed": False,
                            "cameras": 16, "storage_used": 1 << 40, "storage_total": 4 << 40}))
        stats["sent"] += 1
        await writer.drain()
        try:
            await asyncio.wait_for(stop.wait(), hb)
        except asyncio.TimeoutError:
            pass
    rt.cancel()
    writer.close()


async def main():
    addr, pki, n, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    prefix = sys.argv[6] if len(sys.argv) > 6 and sys.argv[5] == "--prefix" else "rec"
    host, port = addr.rsplit(":", 1)
    stats = {"sent": 0, "received": 0, "errors": []}
    welcomed, stop = set(), asyncio.Event()
    names = [f"{prefix}{i:04d}" for i in range(n)]
    tasks = []
    for nm in names:            # a connect storm of 500 TLS handshakes is the master's to bear
        tasks.append(asyncio.create_task(agent(nm, host, int(port), pki, stats, welcomed, stop)))
        await asyncio.sleep(0.002)
    t0 = time.monotonic()
    while len(welcomed) < n and time.monotonic() - t0 < 60:
        await asyncio.sleep(0.05)
    print(json.dumps({"welcomed": len(welcomed), "after_s": round(time.monotonic() - t0, 2)}), flush=True)
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({"sent": stats["sent"], "received": stats["received"], "errors": stats["errors"][:5]}),
          flush=True)


asyncio.run(main())
