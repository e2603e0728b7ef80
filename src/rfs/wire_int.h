/* Big-endian cursors shared by the wire codec's files (wire_frame.c,
 * wire_body.c, wire_op.c). Internal to src/rfs: users include rfs/wire.h. */
#ifndef VIGIL_RFS_WIRE_INT_H
#define VIGIL_RFS_WIRE_INT_H

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rfs/wire.h"

/* Offsets and lengths stay below 2^63: off_t is signed. */
#define OFF_MAX ((uint64_t)INT64_MAX)

/* memcpy: no unaligned access. */
static inline uint8_t *put8(uint8_t *p, uint8_t v) { *p = v; return p + 1; }
static inline uint8_t *put16(uint8_t *p, uint16_t v) { v = htobe16(v); memcpy(p, &v, 2); return p + 2; }
static inline uint8_t *put32(uint8_t *p, uint32_t v) { v = htobe32(v); memcpy(p, &v, 4); return p + 4; }
static inline uint8_t *put64(uint8_t *p, uint64_t v) { v = htobe64(v); memcpy(p, &v, 8); return p + 8; }
static inline uint8_t *putmem(uint8_t *p, const void *s, size_t n)
{
	if (n)
		memcpy(p, s, n);
	return p + n;
}

/* A reader that turns "bad" instead of reading past its end. */
struct rd {
	const uint8_t *p;
	size_t left;
	bool bad;
};

static inline const uint8_t *rdmem(struct rd *r, size_t n)
{
	const uint8_t *p = r->p;

	if (r->bad || n > r->left) {
		r->bad = true;
		return NULL;
	}
	r->p += n;
	r->left -= n;
	return p;
}

static inline uint8_t rd8(struct rd *r)
{
	const uint8_t *p = rdmem(r, 1);
	return p ? *p : 0;
}

static inline uint16_t rd16(struct rd *r)
{
	const uint8_t *p = rdmem(r, 2);
	uint16_t v = 0;

	if (p)
		memcpy(&v, p, 2);
	return be16toh(v);
}

static inline uint32_t rd32(struct rd *r)
{
	const uint8_t *p = rdmem(r, 4);
	uint32_t v = 0;

	if (p)
		memcpy(&v, p, 4);
	return be32toh(v);
}

static inline uint64_t rd64(struct rd *r)
{
	const uint8_t *p = rdmem(r, 8);
	uint64_t v = 0;

	if (p)
		memcpy(&v, p, 8);
	return be64toh(v);
}

#endif
