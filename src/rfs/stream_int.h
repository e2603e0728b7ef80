/* Inside the PRIM's stream: stream.c's queue, for stream_excl.c. */
#ifndef VIGIL_RFS_STREAM_INT_H
#define VIGIL_RFS_STREAM_INT_H

#include <stdbool.h>

#include "rfs/stream.h"

/* Queues n ops (n may be 0) with the next seqs; with wait (sync mode),
 * returns once SECOND has received everything queued so far (and made the
 * first op durable, if durable). Always 0: a failure loses the stream. */
int rfs_stream_ship(const struct wire_op *w, int n, bool durable, bool wait);
/* Times as the wire carries them: signed ns since the epoch; the mtime of
 * an O_PATH or open fd, 0 ("not carried") if fd is unusable. */
struct timespec;
int64_t rfs_ns_of(const struct timespec *t);
int64_t rfs_mtime_of(int fd);
/* Ships every extended attribute (ACLs included) of the object behind fd
 * (not a symlink) as SETXATTR to fid; what cannot be read loses the
 * stream, saying why. */
void rfs_ship_xattrs(uint8_t dir, uint64_t fid, int fd);
/* SECOND cannot follow a change: the stream is lost, saying why. */
void rfs_stream_unsure_why(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A change crossing the excluded names: *handled when it was shipped (or
 * the stream lost) here. */
int rfs_stream_crossing(const struct rfs_op *op, bool *handled);

/* From the on_lost hook (lock held): the loss could not be made safe (a
 * hold ended by a stop, the peer's copy not marked outdated); changes
 * waiting for SECOND fail with EIO instead of returning as done. */
void rfs_stream_unsafe_loss_locked(void);

#endif
