/* The pool registry (src/pool/registry.c) on a real SQLite file: what is
 * written is what is read back after closing and opening again (a master
 * restart), bad input is refused with a message naming it and changes
 * nothing, and the settings cache keeps the latest version with its
 * checksum. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool/names.h"
#include "pool/registry.h"
#include "testutil.h"

struct fx {
	char dir[PATH_MAX];
	char path[PATH_MAX + 16];
	struct reg *r;
	char err[512];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(tu_mkdtemp(f->dir, "pool-reg"), 0);
	FMT(f->path, sizeof(f->path), "%s/pool.db", f->dir);
	f->r = reg_open(f->path, f->err, sizeof(f->err));
	assert_non_null(f->r);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	reg_close(f->r);
	tu_rm_rf(f->dir);
	free(f);
	return 0;
}

static void reopen(struct fx *f)
{
	reg_close(f->r);
	f->r = reg_open(f->path, f->err, sizeof(f->err));
	assert_non_null(f->r);
}

static struct reg_recorder rec(const char *name, const char *group, const char *secondary, bool failover)
{
	struct reg_recorder r = { .failover = failover };

	snprintf(r.name, sizeof(r.name), "%s", name);
	snprintf(r.group, sizeof(r.group), "%s", group);
	snprintf(r.secondary_group, sizeof(r.secondary_group), "%s", secondary);
	return r;
}

static struct reg_spare spare(const char *name, const char *group)
{
	struct reg_spare s = { 0 };

	snprintf(s.name, sizeof(s.name), "%s", name);
	snprintf(s.group, sizeof(s.group), "%s", group);
	return s;
}

struct names {
	char v[16][REG_NAME_MAX];
	int n;
};

static int collect_rec(const struct reg_recorder *r, void *arg)
{
	struct names *n = arg;

	snprintf(n->v[n->n++], REG_NAME_MAX, "%s", r->name);
	return 0;
}

static int count_recorders(struct fx *f)
{
	struct names n = { .n = 0 };

	assert_int_equal(reg_recorders(f->r, collect_rec, &n, f->err, sizeof(f->err)), 0);
	return n.n;
}

static void registry_survives_a_restart(void **state)
{
	struct fx *f = *state;
	struct reg_recorder a = rec("rec1", "north", "south", true), got;
	struct reg_spare s = spare("sp1", "north"), sgot;
	const char *q[] = { "rec2", "rec1" };
	char qgot[4][REG_NAME_MAX];
	struct names n = { .n = 0 };

	assert_int_equal(reg_recorder_put(f->r, &a, f->err, sizeof(f->err)), 0);
	a = rec("rec2", "north", "", false);
	assert_int_equal(reg_recorder_put(f->r, &a, f->err, sizeof(f->err)), 0);
	assert_int_equal(reg_spare_put(f->r, &s, f->err, sizeof(f->err)), 0);
	assert_int_equal(reg_recorder_set_state(f->r, "rec1", "FAILED_OVER", "sp1", f->err, sizeof(f->err)), 0);
	assert_int_equal(reg_spare_set_state(f->r, "sp1", "SERVING", "rec1", f->err, sizeof(f->err)), 0);
	assert_int_equal(reg_queue_set(f->r, q, 2, f->err, sizeof(f->err)), 0);
	reopen(f);

	assert_int_equal(reg_recorder_get(f->r, "rec1", &got, f->err, sizeof(f->err)), 1);
	assert_string_equal(got.group, "north");
	assert_string_equal(got.secondary_group, "south");
	assert_true(got.failover);
	assert_string_equal(got.state, "FAILED_OVER");
	assert_string_equal(got.served_by, "sp1");
	assert_int_equal(reg_recorder_get(f->r, "rec2", &got, f->err, sizeof(f->err)), 1);
	assert_false(got.failover);
	assert_string_equal(got.state, "OFFLINE");
	assert_string_equal(got.secondary_group, "");
	assert_int_equal(reg_spare_get(f->r, "sp1", &sgot, f->err, sizeof(f->err)), 1);
	assert_string_equal(sgot.state, "SERVING");
	assert_string_equal(sgot.serving, "rec1");
	assert_int_equal(reg_queue_get(f->r, qgot, 4, f->err, sizeof(f->err)), 2);
	assert_string_equal(qgot[0], "rec2");
	assert_string_equal(qgot[1], "rec1");
	assert_int_equal(reg_recorders(f->r, collect_rec, &n, f->err, sizeof(f->err)), 0);
	assert_int_equal(n.n, 2);
	assert_string_equal(n.v[0], "rec1");
	assert_int_equal(reg_recorder_get(f->r, "nobody", &got, f->err, sizeof(f->err)), 0);

	/* An update keeps the state; the group changes. */
	a = rec("rec1", "south", "", true);
	assert_int_equal(reg_recorder_put(f->r, &a, f->err, sizeof(f->err)), 0);
	assert_int_equal(reg_recorder_get(f->r, "rec1", &got, f->err, sizeof(f->err)), 1);
	assert_string_equal(got.group, "south");
	assert_string_equal(got.state, "FAILED_OVER");
}

static void bad_input_is_refused_and_changes_nothing(void **state)
{
	struct fx *f = *state;
	struct reg_recorder a = rec("rec1", "north", "", true), got;
	struct reg_spare s = spare("sp1", "");
	const char *dup[] = { "rec1", "rec1" };
	const char *unknown[] = { "rec1", "ghost" };
	const char *one[] = { "rec1" };
	char qgot[4][REG_NAME_MAX];

	assert_int_equal(reg_recorder_put(f->r, &a, f->err, sizeof(f->err)), 0);
	assert_int_equal(reg_queue_set(f->r, one, 1, f->err, sizeof(f->err)), 0);

	assert_int_equal(reg_spare_put(f->r, &s, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "spare sp1 is in no group"));
	assert_int_equal(reg_spare_get(f->r, "sp1", &(struct reg_spare){ 0 }, f->err, sizeof(f->err)), 0);

	s = spare("rec1", "north");
	assert_int_equal(reg_spare_put(f->r, &s, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "rec1 is a recorder"));
	s = spare("sp1", "north");
	assert_int_equal(reg_spare_put(f->r, &s, f->err, sizeof(f->err)), 0);
	a = rec("sp1", "north", "", true);
	assert_int_equal(reg_recorder_put(f->r, &a, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "sp1 is a spare"));

	a = rec("bad name", "north", "", true);
	assert_int_equal(reg_recorder_put(f->r, &a, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "recorder name 'bad name'"));
	a = rec("rec9", "", "", true);
	assert_int_equal(reg_recorder_put(f->r, &a, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "recorder group ''"));
	a = rec("rec9", "north", "north", true);
	assert_int_equal(reg_recorder_put(f->r, &a, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "is its group already"));
	assert_int_equal(count_recorders(f), 1);

	assert_int_equal(reg_recorder_set_state(f->r, "ghost", "OK", "", f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "unknown recorder 'ghost'"));
	assert_int_equal(reg_recorder_set_state(f->r, "rec1", "OK", "not a name", f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "served_by 'not a name'"));
	assert_int_equal(reg_spare_set_state(f->r, "ghost", "FREE", "", f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "unknown spare 'ghost'"));
	assert_int_equal(reg_recorder_get(f->r, "rec1", &got, f->err, sizeof(f->err)), 1);
	assert_string_equal(got.state, "OFFLINE");

	/* The queue is replaced whole or not at all. */
	assert_int_equal(reg_queue_set(f->r, dup, 2, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "in it twice"));
	assert_int_equal(reg_queue_set(f->r, unknown, 2, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "unknown recorder 'ghost'"));
	assert_int_equal(reg_queue_get(f->r, qgot, 4, f->err, sizeof(f->err)), 1);
	assert_string_equal(qgot[0], "rec1");

	assert_int_equal(reg_recorder_del(f->r, "ghost", f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "unknown recorder 'ghost'"));
	assert_int_equal(reg_recorder_del(f->r, "rec1", f->err, sizeof(f->err)), 0);
	assert_int_equal(reg_queue_get(f->r, qgot, 4, f->err, sizeof(f->err)), 0);
}

struct logs {
	struct reg_log_entry v[8];
	int n;
};

static int collect_log(const struct reg_log_entry *e, void *arg)
{
	struct logs *l = arg;

	l->v[l->n++] = *e;
	return 0;
}

static void failover_log_keeps_order_and_the_newest(void **state)
{
	struct fx *f = *state;
	struct logs l = { .n = 0 };

	for (int i = 0; i < 5; i++) {
		struct reg_log_entry e = { 0 };

		snprintf(e.recorder, sizeof(e.recorder), "rec%d", i);
		snprintf(e.spare, sizeof(e.spare), "sp1");
		snprintf(e.event, sizeof(e.event), "failover");
		snprintf(e.trigger, sizeof(e.trigger), "timeout");
		snprintf(e.result, sizeof(e.result), "ok");
		snprintf(e.detail, sizeof(e.detail), "entry %d", i);
		assert_int_equal(reg_log_add(f->r, &e, f->err, sizeof(f->err)), 0);
		assert_true(e.id > 0 && e.time_ms > 1600000000000LL);
	}
	reopen(f);
	assert_int_equal(reg_log_list(f->r, 3, collect_log, &l, f->err, sizeof(f->err)), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.v[0].recorder, "rec2");
	assert_string_equal(l.v[2].recorder, "rec4");
	assert_string_equal(l.v[2].detail, "entry 4");
	assert_true(l.v[0].id < l.v[1].id && l.v[1].id < l.v[2].id);

	struct reg_log_entry bad = { .event = "" };
	snprintf(bad.recorder, sizeof(bad.recorder), "rec1");
	assert_int_equal(reg_log_add(f->r, &bad, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "event is empty"));
	snprintf(bad.event, sizeof(bad.event), "failover");
	snprintf(bad.recorder, sizeof(bad.recorder), "a/b");
	assert_int_equal(reg_log_add(f->r, &bad, f->err, sizeof(f->err)), -1);
	l.n = 0;
	assert_int_equal(reg_log_list(f->r, 10, collect_log, &l, f->err, sizeof(f->err)), 0);
	assert_int_equal(l.n, 5);
}

struct files {
	char name[4][256];
	char sum[4][REG_SHA256_HEX];
	int64_t version[4];
	char data[4][64];
	int n;
};

static int collect_files(const struct reg_settings_file *sf, void *arg)
{
	struct files *fs = arg;

	snprintf(fs->name[fs->n], 256, "%s", sf->file);
	snprintf(fs->sum[fs->n], REG_SHA256_HEX, "%s", sf->sha256);
	fs->version[fs->n] = sf->version;
	assert_true(sf->len < 64);
	memcpy(fs->data[fs->n], sf->data, sf->len);
	fs->data[fs->n][sf->len] = '\0';
	fs->n++;
	return 0;
}

static void hex_sha256(const char *s, char out[REG_SHA256_HEX])
{
	unsigned char md[32];
	unsigned int len;

	EVP_Digest(s, strlen(s), md, &len, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

static void settings_cache_keeps_the_latest_with_its_checksum(void **state)
{
	struct fx *f = *state;
	struct reg_recorder a = rec("rec1", "north", "", true);
	struct files fs = { .n = 0 };
	char want[REG_SHA256_HEX];
	char big[2048];
	bool changed;

	assert_int_equal(reg_recorder_put(f->r, &a, f->err, sizeof(f->err)), 0);
	assert_int_equal(reg_settings_put(f->r, "rec1", "cameras.xml", "v1", 2, 1024, &changed, f->err,
	                                  sizeof(f->err)), 0);
	assert_true(changed);
	assert_int_equal(reg_settings_put(f->r, "rec1", "cameras.xml", "v1", 2, 1024, &changed, f->err,
	                                  sizeof(f->err)), 0);
	assert_false(changed);
	assert_int_equal(reg_settings_put(f->r, "rec1", "cameras.xml", "v2", 2, 1024, &changed, f->err,
	                                  sizeof(f->err)), 0);
	assert_true(changed);
	assert_int_equal(reg_settings_put(f->r, "rec1", "masks/cam1.png", "mask", 4, 1024, &changed, f->err,
	                                  sizeof(f->err)), 0);
	reopen(f);
	assert_int_equal(reg_settings(f->r, "rec1", collect_files, &fs, f->err, sizeof(f->err)), 0);
	assert_int_equal(fs.n, 2);
	assert_string_equal(fs.name[0], "cameras.xml");
	assert_string_equal(fs.data[0], "v2");
	assert_int_equal(fs.version[0], 2);
	hex_sha256("v2", want);
	assert_string_equal(fs.sum[0], want);
	assert_string_equal(fs.name[1], "masks/cam1.png");
	assert_int_equal(fs.version[1], 1);

	/* A file the recorder removed leaves the cache, across a restart;
	 * removing what is not cached changes nothing; a bad path is refused. */
	assert_int_equal(reg_settings_del(f->r, "rec1", "masks/cam1.png", f->err, sizeof(f->err)), 0);
	assert_int_equal(reg_settings_del(f->r, "rec1", "masks/none.png", f->err, sizeof(f->err)), 0);
	assert_int_equal(reg_settings_del(f->r, "rec1", "../x", f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "not a relative path"));
	reopen(f);
	fs.n = 0;
	assert_int_equal(reg_settings(f->r, "rec1", collect_files, &fs, f->err, sizeof(f->err)), 0);
	assert_int_equal(fs.n, 1);
	assert_string_equal(fs.name[0], "cameras.xml");
	assert_int_equal(reg_settings_put(f->r, "rec1", "masks/cam1.png", "mask", 4, 1024, &changed, f->err,
	                                  sizeof(f->err)), 0);

	/* Over the limit, a bad path, an unknown recorder: refused, the cache
	 * unchanged. */
	memset(big, 'x', sizeof(big));
	assert_int_equal(reg_settings_put(f->r, "rec1", "cameras.xml", big, sizeof(big), 1024, &changed, f->err,
	                                  sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "2048 bytes, over the limit of 1024"));
	const char *bad[] = { "../etc/passwd", "/etc/passwd", "a/../b", "a//b", "a/", ".", "", "a\\b", "a\nb" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(reg_settings_put(f->r, "rec1", bad[i], "x", 1, 1024, &changed, f->err, sizeof(f->err)),
		                 -1);
		assert_non_null(strstr(f->err, "not a relative path"));
		assert_false(changed);
	}
	assert_true(pool_path_ok("a/.hidden/b.xml"));
	assert_int_equal(reg_settings_put(f->r, "ghost", "c.xml", "x", 1, 1024, &changed, f->err, sizeof(f->err)),
	                 -1);
	assert_non_null(strstr(f->err, "unknown recorder 'ghost'"));
	fs.n = 0;
	assert_int_equal(reg_settings(f->r, "rec1", collect_files, &fs, f->err, sizeof(f->err)), 0);
	assert_int_equal(fs.n, 2);
	assert_string_equal(fs.data[0], "v2");
}

static void a_foreign_file_is_refused(void **state)
{
	struct fx *f = *state;
	char path[PATH_MAX + 16], err[512];
	FILE *fp;

	FMT(path, sizeof(path), "%s/other.db", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("this is not a database, it is a text file that is long enough to have a header\n", fp);
	fclose(fp);
	assert_null(reg_open(path, err, sizeof(err)));
	assert_non_null(strstr(err, path));
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(registry_survives_a_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_input_is_refused_and_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(failover_log_keeps_order_and_the_newest, setup, teardown),
		cmocka_unit_test_setup_teardown(settings_cache_keeps_the_latest_with_its_checksum, setup, teardown),
		cmocka_unit_test_setup_teardown(a_foreign_file_is_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
