/* A reintegration's walk merged into the copy SECOND already has (contract
 * in apply_int.h; docs/design/rfs.md §5.3 as built). The walk lists every
 * object PRIM has, directory by directory; an object new to SECOND comes
 * with FRESH and replaces whatever holds its name, one without FRESH is
 * kept as it is here (PRIM's record says its data did not change). When a
 * directory's listing ends, the names it holds that were not listed are
 * removed: PRIM removed them, and this copy is older than PRIM's, so
 * nothing is lost (a copy with changes of its own never merges: it is set
 * aside and copied whole). Nothing is followed: every call is relative to
 * a directory fd, with O_NOFOLLOW/AT_SYMLINK_NOFOLLOW. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/log.h"
#include "rfs/apply_int.h"
#include "rfs/exclude.h"
#include "rfs/wire.h"

#define RM_DEPTH_MAX 2048

/* Names listed in one directory: open addressing. */
struct rfs_seen {
	uint64_t fid;
	char **slot;
	size_t cap, n;
	struct rfs_seen *next;
};

static uint64_t name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

static struct rfs_seen *seen_of(struct rfs_applier *a, uint64_t fid, bool make)
{
	struct rfs_seen *s;

	for (s = a->seen; s; s = s->next)
		if (s->fid == fid)
			return s;
	if (!make || !(s = calloc(1, sizeof(*s))))
		return NULL;
	s->fid = fid;
	s->next = a->seen;
	a->seen = s;
	return s;
}

static void seen_free(struct rfs_seen *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->slot[i]);
	free(s->slot);
	free(s);
}

static bool seen_has(const struct rfs_seen *s, const char *name)
{
	if (!s || !s->cap)
		return false;
	for (size_t i = name_hash(name) & (s->cap - 1); s->slot[i]; i = (i + 1) & (s->cap - 1))
		if (!strcmp(s->slot[i], name))
			return true;
	return false;
}

static int seen_add(struct rfs_applier *a, uint64_t parent, const char *name)
{
	struct rfs_seen *s = seen_of(a, parent, true);
	size_t i;

	if (!s)
		return ENOMEM;
	if (seen_has(s, name))
		return 0;
	if (2 * (s->n + 1) > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		char **n = calloc(cap, sizeof(*n));

		if (!n)
			return ENOMEM;
		for (size_t j = 0; j < s->cap; j++)
			if (s->slot[j]) {
				for (i = name_hash(s->slot[j]) & (cap - 1); n[i]; i = (i + 1) & (cap - 1))
					;
				n[i] = s->slot[j];
			}
		free(s->slot);
		s->slot = n;
		s->cap = cap;
	}
	for (i = name_hash(name) & (s->cap - 1); s->slot[i]; i = (i + 1) & (s->cap - 1))
		;
	if (!(s->slot[i] = strdup(name)))
		return ENOMEM;
	s->n++;
	return 0;
}

void rfs_merge_reset(struct rfs_applier *a)
{
	while (a->seen) {
		struct rfs_seen *s = a->seen;

		a->seen = s->next;
		seen_free(s);
	}
	a->needs_full = false;
}

/* A directory stream of what is at dirfd/name (no symlink followed), or
 * NULL with errno. */
static DIR *open_dir(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), e;
	DIR *dp;

	if (fd < 0)
		return NULL;
	dp = fdopendir(fd);
	if (!dp) {
		e = errno;
		close(fd);
		errno = e;
	}
	return dp;
}

static int rm_at(int dfd, const char *name, int depth)
{
	struct stat st;
	DIR *dp;
	struct dirent *de;
	int e = 0;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dfd, name, 0) < 0 && errno != ENOENT ? errno : 0;
	if (depth > RM_DEPTH_MAX)
		return ELOOP;
	if (!(dp = open_dir(dfd, name)))
		return errno;
	while (!e && (de = readdir(dp)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			e = rm_at(dirfd(dp), de->d_name, depth + 1);
	closedir(dp);
	if (e)
		return e;
	return unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT ? errno : 0;
}

int rfs_rm_at(int dfd, const char *name)
{
	return rm_at(dfd, name, 0);
}

void rfs_merge_clear_xattrs(int pfd)
{
	char proc[64], *names = malloc(XATTR_LIST_MAX);
	ssize_t len;

	if (!names)
		return;
	/* The proc link, followed, is the object itself (a symlink too). */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	len = listxattr(proc, names, XATTR_LIST_MAX);
	for (ssize_t i = 0; i < len; i += (ssize_t)strlen(names + i) + 1)
		/* security.* may be the system's (SELinux): best effort, the
		 * walk sets what PRIM has anyway. */
		removexattr(proc, names + i);
	free(names);
}

static bool same_target(int dfd, const char *name, const char *target)
{
	char buf[WIRE_TARGET_MAX + 1];
	ssize_t n = readlinkat(dfd, name, buf, sizeof(buf) - 1);

	if (n < 0)
		return false;
	buf[n] = 0;
	return target && !strcmp(buf, target);
}

int rfs_merge_create(struct rfs_applier *a, int dfd, uint64_t parent, uint64_t fid,
                     const char *name, mode_t mode, uint64_t rdev, const char *target,
                     uint32_t flags, int *reuse, const char **why)
{
	mode_t type = mode & S_IFMT;
	bool fresh = flags & WIRE_OPF_FRESH, maybe = flags & WIRE_OPF_MAYBE;
	struct stat st;
	int e;

	*reuse = -1;
	if ((e = seen_add(a, parent, name)))
		return e;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT)
			return errno;
		if (fresh || maybe)
			return (flags & WIRE_OPF_ORIGIN) ? rfs_stash_take(a, fid, dfd, name, type, reuse) : 0;
		a->needs_full = true;
		*why = "PRIM lists it as unchanged, but this copy lacks it";
		return ENOENT;
	}
	if (maybe && type == S_IFREG && S_ISREG(st.st_mode) && st.st_nlink > 1) {
		/* PRIM sends no data for it: if the name now holds another file
		 * there, truncating this one would change its other names. */
		a->needs_full = true;
		*why = "PRIM's record lost this name's history, and this copy has a file with "
		       "other links there";
		return EEXIST;
	}
	if (!fresh) {
		bool like = (st.st_mode & S_IFMT) == type &&
		            (type != S_IFLNK || same_target(dfd, name, target));

		if (!like && !maybe) {
			a->needs_full = true;
			*why = (st.st_mode & S_IFMT) != type ?
			       "PRIM lists it as unchanged, but this copy has another type there" :
			       "PRIM lists the symlink as unchanged, but its target differs here";
			return EEXIST;
		}
		/* A device node with another number is simply made again. */
		if (like && ((type != S_IFCHR && type != S_IFBLK) || st.st_rdev == (dev_t)rdev)) {
			int fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC |
			                           (type == S_IFDIR ? O_DIRECTORY : 0));

			if (fd < 0)
				return errno;
			*reuse = fd;
			return 0;
		}
	}
	/* New to this copy: what holds the name is an older object. */
	if ((e = rm_at(dfd, name, 0))) {
		*why = "cannot remove what holds the name in this copy";
		return e;
	}
	return (flags & WIRE_OPF_ORIGIN) ? rfs_stash_take(a, fid, dfd, name, type, reuse) : 0;
}

int rfs_merge_link(struct rfs_applier *a, int dfd, uint64_t parent, const char *name, int pfd,
                   bool *done, const char **why)
{
	struct stat here, want;
	int e;

	*done = false;
	if ((e = seen_add(a, parent, name)))
		return e;
	if (fstatat(dfd, name, &here, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : errno;
	if (fstat(pfd, &want) < 0)
		return errno;
	if (here.st_dev == want.st_dev && here.st_ino == want.st_ino) {
		*done = true;
		return 0;
	}
	if ((e = rm_at(dfd, name, 0)))
		*why = "cannot remove what holds the name in this copy";
	return e;
}

int rfs_merge_prune(struct rfs_applier *a, uint64_t fid, int pfd, const char **why)
{
	struct rfs_seen *s = seen_of(a, fid, false), **pp;
	char proc[64];
	char **gone = NULL;
	size_t ngone = 0, cap = 0;
	struct dirent *de;
	DIR *dp;
	int e = 0;

	/* The proc link, followed, is the bound directory itself. */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	if (!(dp = opendir(proc)))
		return errno;
	/* Names first, removal after: readdir and unlink do not mix. */
	while ((de = readdir(dp))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    seen_has(s, de->d_name) || rfs_excluded_name(de->d_name))
			continue;
		if (ngone == cap) {
			size_t nc = cap ? cap * 2 : 16;
			char **n = realloc(gone, nc * sizeof(*n));

			if (!n) {
				e = ENOMEM;
				break;
			}
			gone = n;
			cap = nc;
		}
		if (!(gone[ngone] = strdup(de->d_name))) {
			e = ENOMEM;
			break;
		}
		ngone++;
	}
	for (size_t i = 0; i < ngone; i++) {
		int r = e ? 0 : rm_at(dirfd(dp), gone[i], 0);

		if (r) {
			e = r;
			*why = "cannot remove an object PRIM no longer has";
		}
		free(gone[i]);
	}
	free(gone);
	closedir(dp);
	if (s) {
		for (pp = &a->seen; *pp != s; pp = &(*pp)->next)
			;
		*pp = s->next;
		seen_free(s);
	}
	return e;
}
