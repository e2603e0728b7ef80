/* Directory handles: opendir, readdir(plus), releasedir, fsyncdir. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rfs/rfs_fs.h"

struct rfs_dir {
	pthread_mutex_t lock;           /* one readdir at a time on the stream */
	DIR *dp;
	off_t offset;                   /* where the stream is */
	struct dirent *pending;         /* read but did not fit the last reply */
};

static struct rfs_dir *dir_of(const struct fuse_file_info *fi)
{
	return (struct rfs_dir *)(uintptr_t)fi->fh;
}

static void rfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rfs_dir *d = calloc(1, sizeof(*d));
	int fd, err;

	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fd = openat(rfs_req_inode(req, ino)->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d->dp = fdopendir(fd))) {
		err = errno;
		if (fd >= 0)
			close(fd);
		free(d);
		fuse_reply_err(req, err);
		return;
	}
	pthread_mutex_init(&d->lock, NULL);
	fi->fh = (uint64_t)(uintptr_t)d;
	/* Listings are not cached by the kernel (cache_readdir stays 0): they
	 * are read rarely compared to lookups, and a fresh one is always
	 * right. */
	if (fuse_reply_open(req, fi) == -ENOENT) {
		closedir(d->dp);
		pthread_mutex_destroy(&d->lock);
		free(d);
	}
}

static bool dot_or_dotdot(const char *n)
{
	return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'));
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
		       struct fuse_file_info *fi, bool plus)
{
	struct rfs_fs *fs = rfs_fs_of(req);
	struct rfs_inode *dir = rfs_req_inode(req, ino);
	struct rfs_dir *d = dir_of(fi);
	char *buf = malloc(size ? size : 1), *p;
	size_t rem = size;
	int err = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	p = buf;
	pthread_mutex_lock(&d->lock);
	if (offset != d->offset) {
		seekdir(d->dp, offset);
		d->pending = NULL;
		d->offset = offset;
	}
	for (;;) {
		struct dirent *de = d->pending;
		struct fuse_entry_param e;
		size_t sz;
		bool looked_up = false;

		if (!de) {
			errno = 0;
			de = readdir(d->dp);
			if (!de) {
				err = errno;
				break;
			}
		}
		memset(&e, 0, sizeof(e));
		e.attr.st_ino = de->d_ino;
		e.attr.st_mode = (mode_t)de->d_type << 12;
		if (plus && !dot_or_dotdot(de->d_name)) {
			err = rfs_do_lookup(req, dir, de->d_name, &e);
			if (err == ENOENT) {
				/* Removed since it was listed: skip it. */
				err = 0;
				d->pending = NULL;
				d->offset = de->d_off;
				continue;
			}
			if (err)
				break;
			looked_up = true;
		}
		sz = plus ? fuse_add_direntry_plus(req, p, rem, de->d_name, &e, de->d_off)
			  : fuse_add_direntry(req, p, rem, de->d_name, &e.attr, de->d_off);
		if (sz > rem) {
			if (looked_up)
				rfs_inode_forget(&fs->itab, rfs_inode_of(&fs->itab, e.ino), 1);
			d->pending = de;
			break;
		}
		p += sz;
		rem -= sz;
		d->pending = NULL;
		d->offset = de->d_off;
	}
	pthread_mutex_unlock(&d->lock);
	/* Entries already in the buffer carry lookup counts: reply them and
	 * leave the error to the next call. */
	if (err && rem == size)
		fuse_reply_err(req, err);
	else
		fuse_reply_buf(req, buf, size - rem);
	free(buf);
}

static void rfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void rfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			    struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void rfs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rfs_dir *d = dir_of(fi);

	closedir(d->dp);
	pthread_mutex_destroy(&d->lock);
	free(d);
	fuse_reply_err(req, 0);
}

static void rfs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	fuse_reply_err(req, rfs_sync_both(RFS_OP_FSYNCDIR, rfs_req_inode(req, ino),
					  dirfd(dir_of(fi)->dp), datasync));
}

void rfs_ops_dir(struct fuse_lowlevel_ops *ops)
{
	ops->opendir = rfs_opendir;
	ops->readdir = rfs_readdir;
	ops->readdirplus = rfs_readdirplus;
	ops->releasedir = rfs_releasedir;
	ops->fsyncdir = rfs_fsyncdir;
}
