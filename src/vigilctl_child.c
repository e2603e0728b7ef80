/* vigilctl: a child program with a deadline. The child gets its own process
 * group, so stopping it on timeout or on a signal stops whatever it started
 * as well (tar's gzip). */
#include "vigilctl_child.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

#define KILL_GRACE_MS 1000
#define WAIT_STEP_MS 10

/* Children get their own PATH: root's PATH under cron or sudo may lack
 * sbin (ip), and the caller's PATH should not choose what root runs. */
static const char CHILD_PATH[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

bool child_find_program(const char *name)
{
	char path[PATH_MAX];
	const char *p = CHILD_PATH;

	while (*p) {
		size_t n = strcspn(p, ":");

		if (snprintf(path, sizeof(path), "%.*s/%s", (int)n, p, name) < (int)sizeof(path) &&
		    access(path, X_OK) == 0)
			return true;
		p += n;
		if (*p == ':')
			p++;
	}
	return false;
}

void child_join_argv(char *const argv[], char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; argv[i] && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? " " : "", argv[i]);
}

/* In the child: never returns. */
static void exec_child(char *const argv[], const char *cwd, int out, int err)
{
	sigset_t none;
	int nul = open("/dev/null", O_RDONLY);

	if (nul < 0 || dup2(nul, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
	    dup2(err, STDERR_FILENO) < 0)
		_exit(126);
	closefrom(3);
	/* Its own process group: a timeout stops what it started too (gzip). */
	setpgid(0, 0);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (cwd && chdir(cwd) < 0) {
		dprintf(STDERR_FILENO, "cannot enter %s: %s\n", cwd, strerror(errno));
		_exit(126);
	}
	/* The output is read by people and by support's tools: no locale. */
	if (setenv("PATH", CHILD_PATH, 1) < 0 || setenv("LC_ALL", "C", 1) < 0)
		_exit(126);
	execvp(argv[0], argv);
	dprintf(STDERR_FILENO, "cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

int child_run(char *const argv[], const char *cwd, int out, int err, uint64_t timeout_ms,
	      const volatile sig_atomic_t *stop, char *why, size_t whylen)
{
	uint64_t deadline = mono_ms() + timeout_ms;
	bool timed_out = false;
	int status;
	pid_t pid, r;

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		snprintf(why, whylen, "cannot start %s: %s", argv[0], strerror(errno));
		return -1;
	}
	if (pid == 0)
		exec_child(argv, cwd, out, err);
	/* Also here: a kill of the group must not precede the child's own call. */
	setpgid(pid, pid);

	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			goto reaped;
		if (r < 0 && errno != EINTR) {
			snprintf(why, whylen, "cannot wait for %s: %s", argv[0], strerror(errno));
			return -1;
		}
		if (*stop || mono_ms() >= deadline)
			break;
		sleep_ms(WAIT_STEP_MS);
	}
	timed_out = !*stop;
	if (kill(-pid, SIGTERM) < 0)
		kill(pid, SIGTERM);
	deadline = mono_ms() + KILL_GRACE_MS;
	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if ((r < 0 && errno != EINTR) || mono_ms() >= deadline) {
			if (kill(-pid, SIGKILL) < 0)
				kill(pid, SIGKILL);
			while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
				;
			break;
		}
		sleep_ms(WAIT_STEP_MS);
	}
	if (timed_out)
		snprintf(why, whylen, "%s did not finish within %llu s: stopped", argv[0],
			 (unsigned long long)(timeout_ms / 1000));
	else
		snprintf(why, whylen, "%s stopped: interrupted", argv[0]);
	return -1;
reaped:
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		snprintf(why, whylen, "%s exited with status %d", argv[0], WEXITSTATUS(status));
	else
		snprintf(why, whylen, "%s was killed by signal %d", argv[0], WTERMSIG(status));
	return -1;
}

int child_capture(char *const argv[], const char *scratch, uint64_t timeout_ms,
		  const volatile sig_atomic_t *stop, FILE **in, char *why, size_t whylen)
{
	int fd, ok;

	*in = NULL;
	fd = open(scratch, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(why, whylen, "cannot create %s: %s", scratch, strerror(errno));
		return -1;
	}
	ok = child_run(argv, NULL, fd, fd, timeout_ms, stop, why, whylen) == 0;
	unlink(scratch);
	if (lseek(fd, 0, SEEK_SET) < 0 || !(*in = fdopen(fd, "r"))) {
		snprintf(why, whylen, "cannot read back %s: %s", scratch, strerror(errno));
		close(fd);
		return -1;
	}
	return ok ? 0 : 1;
}
