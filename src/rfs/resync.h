/* Reintegration by full copy (docs/design/rfs.md §5.4), run by the PRIM's
 * link thread on a connection whose SECOND is not up to date:
 *   rfs_resync_walk   with the gate held exclusively: every object of every
 *                     dir as CREATE/LINK (fid = st_ino), xattrs, the
 *                     directories' times in post-order, the roots' attributes;
 *                     remembers each regular file by handle;
 *   rfs_resync_data   gate released: each remembered file's data in 1 MiB
 *                     chunks (holes skipped), each chunk read and queued with
 *                     the gate held exclusively, then its size, xattrs,
 *                     owner, mode and times.
 * Both ship through rfs_stream_ship(); they stop early (returning -1) when
 * the stream is lost. */
#ifndef VIGIL_RFS_RESYNC_H
#define VIGIL_RFS_RESYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rfs_resync;

/* root_fd[d]: the backing roots (O_PATH); the ops are for dir d. */
/* incremental: merge into SECOND's copy from the record; verify (with
 * incremental): merge without the record, every directory's entries with
 * MAYBE and every regular file compared by block hashes (sync full). */
struct rfs_resync *rfs_resync_new(const int *root_fd, int ndirs, bool incremental, bool verify);
void rfs_resync_free(struct rfs_resync *r);

int rfs_resync_walk(struct rfs_resync *r);
int rfs_resync_data(struct rfs_resync *r);

/* Sum of the regular files' sizes at the walk, and bytes queued so far. */
uint64_t rfs_resync_total(const struct rfs_resync *r);
uint64_t rfs_resync_queued(const struct rfs_resync *r);
size_t rfs_resync_files(const struct rfs_resync *r);

struct wire_hashes;
/* SECOND's answer to a HASHREQ of the file being compared (the stream's
 * receiver, under the stream's lock). Thread-safe; answers for anything
 * else are ignored. */
void rfs_resync_hashes(struct rfs_resync *r, const struct wire_hashes *h);

/* An UNBIND of fid while its data is still to be sent: true when the
 * resync takes it over (sends it once the file is done). Thread-safe. */
bool rfs_resync_defer_unbind(struct rfs_resync *r, uint8_t dir, uint64_t fid);

#endif
