#include "cluster/notify.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "resource/script.h"

#define FIELD_MAX (CFG_NAME_MAX - 1)
/* After a command could not even be started (fork or pipe failed), the
 * next try waits this long so that a lasting failure does not spin. */
#define RETRY_MS 1000

enum field { F_TYPE, F_NODE, F_FROM, F_TO, F_COLOR, F_REASON, F_CLUSTER, F_TIME, F_COUNT };

static const char *const field_key[F_COUNT] = {
	"type", "node", "from", "to", "color", "reason", "cluster", "time",
};
static const char *const field_env[F_COUNT] = {
	"VIGIL_EVENT", "VIGIL_NODE", "VIGIL_FROM", "VIGIL_TO", "VIGIL_COLOR",
	"VIGIL_REASON", "VIGIL_CLUSTER", "VIGIL_TIME",
};

/* One event, rendered once and shared by the queues of every command. */
struct item {
	int refs;
	uint64_t seq;
	char type[FIELD_MAX + 1];
	char *json;             /* with a final newline, for stdin */
	size_t json_len;
	char *env[F_COUNT + 2]; /* the fields, VIGIL_SEQ, NULL */
};

struct ncmd {
	struct notify *n;
	char label[CFG_NAME_MAX + 8];
	char *command;
	uint32_t timeout_ms;
	struct item *ring[NOTIFY_QUEUE_MAX];
	unsigned head, count;
	struct script *running;
	struct item *cur;
	struct notify_stats st;
};

struct notify {
	struct event_base *base;
	struct event *kick_ev;
	char cluster[CFG_NAME_MAX];
	uint64_t last_seq;
	unsigned queue_max;
	int ncmd;
	struct ncmd cmd[CFG_MAX_NOTIFY];
};

static void item_unref(struct item *it)
{
	if (!it || --it->refs > 0)
		return;
	free(it->json);
	for (int i = 0; it->env[i]; i++)
		free(it->env[i]);
	free(it);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0. */
static size_t utf8_seq(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	/* No overlong forms, no surrogates, nothing past U+10FFFF. */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/* Copies src into dst (max bytes, plus the NUL) as valid UTF-8 without
 * control characters: a receiver's shell, parser or terminal sees one clean
 * line, and jansson accepts it. Cuts only between characters. */
static void clean(char *dst, const char *src, size_t max)
{
	const unsigned char *s = (const unsigned char *)(src ? src : "");
	size_t n = 0;

	while (*s) {
		size_t len = *s < 0x80 ? 1 : utf8_seq(s);

		if (len == 0)
			len = 1;        /* one invalid byte becomes one '?' */
		if (n + len > max)
			break;
		if (len == 1 && (*s < 0x20 || *s >= 0x7f))
			dst[n] = '?';
		else
			memcpy(dst + n, s, len);
		n += len;
		s += len;
	}
	dst[n] = '\0';
}

/* Local time with its offset: readable, and unambiguous for a program. */
static void format_now(char *buf, size_t len)
{
	uint64_t ms = wall_ms();
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	char date[32], zone[8];

	localtime_r(&secs, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	strftime(zone, sizeof(zone), "%z", &tm);        /* +0100 */
	if (strlen(zone) == 5)
		snprintf(buf, len, "%s.%03u%.3s:%s", date, (unsigned)(ms % 1000), zone, zone + 3);
	else
		snprintf(buf, len, "%s.%03u", date, (unsigned)(ms % 1000));
}

static struct item *render(const char values[F_COUNT][NOTIFY_REASON_MAX + 1], uint64_t seq)
{
	struct item *it = calloc(1, sizeof(*it));
	json_t *o = json_object();
	char *text = NULL;
	int k = 0;

	if (!it || !o)
		goto fail;
	for (int f = 0; f < F_COUNT; f++)
		/* json_string_nocheck: clean() made the values valid UTF-8. */
		if (json_object_set_new(o, field_key[f], json_string_nocheck(values[f])) < 0)
			goto fail;
	if (json_object_set_new(o, "seq", json_integer((json_int_t)seq)) < 0)
		goto fail;
	text = json_dumps(o, JSON_COMPACT);
	if (!text)
		goto fail;
	it->json_len = strlen(text) + 1;
	it->json = malloc(it->json_len + 1);
	if (!it->json)
		goto fail;
	memcpy(it->json, text, it->json_len - 1);
	it->json[it->json_len - 1] = '\n';
	it->json[it->json_len] = '\0';
	for (int f = 0; f < F_COUNT; f++)
		if (asprintf(&it->env[k++], "%s=%s", field_env[f], values[f]) < 0)
			goto fail_env;
	if (asprintf(&it->env[k++], "VIGIL_SEQ=%" PRIu64, seq) < 0)
		goto fail_env;
	it->refs = 1;
	it->seq = seq;
	strlcpy_ok(it->type, values[F_TYPE], sizeof(it->type));
	free(text);
	json_decref(o);
	return it;

fail_env:
	it->env[k - 1] = NULL;  /* asprintf left it undefined */
fail:
	if (it) {
		it->refs = 1;
		item_unref(it);
	}
	free(text);
	json_decref(o);
	return NULL;
}

static void kick(struct notify *n, uint64_t ms)
{
	struct timeval tv;

	/* A pending retry yields to an immediate kick, not the reverse. */
	if (ms && evtimer_pending(n->kick_ev, NULL))
		return;
	ms_to_timeval(ms, &tv);
	evtimer_add(n->kick_ev, &tv);
}

/* "sh: 1: /x: not found" -> "/x: not found": the shell's prefix says
 * nothing to the reader. */
static const char *strip_shell_prefix(const char *tail)
{
	const char *s = tail;

	if (strncmp(s, "sh: ", 4) != 0)
		return tail;
	s += 4;
	if (!strncmp(s, "line ", 5))
		s += 5;
	if (*s < '0' || *s > '9')
		return tail;
	while (*s >= '0' && *s <= '9')
		s++;
	return strncmp(s, ": ", 2) ? tail : s + 2;
}

static void start_next(struct ncmd *c);

static void on_done(const struct script_result *r, void *arg)
{
	struct ncmd *c = arg;
	struct item *it = c->cur;

	c->running = NULL;
	c->cur = NULL;
	if (r->ok) {
		c->st.delivered++;
		log_debug("%s: event %s seq %" PRIu64 " delivered in %" PRIu64 " ms", c->label,
		          it->type, it->seq, r->elapsed_ms);
	} else {
		c->st.failed++;
		if (r->spawn_errno)
			log_warn("%s: could not run /bin/sh: %s, for event %s seq %" PRIu64, c->label,
			         strerror(r->spawn_errno), it->type, it->seq);
		else if (r->timed_out)
			log_warn("%s: killed after its timeout of %u ms, for event %s seq %" PRIu64
			         "; going on with the next event", c->label, c->timeout_ms, it->type,
			         it->seq);
		else if (r->signal)
			log_warn("%s: killed by signal %d (%s), for event %s seq %" PRIu64, c->label,
			         r->signal, strsignal(r->signal), it->type, it->seq);
		else
			log_warn("%s: %s (exit %d), for event %s seq %" PRIu64, c->label,
			         r->tail[0] ? strip_shell_prefix(r->tail) : "failed", r->exit_code,
			         it->type, it->seq);
	}
	item_unref(it);
	start_next(c);
}

static void start_next(struct ncmd *c)
{
	struct notify *n = c->n;
	struct item *it;

	if (c->running || !c->count)
		return;
	it = c->ring[c->head];
	c->ring[c->head] = NULL;
	c->head = (c->head + 1) % NOTIFY_QUEUE_MAX;
	c->count--;
	c->running = script_run_input(c->label, c->command, it->env, it->json, it->json_len,
	                              c->timeout_ms, on_done, c);
	if (!c->running) {
		/* script.c said why. The event is lost for this command: keeping
		 * it would stall every later one for as long as the failure lasts. */
		c->st.failed++;
		log_warn("%s: event %s seq %" PRIu64 " not delivered: the command could not be "
		         "started; trying the next in %d ms", c->label, it->type, it->seq, RETRY_MS);
		item_unref(it);
		if (c->count)
			kick(n, RETRY_MS);
		return;
	}
	script_quiet(c->running);
	c->cur = it;
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct notify *n = arg;

	for (int i = 0; i < n->ncmd; i++)
		start_next(&n->cmd[i]);
}

static void enqueue(struct ncmd *c, struct item *it)
{
	struct notify *n = c->n;

	while (c->count >= n->queue_max) {
		struct item *old = c->ring[c->head];

		c->ring[c->head] = NULL;
		c->head = (c->head + 1) % NOTIFY_QUEUE_MAX;
		c->count--;
		c->st.dropped++;
		log_warn("%s: %u events waiting, dropped the oldest (%s seq %" PRIu64 "); "
		         "%" PRIu64 " dropped so far", c->label, n->queue_max, old->type, old->seq,
		         c->st.dropped);
		item_unref(old);
	}
	c->ring[(c->head + c->count) % NOTIFY_QUEUE_MAX] = it;
	c->count++;
	it->refs++;
}

/* "notify NAME", or for [notify] the base name of the command's first word:
 * `command = /etc/vigil/scripts/on-event` logs as "notify on-event". */
static void make_label(char *buf, size_t len, const struct cfg_notify *cn)
{
	const char *s = cn->command, *end, *base;

	if (cn->name[0]) {
		snprintf(buf, len, "notify %s", cn->name);
		return;
	}
	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strcspn(s, " \t");
	base = s;
	for (const char *p = s; p < end; p++)
		if (*p == '/' && p + 1 < end)
			base = p + 1;
	if (end == base)
		snprintf(buf, len, "notify");
	else
		snprintf(buf, len, "notify %.*s", (int)((end - base) < FIELD_MAX ? end - base : FIELD_MAX),
		         base);
}

struct notify *notify_new(const struct config *cfg)
{
	struct notify *n = calloc(1, sizeof(*n));
	int want = cfg ? cfg->nnotify : 0;

	if (!n) {
		log_error("notify: out of memory");
		return NULL;
	}
	n->queue_max = NOTIFY_QUEUE_MAX;
	if (cfg)
		strlcpy_ok(n->cluster, cfg->cluster_name, sizeof(n->cluster));
	if (want == 0)
		return n;
	n->base = script_event_base();
	if (!n->base) {
		log_error("notify: needs script_init before notify_new");
		goto fail;
	}
	n->kick_ev = evtimer_new(n->base, on_kick, n);
	if (!n->kick_ev)
		goto oom;
	for (int i = 0; i < want && i < CFG_MAX_NOTIFY; i++) {
		const struct cfg_notify *cn = &cfg->notify[i];
		struct ncmd *c = &n->cmd[i];

		c->n = n;
		c->timeout_ms = cn->timeout_ms;
		if (!cn->command) {
			log_error("notify: [notify%s%s] has no command", cn->name[0] ? " " : "", cn->name);
			goto fail;
		}
		if (!(c->command = strdup(cn->command)))
			goto oom;
		make_label(c->label, sizeof(c->label), cn);
		n->ncmd++;
	}
	return n;
oom:
	log_error("notify: out of memory");
fail:
	notify_free(n);
	return NULL;
}

void notify_free(struct notify *n)
{
	if (!n)
		return;
	for (int i = 0; i < n->ncmd; i++) {
		struct ncmd *c = &n->cmd[i];

		while (c->count) {
			item_unref(c->ring[c->head]);
			c->head = (c->head + 1) % NOTIFY_QUEUE_MAX;
			c->count--;
		}
		if (c->running) {
			log_info("%s: still running for event %s seq %" PRIu64 "; left to its timeout",
			         c->label, c->cur->type, c->cur->seq);
			script_detach(c->running);
			item_unref(c->cur);
		}
		free(c->command);
	}
	if (n->kick_ev)
		event_free(n->kick_ev);
	free(n);
}

void notify_event(struct notify *n, const struct notify_event *ev)
{
	char values[F_COUNT][NOTIFY_REASON_MAX + 1];
	const char *src[F_COUNT];
	char now[48];
	struct item *it;
	uint64_t seq;

	if (!n || !ev)
		return;
	if (!ev->type || !ev->type[0]) {
		log_error("notify: an event without a type (bug); not sent");
		return;
	}
	if (!ev->time)
		format_now(now, sizeof(now));
	src[F_TYPE] = ev->type;
	src[F_NODE] = ev->node;
	src[F_FROM] = ev->from;
	src[F_TO] = ev->to;
	src[F_COLOR] = ev->color;
	src[F_REASON] = ev->reason;
	src[F_CLUSTER] = ev->cluster ? ev->cluster : n->cluster;
	src[F_TIME] = ev->time ? ev->time : now;
	for (int f = 0; f < F_COUNT; f++)
		clean(values[f], src[f], f == F_REASON ? NOTIFY_REASON_MAX : FIELD_MAX);
	seq = ev->seq ? ev->seq : n->last_seq + 1;
	if (seq > n->last_seq)
		n->last_seq = seq;

	it = render((const char (*)[NOTIFY_REASON_MAX + 1])values, seq);
	if (!it) {
		/* Still one greppable line, if not the JSON. */
		log_error("EVENT type=%s node=%s from=%s to=%s seq=%" PRIu64 " (out of memory: "
		          "not sent to the notify commands)", values[F_TYPE], values[F_NODE],
		          values[F_FROM], values[F_TO], seq);
		return;
	}
	/* Without the newline that stdin gets. */
	log_info("EVENT %.*s", (int)(it->json_len - 1), it->json);
	for (int i = 0; i < n->ncmd; i++)
		enqueue(&n->cmd[i], it);
	item_unref(it);
	if (n->ncmd)
		kick(n, 0);
}

int notify_count(const struct notify *n)
{
	return n ? n->ncmd : 0;
}

const char *notify_label(const struct notify *n, int i)
{
	return n && i >= 0 && i < n->ncmd ? n->cmd[i].label : NULL;
}

int notify_get_stats(const struct notify *n, int i, struct notify_stats *st)
{
	if (!n || i < 0 || i >= n->ncmd)
		return -1;
	*st = n->cmd[i].st;
	st->queued = n->cmd[i].count;
	st->running = n->cmd[i].running != NULL;
	return 0;
}

unsigned notify_pending(const struct notify *n)
{
	unsigned total = 0;

	for (int i = 0; n && i < n->ncmd; i++)
		total += n->cmd[i].count + (n->cmd[i].running ? 1 : 0);
	return total;
}

void notify_set_queue_max(struct notify *n, unsigned max)
{
	if (!n)
		return;
	if (max < 1)
		max = 1;
	if (max > NOTIFY_QUEUE_MAX)
		max = NOTIFY_QUEUE_MAX;
	n->queue_max = max;
}
