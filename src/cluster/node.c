#include "cluster/node.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/heartbeat.h"
#include "cluster/node_int.h"
#include "cluster/notify.h"
#include "cluster/witness_client.h"
#include "common/log.h"
#include "common/util.h"
#include "resource/policy.h"
#include "resource/resources.h"
#include "resource/script.h"
#include "resource/vip.h"

/* How long BLOCKED waits before probing the virtual IP again. */
#define RETRY_MS 3000
/* Peer events fed again after a transition, at most this many times in a
 * row: every feed that changes state moves towards a stable state, so a
 * longer chain means a bug in the table, not a reason to spin. */
#define SETTLE_MAX 16


void node_display_name(enum sm_state s, char *buf, size_t len)
{
	enum sm_display d;
	enum sm_color c;

	sm_display(s, &d, &c);
	if (c == C_MAGENTA || (c == C_RED && d != D_STOP))
		snprintf(buf, len, "%s/%s", sm_display_str(d), sm_color_str(c));
	else
		snprintf(buf, len, "%s", sm_display_str(d));
}

void node_save(struct node *n)
{
	struct persist_data d = { 0 };

	strlcpy_ok(d.state, sm_state_str(n->state), sizeof(d.state));
	d.admin_started = n->admin_started;
	d.boot = n->boot;
	d.failover_off = !n->failover;
	d.checkers_off = !n->checkers_on;
	d.errd_suspended = n->errd_suspended;
	d.nfailovers = n->nfailovers;
	memcpy(d.failovers, n->failovers, sizeof(d.failovers));
	d.term = n->term;
	d.incarnation = n->incarnation;
	d.peer_incarnation = n->peer_incarnation;
	persist_boot_id(d.boot_id);
	d.vip_held = resmgr_vip_held(n->res);
	for (int i = 0; i < resmgr_count(n->res); i++) {
		enum res_state s = resmgr_state(n->res, i);

		if (s == RES_STARTED || s == RES_STARTING || s == RES_STOPPING)
			strlcpy_ok(d.running[d.nrunning++], resmgr_name(n->res, i), CFG_NAME_MAX);
	}
	persist_save(n->state_path, &d);
}

void node_announce(struct node *n)
{
	unsigned own = (unsigned)n->nfailovers;

	if (!n->hb)
		return;
	/* The peer adds our count to its own for max_failovers, and learns
	 * whether we hold the witness's grant (see peer_event). */
	hb_set_local(n->hb, (uint8_t)n->state, n->term,
	             (own > 255 ? 255 : own) | (guard_holds_grant(n) ? HB_FLAG_GRANT : 0));
}

static void arm(struct event *ev, uint64_t ms)
{
	struct timeval tv;

	ms_to_timeval(ms, &tv);
	evtimer_add(ev, &tv);
}

static void apply(struct node *n, enum role r)
{
	n->gen++;
	if (n->restart_gen) {
		/* A change of role preempts a checker's restart. */
		n->restart_gen = 0;
		if (n->policy)
			policy_restart_done(n->policy, true, "preempted by a change of role");
	}
	log_debug("%s: bringing resources to role %s (apply %llu)", n->cfg->nodes[n->self].name,
	          role_str(r), (unsigned long long)n->gen);
	resmgr_apply(n->res, r, n->gen);
}

/* The event for [notify] commands and the EVENT log line. */
void node_notify(struct node *n, const char *type, enum sm_state from, enum sm_state to)
{
	enum sm_display fd, td;
	enum sm_color fc, tc;
	struct notify_event ev = { .type = type, .node = n->cfg->nodes[n->self].name, .reason = n->reason };

	sm_display(from, &fd, &fc);
	sm_display(to, &td, &tc);
	ev.from = sm_display_str(fd);
	ev.to = sm_display_str(td);
	ev.color = sm_color_str(tc);
	notify_event(n->notify, &ev);
}

/* Taking the PRIM role from a standby state because the peer is gone or
 * stopped: what a VMS calls a failover. */
static bool is_takeover(enum sm_state prev, const struct sm_result *r)
{
	return r->next == S_GO_PRIM && (r->actions & A_NEW_TERM) &&
	       (prev == S_SECOND || prev == S_GO_SECOND || prev == S_RESTART_S || prev == S_SECOND_HO ||
	        prev == S_HELD);
}

static void enter(struct node *n, const struct sm_result *r, enum sm_event e, const char *detail)
{
	enum sm_state prev = n->state;
	char from[32], to[32];

	if (r->actions & A_NEW_TERM) {
		uint64_t top = n->term > n->pv.term ? n->term : n->pv.term;

		if (n->wc && wclient_witness_term(n->wc) > top)
			top = wclient_witness_term(n->wc);
		n->term = top + 1;
	}
	n->state = r->next;
	if (prev != r->next) {
		node_display_name(prev, from, sizeof(from));
		node_display_name(r->next, to, sizeof(to));
		if (detail && *detail)
			snprintf(n->reason, sizeof(n->reason), "%s: %s", r->reason, detail);
		else
			snprintf(n->reason, sizeof(n->reason), "%s", r->reason);
		/* A node stopped by a failure shows the failure, not "stopped". */
		if (r->next == S_STOPPING)
			snprintf(n->failure, sizeof(n->failure), "%s",
			         e == E_APPLY_FAIL || e == E_FAILED ? n->reason : "");
		else if (prev == S_STOPPING && r->next == S_STOP && n->failure[0])
			snprintf(n->reason, sizeof(n->reason), "%.400s; %s", n->failure, r->reason);
		n->since_ms = wall_ms();
		log_info("%s: %s -> %s (%s)", n->cfg->nodes[n->self].name, from, to, n->reason);
		log_debug("%s: internal %s -> %s on %s", n->cfg->nodes[n->self].name,
		          sm_state_str(prev), sm_state_str(r->next), sm_event_str(e));
		if (is_takeover(prev, r)) {
			if (!hb_peer_reachable(n->hb))
				guard_record_failover(n);
			node_notify(n, "failover", prev, r->next);
		}
		if (e == E_APPLY_FAIL)
			node_notify(n, "start_failed", prev, r->next);
		node_notify(n, "transition", prev, r->next);
	}
	if (r->actions & A_SPLIT) {
		n->split_ms = wall_ms();
		log_warn("%s: split brain: both nodes ran the service; %s", n->cfg->nodes[n->self].name, r->reason);
		node_notify(n, "split_brain", prev, r->next);
		/* During the split, clients may have learned the other node's MAC
		 * for the VIP: the node that keeps it announces it again. */
		if (sm_is_primary(r->next) && n->vip && resmgr_vip_held(n->res))
			vip_add(n->vip);
	}
	if (r->next != S_WAIT && r->next != S_RESUME)
		evtimer_del(n->decide);
	if (r->next != S_BLOCKED)
		evtimer_del(n->retry);
	if (r->actions & A_APPLY_NONE)
		apply(n, ROLE_NONE);
	if (r->actions & A_APPLY_SECOND)
		apply(n, ROLE_SECOND);
	if (r->actions & A_APPLY_PRIM)
		apply(n, ROLE_PRIM);
	if (r->actions & A_ARM_DECIDE)
		arm(n->decide, n->cfg->hb_timeout_ms);
	if (r->actions & A_ARM_RETRY)
		arm(n->retry, RETRY_MS);
	node_save(n);
	node_announce(n);
	guard_set_role(n);
	guard_kick(n);
	if (n->shutting_down && n->state == S_STOP)
		event_active(n->done_ev, 0, 0);
	else if (n->start_after_stop && n->state == S_STOP) {
		n->restart_deadline = mono_ms() + 2ull * n->cfg->hb_timeout_ms;
		arm(n->restart_ev, 0);
	}
}

/* Returns 0, or -1 with *why when the event is a refused command. */
static int feed(struct node *n, enum sm_event e, const char *detail, const char **why)
{
	struct sm_result r = sm_step(n->state, e);

	if (r.actions & A_REJECT) {
		if (why)
			*why = r.reason;
		return -1;
	}
	if (why)
		*why = r.reason;
	if (r.next == n->state && r.actions == 0) {
		log_debug("%s: %s in %s changes nothing: %s", n->cfg->nodes[n->self].name,
		          sm_event_str(e), sm_state_str(n->state), r.reason);
		return 0;
	}
	enter(n, &r, e, detail);
	return 0;
}

/* The peer event now; *detail says why a lost peer is not taken over. */
static enum sm_event peer_event(struct node *n, const char **detail)
{
	bool may = true;

	n->pv.reachable = hb_peer_reachable(n->hb);
	if (!n->pv.reachable) {
		guard_want(n);
		/* A node running the PRIM role takes nothing over (whether it may
		 * keep the role is must_fence's question): why it would not take
		 * over only blurs its reason. */
		if (!sm_is_primary(n->state))
			may = guard_may_take_over(n, n->hold_why, sizeof(n->hold_why));
	}
	if (detail)
		*detail = may ? NULL : n->hold_why;
	/* Both waiting (HELD) when they meet again, with a witness: the
	 * witness decides, not preference, or a grant reaching the peer during
	 * the heal would start the service on both at once. Preference is
	 * back only when the witness has been silent for lease_ms. */
	if (n->pv.reachable && n->pv.state == S_HELD && n->state == S_HELD && n->wc) {
		bool mine = guard_holds_grant(n), theirs = (n->peer_flags & HB_FLAG_GRANT) != 0;

		if (mine && !theirs)
			return E_PEER_SECOND_WIN;
		if (theirs || !guard_witness_silent(n))
			return E_PEER_WAIT_LOSE;
	}
	return sm_classify_peer(&n->pv, n->term, n->self, may);
}

void node_process(struct node *n, enum sm_event e, const char *detail, int *rc, const char **why)
{
	int r = feed(n, e, detail, why);

	if (rc)
		*rc = r;
	/* Level-triggered: after any change, show the state the peer is in now. */
	for (int i = 0; i < SETTLE_MAX && n->peer_heard; i++) {
		enum sm_state before = n->state;

		const char *held;
		enum sm_event pe = peer_event(n, &held);

		feed(n, pe, held, NULL);
		if (n->state == before)
			return;
	}
	if (n->peer_heard)
		log_error("%s: state did not settle after %d peer events (in %s); please report",
		          n->cfg->nodes[n->self].name, SETTLE_MAX, sm_state_str(n->state));
}

static void on_peer(void *arg, const struct hb_msg *m, int net)
{
	struct node *n = arg;
	bool changed = !n->peer_heard || !n->pv.reachable || n->pv.state != (enum sm_state)m->state ||
	               n->pv.term != m->term || n->peer_incarnation != m->incarnation ||
	               n->peer_flags != m->flags;

	n->peer_heard = true;
	n->peer_seen_ms = mono_ms();
	n->pv.reachable = true;
	n->pv.state = m->state < S__COUNT ? (enum sm_state)m->state : S_STOP;
	n->pv.term = m->term;
	n->pv.index = n->peer;
	n->peer_failovers = m->flags & 0xff;
	n->peer_flags = m->flags;
	if (n->peer_incarnation != m->incarnation) {
		n->peer_incarnation = m->incarnation;
		node_save(n);
	}
	if (changed) {
		const char *detail = NULL;

		log_debug("%s: peer %s is %s (term %llu)", n->cfg->nodes[n->self].name,
		          n->cfg->nodes[n->peer].name, sm_state_str(n->pv.state), (unsigned long long)m->term);
		node_process(n, peer_event(n, &detail), detail, NULL, NULL);
	}
}

void node_refeed_peer(struct node *n)
{
	const char *detail = NULL;

	if (n->peer_heard)
		node_process(n, peer_event(n, &detail), detail, NULL, NULL);
}

static void on_lost(void *arg)
{
	struct node *n = arg;
	const char *detail;
	enum sm_event pe;

	log_warn("%s: no heartbeat from %s on any network for %u ms", n->cfg->nodes[n->self].name,
	         n->cfg->nodes[n->peer].name, n->cfg->hb_timeout_ms);
	n->pv.reachable = false;
	node_rfs_peer_changed(n);
	pe = peer_event(n, &detail);
	node_process(n, pe, detail, NULL, NULL);
}

/* The peer has been silent for most of timeout_ms. If its loss would make
 * us take the VIP, probe it now: the probe's window then overlaps the rest
 * of the timeout instead of adding to the failover time. */
static void on_suspect(void *arg)
{
	struct node *n = arg;

	if (!n->vip || resmgr_vip_held(n->res))
		return;
	if (n->state == S_SECOND || n->state == S_GO_SECOND || n->state == S_RESTART_S ||
	    n->state == S_SECOND_HO || n->state == S_WAIT)
		vip_probe_ahead(n->vip);
}

static void on_decide(evutil_socket_t fd, short what, void *arg)
{
	struct node *n = arg;

	/* A peer we hear drives the decision through its own events. With
	 * failover off, a node that hears nobody does not start the service by
	 * itself either (one that held PRIM before vigild restarted resumes). */
	if (!hb_peer_reachable(n->hb)) {
		const char *detail;

		peer_event(n, &detail);
		node_process(n, detail ? E_PEER_LOST_HELD : E_DECIDE_TIMEOUT, detail, NULL, NULL);
	}
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct node *n = arg;

	/* Both nodes blocked on the VIP: only the preferred one probes again,
	 * or two retries in the same instant could both find it free. */
	if (hb_peer_reachable(n->hb) && n->pv.state == S_BLOCKED && n->pv.index < n->self) {
		arm(n->retry, RETRY_MS);
		return;
	}
	node_process(n, E_RETRY, NULL, NULL, NULL);
}

static void on_done_ev(evutil_socket_t fd, short what, void *arg)
{
	struct node *n = arg;

	if (n->shutdown_done) {
		void (*cb)(void *) = n->shutdown_done;

		n->shutdown_done = NULL;
		cb(n->shutdown_arg);
	}
}

/* stopstart: the stop is done. Start again once the peer has taken over
 * (or cannot: unreachable, or not within two timeouts), so that this node
 * comes back as SECOND instead of racing the peer for the role it left. */
static void on_restart_ev(evutil_socket_t fd, short what, void *arg)
{
	struct node *n = arg;
	bool peer_took = hb_peer_reachable(n->hb) && sm_is_primary(n->pv.state);

	if (!n->start_after_stop || n->shutting_down || n->state != S_STOP)
		return;
	if (!peer_took && hb_peer_reachable(n->hb) && mono_ms() < n->restart_deadline) {
		arm(n->restart_ev, 20);
		return;
	}
	n->start_after_stop = false;
	n->admin_started = true;
	node_process(n, E_START, "stopstart", NULL, NULL);
}

static void on_apply_done(uint64_t gen, enum apply_result r, const char *reason, void *arg)
{
	struct node *n = arg;
	enum sm_event e = r == APPLY_OK ? E_APPLY_OK : r == APPLY_VIP_IN_USE ? E_VIP_IN_USE : E_APPLY_FAIL;

	if (guard_apply_done(n, gen, r == APPLY_OK, reason))
		return;
	if (gen != n->gen)
		return;
	if (r != APPLY_OK)
		log_error("%s: %s", n->cfg->nodes[n->self].name, reason ? reason : apply_result_str(r));
	node_process(n, e, r == APPLY_OK ? NULL : reason, NULL, NULL);
}

static void on_res_change(void *arg)
{
	node_save(arg);
}

struct node *node_new(struct event_base *base, struct config *cfg, int self)
{
	struct node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->base = base;
	n->cfg = cfg;
	n->self = self;
	n->peer = 1 - self;
	n->state = S_STOP;
	n->pv.index = n->peer;
	n->pv.state = S_STOP;
	snprintf(n->state_path, sizeof(n->state_path), "%s/node.json", cfg->state_dir);
	n->decide = evtimer_new(base, on_decide, n);
	n->retry = evtimer_new(base, on_retry, n);
	n->done_ev = event_new(base, -1, 0, on_done_ev, n);
	n->restart_ev = evtimer_new(base, on_restart_ev, n);
	if (cfg->vip_enabled) {
		struct vip_opts o = {
			.ifname = cfg->vip_interface, .addr = cfg->vip_addr, .prefix = cfg->vip_prefix,
			.probe_ms = cfg->vip_probe_ms, .garp_burst = cfg->vip_garp_burst,
			.garp_repeats = cfg->vip_garp_repeats, .garp_interval_ms = cfg->vip_garp_interval_ms,
		};

		n->vip = vip_new(base, &o);
		if (!n->vip) {
			node_free(n);
			return NULL;
		}
	}
	n->res = resmgr_new(cfg, n->vip, on_apply_done, on_res_change, n);
	n->notify = notify_new(cfg);
	if (!n->res || !n->notify || node_rfs_init(n) < 0) {
		node_free(n);
		return NULL;
	}
	return n;
}

void node_free(struct node *n)
{
	if (!n)
		return;
	guard_free(n);
	node_rfs_free(n);
	hb_free(n->hb);
	if (n->notify)
		notify_free(n->notify);
	if (n->res)
		resmgr_free(n->res);
	if (n->vip)
		vip_free(n->vip);
	if (n->decide)
		event_free(n->decide);
	if (n->retry)
		event_free(n->retry);
	if (n->done_ev)
		event_free(n->done_ev);
	if (n->restart_ev)
		event_free(n->restart_ev);
	free(n);
}

static enum sm_state state_parse(const char *s)
{
	for (int i = 0; i < S__COUNT; i++)
		if (!strcmp(s, sm_state_str((enum sm_state)i)))
			return (enum sm_state)i;
	return S_STOP;
}

int node_start(struct node *n)
{
	struct persist_data d;
	const char *name = n->cfg->nodes[n->self].name;
	char bid[40];
	int r = persist_load(n->state_path, &d);
	bool start, same_boot;
	enum sm_state was;
	struct hb_callbacks cb = { .peer = on_peer, .lost = on_lost, .suspect = on_suspect, .arg = n };

	if (r < 0) {
		memset(&d, 0, sizeof(d));
		strcpy(d.state, "STOP");
		d.boot = BOOT_KEEP;
		d.admin_started = r == -ENOENT; /* a new node starts; a broken file does not */
	}
	/* A larger incarnation than any before it: the peer can tell replayed
	 * heartbeats of an earlier run from ours. */
	n->incarnation = d.incarnation + 1;
	if (wall_ms() * 1000 > n->incarnation)
		n->incarnation = wall_ms() * 1000;
	n->term = d.term;
	n->peer_incarnation = d.peer_incarnation;
	n->boot = d.boot;
	n->failover = !d.failover_off;
	n->checkers_on = !d.checkers_off;
	n->errd_suspended = d.errd_suspended;
	n->nfailovers = d.nfailovers;
	memcpy(n->failovers, d.failovers, sizeof(n->failovers));
	n->admin_started = d.admin_started;
	was = state_parse(d.state);
	persist_boot_id(bid);
	same_boot = bid[0] && !strcmp(bid, d.boot_id);
	if (same_boot) {
		/* vigild restarted, the machine did not: what it ran still runs. */
		for (int i = 0; i < d.nrunning; i++)
			resmgr_assume_running(n->res, d.running[i]);
		resmgr_assume_vip(n->res, d.vip_held);
	}
	d.incarnation = n->incarnation;
	if ((r = persist_save_now(n->state_path, &d)) < 0) {
		log_error("cannot write %s: %s", n->state_path, strerror(-r));
		return -1;
	}
	/* The peer may have heard our previous run just before it ended. */
	n->peer_seen_ms = mono_ms();
	n->hb = hb_new(n->base, n->cfg, n->self, n->incarnation, &cb);
	if (!n->hb)
		return -1;
	hb_set_replay_floor(n->hb, d.peer_incarnation);
	if (guard_init(n) < 0)
		return -1;
	policy_set_enabled(n->policy, n->checkers_on);
	policy_set_errd_suspended(n->policy, n->errd_suspended);
	/* The probe window plus a margin for the probe to start, at most half
	 * the timeout: probing ahead must stay rare on a healthy link. */
	if (n->vip && n->cfg->vip_probe_ms) {
		uint32_t lead = n->cfg->vip_probe_ms + 20;

		hb_set_suspect_lead(n->hb, lead < n->cfg->hb_timeout_ms / 2 ? lead : n->cfg->hb_timeout_ms / 2);
	}

	start = n->boot == BOOT_ON || (n->boot == BOOT_KEEP && n->admin_started);
	n->since_ms = wall_ms();
	if (!start) {
		struct sm_result stop = { S_STOP, 0, "boot off" };

		snprintf(n->reason, sizeof(n->reason), "%s", n->boot == BOOT_OFF ? "boot is off" : "stopped before restart");
		log_info("%s: starting in STOP (boot %s, was %s)", name, boot_mode_str(n->boot), d.state);
		if (same_boot && (d.nrunning > 0 || d.vip_held)) {
			stop.next = S_STOPPING;
			stop.actions = A_APPLY_NONE;
			stop.reason = "stopping what still ran before vigild restarted";
		}
		enter(n, &stop, E_STOP, NULL);
		return 0;
	}
	if (same_boot && sm_is_primary(was) && (d.nrunning > 0 || d.vip_held)) {
		struct sm_result res = { S_RESUME, A_ARM_DECIDE, "vigild restarted while this node held the PRIM role" };

		log_info("%s: resuming: was %s with its resources running", name, d.state);
		enter(n, &res, E_START, NULL);
	} else {
		struct sm_result st = { S_WAIT, A_ARM_DECIDE, "starting" };

		log_info("%s: starting (boot %s, was %s)", name, boot_mode_str(n->boot), d.state);
		enter(n, &st, E_START, NULL);
	}
	return 0;
}

int node_command(struct node *n, enum sm_event cmd, const char **err, char *msg, size_t msglen)
{
	const char *name = n->cfg->nodes[n->self].name;
	enum sm_state before = n->state;
	const char *why = NULL;
	char disp[32], data_msg[400] = "";
	int rc = 0;

	if (n->shutting_down) {
		*err = "vigild is shutting down";
		return -1;
	}
	if ((cmd == E_FORCESTART || cmd == E_START_PRIM) && hb_peer_reachable(n->hb) && sm_is_primary(n->pv.state)) {
		*err = cmd == E_FORCESTART ? "the peer runs the service; forcestart would run it twice (use swap)"
		                           : "the peer runs the service; start this node as SECOND (vigilctl second)";
		return -1;
	}
	if (sm_rejects(n->state, cmd, &why)) {
		*err = why;
		return -1;
	}
	/* Any command overrides a pending stopstart. */
	n->start_after_stop = false;
	guard_command(n);
	if (cmd == E_FORCESTART)
		node_rfs_force(n, data_msg, sizeof(data_msg));
	if (cmd == E_START || cmd == E_FORCESTART || cmd == E_START_PRIM || cmd == E_START_SECOND)
		n->admin_started = true;
	else if (cmd == E_STOP)
		n->admin_started = false;
	node_process(n, cmd, NULL, &rc, &why);
	if (rc < 0) {
		*err = why;
		return -1;
	}
	node_display_name(n->state, disp, sizeof(disp));
	if (n->state == before)
		snprintf(msg, msglen, "%s: %s (%s)%s%s", name, why, disp, data_msg[0] ? "; " : "", data_msg);
	else
		/* Magenta: the change is under way; the state shown is the one
		 * being left or reached, not yet the outcome. */
		snprintf(msg, msglen, "%s: %s, now %s%s%s%s", name, why, disp,
		         strstr(disp, "magenta") ? " (changing, see status)" : "", data_msg[0] ? "; " : "", data_msg);
	node_save(n);
	return 0;
}

int node_set_boot(struct node *n, const char *mode, char *msg, size_t msglen)
{
	enum boot_mode b;

	if (boot_mode_parse(mode, &b) < 0) {
		snprintf(msg, msglen, "boot mode '%s' is not one of keep, on, off", mode);
		return -1;
	}
	n->boot = b;
	node_save(n);
	snprintf(msg, msglen, "%s: boot %s", n->cfg->nodes[n->self].name, boot_mode_str(b));
	return 0;
}

int node_stopstart(struct node *n, const char **err, char *msg, size_t msglen)
{
	if (n->state == S_STOP) {
		*err = "the node is stopped; use start";
		return -1;
	}
	if (node_command(n, E_STOP, err, msg, msglen) < 0)
		return -1;
	/* Stays "started" for boot keep: the stop is only half of it. */
	n->admin_started = true;
	n->start_after_stop = true;
	/* enter() arms the start once STOP is reached: never here, as the stop
	 * scripts report from the loop. */
	node_save(n);
	snprintf(msg, msglen, "%s: stopping, then starting again (the peer takes over if this node was PRIM)",
	         n->cfg->nodes[n->self].name);
	return 0;
}

/* A switch's two words: *out = true for yes, false for no; else -1 with
 * msg naming the switch and what it takes. */
static int parse_switch(const char *what, const char *mode, const char *yes, const char *no, bool *out,
                        char *msg, size_t msglen)
{
	if (!strcmp(mode, yes) || !strcmp(mode, no)) {
		*out = !strcmp(mode, yes);
		return 0;
	}
	snprintf(msg, msglen, "%s mode '%s' is not %s or %s", what, mode, yes, no);
	return -1;
}

int node_set_failover(struct node *n, const char *mode, char *msg, size_t msglen)
{
	const char *name = n->cfg->nodes[n->self].name;
	bool on;

	if (parse_switch("failover", mode, "on", "off", &on, msg, msglen) < 0)
		return -1;
	n->failover = on;
	node_save(n);
	log_info("%s: failover %s", name, on ? "on" : "off");
	if (on)
		node_process(n, E_FAILOVER_ON, NULL, NULL, NULL);
	snprintf(msg, msglen, "%s: failover %s%s", name, on ? "on" : "off",
	         on ? "" : " (if the PRIM is lost, this node waits instead of taking over)");
	return 0;
}

int node_set_checkers(struct node *n, const char *mode, char *msg, size_t msglen)
{
	bool on;

	if (parse_switch("checkers", mode, "on", "off", &on, msg, msglen) < 0)
		return -1;
	n->checkers_on = on;
	policy_set_enabled(n->policy, on);
	node_save(n);
	log_info("%s: checkers %s", node_name(n), on ? "on" : "off");
	snprintf(msg, msglen, "%s: checkers %s%s", node_name(n), on ? "on" : "off",
	         on ? "" : " (no health check runs on this node until checkers on)");
	return 0;
}

int node_set_errd(struct node *n, const char *mode, char *msg, size_t msglen)
{
	bool suspend;

	if (parse_switch("errd", mode, "suspend", "resume", &suspend, msg, msglen) < 0)
		return -1;
	n->errd_suspended = suspend;
	policy_set_errd_suspended(n->policy, suspend);
	node_save(n);
	log_info("%s: errd %s", node_name(n), suspend ? "suspended" : "active");
	snprintf(msg, msglen, "%s: errd %s", node_name(n),
	         suspend ? "suspended (checkers run and report; no failure is acted on)" : "active");
	return 0;
}

void node_shutdown(struct node *n, void (*done)(void *), void *arg)
{
	struct sm_result r = sm_step(n->state, E_STOP);

	n->shutdown_done = done;
	n->shutdown_arg = arg;
	n->shutting_down = true;
	log_info("%s: shutting down: stopping resources, handing over to %s",
	         n->cfg->nodes[n->self].name, n->cfg->nodes[n->peer].name);
	if (n->state == S_STOP) {
		event_active(n->done_ev, 0, 0);
		return;
	}
	if (!(r.actions & A_REJECT) && r.next != n->state) {
		r.reason = "vigild shutting down";
		enter(n, &r, E_STOP, NULL);
	}
}

const char *node_name(const struct node *n) { return n->cfg->nodes[n->self].name; }
const char *node_peer_name(const struct node *n) { return n->cfg->nodes[n->peer].name; }
bool node_peer_reachable(const struct node *n) { return n->hb && hb_peer_reachable(n->hb); }
bool node_peer_primary(const struct node *n) { return node_peer_reachable(n) && sm_is_primary(n->pv.state); }
bool node_is_primary(const struct node *n) { return sm_is_primary(n->state); }
bool node_runs_service(const struct node *n) { return n->state == S_ALONE || n->state == S_PRIM; }
struct notify *node_notifier(struct node *n) { return n->notify; }
const struct config *node_config(const struct node *n) { return n->cfg; }
