/* Which names are not replicated ([replication] exclude, `vigil-rfs prim
 * --exclude GLOB`). A glob is matched against a file name (fnmatch, no
 * flags), never a path: an object is excluded when its name matches or its
 * directory is excluded. Excluded objects are served like the others but
 * their changes stay on this node. Set once at start, read-only after. */
#ifndef VIGIL_RFS_EXCLUDE_H
#define VIGIL_RFS_EXCLUDE_H

#include <stdbool.h>
#include <stddef.h>

#define RFS_EXCLUDE_MAX 32

/* Checks one glob: 0, or -1 with why set (a '/', empty, too long). */
int rfs_exclude_check(const char *glob, const char **why);
/* Installs the globs (copied). 0 or -1 (logged: a bad glob, too many). */
int rfs_exclude_set(const char *const *globs, size_t n);
bool rfs_excluded_name(const char *name);
size_t rfs_exclude_count(void);

#endif
