/* Name and attribute operations: lookup/forget, getattr/setattr, creating,
 * linking, removing and renaming entries, readlink, statfs. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/log.h"
#include "rfs/exclude.h"
#include "rfs/rfs_fs.h"

static int lookup(fuse_req_t req, struct rfs_inode *parent, const char *name, bool created,
		  struct fuse_entry_param *e)
{
	struct rfs_fs *fs = rfs_fs_of(req);
	struct rfs_inode *n;
	int err;

	memset(e, 0, sizeof(*e));
	e->attr_timeout = RFS_CACHE_TIMEOUT;
	e->entry_timeout = RFS_CACHE_TIMEOUT;
	err = rfs_inode_lookup(&fs->itab, parent, name, created, &e->attr, &n);
	if (err)
		return err;
	e->ino = rfs_inode_nodeid(&fs->itab, n);
	return 0;
}

int rfs_do_lookup(fuse_req_t req, struct rfs_inode *parent, const char *name,
		  struct fuse_entry_param *e)
{
	return lookup(req, parent, name, false, e);
}

int rfs_do_lookup_new(fuse_req_t req, struct rfs_inode *parent, const char *name,
		      struct fuse_entry_param *e)
{
	return lookup(req, parent, name, true, e);
}

int rfs_give_to_caller(fuse_req_t req, struct rfs_inode *parent, struct rfs_inode *obj,
		       mode_t mode)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct rfs_fs *fs = rfs_fs_of(req);
	struct stat pst;
	gid_t gid = ctx->gid;
	char proc[64];

	/* Only root can give files away; a non-root daemon serves its own
	 * user, whose files these already are. */
	if (fs->self_uid != 0 || (ctx->uid == fs->self_uid && ctx->gid == fs->self_gid))
		return 0;
	if (rfs_inode_stat(parent, &pst) < 0)
		return errno;
	if (pst.st_mode & S_ISGID)
		gid = (gid_t)-1;        /* inherited from the set-gid directory */
	if (fchownat(obj->fd, "", ctx->uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return errno;
	/* chown clears the set-id bits of a file; put back what was asked
	 * (the kernel already dropped what the caller may not set). */
	if (S_ISREG(obj->type) && (mode & (S_ISUID | S_ISGID))) {
		rfs_inode_procpath(obj, proc, sizeof(proc));
		if (chmod(proc, mode & 07777) < 0)
			return errno;
	}
	return 0;
}

int rfs_caller_umask(fuse_req_t req)
{
	/* umask is per process, unless a thread unshares its fs struct: each
	 * worker does so once, then sets the caller's umask before creating. */
	static __thread bool own_fs;

	if (!rfs_fs_of(req)->dont_mask)
		return 0;               /* the kernel applied it; ours stays 0 */
	if (!own_fs) {
		if (unshare(CLONE_FS) < 0) {
			log_error("unshare(CLONE_FS): %s", strerror(errno));
			return errno;
		}
		own_fs = true;
	}
	umask(fuse_req_ctx(req)->umask);
	return 0;
}

static void rfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int err = rfs_do_lookup(req, rfs_req_inode(req, parent), name, &e);

	if (err == ENOENT) {
		/* A negative entry the kernel may cache: a later create of the
		 * name passes through the kernel, which drops it. */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = RFS_CACHE_TIMEOUT;
		fuse_reply_entry(req, &e);
	} else if (err) {
		if (err == EMFILE || err == ENFILE)
			log_error("lookup %s: out of file descriptors", name);
		fuse_reply_err(req, err);
	} else {
		fuse_reply_entry(req, &e);
	}
}

static void rfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	rfs_inode_forget(&rfs_fs_of(req)->itab, rfs_req_inode(req, ino), nlookup);
	fuse_reply_none(req);
}

static void rfs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct rfs_fs *fs = rfs_fs_of(req);

	for (size_t i = 0; i < count; i++)
		rfs_inode_forget(&fs->itab, rfs_inode_of(&fs->itab, forgets[i].ino),
				 forgets[i].nlookup);
	fuse_reply_none(req);
}

static void rfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	if (rfs_inode_stat(rfs_req_inode(req, ino), &st) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_attr(req, &st, RFS_CACHE_TIMEOUT);
}

static struct timespec time_arg(int valid, int set_bit, int now_bit, const struct timespec *ts)
{
	if (valid & now_bit)
		return (struct timespec){ .tv_nsec = UTIME_NOW };
	if (valid & set_bit)
		return *ts;
	return (struct timespec){ .tv_nsec = UTIME_OMIT };
}

/* Applies each requested change in turn; what was applied is journaled even
 * when a later part fails, so the journal never misses a change. */
static void rfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
			struct fuse_file_info *fi)
{
	struct rfs_inode *inode = rfs_req_inode(req, ino);
	/* The kernel passes the open file only for ftruncate(), of a
	 * regular file; the fd may be write-only, which truncate() needs. */
	struct rfs_file *f = fi && S_ISREG(inode->type) ? rfs_file_of(fi) : NULL;
	struct rfs_op op = { .type = RFS_OP_SETATTR, .ino = rfs_inode_id(inode) };
	struct stat st;
	char proc[64];
	int err = 0, jerr;

	rfs_inode_procpath(inode, proc, sizeof(proc));
	if (valid & FUSE_SET_ATTR_MODE) {
		if (chmod(proc, attr->st_mode & 07777) < 0)
			goto fail;
		op.attr_mask |= RFS_ATTR_MODE;
	}
	if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uid_t uid = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t gid = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;

		if (fchownat(inode->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			goto fail;
		op.attr_mask |= (valid & FUSE_SET_ATTR_UID ? RFS_ATTR_UID : 0) |
				(valid & FUSE_SET_ATTR_GID ? RFS_ATTR_GID : 0);
	}
	if (valid & FUSE_SET_ATTR_SIZE) {
		if ((f ? ftruncate(f->fd, attr->st_size) : truncate(proc, attr->st_size)) < 0)
			goto fail;
		op.attr_mask |= RFS_ATTR_SIZE;
	}
	if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		struct timespec tv[2] = {
			time_arg(valid, FUSE_SET_ATTR_ATIME, FUSE_SET_ATTR_ATIME_NOW, &attr->st_atim),
			time_arg(valid, FUSE_SET_ATTR_MTIME, FUSE_SET_ATTR_MTIME_NOW, &attr->st_mtim),
		};

		if (utimensat(inode->fd, "", tv, AT_EMPTY_PATH) < 0)
			goto fail;
		op.attr_mask |= (valid & FUSE_SET_ATTR_ATIME ? RFS_ATTR_ATIME : 0) |
				(valid & FUSE_SET_ATTR_MTIME ? RFS_ATTR_MTIME : 0);
	}
	goto done;
fail:
	err = errno;
done:
	if (rfs_inode_stat(inode, &st) < 0) {
		if (!err)
			err = errno;
		if (op.attr_mask)
			log_error("setattr of inode %lu applied but not journaled: stat: %s",
				  (unsigned long)inode->ino, strerror(errno));
		fuse_reply_err(req, err);
		return;
	}
	if (op.attr_mask) {
		op.attr = &st;
		jerr = rfs_journal_op(&op);
		if (!err)
			err = jerr;
	}
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_attr(req, &st, RFS_CACHE_TIMEOUT);
}

static void rfs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	ssize_t n = readlinkat(rfs_req_inode(req, ino)->fd, "", buf, sizeof(buf));

	if (n < 0)
		fuse_reply_err(req, errno);
	else if ((size_t)n >= sizeof(buf))
		fuse_reply_err(req, ENAMETOOLONG);
	else {
		buf[n] = '\0';
		fuse_reply_readlink(req, buf);
	}
}

/* mknod, mkdir and symlink: create, look up, give to the caller, journal. */
static void make_node(fuse_req_t req, fuse_ino_t parent_ino, const char *name, mode_t mode,
		      dev_t rdev, const char *link)
{
	struct rfs_fs *fs = rfs_fs_of(req);
	struct rfs_inode *parent = rfs_req_inode(req, parent_ino), *obj;
	struct fuse_entry_param e;
	struct rfs_op op = { .name = name, .link_target = link, .rdev = rdev };
	int res, err;

	err = rfs_caller_umask(req);
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	if (S_ISDIR(mode)) {
		op.type = RFS_OP_MKDIR;
		res = mkdirat(parent->fd, name, mode & 07777);
	} else if (S_ISLNK(mode)) {
		op.type = RFS_OP_SYMLINK;
		res = symlinkat(link, parent->fd, name);
	} else {
		op.type = RFS_OP_MKNOD;
		res = mknodat(parent->fd, name, mode, rdev);
	}
	if (res < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	err = rfs_do_lookup_new(req, parent, name, &e);
	if (err) {
		log_error("%s %s: created but lookup failed: %s", rfs_op_type_str(op.type), name,
			  strerror(err));
		fuse_reply_err(req, err);
		return;
	}
	obj = rfs_inode_of(&fs->itab, e.ino);
	err = rfs_give_to_caller(req, parent, obj, mode);
	if (!err && fs->self_uid == 0 && rfs_inode_stat(obj, &e.attr) < 0)
		err = errno;
	if (err) {
		/* Never leave a root-owned object the caller did not ask for. */
		log_error("%s %s: cannot give to uid %u: %s", rfs_op_type_str(op.type), name,
			  (unsigned)fuse_req_ctx(req)->uid, strerror(err));
		unlinkat(parent->fd, name, S_ISDIR(mode) ? AT_REMOVEDIR : 0);
		rfs_inode_unbound(obj);
		rfs_inode_forget(&fs->itab, obj, 1);
		fuse_reply_err(req, err);
		return;
	}
	op.ino = rfs_inode_id(obj);
	op.parent = rfs_inode_id(parent);
	op.parent_fd = parent->fd;
	op.attr = &e.attr;
	err = rfs_journal_op(&op);
	if (err) {
		rfs_inode_forget(&fs->itab, obj, 1);
		fuse_reply_err(req, err);
		return;
	}
	fuse_reply_entry(req, &e);
}

static void rfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	make_node(req, parent, name, mode, rdev, NULL);
}

static void rfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	make_node(req, parent, name, S_IFDIR | mode, 0, NULL);
}

static void rfs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	make_node(req, parent, name, S_IFLNK | 0777, 0, link);
}

static void rfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct rfs_fs *fs = rfs_fs_of(req);
	struct rfs_inode *inode = rfs_req_inode(req, ino), *np = rfs_req_inode(req, newparent);
	struct fuse_entry_param e = { .attr_timeout = RFS_CACHE_TIMEOUT,
				      .entry_timeout = RFS_CACHE_TIMEOUT };
	struct rfs_op op = { .type = RFS_OP_LINK };
	char proc[64];
	int err;

	rfs_inode_procpath(inode, proc, sizeof(proc));
	if (linkat(AT_FDCWD, proc, np->fd, newname, AT_SYMLINK_FOLLOW) < 0 ||
	    rfs_inode_stat(inode, &e.attr) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	op.ino = rfs_inode_id(inode);
	op.parent = rfs_inode_id(np);
	op.parent_fd = np->fd;
	op.name = newname;
	op.attr = &e.attr;
	err = rfs_journal_op(&op);
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	rfs_inode_ref(&fs->itab, inode);
	e.ino = ino;
	fuse_reply_entry(req, &e);
}

static void remove_entry(fuse_req_t req, fuse_ino_t parent_ino, const char *name, bool dir)
{
	struct rfs_inode *parent = rfs_req_inode(req, parent_ino);
	struct rfs_op op = { .type = dir ? RFS_OP_RMDIR : RFS_OP_UNLINK,
			     .parent = rfs_inode_id(parent), .name = name,
			     .parent_fd = parent->fd };

	if (unlinkat(parent->fd, name, dir ? AT_REMOVEDIR : 0) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_err(req, rfs_journal_op(&op));
}

static void rfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, false);
}

static void rfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, true);
}

/* The journal is told which object moved and whether the rename replaced
 * one, so that a move into or out of the excluded names (exclude.h) can be
 * replayed as a creation or a removal. The kernel holds both directories
 * locked: the stats before and after see only this rename. */
static void rfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		       fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct rfs_itable *t = &rfs_fs_of(req)->itab;
	struct rfs_inode *p = rfs_req_inode(req, parent), *np = rfs_req_inode(req, newparent), *obj;
	struct rfs_op op = { .type = RFS_OP_RENAME, .parent = rfs_inode_id(p), .name = name,
			     .new_parent = rfs_inode_id(np), .new_name = newname,
			     .flags = flags, .parent_fd = p->fd, .new_parent_fd = np->fd, .fd = -1 };
	struct stat st;
	bool now_excluded;

	op.replaced = !(flags & RENAME_EXCHANGE) &&
		      fstatat(np->fd, newname, &st, AT_SYMLINK_NOFOLLOW) == 0;
	if (renameat2(p->fd, name, np->fd, newname, flags) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	if (fstatat(np->fd, newname, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !(obj = rfs_inode_find(t, st.st_dev, st.st_ino))) {
		/* Cannot happen while the kernel holds the object; the
		 * replica would not know what moved. */
		log_error("rename %s -> %s: the moved object is not known", name, newname);
		rfs_journal_unsure(p->dir, st.st_ino, newname);
		fuse_reply_err(req, 0);
		return;
	}
	op.ino = rfs_inode_id(obj);
	op.fd = obj->fd;
	op.attr = &st;
	now_excluded = np->excluded || rfs_excluded_name(newname);
	if (!(flags & RENAME_EXCHANGE) && obj != &t->root && obj->excluded != now_excluded)
		rfs_inode_set_excluded(t, obj, now_excluded);
	fuse_reply_err(req, rfs_journal_op(&op));
}

static void rfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	if (fstatvfs(rfs_req_inode(req, ino)->fd, &sv) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &sv);
}

void rfs_ops_entry(struct fuse_lowlevel_ops *ops)
{
	ops->lookup = rfs_lookup;
	ops->forget = rfs_forget;
	ops->forget_multi = rfs_forget_multi;
	ops->getattr = rfs_getattr;
	ops->setattr = rfs_setattr;
	ops->readlink = rfs_readlink;
	ops->mknod = rfs_mknod;
	ops->mkdir = rfs_mkdir;
	ops->symlink = rfs_symlink;
	ops->link = rfs_link;
	ops->unlink = rfs_unlink;
	ops->rmdir = rfs_rmdir;
	ops->rename = rfs_rename;
	ops->statfs = rfs_statfs;
}
