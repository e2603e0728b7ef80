/* node2's setup agent: a detached `vigilctl setup agent` that waits (at
 * most --timeout) for node1 on TCP port 9454, over TLS with a throwaway
 * certificate. It answers node1 only once node1 sent the security code,
 * refuses wrong codes (and stops after SETUP_MAX_WRONG of them), and
 * stores the package node1 sends for `vigilctl setup finish`.
 *
 * One connection at a time, blocking with timeouts: it serves one client
 * for a few seconds, once. Its log is SETUP_STATE/agent.log. */
#include "vigilctl_setup_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "vigil_build.h"

#define PARAMS_FD 3
#define READY_WAIT_MS 15000

/* ---- the spawning side (vigilctl setup secondary) ---- */

static int read_line(int fd, char *out, size_t outlen, uint64_t deadline)
{
	size_t len = 0;

	while (len + 1 < outlen) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		uint64_t now = mono_ms();
		ssize_t n;

		if (now >= deadline || poll(&pfd, 1, (int)(deadline - now)) <= 0)
			break;
		n = read(fd, out + len, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || out[len] == '\n')
			break;
		len++;
	}
	out[len] = '\0';
	return len ? 0 : -1;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static void exec_agent(const struct setup_paths *p, const char *exe, int fd)
{
	char log[PATH_MAX];
	int null = open("/dev/null", O_RDWR | O_CLOEXEC), lfd = -1;

	if (setup_join(log, p->state, SETUP_AGENT_LOG))
		lfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (lfd < 0)
		lfd = null;
	if (null >= 0)
		dup2(null, STDIN_FILENO);
	if (lfd >= 0) {
		dup2(lfd, STDOUT_FILENO);
		dup2(lfd, STDERR_FILENO);
	}
	if (fd == PARAMS_FD)
		fcntl(fd, F_SETFD, 0);
	else
		dup2(fd, PARAMS_FD);
	closefrom(PARAMS_FD + 1);
	umask(077);
	if (chdir("/") < 0)
		_exit(127);
	execl(exe, "vigilctl", "-c", p->config, "setup", "agent", (char *)NULL);
	fprintf(stderr, "cannot run %s: %s\n", exe, strerror(errno));
	_exit(127);
}

int setup_agent_spawn(const struct setup_paths *p, const struct setup_agent_params *a, pid_t *pid, char *err,
		      size_t errlen)
{
	char exe[PATH_MAX], ip[INET_ADDRSTRLEN], line[1024], *text;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int sv[2], status = 0;
	json_t *params;
	pid_t child;

	if (n <= 0) {
		snprintf(err, errlen, "cannot find this program (/proc/self/exe): %s", strerror(errno));
		return -1;
	}
	exe[n] = '\0';
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		return -1;
	}
	child = fork();
	if (child < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (child == 0) {
		pid_t grand;

		/* Twice: the agent is nobody's child and has no terminal. */
		setsid();
		grand = fork();
		if (grand != 0)
			_exit(grand < 0 ? 1 : 0);
		exec_agent(p, exe, sv[1]);
	}
	close(sv[1]);
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	inet_ntop(AF_INET, &a->listen, ip, sizeof(ip));
	params = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i}", "code", a->code, "console", setup_console_str(a->console),
			   "hash", a->hash, "listen", ip, "port", (int)a->port, "timeout", (int)a->timeout_s);
	text = params ? json_dumps(params, JSON_COMPACT) : NULL;
	json_decref(params);
	if (!text || write_all(sv[0], text, strlen(text)) < 0 || write_all(sv[0], "\n", 1) < 0) {
		snprintf(err, errlen, "cannot start the setup agent (it did not take its parameters)");
		free(text);
		close(sv[0]);
		return -1;
	}
	explicit_bzero(text, strlen(text));
	free(text);
	if (read_line(sv[0], line, sizeof(line), mono_ms() + READY_WAIT_MS) < 0) {
		snprintf(err, errlen, "the setup agent did not start (see %s/%s)", p->state, SETUP_AGENT_LOG);
		close(sv[0]);
		return -1;
	}
	close(sv[0]);
	if (strncmp(line, "ok ", 3)) {
		snprintf(err, errlen, "the setup agent could not start: %s", line);
		return -1;
	}
	*pid = (pid_t)strtol(line + 3, NULL, 10);
	return 0;
}

/* ---- the agent ---- */

struct agent {
	const struct setup_paths *p;
	struct setup_agent_params a;
	SSL_CTX *ctx;
	int wrong;
};

enum served { SERVED_AGAIN, SERVED_WRONG, SERVED_DONE };

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static int read_params(struct agent *ag, char *err, size_t errlen)
{
	char line[2048];
	json_t *j;
	json_error_t jerr;
	const char *code, *console, *hash, *listen;
	json_int_t port, timeout;

	if (read_line(PARAMS_FD, line, sizeof(line), mono_ms() + READY_WAIT_MS) < 0) {
		snprintf(err, errlen, "no parameters on fd %d (this command is started by `vigilctl setup secondary`)",
			 PARAMS_FD);
		return -1;
	}
	j = json_loads(line, 0, &jerr);
	explicit_bzero(line, sizeof(line));
	if (json_unpack(j, "{s:s, s:s, s:s, s:s, s:I, s:I}", "code", &code, "console", &console, "hash", &hash,
			"listen", &listen, "port", &port, "timeout", &timeout) < 0 ||
	    strlen(code) != SETUP_CODE_CHARS || setup_console_parse(console, &ag->a.console) < 0 ||
	    !strlcpy_ok(ag->a.hash, hash, sizeof(ag->a.hash)) || setup_parse_ipv4(listen, &ag->a.listen) < 0 ||
	    port < 1 || port > 65535 || timeout < 1 || timeout > SETUP_TIMEOUT_MAX_S) {
		snprintf(err, errlen, "bad parameters");
		json_decref(j);
		return -1;
	}
	snprintf(ag->a.code, sizeof(ag->a.code), "%s", code);
	ag->a.port = (uint16_t)port;
	ag->a.timeout_s = (unsigned)timeout;
	json_decref(j);
	return 0;
}

static int listen_on(const struct agent *ag, char *err, size_t errlen)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(ag->a.port), .sin_addr = ag->a.listen };
	char ip[INET_ADDRSTRLEN];
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	inet_ntop(AF_INET, &ag->a.listen, ip, sizeof(ip));
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
		snprintf(err, errlen, "cannot listen on %s port %u: %s%s", ip, ag->a.port, strerror(errno),
			 errno == EADDRINUSE ? " (another setup agent or program uses it)" :
			 errno == EADDRNOTAVAIL ? " (not an address of this machine)" : "");
		close(fd);
		return -1;
	}
	return fd;
}

static json_t *facts(const struct agent *ag)
{
	char host[256] = "";
	struct setup_ifs *ifs = calloc(1, sizeof(*ifs));
	char err[256];
	json_t *f;

	if (!ifs)
		return NULL;
	if (setup_local_ifs(ifs, err, sizeof(err)) < 0)
		log_warn("%s", err);
	gethostname(host, sizeof(host) - 1);
	f = json_pack("{s:s, s:s, s:o, s:s, s:s}", "version", VIGIL_VERSION, "hostname", host, "addresses",
		      setup_ifs_json(ifs), "console", setup_console_str(ag->a.console), "password_hash", ag->a.hash);
	free(ifs);
	return f;
}

static int store_package(const struct agent *ag, json_t *msg, const char *peer, char *err, size_t errlen)
{
	char path[PATH_MAX], *text;
	int r;

	json_object_set_new(msg, "received_from", json_string(peer));
	json_object_set_new(msg, "received_at", json_integer((json_int_t)time(NULL)));
	if (!setup_join(path, ag->p->state, SETUP_PACKAGE) || !(text = json_dumps(msg, JSON_INDENT(1)))) {
		snprintf(err, errlen, "cannot store the package (out of memory or path too long)");
		return -1;
	}
	r = write_file_atomic(path, text, strlen(text), 0600);
	explicit_bzero(text, strlen(text));
	free(text);
	if (r < 0) {
		snprintf(err, errlen, "cannot write %.300s: %s", path, strerror(-r));
		return -1;
	}
	return 0;
}

static void refuse(struct setup_chan *c, const char *why)
{
	char err[256];
	json_t *m = json_pack("{s:b, s:s}", "ok", 0, "error", why);

	if (m)
		setup_chan_send(c, m, err, sizeof(err));
	json_decref(m);
}

/* After the right code: node2's facts, then node1's package (or its
 * giving up). */
static enum served serve_node1(struct agent *ag, struct setup_chan *c)
{
	char err[512];
	json_t *m = facts(ag), *pkg = NULL, *ok;
	const char *type;
	enum served out = SERVED_AGAIN;

	ok = m ? json_pack("{s:b, s:o}", "ok", 1, "facts", m) : NULL;
	if (!ok || setup_chan_send(c, ok, err, sizeof(err)) < 0) {
		log_warn("node1 at %s: %s", c->peer, ok ? err : "out of memory");
		json_decref(ok);
		return SERVED_AGAIN;
	}
	json_decref(ok);
	if (!(pkg = setup_chan_recv(c, err, sizeof(err)))) {
		log_warn("node1 at %s went away before sending the configuration: %s", c->peer, err);
		return SERVED_AGAIN;
	}
	type = json_string_value(json_object_get(pkg, "type"));
	if (type && !strcmp(type, "abort")) {
		log_warn("node1 at %s gave up: %s; still waiting", c->peer,
			 json_string_value(json_object_get(pkg, "error")) ?: "no reason given");
	} else if (!type || strcmp(type, "package") || !json_is_string(json_object_get(pkg, "config")) ||
		   !json_is_string(json_object_get(pkg, "secret")) || !json_is_object(json_object_get(pkg, "files")) ||
		   !json_is_string(json_object_get(pkg, "node"))) {
		log_warn("node1 at %s sent a malformed package; still waiting", c->peer);
		refuse(c, "malformed package: config, secret, node and files are needed");
	} else if (store_package(ag, pkg, c->peer, err, sizeof(err)) < 0) {
		log_error("%s", err);
		refuse(c, err);
	} else {
		json_t *ack = json_pack("{s:b}", "ok", 1);

		log_info("received the configuration from node1 at %s: run `vigilctl setup finish`", c->peer);
		if (!ack || setup_chan_send(c, ack, err, sizeof(err)) < 0)
			log_warn("node1 at %s: the acknowledgement was not sent: %s", c->peer, ack ? err : "out of memory");
		json_decref(ack);
		out = SERVED_DONE;
	}
	json_decref(pkg);
	return out;
}

static enum served serve(struct agent *ag, int fd)
{
	struct setup_chan c;
	char err[512], code[SETUP_CODE_CHARS + 1];
	json_t *hello;
	const char *type, *given;
	enum served out;

	if (setup_chan_accept(&c, ag->ctx, fd, err, sizeof(err)) < 0) {
		log_warn("%s", err);
		setup_chan_close(&c);
		return SERVED_AGAIN;
	}
	if (!(hello = setup_chan_recv(&c, err, sizeof(err)))) {
		log_warn("%s", err);
		setup_chan_close(&c);
		return SERVED_AGAIN;
	}
	type = json_string_value(json_object_get(hello, "type"));
	given = json_string_value(json_object_get(hello, "code"));
	if (!type || strcmp(type, "hello") || !given) {
		log_warn("%s: not a vigil setup request", c.peer);
		refuse(&c, "not a vigil setup request");
		out = SERVED_AGAIN;
	} else if (setup_code_normalize(given, code, err, sizeof(err)) < 0 || !setup_code_equal(code, ag->a.code)) {
		char why[256];
		int left = SETUP_MAX_WRONG - ++ag->wrong;

		snprintf(why, sizeof(why), "wrong security code: node2's setup agent refused it (%d more attempt%s "
			 "before it stops)", left, left == 1 ? "" : "s");
		log_warn("wrong security code from %s (%d of %d)", c.peer, ag->wrong, SETUP_MAX_WRONG);
		refuse(&c, why);
		out = SERVED_WRONG;
	} else {
		log_info("node1 at %s gave the right security code", c.peer);
		out = serve_node1(ag, &c);
	}
	json_decref(hello);
	setup_chan_close(&c);
	return out;
}

static int write_pid(const struct setup_paths *p)
{
	char path[PATH_MAX], buf[32];

	snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	return setup_join(path, p->state, SETUP_AGENT_PID) && write_file_atomic(path, buf, strlen(buf), 0600) == 0 ? 0
														   : -1;
}

static int start(struct agent *ag, int *lfd, char *err, size_t errlen)
{
	char key[PATH_MAX], cert[PATH_MAX];

	if (read_params(ag, err, errlen) < 0)
		return -1;
	if (!setup_join(key, ag->p->state, SETUP_AGENT_KEY) || !setup_join(cert, ag->p->state, SETUP_AGENT_CERT)) {
		snprintf(err, errlen, "%.300s: path too long", ag->p->state);
		return -1;
	}
	ag->ctx = setup_chan_server_ctx(key, cert, err, errlen);
	/* Loaded: the key stays only in this process. */
	unlink(key);
	unlink(cert);
	if (!ag->ctx)
		return -1;
	if ((*lfd = listen_on(ag, err, errlen)) < 0)
		return -1;
	if (write_pid(ag->p) < 0) {
		snprintf(err, errlen, "cannot write %.300s/%s", ag->p->state, SETUP_AGENT_PID);
		return -1;
	}
	return 0;
}

int setup_agent_main(const struct setup_paths *p)
{
	struct agent ag = { .p = p };
	struct sigaction sa = { .sa_handler = on_signal };
	char err[512], ready[64], ip[INET_ADDRSTRLEN], pidfile[PATH_MAX];
	uint64_t deadline;
	int lfd = -1, rc = SETUP_EXIT_FAIL;

	log_init("vigil-setup-agent", true, LOG_LVL_INFO);
	signal(SIGPIPE, SIG_IGN);
	/* No SA_RESTART: poll() returns on the signal. */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (start(&ag, &lfd, err, sizeof(err)) < 0) {
		log_error("%s", err);
		snprintf(ready, sizeof(ready), "error ");
		write_all(PARAMS_FD, ready, strlen(ready));
		write_all(PARAMS_FD, err, strlen(err));
		write_all(PARAMS_FD, "\n", 1);
		goto out;
	}
	snprintf(ready, sizeof(ready), "ok %d\n", (int)getpid());
	write_all(PARAMS_FD, ready, strlen(ready));
	close(PARAMS_FD);
	inet_ntop(AF_INET, &ag.a.listen, ip, sizeof(ip));
	log_info("waiting for node1 on %s port %u for at most %u s", ip, ag.a.port, ag.a.timeout_s);
	deadline = mono_ms() + (uint64_t)ag.a.timeout_s * 1000;
	for (;;) {
		struct pollfd pfd = { .fd = lfd, .events = POLLIN };
		uint64_t now = mono_ms();
		enum served s;
		int fd, r;

		if (stop_signal) {
			log_info("stopped by signal %d; nothing received", (int)stop_signal);
			break;
		}
		if (now >= deadline) {
			log_warn("nobody gave the right security code within %u s: stopped; run `vigilctl setup "
				 "secondary` again", ag.a.timeout_s);
			break;
		}
		r = poll(&pfd, 1, deadline - now > 1000 ? 1000 : (int)(deadline - now));
		if (r <= 0)
			continue;
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		s = serve(&ag, fd);
		if (s == SERVED_DONE) {
			rc = SETUP_EXIT_OK;
			break;
		}
		if (ag.wrong >= SETUP_MAX_WRONG) {
			log_error("%d wrong security codes: stopped, so that nobody can try more; run `vigilctl setup "
				  "secondary` again for a new code", SETUP_MAX_WRONG);
			break;
		}
	}
out:
	if (lfd >= 0)
		close(lfd);
	if (ag.ctx)
		SSL_CTX_free(ag.ctx);
	if (setup_join(pidfile, p->state, SETUP_AGENT_PID))
		unlink(pidfile);
	explicit_bzero(&ag.a, sizeof(ag.a));
	return rc;
}
