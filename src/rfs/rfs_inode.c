/* Inode table: a chained hash on (dev, ino) under one mutex. Lookups open
 * the backing object before taking the lock, so the lock only covers the
 * table itself. */
#include <errno.h>
#include <fcntl.h>
#include "rfs/rfs_fs.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "rfs/exclude.h"
#include "rfs/rfs_inode.h"

#define INITIAL_BUCKETS 1024

static size_t bucket_of(const struct rfs_itable *t, dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ull ^ (uint64_t)dev * 0xc2b2ae3d27d4eb4full;

	return (size_t)(h >> 17) & (t->nbuckets - 1);
}

int rfs_itable_init(struct rfs_itable *t, int root_fd)
{
	struct stat st;

	memset(t, 0, sizeof(*t));
	if (fstatat(root_fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		log_error("backing root: fstat: %s", strerror(errno));
		return -1;
	}
	t->buckets = calloc(INITIAL_BUCKETS, sizeof(*t->buckets));
	if (!t->buckets) {
		log_error("inode table: out of memory");
		return -1;
	}
	t->nbuckets = INITIAL_BUCKETS;
	pthread_mutex_init(&t->lock, NULL);
	t->root.fd = root_fd;
	t->root.dev = st.st_dev;
	t->root.ino = st.st_ino;
	t->root.type = st.st_mode & S_IFMT;
	t->root.nlookup = 1;
	return 0;
}

void rfs_itable_destroy(struct rfs_itable *t)
{
	if (!t->buckets)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct rfs_inode *n = t->buckets[i];

		while (n) {
			struct rfs_inode *next = n->next;

			close(n->fd);
			free(n);
			n = next;
		}
	}
	free(t->buckets);
	t->buckets = NULL;
	if (t->root.fd >= 0)
		close(t->root.fd);
	t->root.fd = -1;
	pthread_mutex_destroy(&t->lock);
}

void rfs_itable_set_dir(struct rfs_itable *t, uint8_t dir)
{
	t->dir = dir;
	t->root.dir = dir;
}

struct rfs_inode *rfs_inode_of(struct rfs_itable *t, uint64_t nodeid)
{
	if (nodeid == FUSE_ROOT_ID)
		return &t->root;
	return (struct rfs_inode *)(uintptr_t)nodeid;
}

uint64_t rfs_inode_nodeid(struct rfs_itable *t, const struct rfs_inode *inode)
{
	if (inode == &t->root)
		return FUSE_ROOT_ID;
	return (uint64_t)(uintptr_t)inode;
}

/* Doubles the buckets when chains get long. Table lock held. A failed
 * allocation only keeps the chains longer. */
static void maybe_grow(struct rfs_itable *t)
{
	struct rfs_inode **nb;
	size_t old = t->nbuckets;

	if (t->count < old * 2)
		return;
	nb = calloc(old * 2, sizeof(*nb));
	if (!nb)
		return;
	t->nbuckets = old * 2;
	for (size_t i = 0; i < old; i++) {
		struct rfs_inode *n = t->buckets[i];

		while (n) {
			struct rfs_inode *next = n->next;
			size_t b = bucket_of(t, n->dev, n->ino);

			n->next = nb[b];
			nb[b] = n;
			n = next;
		}
	}
	free(t->buckets);
	t->buckets = nb;
}

int rfs_inode_lookup(struct rfs_itable *t, struct rfs_inode *parent, const char *name,
		     bool created, struct stat *st, struct rfs_inode **out)
{
	struct rfs_inode *n, *fresh;
	size_t b;
	int fd, err;

	fd = openat(parent->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno;
	if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		err = errno;
		close(fd);
		return err;
	}
	/* Allocated before the lock; freed again if another thread won. */
	fresh = calloc(1, sizeof(*fresh));
	if (!fresh) {
		close(fd);
		return ENOMEM;
	}
	pthread_mutex_lock(&t->lock);
	b = bucket_of(t, st->st_dev, st->st_ino);
	for (n = t->buckets[b]; n; n = n->next)
		if (n->ino == st->st_ino && n->dev == st->st_dev)
			break;
	if (n) {
		n->nlookup++;
		pthread_mutex_unlock(&t->lock);
		close(fd);
		free(fresh);
		*out = n;
		return 0;
	}
	fresh->fd = fd;
	fresh->dev = st->st_dev;
	fresh->ino = st->st_ino;
	fresh->type = st->st_mode & S_IFMT;
	fresh->nlookup = 1;
	fresh->dir = t->dir;
	fresh->excluded = parent->excluded || rfs_excluded_name(name);
	fresh->bound = !fresh->excluded;
	if (!created && !fresh->excluded)
		rfs_journal_bind(t->dir, fresh->ino, parent->ino, name);
	else if (!created && fresh->type == S_IFREG && st->st_nlink > 1 && !parent->excluded)
		/* Its other names may be replicated: writes through this one
		 * would not be. */
		rfs_journal_unsure(t->dir, fresh->ino, name);
	fresh->next = t->buckets[b];
	t->buckets[b] = fresh;
	t->count++;
	maybe_grow(t);
	pthread_mutex_unlock(&t->lock);
	*out = fresh;
	return 0;
}

struct rfs_inode *rfs_inode_find(struct rfs_itable *t, dev_t dev, ino_t ino)
{
	struct rfs_inode *n;

	if (dev == t->root.dev && ino == t->root.ino)
		return &t->root;
	pthread_mutex_lock(&t->lock);
	for (n = t->buckets[bucket_of(t, dev, ino)]; n; n = n->next)
		if (n->ino == ino && n->dev == dev)
			break;
	pthread_mutex_unlock(&t->lock);
	return n;
}

void rfs_inode_set_excluded(struct rfs_itable *t, struct rfs_inode *inode, bool excluded)
{
	pthread_mutex_lock(&t->lock);
	__atomic_store_n(&inode->excluded, excluded, __ATOMIC_RELAXED);
	inode->bound = !excluded;
	pthread_mutex_unlock(&t->lock);
}

void rfs_inode_unbound(struct rfs_inode *inode)
{
	__atomic_store_n(&inode->bound, false, __ATOMIC_RELAXED);
}

void rfs_inode_ref(struct rfs_itable *t, struct rfs_inode *inode)
{
	pthread_mutex_lock(&t->lock);
	inode->nlookup++;
	pthread_mutex_unlock(&t->lock);
}

void rfs_inode_forget(struct rfs_itable *t, struct rfs_inode *inode, uint64_t n)
{
	struct rfs_inode **pp;

	if (inode == &t->root)
		return;
	pthread_mutex_lock(&t->lock);
	if (n > inode->nlookup) {
		/* A kernel/daemon disagreement: keep the inode rather than
		 * free one the kernel may still name. */
		log_error("inode %lu: forget of %lu lookups, only %lu known",
			  (unsigned long)inode->ino, (unsigned long)n, (unsigned long)inode->nlookup);
		pthread_mutex_unlock(&t->lock);
		return;
	}
	inode->nlookup -= n;
	if (inode->nlookup > 0) {
		pthread_mutex_unlock(&t->lock);
		return;
	}
	pp = &t->buckets[bucket_of(t, inode->dev, inode->ino)];
	while (*pp && *pp != inode)
		pp = &(*pp)->next;
	if (*pp)
		*pp = inode->next;
	t->count--;
	if (inode->bound)
		rfs_journal_unbind(inode->dir, inode->ino);
	pthread_mutex_unlock(&t->lock);
	close(inode->fd);
	free(inode);
}

int rfs_inode_stat(const struct rfs_inode *inode, struct stat *st)
{
	return fstatat(inode->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
}

struct rfs_id rfs_inode_id(const struct rfs_inode *inode)
{
	return (struct rfs_id){ .dev = inode->dev, .ino = inode->ino, .dir = inode->dir,
				.excluded = __atomic_load_n(&inode->excluded, __ATOMIC_RELAXED) };
}

void rfs_inode_procpath(const struct rfs_inode *inode, char *buf, size_t len)
{
	snprintf(buf, len, "/proc/self/fd/%d", inode->fd);
}

size_t rfs_itable_count(struct rfs_itable *t)
{
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = t->count;
	pthread_mutex_unlock(&t->lock);
	return n;
}
