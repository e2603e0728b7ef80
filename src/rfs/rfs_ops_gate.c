/* The replication gate around every FUSE operation that changes the tree
 * or names an object to the replica (docs/design/rfs.md §5.4): each holds
 * it shared from its local apply to its reply, so a reintegration that
 * takes it exclusively sees no change half done (applied here but not yet
 * queued). One wrapper per operation; the operations never nest. */
#include "rfs/rfs_fs.h"
#include "rfs/rfs_ops.h"

#define GATE(name, params, args)                                   \
	static __typeof__(((struct fuse_lowlevel_ops *)0)->name) real_##name; \
	static void gate_##name params                                 \
	{                                                              \
		rfs_gate_enter();                                      \
		real_##name args;                                      \
		rfs_gate_leave();                                      \
	}

GATE(lookup, (fuse_req_t r, fuse_ino_t p, const char *n), (r, p, n))
GATE(forget, (fuse_req_t r, fuse_ino_t i, uint64_t n), (r, i, n))
GATE(forget_multi, (fuse_req_t r, size_t c, struct fuse_forget_data *f), (r, c, f))
GATE(setattr, (fuse_req_t r, fuse_ino_t i, struct stat *a, int v, struct fuse_file_info *fi),
     (r, i, a, v, fi))
GATE(mknod, (fuse_req_t r, fuse_ino_t p, const char *n, mode_t m, dev_t d), (r, p, n, m, d))
GATE(mkdir, (fuse_req_t r, fuse_ino_t p, const char *n, mode_t m), (r, p, n, m))
GATE(symlink, (fuse_req_t r, const char *l, fuse_ino_t p, const char *n), (r, l, p, n))
GATE(link, (fuse_req_t r, fuse_ino_t i, fuse_ino_t p, const char *n), (r, i, p, n))
GATE(unlink, (fuse_req_t r, fuse_ino_t p, const char *n), (r, p, n))
GATE(rmdir, (fuse_req_t r, fuse_ino_t p, const char *n), (r, p, n))
GATE(rename, (fuse_req_t r, fuse_ino_t p, const char *n, fuse_ino_t np, const char *nn,
              unsigned int f), (r, p, n, np, nn, f))
GATE(open, (fuse_req_t r, fuse_ino_t i, struct fuse_file_info *fi), (r, i, fi))
GATE(create, (fuse_req_t r, fuse_ino_t p, const char *n, mode_t m, struct fuse_file_info *fi),
     (r, p, n, m, fi))
GATE(write_buf, (fuse_req_t r, fuse_ino_t i, struct fuse_bufvec *b, off_t o,
                 struct fuse_file_info *fi), (r, i, b, o, fi))
GATE(fsync, (fuse_req_t r, fuse_ino_t i, int d, struct fuse_file_info *fi), (r, i, d, fi))
GATE(fsyncdir, (fuse_req_t r, fuse_ino_t i, int d, struct fuse_file_info *fi), (r, i, d, fi))
GATE(fallocate, (fuse_req_t r, fuse_ino_t i, int m, off_t o, off_t l, struct fuse_file_info *fi),
     (r, i, m, o, l, fi))
GATE(copy_file_range, (fuse_req_t r, fuse_ino_t ii, off_t oi, struct fuse_file_info *fi,
                       fuse_ino_t io, off_t oo, struct fuse_file_info *fo, size_t l, int f),
     (r, ii, oi, fi, io, oo, fo, l, f))
GATE(setxattr, (fuse_req_t r, fuse_ino_t i, const char *n, const char *v, size_t s, int f),
     (r, i, n, v, s, f))
GATE(removexattr, (fuse_req_t r, fuse_ino_t i, const char *n), (r, i, n))
GATE(readdirplus, (fuse_req_t r, fuse_ino_t i, size_t s, off_t o, struct fuse_file_info *fi),
     (r, i, s, o, fi))

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
