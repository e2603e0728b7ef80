/* Internals shared by the checker engine (checker.c: validation, results,
 * scheduling) and its probes (checker_probe.c: one way to check per type).
 * Not part of the API. */
#ifndef VIGIL_CHECKER_INT_H
#define VIGIL_CHECKER_INT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "resource/checker.h"

#define REASON_MAX 256
/* Bounds the /proc scan of a process check. */
#define PROC_SCAN_MAX 100000
#define PING_PAYLOAD 16
#define HTTP_HEADERS_MAX (16 * 1024)

struct evhttp_connection;
struct script;

struct checker {
	struct event_base *base;
	struct checker_cfg cfg;
	char *command;            /* our copy of cfg.command */
	checker_cb cb;
	void *arg;

	enum checker_state state;
	unsigned failures;
	char reason[REASON_MAX];  /* last failure */

	bool started;
	bool running;             /* a check is in flight */
	bool have_result;         /* recorded, delivery pending on done_ev */
	bool res_ok;
	char res_reason[REASON_MAX];
	uint64_t check_start_ms;
	bool in_cb, free_pending;

	struct event *tick_ev;
	struct event *deadline_ev;
	/* Results are delivered from here, never from inside an I/O
	 * callback: evhttp must not see its connection freed under it. */
	struct event *done_ev;

	/* Parsed once from cfg. */
	struct sockaddr_storage addr; /* tcp, ping */
	socklen_t addrlen;
	char http_host[INET_ADDRSTRLEN];
	uint16_t http_port;
	char *http_uri;           /* path and query */
	char *http_hosthdr;

	/* What a check in flight holds. */
	int fd;                   /* tcp, ping */
	struct event *io_ev;
	struct evhttp_connection *evcon;
	int http_err;             /* enum evhttp_request_error + 1, 0 = none */
	int http_errno;
	struct script *script;
	bool ping_raw;
	uint16_t ping_id, ping_seq;
};

static const char *const type_names[CHK_TYPE_COUNT] = {
	[CHK_TCP] = "tcp", [CHK_HTTP] = "http", [CHK_PROCESS] = "process",
	[CHK_CUSTOM] = "custom", [CHK_INTERFACE] = "interface", [CHK_PING] = "ping",
};

/* A check's result, delivered to the callback from the loop. */
void checker_record(struct checker *c, bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The probes: each starts (or does) one check and ends it with
 * checker_record(), or leaves it to the deadline. */
void probe_tcp(struct checker *c);
void probe_http(struct checker *c);
void probe_process_name(struct checker *c);
void probe_pidfile(struct checker *c);
void probe_custom(struct checker *c);
void probe_interface(struct checker *c);
void probe_ping(struct checker *c);

#endif
