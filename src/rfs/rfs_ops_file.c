/* Open regular files: open/create, read/write, flush/release, fsync,
 * fallocate, lseek, copy_file_range. Each open holds its own backing fd
 * opened with the application's flags, so O_SYNC/O_DSYNC/O_DIRECT/O_NOATIME
 * behave on the backing file as they would without the mount. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "rfs/rfs_fs.h"

/* O_DIRECT needs buffers aligned to the backing device's logical block;
 * a page covers every device. */
#define DIRECT_ALIGN 4096

/* Flags for the backing open.
 * - O_APPEND is dropped: the kernel already places each append at its
 *   end-of-file (under the inode lock, from a size that is exact because
 *   every change passes through here) and sends that offset; writing at
 *   exactly that offset keeps the journaled offset the real one.
 * - O_CREAT/O_EXCL/O_NOCTTY are the kernel's business; O_NOFOLLOW would
 *   refuse the /proc/self/fd magic link the file is reopened through. */
static int backing_flags(int flags)
{
	return (flags & ~(O_APPEND | O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW)) | O_CLOEXEC;
}

static bool may_write(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY;
}

/* --cache direct: no kernel page cache for file data (FOPEN_DIRECT_IO),
 * every read and write is a request, for every open alike. --cache page:
 * the kernel caches file data and may keep it across opens (keep_cache):
 * nothing but this process changes the backing files while mounted; an
 * O_DIRECT open then takes the kernel's own direct I/O path, which keeps
 * its page cache coherent. */
static void set_open_flags(const struct rfs_fs *fs, struct fuse_file_info *fi,
			   struct rfs_file *f)
{
	fi->fh = (uint64_t)(uintptr_t)f;
	f->direct = fs->direct_io;
	if (f->direct)
		fi->direct_io = 1;
	else
		fi->keep_cache = 1;
	/* A read-only open has nothing to flush at close. */
	fi->noflush = !may_write(f->flags);
}

/* O_TRUNC at open is a change like any other: journal it as a size change. */
static int journal_trunc(struct rfs_inode *inode, int fd)
{
	struct rfs_op op = { .type = RFS_OP_SETATTR, .ino = rfs_inode_id(inode),
			     .attr_mask = RFS_ATTR_SIZE };
	struct stat st;

	if (fstat(fd, &st) < 0)
		return errno;
	op.attr = &st;
	return rfs_journal_op(&op);
}

static pthread_mutex_t files_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rfs_file *files;

static void file_untrack(struct rfs_file *f)
{
	pthread_mutex_lock(&files_mu);
	if (f->prev)
		f->prev->next = f->next;
	else
		files = f->next;
	if (f->next)
		f->next->prev = f->prev;
	pthread_mutex_unlock(&files_mu);
}

void rfs_files_close_all(void)
{
	pthread_mutex_lock(&files_mu);
	while (files) {
		struct rfs_file *f = files;

		files = f->next;
		close(f->fd);
		free(f);
	}
	pthread_mutex_unlock(&files_mu);
}

static void reply_opened(fuse_req_t req, struct fuse_file_info *fi, struct rfs_file *f,
			 const struct fuse_entry_param *e)
{
	int r;

	set_open_flags(rfs_fs_of(req), fi, f);
	/* Tracked before the reply: the RELEASE may come right after it. */
	pthread_mutex_lock(&files_mu);
	f->prev = NULL;
	f->next = files;
	if (files)
		files->prev = f;
	files = f;
	pthread_mutex_unlock(&files_mu);
	r = e ? fuse_reply_create(req, e, fi) : fuse_reply_open(req, fi);
	if (r == -ENOENT) {
		/* Interrupted: the kernel will never release this handle. */
		file_untrack(f);
		close(f->fd);
		free(f);
	}
}

static void rfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rfs_inode *inode = rfs_req_inode(req, ino);
	struct rfs_file *f = calloc(1, sizeof(*f));
	char proc[64];
	int err;

	if (!f) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rfs_inode_procpath(inode, proc, sizeof(proc));
	f->flags = fi->flags;
	f->fd = open(proc, backing_flags(fi->flags));
	if (f->fd < 0) {
		err = errno;
		free(f);
		fuse_reply_err(req, err);
		return;
	}
	if ((fi->flags & O_TRUNC) && may_write(fi->flags) && S_ISREG(inode->type)) {
		err = journal_trunc(inode, f->fd);
		if (err) {
			close(f->fd);
			free(f);
			fuse_reply_err(req, err);
			return;
		}
	}
	reply_opened(req, fi, f, NULL);
}

static void rfs_create(fuse_req_t req, fuse_ino_t parent_ino, const char *name, mode_t mode,
		       struct fuse_file_info *fi)
{
	struct rfs_fs *fs = rfs_fs_of(req);
	struct rfs_inode *parent = rfs_req_inode(req, parent_ino), *obj;
	struct rfs_op op = { .type = RFS_OP_CREATE, .name = name, .flags = (uint32_t)fi->flags };
	struct fuse_entry_param e;
	struct rfs_file *f = calloc(1, sizeof(*f));
	int flags = backing_flags(fi->flags) | O_NOFOLLOW, err;
	bool created = true;

	if (!f) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	f->flags = fi->flags;
	err = rfs_caller_umask(req);
	if (err) {
		free(f);
		fuse_reply_err(req, err);
		return;
	}
	/* O_EXCL first, to know whether this call made the file (and must
	 * give it to the caller) or found one a racing create made. */
	f->fd = openat(parent->fd, name, flags | O_CREAT | O_EXCL, mode & 07777);
	if (f->fd < 0 && errno == EEXIST && !(fi->flags & O_EXCL)) {
		created = false;
		f->fd = openat(parent->fd, name, flags, 0);
	}
	if (f->fd < 0) {
		err = errno;
		free(f);
		fuse_reply_err(req, err);
		return;
	}
	err = created ? rfs_do_lookup_new(req, parent, name, &e) : rfs_do_lookup(req, parent, name, &e);
	if (err)
		goto fail;
	obj = rfs_inode_of(&fs->itab, e.ino);
	if (created) {
		err = rfs_give_to_caller(req, parent, obj, mode);
		if (!err && fstat(f->fd, &e.attr) < 0)
			err = errno;
		if (err) {
			log_error("create %s: cannot give to uid %u: %s", name,
				  (unsigned)fuse_req_ctx(req)->uid, strerror(err));
			unlinkat(parent->fd, name, 0);
		}
		op.ino = rfs_inode_id(obj);
		op.parent = rfs_inode_id(parent);
		op.parent_fd = parent->fd;
		op.attr = &e.attr;
		if (!err)
			err = rfs_journal_op(&op);
		if (err)
			rfs_inode_unbound(obj);
	} else if ((fi->flags & O_TRUNC) && may_write(fi->flags)) {
		err = journal_trunc(obj, f->fd);
	}
	if (err) {
		rfs_inode_forget(&fs->itab, obj, 1);
		goto fail;
	}
	reply_opened(req, fi, f, &e);
	return;
fail:
	close(f->fd);
	free(f);
	fuse_reply_err(req, err);
}

static void rfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct rfs_file *f = rfs_file_of(fi);
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);
	void *buf;
	ssize_t n;

	if (!(f->flags & O_DIRECT)) {
		/* Spliced from the backing file to the kernel: no copy here. */
		bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		bv.buf[0].fd = f->fd;
		bv.buf[0].pos = off;
		fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
		return;
	}
	if (posix_memalign(&buf, DIRECT_ALIGN, size ? size : 1)) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = pread(f->fd, buf, size, off);
	if (n < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

/* pwritev2 flags for what a single write asks beyond its fd's open flags
 * (pwritev2(RWF_DSYNC/RWF_SYNC) arrives as O_DSYNC/O_SYNC in the write's
 * flags). */
static int extra_sync(int open_flags, int write_flags)
{
	/* O_SYNC is O_DSYNC plus a bit of its own. */
	const int full = O_SYNC & ~O_DSYNC;

	if ((write_flags & full) && !(open_flags & full))
		return RWF_SYNC;
	if ((write_flags & O_DSYNC) && !(open_flags & O_DSYNC))
		return RWF_DSYNC;
	return 0;
}

/* A write by an unprivileged caller clears set-uid (and set-gid with group
 * exec) as on the plain file system. Through the page cache the kernel does
 * that itself (a setattr); a direct-I/O write reaches us untouched, and our
 * own root write would keep the bits. A caller other than root is taken as
 * lacking CAP_FSETID. */
static int kill_suid(fuse_req_t req, struct rfs_file *f, struct fuse_file_info *fi,
		     struct rfs_inode *inode)
{
	struct rfs_op op = { .type = RFS_OP_SETATTR, .ino = rfs_inode_id(inode),
			     .attr_mask = RFS_ATTR_MODE };
	const mode_t sgid_x = S_ISGID | S_IXGRP;
	struct stat st;
	mode_t kill;

	if (!f->direct || fi->writepage || fuse_req_ctx(req)->uid == 0)
		return 0;
	if (fstat(f->fd, &st) < 0)
		return errno;
	kill = (st.st_mode & S_ISUID) | ((st.st_mode & sgid_x) == sgid_x ? S_ISGID : 0);
	if (!kill || !S_ISREG(st.st_mode))
		return 0;
	if (fchmod(f->fd, st.st_mode & 07777 & ~kill) < 0 || fstat(f->fd, &st) < 0)
		return errno;
	op.attr = &st;
	return rfs_journal_op(&op);
}

/* A write that failed may still have moved the file's mtime (a misaligned
 * O_DIRECT write does, on ext4): ship the time the file now has, so the
 * copies keep equal times. The write's own error is what the caller sees. */
static void journal_failed_write(struct rfs_inode *inode, int fd)
{
	struct rfs_op op = { .type = RFS_OP_SETATTR, .ino = rfs_inode_id(inode),
			     .attr_mask = RFS_ATTR_MTIME };
	struct stat st;

	if (fstat(fd, &st) == 0) {
		op.attr = &st;
		rfs_journal_op(&op);
	}
}

/* Write data arrives in memory (splice from the kernel is not asked for:
 * the journal needs the bytes). Written at the given offset, then
 * journaled with the bytes actually written and the write's flags (the
 * next step waits for SECOND's durability on O_SYNC/O_DSYNC). */
static void rfs_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off,
			  struct fuse_file_info *fi)
{
	struct rfs_file *f = rfs_file_of(fi);
	struct rfs_op op = { .type = RFS_OP_WRITE, .ino = rfs_inode_id(rfs_req_inode(req, ino)),
			     .offset = (uint64_t)off, .fd = f->fd,
			     .flags = (uint32_t)(f->flags | fi->flags) };
	const struct fuse_buf *b = &in->buf[in->idx];
	size_t len = fuse_buf_size(in), done = 0;
	int rwf = extra_sync(f->flags, fi->flags);
	const char *data;
	void *tmp = NULL;
	int err;

	err = kill_suid(req, f, fi, rfs_req_inode(req, ino));
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	if (in->count == 1 && in->idx == 0 && in->off == 0 && !(b->flags & FUSE_BUF_IS_FD) &&
	    !(f->flags & O_DIRECT)) {
		data = b->mem;
	} else {
		struct fuse_bufvec dst = FUSE_BUFVEC_INIT(len);
		ssize_t c;

		if (posix_memalign(&tmp, DIRECT_ALIGN, len ? len : 1)) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		dst.buf[0].mem = tmp;
		c = fuse_buf_copy(&dst, in, FUSE_BUF_NO_SPLICE);
		if (c < 0) {
			free(tmp);
			fuse_reply_err(req, (int)-c);
			return;
		}
		len = (size_t)c;
		data = tmp;
	}
	while (done < len) {
		struct iovec iov = { .iov_base = (char *)data + done, .iov_len = len - done };
		ssize_t n = pwritev2(f->fd, &iov, 1, off + (off_t)done, rwf);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = errno;
			break;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	if (done) {
		op.data = data;
		op.len = done;
		err = rfs_journal_op(&op);
	} else {
		journal_failed_write(rfs_req_inode(req, ino), f->fd);
	}
	/* A short write is reported as such; the next write meets the error. */
	if (done && !err)
		fuse_reply_write(req, done);
	else
		fuse_reply_err(req, err ? err : EIO);
	free(tmp);
}

static void rfs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* close() of a duplicate reports errors the backing file system
	 * defers to close (network file systems), as the plain close would. */
	int fd = dup(rfs_file_of(fi)->fd);

	if (fd < 0 || close(fd) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_err(req, 0);
}

static void rfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rfs_file *f = rfs_file_of(fi);

	file_untrack(f);
	close(f->fd);
	free(f);
	fuse_reply_err(req, 0);
}

int rfs_sync_both(enum rfs_op_type type, struct rfs_inode *inode, int fd, int datasync)
{
	struct rfs_op op = { .type = type, .ino = rfs_inode_id(inode), .flags = datasync ? 1 : 0 };
	struct rfs_journal_ticket t;
	int err;

	/* SECOND flushes while we do: the latencies overlap. */
	err = rfs_journal_begin(&op, &t);
	if ((datasync ? fdatasync(fd) : fsync(fd)) < 0)
		err = errno;
	if (!err)
		err = rfs_journal_wait(&t);
	return err;
}

static void rfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	fuse_reply_err(req, rfs_sync_both(RFS_OP_FSYNC, rfs_req_inode(req, ino),
					  rfs_file_of(fi)->fd, datasync));
}

static void rfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			  struct fuse_file_info *fi)
{
	struct rfs_op op = { .type = RFS_OP_FALLOCATE, .ino = rfs_inode_id(rfs_req_inode(req, ino)),
			     .offset = (uint64_t)off, .len = (uint64_t)len, .flags = (uint32_t)mode,
			     .fd = rfs_file_of(fi)->fd };

	if (fallocate(rfs_file_of(fi)->fd, mode, off, len) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_err(req, rfs_journal_op(&op));
}

/* The kernel resolves SEEK_SET/CUR/END itself; SEEK_DATA and SEEK_HOLE
 * come here and are answered from the backing file's extents. */
static void rfs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		      struct fuse_file_info *fi)
{
	off_t r = lseek(rfs_file_of(fi)->fd, off, whence);

	if (r < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_lseek(req, r);
}

static void rfs_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
				struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
				struct fuse_file_info *fi_out, size_t len, int flags)
{
	struct rfs_op op = { .type = RFS_OP_COPY_RANGE,
			     .ino = rfs_inode_id(rfs_req_inode(req, ino_out)),
			     .src = rfs_inode_id(rfs_req_inode(req, ino_in)),
			     .src_offset = (uint64_t)off_in, .offset = (uint64_t)off_out,
			     .flags = (uint32_t)flags, .fd = rfs_file_of(fi_out)->fd };
	ssize_t n = copy_file_range(rfs_file_of(fi_in)->fd, &off_in, rfs_file_of(fi_out)->fd,
				    &off_out, len, (unsigned int)flags);
	int err;

	if (n < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	if (n > 0) {
		op.len = (uint64_t)n;
		err = rfs_journal_op(&op);
		if (err) {
			fuse_reply_err(req, err);
			return;
		}
	}
	fuse_reply_write(req, (size_t)n);
}

void rfs_ops_file(struct fuse_lowlevel_ops *ops)
{
	ops->open = rfs_open;
	ops->create = rfs_create;
	ops->read = rfs_read;
	ops->write_buf = rfs_write_buf;
	ops->flush = rfs_flush;
	ops->release = rfs_release;
	ops->fsync = rfs_fsync;
	ops->fallocate = rfs_fallocate;
	ops->lseek = rfs_lseek;
	ops->copy_file_range = rfs_copy_file_range;
}
