/* What keeps a node from running the service where it should not, and
 * what heals it where it should: the checkers' actions (resource/policy.c
 * decides, this file carries out), the split-brain witness (a vigil-witness
 * lease, or a ping address), the failover limit and the alarms.
 *
 * Rules (docs/split-brain.md, docs/checkers.md):
 * - A node may take over from a lost peer only if failover is on, the
 *   failover limit is not reached and, with a witness, it holds the
 *   witness's grant and has not heard the peer for lease_ms (or the ping
 *   address answers). Otherwise it waits (HELD: WAIT, red) and says why.
 * - A node running the PRIM role whose peer is lost fences (releases the
 *   role) when the witness refuses it, or does not answer for lease_ms/3, or
 *   the ping address stops answering. The witness grants the peer only once
 *   this node's lease has run out, which leaves it at least
 *   lease_ms - timeout_ms - lease_ms/3 to stop its resources. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <event2/event.h>

#include "cluster/heartbeat.h"
#include "cluster/node_int.h"
#include "cluster/notify.h"
#include "cluster/witness_client.h"
#include "common/log.h"
#include "common/util.h"
#include "resource/checker.h"
#include "resource/policy.h"
#include "resource/resources.h"

#define ALARMS_MAX 16

static const char *name_of(const struct node *n)
{
	return n->cfg->nodes[n->self].name;
}

/* ---- alarms ---- */

void guard_alarm(struct node *n, const char *fmt, ...)
{
	char msg[512], when[32];
	va_list ap;
	enum sm_display d;
	enum sm_color c;
	struct notify_event ev = { .type = "alarm", .node = name_of(n), .reason = msg };

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_error("%s: ALARM: %s", name_of(n), msg);
	format_wall(wall_ms(), when, sizeof(when));
	while (json_array_size(n->alarms) >= ALARMS_MAX)
		json_array_remove(n->alarms, 0);
	json_array_append_new(n->alarms, json_pack("{s:s, s:s}", "time", when, "message", msg));
	sm_display(n->state, &d, &c);
	ev.from = ev.to = sm_display_str(d);
	ev.color = sm_color_str(c);
	notify_event(n->notify, &ev);
}

void node_alarm(struct node *n, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	guard_alarm(n, "%s", msg);
}

/* ---- the failover limit ---- */

/* Forgets failovers older than failover_period_ms. */
static unsigned own_failovers(struct node *n)
{
	uint64_t now = wall_ms();
	int k = 0;

	for (int i = 0; i < n->nfailovers; i++)
		if (n->failovers[i] + n->cfg->failover_period_ms > now)
			n->failovers[k++] = n->failovers[i];
	n->nfailovers = k;
	return (unsigned)k;
}

unsigned guard_failovers(struct node *n)
{
	return own_failovers(n) + n->peer_failovers;
}

void guard_record_failover(struct node *n)
{
	own_failovers(n);
	if (n->nfailovers == PERSIST_MAX_FAILOVERS) {
		memmove(n->failovers, n->failovers + 1, sizeof(n->failovers[0]) * (PERSIST_MAX_FAILOVERS - 1));
		n->nfailovers--;
	}
	n->failovers[n->nfailovers++] = wall_ms();
	log_info("%s: automatic failover counted: %u within %u ms (max_failovers %u)", name_of(n),
	         guard_failovers(n), n->cfg->failover_period_ms, n->cfg->max_failovers);
	node_save(n);
}

static bool limit_reached(struct node *n, char *why, size_t len)
{
	unsigned count = guard_failovers(n);

	if (count < n->cfg->max_failovers)
		return false;
	snprintf(why, len, "failover limit reached: %u automatic failover%s within %u ms (max_failovers %u)",
	         count, count == 1 ? "" : "s", n->cfg->failover_period_ms, n->cfg->max_failovers);
	return true;
}

/* ---- the witness ---- */

static uint64_t next_term(struct node *n)
{
	uint64_t top = n->term > n->pv.term ? n->term : n->pv.term;

	if (n->wc && wclient_witness_term(n->wc) > top)
		top = wclient_witness_term(n->wc);
	return top + 1;
}

/* The term to ask the witness with for a takeover. Once asked with one
 * above ours and the peer's, keep it while the witness knows none newer:
 * its newest may be the very one it granted us, and asking above that
 * again at every look (a granted node may wait, peer_surely_stopped) would
 * only make the term climb. */
static uint64_t take_term(struct node *n)
{
	uint64_t local = n->term > n->pv.term ? n->term : n->pv.term;

	if (n->wc_want == WC_TAKE && n->wc_term > local && wclient_witness_term(n->wc) <= n->wc_term)
		return n->wc_term;
	return next_term(n);
}

static bool ping_answers(struct node *n)
{
	return checker_state(n->ping) == CHK_OK;
}

/* The grant alone does not make a takeover safe: the witness protects only
 * a peer that holds its lease. A peer may run the PRIM role without one: it
 * took the role while the two heard each other (no grant is needed then)
 * and the witness was unreachable, had just restarted, or refuses its term.
 * Losing such a peer, we are granted at once, while it still runs the
 * service until it notices the loss itself, timeout_ms after it last heard
 * us, and fences (must_fence: no confirmed lease, at the latest lease_ms/3
 * after it took the role). So a takeover also waits until lease_ms after
 * the peer was last heard: that leaves it at least as long to stop as a
 * leased PRIM gets, usually lease_ms - timeout_ms. */
static bool peer_surely_stopped(struct node *n, char *why, size_t len)
{
	uint64_t quiet = mono_ms() - n->peer_seen_ms, lease = n->cfg->witness_lease_ms;

	if (quiet >= lease)
		return true;
	snprintf(why, len, "granted by the witness, but %s was heard %llu ms ago and may still run the "
	         "service without a lease: waiting %llu ms more", n->cfg->nodes[n->peer].name,
	         (unsigned long long)quiet, (unsigned long long)(lease - quiet));
	return false;
}

bool guard_may_take_over(struct node *n, char *why, size_t len)
{
	char lim[256];

	if (!n->failover) {
		snprintf(why, len, "failover is off (vigilctl failover on)");
		return false;
	}
	if (!node_rfs_may_serve(n, why, len))
		return false;
	if (limit_reached(n, lim, sizeof(lim))) {
		snprintf(why, len, "%s", lim);
		if (!n->limit_alarmed) {
			n->limit_alarmed = true;
			guard_alarm(n, "%s: not taking over from %s; start the service by hand if needed "
			            "(vigilctl forcestart)", lim, n->cfg->nodes[n->peer].name);
		}
		return false;
	}
	/* The same test as for keeping the role (must_fence): a node that just
	 * fenced must not take the role back on a lease it could not renew. */
	if (n->wc && !guard_holds_grant(n)) {
		snprintf(why, len, "no grant from the witness: %s", wclient_reason(n->wc));
		return false;
	}
	if (n->wc && !peer_surely_stopped(n, why, len))
		return false;
	if (n->ping && !ping_answers(n)) {
		char a[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &n->cfg->witness_ping, a, sizeof(a));
		snprintf(why, len, "the ping witness %s does not answer (%s)", a,
		         checker_reason(n->ping)[0] ? checker_reason(n->ping) : "no answer yet");
		return false;
	}
	return true;
}

/* A node running the PRIM role with its peer lost: whether it must let go. */
static bool must_fence(struct node *n, char *why, size_t len)
{
	uint64_t lease = n->cfg->witness_lease_ms;

	if (n->wc) {
		if (wclient_refused(n->wc)) {
			snprintf(why, len, "the witness refused: %s", wclient_reason(n->wc));
			return true;
		}
		if (!wclient_fresh(n->wc) && mono_ms() - n->wc_since >= lease / 3) {
			snprintf(why, len, "the witness does not confirm the lease: %s", wclient_reason(n->wc));
			return true;
		}
	}
	if (n->ping && checker_state(n->ping) == CHK_FAILED) {
		char a[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &n->cfg->witness_ping, a, sizeof(a));
		snprintf(why, len, "the ping witness %s does not answer (%s)", a, checker_reason(n->ping));
		return true;
	}
	return false;
}

static void update_want(struct node *n, bool reach)
{
	enum wc_want want = WC_NONE;
	uint64_t term = n->term;
	char why[256];

	if (!n->wc)
		return;
	if (sm_is_primary(n->state)) {
		want = WC_HOLD;
	} else if (n->state != S_STOP && n->state != S_STOPPING && (!reach || n->state == S_HELD) &&
	           n->failover && !limit_reached(n, why, sizeof(why))) {
		want = WC_TAKE;
		term = take_term(n);
	}
	if ((int)want != n->wc_want) {
		n->wc_since = mono_ms();
		n->wc_want = (int)want;
	}
	n->wc_term = term;
	wclient_want(n->wc, want, term);
}

void guard_want(struct node *n)
{
	if (n->hb)
		update_want(n, hb_peer_reachable(n->hb));
}

bool guard_witness_silent(const struct node *n)
{
	return n->wc && !wclient_granted(n->wc) && !wclient_refused(n->wc) &&
	       mono_ms() - n->wc_since >= n->cfg->witness_lease_ms;
}

bool guard_holds_grant(const struct node *n)
{
	return n->wc && wclient_granted(n->wc) && wclient_fresh(n->wc) && !wclient_refused(n->wc);
}

static void guard_run(struct node *n)
{
	bool reach;
	char why[512];

	if (!n->hb || n->shutting_down)
		return;
	reach = hb_peer_reachable(n->hb);
	update_want(n, reach);
	node_announce(n);
	if (!reach && (n->wc || n->ping) && sm_is_primary(n->state) && n->state != S_FENCING &&
	    must_fence(n, why, sizeof(why))) {
		log_warn("%s: peer lost and %s: releasing the PRIM role", name_of(n), why);
		node_process(n, E_FENCE, why, NULL, NULL);
		update_want(n, reach);
		return;
	}
	/* Both waiting and hearing each other: the grant (or the witness's
	 * silence) decides, in peer_event. */
	if (reach && n->state == S_HELD && n->wc) {
		node_refeed_peer(n);
		return;
	}
	if (!reach && n->state == S_HELD && guard_may_take_over(n, why, sizeof(why))) {
		node_process(n, E_FAILOVER_ON, n->wc ? "granted by the witness" : n->ping ? "the ping witness answers"
		                                                                          : "allowed again",
		             NULL, NULL);
		update_want(n, reach);
	}
}

static void on_guard_ev(evutil_socket_t fd, short what, void *arg)
{
	struct node *n = arg;
	struct timeval tv;

	guard_run(n);
	/* While the peer is lost, leases age without any event: look again. */
	if (n->hb && ((!hb_peer_reachable(n->hb) && (n->wc || n->ping)) || n->state == S_HELD)) {
		ms_to_timeval(n->cfg->hb_interval_ms < 50 ? n->cfg->hb_interval_ms : 50, &tv);
		evtimer_add(n->guard_ev, &tv);
	}
}

void guard_kick(struct node *n)
{
	if (n->guard_ev && !evtimer_pending(n->guard_ev, NULL))
		event_active(n->guard_ev, EV_TIMEOUT, 0);
}

static void on_witness_changed(void *arg)
{
	struct node *n = arg;

	if (n->guard_ev)
		event_active(n->guard_ev, EV_TIMEOUT, 0);
}

static void on_ping(struct checker *c, bool ok, const char *reason, void *arg)
{
	struct node *n = arg;

	if (ok != n->ping_ok) {
		n->ping_ok = ok;
		log_info("%s: ping witness: %s", name_of(n), reason);
	}
	guard_kick(n);
}

/* ---- the checkers' actions ---- */

static int op_restart(void *arg, const char *resource, const char *why)
{
	struct node *n = arg;

	if ((n->state != S_ALONE && n->state != S_PRIM && n->state != S_SECOND) || resmgr_busy(n->res))
		return -1;
	n->restart_gen = ++n->gen;
	if (resmgr_restart(n->res, resource, n->restart_gen) < 0) {
		n->restart_gen = 0;
		return -1;
	}
	snprintf(n->reason, sizeof(n->reason), "%s", why);
	return 0;
}

int guard_apply_done(struct node *n, uint64_t gen, bool ok, const char *reason)
{
	if (!n->restart_gen || gen != n->restart_gen)
		return 0;
	n->restart_gen = 0;
	node_save(n);
	policy_restart_done(n->policy, ok, reason);
	return 1;
}

static int op_failover(void *arg, const char *why)
{
	struct node *n = arg;
	char lim[256];

	if (limit_reached(n, lim, sizeof(lim))) {
		guard_alarm(n, "%s; not failing over: %s", lim, why);
		return -1;
	}
	if (n->start_after_stop || n->state == S_STOP || n->state == S_STOPPING)
		return -1;
	guard_record_failover(n);
	/* stopstart: the peer takes over, this node comes back as SECOND. */
	n->start_after_stop = true;
	node_process(n, E_FAILED, why, NULL, NULL);
	return 0;
}

static int op_stop(void *arg, const char *why)
{
	struct node *n = arg;

	n->admin_started = false;
	n->start_after_stop = false;
	node_process(n, E_FAILED, why, NULL, NULL);
	node_save(n);
	return 0;
}

static int op_wait(void *arg, const char *checker, const char *why)
{
	struct node *n = arg;

	if (n->state == S_STOP || n->state == S_STOPPING)
		return -1;
	n->start_after_stop = false;
	strlcpy_ok(n->waiting_checker, checker, sizeof(n->waiting_checker));
	node_process(n, E_FAILED, why, NULL, NULL);
	return 0;
}

static void op_resume(void *arg, const char *checker)
{
	struct node *n = arg;

	if (strcmp(n->waiting_checker, checker))
		return;
	n->waiting_checker[0] = '\0';
	if (n->state == S_STOP && n->admin_started && !n->shutting_down)
		node_process(n, E_START, "the checker passes again", NULL, NULL);
}

void guard_set_role(struct node *n)
{
	enum policy_role r = POLICY_NONE;

	if (!n->policy)
		return;
	/* A checker's restart keeps the role: its resources are back soon. */
	if (n->state == S_ALONE || n->state == S_PRIM)
		r = POLICY_PRIM;
	else if (n->state == S_SECOND)
		r = POLICY_SECOND;
	policy_set_role(n->policy, r);
}

void guard_command(struct node *n)
{
	json_array_clear(n->alarms);
	n->limit_alarmed = false;
	if (n->waiting_checker[0]) {
		n->waiting_checker[0] = '\0';
		policy_cancel_wait(n->policy);
	}
}

/* ---- setup and status ---- */

int guard_init(struct node *n)
{
	static const struct policy_ops ops = {
		.restart = op_restart, .failover = op_failover, .stop = op_stop, .wait = op_wait,
		.resume = op_resume,
	};
	struct policy_ops o = ops;

	n->alarms = json_array();
	n->guard_ev = evtimer_new(n->base, on_guard_ev, n);
	if (!n->alarms || !n->guard_ev)
		return -1;
	o.arg = n;
	n->policy = policy_new(n->base, n->cfg, &o, name_of(n));
	if (!n->policy)
		return -1;
	if (n->cfg->witness_enabled) {
		n->wc = wclient_new(n->base, n->cfg, n->self, n->incarnation, on_witness_changed, n);
		if (!n->wc)
			return -1;
	}
	if (n->cfg->witness_ping_enabled) {
		struct checker_cfg cc;

		checker_cfg_init(&cc);
		snprintf(cc.name, sizeof(cc.name), "witness-ping");
		cc.type = CHK_PING;
		inet_ntop(AF_INET, &n->cfg->witness_ping, cc.target, sizeof(cc.target));
		cc.interval_ms = n->cfg->hb_interval_ms;
		cc.timeout_ms = n->cfg->hb_timeout_ms / 2;
		n->ping = checker_new(n->base, &cc, on_ping, n);
		if (!n->ping)
			return -1;
		checker_start(n->ping);
	}
	return 0;
}

void guard_free(struct node *n)
{
	if (n->policy)
		policy_free(n->policy);
	if (n->wc)
		wclient_free(n->wc);
	if (n->ping)
		checker_free(n->ping);
	if (n->guard_ev)
		event_free(n->guard_ev);
	json_decref(n->alarms);
}

json_t *guard_status(struct node *n, json_t *o)
{
	char a[INET_ADDRSTRLEN + 8];

	json_object_set_new(o, "checkers", json_boolean(n->checkers_on));
	json_object_set_new(o, "errd", json_string(n->errd_suspended ? "suspended" : "active"));
	json_object_set_new(o, "alarms", json_deep_copy(n->alarms));
	json_object_set_new(o, "checkers_state", n->policy ? policy_status(n->policy) : json_array());
	json_object_set_new(o, "failovers", json_pack("{s:I, s:I, s:I}", "count", (json_int_t)guard_failovers(n),
	                                              "max", (json_int_t)n->cfg->max_failovers, "period_ms",
	                                              (json_int_t)n->cfg->failover_period_ms));
	if (n->waiting_checker[0])
		json_object_set_new(o, "waiting_for_checker", json_string(n->waiting_checker));
	if (n->wc) {
		inet_ntop(AF_INET, &n->cfg->witness_addr.sin_addr, a, sizeof(a));
		snprintf(a + strlen(a), sizeof(a) - strlen(a), ":%u", ntohs(n->cfg->witness_addr.sin_port));
		json_object_set_new(o, "witness", json_pack("{s:s, s:s, s:b, s:s}", "mode", "lease", "address", a,
		                                            "granted", wclient_granted(n->wc), "state",
		                                            wclient_reason(n->wc)));
	} else if (n->ping) {
		inet_ntop(AF_INET, &n->cfg->witness_ping, a, sizeof(a));
		json_object_set_new(o, "witness", json_pack("{s:s, s:s, s:b, s:s}", "mode", "ping", "address", a,
		                                            "granted", ping_answers(n), "state",
		                                            checker_state_str(checker_state(n->ping))));
	} else {
		json_object_set_new(o, "witness", json_null());
	}
	return o;
}
