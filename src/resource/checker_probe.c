/* One probe per checker type: how a tcp, http, process, custom,
 * interface or ping check is carried out, without blocking the loop. */
#include "resource/checker_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "common/log.h"
#include "common/util.h"
#include "resource/script.h"

/* <linux/icmp.h> clashes with <netinet/ip_icmp.h>; only this is needed. */
#ifndef ICMP_FILTER
#define ICMP_FILTER 1
#endif

#define HTTP_HEADERS_MAX (16 * 1024)
/* ---- tcp ---- */

static const char *addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &a6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(a6->sin6_port));
	} else {
		const struct sockaddr_in *a4 = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &a4->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(a4->sin_port));
	}
	return buf;
}

static void on_tcp_io(evutil_socket_t fd, short what, void *arg)
{
	struct checker *c = arg;
	int e = 0;
	socklen_t elen = sizeof(e);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) < 0)
		e = errno;
	if (e == 0)
		checker_record(c, true, "connected to %s", c->cfg.target);
	else
		checker_record(c, false, "connect to %s: %s", c->cfg.target, strerror(e));
}

void probe_tcp(struct checker *c)
{
	char buf[64];

	c->fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		checker_record(c, false, "socket: %s", strerror(errno));
		return;
	}
	if (connect(c->fd, (struct sockaddr *)&c->addr, c->addrlen) == 0) {
		checker_record(c, true, "connected to %s", addr_str(&c->addr, buf, sizeof(buf)));
		return;
	}
	if (errno != EINPROGRESS) {
		checker_record(c, false, "connect to %s: %s", addr_str(&c->addr, buf, sizeof(buf)),
		       strerror(errno));
		return;
	}
	c->io_ev = event_new(c->base, c->fd, EV_WRITE, on_tcp_io, c);
	if (!c->io_ev || event_add(c->io_ev, NULL) < 0)
		checker_record(c, false, "out of memory");
}

/* ---- http ---- */

static const char *http_err_str(int err)
{
	switch (err) {
	case EVREQ_HTTP_TIMEOUT: return "timed out";
	case EVREQ_HTTP_EOF: return "connection closed without a response";
	case EVREQ_HTTP_INVALID_HEADER: return "invalid response";
	case EVREQ_HTTP_BUFFER_ERROR: return "connection failed";
	case EVREQ_HTTP_REQUEST_CANCEL: return "request cancelled";
	case EVREQ_HTTP_DATA_TOO_LONG: return "response headers too long";
	}
	return "request failed";
}

static void http_status(struct checker *c, struct evhttp_request *req)
{
	int code = evhttp_request_get_response_code(req), want = c->cfg.expect_status;
	const char *line = evhttp_request_get_response_code_line(req);

	if (code == want)
		checker_record(c, true, "HTTP %d from %s", code, c->cfg.url);
	else
		checker_record(c, false, "HTTP %d%s%s from %s, expected %d", code, line ? " " : "",
		       line ? line : "", c->cfg.url, want);
}

/* The status is all we need: no waiting for the body. */
static int on_http_header(struct evhttp_request *req, void *arg)
{
	http_status(arg, req);
	return 0;
}

static void on_http_error(enum evhttp_request_error err, void *arg)
{
	struct checker *c = arg;

	c->http_err = (int)err + 1;
	c->http_errno = errno;
}

/* evhttp does not pass the socket error along; errno still holds it on
 * the paths seen, but may hold noise from its cleanup: only the errors a
 * connection can end with are shown. */
static bool net_errno(int e)
{
	switch (e) {
	case ECONNREFUSED: case ECONNRESET: case ECONNABORTED: case ETIMEDOUT:
	case EHOSTUNREACH: case ENETUNREACH: case EPIPE: case EADDRNOTAVAIL:
		return true;
	}
	return false;
}

static void on_http_done(struct evhttp_request *req, void *arg)
{
	struct checker *c = arg;
	int e = c->http_err ? c->http_errno : errno;
	/* Without an error callback, evhttp could not connect. */
	const char *what = c->http_err ? http_err_str(c->http_err - 1) : "cannot connect";

	if (req && evhttp_request_get_response_code(req) > 0) {
		http_status(c, req);
		return;
	}
	if (net_errno(e))
		checker_record(c, false, "GET %s: %s (%s)", c->cfg.url, what, strerror(e));
	else
		checker_record(c, false, "GET %s: %s", c->cfg.url, what);
}

void probe_http(struct checker *c)
{
	struct evhttp_request *req;
	struct evkeyvalq *h;

	c->http_err = c->http_errno = 0;
	c->evcon = evhttp_connection_base_new(c->base, NULL, c->http_host, c->http_port);
	if (!c->evcon) {
		checker_record(c, false, "GET %s: cannot create a connection", c->cfg.url);
		return;
	}
	evhttp_connection_set_retries(c->evcon, 0);
	evhttp_connection_set_max_headers_size(c->evcon, HTTP_HEADERS_MAX);
	req = evhttp_request_new(on_http_done, c);
	if (!req) {
		checker_record(c, false, "out of memory");
		return;
	}
	evhttp_request_set_header_cb(req, on_http_header);
	evhttp_request_set_error_cb(req, on_http_error);
	h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", c->http_hosthdr);
	evhttp_add_header(h, "User-Agent", "vigil-checker");
	evhttp_add_header(h, "Connection", "close");
	/* An immediate failure calls on_http_done from in here. On -1 the
	 * request was not queued: it is still ours to free. */
	if (evhttp_make_request(c->evcon, req, EVHTTP_REQ_GET, c->http_uri) < 0) {
		evhttp_request_free(req);
		checker_record(c, false, "GET %s: cannot start the request: %s", c->cfg.url,
		       strerror(errno));
	}
}

/* ---- process ---- */

/* 1 alive, 0 gone or a zombie (a slow reaper may leave one for a while). */
static int pid_alive(pid_t pid)
{
	char path[64], *buf = NULL, *p;
	size_t len;
	int alive;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_file(path, 1024, &buf, &len) < 0)
		return 0;
	/* comm may hold ')' and spaces: the state follows the last ')'. */
	p = strrchr(buf, ')');
	alive = p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X' && p[2] != 'x';
	free(buf);
	return alive;
}

void probe_process_name(struct checker *c)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	unsigned seen = 0, found = 0;
	pid_t first = 0;

	if (!d) {
		checker_record(c, false, "cannot read /proc: %s", strerror(errno));
		return;
	}
	while ((de = readdir(d)) && seen < PROC_SCAN_MAX) {
		char path[64], comm[64], *end;
		long pid = strtol(de->d_name, &end, 10);
		ssize_t n;
		int fd;

		if (!isdigit((unsigned char)de->d_name[0]) || *end || pid <= 0 || pid > INT32_MAX)
			continue;
		seen++;
		snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* it just exited */
		n = read(fd, comm, sizeof(comm) - 1);
		close(fd);
		if (n <= 0)
			continue;
		comm[n] = '\0';
		comm[strcspn(comm, "\n")] = '\0';
		if (strcmp(comm, c->cfg.process) != 0)
			continue;
		if (pid_alive((pid_t)pid) && !found++)
			first = (pid_t)pid;
	}
	closedir(d);
	if (found)
		checker_record(c, true, "%u process%s named %s (pid %d%s)", found, found == 1 ? "" : "es",
		       c->cfg.process, (int)first, found > 1 ? ", ..." : "");
	else
		checker_record(c, false, "no process named %s is running", c->cfg.process);
}

void probe_pidfile(struct checker *c)
{
	const char *pf = c->cfg.pidfile;
	char *buf = NULL, *end;
	size_t len;
	long pid;
	int rc = read_file(pf, 64, &buf, &len);

	if (rc < 0) {
		checker_record(c, false, "pidfile %s: %s", pf, strerror(-rc));
		return;
	}
	errno = 0;
	pid = strtol(buf, &end, 10);
	while (end && isspace((unsigned char)*end))
		end++;
	if (errno || end == buf || *end || pid <= 0 || pid > INT32_MAX) {
		checker_record(c, false, "pidfile %s does not hold a pid", pf);
		free(buf);
		return;
	}
	free(buf);
	if (pid_alive((pid_t)pid))
		checker_record(c, true, "pid %ld from %s is running", pid, pf);
	else
		checker_record(c, false, "pid %ld from %s is not running", pid, pf);
}

/* ---- custom ---- */

static void on_script_done(const struct script_result *r, void *arg)
{
	struct checker *c = arg;

	c->script = NULL;
	if (r->ok)
		checker_record(c, true, "exit 0%s%s", r->tail[0] ? ": " : "", r->tail);
	else if (r->spawn_errno)
		checker_record(c, false, "cannot run /bin/sh: %s", strerror(r->spawn_errno));
	else if (r->timed_out)
		checker_record(c, false, "timed out after %u ms%s%s", c->cfg.timeout_ms,
		       r->tail[0] ? ": " : "", r->tail);
	else if (r->signal)
		checker_record(c, false, "killed by signal %d (%s)%s%s", r->signal, strsignal(r->signal),
		       r->tail[0] ? ": " : "", r->tail);
	else
		checker_record(c, false, "exit %d%s%s", r->exit_code, r->tail[0] ? ": " : "", r->tail);
}

void probe_custom(struct checker *c)
{
	char name[96], e_name[96];
	char *env[] = { e_name, NULL };

	snprintf(name, sizeof(name), "checker %s", c->cfg.name);
	snprintf(e_name, sizeof(e_name), "VIGIL_CHECKER=%s", c->cfg.name);
	/* Our deadline comes first and reports; the script's own is a
	 * backstop, should we be gone. */
	c->script = script_run(name, c->command, env, (uint64_t)c->cfg.timeout_ms + 1000,
	                       on_script_done, c);
	if (!c->script)
		checker_record(c, false, "cannot run the command (see the log)");
	else
		script_quiet(c->script);
}

/* ---- interface ---- */

void probe_interface(struct checker *c)
{
	const char *ifn = c->cfg.ifname;
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		checker_record(c, false, "socket: %s", strerror(errno));
		return;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifn);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
		int e = errno;

		close(fd);
		if (e == ENODEV)
			checker_record(c, false, "interface %s does not exist", ifn);
		else
			checker_record(c, false, "interface %s: %s", ifn, strerror(e));
		return;
	}
	close(fd);
	if (!(ifr.ifr_flags & IFF_UP))
		checker_record(c, false, "interface %s is down (administratively)", ifn);
	else if (!(ifr.ifr_flags & IFF_RUNNING))
		checker_record(c, false, "interface %s is up but has no link (no carrier)", ifn);
	else
		checker_record(c, true, "interface %s is up", ifn);
}

/* ---- ping ---- */

static uint16_t icmp_cksum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

/* The unprivileged ping socket where net.ipv4.ping_group_range allows it
 * (the kernel then owns the id and the checksum), else a raw socket
 * (CAP_NET_RAW). */
static int ping_socket(bool *raw)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);

	*raw = false;
	if (fd >= 0)
		return fd;
	fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
	if (fd >= 0) {
		/* Only echo replies wake us up. */
		uint32_t filter = ~(1U << ICMP_ECHOREPLY);

		*raw = true;
		if (setsockopt(fd, SOL_RAW, ICMP_FILTER, &filter, sizeof(filter)) < 0)
			log_debug("ping: ICMP_FILTER: %s", strerror(errno));
	}
	return fd;
}

/* true if buf is the reply to our echo. */
static bool ping_match(struct checker *c, const uint8_t *buf, size_t n,
                       const struct sockaddr_in *from)
{
	const struct sockaddr_in *to = (const struct sockaddr_in *)&c->addr;
	struct icmphdr ic;

	if (c->ping_raw) {
		size_t ihl;

		if (n < sizeof(struct iphdr))
			return false;
		ihl = (size_t)(buf[0] & 0x0f) * 4;
		if (ihl < sizeof(struct iphdr) || n < ihl)
			return false;
		buf += ihl;
		n -= ihl;
	}
	if (n < sizeof(ic) || from->sin_addr.s_addr != to->sin_addr.s_addr)
		return false;
	memcpy(&ic, buf, sizeof(ic));
	if (ic.type != ICMP_ECHOREPLY || ntohs(ic.un.echo.sequence) != c->ping_seq)
		return false;
	/* The kernel filters a ping socket's replies by its id. */
	return !c->ping_raw || ntohs(ic.un.echo.id) == c->ping_id;
}

static void on_ping_io(evutil_socket_t fd, short what, void *arg)
{
	struct checker *c = arg;

	for (int i = 0; i < 64; i++) {
		uint8_t buf[1024];
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				checker_record(c, false, "ping %s: %s", c->cfg.target, strerror(errno));
			return;
		}
		if (ping_match(c, buf, (size_t)n, &from)) {
			checker_record(c, true, "echo reply from %s in %llu ms", c->cfg.target,
			       (unsigned long long)(mono_ms() - c->check_start_ms));
			return;
		}
	}
}

void probe_ping(struct checker *c)
{
	uint8_t pkt[sizeof(struct icmphdr) + PING_PAYLOAD];
	struct icmphdr ic;

	c->fd = ping_socket(&c->ping_raw);
	if (c->fd < 0) {
		checker_record(c, false, "ping %s: no ICMP socket (%s): needs CAP_NET_RAW or "
		       "net.ipv4.ping_group_range", c->cfg.target, strerror(errno));
		return;
	}
	c->ping_seq++;
	memset(&ic, 0, sizeof(ic));
	ic.type = ICMP_ECHO;
	ic.un.echo.id = htons(c->ping_id);
	ic.un.echo.sequence = htons(c->ping_seq);
	memcpy(pkt, &ic, sizeof(ic));
	memset(pkt + sizeof(ic), 0xa5, PING_PAYLOAD);
	if (c->ping_raw) {
		uint16_t sum = icmp_cksum(pkt, sizeof(pkt));

		memcpy(pkt + offsetof(struct icmphdr, checksum), &sum, sizeof(sum));
	}
	c->io_ev = event_new(c->base, c->fd, EV_READ | EV_PERSIST, on_ping_io, c);
	if (!c->io_ev || event_add(c->io_ev, NULL) < 0) {
		checker_record(c, false, "out of memory");
		return;
	}
	if (sendto(c->fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&c->addr, c->addrlen) < 0)
		checker_record(c, false, "ping %s: %s", c->cfg.target, strerror(errno));
}

