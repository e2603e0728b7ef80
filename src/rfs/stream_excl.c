/* Changes that cross the boundary of the excluded names (exclude.h): a file
 * renamed from an excluded name to a replicated one reaches SECOND as a
 * creation with its whole content (the common "write x.tmp, rename to x");
 * one renamed the other way is removed there; data copied from an excluded
 * file arrives as writes. What cannot be replayed (a directory crossing, an
 * exchange across the boundary, a replicated hard link of an excluded file)
 * leaves SECOND not up to date, with a message saying why. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <linux/limits.h>
#include <unistd.h>

#include "common/log.h"
#include "rfs/stream.h"
#include "rfs/stream_int.h"

static uint16_t nlen(const char *s)
{
	return (uint16_t)strnlen(s, WIRE_NAME_MAX + 1);
}

/* A directory's mtime, moved by an entry SECOND never had. */
static int dir_times(uint8_t dir, uint64_t fid, int fd, bool wait)
{
	struct wire_op w = { .code = WIRE_OP_TIMES, .dir = dir, .fid = fid, .arg = WIRE_ATTR_MTIME,
	                     .mtime_ns = rfs_mtime_of(fd) };

	return rfs_stream_ship(&w, 1, false, wait);
}

/* Ships [off, off+len) of the file behind fd as WRITEs to fid; holes are
 * skipped when the target is known to hold none there (skip_holes), sent
 * as zeros otherwise. 0, or -1 (the stream is then lost). */
static int ship_data(uint8_t dir, uint64_t fid, int fd, uint64_t off, uint64_t len,
                     bool skip_holes)
{
	char proc[64];
	uint8_t *buf;
	uint64_t end = off + len;
	int rfd, rc = 0;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	rfd = open(proc, O_RDONLY | O_CLOEXEC);
	buf = malloc(WIRE_DATA_MAX);
	if (rfd < 0 || !buf) {
		rfs_stream_unsure_why("cannot read a file to ship it: %s",
		                      rfd < 0 ? strerror(errno) : "out of memory");
		rc = -1;
		goto out;
	}
	while (off < end) {
		off_t data = skip_holes ? lseek(rfd, (off_t)off, SEEK_DATA) : (off_t)off, hole;
		ssize_t r;

		if (data < 0 || (uint64_t)data >= end)
			break;          /* ENXIO: only a hole is left */
		hole = skip_holes ? lseek(rfd, data, SEEK_HOLE) : (off_t)end;
		if (hole < 0 || (uint64_t)hole > end)
			hole = (off_t)end;
		off = (uint64_t)data;
		while (off < (uint64_t)hole) {
			size_t want = (uint64_t)hole - off < WIRE_DATA_MAX ? (size_t)((uint64_t)hole - off)
			                                                    : WIRE_DATA_MAX;
			struct wire_op w = { .code = WIRE_OP_WRITE, .dir = dir, .fid = fid, .arg = off,
			                     .data = buf };

			r = pread(rfd, buf, want, (off_t)off);
			if (r <= 0) {
				rfs_stream_unsure_why("reading a file to ship it at %" PRIu64 ": %s", off,
				                      r < 0 ? strerror(errno) : "unexpected end of file");
				rc = -1;
				goto out;
			}
			w.data_len = (uint32_t)r;
			rfs_stream_ship(&w, 1, false, false);
			off += (uint64_t)r;
		}
	}
out:
	if (rfd >= 0)
		close(rfd);
	free(buf);
	return rc;
}

/* Excluded name -> replicated name: create it there, whole. */
static int entering(const struct rfs_op *op)
{
	const struct stat *a = op->attr;
	uint8_t dir = op->new_parent.dir;
	uint64_t fid = op->ino.ino;
	char target[WIRE_TARGET_MAX + 1];
	struct wire_op c = { .code = WIRE_OP_CREATE, .dir = dir, .fid = fid, .arg = op->new_parent.ino,
	                     .mode = a->st_mode, .uid = a->st_uid, .gid = a->st_gid,
	                     .mtime_ns = rfs_ns_of(&a->st_mtim), .name = op->new_name,
	                     .name_len = nlen(op->new_name) };

	if (S_ISDIR(a->st_mode)) {
		rfs_stream_unsure_why("directory %s renamed from an excluded name to a replicated one "
		                      "(its content is not shipped)", op->new_name);
		return 0;
	}
	if (op->replaced) {
		struct wire_op u = { .code = WIRE_OP_UNLINK, .dir = dir, .fid = op->new_parent.ino,
		                     .name = op->new_name, .name_len = nlen(op->new_name) };

		rfs_stream_ship(&u, 1, false, false);
	}
	if (S_ISCHR(a->st_mode) || S_ISBLK(a->st_mode))
		c.rdev = a->st_rdev;
	if (S_ISLNK(a->st_mode)) {
		ssize_t n = readlinkat(op->fd, "", target, sizeof(target) - 1);

		if (n <= 0) {
			rfs_stream_unsure_why("symlink %s: readlink: %s", op->new_name,
			                      n < 0 ? strerror(errno) : "empty");
			return 0;
		}
		target[n] = 0;
		c.name2 = target;
		c.name2_len = (uint16_t)n;
	}
	c.pmtime_ns = rfs_mtime_of(op->new_parent_fd);
	rfs_stream_ship(&c, 1, false, false);
	if (S_ISREG(a->st_mode)) {
		struct wire_op t[2] = {
			{ .code = WIRE_OP_TRUNCATE, .dir = dir, .fid = fid, .arg = (uint64_t)a->st_size },
			{ .code = WIRE_OP_SETATTR, .dir = dir, .fid = fid,
			  .arg = WIRE_ATTR_ATIME | WIRE_ATTR_MTIME, .atime_ns = rfs_ns_of(&a->st_atim),
			  .mtime_ns = rfs_ns_of(&a->st_mtim) },
		};

		if (ship_data(dir, fid, op->fd, 0, (uint64_t)a->st_size, true) < 0)
			return 0;
		rfs_ship_xattrs(dir, fid, op->fd);
		rfs_stream_ship(t, 2, false, false);
	}
	if (!op->parent.excluded)
		return dir_times(op->parent.dir, op->parent.ino, op->parent_fd, true);
	return rfs_stream_ship(NULL, 0, false, true);
}

/* Replicated name -> excluded name: gone from SECOND. */
static int leaving(const struct rfs_op *op)
{
	bool isdir = S_ISDIR(op->attr->st_mode);
	struct wire_op w[2] = {
		{ .code = WIRE_OP_UNLINK, .dir = op->parent.dir, .fid = op->parent.ino,
		  .arg = isdir ? WIRE_UNLINK_RMDIR : 0, .pmtime_ns = rfs_mtime_of(op->parent_fd),
		  .name = op->name, .name_len = nlen(op->name) },
		{ .code = WIRE_OP_UNBIND, .dir = op->ino.dir, .fid = op->ino.ino },
	};

	if (isdir) {
		rfs_stream_unsure_why("directory %s renamed to an excluded name (%s): removing a "
		                      "directory tree on SECOND is not supported", op->name,
		                      op->new_name);
		return 0;
	}
	rfs_stream_ship(w, 2, false, false);
	if (!op->new_parent.excluded)
		return dir_times(op->new_parent.dir, op->new_parent.ino, op->new_parent_fd, true);
	return rfs_stream_ship(NULL, 0, false, true);
}

int rfs_stream_crossing(const struct rfs_op *op, bool *handled)
{
	*handled = true;
	if (op->type == RFS_OP_RENAME) {
		bool from = rfs_stream_side_excluded(&op->parent, op->name);
		bool to = rfs_stream_side_excluded(&op->new_parent, op->new_name);

		if (from != to && (op->flags & RENAME_EXCHANGE)) {
			rfs_stream_unsure_why("%s and %s exchanged across the excluded names", op->name,
			                      op->new_name);
			return 0;
		}
		if (from && !to)
			return entering(op);
		if (!from && to)
			return leaving(op);
	} else if (op->type == RFS_OP_LINK && op->ino.excluded &&
	           !rfs_stream_side_excluded(&op->parent, op->name)) {
		rfs_stream_unsure_why("hard link %s made to an excluded file", op->name);
		return 0;
	} else if (op->type == RFS_OP_COPY_RANGE && op->src.excluded && !op->ino.excluded) {
		struct wire_op t = { .code = WIRE_OP_TIMES, .dir = op->ino.dir, .fid = op->ino.ino,
		                     .arg = WIRE_ATTR_MTIME, .mtime_ns = rfs_mtime_of(op->fd) };

		if (ship_data(op->ino.dir, op->ino.ino, op->fd, op->offset, op->len, false) < 0)
			return 0;
		return rfs_stream_ship(&t, 1, false, true);
	}
	*handled = false;
	return 0;
}
