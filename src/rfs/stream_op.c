/* From a journaled change (rfs_op.h) to the wire ops that replay it on
 * SECOND (wire.h). Pure but for fstat of the descriptors the op carries:
 * the times shipped are the ones the objects have after the change, so the
 * copies' mtimes match (SECOND's own writes would set its clock's time). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <linux/limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"
#include "rfs/exclude.h"
#include "rfs/stream.h"
#include "rfs/stream_int.h"

static void set_name(const char *s, const char **name, uint16_t *len)
{
	*name = s;
	*len = s ? (uint16_t)strnlen(s, WIRE_NAME_MAX + 1) : 0;
}

/* The object's mtime after a data change, as a TIMES op. */
static void times_after(const struct rfs_op *op, uint8_t dir, struct wire_op *w)
{
	memset(w, 0, sizeof(*w));
	w->code = WIRE_OP_TIMES;
	w->dir = dir;
	w->fid = op->ino.ino;
	w->arg = WIRE_ATTR_MTIME;
	w->mtime_ns = rfs_mtime_of(op->fd);
}

static void dir_time(const struct rfs_id *dir, int fd, struct wire_op *w, int *n)
{
	if (dir->excluded || fd < 0)
		return;
	w[*n] = (struct wire_op){ .code = WIRE_OP_TIMES, .dir = dir->dir, .fid = dir->ino,
	                          .arg = WIRE_ATTR_MTIME, .mtime_ns = rfs_mtime_of(fd) };
	(*n)++;
}

static void excluded_dir_times(const struct rfs_op *op, struct wire_op *w, int *n)
{
	switch (op->type) {
	case RFS_OP_CREATE:
	case RFS_OP_MKNOD:
	case RFS_OP_MKDIR:
	case RFS_OP_SYMLINK:
	case RFS_OP_LINK:
	case RFS_OP_UNLINK:
	case RFS_OP_RMDIR:
		dir_time(&op->parent, op->parent_fd, w, n);
		break;
	case RFS_OP_RENAME:
		dir_time(&op->parent, op->parent_fd, w, n);
		if (op->new_parent.ino != op->parent.ino)
			dir_time(&op->new_parent, op->new_parent_fd, w, n);
		break;
	default:
		break;
	}
}

int64_t rfs_ns_of(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

int64_t rfs_mtime_of(int fd)
{
	struct stat st;

	if (fd < 0 || fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	return rfs_ns_of(&st.st_mtim);
}

void rfs_ship_xattrs(uint8_t dir, uint64_t fid, int fd)
{
	char proc[64], *names = malloc(XATTR_LIST_MAX), *value = malloc(WIRE_XATTR_VALUE_MAX);
	ssize_t len;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (!names || !value) {
		rfs_stream_unsure_why("out of memory shipping extended attributes");
		goto out;
	}
	len = listxattr(proc, names, XATTR_LIST_MAX);
	if (len < 0)
		rfs_stream_unsure_why("listing extended attributes: %s", strerror(errno));
	for (ssize_t i = 0; len > 0 && i < len; i += (ssize_t)strlen(names + i) + 1) {
		const char *name = names + i;
		ssize_t v = getxattr(proc, name, value, WIRE_XATTR_VALUE_MAX);
		struct wire_op w = { .code = WIRE_OP_SETXATTR, .dir = dir, .fid = fid, .name = name,
		                     .name_len = (uint16_t)strnlen(name, WIRE_NAME_MAX + 1),
		                     .data = (uint8_t *)value };

		if (v < 0 && errno == ENODATA)
			continue;       /* removed since the listing: nothing to copy */
		if (v < 0) {
			rfs_stream_unsure_why("extended attribute %s: %s", name, strerror(errno));
			break;
		}
		w.data_len = (uint32_t)v;
		rfs_stream_ship(&w, 1, false, false);
	}
out:
	free(names);
	free(value);
}

bool rfs_stream_side_excluded(const struct rfs_id *parent, const char *name)
{
	return parent->excluded || (name && rfs_excluded_name(name));
}

bool rfs_stream_op_excluded(const struct rfs_op *op)
{
	switch (op->type) {
	case RFS_OP_UNLINK:
	case RFS_OP_RMDIR:
		return rfs_stream_side_excluded(&op->parent, op->name);
	case RFS_OP_LINK:
		return op->ino.excluded || rfs_stream_side_excluded(&op->parent, op->name);
	case RFS_OP_RENAME:
		return rfs_stream_side_excluded(&op->parent, op->name) &&
		       rfs_stream_side_excluded(&op->new_parent, op->new_name);
	default:
		return op->ino.excluded;
	}
}

int rfs_stream_translate(const struct rfs_op *op, struct wire_op *w, int *n, bool *durable)
{
	const struct stat *a = op->attr;
	struct wire_op *o = &w[0];
	/* Entry removals and renames name only directories. */
	uint8_t dir = op->ino.ino ? op->ino.dir : op->parent.dir;

	memset(w, 0, sizeof(*w) * RFS_STREAM_MAX_WOPS);
	*n = 0;
	*durable = false;
	/* Excluded objects and names stay here (moves across the boundary
	 * are stream.c's, before this); only the times of replicated
	 * directories whose excluded entries changed travel. */
	if (rfs_stream_op_excluded(op)) {
		excluded_dir_times(op, w, n);
		return 0;
	}
	*n = 1;
	o->dir = dir;
	o->fid = op->ino.ino;
	switch (op->type) {
	case RFS_OP_CREATE:
	case RFS_OP_MKNOD:
	case RFS_OP_MKDIR:
	case RFS_OP_SYMLINK:
		if (!a)
			goto bad;
		o->code = WIRE_OP_CREATE;
		o->arg = op->parent.ino;
		o->mode = a->st_mode;
		o->uid = a->st_uid;
		o->gid = a->st_gid;
		o->rdev = (S_ISCHR(a->st_mode) || S_ISBLK(a->st_mode)) ? a->st_rdev : 0;
		o->mtime_ns = rfs_ns_of(&a->st_mtim);
		o->pmtime_ns = rfs_mtime_of(op->parent_fd);
		set_name(op->name, &o->name, &o->name_len);
		if (op->type == RFS_OP_SYMLINK) {
			o->name2 = op->link_target;
			o->name2_len = (uint16_t)strnlen(op->link_target, WIRE_TARGET_MAX + 1);
		}
		break;
	case RFS_OP_LINK:
		o->code = WIRE_OP_LINK;
		o->arg = op->parent.ino;
		o->pmtime_ns = rfs_mtime_of(op->parent_fd);
		set_name(op->name, &o->name, &o->name_len);
		break;
	case RFS_OP_UNLINK:
	case RFS_OP_RMDIR:
		o->code = WIRE_OP_UNLINK;
		o->fid = op->parent.ino;
		o->arg = op->type == RFS_OP_RMDIR ? WIRE_UNLINK_RMDIR : 0;
		o->pmtime_ns = rfs_mtime_of(op->parent_fd);
		set_name(op->name, &o->name, &o->name_len);
		break;
	case RFS_OP_RENAME:
		o->code = WIRE_OP_RENAME;
		o->fid = op->parent.ino;
		o->arg = op->new_parent.ino;
		o->rename_flags = op->flags;
		o->pmtime_ns = rfs_mtime_of(op->parent_fd);
		o->new_pmtime_ns = rfs_mtime_of(op->new_parent_fd);
		set_name(op->name, &o->name, &o->name_len);
		set_name(op->new_name, &o->name2, &o->name2_len);
		break;
	case RFS_OP_SETATTR:
		if (!a)
			goto bad;
		if (op->attr_mask & RFS_ATTR_SIZE) {
			o->code = WIRE_OP_TRUNCATE;
			o->arg = (uint64_t)a->st_size;
			o = &w[(*n)++];
			o->dir = dir;
			o->fid = op->ino.ino;
		}
		o->code = WIRE_OP_SETATTR;
		/* A size change moves mtime too: ship the one PRIM now has. */
		o->arg = (op->attr_mask & (WIRE_ATTR_MODE | WIRE_ATTR_UID | WIRE_ATTR_GID |
		                           WIRE_ATTR_ATIME | WIRE_ATTR_MTIME)) |
		         ((op->attr_mask & RFS_ATTR_SIZE) ? WIRE_ATTR_MTIME : 0);
		if (!o->arg) {
			(*n)--;
			break;
		}
		if (o->arg & WIRE_ATTR_MODE)
			o->mode = a->st_mode & 07777;
		if (o->arg & WIRE_ATTR_UID)
			o->uid = a->st_uid;
		if (o->arg & WIRE_ATTR_GID)
			o->gid = a->st_gid;
		if (o->arg & WIRE_ATTR_ATIME)
			o->atime_ns = rfs_ns_of(&a->st_atim);
		if (o->arg & WIRE_ATTR_MTIME)
			o->mtime_ns = rfs_ns_of(&a->st_mtim);
		break;
	case RFS_OP_WRITE:
		o->code = WIRE_OP_WRITE;
		o->arg = op->offset;
		o->data = op->data;
		o->data_len = (uint32_t)op->len;
		if ((op->flags & O_SYNC) == O_SYNC)
			o->flags = WIRE_OPF_SYNC;
		else if (op->flags & O_DSYNC)
			o->flags = WIRE_OPF_DSYNC;
		*durable = o->flags != 0;
		times_after(op, dir, &w[(*n)++]);
		break;
	case RFS_OP_FALLOCATE:
		o->code = WIRE_OP_FALLOCATE;
		o->arg = op->offset;
		o->fl_mode = op->flags;
		o->len = op->len;
		times_after(op, dir, &w[(*n)++]);
		break;
	case RFS_OP_COPY_RANGE:
		o->code = WIRE_OP_COPY;
		o->arg = op->offset;
		o->fid_in = op->src.ino;
		o->off_in = op->src_offset;
		o->len = op->len;
		times_after(op, dir, &w[(*n)++]);
		break;
	case RFS_OP_SETXATTR:
	case RFS_OP_REMOVEXATTR:
		o->code = op->type == RFS_OP_SETXATTR ? WIRE_OP_SETXATTR : WIRE_OP_RMXATTR;
		o->arg = op->type == RFS_OP_SETXATTR ? op->flags : 0;
		set_name(op->xattr_name, &o->name, &o->name_len);
		if (op->type == RFS_OP_SETXATTR) {
			o->data = op->data;
			o->data_len = (uint32_t)op->len;
		}
		break;
	case RFS_OP_FSYNC:
	case RFS_OP_FSYNCDIR:
		o->code = op->type == RFS_OP_FSYNC ? WIRE_OP_FSYNC : WIRE_OP_FSYNCDIR;
		o->arg = op->flags & 1;
		*durable = true;
		break;
	default:
		goto bad;
	}
	/* The codec's rules (names, lengths) are checked at encode time. */
	return 0;
bad:
	log_error("journal: cannot ship a %s without its attributes", rfs_op_type_str(op->type));
	return EIO;
}
