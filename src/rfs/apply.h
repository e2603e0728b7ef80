/* The applier of the SECOND (docs/design/rfs.md §4.5): it applies decoded
 * ops (src/rfs/wire.h), strictly in seq order, to the SECOND's copy of one
 * replicated directory. Pure library code: no threads, no sockets; the
 * caller runs it on the applier thread. Not thread-safe.
 *
 * Identity (§4.1): a fid names an object through the O_PATH fd taken at its
 * BIND (or CREATE), so renames, hard links and writes to unlinked-but-bound
 * files follow the inode. Parent fid 0 is the root of the copy. Every
 * syscall is relative to an fd (*at(), AT_EMPTY_PATH, /proc/self/fd/N),
 * never a path built from names, and nothing in the copy is followed:
 * O_NOFOLLOW / AT_SYMLINK_NOFOLLOW, a symlink fid is never opened for I/O.
 * So a malicious stream cannot reach outside the root.
 *
 * Regular files get a lazily opened O_RDWR fd for I/O; at most
 * RFS_APPLY_WFD_MAX are open at once (least recently used closed first).
 *
 * Times: CREATE, LINK, UNLINK and RENAME carry the mtimes the new object and
 * the parent directories have on PRIM after the op, so trees compare equal;
 * a time of 0 means "not carried" and is left alone. A CREATE sets the new
 * object's atime to its mtime (as a fresh create does on PRIM).
 *
 * Durability: durable_seq is the seq of the last op that asked for
 * durability (FSYNC, FSYNCDIR, WRITE with DSYNC/SYNC, BARRIER) and got it.
 * Since ops apply in order and synchronously, every such op at or below
 * durable_seq is durable. BARRIER (syncfs of the copy's filesystem) and
 * rfs_applier_checkpoint() make every applied op durable.
 *
 * Errors: rfs_apply() fails with a one-line text naming the op, the fid, the
 * path when known and strerror, e.g.
 *   "applying WRITE seq 77 fid 1234 (db/base/1) @8192: No space left on device".
 * Afterwards the applier is diverged: it refuses every op until
 * rfs_applier_reset(). HASHREQ and SETGEN are not the applier's (stages 4/5)
 * and are refused with EOPNOTSUPP. */
#ifndef VIGIL_RFS_APPLY_H
#define VIGIL_RFS_APPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rfs/wire.h"

#define RFS_APPLY_WFD_MAX 256
#define RFS_APPLY_ERR_LEN 512           /* = WIRE_TEXT_MAX: the text fits an ERROR */

struct rfs_applier;

/* root_dirfd: an O_PATH or O_RDONLY fd of the copy's root directory; it is
 * duplicated (the caller keeps and closes its own). dir_index: the dir this
 * applier serves; ops of another dir are refused. NULL on error (logged). */
struct rfs_applier *rfs_applier_new(int root_dirfd, uint8_t dir_index);
/* Closes every fd of the applier. NULL is fine. */
void rfs_applier_free(struct rfs_applier *a);

/* Applies one op. 0, or -1 with err (may be NULL) set to a one-line text
 * and the applier diverged. op->seq must be above the last applied seq. */
int rfs_apply(struct rfs_applier *a, const struct wire_op *op, char *err, size_t errlen);

/* A HASHREQ (wire.h): the block hashes (hash.h) of the fid's [arg, arg +
 * len) as this copy holds it, into out (rfs_hash_count(len, block) hashes);
 * buf is scratch of len bytes. A fid that is not a readable regular file
 * here gets zero hashes, which match nothing: PRIM then sends the data.
 * Not an applied change: the seqs do not move. */
void rfs_apply_hashes(struct rfs_applier *a, const struct wire_op *op, uint8_t *buf, uint8_t *out);

/* Drops every fid and the diverged state, and restarts seqs at 0: for a new
 * connection, whose PRIM re-BINDs its table first. */
void rfs_applier_reset(struct rfs_applier *a);
/* The stash of a reintegration's merge (STASH, CREATE with ORIGIN): dir
 * (made if missing; on the copy's file system) is emptied and used from
 * now on; NULL stops using it. -1 (logged) if it cannot be made: the merge
 * goes on without, renamed objects are then sent whole. */
int rfs_applier_set_stash(struct rfs_applier *a, const char *dir);
/* Empties the stash (what no CREATE took is an older copy PRIM no longer
 * has) and logs how many objects it gave back. */
void rfs_applier_clear_stash(struct rfs_applier *a);

/* syncfs of the copy: every applied op becomes durable (ckpt_seq). 0 or -1
 * (logged; the applier is not diverged by it). */
int rfs_applier_checkpoint(struct rfs_applier *a);

uint64_t rfs_applier_applied_seq(const struct rfs_applier *a);
uint64_t rfs_applier_durable_seq(const struct rfs_applier *a);
uint64_t rfs_applier_ckpt_seq(const struct rfs_applier *a);
/* The failed op's seq and errno (for the ERROR frame); false when not diverged. */
bool rfs_applier_diverged(const struct rfs_applier *a, uint64_t *err_seq, int *err_no);

/* A reintegration's walk found the copy unlike what PRIM's record says
 * (an object listed as unchanged is missing, or of another type): this
 * copy needs a full one. Cleared by rfs_applier_reset(). */
bool rfs_applier_needs_full(const struct rfs_applier *a);

/* Introspection for tests and status. */
size_t rfs_applier_nfids(const struct rfs_applier *a);
size_t rfs_applier_nwfds(const struct rfs_applier *a);

#endif
