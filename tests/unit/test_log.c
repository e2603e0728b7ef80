#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"


static char base_dir[PATH_MAX];


static int group_setup(void **st)
{
	/* Only errors reach stderr, so the test output stays quiet. */
	log_init("ut-log", true, LOG_LVL_ERROR);
	return tu_mkdtemp(base_dir, "log");
}

static int group_teardown(void **st)
{
	log_close_files();
	tu_rm_rf(base_dir);
	return 0;
}

/* Every test opens its own directory and closes the files at the end. */
static int teardown(void **st)
{
	log_close_files();
	return 0;
}

static void open_in(const char *name, size_t max_bytes, char *dir, size_t len)
{
	FMT(dir, len, "%s/%s", base_dir, name);
	assert_int_equal(log_open_files(dir, max_bytes), 0);
}

/* Contents of dir/file, "" if it does not exist. Caller frees. */
static char *slurp(const char *dir, const char *file)
{
	char path[PATH_MAX + 64], *buf = NULL;
	int r;

	FMT(path, sizeof(path), "%s/%s", dir, file);
	r = read_file(path, 64 << 20, &buf, NULL);
	if (r == -ENOENT)
		return strdup("");
	assert_int_equal(r, 0);
	return buf;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static int count_substr(const char *s, const char *needle)
{
	int n = 0;

	for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static off_t file_size(const char *dir, const char *file)
{
	char path[PATH_MAX + 64];
	struct stat sb;

	FMT(path, sizeof(path), "%s/%s", dir, file);
	if (stat(path, &sb) != 0)
		return -1;
	return sb.st_size;
}

/* The line of s that contains needle, checked for "STAMP " in front. */
static void assert_stamped_line(const char *s, const char *needle, const char *expect_after_stamp)
{
	const char *hit = strstr(s, needle), *bol;
	size_t n;

	if (!hit)
		fail_msg("'%s' not found in:\n%s", needle, s);
	for (bol = hit; bol > s && bol[-1] != '\n'; bol--)
		;
	/* "YYYY-MM-DD HH:MM:SS.mmm " */
	n = strcspn(bol, "\n");
	assert_true(n > 24);
	assert_true(bol[4] == '-' && bol[10] == ' ' && bol[19] == '.' && bol[23] == ' ');
	if (expect_after_stamp && strncmp(bol + 24, expect_after_stamp, strlen(expect_after_stamp)))
		fail_msg("line '%.*s' does not continue with '%s'", (int)n, bol, expect_after_stamp);
}

static void levels_and_files(void **st)
{
	char dir[PATH_MAX];
	char *mod, *verb, *app, *cmd;

	open_in("levels", 1 << 20, dir, sizeof(dir));
	log_info("info-marker %d", 1);
	log_warn("warn-marker");
	log_debug("debug-marker");
	log_app("res-web", "app-line-marker");
	log_command("stop from 127.0.0.1: ok cmd-marker");
	log_close_files();

	mod = slurp(dir, "module.log");
	verb = slurp(dir, "module-verbose.log");
	app = slurp(dir, "application.log");
	cmd = slurp(dir, "commands.log");

	assert_stamped_line(mod, "info-marker 1", "info  info-marker 1\n");
	assert_stamped_line(mod, "warn-marker", "warn  warn-marker\n");
	assert_null(strstr(mod, "debug-marker"));
	assert_stamped_line(mod, "cmd-marker", "info  command: stop from 127.0.0.1: ok cmd-marker\n");
	/* Script output is for the verbose log, not the short one. */
	assert_null(strstr(mod, "app-line-marker"));

	assert_stamped_line(verb, "info-marker 1", "info  info-marker 1\n");
	assert_stamped_line(verb, "warn-marker", "warn  warn-marker\n");
	assert_stamped_line(verb, "debug-marker", "debug debug-marker\n");
	assert_stamped_line(verb, "app-line-marker", "debug [app] res-web: app-line-marker\n");

	assert_stamped_line(app, "app-line-marker", "res-web: app-line-marker\n");
	assert_int_equal(count_lines(app), 1);
	assert_null(strstr(app, "info-marker"));

	assert_stamped_line(cmd, "cmd-marker", "stop from 127.0.0.1: ok cmd-marker\n");
	assert_int_equal(count_lines(cmd), 1);
	assert_null(strstr(cmd, "info-marker"));

	/* Order is kept. */
	assert_true(strstr(verb, "info-marker") < strstr(verb, "warn-marker"));
	assert_true(strstr(verb, "warn-marker") < strstr(verb, "debug-marker"));

	free(mod);
	free(verb);
	free(app);
	free(cmd);
}

static void newlines_stay_one_line(void **st)
{
	char dir[PATH_MAX];
	char *mod, *app, *cmd;

	open_in("newline", 1 << 20, dir, sizeof(dir));
	log_info("first\nsecond\r\nthird");
	log_app("src", "out1\nforged 2026-01-01 00:00:00.000 error x");
	log_command("cmd\nline2");
	log_close_files();

	mod = slurp(dir, "module.log");
	app = slurp(dir, "application.log");
	cmd = slurp(dir, "commands.log");
	assert_int_equal(count_lines(mod), 2);  /* the info and the command */
	assert_stamped_line(mod, "first", "info  first second  third\n");
	assert_int_equal(count_lines(app), 1);
	assert_stamped_line(app, "out1", "src: out1 forged");
	assert_int_equal(count_lines(cmd), 1);
	assert_stamped_line(cmd, "cmd", "cmd line2\n");
	free(mod);
	free(app);
	free(cmd);
}

static void long_message_truncated(void **st)
{
	char dir[PATH_MAX], *big, *mod;

	big = malloc(10000);
	memset(big, 'L', 9999);
	big[9999] = '\0';
	open_in("long", 1 << 20, dir, sizeof(dir));
	log_info("%s", big);
	log_info("after-long");
	log_close_files();
	mod = slurp(dir, "module.log");
	assert_int_equal(count_lines(mod), 2);
	assert_true(strlen(mod) < 4096);
	assert_non_null(strstr(mod, "after-long"));
	free(mod);
	free(big);
}

static void rotation(void **st)
{
	char dir[PATH_MAX], *cur, *old;
	char pad[100];
	const int n = 300;

	memset(pad, 'p', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	open_in("rotate", 4096, dir, sizeof(dir));
	for (int i = 0; i < n; i++)
		log_info("rot %04d %s", i, pad);
	log_close_files();

	/* ~40 KB went through a 4 KB limit. */
	assert_true(file_size(dir, "module.log") > 0);
	assert_true(file_size(dir, "module.log") <= 4096);
	assert_true(file_size(dir, "module.log.1") > 0);
	assert_true(file_size(dir, "module.log.1") <= 4096);
	assert_true(file_size(dir, "module-verbose.log") <= 4096);
	assert_true(file_size(dir, "module-verbose.log.1") > 0);
	/* Only the one old generation is kept. */
	assert_int_equal(file_size(dir, "module.log.2"), -1);

	cur = slurp(dir, "module.log");
	old = slurp(dir, "module.log.1");
	/* The newest line is in the current file, the one before the current
	 * file's first line ends the old file: nothing lost at the switch. */
	assert_non_null(strstr(cur, "rot 0299 "));
	{
		int first = atoi(strstr(cur, "rot ") + 4), last_old;
		const char *p = old, *q;

		while ((q = strstr(p, "rot ")))
			p = q + 4;
		last_old = atoi(p);
		assert_int_equal(last_old + 1, first);
	}
	/* Whole lines only. */
	assert_int_equal(cur[strlen(cur) - 1], '\n');
	assert_int_equal(old[strlen(old) - 1], '\n');
	assert_int_equal(count_lines(cur), count_substr(cur, "rot "));
	free(cur);
	free(old);

	/* Reopening continues with the sizes on disk: still bounded. */
	open_in("rotate", 4096, dir, sizeof(dir));
	for (int i = 0; i < 50; i++)
		log_info("again %04d %s", i, pad);
	log_close_files();
	assert_true(file_size(dir, "module.log") <= 4096);
	cur = slurp(dir, "module.log");
	assert_non_null(strstr(cur, "again 0049 "));
	free(cur);
}

static void close_flushes_everything(void **st)
{
	char dir[PATH_MAX], *verb;
	const int n = 5000;  /* below the queue size: nothing may be dropped */
	char needle[32];

	open_in("flush", 64 << 20, dir, sizeof(dir));
	for (int i = 0; i < n; i++)
		log_debug("flush %05d", i);
	log_close_files();
	verb = slurp(dir, "module-verbose.log");
	assert_int_equal(count_lines(verb), n);
	FMT(needle, sizeof(needle), "flush %05d\n", n - 1);
	assert_non_null(strstr(verb, needle));
	assert_null(strstr(verb, "dropped"));
	/* In order. */
	{
		const char *p = verb;

		for (int i = 0; i < n; i++) {
			FMT(needle, sizeof(needle), "flush %05d\n", i);
			p = strstr(p, needle);
			if (!p)
				fail_msg("line %d missing or out of order", i);
		}
	}
	free(verb);

	/* Nothing is written once closed. */
	log_info("after-close");
	verb = slurp(dir, "module-verbose.log");
	assert_null(strstr(verb, "after-close"));
	free(verb);
}

static void file_paths(void **st)
{
	char dir[PATH_MAX], want[PATH_MAX + 64];

	assert_null(log_file_path(LOGF_MODULE));
	open_in("paths", 1 << 20, dir, sizeof(dir));
	FMT(want, sizeof(want), "%s/module.log", dir);
	assert_string_equal(log_file_path(LOGF_MODULE), want);
	FMT(want, sizeof(want), "%s/module-verbose.log", dir);
	assert_string_equal(log_file_path(LOGF_MODULE_VERBOSE), want);
	FMT(want, sizeof(want), "%s/application.log", dir);
	assert_string_equal(log_file_path(LOGF_APPLICATION), want);
	FMT(want, sizeof(want), "%s/commands.log", dir);
	assert_string_equal(log_file_path(LOGF_COMMANDS), want);
	assert_null(log_file_path(LOGF_COUNT));
	/* Files exist as soon as they are opened. */
	assert_true(file_size(dir, "application.log") == 0);
	assert_true(file_size(dir, "commands.log") == 0);
	log_close_files();
	assert_null(log_file_path(LOGF_MODULE));
}

static void open_errors(void **st)
{
	char path[PATH_MAX + 64];
	int fd;

	/* The directory cannot be created: a regular file is in the way. */
	FMT(path, sizeof(path), "%s/blocker", base_dir);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	FMT(path, sizeof(path), "%s/blocker/sub", base_dir);
	assert_int_equal(log_open_files(path, 1 << 20), -1);
	assert_null(log_file_path(LOGF_MODULE));
}

static void names(void **st)
{
	assert_string_equal(log_level_str(LOG_LVL_ERROR), "error");
	assert_string_equal(log_level_str(LOG_LVL_WARN), "warn");
	assert_string_equal(log_level_str(LOG_LVL_INFO), "info");
	assert_string_equal(log_level_str(LOG_LVL_DEBUG), "debug");
	assert_string_equal(log_level_str((enum log_level)42), "?");
	assert_string_equal(log_file_str(LOGF_MODULE), "module");
	assert_string_equal(log_file_str(LOGF_MODULE_VERBOSE), "module-verbose");
	assert_string_equal(log_file_str(LOGF_APPLICATION), "application");
	assert_string_equal(log_file_str(LOGF_COMMANDS), "commands");
	assert_string_equal(log_file_str(LOGF_COUNT), "?");
}

/* In the foreground, lines up to max_level go to stderr with the ident. */
static void stderr_output(void **st)
{
	char path[PATH_MAX + 64], *buf;
	int fd, saved;

	FMT(path, sizeof(path), "%s/stderr.txt", base_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	close(fd);
	log_init("ut-ident", true, LOG_LVL_WARN);
	log_warn("to-stderr-warn");
	log_error("to-stderr-error\nsecond");
	log_info("not-to-stderr");
	log_debug("not-to-stderr-either");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	log_init("ut-log", true, LOG_LVL_ERROR);

	assert_int_equal(read_file(path, 1 << 20, &buf, NULL), 0);
	assert_int_equal(count_lines(buf), 2);
	assert_non_null(strstr(buf, " ut-ident: warn  to-stderr-warn\n"));
	assert_non_null(strstr(buf, " ut-ident: error to-stderr-error second\n"));
	assert_null(strstr(buf, "not-to-stderr"));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names),
		cmocka_unit_test_teardown(file_paths, teardown),
		cmocka_unit_test_teardown(levels_and_files, teardown),
		cmocka_unit_test_teardown(newlines_stay_one_line, teardown),
		cmocka_unit_test_teardown(long_message_truncated, teardown),
		cmocka_unit_test_teardown(rotation, teardown),
		cmocka_unit_test_teardown(close_flushes_everything, teardown),
		cmocka_unit_test_teardown(open_errors, teardown),
		cmocka_unit_test(stderr_output),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
