/* vigil-rfs outdate|forcestart|gen --state DIR: what vigild does to this
 * node's generations while no vigil-rfs of its own may be running. They
 * run as children of vigild, so that its loop never waits for the disk. */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "rfs/gen.h"
#include "rfs/rfs_mount.h"

static int usage(void)
{
	fprintf(stderr, "usage: vigil-rfs outdate --state DIR\n"
	        "       vigil-rfs forcestart --state DIR [--peer-name NAME]\n"
	        "       vigil-rfs gen --state DIR\n"
	        "  outdate: record that this copy lacks changes the peer acknowledged\n"
	        "  forcestart: this copy serves whatever it lacks; says what may be lost\n"
	        "  gen: print the generations as JSON\n");
	return EXIT_USAGE;
}

int rfs_gencmd_main(int argc, char **argv)
{
	const char *state = NULL, *peer = "the peer";
	char meta[4096], err[512], msg[512];
	struct rfs_gen g, before;
	int r;

	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--state") && i + 1 < argc)
			state = argv[++i];
		else if (!strcmp(argv[i], "--peer-name") && i + 1 < argc && !strcmp(argv[1], "forcestart"))
			peer = argv[++i];
		else
			return usage();
	}
	if (!state || state[0] != '/' || strlen(state) + sizeof("/meta") > sizeof(meta)) {
		fprintf(stderr, "vigil-rfs %s: --state DIR (absolute) is required\n", argv[1]);
		return EXIT_USAGE;
	}
	log_init("vigil-rfs", true, LOG_LVL_INFO);
	snprintf(meta, sizeof(meta), "%s/meta", state);
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
		log_info("%s: this copy is marked outdated: it lacks changes the peer acknowledged", meta);
	} else {
		rfs_gen_forcestart_msg(&before, peer, msg, sizeof(msg));
		log_warn("forcestart: %s", msg);
	}
	return 0;
}
