/* The bodies of the HELLO, ACK/ERROR and HASHES frames. See wire.h for
 * the format. */
#include "rfs/wire.h"

#include <string.h>

#include "common/util.h"
#include "rfs/wire_int.h"

const char *wire_role_str(unsigned role)
{
	static const char *const names[] = {
		[WIRE_ROLE_STANDBY] = "standby", [WIRE_ROLE_SECOND] = "second", [WIRE_ROLE_PRIM] = "prim",
	};
	return role < ARRAY_SIZE(names) && names[role] ? names[role] : "unknown";
}

static bool hello_name_ok(const char *s, size_t *len)
{
	*len = strnlen(s, WIRE_HELLO_NAME_MAX + 1);
	return *len >= 1 && *len <= WIRE_HELLO_NAME_MAX;
}

enum wire_err wire_hello_encode(const struct wire_hello *h, uint8_t *out, size_t cap, size_t *len)
{
	size_t nl, cl;
	uint8_t *p = out;

	if (h->version != WIRE_VERSION)
		return WIRE_ERR_VERSION;
	if (h->role == 0 || h->role >= WIRE_ROLE_END)
		return WIRE_ERR_FIELD;
	if (h->flags & ~(uint32_t)WIRE_HELLO_FLAGS_KNOWN)
		return WIRE_ERR_FLAGS;
	if (!hello_name_ok(h->node, &nl) || !hello_name_ok(h->cluster, &cl))
		return WIRE_ERR_NAME;
	if (cap < WIRE_HELLO_FIXED_LEN + nl + cl)
		return WIRE_ERR_NOSPACE;
	p = put16(p, h->version);
	p = put8(p, h->role);
	p = put8(p, 0);
	p = put32(p, h->flags);
	p = putmem(p, h->dirs_hash, WIRE_DIRS_HASH_LEN);
	p = putmem(p, h->gens, WIRE_GENS_LEN);
	p = put8(p, (uint8_t)nl);
	p = putmem(p, h->node, nl);
	p = put8(p, (uint8_t)cl);
	p = putmem(p, h->cluster, cl);
	*len = (size_t)(p - out);
	return WIRE_OK;
}

static bool rd_hello_name(struct rd *r, char out[WIRE_HELLO_NAME_MAX + 1])
{
	uint8_t n = rd8(r);
	const uint8_t *p = rdmem(r, n);

	if (!p || n == 0 || n > WIRE_HELLO_NAME_MAX || memchr(p, 0, n))
		return false;
	memcpy(out, p, n);
	out[n] = 0;
	return true;
}

enum wire_err wire_hello_decode(const uint8_t *body, size_t len, struct wire_hello *out)
{
	struct rd r = { body, len, false };
	uint8_t rsv;

	memset(out, 0, sizeof(*out));
	out->version = rd16(&r);
	out->role = rd8(&r);
	rsv = rd8(&r);
	out->flags = rd32(&r);
	if (r.bad)
		return WIRE_ERR_TRUNCATED;
	if (out->version != WIRE_VERSION)
		return WIRE_ERR_VERSION;
	if (rsv)
		return WIRE_ERR_RESERVED;
	if (out->role == 0 || out->role >= WIRE_ROLE_END)
		return WIRE_ERR_FIELD;
	if (out->flags & ~(uint32_t)WIRE_HELLO_FLAGS_KNOWN)
		return WIRE_ERR_FLAGS;
	if (len < WIRE_HELLO_FIXED_LEN)
		return WIRE_ERR_TRUNCATED;
	memcpy(out->dirs_hash, rdmem(&r, WIRE_DIRS_HASH_LEN), WIRE_DIRS_HASH_LEN);
	memcpy(out->gens, rdmem(&r, WIRE_GENS_LEN), WIRE_GENS_LEN);
	if (!rd_hello_name(&r, out->node) || !rd_hello_name(&r, out->cluster))
		return r.bad ? WIRE_ERR_TRUNCATED : WIRE_ERR_NAME;
	if (r.left)
		return WIRE_ERR_LEN;
	return WIRE_OK;
}

static enum wire_err ack_check(uint8_t type, const struct wire_ack *a)
{
	if (type != WIRE_ACK && type != WIRE_ERROR)
		return WIRE_ERR_TYPE;
	if (a->applied_seq > a->recv_seq || a->durable_seq > a->applied_seq ||
	    a->ckpt_seq > a->applied_seq)
		return WIRE_ERR_SEQ;
	if (a->text_len > WIRE_TEXT_MAX || (a->text_len && (!a->text || memchr(a->text, 0, a->text_len))))
		return WIRE_ERR_TEXT;
	/* An ERROR says what failed; an ACK may carry a past error too. */
	if (type == WIRE_ERROR && (a->err_no == 0 || a->text_len == 0))
		return WIRE_ERR_FIELD;
	if ((a->err_no == 0) != (a->err_seq == 0) && type == WIRE_ACK)
		return WIRE_ERR_FIELD;
	return WIRE_OK;
}

enum wire_err wire_ack_encode(uint8_t type, const struct wire_ack *a, uint8_t *out, size_t cap,
                              size_t *len)
{
	enum wire_err e = ack_check(type, a);
	uint8_t *p = out;

	if (e)
		return e;
	if (cap < WIRE_ACK_FIXED_LEN + (size_t)a->text_len)
		return WIRE_ERR_NOSPACE;
	p = put64(p, a->recv_seq);
	p = put64(p, a->applied_seq);
	p = put64(p, a->durable_seq);
	p = put64(p, a->ckpt_seq);
	p = put64(p, a->err_seq);
	p = put32(p, a->err_no);
	p = put16(p, a->text_len);
	p = putmem(p, a->text, a->text_len);
	*len = (size_t)(p - out);
	return WIRE_OK;
}

enum wire_err wire_ack_decode(uint8_t type, const uint8_t *body, size_t len, struct wire_ack *out)
{
	struct rd r = { body, len, false };
	const uint8_t *t;

	memset(out, 0, sizeof(*out));
	out->recv_seq = rd64(&r);
	out->applied_seq = rd64(&r);
	out->durable_seq = rd64(&r);
	out->ckpt_seq = rd64(&r);
	out->err_seq = rd64(&r);
	out->err_no = rd32(&r);
	out->text_len = rd16(&r);
	if (r.bad)
		return WIRE_ERR_TRUNCATED;
	if (out->text_len > WIRE_TEXT_MAX)
		return WIRE_ERR_TEXT;
	t = rdmem(&r, out->text_len);
	if (!t) {
		out->text_len = 0;
		return WIRE_ERR_TRUNCATED;
	}
	if (r.left)
		return WIRE_ERR_LEN;
	out->text = (const char *)t;
	return ack_check(type, out);
}

static enum wire_err hashes_check(const struct wire_hashes *h)
{
	if (h->seq == 0)
		return WIRE_ERR_SEQ;
	if (h->fid == 0)
		return WIRE_ERR_FID;
	if (h->block < 4096 || h->block > WIRE_DATA_MAX || (h->block & (h->block - 1)) ||
	    h->len == 0 || h->len > WIRE_DATA_MAX || h->off % h->block || h->off > OFF_MAX - h->len)
		return WIRE_ERR_FIELD;
	if (h->count != (h->len + h->block - 1) / h->block)
		return WIRE_ERR_RECORDS;
	return WIRE_OK;
}

enum wire_err wire_hashes_encode(const struct wire_hashes *h, uint8_t *out, size_t cap, size_t *len)
{
	enum wire_err e = hashes_check(h);
	uint8_t *p = out;

	if (e)
		return e;
	if (!h->hashes)
		return WIRE_ERR_FIELD;
	if (cap < WIRE_HASHES_FIXED_LEN + (size_t)h->count * WIRE_HASH_LEN)
		return WIRE_ERR_NOSPACE;
	p = put64(p, h->seq);
	p = put64(p, h->fid);
	p = put64(p, h->off);
	p = put32(p, h->len);
	p = put32(p, h->block);
	p = put8(p, h->dir);
	p = putmem(p, "\0\0\0", 3);
	p = put32(p, h->count);
	p = putmem(p, h->hashes, (size_t)h->count * WIRE_HASH_LEN);
	*len = (size_t)(p - out);
	return WIRE_OK;
}

enum wire_err wire_hashes_decode(const uint8_t *body, size_t len, struct wire_hashes *out)
{
	struct rd r = { body, len, false };
	const uint8_t *rsv;
	enum wire_err e;

	memset(out, 0, sizeof(*out));
	out->seq = rd64(&r);
	out->fid = rd64(&r);
	out->off = rd64(&r);
	out->len = rd32(&r);
	out->block = rd32(&r);
	out->dir = rd8(&r);
	rsv = rdmem(&r, 3);
	out->count = rd32(&r);
	if (r.bad)
		return WIRE_ERR_TRUNCATED;
	if (rsv[0] | rsv[1] | rsv[2])
		return WIRE_ERR_RESERVED;
	e = hashes_check(out);
	if (e)
		return e;
	if (r.left != (size_t)out->count * WIRE_HASH_LEN)
		return r.left < (size_t)out->count * WIRE_HASH_LEN ? WIRE_ERR_TRUNCATED : WIRE_ERR_LEN;
	out->hashes = r.p;
	return WIRE_OK;
}
