/* State shared by the FUSE operations of one vigil-rfs mount, and the few
 * helpers they all use. Include this instead of fuse_lowlevel.h. */
#ifndef VIGIL_RFS_FS_H
#define VIGIL_RFS_FS_H

#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 14)
#include <fuse_lowlevel.h>
#include <stdbool.h>

#include "rfs/rfs_inode.h"
#include "rfs/rfs_op.h"

/* Kernel caching of entries and attributes, in seconds. While mounted, the
 * mount hides the backing directory, so every change to it passes through
 * this process and the kernel invalidates what it cached for that change
 * itself: long timeouts are safe and spare a round trip per path component
 * and stat(). Negative entries are cached the same way. */
#define RFS_CACHE_TIMEOUT 86400.0

struct rfs_fs {
	struct rfs_itable itab;
	const char *dir;                /* the mount point, for messages */
	bool verbose;
	uid_t self_uid;                 /* the daemon's own ids: objects it */
	gid_t self_gid;                 /* creates for others get chowned */
	bool dont_mask;                 /* the kernel leaves the umask to us */
	bool direct_io;                 /* --cache direct (see rfs_ops.c) */
};

/* One open regular file (fuse_file_info.fh). */
struct rfs_file {
	int fd;
	int flags;                      /* open flags as the application gave them */
	bool direct;                    /* FOPEN_DIRECT_IO: no kernel page cache */
	struct rfs_file *prev, *next;   /* the open files (rfs_files_close_all) */
};

/* After the sessions end: closes the files the kernel never released (a
 * RELEASE is sent after close() returns, so a stop can come first). */
void rfs_files_close_all(void);

static inline struct rfs_fs *rfs_fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static inline struct rfs_inode *rfs_req_inode(fuse_req_t req, fuse_ino_t ino)
{
	return rfs_inode_of(&rfs_fs_of(req)->itab, ino);
}

static inline struct rfs_file *rfs_file_of(const struct fuse_file_info *fi)
{
	return (struct rfs_file *)(uintptr_t)fi->fh;
}

/* Lookup of parent/name into a reply entry (lookup count +1). 0 or errno. */
int rfs_do_lookup(fuse_req_t req, struct rfs_inode *parent, const char *name,
		  struct fuse_entry_param *e);
/* The same for an object this request just created: its CREATE, not the
 * lookup, names it to the replica. */
int rfs_do_lookup_new(fuse_req_t req, struct rfs_inode *parent, const char *name,
		      struct fuse_entry_param *e);
/* Gives an object this root daemon just created to the calling user, as
 * the kernel would have (group of a set-gid parent kept). 0 or errno. */
int rfs_give_to_caller(fuse_req_t req, struct rfs_inode *parent, struct rfs_inode *obj,
		       mode_t mode);

/* Before creating for req: the caller's umask on this worker thread, for
 * the backing file system to apply (or not, under a default ACL) exactly
 * as it would for the caller. 0 or errno. */
int rfs_caller_umask(fuse_req_t req);

/* fsync/fsyncdir of fd (the object's open file or directory): the local
 * flush and SECOND's run at the same time; 0 or errno (rfs_ops_file.c). */
int rfs_sync_both(enum rfs_op_type type, struct rfs_inode *inode, int fd, int datasync);

/* The operation tables, split by concern. */
void rfs_ops_entry(struct fuse_lowlevel_ops *ops);
void rfs_ops_file(struct fuse_lowlevel_ops *ops);
void rfs_ops_dir(struct fuse_lowlevel_ops *ops);
void rfs_ops_xattr(struct fuse_lowlevel_ops *ops);

#endif
