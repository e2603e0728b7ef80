/* A recorder's settings directory as the pool uploads it: every regular
 * file under [pool] settings_dir (recording settings, schedules, masks;
 * opaque to vigil), by relative path, with its size and SHA-256.
 *
 * An agent scans at connect and then every few seconds: a file whose size,
 * mtime and inode are unchanged keeps its previous hash, so a rescan reads
 * only what changed. Symbolic links are not followed (a link out of the
 * directory would upload whatever it points at); they, devices, sockets and
 * FIFOs are left out and counted. Disk I/O: the agent runs it off its
 * event loop. */
#ifndef VIGIL_POOL_SETTINGS_SCAN_H
#define VIGIL_POOL_SETTINGS_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pool/names.h"

#define POOL_SFILE_PATH (POOL_PATH_MAX + 1)

struct pool_sfile {
	char path[POOL_SFILE_PATH];     /* relative, '/'-separated */
	char sha256[65];
	uint64_t size;
	int64_t mtime_ns;
	uint64_t ino;
};

/* A settings file with its contents, as uploaded to the master, cached
 * there and pushed to a spare (sha256 is the master's, of data). */
struct pool_file {
	char path[POOL_PATH_MAX + 1];
	char sha256[65];
	unsigned char *data;
	size_t len;
};

/* Frees n files and the array. */
void pool_files_free(struct pool_file *f, size_t n);

struct pool_sset {
	struct pool_sfile *v;           /* sorted by path */
	size_t n;
	size_t skipped;                 /* links and special files left out */
};

struct pool_scan_limits {
	uint64_t file_max;              /* bytes of one file */
	size_t count_max;               /* files in all */
	int depth_max;                  /* directory levels below settings_dir */
};

/* Scans dir into out (prev, if not NULL, lends hashes of unchanged files).
 * -1 with err naming the file when the directory cannot be read, a file is
 * over file_max, there are more than count_max files, a path is too long or
 * not printable ASCII: what is uploaded is the whole directory or nothing. */
int pool_settings_scan(const char *dir, const struct pool_scan_limits *lim, const struct pool_sset *prev,
                       struct pool_sset *out, char *err, size_t errlen);
void pool_sset_free(struct pool_sset *s);

/* What changed from a to b: cb(path, present) for every file new or
 * different in b (present true) and every file of a missing from b
 * (present false), in path order. The count of calls. */
size_t pool_sset_diff(const struct pool_sset *a, const struct pool_sset *b,
                      void (*cb)(const struct pool_sfile *f, bool present, void *arg), void *arg);

#endif
