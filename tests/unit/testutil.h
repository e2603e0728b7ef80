/* Helpers shared by the unit tests: a temporary directory per test group,
 * counting what is in a directory, and an event loop that cannot hang a test. Header-only: each test is its
 * own executable. */
#ifndef VIGIL_TESTUTIL_H
#define VIGIL_TESTUTIL_H

#define _XOPEN_SOURCE_EXTENDED 1
#include <dirent.h>
#include <event2/event.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"

/* Paths built here always fit; checking the result also says so to gcc. */
#define FMT(buf, len, ...) assert_true(snprintf((buf), (len), __VA_ARGS__) < (int)(len))

static inline int tu_rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)flag; (void)f;
	return remove(p);
}

/* Creates $TMPDIR/vigil-ut-NAME-XXXXXX into dir; 0 or -1. */
static inline int tu_mkdtemp(char dir[PATH_MAX], const char *name)
{
	const char *tmp = getenv("TMPDIR");

	if (snprintf(dir, PATH_MAX, "%s/vigil-ut-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", name) >= PATH_MAX)
		return -1;
	return mkdtemp(dir) ? 0 : -1;
}

static inline void tu_rm_rf(const char *dir)
{
	nftw(dir, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Entries of dir other than . and ..: tests check that no temporary file
 * is left behind. */
static inline int tu_count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

typedef bool (*pred_fn)(void *arg);

/* Runs the loop in short slices until pred holds or timeout_ms passes, so
 * a bug cannot hang the test. With pred NULL, runs for timeout_ms. */
static inline bool run_until(struct event_base *base, pred_fn pred, void *arg, uint32_t timeout_ms)
{
	uint64_t end = mono_ms() + timeout_ms;

	while (!pred || !pred(arg)) {
		struct timeval tv = { 0, 5000 };

		if (mono_ms() >= end)
			return pred == NULL;
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	return true;
}

static inline void run_for(struct event_base *base, uint32_t ms)
{
	run_until(base, NULL, NULL, ms);
}

#endif
