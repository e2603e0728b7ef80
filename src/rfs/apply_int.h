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

/* Path of fd relative to the root ("." for the root, "?" if unknown), for
 * error texts only. */
void rfs_fd_relpath(const struct rfs_applier *a, int fd, char *buf, size_t len);

#endif
