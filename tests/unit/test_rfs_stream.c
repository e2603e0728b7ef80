/* The PRIM's stream (src/rfs/stream*.c) and the SECOND's loop (second.c),
 * in one process over loopback TCP: translation of journaled changes into
 * wire ops, end-to-end apply onto a second directory, and a SECOND that
 * stops acknowledging. Runs as root (owners). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "common/util.h"
#include "rfs/exclude.h"
#include "rfs/gen.h"
#include "rfs/second.h"
#include "rfs/stream.h"

static const uint8_t secret[32] = "0123456789abcdef0123456789abcdef";

/* Every temp file and dir a test makes, removed by the group teardown
 * even when a test fails half way. */
static char made[16][96];
static int nmade;

static const char *track(const char *path)
{
	if (nmade < 16)
		snprintf(made[nmade++], sizeof(made[0]), "%s", path);
	return path;
}

static int remove_made(void **state)
{
	(void)state;
	while (nmade > 0) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", made[--nmade]);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", made[nmade]);
	}
	return 0;
}

static struct rfs_link_cfg link_cfg(uint8_t role)
{
	struct rfs_link_cfg c = { .secret = secret, .secret_len = sizeof(secret), .cluster = "t",
	                          .node = role == WIRE_ROLE_PRIM ? "p" : "s", .role = role,
	                          .io_timeout_ms = 2000 };
	struct rfs_gen fresh = { 0 };

	/* A fresh node: the SECOND sets its (empty) copy aside and takes
	 * the stream as a rebuild. */
	assert_int_equal(rfs_gen_encode(&fresh, c.gens, &c.hello_flags), 0);
	return c;
}

static int free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/* ---- translation ---- */

static void translate_size_change(void **state)
{
	struct stat st = { .st_mode = S_IFREG | 0640, .st_size = 4096 };
	struct rfs_op op = { .type = RFS_OP_SETATTR, .ino = { 1, 77 },
	                     .attr_mask = RFS_ATTR_SIZE | RFS_ATTR_MODE, .attr = &st };
	struct wire_op w[RFS_STREAM_MAX_WOPS];
	bool durable;
	int n;

	(void)state;
	st.st_mtim.tv_sec = 1700000000;
	assert_int_equal(rfs_stream_translate(&op, w, &n, &durable), 0);
	assert_int_equal(n, 2);
	assert_false(durable);
	assert_int_equal(w[0].code, WIRE_OP_TRUNCATE);
	assert_int_equal(w[0].arg, 4096);
	assert_int_equal(w[0].fid, 77);
	/* The size change moved mtime: it travels with the mode. */
	assert_int_equal(w[1].code, WIRE_OP_SETATTR);
	assert_int_equal(w[1].arg, WIRE_ATTR_MODE | WIRE_ATTR_MTIME);
	assert_int_equal(w[1].mode, 0640);
	assert_int_equal(w[1].mtime_ns, 1700000000LL * 1000000000LL);
}

static void translate_dsync_write(void **state)
{
	char path[] = "/tmp/vigil-rfs-stream-XXXXXX";
	int fd = mkstemp(path);

	track(path);
	struct rfs_op op = { .type = RFS_OP_WRITE, .ino = { 1, 9, 2 }, .offset = 8192, .data = "abc",
	                     .len = 3, .flags = O_WRONLY | O_DSYNC, .fd = fd };
	struct wire_op w[RFS_STREAM_MAX_WOPS];
	struct timespec ts[2] = { { .tv_sec = 1600000000, .tv_nsec = 5 }, { .tv_sec = 1600000000, .tv_nsec = 7 } };
	bool durable;
	int n;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(futimens(fd, ts), 0);
	assert_int_equal(rfs_stream_translate(&op, w, &n, &durable), 0);
	assert_int_equal(n, 2);
	assert_true(durable);
	assert_int_equal(w[0].code, WIRE_OP_WRITE);
	assert_int_equal(w[0].flags, WIRE_OPF_DSYNC);
	assert_int_equal(w[0].arg, 8192);
	assert_int_equal(w[0].dir, 2);
	assert_int_equal(w[1].code, WIRE_OP_TIMES);
	assert_int_equal(w[1].arg, WIRE_ATTR_MTIME);
	assert_int_equal(w[1].mtime_ns, 1600000000LL * 1000000000LL + 7);
	/* O_SYNC asks for the full sync. */
	op.flags = O_WRONLY | O_SYNC;
	assert_int_equal(rfs_stream_translate(&op, w, &n, &durable), 0);
	assert_int_equal(w[0].flags, WIRE_OPF_SYNC);
	/* A plain write waits for receipt only. */
	op.flags = O_WRONLY;
	assert_int_equal(rfs_stream_translate(&op, w, &n, &durable), 0);
	assert_false(durable);
	assert_int_equal(w[0].flags, 0);
	close(fd);
	unlink(path);
}

/* Removals and renames name only directories: the dir comes from them. */
static void translate_unlink_in_dir(void **state)
{
	struct rfs_op op = { .type = RFS_OP_RMDIR, .parent = { 1, 50, 3 }, .name = "x",
	                     .parent_fd = -1 };
	struct wire_op w[RFS_STREAM_MAX_WOPS];
	bool durable;
	int n;

	(void)state;
	assert_int_equal(rfs_stream_translate(&op, w, &n, &durable), 0);
	assert_int_equal(n, 1);
	assert_int_equal(w[0].code, WIRE_OP_UNLINK);
	assert_int_equal(w[0].dir, 3);
	assert_int_equal(w[0].fid, 50);
	assert_int_equal(w[0].arg, WIRE_UNLINK_RMDIR);
	assert_int_equal(w[0].name_len, 1);
}

/* Excluded names: nothing of the object travels, only the time of a
 * replicated directory whose excluded entry changed. */
static void translate_excluded(void **state)
{
	const char *globs[] = { "*.tmp" };
	const char *why;
	char path[] = "/tmp/vigil-rfs-dir-XXXXXX";
	int dfd;
	struct stat st = { .st_mode = S_IFREG | 0600 };
	struct rfs_op create = { .type = RFS_OP_CREATE, .ino = { 1, 70, 0, true },
	                         .parent = { 1, 60 }, .name = "a.tmp", .attr = &st };
	struct rfs_op unlink_op = { .type = RFS_OP_UNLINK, .parent = { 1, 60 }, .name = "a.tmp" };
	struct rfs_op write_op = { .type = RFS_OP_WRITE, .ino = { 1, 70, 0, true }, .data = "x",
	                           .len = 1, .fd = -1 };
	struct rfs_op in_excluded_dir = { .type = RFS_OP_UNLINK, .parent = { 1, 61, 0, true },
	                                  .name = "plain" };
	struct wire_op w[RFS_STREAM_MAX_WOPS];
	bool durable;
	int n;

	(void)state;
	assert_int_equal(rfs_exclude_check("a/b", &why), -1);
	assert_non_null(strstr(why, "'/'"));
	assert_int_equal(rfs_exclude_set(globs, 1), 0);
	assert_non_null(mkdtemp(path));
	track(path);
	dfd = open(path, O_PATH | O_DIRECTORY);
	create.parent_fd = unlink_op.parent_fd = in_excluded_dir.parent_fd = dfd;
	assert_int_equal(rfs_stream_translate(&create, w, &n, &durable), 0);
	assert_int_equal(n, 1);
	assert_int_equal(w[0].code, WIRE_OP_TIMES);
	assert_int_equal(w[0].fid, 60);
	assert_true(w[0].mtime_ns > 0);
	assert_int_equal(rfs_stream_translate(&unlink_op, w, &n, &durable), 0);
	assert_int_equal(n, 1);
	assert_int_equal(w[0].code, WIRE_OP_TIMES);
	assert_int_equal(rfs_stream_translate(&write_op, w, &n, &durable), 0);
	assert_int_equal(n, 0);
	assert_int_equal(rfs_stream_translate(&in_excluded_dir, w, &n, &durable), 0);
	assert_int_equal(n, 0);
	/* A replicated name is shipped as usual. */
	unlink_op.name = "a.tmpx";
	assert_int_equal(rfs_stream_translate(&unlink_op, w, &n, &durable), 0);
	assert_int_equal(w[0].code, WIRE_OP_UNLINK);
	assert_int_equal(rfs_exclude_set(NULL, 0), 0);
	close(dfd);
	rmdir(path);
}

static void translate_without_attr_fails(void **state)
{
	struct rfs_op op = { .type = RFS_OP_CREATE, .ino = { 1, 5 }, .name = "x" };
	struct wire_op w[RFS_STREAM_MAX_WOPS];
	bool durable;
	int n;

	(void)state;
	assert_int_equal(rfs_stream_translate(&op, w, &n, &durable), EIO);
}

/* ---- end to end ---- */

struct second_thread {
	pthread_t t;
	struct rfs_second_cfg cfg;
	volatile sig_atomic_t stop;
	char addr[32];
	char dir[64];
	char state[64];
	char meta[96];
};

static void *second_main(void *arg)
{
	struct second_thread *s = arg;

	rfs_second_run(&s->cfg, &s->stop);
	return NULL;
}

static void start_second(struct second_thread *s)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "/tmp/vigil-rfs-second-XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	track(s->dir);
	snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%d", free_port());
	snprintf(s->state, sizeof(s->state), "/tmp/vigil-rfs-state-XXXXXX");
	assert_non_null(mkdtemp(s->state));
	track(s->state);
	snprintf(s->meta, sizeof(s->meta), "%s/meta", s->state);
	s->cfg.meta = s->meta;
	s->cfg.aside_dir = s->state;
	s->cfg.root_fd[0] = open(s->dir, O_PATH | O_DIRECTORY);
	assert_true(s->cfg.root_fd[0] >= 0);
	s->cfg.ndirs = 1;
	s->cfg.listen = s->addr;
	s->cfg.link = link_cfg(WIRE_ROLE_SECOND);
	s->cfg.ckpt_ms = 100;
	assert_int_equal(pthread_create(&s->t, NULL, second_main, s), 0);
}

static void stop_second(struct second_thread *s)
{
	char cmd[256];

	s->stop = 1;
	pthread_join(s->t, NULL);
	close(s->cfg.root_fd[0]);
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", s->dir, s->state);
	assert_int_equal(system(cmd), 0);
}

static void dial(const char *addr, struct rfs_conn *c)
{
	struct rfs_link_cfg lc = link_cfg(WIRE_ROLE_PRIM);

	for (int i = 0; i < 100; i++) {
		if (rfs_conn_dial(&lc, addr, c) == 0)
			return;
		rfs_conn_close(c);
		usleep(20000);
	}
	fail_msg("cannot reach the SECOND at %s", addr);
}

static void end_to_end(void **state)
{
	char a[] = "/tmp/vigil-rfs-prim-XXXXXX", path[PATH_MAX], got[64];
	struct second_thread s;
	struct rfs_conn c;
	struct stat root, st;
	struct rfs_stream_status ss;
	int rootfd, fd;

	(void)state;
	start_second(&s);
	assert_non_null(mkdtemp(a));
	track(a);
	rootfd = open(a, O_PATH | O_DIRECTORY);
	assert_int_equal(fstat(rootfd, &root), 0);
	dial(s.addr, &c);
	{
		struct rfs_stream_cfg cfg = { .mode = RFS_MODE_SYNC, .queue_max = 4 << 20,
		                              .ack_timeout_ms = 2000, .root_ino = { root.st_ino }, .ndirs = 1 };

		assert_int_equal(rfs_stream_start(&cfg, &c), 0);
	}
	/* What the FUSE ops would journal for: create f, write, chmod. */
	snprintf(path, sizeof(path), "%s/f", a);
	fd = open(path, O_CREAT | O_RDWR, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	{
		struct rfs_op op = { .type = RFS_OP_CREATE, .ino = { st.st_dev, st.st_ino },
		                     .parent = { root.st_dev, root.st_ino }, .name = "f", .attr = &st,
		                     .parent_fd = rootfd };

		assert_int_equal(rfs_stream_op(&op), 0);
	}
	assert_int_equal(pwrite(fd, "replicated", 10, 0), 10);
	{
		struct rfs_op op = { .type = RFS_OP_WRITE, .ino = { st.st_dev, st.st_ino }, .data = "replicated",
		                     .len = 10, .flags = O_RDWR, .fd = fd };

		assert_int_equal(rfs_stream_op(&op), 0);
	}
	assert_int_equal(fchmod(fd, 0604), 0);
	assert_int_equal(fstat(fd, &st), 0);
	{
		struct rfs_op op = { .type = RFS_OP_SETATTR, .ino = { st.st_dev, st.st_ino },
		                     .attr_mask = RFS_ATTR_MODE, .attr = &st };

		assert_int_equal(rfs_stream_op(&op), 0);
	}
	{
		struct rfs_op op = { .type = RFS_OP_FSYNC, .ino = { st.st_dev, st.st_ino }, .flags = 1 };

		assert_int_equal(rfs_stream_op(&op), 0);
	}
	/* Sync mode: the fsync returned only once SECOND made it durable. */
	rfs_stream_status(&ss);
	assert_int_equal(ss.state, RFS_LINK_CONNECTED);
	assert_true(ss.durable >= ss.seq);
	assert_true(rfs_stream_stop(2000));
	close(fd);

	snprintf(path, sizeof(path), "%s/f", s.dir);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	memset(got, 0, sizeof(got));
	assert_int_equal(read(fd, got, sizeof(got)), 10);
	assert_string_equal(got, "replicated");
	assert_int_equal(fstat(fd, &root), 0);
	assert_int_equal(root.st_mode & 07777, 0604);
	assert_int_equal(root.st_mtim.tv_sec, st.st_mtim.tv_sec);
	assert_int_equal(root.st_mtim.tv_nsec, st.st_mtim.tv_nsec);
	close(fd);
	close(rootfd);
	snprintf(path, sizeof(path), "rm -rf %s", a);
	assert_int_equal(system(path), 0);
	stop_second(&s);
}

/* A SECOND that completes the handshake, then never answers. */
struct mute {
	pthread_t t;
	int lfd;
	volatile int done;
};

static void *mute_main(void *arg)
{
	struct mute *m = arg;
	struct rfs_link_cfg lc = link_cfg(WIRE_ROLE_SECOND);
	struct rfs_conn c;
	int fd = accept(m->lfd, NULL, NULL);

	if (fd >= 0 && rfs_conn_accept(&lc, fd, "prim", &c) == 0) {
		while (!m->done)
			usleep(10000);
	}
	rfs_conn_close(&c);
	return NULL;
}

static void silent_second_is_lost(void **state)
{
	char addr[32];
	struct mute m = { 0 };
	struct rfs_conn c;
	struct rfs_stream_status ss;
	struct rfs_op op = { .type = RFS_OP_FSYNC, .ino = { 1, 2 }, .flags = 0 };
	uint64_t t0, dt;

	(void)state;
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", free_port());
	m.lfd = rfs_listen(addr);
	assert_true(m.lfd >= 0);
	assert_int_equal(pthread_create(&m.t, NULL, mute_main, &m), 0);
	dial(addr, &c);
	{
		struct rfs_stream_cfg cfg = { .mode = RFS_MODE_SYNC, .queue_max = 4 << 20,
		                              .ack_timeout_ms = 300, .root_ino = { 2 }, .ndirs = 1 };

		assert_int_equal(rfs_stream_start(&cfg, &c), 0);
	}
	t0 = mono_ms();
	assert_int_equal(rfs_stream_op(&op), 0);
	dt = mono_ms() - t0;
	/* Released by the ack timeout, not before, not much after. */
	assert_true(dt >= 250);
	assert_true(dt < 3000);
	rfs_stream_status(&ss);
	assert_int_equal(ss.state, RFS_LINK_LOST);
	assert_non_null(strstr(ss.error, "no acknowledgement"));
	/* Later changes are applied locally only, and counted. */
	assert_int_equal(rfs_stream_op(&op), 0);
	rfs_stream_status(&ss);
	assert_int_equal(ss.unshipped, 1);
	assert_false(rfs_stream_stop(500));
	m.done = 1;
	pthread_join(m.t, NULL);
	close(m.lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(translate_size_change),
		cmocka_unit_test(translate_dsync_write),
		cmocka_unit_test(translate_unlink_in_dir),
		cmocka_unit_test(translate_excluded),
		cmocka_unit_test(translate_without_attr_fails),
		cmocka_unit_test(end_to_end),
		cmocka_unit_test(silent_second_is_lost),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, remove_made);
}
