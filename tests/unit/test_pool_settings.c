/* A recorder's settings directory as the pool uploads it
 * (src/pool/settings_scan.c), on real temporary directories: every file
 * with its SHA-256, links and special files left out, limits refused with
 * the file named, a rescan rehashing only what changed, and the diff the
 * agent uploads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "pool/settings_scan.h"
#include "testutil.h"

static const struct pool_scan_limits LIM = { .file_max = 1024, .count_max = 10, .depth_max = 3 };

struct fx {
	char dir[PATH_MAX];
	char err[600];
};

static void put(struct fx *f, const char *rel, const char *text)
{
	char p[PATH_MAX + 64];
	FILE *fp;

	FMT(p, sizeof(p), "%s/%s", f->dir, rel);
	fp = fopen(p, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void mkd(struct fx *f, const char *rel)
{
	char p[PATH_MAX + 64];

	FMT(p, sizeof(p), "%s/%s", f->dir, rel);
	assert_int_equal(mkdir(p, 0755), 0);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(tu_mkdtemp(f->dir, "pool-settings"), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	tu_rm_rf(f->dir);
	free(f);
	return 0;
}

static void sha_hex(const char *s, char out[65])
{
	unsigned char md[32];
	unsigned int n;

	EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

static void every_file_with_its_hash_links_left_out(void **state)
{
	struct fx *f = *state;
	struct pool_sset s;
	char want[65], p[PATH_MAX + 64];

	put(f, "cameras.xml", "<cams/>");
	mkd(f, "masks");
	put(f, "masks/cam1.png", "mask1");
	mkd(f, "masks/night");
	put(f, "masks/night/cam2.png", "");
	FMT(p, sizeof(p), "%s/link", f->dir);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	FMT(p, sizeof(p), "%s/fifo", f->dir);
	assert_int_equal(mkfifo(p, 0600), 0);

	assert_int_equal(pool_settings_scan(f->dir, &LIM, NULL, &s, f->err, sizeof(f->err)), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.skipped, 2);
	assert_string_equal(s.v[0].path, "cameras.xml");
	assert_string_equal(s.v[1].path, "masks/cam1.png");
	assert_string_equal(s.v[2].path, "masks/night/cam2.png");
	sha_hex("<cams/>", want);
	assert_string_equal(s.v[0].sha256, want);
	assert_int_equal(s.v[0].size, 7);
	sha_hex("", want);
	assert_string_equal(s.v[2].sha256, want);
	assert_int_equal(s.v[2].size, 0);
	pool_sset_free(&s);
}

struct calls {
	char path[8][POOL_SFILE_PATH];
	bool present[8];
	int n;
};

static void on_diff(const struct pool_sfile *sf, bool present, void *arg)
{
	struct calls *c = arg;

	snprintf(c->path[c->n], POOL_SFILE_PATH, "%s", sf->path);
	c->present[c->n++] = present;
}

static void rescan_rehashes_only_what_changed_and_diffs(void **state)
{
	struct fx *f = *state;
	struct pool_sset a, b;
	struct calls c = { .n = 0 };
	char p[PATH_MAX + 64], want[65];

	put(f, "a.xml", "one");
	put(f, "b.xml", "two");
	put(f, "c.xml", "three");
	assert_int_equal(pool_settings_scan(f->dir, &LIM, NULL, &a, f->err, sizeof(f->err)), 0);
	/* A doctored hash in the previous scan survives a rescan for an
	 * unchanged file: proof that it was not read again. */
	snprintf(a.v[2].sha256, sizeof(a.v[2].sha256), "%064d", 7);
	/* b.xml changes (the mtime moves even if the size does not), a.xml
	 * goes, d.xml comes. */
	put(f, "b.xml", "TWO");
	FMT(p, sizeof(p), "%s/b.xml", f->dir);
	struct timeval tv[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	assert_int_equal(utimes(p, tv), 0);
	FMT(p, sizeof(p), "%s/a.xml", f->dir);
	assert_int_equal(unlink(p), 0);
	put(f, "d.xml", "four");
	assert_int_equal(pool_settings_scan(f->dir, &LIM, &a, &b, f->err, sizeof(f->err)), 0);
	assert_int_equal(b.n, 3);
	assert_string_equal(b.v[1].path, "c.xml");
	assert_string_equal(b.v[1].sha256, a.v[2].sha256);
	sha_hex("TWO", want);
	assert_string_equal(b.v[0].sha256, want);

	assert_int_equal(pool_sset_diff(&a, &b, on_diff, &c), 3);
	assert_string_equal(c.path[0], "a.xml");
	assert_false(c.present[0]);
	assert_string_equal(c.path[1], "b.xml");
	assert_true(c.present[1]);
	assert_string_equal(c.path[2], "d.xml");
	assert_true(c.present[2]);
	/* Nothing changed: nothing to send; from nothing: everything. */
	c.n = 0;
	assert_int_equal(pool_sset_diff(&b, &b, on_diff, &c), 0);
	assert_int_equal(pool_sset_diff(NULL, &b, on_diff, &c), 3);
	pool_sset_free(&a);
	pool_sset_free(&b);
}

static void limits_are_refused_naming_the_file(void **state)
{
	struct fx *f = *state;
	struct pool_sset s;
	char big[1100], p[PATH_MAX + 64];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	put(f, "big.xml", big);
	assert_int_equal(pool_settings_scan(f->dir, &LIM, NULL, &s, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "big.xml: 1099 bytes, over the limit of 1024"));
	assert_null(s.v);
	assert_int_equal(s.n, 0);
	FMT(p, sizeof(p), "%s/big.xml", f->dir);
	unlink(p);

	for (int i = 0; i < 11; i++) {
		FMT(p, sizeof(p), "f%02d", i);
		put(f, p, "x");
	}
	assert_int_equal(pool_settings_scan(f->dir, &LIM, NULL, &s, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "more than 10 files"));
	for (int i = 0; i < 11; i++) {
		FMT(p, sizeof(p), "%s/f%02d", f->dir, i);
		unlink(p);
	}

	mkd(f, "a");
	mkd(f, "a/b");
	mkd(f, "a/b/c");
	mkd(f, "a/b/c/d");
	assert_int_equal(pool_settings_scan(f->dir, &LIM, NULL, &s, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "a/b/c/d: deeper than 3 levels"));
	FMT(p, sizeof(p), "%s/a/b/c/d", f->dir);
	rmdir(p);

	put(f, "caf\xc3\xa9.xml", "x");
	assert_int_equal(pool_settings_scan(f->dir, &LIM, NULL, &s, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "non-printable or non-ASCII"));
	FMT(p, sizeof(p), "%s/caf\xc3\xa9.xml", f->dir);
	unlink(p);

	assert_int_equal(pool_settings_scan(f->dir, &LIM, NULL, &s, f->err, sizeof(f->err)), 0);
	assert_int_equal(s.n, 0);
	pool_sset_free(&s);

	assert_int_equal(pool_settings_scan("/nonexistent/settings", &LIM, NULL, &s, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "settings directory /nonexistent/settings: No such file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(every_file_with_its_hash_links_left_out, setup, teardown),
		cmocka_unit_test_setup_teardown(rescan_rehashes_only_what_changed_and_diffs, setup, teardown),
		cmocka_unit_test_setup_teardown(limits_are_refused_naming_the_file, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
