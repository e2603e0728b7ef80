/* Health checkers: one periodic check of a service, non-blocking on the
 * event loop.
 *
 * Each check has a deadline (timeout_ms): a check still pending then is a
 * failure ("timed out after N ms") and its socket or child is cleaned up at
 * once. Checks never overlap: the next one starts interval_ms after the
 * start of the previous one, or right after it ended if that was later.
 * The engine keeps the state (UNKNOWN until the first result) and the
 * number of consecutive failures; what to do about them is the caller's.
 *
 * Addresses must be IP literals: resolving a name would block the loop. */
#ifndef VIGIL_CHECKER_H
#define VIGIL_CHECKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct checker;

enum checker_type { CHK_TCP, CHK_HTTP, CHK_PROCESS, CHK_CUSTOM, CHK_INTERFACE, CHK_PING };
#define CHK_TYPE_COUNT (CHK_PING + 1)
const char *checker_type_str(enum checker_type t);
/* "tcp", "http", ...: 0, or -1 if s names no type. */
int checker_type_parse(const char *s, enum checker_type *out);

enum checker_state { CHK_UNKNOWN, CHK_OK, CHK_FAILED, CHK_STOPPED };
const char *checker_state_str(enum checker_state s);

#define CHECKER_DEFAULT_INTERVAL_MS 5000
#define CHECKER_DEFAULT_TIMEOUT_MS 3000
#define CHECKER_DEFAULT_HTTP_STATUS 200
/* The kernel keeps this much of a process name (/proc/PID/comm). */
#define CHECKER_COMM_MAX 15

struct checker_cfg {
	char name[64];
	enum checker_type type;
	char target[256];    /* tcp: HOST:PORT (IPv4 or [IPv6]); ping: IPv4 address */
	char url[512];       /* http: http://IPv4[:PORT]/path */
	int expect_status;   /* http: expected status; 0 = 200 */
	char process[256];   /* process: a process name (/proc/PID/comm) ... */
	char pidfile[4096];  /* ... or a pid file; exactly one of the two */
	const char *command; /* custom: shell command (copied), exit 0 = ok; env VIGIL_CHECKER=name */
	char ifname[16];     /* interface: must be up with a carrier */
	uint32_t interval_ms, timeout_ms;
};

/* Zeroes cfg and sets the defaults above. */
void checker_cfg_init(struct checker_cfg *cfg);

/* 0, or -1 with a message naming the checker and what is wrong in err,
 * e.g. "tcp checker web: target 'x' is not HOST:PORT". */
int checker_validate(const struct checker_cfg *cfg, char *err, size_t errlen);

/* Called after every check, from the loop (never inside checker_start).
 * reason says what was seen, for a success too. The callback may call
 * checker_stop or checker_free on c. */
typedef void (*checker_cb)(struct checker *c, bool ok, const char *reason, void *arg);

/* Validates cfg (logs and returns NULL if invalid). A custom checker needs
 * script_init(base) (done here if no base has been given to it yet). */
struct checker *checker_new(struct event_base *base, const struct checker_cfg *cfg,
                            checker_cb cb, void *arg);
/* First check at once (from the loop), then every interval_ms. Resets the
 * state to UNKNOWN and the failure count. No-op if started. */
void checker_start(struct checker *c);
/* Cancels a check in flight (its callback is not called); state STOPPED. */
void checker_stop(struct checker *c);
void checker_free(struct checker *c);

const char *checker_name(const struct checker *c);
enum checker_type checker_get_type(const struct checker *c);
enum checker_state checker_state(const struct checker *c);
/* Consecutive failures, 0 after a success. */
unsigned checker_failures(const struct checker *c);
/* Reason of the last failure, "" if none yet. */
const char *checker_reason(const struct checker *c);

#endif
