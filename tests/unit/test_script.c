/* script.c with real /bin/sh children on a real event loop. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "common/log.h"
#include "common/util.h"
#include "resource/script.h"

static struct event_base *base;
static char dir[] = "/tmp/vigil-test-script-XXXXXX";

struct ctx {
	int calls;
	struct script_result res;
};

static void on_done(const struct script_result *r, void *arg)
{
	struct ctx *c = arg;

	c->calls++;
	c->res = *r;
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	*(bool *)arg = true;
}

/* Runs the loop until n done calls arrived or ms passed; true if they did. */
static bool wait_calls(const int *calls, int n, uint64_t ms)
{
	bool expired = false;
	struct event *wd = evtimer_new(base, on_watchdog, &expired);
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	evtimer_add(wd, &tv);
	while (*calls < n && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(wd);
	return *calls >= n;
}

static struct ctx run_wait(const char *cmd, char *const env[], uint64_t timeout_ms, uint64_t wait_ms)
{
	struct ctx c = { 0 };
	struct script *s = script_run("unit", cmd, env, timeout_ms, on_done, &c);

	assert_non_null(s);
	assert_int_equal(c.calls, 0); /* never from inside script_run */
	assert_true(wait_calls(&c.calls, 1, wait_ms));
	return c;
}

/* Alive and not a zombie (a container's init may not reap orphans). */
static bool proc_alive(pid_t pid)
{
	char path[64], buf[256], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] != 'Z';
}

static bool wait_gone(pid_t pid, uint64_t ms)
{
	uint64_t end = mono_ms() + ms;

	while (proc_alive(pid)) {
		if (mono_ms() > end)
			return false;
		usleep(10000);
	}
	return true;
}

static pid_t read_pid(const char *name)
{
	char path[256], *buf = NULL;
	size_t len;
	long v;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (read_file(path, 64, &buf, &len) < 0)
		return -1;
	v = strtol(buf, NULL, 10);
	free(buf);
	return (pid_t)v;
}

static void assert_no_children(void)
{
	int st;

	assert_int_equal(script_running_count(), 0);
	assert_int_equal(waitpid(-1, &st, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

static void t_exit0(void **state)
{
	struct ctx c = run_wait("echo hello; exit 0", NULL, 5000, 5000);

	assert_int_equal(c.calls, 1);
	assert_true(c.res.ok);
	assert_int_equal(c.res.exit_code, 0);
	assert_int_equal(c.res.signal, 0);
	assert_false(c.res.timed_out);
	assert_false(c.res.cancelled);
	assert_string_equal(c.res.tail, "hello");
	assert_no_children();
}

static void t_exit3_tail(void **state)
{
	struct ctx c = run_wait("echo first; echo 'port 80 in use' >&2; echo '   '; exit 3", NULL, 5000,
	                        5000);

	assert_false(c.res.ok);
	assert_int_equal(c.res.exit_code, 3);
	assert_int_equal(c.res.signal, 0);
	/* stderr is captured too; a blank last line does not hide the reason */
	assert_string_equal(c.res.tail, "port 80 in use");
	assert_no_children();
}

static void t_not_found(void **state)
{
	struct ctx c = run_wait("/nonexistent/vigil-cmd", NULL, 5000, 5000);

	assert_false(c.res.ok);
	assert_int_equal(c.res.exit_code, 127);
	assert_int_equal(c.res.spawn_errno, 0); /* the shell ran; the command did not */
	assert_non_null(strstr(c.res.tail, "vigil-cmd"));
	assert_no_children();
}

static void t_timeout(void **state)
{
	uint64_t t0 = mono_ms();
	char cmd[512];
	struct ctx c;
	pid_t child;

	/* The shell's own child must die too: the whole group is signalled. */
	snprintf(cmd, sizeof(cmd), "sleep 30 & echo $! > %s/pid; wait", dir);
	c = run_wait(cmd, NULL, 200, 5000);
	assert_true(c.res.timed_out);
	assert_false(c.res.ok);
	assert_false(c.res.cancelled);
	assert_int_equal(c.res.signal, SIGTERM);
	assert_true(c.res.elapsed_ms >= 190);
	assert_true(mono_ms() - t0 < 2000);
	child = read_pid("pid");
	assert_true(child > 0);
	assert_true(wait_gone(child, 2000));
	assert_no_children();
}

static void t_ignores_term(void **state)
{
	uint64_t t0 = mono_ms();
	struct ctx c;

	script_set_kill_grace(300);
	c = run_wait("trap '' TERM; sleep 30; echo survived", NULL, 200, 5000);
	script_set_kill_grace(2000);
	assert_true(c.res.timed_out);
	assert_int_equal(c.res.signal, SIGKILL);
	assert_true(c.res.elapsed_ms >= 450); /* deadline + grace */
	assert_true(mono_ms() - t0 < 2500);
	assert_no_children();
}

static void t_cancel_now(void **state)
{
	struct ctx c = { 0 };
	uint64_t t0 = mono_ms();
	struct script *s = script_run("unit", "sleep 30", NULL, 0, on_done, &c);

	assert_non_null(s);
	script_cancel(s);
	assert_int_equal(c.calls, 0);
	assert_true(wait_calls(&c.calls, 1, 5000));
	assert_true(c.res.cancelled);
	assert_false(c.res.ok);
	assert_false(c.res.timed_out);
	assert_int_equal(c.res.signal, SIGTERM);
	assert_true(mono_ms() - t0 < 2000);
	/* nothing more arrives later */
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(c.calls, 1);
	assert_no_children();
}

static void on_cancel_timer(evutil_socket_t fd, short what, void *arg)
{
	script_cancel(arg);
}

static void t_cancel_running(void **state)
{
	struct ctx c = { 0 };
	struct script *s = script_run("unit", "echo begun; sleep 30", NULL, 0, on_done, &c);
	struct event *ev = evtimer_new(base, on_cancel_timer, s);
	struct timeval tv = { 0, 100000 };

	assert_non_null(s);
	evtimer_add(ev, &tv);
	assert_true(wait_calls(&c.calls, 1, 5000));
	event_free(ev);
	assert_true(c.res.cancelled);
	assert_false(c.res.ok);
	assert_string_equal(c.res.tail, "begun");
	assert_true(c.res.elapsed_ms >= 90 && c.res.elapsed_ms < 2000);
	assert_no_children();
}

static void t_daemon_keeps_pipe(void **state)
{
	uint64_t t0 = mono_ms();
	char cmd[512];
	struct ctx c;
	pid_t daemon;

	/* The background sleep inherits stdout: completion must not wait for
	 * the pipe's EOF, only for the shell. */
	snprintf(cmd, sizeof(cmd), "sleep 5 & echo $! > %s/dpid; echo started", dir);
	c = run_wait(cmd, NULL, 10000, 10000);
	assert_true(c.res.ok);
	assert_string_equal(c.res.tail, "started");
	assert_true(mono_ms() - t0 < 2000);
	daemon = read_pid("dpid");
	assert_true(daemon > 0);
	assert_true(proc_alive(daemon)); /* a normal exit leaves daemons alone */
	kill(daemon, SIGKILL);
	assert_true(wait_gone(daemon, 2000));
	assert_no_children();
}

static void t_env_stdin_fds(void **state)
{
	char *env[] = { "VIGIL_T_FOO=bar baz", "HOME=/nowhere", NULL };
	struct ctx c;
	int fd;

	c = run_wait("echo \"$VIGIL_T_FOO|$HOME\"", env, 5000, 5000);
	assert_true(c.res.ok);
	assert_string_equal(c.res.tail, "bar baz|/nowhere");

	/* PATH still comes from the parent */
	c = run_wait("echo \"${PATH:+path}\"", env, 5000, 5000);
	assert_string_equal(c.res.tail, "path");

	/* stdin is /dev/null: read sees EOF at once */
	c = run_wait("read x; echo rc=$?", NULL, 5000, 5000);
	assert_string_equal(c.res.tail, "rc=1");

	/* an inheritable fd of ours does not leak into the script */
	fd = open("/dev/null", O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(dup2(fd, 50), 50);
	c = run_wait("if [ -e /proc/$$/fd/50 ]; then echo leaked; else echo clean; fi", NULL, 5000,
	             5000);
	close(50);
	close(fd);
	assert_string_equal(c.res.tail, "clean");
	assert_no_children();
}

static void t_signal_mask_reset(void **state)
{
	sigset_t set, old;
	struct ctx c;

	/* A blocked SIGTERM in the parent must not make the child immune. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, &old);
	signal(SIGUSR1, SIG_IGN);
	c = run_wait("grep -E '^(SigBlk|SigIgn)' /proc/self/status | tr '\\n' ' '", NULL, 5000, 5000);
	sigprocmask(SIG_SETMASK, &old, NULL);
	signal(SIGUSR1, SIG_DFL);
	{
		/* Signals 32 and 33 are glibc's own (NPTL): sigaction() refuses
		 * them, so an environment that ignores them (seen under the CI
		 * launcher) passes that on; no script uses them. */
		const unsigned long long glibc_reserved = (1ull << 31) | (1ull << 32);
		const char *blk = strstr(c.res.tail, "SigBlk:\t"), *ign = strstr(c.res.tail, "SigIgn:\t");
		unsigned long long b = blk ? strtoull(blk + 8, NULL, 16) : ~0ull;
		unsigned long long i = ign ? strtoull(ign + 8, NULL, 16) : ~0ull;

		if (!c.res.ok || b != 0 || (i & ~glibc_reserved) != 0)
			fail_msg("child's signal state not reset: ok=%d tail='%s'", c.res.ok, c.res.tail);
	}
}

static void t_concurrent(void **state)
{
	struct ctx c[3] = { { 0 } };
	int total = 0;

	assert_non_null(script_run("u1", "sleep 0.3; exit 1", NULL, 5000, on_done, &c[0]));
	assert_non_null(script_run("u2", "exit 2", NULL, 5000, on_done, &c[1]));
	assert_non_null(script_run("u3", "sleep 0.1; exit 3", NULL, 5000, on_done, &c[2]));
	assert_int_equal(script_running_count(), 3);
	for (uint64_t end = mono_ms() + 5000; total < 3 && mono_ms() < end;) {
		event_base_loop(base, EVLOOP_ONCE);
		total = c[0].calls + c[1].calls + c[2].calls;
	}
	for (int i = 0; i < 3; i++) {
		assert_int_equal(c[i].calls, 1);
		assert_int_equal(c[i].res.exit_code, i + 1);
	}
	assert_no_children();
}

static bool file_has(const char *path, const char *needle)
{
	char *buf = NULL;
	size_t len;
	bool found;

	if (read_file(path, 1 << 20, &buf, &len) < 0)
		return false;
	found = strstr(buf, needle) != NULL;
	free(buf);
	return found;
}

static void t_output_to_app_log(void **state)
{
	char logdir[256], path[300], want[1100];
	struct ctx c;

	snprintf(logdir, sizeof(logdir), "%s/logs", dir);
	assert_int_equal(log_open_files(logdir, 1 << 20), 0);
	c = run_wait("echo line-one; echo line-two >&2; printf 'no-newline'", NULL, 5000, 5000);
	assert_string_equal(c.res.tail, "no-newline");
	/* a 3000-byte line is split into pieces of 1024 */
	c = run_wait("head -c 3000 /dev/zero | tr '\\0' x", NULL, 5000, 5000);
	assert_int_equal(strlen(c.res.tail), SCRIPT_TAIL_MAX - 1); /* truncated, not overflowed */
	log_close_files();

	snprintf(path, sizeof(path), "%s/application.log", logdir);
	assert_true(file_has(path, " unit: line-one\n"));
	assert_true(file_has(path, " unit: line-two\n"));
	assert_true(file_has(path, " unit: no-newline\n"));
	memset(want, 'x', 1024);
	want[1024] = '\n';
	want[1025] = '\0';
	assert_true(file_has(path, want));
	memset(want, 'x', 1025);
	want[1025] = '\0';
	assert_false(file_has(path, want));
}

static struct ctx run_input(const char *cmd, const void *in, size_t len, uint64_t timeout_ms)
{
	struct ctx c = { 0 };
	struct script *s = script_run_input("unit", cmd, NULL, in, len, timeout_ms, on_done, &c);

	assert_non_null(s);
	assert_int_equal(c.calls, 0);
	assert_true(wait_calls(&c.calls, 1, 10000));
	return c;
}

static void t_stdin_input(void **state)
{
	/* Larger than a pipe's buffer: it takes several writes from the loop. */
	const size_t big = 300 * 1024;
	char *data = malloc(big), *got = NULL, cmd[512], path[300];
	uint64_t t0;
	size_t len;
	struct ctx c;

	/* As vigild does: an early close by the child is EPIPE, not death. */
	signal(SIGPIPE, SIG_IGN);
	assert_non_null(data);
	for (size_t i = 0; i < big; i++)
		data[i] = (char)('a' + i % 26);
	data[big - 1] = '\n';

	/* everything arrives, in order */
	snprintf(path, sizeof(path), "%s/stdin", dir);
	snprintf(cmd, sizeof(cmd), "cat > %s; echo done", path);
	c = run_input(cmd, data, big, 10000);
	assert_true(c.res.ok);
	assert_string_equal(c.res.tail, "done");
	assert_int_equal(read_file(path, big + 1, &got, &len), 0);
	assert_int_equal(len, big);
	assert_memory_equal(got, data, big);
	free(got);

	/* a child that reads only its first line: the rest is dropped */
	memcpy(data, "first line\n", 11);
	c = run_input("read x; echo \"got $x\"", data, big, 10000);
	assert_true(c.res.ok);
	assert_string_equal(c.res.tail, "got first line");

	/* a child that never reads and exits: done comes anyway */
	c = run_input("exit 4", data, big, 10000);
	assert_int_equal(c.res.exit_code, 4);

	/* empty input: EOF at once, not /dev/null's absence of a pipe */
	c = run_input("read x; rc=$?; [ -p /dev/stdin ] && echo \"rc=$rc pipe\"", "", 0, 5000);
	assert_true(c.res.ok);
	assert_string_equal(c.res.tail, "rc=1 pipe");

	/* small input without a final newline */
	c = run_input("cat", "{\"a\":1}", 7, 5000);
	assert_string_equal(c.res.tail, "{\"a\":1}");

	/* a child that hangs without reading: the deadline still ends it and
	 * the loop was never held by the full pipe */
	t0 = mono_ms();
	c = run_input("sleep 30", data, big, 200);
	assert_true(c.res.timed_out);
	assert_true(mono_ms() - t0 < 2000);

	/* the caller's buffer may go away at once: script_run_input copied it */
	{
		struct ctx c2 = { 0 };
		char *tmp = strdup("copied\n");

		assert_non_null(tmp);
		assert_non_null(script_run_input("unit", "cat", NULL, tmp, strlen(tmp), 5000, on_done, &c2));
		memset(tmp, 'X', strlen(tmp));
		free(tmp);
		assert_true(wait_calls(&c2.calls, 1, 5000));
		assert_string_equal(c2.res.tail, "copied");
	}
	free(data);
	assert_no_children();
}

static void t_detach(void **state)
{
	struct ctx c = { 0 };
	struct script *s = script_run_input("unit", "sleep 0.2", NULL, "x", 1, 5000, on_done, &c);
	uint64_t end = mono_ms() + 5000;

	assert_non_null(s);
	script_detach(s);
	assert_int_equal(script_running_count(), 1);
	while (script_running_count() > 0 && mono_ms() < end)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(c.calls, 0); /* reaped, but nobody was called */
	assert_no_children();
}

static void t_quiet(void **state)
{
	char logdir[256], path[300];
	struct ctx c = { 0 };
	struct script *s;

	snprintf(logdir, sizeof(logdir), "%s/quiet-logs", dir);
	assert_int_equal(log_open_files(logdir, 1 << 20), 0);
	s = script_run("quiet-one", "echo why >&2; exit 3", NULL, 5000, on_done, &c);
	assert_non_null(s);
	script_quiet(s);
	assert_true(wait_calls(&c.calls, 1, 5000));
	c.calls = 0;
	assert_non_null(script_run("loud-one", "exit 3", NULL, 5000, on_done, &c));
	assert_true(wait_calls(&c.calls, 1, 5000));
	log_close_files();
	snprintf(path, sizeof(path), "%s/module.log", logdir);
	assert_false(file_has(path, "quiet-one exited 3"));
	assert_true(file_has(path, "loud-one exited 3"));
	snprintf(path, sizeof(path), "%s/module-verbose.log", logdir);
	assert_true(file_has(path, "debug quiet-one exited 3 after"));
	assert_no_children();
}

static int setup(void **state)
{
	log_init("test_script", true, LOG_LVL_WARN);
	if (!mkdtemp(dir))
		return -1;
	base = event_base_new();
	if (!base || script_init(base) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[256];

	script_shutdown();
	event_base_free(base);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_exit0),
		cmocka_unit_test(t_exit3_tail),
		cmocka_unit_test(t_not_found),
		cmocka_unit_test(t_timeout),
		cmocka_unit_test(t_ignores_term),
		cmocka_unit_test(t_cancel_now),
		cmocka_unit_test(t_cancel_running),
		cmocka_unit_test(t_daemon_keeps_pipe),
		cmocka_unit_test(t_env_stdin_fds),
		cmocka_unit_test(t_signal_mask_reset),
		cmocka_unit_test(t_concurrent),
		cmocka_unit_test(t_output_to_app_log),
		cmocka_unit_test(t_stdin_input),
		cmocka_unit_test(t_detach),
		cmocka_unit_test(t_quiet),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
