/* Internals shared by apply.c (the ops) and apply_fid.c (the fid table). */
#ifndef VIGIL_RFS_APPLY_INT_H
#define VIGIL_RFS_APPLY_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct rfs_fid {
	uint64_t fid;
	int pfd;                        /* O_PATH|O_NOFOLLOW */
	int wfd;                        /* O_RDWR via /proc/self/fd, or -1 */
	mode_t type;                    /* S_IFMT bits */
	struct rfs_fid *hnext;          /* hash chain */
	struct rfs_fid *lprev, *lnext;  /* LRU of open wfds, most recent first */
};

struct rfs_applier {
	int root;                       /* O_PATH of the copy's root */
	uint8_t dir;
	char root_path[PATH_MAX];       /* to shorten paths in error texts */
	size_t root_path_len;
	struct rfs_fid **buckets;
	size_t nbuckets;                /* power of two */
	size_t nfids;
	struct rfs_fid *lru_head, *lru_tail;
	size_t nwfds;
	uint64_t applied_seq, durable_seq, ckpt_seq;
	bool diverged;
	uint64_t err_seq;
	int err_no;
	struct rfs_seen *seen;          /* apply_merge.c: names listed per directory */
	bool needs_full;                /* the walk met a copy unlike PRIM's record */
	int stash;                      /* apply_merge.c: objects STASH put aside, or -1 */
	size_t stashed, unstashed;      /* counts of this reintegration, for the log */
};

int rfs_fid_table_init(struct rfs_applier *a);
void rfs_fid_table_clear(struct rfs_applier *a);     /* closes all; table stays usable */
void rfs_fid_table_free(struct rfs_applier *a);

struct rfs_fid *rfs_fid_find(struct rfs_applier *a, uint64_t fid);
/* Binds fid to pfd (taken over, even on failure); an older binding of fid is
 * replaced. The type comes from fstat. 0 or -1 with errno. */
int rfs_fid_bind(struct rfs_applier *a, uint64_t fid, int pfd);
/* Closes and forgets fid; -1 with ENOENT when it is not bound. */
int rfs_fid_unbind(struct rfs_applier *a, uint64_t fid);
/* The I/O fd of a regular file fid, opened on first use (LRU). -1 with errno. */
int rfs_fid_wfd(struct rfs_applier *a, struct rfs_fid *f);
/* Takes over wfd as f's I/O fd (CREATE has one already). */
void rfs_fid_set_wfd(struct rfs_applier *a, struct rfs_fid *f, int wfd);

/* apply_merge.c: the walk of a reintegration merged into the copy SECOND
 * has (wire.h, WIRE_OPF_RESYNC). Each returns 0 or an errno, with *why
 * set when a plain strerror would mislead; an errno with needs_full set
 * means the copy is not what PRIM's record says (a full copy must
 * follow). */
/* A CREATE's name in dfd (directory fid parent), flags the op's
 * (WIRE_OPF_FRESH, WIRE_OPF_MAYBE, WIRE_OPF_ORIGIN): *reuse is an O_PATH fd
 * of the object to keep and bind (for ORIGIN, the one stashed for fid), or
 * -1 if the caller creates it (the name is free by then). */
int rfs_merge_create(struct rfs_applier *a, int dfd, uint64_t parent, uint64_t fid,
                     const char *name, mode_t mode, uint64_t rdev, const char *target,
                     uint32_t flags, int *reuse, const char **why);
/* A LINK's name: true in *done if it already names the fid's inode. */
int rfs_merge_link(struct rfs_applier *a, int dfd, uint64_t parent, const char *name, int pfd,
                   bool *done, const char **why);
/* A directory's listing is complete: what it holds that was not listed
 * goes (excluded names stay). */
int rfs_merge_prune(struct rfs_applier *a, uint64_t fid, int pfd, const char **why);
/* Drops every listing (a new connection). */
void rfs_merge_reset(struct rfs_applier *a);
/* STASH: moves the object at path (relative to the root, nothing followed)
 * into the stash under the fid's name if it is a regular file with one link
 * or a directory. Always 0: anything else, or no stash, is no error (the
 * CREATE with ORIGIN then makes the object afresh and PRIM sends it whole). */
int rfs_merge_stash(struct rfs_applier *a, uint64_t fid, const char *path);
/* Removes name in dfd, a whole tree if a directory: 0 or an errno (ENOENT
 * is no error). */
int rfs_rm_at(int dfd, const char *name);
/* apply_stash.c: moves what STASH put aside for fid to name in dfd if it
 * has that type (S_IFREG or S_IFDIR): *reuse its O_PATH fd, else -1 and the
 * caller makes the object. Always 0: a miss only costs data to send. */
int rfs_stash_take(struct rfs_applier *a, uint64_t fid, int dfd, const char *name, mode_t type,
                   int *reuse);
/* Removes the xattrs of an object kept by the merge: the walk sends the
 * ones it has. */
void rfs_merge_clear_xattrs(int pfd);

/* Path of fd relative to the root ("." for the root, "?" if unknown), for
 * error texts only. */
void rfs_fd_relpath(const struct rfs_applier *a, int fd, char *buf, size_t len);

#endif
