/* Reintegration, first pass: the walk of each dir's tree (contract in
 * resync.h). It sends every object's name and attributes in parent-first
 * order, decides from PRIM's record what SECOND has, and remembers the
 * files whose data the second pass (resync.c) sends or compares. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "rfs/exclude.h"
#include "rfs/record.h"
#include "rfs/resync_int.h"
#include "rfs/stream_int.h"

/* Set of multi-link inodes: true if it was already there. */
static bool link_seen(struct rfs_resync *r, uint64_t k)
{
	size_t i;

	if (2 * (r->nlinks + 1) > r->links_cap) {
		size_t cap = r->links_cap ? r->links_cap * 2 : 1024;
		uint64_t *n = calloc(cap, sizeof(*n));

		if (!n)
			return false;   /* then a LINK becomes a CREATE: SECOND reports EEXIST-free copy */
		for (size_t j = 0; j < r->links_cap; j++)
			if (r->links[j]) {
				for (i = hash(r->links[j], cap); n[i]; i = (i + 1) & (cap - 1))
					;
				n[i] = r->links[j];
			}
		free(r->links);
		r->links = n;
		r->links_cap = cap;
	}
	for (i = hash(k, r->links_cap); r->links[i]; i = (i + 1) & (r->links_cap - 1))
		if (r->links[i] == k)
			return true;
	r->links[i] = k;
	r->nlinks++;
	return false;
}

static uint16_t nlen(const char *s)
{
	return (uint16_t)strnlen(s, WIRE_NAME_MAX + 1);
}

/* The attributes a copy must end with (owner before mode: chown clears
 * set-id bits). For a directory it also ends the walk's listing of it
 * (SECOND removes what was not listed). */
void rfs_resync_attrs(uint8_t dir, uint64_t fid, const struct stat *st)
{
	struct wire_op w = { .code = WIRE_OP_SETATTR, .dir = dir, .fid = fid,
	                     .flags = S_ISDIR(st->st_mode) ? WIRE_OPF_RESYNC : 0,
	                     .arg = WIRE_ATTR_MODE | WIRE_ATTR_UID | WIRE_ATTR_GID | WIRE_ATTR_ATIME |
	                            WIRE_ATTR_MTIME,
	                     .mode = st->st_mode & 07777, .uid = st->st_uid, .gid = st->st_gid,
	                     .atime_ns = rfs_ns_of(&st->st_atim), .mtime_ns = rfs_ns_of(&st->st_mtim) };

	rfs_stream_ship(&w, 1, false, false);
}

/* Bytes of the ranges that lie within size. */
static uint64_t ranges_bytes(const struct dirty_ival *iv, uint32_t n, uint64_t size)
{
	uint64_t b = 0;

	for (uint32_t i = 0; i < n; i++)
		if (iv[i].start < size)
			b += (iv[i].end < size ? iv[i].end : size) - iv[i].start;
	return b;
}

/* iv (taken over, may be NULL): only these ranges go; NULL: the whole file. */
static int remember(struct rfs_resync *r, uint8_t dir, uint64_t fid, int dirfd, const char *name,
                    uint64_t size, struct dirty_ival *iv, uint32_t niv, bool verify)
{
	struct file_handle *fh = malloc(sizeof(*fh) + MAX_HANDLE);
	int mount_id;

	if (!fh) {
		free(iv);
		return -1;
	}
	fh->handle_bytes = MAX_HANDLE;
	if (name_to_handle_at(dirfd, name, fh, &mount_id, 0) < 0) {
		log_error("resync: %s: no file handle: %s", name, strerror(errno));
		free(fh);
		free(iv);
		return -1;
	}
	if (r->nfiles == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 1024;
		struct file_rec *n = realloc(r->files, cap * sizeof(*n));

		if (!n) {
			free(fh);
			free(iv);
			return -1;
		}
		r->files = n;
		r->cap = cap;
	}
	r->files[r->nfiles++] = (struct file_rec){ .dir = dir, .fid = fid, .fh = fh, .iv = iv,
	                                           .niv = iv ? niv : 0, .verify = verify };
	r->total += iv ? ranges_bytes(iv, niv, size) : size;
	return 0;
}

/* Incremental: what the record says of an object at the walk's start.
 * 1: new to SECOND or not known to be what SECOND has (WHOLE; UNSURE for
 * anything but a directory or a regular file with one link): sent whole.
 * 2: a regular file with one link whose changes may be unrecorded (UNSURE:
 * hot at a crash): it goes with MAYBE and is compared by block hashes.
 * 0: SECOND has it, *iv and *niv
 * its changed ranges if any, and *unsure_dir if it is a directory whose
 * names PRIM may not have recorded (a crash: its entries go with MAYBE).
 * -1 out of memory. HOT alone says nothing here: it guards changes in
 * flight, which are in the ranges already. */
static int recorded(uint8_t dir, const struct stat *st, struct dirty_ival **iv, uint32_t *niv,
                    bool *unsure_dir)
{
	struct rfs_record_file rf;
	int r = rfs_record_get(dir, st->st_ino, &rf);
	bool is_dir = S_ISDIR(st->st_mode);

	*iv = NULL;
	*niv = 0;
	*unsure_dir = false;
	if (r < 0)
		return -1;
	if (r == 1)
		return 0;
	if (!(rf.flags & DIRTY_WHOLE) && (rf.flags & DIRTY_UNSURE) && S_ISREG(st->st_mode) &&
	    st->st_nlink == 1) {
		free(rf.iv);
		return 2;
	}
	if ((rf.flags & DIRTY_WHOLE) || ((rf.flags & DIRTY_UNSURE) && !is_dir)) {
		free(rf.iv);
		return 1;
	}
	*unsure_dir = is_dir && (rf.flags & DIRTY_UNSURE);
	*iv = rf.iv;
	*niv = rf.n;
	return 0;
}

static bool has_origin(struct rfs_resync *r, uint8_t d, uint64_t ino);

/* fresh: this directory is new to SECOND, so is everything under it.
 * maybe: PRIM may not have recorded every change of its names (its
 * entries go with MAYBE). suspect: it is what SECOND had under another
 * name (rename matching), so nothing in it is trusted: entries go with
 * MAYBE and files are compared by block hashes, as for sync full. */
static int walk_dir(struct rfs_resync *r, uint8_t d, int dirfd, uint64_t dir_ino, int depth,
                    bool fresh, bool maybe, bool suspect)
{
	int lfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dp = lfd >= 0 ? fdopendir(lfd) : NULL;
	struct dirent *de;
	int rc = 0;

	if (!dp) {
		if (lfd >= 0)
			close(lfd);
		rfs_stream_unsure_why("resync: cannot list a directory: %s", strerror(errno));
		return -1;
	}
	if (depth > PATH_MAX / 2) {
		closedir(dp);
		rfs_stream_unsure_why("resync: directories nested too deep");
		return -1;
	}
	while (rc == 0 && (de = readdir(dp))) {
		const char *name = de->d_name;
		struct stat st;
		char target[WIRE_TARGET_MAX + 1];
		struct dirty_ival *iv = NULL;
		uint32_t niv = 0;
		bool new_here = fresh || !r->incremental, unsure_dir = false, verify = false;
		bool origin = false;

		if (!strcmp(name, ".") || !strcmp(name, "..") || rfs_excluded_name(name))
			continue;
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 &&
		    link_seen(r, key_of(d, st.st_ino))) {
			struct wire_op l = { .code = WIRE_OP_LINK, .dir = d, .fid = st.st_ino,
			                     .flags = WIRE_OPF_RESYNC, .arg = dir_ino, .name = name,
			                     .name_len = nlen(name) };

			rfs_stream_ship(&l, 1, false, false);
			continue;
		}
		if (!new_here && (r->verify_all || suspect)) {
			/* Hard links go whole: MAYBE keeps single-link files only. */
			new_here = S_ISREG(st.st_mode) && st.st_nlink > 1;
			verify = S_ISREG(st.st_mode) && !new_here;
			unsure_dir = S_ISDIR(st.st_mode);
		} else if (!new_here) {
			int k = recorded(d, &st, &iv, &niv, &unsure_dir);

			if (k < 0) {
				rfs_stream_unsure_why("resync: out of memory");
				rc = -1;
				break;
			}
			new_here = k == 1;
			verify = k == 2;
			if (k == 1 && (S_ISDIR(st.st_mode) || (S_ISREG(st.st_mode) && st.st_nlink == 1)))
				origin = has_origin(r, d, st.st_ino);
		}
		{
			struct wire_op c = { .code = WIRE_OP_CREATE, .dir = d, .fid = st.st_ino,
			                     .flags = WIRE_OPF_RESYNC | (origin ? WIRE_OPF_ORIGIN : 0) |
			                              (new_here ? WIRE_OPF_FRESH :
			                               maybe || verify ? WIRE_OPF_MAYBE : 0),
			                     .arg = dir_ino, .mode = st.st_mode, .uid = st.st_uid,
			                     .gid = st.st_gid, .mtime_ns = rfs_ns_of(&st.st_mtim),
			                     .name = name, .name_len = nlen(name) };

			if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
				c.rdev = st.st_rdev;
			if (S_ISLNK(st.st_mode)) {
				ssize_t n = readlinkat(dirfd, name, target, sizeof(target) - 1);

				if (n <= 0) {
					free(iv);
					continue;
				}
				target[n] = 0;
				c.name2 = target;
				c.name2_len = (uint16_t)n;
			}
			rfs_stream_ship(&c, 1, false, false);
		}
		if (S_ISLNK(st.st_mode)) {
			free(iv);
			continue;
		}
		{
			int ofd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

			if (ofd < 0) {
				free(iv);
				continue;
			}
			rfs_ship_xattrs(d, st.st_ino, ofd);
			if (S_ISDIR(st.st_mode)) {
				free(iv);
				rc = walk_dir(r, d, ofd, st.st_ino, depth + 1, new_here && !origin,
				              unsure_dir || origin, suspect || origin);
				/* Post-order: its entries are in, its times final. */
				rfs_resync_attrs(d, st.st_ino, &st);
			} else if (S_ISREG(st.st_mode) && !new_here && !niv && !verify) {
				/* SECOND has it, data unchanged. Under MAYBE the name
				 * may hold an older file there, or none: this one was
				 * never written since (or it would be in the record),
				 * so its size says it all. */
				free(iv);
				r->kept++;
				if (maybe) {
					struct wire_op t = { .code = WIRE_OP_TRUNCATE, .dir = d,
					                     .fid = st.st_ino, .arg = (uint64_t)st.st_size };

					rfs_stream_ship(&t, 1, false, false);
				}
				rfs_resync_attrs(d, st.st_ino, &st);
			} else if (S_ISREG(st.st_mode)) {
				if (remember(r, d, st.st_ino, dirfd, name, (uint64_t)st.st_size,
				             new_here || verify ? NULL : iv, niv, verify || origin) < 0) {
					rfs_stream_unsure_why("resync: cannot keep track of %s", name);
					rc = -1;
				}
				if (new_here || verify)
					free(iv);
			} else {
				free(iv);
				rfs_resync_attrs(d, st.st_ino, &st);
			}
			close(ofd);
		}
	}
	closedir(dp);
	return rc;
}

static int build_map(struct rfs_resync *r)
{
	size_t cap = 1024;

	while (cap < 2 * r->nfiles + 2)
		cap *= 2;
	r->map = calloc(cap, sizeof(*r->map));
	if (!r->map)
		return -1;
	r->map_cap = cap;
	for (size_t i = 0; i < r->nfiles; i++) {
		size_t j = hash(key_of(r->files[i].dir, r->files[i].fid), cap);

		while (r->map[j])
			j = (j + 1) & (cap - 1);
		r->map[j] = i + 1;
	}
	return 0;
}

/* Rename matching: objects renamed while SECOND was away may still be
 * there under their old names; each is stashed there before the walk
 * (deepest first: a directory's stash takes what is under it along), and
 * the walk's CREATE with ORIGIN takes it back under the new name. */
static int stash_origins(struct rfs_resync *r)
{
	struct origin_entry *l;
	size_t n;

	if (rfs_record_origins(&l, &n) < 0) {
		rfs_stream_unsure_why("resync: out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(l[i].path);
		struct wire_op s = { .code = WIRE_OP_STASH, .dir = l[i].dir, .fid = l[i].ino,
		                     .name = l[i].path, .name_len = (uint16_t)len };

		if (l[i].dir < r->n && wire_path_check(s.name, len) == WIRE_OK)
			rfs_stream_ship(&s, 1, false, false);
	}
	if (n)
		log_info("resync: %zu renamed objects may be found on SECOND under their old names", n);
	r->origins = n;
	origin_list_free(l, n);
	return 0;
}

static bool has_origin(struct rfs_resync *r, uint8_t d, uint64_t ino)
{
	char p[WIRE_TARGET_MAX + 1];

	return r->origins && rfs_record_origin(d, ino, p, sizeof(p)) == 1;
}

/* The root's own record: whether its names go with MAYBE. */
static bool root_unsure(const struct rfs_resync *r, uint8_t d, uint64_t ino)
{
	struct rfs_record_file rf;
	bool u;

	if (r->verify_all)
		return true;
	if (!r->incremental || rfs_record_get(d, ino, &rf) != 0)
		return false;
	u = rf.flags & DIRTY_UNSURE;
	free(rf.iv);
	return u;
}

int rfs_resync_walk(struct rfs_resync *r)
{
	if (r->incremental && !r->verify_all && stash_origins(r) < 0)
		return -1;
	for (int d = 0; d < r->n; d++) {
		struct stat st;

		if (fstatat(r->root[d], "", &st, AT_EMPTY_PATH) < 0 ||
		    walk_dir(r, (uint8_t)d, r->root[d], st.st_ino, 0, false,
		             root_unsure(r, (uint8_t)d, st.st_ino), false) < 0)
			return -1;
		rfs_ship_xattrs((uint8_t)d, st.st_ino, r->root[d]);
		rfs_resync_attrs((uint8_t)d, st.st_ino, &st);
	}
	if (build_map(r) < 0) {
		rfs_stream_unsure_why("resync: out of memory");
		return -1;
	}
	if (r->incremental)
		log_info("resync: incremental: %zu files changed (%zu unchanged), %" PRIu64
		         " bytes to copy", r->nfiles, r->kept, r->total);
	else
		log_info("resync: %zu files, %" PRIu64 " bytes to copy", r->nfiles, r->total);
	return 0;
}
