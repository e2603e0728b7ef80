/* The applier's fid table: fid -> O_PATH fd, type, and a lazily opened
 * I/O fd kept in an LRU of RFS_APPLY_WFD_MAX (docs/design/rfs.md §4.5). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rfs/apply.h"
#include "rfs/apply_int.h"
#include "rfs/hash.h"
#include "rfs/wire.h"

#define NBUCKETS_MIN 1024

static size_t bucket_of(const struct rfs_applier *a, uint64_t fid)
{
	/* fids are inode numbers: dense, so mix them before masking */
	fid ^= fid >> 33;
	fid *= 0xff51afd7ed558ccdULL;
	fid ^= fid >> 33;
	return (size_t)fid & (a->nbuckets - 1);
}

int rfs_fid_table_init(struct rfs_applier *a)
{
	a->buckets = calloc(NBUCKETS_MIN, sizeof(*a->buckets));
	if (!a->buckets)
		return -1;
	a->nbuckets = NBUCKETS_MIN;
	return 0;
}

static void lru_unlink(struct rfs_applier *a, struct rfs_fid *f)
{
	if (f->lprev)
		f->lprev->lnext = f->lnext;
	else
		a->lru_head = f->lnext;
	if (f->lnext)
		f->lnext->lprev = f->lprev;
	else
		a->lru_tail = f->lprev;
	f->lprev = f->lnext = NULL;
}

static void lru_push_front(struct rfs_applier *a, struct rfs_fid *f)
{
	f->lprev = NULL;
	f->lnext = a->lru_head;
	if (a->lru_head)
		a->lru_head->lprev = f;
	a->lru_head = f;
	if (!a->lru_tail)
		a->lru_tail = f;
}

static void wfd_close(struct rfs_applier *a, struct rfs_fid *f)
{
	if (f->wfd < 0)
		return;
	lru_unlink(a, f);
	close(f->wfd);
	f->wfd = -1;
	a->nwfds--;
}

static void fid_destroy(struct rfs_applier *a, struct rfs_fid *f)
{
	wfd_close(a, f);
	close(f->pfd);
	free(f);
	a->nfids--;
}

void rfs_fid_table_clear(struct rfs_applier *a)
{
	for (size_t i = 0; i < a->nbuckets; i++) {
		struct rfs_fid *f = a->buckets[i];

		while (f) {
			struct rfs_fid *next = f->hnext;

			fid_destroy(a, f);
			f = next;
		}
		a->buckets[i] = NULL;
	}
}

void rfs_fid_table_free(struct rfs_applier *a)
{
	if (!a->buckets)
		return;
	rfs_fid_table_clear(a);
	free(a->buckets);
	a->buckets = NULL;
	a->nbuckets = 0;
}

struct rfs_fid *rfs_fid_find(struct rfs_applier *a, uint64_t fid)
{
	for (struct rfs_fid *f = a->buckets[bucket_of(a, fid)]; f; f = f->hnext)
		if (f->fid == fid)
			return f;
	return NULL;
}

/* Doubling keeps chains short; a failed grow only costs speed. */
static void maybe_grow(struct rfs_applier *a)
{
	size_t n = a->nbuckets * 2;
	struct rfs_fid **nb;

	if (a->nfids < a->nbuckets * 2)
		return;
	nb = calloc(n, sizeof(*nb));
	if (!nb)
		return;
	struct rfs_fid **old = a->buckets;
	size_t oldn = a->nbuckets;

	a->buckets = nb;
	a->nbuckets = n;
	for (size_t i = 0; i < oldn; i++) {
		struct rfs_fid *f = old[i];

		while (f) {
			struct rfs_fid *next = f->hnext;
			size_t b = bucket_of(a, f->fid);

			f->hnext = nb[b];
			nb[b] = f;
			f = next;
		}
	}
	free(old);
}

static int unhook(struct rfs_applier *a, uint64_t fid)
{
	struct rfs_fid **pp = &a->buckets[bucket_of(a, fid)];

	for (; *pp; pp = &(*pp)->hnext) {
		struct rfs_fid *f = *pp;

		if (f->fid == fid) {
			*pp = f->hnext;
			fid_destroy(a, f);
			return 0;
		}
	}
	errno = ENOENT;
	return -1;
}

int rfs_fid_bind(struct rfs_applier *a, uint64_t fid, int pfd)
{
	struct stat st;
	struct rfs_fid *f;

	if (fstat(pfd, &st) < 0) {
		int e = errno;

		close(pfd);
		errno = e;
		return -1;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		close(pfd);
		errno = ENOMEM;
		return -1;
	}
	/* PRIM rebinds a fid only after its UNBIND, or after a reconnect;
	 * the newest binding is the truth either way. */
	unhook(a, fid);
	f->fid = fid;
	f->pfd = pfd;
	f->wfd = -1;
	f->type = st.st_mode & S_IFMT;
	maybe_grow(a);
	size_t b = bucket_of(a, fid);

	f->hnext = a->buckets[b];
	a->buckets[b] = f;
	a->nfids++;
	return 0;
}

int rfs_fid_unbind(struct rfs_applier *a, uint64_t fid)
{
	return unhook(a, fid);
}

void rfs_fid_set_wfd(struct rfs_applier *a, struct rfs_fid *f, int wfd)
{
	wfd_close(a, f);
	while (a->nwfds >= RFS_APPLY_WFD_MAX && a->lru_tail)
		wfd_close(a, a->lru_tail);
	f->wfd = wfd;
	lru_push_front(a, f);
	a->nwfds++;
}

int rfs_fid_wfd(struct rfs_applier *a, struct rfs_fid *f)
{
	char proc[64];
	int fd;

	if (f->wfd >= 0) {
		lru_unlink(a, f);
		lru_push_front(a, f);
		return f->wfd;
	}
	if (f->type != S_IFREG) {
		/* a symlink's target is never opened; dirs and nodes have no data */
		errno = f->type == S_IFDIR ? EISDIR : EINVAL;
		return -1;
	}
	/* no O_NOFOLLOW: it would refuse the proc magic link itself, which
	 * lands on f's own inode (a regular file, checked above), not a path */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", f->pfd);
	fd = open(proc, O_RDWR | O_CLOEXEC);
	if (fd < 0 && errno == EMFILE && a->lru_tail) {
		wfd_close(a, a->lru_tail);
		fd = open(proc, O_RDWR | O_CLOEXEC);
	}
	if (fd < 0)
		return -1;
	rfs_fid_set_wfd(a, f, fd);
	return fd;
}

void rfs_fd_relpath(const struct rfs_applier *a, int fd, char *buf, size_t len)
{
	char proc[64], target[PATH_MAX];
	ssize_t n;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, target, sizeof(target) - 1);
	if (n < 0) {
		snprintf(buf, len, "?");
		return;
	}
	target[n] = 0;
	const char *p = target;

	if (a->root_path_len && strncmp(target, a->root_path, a->root_path_len) == 0) {
		p = target + a->root_path_len;
		if (*p == '/')
			p++;
		else if (*p == 0)
			p = ".";
		else
			p = target;     /* a sibling with the root's name as prefix */
	}
	snprintf(buf, len, "%s", p);
}

void rfs_apply_hashes(struct rfs_applier *a, const struct wire_op *op, uint8_t *buf, uint8_t *out)
{
	struct rfs_fid *f = rfs_fid_find(a, op->fid);
	uint32_t want = (uint32_t)op->len;
	size_t have = 0;
	int fd;

	if (!f || f->type != S_IFREG || (fd = rfs_fid_wfd(a, f)) < 0)
		goto zero;
	while (have < want) {
		ssize_t n = pread(fd, buf + have, want - have, (off_t)(op->arg + have));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto zero;
		if (n == 0)
			break;          /* shorter here: its last blocks differ */
		have += (size_t)n;
	}
	if (rfs_hash_blocks(buf, have, want, op->block, out) == 0)
		return;
zero:
	memset(out, 0, (size_t)rfs_hash_count(want, op->block) * WIRE_HASH_LEN);
}
