#include "pool/registry.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "pool/names.h"

#define SCHEMA_VERSION 1
#define BUSY_TIMEOUT_MS 5000

struct reg {
	sqlite3 *db;
	char path[512];
};

static const char SCHEMA[] =
	"CREATE TABLE recorder (name TEXT PRIMARY KEY, grp TEXT NOT NULL, secondary_grp TEXT NOT NULL,"
	" failover INTEGER NOT NULL, state TEXT NOT NULL, served_by TEXT NOT NULL);"
	"CREATE TABLE spare (name TEXT PRIMARY KEY, grp TEXT NOT NULL, state TEXT NOT NULL,"
	" serving TEXT NOT NULL);"
	"CREATE TABLE queue (pos INTEGER PRIMARY KEY, recorder TEXT NOT NULL UNIQUE);"
	"CREATE TABLE failover_log (id INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL,"
	" recorder TEXT NOT NULL, spare TEXT NOT NULL, event TEXT NOT NULL, trigger TEXT NOT NULL,"
	" result TEXT NOT NULL, detail TEXT NOT NULL);"
	"CREATE TABLE settings (recorder TEXT NOT NULL, file TEXT NOT NULL, version INTEGER NOT NULL,"
	" sha256 TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (recorder, file));";

static int seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int dberr(struct reg *r, const char *what, char *err, size_t errlen)
{
	return seterr(err, errlen, "%s: %s: %s", r->path, what, sqlite3_errmsg(r->db));
}

static int check_name(const char *what, const char *s, char *err, size_t errlen)
{
	if (pool_name_ok(s))
		return 0;
	return seterr(err, errlen, "%s '%.80s': 1 to %d of A-Z a-z 0-9 - _ .", what, s ? s : "", REG_NAME_MAX - 1);
}

static int check_text(const char *what, const char *s, size_t max, char *err, size_t errlen)
{
	if (s && strlen(s) < max)
		return 0;
	return seterr(err, errlen, "%s: missing or longer than %zu characters", what, max - 1);
}

static int exec_sql(struct reg *r, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(r->db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	seterr(err, errlen, "%s: %s", r->path, msg ? msg : sqlite3_errmsg(r->db));
	sqlite3_free(msg);
	return -1;
}

static int begin(struct reg *r, char *err, size_t errlen)
{
	return exec_sql(r, "BEGIN IMMEDIATE", err, errlen);
}

static int commit(struct reg *r, char *err, size_t errlen)
{
	if (exec_sql(r, "COMMIT", err, errlen) == 0)
		return 0;
	sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static int rollback(struct reg *r)
{
	sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static sqlite3_stmt *prep(struct reg *r, const char *sql, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK) {
		dberr(r, "prepare", err, errlen);
		return NULL;
	}
	return st;
}

/* Binds the strings, in order, then runs st once (no rows wanted). */
static int run_strs(struct reg *r, const char *sql, char *err, size_t errlen, int n, ...)
{
	sqlite3_stmt *st = prep(r, sql, err, errlen);
	va_list ap;
	int rc;

	if (!st)
		return -1;
	va_start(ap, n);
	for (int i = 1; i <= n; i++)
		sqlite3_bind_text(st, i, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
	va_end(ap);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return dberr(r, "write", err, errlen);
	return 0;
}

/* 1 if the query over one string parameter returns a row, 0 if not, -1. */
static int exists(struct reg *r, const char *sql, const char *name, char *err, size_t errlen)
{
	sqlite3_stmt *st = prep(r, sql, err, errlen);
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return dberr(r, "read", err, errlen);
}

static void copy_col(char *dst, size_t len, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	snprintf(dst, len, "%s", t ? (const char *)t : "");
}

struct reg *reg_open(const char *path, char *err, size_t errlen)
{
	struct reg *r = calloc(1, sizeof(*r));
	sqlite3_stmt *st;
	int version = -1;

	if (!r) {
		seterr(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(r->path, sizeof(r->path), "%s", path);
	if (sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		seterr(err, errlen, "%s: cannot open: %s", path, r->db ? sqlite3_errmsg(r->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(r->db, BUSY_TIMEOUT_MS);
	if (exec_sql(r, "PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON", err, errlen) <
	    0)
		goto fail;
	st = prep(r, "PRAGMA user_version", err, errlen);
	if (!st)
		goto fail;
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version == 0) {
		char sql[sizeof(SCHEMA) + 64];

		snprintf(sql, sizeof(sql), "BEGIN IMMEDIATE; %s PRAGMA user_version=%d; COMMIT", SCHEMA, SCHEMA_VERSION);
		if (exec_sql(r, sql, err, errlen) < 0) {
			rollback(r);
			goto fail;
		}
	} else if (version != SCHEMA_VERSION) {
		seterr(err, errlen, "%s: schema version %d, this vigild knows %d (not a pool registry, or from "
		       "another version)", path, version, SCHEMA_VERSION);
		goto fail;
	}
	return r;
fail:
	reg_close(r);
	return NULL;
}

void reg_close(struct reg *r)
{
	if (!r)
		return;
	sqlite3_close(r->db);
	free(r);
}

/* ---- recorders and spares ---- */

int reg_recorder_put(struct reg *r, const struct reg_recorder *rec, char *err, size_t errlen)
{
	int rc;

	if (check_name("recorder name", rec->name, err, errlen) < 0 ||
	    check_name("recorder group", rec->group, err, errlen) < 0)
		return -1;
	if (rec->secondary_group[0] && check_name("recorder secondary group", rec->secondary_group, err, errlen) < 0)
		return -1;
	if (!strcmp(rec->group, rec->secondary_group))
		return seterr(err, errlen, "recorder %s: secondary group '%s' is its group already", rec->name,
		              rec->group);
	if (begin(r, err, errlen) < 0)
		return -1;
	rc = exists(r, "SELECT 1 FROM spare WHERE name = ?1", rec->name, err, errlen);
	if (rc != 0) {
		if (rc > 0)
			seterr(err, errlen, "%s is a spare: a name is a recorder or a spare, not both", rec->name);
		return rollback(r);
	}
	if (run_strs(r, "INSERT INTO recorder VALUES (?1, ?2, ?3, ?4, 'OFFLINE', '') ON CONFLICT (name) DO UPDATE"
	             " SET grp = ?2, secondary_grp = ?3, failover = ?4", err, errlen, 4, rec->name, rec->group,
	             rec->secondary_group, rec->failover ? "1" : "0") < 0)
		return rollback(r);
	return commit(r, err, errlen);
}

#define RECORDER_SELECT "SELECT name, grp, secondary_grp, failover, state, served_by FROM recorder"
#define SPARE_SELECT "SELECT name, grp, state, serving FROM spare"

static void recorder_row(sqlite3_stmt *st, void *arg)
{
	struct reg_recorder *out = arg;

	copy_col(out->name, sizeof(out->name), st, 0);
	copy_col(out->group, sizeof(out->group), st, 1);
	copy_col(out->secondary_group, sizeof(out->secondary_group), st, 2);
	out->failover = sqlite3_column_int(st, 3) != 0;
	copy_col(out->state, sizeof(out->state), st, 4);
	copy_col(out->served_by, sizeof(out->served_by), st, 5);
}

static void spare_row(sqlite3_stmt *st, void *arg)
{
	struct reg_spare *out = arg;

	copy_col(out->name, sizeof(out->name), st, 0);
	copy_col(out->group, sizeof(out->group), st, 1);
	copy_col(out->state, sizeof(out->state), st, 2);
	copy_col(out->serving, sizeof(out->serving), st, 3);
}

/* Steps st (prepared and bound) through its rows: row() gets each and
 * returns non-zero to stop. st is finalized. 0, or -1 on a read error. */
static int each_row(struct reg *r, sqlite3_stmt *st, int (*row)(sqlite3_stmt *, void *), void *arg, char *err,
                    size_t errlen)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (row(st, arg))
			break;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : dberr(r, "read", err, errlen);
}

struct one_row {
	void (*fill)(sqlite3_stmt *, void *);
	void *out;
	bool found;
};

static int take_one(sqlite3_stmt *st, void *arg)
{
	struct one_row *o = arg;

	o->fill(st, o->out);
	o->found = true;
	return 1;
}

/* One row by name into out: 1 found, 0 unknown, -1 error. */
static int get_row(struct reg *r, const char *sql, const char *name, void (*fill)(sqlite3_stmt *, void *),
                   void *out, char *err, size_t errlen)
{
	sqlite3_stmt *st = prep(r, sql, err, errlen);
	struct one_row o = { .fill = fill, .out = out };

	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	if (each_row(r, st, take_one, &o, err, errlen) < 0)
		return -1;
	return o.found;
}

int reg_recorder_get(struct reg *r, const char *name, struct reg_recorder *out, char *err, size_t errlen)
{
	return get_row(r, RECORDER_SELECT " WHERE name = ?1",
	               name, recorder_row, out, err, errlen);
}

/* The row must exist: an unknown name is an error that names it. */
static int set_state(struct reg *r, const char *sql, const char *what, const char *name, const char *state,
                     const char *other, char *err, size_t errlen)
{
	if (check_text("state", state, REG_STATE_MAX, err, errlen) < 0)
		return -1;
	if (other[0] && check_name(what[0] == 'r' ? "served_by" : "serving", other, err, errlen) < 0)
		return -1;
	if (run_strs(r, sql, err, errlen, 3, name, state, other) < 0)
		return -1;
	if (sqlite3_changes(r->db) == 0)
		return seterr(err, errlen, "unknown %s '%.80s'", what, name);
	return 0;
}

int reg_recorder_set_state(struct reg *r, const char *name, const char *state, const char *served_by,
                           char *err, size_t errlen)
{
	return set_state(r, "UPDATE recorder SET state = ?2, served_by = ?3 WHERE name = ?1", "recorder", name, state,
	                 served_by ? served_by : "", err, errlen);
}

int reg_spare_set_state(struct reg *r, const char *name, const char *state, const char *serving, char *err,
                        size_t errlen)
{
	return set_state(r, "UPDATE spare SET state = ?2, serving = ?3 WHERE name = ?1", "spare", name, state,
	                 serving ? serving : "", err, errlen);
}

int reg_recorder_del(struct reg *r, const char *name, char *err, size_t errlen)
{
	if (begin(r, err, errlen) < 0)
		return -1;
	if (run_strs(r, "DELETE FROM recorder WHERE name = ?1", err, errlen, 1, name) < 0)
		return rollback(r);
	if (sqlite3_changes(r->db) == 0) {
		seterr(err, errlen, "unknown recorder '%.80s'", name);
		return rollback(r);
	}
	if (run_strs(r, "DELETE FROM queue WHERE recorder = ?1", err, errlen, 1, name) < 0 ||
	    run_strs(r, "DELETE FROM settings WHERE recorder = ?1", err, errlen, 1, name) < 0)
		return rollback(r);
	return commit(r, err, errlen);
}

int reg_spare_put(struct reg *r, const struct reg_spare *sp, char *err, size_t errlen)
{
	int rc;

	if (check_name("spare name", sp->name, err, errlen) < 0)
		return -1;
	if (!sp->group[0])
		return seterr(err, errlen, "spare %s is in no group: a spare serves the recorders of its group "
		              "([pool] group)", sp->name);
	if (check_name("spare group", sp->group, err, errlen) < 0)
		return -1;
	if (begin(r, err, errlen) < 0)
		return -1;
	rc = exists(r, "SELECT 1 FROM recorder WHERE name = ?1", sp->name, err, errlen);
	if (rc != 0) {
		if (rc > 0)
			seterr(err, errlen, "%s is a recorder: a name is a recorder or a spare, not both", sp->name);
		return rollback(r);
	}
	if (run_strs(r, "INSERT INTO spare VALUES (?1, ?2, 'OFFLINE', '') ON CONFLICT (name) DO UPDATE SET grp = ?2",
	             err, errlen, 2, sp->name, sp->group) < 0)
		return rollback(r);
	return commit(r, err, errlen);
}

int reg_spare_get(struct reg *r, const char *name, struct reg_spare *out, char *err, size_t errlen)
{
	return get_row(r, SPARE_SELECT " WHERE name = ?1", name, spare_row, out, err, errlen);
}

int reg_spare_del(struct reg *r, const char *name, char *err, size_t errlen)
{
	if (run_strs(r, "DELETE FROM spare WHERE name = ?1", err, errlen, 1, name) < 0)
		return -1;
	if (sqlite3_changes(r->db) == 0)
		return seterr(err, errlen, "unknown spare '%.80s'", name);
	return 0;
}

struct rec_walk {
	reg_recorder_cb cb;
	void *arg;
};

static int rec_each(sqlite3_stmt *st, void *arg)
{
	struct rec_walk *w = arg;
	struct reg_recorder rec;

	recorder_row(st, &rec);
	return w->cb(&rec, w->arg);
}

int reg_recorders(struct reg *r, reg_recorder_cb cb, void *arg, char *err, size_t errlen)
{
	sqlite3_stmt *st = prep(r, RECORDER_SELECT " ORDER BY name", err, errlen);
	struct rec_walk w = { cb, arg };

	return st ? each_row(r, st, rec_each, &w, err, errlen) : -1;
}

struct spare_walk {
	reg_spare_cb cb;
	void *arg;
};

static int spare_each(sqlite3_stmt *st, void *arg)
{
	struct spare_walk *w = arg;
	struct reg_spare sp;

	spare_row(st, &sp);
	return w->cb(&sp, w->arg);
}

int reg_spares(struct reg *r, reg_spare_cb cb, void *arg, char *err, size_t errlen)
{
	sqlite3_stmt *st = prep(r, SPARE_SELECT " ORDER BY name", err, errlen);
	struct spare_walk w = { cb, arg };

	return st ? each_row(r, st, spare_each, &w, err, errlen) : -1;
}

/* ---- queue ---- */

int reg_queue_set(struct reg *r, const char *const *names, size_t n, char *err, size_t errlen)
{
	sqlite3_stmt *st;

	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < i; j++)
			if (!strcmp(names[i], names[j]))
				return seterr(err, errlen, "queue: recorder %.80s is in it twice", names[i]);
	if (begin(r, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int rc = exists(r, "SELECT 1 FROM recorder WHERE name = ?1", names[i], err, errlen);

		if (rc <= 0) {
			if (rc == 0)
				seterr(err, errlen, "queue: unknown recorder '%.80s'", names[i]);
			return rollback(r);
		}
	}
	if (exec_sql(r, "DELETE FROM queue", err, errlen) < 0)
		return rollback(r);
	st = prep(r, "INSERT INTO queue VALUES (?1, ?2)", err, errlen);
	if (!st)
		return rollback(r);
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, (sqlite3_int64)i);
		sqlite3_bind_text(st, 2, names[i], -1, SQLITE_TRANSIENT);
		if (sqlite3_step(st) != SQLITE_DONE) {
			dberr(r, "write", err, errlen);
			sqlite3_finalize(st);
			return rollback(r);
		}
	}
	sqlite3_finalize(st);
	return commit(r, err, errlen);
}

int reg_queue_get(struct reg *r, char (*out)[REG_NAME_MAX], size_t max, char *err, size_t errlen)
{
	sqlite3_stmt *st = prep(r, "SELECT recorder FROM queue ORDER BY pos", err, errlen);
	size_t n = 0;
	int rc;

	if (!st)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < max)
		copy_col(out[n++], REG_NAME_MAX, st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return dberr(r, "read", err, errlen);
	return (int)n;
}

/* ---- failover log ---- */

int reg_log_add(struct reg *r, struct reg_log_entry *e, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rc;

	if (!e->event[0])
		return seterr(err, errlen, "log: event is empty");
	if (check_name("log: recorder", e->recorder, err, errlen) < 0 ||
	    (e->spare[0] && check_name("log: spare", e->spare, err, errlen) < 0) ||
	    check_text("log: event", e->event, sizeof(e->event), err, errlen) < 0 ||
	    check_text("log: trigger", e->trigger, sizeof(e->trigger), err, errlen) < 0 ||
	    check_text("log: result", e->result, sizeof(e->result), err, errlen) < 0 ||
	    check_text("log: detail", e->detail, sizeof(e->detail), err, errlen) < 0)
		return -1;
	if (e->time_ms <= 0)
		e->time_ms = (int64_t)wall_ms();
	st = prep(r, "INSERT INTO failover_log (time_ms, recorder, spare, event, trigger, result, detail)"
	          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", err, errlen);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, e->time_ms);
	sqlite3_bind_text(st, 2, e->recorder, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, e->spare, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, e->event, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 5, e->trigger, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 6, e->result, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 7, e->detail, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return dberr(r, "write", err, errlen);
	e->id = sqlite3_last_insert_rowid(r->db);
	return 0;
}

struct log_walk {
	reg_log_cb cb;
	void *arg;
};

static int log_each(sqlite3_stmt *st, void *arg)
{
	struct log_walk *w = arg;
	struct reg_log_entry e = { 0 };

	e.id = sqlite3_column_int64(st, 0);
	e.time_ms = sqlite3_column_int64(st, 1);
	copy_col(e.recorder, sizeof(e.recorder), st, 2);
	copy_col(e.spare, sizeof(e.spare), st, 3);
	copy_col(e.event, sizeof(e.event), st, 4);
	copy_col(e.trigger, sizeof(e.trigger), st, 5);
	copy_col(e.result, sizeof(e.result), st, 6);
	copy_col(e.detail, sizeof(e.detail), st, 7);
	return w->cb(&e, w->arg);
}

int reg_log_list(struct reg *r, int max, reg_log_cb cb, void *arg, char *err, size_t errlen)
{
	sqlite3_stmt *st = prep(r, "SELECT * FROM (SELECT id, time_ms, recorder, spare, event, trigger, result, detail"
	                        " FROM failover_log ORDER BY id DESC LIMIT ?1) ORDER BY id", err, errlen);
	struct log_walk w = { cb, arg };

	if (!st)
		return -1;
	sqlite3_bind_int(st, 1, max);
	return each_row(r, st, log_each, &w, err, errlen);
}

/* ---- settings cache ---- */

int reg_settings_del(struct reg *r, const char *recorder, const char *file, char *err, size_t errlen)
{
	if (check_name("recorder", recorder, err, errlen) < 0)
		return -1;
	if (!pool_path_ok(file))
		return seterr(err, errlen, "recorder %s: settings file '%.100s': not a relative path of printable "
		              "characters without '.', '..' or empty parts", recorder, file ? file : "");
	return run_strs(r, "DELETE FROM settings WHERE recorder = ?1 AND file = ?2", err, errlen, 2, recorder, file);
}

int reg_settings_put(struct reg *r, const char *recorder, const char *file, const void *data, size_t len,
                     size_t limit, bool *changed, char *err, size_t errlen)
{
	char sum[REG_SHA256_HEX], old[REG_SHA256_HEX] = "";
	sqlite3_stmt *st;
	int64_t version = 0;
	int rc;

	*changed = false;
	if (check_name("recorder", recorder, err, errlen) < 0)
		return -1;
	if (!pool_path_ok(file))
		return seterr(err, errlen, "recorder %s: settings file '%.100s': not a relative path of printable "
		              "characters without '.', '..' or empty parts", recorder, file ? file : "");
	if (len > limit)
		return seterr(err, errlen, "recorder %s: settings file %s is %zu bytes, over the limit of %zu", recorder,
		              file, len, limit);
	pool_sha256_hex(data, len, sum);
	if (begin(r, err, errlen) < 0)
		return -1;
	rc = exists(r, "SELECT 1 FROM recorder WHERE name = ?1", recorder, err, errlen);
	if (rc <= 0) {
		if (rc == 0)
			seterr(err, errlen, "settings for unknown recorder '%.80s'", recorder);
		return rollback(r);
	}
	st = prep(r, "SELECT version, sha256 FROM settings WHERE recorder = ?1 AND file = ?2", err, errlen);
	if (!st)
		return rollback(r);
	sqlite3_bind_text(st, 1, recorder, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, file, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		version = sqlite3_column_int64(st, 0);
		copy_col(old, sizeof(old), st, 1);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		dberr(r, "read", err, errlen);
		return rollback(r);
	}
	if (!strcmp(old, sum)) {
		rollback(r);
		return 0;
	}
	st = prep(r, "INSERT INTO settings VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (recorder, file) DO UPDATE"
	          " SET version = ?3, sha256 = ?4, data = ?5", err, errlen);
	if (!st)
		return rollback(r);
	sqlite3_bind_text(st, 1, recorder, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, file, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, version + 1);
	sqlite3_bind_text(st, 4, sum, -1, SQLITE_TRANSIENT);
	sqlite3_bind_blob64(st, 5, len ? data : "", len, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		dberr(r, "write", err, errlen);
		return rollback(r);
	}
	if (commit(r, err, errlen) < 0)
		return -1;
	*changed = true;
	return 0;
}

struct settings_walk {
	reg_settings_cb cb;
	void *arg;
};

static int settings_each(sqlite3_stmt *st, void *arg)
{
	struct settings_walk *w = arg;
	struct reg_settings_file f = { 0 };

	copy_col(f.file, sizeof(f.file), st, 0);
	copy_col(f.sha256, sizeof(f.sha256), st, 1);
	f.version = sqlite3_column_int64(st, 2);
	f.data = sqlite3_column_blob(st, 3);
	f.len = (size_t)sqlite3_column_bytes(st, 3);
	return w->cb(&f, w->arg);
}

int reg_settings(struct reg *r, const char *recorder, reg_settings_cb cb, void *arg, char *err, size_t errlen)
{
	sqlite3_stmt *st = prep(r, "SELECT file, sha256, version, data FROM settings WHERE recorder = ?1"
	                        " ORDER BY file", err, errlen);
	struct settings_walk w = { cb, arg };

	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, recorder, -1, SQLITE_TRANSIENT);
	return each_row(r, st, settings_each, &w, err, errlen);
}
