/* The op records inside OPS frames: encode, decode, iterate, and the
 * rules of each code. See wire.h for the format. */
#include "rfs/wire.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "common/util.h"
#include "rfs/wire_int.h"

_Static_assert(WIRE_RENAME_NOREPLACE == RENAME_NOREPLACE, "rename flag values");
_Static_assert(WIRE_RENAME_EXCHANGE == RENAME_EXCHANGE, "rename flag values");
_Static_assert(WIRE_XATTR_CREATE == XATTR_CREATE && WIRE_XATTR_REPLACE == XATTR_REPLACE,
               "xattr flag values");

#define FALLOC_KNOWN (FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_COLLAPSE_RANGE | \
                      FALLOC_FL_ZERO_RANGE | FALLOC_FL_INSERT_RANGE | FALLOC_FL_UNSHARE_RANGE)
#define ATTR_KNOWN (WIRE_ATTR_MODE | WIRE_ATTR_UID | WIRE_ATTR_GID | WIRE_ATTR_ATIME | WIRE_ATTR_MTIME)

const char *wire_code_str(unsigned code)
{
	static const char *const names[] = {
		[WIRE_OP_BIND] = "BIND", [WIRE_OP_UNBIND] = "UNBIND", [WIRE_OP_CREATE] = "CREATE",
		[WIRE_OP_LINK] = "LINK", [WIRE_OP_UNLINK] = "UNLINK", [WIRE_OP_RENAME] = "RENAME",
		[WIRE_OP_WRITE] = "WRITE", [WIRE_OP_TRUNCATE] = "TRUNCATE",
		[WIRE_OP_FALLOCATE] = "FALLOCATE", [WIRE_OP_COPY] = "COPY",
		[WIRE_OP_SETATTR] = "SETATTR", [WIRE_OP_TIMES] = "TIMES",
		[WIRE_OP_SETXATTR] = "SETXATTR", [WIRE_OP_RMXATTR] = "RMXATTR",
		[WIRE_OP_FSYNC] = "FSYNC", [WIRE_OP_FSYNCDIR] = "FSYNCDIR",
		[WIRE_OP_BARRIER] = "BARRIER", [WIRE_OP_HASHREQ] = "HASHREQ",
		[WIRE_OP_SETGEN] = "SETGEN", [WIRE_OP_STASH] = "STASH",
	};
	return code < ARRAY_SIZE(names) && names[code] ? names[code] : "unknown";
}

/* u16 length | bytes */
static void rdname(struct rd *r, const char **name, uint16_t *len)
{
	uint16_t n = rd16(r);
	const uint8_t *p = rdmem(r, n);

	*name = p ? (const char *)p : NULL;
	*len = p ? n : 0;
}

enum wire_err wire_name_check(const char *name, size_t len)
{
	if (!name || len == 0 || len > WIRE_NAME_MAX)
		return WIRE_ERR_NAME;
	if (memchr(name, '/', len) || memchr(name, 0, len))
		return WIRE_ERR_NAME;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return WIRE_ERR_NAME;
	return WIRE_OK;
}

enum wire_err wire_path_check(const char *path, size_t len)
{
	size_t i = 0;

	if (!path || len == 0 || len > WIRE_TARGET_MAX || memchr(path, 0, len))
		return WIRE_ERR_NAME;
	while (i <= len) {
		const char *c = path + i, *slash = memchr(c, '/', len - i);
		size_t n = slash ? (size_t)(slash - c) : len - i;

		if (wire_name_check(c, n) != WIRE_OK)
			return WIRE_ERR_NAME;
		i += n + 1;
	}
	return WIRE_OK;
}

static const char *name_why(const char *name, size_t len)
{
	if (!name || len == 0)
		return "empty name";
	if (len > WIRE_NAME_MAX)
		return "name longer than 255 bytes";
	if (memchr(name, '/', len))
		return "name contains '/'";
	if (memchr(name, 0, len))
		return "name contains a NUL byte";
	return "name is \".\" or \"..\"";
}

static bool range_ok(uint64_t off, uint64_t len)
{
	return off <= OFF_MAX && len <= OFF_MAX - off;
}

static bool create_type_ok(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: case S_IFDIR: case S_IFCHR: case S_IFBLK: case S_IFIFO: case S_IFSOCK: case S_IFLNK:
		return true;
	}
	return false;
}

enum wire_err wire_op_check(const struct wire_op *op, const char **why)
{
	const char *w = NULL;
	enum wire_err e = WIRE_OK;

#define FAIL(err, text) do { e = (err); w = (text); goto out; } while (0)
#define NAME(n, l) do { if (wire_name_check((n), (l))) FAIL(WIRE_ERR_NAME, name_why((n), (l))); } while (0)
	if (op->code == 0 || op->code >= WIRE_OP_END)
		FAIL(WIRE_ERR_CODE, "unknown op code");
	if (op->seq == 0)
		FAIL(WIRE_ERR_SEQ, "seq 0");
	if (op->code == WIRE_OP_WRITE) {
		if (op->flags & ~(WIRE_OPF_DSYNC | WIRE_OPF_SYNC | WIRE_OPF_RESYNC))
			FAIL(WIRE_ERR_FLAGS, "unknown WRITE flags");
	} else if (op->code == WIRE_OP_CREATE) {
		if (op->flags & ~(WIRE_OPF_RESYNC | WIRE_OPF_FRESH | WIRE_OPF_MAYBE | WIRE_OPF_ORIGIN))
			FAIL(WIRE_ERR_FLAGS, "unknown CREATE flags");
		if ((op->flags & WIRE_OPF_ORIGIN) && (!(op->flags & WIRE_OPF_FRESH) ||
		    (!S_ISREG(op->mode) && !S_ISDIR(op->mode))))
			FAIL(WIRE_ERR_FLAGS, "ORIGIN without FRESH, or on neither a file nor a directory");
		if ((op->flags & (WIRE_OPF_FRESH | WIRE_OPF_MAYBE)) && !(op->flags & WIRE_OPF_RESYNC))
			FAIL(WIRE_ERR_FLAGS, "FRESH or MAYBE without RESYNC");
		if ((op->flags & WIRE_OPF_FRESH) && (op->flags & WIRE_OPF_MAYBE))
			FAIL(WIRE_ERR_FLAGS, "FRESH with MAYBE");
	} else if (op->code == WIRE_OP_LINK || op->code == WIRE_OP_SETATTR) {
		if (op->flags & ~WIRE_OPF_RESYNC)
			FAIL(WIRE_ERR_FLAGS, "flags other than RESYNC on LINK or SETATTR");
	} else if (op->flags) {
		FAIL(WIRE_ERR_FLAGS, "flags on an op that takes none");
	}
	if (op->code == WIRE_OP_BARRIER || op->code == WIRE_OP_SETGEN) {
		if (op->fid || op->dir)
			FAIL(WIRE_ERR_FID, "BARRIER and SETGEN take neither fid nor dir");
	} else if (op->fid == 0) {
		FAIL(WIRE_ERR_FID, "fid 0");
	}

	switch (op->code) {
	case WIRE_OP_BIND:
		if (op->arg == 0) {
			if (op->name_len)
				FAIL(WIRE_ERR_NAME, "the root (parent 0) is bound without a name");
		} else {
			NAME(op->name, op->name_len);
		}
		break;
	case WIRE_OP_UNBIND:
	case WIRE_OP_RMXATTR:
	case WIRE_OP_SETGEN:
	case WIRE_OP_STASH:
		if (op->arg)
			FAIL(WIRE_ERR_ARG, "argument must be 0");
		if (op->code == WIRE_OP_STASH && wire_path_check(op->name, op->name_len) != WIRE_OK)
			FAIL(WIRE_ERR_NAME, "stash path not relative components of 1..255 bytes");
		if (op->code == WIRE_OP_RMXATTR && (!op->name || op->name_len == 0 ||
		    op->name_len > WIRE_NAME_MAX || memchr(op->name, 0, op->name_len)))
			FAIL(WIRE_ERR_NAME, "xattr name not 1..255 bytes without NUL");
		break;
	case WIRE_OP_CREATE:
		if (op->arg == 0)
			FAIL(WIRE_ERR_ARG, "parent fid 0");
		if (!create_type_ok(op->mode) || (op->mode & ~(uint32_t)(S_IFMT | 07777)))
			FAIL(WIRE_ERR_FIELD, "mode is no file type, or has unknown bits");
		if (op->rdev && !S_ISCHR(op->mode) && !S_ISBLK(op->mode))
			FAIL(WIRE_ERR_FIELD, "rdev on a non-device");
		NAME(op->name, op->name_len);
		if (S_ISLNK(op->mode)) {
			if (!op->name2 || op->name2_len == 0 || op->name2_len > WIRE_TARGET_MAX ||
			    memchr(op->name2, 0, op->name2_len))
				FAIL(WIRE_ERR_NAME, "symlink target not 1..4095 bytes without NUL");
		} else if (op->name2_len) {
			FAIL(WIRE_ERR_FIELD, "target on a non-symlink");
		}
		break;
	case WIRE_OP_LINK:
		if (op->arg == 0)
			FAIL(WIRE_ERR_ARG, "new parent fid 0");
		NAME(op->name, op->name_len);
		break;
	case WIRE_OP_UNLINK:
		if (op->arg > WIRE_UNLINK_RMDIR)
			FAIL(WIRE_ERR_ARG, "UNLINK argument not 0 or 1 (rmdir)");
		NAME(op->name, op->name_len);
		break;
	case WIRE_OP_RENAME:
		if (op->arg == 0)
			FAIL(WIRE_ERR_ARG, "new parent fid 0");
		if (op->rename_flags & ~(uint32_t)(WIRE_RENAME_NOREPLACE | WIRE_RENAME_EXCHANGE) ||
		    op->rename_flags == (WIRE_RENAME_NOREPLACE | WIRE_RENAME_EXCHANGE))
			FAIL(WIRE_ERR_FIELD, "rename flags not NOREPLACE or EXCHANGE");
		NAME(op->name, op->name_len);
		NAME(op->name2, op->name2_len);
		break;
	case WIRE_OP_WRITE:
		if (op->data_len > WIRE_DATA_MAX)
			FAIL(WIRE_ERR_DATA_LEN, "data longer than 1 MiB");
		if (!range_ok(op->arg, op->data_len))
			FAIL(WIRE_ERR_ARG, "offset + length beyond 2^63");
		break;
	case WIRE_OP_TRUNCATE:
		if (op->arg > OFF_MAX)
			FAIL(WIRE_ERR_ARG, "size beyond 2^63");
		break;
	case WIRE_OP_FALLOCATE:
		if (op->fl_mode & ~(uint32_t)FALLOC_KNOWN)
			FAIL(WIRE_ERR_FIELD, "unknown fallocate mode bits");
		if (op->len == 0 || !range_ok(op->arg, op->len))
			FAIL(WIRE_ERR_FIELD, "fallocate length 0 or offset + length beyond 2^63");
		break;
	case WIRE_OP_COPY:
		if (op->fid_in == 0)
			FAIL(WIRE_ERR_FID, "COPY source fid 0");
		if (op->len == 0 || !range_ok(op->arg, op->len) || !range_ok(op->off_in, op->len))
			FAIL(WIRE_ERR_FIELD, "copy length 0 or offset + length beyond 2^63");
		break;
	case WIRE_OP_SETATTR:
	case WIRE_OP_TIMES: {
		uint64_t known = op->code == WIRE_OP_TIMES ? (WIRE_ATTR_ATIME | WIRE_ATTR_MTIME) : ATTR_KNOWN;

		if (op->arg == 0 || (op->arg & ~known))
			FAIL(WIRE_ERR_ARG, "attribute mask empty or with bits the op does not carry");
		if ((!(op->arg & WIRE_ATTR_MODE) && op->mode) || (!(op->arg & WIRE_ATTR_UID) && op->uid) ||
		    (!(op->arg & WIRE_ATTR_GID) && op->gid) ||
		    (!(op->arg & WIRE_ATTR_ATIME) && op->atime_ns) ||
		    (!(op->arg & WIRE_ATTR_MTIME) && op->mtime_ns))
			FAIL(WIRE_ERR_FIELD, "a field outside the mask is not 0");
		if (op->mode & ~07777u)
			FAIL(WIRE_ERR_FIELD, "mode has bits beyond 07777");
		break;
	}
	case WIRE_OP_SETXATTR:
		if (op->arg != 0 && op->arg != WIRE_XATTR_CREATE && op->arg != WIRE_XATTR_REPLACE)
			FAIL(WIRE_ERR_ARG, "xattr flags not 0, CREATE or REPLACE");
		if (!op->name || op->name_len == 0 || op->name_len > WIRE_NAME_MAX ||
		    memchr(op->name, 0, op->name_len))
			FAIL(WIRE_ERR_NAME, "xattr name not 1..255 bytes without NUL");
		if (op->data_len > WIRE_XATTR_VALUE_MAX)
			FAIL(WIRE_ERR_DATA_LEN, "xattr value longer than 64 KiB");
		break;
	case WIRE_OP_FSYNC:
	case WIRE_OP_FSYNCDIR:
		if (op->arg > 1)
			FAIL(WIRE_ERR_ARG, "datasync not 0 or 1");
		break;
	case WIRE_OP_BARRIER:
		break;
	case WIRE_OP_HASHREQ:
		if (op->len == 0 || op->len > WIRE_DATA_MAX)
			FAIL(WIRE_ERR_FIELD, "hash length not 1..1 MiB");
		if (op->block < 4096 || op->block > WIRE_DATA_MAX || (op->block & (op->block - 1)))
			FAIL(WIRE_ERR_FIELD, "hash block not a power of 2 in 4 KiB..1 MiB");
		if (op->arg % op->block || !range_ok(op->arg, op->len))
			FAIL(WIRE_ERR_ARG, "hash offset not block-aligned or beyond 2^63");
		break;
	}
#undef NAME
#undef FAIL
out:
	if (why)
		*why = w;
	return e;
}

/* Bytes of the body after the op header; SIZE_MAX for an unknown code. */
static size_t body_size(const struct wire_op *op)
{
	switch (op->code) {
	case WIRE_OP_BIND:
	case WIRE_OP_RMXATTR:
	case WIRE_OP_STASH:
		return 2 + (size_t)op->name_len;
	case WIRE_OP_UNBIND:
	case WIRE_OP_TRUNCATE:
	case WIRE_OP_FSYNC:
	case WIRE_OP_FSYNCDIR:
	case WIRE_OP_BARRIER:
		return 0;
	case WIRE_OP_CREATE:
		return 36 + 2 + (size_t)op->name_len + (S_ISLNK(op->mode) ? 2 + (size_t)op->name2_len : 0);
	case WIRE_OP_LINK:
	case WIRE_OP_UNLINK:
		return 8 + 2 + (size_t)op->name_len;
	case WIRE_OP_RENAME:
		return 20 + 2 + (size_t)op->name_len + 2 + (size_t)op->name2_len;
	case WIRE_OP_WRITE:
		return op->data_len;
	case WIRE_OP_FALLOCATE:
		return 12;
	case WIRE_OP_COPY:
		return 24;
	case WIRE_OP_SETATTR:
		return 28;
	case WIRE_OP_TIMES:
	case WIRE_OP_SETGEN:
		return 16;
	case WIRE_OP_SETXATTR:
		return 2 + (size_t)op->name_len + op->data_len;
	case WIRE_OP_HASHREQ:
		return 8;
	}
	return SIZE_MAX;
}

/* The trailing bulk of the op (written by the caller with encode_head). */
static size_t bulk_size(const struct wire_op *op)
{
	return op->code == WIRE_OP_WRITE || op->code == WIRE_OP_SETXATTR ? op->data_len : 0;
}

size_t wire_op_size(const struct wire_op *op)
{
	size_t b = body_size(op);

	return b == SIZE_MAX ? 0 : WIRE_OP_HDR_LEN + b;
}

static uint8_t *putname(uint8_t *p, const char *s, uint16_t len)
{
	return putmem(put16(p, len), s, len);
}

static enum wire_err encode(const struct wire_op *op, uint8_t *out, size_t cap, size_t *len,
                            bool with_bulk)
{
	enum wire_err e = wire_op_check(op, NULL);
	size_t body, total;
	uint8_t *p = out;

	if (e)
		return e;
	if (bulk_size(op) && !op->data)
		return WIRE_ERR_DATA_LEN;
	body = body_size(op);
	total = WIRE_OP_HDR_LEN + body - (with_bulk ? 0 : bulk_size(op));
	if (cap < total)
		return WIRE_ERR_NOSPACE;
	p = put64(p, op->seq);
	p = put16(p, op->code);
	p = put8(p, op->dir);
	p = put8(p, op->flags);
	p = put32(p, (uint32_t)body);
	p = put64(p, op->fid);
	p = put64(p, op->arg);
	switch (op->code) {
	case WIRE_OP_BIND:
	case WIRE_OP_RMXATTR:
	case WIRE_OP_STASH:
		p = putname(p, op->name, op->name_len);
		break;
	case WIRE_OP_CREATE:
		p = put32(p, op->mode);
		p = put32(p, op->uid);
		p = put32(p, op->gid);
		p = put64(p, op->rdev);
		p = put64(p, (uint64_t)op->mtime_ns);
		p = put64(p, (uint64_t)op->pmtime_ns);
		p = putname(p, op->name, op->name_len);
		if (S_ISLNK(op->mode))
			p = putname(p, op->name2, op->name2_len);
		break;
	case WIRE_OP_LINK:
	case WIRE_OP_UNLINK:
		p = put64(p, (uint64_t)op->pmtime_ns);
		p = putname(p, op->name, op->name_len);
		break;
	case WIRE_OP_RENAME:
		p = put32(p, op->rename_flags);
		p = put64(p, (uint64_t)op->pmtime_ns);
		p = put64(p, (uint64_t)op->new_pmtime_ns);
		p = putname(p, op->name, op->name_len);
		p = putname(p, op->name2, op->name2_len);
		break;
	case WIRE_OP_FALLOCATE:
		p = put32(p, op->fl_mode);
		p = put64(p, op->len);
		break;
	case WIRE_OP_COPY:
		p = put64(p, op->fid_in);
		p = put64(p, op->off_in);
		p = put64(p, op->len);
		break;
	case WIRE_OP_SETATTR:
		p = put32(p, op->mode);
		p = put32(p, op->uid);
		p = put32(p, op->gid);
		/* fall through */
	case WIRE_OP_TIMES:
		p = put64(p, (uint64_t)op->atime_ns);
		p = put64(p, (uint64_t)op->mtime_ns);
		break;
	case WIRE_OP_SETXATTR:
		p = putname(p, op->name, op->name_len);
		break;
	case WIRE_OP_HASHREQ:
		p = put32(p, (uint32_t)op->len);
		p = put32(p, op->block);
		break;
	case WIRE_OP_SETGEN:
		p = put64(p, op->gen);
		p = put64(p, op->bitmap);
		break;
	}
	if (with_bulk)
		p = putmem(p, op->data, bulk_size(op));
	*len = (size_t)(p - out);
	return *len == total ? WIRE_OK : WIRE_ERR_LEN;
}

enum wire_err wire_op_encode(const struct wire_op *op, uint8_t *out, size_t cap, size_t *len)
{
	return encode(op, out, cap, len, true);
}

enum wire_err wire_op_encode_head(const struct wire_op *op, uint8_t *out, size_t cap, size_t *len)
{
	return encode(op, out, cap, len, false);
}

/* Fills the code's fields from its body: exactly as long as the code needs. */
static enum wire_err parse_body(struct rd *r, struct wire_op *op, const char **why)
{
	switch (op->code) {
	case WIRE_OP_BIND:
	case WIRE_OP_RMXATTR:
	case WIRE_OP_STASH:
		rdname(r, &op->name, &op->name_len);
		break;
	case WIRE_OP_CREATE:
		op->mode = rd32(r);
		op->uid = rd32(r);
		op->gid = rd32(r);
		op->rdev = rd64(r);
		op->mtime_ns = (int64_t)rd64(r);
		op->pmtime_ns = (int64_t)rd64(r);
		rdname(r, &op->name, &op->name_len);
		if (S_ISLNK(op->mode))
			rdname(r, &op->name2, &op->name2_len);
		break;
	case WIRE_OP_LINK:
	case WIRE_OP_UNLINK:
		op->pmtime_ns = (int64_t)rd64(r);
		rdname(r, &op->name, &op->name_len);
		break;
	case WIRE_OP_RENAME:
		op->rename_flags = rd32(r);
		op->pmtime_ns = (int64_t)rd64(r);
		op->new_pmtime_ns = (int64_t)rd64(r);
		rdname(r, &op->name, &op->name_len);
		rdname(r, &op->name2, &op->name2_len);
		break;
	case WIRE_OP_WRITE:
		if (r->left > WIRE_DATA_MAX) {
			*why = "data longer than 1 MiB";
			return WIRE_ERR_DATA_LEN;
		}
		op->data_len = (uint32_t)r->left;
		op->data = rdmem(r, r->left);
		break;
	case WIRE_OP_FALLOCATE:
		op->fl_mode = rd32(r);
		op->len = rd64(r);
		break;
	case WIRE_OP_COPY:
		op->fid_in = rd64(r);
		op->off_in = rd64(r);
		op->len = rd64(r);
		break;
	case WIRE_OP_SETATTR:
		op->mode = rd32(r);
		op->uid = rd32(r);
		op->gid = rd32(r);
		/* fall through */
	case WIRE_OP_TIMES:
		op->atime_ns = (int64_t)rd64(r);
		op->mtime_ns = (int64_t)rd64(r);
		break;
	case WIRE_OP_SETXATTR:
		rdname(r, &op->name, &op->name_len);
		if (r->left > WIRE_XATTR_VALUE_MAX) {
			*why = "xattr value longer than 64 KiB";
			return WIRE_ERR_DATA_LEN;
		}
		op->data_len = (uint32_t)r->left;
		op->data = rdmem(r, r->left);
		break;
	case WIRE_OP_HASHREQ:
		op->len = rd32(r);
		op->block = rd32(r);
		break;
	case WIRE_OP_SETGEN:
		op->gen = rd64(r);
		op->bitmap = rd64(r);
		break;
	case WIRE_OP_UNBIND:
	case WIRE_OP_TRUNCATE:
	case WIRE_OP_FSYNC:
	case WIRE_OP_FSYNCDIR:
	case WIRE_OP_BARRIER:
		break;
	default:
		*why = "unknown op code";
		return WIRE_ERR_CODE;
	}
	if (r->bad) {
		*why = "body shorter than its code needs";
		return WIRE_ERR_LEN;
	}
	if (r->left) {
		*why = "body longer than its code needs";
		return WIRE_ERR_LEN;
	}
	return WIRE_OK;
}

void wire_op_iter_init(struct wire_op_iter *it, const uint8_t *body, size_t len, uint16_t nops,
                       uint64_t prev_seq)
{
	memset(it, 0, sizeof(*it));
	it->p = body;
	it->left = len;
	it->nops = nops;
	it->prev_seq = prev_seq;
}

static int iter_fail(struct wire_op_iter *it, enum wire_err e, const char *why)
{
	it->err = e;
	it->why = why;
	return -1;
}

int wire_op_next(struct wire_op_iter *it, struct wire_op *op)
{
	struct rd r = { it->p, it->left, false }, b;
	uint32_t body_len;
	const char *why = NULL;
	enum wire_err e;

	if (it->err)
		return -1;
	memset(op, 0, sizeof(*op));
	if (it->index == it->nops) {
		if (it->left)
			return iter_fail(it, WIRE_ERR_RECORDS, "bytes after the last op");
		return 0;
	}
	if (it->left == 0)
		return iter_fail(it, WIRE_ERR_RECORDS, "fewer ops than the frame header says");
	if (it->left < WIRE_OP_HDR_LEN)
		return iter_fail(it, WIRE_ERR_TRUNCATED, "op header cut short");
	op->seq = rd64(&r);
	op->code = rd16(&r);
	op->dir = rd8(&r);
	op->flags = rd8(&r);
	body_len = rd32(&r);
	op->fid = rd64(&r);
	op->arg = rd64(&r);
	it->err_code = op->code;
	it->err_seq = op->seq;
	if (body_len > r.left)
		return iter_fail(it, WIRE_ERR_TRUNCATED, "op body runs past the end of the frame");
	b = (struct rd){ r.p, body_len, false };
	e = parse_body(&b, op, &why);
	if (!e)
		e = wire_op_check(op, &why);
	if (!e && op->seq <= it->prev_seq) {
		e = WIRE_ERR_SEQ;
		why = "seq not above the previous op's";
	}
	if (e) {
		memset(op, 0, sizeof(*op));
		return iter_fail(it, e, why);
	}
	it->p = r.p + body_len;
	it->left = r.left - body_len;
	it->prev_seq = op->seq;
	it->index++;
	return 1;
}

void wire_op_iter_explain(const struct wire_op_iter *it, char *buf, size_t len)
{
	if (!len)
		return;
	if (!it->err) {
		snprintf(buf, len, "ops fine");
		return;
	}
	if (it->err_code)
		snprintf(buf, len, "op %u of %u (seq %llu, %s): %s: %s", it->index + 1u, it->nops,
		         (unsigned long long)it->err_seq, wire_code_str(it->err_code),
		         wire_err_str(it->err), it->why ? it->why : "");
	else
		snprintf(buf, len, "op %u of %u: %s: %s", it->index + 1u, it->nops,
		         wire_err_str(it->err), it->why ? it->why : "");
}
