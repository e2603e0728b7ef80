/* Processes of the setup wizard: starting vigild and finding it again,
 * the setup agent's pid, /proc. Nodes may share a pid namespace (the lab,
 * containers): a process counts as ours only if it is in our mount and
 * network namespaces. */
#include "vigilctl_setup_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "vigil_build.h"
#include "vigilctl_call.h"

#define POLL_MS 100
#define SOCK_TIMEOUT_S 10              /* each send and receive on vigild.sock */

void setup_nap(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int setup_proc_comm(pid_t pid, char *out, size_t outlen)
{
	char path[64], *buf = NULL;
	size_t len;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	if (read_file(path, 256, &buf, &len) < 0)
		return -1;
	buf[strcspn(buf, "\n")] = '\0';
	snprintf(out, outlen, "%s", buf);
	free(buf);
	return 0;
}

bool setup_proc_alive(pid_t pid)
{
	char path[64], *buf = NULL, *rp;
	size_t len;
	bool alive;

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_file(path, 4096, &buf, &len) < 0)
		return false;
	/* "PID (comm) S ...": the comm may hold ')' itself. */
	rp = strrchr(buf, ')');
	alive = rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
	free(buf);
	return alive;
}

static bool same_link(pid_t pid, const char *ns)
{
	char a[64], b[64], ta[128] = "", tb[128] = "";

	snprintf(a, sizeof(a), "/proc/self/ns/%s", ns);
	snprintf(b, sizeof(b), "/proc/%d/ns/%s", (int)pid, ns);
	return readlink(a, ta, sizeof(ta) - 1) > 0 && readlink(b, tb, sizeof(tb) - 1) > 0 && !strcmp(ta, tb);
}

bool setup_proc_same_ns(pid_t pid)
{
	return same_link(pid, "mnt") && same_link(pid, "net");
}

/* The argument of -c/--config in /proc/PID/cmdline (default if none). */
static void cmdline_config(pid_t pid, char *out, size_t outlen)
{
	char path[64], *buf = NULL;
	size_t len;

	snprintf(out, outlen, "%s", VIGIL_DEFAULT_CONFIG);
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if (read_file(path, 65536, &buf, &len) < 0)
		return;
	for (size_t i = 0; i < len;) {
		const char *arg = buf + i;
		size_t n = strlen(arg);

		if ((!strcmp(arg, "-c") || !strcmp(arg, "--config")) && i + n + 1 < len)
			snprintf(out, outlen, "%s", buf + i + n + 1);
		else if (!strncmp(arg, "--config=", 9))
			snprintf(out, outlen, "%s", arg + 9);
		i += n + 1;
	}
	free(buf);
}

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	if (!strcmp(a, b))
		return true;
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int setup_find_procs(const char *comm, const char *config, pid_t *out, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) && n < max) {
		char name[64], conf[PATH_MAX];
		long pid = strtol(e->d_name, NULL, 10);

		if (pid <= 0 || pid == getpid() || setup_proc_comm((pid_t)pid, name, sizeof(name)) < 0 ||
		    strcmp(name, comm) || !setup_proc_alive((pid_t)pid) || !setup_proc_same_ns((pid_t)pid))
			continue;
		if (config) {
			cmdline_config((pid_t)pid, conf, sizeof(conf));
			if (!same_file(conf, config))
				continue;
		}
		out[n++] = (pid_t)pid;
	}
	closedir(d);
	return n;
}

pid_t setup_agent_pid(const struct setup_paths *p)
{
	char path[PATH_MAX], *buf = NULL, name[64], cmd[128], *args = NULL;
	size_t len, alen;
	long pid;
	bool agent = false;

	if (!setup_join(path, p->state, SETUP_AGENT_PID) || read_file(path, 64, &buf, &len) < 0)
		return 0;
	pid = strtol(buf, NULL, 10);
	free(buf);
	if (pid <= 0 || !setup_proc_alive((pid_t)pid) || setup_proc_comm((pid_t)pid, name, sizeof(name)) < 0 ||
	    strcmp(name, "vigilctl"))
		return 0;
	/* A recycled pid is some other vigilctl: the agent's says "setup agent". */
	snprintf(cmd, sizeof(cmd), "/proc/%ld/cmdline", pid);
	if (read_file(cmd, 65536, &args, &alen) == 0) {
		for (size_t i = 0; i + 1 < alen; i += strlen(args + i) + 1)
			if (!strcmp(args + i, "setup") && i + 6 < alen && !strcmp(args + i + 6, "agent"))
				agent = true;
		free(args);
	}
	return agent ? (pid_t)pid : 0;
}

int setup_kill_wait(pid_t pid, unsigned wait_ms, const char *what)
{
	uint64_t deadline = mono_ms() + wait_ms;

	if (!setup_proc_alive(pid))
		return 0;
	kill(pid, SIGTERM);
	while (setup_proc_alive(pid)) {
		if (mono_ms() >= deadline) {
			fprintf(stderr, "vigilctl setup: %s (pid %d) still runs %u s after SIGTERM: SIGKILL\n", what,
				(int)pid, wait_ms / 1000);
			kill(pid, SIGKILL);
			deadline = mono_ms() + 5000;
			while (setup_proc_alive(pid) && mono_ms() < deadline)
				setup_nap(POLL_MS / 2);
			return setup_proc_alive(pid) ? -1 : 0;
		}
		setup_nap(POLL_MS / 2);
	}
	return 0;
}

static int sock_connect(const char *run_dir, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = SOCK_TIMEOUT_S };
	int fd;

	if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/vigild.sock", run_dir) >= (int)sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s/vigild.sock: path too long", run_dir);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(err, errlen, "cannot reach vigild at %s: %s", sa.sun_path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

pid_t setup_vigild_sock_pid(const char *run_dir)
{
	struct ucred cred;
	socklen_t sl = sizeof(cred);
	char err[256];
	int fd = sock_connect(run_dir, err, sizeof(err));
	pid_t pid = 0;

	if (fd < 0)
		return 0;
	/* The peer's credentials are those of the process that listened:
	 * vigild itself, whatever namespaces the machine has. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &sl) == 0)
		pid = cred.pid;
	close(fd);
	return pid;
}

json_t *setup_vigild_call(const char *run_dir, json_t *req, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct conn_err e = { 0 };
	json_t *res;

	if (snprintf(path, sizeof(path), "%s/vigild.sock", run_dir) >= (int)sizeof(path)) {
		snprintf(err, errlen, "%s/vigild.sock: path too long", run_dir);
		return NULL;
	}
	res = vigilctl_call(path, req, SOCK_TIMEOUT_S, &e);
	if (!res)
		snprintf(err, errlen, "%s", e.msg);
	return res;
}

/* vigild next to this vigilctl (the build tree), in ../sbin (an install)
 * or the usual places. */
static int find_vigild(char *out, size_t outlen)
{
	static const char *const fixed[] = { "/usr/sbin/vigild", "/usr/local/sbin/vigild" };
	char self[PATH_MAX], dir[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0) {
		self[n] = '\0';
		snprintf(dir, sizeof(dir), "%s", dirname(self));
		if (snprintf(out, outlen, "%s/vigild", dir) < (int)outlen && access(out, X_OK) == 0)
			return 0;
		if (snprintf(out, outlen, "%s/../sbin/vigild", dir) < (int)outlen && access(out, X_OK) == 0)
			return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++) {
		snprintf(out, outlen, "%s", fixed[i]);
		if (access(out, X_OK) == 0)
			return 0;
	}
	return -1;
}

/* What the starting vigild prints before it detaches (its config errors). */
static void read_output(int fd, char *out, size_t outlen, uint64_t deadline)
{
	size_t len = 0;

	out[0] = '\0';
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		uint64_t now = mono_ms();
		ssize_t n;

		if (now >= deadline || poll(&pfd, 1, (int)(deadline - now)) <= 0)
			break;
		if (len + 1 >= outlen) {
			char sink[512];

			if (read(fd, sink, sizeof(sink)) <= 0)
				break;
			continue;
		}
		n = read(fd, out + len, outlen - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	out[len] = '\0';
	while (len && (out[len - 1] == '\n' || out[len - 1] == ' '))
		out[--len] = '\0';
}

int setup_start_vigild(const char *config, const char *run_dir, char *err, size_t errlen)
{
	char exe[PATH_MAX], output[1024], why[512];
	uint64_t deadline = mono_ms() + SETUP_VIGILD_WAIT_MS;
	int pfd[2], status = 0;
	pid_t pid;

	if (find_vigild(exe, sizeof(exe)) < 0) {
		snprintf(err, errlen, "vigild not found (next to vigilctl, in ../sbin, /usr/sbin or "
			 "/usr/local/sbin): start it yourself with `vigild -c %s`", config);
		return -1;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (null >= 0)
			dup2(null, STDIN_FILENO);
		dup2(pfd[1], STDOUT_FILENO);
		dup2(pfd[1], STDERR_FILENO);
		closefrom(3);
		/* Its own session: vigild outlives this command and its terminal. */
		setsid();
		execl(exe, "vigild", "-c", config, (char *)NULL);
		fprintf(stderr, "cannot run %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	read_output(pfd[0], output, sizeof(output), mono_ms() + 10000);
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(err, errlen, "vigild -c %s failed (exit %d)%s%.700s", config,
			 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), output[0] ? ": " : "",
			 output);
		return -1;
	}
	/* It detached: it is up once it answers on its socket. */
	for (;;) {
		json_t *req = json_pack("{s:s, s:s}", "cmd", "status", "client", "vigilctl setup"), *res;

		res = req ? setup_vigild_call(run_dir, req, why, sizeof(why)) : NULL;
		json_decref(req);
		if (res) {
			json_decref(res);
			return 0;
		}
		if (mono_ms() >= deadline) {
			snprintf(err, errlen, "vigild was started but does not answer after %d s (%s): see its "
				 "module log (module.log in [cluster] state_dir) or the system log", SETUP_VIGILD_WAIT_MS / 1000, why);
			return -1;
		}
		setup_nap(POLL_MS);
	}
}
