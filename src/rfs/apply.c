/* The applier of the SECOND: one decoded op at a time, in seq order, onto
 * the copy (docs/design/rfs.md §4.5; the contract is in apply.h). Each
 * handler returns 0 or an errno, and may name a more precise reason in
 * ctx.why; rfs_apply() then writes the one-line error text. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/log.h"
#include "rfs/apply.h"
#include "rfs/apply_int.h"

struct ctx {
	struct rfs_applier *a;
	const struct wire_op *op;
	const char *why;                /* replaces strerror in the text, if set */
};

static void proc_path(char *buf, size_t len, int fd)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
}

/* Copies a wire name (not NUL-terminated) into buf. */
static void cname(char *buf, size_t len, const char *name, size_t nlen)
{
	if (nlen >= len)
		nlen = len - 1;
	memcpy(buf, name, nlen);
	buf[nlen] = 0;
}

static int need_fid(struct ctx *c, uint64_t fid, struct rfs_fid **out)
{
	*out = rfs_fid_find(c->a, fid);
	if (!*out) {
		c->why = "fid not bound";
		return ESTALE;
	}
	return 0;
}

/* The directory fd a name is looked up in: fid 0 is the root. */
static int need_dir(struct ctx *c, uint64_t fid, int *fd)
{
	struct rfs_fid *f;
	int e;

	if (fid == 0) {
		*fd = c->a->root;
		return 0;
	}
	if ((e = need_fid(c, fid, &f)))
		return e;
	if (f->type != S_IFDIR) {
		c->why = "parent fid is not a directory";
		return ENOTDIR;
	}
	*fd = f->pfd;
	return 0;
}

static int need_wfd(struct ctx *c, struct rfs_fid *f, int *fd)
{
	*fd = rfs_fid_wfd(c->a, f);
	if (*fd >= 0)
		return 0;
	if (f->type != S_IFREG)
		c->why = "not a regular file";
	return errno;
}

/* A time of 0 is "not carried". No path: AT_EMPTY_PATH acts on fd's own
 * inode, also for a symlink. */
static int set_times(int fd, int64_t atime_ns, bool aset, int64_t mtime_ns, bool mset)
{
	struct timespec ts[2] = {
		{ 0, UTIME_OMIT },
		{ 0, UTIME_OMIT },
	};

	if (aset) {
		ts[0].tv_sec = atime_ns / 1000000000;
		ts[0].tv_nsec = atime_ns % 1000000000;
		if (ts[0].tv_nsec < 0) {
			ts[0].tv_sec--;
			ts[0].tv_nsec += 1000000000;
		}
	}
	if (mset) {
		ts[1].tv_sec = mtime_ns / 1000000000;
		ts[1].tv_nsec = mtime_ns % 1000000000;
		if (ts[1].tv_nsec < 0) {
			ts[1].tv_sec--;
			ts[1].tv_nsec += 1000000000;
		}
	}
	if (!aset && !mset)
		return 0;
	return utimensat(fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? errno : 0;
}

static int set_dir_mtime(int dfd, int64_t mtime_ns)
{
	return mtime_ns ? set_times(dfd, 0, false, mtime_ns, true) : 0;
}

/* Modes of symlinks cannot change on Linux; for anything else the proc
 * link lands on the bound inode itself, never on a path. */
static int set_mode(const struct rfs_fid *f, uint32_t mode)
{
	char proc[64];

	if (f->type == S_IFLNK)
		return 0;
	proc_path(proc, sizeof(proc), f->pfd);
	return fchmodat(AT_FDCWD, proc, mode & 07777, 0) < 0 ? errno : 0;
}

static int set_owner(const struct rfs_fid *f, uid_t uid, gid_t gid)
{
	if (fchownat(f->pfd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return errno;
	return 0;
}

static int op_bind(struct ctx *c)
{
	const struct wire_op *op = c->op;
	char name[WIRE_NAME_MAX + 1], proc[64];
	int dfd, fd, e;

	if (op->arg == 0 && op->name_len == 0) {
		proc_path(proc, sizeof(proc), c->a->root);
		fd = open(proc, O_PATH | O_CLOEXEC);
	} else {
		if (op->name_len == 0) {
			c->why = "empty name";
			return EINVAL;
		}
		if ((e = need_dir(c, op->arg, &dfd)))
			return e;
		cname(name, sizeof(name), op->name, op->name_len);
		fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return errno;
	return rfs_fid_bind(c->a, op->fid, fd) < 0 ? errno : 0;
}

static int op_unbind(struct ctx *c)
{
	if (rfs_fid_unbind(c->a, c->op->fid) < 0) {
		c->why = "fid not bound";
		return ESTALE;
	}
	return 0;
}

/* Makes the object with owner-only permissions, binds it, then sets owner,
 * mode (after chown, which clears set-id bits) and times. */
static int op_create(struct ctx *c)
{
	const struct wire_op *op = c->op;
	char name[WIRE_NAME_MAX + 1], proc[64];
	mode_t type = op->mode & S_IFMT;
	int dfd, fd = -1, wfd = -1, e;
	struct rfs_fid *f;

	if ((e = need_dir(c, op->arg, &dfd)))
		return e;
	cname(name, sizeof(name), op->name, op->name_len);
	if (op->flags & WIRE_OPF_RESYNC) {
		char *target = NULL;
		int keep;

		if (type == S_IFLNK) {
			if (!(target = malloc(WIRE_TARGET_MAX + 1)))
				return ENOMEM;
			cname(target, WIRE_TARGET_MAX + 1, op->name2, op->name2_len);
		}
		e = rfs_merge_create(c->a, dfd, op->arg, op->fid, name, op->mode, op->rdev, target,
		                     op->flags, &keep, &c->why);
		free(target);
		if (e)
			return e;
		if (keep >= 0) {
			/* Kept: the walk sends PRIM's xattrs after this. */
			rfs_merge_clear_xattrs(keep);
			fd = keep;
			goto bind;
		}
	}
	switch (type) {
	case S_IFREG:
		wfd = openat(dfd, name, O_CREAT | O_EXCL | O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (wfd < 0)
			return errno;
		proc_path(proc, sizeof(proc), wfd);
		fd = open(proc, O_PATH | O_CLOEXEC);
		break;
	case S_IFDIR:
		if (mkdirat(dfd, name, 0700) < 0)
			return errno;
		fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
		break;
	case S_IFLNK: {
		char *target = malloc(WIRE_TARGET_MAX + 1);

		if (!target)
			return ENOMEM;
		if (op->name2_len == 0) {
			free(target);
			c->why = "symlink without a target";
			return EINVAL;
		}
		cname(target, WIRE_TARGET_MAX + 1, op->name2, op->name2_len);
		e = symlinkat(target, dfd, name) < 0 ? errno : 0;
		free(target);
		if (e)
			return e;
		fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		break;
	}
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
	case S_IFSOCK:
		if (mknodat(dfd, name, type | 0600, (dev_t)op->rdev) < 0)
			return errno;
		fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		break;
	default:
		c->why = "mode has no file type";
		return EINVAL;
	}
bind:
	if (fd < 0) {
		e = errno;
		if (wfd >= 0)
			close(wfd);
		return e;
	}
	if (rfs_fid_bind(c->a, op->fid, fd) < 0) {
		e = errno;
		if (wfd >= 0)
			close(wfd);
		return e;
	}
	f = rfs_fid_find(c->a, op->fid);
	if (wfd >= 0)
		rfs_fid_set_wfd(c->a, f, wfd);  /* writes usually follow */
	if ((e = set_owner(f, op->uid, op->gid)))
		return e;
	if ((e = set_mode(f, op->mode)))
		return e;
	if (op->mtime_ns && (e = set_times(f->pfd, op->mtime_ns, true, op->mtime_ns, true)))
		return e;
	return set_dir_mtime(dfd, op->pmtime_ns);
}

static int op_link(struct ctx *c)
{
	const struct wire_op *op = c->op;
	char name[WIRE_NAME_MAX + 1], proc[64];
	struct rfs_fid *f;
	int dfd, e;

	if ((e = need_fid(c, op->fid, &f)) || (e = need_dir(c, op->arg, &dfd)))
		return e;
	cname(name, sizeof(name), op->name, op->name_len);
	if (op->flags & WIRE_OPF_RESYNC) {
		bool done;

		if ((e = rfs_merge_link(c->a, dfd, op->arg, name, f->pfd, &done, &c->why)))
			return e;
		if (done)
			return set_dir_mtime(dfd, op->pmtime_ns);
	}
	if (linkat(f->pfd, "", dfd, name, AT_EMPTY_PATH) < 0) {
		/* AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; the proc link is the
		 * same inode (AT_SYMLINK_FOLLOW follows only the magic link) */
		if (errno != ENOENT)
			return errno;
		proc_path(proc, sizeof(proc), f->pfd);
		if (linkat(AT_FDCWD, proc, dfd, name, AT_SYMLINK_FOLLOW) < 0)
			return errno;
	}
	return set_dir_mtime(dfd, op->pmtime_ns);
}

static int op_unlink(struct ctx *c)
{
	const struct wire_op *op = c->op;
	char name[WIRE_NAME_MAX + 1];
	int dfd, e;

	if (op->arg > WIRE_UNLINK_RMDIR) {
		c->why = "bad rmdir flag";
		return EINVAL;
	}
	if ((e = need_dir(c, op->fid, &dfd)))
		return e;
	cname(name, sizeof(name), op->name, op->name_len);
	if (unlinkat(dfd, name, op->arg == WIRE_UNLINK_RMDIR ? AT_REMOVEDIR : 0) < 0)
		return errno;
	return set_dir_mtime(dfd, op->pmtime_ns);
}

static int op_rename(struct ctx *c)
{
	const struct wire_op *op = c->op;
	char name[WIRE_NAME_MAX + 1], name2[WIRE_NAME_MAX + 1];
	int dfd, ndfd, e;

	if (op->rename_flags & ~(uint32_t)(WIRE_RENAME_NOREPLACE | WIRE_RENAME_EXCHANGE)) {
		c->why = "unknown rename flags";
		return EINVAL;
	}
	if ((e = need_dir(c, op->fid, &dfd)) || (e = need_dir(c, op->arg, &ndfd)))
		return e;
	cname(name, sizeof(name), op->name, op->name_len);
	cname(name2, sizeof(name2), op->name2, op->name2_len);
	if (renameat2(dfd, name, ndfd, name2, op->rename_flags) < 0)
		return errno;
	if ((e = set_dir_mtime(dfd, op->pmtime_ns)))
		return e;
	return set_dir_mtime(ndfd, op->new_pmtime_ns);
}

static int op_write(struct ctx *c)
{
	const struct wire_op *op = c->op;
	struct rfs_fid *f;
	uint32_t done = 0;
	int fd, e;

	if ((e = need_fid(c, op->fid, &f)) || (e = need_wfd(c, f, &fd)))
		return e;
	while (done < op->data_len) {
		ssize_t n = pwrite(fd, op->data + done, op->data_len - done, (off_t)(op->arg + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		if (n == 0)
			return EIO;
		done += (uint32_t)n;
	}
	if (op->flags & WIRE_OPF_SYNC) {
		if (fsync(fd) < 0)
			return errno;
		c->a->durable_seq = op->seq;
	} else if (op->flags & WIRE_OPF_DSYNC) {
		if (fdatasync(fd) < 0)
			return errno;
		c->a->durable_seq = op->seq;
	}
	return 0;
}

static int op_truncate(struct ctx *c)
{
	struct rfs_fid *f;
	int fd, e;

	if ((e = need_fid(c, c->op->fid, &f)) || (e = need_wfd(c, f, &fd)))
		return e;
	return ftruncate(fd, (off_t)c->op->arg) < 0 ? errno : 0;
}

static int op_fallocate(struct ctx *c)
{
	struct rfs_fid *f;
	int fd, e;

	if ((e = need_fid(c, c->op->fid, &f)) || (e = need_wfd(c, f, &fd)))
		return e;
	if (fallocate(fd, (int)c->op->fl_mode, (off_t)c->op->arg, (off_t)c->op->len) < 0)
		return errno;
	return 0;
}

/* PRIM ships the bytes it actually copied, so a short source is divergence. */
static int op_copy(struct ctx *c)
{
	const struct wire_op *op = c->op;
	struct rfs_fid *fin, *fout;
	loff_t off_in = (loff_t)op->off_in, off_out = (loff_t)op->arg;
	uint64_t left = op->len;
	int in, out, e;

	/* in first: taking out's fd then cannot evict in's (LRU > 2) */
	if ((e = need_fid(c, op->fid_in, &fin)) || (e = need_wfd(c, fin, &in)))
		return e;
	if ((e = need_fid(c, op->fid, &fout)) || (e = need_wfd(c, fout, &out)))
		return e;
	while (left) {
		ssize_t n = copy_file_range(in, &off_in, out, &off_out, left, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		if (n == 0) {
			c->why = "source file ends before the copied range";
			return EIO;
		}
		left -= (uint64_t)n;
	}
	return 0;
}

static int op_setattr(struct ctx *c)
{
	const struct wire_op *op = c->op;
	uint64_t known = WIRE_ATTR_MODE | WIRE_ATTR_UID | WIRE_ATTR_GID | WIRE_ATTR_ATIME |
	                 WIRE_ATTR_MTIME;
	struct rfs_fid *f;
	int e;

	if (op->arg & ~known) {
		c->why = "unknown attribute mask bits";
		return EINVAL;
	}
	if ((e = need_fid(c, op->fid, &f)))
		return e;
	/* The walk's last word on a directory: its listing is complete. */
	if ((op->flags & WIRE_OPF_RESYNC) && f->type == S_IFDIR &&
	    (e = rfs_merge_prune(c->a, op->fid, f->pfd, &c->why)))
		return e;
	if (op->arg & (WIRE_ATTR_UID | WIRE_ATTR_GID)) {
		uid_t uid = op->arg & WIRE_ATTR_UID ? op->uid : (uid_t)-1;
		gid_t gid = op->arg & WIRE_ATTR_GID ? op->gid : (gid_t)-1;

		if ((e = set_owner(f, uid, gid)))
			return e;
	}
	if (op->arg & WIRE_ATTR_MODE) {
		if (f->type == S_IFLNK) {
			c->why = "mode of a symlink";
			return EOPNOTSUPP;
		}
		if ((e = set_mode(f, op->mode)))
			return e;
	}
	return set_times(f->pfd, op->atime_ns, op->arg & WIRE_ATTR_ATIME, op->mtime_ns,
	                 op->arg & WIRE_ATTR_MTIME);
}

static int op_times(struct ctx *c)
{
	const struct wire_op *op = c->op;
	struct rfs_fid *f;
	int e;

	if (op->arg & ~(uint64_t)(WIRE_ATTR_ATIME | WIRE_ATTR_MTIME)) {
		c->why = "TIMES mask has more than ATIME|MTIME";
		return EINVAL;
	}
	if ((e = need_fid(c, op->fid, &f)))
		return e;
	return set_times(f->pfd, op->atime_ns, op->arg & WIRE_ATTR_ATIME, op->mtime_ns,
	                 op->arg & WIRE_ATTR_MTIME);
}

/* The proc link resolves to the bound inode itself, for a symlink too (its
 * target is not followed), so xattrs go to exactly the fid's object. */
static int op_xattr(struct ctx *c)
{
	const struct wire_op *op = c->op;
	char name[WIRE_NAME_MAX + 1], proc[64];
	struct rfs_fid *f;
	int e, r;

	if ((e = need_fid(c, op->fid, &f)))
		return e;
	cname(name, sizeof(name), op->name, op->name_len);
	proc_path(proc, sizeof(proc), f->pfd);
	if (op->code == WIRE_OP_SETXATTR) {
		if (op->arg & ~(uint64_t)(WIRE_XATTR_CREATE | WIRE_XATTR_REPLACE)) {
			c->why = "bad xattr flags";
			return EINVAL;
		}
		r = setxattr(proc, name, op->data, op->data_len, (int)op->arg);
	} else {
		r = removexattr(proc, name);
	}
	return r < 0 ? errno : 0;
}

static int op_fsync(struct ctx *c)
{
	const struct wire_op *op = c->op;
	char proc[64];
	struct rfs_fid *f;
	int fd, e, r;

	if ((e = need_fid(c, op->fid, &f)))
		return e;
	if (op->code == WIRE_OP_FSYNCDIR && f->type != S_IFDIR) {
		c->why = "FSYNCDIR of a non-directory";
		return ENOTDIR;
	}
	if (f->type == S_IFREG) {
		if ((e = need_wfd(c, f, &fd)))
			return e;
		r = op->arg ? fdatasync(fd) : fsync(fd);
		if (r < 0)
			return errno;
	} else if (f->type == S_IFDIR) {
		/* O_PATH fds cannot be synced; a short-lived read fd can */
		proc_path(proc, sizeof(proc), f->pfd);
		fd = open(proc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return errno;
		r = op->arg ? fdatasync(fd) : fsync(fd);
		e = r < 0 ? errno : 0;
		close(fd);
		if (e)
			return e;
	} else {
		c->why = "fsync of a special file";
		return EINVAL;
	}
	c->a->durable_seq = op->seq;
	return 0;
}

static int op_barrier(struct ctx *c)
{
	if (syncfs(c->a->root) < 0)
		return errno;
	c->a->durable_seq = c->op->seq;
	c->a->ckpt_seq = c->op->seq;
	return 0;
}

static int dispatch(struct ctx *c)
{
	switch (c->op->code) {
	case WIRE_OP_BIND: return op_bind(c);
	case WIRE_OP_UNBIND: return op_unbind(c);
	case WIRE_OP_CREATE: return op_create(c);
	case WIRE_OP_LINK: return op_link(c);
	case WIRE_OP_UNLINK: return op_unlink(c);
	case WIRE_OP_RENAME: return op_rename(c);
	case WIRE_OP_WRITE: return op_write(c);
	case WIRE_OP_TRUNCATE: return op_truncate(c);
	case WIRE_OP_FALLOCATE: return op_fallocate(c);
	case WIRE_OP_COPY: return op_copy(c);
	case WIRE_OP_SETATTR: return op_setattr(c);
	case WIRE_OP_TIMES: return op_times(c);
	case WIRE_OP_SETXATTR:
	case WIRE_OP_RMXATTR: return op_xattr(c);
	case WIRE_OP_FSYNC:
	case WIRE_OP_FSYNCDIR: return op_fsync(c);
	case WIRE_OP_BARRIER: return op_barrier(c);
	case WIRE_OP_STASH: {
		char path[WIRE_TARGET_MAX + 1];  /* the decoder checked its length */

		cname(path, sizeof(path), c->op->name, c->op->name_len);
		return rfs_merge_stash(c->a, c->op->fid, path);
	}
	case WIRE_OP_HASHREQ:
	case WIRE_OP_SETGEN:
		c->why = "not handled by the applier yet";
		return EOPNOTSUPP;
	default:
		c->why = "unknown op code";
		return EINVAL;
	}
}

/* "fid 12 (db/x)", "fid 12 (not bound)", or "." for fid 0 as a parent. */
static void fid_desc(struct rfs_applier *a, uint64_t fid, bool parent, char *buf, size_t len)
{
	struct rfs_fid *f;
	char path[PATH_MAX];

	if (parent && fid == 0) {
		snprintf(buf, len, "root");
		return;
	}
	f = rfs_fid_find(a, fid);
	if (!f) {
		snprintf(buf, len, "fid %" PRIu64 " (not bound)", fid);
		return;
	}
	rfs_fd_relpath(a, f->pfd, path, sizeof(path));
	snprintf(buf, len, "fid %" PRIu64 " (%s)", fid, path);
}

/* What the op touched, for the error text. */
static void op_desc(struct rfs_applier *a, const struct wire_op *op, char *buf, size_t len)
{
	char d1[PATH_MAX + 48], d2[PATH_MAX + 48];
	int n1 = op->name_len, n2 = op->name2_len;

	switch (op->code) {
	case WIRE_OP_BIND:
	case WIRE_OP_CREATE:
		fid_desc(a, op->arg, true, d1, sizeof(d1));
		snprintf(buf, len, "fid %" PRIu64 " as '%.*s' in %s", op->fid, n1, op->name, d1);
		break;
	case WIRE_OP_LINK:
		fid_desc(a, op->fid, false, d1, sizeof(d1));
		fid_desc(a, op->arg, true, d2, sizeof(d2));
		snprintf(buf, len, "%s as '%.*s' in %s", d1, n1, op->name, d2);
		break;
	case WIRE_OP_UNLINK:
		fid_desc(a, op->fid, true, d1, sizeof(d1));
		snprintf(buf, len, "'%.*s' in %s", n1, op->name, d1);
		break;
	case WIRE_OP_RENAME:
		fid_desc(a, op->fid, true, d1, sizeof(d1));
		fid_desc(a, op->arg, true, d2, sizeof(d2));
		snprintf(buf, len, "'%.*s' in %s to '%.*s' in %s", n1, op->name, d1, n2, op->name2, d2);
		break;
	case WIRE_OP_WRITE:
		fid_desc(a, op->fid, false, d1, sizeof(d1));
		snprintf(buf, len, "%s @%" PRIu64 " len %" PRIu32, d1, op->arg, op->data_len);
		break;
	case WIRE_OP_TRUNCATE:
		fid_desc(a, op->fid, false, d1, sizeof(d1));
		snprintf(buf, len, "%s to %" PRIu64, d1, op->arg);
		break;
	case WIRE_OP_FALLOCATE:
		fid_desc(a, op->fid, false, d1, sizeof(d1));
		snprintf(buf, len, "%s @%" PRIu64 " len %" PRIu64 " mode 0x%x", d1, op->arg, op->len,
		         op->fl_mode);
		break;
	case WIRE_OP_COPY:
		fid_desc(a, op->fid, false, d1, sizeof(d1));
		fid_desc(a, op->fid_in, false, d2, sizeof(d2));
		snprintf(buf, len, "%s @%" PRIu64 " from %s @%" PRIu64 " len %" PRIu64, d1, op->arg, d2,
		         op->off_in, op->len);
		break;
	case WIRE_OP_SETXATTR:
	case WIRE_OP_RMXATTR:
		fid_desc(a, op->fid, false, d1, sizeof(d1));
		snprintf(buf, len, "%s xattr '%.*s'", d1, n1, op->name);
		break;
	case WIRE_OP_BARRIER:
	case WIRE_OP_SETGEN:
		snprintf(buf, len, "id %" PRIu64, op->arg);
		break;
	case WIRE_OP_STASH:
		snprintf(buf, len, "fid %" PRIu64 " from '%.*s'", op->fid, n1, op->name);
		break;
	default:
		fid_desc(a, op->fid, false, d1, sizeof(d1));
		snprintf(buf, len, "%s", d1);
		break;
	}
}

static int fail(struct rfs_applier *a, const struct wire_op *op, int err_no, const char *why,
                char *err, size_t errlen)
{
	char desc[2 * PATH_MAX + 200], text[RFS_APPLY_ERR_LEN], tail[192];
	int tn, room;

	a->diverged = true;
	a->err_seq = op->seq;
	a->err_no = err_no;
	op_desc(a, op, desc, sizeof(desc));
	/* long paths are cut, never the reason (the text must fit an ERROR) */
	tn = snprintf(tail, sizeof(tail), ": %s%s%s", why ? why : strerror(err_no), why ? " - " : "",
	              why ? strerror(err_no) : "");
	if (tn < 0 || tn >= (int)sizeof(tail))
		tn = (int)sizeof(tail) - 1;
	room = (int)sizeof(text) - 64 - tn;
	if (snprintf(text, sizeof(text), "applying %s seq %" PRIu64 " %.*s%s", wire_code_str(op->code),
	             op->seq, room, desc, tail) >= (int)sizeof(text))
		log_debug("rfs applier: error text cut");
	log_error("rfs dir %u: %s", a->dir, text);
	if (err && errlen)
		snprintf(err, errlen, "%s", text);
	return -1;
}

int rfs_apply(struct rfs_applier *a, const struct wire_op *op, char *err, size_t errlen)
{
	struct ctx c = { .a = a, .op = op };
	int e;

	if (a->diverged) {
		/* name the first failure, not this op: that is what needs fixing */
		if (err && errlen)
			snprintf(err, errlen, "applying %s seq %" PRIu64 ": refused, diverged at seq %" PRIu64
			         " (%s)", wire_code_str(op->code), op->seq, a->err_seq,
			         strerror(a->err_no));
		return -1;
	}
	if (op->seq <= a->applied_seq) {
		char why[96];

		snprintf(why, sizeof(why), "seq not above the last applied %" PRIu64, a->applied_seq);
		return fail(a, op, EPROTO, why, err, errlen);
	}
	if (op->dir != a->dir && op->code != WIRE_OP_BARRIER && op->code != WIRE_OP_SETGEN) {
		char why[64];

		snprintf(why, sizeof(why), "op for dir %u, applier of dir %u", op->dir, a->dir);
		return fail(a, op, EPROTO, why, err, errlen);
	}
	e = dispatch(&c);
	if (e)
		return fail(a, op, e, c.why, err, errlen);
	a->applied_seq = op->seq;
	return 0;
}

struct rfs_applier *rfs_applier_new(int root_dirfd, uint8_t dir_index)
{
	struct rfs_applier *a = calloc(1, sizeof(*a));
	char proc[64];
	ssize_t n;

	if (!a) {
		log_error("rfs applier: out of memory");
		return NULL;
	}
	/* a readable dir fd serves openat() and syncfs() alike */
	proc_path(proc, sizeof(proc), root_dirfd);
	a->root = open(proc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (a->root < 0) {
		log_error("rfs applier dir %u: opening the copy's root (fd %d): %s", dir_index,
		          root_dirfd, strerror(errno));
		free(a);
		return NULL;
	}
	n = readlink(proc, a->root_path, sizeof(a->root_path) - 1);
	if (n > 1) {
		a->root_path[n] = 0;
		a->root_path_len = (size_t)n;
	} else {
		a->root_path[0] = 0;
	}
	a->dir = dir_index;
	a->stash = -1;
	if (rfs_fid_table_init(a) < 0) {
		log_error("rfs applier: out of memory");
		close(a->root);
		free(a);
		return NULL;
	}
	return a;
}

void rfs_applier_free(struct rfs_applier *a)
{
	if (!a)
		return;
	rfs_merge_reset(a);
	rfs_applier_set_stash(a, NULL);
	rfs_fid_table_free(a);
	close(a->root);
	free(a);
}

void rfs_applier_reset(struct rfs_applier *a)
{
	rfs_fid_table_clear(a);
	rfs_merge_reset(a);
	a->applied_seq = a->durable_seq = a->ckpt_seq = 0;
	a->diverged = false;
	a->err_seq = 0;
	a->err_no = 0;
}

int rfs_applier_checkpoint(struct rfs_applier *a)
{
	uint64_t seq = a->applied_seq;

	if (syncfs(a->root) < 0) {
		log_error("rfs applier dir %u: syncfs of the copy: %s", a->dir, strerror(errno));
		return -1;
	}
	a->ckpt_seq = seq;
	if (a->durable_seq < seq)
		a->durable_seq = seq;
	return 0;
}

uint64_t rfs_applier_applied_seq(const struct rfs_applier *a)
{
	return a->applied_seq;
}

uint64_t rfs_applier_durable_seq(const struct rfs_applier *a)
{
	return a->durable_seq;
}

uint64_t rfs_applier_ckpt_seq(const struct rfs_applier *a)
{
	return a->ckpt_seq;
}

bool rfs_applier_diverged(const struct rfs_applier *a, uint64_t *err_seq, int *err_no)
{
	if (err_seq)
		*err_seq = a->err_seq;
	if (err_no)
		*err_no = a->err_no;
	return a->diverged;
}

bool rfs_applier_needs_full(const struct rfs_applier *a)
{
	return a->needs_full;
}

size_t rfs_applier_nfids(const struct rfs_applier *a)
{
	return a->nfids;
}

size_t rfs_applier_nwfds(const struct rfs_applier *a)
{
	return a->nwfds;
}
