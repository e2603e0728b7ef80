/* The PRIM's record of what SECOND lacks (docs/design/rfs.md §5.1, as built
 * in stage 4): a dirty set (dirty.h) of the files whose data differs, or
 * may differ, from SECOND's copy since the copies were last equal, so that
 * a SECOND coming back gets only those (resync.c, incremental mode).
 *
 * While connected, each change shipped is remembered with its seq in a
 * ring until SECOND reports it durable (ckpt_seq). When the link is lost,
 * what is left in the ring goes into the set: those changes may be missing
 * there (SECOND's vigil-rfs or node died before making them durable). While
 * not connected, each change goes into the set at once.
 *
 * What a change records (namespace and attributes need nothing: the
 * reintegration's walk lists every object with its attributes, and SECOND
 * prunes what is not listed):
 *   WRITE, COPY_RANGE, FALLOCATE   its byte range
 *   SETATTR of the size            [size, end): whatever SECOND holds past
 *                                  the new end must not come back on regrowth
 *   CREATE, MKNOD, MKDIR, SYMLINK  WHOLE: new here, its name may hold another
 *                                  object there
 *   LINK, RENAME                   WHOLE (both objects of an EXCHANGE): its
 *                                  name there holds something else; a WHOLE
 *                                  directory makes its whole subtree new
 *
 * The record is complete only from a point where the copies were equal
 * (rfs_record_reset: an EQUAL handshake, or a finished reintegration) and
 * as long as nothing was dropped (ring full, out of memory). The set is a
 * journal (journal.h), on disk once rfs_record_open() ran, so a PRIM that
 * restarts keeps it. The ring lives in memory: the HOT flags of
 * rfs_record_hot() stand for it across a crash (those files come back
 * UNSURE and are sent whole).
 *
 * Thread-safe (one mutex). */
#ifndef VIGIL_RFS_RECORD_H
#define VIGIL_RFS_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rfs/dirty.h"
#include "rfs/origin.h"
#include "rfs/rfs_op.h"

#define RFS_RECORD_RING_MAX (1u << 18)  /* changes awaiting SECOND's ckpt */

/* A change applied here: shipped with seqs up to seq, or not shipped (seq 0). */
void rfs_record_op(const struct rfs_op *op, uint64_t seq);
/* SECOND made every change up to ckpt durable. */
void rfs_record_ckpt(uint64_t ckpt);
/* The link is lost after seq was shipped: every change not known durable
 * there goes into the set. */
void rfs_record_lost(uint64_t seq);
/* The copies are equal now, at generation gen: an empty set and a complete
 * record. The ring stays: changes still in flight are not covered. */
void rfs_record_reset(uint64_t gen);
/* The record can no longer be trusted (logged once with why). */
void rfs_record_incomplete(const char *why);
/* True if the record holds every change since the copies were equal at gen. */
bool rfs_record_complete(uint64_t gen);

/* One file's entry, copied out: flags (enum dirty_flag) and intervals
 * (malloc'ed, the caller frees iv). 0 if in the set, 1 if not, -1 on
 * allocation failure. */
struct rfs_record_file {
	uint8_t flags;
	uint32_t n;
	struct dirty_ival *iv;
};
int rfs_record_get(uint8_t dir, uint64_t ino, struct rfs_record_file *out);

/* Files in the set, and the bytes of their intervals (WHOLE files count 0:
 * their size is the walk's to find). */
void rfs_record_count(size_t *files, uint64_t *ext_bytes, bool *complete);

/* ---- On disk (journal.h; docs/design/rfs.md §5.1 as built). Until
 * rfs_record_open() the set lives in memory only. */

/* Replays the journal at path (a crash's HOT files come back UNSURE) and
 * keeps the set there from now on; complete since the generation of its
 * last reset. A thread flushes it every second and cools idle files. 0, or
 * -1 (logged): nothing can be promised durable then. */
int rfs_record_open(const char *path);
/* Flushes and closes; the set is in memory only afterwards. */
void rfs_record_close(void);
/* Before a local change to the object id (its data, or a directory's
 * names): its HOT flag is durable on return, so a crash before SECOND has
 * the change leaves it UNSURE, never forgotten. 0, or -1: the caller fails
 * the change (EIO). Each call owes one rfs_record_done() after the change,
 * with the last seq shipped by then. Excluded objects cost nothing. */
int rfs_record_hot(const struct rfs_id *id);
void rfs_record_done(const struct rfs_id *id, uint64_t seq);
/* Before renaming a directory: WHOLE, durable on return (a crash must
 * bring its whole subtree to its new name). 0 or -1. */
int rfs_record_whole_now(const struct rfs_id *id);
/* ---- Rename matching (origin.h): where SECOND still has an object
 * renamed here while it was away. */

/* The path of each dir's root, to make old paths relative (readlink of
 * the fd). */
void rfs_record_set_root(uint8_t dir, int root_fd);
/* Before renaming the object id (st: its attributes) from name in the
 * directory parent_fd, while SECOND is away: notes its old path if SECOND
 * may have it there (a regular file with one link or a directory, not new
 * since the copies were equal, no older note). Best effort. */
void rfs_record_moving(const struct rfs_id *id, int parent_fd, const char *name,
                       const struct stat *st);
/* The old path of (dir, ino) into buf: 1, or 0 if none. */
int rfs_record_origin(uint8_t dir, uint64_t ino, char *buf, size_t len);
/* Every old path, deepest first (origin_list). -1 out of memory. */
int rfs_record_origins(struct origin_entry **l, size_t *n);

/* True if the set is empty and complete since gen: this node changed
 * nothing its peer at gen lacks (SECOND's check at start). */
bool rfs_record_clean(uint64_t gen);

#endif
