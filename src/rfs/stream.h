/* The PRIM's side of replication (docs/design/rfs.md §4.2, §4.4): every
 * change journaled by the FUSE ops becomes wire ops with the next seqs,
 * queued in that order and sent by a sender thread on one connection; a
 * receiver thread takes the SECOND's acks and wakes the operations waiting
 * for them.
 *
 * Waiting, by mode:
 * - sync: an operation returns once SECOND has received it (its frame read
 *   and authenticated); fsync, fdatasync, fsyncdir and O_SYNC/O_DSYNC
 *   writes once SECOND has made it durable.
 * - async: an operation returns after the local apply; the queue bounds the
 *   lag (queue_max bytes: a writer waits for room).
 *
 * Losing the link (a send or receive failure, an ERROR from SECOND, no ack
 * progress for ack_timeout_ms): the stream is LOST for good. Waiting
 * operations are released, later changes are applied locally only, and
 * SECOND is not up to date. (Recording what changed and reintegrating is
 * the next stage; vigild's supervision will outdate the peer first.)
 *
 * One stream per process, as rfs_journal_op() is a process-wide hook. */
#ifndef VIGIL_RFS_STREAM_H
#define VIGIL_RFS_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rfs/link.h"
#include "rfs/rfs_op.h"
#include "rfs/wire.h"

#define RFS_MAX_DIRS 16

enum rfs_mode { RFS_MODE_SYNC, RFS_MODE_ASYNC, RFS_MODE_END };
const char *rfs_mode_str(enum rfs_mode m);

enum rfs_link_state { RFS_LINK_OFF, RFS_LINK_CONNECTED, RFS_LINK_LOST, RFS_LINK_END };
const char *rfs_link_state_str(enum rfs_link_state s);

struct rfs_stream_cfg {
	enum rfs_mode mode;
	size_t queue_max;               /* bytes of encoded ops waiting to be sent */
	uint32_t ack_timeout_ms;
	uint64_t root_ino[RFS_MAX_DIRS]; /* each backing root's st_ino (BIND at start) */
	uint8_t ndirs;
};

/* The stream without a connection: changes are counted, not shipped, and
 * the gate works from now on. */
void rfs_stream_init(const struct rfs_stream_cfg *cfg);
/* Takes over the connected conn, starts its threads and binds the roots.
 * 0 or -1 (logged; conn closed). */
int rfs_stream_attach(struct rfs_conn *conn);
/* init + attach. */
int rfs_stream_start(const struct rfs_stream_cfg *cfg, struct rfs_conn *conn);
/* Blocks until the connection is lost (or a drain began). */
void rfs_stream_wait_lost(void);
/* Ends the connection's threads and closes it (after a loss). */
void rfs_stream_detach(void);
/* Waits up to timeout_ms for SECOND to have applied everything sent.
 * True if it did. */
bool rfs_stream_drain(uint32_t timeout_ms);
/* drain, detach, and no stream any more. */
bool rfs_stream_stop(uint32_t timeout_ms);
bool rfs_stream_connected(void);
/* Waits until SECOND has made every change shipped durable (its
 * checkpoint); true if it has. */
bool rfs_stream_wait_durable(uint32_t timeout_ms);
/* The last seq handed out (0 before any, or without a stream). */
uint64_t rfs_stream_seq(void);
bool rfs_stream_stopping(void);
/* Waits until SECOND applied every op queued so far. False on loss or
 * timeout. */
bool rfs_stream_wait_applied(uint32_t timeout_ms);
/* The gate held exclusively (on) or released, by a reintegration. */
void rfs_stream_gate_exclusive(bool on);
/* on_lost runs under the stream's lock when a connection is lost, before
 * any waiting change returns (it moves the generation on); r, while a
 * reintegration runs, takes over UNBINDs of files it still copies. */
struct rfs_resync;
void rfs_stream_set_hooks(void (*on_lost)(void), struct rfs_resync *r);
void rfs_stream_set_resync(bool active, uint64_t total, uint64_t done);
/* Waits while more than bytes are queued (a reintegration's pacing);
 * returns at once when not connected. */
void rfs_stream_wait_queue_below(uint64_t bytes);

struct rfs_stream_status {
	enum rfs_link_state state;
	enum rfs_mode mode;
	uint64_t seq;                   /* last seq given to an op */
	uint64_t recv, applied, durable, ckpt; /* SECOND's last ack */
	uint64_t queued_bytes;
	uint64_t sent_bytes;
	uint64_t unshipped;             /* changes applied locally only (link lost) */
	bool resyncing;                 /* a reintegration runs */
	uint64_t resync_total, resync_done; /* its bytes */
	char error[WIRE_TEXT_MAX + 64];
};
void rfs_stream_status(struct rfs_stream_status *out);
/* The same, or false at once if the stream is busy (a hold keeps its lock). */
bool rfs_stream_status_try(struct rfs_stream_status *out);

/* For rfs_op.c: ship one journaled change, waiting as the mode says.
 * 0 or a positive errno for the application. No-ops without a stream. */
int rfs_stream_op(const struct rfs_op *op);
/* The same in two steps, for a change whose local part may run while
 * SECOND does its own (fsync): queue, then wait. Not for changes that
 * cross the excluded names. */
int rfs_stream_op_begin(const struct rfs_op *op, struct rfs_journal_ticket *t);
int rfs_stream_op_wait(const struct rfs_journal_ticket *t);
void rfs_stream_bind(uint8_t dir, uint64_t ino, uint64_t parent_ino, const char *name);
void rfs_stream_unbind(uint8_t dir, uint64_t ino);
void rfs_stream_unsure(uint8_t dir, uint64_t ino, const char *name);

/* stream_op.c: the wire ops of one journaled change (at most
 * RFS_STREAM_MAX_WOPS, in order), in the dir its ids name; *durable when
 * the first must be durable on SECOND before the change returns. 0, or a
 * positive errno (logged). */
#define RFS_STREAM_MAX_WOPS 3
int rfs_stream_translate(const struct rfs_op *op, struct wire_op *w, int *n, bool *durable);
/* Whether the change concerns only excluded objects or names (nothing to
 * ship), and whether a parent/name pair is excluded. */
bool rfs_stream_op_excluded(const struct rfs_op *op);
bool rfs_stream_side_excluded(const struct rfs_id *parent, const char *name);

#endif
