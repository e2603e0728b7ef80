/* The PRIM's link manager (docs/design/rfs.md §5.4): dials the SECOND,
 * compares generations at each handshake, runs a reintegration by full
 * copy when SECOND is not up to date, and redials every 2 s after a loss.
 * The generation moves on (gen_go_alone, stored) whenever changes may be
 * made without SECOND: at a start without it, and when the link is lost. */
#ifndef VIGIL_RFS_PRIM_H
#define VIGIL_RFS_PRIM_H

#include <stdbool.h>
#include <stdint.h>

#include "rfs/link.h"
#include "rfs/stream.h"

struct rfs_prim_cfg {
	struct rfs_stream_cfg stream;
	struct rfs_link_cfg link;
	const char *peer;               /* ADDR:PORT */
	uint64_t connect_timeout_ms;    /* first attempt: how long to wait for SECOND */
	const char *meta;               /* generations file */
	const char *journal;            /* the record on disk (record.h) */
	int root_fd[RFS_MAX_DIRS];      /* backing roots, for the resync walk */
	/* Under vigild: before going on without SECOND, hold every change
	 * until rfs_prim_release (vigild has marked the peer's copy outdated,
	 * or knows the peer is gone), so that an acknowledged write never
	 * lives only here while a stale SECOND could take over. vigild
	 * releases at once when the peer is lost. */
	bool hold_on_loss;
};

/* Loads the generations, starts the link thread and returns once the
 * first attempt is over: SECOND connected (and, if needed, its copy's
 * namespace rebuilt), or not reachable within connect_timeout_ms (this
 * node then goes on alone). 0, or -1 (bad meta file, no thread: logged). */
int rfs_prim_start(const struct rfs_prim_cfg *cfg);
/* Drains (up to timeout_ms), stops the link thread. True if SECOND had
 * everything. */
bool rfs_prim_stop(uint32_t timeout_ms);
/* Ends the hold under way (async-signal-safe: vigild sends SIGUSR1, once
 * per hold number it saw in the status). A release with no hold under way
 * is forgotten when the next hold begins. */
void rfs_prim_release(void);
/* The number of the hold under way (1, 2, ...), or 0 if none. */
uint64_t rfs_prim_holding(void);

#endif
