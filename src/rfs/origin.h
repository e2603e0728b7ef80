/* Where SECOND has an object that PRIM renamed while SECOND was away: its
 * first old path (relative to the dir's root) since the copies were last
 * equal, per (dir, ino). Kept in memory only (a PRIM restart forgets them,
 * and renamed objects are then sent whole); a hint checked by block hashes,
 * never trusted (docs/design/rfs.md §5.6, rename matching). Not
 * thread-safe: record.c holds its mutex around every call. */
#ifndef VIGIL_RFS_ORIGIN_H
#define VIGIL_RFS_ORIGIN_H

#include <stddef.h>
#include <stdint.h>

#define ORIGIN_MAX 65536                /* objects; past it, renames go whole */

struct origin_map;

struct origin_map *origin_new(void);
void origin_free(struct origin_map *m);
/* Notes path for (dir, ino) unless it has one already (the first rename is
 * where SECOND has it). 1 noted, 0 kept the older one, -1 full or out of
 * memory (the object is then sent whole). */
int origin_note(struct origin_map *m, uint8_t dir, uint64_t ino, const char *path);
/* The path noted for (dir, ino), or NULL. Valid until the next change. */
const char *origin_get(const struct origin_map *m, uint8_t dir, uint64_t ino);
void origin_clear(struct origin_map *m);
size_t origin_count(const struct origin_map *m);

struct origin_entry {
	uint8_t dir;
	uint64_t ino;
	char *path;                     /* owned by the caller */
};
/* A copy of every entry, deepest paths first (a STASH of a directory must
 * come after those of objects under it): *out malloc'd, free each path and
 * the array with origin_list_free. -1 out of memory. */
int origin_list(const struct origin_map *m, struct origin_entry **out, size_t *n);
void origin_list_free(struct origin_entry *l, size_t n);

#endif
