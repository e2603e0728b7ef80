/* The description of one change made through the vigil-rfs mount, and the
 * single hook every change goes through.
 *
 * Each FUSE operation that changes data or metadata first applies the change
 * to the backing tree, then calls rfs_journal_op() with what it did, then
 * replies to the kernel. Since the kernel serialises conflicting operations
 * (a file's writes under its inode lock, a directory's entries under the
 * directory lock) until the reply, and an application only issues a
 * dependent operation after seeing the reply, the order of the calls is an
 * order the changes can be replayed in on another copy. (The kernel may
 * split one large direct write into concurrent requests: they cover
 * disjoint ranges of a write() that has not returned yet.)
 *
 * Identity of objects: (st_dev, st_ino) of the backing file. It stays
 * unique while the object is known to the kernel (the inode table holds an
 * fd to it, so its inode number cannot be reused). */
#ifndef VIGIL_RFS_OP_H
#define VIGIL_RFS_OP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

struct rfs_id {
	uint64_t dev;
	uint64_t ino;
	uint8_t dir;                    /* which replicated directory (mount) */
	bool excluded;                  /* not replicated (exclude.h) */
};

enum rfs_op_type {
	RFS_OP_CREATE,          /* regular file created by create() or open(O_CREAT) */
	RFS_OP_MKNOD,           /* any type but directory and symlink, by mknod() */
	RFS_OP_MKDIR,
	RFS_OP_SYMLINK,
	RFS_OP_LINK,            /* ino got the extra name parent/name */
	RFS_OP_UNLINK,
	RFS_OP_RMDIR,
	RFS_OP_RENAME,          /* flags: RENAME_NOREPLACE / RENAME_EXCHANGE; ino: the object moved */
	RFS_OP_SETATTR,         /* attr_mask says which fields of attr changed */
	RFS_OP_WRITE,           /* data/len at offset; flags: the open flags */
	RFS_OP_FALLOCATE,       /* flags: the fallocate mode */
	RFS_OP_COPY_RANGE,      /* len bytes from src at src_offset to ino at offset */
	RFS_OP_SETXATTR,        /* xattr_name = data/len; flags: XATTR_CREATE/REPLACE */
	RFS_OP_REMOVEXATTR,
	RFS_OP_FSYNC,           /* a durability barrier, file; flags: 1 = datasync */
	RFS_OP_FSYNCDIR,        /* a durability barrier, directory; flags: 1 = datasync */
	RFS_OP_COUNT
};

const char *rfs_op_type_str(enum rfs_op_type type);

/* attr_mask bits of RFS_OP_SETATTR. Open with O_TRUNC is journaled as a
 * SETATTR of RFS_ATTR_SIZE. */
enum {
	RFS_ATTR_MODE = 1 << 0,
	RFS_ATTR_UID = 1 << 1,
	RFS_ATTR_GID = 1 << 2,
	RFS_ATTR_SIZE = 1 << 3,
	RFS_ATTR_ATIME = 1 << 4,
	RFS_ATTR_MTIME = 1 << 5,
};

/* Pointers are valid only during the rfs_journal_op() call: a consumer that
 * keeps anything copies it. Fields an op type does not use are zero/NULL. */
struct rfs_op {
	enum rfs_op_type type;
	struct rfs_id ino;              /* the object changed or created */
	struct rfs_id parent;           /* directory holding name */
	const char *name;
	struct rfs_id new_parent;       /* RENAME, LINK: directory holding new_name */
	const char *new_name;
	const char *link_target;        /* SYMLINK */
	const char *xattr_name;         /* SETXATTR, REMOVEXATTR */
	struct rfs_id src;              /* COPY_RANGE */
	uint64_t src_offset;
	uint64_t offset;                /* WRITE, FALLOCATE, COPY_RANGE */
	uint64_t len;                   /* bytes actually written/copied; FALLOCATE length */
	const void *data;               /* WRITE: len bytes; SETXATTR: the value */
	uint32_t attr_mask;             /* SETATTR */
	uint32_t flags;
	dev_t rdev;                     /* MKNOD */
	/* Descriptors for reading times after the change (valid during the
	 * call, -1 or 0 when not set): fd of the object (WRITE, FALLOCATE,
	 * COPY_RANGE: the destination), of parent and of new_parent (entry
	 * ops: their mtimes travel with the op so the copies' directories
	 * match). */
	int fd;
	int parent_fd;
	int new_parent_fd;
	/* RENAME: ino is the object moved, attr its attributes, fd its O_PATH
	 * fd; replaced: new_name named an object that the rename replaced. */
	bool replaced;
	/* The object's attributes after the change (owner, mode, size, times
	 * as they now are: UTIME_NOW already resolved). Set for CREATE, MKNOD,
	 * MKDIR, SYMLINK, LINK and SETATTR; NULL otherwise. */
	const struct stat *attr;
};

/* Counters of the hook; read with rfs_stats_get(). */
struct rfs_stats {
	uint64_t ops[RFS_OP_COUNT];
	uint64_t bytes_written;         /* WRITE and COPY_RANGE lengths */
};

/* A change queued by rfs_journal_begin, to wait for. */
struct rfs_journal_ticket {
	uint64_t first, last;
	bool durable;
};

/* For fsync and fsyncdir only (no change of their own): queue the barrier
 * first, make the local copy durable meanwhile, then wait, so the two
 * flushes overlap. Both return 0 or a positive errno. */
int rfs_journal_begin(const struct rfs_op *op, struct rfs_journal_ticket *t);
int rfs_journal_wait(const struct rfs_journal_ticket *t);

/* Called by every changing operation after its local apply succeeded and
 * before the reply. Returns 0, or a positive errno that the operation then
 * gives the application (the local change stays applied). Thread-safe. */
int rfs_journal_op(const struct rfs_op *op);

/* The inode table tells the journal which objects the kernel knows, so
 * the replica can name them by number (docs/design/rfs.md §4.1): bind when
 * an existing object enters the table (parent/name is one of its names at
 * that moment, under the parent's lock), unbind when it leaves. A created
 * object is bound by its CREATE instead. Called under the table lock, so
 * the two keep the table's order. Never blocks for long. */
void rfs_journal_bind(uint8_t dir, uint64_t ino, uint64_t parent_ino, const char *name);
void rfs_journal_unbind(uint8_t dir, uint64_t ino);
/* An object the replica cannot follow (a hard link seen first through an
 * excluded name): the replica is not up to date from here on. */
void rfs_journal_unsure(uint8_t dir, uint64_t ino, const char *name);

/* The replication gate (rfs_ops_gate.c): held shared by each changing
 * operation from its local apply to its reply; a reintegration holds it
 * exclusively for moments. No-ops while nothing replicates. */
void rfs_gate_enter(void);
void rfs_gate_leave(void);

/* Log every journaled op at debug level (vigil-rfs --verbose). */
void rfs_journal_set_verbose(bool verbose);
void rfs_stats_get(struct rfs_stats *out);

#endif
