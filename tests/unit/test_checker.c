/* checker.c against real loopback servers, processes and children. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "testutil.h"
#include "common/log.h"
#include "common/util.h"
#include "resource/checker.h"
#include "resource/script.h"

static struct event_base *base;
static char dir[PATH_MAX];

struct res {
	int calls, oks, fails;
	bool ok;
	char reason[256];
	uint64_t first_ms;   /* mono_ms of the first callback */
	enum checker_state state_in_cb;
	unsigned failures_in_cb;
	bool free_in_cb;
	bool stop_in_cb;
};

static void on_result(struct checker *c, bool ok, const char *reason, void *arg)
{
	struct res *r = arg;

	if (r->calls++ == 0)
		r->first_ms = mono_ms();
	if (ok)
		r->oks++;
	else
		r->fails++;
	r->ok = ok;
	snprintf(r->reason, sizeof(r->reason), "%s", reason);
	r->state_in_cb = checker_state(c);
	r->failures_in_cb = checker_failures(c);
	if (r->stop_in_cb)
		checker_stop(c);
	if (r->free_in_cb)
		checker_free(c);
}

struct want { const int *calls; int n; };

static bool calls_reached(void *arg)
{
	struct want *w = arg;

	return *w->calls >= w->n;
}

static bool wait_calls(const struct res *r, int n, uint32_t ms)
{
	struct want w = { &r->calls, n };

	return run_until(base, calls_reached, &w, ms);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the DIR's own */
}

static bool no_scripts(void *arg)
{
	return script_running_count() == 0;
}

/* One check: started, waited for, freed. Returns the elapsed time from
 * start to the callback; the fds in use must be back where they were. */
static uint64_t check_once(const struct checker_cfg *cfg, struct res *r, uint32_t wait_ms)
{
	int fds = count_fds();
	struct checker *c = checker_new(base, cfg, on_result, r);
	uint64_t t0;

	assert_non_null(c);
	assert_int_equal(checker_state(c), CHK_STOPPED);
	t0 = mono_ms();
	checker_start(c);
	assert_int_equal(checker_state(c), CHK_UNKNOWN);
	assert_int_equal(r->calls, 0); /* never from inside checker_start */
	assert_true(wait_calls(r, 1, wait_ms));
	assert_int_equal(checker_state(c), r->ok ? CHK_OK : CHK_FAILED);
	assert_int_equal(checker_failures(c), r->ok ? 0 : 1);
	if (!r->ok)
		assert_string_equal(checker_reason(c), r->reason);
	checker_free(c);
	/* A cancelled child holds its pipes until it is reaped. */
	assert_true(run_until(base, no_scripts, NULL, 3000));
	assert_int_equal(count_fds(), fds);
	return r->first_ms - t0;
}

static void cfg_base(struct checker_cfg *cfg, enum checker_type t, const char *name)
{
	checker_cfg_init(cfg);
	cfg->type = t;
	snprintf(cfg->name, sizeof(cfg->name), "%s", name);
	cfg->timeout_ms = 1000;
	cfg->interval_ms = 10000;
}

/* A listening socket on 127.0.0.1, port into *port. */
static int listener(uint16_t *port, int backlog)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	if (backlog >= 0)
		assert_int_equal(listen(fd, backlog), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* A port with nothing listening: bound but not listening refuses. */
static uint16_t closed_port(int *holder)
{
	uint16_t port;

	*holder = listener(&port, -1);
	return port;
}

/* ---- tcp ---- */

static void t_tcp_ok(void **state)
{
	struct checker_cfg cfg;
	struct res r = { 0 };
	uint16_t port;
	int lfd = listener(&port, 8);

	cfg_base(&cfg, CHK_TCP, "web");
	FMT(cfg.target, sizeof(cfg.target), "127.0.0.1:%u", port);
	check_once(&cfg, &r, 2000);
	assert_true(r.ok);
	assert_non_null(strstr(r.reason, "connected"));
	close(lfd);
}

static void t_tcp_refused(void **state)
{
	struct checker_cfg cfg;
	struct res r = { 0 };
	int hold;
	uint16_t port = closed_port(&hold);

	cfg_base(&cfg, CHK_TCP, "web");
	FMT(cfg.target, sizeof(cfg.target), "127.0.0.1:%u", port);
	check_once(&cfg, &r, 2000);
	assert_false(r.ok);
	assert_non_null(strstr(r.reason, strerror(ECONNREFUSED)));
	assert_non_null(strstr(r.reason, cfg.target));
	close(hold);
}

static void t_tcp_ipv6(void **state)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	socklen_t len = sizeof(a);
	struct checker_cfg cfg;
	struct res r = { 0 };
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	cfg_base(&cfg, CHK_TCP, "web6");
	FMT(cfg.target, sizeof(cfg.target), "[::1]:%u", ntohs(a.sin6_port));
	check_once(&cfg, &r, 2000);
	assert_true(r.ok);
	close(fd);
}

/* ---- http ---- */

static int http_status_to_send = 200;
static char http_seen_uri[256], http_seen_host[128];

static void on_http_req(struct evhttp_request *req, void *arg)
{
	const char *host = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");

	snprintf(http_seen_uri, sizeof(http_seen_uri), "%s", evhttp_request_get_uri(req));
	snprintf(http_seen_host, sizeof(http_seen_host), "%s", host ? host : "");
	evbuffer_add_printf(evhttp_request_get_output_buffer(req), "hello\n");
	evhttp_send_reply(req, http_status_to_send, http_status_to_send == 200 ? "OK" : "Oops",
	                  NULL);
}

static struct evhttp *http_server(uint16_t *port)
{
	struct evhttp *h = evhttp_new(base);
	struct evhttp_bound_socket *bs;
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	assert_non_null(h);
	evhttp_set_gencb(h, on_http_req, NULL);
	bs = evhttp_bind_socket_with_handle(h, "127.0.0.1", 0);
	assert_non_null(bs);
	assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return h;
}

static void t_http_200(void **state)
{
	struct checker_cfg cfg;
	struct res r = { 0 };
	uint16_t port;
	struct evhttp *h = http_server(&port);

	http_status_to_send = 200;
	http_seen_uri[0] = http_seen_host[0] = '\0';
	cfg_base(&cfg, CHK_HTTP, "api");
	FMT(cfg.url, sizeof(cfg.url), "http://127.0.0.1:%u/health?x=1", port);
	check_once(&cfg, &r, 2000);
	assert_true(r.ok);
	assert_non_null(strstr(r.reason, "200"));
	assert_string_equal(http_seen_uri, "/health?x=1");
	FMT(cfg.url, sizeof(cfg.url), "127.0.0.1:%u", port);
	assert_string_equal(http_seen_host, cfg.url);
	evhttp_free(h);
}

static void t_http_500(void **state)
{
	struct checker_cfg cfg;
	struct res r = { 0 };
	uint16_t port;
	struct evhttp *h = http_server(&port);

	http_status_to_send = 500;
	cfg_base(&cfg, CHK_HTTP, "api");
	FMT(cfg.url, sizeof(cfg.url), "http://127.0.0.1:%u/", port);
	check_once(&cfg, &r, 2000);
	assert_false(r.ok);
	assert_non_null(strstr(r.reason, "HTTP 500"));
	assert_non_null(strstr(r.reason, "expected 200"));

	/* A status other than 200 may be the one wanted. */
	memset(&r, 0, sizeof(r));
	cfg.expect_status = 500;
	check_once(&cfg, &r, 2000);
	assert_true(r.ok);
	evhttp_free(h);
}

/* Accepts TCP (the kernel does, from the backlog) and never answers. */
static void t_http_hang(void **state)
{
	struct checker_cfg cfg;
	struct res r = { 0 };
	uint16_t port;
	int lfd = listener(&port, 8);
	uint64_t el;

	cfg_base(&cfg, CHK_HTTP, "api");
	cfg.timeout_ms = 300;
	FMT(cfg.url, sizeof(cfg.url), "http://127.0.0.1:%u/", port);
	el = check_once(&cfg, &r, 3000);
	assert_false(r.ok);
	assert_string_equal(r.reason, "timed out after 300 ms");
	assert_true(el >= 300);
	assert_true(el <= 800);
	close(lfd);
}

static void t_http_refused(void **state)
{
	struct checker_cfg cfg;
	struct res r = { 0 };
	int hold;
	uint16_t port = closed_port(&hold);

	cfg_base(&cfg, CHK_HTTP, "api");
	FMT(cfg.url, sizeof(cfg.url), "http://127.0.0.1:%u/x", port);
	assert_true(check_once(&cfg, &r, 2000) < 900); /* not the deadline */
	assert_false(r.ok);
	assert_non_null(strstr(r.reason, cfg.url));
	assert_non_null(strstr(r.reason, "cannot connect"));
	close(hold);
}

/* The server closes the connection without a response. */
static void on_accept_close(evutil_socket_t fd, short what, void *arg)
{
	int s = accept(fd, NULL, NULL);

	if (s >= 0)
		close(s);
}

static void t_http_closed(void **state)
{
	struct checker_cfg cfg;
	struct res r = { 0 };
	uint16_t port;
	int lfd = listener(&port, 8);
	struct event *ev = event_new(base, lfd, EV_READ | EV_PERSIST, on_accept_close, NULL);

	event_add(ev, NULL);
	cfg_base(&cfg, CHK_HTTP, "api");
	FMT(cfg.url, sizeof(cfg.url), "http://127.0.0.1:%u/", port);
	assert_true(check_once(&cfg, &r, 2000) < 900);
	assert_false(r.ok);
	assert_non_null(strstr(r.reason, "connection closed without a response"));
	event_free(ev);
	close(lfd);
}

/* ---- process ---- */

static void own_comm(char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/comm", "r");

	assert_non_null(f);
	assert_non_null(fgets(buf, (int)len, f));
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
}

static void t_process_name(void **state)
{
	struct checker_cfg cfg;
	struct res r = { 0 };

	cfg_base(&cfg, CHK_PROCESS, "self");
	own_comm(cfg.process, sizeof(cfg.process));
	check_once(&cfg, &r, 2000);
	assert_true(r.ok);
	assert_non_null(strstr(r.reason, cfg.process));

	memset(&r, 0, sizeof(r));
	snprintf(cfg.process, sizeof(cfg.process), "vigil-nosuchp");
	check_once(&cfg, &r, 2000);
	assert_false(r.ok);
	assert_string_equal(r.reason, "no process named vigil-nosuchp is running");
}

static void write_pidfile(const char *path, long pid)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", pid);

	assert_int_equal(write_file_atomic(path, buf, (size_t)n, 0644), 0);
}

static void t_pidfile(void **state)
{
	struct checker_cfg cfg;
	struct res r = { 0 };
	pid_t child;
	int st;

	cfg_base(&cfg, CHK_PROCESS, "pf");
	FMT(cfg.pidfile, sizeof(cfg.pidfile), "%s/svc.pid", dir);

	/* No file yet. */
	check_once(&cfg, &r, 2000);
	assert_false(r.ok);
	assert_non_null(strstr(r.reason, strerror(ENOENT)));

	memset(&r, 0, sizeof(r));
	write_pidfile(cfg.pidfile, (long)getpid());
	check_once(&cfg, &r, 2000);
	assert_true(r.ok);

	/* A zombie is dead. */
	child = fork();
	assert_true(child >= 0);
	if (child == 0)
		_exit(0);
	usleep(100000);
	write_pidfile(cfg.pidfile, (long)child);
	memset(&r, 0, sizeof(r));
	check_once(&cfg, &r, 2000);
	assert_false(r.ok);
	assert_non_null(strstr(r.reason, "not running"));

	/* Reaped: gone altogether. */
	assert_int_equal(waitpid(child, &st, 0), child);
	memset(&r, 0, sizeof(r));
	check_once(&cfg, &r, 2000);
	assert_false(r.ok);
	assert_non_null(strstr(r.reason, "not running"));

	memset(&r, 0, sizeof(r));
	assert_int_equal(write_file_atomic(cfg.pidfile, "garbage\n", 8, 0644), 0);
	check_once(&cfg, &r, 2000);
	assert_false(r.ok);
	assert_non_null(strstr(r.reason, "does not hold a pid"));
	unlink(cfg.pidfile);
}

/* ---- custom ---- */

static bool alive(pid_t pid)
{
	char path[64], *buf = NULL, *p;
	size_t len;
	bool a;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_file(path, 1024, &buf, &len) < 0)
		return false;
	p = strrchr(buf, ')');
	a = p && p[1] == ' ' && p[2] != 'Z';
	free(buf);
	return a;
}

static void t_custom(void **state)
{
	struct checker_cfg cfg;
	struct res r = { 0 };

	cfg_base(&cfg, CHK_CUSTOM, "cmd");
	cfg.command = "echo all good for $VIGIL_CHECKER; exit 0";
	check_once(&cfg, &r, 3000);
	assert_true(r.ok);
	assert_string_equal(r.reason, "exit 0: all good for cmd");

	memset(&r, 0, sizeof(r));
	cfg.command = "echo 'db down' >&2; exit 2";
	check_once(&cfg, &r, 3000);
	assert_false(r.ok);
	assert_string_equal(r.reason, "exit 2: db down");
	assert_true(run_until(base, no_scripts, NULL, 2000));
}

static void t_custom_timeout(void **state)
{
	struct checker_cfg cfg;
	struct res r = { 0 };
	char cmd[PATH_MAX + 64], path[PATH_MAX + 8], *buf = NULL;
	size_t len;
	uint64_t el, end;
	pid_t pid;

	FMT(path, sizeof(path), "%s/pid", dir);
	FMT(cmd, sizeof(cmd), "echo $$ > %s; exec sleep 10", path);
	cfg_base(&cfg, CHK_CUSTOM, "slow");
	cfg.command = cmd;
	cfg.timeout_ms = 200;
	el = check_once(&cfg, &r, 3000);
	assert_false(r.ok);
	assert_string_equal(r.reason, "timed out after 200 ms");
	assert_true(el >= 200 && el <= 700);

	assert_int_equal(read_file(path, 64, &buf, &len), 0);
	pid = (pid_t)atoi(buf);
	free(buf);
	assert_true(pid > 0);
	assert_true(run_until(base, no_scripts, NULL, 3000));
	end = mono_ms() + 2000;
	while (alive(pid) && mono_ms() < end)
		usleep(10000);
	assert_false(alive(pid));
	unlink(path);
}

/* checker_stop cancels the check in flight: no callback, child killed. */
static void t_stop_in_flight(void **state)
{
	struct checker_cfg cfg;
	struct res r = { 0 };
	struct checker *c;

	cfg_base(&cfg, CHK_CUSTOM, "slow");
	cfg.command = "exec sleep 10";
	cfg.timeout_ms = 5000;
	c = checker_new(base, &cfg, on_result, &r);
	assert_non_null(c);
	checker_start(c);
	run_for(base, 150);
	assert_int_equal(script_running_count(), 1);
	checker_stop(c);
	assert_int_equal(checker_state(c), CHK_STOPPED);
	assert_true(run_until(base, no_scripts, NULL, 3000));
	run_for(base, 100);
	assert_int_equal(r.calls, 0);
	checker_free(c);
}

/* ---- interface ---- */

static void t_interface(void **state)
{
	struct checker_cfg cfg;
	struct res r = { 0 };

	cfg_base(&cfg, CHK_INTERFACE, "link");
	snprintf(cfg.ifname, sizeof(cfg.ifname), "lo");
	check_once(&cfg, &r, 2000);
	assert_true(r.ok);

	memset(&r, 0, sizeof(r));
	snprintf(cfg.ifname, sizeof(cfg.ifname), "vigilnope0");
	check_once(&cfg, &r, 2000);
	assert_false(r.ok);
	assert_string_equal(r.reason, "interface vigilnope0 does not exist");
}

/* ---- ping ---- */

static void t_ping(void **state)
{
	struct checker_cfg cfg;
	struct res r = { 0 };

	cfg_base(&cfg, CHK_PING, "gw");
	snprintf(cfg.target, sizeof(cfg.target), "127.0.0.1");
	check_once(&cfg, &r, 2000);
	assert_true(r.ok);
	assert_non_null(strstr(r.reason, "echo reply from 127.0.0.1"));
}

/* Child side of t_netns: a fresh network namespace (lo down, no routes),
 * its own loop. Exit code = the first step that went wrong. */
static int netns_child(void)
{
	struct event_base *b;
	struct checker_cfg cfg;
	struct res r = { 0 };
	struct checker *c;
	struct ifreq ifr;
	struct want w = { &r.calls, 1 };
	int fd;

	if (unshare(CLONE_NEWNET) < 0)
		return 2;
	b = event_base_new();
	if (!b)
		return 3;
	base = b;

	/* lo exists but is down in a new namespace. */
	cfg_base(&cfg, CHK_INTERFACE, "link");
	snprintf(cfg.ifname, sizeof(cfg.ifname), "lo");
	c = checker_new(b, &cfg, on_result, &r);
	checker_start(c);
	if (!run_until(b, calls_reached, &w, 2000) || r.ok || !strstr(r.reason, "is down"))
		return 4;
	checker_free(c);

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return 5;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		return 6;
	close(fd);

	/* No route: the send fails at once, not at the deadline. */
	memset(&r, 0, sizeof(r));
	cfg_base(&cfg, CHK_PING, "far");
	snprintf(cfg.target, sizeof(cfg.target), "10.255.255.1");
	c = checker_new(b, &cfg, on_result, &r);
	checker_start(c);
	if (!run_until(b, calls_reached, &w, 3000) || r.ok || strstr(r.reason, "timed out"))
		return 7;
	checker_free(c);

	/* Without CAP_NET_RAW only the ping socket is left: allowed for
	 * nobody's group here, in our own namespace. */
	fd = open("/proc/sys/net/ipv4/ping_group_range", O_WRONLY);
	if (fd < 0 || write(fd, "65534 65534", 11) != 11)
		return 8;
	close(fd);
	if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
		return 9;
	if (socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) >= 0)
		return 10;
	memset(&r, 0, sizeof(r));
	cfg_base(&cfg, CHK_PING, "lo");
	snprintf(cfg.target, sizeof(cfg.target), "127.0.0.1");
	c = checker_new(b, &cfg, on_result, &r);
	checker_start(c);
	if (!run_until(b, calls_reached, &w, 3000) || !r.ok)
		return 11;
	checker_free(c);
	event_base_free(b);
	return 0;
}

static void t_netns(void **state)
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(netns_child());
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* Neither socket kind is allowed: the reason says what is missing. */
static int no_socket_child(void)
{
	struct checker_cfg cfg;
	struct res r = { 0 };
	struct want w = { &r.calls, 1 };
	struct event_base *b;
	struct checker *c;
	int fd;

	/* Our own namespace, where ping sockets are off for everyone. */
	if (unshare(CLONE_NEWNET) < 0)
		return 2;
	fd = open("/proc/sys/net/ipv4/ping_group_range", O_WRONLY);
	if (fd < 0 || write(fd, "1 0", 3) != 3)
		return 3;
	close(fd);
	if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
		return 4;
	b = event_base_new();
	if (!b)
		return 5;
	base = b;
	cfg_base(&cfg, CHK_PING, "gw");
	snprintf(cfg.target, sizeof(cfg.target), "127.0.0.1");
	c = checker_new(b, &cfg, on_result, &r);
	checker_start(c);
	if (!run_until(b, calls_reached, &w, 2000) || r.ok || !strstr(r.reason, "CAP_NET_RAW"))
		return 6;
	checker_free(c);
	event_base_free(b);
	return 0;
}

static void t_ping_no_socket(void **state)
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(no_socket_child());
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* ---- validation ---- */

static void expect_invalid(const struct checker_cfg *cfg, const char *part1, const char *part2)
{
	char err[512] = "";

	assert_int_equal(checker_validate(cfg, err, sizeof(err)), -1);
	if (!strstr(err, part1) || (part2 && !strstr(err, part2)))
		fail_msg("error '%s' lacks '%s' / '%s'", err, part1, part2 ? part2 : "");
	assert_null(checker_new(base, cfg, on_result, NULL));
}

static void t_validate(void **state)
{
	struct checker_cfg cfg;
	enum checker_type t;
	char err[512];

	assert_int_equal(checker_type_parse("interface", &t), 0);
	assert_int_equal(t, CHK_INTERFACE);
	assert_int_equal(checker_type_parse("tcpx", &t), -1);
	assert_int_equal(checker_type_parse("", &t), -1);
	assert_int_equal(checker_type_parse(NULL, &t), -1);
	for (int i = 0; i < CHK_TYPE_COUNT; i++) {
		assert_int_equal(checker_type_parse(checker_type_str((enum checker_type)i), &t), 0);
		assert_int_equal(t, i);
	}
	assert_string_equal(checker_state_str(CHK_FAILED), "failed");
	assert_string_equal(checker_state_str(CHK_STOPPED), "stopped");

	cfg_base(&cfg, CHK_TCP, "web");
	expect_invalid(&cfg, "tcp checker web: no target", NULL);
	snprintf(cfg.target, sizeof(cfg.target), "127.0.0.1");
	expect_invalid(&cfg, "tcp checker web: target '127.0.0.1' is not HOST:PORT", NULL);
	snprintf(cfg.target, sizeof(cfg.target), "127.0.0.1:0");
	expect_invalid(&cfg, "'127.0.0.1:0'", "port");
	snprintf(cfg.target, sizeof(cfg.target), "127.0.0.1:99999");
	expect_invalid(&cfg, "'127.0.0.1:99999'", "port");
	snprintf(cfg.target, sizeof(cfg.target), "127.0.0.1:8x");
	expect_invalid(&cfg, "'127.0.0.1:8x'", "port");
	snprintf(cfg.target, sizeof(cfg.target), "db.example:5432");
	expect_invalid(&cfg, "'db.example'", "not an IPv4 address");
	snprintf(cfg.target, sizeof(cfg.target), "[::1:80");
	expect_invalid(&cfg, "'[::1:80'", "HOST:PORT");
	snprintf(cfg.target, sizeof(cfg.target), "10.0.0.1:80");
	assert_int_equal(checker_validate(&cfg, err, sizeof(err)), 0);
	cfg.interval_ms = 0;
	expect_invalid(&cfg, "tcp checker web: interval", NULL);
	cfg.interval_ms = 10;
	cfg.timeout_ms = 0;
	expect_invalid(&cfg, "tcp checker web: timeout", NULL);
	cfg.timeout_ms = 10;
	cfg.name[0] = '\0';
	expect_invalid(&cfg, "tcp checker: no name", NULL);
	cfg.type = (enum checker_type)42;
	snprintf(cfg.name, sizeof(cfg.name), "odd");
	expect_invalid(&cfg, "checker odd: unknown type 42", NULL);

	cfg_base(&cfg, CHK_HTTP, "api");
	expect_invalid(&cfg, "http checker api: no url", NULL);
	snprintf(cfg.url, sizeof(cfg.url), "https://127.0.0.1/");
	expect_invalid(&cfg, "url 'https://127.0.0.1/' does not start with http://", NULL);
	snprintf(cfg.url, sizeof(cfg.url), "ftp://127.0.0.1/");
	expect_invalid(&cfg, "does not start with http://", NULL);
	snprintf(cfg.url, sizeof(cfg.url), "http://localhost/health");
	expect_invalid(&cfg, "'localhost'", "not an IPv4 address");
	snprintf(cfg.url, sizeof(cfg.url), "http://127.0.0.1:70000/");
	expect_invalid(&cfg, "url 'http://127.0.0.1:70000/'", NULL);
	snprintf(cfg.url, sizeof(cfg.url), "http://127.0.0.1:8080");
	assert_int_equal(checker_validate(&cfg, err, sizeof(err)), 0);
	cfg.expect_status = 42;
	expect_invalid(&cfg, "expected status 42", NULL);

	cfg_base(&cfg, CHK_PROCESS, "proc");
	expect_invalid(&cfg, "exactly one of", NULL);
	snprintf(cfg.process, sizeof(cfg.process), "nginx");
	snprintf(cfg.pidfile, sizeof(cfg.pidfile), "/run/nginx.pid");
	expect_invalid(&cfg, "exactly one of", NULL);
	cfg.pidfile[0] = '\0';
	assert_int_equal(checker_validate(&cfg, err, sizeof(err)), 0);
	snprintf(cfg.process, sizeof(cfg.process), "/usr/sbin/nginx");
	expect_invalid(&cfg, "is a path", NULL);
	snprintf(cfg.process, sizeof(cfg.process), "averyveryverylongname");
	expect_invalid(&cfg, "longer than 15", NULL);

	cfg_base(&cfg, CHK_CUSTOM, "cmd");
	expect_invalid(&cfg, "custom checker cmd: no command", NULL);
	cfg.command = "  ";
	expect_invalid(&cfg, "custom checker cmd: no command", NULL);

	cfg_base(&cfg, CHK_INTERFACE, "if");
	expect_invalid(&cfg, "interface checker if: no interface", NULL);
	snprintf(cfg.ifname, sizeof(cfg.ifname), "eth/0");
	expect_invalid(&cfg, "'eth/0' is not an interface name", NULL);
	memset(cfg.ifname, 'x', sizeof(cfg.ifname));
	expect_invalid(&cfg, "longer than 15", NULL);

	cfg_base(&cfg, CHK_PING, "gw");
	expect_invalid(&cfg, "ping checker gw: no target", NULL);
	snprintf(cfg.target, sizeof(cfg.target), "gateway");
	expect_invalid(&cfg, "target 'gateway' is not an IPv4 address", NULL);
	snprintf(cfg.target, sizeof(cfg.target), "10.0.0.1");
	assert_int_equal(checker_validate(&cfg, err, sizeof(err)), 0);
}

/* ---- repetition and state ---- */

static void t_interval(void **state)
{
	struct checker_cfg cfg;
	struct res r = { 0 };
	struct checker *c;
	uint16_t port;
	int lfd = listener(&port, 64);

	cfg_base(&cfg, CHK_TCP, "web");
	FMT(cfg.target, sizeof(cfg.target), "127.0.0.1:%u", port);
	cfg.interval_ms = 100;
	c = checker_new(base, &cfg, on_result, &r);
	checker_start(c);
	checker_start(c); /* no-op */
	run_for(base, 550);
	/* at 0, 100, ..., 500 */
	assert_in_range(r.calls, 5, 6);
	assert_int_equal(r.oks, r.calls);
	checker_stop(c);
	run_for(base, 250);
	assert_in_range(r.calls, 5, 6);
	checker_free(c);
	close(lfd);
}

static void t_failures_reset(void **state)
{
	struct checker_cfg cfg;
	struct res r = { 0 };
	struct checker *c;

	cfg_base(&cfg, CHK_PROCESS, "pf");
	FMT(cfg.pidfile, sizeof(cfg.pidfile), "%s/reset.pid", dir);
	cfg.interval_ms = 50;
	c = checker_new(base, &cfg, on_result, &r);
	checker_start(c);
	assert_true(wait_calls(&r, 3, 2000));
	assert_int_equal(checker_state(c), CHK_FAILED);
	assert_int_equal(checker_failures(c), (unsigned)r.calls);
	assert_int_equal(r.failures_in_cb, (unsigned)r.calls); /* updated before the callback */
	assert_non_null(strstr(checker_reason(c), "reset.pid"));

	write_pidfile(cfg.pidfile, (long)getpid());
	assert_true(wait_calls(&r, r.calls + 2, 2000));
	assert_true(r.ok);
	assert_int_equal(checker_state(c), CHK_OK);
	assert_int_equal(r.state_in_cb, CHK_OK);
	assert_int_equal(checker_failures(c), 0);
	/* The last failure stays readable. */
	assert_non_null(strstr(checker_reason(c), "reset.pid"));

	unlink(cfg.pidfile);
	assert_true(wait_calls(&r, r.calls + 2, 2000));
	assert_false(r.ok);
	assert_int_equal(checker_failures(c), r.failures_in_cb);
	assert_true(checker_failures(c) >= 1);

	/* A restart starts from scratch. */
	checker_stop(c);
	assert_int_equal(checker_state(c), CHK_STOPPED);
	checker_start(c);
	assert_int_equal(checker_state(c), CHK_UNKNOWN);
	assert_int_equal(checker_failures(c), 0);
	assert_string_equal(checker_reason(c), "");
	checker_free(c);
}

/* The callback may stop or free its checker. */
static void t_free_in_callback(void **state)
{
	struct checker_cfg cfg;
	struct res r = { .free_in_cb = true };
	struct res r2 = { .stop_in_cb = true };
	struct checker *c;

	cfg_base(&cfg, CHK_INTERFACE, "link");
	snprintf(cfg.ifname, sizeof(cfg.ifname), "lo");
	cfg.interval_ms = 20;
	c = checker_new(base, &cfg, on_result, &r);
	checker_start(c);
	run_for(base, 200);
	assert_int_equal(r.calls, 1);

	c = checker_new(base, &cfg, on_result, &r2);
	checker_start(c);
	run_for(base, 200);
	assert_int_equal(r2.calls, 1);
	assert_int_equal(checker_state(c), CHK_STOPPED);
	checker_free(c);
}

/* Transitions reach the module log: warn into failed, info back to ok. */
static void t_log_transitions(void **state)
{
	struct checker_cfg cfg;
	struct res r = { 0 };
	struct checker *c;
	char logdir[PATH_MAX + 8], path[PATH_MAX + 32], *buf = NULL;
	size_t len;

	FMT(logdir, sizeof(logdir), "%s/log", dir);
	assert_int_equal(mkdir_p(logdir, 0755), 0);
	assert_int_equal(log_open_files(logdir, 1 << 20), 0);
	cfg_base(&cfg, CHK_PROCESS, "logged");
	FMT(cfg.pidfile, sizeof(cfg.pidfile), "%s/log.pid", dir);
	cfg.interval_ms = 30;
	c = checker_new(base, &cfg, on_result, &r);
	checker_start(c);
	assert_true(wait_calls(&r, 2, 2000));
	write_pidfile(cfg.pidfile, (long)getpid());
	assert_true(wait_calls(&r, r.calls + 1, 2000));
	assert_true(r.ok);
	checker_free(c);
	log_close_files();
	FMT(path, sizeof(path), "%s/module.log", logdir);
	assert_int_equal(read_file(path, 1 << 20, &buf, &len), 0);
	assert_non_null(strstr(buf, "process checker logged: failed: pidfile"));
	assert_non_null(strstr(buf, "process checker logged: ok again after 2 failures"));
	/* Once per transition, not per failed check. */
	assert_null(strstr(strstr(buf, "logged: failed:") + 1, "logged: failed:"));
	free(buf);
	unlink(cfg.pidfile);
}

static int setup(void **state)
{
	signal(SIGPIPE, SIG_IGN);
	log_init("test_checker", true, getenv("VIGIL_TEST_DEBUG") ? LOG_LVL_DEBUG : LOG_LVL_ERROR);
	base = event_base_new();
	if (!base || script_init(base) < 0 || tu_mkdtemp(dir, "checker") < 0)
		return -1;
	script_set_kill_grace(300);
	return 0;
}

static int teardown(void **state)
{
	script_shutdown();
	event_base_free(base);
	tu_rm_rf(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_tcp_ok),
		cmocka_unit_test(t_tcp_refused),
		cmocka_unit_test(t_tcp_ipv6),
		cmocka_unit_test(t_http_200),
		cmocka_unit_test(t_http_500),
		cmocka_unit_test(t_http_hang),
		cmocka_unit_test(t_http_refused),
		cmocka_unit_test(t_http_closed),
		cmocka_unit_test(t_process_name),
		cmocka_unit_test(t_pidfile),
		cmocka_unit_test(t_custom),
		cmocka_unit_test(t_custom_timeout),
		cmocka_unit_test(t_stop_in_flight),
		cmocka_unit_test(t_interface),
		cmocka_unit_test(t_ping),
		cmocka_unit_test(t_netns),
		cmocka_unit_test(t_ping_no_socket),
		cmocka_unit_test(t_validate),
		cmocka_unit_test(t_interval),
		cmocka_unit_test(t_failures_reset),
		cmocka_unit_test(t_free_in_callback),
		cmocka_unit_test(t_log_transitions),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
