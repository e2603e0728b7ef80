/* vigil-rfs: serves a directory through FUSE mounted over that same
 * directory, the backing files reached through a descriptor opened before
 * the mount, so applications keep their paths. Every change goes through
 * rfs_journal_op() (rfs_op.h), which the replication ships to SECOND.
 *
 *   vigil-rfs mount DIR [--foreground] [--verbose] [--cache direct|page]
 *
 * Runs until SIGTERM/SIGINT/SIGHUP or `fusermount3 -u DIR`, then unmounts.
 * Exit: 0 clean stop, 1 runtime failure, 2 bad usage or bad DIR. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <mntent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "common/log.h"
#include "rfs/rfs_fs.h"
#include "rfs/rfs_mount.h"
#include "rfs/rfs_ops.h"
#include "vigil_build.h"


struct opts {
	const char *dir;
	bool foreground;
	bool verbose;
	bool page_cache;
};

static void usage(FILE *out)
{
	fprintf(out, "usage: vigil-rfs mount DIR [--foreground] [--verbose] [--cache direct|page]\n"
		     "       vigil-rfs prim DIR... --peer ADDR:PORT --secret FILE --state DIR [options]\n"
		     "       vigil-rfs second DIR... --listen ADDR:PORT --secret FILE --state DIR [options]\n"
		     "       vigil-rfs outdate|forcestart|gen --state DIR   (for vigild)\n"
		     "       vigil-rfs estimate DIR... [--exclude GLOB]...  (for vigild)\n"
		     "  (vigil-rfs prim --help: the replication options)\n"
		     "  mount: serves DIR through FUSE mounted over DIR itself.\n"
		     "  --foreground  stay in the foreground, log to stderr\n"
		     "  --verbose     log every change (debug level)\n"
		     "  --cache       direct (default): no kernel page cache for file data,\n"
		     "                fastest writes, but a shared mmap of a file fails (ENODEV);\n"
		     "                page: the kernel caches file data, shared mmap works\n");
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	int i;

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		exit(0);
	}
	if (argc >= 2 && !strcmp(argv[1], "--version")) {
		printf("vigil-rfs %s (libfuse %s)\n", VIGIL_VERSION, fuse_pkgversion());
		exit(0);
	}
	if (argc < 2 || strcmp(argv[1], "mount") != 0) {
		fprintf(stderr, "vigil-rfs: %s\n", argc < 2 ? "missing command"
			: "unknown command (mount, prim, second, outdate, forcestart, gen or estimate)");
		usage(stderr);
		return -1;
	}
	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--foreground") || !strcmp(argv[i], "-f"))
			o->foreground = true;
		else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v"))
			o->verbose = true;
		else if (!strcmp(argv[i], "--cache")) {
			const char *v = i + 1 < argc ? argv[++i] : "";

			if (strcmp(v, "direct") != 0 && strcmp(v, "page") != 0) {
				fprintf(stderr, "vigil-rfs: --cache: must be direct or page; "
					"got '%s'\n", v);
				return -1;
			}
			o->page_cache = !strcmp(v, "page");
		}
		else if (argv[i][0] == '-') {
			fprintf(stderr, "vigil-rfs: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return -1;
		} else if (o->dir) {
			fprintf(stderr, "vigil-rfs: one DIR only ('%s' and '%s')\n", o->dir, argv[i]);
			return -1;
		} else
			o->dir = argv[i];
	}
	if (!o->dir || !o->dir[0]) {
		fprintf(stderr, "vigil-rfs: mount needs a DIR\n");
		usage(stderr);
		return -1;
	}
	return 0;
}

/* Resolves and opens DIR, refusing what cannot be served. On success the
 * O_PATH fd of the directory (to become the backing root) and its absolute
 * path in real. Messages name DIR and say what is wrong. */
/* A vigil-rfs mount whose server died (ENOTCONN) is of no use to anyone:
 * detach it, so that the dir underneath can be served or applied to
 * again. Only a mount of vigil-rfs exactly at dir. True if detached. */
static bool detach_dead_mount(const char *dir)
{
	FILE *f = setmntent("/proc/self/mounts", "r");
	struct mntent *m;
	bool ours = false;

	if (!f)
		return false;
	while ((m = getmntent(f)))
		if (!strcmp(m->mnt_dir, dir) && !strcmp(m->mnt_type, "fuse.vigil-rfs"))
			ours = true;
	endmntent(f);
	if (!ours || umount2(dir, MNT_DETACH) < 0)
		return false;
	log_warn("%s: detached the mount of a vigil-rfs that died", dir);
	return true;
}

int rfs_open_dir(const char *dir, char *real, int *out_fd)
{
	struct statfs sfs;
	struct stat st;
	int fd;

	bool found = realpath(dir, real) != NULL;

	if (!found && errno == ENOTCONN && dir[0] == '/' && detach_dead_mount(dir))
		found = realpath(dir, real) != NULL;
	if (found) {
		/* The mount point itself resolves; only using it says ENOTCONN. */
		struct statfs probe;

		if (statfs(real, &probe) < 0 && errno == ENOTCONN && detach_dead_mount(real))
			found = realpath(dir, real) != NULL;
	}
	if (!found) {
		if (errno == ENOENT)
			fprintf(stderr, "vigil-rfs: %s: no such directory\n", dir);
		else if (errno == ENOTDIR)
			fprintf(stderr, "vigil-rfs: %s: not a directory (a component of the path "
				"is a file)\n", dir);
		else if (errno == ENOTCONN)
			fprintf(stderr, "vigil-rfs: %s: %s (a FUSE mount whose server died? "
				"remove it with 'fusermount3 -uz %s')\n", dir, strerror(errno), dir);
		else
			fprintf(stderr, "vigil-rfs: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	fd = open(real, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOTDIR)
			fprintf(stderr, "vigil-rfs: %s: not a directory\n", dir);
		else
			fprintf(stderr, "vigil-rfs: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	if (fstatfs(fd, &sfs) < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "vigil-rfs: %s: %s\n", dir, strerror(errno));
		close(fd);
		return -1;
	}
	if (sfs.f_type == FUSE_SUPER_MAGIC) {
		fprintf(stderr, "vigil-rfs: %s: already on a FUSE file system (another vigil-rfs "
			"mount?); refusing to mount over it\n", dir);
		close(fd);
		return -1;
	}
	*out_fd = fd;
	return 0;
}

/* Each inode the kernel knows holds an fd: allow as many as permitted. */
void rfs_raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("cannot raise the open file limit: %s", strerror(errno));
	}
}

void rfs_fuse_to_log(enum fuse_log_level level, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (level <= FUSE_LOG_ERR)
		log_error("libfuse: %s", buf);
	else if (level <= FUSE_LOG_WARNING)
		log_warn("libfuse: %s", buf);
	else if (level <= FUSE_LOG_INFO)
		log_info("libfuse: %s", buf);
	else
		log_debug("libfuse: %s", buf);
}

/* The backing mount's suid/dev/exec/ro flags, for the FUSE mount to
 * behave like it (libfuse would add nosuid,nodev). Only root may ask for
 * suid and dev. */
static const char *mirror_flags(int root_fd, bool root)
{
	static char buf[64];
	struct statvfs sv;

	if (fstatvfs(root_fd, &sv) < 0) {
		log_warn("statvfs of the backing directory: %s; mounting nosuid,nodev",
			 strerror(errno));
		return "nosuid,nodev";
	}
	snprintf(buf, sizeof(buf), "%s,%s,%s,%s",
		 (sv.f_flag & ST_NOSUID) || !root ? "nosuid" : "suid",
		 (sv.f_flag & ST_NODEV) || !root ? "nodev" : "dev",
		 (sv.f_flag & ST_NOEXEC) ? "noexec" : "exec",
		 (sv.f_flag & ST_RDONLY) ? "ro" : "rw");
	return buf;
}

/* -o options of the mount. 0 or -1. */
int rfs_mount_args(struct fuse_args *args, const char *real, int root_fd, bool root)
{
	char *o = NULL, fsname[PATH_MAX + 32];
	int rc;

	snprintf(fsname, sizeof(fsname), "fsname=vigil-rfs:%s", real);
	/* default_permissions: the kernel checks access against the
	 * attributes, as the backing file system would; this daemon then
	 * acts as root. allow_other: the service's users are not root. */
	rc = fuse_opt_add_arg(args, "vigil-rfs") || fuse_opt_add_opt(&o, "default_permissions") ||
	     (root && fuse_opt_add_opt(&o, "allow_other")) ||
	     fuse_opt_add_opt(&o, mirror_flags(root_fd, root)) ||
	     fuse_opt_add_opt(&o, "subtype=vigil-rfs") || fuse_opt_add_opt_escaped(&o, fsname) ||
	     fuse_opt_add_arg(args, "-o") || fuse_opt_add_arg(args, o);
	free(o);
	return rc ? -1 : 0;
}

void rfs_log_stats(const struct rfs_fs *fs)
{
	struct rfs_stats st;
	uint64_t total = 0;

	rfs_stats_get(&st);
	for (size_t i = 0; i < RFS_OP_COUNT; i++)
		total += st.ops[i];
	log_info("%s: %" PRIu64 " changes journaled (%" PRIu64 " writes, %" PRIu64 " bytes)",
		 fs->dir, total, st.ops[RFS_OP_WRITE], st.bytes_written);
}

int rfs_serve(struct rfs_fs *fs, const char *real, bool foreground, bool verbose)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_lowlevel_ops ops;
	struct fuse_loop_config *cfg = NULL;
	struct fuse_session *se;
	int rc = EXIT_RUNTIME, ret;

	rfs_ops_build(&ops);
	if (rfs_mount_args(&args, real, fs->itab.root.fd, fs->self_uid == 0) < 0) {
		log_error("out of memory");
		goto out_args;
	}
	se = fuse_session_new(&args, &ops, sizeof(ops), fs);
	if (!se) {
		log_error("%s: cannot create the FUSE session", real);
		goto out_args;
	}
	if (fuse_set_signal_handlers(se) != 0) {
		log_error("cannot install signal handlers");
		goto out_session;
	}
	if (fuse_session_mount(se, real) != 0) {
		log_error("%s: cannot mount FUSE over it (is /dev/fuse there? are we root?)", real);
		goto out_signals;
	}
	log_info("%s: mounted", real);
	if (!foreground) {
		/* Forks: the parent exits once the mount is up. */
		if (fuse_daemonize(0) != 0) {
			log_error("cannot go to the background");
			goto out_unmount;
		}
		log_init("vigil-rfs", false, verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	} else if (chdir("/") < 0) {
		log_warn("chdir /: %s", strerror(errno));
	}
	cfg = fuse_loop_cfg_create();
	if (!cfg) {
		log_error("out of memory");
		goto out_unmount;
	}
	/* One /dev/fuse fd per worker thread: no contention on one queue. */
	fuse_loop_cfg_set_clone_fd(cfg, 1);
	ret = fuse_session_loop_mt(se, cfg);
	if (ret < 0)
		log_error("%s: session loop failed: %s", real, strerror(-ret));
	else
		rc = 0;
	if (ret > 0)
		log_info("%s: stopping on signal %d", real, ret);
out_unmount:
	fuse_session_unmount(se);
	log_info("%s: unmounted", real);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_args:
	if (cfg)
		fuse_loop_cfg_destroy(cfg);
	fuse_opt_free_args(&args);
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	struct rfs_fs fs = { 0 };
	char real[PATH_MAX];
	int root_fd, rc;

	if (argc >= 2 && (!strcmp(argv[1], "prim") || !strcmp(argv[1], "second")))
		return rfs_repl_main(argc, argv);
	if (argc >= 2 && (!strcmp(argv[1], "outdate") || !strcmp(argv[1], "forcestart") ||
	                  !strcmp(argv[1], "gen") || !strcmp(argv[1], "estimate")))
		return rfs_gencmd_main(argc, argv);
	if (parse_args(argc, argv, &o) < 0)
		return EXIT_USAGE;
	log_init("vigil-rfs", true, o.verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	fuse_set_log_func(rfs_fuse_to_log);
	if (rfs_open_dir(o.dir, real, &root_fd) < 0)
		return EXIT_USAGE;
	rfs_raise_fd_limit();
	/* Modes arrive with the caller's umask applied by the kernel, or (with
	 * DONT_MASK) a worker sets it on its own thread before creating. */
	umask(0);
	fs.dir = real;
	fs.verbose = o.verbose;
	fs.direct_io = !o.page_cache;
	fs.self_uid = geteuid();
	fs.self_gid = getegid();
	rfs_journal_set_verbose(o.verbose);
	if (rfs_itable_init(&fs.itab, root_fd) < 0) {
		close(root_fd);
		return EXIT_RUNTIME;
	}
	rc = rfs_serve(&fs, real, o.foreground, o.verbose);
	rfs_log_stats(&fs);
	rfs_files_close_all();
	rfs_itable_destroy(&fs.itab);
	return rc;
}
