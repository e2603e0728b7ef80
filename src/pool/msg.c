#include "pool/msg.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool/names.h"

static const char *const type_names[PM__COUNT] = {
	[PM_HELLO] = "hello", [PM_HEALTH] = "health", [PM_SETTINGS] = "settings",
	[PM_SETTINGS_END] = "settings_end", [PM_RESULT] = "result", [PM_COPY_PROGRESS] = "copy_progress",
	[PM_WELCOME] = "welcome", [PM_START] = "start", [PM_STOP] = "stop", [PM_RESUME] = "resume",
	[PM_COPY] = "copy", [PM_ROLE] = "role", [PM_ERROR] = "error",
};

const char *pool_msg_type_str(enum pool_msg_type t)
{
	return (unsigned)t < PM__COUNT ? type_names[t] : "?";
}

const char *pool_agent_role_str(enum pool_agent_role r)
{
	switch (r) {
	case PA_RECORDER: return "recorder";
	case PA_SPARE: return "spare";
	case PA__COUNT: break;
	}
	return "?";
}

/* ---- field readers: each fails with err naming the field ---- */

struct rd {
	json_t *o;
	const char *type;
	char *err;
	size_t errlen;
	bool bad;
};

static void rd_fail(struct rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rd_fail(struct rd *r, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (r->bad)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(r->err, r->errlen, "%s message: %s", r->type, msg);
	r->bad = true;
}

static const char *rd_str(struct rd *r, const char *key, bool required, size_t max)
{
	json_t *v = json_object_get(r->o, key);

	if (!v) {
		if (required)
			rd_fail(r, "\"%s\" is missing", key);
		return "";
	}
	if (!json_is_string(v)) {
		rd_fail(r, "\"%s\" must be a string", key);
		return "";
	}
	if (json_string_length(v) > max || strlen(json_string_value(v)) != json_string_length(v)) {
		rd_fail(r, "\"%s\" is longer than %zu bytes or holds a NUL", key, max);
		return "";
	}
	return json_string_value(v);
}

static const char *rd_name(struct rd *r, const char *key, bool required)
{
	const char *s = rd_str(r, key, required, 63);

	if (!r->bad && (*s || required) && !pool_name_ok(s))
		rd_fail(r, "\"%s\" '%s' is not a name (1 to 63 of A-Z a-z 0-9 - _ .)", key, s);
	return s;
}

static uint64_t rd_uint(struct rd *r, const char *key, bool required, uint64_t max)
{
	json_t *v = json_object_get(r->o, key);

	if (!v) {
		if (required)
			rd_fail(r, "\"%s\" is missing", key);
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max) {
		rd_fail(r, "\"%s\" must be an integer from 0 to %llu", key, (unsigned long long)max);
		return 0;
	}
	return (uint64_t)json_integer_value(v);
}

static bool rd_bool(struct rd *r, const char *key, bool required)
{
	json_t *v = json_object_get(r->o, key);

	if (!v) {
		if (required)
			rd_fail(r, "\"%s\" is missing", key);
		return false;
	}
	if (!json_is_boolean(v)) {
		rd_fail(r, "\"%s\" must be true or false", key);
		return false;
	}
	return json_is_true(v);
}

static enum pool_agent_role rd_role(struct rd *r, const char *key)
{
	const char *s = rd_str(r, key, true, 16);

	if (!strcmp(s, "recorder"))
		return PA_RECORDER;
	if (!strcmp(s, "spare"))
		return PA_SPARE;
	rd_fail(r, "\"%s\" '%s' is neither recorder nor spare", key, s);
	return PA_RECORDER;
}

/* ---- parse ---- */

static void parse_hello(struct rd *r, struct pool_msg *m)
{
	m->u.hello.version = (int)rd_uint(r, "version", true, 1000);
	if (!r->bad && m->u.hello.version != POOL_PROTO_VERSION)
		rd_fail(r, "protocol version %d, this master speaks %d", m->u.hello.version, POOL_PROTO_VERSION);
	m->u.hello.name = rd_name(r, "name", true);
	m->u.hello.role = rd_role(r, "role");
	m->u.hello.group = rd_name(r, "group", false);
	m->u.hello.secondary_group = rd_name(r, "secondary_group", false);
	m->u.hello.failover = rd_bool(r, "failover", false);
	m->u.hello.recording = rd_bool(r, "recording", false);
	m->u.hello.serving = rd_name(r, "serving", false);
	if (r->bad)
		return;
	if (!*m->u.hello.group)
		rd_fail(r, "%s %s is in no group (\"group\" is empty): a %s needs a failover group",
		        pool_agent_role_str(m->u.hello.role), m->u.hello.name, pool_agent_role_str(m->u.hello.role));
	else if (m->u.hello.role == PA_SPARE && *m->u.hello.secondary_group)
		rd_fail(r, "spare %s: \"secondary_group\" is for recorders", m->u.hello.name);
	else if (m->u.hello.role == PA_RECORDER && *m->u.hello.serving)
		rd_fail(r, "recorder %s: \"serving\" is for spares", m->u.hello.name);
	else if (!strcmp(m->u.hello.group, m->u.hello.secondary_group))
		rd_fail(r, "recorder %s: \"secondary_group\" is its group already", m->u.hello.name);
}

static void parse_settings(struct rd *r, struct pool_msg *m)
{
	const char *b64;
	size_t blen, pad = 0;
	int n;
	char sum[65];

	m->u.settings.file = rd_str(r, "file", true, POOL_PATH_MAX);
	if (!r->bad && !pool_path_ok(m->u.settings.file))
		rd_fail(r, "\"file\" '%.100s' is not a relative path of printable characters without '.', '..' or "
		        "empty parts", m->u.settings.file);
	m->u.settings.sha256 = rd_str(r, "sha256", true, 64);
	if (!r->bad && !pool_sha256_ok(m->u.settings.sha256))
		rd_fail(r, "\"sha256\" must be 64 lower-case hex digits");
	b64 = rd_str(r, "data", true, POOL_MSG_MAX);
	if (r->bad)
		return;
	blen = strlen(b64);
	if (blen % 4) {
		rd_fail(r, "\"data\" is not base64 (its length is not a multiple of 4)");
		return;
	}
	if (blen / 4 * 3 > POOL_SETTINGS_FILE_MAX + 2) {
		rd_fail(r, "%s: %zu bytes, over the limit of %u", m->u.settings.file, blen / 4 * 3,
		        POOL_SETTINGS_FILE_MAX);
		return;
	}
	m->u.settings.data = malloc(blen / 4 * 3 + 1);
	if (!m->u.settings.data) {
		rd_fail(r, "out of memory");
		return;
	}
	n = EVP_DecodeBlock(m->u.settings.data, (const unsigned char *)b64, (int)blen);
	if (n < 0) {
		rd_fail(r, "\"data\" is not base64");
		return;
	}
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	if (blen && b64[blen - 1] == '=')
		pad = blen > 1 && b64[blen - 2] == '=' ? 2 : 1;
	m->u.settings.len = (size_t)n - pad;
	if (m->u.settings.len > POOL_SETTINGS_FILE_MAX) {
		rd_fail(r, "%s: %zu bytes, over the limit of %u", m->u.settings.file, m->u.settings.len,
		        POOL_SETTINGS_FILE_MAX);
		return;
	}
	pool_sha256_hex(m->u.settings.data, m->u.settings.len, sum);
	if (strcmp(sum, m->u.settings.sha256))
		rd_fail(r, "%s: its data does not match its \"sha256\" (damaged in transit?)", m->u.settings.file);
}

static void parse_settings_end(struct rd *r, struct pool_msg *m)
{
	json_t *files = json_object_get(r->o, "files"), *v;
	size_t i;

	if (!json_is_array(files)) {
		rd_fail(r, "\"files\" must be an array");
		return;
	}
	if (json_array_size(files) > POOL_SETTINGS_FILES_MAX) {
		rd_fail(r, "\"files\": more than %d", POOL_SETTINGS_FILES_MAX);
		return;
	}
	m->u.settings_end.files = calloc(json_array_size(files) + 1, sizeof(*m->u.settings_end.files));
	if (!m->u.settings_end.files) {
		rd_fail(r, "out of memory");
		return;
	}
	json_array_foreach(files, i, v) {
		struct rd sub = { .o = v, .type = r->type, .err = r->err, .errlen = r->errlen };
		struct pool_settings_ref *f = &m->u.settings_end.files[i];

		if (!json_is_object(v)) {
			rd_fail(r, "\"files\"[%zu] must be an object", i);
			return;
		}
		f->file = rd_str(&sub, "file", true, POOL_PATH_MAX);
		f->sha256 = rd_str(&sub, "sha256", true, 64);
		if (!sub.bad && !pool_path_ok(f->file))
			rd_fail(&sub, "\"files\"[%zu]: '%.100s' is not a relative path", i, f->file);
		if (!sub.bad && !pool_sha256_ok(f->sha256))
			rd_fail(&sub, "\"files\"[%zu]: \"sha256\" must be 64 lower-case hex digits", i);
		if (sub.bad) {
			r->bad = true;
			return;
		}
		for (size_t j = 0; j < i; j++)
			if (!strcmp(m->u.settings_end.files[j].file, f->file)) {
				rd_fail(r, "\"files\": '%.100s' is listed twice", f->file);
				return;
			}
		m->u.settings_end.n = i + 1;
	}
}

static void parse_body(struct rd *r, struct pool_msg *m)
{
	switch (m->type) {
	case PM_HELLO:
		parse_hello(r, m);
		break;
	case PM_HEALTH:
		m->u.health.seq = rd_uint(r, "seq", true, UINT64_MAX >> 1);
		m->u.health.disks_failed = rd_bool(r, "disks_failed", true);
		m->u.health.watchdog_failed = rd_bool(r, "watchdog_failed", true);
		m->u.health.cameras = (uint32_t)rd_uint(r, "cameras", false, UINT32_MAX);
		m->u.health.storage_used = rd_uint(r, "storage_used", false, UINT64_MAX >> 1);
		m->u.health.storage_total = rd_uint(r, "storage_total", false, UINT64_MAX >> 1);
		break;
	case PM_SETTINGS:
		parse_settings(r, m);
		break;
	case PM_SETTINGS_END:
		parse_settings_end(r, m);
		break;
	case PM_RESULT:
		m->u.result.ok = rd_bool(r, "ok", true);
		m->u.result.error = rd_str(r, "error", false, 1024);
		if (!r->bad && !m->u.result.ok && !*m->u.result.error)
			rd_fail(r, "a failed result needs \"error\"");
		break;
	case PM_COPY_PROGRESS:
		m->u.copy_progress.recorder = rd_name(r, "recorder", true);
		m->u.copy_progress.bytes_done = rd_uint(r, "bytes_done", true, UINT64_MAX >> 1);
		m->u.copy_progress.bytes_total = rd_uint(r, "bytes_total", true, UINT64_MAX >> 1);
		m->u.copy_progress.files_done = (uint32_t)rd_uint(r, "files_done", true, UINT32_MAX);
		m->u.copy_progress.files_total = (uint32_t)rd_uint(r, "files_total", true, UINT32_MAX);
		if (!r->bad && (m->u.copy_progress.bytes_done > m->u.copy_progress.bytes_total ||
		                m->u.copy_progress.files_done > m->u.copy_progress.files_total))
			rd_fail(r, "done is more than total");
		break;
	case PM_WELCOME:
		m->u.welcome.heartbeat_ms = (uint32_t)rd_uint(r, "heartbeat_ms", true, 60000);
		m->u.welcome.detect_timeout_ms = (uint32_t)rd_uint(r, "detect_timeout_ms", true, 3600000);
		if (!r->bad && m->u.welcome.heartbeat_ms < 10)
			rd_fail(r, "\"heartbeat_ms\" must be at least 10");
		break;
	case PM_START:
	case PM_STOP:
	case PM_COPY:
		m->u.cmd.recorder = rd_name(r, "recorder", true);
		m->u.cmd.address = rd_str(r, "address", m->type == PM_COPY, 255);
		/* fallthrough */
	case PM_RESUME:
		if (!m->id && !r->bad)
			rd_fail(r, "a command needs \"id\" (from 1)");
		break;
	case PM_ROLE:
		m->u.role.role = rd_role(r, "role");
		m->u.role.name = rd_name(r, "name", true);
		m->u.role.group = rd_name(r, "group", true);
		break;
	case PM_ERROR:
		m->u.error.message = rd_str(r, "message", true, 1024);
		break;
	case PM__COUNT:
		break;
	}
}

int pool_msg_parse(const char *buf, size_t len, struct pool_msg *out, char *err, size_t errlen)
{
	json_error_t jerr;
	const char *type;
	struct rd r = { .err = err, .errlen = errlen, .type = "pool" };

	memset(out, 0, sizeof(*out));
	out->type = PM__COUNT;
	if (len > POOL_MSG_MAX) {
		snprintf(err, errlen, "pool message of %zu bytes, over the limit of %u", len, POOL_MSG_MAX);
		return -1;
	}
	out->root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!out->root) {
		snprintf(err, errlen, "pool message: not valid JSON: %s (at byte %d)", jerr.text, jerr.position);
		return -1;
	}
	r.o = out->root;
	if (!json_is_object(out->root)) {
		rd_fail(&r, "not a JSON object");
		goto fail;
	}
	type = rd_str(&r, "type", true, 32);
	if (r.bad)
		goto fail;
	for (int t = 0; t < PM__COUNT; t++)
		if (!strcmp(type, type_names[t]))
			out->type = (enum pool_msg_type)t;
	if (out->type == PM__COUNT) {
		rd_fail(&r, "unknown type '%.32s'", type);
		goto fail;
	}
	r.type = type_names[out->type];
	out->id = rd_uint(&r, "id", false, (uint64_t)1 << 53);
	parse_body(&r, out);
	if (r.bad)
		goto fail;
	return 0;
fail:
	pool_msg_free(out);
	return -1;
}

void pool_msg_free(struct pool_msg *m)
{
	if (m->type == PM_SETTINGS)
		free(m->u.settings.data);
	else if (m->type == PM_SETTINGS_END)
		free(m->u.settings_end.files);
	json_decref(m->root);
	memset(m, 0, sizeof(*m));
	m->type = PM__COUNT;
}

/* ---- builders ---- */

json_t *pool_msg_hello(const char *name, enum pool_agent_role role, const char *group, const char *secondary,
                       bool failover, bool recording, const char *serving, char *err, size_t errlen)
{
	if (!pool_name_ok(name) || !pool_name_ok(group) || (*secondary && !pool_name_ok(secondary)) ||
	    (*serving && !pool_name_ok(serving)) || (unsigned)role >= PA__COUNT) {
		snprintf(err, errlen, "hello: a bad name, group or role (name '%.64s', group '%.64s')", name, group);
		return NULL;
	}
	return json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:b, s:b, s:s}", "type", "hello", "version",
	                 POOL_PROTO_VERSION, "name", name, "role", pool_agent_role_str(role), "group", group,
	                 "secondary_group", secondary, "failover", failover, "recording", recording, "serving",
	                 serving);
}

json_t *pool_msg_health(uint64_t seq, bool disks_failed, bool watchdog_failed, uint32_t cameras,
                        uint64_t used, uint64_t total)
{
	return json_pack("{s:s, s:I, s:b, s:b, s:I, s:I, s:I}", "type", "health", "seq", (json_int_t)seq,
	                 "disks_failed", disks_failed, "watchdog_failed", watchdog_failed, "cameras",
	                 (json_int_t)cameras, "storage_used", (json_int_t)used, "storage_total", (json_int_t)total);
}

json_t *pool_msg_settings(const char *file, const void *data, size_t len, char *err, size_t errlen)
{
	char sum[65];
	char *b64;
	json_t *m;

	if (!pool_path_ok(file)) {
		snprintf(err, errlen, "settings file '%.100s': not a relative path", file);
		return NULL;
	}
	if (len > POOL_SETTINGS_FILE_MAX) {
		snprintf(err, errlen, "settings file %s: %zu bytes, over the limit of %u", file, len,
		         POOL_SETTINGS_FILE_MAX);
		return NULL;
	}
	b64 = malloc((len + 2) / 3 * 4 + 1);
	if (!b64) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	EVP_EncodeBlock((unsigned char *)b64, data, (int)len);
	pool_sha256_hex(data, len, sum);
	m = json_pack("{s:s, s:s, s:s, s:s}", "type", "settings", "file", file, "sha256", sum, "data", b64);
	free(b64);
	return m;
}

json_t *pool_msg_command(enum pool_msg_type type, uint64_t id, const char *recorder, const char *address,
                         char *err, size_t errlen)
{
	json_t *m;

	if (type != PM_START && type != PM_STOP && type != PM_COPY && type != PM_RESUME) {
		snprintf(err, errlen, "%s is not a command", pool_msg_type_str(type));
		return NULL;
	}
	if (!id || (type != PM_RESUME && !pool_name_ok(recorder)) || (type == PM_COPY && (!address || !*address))) {
		snprintf(err, errlen, "%s: needs an id, a recorder name%s", pool_msg_type_str(type),
		         type == PM_COPY ? " and an address" : "");
		return NULL;
	}
	m = json_pack("{s:s, s:I}", "type", pool_msg_type_str(type), "id", (json_int_t)id);
	if (m && type != PM_RESUME)
		json_object_set_new(m, "recorder", json_string(recorder));
	if (m && address && *address)
		json_object_set_new(m, "address", json_string(address));
	return m;
}

json_t *pool_msg_result(uint64_t id, bool ok, const char *error)
{
	json_t *m = json_pack("{s:s, s:I, s:b}", "type", "result", "id", (json_int_t)id, "ok", ok);

	if (m && !ok)
		json_object_set_new(m, "error", json_string(error && *error ? error : "failed"));
	return m;
}
