/* The pool: applies the recorder and spare tables (pool_table.c) to one
 * event, makes the decisions that need the whole pool (which spare, the
 * queue, failback or swap), settles, then gives free spares to the queue
 * and to owed copy-backs. Rules in prose: docs/pool.md. */
#include "pool/pool_sm.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pool/pool_int.h"

#define SETTLE_DEPTH 32  /* recorder events nested in one step */
#define SETTLE_ROUNDS 8  /* settling events fed to one recorder */

void pool_say(struct pool_ctx *c, const char *fmt, ...)
{
	char *buf = c->res->reason;
	size_t len = strlen(buf);
	va_list ap;

	if (len + 3 >= sizeof(c->res->reason))
		return;
	if (len) {
		memcpy(buf + len, "; ", 3);
		len += 2;
	}
	va_start(ap, fmt);
	vsnprintf(buf + len, sizeof(c->res->reason) - len, fmt, ap);
	va_end(ap);
}

static struct pool_action *emit(struct pool_ctx *c, enum pool_action_type t, int r, int s)
{
	struct pool_result *res = c->res;
	struct pool_action *a;

	c->moved = true;
	if (res->n_actions == POOL_MAX_ACTIONS) {
		if (!strstr(res->reason, "too many actions"))
			pool_say(c, "too many actions in one step: some dropped");
		a = &c->dropped;
	} else {
		a = &res->actions[res->n_actions++];
	}
	memset(a, 0, sizeof(*a));
	a->type = t;
	a->rec = r;
	a->spare = s;
	a->trigger = r >= 0 ? c->p->rec[r].trigger : POOL_T_NONE;
	return a;
}

static void log_entry(struct pool_ctx *c, enum pool_log_what w, enum pool_log_result res, int r, int s)
{
	struct pool_action *a = emit(c, POOL_A_LOG, r, s);

	a->what = w;
	a->result = res;
}

/* ---- bits and links ---------------------------------------------------- */

bool pool_owes(const struct pool *p, int s, int r)
{
	if (s < 0 || s >= p->n_spare || r < 0 || r >= p->n_rec)
		return false;
	return (p->spare[s].owes[r / 64] >> (r % 64)) & 1;
}

static void set_owes(struct pool_ctx *c, int s, int r, bool on)
{
	uint64_t *w = &c->p->spare[s].owes[r / 64];
	uint64_t bit = (uint64_t)1 << (r % 64);

	if (((*w & bit) != 0) != on)
		c->res->changed = true;
	*w = on ? *w | bit : *w & ~bit;
}

static bool owes_any(const struct pool_spare *sp)
{
	for (size_t i = 0; i < sizeof(sp->owes) / sizeof(sp->owes[0]); i++)
		if (sp->owes[i])
			return true;
	return false;
}

static bool owes_other(const struct pool *p, int s, int r)
{
	for (int i = 0; i < p->n_rec; i++)
		if (i != r && pool_owes(p, s, i))
			return true;
	return false;
}

int pool_served_by(const struct pool *p, int r)
{
	if (r < 0 || r >= p->n_rec)
		return -1;
	switch (p->rec[r].state) {
	case POOL_R_FAILING_OVER: case POOL_R_FAILED_OVER: case POOL_R_BACK: case POOL_R_FAILING_BACK:
		return p->rec[r].spare;
	default:
		return -1;
	}
}

static void queue_remove(struct pool *p, int r)
{
	for (int i = 0; i < p->n_queue; i++) {
		if (p->queue[i] == r) {
			memmove(&p->queue[i], &p->queue[i + 1], (size_t)(p->n_queue - i - 1) * sizeof(int));
			p->n_queue--;
			return;
		}
	}
}

/* By seq: a retry keeps its place ahead of later failures. */
static int queue_insert(struct pool *p, int r)
{
	int i = 0;

	for (int k = 0; k < p->n_queue; k++)
		if (p->queue[k] == r)
			return k;
	while (i < p->n_queue && p->rec[p->queue[i]].seq <= p->rec[r].seq)
		i++;
	memmove(&p->queue[i + 1], &p->queue[i], (size_t)(p->n_queue - i) * sizeof(int));
	p->queue[i] = r;
	p->n_queue++;
	return i;
}

static void link_pair(struct pool *p, int r, int s)
{
	p->rec[r].spare = s;
	p->spare[s].rec = r;
}

static void unlink_spare(struct pool *p, int s)
{
	int r = p->spare[s].rec;

	if (r >= 0 && p->rec[r].spare == s)
		p->rec[r].spare = -1;
	p->spare[s].rec = -1;
}

static void rec_set_state(struct pool_ctx *c, int r, enum pool_rec_state to)
{
	struct pool_recorder *rec = &c->p->rec[r];
	enum pool_rec_state from = rec->state;
	struct pool_action *a;

	if (from == to)
		return;
	rec->state = to;
	if (from == POOL_R_QUEUED)
		queue_remove(c->p, r);
	if (to == POOL_R_QUEUED)
		queue_insert(c->p, r);
	c->res->changed = true;
	a = emit(c, POOL_A_NOTIFY, r, -1);
	a->from = from;
	a->to = to;
}

static void rec_move(struct pool_ctx *c, int r, enum pool_rec_state to, const char *why, const char *detail)
{
	struct pool_recorder *rec = &c->p->rec[r];

	pool_say(c, "recorder %s: %s -> %s (%s%s%s)", rec->name, pool_rec_state_str(rec->state),
	         pool_rec_state_str(to), why, detail && *detail ? ": " : "", detail ? detail : "");
	rec_set_state(c, r, to);
}

void pool_set_link(struct pool_ctx *c, int r, enum pool_link l)
{
	if (c->p->rec[r].link != l)
		c->res->changed = true;
	c->p->rec[r].link = l;
}

/* ---- spares ------------------------------------------------------------ */

void pool_feed_spare(struct pool_ctx *c, int s, enum pool_spare_event e)
{
	struct pool_spare *sp = &c->p->spare[s];
	struct pool_spare_rule rule = pool_spare_rule(sp->state, e);
	int r = sp->rec;
	struct pool_action *a;

	if (rule.kind == POOL_K_MOVE)
		pool_say(c, "spare %s: %s -> %s (%s)", sp->name, pool_spare_state_str(sp->state),
		         pool_spare_state_str(rule.next), rule.reason);
	else
		pool_say(c, "spare %s (%s): %s", sp->name, pool_spare_state_str(sp->state), rule.reason);
	if (rule.kind != POOL_K_MOVE && rule.kind != POOL_K_KEEP)
		return;
	if (rule.next != sp->state) {
		sp->state = rule.next;
		c->res->changed = true;
		c->moved = true;
		if (rule.next == POOL_S_FREE || rule.next == POOL_S_OFFLINE || rule.next == POOL_S_FAILED)
			unlink_spare(c->p, s);
	}
	if (r >= 0 && (rule.actions & POOL_SA_OWE))
		set_owes(c, s, r, true);
	if (r >= 0 && (rule.actions & POOL_SA_PAID))
		set_owes(c, s, r, false);
	/* What ends its old work goes first (the recorder may give it new
	 * work at once); then the recorder hears (it resumes before its
	 * copy-back starts); then the new work. A stop that is not a
	 * failback stops something it was not given: no recorder. */
	if (rule.actions & POOL_SA_STOP)
		emit(c, POOL_A_STOP_SPARE, e == POOL_SE_RELEASE ? r : -1, s);
	if (rule.actions & POOL_SA_STOP_COPY)
		emit(c, POOL_A_STOP_COPY, r, s);
	if (rule.actions & POOL_SA_ARM)
		emit(c, POOL_A_ARM_SPARE, -1, s);
	if (rule.notify >= 0 && r >= 0) {
		pool_feed_rec(c, r, (enum pool_rec_event)rule.notify, s);
		/* The recorder may have ended that new work already (it was
		 * lost during its failback: the copy paused at once). */
		if (sp->state != rule.next || sp->rec != r)
			return;
	}
	if (rule.actions & POOL_SA_START) {
		a = emit(c, POOL_A_START_SPARE, r, s);
		a->trigger = r >= 0 ? c->p->rec[r].trigger : POOL_T_NONE;
	}
	if (rule.actions & POOL_SA_COPY) {
		emit(c, POOL_A_START_COPY, r, s);
		log_entry(c, POOL_LOG_COPY, POOL_RES_STARTED, r, s);
	}
}

/* Spare a before spare b for recorder r: the one that holds recordings of
 * r (they stay on one machine), then the first by name. */
static bool better(const struct pool *p, int r, int a, int b)
{
	bool oa = pool_owes(p, a, r), ob = pool_owes(p, b, r);

	if (oa != ob)
		return oa;
	return strcmp(p->spare[a].name, p->spare[b].name) < 0;
}

/* A free spare for r: of its primary group, else of its secondary. */
static int choose(const struct pool *p, int r, const char **group)
{
	const struct pool_recorder *rec = &p->rec[r];
	const char *groups[2] = { rec->group, rec->secondary };

	for (int g = 0; g < 2; g++) {
		int best = -1;

		if (!groups[g][0])
			continue;
		for (int s = 0; s < p->n_spare; s++) {
			const struct pool_spare *sp = &p->spare[s];

			if (sp->state != POOL_S_FREE || !sp->group[0] || strcmp(sp->group, groups[g]) != 0)
				continue;
			if (best < 0 || better(p, r, s, best))
				best = s;
		}
		if (best >= 0) {
			*group = groups[g];
			return best;
		}
	}
	return -1;
}

static void assign(struct pool_ctx *c, int r, int s, const char *group, const char *why)
{
	struct pool_recorder *rec = &c->p->rec[r];
	char detail[160];

	queue_remove(c->p, r);
	link_pair(c->p, r, s);
	if (rec->trigger == POOL_T_MANUAL && rec->link == POOL_LINK_UP)
		pool_set_link(c, r, POOL_LINK_HELD);
	log_entry(c, POOL_LOG_FAILOVER, POOL_RES_STARTED, r, s);
	emit(c, POOL_A_MARK_BROKEN, r, -1);
	snprintf(detail, sizeof(detail), "spare %s of group %s", c->p->spare[s].name, group);
	rec_move(c, r, POOL_R_FAILING_OVER, why, detail);
	pool_feed_spare(c, s, POOL_SE_ASSIGN);
}

static void serve_queue(struct pool_ctx *c)
{
	struct pool *p = c->p;
	int i = 0;

	while (i < p->n_queue) {
		int r = p->queue[i];
		const char *g;
		int s = choose(p, r, &g);

		if (s >= 0)
			assign(c, r, s, g, "a spare is free for the queue");
		else
			i++;
	}
}

static void start_copy(struct pool_ctx *c, int r, int s, const char *why)
{
	char detail[96];

	link_pair(c->p, r, s);
	snprintf(detail, sizeof(detail), "from spare %s", c->p->spare[s].name);
	rec_move(c, r, POOL_R_COPYING, why, detail);
	pool_feed_spare(c, s, POOL_SE_COPY);
}

/* Free spares serve the queue first, then the copy-backs they owe. */
void pool_dispatch(struct pool_ctx *c)
{
	struct pool *p = c->p;

	serve_queue(c);
	for (int s = 0; s < p->n_spare; s++) {
		if (p->spare[s].state != POOL_S_FREE || !owes_any(&p->spare[s]))
			continue;
		for (int r = 0; r < p->n_rec; r++) {
			if (pool_owes(p, s, r) && p->rec[r].state == POOL_R_OK && !p->rec[r].copy_held) {
				start_copy(c, r, s, "copy-back owed");
				break;
			}
		}
	}
}

/* ---- decisions --------------------------------------------------------- */

static void no_spare_text(const struct pool_recorder *rec, char *buf, size_t len)
{
	if (rec->secondary[0])
		snprintf(buf, len, "no free spare in group %s or %s", rec->group, rec->secondary);
	else
		snprintf(buf, len, "no free spare in group %s", rec->group);
}

static void refuse(struct pool_ctx *c, int r, const char *why, const char *detail)
{
	struct pool_recorder *rec = &c->p->rec[r];

	pool_say(c, "recorder %s (%s): %s refused: %s", rec->name, pool_rec_state_str(rec->state), why, detail);
	c->refused = true;
}

static void need_spare(struct pool_ctx *c, int r, const struct pool_rec_rule *rule)
{
	struct pool *p = c->p;
	struct pool_recorder *rec = &p->rec[r];
	const char *g;
	char detail[200], more[260];
	int s;

	if (rec->link == POOL_LINK_UP || (rec->link == POOL_LINK_HELD && !rec->failover)) {
		emit(c, POOL_A_RESUME, r, -1);
		pool_set_link(c, r, POOL_LINK_UP);
		rec_move(c, r, POOL_R_OK, rule->reason, "it is connected and healthy: it records again");
		return;
	}
	if (rule->trigger != POOL_T_NONE)
		rec->trigger = rule->trigger;
	if (!rec->failover) {
		log_entry(c, POOL_LOG_FAILOVER, POOL_RES_SKIPPED, r, -1);
		rec_move(c, r, POOL_R_DOWN, rule->reason, "failover is disabled for it");
		return;
	}
	if (!(rule->actions & POOL_RA_KEEP_PLACE))
		rec->seq = ++p->seq;
	c->res->changed = true;
	serve_queue(c); /* older failures first, for spares freed earlier in this step */
	s = choose(p, r, &g);
	if (s >= 0) {
		assign(c, r, s, g, rule->reason);
		return;
	}
	no_spare_text(rec, detail, sizeof(detail));
	if (rec->link == POOL_LINK_HELD) {
		emit(c, POOL_A_RESUME, r, -1);
		pool_set_link(c, r, POOL_LINK_UP);
		snprintf(more, sizeof(more), "%s; it is connected and healthy: it records again", detail);
		rec_move(c, r, POOL_R_OK, rule->reason, more);
		return;
	}
	log_entry(c, POOL_LOG_FAILOVER, POOL_RES_QUEUED, r, -1);
	snprintf(more, sizeof(more), "%s: queued at position %d", detail, queue_insert(p, r) + 1);
	rec_move(c, r, POOL_R_QUEUED, rule->reason, more);
}

static void swap_roles(struct pool_ctx *c, int r, int s, const char *why)
{
	struct pool *p = c->p;
	struct pool_recorder *rec = &p->rec[r];
	struct pool_spare *sp = &p->spare[s];
	char tmp[POOL_NAME_MAX], detail[4 * POOL_NAME_MAX + 80];

	memcpy(tmp, rec->name, sizeof(tmp));
	memcpy(rec->name, sp->name, sizeof(tmp));
	memcpy(sp->name, tmp, sizeof(tmp));
	memcpy(sp->group, rec->group, sizeof(sp->group));
	memset(sp->owes, 0, sizeof(sp->owes));
	pool_set_link(c, r, POOL_LINK_UP);
	c->res->changed = true;
	log_entry(c, POOL_LOG_SWAP, POOL_RES_DONE, r, s);
	emit(c, POOL_A_SWAP, r, s);
	snprintf(detail, sizeof(detail), "roles exchanged: %s records in place of %s, %s is a spare of group %s",
	         rec->name, sp->name, sp->name, sp->group);
	rec_move(c, r, POOL_R_OK, why, detail);
	pool_feed_spare(c, s, POOL_SE_SWAP);
}

static void give_back(struct pool_ctx *c, int r, const char *why)
{
	struct pool *p = c->p;
	int s = p->rec[r].spare;
	char detail[POOL_NAME_MAX + 120];

	if (p->after == POOL_AFTER_SWAP && !owes_other(p, s, r)) {
		swap_roles(c, r, s, why);
		return;
	}
	if (p->after == POOL_AFTER_SWAP)
		snprintf(detail, sizeof(detail), "no swap, %s holds recordings of other recorders: failback",
		         p->spare[s].name);
	else
		snprintf(detail, sizeof(detail), "failback: spare %s stops", p->spare[s].name);
	log_entry(c, POOL_LOG_FAILBACK, POOL_RES_STARTED, r, s);
	if (p->rec[r].state == POOL_R_FAILED_OVER)
		emit(c, POOL_A_MARK_BROKEN, r, -1);
	rec_move(c, r, POOL_R_FAILING_BACK, why, detail);
	pool_feed_spare(c, s, POOL_SE_RELEASE);
}

static void decide(struct pool_ctx *c, int r, const struct pool_rec_rule *rule)
{
	struct pool *p = c->p;
	struct pool_recorder *rec = &p->rec[r];
	char detail[200];
	const char *g;
	int s;

	switch (rule->decision) {
	case POOL_D_NEED_SPARE:
		need_spare(c, r, rule);
		return;
	case POOL_D_MANUAL:
		if (!rec->failover) {
			refuse(c, r, rule->reason, "failover is disabled for this recorder");
			return;
		}
		s = choose(p, r, &g);
		if (s < 0) {
			no_spare_text(rec, detail, sizeof(detail));
			refuse(c, r, rule->reason, detail);
			return;
		}
		rec->trigger = POOL_T_MANUAL;
		rec->seq = ++p->seq;
		assign(c, r, s, g, rule->reason);
		return;
	case POOL_D_RETURN:
		s = rec->spare;
		if (p->spare[s].state != POOL_S_SERVING)
			snprintf(detail, sizeof(detail), "waiting for its spare %s to be reachable", p->spare[s].name);
		else if (rec->link == POOL_LINK_HELD)
			snprintf(detail, sizeof(detail), "failback by command (after a manual failover)");
		else if (p->failback == POOL_FAILBACK_MANUAL)
			snprintf(detail, sizeof(detail), "failback by command (failback = manual)");
		else {
			give_back(c, r, rule->reason);
			return;
		}
		if (rec->state == POOL_R_FAILED_OVER) {
			emit(c, POOL_A_MARK_BROKEN, r, -1);
			rec_move(c, r, POOL_R_BACK, rule->reason, detail);
		} else {
			pool_say(c, "recorder %s (%s): %s: %s", rec->name, pool_rec_state_str(rec->state), rule->reason,
			         detail);
		}
		return;
	case POOL_D_GIVE_BACK:
		s = rec->spare;
		if (p->spare[s].state != POOL_S_SERVING) {
			snprintf(detail, sizeof(detail), "its spare %s is not reachable", p->spare[s].name);
			refuse(c, r, rule->reason, detail);
			return;
		}
		give_back(c, r, rule->reason);
		return;
	case POOL_D_COPY: {
		int owing = -1, free_one = -1;

		for (s = 0; s < p->n_spare; s++) {
			if (!pool_owes(p, s, r))
				continue;
			if (owing < 0)
				owing = s;
			if (free_one < 0 && p->spare[s].state == POOL_S_FREE)
				free_one = s;
		}
		if (owing < 0) {
			refuse(c, r, rule->reason, "no copy-back is owed to it");
			return;
		}
		if (rec->copy_held)
			c->res->changed = true;
		rec->copy_held = false;
		c->moved = true;
		if (free_one >= 0) {
			start_copy(c, r, free_one, rule->reason);
		} else {
			pool_say(c, "recorder %s (%s): %s: starts when spare %s (%s) is free", rec->name,
			         pool_rec_state_str(rec->state), rule->reason, p->spare[owing].name,
			         pool_spare_state_str(p->spare[owing].state));
		}
		return;
	}
	case POOL_D_NONE:
	case POOL_D__COUNT:
		break;
	}
	pool_say(c, "recorder %s: no decision for %s", rec->name, pool_decision_str(rule->decision));
}

/* ---- recorders --------------------------------------------------------- */

static void rec_apply(struct pool_ctx *c, int r, enum pool_rec_event e, int from_spare)
{
	struct pool_recorder *rec = &c->p->rec[r];
	struct pool_rec_rule rule = pool_rec_rule(rec->state, e);
	int s = rec->spare >= 0 ? rec->spare : from_spare;

	if (rule.kind == POOL_K_IGNORE) {
		pool_say(c, "recorder %s (%s): %s", rec->name, pool_rec_state_str(rec->state), rule.reason);
		return;
	}
	if (rule.kind == POOL_K_REFUSE) {
		refuse(c, r, pool_rec_event_str(e), rule.reason);
		return;
	}
	if ((rule.actions & POOL_RA_ABORT_COPY) && rec->spare >= 0)
		pool_feed_spare(c, rec->spare, POOL_SE_ABORT_COPY);
	if (rule.log_what != POOL_LOG_NONE)
		log_entry(c, rule.log_what, rule.log_result, r, s);
	if (rule.actions & POOL_RA_ARM)
		emit(c, POOL_A_ARM_RECORDER, r, -1);
	if (rule.actions & POOL_RA_RESUME) {
		emit(c, POOL_A_RESUME, r, -1);
		if (rec->link == POOL_LINK_HELD)
			pool_set_link(c, r, POOL_LINK_UP);
	}
	if (rule.actions & POOL_RA_MARK_BROKEN)
		emit(c, POOL_A_MARK_BROKEN, r, -1);
	if (rule.actions & POOL_RA_HOLD_COPY) {
		rec->copy_held = true;
		c->res->changed = true;
	}
	switch (rule.kind) {
	case POOL_K_MOVE:
		rec_move(c, r, rule.next, rule.reason, NULL);
		break;
	case POOL_K_KEEP:
		c->moved = true;
		pool_say(c, "recorder %s (%s): %s", rec->name, pool_rec_state_str(rec->state), rule.reason);
		break;
	case POOL_K_DECIDE:
		decide(c, r, &rule);
		break;
	default:
		break;
	}
}

/* What the recorder's state must agree with its link (docs/pool.md,
 * "Facts and settling"): the event to feed, or -1. */
static int settle_event(const struct pool_recorder *rec)
{
	switch (rec->state) {
	case POOL_R_FAILED_OVER:
		if (rec->link == POOL_LINK_UP)
			return POOL_RE_UP;
		if (rec->link == POOL_LINK_HELD)
			return POOL_RE_HELD;
		return -1;
	case POOL_R_OK:
	case POOL_R_COPYING:
		if (rec->link == POOL_LINK_DOWN)
			return POOL_RE_LOST;
		if (rec->link == POOL_LINK_DISK)
			return POOL_RE_DISK;
		if (rec->link == POOL_LINK_WATCHDOG)
			return POOL_RE_WATCHDOG;
		return -1;
	default:
		return -1;
	}
}

void pool_feed_rec(struct pool_ctx *c, int r, enum pool_rec_event e, int from_spare)
{
	int next, n = 0;

	if (c->depth >= SETTLE_DEPTH) {
		pool_say(c, "recorder %s: did not settle", c->p->rec[r].name);
		return;
	}
	c->depth++;
	rec_apply(c, r, e, from_spare);
	while (!c->refused && (next = settle_event(&c->p->rec[r])) >= 0) {
		if (++n > SETTLE_ROUNDS) {
			pool_say(c, "recorder %s: did not settle", c->p->rec[r].name);
			break;
		}
		rec_apply(c, r, (enum pool_rec_event)next, -1);
	}
	c->depth--;
}
