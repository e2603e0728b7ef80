/* vigil-rfs outdate|forcestart|gen --state DIR: what vigild does to this
 * node's generations while no vigil-rfs of its own may be running; and
 * vigil-rfs estimate DIR...: what a reintegration would send. They run as
 * children of vigild, so that its loop never waits for the disk. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <linux/limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "rfs/dirty.h"
#include "rfs/exclude.h"
#include "rfs/journal.h"
#include "rfs/stream.h"
#include "rfs/gen.h"
#include "rfs/rfs_mount.h"

static uint64_t est_files, est_bytes;
/* The record read from the journal (NULL: everything is counted whole),
 * the dir walked, and whether each level's directory is new to SECOND. */
static struct dirty_set *est_set;
static uint8_t est_dir;
#define EST_DEPTH (PATH_MAX / 2)
static bool est_whole[EST_DEPTH];

static int est_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	const struct dirty_file *f;
	bool whole;
	uint64_t b;

	if (ftw->level > 0 && rfs_excluded_name(path + ftw->base))
		return type == FTW_D ? FTW_SKIP_SUBTREE : FTW_CONTINUE;
	if (!est_set) {
		if (type == FTW_F && S_ISREG(st->st_mode)) {
			est_files++;
			est_bytes += (uint64_t)st->st_size;
		}
		return FTW_CONTINUE;
	}
	/* As the reintegration's walk decides (resync.c): WHOLE, UNSURE on a
	 * file, or under a WHOLE directory go whole; ranges as ranges. */
	f = dirty_find(est_set, est_dir, st->st_ino);
	/* Deeper than a path can name: counted whole, an upper bound. */
	whole = ftw->level >= EST_DEPTH || (ftw->level > 0 && est_whole[ftw->level - 1]) ||
	        (f && (f->flags & DIRTY_WHOLE));
	if (type == FTW_D) {
		if (ftw->level < EST_DEPTH)
			est_whole[ftw->level] = whole;
		return FTW_CONTINUE;
	}
	if (type != FTW_F || !S_ISREG(st->st_mode))
		return FTW_CONTINUE;
	if (whole || (f && (f->flags & DIRTY_UNSURE))) {
		b = (uint64_t)st->st_size;
	} else if (f) {
		b = 0;
		for (uint32_t i = 0; i < f->n; i++)
			if (f->iv[i].start < (uint64_t)st->st_size)
				b += (f->iv[i].end < (uint64_t)st->st_size ? f->iv[i].end
				                                           : (uint64_t)st->st_size) -
				     f->iv[i].start;
	} else {
		return FTW_CONTINUE;
	}
	if (b || whole) {
		est_files++;
		est_bytes += b;
	}
	return FTW_CONTINUE;
}

/* The record on disk, read only (the running vigil-rfs owns the file and
 * flushes it every second), if it holds every change since the copies
 * were equal: then a SECOND that is only older gets that much. NULL if
 * there is none, it is incomplete, or it cannot be read (logged). */
static struct dirty_set *est_record(const char *state)
{
	char path[4096], meta[4096], err[256];
	struct journal_replay r;
	struct dirty_set *set;
	struct rfs_gen g;
	uint8_t *buf;
	struct stat st;
	ssize_t got;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/journal", state) >= sizeof(path) ||
	    rfs_gen_meta_path(state, meta, sizeof(meta)) < 0 ||
	    rfs_gen_load(meta, &g, err, sizeof(err)) < 0 || !g.b)
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !(buf = malloc((size_t)st.st_size + 1))) {
		close(fd);
		return NULL;
	}
	got = pread(fd, buf, (size_t)st.st_size, 0);
	close(fd);
	set = got >= 0 ? dirty_new() : NULL;
	if (set && (journal_replay_buf(buf, (size_t)got, set, &r) < 0 || r.base != g.b)) {
		dirty_free(set);
		set = NULL;
	}
	free(buf);
	return set;
}

/* estimate DIR... [--exclude GLOB]... [--state DIR]: what a reintegration
 * would send, files and bytes, as one JSON line (the last line of the
 * output: vigild reads it) with "full_copy": with a complete record in
 * --state, what it names (files hot at a crash whole); else every regular
 * file. */
static int estimate(int argc, char **argv)
{
	const char *dirs[RFS_MAX_DIRS], *globs[RFS_EXCLUDE_MAX], *state = NULL;
	size_t nd = 0, ng = 0;

	for (int i = 2; i < argc; i++) {
		const char *why;

		if (!strcmp(argv[i], "--exclude") && i + 1 < argc) {
			if (rfs_exclude_check(argv[++i], &why) < 0 || ng == RFS_EXCLUDE_MAX) {
				fprintf(stderr, "vigil-rfs estimate: --exclude '%s': %s\n", argv[i],
				        ng == RFS_EXCLUDE_MAX ? "at most 32 patterns" : why);
				return EXIT_USAGE;
			}
			globs[ng++] = argv[i];
		} else if (!strcmp(argv[i], "--state") && i + 1 < argc && argv[i + 1][0] == '/') {
			state = argv[++i];
		} else if (argv[i][0] == '/' && nd < RFS_MAX_DIRS) {
			dirs[nd++] = argv[i];
		} else {
			fprintf(stderr, "usage: vigil-rfs estimate DIR... [--exclude GLOB]... [--state "
			        "DIR] (absolute DIRs, at most 16)\n");
			return EXIT_USAGE;
		}
	}
	if (!nd || rfs_exclude_set(globs, ng) < 0)
		return EXIT_USAGE;
	est_set = state ? est_record(state) : NULL;
	for (size_t d = 0; d < nd; d++) {
		est_dir = (uint8_t)d;
		if (nftw(dirs[d], est_one, 64, FTW_PHYS | FTW_ACTIONRETVAL) != 0) {
			fprintf(stderr, "vigil-rfs estimate: %s: %s\n", dirs[d], strerror(errno));
			dirty_free(est_set);
			return EXIT_RUNTIME;
		}
	}
	printf("{\"files\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"full_copy\": %s}\n", est_files,
	       est_bytes, est_set ? "false" : "true");
	dirty_free(est_set);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: vigil-rfs outdate --state DIR [--full]\n"
	        "       vigil-rfs forcestart --state DIR [--peer-name NAME]\n"
	        "       vigil-rfs gen --state DIR\n"
	        "  outdate: record that this copy lacks changes the peer acknowledged;\n"
	        "           --full: also compare it whole with the PRIM's (block hashes)\n"
	        "  forcestart: this copy serves whatever it lacks; says what may be lost\n"
	        "  gen: print the generations as JSON\n");
	return EXIT_USAGE;
}

int rfs_gencmd_main(int argc, char **argv)
{
	const char *state = NULL, *peer = "the peer";
	bool full = false;
	char meta[4096], err[512], msg[512];
	struct rfs_gen g, before;
	int r;

	if (!strcmp(argv[1], "estimate"))
		return estimate(argc, argv);
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--state") && i + 1 < argc)
			state = argv[++i];
		else if (!strcmp(argv[i], "--peer-name") && i + 1 < argc && !strcmp(argv[1], "forcestart"))
			peer = argv[++i];
		else if (!strcmp(argv[i], "--full") && !strcmp(argv[1], "outdate"))
			full = true;
		else
			return usage();
	}
	if (!state || rfs_gen_meta_path(state, meta, sizeof(meta)) < 0) {
		fprintf(stderr, "vigil-rfs %s: --state DIR (absolute) is required\n", argv[1]);
		return EXIT_USAGE;
	}
	log_init("vigil-rfs", true, LOG_LVL_INFO);
	r = rfs_gen_load(meta, &g, err, sizeof(err));
	if (r < 0) {
		log_error("%s", err);
		return EXIT_RUNTIME;
	}
	if (!strcmp(argv[1], "gen")) {
		printf("{\"c\": \"%016llx\", \"b\": \"%016llx\", \"outdated\": %s, \"fresh\": %s}\n",
		       (unsigned long long)g.c, (unsigned long long)g.b, g.outdated ? "true" : "false",
		       r == 1 ? "true" : "false");
		return 0;
	}
	if (mkdir_p(state, 0700) < 0) {
		log_error("%s: cannot create it", state);
		return EXIT_RUNTIME;
	}
	before = g;
	if (!strcmp(argv[1], "outdate")) {
		char vpath[4096];

		/* --full: compared whole by hashes at the next connection; a
		 * copy without generations is copied whole anyway. */
		if (full && (rfs_gen_verify_path(state, vpath, sizeof(vpath)) < 0 ||
		             rfs_gen_verify_mark(vpath, true) < 0))
			return EXIT_RUNTIME;
		rfs_gen_set_outdated(&g, wall_ms());
	} else {
		uint64_t rnd = 0;

		for (int i = 0; i < 16; i++)
			if (random_bytes(&rnd, sizeof(rnd)) == 0 && rfs_gen_forcestart(&g, rnd) == 0)
				break;
		if (g.c == before.c) {
			log_error("%s: no new generation could be drawn", meta);
			return EXIT_RUNTIME;
		}
	}
	if (rfs_gen_store(meta, &g) < 0)
		return EXIT_RUNTIME;
	if (!strcmp(argv[1], "outdate")) {
		log_info("%s: this copy is marked outdated: it lacks changes the peer acknowledged%s",
		         meta, full ? "; it will be compared whole with the PRIM's by block hashes" : "");
	} else {
		rfs_gen_forcestart_msg(&before, peer, msg, sizeof(msg));
		log_warn("forcestart: %s", msg);
	}
	return 0;
}
