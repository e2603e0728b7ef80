#include "cluster/witness_proto.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"

#define DIR_REQUEST 'Q'
#define DIR_ANSWER 'A'
/* The smallest datagram worth parsing: a MAC and "{}". */
#define MIN_LEN (PROTO_MAC_LEN + 2)

const char *wp_op_str(enum wp_op op)
{
	static const char *const names[] = { "acquire", "release" };
	return (unsigned)op < ARRAY_SIZE(names) ? names[op] : "?";
}

const char *wp_error_str(enum wp_error e)
{
	static const char *const names[] = {
		"ok", "wrong size", "not a JSON object", "no valid cluster name",
		"bad signature", "unsupported version", "bad field", "unknown op",
		"lease_ms out of range",
	};
	return (unsigned)e < ARRAY_SIZE(names) ? names[e] : "?";
}

bool wp_valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > WP_NAME_MAX - 1)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return false;
	return true;
}

void wp_derive_key(const unsigned char *secret, size_t secret_len, const char *cluster,
                   unsigned char key[PROTO_KEY_LEN])
{
	proto_derive_key(secret, secret_len, "witness", cluster, key);
}

static void say(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (!why || !whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

/* Signs json (already in out + PROTO_MAC_LEN) in place. */
static int sign(json_t *o, char dir, const unsigned char key[PROTO_KEY_LEN],
                uint8_t out[WP_DATAGRAM_MAX], size_t *len)
{
	size_t n;

	if (!o)
		return -1;
	n = json_dumpb(o, (char *)out + PROTO_MAC_LEN, WP_DATAGRAM_MAX - PROTO_MAC_LEN, JSON_COMPACT);
	json_decref(o);
	if (n == 0 || n > WP_DATAGRAM_MAX - PROTO_MAC_LEN)
		return -1;
	proto_hmac(key, &dir, 1, out + PROTO_MAC_LEN, n, NULL, 0, out);
	*len = PROTO_MAC_LEN + n;
	return 0;
}

static bool fits_json(uint64_t v)
{
	return v <= (uint64_t)INT64_MAX;
}

int wp_encode_request(const struct wp_request *r, const unsigned char key[PROTO_KEY_LEN],
                      uint8_t out[WP_DATAGRAM_MAX], size_t *len)
{
	if (!wp_valid_name(r->cluster) || !wp_valid_name(r->node) || (unsigned)r->op > WP_RELEASE ||
	    !fits_json(r->term) || !fits_json(r->incarnation) || !fits_json(r->seq))
		return -1;
	return sign(json_pack("{s:i, s:s, s:s, s:s, s:I, s:b, s:I, s:I, s:I}",
	                      "v", WP_VERSION, "cluster", r->cluster, "node", r->node,
	                      "op", wp_op_str(r->op), "term", (json_int_t)r->term,
	                      "primary", (int)r->primary, "lease_ms", (json_int_t)r->lease_ms,
	                      "incarnation", (json_int_t)r->incarnation, "seq", (json_int_t)r->seq),
	            DIR_REQUEST, key, out, len);
}

int wp_encode_answer(const struct wp_answer *a, const unsigned char key[PROTO_KEY_LEN],
                     uint8_t out[WP_DATAGRAM_MAX], size_t *len)
{
	if (!wp_valid_name(a->cluster) || !wp_valid_name(a->node) ||
	    (a->holder[0] && !wp_valid_name(a->holder)) || !fits_json(a->incarnation) ||
	    !fits_json(a->seq) || !fits_json(a->term) || !fits_json(a->remaining_ms) ||
	    !memchr(a->error, '\0', sizeof(a->error)))
		return -1;
	return sign(json_pack("{s:i, s:s, s:s, s:I, s:I, s:b, s:o, s:I, s:I, s:s}",
	                      "v", WP_VERSION, "cluster", a->cluster, "node", a->node,
	                      "incarnation", (json_int_t)a->incarnation, "seq", (json_int_t)a->seq,
	                      "granted", (int)a->granted,
	                      "holder", a->holder[0] ? json_string(a->holder) : json_null(),
	                      "term", (json_int_t)a->term, "remaining_ms", (json_int_t)a->remaining_ms,
	                      "error", a->error),
	            DIR_ANSWER, key, out, len);
}

/* The JSON object of a datagram, or NULL (and *e says why). */
static json_t *parse(const uint8_t *buf, size_t len, enum wp_error *e, char *why, size_t whylen)
{
	json_error_t jerr;
	json_t *o;

	if (len < MIN_LEN || len > WP_DATAGRAM_MAX) {
		*e = WP_ERR_SIZE;
		say(why, whylen, "%zu bytes, expected %d to %d", len, MIN_LEN, WP_DATAGRAM_MAX);
		return NULL;
	}
	/* json_loadb refuses a NUL byte outside strings, and "\u0000" inside
	 * them (no JSON_ALLOW_NUL): names stay C strings. */
	o = json_loadb((const char *)buf + PROTO_MAC_LEN, len - PROTO_MAC_LEN, JSON_REJECT_DUPLICATES, &jerr);
	if (!o || !json_is_object(o)) {
		*e = WP_ERR_JSON;
		if (o)
			say(why, whylen, "the JSON text is not an object");
		else
			say(why, whylen, "not JSON: %s at byte %d", jerr.text, jerr.position);
		json_decref(o);
		return NULL;
	}
	*e = WP_OK;
	return o;
}

static bool get_name_opt(json_t *o, const char *field, char out[WP_NAME_MAX])
{
	const char *s = json_string_value(json_object_get(o, field));

	out[0] = '\0';
	if (!s || !wp_valid_name(s))
		return false;
	strlcpy_ok(out, s, WP_NAME_MAX);
	return true;
}

enum wp_error wp_peek(const uint8_t *buf, size_t len, char cluster[WP_NAME_MAX], char node[WP_NAME_MAX])
{
	enum wp_error e;
	json_t *o = parse(buf, len, &e, NULL, 0);

	cluster[0] = node[0] = '\0';
	if (!o)
		return e;
	get_name_opt(o, "node", node);
	e = get_name_opt(o, "cluster", cluster) ? WP_OK : WP_ERR_CLUSTER;
	json_decref(o);
	return e;
}

static enum wp_error verify(const uint8_t *buf, size_t len, char dir, const unsigned char key[PROTO_KEY_LEN])
{
	unsigned char mac[PROTO_MAC_LEN];

	if (len < MIN_LEN || len > WP_DATAGRAM_MAX)
		return WP_ERR_SIZE;
	proto_hmac(key, &dir, 1, buf + PROTO_MAC_LEN, len - PROTO_MAC_LEN, NULL, 0, mac);
	return proto_mac_equal(mac, buf) ? WP_OK : WP_ERR_MAC;
}

/* Field readers: false (and why) if missing or wrong. */
struct rd {
	json_t *o;
	char *why;
	size_t whylen;
	bool ok;
};

static json_t *field(struct rd *r, const char *name)
{
	json_t *v = json_object_get(r->o, name);

	if (!v && r->ok) {
		say(r->why, r->whylen, "field '%s' is missing", name);
		r->ok = false;
	}
	return v;
}

static void bad(struct rd *r, const char *name, const char *what)
{
	if (r->ok)
		say(r->why, r->whylen, "field '%s' %s", name, what);
	r->ok = false;
}

static uint64_t rd_u64(struct rd *r, const char *name)
{
	json_t *v = field(r, name);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		bad(r, name, "must be a whole number from 0 to 2^63-1");
		return 0;
	}
	return (uint64_t)json_integer_value(v);
}

static bool rd_bool(struct rd *r, const char *name)
{
	json_t *v = field(r, name);

	if (v && !json_is_boolean(v))
		bad(r, name, "must be true or false");
	return json_is_true(v);
}

static void rd_name(struct rd *r, const char *name, char out[WP_NAME_MAX], bool nullable)
{
	json_t *v = field(r, name);

	out[0] = '\0';
	if (!v || (nullable && json_is_null(v)))
		return;
	if (!json_is_string(v) || !wp_valid_name(json_string_value(v))) {
		bad(r, name, "must be a name of 1 to 63 letters, digits, '-', '_' or '.'");
		return;
	}
	strlcpy_ok(out, json_string_value(v), WP_NAME_MAX);
}

/* Verifies, parses and checks the version: the object or NULL. */
static json_t *open_signed(const uint8_t *buf, size_t len, char dir, const unsigned char key[PROTO_KEY_LEN],
                           enum wp_error *e, struct rd *r)
{
	json_t *o = parse(buf, len, e, r->why, r->whylen);
	json_t *v;

	if (!o)
		return NULL;
	*e = verify(buf, len, dir, key);
	if (*e != WP_OK) {
		say(r->why, r->whylen, "%s", wp_error_str(*e));
		json_decref(o);
		return NULL;
	}
	r->o = o;
	r->ok = true;
	v = field(r, "v");
	if (!v || !json_is_integer(v) || json_integer_value(v) != WP_VERSION) {
		*e = v ? WP_ERR_VERSION : WP_ERR_FIELD;
		if (v)
			say(r->why, r->whylen, "unsupported version (this side speaks %d)", WP_VERSION);
		json_decref(o);
		return NULL;
	}
	return o;
}

enum wp_error wp_decode_request(const uint8_t *buf, size_t len, const unsigned char key[PROTO_KEY_LEN],
                                struct wp_request *out, char *why, size_t whylen)
{
	struct rd r = { .why = why, .whylen = whylen };
	enum wp_error e;
	const char *op;
	uint64_t lease;
	json_t *o = open_signed(buf, len, DIR_REQUEST, key, &e, &r);

	if (!o)
		return e;
	memset(out, 0, sizeof(*out));
	rd_name(&r, "cluster", out->cluster, false);
	rd_name(&r, "node", out->node, false);
	op = json_string_value(field(&r, "op"));
	out->term = rd_u64(&r, "term");
	out->primary = rd_bool(&r, "primary");
	lease = rd_u64(&r, "lease_ms");
	out->incarnation = rd_u64(&r, "incarnation");
	out->seq = rd_u64(&r, "seq");
	e = WP_ERR_FIELD;
	if (!r.ok)
		goto out;
	if (op && !strcmp(op, "acquire")) {
		out->op = WP_ACQUIRE;
	} else if (op && !strcmp(op, "release")) {
		out->op = WP_RELEASE;
	} else {
		e = WP_ERR_OP;
		say(why, whylen, "unknown op %s%s%s (expected acquire or release)", op ? "'" : "",
		    op ? op : "(not a string)", op ? "'" : "");
		goto out;
	}
	if (lease < WP_LEASE_MIN_MS || lease > WP_LEASE_MAX_MS) {
		e = WP_ERR_LEASE;
		say(why, whylen, "lease_ms %llu is outside %d to %d", (unsigned long long)lease,
		    WP_LEASE_MIN_MS, WP_LEASE_MAX_MS);
		goto out;
	}
	out->lease_ms = (uint32_t)lease;
	e = WP_OK;
out:
	json_decref(o);
	return e;
}

enum wp_error wp_decode_answer(const uint8_t *buf, size_t len, const unsigned char key[PROTO_KEY_LEN],
                               struct wp_answer *out, char *why, size_t whylen)
{
	struct rd r = { .why = why, .whylen = whylen };
	enum wp_error e;
	const char *err;
	json_t *o = open_signed(buf, len, DIR_ANSWER, key, &e, &r);

	if (!o)
		return e;
	memset(out, 0, sizeof(*out));
	rd_name(&r, "cluster", out->cluster, false);
	rd_name(&r, "node", out->node, false);
	out->incarnation = rd_u64(&r, "incarnation");
	out->seq = rd_u64(&r, "seq");
	out->granted = rd_bool(&r, "granted");
	rd_name(&r, "holder", out->holder, true);
	out->term = rd_u64(&r, "term");
	out->remaining_ms = rd_u64(&r, "remaining_ms");
	err = json_string_value(field(&r, "error"));
	if (r.ok && !err)
		bad(&r, "error", "must be a string");
	if (r.ok) {
		/* It ends up in log lines and status: one line of printable text. */
		strlcpy_ok(out->error, err, sizeof(out->error));
		for (char *p = out->error; *p; p++)
			if (iscntrl((unsigned char)*p))
				*p = '?';
	}
	json_decref(o);
	return r.ok ? WP_OK : WP_ERR_FIELD;
}
