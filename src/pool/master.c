#include "pool/master_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cluster/notify.h"
#include "cluster/peerlink_tls.h"
#include "common/log.h"
#include "common/util.h"
#include "pool/conn.h"
#include "pool/worker.h"

/* A hello must come this soon after the handshake. */
#define HELLO_MS 10000

int64_t master_now(void)
{
	return (int64_t)mono_ms();
}

static struct timeval tv_ms(int64_t ms)
{
	struct timeval tv;

	ms_to_timeval((uint64_t)ms, &tv);
	return tv;
}

/* An agent is lost when it says nothing for this long: three heartbeats,
 * but never more than detect_timeout (a failover must not wait for it). */
static uint32_t silence_ms(const struct pool_master *m)
{
	uint32_t s = 3 * m->cfg->pool_heartbeat_ms;

	return s < m->cfg->pool_detect_timeout_ms ? s : m->cfg->pool_detect_timeout_ms;
}

static const char *rec_name(const struct pool_master *m, int r)
{
	return r >= 0 && r < m->pool->n_rec ? m->pool->rec[r].name : "-";
}

static const char *spare_name(const struct pool_master *m, int s)
{
	return s >= 0 && s < m->pool->n_spare ? m->pool->spare[s].name : "-";
}

static void send_to(struct link *l, json_t *msg)
{
	if (l && l->conn && msg)
		pool_conn_send(l->conn, msg);
	else
		json_decref(msg);
}

static void link_free(struct link *l)
{
	struct pool_master *m = l->m;

	if (l->prev)
		l->prev->next = l->next;
	else
		m->links = l->next;
	if (l->next)
		l->next->prev = l->prev;
	if (l->kind == L_REC && m->rx[l->idx].link == l)
		m->rx[l->idx].link = NULL;
	if (l->kind == L_SPARE && m->sx[l->idx].link == l)
		m->sx[l->idx].link = NULL;
	if (l->silence)
		event_free(l->silence);
	free(l);
}

/* Ends a link from our side: the conn goes, the core hears LOST. */
static void link_drop(struct link *l, const char *why, bool flush)
{
	struct pool_master *m = l->m;
	struct pool_event ev = { 0 };
	int kind = l->kind, idx = l->idx;

	if (why)
		log_info("pool: %s %s (%s) dropped: %s", kind == L_REC ? "recorder" : kind == L_SPARE ? "spare" : "agent",
		         kind == L_REC ? rec_name(m, idx) : kind == L_SPARE ? spare_name(m, idx) : "?",
		         pool_conn_addr(l->conn), why);
	pool_conn_close(l->conn, flush);
	link_free(l);
	if (kind == L_REC) {
		ev.type = POOL_E_REC_LOST;
		ev.rec = idx;
		master_step(m, &ev, NULL);
	} else if (kind == L_SPARE) {
		ev.type = POOL_E_SPARE_LOST;
		ev.spare = idx;
		master_step(m, &ev, NULL);
	}
}

static void refuse(struct link *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void refuse(struct link *l, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warn("pool: refused %s (%s): %s", pool_conn_addr(l->conn), pool_conn_peer(l->conn), why);
	send_to(l, json_pack("{s:s, s:s}", "type", "error", "message", why));
	link_drop(l, NULL, true);
}

static void on_silence(evutil_socket_t fd, short what, void *arg)
{
	struct link *l = arg;
	char why[64];

	(void)fd, (void)what;
	snprintf(why, sizeof(why), "nothing heard for %u ms", l->kind == L_NEW ? HELLO_MS : silence_ms(l->m));
	link_drop(l, why, false);
}

static void heard(struct link *l)
{
	struct timeval tv = tv_ms(l->kind == L_NEW ? HELLO_MS : silence_ms(l->m));

	if (l->kind == L_REC)
		l->m->rx[l->idx].last_seen = master_now();
	else if (l->kind == L_SPARE)
		l->m->sx[l->idx].last_seen = master_now();
	event_add(l->silence, &tv);
}

/* ---- timers -------------------------------------------------------------- */

static void on_rec_timer(evutil_socket_t fd, short what, void *arg)
{
	struct rec_x *x = arg;
	struct pool_event ev = { .type = POOL_E_REC_TIMEOUT, .rec = (int)(x - x->m->rx), .spare = -1 };

	(void)fd, (void)what;
	master_step(x->m, &ev, NULL);
}

static void on_spare_timer(evutil_socket_t fd, short what, void *arg)
{
	struct spare_x *x = arg;
	struct pool_event ev = { .type = POOL_E_SPARE_TIMEOUT, .spare = (int)(x - x->m->sx), .rec = -1 };

	(void)fd, (void)what;
	master_step(x->m, &ev, NULL);
}

void master_arm(struct pool_master *m, bool spare, int idx, uint32_t ms, bool since_heard)
{
	struct event **t = spare ? &m->sx[idx].timer : &m->rx[idx].timer;
	int64_t seen = spare ? m->sx[idx].last_seen : m->rx[idx].last_seen, left = ms;
	struct timeval tv;

	if (!*t)
		*t = spare ? evtimer_new(m->base, on_spare_timer, &m->sx[idx])
		           : evtimer_new(m->base, on_rec_timer, &m->rx[idx]);
	if (!*t) {
		log_error("pool: out of memory for a timer");
		return;
	}
	/* detect_timeout counts from the last word heard, not from when the
	 * silence was noticed. */
	if (since_heard && seen > 0) {
		left = seen + ms - master_now();
		if (left < 0)
			left = 0;
	}
	tv = tv_ms(left);
	event_add(*t, &tv);
}

/* ---- actions ------------------------------------------------------------- */

static uint64_t send_cmd(struct pool_master *m, int s, enum pool_msg_type type, int r, const char *address)
{
	struct spare_x *x = &m->sx[s];
	char err[256];
	json_t *msg;

	if (!x->link)
		return 0;
	x->cmd_id = ++m->next_id;
	x->cmd = type;
	x->cmd_rec = r;
	msg = pool_msg_command(type, x->cmd_id, rec_name(m, r), address, err, sizeof(err));
	if (!msg)
		log_error("pool: cannot build %s for spare %s: %s", pool_msg_type_str(type), spare_name(m, s), err);
	send_to(x->link, msg);
	return x->cmd_id;
}

/* The recorder's cached settings, then the order to start. */
static void start_spare(struct pool_master *m, int s, int r)
{
	struct rec_x *rx = &m->rx[r];
	char err[256];

	if (!m->sx[s].link)
		return;
	for (size_t i = 0; i < rx->nfiles; i++) {
		json_t *msg = pool_msg_settings(rx->files[i].path, rx->files[i].data, rx->files[i].len, err,
		                                sizeof(err));

		if (!msg) {
			log_error("pool: cannot send %s's %s to %s: %s", rec_name(m, r), rx->files[i].path,
			          spare_name(m, s), err);
			continue;
		}
		json_object_set_new(msg, "recorder", json_string(rec_name(m, r)));
		send_to(m->sx[s].link, msg);
	}
	send_cmd(m, s, PM_START, r, "");
}

static void start_copy(struct pool_master *m, int s, int r)
{
	struct link *rl = m->rx[r].link;
	char addr[64], ip[INET_ADDRSTRLEN];
	const char *colon;

	if (!rl) {
		log_warn("pool: copy-back of %s from %s: recorder not connected", rec_name(m, r), spare_name(m, s));
		return;
	}
	colon = strrchr(pool_conn_addr(rl->conn), ':');
	snprintf(ip, sizeof(ip), "%.*s", colon ? (int)(colon - pool_conn_addr(rl->conn)) : 0,
	         pool_conn_addr(rl->conn));
	snprintf(addr, sizeof(addr), "%s:%u", ip, rl->copy_port);
	m->rx[r].copy_done = m->rx[r].copy_total = 0;
	m->rx[r].copy_files_done = m->rx[r].copy_files_total = 0;
	send_cmd(m, s, PM_COPY, r, addr);
}

static void send_role(struct pool_master *m, struct link *l, enum pool_agent_role role, const char *name,
                      const char *group)
{
	send_to(l, json_pack("{s:s, s:s, s:s, s:s}", "type", "role", "role", pool_agent_role_str(role), "name",
	                     name, "group", group));
}

static void do_log(struct pool_master *m, const struct pool_action *a, const char *reason)
{
	struct reg_log_entry e = { 0 };

	snprintf(e.recorder, sizeof(e.recorder), "%s", rec_name(m, a->rec));
	if (a->spare >= 0)
		snprintf(e.spare, sizeof(e.spare), "%s", spare_name(m, a->spare));
	snprintf(e.event, sizeof(e.event), "%s", pool_log_what_str(a->what));
	snprintf(e.trigger, sizeof(e.trigger), "%s", pool_trigger_str(a->trigger));
	snprintf(e.result, sizeof(e.result), "%s", pool_log_result_str(a->result));
	/* The step's whole reason may be longer: the log keeps its start. */
	snprintf(e.detail, sizeof(e.detail), "%.*s", (int)sizeof(e.detail) - 1, reason);
	e.time_ms = (int64_t)wall_ms();
	master_log_keep(m, &e);
	master_reg_log(m, &e);
}

static void act(struct pool_master *m, const struct pool_action *a, const char *reason)
{
	switch (a->type) {
	case POOL_A_ARM_RECORDER:
		master_arm(m, false, a->rec, m->cfg->pool_detect_timeout_ms, true);
		break;
	case POOL_A_ARM_SPARE:
		master_arm(m, true, a->spare, m->cfg->pool_detect_timeout_ms, true);
		break;
	case POOL_A_START_SPARE:
		start_spare(m, a->spare, a->rec);
		break;
	case POOL_A_STOP_SPARE:
		send_cmd(m, a->spare, PM_STOP, a->rec, "");
		break;
	case POOL_A_MARK_BROKEN:
		/* A recorder still connected must not record beside its spare. */
		if (m->rx[a->rec].link) {
			char err[128];

			send_to(m->rx[a->rec].link, pool_msg_command(PM_STOP, ++m->next_id, rec_name(m, a->rec), "",
			                                             err, sizeof(err)));
		}
		break;
	case POOL_A_RESUME: {
		char err[128];

		if (m->rx[a->rec].link)
			send_to(m->rx[a->rec].link, pool_msg_command(PM_RESUME, ++m->next_id, "", "", err, sizeof(err)));
		break;
	}
	case POOL_A_START_COPY:
		start_copy(m, a->spare, a->rec);
		break;
	case POOL_A_STOP_COPY:
		/* The spare's copy stops with the recorder's connection or at its
		 * next file; its result then is stale and ignored. */
		if (m->sx[a->spare].cmd == PM_COPY)
			m->sx[a->spare].cmd_id = 0;
		break;
	case POOL_A_SWAP: {
		/* The slots' names were exchanged: the machines swap slots too. */
		struct link *rl = m->rx[a->rec].link, *sl = m->sx[a->spare].link;
		struct pool_recorder *pr = &m->pool->rec[a->rec];
		struct pool_spare *ps = &m->pool->spare[a->spare];

		m->rx[a->rec].link = sl;
		m->sx[a->spare].link = rl;
		if (sl) {
			sl->kind = L_REC;
			sl->idx = a->rec;
			sl->health_seen = false;
		}
		if (rl) {
			rl->kind = L_SPARE;
			rl->idx = a->spare;
		}
		send_role(m, sl, PA_RECORDER, pr->name, pr->group);
		send_role(m, rl, PA_SPARE, ps->name, ps->group);
		master_reg_swap(m, a->rec, a->spare);
		break;
	}
	case POOL_A_LOG:
		do_log(m, a, reason);
		break;
	case POOL_A_NOTIFY: {
		struct notify_event ev = { .type = "pool", .node = rec_name(m, a->rec),
		                           .from = pool_rec_state_str(a->from), .to = pool_rec_state_str(a->to),
		                           .reason = reason };

		if (m->notify)
			notify_event(m->notify, &ev);
		else
			log_info("EVENT {\"type\":\"pool\",\"node\":\"%s\",\"from\":\"%s\",\"to\":\"%s\"}",
			         ev.node, ev.from, ev.to);
		break;
	}
	default:
		log_error("pool: unknown action %d", a->type);
	}
}

void master_step(struct pool_master *m, const struct pool_event *ev, struct pool_result *out)
{
	struct pool_result local, *res = out ? out : &local;

	pool_step(m->pool, ev, res);
	if (res->status == POOL_ERROR)
		log_error("pool: %s: %s", pool_event_str(ev->type), res->reason);
	else if (res->changed && res->reason[0])
		log_info("pool: %s", res->reason);
	else if (res->reason[0])
		log_debug("pool: %s: %s", pool_event_str(ev->type), res->reason);
	for (int i = 0; i < res->n_actions; i++)
		act(m, &res->actions[i], res->reason);
	if (res->changed)
		master_reg_persist(m);
}

/* ---- messages ------------------------------------------------------------ */

static void on_hello_recorder(struct link *l, const struct pool_msg *msg)
{
	struct pool_master *m = l->m;
	const char *why = NULL;
	int r = pool_find_recorder(m->pool, msg->u.hello.name);
	json_t *port = json_object_get(msg->root, "copy_port");
	struct pool_recorder *pr;

	if (r < 0 && pool_find_spare(m->pool, msg->u.hello.name) >= 0) {
		refuse(l, "%s is a spare in this pool, not a recorder", msg->u.hello.name);
		return;
	}
	if (r < 0) {
		r = pool_add_recorder(m->pool, msg->u.hello.name, msg->u.hello.group, msg->u.hello.secondary_group,
		                      msg->u.hello.failover, &why);
		if (r < 0) {
			refuse(l, "recorder %s: %s", msg->u.hello.name, why);
			return;
		}
		log_info("pool: recorder %s joins (group %s%s%s)", msg->u.hello.name, msg->u.hello.group,
		         *msg->u.hello.secondary_group ? ", secondary " : "", msg->u.hello.secondary_group);
	} else {
		pr = &m->pool->rec[r];
		if ((strcmp(pr->group, msg->u.hello.group) || strcmp(pr->secondary, msg->u.hello.secondary_group)) &&
		    !pool_set_recorder_groups(m->pool, r, msg->u.hello.group, msg->u.hello.secondary_group, &why))
			log_warn("pool: recorder %s keeps its groups for now: %s", pr->name, why);
	}
	if (m->rx[r].link)
		link_drop(m->rx[r].link, "a new connection replaces it", false);
	l->kind = L_REC;
	l->idx = r;
	l->copy_port = json_is_integer(port) && json_integer_value(port) > 0 && json_integer_value(port) < 65536
	                       ? (uint16_t)json_integer_value(port) : 4811;
	m->rx[r].link = l;
	heard(l);
	if (m->pool->rec[r].failover != msg->u.hello.failover) {
		struct pool_event ev = { .type = msg->u.hello.failover ? POOL_E_ENABLE : POOL_E_DISABLE, .rec = r,
		                         .spare = -1, .role = POOL_ROLE_ADMIN };

		master_step(m, &ev, NULL);
	}
	master_reg_put_recorder(m, r);
	send_to(l, json_pack("{s:s, s:I, s:I}", "type", "welcome", "heartbeat_ms",
	                     (json_int_t)m->cfg->pool_heartbeat_ms, "detect_timeout_ms",
	                     (json_int_t)m->cfg->pool_detect_timeout_ms));
	/* UP, DISK or WATCHDOG waits for its first health report. */
}

static void on_hello_spare(struct link *l, const struct pool_msg *msg)
{
	struct pool_master *m = l->m;
	const char *why = NULL;
	int s = pool_find_spare(m->pool, msg->u.hello.name);
	struct pool_event ev = { .type = POOL_E_SPARE_UP, .rec = POOL_RUNS_NOTHING };

	if (s < 0 && pool_find_recorder(m->pool, msg->u.hello.name) >= 0) {
		refuse(l, "%s is a recorder in this pool, not a spare", msg->u.hello.name);
		return;
	}
	if (s < 0) {
		s = pool_add_spare(m->pool, msg->u.hello.name, msg->u.hello.group, &why);
		if (s < 0) {
			refuse(l, "spare %s: %s", msg->u.hello.name, why);
			return;
		}
		log_info("pool: spare %s joins (group %s)", msg->u.hello.name, msg->u.hello.group);
	} else if (strcmp(m->pool->spare[s].group, msg->u.hello.group) &&
	           !pool_set_spare_group(m->pool, s, msg->u.hello.group, &why)) {
		log_warn("pool: spare %s keeps its group for now: %s", msg->u.hello.name, why);
	}
	if (m->sx[s].link)
		link_drop(m->sx[s].link, "a new connection replaces it", false);
	l->kind = L_SPARE;
	l->idx = s;
	m->sx[s].link = l;
	m->sx[s].cmd_id = 0;
	heard(l);
	master_reg_put_spare(m, s);
	send_to(l, json_pack("{s:s, s:I, s:I}", "type", "welcome", "heartbeat_ms",
	                     (json_int_t)m->cfg->pool_heartbeat_ms, "detect_timeout_ms",
	                     (json_int_t)m->cfg->pool_detect_timeout_ms));
	if (*msg->u.hello.serving) {
		ev.rec = pool_find_recorder(m->pool, msg->u.hello.serving);
		if (ev.rec < 0)
			ev.rec = POOL_RUNS_OTHER;
	}
	ev.spare = s;
	master_step(m, &ev, NULL);
}

static void on_health(struct link *l, const struct pool_msg *msg)
{
	struct pool_master *m = l->m;
	struct rec_x *x;
	enum pool_link now;
	struct pool_event ev = { .spare = -1 };

	if (l->kind != L_REC)
		return;
	x = &m->rx[l->idx];
	x->disks_failed = msg->u.health.disks_failed;
	x->watchdog_failed = msg->u.health.watchdog_failed;
	x->cameras = msg->u.health.cameras;
	x->storage_used = msg->u.health.storage_used;
	x->storage_total = msg->u.health.storage_total;
	now = x->disks_failed ? POOL_LINK_DISK : x->watchdog_failed ? POOL_LINK_WATCHDOG : POOL_LINK_UP;
	if (l->health_seen && now == l->fed)
		return;
	l->health_seen = true;
	l->fed = now;
	ev.rec = l->idx;
	ev.type = now == POOL_LINK_DISK ? POOL_E_REC_DISK : now == POOL_LINK_WATCHDOG ? POOL_E_REC_WATCHDOG
	                                                                               : POOL_E_REC_UP;
	master_step(m, &ev, NULL);
}

static void on_result(struct link *l, const struct pool_msg *msg)
{
	struct pool_master *m = l->m;
	struct spare_x *x;
	struct pool_event ev = { .rec = -1 };

	if (l->kind == L_REC) {
		if (!msg->u.result.ok)
			log_warn("pool: recorder %s: command %llu failed: %s", rec_name(m, l->idx),
			         (unsigned long long)msg->id, msg->u.result.error);
		return;
	}
	if (l->kind != L_SPARE)
		return;
	x = &m->sx[l->idx];
	if (!msg->id || msg->id != x->cmd_id) {
		log_debug("pool: spare %s: stale result %llu", spare_name(m, l->idx), (unsigned long long)msg->id);
		return;
	}
	x->cmd_id = 0;
	ev.spare = l->idx;
	if (!msg->u.result.ok)
		log_warn("pool: spare %s: %s for %s failed: %s", spare_name(m, l->idx), pool_msg_type_str(x->cmd),
		         rec_name(m, x->cmd_rec), msg->u.result.error);
	switch (x->cmd) {
	case PM_START:
		ev.type = msg->u.result.ok ? POOL_E_SPARE_STARTED : POOL_E_SPARE_START_FAILED;
		break;
	case PM_STOP:
		/* A stop that failed still ends the spare's part: its start
		 * script owns what is left, and the recorder must resume. */
		ev.type = POOL_E_SPARE_STOPPED;
		break;
	case PM_COPY:
		ev.type = msg->u.result.ok ? POOL_E_COPY_DONE : POOL_E_COPY_FAILED;
		break;
	default:
		return;
	}
	master_step(m, &ev, NULL);
}

static void on_msg(struct pool_conn *c, const struct pool_msg *msg, void *arg)
{
	struct link *l = arg;
	char err[256];

	(void)c;
	if (l->kind == L_NEW) {
		if (msg->type != PM_HELLO) {
			refuse(l, "the first message must be hello, not %s", pool_msg_type_str(msg->type));
			return;
		}
		/* Only a member's key, and only the key of a name, may speak
		 * for it: a node's certificate is a master's. */
		if (!pool_conn_peer_member(l->conn)) {
			refuse(l, "the certificate for '%s' is not a pool member's (make one with "
			       "vigilctl pki member %s)", pool_conn_peer(l->conn), msg->u.hello.name);
			return;
		}
		if (strcmp(pool_conn_peer(l->conn), msg->u.hello.name)) {
			refuse(l, "hello names '%s' but the certificate is for '%s'", msg->u.hello.name,
			       pool_conn_peer(l->conn));
			return;
		}
		if (msg->u.hello.role == PA_RECORDER)
			on_hello_recorder(l, msg);
		else
			on_hello_spare(l, msg);
		return;
	}
	heard(l);
	switch (msg->type) {
	case PM_HEALTH:
		on_health(l, msg);
		break;
	case PM_SETTINGS:
		if (l->kind == L_REC && master_cache_put(l->m, l->idx, msg, err, sizeof(err)) < 0)
			log_warn("pool: recorder %s: settings upload refused: %s", rec_name(l->m, l->idx), err);
		break;
	case PM_SETTINGS_END:
		if (l->kind == L_REC)
			master_cache_keep_only(l->m, l->idx, msg);
		break;
	case PM_RESULT:
		on_result(l, msg);
		break;
	case PM_COPY_PROGRESS:
		if (l->kind == L_SPARE) {
			int r = pool_find_recorder(l->m->pool, msg->u.copy_progress.recorder);

			if (r >= 0) {
				l->m->rx[r].copy_done = msg->u.copy_progress.bytes_done;
				l->m->rx[r].copy_total = msg->u.copy_progress.bytes_total;
				l->m->rx[r].copy_files_done = msg->u.copy_progress.files_done;
				l->m->rx[r].copy_files_total = msg->u.copy_progress.files_total;
			}
		}
		break;
	case PM_HELLO:
		refuse(l, "a second hello");
		break;
	default:
		refuse(l, "%s is not a message an agent sends", pool_msg_type_str(msg->type));
	}
}

static void on_bad(struct pool_conn *c, const char *err, void *arg)
{
	(void)c;
	refuse(arg, "bad message: %s", err);
}

static void on_closed(struct pool_conn *c, const char *why, void *arg)
{
	struct link *l = arg;

	(void)c;
	link_drop(l, why, false);
}

/* No open callback: an agent's first message (hello) says who it is. */
static const struct pool_conn_cbs link_cbs = { NULL, on_msg, on_bad, on_closed };

static void on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct pool_master *m = arg;
	struct link *l = calloc(1, sizeof(*l));

	(void)lis, (void)sa, (void)salen;
	if (!l || !(l->silence = evtimer_new(m->base, on_silence, l))) {
		log_error("pool: out of memory for a connection");
		free(l);
		close(fd);
		return;
	}
	l->m = m;
	l->kind = L_NEW;
	l->idx = -1;
	l->conn = pool_conn_accept(m->base, m->tls, fd, &link_cbs, l);
	if (!l->conn) {
		event_free(l->silence);
		free(l);
		return;
	}
	l->next = m->links;
	if (m->links)
		m->links->prev = l;
	m->links = l;
	heard(l);
}

/* ---- life ---------------------------------------------------------------- */

/* The listening socket, bound even before the address is up (the VIP
 * arrives with the PRIM role, maybe a moment after this). */
static int listen_socket(const struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 || listen(fd, 512) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

void master_loaded(struct pool_master *m)
{
	char ip[INET_ADDRSTRLEN];
	int fd;

	inet_ntop(AF_INET, &m->cfg->pool_listen.sin_addr, ip, sizeof(ip));
	fd = listen_socket(&m->cfg->pool_listen);
	if (fd < 0) {
		log_error("pool: cannot listen on %s:%u: %s", ip, ntohs(m->cfg->pool_listen.sin_port), strerror(errno));
		return;
	}
	m->listener = evconnlistener_new(m->base, on_accept, m, LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (!m->listener) {
		close(fd);
		log_error("pool: cannot listen on %s:%u", ip, ntohs(m->cfg->pool_listen.sin_port));
		return;
	}
	log_info("pool: master listening on %s:%u (%d recorders, %d spares known)", ip,
	         ntohs(m->cfg->pool_listen.sin_port), m->pool->n_rec, m->pool->n_spare);
}

static void reset(struct pool_master *m)
{
	while (m->links) {
		pool_conn_free(m->links->conn);
		m->links->kind = L_NEW;         /* no LOST: the whole pool goes */
		link_free(m->links);
	}
	if (m->listener)
		evconnlistener_free(m->listener);
	m->listener = NULL;
	for (int i = 0; i < POOL_MAX_RECORDERS; i++) {
		if (m->rx[i].timer)
			event_free(m->rx[i].timer);
		master_cache_free(&m->rx[i]);
		memset(&m->rx[i], 0, sizeof(m->rx[i]));
		m->rx[i].m = m;
	}
	for (int i = 0; i < POOL_MAX_SPARES; i++) {
		if (m->sx[i].timer)
			event_free(m->sx[i].timer);
		memset(&m->sx[i], 0, sizeof(m->sx[i]));
		m->sx[i].m = m;
	}
	pool_init(m->pool, m->cfg->pool_failback == POOL_CFG_FAILBACK_AUTO ? POOL_FAILBACK_AUTO : POOL_FAILBACK_MANUAL,
	          m->cfg->pool_after_failure == POOL_CFG_AFTER_SWAP ? POOL_AFTER_SWAP : POOL_AFTER_FAILBACK);
	m->saved_queue[0] = '\0';
	m->log_head = m->log_n = 0;
}

void pool_master_set_active(struct pool_master *m, bool active)
{
	if (active == m->active)
		return;
	m->active = active;
	if (active) {
		log_info("pool: master starting (registry in %s)", m->cfg->pool_registry_dir);
		master_reg_load(m);
		return;
	}
	log_info("pool: master stopping: this node no longer runs the service");
	m->generation++;
	reset(m);
	master_reg_stop(m);
}

void pool_master_set_notify(struct pool_master *m, struct notify *n)
{
	m->notify = n;
}

bool pool_master_active(const struct pool_master *m)
{
	return m->active;
}

struct pool_master *pool_master_new(struct event_base *base, const struct config *cfg, const char *self)
{
	struct pool_master *m = calloc(1, sizeof(*m));
	char err[512];

	if (!m || !(m->pool = calloc(1, sizeof(*m->pool)))) {
		log_error("pool: out of memory");
		free(m);
		return NULL;
	}
	m->base = base;
	m->cfg = cfg;
	snprintf(m->self, sizeof(m->self), "%s", self);
	m->tls = tls_mutual_ctx(cfg->path, self, NULL, "pool master", err, sizeof(err));
	if (!m->tls) {
		log_error("pool: the pool link needs the cluster's certificates: %s", err);
		goto fail;
	}
	m->worker = pool_worker_new(base, "registry", m);
	if (!m->worker)
		goto fail;
	reset(m);
	return m;
fail:
	if (m->tls)
		peerlink_tls_ctx_free(m->tls);
	free(m->pool);
	free(m);
	return NULL;
}

void pool_master_free(struct pool_master *m)
{
	if (!m)
		return;
	m->generation++;
	reset(m);
	master_reg_stop(m);
	pool_worker_free(m->worker);
	peerlink_tls_ctx_free(m->tls);
	free(m->pool);
	free(m);
}
