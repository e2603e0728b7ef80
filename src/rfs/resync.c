/* Reintegration: full copy, or incremental from the record (contract in
 * resync.h). */
#include "rfs/resync.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/falloc.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "rfs/exclude.h"
#include "rfs/hash.h"
#include "rfs/record.h"
#include "rfs/stream.h"
#include "rfs/stream_int.h"

#define MAX_HANDLE 128
#define HASHES_PER_CHUNK (WIRE_DATA_MAX / RFS_HASH_BLOCK)
/* An answer that does not come: the link is as good as lost. */
#define HASH_WAIT_MS 60000
/* The copy's chunks in the send queue at most, so a reintegration does not
 * fill the whole queue (memory; the application's changes wait behind it). */
#define RESYNC_QUEUE_MAX (8u << 20)

struct file_rec {
	uint8_t dir;
	bool done;
	bool unbind_deferred;
	uint64_t fid;
	struct file_handle *fh;
	uint32_t niv;                   /* 0: the whole file; else only these ranges */
	struct dirty_ival *iv;
	bool verify;                    /* compared by block hashes, then what differs */
};

struct rfs_resync {
	int root[RFS_MAX_DIRS];
	int n;
	struct file_rec *files;
	size_t nfiles, cap;
	uint64_t *links;                /* (dir, ino) keys of multi-link inodes seen: open addressing */
	size_t nlinks, links_cap;
	size_t *map;                    /* fid -> files index + 1, open addressing, after the walk */
	size_t map_cap;
	pthread_mutex_t lock;           /* done, unbind_deferred, cmp */
	pthread_cond_t answered;        /* cmp.got grew */
	struct {                        /* the file being compared */
		uint8_t dir;
		uint64_t fid;
		uint32_t chunks, got;
		uint8_t *mine, *theirs; /* HASHES_PER_CHUNK hashes per chunk */
		uint32_t *len;          /* bytes hashed in each chunk (0: none) */
		bool *have;             /* theirs arrived */
	} cmp;
	uint64_t total, queued;
	char *buf;
	bool incremental;
	bool verify_all;                /* sync full: nothing trusted, everything compared */
	size_t origins;                 /* STASH ops sent before the walk */
	size_t kept;                    /* regular files SECOND has already (incremental) */
	size_t verified;                /* files compared by block hashes */
	uint64_t matched;               /* their bytes found equal there */
};

static uint64_t key_of(uint8_t dir, uint64_t ino)
{
	return ino ^ ((uint64_t)dir << 56);
}

static size_t hash(uint64_t k, size_t cap)
{
	return (size_t)((k * 0x9e3779b97f4a7c15ull) >> 20) & (cap - 1);
}

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

struct rfs_resync *rfs_resync_new(const int *root_fd, int ndirs, bool incremental, bool verify)
{
	struct rfs_resync *r = calloc(1, sizeof(*r));

	if (!r || !(r->buf = malloc(WIRE_DATA_MAX))) {
		free(r);
		log_error("resync: out of memory");
		return NULL;
	}
	/* open_by_handle_at wants a real descriptor of the file system, not
	 * an O_PATH one. */
	for (int d = 0; d < ndirs; d++) {
		r->root[d] = openat(root_fd[d], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (r->root[d] < 0) {
			log_error("resync: opening dir %d: %s", d, strerror(errno));
			while (d--)
				close(r->root[d]);
			free(r->buf);
			free(r);
			return NULL;
		}
	}
	r->n = ndirs;
	r->incremental = incremental;
	r->verify_all = incremental && verify;
	pthread_mutex_init(&r->lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&r->answered, &ca);
		pthread_condattr_destroy(&ca);
	}
	return r;
}

void rfs_resync_free(struct rfs_resync *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nfiles; i++) {
		free(r->files[i].fh);
		free(r->files[i].iv);
	}
	for (int d = 0; d < r->n; d++)
		close(r->root[d]);
	free(r->files);
	free(r->links);
	free(r->map);
	free(r->buf);
	pthread_cond_destroy(&r->answered);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static uint16_t nlen(const char *s)
{
	return (uint16_t)strnlen(s, WIRE_NAME_MAX + 1);
}

/* The attributes a copy must end with (owner before mode: chown clears
 * set-id bits). For a directory it also ends the walk's listing of it
 * (SECOND removes what was not listed). */
static void attrs(uint8_t dir, uint64_t fid, const struct stat *st)
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
				attrs(d, st.st_ino, &st);
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
				attrs(d, st.st_ino, &st);
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
				attrs(d, st.st_ino, &st);
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
		attrs((uint8_t)d, st.st_ino, &st);
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

bool rfs_resync_defer_unbind(struct rfs_resync *r, uint8_t dir, uint64_t fid)
{
	bool taken = false;

	if (!r || !r->map)
		return false;
	pthread_mutex_lock(&r->lock);
	for (size_t j = hash(key_of(dir, fid), r->map_cap); r->map[j]; j = (j + 1) & (r->map_cap - 1)) {
		struct file_rec *f = &r->files[r->map[j] - 1];

		if (f->dir == dir && f->fid == fid) {
			if (!f->done) {
				f->unbind_deferred = true;
				taken = true;
			}
			break;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return taken;
}

static void finish_file(struct rfs_resync *r, struct file_rec *f)
{
	bool unbind;

	pthread_mutex_lock(&r->lock);
	f->done = true;
	unbind = f->unbind_deferred;
	pthread_mutex_unlock(&r->lock);
	if (unbind) {
		struct wire_op u = { .code = WIRE_OP_UNBIND, .dir = f->dir, .fid = f->fid };

		rfs_stream_ship(&u, 1, false, false);
	}
}

/* Space allocated but never written (fallocate, also past the end of the
 * file) reads as a hole, so the chunks do not carry it: ship it as
 * FALLOCATE KEEP_SIZE, found with FIEMAP. Best effort: a file system
 * without FIEMAP just gets a sparser copy. */
static void preallocated(struct file_rec *f, int fd)
{
	enum { N = 64 };
	union {
		struct fiemap fm;
		char raw[sizeof(struct fiemap) + N * sizeof(struct fiemap_extent)];
	} u;
	uint64_t start = 0;

	for (;;) {
		memset(&u, 0, sizeof(u));
		u.fm.fm_start = start;
		u.fm.fm_length = FIEMAP_MAX_OFFSET - start;
		u.fm.fm_extent_count = N;
		if (ioctl(fd, FS_IOC_FIEMAP, &u.fm) < 0 || u.fm.fm_mapped_extents == 0)
			return;
		for (unsigned i = 0; i < u.fm.fm_mapped_extents; i++) {
			struct fiemap_extent *e = &u.fm.fm_extents[i];

			if (e->fe_flags & FIEMAP_EXTENT_UNWRITTEN) {
				struct wire_op w = { .code = WIRE_OP_FALLOCATE, .dir = f->dir,
				                     .fid = f->fid, .arg = e->fe_logical,
				                     .fl_mode = FALLOC_FL_KEEP_SIZE,
				                     .len = e->fe_length };

				rfs_stream_ship(&w, 1, false, false);
			}
			if (e->fe_flags & FIEMAP_EXTENT_LAST)
				return;
			start = e->fe_logical + e->fe_length;
		}
	}
}

/* Before reading a chunk: room in the queue, then the gate, so no change
 * of the file falls between the read and the queueing. False (gate not
 * held) once the stream is lost or stopping. */
static bool gate_for_chunk(void)
{
	rfs_stream_wait_queue_below(RESYNC_QUEUE_MAX);
	rfs_stream_gate_exclusive(true);
	if (rfs_stream_connected() && !rfs_stream_stopping())
		return true;
	rfs_stream_gate_exclusive(false);
	return false;
}

/* A chunk read at off: shipped and counted. */
static void ship_chunk(struct rfs_resync *r, struct file_rec *f, off_t off, ssize_t n)
{
	struct wire_op w = { .code = WIRE_OP_WRITE, .dir = f->dir, .fid = f->fid,
	                     .arg = (uint64_t)off, .flags = WIRE_OPF_RESYNC,
	                     .data = (uint8_t *)r->buf, .data_len = (uint32_t)n };

	rfs_stream_ship(&w, 1, false, false);
	r->queued += (uint64_t)n;
}

static void punch(struct file_rec *f, uint64_t off, uint64_t len)
{
	struct wire_op w = { .code = WIRE_OP_FALLOCATE, .dir = f->dir, .fid = f->fid, .arg = off,
	                     .fl_mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, .len = len };

	if (len)
		rfs_stream_ship(&w, 1, false, false);
}

/* The changed ranges of a file SECOND has: data as WRITE, holes as punched
 * holes (SECOND's older copy may hold data there), up to the size at the
 * moment of each read; the final TRUNCATE does the rest. Returns with the
 * gate held, or -1 (released) if the stream is lost. */
static int copy_ranges(struct rfs_resync *r, struct file_rec *f, int fd)
{
	for (uint32_t i = 0; i < f->niv; i++) {
		uint64_t off = f->iv[i].start;

		for (;;) {
			uint64_t end = f->iv[i].end, size;
			struct stat st;
			off_t data, hole;
			ssize_t n;

			if (!gate_for_chunk())
				return -1;
			size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
			if (end > size)
				end = size;
			if (off >= end)
				break;          /* gate held */
			data = lseek(fd, (off_t)off, SEEK_DATA);
			if (data < 0 || (uint64_t)data >= end) {
				punch(f, off, end - off);
				r->queued += end - off;
				break;
			}
			punch(f, off, (uint64_t)data - off);
			r->queued += (uint64_t)data - off;
			hole = lseek(fd, data, SEEK_HOLE);
			if (hole < 0 || (uint64_t)hole > end)
				hole = (off_t)end;
			if ((uint64_t)(hole - data) > WIRE_DATA_MAX)
				hole = data + WIRE_DATA_MAX;
			n = pread(fd, r->buf, (size_t)(hole - data), data);
			if (n > 0) {
				ship_chunk(r, f, data, n);
				off = (uint64_t)data + (uint64_t)n;
			} else {
				break;          /* the size moved under us: TRUNCATE follows */
			}
			rfs_stream_gate_exclusive(false);
		}
		if (i + 1 < f->niv)
			rfs_stream_gate_exclusive(false);
	}
	return 0;
}

/* ---- Compare by block hashes (files hot at a crash, §5.6) */

static void cmp_clear_locked(struct rfs_resync *r)
{
	free(r->cmp.mine);
	free(r->cmp.theirs);
	free(r->cmp.len);
	free(r->cmp.have);
	memset(&r->cmp, 0, sizeof(r->cmp));
}

void rfs_resync_hashes(struct rfs_resync *r, const struct wire_hashes *h)
{
	uint64_t i;

	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	i = h->off / WIRE_DATA_MAX;
	if (r->cmp.chunks && h->dir == r->cmp.dir && h->fid == r->cmp.fid &&
	    h->off % WIRE_DATA_MAX == 0 && i < r->cmp.chunks && !r->cmp.have[i]) {
		/* An answer of another shape matches nothing: left zero. */
		if (h->len == r->cmp.len[i] && h->block == RFS_HASH_BLOCK &&
		    h->count == rfs_hash_count(h->len, RFS_HASH_BLOCK))
			memcpy(r->cmp.theirs + i * HASHES_PER_CHUNK * WIRE_HASH_LEN, h->hashes,
			       (size_t)h->count * WIRE_HASH_LEN);
		r->cmp.have[i] = true;
		r->cmp.got++;
		pthread_cond_broadcast(&r->answered);
	}
	pthread_mutex_unlock(&r->lock);
}

/* Appends [start, end) to the ranges, merged with the last if touching. */
static int add_range(struct dirty_ival **iv, uint32_t *n, uint32_t *cap, uint64_t start,
                     uint64_t end)
{
	if (*n && (*iv)[*n - 1].end == start) {
		(*iv)[*n - 1].end = end;
		return 0;
	}
	if (*n == *cap) {
		uint32_t c = *cap ? *cap * 2 : 16;
		struct dirty_ival *v = realloc(*iv, c * sizeof(*v));

		if (!v)
			return -1;
		*iv = v;
		*cap = c;
	}
	(*iv)[(*n)++] = (struct dirty_ival){ start, end };
	return 0;
}

/* Waits for every answer; false if the link is lost meanwhile or none
 * comes for HASH_WAIT_MS. */
static bool wait_answers(struct rfs_resync *r)
{
	uint64_t end = mono_ms() + HASH_WAIT_MS;

	for (;;) {
		struct timespec ts;
		bool all;

		pthread_mutex_lock(&r->lock);
		if (r->cmp.got < r->cmp.chunks) {
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += 200 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&r->answered, &r->lock, &ts);
		}
		all = r->cmp.got >= r->cmp.chunks;
		pthread_mutex_unlock(&r->lock);
		/* Not under r->lock: the receiver takes the stream's lock first. */
		if (all)
			return true;
		if (!rfs_stream_connected() || rfs_stream_stopping())
			return false;
		if (mono_ms() >= end) {
			rfs_stream_unsure_why("resync: SECOND did not answer block hashes in %d s",
			                      HASH_WAIT_MS / 1000);
			return false;
		}
	}
}

/* A file SECOND may hold another version of: each 1 MiB chunk is hashed
 * here as it is queued (gate held) and SECOND hashes its copy at the same
 * point of the stream (HASHREQ); the blocks that differ then go as ranges.
 * A change made meanwhile is in the stream after the HASHREQ on both
 * sides, so a match is never wrong. 0 with the gate held (the tail
 * follows), 1 if there is no memory to compare (copy it whole), -1 if the
 * stream is lost (gate released). */
static int verify_file(struct rfs_resync *r, struct file_rec *f, int fd)
{
	struct stat st;
	uint64_t size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0, matched = 0;
	uint64_t chunks = (size + WIRE_DATA_MAX - 1) / WIRE_DATA_MAX;
	struct dirty_ival *iv = NULL;
	uint32_t niv = 0, cap = 0;
	int rc = 0;

	if (!chunks)
		return gate_for_chunk() ? 0 : -1;
	pthread_mutex_lock(&r->lock);
	r->cmp.mine = calloc(chunks, HASHES_PER_CHUNK * WIRE_HASH_LEN);
	r->cmp.theirs = calloc(chunks, HASHES_PER_CHUNK * WIRE_HASH_LEN);
	r->cmp.len = calloc(chunks, sizeof(*r->cmp.len));
	r->cmp.have = calloc(chunks, sizeof(*r->cmp.have));
	if (chunks > UINT32_MAX || !r->cmp.mine || !r->cmp.theirs || !r->cmp.len || !r->cmp.have) {
		cmp_clear_locked(r);
		pthread_mutex_unlock(&r->lock);
		return 1;
	}
	r->cmp.dir = f->dir;
	r->cmp.fid = f->fid;
	r->cmp.chunks = (uint32_t)chunks;
	pthread_mutex_unlock(&r->lock);
	for (uint64_t i = 0; i < chunks; i++) {
		uint64_t off = i * WIRE_DATA_MAX;
		ssize_t n;

		if (!gate_for_chunk()) {
			rc = -1;
			goto out;
		}
		n = pread(fd, r->buf, WIRE_DATA_MAX, (off_t)off);
		pthread_mutex_lock(&r->lock);
		if (n > 0 && rfs_hash_blocks((uint8_t *)r->buf, (size_t)n, (uint32_t)n, RFS_HASH_BLOCK,
		                             r->cmp.mine + i * HASHES_PER_CHUNK * WIRE_HASH_LEN) == 0) {
			struct wire_op h = { .code = WIRE_OP_HASHREQ, .dir = f->dir, .fid = f->fid,
			                     .arg = off, .len = (uint64_t)n, .block = RFS_HASH_BLOCK };

			r->cmp.len[i] = (uint32_t)n;
			pthread_mutex_unlock(&r->lock);
			rfs_stream_ship(&h, 1, false, false);
		} else {
			/* Shrunk since (the TRUNCATE of the tail says so), or
			 * no digest: the whole chunk goes as data. */
			r->cmp.len[i] = n > 0 ? (uint32_t)n : 0;
			r->cmp.have[i] = true;
			r->cmp.got++;
			if (n > 0)
				memset(r->cmp.mine + i * HASHES_PER_CHUNK * WIRE_HASH_LEN, 0xff,
				       HASHES_PER_CHUNK * WIRE_HASH_LEN);
			pthread_mutex_unlock(&r->lock);
		}
		rfs_stream_gate_exclusive(false);
	}
	if (!wait_answers(r)) {
		rc = -1;
		goto out;
	}
	for (uint64_t i = 0; i < chunks && rc == 0; i++) {
		uint32_t len = r->cmp.len[i], nb = len ? rfs_hash_count(len, RFS_HASH_BLOCK) : 0;

		for (uint32_t b = 0; b < nb; b++) {
			const uint8_t *m = r->cmp.mine + (i * HASHES_PER_CHUNK + b) * WIRE_HASH_LEN;
			const uint8_t *t = r->cmp.theirs + (i * HASHES_PER_CHUNK + b) * WIRE_HASH_LEN;
			uint64_t s = i * WIRE_DATA_MAX + (uint64_t)b * RFS_HASH_BLOCK;
			uint64_t e = s + RFS_HASH_BLOCK < i * WIRE_DATA_MAX + len ?
			             s + RFS_HASH_BLOCK : i * WIRE_DATA_MAX + len;

			if (!memcmp(m, t, WIRE_HASH_LEN))
				matched += e - s;
			else if (add_range(&iv, &niv, &cap, s, e) < 0)
				rc = 1;
		}
	}
	if (rc == 1) {
		free(iv);
		goto out;
	}
	r->total -= matched < r->total ? matched : r->total;
	r->verified++;
	r->matched += matched;
	free(f->iv);
	f->iv = iv;
	f->niv = niv;
	if (niv)
		rc = copy_ranges(r, f, fd);
	else
		rc = gate_for_chunk() ? 0 : -1;
out:
	pthread_mutex_lock(&r->lock);
	cmp_clear_locked(r);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/* One file: chunks, then size, xattrs and attributes, each step read and
 * queued with the gate held, so no change of the file falls between. */
static int copy_file(struct rfs_resync *r, struct file_rec *f)
{
	int fd = open_by_handle_at(r->root[f->dir], f->fh, O_RDONLY | O_CLOEXEC | O_NOATIME);
	uint64_t off = 0;
	struct stat st;

	if (fd < 0 && errno == EPERM)
		fd = open_by_handle_at(r->root[f->dir], f->fh, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ESTALE)
			return 0;       /* gone since the walk: its UNLINK is in the stream */
		rfs_stream_unsure_why("resync: reopening a file by handle: %s", strerror(errno));
		return -1;
	}
	if (f->verify) {
		int v = verify_file(r, f, fd);

		if (v < 0) {
			close(fd);
			return -1;
		}
		if (v == 0)
			goto tail;
		/* 1: no memory to compare: the whole file below. */
	} else if (f->niv) {
		if (copy_ranges(r, f, fd) < 0) {
			close(fd);
			return -1;
		}
		goto tail;
	}
	for (;;) {
		off_t data, hole;
		ssize_t n;
		size_t want;

		if (!gate_for_chunk()) {
			close(fd);
			return -1;
		}
		data = lseek(fd, (off_t)off, SEEK_DATA);
		if (data < 0)
			break;          /* ENXIO: no data past off; gate still held */
		hole = lseek(fd, data, SEEK_HOLE);
		want = hole > data && (uint64_t)(hole - data) < WIRE_DATA_MAX ? (size_t)(hole - data)
		                                                              : WIRE_DATA_MAX;
		n = pread(fd, r->buf, want, data);
		if (n > 0) {
			ship_chunk(r, f, data, n);
			off = (uint64_t)data + (uint64_t)n;
		}
		rfs_stream_gate_exclusive(false);
		if (n <= 0) {
			rfs_stream_gate_exclusive(true);
			break;
		}
	}
tail:
	if (fstat(fd, &st) == 0) {
		struct wire_op t = { .code = WIRE_OP_TRUNCATE, .dir = f->dir, .fid = f->fid,
		                     .arg = (uint64_t)st.st_size };

		preallocated(f, fd);
		rfs_stream_ship(&t, 1, false, false);
		rfs_ship_xattrs(f->dir, f->fid, fd);
		attrs(f->dir, f->fid, &st);
	}
	rfs_stream_gate_exclusive(false);
	close(fd);
	return 0;
}

int rfs_resync_data(struct rfs_resync *r)
{
	for (size_t i = 0; i < r->nfiles; i++) {
		if (copy_file(r, &r->files[i]) < 0)
			return -1;
		finish_file(r, &r->files[i]);
	}
	if (r->verified)
		log_info("resync: %zu files compared by block hashes: %" PRIu64 " bytes were equal "
		         "there and not sent", r->verified, r->matched);
	return 0;
}

uint64_t rfs_resync_total(const struct rfs_resync *r)
{
	return r->total;
}

uint64_t rfs_resync_queued(const struct rfs_resync *r)
{
	return r->queued;
}

size_t rfs_resync_files(const struct rfs_resync *r)
{
	return r->nfiles;
}
