/* The replication gate around every FUSE operation that changes the tree
 * or names an object to the replica (docs/design/rfs.md §5.4): each holds
 * it shared from its local apply to its reply, so a reintegration that
 * takes it exclusively sees no change half done (applied here but not yet
 * queued). One wrapper per operation; the operations never nest.
 *
 * The wrappers of the operations that change a file's data or a
 * directory's names also mark those objects HOT in the record before the
 * local change (record.h, §5.1): a crash after the change but before SECOND
 * has it must leave a trace on disk. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "rfs/exclude.h"
#include "rfs/record.h"
#include "rfs/rfs_fs.h"
#include "rfs/rfs_ops.h"
#include "rfs/stream.h"

struct hot {
	struct rfs_id id[4];
	int n;
};

static struct rfs_id id_of(fuse_req_t r, fuse_ino_t i)
{
	return rfs_inode_id(rfs_req_inode(r, i));
}

/* 0, or -1: the change must not happen (the record could not say so). */
static int heat(struct hot *h, struct rfs_id id)
{
	/* Owed a done even when it fails: the op counts as under way. */
	h->id[h->n++] = id;
	return rfs_record_hot(&id);
}

static void cool(struct hot *h)
{
	uint64_t seq = h->n ? rfs_stream_seq() : 0;

	for (int k = 0; k < h->n; k++)
		rfs_record_done(&h->id[k], seq);
}

/* The object a rename moves: a directory is made WHOLE durably (its subtree
 * must follow it to its new name after a crash), anything else HOT. */
static int heat_moved(struct hot *h, fuse_req_t r, fuse_ino_t p, const char *n)
{
	struct rfs_id pid = id_of(r, p), id = pid;
	struct stat st;

	if (fstatat(rfs_req_inode(r, p)->fd, n, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;       /* the rename itself fails the same way */
	id.ino = st.st_ino;
	id.excluded = pid.excluded || rfs_excluded_name(n);
	/* Connected, the rename is shipped: SECOND moves it itself. */
	if (!rfs_stream_connected())
		rfs_record_moving(&id, rfs_req_inode(r, p)->fd, n, &st);
	if (S_ISDIR(st.st_mode))
		return rfs_record_whole_now(&id);
	return heat(h, id);
}

#define GATE(name, params, args, pre)                                     \
	static __typeof__(((struct fuse_lowlevel_ops *)0)->name) real_##name; \
	static void gate_##name params                                    \
	{                                                                 \
		struct hot h = { .n = 0 };                                \
		rfs_gate_enter();                                         \
		if ((pre) < 0)                                            \
			fuse_reply_err(r, EIO);                           \
		else                                                      \
			real_##name args;                                 \
		cool(&h);                                                 \
		rfs_gate_leave();                                         \
	}

#define NONE 0
#define SIZE_CHANGE(i, v) (((v) & FUSE_SET_ATTR_SIZE) ? heat(&h, id_of(r, i)) : 0)

GATE(lookup, (fuse_req_t r, fuse_ino_t p, const char *n), (r, p, n), NONE)
GATE(forget, (fuse_req_t r, fuse_ino_t i, uint64_t n), (r, i, n), NONE)
GATE(forget_multi, (fuse_req_t r, size_t c, struct fuse_forget_data *f), (r, c, f), NONE)
GATE(setattr, (fuse_req_t r, fuse_ino_t i, struct stat *a, int v, struct fuse_file_info *fi),
     (r, i, a, v, fi), SIZE_CHANGE(i, v))
GATE(mknod, (fuse_req_t r, fuse_ino_t p, const char *n, mode_t m, dev_t d), (r, p, n, m, d),
     heat(&h, id_of(r, p)))
GATE(mkdir, (fuse_req_t r, fuse_ino_t p, const char *n, mode_t m), (r, p, n, m),
     heat(&h, id_of(r, p)))
GATE(symlink, (fuse_req_t r, const char *l, fuse_ino_t p, const char *n), (r, l, p, n),
     heat(&h, id_of(r, p)))
GATE(link, (fuse_req_t r, fuse_ino_t i, fuse_ino_t p, const char *n), (r, i, p, n),
     heat(&h, id_of(r, i)) < 0 ? -1 : heat(&h, id_of(r, p)))
GATE(unlink, (fuse_req_t r, fuse_ino_t p, const char *n), (r, p, n), NONE)
GATE(rmdir, (fuse_req_t r, fuse_ino_t p, const char *n), (r, p, n), NONE)
GATE(rename, (fuse_req_t r, fuse_ino_t p, const char *n, fuse_ino_t np, const char *nn,
              unsigned int f), (r, p, n, np, nn, f),
     heat_moved(&h, r, p, n) < 0 || heat(&h, id_of(r, np)) < 0 ||
     ((f & RENAME_EXCHANGE) && heat_moved(&h, r, np, nn) < 0) ? -1 : 0)
GATE(open, (fuse_req_t r, fuse_ino_t i, struct fuse_file_info *fi), (r, i, fi), NONE)
GATE(create, (fuse_req_t r, fuse_ino_t p, const char *n, mode_t m, struct fuse_file_info *fi),
     (r, p, n, m, fi), heat(&h, id_of(r, p)))
GATE(write_buf, (fuse_req_t r, fuse_ino_t i, struct fuse_bufvec *b, off_t o,
                 struct fuse_file_info *fi), (r, i, b, o, fi), heat(&h, id_of(r, i)))
GATE(fsync, (fuse_req_t r, fuse_ino_t i, int d, struct fuse_file_info *fi), (r, i, d, fi), NONE)
GATE(fsyncdir, (fuse_req_t r, fuse_ino_t i, int d, struct fuse_file_info *fi), (r, i, d, fi),
     NONE)
GATE(fallocate, (fuse_req_t r, fuse_ino_t i, int m, off_t o, off_t l, struct fuse_file_info *fi),
     (r, i, m, o, l, fi), heat(&h, id_of(r, i)))
GATE(copy_file_range, (fuse_req_t r, fuse_ino_t ii, off_t oi, struct fuse_file_info *fi,
                       fuse_ino_t io, off_t oo, struct fuse_file_info *fo, size_t l, int f),
     (r, ii, oi, fi, io, oo, fo, l, f), heat(&h, id_of(r, io)))
GATE(setxattr, (fuse_req_t r, fuse_ino_t i, const char *n, const char *v, size_t s, int f),
     (r, i, n, v, s, f), NONE)
GATE(removexattr, (fuse_req_t r, fuse_ino_t i, const char *n), (r, i, n), NONE)
GATE(readdirplus, (fuse_req_t r, fuse_ino_t i, size_t s, off_t o, struct fuse_file_info *fi),
     (r, i, s, o, fi), NONE)

#define WRAP(name)                     \
	do {                           \
		real_##name = ops->name; \
		ops->name = gate_##name; \
	} while (0)

void rfs_ops_gate(struct fuse_lowlevel_ops *ops)
{
	WRAP(lookup);
	WRAP(forget);
	WRAP(forget_multi);
	WRAP(setattr);
	WRAP(mknod);
	WRAP(mkdir);
	WRAP(symlink);
	WRAP(link);
	WRAP(unlink);
	WRAP(rmdir);
	WRAP(rename);
	WRAP(open);
	WRAP(create);
	WRAP(write_buf);
	WRAP(fsync);
	WRAP(fsyncdir);
	WRAP(fallocate);
	WRAP(copy_file_range);
	WRAP(setxattr);
	WRAP(removexattr);
	WRAP(readdirplus);
}
