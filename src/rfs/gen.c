#include "rfs/gen.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

_Static_assert(RFS_GEN_LEN == 64, "the gens layout in gen.h fills 64 bytes");

static void seterr(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

int rfs_gen_check(const struct rfs_gen *g, char *err, size_t errlen)
{
	if (g->c == 0 && (g->b || g->h[0] || g->h[1])) {
		seterr(err, errlen, "generation is 0 but the record base or history is set");
		return -1;
	}
	if (g->b && g->b == g->c) {
		seterr(err, errlen, "record base equals the current generation %016" PRIx64, g->c);
		return -1;
	}
	if (g->h[1] && !g->h[0]) {
		seterr(err, errlen, "history has a gap (h[1] set, h[0] empty)");
		return -1;
	}
	if (g->outdated_since_ms > (uint64_t)INT64_MAX) {
		seterr(err, errlen, "outdated_since_ms %" PRIu64 " is out of range", g->outdated_since_ms);
		return -1;
	}
	if (!g->outdated && g->outdated_since_ms) {
		seterr(err, errlen, "outdated_since_ms is set but the node is not outdated");
		return -1;
	}
	return 0;
}

/* ---- transitions ---- */

int rfs_gen_go_alone(struct rfs_gen *g, uint64_t rnd)
{
	/* A repeat would make two different copies look equal or related. */
	if (rnd == 0 || rnd == g->c || rnd == g->b || rnd == g->h[0] || rnd == g->h[1])
		return -1;
	if (g->c) {
		g->h[1] = g->h[0];
		g->h[0] = g->c;
	}
	if (g->b == 0)
		g->b = g->c;
	g->c = rnd;
	return 0;
}

int rfs_gen_resync_done(struct rfs_gen *second, uint64_t prim_c)
{
	if (prim_c == 0)
		return -1;
	second->c = prim_c;
	second->b = 0;
	second->outdated = false;
	second->outdated_since_ms = 0;
	return 0;
}

void rfs_gen_record_cleared(struct rfs_gen *prim)
{
	prim->b = 0;
}

int rfs_gen_forcestart(struct rfs_gen *g, uint64_t rnd)
{
	if (rfs_gen_go_alone(g, rnd) < 0)
		return -1;
	g->outdated = false;
	g->outdated_since_ms = 0;
	return 0;
}

void rfs_gen_forcestart_msg(const struct rfs_gen *before, const char *peer, char *buf,
                            size_t len)
{
	char when[32];

	if (!len)
		return;
	if (before->outdated && before->outdated_since_ms) {
		format_wall(before->outdated_since_ms, when, sizeof(when));
		snprintf(buf, len, "data not up to date since %s; changes on %s after that are missing here",
		         when, peer);
	} else if (before->outdated) {
		snprintf(buf, len, "data not up to date; changes on %s are missing here", peer);
	} else {
		snprintf(buf, len, "changes on %s that did not reach this node are missing here", peer);
	}
}

void rfs_gen_set_outdated(struct rfs_gen *g, uint64_t now_wall_ms)
{
	if (g->outdated)
		return;
	g->outdated = true;
	g->outdated_since_ms = now_wall_ms;
}

/* ---- relation ---- */

const char *rfs_relation_str(enum rfs_relation r)
{
	switch (r) {
	case RFS_REL_EQUAL: return "equal";
	case RFS_REL_A_NEWER: return "this newer";
	case RFS_REL_P_NEWER: return "peer newer";
	case RFS_REL_SPLIT: return "split brain";
	case RFS_REL_A_NEWER_FULL: return "this newer, full compare";
	case RFS_REL_P_NEWER_FULL: return "peer newer, full compare";
	case RFS_REL_UNRELATED: return "unrelated";
	}
	return "?";
}

enum rfs_relation rfs_relation_mirror(enum rfs_relation r)
{
	switch (r) {
	case RFS_REL_A_NEWER: return RFS_REL_P_NEWER;
	case RFS_REL_P_NEWER: return RFS_REL_A_NEWER;
	case RFS_REL_A_NEWER_FULL: return RFS_REL_P_NEWER_FULL;
	case RFS_REL_P_NEWER_FULL: return RFS_REL_A_NEWER_FULL;
	default: return r;
	}
}

bool rfs_relation_a_newer(enum rfs_relation r)
{
	return r == RFS_REL_A_NEWER || r == RFS_REL_A_NEWER_FULL;
}

bool rfs_relation_p_newer(enum rfs_relation r)
{
	return r == RFS_REL_P_NEWER || r == RFS_REL_P_NEWER_FULL;
}

static bool in_hist(const struct rfs_gen *g, uint64_t v)
{
	return v && (g->h[0] == v || g->h[1] == v);
}

/* The table of §5.2 alone, without the outdated rule. */
static enum rfs_relation table(const struct rfs_gen *a, const struct rfs_gen *p)
{
	bool an, pn;

	if (rfs_gen_check(a, NULL, 0) < 0 || rfs_gen_check(p, NULL, 0) < 0)
		return RFS_REL_UNRELATED;
	if (a->c && a->c == p->c)
		return RFS_REL_EQUAL;
	if (a->b && a->b == p->b)
		return RFS_REL_SPLIT;
	an = a->b && a->b == p->c;
	pn = p->b && p->b == a->c;
	if (an || pn)
		return an && pn ? RFS_REL_UNRELATED : an ? RFS_REL_A_NEWER : RFS_REL_P_NEWER;
	an = in_hist(a, p->c);
	pn = in_hist(p, a->c);
	if (an || pn)
		return an && pn ? RFS_REL_UNRELATED : an ? RFS_REL_A_NEWER_FULL : RFS_REL_P_NEWER_FULL;
	return RFS_REL_UNRELATED;
}

enum rfs_relation rfs_gen_relation(const struct rfs_gen *a, const struct rfs_gen *p)
{
	enum rfs_relation r = table(a, p);

	if ((r == RFS_REL_A_NEWER && a->outdated) || (r == RFS_REL_P_NEWER && p->outdated))
		return RFS_REL_SPLIT;
	if ((r == RFS_REL_A_NEWER_FULL && a->outdated) || (r == RFS_REL_P_NEWER_FULL && p->outdated))
		return RFS_REL_UNRELATED;
	return r;
}

bool rfs_gen_incremental(const struct rfs_gen *prim, const struct rfs_gen *second, bool record)
{
	return record && second->b == 0 && rfs_gen_relation(prim, second) == RFS_REL_A_NEWER;
}

bool rfs_gen_verify(const struct rfs_gen *prim, const struct rfs_gen *second, bool verify)
{
	enum rfs_relation r = rfs_gen_relation(prim, second);

	return verify && second->b == 0 && second->c != 0 &&
	       (r == RFS_REL_EQUAL || r == RFS_REL_A_NEWER);
}

/* ---- HELLO bytes ---- */

static void put64(uint8_t *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, 8);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return be64toh(v);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

int rfs_gen_encode(const struct rfs_gen *g, uint8_t out[RFS_GEN_LEN], uint32_t *hello_flags)
{
	if (rfs_gen_check(g, NULL, 0) < 0)
		return -1;
	memset(out, 0, RFS_GEN_LEN);
	out[0] = RFS_GEN_FORMAT;
	put64(out + 8, g->c);
	put64(out + 16, g->b);
	put64(out + 24, g->h[0]);
	put64(out + 32, g->h[1]);
	put64(out + 40, g->outdated_since_ms);
	*hello_flags &= ~(uint32_t)(WIRE_HELLO_OUTDATED | WIRE_HELLO_CLEAN_STOP);
	if (g->outdated)
		*hello_flags |= WIRE_HELLO_OUTDATED;
	if (g->clean_stop)
		*hello_flags |= WIRE_HELLO_CLEAN_STOP;
	return 0;
}

int rfs_gen_decode(const uint8_t in[RFS_GEN_LEN], uint32_t hello_flags, struct rfs_gen *out,
                   char *err, size_t errlen)
{
	struct rfs_gen g = { 0 };
	char why[160];

	memset(out, 0, sizeof(*out));
	if (in[0] != RFS_GEN_FORMAT) {
		seterr(err, errlen, "generations: format %u, expected %u", in[0], RFS_GEN_FORMAT);
		return -1;
	}
	if (!all_zero(in + 1, 7) || !all_zero(in + 48, 16)) {
		seterr(err, errlen, "generations: reserved bytes are not zero");
		return -1;
	}
	g.c = get64(in + 8);
	g.b = get64(in + 16);
	g.h[0] = get64(in + 24);
	g.h[1] = get64(in + 32);
	g.outdated_since_ms = get64(in + 40);
	g.outdated = hello_flags & WIRE_HELLO_OUTDATED;
	g.clean_stop = hello_flags & WIRE_HELLO_CLEAN_STOP;
	if (rfs_gen_check(&g, why, sizeof(why)) < 0) {
		seterr(err, errlen, "generations: %s", why);
		return -1;
	}
	*out = g;
	return 0;
}

/* ---- meta file ---- */

/* Exactly 16 hex digits: a shorter or longer string is a damaged file. */
static int parse_hex64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (strlen(s) != 16)
		return -1;
	for (int i = 0; i < 16; i++) {
		char ch = s[i];
		unsigned d;

		if (ch >= '0' && ch <= '9')
			d = (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			d = (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			d = (unsigned)(ch - 'A' + 10);
		else
			return -1;
		v = v << 4 | d;
	}
	*out = v;
	return 0;
}

static const char *const meta_keys[] = {
	"format", "c", "b", "h", "outdated", "outdated_since_ms", "clean_stop",
};

static int get_hex(json_t *o, const char *key, uint64_t *out, char *why, size_t len)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v) || parse_hex64(json_string_value(v), out) < 0) {
		snprintf(why, len, "\"%s\" is not a string of 16 hex digits", key);
		return -1;
	}
	return 0;
}

static int get_bool(json_t *o, const char *key, bool *out, char *why, size_t len)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_boolean(v)) {
		snprintf(why, len, "\"%s\" is not true or false", key);
		return -1;
	}
	*out = json_is_true(v);
	return 0;
}

/* The object's content into *g; -1 with why. */
static int parse_meta(json_t *o, struct rfs_gen *g, char *why, size_t len)
{
	const char *key;
	json_t *v, *h;

	if (!json_is_object(o)) {
		snprintf(why, len, "not a JSON object");
		return -1;
	}
	json_object_foreach(o, key, v) {
		size_t i;

		for (i = 0; i < ARRAY_SIZE(meta_keys) && strcmp(key, meta_keys[i]); i++)
			;
		if (i == ARRAY_SIZE(meta_keys)) {
			snprintf(why, len, "unknown key \"%.64s\"", key);
			return -1;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(meta_keys); i++) {
		if (!json_object_get(o, meta_keys[i])) {
			snprintf(why, len, "\"%s\" is missing", meta_keys[i]);
			return -1;
		}
	}
	v = json_object_get(o, "format");
	if (!json_is_integer(v) || json_integer_value(v) != RFS_GEN_FORMAT) {
		snprintf(why, len, "\"format\" is not %d", RFS_GEN_FORMAT);
		return -1;
	}
	if (get_hex(o, "c", &g->c, why, len) < 0 || get_hex(o, "b", &g->b, why, len) < 0)
		return -1;
	h = json_object_get(o, "h");
	if (!json_is_array(h) || json_array_size(h) != RFS_GEN_HIST) {
		snprintf(why, len, "\"h\" is not an array of %d generations", RFS_GEN_HIST);
		return -1;
	}
	for (size_t i = 0; i < RFS_GEN_HIST; i++) {
		json_t *e = json_array_get(h, i);

		if (!json_is_string(e) || parse_hex64(json_string_value(e), &g->h[i]) < 0) {
			snprintf(why, len, "\"h\"[%zu] is not a string of 16 hex digits", i);
			return -1;
		}
	}
	if (get_bool(o, "outdated", &g->outdated, why, len) < 0 ||
	    get_bool(o, "clean_stop", &g->clean_stop, why, len) < 0)
		return -1;
	v = json_object_get(o, "outdated_since_ms");
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		snprintf(why, len, "\"outdated_since_ms\" is not a non-negative integer");
		return -1;
	}
	g->outdated_since_ms = (uint64_t)json_integer_value(v);
	return rfs_gen_check(g, why, len);
}

/* state_dir/name: the files of vigil-rfs's state dir (absolute). */
static int state_file(const char *state_dir, const char *name, char *out, size_t len)
{
	if (state_dir[0] != '/')
		return -1;
	return (size_t)snprintf(out, len, "%s/%s", state_dir, name) < len ? 0 : -1;
}

int rfs_gen_verify_path(const char *state_dir, char *out, size_t len)
{
	return state_file(state_dir, "verify", out, len);
}

int rfs_gen_verify_mark(const char *path, bool on)
{
	static const char text[] = "compare this copy with the PRIM's by block hashes "
	                           "(vigilctl sync full)\n";
	int rc;

	if (on) {
		rc = write_file_atomic(path, text, sizeof(text) - 1, 0600);
		if (rc < 0) {
			log_error("%s: cannot write: %s", path, strerror(-rc));
			return -1;
		}
		return 0;
	}
	/* Not durable at once: a mark that comes back after a crash only
	 * costs one more compare. */
	if (unlink(path) < 0 && errno != ENOENT) {
		log_error("%s: cannot remove: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int rfs_gen_meta_path(const char *state_dir, char *out, size_t len)
{
	return state_file(state_dir, "meta", out, len);
}

int rfs_gen_load(const char *path, struct rfs_gen *out, char *err, size_t errlen)
{
	struct rfs_gen g = { 0 };
	json_error_t jerr;
	char why[200];
	char *buf = NULL;
	size_t len = 0;
	json_t *o;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = read_file(path, RFS_GEN_META_MAX, &buf, &len);
	if (rc == -ENOENT)
		return 1;
	if (rc == -EFBIG) {
		seterr(err, errlen, "%s: larger than %d bytes: not a generations file", path,
		       RFS_GEN_META_MAX);
		return -1;
	}
	if (rc < 0) {
		seterr(err, errlen, "%s: cannot read: %s", path, strerror(-rc));
		return -1;
	}
	if (len == 0) {
		free(buf);
		seterr(err, errlen, "%s: empty (damaged: it is only ever replaced whole)", path);
		return -1;
	}
	/* No JSON_ALLOW_NUL: a NUL inside the file is damage, not data. */
	o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	free(buf);
	if (!o) {
		seterr(err, errlen, "%s: not valid JSON (line %d: %s)", path, jerr.line, jerr.text);
		return -1;
	}
	rc = parse_meta(o, &g, why, sizeof(why));
	json_decref(o);
	if (rc < 0) {
		seterr(err, errlen, "%s: %s", path, why);
		return -1;
	}
	*out = g;
	return 0;
}

int rfs_gen_store(const char *path, const struct rfs_gen *g)
{
	char why[160], buf[512];
	int n, rc;

	if (rfs_gen_check(g, why, sizeof(why)) < 0) {
		log_error("%s: not storing invalid generations: %s", path, why);
		return -1;
	}
	/* Fixed fields and hex digits only: printf is the whole JSON encoder. */
	n = snprintf(buf, sizeof(buf),
	             "{\n  \"format\": %d,\n  \"c\": \"%016" PRIx64 "\",\n  \"b\": \"%016" PRIx64 "\",\n"
	             "  \"h\": [\"%016" PRIx64 "\", \"%016" PRIx64 "\"],\n  \"outdated\": %s,\n"
	             "  \"outdated_since_ms\": %" PRIu64 ",\n  \"clean_stop\": %s\n}\n",
	             RFS_GEN_FORMAT, g->c, g->b, g->h[0], g->h[1], g->outdated ? "true" : "false",
	             g->outdated_since_ms, g->clean_stop ? "true" : "false");
	rc = write_file_atomic(path, buf, (size_t)n, 0600);
	if (rc < 0) {
		log_error("%s: cannot write generations: %s", path, strerror(-rc));
		return -1;
	}
	return 0;
}
