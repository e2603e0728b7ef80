/* The dirty record's codec and replay: pure, no I/O. See journal.h for
 * the format and rules; journal.c has the file. */
#include <pthread.h>
#include <string.h>

#include "rfs/journal.h"

#define PAYLOAD_ID 9u                   /* dir u8 | ino u64 */
#define PAYLOAD_EXT 25u                 /* + off u64 | len u64 */

const char *journal_rec_str(enum journal_rec type)
{
	switch (type) {
	case JREC_HOT: return "HOT";
	case JREC_COOL: return "COOL";
	case JREC_SURE: return "SURE";
	case JREC_UNSURE: return "UNSURE";
	case JREC_EXT: return "EXT";
	case JREC_WHOLE: return "WHOLE";
	case JREC_FORGET: return "FORGET";
	case JREC_CLEAR: return "CLEAR";
	case JREC_BASE: return "BASE";
	}
	return "?";
}

/* ---- CRC-32C, one byte per step: records are tiny, speed is no issue. */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[i] = c;
	}
}

/* c is the running (inverted) state, so a record's pieces chain. */
static uint32_t crc_update(uint32_t c, const uint8_t *p, size_t n)
{
	pthread_once(&crc_once, crc_init);
	while (n--)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return c;
}

uint32_t journal_crc32c(const void *buf, size_t len)
{
	return ~crc_update(~0u, buf, len);
}

/* ---- codec */

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

/* Payload length of a type; -1 if the type is unknown. */
static int payload_len(unsigned type)
{
	switch (type) {
	case JREC_HOT: case JREC_COOL: case JREC_SURE: case JREC_UNSURE:
	case JREC_WHOLE: case JREC_FORGET: case JREC_BASE:
		return PAYLOAD_ID;
	case JREC_EXT:
		return PAYLOAD_EXT;
	case JREC_CLEAR:
		return 0;
	}
	return -1;
}

size_t journal_encode(uint8_t *buf, enum journal_rec type, uint8_t dir, uint64_t ino,
                      uint64_t off, uint64_t len)
{
	uint32_t plen = (uint32_t)payload_len(type);
	uint8_t *b = buf + JOURNAL_HDR_LEN;

	put32(buf, 1 + plen);
	b[0] = (uint8_t)type;
	if (plen) {
		b[1] = dir;
		put64(b + 2, ino);
	}
	if (type == JREC_EXT) {
		put64(b + 10, off);
		put64(b + 18, len);
	}
	put32(buf + 4, ~crc_update(crc_update(~0u, buf, 4), b, 1 + plen));
	return JOURNAL_HDR_LEN + 1 + plen;
}

/* One good record into the set: the dirty.h call of the same name. */
static int apply_rec(struct dirty_set *set, unsigned type, const uint8_t *p, uint64_t *base)
{
	uint8_t dir;
	uint64_t ino;
	int rc = 0;

	/* CLEAR has no payload: p may be the end of the buffer. */
	if (type == JREC_CLEAR) {
		dirty_clear(set, true);
		*base = 0;
		return 0;
	}
	dir = p[0];
	ino = get64(p + 1);
	if (type == JREC_BASE) {
		*base = ino;
		return 0;
	}
	switch (type) {
	case JREC_HOT: rc = dirty_hot(set, dir, ino); break;
	case JREC_COOL: rc = dirty_cool(set, dir, ino); break;
	case JREC_SURE: rc = dirty_sure(set, dir, ino); break;
	case JREC_UNSURE: rc = dirty_unsure(set, dir, ino); break;
	case JREC_WHOLE: rc = dirty_whole(set, dir, ino); break;
	case JREC_FORGET: rc = dirty_forget(set, dir, ino); break;
	case JREC_EXT:
		/* journal_ext() never writes such an offset; if one got here
		 * with a good CRC, the file was still written: resend it. */
		if (get64(p + 9) >= DIRTY_LIMIT)
			rc = dirty_whole(set, dir, ino);
		else
			rc = dirty_add(set, dir, ino, get64(p + 9), get64(p + 17));
		break;
	}
	return rc < 0 ? -1 : 0;
}

int journal_replay_buf(const uint8_t *buf, size_t len, struct dirty_set *set, struct journal_replay *r)
{
	size_t pos = 0;

	memset(r, 0, sizeof(*r));
	while (pos < len) {
		const uint8_t *h = buf + pos;
		uint32_t rl;
		int plen;

		if (len - pos < JOURNAL_HDR_LEN) {
			r->cut = "short record header";
			break;
		}
		rl = get32(h);
		if (rl < 1 || rl > JOURNAL_REC_MAX - JOURNAL_HDR_LEN) {
			r->cut = "bad record length";
			break;
		}
		if (len - pos - JOURNAL_HDR_LEN < rl) {
			r->cut = "short record";
			break;
		}
		if (~crc_update(crc_update(~0u, h, 4), h + JOURNAL_HDR_LEN, rl) != get32(h + 4)) {
			r->cut = "bad CRC";
			break;
		}
		plen = payload_len(h[JOURNAL_HDR_LEN]);
		if (plen < 0) {
			r->cut = "unknown record type";
			break;
		}
		if ((uint32_t)plen != rl - 1) {
			r->cut = "wrong length for the record type";
			break;
		}
		if (apply_rec(set, h[JOURNAL_HDR_LEN], h + JOURNAL_HDR_LEN + 1, &r->base) < 0)
			return -1;
		pos += JOURNAL_HDR_LEN + rl;
		r->records++;
		r->good = pos;
	}
	r->unsure = dirty_hot_to_unsure(set);
	return 0;
}
