/* vigil-rfs outdate|forcestart|gen --state DIR: what vigild does to this
 * node's generations while no vigil-rfs of its own may be running; and
 * vigil-rfs estimate DIR...: what a reintegration would send. They run as
 * children of vigild, so that its loop never waits for the disk. */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/util.h"
#include "rfs/exclude.h"
#include "rfs/stream.h"
#include "rfs/gen.h"
#include "rfs/rfs_mount.h"

static uint64_t est_files, est_bytes;

static int est_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	if (ftw->level > 0 && rfs_excluded_name(path + ftw->base))
		return type == FTW_D ? FTW_SKIP_SUBTREE : FTW_CONTINUE;
	if (type == FTW_F && S_ISREG(st->st_mode)) {
		est_files++;
		est_bytes += (uint64_t)st->st_size;
	}
	return FTW_CONTINUE;
}

/* estimate DIR... [--exclude GLOB]...: every regular file a full copy of
 * the dirs would send, and their bytes, as one JSON line (the last line of
 * the output: vigild reads it). */
static int estimate(int argc, char **argv)
{
	const char *dirs[RFS_MAX_DIRS], *globs[RFS_EXCLUDE_MAX];
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
		} else if (argv[i][0] == '/' && nd < RFS_MAX_DIRS) {
			dirs[nd++] = argv[i];
		} else {
			fprintf(stderr, "usage: vigil-rfs estimate DIR... [--exclude GLOB]... (absolute "
			        "DIRs, at most 16)\n");
			return EXIT_USAGE;
		}
	}
	if (!nd || rfs_exclude_set(globs, ng) < 0)
		return EXIT_USAGE;
	for (size_t d = 0; d < nd; d++)
		if (nftw(dirs[d], est_one, 64, FTW_PHYS | FTW_ACTIONRETVAL) != 0) {
			fprintf(stderr, "vigil-rfs estimate: %s: %s\n", dirs[d], strerror(errno));
			return EXIT_RUNTIME;
		}
	printf("{\"files\": %" PRIu64 ", \"bytes\": %" PRIu64 "}\n", est_files, est_bytes);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: vigil-rfs outdate --state DIR [--full]\n"
	        "       vigil-rfs forcestart --state DIR [--peer-name NAME]\n"
	        "       vigil-rfs gen --state DIR\n"
	        "  outdate: record that this copy lacks changes the peer acknowledged;\n"
	        "           --full: also forget its generations, so it is copied whole\n"
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
		if (full)
			memset(&g, 0, sizeof(g));       /* a copy no PRIM knows */
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
		         meta, full ? "; its generations are forgotten: it will be copied whole" : "");
	} else {
		rfs_gen_forcestart_msg(&before, peer, msg, sizeof(msg));
		log_warn("forcestart: %s", msg);
	}
	return 0;
}
