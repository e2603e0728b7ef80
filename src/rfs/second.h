/* The SECOND's side of replication: accepts one PRIM at a time, acks each
 * frame once it is read and authenticated ("received"), applies its ops in
 * order (apply.h), acks again with what is applied and durable, and
 * checkpoints (syncfs of the copy) every ckpt_ms while changes arrive, so
 * everything received becomes durable within about that time.
 *
 * At each handshake the generations decide (gen.h): a PRIM with the same
 * copy streams on; otherwise this copy is set aside whole under
 * aside_dir/aside-<UTC>/<dir index>/ (never deleted here), this node is
 * outdated, and the PRIM rebuilds the copy (resync.h) and ends with SETGEN,
 * which makes it up to date again.
 *
 * A failed op ends the connection with an ERROR naming it; the copy is then
 * not up to date until the next reintegration. */
#ifndef VIGIL_RFS_SECOND_H
#define VIGIL_RFS_SECOND_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "rfs/link.h"
#include "rfs/stream.h"

struct rfs_second_cfg {
	int root_fd[RFS_MAX_DIRS];      /* each copy's root directory */
	uint8_t ndirs;
	const char *listen;             /* "ADDR:PORT" */
	struct rfs_link_cfg link;
	uint32_t ckpt_ms;
	const char *meta;               /* generations file */
	const char *journal;            /* the record on disk (record.h) */
	const char *verify;             /* the sync-full mark (gen.h) */
	const char *aside_dir;          /* where copies are set aside (dirs' file system) */
};

/* Serves until *stop is set (checked at least every 200 ms). 0 on a clean
 * stop, -1 when it cannot listen or open the copy (logged). */
int rfs_second_run(const struct rfs_second_cfg *cfg, volatile sig_atomic_t *stop);

struct rfs_second_status {
	bool connected;
	bool uptodate;                  /* no stream ended early or failed since start */
	uint64_t recv, applied, durable, ckpt;
	char peer[64];
	char error[600];
};
void rfs_second_status(struct rfs_second_status *out);

#endif
