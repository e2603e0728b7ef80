/* Serving several replicated directories from one process: one FUSE
 * session per directory, each on its own loop thread; the main thread
 * waits for a stop signal or for a session that ended by itself.
 *
 * Stopping unmounts with umount2() from the main thread: the kernel then
 * ends the connection, every worker's read fails, each loop returns, and
 * its thread cleans its session up. (libfuse's signal handlers serve one
 * session only, so signals are taken here with sigtimedwait.) */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "common/log.h"
#include "rfs/rfs_mount.h"
#include "rfs/rfs_ops.h"

#define WAIT_MS 200

struct session {
	struct rfs_fs *fs;
	struct fuse_session *se;
	struct fuse_args args;
	pthread_t thread;
	bool running;
	bool mounted;
	int ret;
	volatile bool ended;
};

static void *loop_main(void *arg)
{
	struct session *s = arg;
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();

	if (!cfg) {
		log_error("%s: out of memory", s->fs->dir);
		s->ret = -ENOMEM;
	} else {
		fuse_loop_cfg_set_clone_fd(cfg, 1);
		s->ret = fuse_session_loop_mt(s->se, cfg);
		fuse_loop_cfg_destroy(cfg);
	}
	__atomic_store_n(&s->ended, true, __ATOMIC_RELEASE);
	return NULL;
}

static int start(struct session *s, bool verbose)
{
	struct fuse_lowlevel_ops ops;

	(void)verbose;
	rfs_ops_build(&ops);
	if (rfs_mount_args(&s->args, s->fs->dir, s->fs->itab.root.fd, s->fs->self_uid == 0) < 0) {
		log_error("out of memory");
		return -1;
	}
	s->se = fuse_session_new(&s->args, &ops, sizeof(ops), s->fs);
	if (!s->se) {
		log_error("%s: cannot create the FUSE session", s->fs->dir);
		return -1;
	}
	if (fuse_session_mount(s->se, s->fs->dir) != 0) {
		log_error("%s: cannot mount FUSE over it (is /dev/fuse there? are we root?)",
		          s->fs->dir);
		return -1;
	}
	s->mounted = true;
	log_info("%s: mounted", s->fs->dir);
	if (pthread_create(&s->thread, NULL, loop_main, s) != 0) {
		log_error("%s: cannot start the session thread", s->fs->dir);
		return -1;
	}
	s->running = true;
	return 0;
}

/* Unmounts from outside the session: its loop then ends by itself. A busy
 * mount (an application still in it) is detached: it keeps being served
 * until its last user leaves. */
static void unmount_dir(const char *dir)
{
	if (umount2(dir, 0) == 0)
		return;
	if (errno == EBUSY) {
		log_warn("%s: busy; detaching (served until its last user leaves)", dir);
		if (umount2(dir, MNT_DETACH) == 0)
			return;
	}
	if (errno != EINVAL)            /* EINVAL: not mounted any more */
		log_error("%s: unmount: %s", dir, strerror(errno));
}

bool rfs_serve_mounted, rfs_serve_stopping;

int rfs_serve_many(struct rfs_fs **fs, int n, bool verbose)
{
	struct session *ss = calloc((size_t)n, sizeof(*ss));
	sigset_t set, old;
	int rc = 0, sig = 0;

	if (!ss) {
		log_error("out of memory");
		return EXIT_RUNTIME;
	}
	/* Blocked before any thread starts: the session threads inherit the
	 * mask and the signals wait for sigtimedwait below. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	if (chdir("/") < 0)
		log_warn("chdir /: %s", strerror(errno));
	for (int i = 0; i < n; i++) {
		ss[i].fs = fs[i];
		ss[i].args = (struct fuse_args)FUSE_ARGS_INIT(0, NULL);
		if (start(&ss[i], verbose) < 0) {
			rc = EXIT_RUNTIME;
			break;
		}
	}
	if (rc == 0)
		__atomic_store_n(&rfs_serve_mounted, true, __ATOMIC_RELEASE);
	while (rc == 0) {
		struct timespec ts = { .tv_sec = 0, .tv_nsec = WAIT_MS * 1000000L };
		bool ended = false;

		sig = sigtimedwait(&set, NULL, &ts);
		if (sig > 0) {
			log_info("stopping on signal %d", sig);
			break;
		}
		for (int i = 0; i < n; i++)
			if (__atomic_load_n(&ss[i].ended, __ATOMIC_ACQUIRE)) {
				log_info("%s: unmounted from outside; stopping every mount", fs[i]->dir);
				ended = true;
			}
		if (ended)
			break;
	}
	__atomic_store_n(&rfs_serve_stopping, true, __ATOMIC_RELEASE);
	__atomic_store_n(&rfs_serve_mounted, false, __ATOMIC_RELEASE);
	for (int i = 0; i < n; i++)
		if (ss[i].mounted && !__atomic_load_n(&ss[i].ended, __ATOMIC_ACQUIRE))
			unmount_dir(fs[i]->dir);
	for (int i = 0; i < n; i++) {
		if (ss[i].running) {
			pthread_join(ss[i].thread, NULL);
			if (ss[i].ret < 0) {
				log_error("%s: session loop failed: %s", fs[i]->dir, strerror(-ss[i].ret));
				rc = EXIT_RUNTIME;
			}
		}
		if (ss[i].se) {
			if (ss[i].mounted)
				fuse_session_unmount(ss[i].se);
			fuse_session_destroy(ss[i].se);
			log_info("%s: unmounted", fs[i]->dir);
		}
		fuse_opt_free_args(&ss[i].args);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	free(ss);
	return rc;
}
