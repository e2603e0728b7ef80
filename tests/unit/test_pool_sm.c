/* Tests of the pool master's pure core (src/pool/): every cell of the
 * recorder and spare tables, every event (valid or not) in every state a
 * random walk of small pools reaches, with the pool's invariants checked
 * after each step, the scenarios of issue 6's "Done when", and the tables
 * of docs/pool.md against the code.
 *
 * `test_pool_sm --tables` prints the tables of docs/pool.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pool/pool_sm.h"

#define CHECK(cond, where) \
	do { \
		if (!(cond)) \
			fail_msg("%s: expected %s", where, #cond); \
	} while (0)

#define UNEXPECTED_MARK "not expected"

static bool rec_is_command(enum pool_rec_event e)
{
	return e >= POOL_RE_CMD_FAILOVER && e <= POOL_RE_DISABLE;
}

/* Events the pool derives itself (from a spare, or to settle). */
static bool rec_is_derived(enum pool_rec_event e)
{
	return e >= POOL_RE_SPARE_STARTED;
}

static bool rec_has_spare(enum pool_rec_state s)
{
	return s == POOL_R_FAILING_OVER || s == POOL_R_FAILED_OVER || s == POOL_R_BACK ||
	       s == POOL_R_FAILING_BACK || s == POOL_R_COPYING;
}

static bool spare_has_rec(enum pool_spare_state s)
{
	return s == POOL_S_STARTING || s == POOL_S_SERVING || s == POOL_S_LOST || s == POOL_S_STOPPING ||
	       s == POOL_S_COPYING;
}

static bool spare_is_order(enum pool_spare_event e)
{
	return e >= POOL_SE_ASSIGN;
}

/* ---- 1. the tables, cell by cell --------------------------------------- */

static void table_recorder(void **st)
{
	bool target[POOL_R__COUNT] = { [POOL_R_OFFLINE] = true };
	bool leaves[POOL_R__COUNT] = { false };

	for (int si = 0; si < POOL_R__COUNT; si++) {
		for (int ei = 0; ei < POOL_RE__COUNT; ei++) {
			enum pool_rec_state s = (enum pool_rec_state)si;
			enum pool_rec_event e = (enum pool_rec_event)ei;
			struct pool_rec_rule r = pool_rec_rule(s, e);
			bool moves = r.kind == POOL_K_MOVE;
			char where[96];

			snprintf(where, sizeof(where), "recorder %s + %s", pool_rec_state_str(s), pool_rec_event_str(e));
			CHECK(r.reason != NULL && r.reason[0] != '\0', where);
			CHECK(strcmp(r.reason, "invalid state or event") != 0, where);
			CHECK((unsigned)r.kind < POOL_K__COUNT, where);
			CHECK((r.actions & ~POOL_RA_ALL) == 0, where);
			CHECK(moves ? r.next != s : r.next == s, where);
			if (moves)
				target[r.next] = true;
			if (moves || r.kind == POOL_K_DECIDE)
				leaves[s] = true;
			/* Where each decision may lead (docs/pool.md, "Decisions"). */
			switch (r.decision) {
			case POOL_D_NEED_SPARE:
				target[POOL_R_DOWN] = target[POOL_R_FAILING_OVER] = target[POOL_R_QUEUED] = true;
				target[POOL_R_OK] = true;
				break;
			case POOL_D_MANUAL: target[POOL_R_FAILING_OVER] = true; break;
			case POOL_D_RETURN: target[POOL_R_BACK] = target[POOL_R_FAILING_BACK] = target[POOL_R_OK] = true; break;
			case POOL_D_GIVE_BACK: target[POOL_R_FAILING_BACK] = target[POOL_R_OK] = true; break;
			case POOL_D_COPY: target[POOL_R_COPYING] = true; break;
			default: break;
			}

			/* Ignored and refused: nothing at all. */
			if (r.kind == POOL_K_IGNORE || r.kind == POOL_K_REFUSE)
				CHECK(r.actions == 0 && r.log_what == POOL_LOG_NONE && r.trigger == POOL_T_NONE, where);
			if (r.kind == POOL_K_REFUSE)
				CHECK(rec_is_command(e), where);
			if (r.kind == POOL_K_KEEP)
				CHECK(r.actions != 0 || e == POOL_RE_ENABLE || e == POOL_RE_DISABLE, where);

			/* Decisions, and the events that may ask for them. */
			CHECK((r.kind == POOL_K_DECIDE) == (r.decision != POOL_D_NONE), where);
			switch (r.decision) {
			case POOL_D_NEED_SPARE:
				CHECK(e == POOL_RE_DISK || e == POOL_RE_WATCHDOG || e == POOL_RE_TIMEOUT || e == POOL_RE_ENABLE ||
				      e == POOL_RE_SPARE_FAILED || e == POOL_RE_SPARE_GONE, where);
				break;
			case POOL_D_MANUAL: CHECK(e == POOL_RE_CMD_FAILOVER, where); break;
			case POOL_D_RETURN: CHECK(e == POOL_RE_UP || e == POOL_RE_SPARE_BACK, where); break;
			case POOL_D_GIVE_BACK: CHECK(e == POOL_RE_CMD_FAILBACK, where); break;
			case POOL_D_COPY: CHECK(e == POOL_RE_CMD_COPY, where); break;
			default: break;
			}
			/* Triggers name what the event is. */
			if (r.trigger != POOL_T_NONE)
				CHECK(r.decision == POOL_D_NEED_SPARE, where);
			if (r.decision == POOL_D_NEED_SPARE) {
				if (e == POOL_RE_DISK)
					CHECK(r.trigger == POOL_T_DISK, where);
				if (e == POOL_RE_WATCHDOG)
					CHECK(r.trigger == POOL_T_WATCHDOG, where);
				if (e == POOL_RE_TIMEOUT)
					CHECK(r.trigger == (s == POOL_R_OFFLINE ? POOL_T_ABSENT : POOL_T_LOST), where);
				if (e == POOL_RE_SPARE_GONE && s == POOL_R_FAILED_OVER)
					CHECK(r.trigger == POOL_T_SPARE_LOST, where);
				if (r.actions & POOL_RA_KEEP_PLACE)
					CHECK(r.trigger == POOL_T_NONE && s == POOL_R_FAILING_OVER, where);
			}

			/* Timers: armed on entering LOST, only then. */
			CHECK(((r.actions & POOL_RA_ARM) != 0) == (moves && r.next == POOL_R_LOST), where);
			/* It records again exactly when it returns to OK or COPYING
			 * from a state in which it did not record. */
			if (r.actions & POOL_RA_RESUME)
				CHECK(moves && (r.next == POOL_R_OK || r.next == POOL_R_COPYING), where);
			if (moves && (r.next == POOL_R_OK || r.next == POOL_R_COPYING))
				CHECK(((r.actions & POOL_RA_RESUME) != 0) == (s != POOL_R_COPYING), where);
			/* A copy-back is paused when the recorder stops being OK. */
			if (r.actions & POOL_RA_ABORT_COPY)
				CHECK(s == POOL_R_COPYING, where);
			if (s == POOL_R_COPYING && (e == POOL_RE_LOST || e == POOL_RE_DISK || e == POOL_RE_WATCHDOG))
				CHECK((r.actions & POOL_RA_ABORT_COPY) != 0 && r.log_result == POOL_RES_PAUSED, where);
			if (r.actions & POOL_RA_HOLD_COPY)
				CHECK(e == POOL_RE_COPY_FAILED, where);
			if (r.actions & POOL_RA_MARK_BROKEN)
				CHECK(s == POOL_R_FAILING_OVER && e == POOL_RE_UP && r.kind == POOL_K_KEEP, where);
			if (r.log_what != POOL_LOG_NONE)
				CHECK((unsigned)r.log_what < POOL_LOG__COUNT && (unsigned)r.log_result < POOL_RES__COUNT, where);

			/* Derived events: never refused; where no spare works for the
			 * recorder they cannot come, and say so. */
			if (rec_is_derived(e))
				CHECK(r.kind != POOL_K_REFUSE, where);
			if (rec_is_derived(e) && !rec_has_spare(s))
				CHECK(r.kind == POOL_K_IGNORE && strstr(r.reason, UNEXPECTED_MARK), where);
			/* When its spare is gone, a served recorder leaves the served states. */
			if (e == POOL_RE_SPARE_GONE && rec_has_spare(s))
				CHECK(moves || r.decision == POOL_D_NEED_SPARE, where);
			if (s == POOL_R_COPYING && (e == POOL_RE_COPY_DONE || e == POOL_RE_COPY_FAILED))
				CHECK(moves && r.next == POOL_R_OK, where);
			/* Timeouts act on a recorder not connected, only. */
			if (e == POOL_RE_TIMEOUT)
				CHECK((r.kind != POOL_K_IGNORE) == (s == POOL_R_OFFLINE || s == POOL_R_LOST), where);
			/* A recorder that was not recording and comes back healthy records. */
			if (e == POOL_RE_UP && (s == POOL_R_OFFLINE || s == POOL_R_LOST || s == POOL_R_DOWN ||
			                        s == POOL_R_QUEUED))
				CHECK(moves && r.next == POOL_R_OK, where);
		}
	}
	for (int s = 0; s < POOL_R__COUNT; s++) {
		if (!target[s])
			fail_msg("recorder state %s is never entered", pool_rec_state_str((enum pool_rec_state)s));
		if (!leaves[s])
			fail_msg("recorder state %s is never left", pool_rec_state_str((enum pool_rec_state)s));
	}
}

static void table_spare(void **st)
{
	bool target[POOL_S__COUNT] = { [POOL_S_OFFLINE] = true };

	for (int si = 0; si < POOL_S__COUNT; si++) {
		for (int ei = 0; ei < POOL_SE__COUNT; ei++) {
			enum pool_spare_state s = (enum pool_spare_state)si;
			enum pool_spare_event e = (enum pool_spare_event)ei;
			struct pool_spare_rule r = pool_spare_rule(s, e);
			bool moves = r.kind == POOL_K_MOVE;
			char where[96];

			snprintf(where, sizeof(where), "spare %s + %s", pool_spare_state_str(s), pool_spare_event_str(e));
			CHECK(r.reason != NULL && r.reason[0] != '\0', where);
			CHECK(strcmp(r.reason, "invalid state or event") != 0, where);
			CHECK(r.kind == POOL_K_MOVE || r.kind == POOL_K_KEEP || r.kind == POOL_K_IGNORE, where);
			CHECK((r.actions & ~POOL_SA_ALL) == 0, where);
			CHECK(moves ? r.next != s : r.next == s, where);
			if (moves)
				target[r.next] = true;
			if (r.kind == POOL_K_IGNORE)
				CHECK(r.actions == 0 && r.notify < 0, where);
			if (r.kind == POOL_K_KEEP)
				CHECK(r.actions != 0, where);

			/* Its recorder hears only from a spare that works for one. */
			if (r.notify >= 0) {
				CHECK(spare_has_rec(s), where);
				CHECK(r.notify < POOL_RE__COUNT && rec_is_derived((enum pool_rec_event)r.notify), where);
				CHECK(r.notify != POOL_RE_HELD, where);
			}
			/* A spare that stops working for its recorder tells it, unless
			 * the recorder itself ordered it (swap, pause of the copy). */
			if (spare_has_rec(s) && moves && !spare_has_rec(r.next))
				CHECK(r.notify >= 0 || e == POOL_SE_SWAP || e == POOL_SE_ABORT_COPY, where);

			CHECK(((r.actions & POOL_SA_ARM) != 0) == (moves && r.next == POOL_S_LOST), where);
			CHECK(((r.actions & POOL_SA_START) != 0) == (moves && r.next == POOL_S_STARTING), where);
			CHECK(((r.actions & POOL_SA_COPY) != 0) == (moves && r.next == POOL_S_COPYING), where);
			CHECK(((r.actions & POOL_SA_STOP_COPY) != 0) == (s == POOL_S_COPYING && e == POOL_SE_ABORT_COPY), where);
			CHECK(((r.actions & POOL_SA_OWE) != 0) == (s == POOL_S_STARTING && e == POOL_SE_STARTED), where);
			CHECK(((r.actions & POOL_SA_PAID) != 0) == (s == POOL_S_COPYING && e == POOL_SE_COPY_DONE), where);
			if (r.actions & POOL_SA_STOP)
				CHECK(moves && (r.next == POOL_S_STOPPING || r.next == POOL_S_FREE), where);

			/* Orders come from the pool, in the one state each is for. */
			if (spare_is_order(e)) {
				bool valid = (e == POOL_SE_ASSIGN && s == POOL_S_FREE) ||
				             (e == POOL_SE_RELEASE && s == POOL_S_SERVING) ||
				             (e == POOL_SE_COPY && s == POOL_S_FREE) ||
				             (e == POOL_SE_ABORT_COPY && s == POOL_S_COPYING) ||
				             (e == POOL_SE_SWAP && s == POOL_S_SERVING);

				CHECK(moves == valid, where);
				if (!valid)
					CHECK(strstr(r.reason, UNEXPECTED_MARK) != NULL, where);
			}
			if (e == POOL_SE_TIMEOUT)
				CHECK(moves == (s == POOL_S_LOST), where);
			if (e == POOL_SE_UP_IDLE || e == POOL_SE_UP_RUNNING || e == POOL_SE_UP_STALE)
				CHECK(moves == (s == POOL_S_OFFLINE || s == POOL_S_LOST), where);
			if (e == POOL_SE_LOST)
				CHECK(moves == (s != POOL_S_OFFLINE && s != POOL_S_LOST), where);
			/* A spare records for a recorder it does not serve: stop it. */
			if (e == POOL_SE_UP_STALE && moves)
				CHECK((r.actions & POOL_SA_STOP) != 0, where);
		}
	}
	for (int s = 0; s < POOL_S__COUNT; s++)
		if (!target[s])
			fail_msg("spare state %s is never entered", pool_spare_state_str((enum pool_spare_state)s));
}

static void table_out_of_range(void **st)
{
	struct pool_rec_rule r = pool_rec_rule(POOL_R__COUNT, POOL_RE_UP);
	struct pool_spare_rule sr = pool_spare_rule(POOL_S_FREE, POOL_SE__COUNT);

	assert_int_equal(r.kind, POOL_K_IGNORE);
	assert_int_equal(r.actions, 0);
	assert_string_equal(r.reason, "invalid state or event");
	r = pool_rec_rule(POOL_R_OK, (enum pool_rec_event)-1);
	assert_int_equal(r.kind, POOL_K_IGNORE);
	assert_int_equal(r.next, POOL_R_OK);
	assert_int_equal(sr.kind, POOL_K_IGNORE);
	assert_int_equal(sr.next, POOL_S_FREE);
	assert_int_equal(sr.notify, -1);
	sr = pool_spare_rule((enum pool_spare_state)99, POOL_SE_LOST);
	assert_int_equal(sr.kind, POOL_K_IGNORE);
}

typedef const char *(*namer)(int);

static void distinct_names(const char *what, namer f, int n)
{
	for (int i = 0; i < n; i++) {
		if (strcmp(f(i), "?") == 0)
			fail_msg("%s %d has no name", what, i);
		for (int j = 0; j < i; j++)
			if (strcmp(f(i), f(j)) == 0)
				fail_msg("%s %d and %d are both '%s'", what, i, j, f(i));
	}
	if (strcmp(f(n), "?") != 0 || strcmp(f(-1), "?") != 0)
		fail_msg("%s out of range is not '?'", what);
}

#define NAMER(fn, type) \
	static const char *fn##_i(int v) { return fn((type)v); }
NAMER(pool_rec_state_str, enum pool_rec_state)
NAMER(pool_spare_state_str, enum pool_spare_state)
NAMER(pool_link_str, enum pool_link)
NAMER(pool_trigger_str, enum pool_trigger)
NAMER(pool_event_str, enum pool_event_type)
NAMER(pool_rec_event_str, enum pool_rec_event)
NAMER(pool_spare_event_str, enum pool_spare_event)
NAMER(pool_action_str, enum pool_action_type)
NAMER(pool_log_what_str, enum pool_log_what)
NAMER(pool_log_result_str, enum pool_log_result)
NAMER(pool_status_str, enum pool_status)
NAMER(pool_role_str, enum pool_role)
NAMER(pool_failback_str, enum pool_failback)
NAMER(pool_after_str, enum pool_after)
NAMER(pool_kind_str, enum pool_kind)
NAMER(pool_decision_str, enum pool_decision)

static void strings(void **st)
{
	distinct_names("recorder state", pool_rec_state_str_i, POOL_R__COUNT);
	distinct_names("spare state", pool_spare_state_str_i, POOL_S__COUNT);
	distinct_names("link", pool_link_str_i, POOL_LINK__COUNT);
	distinct_names("trigger", pool_trigger_str_i, POOL_T__COUNT);
	distinct_names("event", pool_event_str_i, POOL_E__COUNT);
	distinct_names("recorder event", pool_rec_event_str_i, POOL_RE__COUNT);
	distinct_names("spare event", pool_spare_event_str_i, POOL_SE__COUNT);
	distinct_names("action", pool_action_str_i, POOL_A__COUNT);
	distinct_names("log what", pool_log_what_str_i, POOL_LOG__COUNT);
	distinct_names("log result", pool_log_result_str_i, POOL_RES__COUNT);
	distinct_names("status", pool_status_str_i, POOL_STATUS__COUNT);
	distinct_names("role", pool_role_str_i, POOL_ROLE__COUNT);
	distinct_names("failback", pool_failback_str_i, POOL_FAILBACK__COUNT);
	distinct_names("after_failure", pool_after_str_i, POOL_AFTER__COUNT);
	distinct_names("kind", pool_kind_str_i, POOL_K__COUNT);
	distinct_names("decision", pool_decision_str_i, POOL_D__COUNT);
	for (unsigned a = 1; a <= POOL_RA_ALL; a <<= 1)
		for (unsigned b = 1; b < a; b <<= 1)
			assert_string_not_equal(pool_rec_act_str((enum pool_rec_act)a), pool_rec_act_str((enum pool_rec_act)b));
	for (unsigned a = 1; a <= POOL_RA_ALL; a <<= 1)
		assert_string_not_equal(pool_rec_act_str((enum pool_rec_act)a), "?");
	for (unsigned a = 1; a <= POOL_SA_ALL; a <<= 1) {
		assert_string_not_equal(pool_spare_act_str((enum pool_spare_act)a), "?");
		for (unsigned b = 1; b < a; b <<= 1)
			assert_string_not_equal(pool_spare_act_str((enum pool_spare_act)a),
			                        pool_spare_act_str((enum pool_spare_act)b));
	}
	assert_string_equal(pool_rec_act_str((enum pool_rec_act)0), "?");
	assert_string_equal(pool_rec_act_str((enum pool_rec_act)(POOL_RA_ARM | POOL_RA_RESUME)), "?");
	assert_string_equal(pool_rec_act_str((enum pool_rec_act)(POOL_RA_ALL + 1)), "?");
	assert_string_equal(pool_spare_act_str((enum pool_spare_act)(POOL_SA_ALL + 1)), "?");

	/* The names `pool status` shows and the config values. */
	assert_string_equal(pool_rec_state_str(POOL_R_FAILED_OVER), "FAILED_OVER");
	assert_string_equal(pool_spare_state_str(POOL_S_SERVING), "SERVING");
	for (int i = 0; i < POOL_ROLE__COUNT; i++)
		assert_int_equal(pool_role_parse(pool_role_str((enum pool_role)i)), i);
	for (int i = 0; i < POOL_FAILBACK__COUNT; i++)
		assert_int_equal(pool_failback_parse(pool_failback_str((enum pool_failback)i)), i);
	for (int i = 0; i < POOL_AFTER__COUNT; i++)
		assert_int_equal(pool_after_parse(pool_after_str((enum pool_after)i)), i);
	assert_int_equal(pool_role_parse("root"), -1);
	assert_int_equal(pool_role_parse(NULL), -1);
	assert_int_equal(pool_failback_parse("Auto"), -1);
	assert_int_equal(pool_after_parse(""), -1);
	assert_string_equal(pool_failback_str(POOL_FAILBACK_MANUAL), "manual");
	assert_string_equal(pool_after_str(POOL_AFTER_SWAP), "swap");
}

/* ---- helpers for whole pools ------------------------------------------- */

static struct pool *new_pool(enum pool_failback fb, enum pool_after af)
{
	struct pool *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	assert_true(pool_init(p, fb, af));
	return p;
}

static const char *rname(const struct pool *p, int r)
{
	return r >= 0 && r < p->n_rec ? p->rec[r].name : "-";
}

static const char *sname(const struct pool *p, int s)
{
	return s >= 0 && s < p->n_spare ? p->spare[s].name : "-";
}

/* "log(failover started rec1 sp1 lost) notify(rec1 LOST->FAILING_OVER) ..." */
static void fmt_actions(const struct pool *p, const struct pool_result *res, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int i = 0; i < res->n_actions && n < len; i++) {
		const struct pool_action *a = &res->actions[i];
		const char *sep = i ? " " : "";
		const char *name = pool_action_str(a->type);

		switch (a->type) {
		case POOL_A_ARM_RECORDER: case POOL_A_MARK_BROKEN: case POOL_A_RESUME:
			n += (size_t)snprintf(buf + n, len - n, "%s%s(%s)", sep, name, rname(p, a->rec));
			break;
		case POOL_A_ARM_SPARE:
			n += (size_t)snprintf(buf + n, len - n, "%s%s(%s)", sep, name, sname(p, a->spare));
			break;
		case POOL_A_START_SPARE: case POOL_A_STOP_SPARE: case POOL_A_START_COPY: case POOL_A_STOP_COPY:
			n += (size_t)snprintf(buf + n, len - n, "%s%s(%s,%s)", sep, name, sname(p, a->spare), rname(p, a->rec));
			break;
		case POOL_A_SWAP:
			n += (size_t)snprintf(buf + n, len - n, "%s%s(%s,%s)", sep, name, rname(p, a->rec), sname(p, a->spare));
			break;
		case POOL_A_LOG:
			n += (size_t)snprintf(buf + n, len - n, "%slog(%s %s %s %s %s)", sep, pool_log_what_str(a->what),
			                      pool_log_result_str(a->result), rname(p, a->rec), sname(p, a->spare),
			                      pool_trigger_str(a->trigger));
			break;
		case POOL_A_NOTIFY:
			n += (size_t)snprintf(buf + n, len - n, "%snotify(%s %s->%s)", sep, rname(p, a->rec),
			                      pool_rec_state_str(a->from), pool_rec_state_str(a->to));
			break;
		default:
			n += (size_t)snprintf(buf + n, len - n, "%s?%d", sep, (int)a->type);
			break;
		}
	}
}

static bool group_serves(const struct pool_recorder *rec, const struct pool_spare *sp)
{
	return strcmp(sp->group, rec->group) == 0 || (rec->secondary[0] && strcmp(sp->group, rec->secondary) == 0);
}

/* The pool's invariants (docs/pool.md, "Invariants"): NULL or what is broken. */
static const char *broken_invariant(const struct pool *p, char *buf, size_t len)
{
#define BAD(...) do { snprintf(buf, len, __VA_ARGS__); return buf; } while (0)
	int in_queue[POOL_MAX_RECORDERS] = { 0 };

	if (p->n_rec < 0 || p->n_rec > POOL_MAX_RECORDERS || p->n_spare < 0 || p->n_spare > POOL_MAX_SPARES)
		BAD("counts out of range");
	for (int i = 0; i < p->n_queue; i++) {
		int r = p->queue[i];

		if (r < 0 || r >= p->n_rec)
			BAD("queue[%d] = %d", i, r);
		if (in_queue[r]++)
			BAD("%s twice in the queue", rname(p, r));
		if (i && p->rec[p->queue[i - 1]].seq > p->rec[r].seq)
			BAD("queue not in order at %d", i);
	}
	for (int r = 0; r < p->n_rec; r++) {
		const struct pool_recorder *rec = &p->rec[r];
		enum pool_rec_state s = rec->state;
		enum pool_link l = rec->link;
		bool bad_link = l == POOL_LINK_DOWN || l == POOL_LINK_DISK || l == POOL_LINK_WATCHDOG;

		if ((unsigned)s >= POOL_R__COUNT || (unsigned)l >= POOL_LINK__COUNT)
			BAD("%s: state or link out of range", rec->name);
		if ((s == POOL_R_QUEUED) != (in_queue[r] == 1))
			BAD("%s is %s, %s the queue", rec->name, pool_rec_state_str(s), in_queue[r] ? "in" : "not in");
		if (!rec->group[0])
			BAD("%s has no group", rec->name);
		if (rec_has_spare(s)) {
			int sp = rec->spare;
			enum pool_spare_state ss;
			bool ok;

			if (sp < 0 || sp >= p->n_spare || p->spare[sp].rec != r)
				BAD("%s is %s without a spare linked back", rec->name, pool_rec_state_str(s));
			ss = p->spare[sp].state;
			switch (s) {
			case POOL_R_FAILING_OVER: ok = ss == POOL_S_STARTING; break;
			case POOL_R_FAILED_OVER: case POOL_R_BACK: ok = ss == POOL_S_SERVING || ss == POOL_S_LOST; break;
			case POOL_R_FAILING_BACK: ok = ss == POOL_S_STOPPING; break;
			default: ok = ss == POOL_S_COPYING; break;
			}
			if (!ok)
				BAD("%s is %s but its spare %s is %s", rec->name, pool_rec_state_str(s), p->spare[sp].name,
				    pool_spare_state_str(ss));
		} else if (rec->spare != -1) {
			BAD("%s is %s with a spare", rec->name, pool_rec_state_str(s));
		}
		if (s == POOL_R_DOWN && rec->failover)
			BAD("%s is DOWN with failover enabled", rec->name);
		if ((s == POOL_R_OK || s == POOL_R_COPYING) && l != POOL_LINK_UP)
			BAD("%s is %s with link %s", rec->name, pool_rec_state_str(s), pool_link_str(l));
		if ((s == POOL_R_OFFLINE || s == POOL_R_LOST) && l != POOL_LINK_DOWN)
			BAD("%s is %s with link %s", rec->name, pool_rec_state_str(s), pool_link_str(l));
		if ((s == POOL_R_DOWN || s == POOL_R_QUEUED || s == POOL_R_FAILED_OVER) && !bad_link)
			BAD("%s is %s with link %s", rec->name, pool_rec_state_str(s), pool_link_str(l));
		if (s == POOL_R_BACK && l != POOL_LINK_UP && l != POOL_LINK_HELD)
			BAD("%s is BACK with link %s", rec->name, pool_link_str(l));
		for (int o = 0; o < r; o++)
			if (strcmp(p->rec[o].name, rec->name) == 0)
				BAD("two recorders named %s", rec->name);
	}
	for (int s = 0; s < p->n_spare; s++) {
		const struct pool_spare *sp = &p->spare[s];

		if ((unsigned)sp->state >= POOL_S__COUNT)
			BAD("%s: state out of range", sp->name);
		if (!sp->group[0])
			BAD("spare %s has no group", sp->name);
		if (spare_has_rec(sp->state)) {
			if (sp->rec < 0 || sp->rec >= p->n_rec || p->rec[sp->rec].spare != s)
				BAD("spare %s is %s without a recorder linked back", sp->name, pool_spare_state_str(sp->state));
		} else if (sp->rec != -1) {
			BAD("spare %s is %s with a recorder", sp->name, pool_spare_state_str(sp->state));
		}
		if (pool_find_recorder(p, sp->name) >= 0 || pool_find_spare(p, sp->name) != s)
			BAD("spare name %s is not unique", sp->name);
		if (sp->state != POOL_S_FREE)
			continue;
		/* Dispatched: a free spare serves no one in the queue, and owes
		 * no copy-back it could run now. */
		for (int i = 0; i < p->n_queue; i++)
			if (group_serves(&p->rec[p->queue[i]], sp))
				BAD("spare %s is FREE while %s waits in the queue", sp->name, rname(p, p->queue[i]));
		for (int r = 0; r < p->n_rec; r++)
			if (pool_owes(p, s, r) && p->rec[r].state == POOL_R_OK && !p->rec[r].copy_held)
				BAD("spare %s is FREE and owes %s a copy-back", sp->name, rname(p, r));
	}
	return NULL;
#undef BAD
}

/* The result makes sense for the pool after the step. */
static const char *broken_result(const struct pool *p, const struct pool_result *res, char *buf, size_t len)
{
#define BAD(...) do { snprintf(buf, len, __VA_ARGS__); return buf; } while (0)
	if ((unsigned)res->status >= POOL_STATUS__COUNT)
		BAD("status out of range");
	if (res->n_actions < 0 || res->n_actions > POOL_MAX_ACTIONS)
		BAD("n_actions %d", res->n_actions);
	if (!res->reason[0])
		BAD("no reason");
	if (strstr(res->reason, UNEXPECTED_MARK) || strstr(res->reason, "did not settle") ||
	    strstr(res->reason, "too many actions") || strstr(res->reason, "no decision"))
		BAD("the reason reports an inconsistency");
	if ((res->status == POOL_ERROR || res->status == POOL_REFUSED || res->status == POOL_IGNORED) &&
	    res->n_actions)
		BAD("%s with actions", pool_status_str(res->status));
	for (int i = 0; i < res->n_actions; i++) {
		const struct pool_action *a = &res->actions[i];
		bool need_r = a->type != POOL_A_ARM_SPARE && a->type != POOL_A_STOP_SPARE;
		bool need_s = a->type == POOL_A_ARM_SPARE || a->type == POOL_A_START_SPARE ||
		              a->type == POOL_A_STOP_SPARE || a->type == POOL_A_START_COPY ||
		              a->type == POOL_A_STOP_COPY || a->type == POOL_A_SWAP;

		if ((unsigned)a->type >= POOL_A__COUNT)
			BAD("action %d: type", i);
		if (a->rec < -1 || a->rec >= p->n_rec || a->spare < -1 || a->spare >= p->n_spare)
			BAD("action %d (%s): index out of range", i, pool_action_str(a->type));
		if ((need_r && a->rec < 0) || (need_s && a->spare < 0))
			BAD("action %d (%s): index missing", i, pool_action_str(a->type));
		if (a->type == POOL_A_LOG && (a->what == POOL_LOG_NONE || (unsigned)a->what >= POOL_LOG__COUNT ||
		                              (unsigned)a->result >= POOL_RES__COUNT))
			BAD("action %d: log entry", i);
		if (a->type == POOL_A_NOTIFY && (a->from == a->to || (unsigned)a->to >= POOL_R__COUNT))
			BAD("action %d: notify %d -> %d", i, a->from, a->to);
	}
	return NULL;
#undef BAD
}

/* Copies and compares only what is in use: a pool is ~300 KiB. */
static void copy_pool(struct pool *dst, const struct pool *src)
{
	dst->failback = src->failback;
	dst->after = src->after;
	dst->n_rec = src->n_rec;
	dst->n_spare = src->n_spare;
	dst->n_queue = src->n_queue;
	dst->seq = src->seq;
	memcpy(dst->rec, src->rec, (size_t)src->n_rec * sizeof(src->rec[0]));
	memcpy(dst->spare, src->spare, (size_t)src->n_spare * sizeof(src->spare[0]));
	memcpy(dst->queue, src->queue, (size_t)src->n_queue * sizeof(src->queue[0]));
}

static bool same_pool(const struct pool *a, const struct pool *b)
{
	return a->failback == b->failback && a->after == b->after && a->n_rec == b->n_rec &&
	       a->n_spare == b->n_spare && a->n_queue == b->n_queue && a->seq == b->seq &&
	       memcmp(a->rec, b->rec, (size_t)a->n_rec * sizeof(a->rec[0])) == 0 &&
	       memcmp(a->spare, b->spare, (size_t)a->n_spare * sizeof(a->spare[0])) == 0 &&
	       memcmp(a->queue, b->queue, (size_t)a->n_queue * sizeof(a->queue[0])) == 0;
}

/* ---- scenario steps ---------------------------------------------------- */

static struct pool_result last;
static char last_acts[4096];
static struct pool *before;

static struct pool_event ev_rec(enum pool_event_type t, int r)
{
	struct pool_event e = { t, r, -1, POOL_ROLE_ADMIN };

	return e;
}

static struct pool_event ev_cmd(enum pool_event_type t, int r, enum pool_role role)
{
	struct pool_event e = { t, r, -1, role };

	return e;
}

static struct pool_event ev_spare(enum pool_event_type t, int s)
{
	struct pool_event e = { t, -1, s, POOL_ROLE_ADMIN };

	return e;
}

static struct pool_event ev_spare_up(int s, int runs)
{
	struct pool_event e = { POOL_E_SPARE_UP, runs, s, POOL_ROLE_ADMIN };

	return e;
}

/* One step: the status and (unless NULL) the exact actions, in order. */
static void step_at(struct pool *p, struct pool_event ev, enum pool_status status, const char *acts, int line)
{
	char buf[256];
	const char *bad;

	if (!before)
		before = calloc(1, sizeof(*before));
	assert_non_null(before);
	copy_pool(before, p);
	pool_step(p, &ev, &last);
	fmt_actions(p, &last, last_acts, sizeof(last_acts));
	if (last.status != status)
		fail_msg("line %d: %s: status %s, expected %s (%s)", line, pool_event_str(ev.type),
		         pool_status_str(last.status), pool_status_str(status), last.reason);
	if (acts && strcmp(acts, last_acts) != 0)
		fail_msg("line %d: %s: actions\n  got:      %s\n  expected: %s\n  (%s)", line, pool_event_str(ev.type),
		         last_acts, acts, last.reason);
	if ((bad = broken_result(p, &last, buf, sizeof(buf))))
		fail_msg("line %d: %s: %s", line, pool_event_str(ev.type), bad);
	if ((bad = broken_invariant(p, buf, sizeof(buf))))
		fail_msg("line %d: after %s: %s (%s)", line, pool_event_str(ev.type), bad, last.reason);
	if ((status == POOL_REFUSED || status == POOL_ERROR) && !same_pool(before, p))
		fail_msg("line %d: %s %s but changed the pool", line, pool_event_str(ev.type), pool_status_str(status));
}

#define STEP(p, ev, status, acts) step_at(p, ev, status, acts, __LINE__)
#define REASON_HAS(text) \
	do { \
		if (!strstr(last.reason, text)) \
			fail_msg("line %d: reason '%s' lacks '%s'", __LINE__, last.reason, text); \
	} while (0)

#define R1 0
#define R2 1
#define R3 2
#define SP1 0
#define SP2 1

static void expect_states(const struct pool *p, int r, enum pool_rec_state rs, int s, enum pool_spare_state ss,
                          int line)
{
	if (r >= 0 && p->rec[r].state != rs)
		fail_msg("line %d: recorder %s is %s, expected %s", line, p->rec[r].name,
		         pool_rec_state_str(p->rec[r].state), pool_rec_state_str(rs));
	if (s >= 0 && p->spare[s].state != ss)
		fail_msg("line %d: spare %s is %s, expected %s", line, p->spare[s].name,
		         pool_spare_state_str(p->spare[s].state), pool_spare_state_str(ss));
}

#define EXPECT(p, r, rs, s, ss) expect_states(p, r, rs, s, ss, __LINE__)

/* Issue 6's lab: rec1, rec2, rec3 in group north (secondary south), spare
 * sp1 of north, sp2 of south; everyone connected and healthy. */
static struct pool *lab(enum pool_failback fb, enum pool_after af)
{
	struct pool *p = new_pool(fb, af);
	const char *why = NULL;
	char want[128];

	assert_int_equal(pool_add_recorder(p, "rec1", "north", "south", true, &why), R1);
	assert_int_equal(pool_add_recorder(p, "rec2", "north", "south", true, &why), R2);
	assert_int_equal(pool_add_recorder(p, "rec3", "north", "south", true, &why), R3);
	assert_int_equal(pool_add_spare(p, "sp1", "north", &why), SP1);
	assert_int_equal(pool_add_spare(p, "sp2", "south", &why), SP2);
	for (int r = 0; r < 3; r++) {
		snprintf(want, sizeof(want), "resume(rec%d) notify(rec%d OFFLINE->OK)", r + 1, r + 1);
		STEP(p, ev_rec(POOL_E_REC_UP, r), POOL_OK, want);
	}
	STEP(p, ev_spare_up(SP1, POOL_RUNS_NOTHING), POOL_OK, "");
	STEP(p, ev_spare_up(SP2, POOL_RUNS_NOTHING), POOL_OK, "");
	EXPECT(p, R1, POOL_R_OK, SP1, POOL_S_FREE);
	return p;
}

/* rec1 dies: lost, detect timeout, sp1 starts for it. */
static void kill_rec1(struct pool *p)
{
	STEP(p, ev_rec(POOL_E_REC_LOST, R1), POOL_OK, "arm-recorder(rec1) notify(rec1 OK->LOST)");
	STEP(p, ev_rec(POOL_E_REC_TIMEOUT, R1), POOL_OK,
	     "log(failover started rec1 sp1 lost) mark-broken(rec1) notify(rec1 LOST->FAILING_OVER) start-spare(sp1,rec1)");
	STEP(p, ev_spare(POOL_E_SPARE_STARTED, SP1), POOL_OK,
	     "log(failover done rec1 sp1 lost) notify(rec1 FAILING_OVER->FAILED_OVER)");
}

/* ---- 2. scenarios: issue 6's "Done when" and the corners --------------- */

#define AUTO POOL_FAILBACK_AUTO
#define MANUAL POOL_FAILBACK_MANUAL
#define FAILBACK POOL_AFTER_FAILBACK
#define SWAP POOL_AFTER_SWAP

/* Kill a recorder: a spare of its group records in its place. */
static void scenario_kill_recorder(void **st)
{
	struct pool *p = lab(AUTO, FAILBACK);

	STEP(p, ev_rec(POOL_E_REC_LOST, R1), POOL_OK, "arm-recorder(rec1) notify(rec1 OK->LOST)");
	assert_string_equal(last.reason, "recorder rec1: OK -> LOST (connection lost: waiting for the detect timeout)");
	assert_int_equal(pool_served_by(p, R1), -1);
	STEP(p, ev_rec(POOL_E_REC_TIMEOUT, R1), POOL_OK,
	     "log(failover started rec1 sp1 lost) mark-broken(rec1) notify(rec1 LOST->FAILING_OVER) start-spare(sp1,rec1)");
	assert_string_equal(last.reason, "recorder rec1: LOST -> FAILING_OVER (connection lost past the detect timeout: "
	                                 "spare sp1 of group north); spare sp1: FREE -> STARTING (starting in the "
	                                 "recorder's place)");
	assert_int_equal(last.actions[3].trigger, POOL_T_LOST);
	assert_true(last.changed);
	assert_int_equal(pool_served_by(p, R1), SP1);
	STEP(p, ev_spare(POOL_E_SPARE_STARTED, SP1), POOL_OK,
	     "log(failover done rec1 sp1 lost) notify(rec1 FAILING_OVER->FAILED_OVER)");
	EXPECT(p, R1, POOL_R_FAILED_OVER, SP1, POOL_S_SERVING);
	assert_int_equal(pool_served_by(p, R1), SP1);
	assert_int_equal(p->spare[SP1].rec, R1);
	assert_true(pool_owes(p, SP1, R1));
	assert_int_equal(p->rec[R1].trigger, POOL_T_LOST);

	/* Late reports and stale timers change nothing. */
	STEP(p, ev_rec(POOL_E_REC_TIMEOUT, R1), POOL_IGNORED, "");
	STEP(p, ev_rec(POOL_E_REC_LOST, R1), POOL_IGNORED, "");
	STEP(p, ev_spare(POOL_E_SPARE_STARTED, SP1), POOL_IGNORED, "");
	STEP(p, ev_spare(POOL_E_COPY_DONE, SP2), POOL_IGNORED, "");
	STEP(p, ev_spare(POOL_E_SPARE_TIMEOUT, SP1), POOL_IGNORED, "");
	free(p);
}

/* A second failure of the group takes the spare left (of its secondary
 * group); a third waits in the queue and starts when a spare frees, after
 * failback and copy-back. */
static void scenario_second_and_third(void **st)
{
	struct pool *p = lab(AUTO, FAILBACK);

	kill_rec1(p);
	STEP(p, ev_rec(POOL_E_REC_LOST, R2), POOL_OK, "arm-recorder(rec2) notify(rec2 OK->LOST)");
	STEP(p, ev_rec(POOL_E_REC_TIMEOUT, R2), POOL_OK,
	     "log(failover started rec2 sp2 lost) mark-broken(rec2) notify(rec2 LOST->FAILING_OVER) start-spare(sp2,rec2)");
	REASON_HAS("spare sp2 of group south");
	STEP(p, ev_spare(POOL_E_SPARE_STARTED, SP2), POOL_OK,
	     "log(failover done rec2 sp2 lost) notify(rec2 FAILING_OVER->FAILED_OVER)");
	STEP(p, ev_rec(POOL_E_REC_LOST, R3), POOL_OK, "arm-recorder(rec3) notify(rec3 OK->LOST)");
	STEP(p, ev_rec(POOL_E_REC_TIMEOUT, R3), POOL_OK, "log(failover queued rec3 - lost) notify(rec3 LOST->QUEUED)");
	REASON_HAS("no free spare in group north or south: queued at position 1");
	assert_int_equal(p->n_queue, 1);
	assert_int_equal(p->queue[0], R3);

	STEP(p, ev_rec(POOL_E_REC_UP, R1), POOL_OK,
	     "log(failback started rec1 sp1 lost) mark-broken(rec1) notify(rec1 FAILED_OVER->FAILING_BACK) "
	     "stop-spare(sp1,rec1)");
	STEP(p, ev_spare(POOL_E_SPARE_STOPPED, SP1), POOL_OK,
	     "log(failback done rec1 sp1 lost) resume(rec1) notify(rec1 FAILING_BACK->COPYING) start-copy(sp1,rec1) "
	     "log(copy started rec1 sp1 lost)");
	EXPECT(p, R3, POOL_R_QUEUED, SP1, POOL_S_COPYING);
	STEP(p, ev_spare(POOL_E_COPY_DONE, SP1), POOL_OK,
	     "log(copy done rec1 sp1 lost) notify(rec1 COPYING->OK) log(failover started rec3 sp1 lost) "
	     "mark-broken(rec3) notify(rec3 QUEUED->FAILING_OVER) start-spare(sp1,rec3)");
	REASON_HAS("a spare is free for the queue: spare sp1 of group north");
	assert_false(pool_owes(p, SP1, R1));
	assert_int_equal(p->n_queue, 0);
	STEP(p, ev_spare(POOL_E_SPARE_STARTED, SP1), POOL_OK,
	     "log(failover done rec3 sp1 lost) notify(rec3 FAILING_OVER->FAILED_OVER)");
	EXPECT(p, R1, POOL_R_OK, SP1, POOL_S_SERVING);
	free(p);
}

/* The disk failure report and the watchdog report each trigger a failover;
 * repaired disks count as a return. */
static void scenario_disk_and_watchdog(void **st)
{
	struct pool *p = lab(AUTO, FAILBACK);
	const char *why;

	STEP(p, ev_rec(POOL_E_REC_DISK, R1), POOL_OK,
	     "log(failover started rec1 sp1 disk) mark-broken(rec1) notify(rec1 OK->FAILING_OVER) start-spare(sp1,rec1)");
	REASON_HAS("all its recording disks failed: spare sp1 of group north");
	assert_int_equal(p->rec[R1].link, POOL_LINK_DISK);
	STEP(p, ev_rec(POOL_E_REC_WATCHDOG, R2), POOL_OK,
	     "log(failover started rec2 sp2 watchdog) mark-broken(rec2) notify(rec2 OK->FAILING_OVER) "
	     "start-spare(sp2,rec2)");
	REASON_HAS("its recording service cannot start");
	STEP(p, ev_spare(POOL_E_SPARE_STARTED, SP1), POOL_OK, NULL);
	EXPECT(p, R1, POOL_R_FAILED_OVER, SP1, POOL_S_SERVING);
	/* Still connected, disks replaced: the report turns healthy. */
	STEP(p, ev_rec(POOL_E_REC_UP, R1), POOL_OK,
	     "log(failback started rec1 sp1 disk) mark-broken(rec1) notify(rec1 FAILED_OVER->FAILING_BACK) "
	     "stop-spare(sp1,rec1)");

	/* A hello that reports the failure: failed over at once. */
	struct pool *q = new_pool(AUTO, FAILBACK);

	assert_int_equal(pool_add_recorder(q, "rec9", "north", "", true, &why), 0);
	assert_int_equal(pool_add_spare(q, "s9", "north", &why), 0);
	STEP(q, ev_spare_up(0, POOL_RUNS_NOTHING), POOL_OK, "");
	STEP(q, ev_rec(POOL_E_REC_WATCHDOG, 0), POOL_OK,
	     "log(failover started rec9 s9 watchdog) mark-broken(rec9) notify(rec9 OFFLINE->FAILING_OVER) "
	     "start-spare(s9,rec9)");
	free(q);
	free(p);
}

/* Manual failover: refused for viewer, allowed for operator; refused with
 * no free spare or failover disabled; a healthy recorder failed over by
 * hand waits for a failback command, even with failback = auto. */
static void scenario_manual_and_roles(void **st)
{
	struct pool *p = lab(AUTO, FAILBACK);

	STEP(p, ev_cmd(POOL_E_FAILOVER, R1, POOL_ROLE_VIEWER), POOL_REFUSED, "");
	assert_string_equal(last.reason, "recorder rec1: failover refused: role viewer may not (admin or operator)");
	STEP(p, ev_cmd(POOL_E_FAILOVER, R1, POOL_ROLE_OPERATOR), POOL_OK,
	     "log(failover started rec1 sp1 manual) mark-broken(rec1) notify(rec1 OK->FAILING_OVER) start-spare(sp1,rec1)");
	REASON_HAS("failover by command: spare sp1 of group north");
	assert_int_equal(p->rec[R1].link, POOL_LINK_HELD);
	STEP(p, ev_cmd(POOL_E_FAILOVER, R1, POOL_ROLE_ADMIN), POOL_REFUSED, "");
	REASON_HAS("a failover is already under way");
	STEP(p, ev_cmd(POOL_E_FAILOVER, R2, POOL_ROLE_ADMIN), POOL_OK,
	     "log(failover started rec2 sp2 manual) mark-broken(rec2) notify(rec2 OK->FAILING_OVER) start-spare(sp2,rec2)");
	STEP(p, ev_cmd(POOL_E_FAILOVER, R3, POOL_ROLE_OPERATOR), POOL_REFUSED, "");
	REASON_HAS("no free spare in group north or south");
	EXPECT(p, R3, POOL_R_OK, -1, 0);

	STEP(p, ev_cmd(POOL_E_DISABLE, R3, POOL_ROLE_OPERATOR), POOL_REFUSED, "");
	REASON_HAS("admin only");
	STEP(p, ev_cmd(POOL_E_DISABLE, R3, POOL_ROLE_ADMIN), POOL_OK, "");
	assert_false(p->rec[R3].failover);
	STEP(p, ev_cmd(POOL_E_FAILOVER, R3, POOL_ROLE_ADMIN), POOL_REFUSED, "");
	REASON_HAS("failover is disabled for this recorder");
	STEP(p, ev_cmd(POOL_E_ENABLE, R3, POOL_ROLE_ADMIN), POOL_OK, "");
	assert_true(p->rec[R3].failover);

	STEP(p, ev_spare(POOL_E_SPARE_STARTED, SP1), POOL_OK,
	     "log(failover done rec1 sp1 manual) notify(rec1 FAILING_OVER->FAILED_OVER) notify(rec1 FAILED_OVER->BACK)");
	REASON_HAS("stood down by a manual failover: failback by command");
	STEP(p, ev_cmd(POOL_E_FAILBACK, R1, POOL_ROLE_VIEWER), POOL_REFUSED, "");
	STEP(p, ev_cmd(POOL_E_FAILBACK, R1, POOL_ROLE_OPERATOR), POOL_OK,
	     "log(failback started rec1 sp1 manual) notify(rec1 BACK->FAILING_BACK) stop-spare(sp1,rec1)");
	STEP(p, ev_cmd(POOL_E_COPY, R1, POOL_ROLE_VIEWER), POOL_REFUSED, "");
	STEP(p, ev_cmd(POOL_E_COPY, R1, POOL_ROLE_OPERATOR), POOL_REFUSED, "");
	REASON_HAS("failback under way");
	STEP(p, ev_cmd(POOL_E_FAILBACK, R1, POOL_ROLE_OPERATOR), POOL_IGNORED, "");
	STEP(p, ev_spare(POOL_E_SPARE_STOPPED, SP1), POOL_OK,
	     "log(failback done rec1 sp1 manual) resume(rec1) notify(rec1 FAILING_BACK->COPYING) start-copy(sp1,rec1) "
	     "log(copy started rec1 sp1 manual)");
	assert_int_equal(p->rec[R1].link, POOL_LINK_UP);

	free(p);

	/* A manual failover of a lost recorder does not wait for the timeout,
	 * and its return is a return like any other. */
	p = lab(AUTO, FAILBACK);
	STEP(p, ev_rec(POOL_E_REC_LOST, R1), POOL_OK, NULL);
	STEP(p, ev_cmd(POOL_E_FAILOVER, R1, POOL_ROLE_OPERATOR), POOL_OK,
	     "log(failover started rec1 sp1 manual) mark-broken(rec1) notify(rec1 LOST->FAILING_OVER) start-spare(sp1,rec1)");
	assert_int_equal(p->rec[R1].link, POOL_LINK_DOWN);
	STEP(p, ev_spare(POOL_E_SPARE_STARTED, SP1), POOL_OK,
	     "log(failover done rec1 sp1 manual) notify(rec1 FAILING_OVER->FAILED_OVER)");
	STEP(p, ev_rec(POOL_E_REC_UP, R1), POOL_OK,
	     "log(failback started rec1 sp1 manual) mark-broken(rec1) notify(rec1 FAILED_OVER->FAILING_BACK) "
	     "stop-spare(sp1,rec1)");
	free(p);
}

/* Failback: the spare stops, the recorder resumes, the recordings come
 * home, the spare is free. */
static void scenario_failback_sequence(void **st)
{
	struct pool *p = lab(AUTO, FAILBACK);

	kill_rec1(p);
	STEP(p, ev_rec(POOL_E_REC_UP, R1), POOL_OK,
	     "log(failback started rec1 sp1 lost) mark-broken(rec1) notify(rec1 FAILED_OVER->FAILING_BACK) "
	     "stop-spare(sp1,rec1)");
	EXPECT(p, R1, POOL_R_FAILING_BACK, SP1, POOL_S_STOPPING);
	STEP(p, ev_rec(POOL_E_REC_UP, R1), POOL_IGNORED, "");
	STEP(p, ev_spare(POOL_E_SPARE_STOPPED, SP1), POOL_OK,
	     "log(failback done rec1 sp1 lost) resume(rec1) notify(rec1 FAILING_BACK->COPYING) start-copy(sp1,rec1) "
	     "log(copy started rec1 sp1 lost)");
	EXPECT(p, R1, POOL_R_COPYING, SP1, POOL_S_COPYING);
	assert_int_equal(pool_served_by(p, R1), -1);
	assert_int_equal(p->spare[SP1].rec, R1);
	STEP(p, ev_cmd(POOL_E_COPY, R1, POOL_ROLE_OPERATOR), POOL_IGNORED, "");
	STEP(p, ev_spare(POOL_E_COPY_DONE, SP1), POOL_OK, "log(copy done rec1 sp1 lost) notify(rec1 COPYING->OK)");
	EXPECT(p, R1, POOL_R_OK, SP1, POOL_S_FREE);
	assert_false(pool_owes(p, SP1, R1));
	assert_int_equal(p->spare[SP1].rec, -1);
	assert_int_equal(p->rec[R1].spare, -1);

	/* failback = manual: it waits for the command. */
	struct pool *q = lab(MANUAL, FAILBACK);

	kill_rec1(q);
	STEP(q, ev_rec(POOL_E_REC_UP, R1), POOL_OK, "mark-broken(rec1) notify(rec1 FAILED_OVER->BACK)");
	REASON_HAS("back and healthy: failback by command (failback = manual)");
	EXPECT(q, R1, POOL_R_BACK, SP1, POOL_S_SERVING);
	STEP(q, ev_rec(POOL_E_REC_TIMEOUT, R1), POOL_IGNORED, "");
	/* Lost again before the command, back again: still waiting. */
	STEP(q, ev_rec(POOL_E_REC_LOST, R1), POOL_OK, "notify(rec1 BACK->FAILED_OVER)");
	STEP(q, ev_rec(POOL_E_REC_UP, R1), POOL_OK, "mark-broken(rec1) notify(rec1 FAILED_OVER->BACK)");
	STEP(q, ev_cmd(POOL_E_FAILBACK, R1, POOL_ROLE_OPERATOR), POOL_OK,
	     "log(failback started rec1 sp1 lost) notify(rec1 BACK->FAILING_BACK) stop-spare(sp1,rec1)");
	free(q);
	free(p);
}

/* after_failure = swap: the spare keeps recording as the recorder, the
 * repaired machine becomes a spare of the group. */
static void scenario_swap(void **st)
{
	struct pool *p = lab(AUTO, SWAP);

	kill_rec1(p);
	STEP(p, ev_rec(POOL_E_REC_UP, R1), POOL_OK, "log(swap done sp1 rec1 lost) swap(sp1,rec1) notify(sp1 FAILED_OVER->OK)");
	REASON_HAS("roles exchanged: sp1 records in place of rec1, rec1 is a spare of group north");
	assert_string_equal(p->rec[R1].name, "sp1");
	assert_string_equal(p->rec[R1].group, "north");
	assert_string_equal(p->rec[R1].secondary, "south");
	assert_true(p->rec[R1].failover);
	assert_int_equal(p->rec[R1].link, POOL_LINK_UP);
	assert_string_equal(p->spare[SP1].name, "rec1");
	assert_string_equal(p->spare[SP1].group, "north");
	EXPECT(p, R1, POOL_R_OK, SP1, POOL_S_FREE);
	assert_false(pool_owes(p, SP1, R1));
	assert_int_equal(pool_find_recorder(p, "sp1"), R1);
	assert_int_equal(pool_find_spare(p, "rec1"), SP1);
	assert_int_equal(pool_find_recorder(p, "rec1"), -1);
	/* The repaired machine serves the next failure of its group; the new
	 * recorder fails over like any other. */
	STEP(p, ev_rec(POOL_E_REC_DISK, R2), POOL_OK,
	     "log(failover started rec2 rec1 disk) mark-broken(rec2) notify(rec2 OK->FAILING_OVER) start-spare(rec1,rec2)");
	STEP(p, ev_rec(POOL_E_REC_WATCHDOG, R1), POOL_OK,
	     "log(failover started sp1 sp2 watchdog) mark-broken(sp1) notify(sp1 OK->FAILING_OVER) start-spare(sp2,sp1)");

	/* With failback = manual, the command swaps. */
	struct pool *q = lab(MANUAL, SWAP);

	kill_rec1(q);
	STEP(q, ev_rec(POOL_E_REC_UP, R1), POOL_OK, "mark-broken(rec1) notify(rec1 FAILED_OVER->BACK)");
	STEP(q, ev_cmd(POOL_E_FAILBACK, R1, POOL_ROLE_ADMIN), POOL_OK,
	     "log(swap done sp1 rec1 lost) swap(sp1,rec1) notify(sp1 BACK->OK)");
	free(q);

	/* A spare that holds recordings of another recorder is not given
	 * away: failback instead. */
	q = lab(AUTO, SWAP);
	kill_rec1(q);
	assert_true(pool_restore_owed(q, SP1, R3, NULL));
	STEP(q, ev_rec(POOL_E_REC_UP, R1), POOL_OK,
	     "log(failback started rec1 sp1 lost) mark-broken(rec1) notify(rec1 FAILED_OVER->FAILING_BACK) "
	     "stop-spare(sp1,rec1)");
	REASON_HAS("no swap, sp1 holds recordings of other recorders: failback");
	STEP(q, ev_spare(POOL_E_SPARE_STOPPED, SP1), POOL_OK, NULL);
	/* Its copy-back home done, it pays what it owes rec3. */
	STEP(q, ev_spare(POOL_E_COPY_DONE, SP1), POOL_OK,
	     "log(copy done rec1 sp1 lost) notify(rec1 COPYING->OK) notify(rec3 OK->COPYING) start-copy(sp1,rec3) "
	     "log(copy started rec3 sp1 none)");
	free(q);
	free(p);
}

/* A recorder reconnecting before the timeout is not failed over; neither is
 * one that reconnects after a master restart; one that never does is. */
static void scenario_reconnect_before_timeout(void **st)
{
	struct pool *p = lab(AUTO, FAILBACK);
	const char *why;

	STEP(p, ev_rec(POOL_E_REC_LOST, R1), POOL_OK, "arm-recorder(rec1) notify(rec1 OK->LOST)");
	STEP(p, ev_rec(POOL_E_REC_UP, R1), POOL_OK, "resume(rec1) notify(rec1 LOST->OK)");
	REASON_HAS("reconnected before the detect timeout: not failed over");
	STEP(p, ev_rec(POOL_E_REC_TIMEOUT, R1), POOL_IGNORED, "");
	EXPECT(p, R1, POOL_R_OK, SP1, POOL_S_FREE);
	free(p);

	p = new_pool(AUTO, FAILBACK);
	assert_int_equal(pool_add_recorder(p, "rec1", "north", NULL, true, &why), 0);
	assert_int_equal(pool_add_recorder(p, "rec2", "north", NULL, true, &why), 1);
	assert_int_equal(pool_add_spare(p, "sp1", "north", &why), 0);
	STEP(p, ev_spare_up(0, POOL_RUNS_NOTHING), POOL_OK, "");
	STEP(p, ev_rec(POOL_E_REC_UP, 0), POOL_OK, "resume(rec1) notify(rec1 OFFLINE->OK)");
	STEP(p, ev_rec(POOL_E_REC_TIMEOUT, 0), POOL_IGNORED, "");
	STEP(p, ev_rec(POOL_E_REC_TIMEOUT, 1), POOL_OK,
	     "log(failover started rec2 sp1 absent) mark-broken(rec2) notify(rec2 OFFLINE->FAILING_OVER) start-spare(sp1,rec2)");
	REASON_HAS("not connected since the master started, past the detect timeout");
	free(p);
}

/* The secondary group when the primary has no free spare; the first free
 * spare by name; a recorder with no secondary group waits. */
static void scenario_secondary_group(void **st)
{
	struct pool *p = new_pool(AUTO, FAILBACK);
	const char *why;

	assert_int_equal(pool_add_recorder(p, "recA", "north", "south", true, &why), 0);
	assert_int_equal(pool_add_recorder(p, "recB", "north", "south", true, &why), 1);
	assert_int_equal(pool_add_recorder(p, "recC", "north", "", true, &why), 2);
	assert_int_equal(pool_add_recorder(p, "recD", "north", "south", true, &why), 3);
	assert_int_equal(pool_add_spare(p, "n2", "north", &why), 0);
	assert_int_equal(pool_add_spare(p, "n1", "north", &why), 1);
	assert_int_equal(pool_add_spare(p, "s1", "south", &why), 2);
	for (int r = 0; r < 4; r++)
		STEP(p, ev_rec(POOL_E_REC_UP, r), POOL_OK, NULL);
	for (int s = 0; s < 3; s++)
		STEP(p, ev_spare_up(s, POOL_RUNS_NOTHING), POOL_OK, "");
	STEP(p, ev_rec(POOL_E_REC_DISK, 0), POOL_OK,
	     "log(failover started recA n1 disk) mark-broken(recA) notify(recA OK->FAILING_OVER) start-spare(n1,recA)");
	STEP(p, ev_rec(POOL_E_REC_DISK, 1), POOL_OK,
	     "log(failover started recB n2 disk) mark-broken(recB) notify(recB OK->FAILING_OVER) start-spare(n2,recB)");
	STEP(p, ev_rec(POOL_E_REC_DISK, 2), POOL_OK, "log(failover queued recC - disk) notify(recC OK->QUEUED)");
	REASON_HAS("no free spare in group north: queued at position 1");
	STEP(p, ev_rec(POOL_E_REC_DISK, 3), POOL_OK,
	     "log(failover started recD s1 disk) mark-broken(recD) notify(recD OK->FAILING_OVER) start-spare(s1,recD)");
	REASON_HAS("spare s1 of group south");
	/* n1 fails to start: recA tries the next spare; none: it waits ahead of recC. */
	STEP(p, ev_spare(POOL_E_SPARE_START_FAILED, 1), POOL_OK,
	     "log(failover failed recA n1 disk) log(failover queued recA - disk) notify(recA FAILING_OVER->QUEUED)");
	REASON_HAS("queued at position 1");
	assert_int_equal(p->queue[0], 0);
	assert_int_equal(p->queue[1], 2);
	free(p);
}

/* A spare lost while serving: back in time, nothing happens; past the
 * timeout, the recorder needs a spare again; the recordings on the lost
 * spare come home when it returns. */
static void scenario_spare_lost_while_serving(void **st)
{
	struct pool *p = lab(AUTO, FAILBACK);

	kill_rec1(p);
	STEP(p, ev_spare(POOL_E_SPARE_LOST, SP1), POOL_OK, "arm-spare(sp1)");
	EXPECT(p, R1, POOL_R_FAILED_OVER, SP1, POOL_S_LOST);
	assert_int_equal(pool_served_by(p, R1), SP1);
	STEP(p, ev_spare_up(SP1, R1), POOL_OK, "");
	EXPECT(p, R1, POOL_R_FAILED_OVER, SP1, POOL_S_SERVING);
	STEP(p, ev_spare(POOL_E_SPARE_LOST, SP1), POOL_OK, "arm-spare(sp1)");
	STEP(p, ev_spare(POOL_E_SPARE_TIMEOUT, SP1), POOL_OK,
	     "log(failover started rec1 sp2 spare-lost) mark-broken(rec1) notify(rec1 FAILED_OVER->FAILING_OVER) "
	     "start-spare(sp2,rec1)");
	EXPECT(p, R1, POOL_R_FAILING_OVER, SP1, POOL_S_OFFLINE);
	assert_true(pool_owes(p, SP1, R1));
	STEP(p, ev_spare(POOL_E_SPARE_STARTED, SP2), POOL_OK, NULL);
	STEP(p, ev_rec(POOL_E_REC_UP, R1), POOL_OK,
	     "log(failback started rec1 sp2 spare-lost) mark-broken(rec1) notify(rec1 FAILED_OVER->FAILING_BACK) "
	     "stop-spare(sp2,rec1)");
	STEP(p, ev_spare(POOL_E_SPARE_STOPPED, SP2), POOL_OK, NULL);
	STEP(p, ev_spare(POOL_E_COPY_DONE, SP2), POOL_OK, "log(copy done rec1 sp2 spare-lost) notify(rec1 COPYING->OK)");
	STEP(p, ev_spare_up(SP1, POOL_RUNS_NOTHING), POOL_OK,
	     "notify(rec1 OK->COPYING) start-copy(sp1,rec1) log(copy started rec1 sp1 spare-lost)");
	STEP(p, ev_spare(POOL_E_COPY_DONE, SP1), POOL_OK, "log(copy done rec1 sp1 spare-lost) notify(rec1 COPYING->OK)");
	for (int s = 0; s < p->n_spare; s++)
		for (int r = 0; r < p->n_rec; r++)
			assert_false(pool_owes(p, s, r));
	free(p);

	/* It comes back idle (it restarted): it is free, and the recorder's
	 * first choice (it holds its recordings). */
	p = lab(AUTO, FAILBACK);
	kill_rec1(p);
	STEP(p, ev_spare(POOL_E_SPARE_LOST, SP1), POOL_OK, "arm-spare(sp1)");
	STEP(p, ev_spare_up(SP1, POOL_RUNS_NOTHING), POOL_OK,
	     "log(failover started rec1 sp1 spare-lost) mark-broken(rec1) notify(rec1 FAILED_OVER->FAILING_OVER) "
	     "start-spare(sp1,rec1)");
	/* Lost while starting: the next spare at once. */
	STEP(p, ev_spare(POOL_E_SPARE_LOST, SP1), POOL_OK,
	     "log(failover failed rec1 sp1 spare-lost) log(failover started rec1 sp2 spare-lost) mark-broken(rec1) "
	     "start-spare(sp2,rec1)");
	/* It comes back recording something it was not given: told to stop
	 * first, then it is free. */
	STEP(p, ev_spare_up(SP1, POOL_RUNS_OTHER), POOL_OK, "stop-spare(sp1,-)");
	EXPECT(p, R1, POOL_R_FAILING_OVER, SP1, POOL_S_FREE);
	STEP(p, ev_spare(POOL_E_SPARE_STARTED, SP2), POOL_OK, NULL);
	STEP(p, ev_spare(POOL_E_SPARE_LOST, SP2), POOL_OK, "arm-spare(sp2)");
	STEP(p, ev_spare_up(SP2, R2), POOL_OK,
	     "stop-spare(sp2,-) log(failover started rec1 sp1 spare-lost) mark-broken(rec1) "
	     "notify(rec1 FAILED_OVER->FAILING_OVER) start-spare(sp1,rec1)");
	free(p);
}

/* A start that fails moves on to the next spare, then to the queue; the
 * failed spare is used again after it reconnects. */
static void scenario_start_failed(void **st)
{
	struct pool *p = lab(AUTO, FAILBACK);

	STEP(p, ev_rec(POOL_E_REC_DISK, R1), POOL_OK, NULL);
	STEP(p, ev_spare(POOL_E_SPARE_START_FAILED, SP1), POOL_OK,
	     "log(failover failed rec1 sp1 disk) log(failover started rec1 sp2 disk) mark-broken(rec1) start-spare(sp2,rec1)");
	REASON_HAS("the start on its spare failed: trying the next spare: spare sp2 of group south");
	EXPECT(p, R1, POOL_R_FAILING_OVER, SP1, POOL_S_FAILED);
	STEP(p, ev_spare(POOL_E_SPARE_START_FAILED, SP2), POOL_OK,
	     "log(failover failed rec1 sp2 disk) log(failover queued rec1 - disk) notify(rec1 FAILING_OVER->QUEUED)");
	STEP(p, ev_spare_up(SP1, POOL_RUNS_NOTHING), POOL_IGNORED, "");
	STEP(p, ev_spare(POOL_E_SPARE_LOST, SP1), POOL_OK, "");
	STEP(p, ev_spare_up(SP1, POOL_RUNS_NOTHING), POOL_OK,
	     "log(failover started rec1 sp1 disk) mark-broken(rec1) notify(rec1 QUEUED->FAILING_OVER) start-spare(sp1,rec1)");
	free(p);
}

/* Back while the spare starts: stands down, then fails back once the
 * spare has started; if the start fails, it simply records again. */
static void scenario_back_while_starting(void **st)
{
	struct pool *p = lab(AUTO, FAILBACK);

	STEP(p, ev_rec(POOL_E_REC_LOST, R1), POOL_OK, NULL);
	STEP(p, ev_rec(POOL_E_REC_TIMEOUT, R1), POOL_OK, NULL);
	STEP(p, ev_rec(POOL_E_REC_UP, R1), POOL_OK, "mark-broken(rec1)");
	STEP(p, ev_spare(POOL_E_SPARE_STARTED, SP1), POOL_OK,
	     "log(failover done rec1 sp1 lost) notify(rec1 FAILING_OVER->FAILED_OVER) log(failback started rec1 sp1 lost) "
	     "mark-broken(rec1) notify(rec1 FAILED_OVER->FAILING_BACK) stop-spare(sp1,rec1)");
	STEP(p, ev_rec(POOL_E_REC_LOST, R2), POOL_OK, NULL);
	STEP(p, ev_rec(POOL_E_REC_TIMEOUT, R2), POOL_OK, NULL);
	EXPECT(p, R2, POOL_R_FAILING_OVER, SP2, POOL_S_STARTING);
	STEP(p, ev_rec(POOL_E_REC_UP, R2), POOL_OK, "mark-broken(rec2)");
	STEP(p, ev_spare(POOL_E_SPARE_START_FAILED, SP2), POOL_OK,
	     "log(failover failed rec2 sp2 lost) resume(rec2) notify(rec2 FAILING_OVER->OK)");
	/* Lost during its failback: the copy pauses at once, the detect timer runs. */
	STEP(p, ev_rec(POOL_E_REC_LOST, R1), POOL_IGNORED, "");
	STEP(p, ev_spare(POOL_E_SPARE_STOPPED, SP1), POOL_OK,
	     "log(failback done rec1 sp1 lost) resume(rec1) notify(rec1 FAILING_BACK->COPYING) stop-copy(sp1,rec1) "
	     "log(copy paused rec1 sp1 lost) arm-recorder(rec1) notify(rec1 COPYING->LOST)");
	EXPECT(p, R1, POOL_R_LOST, SP1, POOL_S_FREE);
	free(p);
}

/* Failover disabled: not failed over (logged); enabled again: failed over. */
static void scenario_failover_disabled(void **st)
{
	struct pool *p = lab(AUTO, FAILBACK);

	STEP(p, ev_cmd(POOL_E_DISABLE, R1, POOL_ROLE_ADMIN), POOL_OK, "");
	STEP(p, ev_rec(POOL_E_REC_LOST, R1), POOL_OK, "arm-recorder(rec1) notify(rec1 OK->LOST)");
	STEP(p, ev_rec(POOL_E_REC_TIMEOUT, R1), POOL_OK, "log(failover skipped rec1 - lost) notify(rec1 LOST->DOWN)");
	REASON_HAS("failover is disabled for it");
	STEP(p, ev_cmd(POOL_E_FAILOVER, R1, POOL_ROLE_ADMIN), POOL_REFUSED, "");
	STEP(p, ev_cmd(POOL_E_ENABLE, R1, POOL_ROLE_ADMIN), POOL_OK,
	     "log(failover started rec1 sp1 lost) mark-broken(rec1) notify(rec1 DOWN->FAILING_OVER) start-spare(sp1,rec1)");
	STEP(p, ev_rec(POOL_E_REC_DISK, R2), POOL_OK, NULL);
	STEP(p, ev_rec(POOL_E_REC_DISK, R3), POOL_OK, "log(failover queued rec3 - disk) notify(rec3 OK->QUEUED)");
	STEP(p, ev_cmd(POOL_E_DISABLE, R3, POOL_ROLE_ADMIN), POOL_OK, "notify(rec3 QUEUED->DOWN)");
	assert_int_equal(p->n_queue, 0);
	STEP(p, ev_rec(POOL_E_REC_UP, R3), POOL_OK, "resume(rec3) notify(rec3 DOWN->OK)");
	free(p);
}

/* A failed copy-back is not retried by itself; the copy command or a new
 * hello of the recorder retries it; a busy spare copies once free. */
static void scenario_copy_failed(void **st)
{
	struct pool *p = lab(AUTO, FAILBACK);

	kill_rec1(p);
	STEP(p, ev_rec(POOL_E_REC_UP, R1), POOL_OK, NULL);
	STEP(p, ev_spare(POOL_E_SPARE_STOPPED, SP1), POOL_OK, NULL);
	STEP(p, ev_spare(POOL_E_COPY_FAILED, SP1), POOL_OK, "log(copy failed rec1 sp1 lost) notify(rec1 COPYING->OK)");
	EXPECT(p, R1, POOL_R_OK, SP1, POOL_S_FREE);
	assert_true(p->rec[R1].copy_held);
	assert_true(pool_owes(p, SP1, R1));
	STEP(p, ev_cmd(POOL_E_COPY, R1, POOL_ROLE_VIEWER), POOL_REFUSED, "");
	STEP(p, ev_cmd(POOL_E_COPY, R1, POOL_ROLE_OPERATOR), POOL_OK,
	     "notify(rec1 OK->COPYING) start-copy(sp1,rec1) log(copy started rec1 sp1 lost)");
	STEP(p, ev_spare(POOL_E_COPY_FAILED, SP1), POOL_OK, NULL);
	STEP(p, ev_rec(POOL_E_REC_LOST, R1), POOL_OK, "arm-recorder(rec1) notify(rec1 OK->LOST)");
	STEP(p, ev_rec(POOL_E_REC_UP, R1), POOL_OK,
	     "resume(rec1) notify(rec1 LOST->OK) notify(rec1 OK->COPYING) start-copy(sp1,rec1) "
	     "log(copy started rec1 sp1 lost)");
	STEP(p, ev_spare(POOL_E_COPY_FAILED, SP1), POOL_OK, NULL);
	/* sp1 serves rec3 meanwhile: the command waits for it. */
	STEP(p, ev_rec(POOL_E_REC_DISK, R3), POOL_OK,
	     "log(failover started rec3 sp1 disk) mark-broken(rec3) notify(rec3 OK->FAILING_OVER) start-spare(sp1,rec3)");
	STEP(p, ev_cmd(POOL_E_COPY, R1, POOL_ROLE_OPERATOR), POOL_OK, "");
	REASON_HAS("starts when spare sp1 (STARTING) is free");
	assert_false(p->rec[R1].copy_held);
	STEP(p, ev_spare(POOL_E_SPARE_STARTED, SP1), POOL_OK, NULL);
	STEP(p, ev_rec(POOL_E_REC_UP, R3), POOL_OK, NULL);
	STEP(p, ev_spare(POOL_E_SPARE_STOPPED, SP1), POOL_OK, NULL);
	STEP(p, ev_spare(POOL_E_COPY_DONE, SP1), POOL_OK,
	     "log(copy done rec3 sp1 disk) notify(rec3 COPYING->OK) notify(rec1 OK->COPYING) start-copy(sp1,rec1) "
	     "log(copy started rec1 sp1 lost)");
	STEP(p, ev_spare(POOL_E_COPY_DONE, SP1), POOL_OK, "log(copy done rec1 sp1 lost) notify(rec1 COPYING->OK)");
	STEP(p, ev_cmd(POOL_E_COPY, R1, POOL_ROLE_OPERATOR), POOL_REFUSED, "");
	REASON_HAS("no copy-back is owed to it");
	free(p);
}

/* Lost or broken during the copy-back: the copy pauses and resumes; the
 * spare that holds its recordings is its first choice. */
static void scenario_copy_interrupted(void **st)
{
	struct pool *p = lab(AUTO, FAILBACK);
	const char *why;

	kill_rec1(p);
	STEP(p, ev_rec(POOL_E_REC_UP, R1), POOL_OK, NULL);
	STEP(p, ev_spare(POOL_E_SPARE_STOPPED, SP1), POOL_OK, NULL);
	STEP(p, ev_rec(POOL_E_REC_LOST, R1), POOL_OK,
	     "stop-copy(sp1,rec1) log(copy paused rec1 sp1 lost) arm-recorder(rec1) notify(rec1 COPYING->LOST)");
	EXPECT(p, R1, POOL_R_LOST, SP1, POOL_S_FREE);
	assert_true(pool_owes(p, SP1, R1));
	STEP(p, ev_rec(POOL_E_REC_UP, R1), POOL_OK,
	     "resume(rec1) notify(rec1 LOST->OK) notify(rec1 OK->COPYING) start-copy(sp1,rec1) "
	     "log(copy started rec1 sp1 lost)");
	/* sp0 comes first by name, but sp1 holds rec1's recordings. */
	assert_int_equal(pool_add_spare(p, "sp0", "north", &why), 2);
	STEP(p, ev_spare_up(2, POOL_RUNS_NOTHING), POOL_OK, "");
	STEP(p, ev_rec(POOL_E_REC_DISK, R1), POOL_OK,
	     "stop-copy(sp1,rec1) log(copy paused rec1 sp1 lost) log(failover started rec1 sp1 disk) mark-broken(rec1) "
	     "notify(rec1 COPYING->FAILING_OVER) start-spare(sp1,rec1)");
	/* The copying spare lost: the copy resumes when it is back. */
	STEP(p, ev_rec(POOL_E_REC_DISK, R2), POOL_OK,
	     "log(failover started rec2 sp0 disk) mark-broken(rec2) notify(rec2 OK->FAILING_OVER) start-spare(sp0,rec2)");
	STEP(p, ev_spare(POOL_E_SPARE_STARTED, SP1), POOL_OK, NULL);
	STEP(p, ev_rec(POOL_E_REC_UP, R1), POOL_OK, NULL);
	STEP(p, ev_spare(POOL_E_SPARE_STOPPED, SP1), POOL_OK, NULL);
	STEP(p, ev_spare(POOL_E_SPARE_LOST, SP1), POOL_OK,
	     "log(copy paused rec1 sp1 disk) notify(rec1 COPYING->OK)");
	STEP(p, ev_spare_up(SP1, POOL_RUNS_NOTHING), POOL_OK,
	     "notify(rec1 OK->COPYING) start-copy(sp1,rec1) log(copy started rec1 sp1 disk)");
	free(p);
}

/* After a master restart: the registry restores who serves whom and which
 * recordings are owed. */
static void scenario_master_restart(void **st)
{
	struct pool *p = new_pool(AUTO, FAILBACK);
	const char *why = NULL;

	assert_int_equal(pool_add_recorder(p, "rec1", "north", NULL, true, &why), 0);
	assert_int_equal(pool_add_recorder(p, "rec2", "north", NULL, true, &why), 1);
	assert_int_equal(pool_add_spare(p, "sp1", "north", &why), 0);
	assert_int_equal(pool_add_spare(p, "sp2", "north", &why), 1);
	assert_true(pool_restore_served(p, 0, 0, POOL_T_DISK, &why));
	assert_true(pool_restore_owed(p, 0, 1, &why));
	EXPECT(p, 0, POOL_R_FAILED_OVER, 0, POOL_S_LOST);
	assert_int_equal(pool_served_by(p, 0), 0);
	assert_false(pool_restore_served(p, 0, 1, POOL_T_DISK, &why));
	assert_string_equal(why, "the recorder is not fresh (restore before any event)");
	assert_false(pool_restore_served(p, 1, 0, POOL_T_DISK, &why));
	assert_string_equal(why, "the spare is not fresh (restore before any event)");
	assert_false(pool_restore_served(p, 2, 1, POOL_T_DISK, &why));
	assert_false(pool_restore_served(p, 1, 1, (enum pool_trigger)42, &why));
	assert_false(pool_restore_owed(p, 2, 0, &why));

	STEP(p, ev_spare_up(0, 0), POOL_OK, "");
	EXPECT(p, 0, POOL_R_FAILED_OVER, 0, POOL_S_SERVING);
	STEP(p, ev_rec(POOL_E_REC_UP, 1), POOL_OK, "resume(rec2) notify(rec2 OFFLINE->OK)");
	STEP(p, ev_rec(POOL_E_REC_UP, 0), POOL_OK,
	     "log(failback started rec1 sp1 disk) mark-broken(rec1) notify(rec1 FAILED_OVER->FAILING_BACK) stop-spare(sp1,rec1)");
	STEP(p, ev_spare(POOL_E_SPARE_STOPPED, 0), POOL_OK, NULL);
	STEP(p, ev_spare(POOL_E_COPY_DONE, 0), POOL_OK,
	     "log(copy done rec1 sp1 disk) notify(rec1 COPYING->OK) notify(rec2 OK->COPYING) start-copy(sp1,rec2) "
	     "log(copy started rec2 sp1 none)");
	free(p);

	/* The spare never comes back: past its timeout, the next spare. */
	p = new_pool(AUTO, FAILBACK);
	assert_int_equal(pool_add_recorder(p, "rec1", "north", NULL, true, &why), 0);
	assert_int_equal(pool_add_spare(p, "sp1", "north", &why), 0);
	assert_int_equal(pool_add_spare(p, "sp2", "north", &why), 1);
	assert_true(pool_restore_served(p, 0, 0, POOL_T_LOST, &why));
	STEP(p, ev_spare_up(1, POOL_RUNS_NOTHING), POOL_OK, "");
	STEP(p, ev_spare(POOL_E_SPARE_TIMEOUT, 0), POOL_OK,
	     "log(failover started rec1 sp2 spare-lost) mark-broken(rec1) notify(rec1 FAILED_OVER->FAILING_OVER) "
	     "start-spare(sp2,rec1)");
	free(p);
}

/* Several failures at once are handled in order: first failed, first
 * served by a spare it can use. */
static void scenario_failures_in_order(void **st)
{
	struct pool *p = new_pool(AUTO, FAILBACK);
	const char *why;

	assert_int_equal(pool_add_recorder(p, "rec1", "north", NULL, true, &why), 0);
	assert_int_equal(pool_add_recorder(p, "rec2", "north", NULL, true, &why), 1);
	assert_int_equal(pool_add_recorder(p, "rec3", "north", NULL, true, &why), 2);
	assert_int_equal(pool_add_recorder(p, "rec4", "south", NULL, true, &why), 3);
	assert_int_equal(pool_add_spare(p, "sp1", "north", &why), 0);
	assert_int_equal(pool_add_spare(p, "sp2", "north", &why), 1);
	assert_int_equal(pool_add_spare(p, "sp3", "south", &why), 2);
	for (int r = 0; r < 4; r++)
		STEP(p, ev_rec(POOL_E_REC_UP, r), POOL_OK, NULL);
	STEP(p, ev_rec(POOL_E_REC_DISK, 1), POOL_OK, "log(failover queued rec2 - disk) notify(rec2 OK->QUEUED)");
	STEP(p, ev_rec(POOL_E_REC_LOST, 2), POOL_OK, NULL);
	STEP(p, ev_rec(POOL_E_REC_TIMEOUT, 2), POOL_OK, "log(failover queued rec3 - lost) notify(rec3 LOST->QUEUED)");
	REASON_HAS("queued at position 2");
	STEP(p, ev_rec(POOL_E_REC_WATCHDOG, 3), POOL_OK, NULL);
	STEP(p, ev_rec(POOL_E_REC_WATCHDOG, 0), POOL_OK, NULL);
	REASON_HAS("queued at position 4");
	assert_int_equal(p->n_queue, 4);
	STEP(p, ev_spare_up(2, POOL_RUNS_NOTHING), POOL_OK,
	     "log(failover started rec4 sp3 watchdog) mark-broken(rec4) notify(rec4 QUEUED->FAILING_OVER) start-spare(sp3,rec4)");
	STEP(p, ev_spare_up(1, POOL_RUNS_NOTHING), POOL_OK,
	     "log(failover started rec2 sp2 disk) mark-broken(rec2) notify(rec2 QUEUED->FAILING_OVER) start-spare(sp2,rec2)");
	STEP(p, ev_spare_up(0, POOL_RUNS_NOTHING), POOL_OK,
	     "log(failover started rec3 sp1 lost) mark-broken(rec3) notify(rec3 QUEUED->FAILING_OVER) start-spare(sp1,rec3)");
	assert_int_equal(p->n_queue, 1);
	assert_int_equal(p->queue[0], 0);
	/* A failed start keeps its place ahead of later failures. */
	STEP(p, ev_spare(POOL_E_SPARE_START_FAILED, 1), POOL_OK,
	     "log(failover failed rec2 sp2 disk) log(failover queued rec2 - disk) notify(rec2 FAILING_OVER->QUEUED)");
	REASON_HAS("queued at position 1");
	assert_int_equal(p->queue[0], 1);
	assert_int_equal(p->queue[1], 0);
	/* Healthy again while queued: leaves the queue and records. */
	STEP(p, ev_rec(POOL_E_REC_UP, 0), POOL_OK, "resume(rec1) notify(rec1 QUEUED->OK)");
	assert_int_equal(p->n_queue, 1);
	free(p);

	/* A spare freed within a step (its copy-back paused because its
	 * recorder failed again) goes to the older failure in the queue. */
	p = new_pool(AUTO, FAILBACK);
	assert_int_equal(pool_add_recorder(p, "rec1", "north", NULL, true, &why), 0);
	assert_int_equal(pool_add_recorder(p, "rec2", "north", NULL, true, &why), 1);
	assert_int_equal(pool_add_spare(p, "sp1", "north", &why), 0);
	STEP(p, ev_spare_up(0, POOL_RUNS_NOTHING), POOL_OK, "");
	STEP(p, ev_rec(POOL_E_REC_UP, 0), POOL_OK, NULL);
	STEP(p, ev_rec(POOL_E_REC_UP, 1), POOL_OK, NULL);
	STEP(p, ev_rec(POOL_E_REC_DISK, 0), POOL_OK, NULL);
	STEP(p, ev_spare(POOL_E_SPARE_STARTED, 0), POOL_OK, NULL);
	STEP(p, ev_rec(POOL_E_REC_UP, 0), POOL_OK, NULL);
	STEP(p, ev_spare(POOL_E_SPARE_STOPPED, 0), POOL_OK, NULL);
	EXPECT(p, 0, POOL_R_COPYING, 0, POOL_S_COPYING);
	STEP(p, ev_rec(POOL_E_REC_DISK, 1), POOL_OK, "log(failover queued rec2 - disk) notify(rec2 OK->QUEUED)");
	STEP(p, ev_rec(POOL_E_REC_DISK, 0), POOL_OK,
	     "stop-copy(sp1,rec1) log(copy paused rec1 sp1 disk) log(failover started rec2 sp1 disk) mark-broken(rec2) "
	     "notify(rec2 QUEUED->FAILING_OVER) start-spare(sp1,rec2) log(failover queued rec1 - disk) "
	     "notify(rec1 COPYING->QUEUED)");
	free(p);
}

/* Bad input: clear errors, nothing changed. */
static void scenario_bad_input(void **st)
{
	struct pool *p = lab(AUTO, FAILBACK);
	struct pool *q = new_pool(AUTO, FAILBACK);
	const struct pool_event bad[] = {
		{ POOL_E_REC_UP, -1, -1, POOL_ROLE_ADMIN },
		{ POOL_E_REC_UP, 3, -1, POOL_ROLE_ADMIN },
		{ POOL_E_FAILOVER, 99, -1, POOL_ROLE_ADMIN },
		{ POOL_E_FAILOVER, 0, -1, (enum pool_role)3 },
		{ POOL_E_ENABLE, 0, -1, (enum pool_role)-1 },
		{ POOL_E_SPARE_LOST, 0, -1, POOL_ROLE_ADMIN },
		{ POOL_E_COPY_DONE, 0, 2, POOL_ROLE_ADMIN },
		{ POOL_E_SPARE_UP, -3, 0, POOL_ROLE_ADMIN },
		{ POOL_E_SPARE_UP, 3, 0, POOL_ROLE_ADMIN },
		{ POOL_E__COUNT, 0, 0, POOL_ROLE_ADMIN },
		{ (enum pool_event_type)-1, 0, 0, POOL_ROLE_ADMIN },
	};
	char name[POOL_NAME_MAX + 1];
	const char *why = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		STEP(p, bad[i], POOL_ERROR, "");
	STEP(p, bad[0], POOL_ERROR, "");
	assert_string_equal(last.reason, "unknown recorder");
	STEP(p, bad[5], POOL_ERROR, "");
	assert_string_equal(last.reason, "unknown spare");
	pool_step(p, NULL, &last);
	assert_int_equal(last.status, POOL_ERROR);

	/* The registry. */
	memset(name, 'x', POOL_NAME_MAX);
	name[POOL_NAME_MAX] = '\0';
	assert_int_equal(pool_add_recorder(p, "", "north", NULL, true, &why), -1);
	assert_string_equal(why, "a recorder needs a name");
	assert_int_equal(pool_add_recorder(p, NULL, "north", NULL, true, &why), -1);
	assert_int_equal(pool_add_recorder(p, name, "north", NULL, true, &why), -1);
	assert_string_equal(why, "recorder name too long");
	name[POOL_NAME_MAX - 1] = '\0';
	assert_int_equal(pool_add_recorder(q, name, "north", NULL, true, &why), 0);
	assert_int_equal(pool_add_recorder(p, "bad\nname", "north", NULL, true, &why), -1);
	assert_string_equal(why, "a name or group holds a control character");
	assert_int_equal(pool_add_recorder(p, "rec1", "north", NULL, true, &why), -1);
	assert_string_equal(why, "the name is already in the pool");
	assert_int_equal(pool_add_recorder(p, "sp1", "north", NULL, true, &why), -1);
	assert_int_equal(pool_add_spare(p, "rec2", "north", &why), -1);
	assert_string_equal(why, "the name is already in the pool");
	assert_int_equal(pool_add_recorder(p, "rec9", "", NULL, true, &why), -1);
	assert_string_equal(why, "a recorder needs a failover group");
	assert_int_equal(pool_add_recorder(p, "rec9", "north", "north", true, &why), -1);
	assert_string_equal(why, "the secondary group is the primary group");
	assert_int_equal(pool_add_spare(p, "sp9", "", &why), -1);
	assert_string_equal(why, "a spare in no failover group is never used: give it a group");
	assert_int_equal(pool_add_spare(p, "sp9", NULL, &why), -1);
	assert_int_equal(pool_add_spare(p, "", "north", NULL), -1);
	assert_int_equal(p->n_rec, 3);
	assert_int_equal(p->n_spare, 2);

	/* New groups only while not part of a failover; a spare's only offline. */
	assert_false(pool_set_spare_group(p, SP1, "east", &why));
	assert_string_equal(why, "a spare's group changes only while it is offline");
	assert_false(pool_set_spare_group(p, 7, "east", &why));
	assert_true(pool_set_recorder_groups(p, R3, "south", "", &why));
	STEP(p, ev_rec(POOL_E_REC_DISK, R3), POOL_OK,
	     "log(failover started rec3 sp2 disk) mark-broken(rec3) notify(rec3 OK->FAILING_OVER) start-spare(sp2,rec3)");
	assert_false(pool_set_recorder_groups(p, R3, "north", "", &why));
	assert_string_equal(why, "its groups change only while it is not part of a failover");
	assert_false(pool_set_recorder_groups(p, R1, "north", "north", &why));
	assert_false(pool_set_recorder_groups(p, -1, "north", NULL, &why));
	STEP(p, ev_spare(POOL_E_SPARE_LOST, SP1), POOL_OK, "");
	assert_false(pool_set_spare_group(p, SP1, "", &why));
	assert_true(pool_set_spare_group(p, SP1, "east", &why));
	assert_string_equal(p->spare[SP1].group, "east");

	/* Settings. */
	assert_false(pool_init(q, (enum pool_failback)2, POOL_AFTER_SWAP));
	assert_int_equal(q->n_rec, 1);
	assert_false(pool_configure(p, POOL_FAILBACK_AUTO, (enum pool_after)5));
	assert_int_equal(p->after, FAILBACK);
	assert_true(pool_configure(p, POOL_FAILBACK_MANUAL, POOL_AFTER_SWAP));
	assert_int_equal(p->failback, MANUAL);
	assert_int_equal(pool_find_recorder(p, NULL), -1);
	assert_int_equal(pool_served_by(p, 99), -1);
	assert_false(pool_owes(p, -1, 0));

	/* Full. */
	for (int i = 0; i < POOL_MAX_SPARES - 1; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		assert_int_equal(pool_add_spare(q, name, "north", &why), i);
	}
	assert_int_equal(pool_add_spare(q, "last", "north", &why), POOL_MAX_SPARES - 1);
	assert_int_equal(pool_add_spare(q, "more", "north", &why), -1);
	assert_string_equal(why, "the pool is full (spares)");
	for (int i = 1; i < POOL_MAX_RECORDERS; i++) {
		snprintf(name, sizeof(name), "r%d", i);
		assert_int_equal(pool_add_recorder(q, name, "north", NULL, true, &why), i);
	}
	assert_int_equal(pool_add_recorder(q, "more", "north", NULL, true, &why), -1);
	assert_string_equal(why, "the pool is full (recorders)");
	free(q);
	free(p);
}

/* ---- 3. every event in every reachable state --------------------------- */

static uint64_t rng_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static bool is_cmd(int t)
{
	return t >= POOL_E_FAILOVER && t <= POOL_E_DISABLE;
}

/* Every event the driver could send, valid or not, for a pool this size. */
static int all_events(const struct pool *p, struct pool_event *out)
{
	int n = 0;

	for (int t = 0; t < POOL_E__COUNT; t++) {
		if (t < POOL_E_SPARE_UP) {
			for (int r = -1; r <= p->n_rec; r++)
				for (int role = is_cmd(t) ? -1 : 0; role <= (is_cmd(t) ? POOL_ROLE__COUNT : 0); role++)
					out[n++] = (struct pool_event){ (enum pool_event_type)t, r, -1,
					                                is_cmd(t) ? (enum pool_role)role : POOL_ROLE_ADMIN };
		} else {
			for (int s = -1; s <= p->n_spare; s++) {
				if (t == POOL_E_SPARE_UP)
					for (int runs = -3; runs <= p->n_rec; runs++)
						out[n++] = (struct pool_event){ (enum pool_event_type)t, runs, s, POOL_ROLE_ADMIN };
				else
					out[n++] = (struct pool_event){ (enum pool_event_type)t, -1, s, POOL_ROLE_ADMIN };
			}
		}
	}
	out[n++] = (struct pool_event){ POOL_E__COUNT, 0, 0, POOL_ROLE_ADMIN };
	return n;
}

static bool valid_event(const struct pool *p, const struct pool_event *e)
{
	if ((unsigned)e->type >= POOL_E__COUNT)
		return false;
	if (e->type < POOL_E_SPARE_UP)
		return e->rec >= 0 && e->rec < p->n_rec && (!is_cmd(e->type) || (unsigned)e->role < POOL_ROLE__COUNT);
	if (e->spare < 0 || e->spare >= p->n_spare)
		return false;
	return e->type != POOL_E_SPARE_UP || (e->rec >= -2 && e->rec < p->n_rec);
}

static void describe(const struct pool *p, const struct pool_event *e, char *buf, size_t len)
{
	snprintf(buf, len, "%s rec %d spare %d role %d [recorders:", pool_event_str(e->type), e->rec, e->spare,
	         (int)e->role);
	for (int r = 0; r < p->n_rec; r++)
		snprintf(buf + strlen(buf), len - strlen(buf), " %s/%s/%s", p->rec[r].name, pool_rec_state_str(p->rec[r].state),
		         pool_link_str(p->rec[r].link));
	snprintf(buf + strlen(buf), len - strlen(buf), "; spares:");
	for (int s = 0; s < p->n_spare; s++)
		snprintf(buf + strlen(buf), len - strlen(buf), " %s/%s", p->spare[s].name,
		         pool_spare_state_str(p->spare[s].state));
	snprintf(buf + strlen(buf), len - strlen(buf), "]");
}

/* One step checked: status agrees with the input, invariants hold, refused
 * and bad input change nothing. */
static void checked_step(struct pool *p, const struct pool *was, const struct pool_event *e, struct pool_result *res,
                         const char *walk)
{
	char buf[256], where[1024];
	const char *bad;
	bool valid = valid_event(was, e);

	pool_step(p, e, res);
	if (!valid && res->status != POOL_ERROR)
		bad = "bad input not refused as an error";
	else if (valid && res->status == POOL_ERROR)
		bad = "valid input taken as an error";
	else if (valid && is_cmd(e->type) && !pool_role_allows(e->role, e->type) && res->status != POOL_REFUSED)
		bad = "a role that may not was not refused";
	else if ((res->status == POOL_ERROR || res->status == POOL_REFUSED) && !same_pool(p, was))
		bad = "refused or bad input changed the pool";
	else if (!(bad = broken_result(p, res, buf, sizeof(buf))))
		bad = broken_invariant(p, buf, sizeof(buf));
	if (bad) {
		describe(was, e, where, sizeof(where));
		fail_msg("%s: %s\n  event: %s\n  reason: %s", walk, bad, where, res->reason);
	}
}

struct coverage {
	long rec[POOL_R__COUNT];
	long spare[POOL_S__COUNT];
	long status[POOL_STATUS__COUNT];
};

static void walk(enum pool_failback fb, enum pool_after af, uint64_t seed, int steps, struct coverage *cov)
{
	struct pool *p = new_pool(fb, af), *t = new_pool(fb, af);
	struct pool_event *evs = calloc(1024, sizeof(*evs));
	struct pool_result res;
	char name[96];
	const char *why;

	assert_non_null(evs);
	snprintf(name, sizeof(name), "walk failback=%s after_failure=%s seed=%llu", pool_failback_str(fb),
	         pool_after_str(af), (unsigned long long)seed);
	assert_int_equal(pool_add_recorder(p, "r0", "north", "south", true, &why), 0);
	assert_int_equal(pool_add_recorder(p, "r1", "north", "", true, &why), 1);
	assert_int_equal(pool_add_recorder(p, "r2", "south", "north", true, &why), 2);
	assert_int_equal(pool_add_recorder(p, "r3", "north", "", false, &why), 3);
	assert_int_equal(pool_add_spare(p, "s0", "north", &why), 0);
	assert_int_equal(pool_add_spare(p, "s1", "north", &why), 1);
	assert_int_equal(pool_add_spare(p, "s2", "south", &why), 2);
	for (int step = 0; step < steps; step++) {
		int n = all_events(p, evs), pick;

		assert_true(n <= 1024);
		/* Every event, on a copy. */
		if (step % 2 == 0) {
			for (int i = 0; i < n; i++) {
				copy_pool(t, p);
				checked_step(t, p, &evs[i], &res, name);
				cov->status[res.status]++;
			}
		}
		/* One valid event, at random, moves the walk on. */
		do
			pick = (int)(rng_next(&seed) % (uint64_t)n);
		while (!valid_event(p, &evs[pick]));
		copy_pool(t, p);
		checked_step(p, t, &evs[pick], &res, name);
		for (int r = 0; r < p->n_rec; r++)
			cov->rec[p->rec[r].state]++;
		for (int s = 0; s < p->n_spare; s++)
			cov->spare[p->spare[s].state]++;
	}
	free(evs);
	free(t);
	free(p);
}

static void pool_every_event_everywhere(void **st)
{
	struct coverage cov;

	memset(&cov, 0, sizeof(cov));
	for (int fb = 0; fb < POOL_FAILBACK__COUNT; fb++)
		for (int af = 0; af < POOL_AFTER__COUNT; af++)
			walk((enum pool_failback)fb, (enum pool_after)af, 0x9e3779b97f4a7c15ull + (uint64_t)(fb * 2 + af),
			     8000, &cov);
	for (int s = 0; s < POOL_R__COUNT; s++)
		if (!cov.rec[s])
			fail_msg("the walk never reached recorder state %s", pool_rec_state_str((enum pool_rec_state)s));
	for (int s = 0; s < POOL_S__COUNT; s++)
		if (!cov.spare[s])
			fail_msg("the walk never reached spare state %s", pool_spare_state_str((enum pool_spare_state)s));
	for (int s = 0; s < POOL_STATUS__COUNT; s++)
		if (!cov.status[s])
			fail_msg("no step ended %s", pool_status_str((enum pool_status)s));
}

/* ---- 4. docs/pool.md has the tables of the code ------------------------ */

static void rec_cell(int s, int e, char *buf, size_t len)
{
	struct pool_rec_rule r = pool_rec_rule((enum pool_rec_state)s, (enum pool_rec_event)e);

	switch (r.kind) {
	case POOL_K_MOVE: snprintf(buf, len, "%s", pool_rec_state_str(r.next)); break;
	case POOL_K_KEEP: snprintf(buf, len, "keep"); break;
	case POOL_K_REFUSE: snprintf(buf, len, "refused"); break;
	case POOL_K_DECIDE: snprintf(buf, len, "*%s*", pool_decision_str(r.decision)); break;
	default: snprintf(buf, len, "%s", strstr(r.reason, UNEXPECTED_MARK) ? "" : "-"); break;
	}
}

static void spare_cell(int s, int e, char *buf, size_t len)
{
	struct pool_spare_rule r = pool_spare_rule((enum pool_spare_state)s, (enum pool_spare_event)e);

	if (r.kind == POOL_K_MOVE && r.notify >= 0)
		snprintf(buf, len, "%s > %s", pool_spare_state_str(r.next), pool_rec_event_str((enum pool_rec_event)r.notify));
	else if (r.kind == POOL_K_MOVE)
		snprintf(buf, len, "%s", pool_spare_state_str(r.next));
	else if (r.kind == POOL_K_KEEP)
		snprintf(buf, len, "keep");
	else
		snprintf(buf, len, "%s", strstr(r.reason, UNEXPECTED_MARK) ? "" : "-");
}

static void append(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void append(char *out, size_t len, const char *fmt, ...)
{
	size_t n = strlen(out);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out + n, len - n, fmt, ap);
	va_end(ap);
}

static const char *rec_state_name(int s) { return pool_rec_state_str((enum pool_rec_state)s); }
static const char *rec_event_name(int e) { return pool_rec_event_str((enum pool_rec_event)e); }
static const char *spare_state_name(int s) { return pool_spare_state_str((enum pool_spare_state)s); }
static const char *spare_event_name(int e) { return pool_spare_event_str((enum pool_spare_event)e); }

/* One table as markdown: a row per event, a column per state. */
static void table(char *out, size_t len, const char *title, int nstates, const char *(*state)(int), int nevents,
                  const char *(*event)(int), void (*cell)(int, int, char *, size_t))
{
	char c[64];

	append(out, len, "| %s |", title);
	for (int s = 0; s < nstates; s++)
		append(out, len, " %s |", state(s));
	append(out, len, "\n|---|");
	for (int s = 0; s < nstates; s++)
		append(out, len, "---|");
	append(out, len, "\n");
	for (int e = 0; e < nevents; e++) {
		append(out, len, "| %s |", event(e));
		for (int s = 0; s < nstates; s++) {
			cell(s, e, c, sizeof(c));
			append(out, len, " %s |", c);
		}
		append(out, len, "\n");
	}
}

/* The two tables of docs/pool.md, as markdown. */
static void tables(char *out, size_t len)
{
	out[0] = '\0';
	table(out, len, "recorder event", POOL_R__COUNT, rec_state_name, POOL_RE__COUNT, rec_event_name, rec_cell);
	append(out, len, "\n");
	table(out, len, "spare event", POOL_S__COUNT, spare_state_name, POOL_SE__COUNT, spare_event_name, spare_cell);
}

/* docs/pool.md holds the tables as the code has them. The source root
 * comes from meson (VIGIL_SOURCE_ROOT) or this file's path as meson
 * compiles it (relative to the build dir, where meson test runs). Not
 * found is a failure, not a skip: a check that silently does not run
 * checks nothing. */
static void docs_tables(void **st)
{
	static char want[32768], doc[262144];
	char path[1024];
	const char *tail = "tests/unit/test_pool_sm.c", *root = getenv("VIGIL_SOURCE_ROOT");
	size_t flen = strlen(__FILE__), n;
	FILE *f;

	if (root && *root)
		snprintf(path, sizeof(path), "%s/docs/pool.md", root);
	else if (flen >= strlen(tail) && !strcmp(__FILE__ + flen - strlen(tail), tail))
		snprintf(path, sizeof(path), "%.*sdocs/pool.md", (int)(flen - strlen(tail)), __FILE__);
	else
		fail_msg("cannot tell where docs/pool.md is: set VIGIL_SOURCE_ROOT");
	f = fopen(path, "r");
	if (!f)
		fail_msg("docs/pool.md not found at %s: run this under meson test, or set VIGIL_SOURCE_ROOT", path);
	n = fread(doc, 1, sizeof(doc) - 1, f);
	fclose(f);
	doc[n] = '\0';
	tables(want, sizeof(want));
	if (!strstr(doc, want))
		fail_msg("the tables in %s differ from the code: run `test_pool_sm --tables` and paste them\n%s", path, want);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(table_recorder),
		cmocka_unit_test(table_spare),
		cmocka_unit_test(table_out_of_range),
		cmocka_unit_test(strings),
		cmocka_unit_test(scenario_kill_recorder),
		cmocka_unit_test(scenario_second_and_third),
		cmocka_unit_test(scenario_disk_and_watchdog),
		cmocka_unit_test(scenario_manual_and_roles),
		cmocka_unit_test(scenario_failback_sequence),
		cmocka_unit_test(scenario_swap),
		cmocka_unit_test(scenario_reconnect_before_timeout),
		cmocka_unit_test(scenario_secondary_group),
		cmocka_unit_test(scenario_spare_lost_while_serving),
		cmocka_unit_test(scenario_start_failed),
		cmocka_unit_test(scenario_back_while_starting),
		cmocka_unit_test(scenario_failover_disabled),
		cmocka_unit_test(scenario_copy_failed),
		cmocka_unit_test(scenario_copy_interrupted),
		cmocka_unit_test(scenario_master_restart),
		cmocka_unit_test(scenario_failures_in_order),
		cmocka_unit_test(scenario_bad_input),
		cmocka_unit_test(pool_every_event_everywhere),
		cmocka_unit_test(docs_tables),
	};
	int rc;

	if (argc > 1 && strcmp(argv[1], "--tables") == 0) {
		static char out[32768];

		tables(out, sizeof(out));
		fputs(out, stdout);
		return 0;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	free(before);
	return rc;
}
