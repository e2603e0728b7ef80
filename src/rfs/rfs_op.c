/* The journal hook: counts each change and hands it to the replication
 * stream (stream.c), which ships it in call order to SECOND. */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>

#include "common/log.h"
#include "rfs/rfs_op.h"
#include "rfs/stream.h"

static struct rfs_stats stats;
static bool verbose;

const char *rfs_op_type_str(enum rfs_op_type type)
{
	static const char *const names[] = {
		[RFS_OP_CREATE] = "create",
		[RFS_OP_MKNOD] = "mknod",
		[RFS_OP_MKDIR] = "mkdir",
		[RFS_OP_SYMLINK] = "symlink",
		[RFS_OP_LINK] = "link",
		[RFS_OP_UNLINK] = "unlink",
		[RFS_OP_RMDIR] = "rmdir",
		[RFS_OP_RENAME] = "rename",
		[RFS_OP_SETATTR] = "setattr",
		[RFS_OP_WRITE] = "write",
		[RFS_OP_FALLOCATE] = "fallocate",
		[RFS_OP_COPY_RANGE] = "copy_range",
		[RFS_OP_SETXATTR] = "setxattr",
		[RFS_OP_REMOVEXATTR] = "removexattr",
		[RFS_OP_FSYNC] = "fsync",
		[RFS_OP_FSYNCDIR] = "fsyncdir",
	};

	if ((unsigned)type >= RFS_OP_COUNT || !names[type])
		return "unknown";
	return names[type];
}

void rfs_journal_set_verbose(bool on)
{
	verbose = on;
}

int rfs_journal_op(const struct rfs_op *op)
{
	if ((unsigned)op->type >= RFS_OP_COUNT) {
		log_error("journal: op of unknown type %d", (int)op->type);
		return EINVAL;
	}
	__atomic_fetch_add(&stats.ops[op->type], 1, __ATOMIC_RELAXED);
	if (op->type == RFS_OP_WRITE || op->type == RFS_OP_COPY_RANGE)
		__atomic_fetch_add(&stats.bytes_written, op->len, __ATOMIC_RELAXED);
	if (verbose)
		log_debug("op %s ino %" PRIu64 " parent %" PRIu64 " name %s%s%s off %" PRIu64
			  " len %" PRIu64 " flags 0x%x",
			  rfs_op_type_str(op->type), op->ino.ino, op->parent.ino,
			  op->name ? op->name : "-", op->new_name ? " -> " : "",
			  op->new_name ? op->new_name : "", op->offset, op->len, op->flags);
	return rfs_stream_op(op);
}

int rfs_journal_begin(const struct rfs_op *op, struct rfs_journal_ticket *t)
{
	if ((unsigned)op->type >= RFS_OP_COUNT) {
		log_error("journal: op of unknown type %d", (int)op->type);
		return EINVAL;
	}
	__atomic_fetch_add(&stats.ops[op->type], 1, __ATOMIC_RELAXED);
	return rfs_stream_op_begin(op, t);
}

int rfs_journal_wait(const struct rfs_journal_ticket *t)
{
	return rfs_stream_op_wait(t);
}

void rfs_journal_bind(uint8_t dir, uint64_t ino, uint64_t parent_ino, const char *name)
{
	rfs_stream_bind(dir, ino, parent_ino, name);
}

void rfs_journal_unbind(uint8_t dir, uint64_t ino)
{
	rfs_stream_unbind(dir, ino);
}

void rfs_journal_unsure(uint8_t dir, uint64_t ino, const char *name)
{
	rfs_stream_unsure(dir, ino, name);
}

void rfs_stats_get(struct rfs_stats *out)
{
	for (size_t i = 0; i < RFS_OP_COUNT; i++)
		out->ops[i] = __atomic_load_n(&stats.ops[i], __ATOMIC_RELAXED);
	out->bytes_written = __atomic_load_n(&stats.bytes_written, __ATOMIC_RELAXED);
}
