/* The inodes the kernel knows, keyed by the backing (st_dev, st_ino).
 *
 * Each holds an O_PATH fd to the backing object and the kernel's lookup
 * count; the FUSE node id is the struct's address (the root: FUSE_ROOT_ID).
 * Holding the fd keeps the backing inode alive, so its number cannot be
 * reused by a new file while the kernel may still name the old one, and an
 * unlinked but open file stays reachable. */
#ifndef VIGIL_RFS_INODE_H
#define VIGIL_RFS_INODE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "rfs/rfs_op.h"

struct rfs_inode {
	struct rfs_inode *next;         /* hash chain; table lock */
	int fd;                         /* O_PATH, read-only after creation */
	dev_t dev;
	ino_t ino;
	mode_t type;                    /* S_IFMT bits */
	uint64_t nlookup;               /* table lock */
	bool bound;                     /* the replica knows it (rfs_journal_bind) */
	uint8_t dir;                    /* the table's */
	bool excluded;                  /* table lock; see exclude.h */
};

struct rfs_itable {
	pthread_mutex_t lock;
	struct rfs_inode **buckets;
	size_t nbuckets;
	size_t count;
	struct rfs_inode root;          /* never counted, never freed */
	uint8_t dir;                    /* index of the replicated dir served */
};

/* root_fd: O_PATH (or O_RDONLY) fd of the backing root directory; the table
 * owns it from then on. 0, or -1 (logged). */
int rfs_itable_init(struct rfs_itable *t, int root_fd);
/* The index of the replicated directory this table serves (default 0). */
void rfs_itable_set_dir(struct rfs_itable *t, uint8_t dir);
/* Closes every fd; the kernel must be gone (after unmount). */
void rfs_itable_destroy(struct rfs_itable *t);

/* The inode of a FUSE node id. */
struct rfs_inode *rfs_inode_of(struct rfs_itable *t, uint64_t nodeid);
uint64_t rfs_inode_nodeid(struct rfs_itable *t, const struct rfs_inode *inode);

/* Looks parent/name up in the backing tree, fills *st, and returns the inode
 * with its lookup count raised by one in *out. 0 or a positive errno.
 * created: the caller just made parent/name, and its CREATE will bind it
 * for the replica; otherwise a new entry in the table is bound here. */
int rfs_inode_lookup(struct rfs_itable *t, struct rfs_inode *parent, const char *name,
		     bool created, struct stat *st, struct rfs_inode **out);
/* A created object whose CREATE was not journaled (its creation failed
 * half-way): its forget must not unbind it at the replica. */
void rfs_inode_unbound(struct rfs_inode *inode);
/* The known inode of (dev, ino), or NULL; no reference taken: the caller
 * holds one another way (the kernel is in an op on it). */
struct rfs_inode *rfs_inode_find(struct rfs_itable *t, dev_t dev, ino_t ino);
/* A rename moved the object in or out of the excluded names: it is bound
 * at the replica from now on (or not). */
void rfs_inode_set_excluded(struct rfs_itable *t, struct rfs_inode *inode, bool excluded);
/* One more lookup reference (a new hard link replied as an entry). */
void rfs_inode_ref(struct rfs_itable *t, struct rfs_inode *inode);
/* Drops n lookups; the inode is freed at zero. */
void rfs_inode_forget(struct rfs_itable *t, struct rfs_inode *inode, uint64_t n);

/* fstatat of the inode itself, not following symlinks. 0 or -1 (errno). */
int rfs_inode_stat(const struct rfs_inode *inode, struct stat *st);
struct rfs_id rfs_inode_id(const struct rfs_inode *inode);
/* "/proc/self/fd/N" of the O_PATH fd, for calls that need a path. */
void rfs_inode_procpath(const struct rfs_inode *inode, char *buf, size_t len);

size_t rfs_itable_count(struct rfs_itable *t);

#endif
