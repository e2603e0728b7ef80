/* The stash of a reintegration's merge (wire.h: STASH, CREATE with
 * ORIGIN). An object PRIM renamed while SECOND was away is still here
 * under its old name: STASH, sent before the walk, moves it aside under
 * its fid, and the walk's CREATE puts it under the new name, so PRIM only
 * compares it by block hashes instead of sending it whole. All of it is
 * best effort: a miss makes an empty object, which PRIM's compare fills.
 * The stash lives on the copy's file system (renames only), and is emptied
 * at every use and at the end of each reintegration. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "rfs/apply.h"
#include "rfs/apply_int.h"

static void key_of(uint64_t fid, char key[17])
{
	snprintf(key, 17, "%016" PRIx64, fid);
}

/* The stash's entries go; the stash itself stays. */
static void empty(struct rfs_applier *a)
{
	int fd = openat(a->stash, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dp = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!dp) {
		if (fd >= 0)
			close(fd);
		return;
	}
	/* Names are fids: removing while listing only skips, never repeats;
	 * a second pass catches what the first skipped. */
	for (int pass = 0; pass < 2; pass++) {
		rewinddir(dp);
		while ((de = readdir(dp)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
				int e = rfs_rm_at(a->stash, de->d_name);

				if (e)
					log_warn("rfs dir %u: cannot empty the stash: %s", a->dir, strerror(e));
			}
	}
	closedir(dp);
}

int rfs_applier_set_stash(struct rfs_applier *a, const char *dir)
{
	struct stat st, root;

	if (a->stash >= 0) {
		empty(a);
		close(a->stash);
		a->stash = -1;
	}
	a->stashed = a->unstashed = 0;
	if (!dir)
		return 0;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		log_warn("rfs dir %u: cannot make the stash %s (%s): renamed files are sent whole",
		         a->dir, dir, strerror(errno));
		return -1;
	}
	a->stash = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (a->stash < 0 || fstat(a->stash, &st) < 0 || fstat(a->root, &root) < 0) {
		log_warn("rfs dir %u: cannot open the stash %s (%s): renamed files are sent whole",
		         a->dir, dir, strerror(errno));
		if (a->stash >= 0)
			close(a->stash);
		a->stash = -1;
		return -1;
	}
	if (st.st_dev != root.st_dev) {
		log_warn("rfs dir %u: the stash %s is not on the copy's file system: renamed files "
		         "are sent whole (aside_dir must be on the dirs' file system)", a->dir, dir);
		close(a->stash);
		a->stash = -1;
		return -1;
	}
	empty(a);
	return 0;
}

void rfs_applier_clear_stash(struct rfs_applier *a)
{
	if (a->stash < 0)
		return;
	if (a->stashed)
		log_info("rfs dir %u: %zu renamed objects found under their old names, %zu of them "
		         "moved to their new names", a->dir, a->stashed, a->unstashed);
	empty(a);
	a->stashed = a->unstashed = 0;
}

int rfs_merge_stash(struct rfs_applier *a, uint64_t fid, const char *path)
{
	struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
	                        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
	                                   RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV };
	char parent[WIRE_TARGET_MAX + 1], key[17];
	const char *slash = strrchr(path, '/'), *name = slash ? slash + 1 : path;
	struct stat st;
	int pfd, e = 0;

	if (a->stash < 0)
		return 0;
	if (slash) {
		snprintf(parent, sizeof(parent), "%.*s", (int)(slash - path), path);
		pfd = (int)syscall(SYS_openat2, a->root, parent, &how, sizeof(how));
		if (pfd < 0)
			return 0;               /* not here (any more): nothing to stash */
	} else {
		pfd = a->root;
	}
	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    (S_ISDIR(st.st_mode) || (S_ISREG(st.st_mode) && st.st_nlink == 1))) {
		key_of(fid, key);
		if ((e = rfs_rm_at(a->stash, key)) == 0 && renameat(pfd, name, a->stash, key) == 0) {
			a->stashed++;
		} else {
			log_debug("rfs dir %u: cannot stash %s: %s", a->dir, path,
			          strerror(e ? e : errno));
		}
	}
	if (pfd != a->root)
		close(pfd);
	return 0;
}

int rfs_stash_take(struct rfs_applier *a, uint64_t fid, int dfd, const char *name, mode_t type,
                   int *reuse)
{
	char key[17];
	struct stat st;
	int fd;

	*reuse = -1;
	if (a->stash < 0)
		return 0;
	key_of(fid, key);
	if (fstatat(a->stash, key, &st, AT_SYMLINK_NOFOLLOW) < 0 || (st.st_mode & S_IFMT) != type)
		return 0;
	/* The name is free: the caller removed what held it. */
	if (renameat(a->stash, key, dfd, name) < 0) {
		log_debug("rfs dir %u: cannot take %s from the stash: %s", a->dir, name, strerror(errno));
		return 0;
	}
	fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC | (type == S_IFDIR ? O_DIRECTORY : 0));
	if (fd < 0) {
		/* Not bindable: out of the way, and made afresh. */
		rfs_rm_at(dfd, name);
		return 0;
	}
	a->unstashed++;
	*reuse = fd;
	return 0;
}
