/* Reintegration: its state and the second pass, the data of the files the
 * walk (resync_walk.c) remembered: copied, or only their changed ranges, or
 * compared by block hashes (contract in resync.h). */
#include "rfs/resync_int.h"

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
		rfs_resync_attrs(f->dir, f->fid, &st);
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
