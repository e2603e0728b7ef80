#include "resource/script.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/log.h"
#include "common/util.h"

/* Longer output lines are split: one runaway line must not grow memory. */
#define SCRIPT_LINE_MAX 1024
/* At the child's exit we read what is already in the pipe, at most this
 * much: a daemon left behind that keeps writing must not hold the loop. */
#define SCRIPT_DRAIN_MAX (64 * 1024)
/* Reads per readable callback, so a chatty script cannot starve the loop. */
#define SCRIPT_READS_PER_CB 16

struct script {
	struct script *next;
	char *name;
	pid_t pid;          /* also the process group; valid until reaped */
	int out_fd;         /* read end of stdout+stderr, -1 once closed */
	int err_fd;         /* read end of the exec-error pipe */
	int in_fd;          /* write end of the child's stdin, -1 once closed */
	struct event *out_ev;
	struct event *in_ev;
	char *input;        /* our copy of what goes to its stdin */
	size_t input_len, input_off;
	struct event *deadline_ev;
	struct event *kill_ev;
	uint64_t start_ms;
	uint64_t timeout_ms;
	bool term_sent;
	bool kill_sent;
	bool timed_out;
	bool cancelled;
	bool quiet;         /* outcome logged at debug level only */
	size_t linelen;
	char line[SCRIPT_LINE_MAX + 1];
	char tail[SCRIPT_TAIL_MAX];
	script_done_cb done;
	void *arg;
};

static struct {
	struct event_base *base;
	struct event *sigchld;
	struct script *list;
	int count;
	uint64_t grace_ms;
} g = { .grace_ms = 2000 };

extern char **environ;

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static void emit_line(struct script *s)
{
	size_t n = s->linelen;
	bool blank = true;

	s->linelen = 0;
	while (n > 0 && s->line[n - 1] == '\r')
		n--;
	s->line[n] = '\0';
	/* Escape sequences from a script must not reach a terminal or a log
	 * viewer as control codes. */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s->line[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			s->line[i] = '?';
		if (c != ' ' && c != '\t')
			blank = false;
	}
	log_app(s->name, s->line);
	if (!blank)
		strlcpy_ok(s->tail, s->line, sizeof(s->tail)); /* truncation is fine */
}

static void feed(struct script *s, const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\n') {
			emit_line(s);
			continue;
		}
		if (s->linelen == SCRIPT_LINE_MAX)
			emit_line(s);
		s->line[s->linelen++] = buf[i];
	}
}

/* What the child has not read by now is dropped: it closes the pipe (EOF
 * or EPIPE for the child's side) and frees the rest. */
static void close_input(struct script *s)
{
	if (s->in_ev) {
		event_free(s->in_ev);
		s->in_ev = NULL;
	}
	close_fd(&s->in_fd);
	free(s->input);
	s->input = NULL;
	s->input_len = s->input_off = 0;
}

/* Writes what the pipe takes now; closes it when all is written or the
 * child stopped reading. Never blocks: the fd is non-blocking. SIGPIPE
 * must be ignored by the process (vigild does): EPIPE is then an error
 * return, handled here like the end of the input. */
static void on_input(evutil_socket_t fd, short what, void *arg)
{
	struct script *s = arg;

	while (s->input_off < s->input_len) {
		ssize_t n = write(s->in_fd, s->input + s->input_off, s->input_len - s->input_off);

		if (n > 0) {
			s->input_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0 && errno != EPIPE)
			log_warn("%s: writing its stdin failed: %s", s->name, strerror(errno));
		else
			log_debug("%s: closed its stdin after %zu of %zu bytes", s->name,
			          s->input_off, s->input_len);
		break;
	}
	close_input(s);
}

static void close_output(struct script *s)
{
	if (s->linelen > 0)
		emit_line(s);
	if (s->out_ev) {
		event_free(s->out_ev);
		s->out_ev = NULL;
	}
	close_fd(&s->out_fd);
}

/* Reads at most limit bytes of what is readable now. Returns true at EOF
 * or on error (the pipe is then done), false if more may come. */
static bool read_output(struct script *s, size_t limit)
{
	char buf[4096];
	size_t total = 0;

	while (total < limit) {
		ssize_t n = read(s->out_fd, buf, sizeof(buf));

		if (n > 0) {
			feed(s, buf, (size_t)n);
			total += (size_t)n;
			continue;
		}
		if (n == 0)
			return true;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return false;
		log_warn("%s: reading its output failed: %s", s->name, strerror(errno));
		return true;
	}
	return false;
}

static void on_output(evutil_socket_t fd, short what, void *arg)
{
	struct script *s = arg;

	if (read_output(s, SCRIPT_READS_PER_CB * 4096))
		close_output(s);
}

static void kill_group(struct script *s, int sig)
{
	/* pid is not reaped while s is listed, so the group id cannot have
	 * been reused by another process. */
	if (killpg(s->pid, sig) < 0 && errno != ESRCH)
		log_warn("%s: kill(-%d, %s) failed: %s", s->name, (int)s->pid,
		         strsignal(sig), strerror(errno));
}

static void on_kill(evutil_socket_t fd, short what, void *arg)
{
	struct script *s = arg;

	log_warn("%s: still running %llu ms after SIGTERM, sending SIGKILL to its group",
	         s->name, (unsigned long long)g.grace_ms);
	s->kill_sent = true;
	kill_group(s, SIGKILL);
}

static void start_kill(struct script *s)
{
	struct timeval tv;

	if (s->term_sent)
		return;
	s->term_sent = true;
	kill_group(s, SIGTERM);
	ms_to_timeval(g.grace_ms, &tv);
	evtimer_add(s->kill_ev, &tv);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct script *s = arg;

	log_warn("%s: no exit after %llu ms, sending SIGTERM to its group", s->name,
	         (unsigned long long)s->timeout_ms);
	s->timed_out = true;
	start_kill(s);
}

static void script_free(struct script *s)
{
	close_output(s);
	close_input(s);
	close_fd(&s->err_fd);
	if (s->deadline_ev)
		event_free(s->deadline_ev);
	if (s->kill_ev)
		event_free(s->kill_ev);
	free(s->name);
	free(s);
}

static void unlink_script(struct script *s)
{
	for (struct script **pp = &g.list; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			g.count--;
			return;
		}
	}
}

static void log_outcome(const struct script *s, const struct script_result *r)
{
	unsigned long long ms = (unsigned long long)r->elapsed_ms;
	const char *sep = r->tail[0] ? ": " : "";
	/* A quiet script's owner reports the outcome in its own words. */
	enum log_level error = s->quiet ? LOG_LVL_DEBUG : LOG_LVL_ERROR;
	enum log_level warn = s->quiet ? LOG_LVL_DEBUG : LOG_LVL_WARN;
	enum log_level info = s->quiet ? LOG_LVL_DEBUG : LOG_LVL_INFO;

	if (r->spawn_errno)
		log_msg(error, "%s: could not execute /bin/sh: %s", s->name, strerror(r->spawn_errno));
	else if (r->timed_out)
		log_msg(warn, "%s timed out after %llu ms (limit %llu ms), ended by %s%s%s", s->name, ms,
		         (unsigned long long)s->timeout_ms, s->kill_sent ? "SIGKILL" : "SIGTERM",
		         sep, r->tail);
	else if (r->cancelled && !r->ok)
		log_msg(info, "%s cancelled after %llu ms%s%s", s->name, ms, sep, r->tail);
	else if (r->ok)
		log_msg(info, "%s exited 0 after %llu ms", s->name, ms);
	else if (r->signal)
		log_msg(warn, "%s killed by signal %d (%s) after %llu ms%s%s", s->name, r->signal,
		         strsignal(r->signal), ms, sep, r->tail);
	else
		log_msg(warn, "%s exited %d after %llu ms%s%s", s->name, r->exit_code, ms, sep, r->tail);
}

static void finish(struct script *s, int status, bool status_known)
{
	struct script_result r;
	int e;

	unlink_script(s);
	evtimer_del(s->deadline_ev);
	evtimer_del(s->kill_ev);
	/* Not waiting for EOF: a daemon the script started may hold the pipe
	 * for as long as it lives. What it writes later is lost (and it gets
	 * EPIPE/SIGPIPE): daemons must redirect their own output. */
	if (s->out_fd >= 0)
		read_output(s, SCRIPT_DRAIN_MAX);
	close_output(s);
	close_input(s);

	memset(&r, 0, sizeof(r));
	r.timed_out = s->timed_out;
	r.cancelled = s->cancelled;
	r.elapsed_ms = mono_ms() - s->start_ms;
	if (read(s->err_fd, &e, sizeof(e)) == (ssize_t)sizeof(e))
		r.spawn_errno = e;
	if (!status_known) {
		r.exit_code = -1;
	} else if (WIFEXITED(status)) {
		r.exit_code = WEXITSTATUS(status);
		/* After SIGTERM even an exit 0 may be a script cut short. */
		r.ok = r.exit_code == 0 && !s->term_sent && !r.spawn_errno;
	} else if (WIFSIGNALED(status)) {
		r.exit_code = -1;
		r.signal = WTERMSIG(status);
	}
	snprintf(r.tail, sizeof(r.tail), "%s", s->tail);
	if (r.spawn_errno && !r.tail[0])
		snprintf(r.tail, sizeof(r.tail), "cannot execute /bin/sh: %s", strerror(r.spawn_errno));
	log_outcome(s, &r);
	if (s->done)
		s->done(&r, s->arg);
	script_free(s);
}

/* Returns true if s has exited (and has been reaped and finished). */
static bool check_exit(struct script *s)
{
	siginfo_t si;
	int status = 0;
	pid_t r;

	/* Peek first, without reaping: while the zombie exists its pid, hence
	 * our group id, cannot be reused, so leftovers can still be killed. */
	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)s->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
		if (errno == EINTR)
			return false;
		log_error("%s: pid %d was reaped by someone else (%s); its result is unknown",
		          s->name, (int)s->pid, strerror(errno));
		finish(s, 0, false);
		return true;
	}
	if (si.si_pid != s->pid)
		return false;
	/* Once the deadline or a cancel has passed, nothing the script started
	 * may outlive it. A normal exit leaves its daemons alone. */
	if (s->term_sent)
		kill_group(s, SIGKILL);
	do
		r = waitpid(s->pid, &status, WNOHANG);
	while (r < 0 && errno == EINTR);
	finish(s, status, r == s->pid);
	return true;
}

static void on_sigchld(evutil_socket_t fd, short what, void *arg)
{
	bool again = true;

	/* done callbacks may start or cancel scripts: rescan after each. */
	while (again) {
		again = false;
		for (struct script *s = g.list; s; s = s->next) {
			if (check_exit(s)) {
				again = true;
				break;
			}
		}
	}
}

int script_init(struct event_base *base)
{
	if (g.base == base)
		return 0;
	if (g.base)
		script_shutdown();
	g.sigchld = evsignal_new(base, SIGCHLD, on_sigchld, NULL);
	if (!g.sigchld || evsignal_add(g.sigchld, NULL) < 0) {
		log_error("script: cannot install the SIGCHLD handler");
		if (g.sigchld)
			event_free(g.sigchld);
		g.sigchld = NULL;
		return -1;
	}
	g.base = base;
	return 0;
}

void script_shutdown(void)
{
	while (g.list) {
		struct script *s = g.list;
		int status;

		log_warn("%s: still running at shutdown, killing its group", s->name);
		kill_group(s, SIGKILL);
		/* Blocks only as long as the kernel takes to deliver SIGKILL. */
		while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR)
			;
		unlink_script(s);
		script_free(s);
	}
	if (g.sigchld)
		event_free(g.sigchld);
	g.sigchld = NULL;
	g.base = NULL;
}

struct event_base *script_event_base(void)
{
	return g.base;
}

void script_set_kill_grace(uint64_t ms)
{
	g.grace_ms = ms;
}

int script_running_count(void)
{
	return g.count;
}

static bool same_key(const char *a, const char *b)
{
	const char *eq = strchr(b, '=');
	size_t n = eq ? (size_t)(eq - b) : strlen(b);

	return strncmp(a, b, n) == 0 && a[n] == '=';
}

/* The parent's environment with the extra strings replacing same-named
 * entries. Only pointers: the strings live until exec. */
static char **build_env(char *const extra[])
{
	size_t n = 0, k = 0, m = 0;
	char **env;

	while (environ && environ[n])
		n++;
	while (extra && extra[k])
		k++;
	env = calloc(n + k + 1, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		bool replaced = false;

		for (size_t j = 0; j < k && !replaced; j++)
			replaced = same_key(environ[i], extra[j]);
		if (!replaced)
			env[m++] = environ[i];
	}
	for (size_t j = 0; j < k; j++)
		env[m++] = extra[j];
	env[m] = NULL;
	return env;
}

/* In the child, between fork and exec: async-signal-safe calls only (the
 * parent has threads, e.g. the log writer). */
static void __attribute__((noreturn))
child_exec(const char *command, char **env, int infd, int outw, int errw)
{
	static const char msg[] = "vigil: cannot execute /bin/sh\n";
	char *argv[] = { "sh", "-c", (char *)command, NULL };
	struct sigaction sa;
	sigset_t set;
	int hn, ho, he, e;

	setpgid(0, 0);
	/* Move everything above the standard fds first, so that dup2 below
	 * cannot overwrite one of them whatever numbers they had. */
	hn = fcntl(infd, F_DUPFD_CLOEXEC, 10);
	ho = fcntl(outw, F_DUPFD_CLOEXEC, 10);
	he = fcntl(errw, F_DUPFD_CLOEXEC, 10);
	if (hn < 0 || ho < 0 || he < 0 || dup2(hn, 0) < 0 || dup2(ho, 1) < 0 || dup2(ho, 2) < 0 ||
	    dup3(he, 3, O_CLOEXEC) < 0)
		_exit(127);
	closefrom(4);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);
	sigemptyset(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);

	execve("/bin/sh", argv, env);
	e = errno;
	if (write(3, &e, sizeof(e)) < 0 || write(1, msg, sizeof(msg) - 1) < 0)
		_exit(127);
	_exit(127);
}

struct script *script_run(const char *name, const char *command, char *const env[],
                          uint64_t timeout_ms, script_done_cb done, void *arg)
{
	return script_run_input(name, command, env, NULL, 0, timeout_ms, done, arg);
}

struct script *script_run_input(const char *name, const char *command, char *const env[],
                                const void *input, size_t input_len, uint64_t timeout_ms,
                                script_done_cb done, void *arg)
{
	struct script *s = NULL;
	int out[2] = { -1, -1 }, err[2] = { -1, -1 }, in[2] = { -1, -1 }, nullfd = -1;
	char **envp = NULL;
	pid_t pid;

	if (!g.base) {
		log_error("%s: cannot run a script before script_init", name);
		return NULL;
	}
	if (!command || !done) {
		log_error("%s: script_run without a command or a done callback", name);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s || !(s->name = strdup(name))) {
		log_error("%s: out of memory starting a script", name);
		goto fail;
	}
	s->out_fd = s->err_fd = s->in_fd = -1;
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 ||
	    (input && pipe2(in, O_CLOEXEC) < 0)) {
		log_error("%s: pipe: %s", name, strerror(errno));
		goto fail;
	}
	if (!input) {
		nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (nullfd < 0) {
			log_error("%s: open /dev/null: %s", name, strerror(errno));
			goto fail;
		}
	}
	if (set_nonblock(out[0]) < 0 || set_nonblock(err[0]) < 0 ||
	    (input && set_nonblock(in[1]) < 0)) {
		log_error("%s: making the pipes non-blocking: %s", name, strerror(errno));
		goto fail;
	}
	s->deadline_ev = evtimer_new(g.base, on_deadline, s);
	s->kill_ev = evtimer_new(g.base, on_kill, s);
	s->out_ev = event_new(g.base, out[0], EV_READ | EV_PERSIST, on_output, s);
	envp = build_env(env);
	if (!s->deadline_ev || !s->kill_ev || !s->out_ev || !envp) {
		log_error("%s: out of memory starting a script", name);
		goto fail;
	}
	if (input) {
		/* +1: malloc(0) may return NULL. */
		s->input = malloc(input_len + 1);
		s->in_ev = event_new(g.base, in[1], EV_WRITE | EV_PERSIST, on_input, s);
		if (!s->input || !s->in_ev) {
			log_error("%s: out of memory starting a script", name);
			goto fail;
		}
		memcpy(s->input, input, input_len);
		s->input_len = input_len;
	}

	pid = fork();
	if (pid < 0) {
		log_error("%s: fork: %s", name, strerror(errno));
		goto fail;
	}
	if (pid == 0)
		child_exec(command, envp, input ? in[0] : nullfd, out[1], err[1]);

	/* Also here: a kill before the child's own setpgid must reach it. */
	if (setpgid(pid, pid) < 0 && errno != EACCES && errno != ESRCH)
		log_debug("%s: setpgid(%d): %s", name, (int)pid, strerror(errno));
	free(envp);
	if (nullfd >= 0)
		close(nullfd);
	close(out[1]);
	close(err[1]);
	if (input) {
		close(in[0]);
		s->in_fd = in[1];
		event_add(s->in_ev, NULL);
	}
	s->pid = pid;
	s->out_fd = out[0];
	s->err_fd = err[0];
	s->start_ms = mono_ms();
	s->timeout_ms = timeout_ms;
	s->done = done;
	s->arg = arg;
	event_add(s->out_ev, NULL);
	if (timeout_ms > 0) {
		struct timeval tv;

		ms_to_timeval(timeout_ms, &tv);

		evtimer_add(s->deadline_ev, &tv);
	}
	s->next = g.list;
	g.list = s;
	g.count++;
	log_debug("%s: running `%s` (pid %d, timeout %llu ms)", name, command, (int)pid,
	          (unsigned long long)timeout_ms);
	/* It may have exited already; SIGCHLD is pending in the loop then and
	 * finds it listed. */
	return s;

fail:
	free(envp);
	if (nullfd >= 0)
		close(nullfd);
	for (int i = 0; i < 2; i++) {
		if (out[i] >= 0)
			close(out[i]);
		if (err[i] >= 0)
			close(err[i]);
		if (in[i] >= 0)
			close(in[i]);
	}
	if (s) {
		if (s->out_ev)
			event_free(s->out_ev);
		s->out_ev = NULL;
		script_free(s);
	}
	return NULL;
}

void script_quiet(struct script *s)
{
	if (s)
		s->quiet = true;
}

void script_disown(struct script *s)
{
	if (!s)
		return;
	log_info("%s: left running (pid %d)", s->name, (int)s->pid);
	unlink_script(s);
	script_free(s);
}

int script_signal(struct script *s, int sig)
{
	if (!s || s->pid <= 0)
		return -1;
	return kill(-s->pid, sig);
}

void script_detach(struct script *s)
{
	if (s)
		s->done = NULL;
}

void script_cancel(struct script *s)
{
	if (!s)
		return;
	if (!s->cancelled)
		log_info("%s: cancelled, sending SIGTERM to its group", s->name);
	s->cancelled = true;
	start_kill(s);
}
