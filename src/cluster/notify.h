/* Event notification: tells people and other programs (a VMS raising an
 * alarm) about state changes, failovers and other events.
 *
 * Each event becomes
 *   - one log line at info level, `EVENT {"type":...}` (compact JSON, one
 *     line), which reaches syslog and the journal when vigild runs in the
 *     background, and module.log;
 *   - one run of every [notify] command, with the event in the environment
 *     (VIGIL_EVENT, VIGIL_NODE, VIGIL_FROM, VIGIL_TO, VIGIL_COLOR,
 *     VIGIL_REASON, VIGIL_CLUSTER, VIGIL_TIME, VIGIL_SEQ) and the same JSON,
 *     plus a newline, on stdin.
 * JSON keys: type, node, from, to, color, reason, cluster, time (strings,
 * "" when not given) and seq (integer).
 *
 * Each command has its own queue: its events run one at a time, in order.
 * Commands run independently of each other. notify_event only queues and
 * returns at once; the commands start from the loop. A command that hangs is
 * killed at its timeout_ms and the queue moves on; a command that fails is
 * logged with its own words. When NOTIFY_QUEUE_MAX events wait for one
 * command, the oldest waiting one is dropped, counted and logged.
 *
 * Strings are cleaned before use: invalid UTF-8 and control characters
 * become '?', and long values are cut (reason at NOTIFY_REASON_MAX bytes,
 * the others at 63), so the log line always holds the whole JSON. */
#ifndef VIGIL_NOTIFY_H
#define VIGIL_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

struct config;
struct notify;

#define NOTIFY_QUEUE_MAX 256
#define NOTIFY_REASON_MAX 400

struct notify_event {
	const char *type;       /* "transition", "failover", "split_brain", "start_failed", ... */
	const char *node;       /* the node the event is about */
	const char *from;       /* display states, e.g. "SECOND" */
	const char *to;         /* e.g. "ALONE" */
	const char *color;
	const char *reason;
	const char *cluster;    /* NULL: cfg's cluster name */
	const char *time;       /* NULL: now, as "2026-11-23T20:41:07.123+01:00" */
	uint64_t seq;           /* 0: the notifier's own counter, one more than the last seq */
};

struct notify_stats {
	uint64_t delivered;     /* runs that exited 0 */
	uint64_t failed;        /* runs that failed, timed out, or could not start */
	uint64_t dropped;       /* events dropped from a full queue */
	unsigned queued;        /* events waiting, not counting the one running */
	bool running;
};

/* One notifier per [notify] section of cfg (copied: cfg may go away). With
 * cfg NULL or without [notify] it only logs the EVENT lines. With commands
 * it needs script_init first. Returns NULL (and logs why) on failure. */
struct notify *notify_new(const struct config *cfg);
/* Drops what waits. A command still running is not killed: it goes on under
 * its timeout (script_shutdown ends it), but its end is no longer reported. */
void notify_free(struct notify *n);

/* Logs the event and queues it for every command; never blocks, never runs
 * a command from inside. ev->type is required. n NULL: nothing. */
void notify_event(struct notify *n, const struct notify_event *ev);

/* Number of commands; label of command i ("notify NAME", or "notify " and
 * the command's base name for the unnamed [notify]); its counters. */
int notify_count(const struct notify *n);
const char *notify_label(const struct notify *n, int i);
int notify_get_stats(const struct notify *n, int i, struct notify_stats *st);
/* Events queued or running over all commands (to drain before shutdown). */
unsigned notify_pending(const struct notify *n);

/* Lowers the per-command queue bound (1..NOTIFY_QUEUE_MAX), for tests. */
void notify_set_queue_max(struct notify *n, unsigned max);

#endif
