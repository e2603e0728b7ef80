/* vigil-rfs prim / second: replication between two copies of a directory
 * (docs/design/rfs.md). Both stay in the foreground: vigild supervises
 * them (or a test does).
 *
 *   vigil-rfs prim DIR... --peer ADDR:PORT --secret FILE --state DIR [--mode sync|async]
 *   vigil-rfs second DIR... --listen ADDR:PORT --secret FILE --state DIR
 *
 * prim tries the SECOND first (for --connect-timeout ms), so that a SECOND
 * that is there gets every change, then mounts each DIR over itself and
 * ships every change (prim.c: without a SECOND it goes on alone and
 * redials). second applies what it receives to its DIRs, which it does not
 * mount; a copy that is not the PRIM's is set aside under --aside and
 * rebuilt (docs/design/rfs.md §5.4). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "rfs/exclude.h"
#include "rfs/gen.h"
#include "rfs/prim.h"
#include "rfs/rfs_mount.h"
#include "rfs/second.h"
#include "rfs/stream.h"
#include "vigil_build.h"

#define STATUS_MS 50
#define SECRET_MIN 16

struct ropts {
	bool prim;
	const char *dirs[RFS_MAX_DIRS];
	int ndirs;
	const char *addr, *secret_file, *cluster, *node, *status, *state, *aside;
	char meta[PATH_MAX];
	char journal[PATH_MAX];
	char verify[PATH_MAX];
	const char *exclude[RFS_EXCLUDE_MAX];
	size_t nexclude;
	enum rfs_mode mode;
	bool page_cache, verbose, hold_on_loss;
	uint64_t ack_timeout_ms, connect_timeout_ms, queue_max, ckpt_ms;
};

static volatile sig_atomic_t stop_flag;

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: vigil-rfs prim DIR... --peer ADDR:PORT --secret FILE --state DIR [options]\n"
	        "       vigil-rfs second DIR... --listen ADDR:PORT --secret FILE --state DIR [options]\n"
	        "  prim: mounts each DIR over itself and ships every change to the SECOND.\n"
	        "  second: applies the changes it receives to its DIRs (not mounted), the\n"
	        "  first PRIM DIR to the first SECOND DIR, and so on (at most 16).\n"
	        "  A SECOND whose copy is not the PRIM's (generations differ, or a first\n"
	        "  start) sets it aside under --aside (default --state) and gets a full\n"
	        "  copy while the PRIM serves. Both stay in the foreground.\n"
	        "  --secret FILE           the cluster secret (16 to 1024 bytes), same on both\n"
	        "  --state DIR             this node's replication state: generations, and the\n"
	        "                          copies a SECOND sets aside unless --aside\n"
	        "  --aside DIR             second: where a copy that is not the PRIM's is moved\n"
	        "                          before a full copy (same file system as DIRs)\n"
	        "  --cluster NAME          cluster name, same on both (default vigil)\n"
	        "  --node NAME             this node's name (default: the host name)\n"
	        "  --status FILE           keep a JSON status in FILE\n"
	        "  --mode sync|async       prim: wait for SECOND (default sync) or not\n"
	        "  --cache direct|page     prim: as for mount (default direct)\n"
	        "  --ack-timeout MS        no acknowledgement for MS: SECOND is lost (default 5000)\n"
	        "  --connect-timeout MS    prim: how long to try to reach SECOND (default 10000)\n"
	        "  --queue-max BYTES       prim: changes waiting to be sent (default 67108864)\n"
	        "  --checkpoint MS         second: syncfs of the copy at most this often (1000)\n"
	        "  --exclude GLOB          prim: files and dirs whose name matches are served\n"
	        "                          but not replicated (repeatable, e.g. '*.tmp');\n"
	        "                          second: kept when reintegration prunes the copy\n"
	        "  --hold-on-loss          prim: before going on without SECOND, hold every\n"
	        "                          change until SIGUSR1 (vigild marked the peer's copy\n"
	        "                          outdated, or the peer is lost)\n"
	        "  --verbose               log every change\n");
}

static int bad(const char *opt, const char *val, const char *why)
{
	fprintf(stderr, "vigil-rfs: %s '%s': %s\n", opt, val ? val : "", why);
	return -1;
}

static int num(const char *opt, const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
	char why[96];

	if (parse_u64(v, min, max, out) == 0)
		return 0;
	snprintf(why, sizeof(why), "must be a number from %" PRIu64 " to %" PRIu64, min, max);
	return bad(opt, v, why);
}

static int parse(int argc, char **argv, struct ropts *o)
{
	static const struct option longs[] = {
		{ "peer", required_argument, NULL, 'p' },
		{ "listen", required_argument, NULL, 'l' },
		{ "secret", required_argument, NULL, 's' },
		{ "cluster", required_argument, NULL, 'c' },
		{ "node", required_argument, NULL, 'n' },
		{ "status", required_argument, NULL, 'S' },
		{ "mode", required_argument, NULL, 'm' },
		{ "cache", required_argument, NULL, 'C' },
		{ "ack-timeout", required_argument, NULL, 'a' },
		{ "connect-timeout", required_argument, NULL, 't' },
		{ "queue-max", required_argument, NULL, 'q' },
		{ "checkpoint", required_argument, NULL, 'k' },
		{ "exclude", required_argument, NULL, 'x' },
		{ "state", required_argument, NULL, 'T' },
		{ "aside", required_argument, NULL, 'A' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "hold-on-loss", no_argument, NULL, 'H' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int c;

	o->prim = !strcmp(argv[1], "prim");
	optind = 2;
	while ((c = getopt_long(argc, argv, "vfh", longs, NULL)) != -1) {
		switch (c) {
		case 'p': o->addr = o->prim ? optarg : NULL;
			if (!o->prim)
				return bad("--peer", optarg, "is for prim (second uses --listen)");
			break;
		case 'l': o->addr = !o->prim ? optarg : NULL;
			if (o->prim)
				return bad("--listen", optarg, "is for second (prim uses --peer)");
			break;
		case 's': o->secret_file = optarg; break;
		case 'T': o->state = optarg; break;
		case 'A':
			if (o->prim)
				return bad("--aside", optarg, "is for second");
			if (optarg[0] != '/')
				return bad("--aside", optarg, "must be an absolute path");
			o->aside = optarg;
			break;
		case 'c': o->cluster = optarg; break;
		case 'n': o->node = optarg; break;
		case 'S': o->status = optarg; break;
		case 'm':
			if (!strcmp(optarg, "sync"))
				o->mode = RFS_MODE_SYNC;
			else if (!strcmp(optarg, "async"))
				o->mode = RFS_MODE_ASYNC;
			else
				return bad("--mode", optarg, "must be sync or async");
			break;
		case 'C':
			if (strcmp(optarg, "direct") && strcmp(optarg, "page"))
				return bad("--cache", optarg, "must be direct or page");
			o->page_cache = !strcmp(optarg, "page");
			break;
		case 'a': if (num("--ack-timeout", optarg, 100, 600000, &o->ack_timeout_ms)) return -1; break;
		case 't': if (num("--connect-timeout", optarg, 0, 3600000, &o->connect_timeout_ms)) return -1; break;
		case 'q': if (num("--queue-max", optarg, 4 << 20, 1ull << 34, &o->queue_max)) return -1; break;
		case 'k': if (num("--checkpoint", optarg, 10, 600000, &o->ckpt_ms)) return -1; break;
		case 'x': {
			const char *why;

			if (rfs_exclude_check(optarg, &why) < 0)
				return bad("--exclude", optarg, why);
			if (o->nexclude == RFS_EXCLUDE_MAX)
				return bad("--exclude", optarg, "at most 32 patterns");
			o->exclude[o->nexclude++] = optarg;
			break;
		}
		case 'v': o->verbose = true; break;
		case 'H':
			if (!o->prim)
				return bad("--hold-on-loss", "", "is for prim");
			o->hold_on_loss = true;
			break;
		case 'f': break;        /* always in the foreground */
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind >= argc || argc - optind > RFS_MAX_DIRS) {
		fprintf(stderr, "vigil-rfs %s: %s\n", argv[1],
		        optind >= argc ? "needs a DIR" : "at most 16 DIRs");
		return -1;
	}
	for (o->ndirs = 0; optind < argc; optind++)
		o->dirs[o->ndirs++] = argv[optind];
	if (!o->addr) {
		fprintf(stderr, "vigil-rfs %s: %s ADDR:PORT is required\n", argv[1],
		        o->prim ? "--peer" : "--listen");
		return -1;
	}
	if (!o->secret_file) {
		fprintf(stderr, "vigil-rfs %s: --secret FILE is required\n", argv[1]);
		return -1;
	}
	if (!o->state) {
		fprintf(stderr, "vigil-rfs %s: --state DIR is required (generations; copies set "
		        "aside go there too, so it must be on the dirs' file system)\n", argv[1]);
		return -1;
	}
	if (rfs_gen_meta_path(o->state, o->meta, sizeof(o->meta)) < 0 ||
	    (size_t)snprintf(o->journal, sizeof(o->journal), "%s/journal", o->state) >=
	            sizeof(o->journal) ||
	    rfs_gen_verify_path(o->state, o->verify, sizeof(o->verify)) < 0)
		return bad("--state", o->state, "must be an absolute path");
	return 0;
}

static int load_secret(const char *path, uint8_t *out, size_t *len)
{
	char *buf;
	size_t n;
	int e = read_file(path, CFG_SECRET_MAX + 1, &buf, &n);

	if (e < 0) {
		fprintf(stderr, "vigil-rfs: --secret %s: %s\n", path, strerror(-e));
		return -1;
	}
	if (n < SECRET_MIN || n > CFG_SECRET_MAX) {
		fprintf(stderr, "vigil-rfs: --secret %s: %zu bytes; must be %d to %d\n", path, n,
		        SECRET_MIN, CFG_SECRET_MAX);
		explicit_bzero(buf, n);
		free(buf);
		return -1;
	}
	memcpy(out, buf, n);
	*len = n;
	explicit_bzero(buf, n);
	free(buf);
	return 0;
}

/* ---- status file ---- */

static struct {
	const char *path;
	bool prim;
	pthread_t thread;
	bool running;
	char last[2048];
} stf;

/* The error texts hold raw file names, cut by bytes: JSON wants UTF-8.
 * Invalid or cut sequences become '?', so the status never freezes. */
static const char *utf8_clean(const char *in, char *out, size_t len)
{
	size_t o = 0;
	const unsigned char *p = (const unsigned char *)in;

	while (*p && o + 1 < len) {
		int n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 :
		        (*p & 0xf8) == 0xf0 ? 4 : 0;
		int ok = n > 0 && (n == 1 || *p >= 0xc2) && (*p <= 0xf4);

		for (int i = 1; ok && i < n; i++)
			ok = (p[i] & 0xc0) == 0x80;
		if (ok && n == 3)
			ok = !(p[0] == 0xe0 && p[1] < 0xa0) && !(p[0] == 0xed && p[1] >= 0xa0);
		if (ok && n == 4)
			ok = !(p[0] == 0xf0 && p[1] < 0x90) && !(p[0] == 0xf4 && p[1] >= 0x90);
		if (!ok || o + (size_t)n >= len) {
			out[o++] = '?';
			p++;
			continue;
		}
		memcpy(out + o, p, (size_t)n);
		o += (size_t)n;
		p += n;
	}
	out[o] = 0;
	return out;
}

static json_t *status_json(void)
{
	char err[sizeof(((struct rfs_stream_status *)0)->error) + 8];

	if (stf.prim) {
		static struct rfs_stream_status s;  /* the last one read: a hold keeps the lock */
		json_t *j;

		rfs_stream_status_try(&s);
		j = json_pack("{s:s, s:i, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:b, s:I}",
		              "role", "prim", "pid", (int)getpid(), "link", rfs_link_state_str(s.state),
		              "mode", rfs_mode_str(s.mode), "seq", (json_int_t)s.seq,
		              "recv", (json_int_t)s.recv, "applied", (json_int_t)s.applied,
		              "durable", (json_int_t)s.durable, "queued_bytes", (json_int_t)s.queued_bytes,
		              "sent_bytes", (json_int_t)s.sent_bytes, "unshipped", (json_int_t)s.unshipped,
		              "error", utf8_clean(s.error, err, sizeof(err)),
		              "mounted", __atomic_load_n(&rfs_serve_mounted, __ATOMIC_ACQUIRE),
		              "hold", (json_int_t)rfs_prim_holding());
		if (j && s.resyncing)
			json_object_set_new(j, "resync", json_pack("{s:I, s:I}", "bytes_total",
			                                           (json_int_t)s.resync_total, "bytes_done",
			                                           (json_int_t)s.resync_done));
		return j;
	} else {
		struct rfs_second_status s;

		rfs_second_status(&s);
		return json_pack("{s:s, s:i, s:s, s:b, s:I, s:I, s:I, s:I, s:s, s:s}", "role", "second",
		                 "pid", (int)getpid(), "link", s.connected ? "connected" : "listening", "uptodate", s.uptodate,
		                 "recv", (json_int_t)s.recv, "applied", (json_int_t)s.applied,
		                 "durable", (json_int_t)s.durable, "ckpt", (json_int_t)s.ckpt,
		                 "peer", s.peer, "error", utf8_clean(s.error, err, sizeof(err)));
	}
}

static void status_write(void)
{
	json_t *j = status_json();
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	int e;

	json_decref(j);
	if (!text)
		return;
	if (strcmp(text, stf.last) != 0) {
		/* Not fsynced: a view for people and tests, rewritten often. */
		char tmp[PATH_MAX];
		FILE *f;

		snprintf(tmp, sizeof(tmp), "%s.tmp", stf.path);
		f = fopen(tmp, "w");
		e = f ? 0 : errno;
		if (f && (fprintf(f, "%s\n", text) < 0 || fclose(f) != 0))
			e = EIO;
		if (!e && rename(tmp, stf.path) < 0)
			e = errno;
		if (e)
			log_warn("status file %s: %s", stf.path, strerror(e));
		else
			snprintf(stf.last, sizeof(stf.last), "%s", text);
	}
	free(text);
}

static void *status_main(void *arg)
{
	(void)arg;
	while (__atomic_load_n(&stf.running, __ATOMIC_RELAXED)) {
		status_write();
		usleep(STATUS_MS * 1000);
	}
	return NULL;
}

static void status_start(const char *path, bool prim)
{
	static char abs[PATH_MAX];

	/* The mount moves the working directory to /. */
	if (path && path[0] != '/') {
		char cwd[PATH_MAX];

		size_t lc, lp = strlen(path);

		if (getcwd(cwd, sizeof(cwd)) && (lc = strlen(cwd)) + 1 + lp < sizeof(abs)) {
			memcpy(abs, cwd, lc);
			abs[lc] = '/';
			memcpy(abs + lc + 1, path, lp + 1);
			path = abs;
		}
	}
	stf.path = path;
	stf.prim = prim;
	if (!path)
		return;
	stf.running = true;
	if (pthread_create(&stf.thread, NULL, status_main, NULL) != 0) {
		log_warn("status file %s: no thread; not kept", path);
		stf.running = false;
	}
}

static void status_stop(void)
{
	if (!stf.running)
		return;
	__atomic_store_n(&stf.running, false, __ATOMIC_RELAXED);
	pthread_join(stf.thread, NULL);
	status_write();
}

/* ---- the two roles ---- */

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void on_release(int sig)
{
	(void)sig;
	rfs_prim_release();
}

static int run_second(const struct ropts *o, const int *root_fd,
                      const struct rfs_link_cfg *link)
{
	struct rfs_second_cfg cfg = { .ndirs = (uint8_t)o->ndirs, .listen = o->addr, .link = *link,
	                              .ckpt_ms = (uint32_t)o->ckpt_ms, .meta = o->meta,
	                              .journal = o->journal, .verify = o->verify,
	                              .aside_dir = o->aside ? o->aside : o->state };
	struct sigaction sa = { .sa_handler = on_stop };
	int rc;

	memcpy(cfg.root_fd, root_fd, sizeof(int) * (size_t)o->ndirs);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	status_start(o->status, false);
	rc = rfs_second_run(&cfg, &stop_flag);
	status_stop();
	return rc < 0 ? EXIT_RUNTIME : 0;
}

static int run_prim(const struct ropts *o, const int *root_fd, char (*real)[PATH_MAX],
                    const struct rfs_link_cfg *link)
{
	struct rfs_prim_cfg pc = { .stream = { .mode = o->mode, .queue_max = o->queue_max,
	                                       .ack_timeout_ms = (uint32_t)o->ack_timeout_ms,
	                                       .ndirs = (uint8_t)o->ndirs },
	                           .link = *link, .peer = o->addr,
	                           .connect_timeout_ms = o->connect_timeout_ms, .meta = o->meta,
	                           .journal = o->journal };
	struct rfs_fs fs[RFS_MAX_DIRS] = { 0 }, *fsp[RFS_MAX_DIRS];
	struct stat st;
	int rc = EXIT_RUNTIME, ntab = 0;

	struct sigaction sa = { .sa_handler = on_release };
	sigset_t stops;

	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGUSR1, &sa, NULL);
	/* Before any thread starts: a stop signal must wait for the serve
	 * loop's sigtimedwait, not kill the process on some other thread. */
	sigemptyset(&stops);
	sigaddset(&stops, SIGTERM);
	sigaddset(&stops, SIGINT);
	sigaddset(&stops, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stops, NULL);
	pc.hold_on_loss = o->hold_on_loss;
	for (int d = 0; d < o->ndirs; d++) {
		if (fstat(root_fd[d], &st) < 0) {
			log_error("%s: %s", real[d], strerror(errno));
			return EXIT_RUNTIME;
		}
		pc.stream.root_ino[d] = st.st_ino;
		pc.root_fd[d] = root_fd[d];
	}
	for (; ntab < o->ndirs; ntab++) {
		struct rfs_fs *f = &fs[ntab];

		f->dir = real[ntab];
		f->verbose = o->verbose;
		f->direct_io = !o->page_cache;
		f->self_uid = geteuid();
		f->self_gid = getegid();
		if (rfs_itable_init(&f->itab, root_fd[ntab]) < 0)
			goto out;
		rfs_itable_set_dir(&f->itab, (uint8_t)ntab);
		fsp[ntab] = f;
	}
	/* SECOND first (or the decision to go on without it): then mount.
	 * The status runs already: a hold at the start shows in it. */
	status_start(o->status, true);
	if (rfs_prim_start(&pc) < 0) {
		status_stop();
		goto out_tables;
	}
	rc = rfs_serve_many(fsp, o->ndirs, o->verbose);
	if (!rfs_prim_stop((uint32_t)o->ack_timeout_ms * 2) && rc == 0)
		log_warn("SECOND did not get every change");
	status_stop();
	if (o->ndirs == 1)
		rfs_log_stats(&fs[0]);
	else {
		struct rfs_stats rs;
		uint64_t total = 0;

		rfs_stats_get(&rs);
		for (size_t i = 0; i < RFS_OP_COUNT; i++)
			total += rs.ops[i];
		log_info("%d dirs: %" PRIu64 " changes journaled (%" PRIu64 " bytes written)", o->ndirs,
		         total, rs.bytes_written);
	}
	goto out_tables;
out:
	for (int d = ntab; d < o->ndirs; d++)
		close(root_fd[d]);
out_tables:
	rfs_files_close_all();
	for (int d = 0; d < ntab; d++)
		rfs_itable_destroy(&fs[d].itab);
	return rc;
}

/* Two DIRs that are one, or one inside the other, cannot both be served. */
static int check_dirs(const struct ropts *o, char (*real)[PATH_MAX])
{
	for (int i = 0; i < o->ndirs; i++)
		for (int j = 0; j < o->ndirs; j++) {
			size_t li = strlen(real[i]);

			if (i == j || strncmp(real[i], real[j], li) != 0)
				continue;
			if (real[j][li] == 0 && i < j) {
				fprintf(stderr, "vigil-rfs: %s and %s are the same directory\n", o->dirs[i],
				        o->dirs[j]);
				return -1;
			}
			if (real[j][li] == '/' || (li == 1 && real[j][1])) {
				fprintf(stderr, "vigil-rfs: %s is inside %s: replicated directories "
				        "must not nest\n", o->dirs[j], o->dirs[i]);
				return -1;
			}
		}
	return 0;
}

int rfs_repl_main(int argc, char **argv)
{
	struct ropts o = { .cluster = "vigil", .mode = RFS_MODE_SYNC, .ack_timeout_ms = 5000,
	                   .connect_timeout_ms = 10000, .queue_max = 64 << 20, .ckpt_ms = 1000 };
	struct rfs_link_cfg link = { 0 };
	uint8_t secret[CFG_SECRET_MAX];
	char real[RFS_MAX_DIRS][PATH_MAX], host[64], list[32];
	int root_fd[RFS_MAX_DIRS], rc, nopen = 0;

	if (parse(argc, argv, &o) < 0)
		return EXIT_USAGE;
	log_init("vigil-rfs", true, o.verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	fuse_set_log_func(rfs_fuse_to_log);
	if (!o.node) {
		if (gethostname(host, sizeof(host)) < 0)
			snprintf(host, sizeof(host), "node");
		host[sizeof(host) - 1] = 0;
		o.node = host;
	}
	if (!*o.cluster || strlen(o.cluster) > WIRE_HELLO_NAME_MAX)
		return bad("--cluster", o.cluster, "must be 1 to 63 bytes") < 0 ? EXIT_USAGE : 0;
	if (strlen(o.node) > WIRE_HELLO_NAME_MAX)
		return bad("--node", o.node, "must be 1 to 63 bytes") < 0 ? EXIT_USAGE : 0;
	if (load_secret(o.secret_file, secret, &link.secret_len) < 0)
		return EXIT_USAGE;
	for (; nopen < o.ndirs; nopen++)
		if (rfs_open_dir(o.dirs[nopen], real[nopen], &root_fd[nopen]) < 0)
			goto bad_dirs;
	if (check_dirs(&o, real) < 0)
		goto bad_dirs;
	link.secret = secret;
	link.cluster = o.cluster;
	link.node = o.node;
	link.role = o.prim ? WIRE_ROLE_PRIM : WIRE_ROLE_SECOND;
	link.io_timeout_ms = (uint32_t)o.ack_timeout_ms;
	/* The paths may differ between the nodes (not under vigild): both
	 * sides must agree on how many dirs the stream carries. */
	snprintf(list, sizeof(list), "vigil-rfs dirs: %d", o.ndirs);
	EVP_Digest(list, strlen(list), link.dirs_hash, NULL, EVP_sha256(), NULL);
	if (rfs_exclude_set(o.exclude, o.nexclude) < 0)
		goto bad_dirs;
	rc = mkdir_p(o.state, 0700);
	if (rc < 0) {
		fprintf(stderr, "vigil-rfs: --state %s: cannot create it: %s\n", o.state, strerror(-rc));
		goto bad_dirs;
	}
	rfs_raise_fd_limit();
	umask(0);
	rfs_journal_set_verbose(o.verbose);
	rc = o.prim ? run_prim(&o, root_fd, real, &link) : run_second(&o, root_fd, &link);
	if (!o.prim)
		for (int d = 0; d < o.ndirs; d++)
			close(root_fd[d]);
	explicit_bzero(secret, sizeof(secret));
	return rc;
bad_dirs:
	while (nopen--)
		close(root_fd[nopen]);
	explicit_bzero(secret, sizeof(secret));
	return EXIT_USAGE;
}
