#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"


static char base_dir[PATH_MAX];


static int group_setup(void **st)
{
	return tu_mkdtemp(base_dir, "util");
}

static int group_teardown(void **st)
{
	tu_rm_rf(base_dir);
	return 0;
}

/* A fresh, empty directory under base_dir for one test. */
static void test_dir(const char *name, char *out, size_t len)
{
	FMT(out, len, "%s/%s", base_dir, name);
	assert_int_equal(mkdir(out, 0755), 0);
}

static void put(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* ---- read_file ---- */

static void read_file_missing(void **st)
{
	char path[PATH_MAX], *buf = (char *)1;
	size_t len = 99;

	FMT(path, sizeof(path), "%s/does-not-exist", base_dir);
	assert_int_equal(read_file(path, 1024, &buf, &len), -ENOENT);
	assert_null(buf);
	assert_int_equal(len, 0);
}

static void read_file_content(void **st)
{
	char dir[PATH_MAX], path[PATH_MAX + 8], *buf;
	size_t len;
	static char big[20000];

	test_dir("read", dir, sizeof(dir));
	FMT(path, sizeof(path), "%s/f", dir);

	/* Empty: a valid, NUL-terminated, empty buffer. */
	put(path, "", 0);
	assert_int_equal(read_file(path, 100, &buf, &len), 0);
	assert_non_null(buf);
	assert_int_equal(len, 0);
	assert_int_equal(buf[0], '\0');
	free(buf);

	put(path, "hello\n", 6);
	assert_int_equal(read_file(path, 100, &buf, &len), 0);
	assert_int_equal(len, 6);
	assert_string_equal(buf, "hello\n");
	free(buf);
	/* len is optional */
	assert_int_equal(read_file(path, 100, &buf, NULL), 0);
	assert_string_equal(buf, "hello\n");
	free(buf);

	/* Bigger than the first buffer: it grows and keeps every byte. */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	put(path, big, sizeof(big));
	assert_int_equal(read_file(path, 1 << 20, &buf, &len), 0);
	assert_int_equal(len, sizeof(big));
	assert_memory_equal(buf, big, sizeof(big));
	assert_int_equal(buf[len], '\0');
	free(buf);

	/* Embedded NULs are data, len tells the truth. */
	put(path, "a\0b", 3);
	assert_int_equal(read_file(path, 100, &buf, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(buf, "a\0b", 4);
	free(buf);
}

static void read_file_too_big(void **st)
{
	char dir[PATH_MAX], path[PATH_MAX + 8], *buf = (char *)1;
	size_t len = 99;
	static char big[10000];
	int r;

	test_dir("big", dir, sizeof(dir));
	FMT(path, sizeof(path), "%s/f", dir);
	memset(big, 'x', sizeof(big));

	put(path, big, sizeof(big));
	r = read_file(path, 8192, &buf, &len);
	assert_int_equal(r, -EFBIG);
	assert_null(buf);
	assert_int_equal(len, 0);
	r = read_file(path, 9999, &buf, &len);
	assert_int_equal(r, -EFBIG);
	assert_null(buf);

	/* A limit below the first buffer size is a limit too. */
	put(path, big, 100);
	r = read_file(path, 10, &buf, &len);
	free(r == 0 ? buf : NULL);
	assert_int_equal(r, -EFBIG);
	assert_null(buf);
}

/* "at most max bytes": a file of exactly max bytes fits. */
static void read_file_exactly_max(void **st)
{
	char dir[PATH_MAX], path[PATH_MAX + 8], *buf;
	size_t len;
	static char big[10000];

	test_dir("exact", dir, sizeof(dir));
	FMT(path, sizeof(path), "%s/f", dir);
	memset(big, 'y', sizeof(big));

	put(path, big, 5000);
	assert_int_equal(read_file(path, 5001, &buf, &len), 0);
	assert_int_equal(len, 5000);
	free(buf);
	assert_int_equal(read_file(path, 4999, &buf, &len), -EFBIG);

	assert_int_equal(read_file(path, 5000, &buf, &len), 0);
	assert_int_equal(len, 5000);
	free(buf);

	put(path, big, 4096);
	assert_int_equal(read_file(path, 4096, &buf, &len), 0);
	assert_int_equal(len, 4096);
	free(buf);
}

/* ---- write_file_atomic ---- */

static void write_atomic_basic(void **st)
{
	char dir[PATH_MAX], path[PATH_MAX + 8], *buf;
	size_t len;
	struct stat sb;

	test_dir("atomic", dir, sizeof(dir));
	FMT(path, sizeof(path), "%s/state.json", dir);

	assert_int_equal(write_file_atomic(path, "first", 5, 0600), 0);
	assert_int_equal(read_file(path, 100, &buf, &len), 0);
	assert_string_equal(buf, "first");
	free(buf);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);

	/* Replaces (shorter content: no stale tail), and takes the new mode. */
	assert_int_equal(write_file_atomic(path, "2nd", 3, 0640), 0);
	assert_int_equal(read_file(path, 100, &buf, &len), 0);
	assert_int_equal(len, 3);
	assert_string_equal(buf, "2nd");
	free(buf);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0640);

	/* Empty content is a valid file. */
	assert_int_equal(write_file_atomic(path, "", 0, 0644), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, 0);

	/* No temporary file is left behind. */
	assert_int_equal(tu_count_entries(dir), 1);

	/* A missing directory is an error and creates nothing. */
	FMT(path, sizeof(path), "%s/nodir/x", dir);
	assert_int_equal(write_file_atomic(path, "x", 1, 0644), -ENOENT);
	assert_int_equal(tu_count_entries(dir), 1);
}

#define W_A_LEN (64 * 1024)
#define W_B_LEN (100 * 1024 + 7)
#define W_ROUNDS 60

struct writer_arg {
	const char *path;
	char fill;
	size_t len;
	int errors;
	int done;
};

static void *writer_thread(void *p)
{
	struct writer_arg *a = p;
	char *data = malloc(a->len);

	memset(data, a->fill, a->len);
	for (int i = 0; i < W_ROUNDS; i++)
		if (write_file_atomic(a->path, data, a->len, 0644) != 0)
			a->errors++;
	free(data);
	__atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Each reader sees one writer's whole content, never a mix or a prefix. */
static void check_whole(const char *buf, size_t len)
{
	char fill;

	if (len == W_A_LEN)
		fill = 'a';
	else if (len == W_B_LEN)
		fill = 'b';
	else
		fail_msg("torn file: %zu bytes", len);
	for (size_t i = 0; i < len; i++)
		if (buf[i] != fill)
			fail_msg("torn file: byte %zu is '%c' in a file of '%c'", i, buf[i], fill);
}

static void write_atomic_concurrent(void **st)
{
	char dir[PATH_MAX], path[PATH_MAX + 8], *buf;
	size_t len;
	pthread_t ta, tb;
	struct writer_arg a = { .fill = 'a', .len = W_A_LEN }, b = { .fill = 'b', .len = W_B_LEN };
	int reads = 0;

	test_dir("concurrent", dir, sizeof(dir));
	FMT(path, sizeof(path), "%s/f", dir);
	a.path = b.path = path;
	assert_int_equal(write_file_atomic(path, "", 0, 0644), 0);

	assert_int_equal(pthread_create(&ta, NULL, writer_thread, &a), 0);
	assert_int_equal(pthread_create(&tb, NULL, writer_thread, &b), 0);
	/* Read while they write: every version seen is complete. */
	while (!__atomic_load_n(&a.done, __ATOMIC_ACQUIRE) || !__atomic_load_n(&b.done, __ATOMIC_ACQUIRE)) {
		if (read_file(path, 1 << 20, &buf, &len) != 0)
			fail_msg("read during concurrent writes failed");
		if (len != 0) {
			check_whole(buf, len);
			reads++;
		}
		free(buf);
	}
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_int_equal(a.errors, 0);
	assert_int_equal(b.errors, 0);
	assert_true(reads > 0);

	assert_int_equal(read_file(path, 1 << 20, &buf, &len), 0);
	check_whole(buf, len);
	free(buf);
	assert_int_equal(tu_count_entries(dir), 1);
}

/* ---- mkdir_p ---- */

static bool is_dir(const char *p, mode_t *mode)
{
	struct stat sb;

	if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return false;
	if (mode)
		*mode = sb.st_mode & 07777;
	return true;
}

static void mkdir_p_cases(void **st)
{
	char dir[PATH_MAX], p[PATH_MAX + 64];
	mode_t old = umask(022), m;

	test_dir("mkdir", dir, sizeof(dir));

	FMT(p, sizeof(p), "%s/a/b/c", dir);
	assert_int_equal(mkdir_p(p, 0750), 0);
	assert_true(is_dir(p, &m));
	assert_int_equal(m, 0750);
	FMT(p, sizeof(p), "%s/a/b", dir);
	assert_true(is_dir(p, NULL));

	/* Existing: fine, again. */
	FMT(p, sizeof(p), "%s/a/b/c", dir);
	assert_int_equal(mkdir_p(p, 0750), 0);
	assert_int_equal(mkdir_p(dir, 0750), 0);

	/* Trailing slashes and doubled slashes. */
	FMT(p, sizeof(p), "%s/t1/t2/", dir);
	assert_int_equal(mkdir_p(p, 0755), 0);
	FMT(p, sizeof(p), "%s/t1/t2", dir);
	assert_true(is_dir(p, NULL));
	FMT(p, sizeof(p), "%s//d1//d2///", dir);
	assert_int_equal(mkdir_p(p, 0755), 0);
	FMT(p, sizeof(p), "%s/d1/d2", dir);
	assert_true(is_dir(p, NULL));

	assert_int_equal(mkdir_p("/", 0755), 0);

	/* A regular file in the way of a component. */
	FMT(p, sizeof(p), "%s/file", dir);
	put(p, "x", 1);
	FMT(p, sizeof(p), "%s/file/sub", dir);
	assert_int_equal(mkdir_p(p, 0755), -ENOTDIR);

	/* Too long for PATH_MAX. */
	{
		char *lng = malloc(PATH_MAX + 10);

		memset(lng, 'a', PATH_MAX + 9);
		lng[0] = '/';
		lng[PATH_MAX + 9] = '\0';
		assert_int_equal(mkdir_p(lng, 0755), -ENAMETOOLONG);
		free(lng);
	}
	umask(old);
}

/* Like `mkdir -p`: an existing non-directory is an error, not success. */
static void mkdir_p_file_exists(void **st)
{
	char dir[PATH_MAX], p[PATH_MAX + 64];

	test_dir("mkdir-file", dir, sizeof(dir));
	FMT(p, sizeof(p), "%s/file", dir);
	put(p, "x", 1);
	assert_int_not_equal(mkdir_p(p, 0755), 0);
	assert_false(is_dir(p, NULL));
}

/* "" names nothing: an error, and nothing is created. */
static void mkdir_p_empty(void **st)
{
	char dir[PATH_MAX], cwd[PATH_MAX];
	int r;

	test_dir("mkdir-empty", dir, sizeof(dir));
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(dir), 0);
	r = mkdir_p("", 0755);
	assert_int_equal(chdir(cwd), 0);
	assert_int_not_equal(r, 0);
	assert_int_equal(tu_count_entries(dir), 0);
}

/* ---- parse_u64 ---- */

static void parse_u64_cases(void **st)
{
	uint64_t v = 77;

	assert_int_equal(parse_u64("0", 0, 10, &v), 0);
	assert_true(v == 0);
	assert_int_equal(parse_u64("10", 0, 10, &v), 0);
	assert_true(v == 10);
	assert_int_equal(parse_u64("007", 0, 10, &v), 0);
	assert_true(v == 7);
	assert_int_equal(parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);

	v = 77;
	/* Bounds are inclusive and enforced. */
	assert_int_equal(parse_u64("11", 0, 10, &v), -1);
	assert_int_equal(parse_u64("4", 5, 10, &v), -1);
	assert_int_equal(parse_u64("5", 5, 10, &v), 0);
	assert_true(v == 5);
	v = 77;

	const char *bad[] = { "-5", "+5", " 5", "5 ", "5x", "x5", "", "0x10", "1e3", "1.0", "-0",
	                      "\t5", "5\n", "99999999999999999999", "18446744073709551616" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (parse_u64(bad[i], 0, UINT64_MAX, &v) != -1)
			fail_msg("parse_u64(\"%s\") accepted", bad[i]);
		assert_true(v == 77);  /* untouched on error */
	}
	assert_int_equal(parse_u64(NULL, 0, 10, &v), -1);
}

/* ---- strlcpy_ok ---- */

static void strlcpy_cases(void **st)
{
	char buf[8];

	memset(buf, 'Z', sizeof(buf));
	assert_true(strlcpy_ok(buf, "1234567", sizeof(buf)));
	assert_string_equal(buf, "1234567");

	memset(buf, 'Z', sizeof(buf));
	assert_false(strlcpy_ok(buf, "12345678", sizeof(buf)));
	assert_string_equal(buf, "1234567");

	assert_false(strlcpy_ok(buf, "a much longer string", 4));
	assert_string_equal(buf, "a m");
	assert_int_equal(buf[4], '5');  /* nothing written past dstlen */

	assert_true(strlcpy_ok(buf, "", sizeof(buf)));
	assert_string_equal(buf, "");

	buf[0] = 'Q';
	assert_false(strlcpy_ok(buf, "x", 0));
	assert_int_equal(buf[0], 'Q');
	assert_false(strlcpy_ok(buf, "x", 1));
	assert_string_equal(buf, "");
}

/* ---- clocks ---- */

static void format_wall_shape(void **st)
{
	char buf[64];
	uint64_t ms = 1700000000123ull;

	memset(buf, 'Z', sizeof(buf));
	format_wall(ms, buf, sizeof(buf));
	/* "YYYY-MM-DD HH:MM:SS.mmm" */
	assert_int_equal(strlen(buf), 23);
	for (int i = 0; i < 23; i++) {
		switch (i) {
		case 4: case 7: assert_int_equal(buf[i], '-'); break;
		case 10: assert_int_equal(buf[i], ' '); break;
		case 13: case 16: assert_int_equal(buf[i], ':'); break;
		case 19: assert_int_equal(buf[i], '.'); break;
		default:
			if (buf[i] < '0' || buf[i] > '9')
				fail_msg("'%s': char %d is not a digit", buf, i);
		}
	}
	assert_string_equal(buf + 20, "123");
	assert_memory_equal(buf, "2023-11-", 8);  /* in every time zone */

	format_wall(5, buf, sizeof(buf));
	assert_string_equal(buf + 19, ".005");

	/* A short buffer is truncated, never overrun. */
	memset(buf, 'Z', sizeof(buf));
	format_wall(ms, buf, 10);
	assert_int_equal(strlen(buf), 9);
	assert_int_equal(buf[10], 'Z');

	/* The current time, as used by the logs. */
	format_wall(wall_ms(), buf, sizeof(buf));
	assert_int_equal(strlen(buf), 23);
	assert_true(buf[0] == '2');
}

static void mono_clock(void **st)
{
	uint64_t a = mono_ms(), prev = a, b, us1, us2;
	struct timespec ts = { 0, 30 * 1000000 };

	for (int i = 0; i < 100000; i++) {
		uint64_t t = mono_ms();

		assert_true(t >= prev);
		prev = t;
	}
	us1 = mono_us();
	nanosleep(&ts, NULL);
	b = mono_ms();
	us2 = mono_us();
	assert_true(b - a >= 30);
	assert_true(b - a < 5000);
	assert_true(us2 - us1 >= 30000);
	/* Both clocks are the same clock. */
	assert_true(us2 / 1000 >= b && us2 / 1000 - b < 1000);
}

static void random_and_fds(void **st)
{
	unsigned char a[64], b[64];
	int p[2];

	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	assert_int_equal(random_bytes(a, sizeof(a)), 0);
	assert_int_equal(random_bytes(b, sizeof(b)), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_int_equal(random_bytes(a, 0), 0);

	assert_int_equal(pipe(p), 0);
	assert_int_equal(set_nonblock(p[0]), 0);
	assert_true(fcntl(p[0], F_GETFL) & O_NONBLOCK);
	assert_int_equal(set_cloexec(p[0]), 0);
	assert_true(fcntl(p[0], F_GETFD) & FD_CLOEXEC);
	close(p[0]);
	close(p[1]);
	assert_int_equal(set_nonblock(p[0]), -1);
	assert_int_equal(set_cloexec(p[0]), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(read_file_missing),
		cmocka_unit_test(read_file_content),
		cmocka_unit_test(read_file_too_big),
		cmocka_unit_test(read_file_exactly_max),
		cmocka_unit_test(write_atomic_basic),
		cmocka_unit_test(write_atomic_concurrent),
		cmocka_unit_test(mkdir_p_cases),
		cmocka_unit_test(mkdir_p_file_exists),
		cmocka_unit_test(mkdir_p_empty),
		cmocka_unit_test(parse_u64_cases),
		cmocka_unit_test(strlcpy_cases),
		cmocka_unit_test(format_wall_shape),
		cmocka_unit_test(mono_clock),
		cmocka_unit_test(random_and_fds),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
