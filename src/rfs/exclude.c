/* Excluded names (contract in exclude.h). */
#include "rfs/exclude.h"

#include <fnmatch.h>
#include <string.h>

#include "common/log.h"

#define GLOB_MAX 255

static char globs[RFS_EXCLUDE_MAX][GLOB_MAX + 1];
static size_t nglobs;

int rfs_exclude_check(const char *glob, const char **why)
{
	if (!glob[0])
		*why = "empty pattern";
	else if (strlen(glob) > GLOB_MAX)
		*why = "longer than 255 bytes";
	else if (strchr(glob, '/'))
		*why = "patterns match file names, not paths: no '/' allowed";
	else
		return 0;
	return -1;
}

int rfs_exclude_set(const char *const *g, size_t n)
{
	const char *why;

	if (n > RFS_EXCLUDE_MAX) {
		log_error("exclude: %zu patterns; at most %d", n, RFS_EXCLUDE_MAX);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (rfs_exclude_check(g[i], &why) < 0) {
			log_error("exclude '%s': %s", g[i], why);
			return -1;
		}
		strcpy(globs[i], g[i]);
	}
	nglobs = n;
	return 0;
}

bool rfs_excluded_name(const char *name)
{
	for (size_t i = 0; i < nglobs; i++)
		if (fnmatch(globs[i], name, 0) == 0)
			return true;
	return false;
}

size_t rfs_exclude_count(void)
{
	return nglobs;
}
