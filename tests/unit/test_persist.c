#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/persist.h"
#include "common/log.h"
#include "common/util.h"


static char base_dir[PATH_MAX];


static int group_setup(void **st)
{
	/* The "unreadable state file" errors are expected here: keep them off stderr. */
	log_init("ut-persist", true, LOG_LVL_ERROR - 1);
	return tu_mkdtemp(base_dir, "persist");
}

static int group_teardown(void **st)
{
	persist_flush();
	tu_rm_rf(base_dir);
	return 0;
}

static void path_in(const char *name, char *out, size_t len)
{
	char dir[PATH_MAX];

	FMT(dir, sizeof(dir), "%s/%s", base_dir, name);
	assert_int_equal(mkdir(dir, 0755), 0);
	FMT(out, len, "%s/node.json", dir);
}

static void put(const char *path, const char *text)
{
	assert_int_equal(write_file_atomic(path, text, strlen(text), 0644), 0);
}

static void assert_defaults(const struct persist_data *d)
{
	assert_string_equal(d->state, "STOP");
	assert_false(d->admin_started);
	assert_int_equal(d->boot, BOOT_KEEP);
	assert_true(d->term == 0);
	assert_true(d->incarnation == 0);
	assert_true(d->peer_incarnation == 0);
	assert_string_equal(d->boot_id, "");
	assert_false(d->vip_held);
	assert_int_equal(d->nrunning, 0);
}

static struct persist_data sample(void)
{
	struct persist_data d;

	memset(&d, 0, sizeof(d));
	strcpy(d.state, "PRIM");
	d.admin_started = true;
	d.boot = BOOT_OFF;
	d.term = 4242;
	d.incarnation = 1700000000123456ull;
	d.peer_incarnation = 1700000000654321ull;
	strcpy(d.boot_id, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
	d.vip_held = true;
	d.nrunning = 3;
	strcpy(d.running[0], "mirror");
	strcpy(d.running[1], "web \"quoted\" \\ name");
	strcpy(d.running[2], "vms");
	return d;
}

static void assert_same(const struct persist_data *a, const struct persist_data *b)
{
	assert_string_equal(a->state, b->state);
	assert_int_equal(a->admin_started, b->admin_started);
	assert_int_equal(a->boot, b->boot);
	assert_true(a->term == b->term);
	assert_true(a->incarnation == b->incarnation);
	assert_true(a->peer_incarnation == b->peer_incarnation);
	assert_string_equal(a->boot_id, b->boot_id);
	assert_int_equal(a->vip_held, b->vip_held);
	assert_int_equal(a->nrunning, b->nrunning);
	for (int i = 0; i < a->nrunning; i++)
		assert_string_equal(a->running[i], b->running[i]);
}

/* Entries of the directory that holds path. */
static int entries_beside(const char *path)
{
	char dir[PATH_MAX];

	strlcpy_ok(dir, path, sizeof(dir));
	*strrchr(dir, '/') = '\0';
	return tu_count_entries(dir);
}

static void round_trip(void **st)
{
	char path[PATH_MAX];
	struct persist_data in = sample(), out;
	struct stat sb;

	path_in("roundtrip", path, sizeof(path));
	assert_int_equal(persist_save_now(path, &in), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0640);
	memset(&out, 0xa5, sizeof(out));
	assert_int_equal(persist_load(path, &out), 0);
	assert_same(&out, &in);

	/* The other value of every boolean and enum. */
	in.admin_started = false;
	in.vip_held = false;
	in.boot = BOOT_ON;
	strcpy(in.state, "SECOND");
	in.nrunning = 0;
	in.term = 0;
	assert_int_equal(persist_save_now(path, &in), 0);
	assert_int_equal(persist_load(path, &out), 0);
	assert_same(&out, &in);
	in.boot = BOOT_KEEP;
	assert_int_equal(persist_save_now(path, &in), 0);
	assert_int_equal(persist_load(path, &out), 0);
	assert_same(&out, &in);
}

static void round_trip_full(void **st)
{
	char path[PATH_MAX];
	static struct persist_data in, out;

	path_in("full", path, sizeof(path));
	memset(&in, 0, sizeof(in));
	strcpy(in.state, "ALONE");
	in.term = INT64_MAX;
	in.incarnation = INT64_MAX - 1;
	in.nrunning = CFG_MAX_RESOURCES;
	for (int i = 0; i < CFG_MAX_RESOURCES; i++) {
		memset(in.running[i], 'a' + i % 26, CFG_NAME_MAX - 1);
		FMT(in.running[i], 4, "%02d", i);
		in.running[i][2] = '-';
	}
	assert_int_equal(persist_save_now(path, &in), 0);
	assert_int_equal(persist_load(path, &out), 0);
	assert_same(&out, &in);
	assert_int_equal(strlen(out.running[CFG_MAX_RESOURCES - 1]), CFG_NAME_MAX - 1);
}

static void missing_file(void **st)
{
	char path[PATH_MAX];
	struct persist_data out;

	path_in("missing", path, sizeof(path));
	memset(&out, 0xa5, sizeof(out));
	assert_int_equal(persist_load(path, &out), -ENOENT);
	assert_defaults(&out);
}

static void corrupt_file(void **st)
{
	char path[PATH_MAX];
	struct persist_data out;
	const char *bad[] = {
		"",
		"{",
		"{\"state\": \"PRIM\", \"term\": 3",
		"not json at all",
		"[1, 2, 3]",
		"\"a string\"",
		"{\"state\": 5}",
		"{\"term\": \"many\"}",
		"{\"vip_held\": \"yes\"}",
		"{\"admin\": null}",
		"{\"term\": 1.5}",
	};

	path_in("corrupt", path, sizeof(path));
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		put(path, bad[i]);
		memset(&out, 0xa5, sizeof(out));
		if (persist_load(path, &out) != -EINVAL)
			fail_msg("'%s' was not rejected with -EINVAL", bad[i]);
		assert_defaults(&out);
	}
}

/* Older or newer versions of the file: missing keys take defaults, unknown
 * keys and values are ignored. */
static void partial_and_odd_files(void **st)
{
	char path[PATH_MAX];
	struct persist_data out;

	path_in("partial", path, sizeof(path));

	put(path, "{\"running\": []}");
	memset(&out, 0xa5, sizeof(out));
	assert_int_equal(persist_load(path, &out), 0);
	assert_defaults(&out);

	put(path, "{\"version\": 1, \"state\": \"PRIM\", \"term\": 9, \"running\": []}");
	assert_int_equal(persist_load(path, &out), 0);
	assert_string_equal(out.state, "PRIM");
	assert_true(out.term == 9);
	assert_int_equal(out.nrunning, 0);

	put(path, "{\"state\": \"PRIM\", \"future\": {\"x\": 1}, \"boot\": \"sometimes\","
	          " \"term\": -4, \"incarnation\": -1, \"admin\": \"maybe\","
	          " \"running\": [\"a\", 7, null, \"b\"]}");
	assert_int_equal(persist_load(path, &out), 0);
	assert_int_equal(out.boot, BOOT_KEEP);
	assert_true(out.term == 0);
	assert_true(out.incarnation == 0);
	assert_false(out.admin_started);
	assert_int_equal(out.nrunning, 2);
	assert_string_equal(out.running[0], "a");
	assert_string_equal(out.running[1], "b");

	put(path, "{\"running\": \"not-a-list\"}");
	assert_int_equal(persist_load(path, &out), 0);
	assert_int_equal(out.nrunning, 0);

	/* Too many or too long names are cut, never overflow. */
	{
		char *s = malloc(64 * 1024), *p = s;
		static const char lng[] = "0123456789012345678901234567890123456789012345678901234567890123456789";

		p += sprintf(p, "{\"state\": \"A-VERY-LONG-STATE-NAME\", \"running\": [");
		for (int i = 0; i < CFG_MAX_RESOURCES + 10; i++)
			p += sprintf(p, "%s\"%s\"", i ? ", " : "", lng);
		sprintf(p, "]}");
		put(path, s);
		free(s);
		assert_int_equal(persist_load(path, &out), 0);
		assert_int_equal(out.nrunning, CFG_MAX_RESOURCES);
		assert_int_equal(strlen(out.running[0]), CFG_NAME_MAX - 1);
		assert_int_equal(strlen(out.state), sizeof(out.state) - 1);
	}
}

/* Leaves a stack full of non-NULL junk where persist_load's locals will be. */
static __attribute__((noinline)) void dirty_stack(void)
{
	volatile unsigned char junk[8192];

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = 0x41;
}

static __attribute__((noinline)) int load_after_dirty_stack(const char *path, struct persist_data *out)
{
	dirty_stack();
	return persist_load(path, out);
}

/* A file without "running" (written by hand, or by an older version) must
 * load: the absent list must not be read from an unset variable. The stack
 * is dirtied first so that the unset variable is not NULL by luck. */
static void no_running_key(void **st)
{
	char path[PATH_MAX];
	struct persist_data out;

	path_in("norunning", path, sizeof(path));
	put(path, "{\"version\": 1, \"state\": \"SECOND\", \"admin\": \"started\", \"boot\": \"on\"}");
	assert_int_equal(load_after_dirty_stack(path, &out), 0);
	assert_string_equal(out.state, "SECOND");
	assert_true(out.admin_started);
	assert_int_equal(out.boot, BOOT_ON);
	assert_int_equal(out.nrunning, 0);

	put(path, "{}");
	memset(&out, 0xa5, sizeof(out));
	assert_int_equal(load_after_dirty_stack(path, &out), 0);
	assert_defaults(&out);
}

static void async_latest_wins(void **st)
{
	char path[PATH_MAX];
	struct persist_data d = sample(), out;
	const int n = 500;

	path_in("async", path, sizeof(path));
	for (int i = 1; i <= n; i++) {
		d.term = (uint64_t)i;
		FMT(d.running[0], sizeof(d.running[0]), "res-%d", i);
		persist_save(path, &d);
	}
	persist_flush();
	assert_int_equal(persist_load(path, &out), 0);
	assert_same(&out, &d);
	assert_true(out.term == (uint64_t)n);
	assert_string_equal(out.running[0], "res-500");
	/* No temporary file is left behind. */
	assert_int_equal(entries_beside(path), 1);

	/* Flushing twice, or with nothing queued, is harmless; saving again
	 * after a flush starts the writer again. */
	persist_flush();
	d.term = 9999;
	persist_save(path, &d);
	persist_flush();
	assert_int_equal(persist_load(path, &out), 0);
	assert_true(out.term == 9999);
}

static void async_save_error_is_survived(void **st)
{
	char path[PATH_MAX + 32], good[PATH_MAX];
	struct persist_data d = sample(), out;

	FMT(path, sizeof(path), "%s/no/such/dir/node.json", base_dir);
	persist_save(path, &d);
	persist_flush();
	assert_int_equal(persist_load(path, &out), -ENOENT);

	path_in("after-error", good, sizeof(good));
	persist_save(good, &d);
	persist_flush();
	assert_int_equal(persist_load(good, &out), 0);
	assert_same(&out, &d);
}

static void boot_mode_names(void **st)
{
	enum boot_mode b = BOOT_ON;

	assert_string_equal(boot_mode_str(BOOT_KEEP), "keep");
	assert_string_equal(boot_mode_str(BOOT_ON), "on");
	assert_string_equal(boot_mode_str(BOOT_OFF), "off");
	assert_string_equal(boot_mode_str((enum boot_mode)17), "?");

	for (int m = BOOT_KEEP; m <= BOOT_OFF; m++) {
		assert_int_equal(boot_mode_parse(boot_mode_str((enum boot_mode)m), &b), 0);
		assert_int_equal(b, m);
	}
	b = BOOT_ON;
	assert_int_equal(boot_mode_parse("", &b), -1);
	assert_int_equal(boot_mode_parse("ON", &b), -1);
	assert_int_equal(boot_mode_parse("keep ", &b), -1);
	assert_int_equal(boot_mode_parse("of", &b), -1);
	assert_int_equal(b, BOOT_ON);
}

static void boot_id(void **st)
{
	char a[40], b[40];

	memset(a, 'Z', sizeof(a));
	persist_boot_id(a);
	persist_boot_id(b);
	/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" */
	assert_int_equal(strlen(a), 36);
	assert_int_equal(a[8], '-');
	assert_null(strchr(a, '\n'));
	assert_string_equal(a, b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(round_trip),
		cmocka_unit_test(round_trip_full),
		cmocka_unit_test(missing_file),
		cmocka_unit_test(corrupt_file),
		cmocka_unit_test(partial_and_odd_files),
		cmocka_unit_test(no_running_key),
		cmocka_unit_test(async_latest_wins),
		cmocka_unit_test(async_save_error_is_survived),
		cmocka_unit_test(boot_mode_names),
		cmocka_unit_test(boot_id),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
