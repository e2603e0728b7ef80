/* Extended attributes. The inode fds are O_PATH, which the f*xattr calls
 * refuse, so these go through /proc/self/fd/N; that magic link names the
 * object itself, a symlink included (it is not followed further). */
#include <errno.h>
#include <stdlib.h>
#include <sys/xattr.h>

#include "rfs/rfs_fs.h"

/* getxattr and listxattr share the size protocol: size 0 asks for the
 * length, otherwise the value itself. */
static void reply_sized(fuse_req_t req, size_t size, ssize_t (*get)(const char *, const char *,
								     void *, size_t),
			const char *path, const char *name)
{
	char *buf = NULL;
	ssize_t n;

	if (size) {
		buf = malloc(size);
		if (!buf) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
	}
	n = get(path, name, buf, size);
	if (n < 0)
		fuse_reply_err(req, errno);
	else if (size)
		fuse_reply_buf(req, buf, (size_t)n);
	else
		fuse_reply_xattr(req, (size_t)n);
	free(buf);
}

static ssize_t get_one(const char *path, const char *name, void *buf, size_t size)
{
	return getxattr(path, name, buf, size);
}

static ssize_t list_all(const char *path, const char *name, void *buf, size_t size)
{
	(void)name;
	return listxattr(path, buf, size);
}

static void rfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char proc[64];

	rfs_inode_procpath(rfs_req_inode(req, ino), proc, sizeof(proc));
	reply_sized(req, size, get_one, proc, name);
}

static void rfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char proc[64];

	rfs_inode_procpath(rfs_req_inode(req, ino), proc, sizeof(proc));
	reply_sized(req, size, list_all, proc, NULL);
}

static void rfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			 size_t size, int flags)
{
	struct rfs_inode *inode = rfs_req_inode(req, ino);
	struct rfs_op op = { .type = RFS_OP_SETXATTR, .ino = rfs_inode_id(inode),
			     .xattr_name = name, .data = value, .len = size,
			     .flags = (uint32_t)flags };
	char proc[64];

	rfs_inode_procpath(inode, proc, sizeof(proc));
	if (setxattr(proc, name, value, size, flags) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_err(req, rfs_journal_op(&op));
}

static void rfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct rfs_inode *inode = rfs_req_inode(req, ino);
	struct rfs_op op = { .type = RFS_OP_REMOVEXATTR, .ino = rfs_inode_id(inode),
			     .xattr_name = name };
	char proc[64];

	rfs_inode_procpath(inode, proc, sizeof(proc));
	if (removexattr(proc, name) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_err(req, rfs_journal_op(&op));
}

void rfs_ops_xattr(struct fuse_lowlevel_ops *ops)
{
	ops->getxattr = rfs_getxattr;
	ops->listxattr = rfs_listxattr;
	ops->setxattr = rfs_setxattr;
	ops->removexattr = rfs_removexattr;
}
