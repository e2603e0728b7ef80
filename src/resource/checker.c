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

const char *checker_type_str(enum checker_type t)
{
	return (unsigned)t < CHK_TYPE_COUNT ? type_names[t] : "?";
}

int checker_type_parse(const char *s, enum checker_type *out)
{
	for (unsigned i = 0; s && i < CHK_TYPE_COUNT; i++) {
		if (strcmp(s, type_names[i]) == 0) {
			*out = (enum checker_type)i;
			return 0;
		}
	}
	return -1;
}

const char *checker_state_str(enum checker_state s)
{
	switch (s) {
	case CHK_UNKNOWN: return "unknown";
	case CHK_OK: return "ok";
	case CHK_FAILED: return "failed";
	case CHK_STOPPED: return "stopped";
	}
	return "?";
}

void checker_cfg_init(struct checker_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->expect_status = CHECKER_DEFAULT_HTTP_STATUS;
	cfg->interval_ms = CHECKER_DEFAULT_INTERVAL_MS;
	cfg->timeout_ms = CHECKER_DEFAULT_TIMEOUT_MS;
}

/* ---- parsing and validation ---- */

static bool has_nul(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

/* "A.B.C.D:PORT" or "[V6]:PORT". 0, or -1 with why in why. */
static int parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len,
                          char *why, size_t whylen)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *hs, *he;
	uint64_t port;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		hs = s + 1;
		he = strchr(hs, ']');
		if (!he || he[1] != ':') {
			snprintf(why, whylen, "is not HOST:PORT ([IPv6]:PORT for IPv6)");
			return -1;
		}
		colon = he + 1;
	} else {
		hs = s;
		colon = strrchr(s, ':');
		he = colon;
		if (!colon || colon == s) {
			snprintf(why, whylen, "is not HOST:PORT");
			return -1;
		}
	}
	if ((size_t)(he - hs) >= sizeof(host)) {
		snprintf(why, whylen, "has a host that is not an IP address");
		return -1;
	}
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	if (parse_u64(colon + 1, 1, 65535, &port) < 0) {
		snprintf(why, whylen, "has no valid port (1-65535) after the ':'");
		return -1;
	}
	if (s[0] == '[') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1) {
			snprintf(why, whylen, "has '%s' in brackets, which is not an IPv6 address", host);
			return -1;
		}
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a6);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &a4->sin_addr) != 1) {
			snprintf(why, whylen,
			         "has host '%s', which is not an IPv4 address (names would need a "
			         "blocking DNS lookup; IPv6 goes in brackets)", host);
			return -1;
		}
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*len = sizeof(*a4);
	}
	return 0;
}

struct http_target {
	char host[INET_ADDRSTRLEN];
	uint16_t port;
	char *uri;     /* malloc'd path and query */
	char *hosthdr; /* malloc'd Host header */
};

static void http_target_clear(struct http_target *t)
{
	free(t->uri);
	free(t->hosthdr);
	memset(t, 0, sizeof(*t));
}

static int parse_url(const char *url, struct http_target *t, char *why, size_t whylen)
{
	struct evhttp_uri *u;
	const char *scheme, *host, *path, *query;
	struct in_addr a;
	int port, rc = -1;

	memset(t, 0, sizeof(*t));
	if (strncmp(url, "http://", 7) != 0) {
		snprintf(why, whylen, "does not start with http://%s",
		         strncmp(url, "https://", 8) == 0 ? " (https is not supported)" : "");
		return -1;
	}
	u = evhttp_uri_parse_with_flags(url, 0);
	if (!u) {
		snprintf(why, whylen, "is not a valid URL");
		return -1;
	}
	scheme = evhttp_uri_get_scheme(u);
	host = evhttp_uri_get_host(u);
	port = evhttp_uri_get_port(u);
	path = evhttp_uri_get_path(u);
	query = evhttp_uri_get_query(u);
	if (!scheme || strcmp(scheme, "http") != 0) {
		snprintf(why, whylen, "does not start with http://");
	} else if (!host || !*host) {
		snprintf(why, whylen, "has no host");
	} else if (inet_pton(AF_INET, host, &a) != 1) {
		snprintf(why, whylen,
		         "has host '%s', which is not an IPv4 address (names would need a blocking "
		         "DNS lookup)", host);
	} else if (port == 0 || port > 65535) {
		snprintf(why, whylen, "has port %d, not 1-65535", port);
	} else {
		t->port = port < 0 ? 80 : (uint16_t)port;
		snprintf(t->host, sizeof(t->host), "%s", host);
		if (!path || !*path)
			path = "/";
		if (asprintf(&t->uri, "%s%s%s", path, query ? "?" : "", query ? query : "") < 0)
			t->uri = NULL;
		if (asprintf(&t->hosthdr, port < 0 ? "%s" : "%s:%d", host, port) < 0)
			t->hosthdr = NULL;
		if (t->uri && t->hosthdr)
			rc = 0;
		else
			snprintf(why, whylen, "could not be stored: out of memory");
	}
	evhttp_uri_free(u);
	if (rc < 0)
		http_target_clear(t);
	return rc;
}

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

static int validate_type(const struct checker_cfg *cfg, const char *ty, const char *nm,
                         char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	struct http_target ht;
	struct in_addr a;
	socklen_t len;
	char why[200];

	switch (cfg->type) {
	case CHK_TCP:
		if (!has_nul(cfg->target, sizeof(cfg->target)) || !cfg->target[0])
			FAIL("%s checker %s: no target (HOST:PORT)", ty, nm);
		if (parse_hostport(cfg->target, &ss, &len, why, sizeof(why)) < 0)
			FAIL("%s checker %s: target '%s' %s", ty, nm, cfg->target, why);
		return 0;
	case CHK_HTTP:
		if (!has_nul(cfg->url, sizeof(cfg->url)) || !cfg->url[0])
			FAIL("%s checker %s: no url (http://ADDRESS[:PORT]/path)", ty, nm);
		if (parse_url(cfg->url, &ht, why, sizeof(why)) < 0)
			FAIL("%s checker %s: url '%s' %s", ty, nm, cfg->url, why);
		http_target_clear(&ht);
		if (cfg->expect_status != 0 && (cfg->expect_status < 100 || cfg->expect_status > 599))
			FAIL("%s checker %s: expected status %d is not 100-599", ty, nm,
			     cfg->expect_status);
		return 0;
	case CHK_PROCESS:
		if (!has_nul(cfg->process, sizeof(cfg->process)) ||
		    !has_nul(cfg->pidfile, sizeof(cfg->pidfile)))
			FAIL("%s checker %s: process or pidfile too long", ty, nm);
		if (!cfg->process[0] == !cfg->pidfile[0])
			FAIL("%s checker %s: give exactly one of a process name and a pidfile", ty, nm);
		if (cfg->process[0] && strchr(cfg->process, '/'))
			FAIL("%s checker %s: process '%s' is a path; give the process name "
			     "(as in /proc/PID/comm)", ty, nm, cfg->process);
		if (strlen(cfg->process) > CHECKER_COMM_MAX)
			FAIL("%s checker %s: process name '%s' is longer than %d characters, the most "
			     "the kernel keeps (/proc/PID/comm): give its first %d", ty, nm,
			     cfg->process, CHECKER_COMM_MAX, CHECKER_COMM_MAX);
		return 0;
	case CHK_CUSTOM:
		if (!cfg->command || !cfg->command[strspn(cfg->command, " \t")])
			FAIL("%s checker %s: no command", ty, nm);
		return 0;
	case CHK_INTERFACE:
		if (!has_nul(cfg->ifname, sizeof(cfg->ifname)) || strlen(cfg->ifname) >= IFNAMSIZ)
			FAIL("%s checker %s: interface name longer than %d characters", ty, nm,
			     IFNAMSIZ - 1);
		if (!cfg->ifname[0])
			FAIL("%s checker %s: no interface", ty, nm);
		for (const char *p = cfg->ifname; *p; p++) {
			if (*p == '/' || *p == ':' || isspace((unsigned char)*p))
				FAIL("%s checker %s: '%s' is not an interface name", ty, nm, cfg->ifname);
		}
		return 0;
	case CHK_PING:
		if (!has_nul(cfg->target, sizeof(cfg->target)) || !cfg->target[0])
			FAIL("%s checker %s: no target (an IPv4 address)", ty, nm);
		if (inet_pton(AF_INET, cfg->target, &a) != 1)
			FAIL("%s checker %s: target '%s' is not an IPv4 address (names would need a "
			     "blocking DNS lookup)", ty, nm, cfg->target);
		return 0;
	}
	FAIL("checker %s: unknown type %d", nm, (int)cfg->type);
}

int checker_validate(const struct checker_cfg *cfg, char *err, size_t errlen)
{
	const char *ty = checker_type_str(cfg->type);

	if (!has_nul(cfg->name, sizeof(cfg->name)))
		FAIL("%s checker: name longer than %zu characters", ty, sizeof(cfg->name) - 1);
	if (!cfg->name[0])
		FAIL("%s checker: no name", ty);
	if (cfg->interval_ms == 0)
		FAIL("%s checker %s: interval must be > 0 ms", ty, cfg->name);
	if (cfg->timeout_ms == 0)
		FAIL("%s checker %s: timeout must be > 0 ms", ty, cfg->name);
	return validate_type(cfg, ty, cfg->name, err, errlen);
}

#undef FAIL

/* ---- results ---- */

/* First result of a check wins; it is delivered from done_ev. */
void checker_record(struct checker *c, bool ok, const char *fmt, ...)
{
	va_list ap;

	if (!c->running || c->have_result)
		return;
	c->have_result = true;
	c->res_ok = ok;
	va_start(ap, fmt);
	vsnprintf(c->res_reason, sizeof(c->res_reason), fmt, ap);
	va_end(ap);
	evtimer_del(c->deadline_ev);
	event_active(c->done_ev, EV_TIMEOUT, 1);
}

/* Releases what a check in flight holds. Not from inside an evhttp
 * callback. */
static void teardown(struct checker *c)
{
	if (c->io_ev) {
		event_free(c->io_ev);
		c->io_ev = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	if (c->evcon) {
		evhttp_connection_free(c->evcon);
		c->evcon = NULL;
	}
	if (c->script) {
		/* SIGTERM, then SIGKILL after the grace; script.c reaps it. */
		script_cancel(c->script);
		script_detach(c->script);
		c->script = NULL;
	}
	evtimer_del(c->deadline_ev);
	event_del(c->done_ev);
	c->running = false;
	c->have_result = false;
}

static void really_free(struct checker *c)
{
	teardown(c);
	event_free(c->tick_ev);
	event_free(c->deadline_ev);
	event_free(c->done_ev);
	free(c->command);
	free(c->http_uri);
	free(c->http_hosthdr);
	free(c);
}

static void apply_result(struct checker *c, bool ok, const char *reason)
{
	const char *nm = c->cfg.name, *ty = checker_type_str(c->cfg.type);
	enum checker_state old = c->state;

	if (ok) {
		if (old == CHK_FAILED)
			log_info("%s checker %s: ok again after %u failure%s: %s", ty, nm, c->failures,
			         c->failures == 1 ? "" : "s", reason);
		else if (old == CHK_UNKNOWN)
			log_info("%s checker %s: ok: %s", ty, nm, reason);
		else
			log_debug("%s checker %s: ok: %s", ty, nm, reason);
		c->failures = 0;
		c->state = CHK_OK;
		return;
	}
	c->failures++;
	snprintf(c->reason, sizeof(c->reason), "%s", reason);
	if (old != CHK_FAILED)
		log_warn("%s checker %s: failed: %s", ty, nm, reason);
	else
		log_debug("%s checker %s: failed (%u in a row): %s", ty, nm, c->failures, reason);
	c->state = CHK_FAILED;
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	struct checker *c = arg;
	char reason[REASON_MAX];
	bool ok = c->res_ok;
	uint64_t elapsed = mono_ms() - c->check_start_ms;

	if (!c->have_result)
		return;
	snprintf(reason, sizeof(reason), "%s", c->res_reason);
	teardown(c);
	apply_result(c, ok, reason);
	if (c->started) {
		struct timeval tv;

		ms_to_timeval(elapsed >= c->cfg.interval_ms ? 0 : c->cfg.interval_ms - elapsed, &tv);
		evtimer_add(c->tick_ev, &tv);
	}
	c->in_cb = true;
	if (c->cb)
		c->cb(c, ok, reason, c->arg);
	c->in_cb = false;
	if (c->free_pending)
		really_free(c);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct checker *c = arg;
	uint64_t el = mono_ms() - c->check_start_ms;

	/* libevent may time with a coarse clock and fire a few ms early. */
	if (el < c->cfg.timeout_ms) {
		struct timeval tv;

		ms_to_timeval(c->cfg.timeout_ms - el, &tv);
		evtimer_add(c->deadline_ev, &tv);
		return;
	}
	checker_record(c, false, "timed out after %u ms", c->cfg.timeout_ms);
}

/* ---- scheduling ---- */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct checker *c = arg;
	struct timeval tv;

	if (!c->started || c->running)
		return;
	c->running = true;
	c->have_result = false;
	c->check_start_ms = mono_ms();
	ms_to_timeval(c->cfg.timeout_ms, &tv);
	evtimer_add(c->deadline_ev, &tv);
	switch (c->cfg.type) {
	case CHK_TCP: probe_tcp(c); break;
	case CHK_HTTP: probe_http(c); break;
	case CHK_PROCESS:
		if (c->cfg.process[0])
			probe_process_name(c);
		else
			probe_pidfile(c);
		break;
	case CHK_CUSTOM: probe_custom(c); break;
	case CHK_INTERFACE: probe_interface(c); break;
	case CHK_PING: probe_ping(c); break;
	}
}

struct checker *checker_new(struct event_base *base, const struct checker_cfg *cfg,
                            checker_cb cb, void *arg)
{
	struct checker *c;
	char err[512];

	if (checker_validate(cfg, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return NULL;
	}
	if (cfg->type == CHK_CUSTOM) {
		struct event_base *sb = script_event_base();

		if (sb && sb != base) {
			log_error("custom checker %s: scripts run on another event loop", cfg->name);
			return NULL;
		}
		if (!sb && script_init(base) < 0)
			return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		goto oom;
	c->base = base;
	c->cfg = *cfg;
	c->cfg.command = NULL;
	c->cb = cb;
	c->arg = arg;
	c->fd = -1;
	c->state = CHK_STOPPED;
	if (c->cfg.expect_status == 0)
		c->cfg.expect_status = CHECKER_DEFAULT_HTTP_STATUS;
	if (cfg->type == CHK_CUSTOM && !(c->command = strdup(cfg->command)))
		goto oom;
	c->cfg.command = c->command;
	if (cfg->type == CHK_TCP) {
		char why[200];

		if (parse_hostport(cfg->target, &c->addr, &c->addrlen, why, sizeof(why)) < 0)
			goto oom; /* validated above */
	} else if (cfg->type == CHK_PING) {
		struct sockaddr_in *a4 = (struct sockaddr_in *)&c->addr;

		a4->sin_family = AF_INET;
		inet_pton(AF_INET, cfg->target, &a4->sin_addr);
		c->addrlen = sizeof(*a4);
		if (random_bytes(&c->ping_id, sizeof(c->ping_id)) < 0)
			c->ping_id = (uint16_t)getpid();
	} else if (cfg->type == CHK_HTTP) {
		struct http_target ht;
		char why[200];

		if (parse_url(cfg->url, &ht, why, sizeof(why)) < 0)
			goto oom;
		memcpy(c->http_host, ht.host, sizeof(c->http_host));
		c->http_port = ht.port;
		c->http_uri = ht.uri;
		c->http_hosthdr = ht.hosthdr;
	}
	c->tick_ev = evtimer_new(base, on_tick, c);
	c->deadline_ev = evtimer_new(base, on_deadline, c);
	c->done_ev = event_new(base, -1, 0, on_done, c);
	if (!c->tick_ev || !c->deadline_ev || !c->done_ev)
		goto oom;
	return c;

oom:
	log_error("%s checker %s: out of memory", checker_type_str(cfg->type), cfg->name);
	if (c) {
		if (c->tick_ev)
			event_free(c->tick_ev);
		if (c->deadline_ev)
			event_free(c->deadline_ev);
		if (c->done_ev)
			event_free(c->done_ev);
		free(c->command);
		free(c->http_uri);
		free(c->http_hosthdr);
		free(c);
	}
	return NULL;
}

void checker_start(struct checker *c)
{
	struct timeval now = { 0, 0 };

	if (!c || c->started)
		return;
	c->started = true;
	c->state = CHK_UNKNOWN;
	c->failures = 0;
	c->reason[0] = '\0';
	evtimer_add(c->tick_ev, &now);
}

void checker_stop(struct checker *c)
{
	if (!c)
		return;
	if (c->running)
		log_debug("%s checker %s: check in flight cancelled", checker_type_str(c->cfg.type),
		          c->cfg.name);
	c->started = false;
	evtimer_del(c->tick_ev);
	teardown(c);
	c->state = CHK_STOPPED;
}

void checker_free(struct checker *c)
{
	if (!c)
		return;
	checker_stop(c);
	if (c->in_cb) {
		c->free_pending = true;
		return;
	}
	really_free(c);
}

const char *checker_name(const struct checker *c)
{
	return c->cfg.name;
}

enum checker_type checker_get_type(const struct checker *c)
{
	return c->cfg.type;
}

enum checker_state checker_state(const struct checker *c)
{
	return c->state;
}

unsigned checker_failures(const struct checker *c)
{
	return c->failures;
}

const char *checker_reason(const struct checker *c)
{
	return c->reason;
}
