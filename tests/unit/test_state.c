/* Tests of the pure state machine (src/cluster/state.c): every cell of the
 * table, the operator scenarios of docs/state-rules.md, and an explicit-state
 * model check of two nodes driving each other through their peer events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cluster/state.h"

#define APPLY_MASK (A_APPLY_NONE | A_APPLY_SECOND | A_APPLY_PRIM)
#define ALL_ACTIONS (APPLY_MASK | A_ARM_DECIDE | A_ARM_RETRY | A_NEW_TERM | A_REJECT | A_SPLIT)
#define TAKE (A_APPLY_PRIM | A_NEW_TERM)

/* A failed check names the cell, so a broken row is found without a debugger. */
#define CHECK(cond, where) \
	do { \
		if (!(cond)) \
			fail_msg("%s: expected %s", where, #cond); \
	} while (0)

static bool is_command(enum sm_event e)
{
	return e == E_START || e == E_STOP || e == E_RESTART || e == E_SWAP || e == E_FORCESTART ||
	       e == E_START_PRIM || e == E_START_SECOND;
}

static bool is_peer_event(enum sm_event e)
{
	return e >= E_PEER_LOST && e < E_DECIDE_TIMEOUT;
}

/* States entered with an apply action, left when the apply completes. */
static bool is_applying(enum sm_state s)
{
	switch (s) {
	case S_GO_PRIM: case S_GO_SECOND: case S_HANDOVER:
	case S_STOPPING: case S_RESTART_P: case S_RESTART_S: case S_FENCING:
		return true;
	default:
		return false;
	}
}

static bool is_running_role(enum sm_state s)
{
	return s == S_ALONE || s == S_PRIM;
}

static bool is_started(enum sm_state s)
{
	return s != S_STOP && s != S_STOPPING;
}

static int nbits(unsigned x)
{
	return __builtin_popcount(x);
}

/* ---- 1. the table, cell by cell ---------------------------------------- */

static void table_every_cell(void **st)
{
	for (int si = 0; si < S__COUNT; si++) {
		for (int ei = 0; ei < E__COUNT; ei++) {
			enum sm_state s = (enum sm_state)si;
			enum sm_event e = (enum sm_event)ei;
			struct sm_result r = sm_step(s, e);
			unsigned apply = r.actions & APPLY_MASK;
			bool moves = r.next != s;
			const char *why = NULL;
			char where[96];

			snprintf(where, sizeof(where), "%s + %s -> %s", sm_state_str(s), sm_event_str(e),
			         sm_state_str(r.next));
			CHECK((unsigned)r.next < S__COUNT, where);
			CHECK(r.reason != NULL, where);
			CHECK(r.reason[0] != '\0', where);
			CHECK(strcmp(r.reason, "invalid state or event") != 0, where);
			CHECK((r.actions & ~(unsigned)ALL_ACTIONS) == 0, where);

			/* Refusals: only commands, and nothing happens. */
			if (r.actions & A_REJECT) {
				CHECK(is_command(e), where);
				CHECK(!moves, where);
				CHECK(r.actions == A_REJECT, where);
			}
			CHECK(sm_rejects(s, e, &why) == ((r.actions & A_REJECT) != 0), where);
			CHECK(why == r.reason, where);

			/* Apply actions agree with the state they lead to. */
			CHECK(nbits(apply) <= 1, where);
			if (apply & A_APPLY_PRIM)
				CHECK(r.next == S_GO_PRIM, where);
			if (apply & A_APPLY_SECOND)
				CHECK(r.next == S_GO_SECOND || r.next == S_HANDOVER, where);
			if (apply & A_APPLY_NONE)
				CHECK(r.next == S_STOPPING || r.next == S_RESTART_P || r.next == S_RESTART_S ||
				      r.next == S_FENCING, where);
			if (moves && is_applying(r.next))
				CHECK(nbits(apply) == 1, where);
			if (!moves)
				CHECK(apply == 0, where);

			/* Timers: armed on entry, never again while staying. */
			CHECK(((r.actions & A_ARM_DECIDE) != 0) == (r.next == S_WAIT && moves), where);
			CHECK(((r.actions & A_ARM_RETRY) != 0) == (r.next == S_BLOCKED && moves), where);

			/* A new claim only comes with taking the PRIM role. */
			if (r.actions & A_NEW_TERM)
				CHECK(apply == A_APPLY_PRIM, where);
			/* A split brain is only resolved when the peer runs the role too. */
			if (r.actions & A_SPLIT) {
				CHECK(e == E_PEER_ACTIVE_WIN || e == E_PEER_ACTIVE_LOSE, where);
				CHECK(sm_is_primary(s), where);
			}

			/* Results move exactly the states that wait for them. */
			if (e == E_APPLY_OK || e == E_APPLY_FAIL)
				CHECK(moves == is_applying(s), where);
			if (e == E_APPLY_FAIL && is_applying(s))
				CHECK(r.next == S_STOPPING || r.next == S_STOP || (s == S_FENCING && r.next == S_HELD), where);
			/* Only a node running the PRIM role fences, and it releases everything. */
			if (e == E_FENCE && moves) {
				CHECK(sm_is_primary(s), where);
				CHECK(r.next == S_FENCING && r.actions == A_APPLY_NONE, where);
			}
			if (e == E_VIP_IN_USE)
				CHECK(moves == (s == S_GO_PRIM), where);
			if (e == E_DECIDE_TIMEOUT)
				CHECK(moves == (s == S_WAIT || s == S_RESUME), where);
			if (e == E_RETRY)
				CHECK(moves == (s == S_BLOCKED), where);

			/* stop always works, and does nothing when already stopping;
			 * so does a failure that stops the node. */
			if (e == E_STOP || e == E_FAILED) {
				if (s == S_STOP || s == S_STOPPING) {
					CHECK(!moves, where);
					CHECK(r.actions == 0, where);
				} else {
					CHECK(r.next == S_STOPPING, where);
					CHECK(r.actions == A_APPLY_NONE, where);
				}
			}
			/* Stopped and stopping nodes do not act on their peer. */
			if ((s == S_STOP || s == S_STOPPING) && is_peer_event(e))
				CHECK(!moves && r.actions == 0, where);
		}
	}
}

static void table_out_of_range(void **st)
{
	struct sm_result r = sm_step(S__COUNT, E_START);

	assert_int_equal(r.next, S__COUNT);
	assert_int_equal(r.actions, 0);
	assert_non_null(r.reason);
	r = sm_step(S_PRIM, E__COUNT);
	assert_int_equal(r.next, S_PRIM);
	assert_int_equal(r.actions, 0);
	r = sm_step((enum sm_state)-1, E_STOP);
	assert_int_equal(r.actions, 0);
	assert_false(sm_rejects(S__COUNT, E_START, NULL));
}

static void strings(void **st)
{
	for (int i = 0; i < S__COUNT; i++) {
		assert_string_not_equal(sm_state_str((enum sm_state)i), "?");
		for (int j = 0; j < i; j++)
			assert_string_not_equal(sm_state_str((enum sm_state)i), sm_state_str((enum sm_state)j));
	}
	for (int i = 0; i < E__COUNT; i++) {
		assert_string_not_equal(sm_event_str((enum sm_event)i), "?");
		for (int j = 0; j < i; j++)
			assert_string_not_equal(sm_event_str((enum sm_event)i), sm_event_str((enum sm_event)j));
	}
	for (unsigned a = 1; a <= A_SPLIT; a <<= 1) {
		assert_string_not_equal(sm_action_str((enum sm_action)a), "?");
		assert_string_not_equal(sm_action_str((enum sm_action)a), "none");
	}
	assert_string_equal(sm_action_str(A_NONE), "none");
	assert_string_equal(sm_display_str(D_STOP), "STOP");
	assert_string_equal(sm_display_str(D_WAIT), "WAIT");
	assert_string_equal(sm_display_str(D_ALONE), "ALONE");
	assert_string_equal(sm_display_str(D_PRIM), "PRIM");
	assert_string_equal(sm_display_str(D_SECOND), "SECOND");
	assert_string_equal(sm_color_str(C_GREEN), "green");
	assert_string_equal(sm_color_str(C_MAGENTA), "magenta");
	assert_string_equal(sm_color_str(C_RED), "red");
	/* Names the driver parses back from node.json. */
	assert_string_equal(sm_state_str(S_STOP), "STOP");
	assert_string_equal(sm_state_str(S_PRIM), "PRIM");

	assert_string_equal(sm_state_str(S__COUNT), "?");
	assert_string_equal(sm_event_str(E__COUNT), "?");
	assert_string_equal(sm_action_str((enum sm_action)(A_SPLIT << 1)), "?");
	assert_string_equal(sm_action_str((enum sm_action)(A_APPLY_NONE | A_APPLY_PRIM)), "?");
	assert_string_equal(sm_display_str((enum sm_display)5), "?");
	assert_string_equal(sm_color_str((enum sm_color)3), "?");
}

/* docs/state-rules.md, "What operators see". */
static void display(void **st)
{
	static const struct {
		enum sm_state s;
		enum sm_display d;
		enum sm_color c;
	} want[] = {
		{ S_STOP, D_STOP, C_RED },         { S_STOPPING, D_STOP, C_MAGENTA },
		{ S_WAIT, D_WAIT, C_MAGENTA },     { S_RESUME, D_WAIT, C_MAGENTA },
		{ S_BLOCKED, D_WAIT, C_RED },      { S_GO_PRIM, D_ALONE, C_MAGENTA },
		{ S_ALONE, D_ALONE, C_GREEN },     { S_PRIM, D_PRIM, C_GREEN },
		{ S_HANDOVER, D_PRIM, C_MAGENTA }, { S_RESTART_P, D_PRIM, C_MAGENTA },
		{ S_GO_SECOND, D_SECOND, C_MAGENTA }, { S_SECOND, D_SECOND, C_GREEN },
		{ S_SECOND_HO, D_SECOND, C_MAGENTA }, { S_RESTART_S, D_SECOND, C_MAGENTA },
		{ S_HELD, D_WAIT, C_RED },         { S_FENCING, D_WAIT, C_MAGENTA },
	};
	bool covered[S__COUNT] = { false };
	enum sm_display d;
	enum sm_color c;

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		sm_display(want[i].s, &d, &c);
		if (d != want[i].d || c != want[i].c)
			fail_msg("%s shows %s/%s, documented %s/%s", sm_state_str(want[i].s), sm_display_str(d),
			         sm_color_str(c), sm_display_str(want[i].d), sm_color_str(want[i].c));
		covered[want[i].s] = true;
	}
	for (int s = 0; s < S__COUNT; s++)
		if (!covered[s])
			fail_msg("%s has no documented display", sm_state_str((enum sm_state)s));
	/* Green only where nothing is under way; magenta exactly where an apply runs. */
	for (int s = 0; s < S__COUNT; s++) {
		sm_display((enum sm_state)s, &d, &c);
		if (is_applying((enum sm_state)s))
			assert_int_equal(c, C_MAGENTA);
	}
	sm_display(S__COUNT, &d, &c);
	assert_int_equal(d, D_STOP);
	assert_int_equal(c, C_RED);
}

static void is_primary(void **st)
{
	for (int i = 0; i < S__COUNT; i++) {
		enum sm_state s = (enum sm_state)i;
		bool want = s == S_RESUME || s == S_GO_PRIM || s == S_ALONE || s == S_PRIM ||
		            s == S_HANDOVER || s == S_RESTART_P || s == S_FENCING;

		if (sm_is_primary(s) != want)
			fail_msg("sm_is_primary(%s) is %d", sm_state_str(s), !want);
	}
}

/* How a peer state is seen; the WIN/LOSE side depends on index or term. */
enum kind { K_STOP, K_STOPPING, K_WAIT, K_RESUMING, K_ACTIVE, K_SECOND, K_HANDOVER, K_BLOCKED };

static enum kind kind_of(enum sm_state s)
{
	switch (s) {
	case S_STOP: return K_STOP;
	case S_BLOCKED: return K_BLOCKED;
	case S_STOPPING: case S_HANDOVER: case S_FENCING: return K_STOPPING;
	case S_WAIT: return K_WAIT;
	case S_RESUME: return K_RESUMING;
	case S_GO_PRIM: case S_ALONE: case S_PRIM: case S_RESTART_P: return K_ACTIVE;
	case S_GO_SECOND: case S_SECOND: case S_RESTART_S: case S_HELD: return K_SECOND;
	case S_SECOND_HO: return K_HANDOVER;
	default: return K_STOP;
	}
}

static void classify(void **st)
{
	static const uint64_t terms[][2] = { { 3, 7 }, { 5, 5 }, { 9, 2 } }; /* mine, peer's */

	for (int ps = 0; ps <= S__COUNT; ps++) {
		for (int me = 0; me < 2; me++) {
			for (size_t t = 0; t < 3; t++) {
				for (int reach = 0; reach < 4; reach++) {
					/* bit 0: reachable; bit 1: failover off */
					bool fo = !(reach & 2);
					struct sm_peer p = { reach & 1, (enum sm_state)ps, terms[t][1], 1 - me };
					enum sm_event got = sm_classify_peer(&p, terms[t][0], me, fo);
					bool preferred = me == 0;
					bool older = terms[t][0] < terms[t][1] || (terms[t][0] == terms[t][1] && preferred);
					enum sm_event want;

					if (!(reach & 1)) {
						want = fo ? E_PEER_LOST : E_PEER_LOST_HELD;
					} else {
						switch (kind_of((enum sm_state)ps)) {
						case K_STOP: want = E_PEER_STOP; break;
						case K_STOPPING: want = E_PEER_STOPPING; break;
						case K_WAIT: want = preferred ? E_PEER_WAIT_WIN : E_PEER_WAIT_LOSE; break;
						case K_RESUMING: want = older ? E_PEER_RESUMING_WIN : E_PEER_RESUMING_LOSE; break;
						case K_ACTIVE: want = older ? E_PEER_ACTIVE_WIN : E_PEER_ACTIVE_LOSE; break;
						case K_SECOND: want = preferred ? E_PEER_SECOND_WIN : E_PEER_SECOND_LOSE; break;
						case K_BLOCKED: want = E_PEER_BLOCKED; break;
						default: want = E_PEER_HANDOVER; break;
						}
					}
					if (got != want)
						fail_msg("peer %s (term %llu, index %d) seen by index %d term %llu%s: %s, want %s",
						         ps < S__COUNT ? sm_state_str((enum sm_state)ps) : "unknown",
						         (unsigned long long)terms[t][1], 1 - me, me,
						         (unsigned long long)terms[t][0], reach ? "" : " (unreachable)",
						         sm_event_str(got), sm_event_str(want));
				}
			}
		}
	}
	/* A state number from a newer peer is not trusted to run anything. */
	struct sm_peer odd = { true, (enum sm_state)200, 1, 1 };

	assert_int_equal(sm_classify_peer(&odd, 1, 0, true), E_PEER_STOP);
}

/* Two nodes looking at each other always agree on who wins a tie. */
static void classify_antisymmetric(void **st)
{
	static const uint64_t terms[][2] = { { 3, 7 }, { 5, 5 }, { 9, 2 } };

	for (int a = 0; a < S__COUNT; a++) {
		for (int b = 0; b < S__COUNT; b++) {
			for (size_t t = 0; t < 3; t++) {
				struct sm_peer pb = { true, (enum sm_state)b, terms[t][1], 1 };
				struct sm_peer pa = { true, (enum sm_state)a, terms[t][0], 0 };
				enum sm_event ea = sm_classify_peer(&pb, terms[t][0], 0, true); /* A sees B */
				enum sm_event eb = sm_classify_peer(&pa, terms[t][1], 1, true); /* B sees A */
				bool a_wins = ea == E_PEER_WAIT_WIN || ea == E_PEER_RESUMING_WIN ||
				              ea == E_PEER_ACTIVE_WIN || ea == E_PEER_SECOND_WIN;
				bool b_wins = eb == E_PEER_WAIT_WIN || eb == E_PEER_RESUMING_WIN ||
				              eb == E_PEER_ACTIVE_WIN || eb == E_PEER_SECOND_WIN;
				bool same_basis = (kind_of((enum sm_state)a) == K_ACTIVE || kind_of((enum sm_state)a) == K_RESUMING) ==
				                  (kind_of((enum sm_state)b) == K_ACTIVE || kind_of((enum sm_state)b) == K_RESUMING);
				bool both_tie = (kind_of((enum sm_state)a) >= K_WAIT && kind_of((enum sm_state)a) <= K_SECOND) &&
				                (kind_of((enum sm_state)b) >= K_WAIT && kind_of((enum sm_state)b) <= K_SECOND);

				/* Both decide on the same basis (both by term, or both by
				 * index): then exactly one of them wins. */
				if (both_tie && same_basis && a_wins == b_wins)
					fail_msg("%s (term %llu) and %s (term %llu) both %s", sm_state_str((enum sm_state)a),
					         (unsigned long long)terms[t][0], sm_state_str((enum sm_state)b),
					         (unsigned long long)terms[t][1], a_wins ? "win" : "lose");
			}
		}
	}
}

/* ---- 2. scenarios ----------------------------------------------------- */

/* Two nodes for a scenario: index 0 is node1, listed first, preferred. */
struct duo {
	enum sm_state s[2];
	uint64_t term[2];
	bool link;
};

static void feed_at(struct duo *d, int i, enum sm_event e, enum sm_state next, unsigned actions, int line)
{
	struct sm_result r = sm_step(d->s[i], e);

	if (r.next != next || r.actions != actions)
		fail_msg("line %d: node%d %s + %s -> %s actions 0x%x (%s); expected %s actions 0x%x", line, i + 1,
		         sm_state_str(d->s[i]), sm_event_str(e), sm_state_str(r.next), r.actions, r.reason,
		         sm_state_str(next), actions);
	if (r.actions & A_NEW_TERM)
		d->term[i] = (d->term[0] > d->term[1] ? d->term[0] : d->term[1]) + 1;
	d->s[i] = r.next;
}

static enum sm_event peer_event(const struct duo *d, int i)
{
	struct sm_peer p = { d->link, d->s[1 - i], d->term[1 - i], 1 - i };

	return sm_classify_peer(&p, d->term[i], i, true);
}

/* Node i sees its peer as it is now: the event must be pe. */
static void peer_at(struct duo *d, int i, enum sm_event pe, enum sm_state next, unsigned actions, int line)
{
	enum sm_event got = peer_event(d, i);

	if (got != pe)
		fail_msg("line %d: node%d (%s) sees peer %s as %s, expected %s", line, i + 1, sm_state_str(d->s[i]),
		         sm_state_str(d->s[1 - i]), sm_event_str(got), sm_event_str(pe));
	feed_at(d, i, pe, next, actions, line);
}

#define FEED(d, i, e, next, act) feed_at(d, i, e, next, act, __LINE__)
#define PEER(d, i, pe, next, act) peer_at(d, i, pe, next, act, __LINE__)
#define N1 0
#define N2 1

/* Both start: node1 (preferred) becomes PRIM, node2 SECOND. */
static struct duo both_started(void)
{
	struct duo d = { { S_STOP, S_STOP }, { 0, 0 }, true };

	FEED(&d, N1, E_START, S_WAIT, A_ARM_DECIDE);
	FEED(&d, N2, E_START, S_WAIT, A_ARM_DECIDE);
	PEER(&d, N2, E_PEER_WAIT_LOSE, S_GO_SECOND, A_APPLY_SECOND);
	PEER(&d, N1, E_PEER_SECOND_WIN, S_GO_PRIM, TAKE);
	assert_true(d.term[N1] > d.term[N2]);
	PEER(&d, N2, E_PEER_ACTIVE_WIN, S_GO_SECOND, 0); /* already on its way to SECOND */
	FEED(&d, N1, E_APPLY_OK, S_ALONE, 0);
	FEED(&d, N2, E_APPLY_OK, S_SECOND, 0);
	PEER(&d, N1, E_PEER_SECOND_WIN, S_PRIM, 0);
	PEER(&d, N2, E_PEER_ACTIVE_WIN, S_SECOND, 0);
	return d;
}

static void scenario_first_start(void **st)
{
	struct duo d = both_started();

	assert_int_equal(d.s[N1], S_PRIM);
	assert_int_equal(d.s[N2], S_SECOND);

	/* The other interleaving: both see each other WAIT first. */
	struct duo e = { { S_STOP, S_STOP }, { 0, 0 }, true };

	FEED(&e, N2, E_START, S_WAIT, A_ARM_DECIDE);
	FEED(&e, N1, E_START, S_WAIT, A_ARM_DECIDE);
	PEER(&e, N1, E_PEER_WAIT_WIN, S_GO_PRIM, TAKE);
	PEER(&e, N2, E_PEER_ACTIVE_WIN, S_GO_SECOND, A_APPLY_SECOND);
	FEED(&e, N2, E_APPLY_OK, S_SECOND, 0);
	FEED(&e, N1, E_APPLY_OK, S_ALONE, 0);
	PEER(&e, N1, E_PEER_SECOND_WIN, S_PRIM, 0);

	/* One node alone: it decides after the timeout. */
	struct duo f = { { S_STOP, S_STOP }, { 0, 0 }, false };

	FEED(&f, N2, E_START, S_WAIT, A_ARM_DECIDE);
	FEED(&f, N2, E_DECIDE_TIMEOUT, S_GO_PRIM, TAKE);
	FEED(&f, N2, E_APPLY_OK, S_ALONE, 0);
	/* node1 comes later: the running node keeps the service. */
	f.link = true;
	FEED(&f, N1, E_START, S_WAIT, A_ARM_DECIDE);
	PEER(&f, N2, E_PEER_WAIT_LOSE, S_ALONE, 0);
	PEER(&f, N1, E_PEER_ACTIVE_WIN, S_GO_SECOND, A_APPLY_SECOND);
	FEED(&f, N1, E_APPLY_OK, S_SECOND, 0);
	PEER(&f, N2, E_PEER_SECOND_LOSE, S_PRIM, 0);
}

static void scenario_failover_and_return(void **st)
{
	struct duo d = both_started();
	uint64_t before = d.term[N1];

	/* node1's machine dies: node2 hears nothing on any network. */
	d.link = false;
	d.s[N1] = S_STOP;
	PEER(&d, N2, E_PEER_LOST, S_GO_PRIM, TAKE);
	assert_true(d.term[N2] > before);
	FEED(&d, N2, E_APPLY_OK, S_ALONE, 0);
	PEER(&d, N2, E_PEER_LOST, S_ALONE, 0);

	/* node1 is back: it joins as SECOND, node2 keeps the service. */
	d.link = true;
	PEER(&d, N2, E_PEER_STOP, S_ALONE, 0);
	FEED(&d, N1, E_START, S_WAIT, A_ARM_DECIDE);
	PEER(&d, N2, E_PEER_WAIT_LOSE, S_ALONE, 0);
	PEER(&d, N1, E_PEER_ACTIVE_WIN, S_GO_SECOND, A_APPLY_SECOND);
	PEER(&d, N2, E_PEER_SECOND_LOSE, S_PRIM, 0);
	FEED(&d, N1, E_APPLY_OK, S_SECOND, 0);
	PEER(&d, N1, E_PEER_ACTIVE_WIN, S_SECOND, 0);
	PEER(&d, N2, E_PEER_SECOND_LOSE, S_PRIM, 0);

	/* The SECOND fails over from every SECOND-side state. */
	const enum sm_state seconds[] = { S_SECOND, S_GO_SECOND, S_RESTART_S, S_SECOND_HO };

	for (size_t i = 0; i < sizeof(seconds) / sizeof(seconds[0]); i++) {
		struct sm_result r = sm_step(seconds[i], E_PEER_LOST);

		assert_int_equal(r.next, S_GO_PRIM);
		assert_int_equal(r.actions, TAKE);
	}
	/* The PRIM losing its SECOND goes on alone. */
	d.link = false;
	PEER(&d, N2, E_PEER_LOST, S_ALONE, 0);
}

/* Stop scripts of the PRIM finish before the SECOND runs its start scripts. */
static void scenario_clean_stop(void **st)
{
	struct duo d = both_started();

	FEED(&d, N1, E_STOP, S_STOPPING, A_APPLY_NONE);
	PEER(&d, N2, E_PEER_STOPPING, S_SECOND, 0);
	FEED(&d, N1, E_START, S_STOPPING, A_REJECT);
	FEED(&d, N1, E_APPLY_OK, S_STOP, 0);
	PEER(&d, N2, E_PEER_STOP, S_GO_PRIM, TAKE);
	PEER(&d, N1, E_PEER_ACTIVE_WIN, S_STOP, 0);
	FEED(&d, N2, E_APPLY_OK, S_ALONE, 0);
	PEER(&d, N2, E_PEER_STOP, S_ALONE, 0);

	/* Stopping the SECOND leaves the PRIM alone. */
	struct duo e = both_started();

	FEED(&e, N2, E_STOP, S_STOPPING, A_APPLY_NONE);
	PEER(&e, N1, E_PEER_STOPPING, S_PRIM, 0);
	FEED(&e, N2, E_APPLY_OK, S_STOP, 0);
	PEER(&e, N1, E_PEER_STOP, S_ALONE, 0);

	/* A failed stop still ends in STOP (and says so). */
	struct sm_result r = sm_step(S_STOPPING, E_APPLY_FAIL);

	assert_int_equal(r.next, S_STOP);
	assert_non_null(strstr(r.reason, "fail"));
}

static void scenario_swap(void **st)
{
	struct duo d = both_started();

	FEED(&d, N2, E_SWAP, S_SECOND, A_REJECT); /* swap runs on the PRIM */
	FEED(&d, N1, E_SWAP, S_HANDOVER, A_APPLY_SECOND);
	PEER(&d, N2, E_PEER_STOPPING, S_SECOND, 0);
	FEED(&d, N1, E_SWAP, S_HANDOVER, 0);
	FEED(&d, N1, E_APPLY_OK, S_SECOND_HO, 0);
	PEER(&d, N2, E_PEER_HANDOVER, S_GO_PRIM, TAKE);
	PEER(&d, N1, E_PEER_ACTIVE_WIN, S_SECOND, 0);
	FEED(&d, N2, E_APPLY_OK, S_ALONE, 0);
	PEER(&d, N2, E_PEER_SECOND_LOSE, S_PRIM, 0);
	PEER(&d, N1, E_PEER_ACTIVE_WIN, S_SECOND, 0);

	/* And back. */
	FEED(&d, N2, E_SWAP, S_HANDOVER, A_APPLY_SECOND);
	FEED(&d, N2, E_APPLY_OK, S_SECOND_HO, 0);
	PEER(&d, N1, E_PEER_HANDOVER, S_GO_PRIM, TAKE);
	PEER(&d, N2, E_PEER_ACTIVE_WIN, S_SECOND, 0);
	FEED(&d, N1, E_APPLY_OK, S_ALONE, 0);
	PEER(&d, N1, E_PEER_SECOND_WIN, S_PRIM, 0);

	/* The peer vanishes during the swap: the releasing node takes the role back. */
	struct duo e = both_started();

	FEED(&e, N1, E_SWAP, S_HANDOVER, A_APPLY_SECOND);
	e.link = false;
	PEER(&e, N1, E_PEER_LOST, S_GO_PRIM, A_APPLY_PRIM);
	struct duo f = both_started();

	FEED(&f, N1, E_SWAP, S_HANDOVER, A_APPLY_SECOND);
	FEED(&f, N1, E_APPLY_OK, S_SECOND_HO, 0);
	f.link = false;
	PEER(&f, N1, E_PEER_LOST, S_GO_PRIM, TAKE);
	/* No swap without a SECOND. */
	FEED(&f, N1, E_APPLY_OK, S_ALONE, 0);
	FEED(&f, N1, E_SWAP, S_ALONE, A_REJECT);
}

static void scenario_restart(void **st)
{
	struct duo d = both_started();
	uint64_t term = d.term[N1];

	FEED(&d, N1, E_RESTART, S_RESTART_P, A_APPLY_NONE);
	PEER(&d, N2, E_PEER_ACTIVE_WIN, S_SECOND, 0); /* no failover during a restart */
	FEED(&d, N1, E_RESTART, S_RESTART_P, 0);
	FEED(&d, N1, E_APPLY_OK, S_GO_PRIM, A_APPLY_PRIM);
	assert_true(d.term[N1] == term); /* the same claim, not a new one */
	PEER(&d, N2, E_PEER_ACTIVE_WIN, S_SECOND, 0);
	FEED(&d, N1, E_APPLY_OK, S_ALONE, 0);
	PEER(&d, N1, E_PEER_SECOND_WIN, S_PRIM, 0);

	/* The SECOND restarts its own role. */
	FEED(&d, N2, E_RESTART, S_RESTART_S, A_APPLY_NONE);
	PEER(&d, N1, E_PEER_SECOND_WIN, S_PRIM, 0);
	FEED(&d, N2, E_APPLY_OK, S_GO_SECOND, A_APPLY_SECOND);
	FEED(&d, N2, E_APPLY_OK, S_SECOND, 0);

	/* A failed restart stops the node; its peer then takes over. */
	FEED(&d, N1, E_RESTART, S_RESTART_P, A_APPLY_NONE);
	FEED(&d, N1, E_APPLY_FAIL, S_STOPPING, A_APPLY_NONE);
	FEED(&d, N1, E_APPLY_OK, S_STOP, 0);
	PEER(&d, N2, E_PEER_STOP, S_GO_PRIM, TAKE);

	/* Restart needs a running node. */
	struct sm_result r = sm_step(S_STOP, E_RESTART);

	assert_int_equal(r.actions, A_REJECT);
	r = sm_step(S_WAIT, E_RESTART);
	assert_int_equal(r.actions, A_REJECT);
}

static void scenario_forcestart(void **st)
{
	struct duo d = { { S_STOP, S_STOP }, { 4, 6 }, false };

	FEED(&d, N1, E_FORCESTART, S_GO_PRIM, TAKE);
	assert_true(d.term[N1] == 7);
	FEED(&d, N1, E_FORCESTART, S_GO_PRIM, 0);
	FEED(&d, N1, E_APPLY_OK, S_ALONE, 0);

	/* From WAIT: no waiting for the peer. */
	struct duo e = { { S_STOP, S_STOP }, { 0, 0 }, false };

	FEED(&e, N2, E_START, S_WAIT, A_ARM_DECIDE);
	FEED(&e, N2, E_FORCESTART, S_GO_PRIM, TAKE);
	/* A stopping node finishes first. */
	struct sm_result r = sm_step(S_STOPPING, E_FORCESTART);

	assert_int_equal(r.actions, A_REJECT);
}

/* vigild restarted (same kernel boot) while the node held the PRIM role. */
static void scenario_resume(void **st)
{
	struct duo d = both_started();

	d.s[N1] = S_RESUME; /* what node_start() enters */
	PEER(&d, N2, E_PEER_RESUMING_WIN, S_SECOND, 0);
	PEER(&d, N1, E_PEER_SECOND_WIN, S_GO_PRIM, A_APPLY_PRIM); /* the same claim */
	FEED(&d, N1, E_APPLY_OK, S_ALONE, 0);
	PEER(&d, N1, E_PEER_SECOND_WIN, S_PRIM, 0);

	/* The peer took over meanwhile: the restarted node yields. */
	struct duo e = both_started();

	e.link = false;
	e.s[N1] = S_STOP;
	PEER(&e, N2, E_PEER_LOST, S_GO_PRIM, TAKE);
	FEED(&e, N2, E_APPLY_OK, S_ALONE, 0);
	e.link = true;
	e.s[N1] = S_RESUME;
	PEER(&e, N2, E_PEER_RESUMING_LOSE, S_ALONE, 0);
	PEER(&e, N1, E_PEER_ACTIVE_WIN, S_GO_SECOND, A_APPLY_SECOND);
	FEED(&e, N1, E_APPLY_OK, S_SECOND, 0);
	PEER(&e, N2, E_PEER_SECOND_LOSE, S_PRIM, 0);

	/* No peer at all: after the deciding time it resumes alone. */
	struct duo f = { { S_RESUME, S_STOP }, { 3, 0 }, false };

	FEED(&f, N1, E_DECIDE_TIMEOUT, S_GO_PRIM, A_APPLY_PRIM);
	/* Both resumed: the older claim keeps it. */
	struct duo g = { { S_RESUME, S_RESUME }, { 5, 3 }, true };

	PEER(&g, N1, E_PEER_RESUMING_LOSE, S_GO_SECOND, A_APPLY_SECOND);
	PEER(&g, N2, E_PEER_SECOND_LOSE, S_GO_PRIM, A_APPLY_PRIM);
}

static void scenario_vip_in_use(void **st)
{
	struct duo d = { { S_STOP, S_STOP }, { 0, 0 }, false };
	enum sm_display disp;
	enum sm_color color;

	FEED(&d, N1, E_START, S_WAIT, A_ARM_DECIDE);
	FEED(&d, N1, E_DECIDE_TIMEOUT, S_GO_PRIM, TAKE);
	FEED(&d, N1, E_VIP_IN_USE, S_BLOCKED, A_ARM_RETRY);
	sm_display(d.s[N1], &disp, &color);
	assert_int_equal(disp, D_WAIT);
	assert_int_equal(color, C_RED);
	FEED(&d, N1, E_VIP_IN_USE, S_BLOCKED, 0);
	PEER(&d, N1, E_PEER_LOST, S_BLOCKED, 0);
	FEED(&d, N1, E_RETRY, S_GO_PRIM, A_APPLY_PRIM);
	FEED(&d, N1, E_VIP_IN_USE, S_BLOCKED, A_ARM_RETRY);
	FEED(&d, N1, E_RETRY, S_GO_PRIM, A_APPLY_PRIM);
	FEED(&d, N1, E_APPLY_OK, S_ALONE, 0);

	/* A blocked node whose peer runs the service joins as SECOND. */
	struct duo e = { { S_BLOCKED, S_ALONE }, { 2, 1 }, true };

	PEER(&e, N2, E_PEER_BLOCKED, S_ALONE, 0);
	PEER(&e, N1, E_PEER_ACTIVE_LOSE, S_GO_SECOND, A_APPLY_SECOND);

	/* The VIP is held by some other host while the peer starts: the peer
	 * stands by as SECOND instead of trying for the VIP too (which made the
	 * role ping-pong between the nodes). */
	struct duo f = { { S_STOP, S_STOP }, { 0, 0 }, false };

	FEED(&f, N1, E_START, S_WAIT, A_ARM_DECIDE);
	FEED(&f, N1, E_DECIDE_TIMEOUT, S_GO_PRIM, TAKE);
	FEED(&f, N1, E_VIP_IN_USE, S_BLOCKED, A_ARM_RETRY);
	f.link = true;
	FEED(&f, N2, E_START, S_WAIT, A_ARM_DECIDE);
	PEER(&f, N1, E_PEER_WAIT_WIN, S_BLOCKED, 0);
	PEER(&f, N2, E_PEER_BLOCKED, S_GO_SECOND, A_APPLY_SECOND);
	FEED(&f, N2, E_APPLY_OK, S_SECOND, 0);
	PEER(&f, N2, E_PEER_BLOCKED, S_SECOND, 0);
	PEER(&f, N1, E_PEER_SECOND_WIN, S_BLOCKED, 0);
	FEED(&f, N1, E_RETRY, S_GO_PRIM, A_APPLY_PRIM);
	PEER(&f, N2, E_PEER_ACTIVE_WIN, S_SECOND, 0);
	FEED(&f, N1, E_APPLY_OK, S_ALONE, 0);
	PEER(&f, N1, E_PEER_SECOND_WIN, S_PRIM, 0);
	/* A node that resumed holding the VIP takes it back from a blocked peer. */
	assert_int_equal(sm_step(S_RESUME, E_PEER_BLOCKED).next, S_GO_PRIM);

	/* A blocked node can be stopped. */
	struct sm_result r = sm_step(S_BLOCKED, E_STOP);

	assert_int_equal(r.next, S_STOPPING);
}

/* No witness: both run alone during the split; on heal the older claim wins. */
static void scenario_split_brain(void **st)
{
	struct duo d = both_started();

	d.link = false;
	PEER(&d, N2, E_PEER_LOST, S_GO_PRIM, TAKE);
	PEER(&d, N1, E_PEER_LOST, S_ALONE, 0);
	FEED(&d, N2, E_APPLY_OK, S_ALONE, 0);
	assert_true(d.term[N1] < d.term[N2]);
	d.link = true;
	PEER(&d, N1, E_PEER_ACTIVE_WIN, S_ALONE, A_SPLIT);
	PEER(&d, N2, E_PEER_ACTIVE_LOSE, S_GO_SECOND, A_APPLY_SECOND | A_SPLIT);
	PEER(&d, N1, E_PEER_SECOND_WIN, S_PRIM, 0);
	FEED(&d, N2, E_APPLY_OK, S_SECOND, 0);
	PEER(&d, N2, E_PEER_ACTIVE_LOSE, S_SECOND, 0);

	/* The non-preferred node held it before the split: it keeps it. */
	struct duo e = { { S_ALONE, S_ALONE }, { 9, 4 }, true };

	PEER(&e, N2, E_PEER_ACTIVE_WIN, S_ALONE, A_SPLIT);
	PEER(&e, N1, E_PEER_ACTIVE_LOSE, S_GO_SECOND, A_APPLY_SECOND | A_SPLIT);
	/* Equal claims: the preferred node keeps it. */
	struct duo f = { { S_PRIM, S_ALONE }, { 4, 4 }, true };

	PEER(&f, N2, E_PEER_ACTIVE_LOSE, S_GO_SECOND, A_APPLY_SECOND | A_SPLIT);
	PEER(&f, N1, E_PEER_SECOND_WIN, S_PRIM, 0);
}

/* ---- 3. model check of two nodes --------------------------------------- */

/* Two models of the same two nodes:
 *
 * INTERLEAVED (as briefed): a node steps on the peer event for the peer's
 * current state, at any moment the model chooses, one event at a time.
 *
 * DRIVER (as node.c runs it): a node knows its peer only through the last
 * heartbeat it received (view v, k), which may be stale; after every event
 * it feeds the peer event from that view again until its state stops
 * changing (process()); it notices a broken link only when its own timeout
 * fires.
 *
 * Terms are kept as ranks (0..3) of the four values that matter: each
 * node's own term t and what it last heard of the peer's, k. A new term is
 * max(t, k) + 1 (node.c enter()). */
struct js {
	uint8_t s[2];
	uint8_t t[2], k[2];
	uint8_t v[2];        /* DRIVER: the peer's state as last heard */
	bool r[2], heard[2]; /* DRIVER: peer reachable / heard since vigild started */
	bool link;
	bool off[2];         /* vigilctl failover off (kept across daemon restarts) */
};

_Static_assert(S__COUNT <= 16, "a state fits in 4 bits of the joint state code");

enum model { M_INTERLEAVED, M_DRIVER };

struct mc_opts {
	const char *name;
	enum model model;
	bool stale_terms;    /* INTERLEAVED: k freezes while the link is down */
	bool daemon_restart; /* vigild may be killed and started again */
};

/* Transition labels beyond sm_event. */
enum {
	X_LINK_UP = 100, X_LINK_DOWN, X_HEARTBEAT, X_NOTICE_LOST,
	X_RESTART_RESUME, X_RESTART_WAIT, X_RESTART_STOPPING,
	X_FAILOVER_OFF, X_FAILOVER_ON,
};

struct label {
	int8_t node; /* -1: the link */
	uint8_t what;
};

static uint32_t js_code(const struct js *j)
{
	return (uint32_t)j->s[0] | (uint32_t)j->s[1] << 4 | (uint32_t)j->v[0] << 8 | (uint32_t)j->v[1] << 12 |
	       (uint32_t)j->t[0] << 16 | (uint32_t)j->t[1] << 18 | (uint32_t)j->k[0] << 20 |
	       (uint32_t)j->k[1] << 22 | (uint32_t)j->r[0] << 24 | (uint32_t)j->r[1] << 25 |
	       (uint32_t)j->heard[0] << 26 | (uint32_t)j->heard[1] << 27 | (uint32_t)j->link << 28 |
	       (uint32_t)j->off[0] << 29 | (uint32_t)j->off[1] << 30;
}

static struct js js_decode(uint32_t c)
{
	struct js j;

	j.s[0] = c & 15;
	j.s[1] = c >> 4 & 15;
	j.v[0] = c >> 8 & 15;
	j.v[1] = c >> 12 & 15;
	j.t[0] = c >> 16 & 3;
	j.t[1] = c >> 18 & 3;
	j.k[0] = c >> 20 & 3;
	j.k[1] = c >> 22 & 3;
	j.r[0] = c >> 24 & 1;
	j.r[1] = c >> 25 & 1;
	j.heard[0] = c >> 26 & 1;
	j.heard[1] = c >> 27 & 1;
	j.link = c >> 28 & 1;
	j.off[0] = c >> 29 & 1;
	j.off[1] = c >> 30 & 1;
	return j;
}

/* Replace the four term values by their dense ranks: only the order counts. */
static void normalise(struct js *j, const struct mc_opts *o)
{
	uint8_t *v[4] = { &j->t[0], &j->t[1], &j->k[0], &j->k[1] };
	uint8_t old[4], rank[4];

	if (o->model == M_INTERLEAVED && (j->link || !o->stale_terms)) {
		j->k[0] = j->t[1];
		j->k[1] = j->t[0];
	}
	for (int i = 0; i < 4; i++)
		old[i] = *v[i];
	for (int i = 0; i < 4; i++) {
		int r = 0;

		for (int val = 0; val < old[i]; val++) {
			for (int m = 0; m < 4; m++) {
				if (old[m] == val) {
					r++;
					break;
				}
			}
		}
		rank[i] = (uint8_t)r;
	}
	for (int i = 0; i < 4; i++)
		*v[i] = rank[i];
}

/* The peer event node i is fed now. */
static enum sm_event js_peer_event(const struct mc_opts *o, const struct js *j, int i)
{
	struct sm_peer p = { j->link, (enum sm_state)j->s[1 - i], j->t[1 - i], 1 - i };

	if (o->model == M_DRIVER) {
		p.reachable = j->r[i];
		p.state = (enum sm_state)j->v[i];
		p.term = j->k[i];
	}
	return sm_classify_peer(&p, j->t[i], i, !j->off[i]);
}

/* Node i takes event e (one table cell); false if it changes nothing. */
static bool js_fire(const struct mc_opts *o, struct js *j, int i, enum sm_event e)
{
	struct sm_result r = sm_step((enum sm_state)j->s[i], e);

	if (r.actions & A_REJECT)
		return false;
	if (r.next == j->s[i] && !(r.actions & A_NEW_TERM))
		return false;
	j->s[i] = (uint8_t)r.next;
	if (r.actions & A_NEW_TERM)
		j->t[i] = (uint8_t)((j->t[i] > j->k[i] ? j->t[i] : j->k[i]) + 1);
	normalise(j, o);
	return true;
}

/* node.c's SETTLE_MAX. */
#define PROCESS_MAX 16

/* node.c process(): the event, then (once the peer was heard) the peer
 * event from the view again until the state stops changing. Returns -1 if
 * that loop does not end within PROCESS_MAX feeds (node.c logs an error). */
static int js_process(const struct mc_opts *o, struct js *j, int i, enum sm_event e)
{
	js_fire(o, j, i, e);
	if (o->model != M_DRIVER)
		return 0;
	for (int n = 0; n < PROCESS_MAX && j->heard[i]; n++) {
		uint8_t before = j->s[i];

		js_fire(o, j, i, js_peer_event(o, j, i));
		if (j->s[i] == before)
			return 0;
	}
	return j->heard[i] ? -1 : 0;
}

/* on_retry(): while both are blocked only the preferred node probes again. */
static bool retry_held(const struct mc_opts *o, const struct js *j, int i)
{
	if (o->model == M_DRIVER)
		return j->r[i] && j->v[i] == S_BLOCKED && 1 - i < i;
	return j->link && j->s[1 - i] == S_BLOCKED && 1 - i < i;
}

/* DRIVER: a heartbeat from the peer reaches node i (on_peer()). */
static bool heartbeat_due(const struct js *j, int i)
{
	return j->link && (!j->heard[i] || !j->r[i] || j->v[i] != j->s[1 - i] || j->k[i] != j->t[1 - i]);
}

static int deliver_heartbeat(const struct mc_opts *o, struct js *j, int i)
{
	j->heard[i] = true;
	j->r[i] = true;
	j->v[i] = j->s[1 - i];
	j->k[i] = j->t[1 - i];
	normalise(j, o);
	return js_process(o, j, i, js_peer_event(o, j, i));
}

static const char *what_str(uint8_t w)
{
	switch (w) {
	case X_LINK_UP: return "link up";
	case X_LINK_DOWN: return "link down";
	case X_HEARTBEAT: return "heartbeat arrives";
	case X_NOTICE_LOST: return "heartbeat timeout";
	case X_RESTART_RESUME: return "vigild killed+restarted (resumes)";
	case X_RESTART_WAIT: return "vigild killed+restarted (starts)";
	case X_RESTART_STOPPING: return "vigild killed+restarted (stops)";
	case X_FAILOVER_OFF: return "failover off";
	case X_FAILOVER_ON: return "failover on";
	default: return sm_event_str((enum sm_event)w);
	}
}

static void js_print(const struct mc_opts *o, const struct js *j, char *buf, size_t len)
{
	const char *a = sm_state_str((enum sm_state)j->s[0]), *b = sm_state_str((enum sm_state)j->s[1]);

	if (o->model == M_DRIVER)
		snprintf(buf, len, "(%s, %s, terms %u/%u, node1 sees %s%s t%u, node2 sees %s%s t%u, link %s)", a, b,
		         j->t[0], j->t[1], j->heard[0] ? sm_state_str((enum sm_state)j->v[0]) : "-",
		         j->r[0] ? "" : "(lost)", j->k[0], j->heard[1] ? sm_state_str((enum sm_state)j->v[1]) : "-",
		         j->r[1] ? "" : "(lost)", j->k[1], j->link ? "up" : "down");
	else if (j->link || !o->stale_terms)
		snprintf(buf, len, "(%s, %s, terms %u/%u, link %s)", a, b, j->t[0], j->t[1], j->link ? "up" : "down");
	else
		snprintf(buf, len, "(%s, %s, terms %u/%u, known %u/%u, link down)", a, b, j->t[0], j->t[1], j->k[0],
		         j->k[1]);
}

struct edge {
	struct js to;
	struct label via;
};

#define MAX_EDGES 64

static void add_edge(struct edge *out, int *n, const struct js *from, const struct js *to, int node, int what)
{
	if (js_code(from) == js_code(to))
		return;
	assert_true(*n < MAX_EDGES);
	out[*n].to = *to;
	out[*n].via.node = (int8_t)node;
	out[*n].via.what = (uint8_t)what;
	(*n)++;
}

/* node_start() after vigild was killed (same kernel boot, boot keep): a
 * node that held PRIM resumes; one stopping by command stops what still
 * runs; any other started node starts again. It forgets its peer. */
static void restart_daemon(const struct mc_opts *o, const struct js *j, int i, int what, struct js *t)
{
	*t = *j;
	t->s[i] = what == X_RESTART_RESUME ? S_RESUME : what == X_RESTART_STOPPING ? S_STOPPING : S_WAIT;
	t->heard[i] = false;
	t->r[i] = false;
	t->v[i] = S_STOP;
	if (o->model == M_DRIVER || !t->link)
		t->k[i] = 0;
	normalise(t, o);
}

/* Every step the operator, the network, the scripts and the nodes may take
 * from j. *overflow counts process() loops that did not end. */
static int successors(const struct mc_opts *o, const struct js *j, struct edge *out, int *overflow)
{
	static const enum sm_event commands[] = { E_START, E_STOP, E_RESTART, E_SWAP, E_FORCESTART,
						  E_START_PRIM, E_START_SECOND, E_FAILED };
	static const enum sm_event results[] = { E_APPLY_OK, E_APPLY_FAIL, E_VIP_IN_USE };
	int n = 0;
	struct js t;

	for (int i = 0; i < 2; i++) {
		enum sm_state s = (enum sm_state)j->s[i];
		bool reachable = o->model == M_DRIVER ? j->r[i] : j->link;
		enum sm_state peer = (enum sm_state)(o->model == M_DRIVER ? j->v[i] : j->s[1 - i]);

		for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
			/* node_command() refuses forcestart while the peer runs the role. */
			if ((commands[c] == E_FORCESTART || commands[c] == E_START_PRIM) && reachable && sm_is_primary(peer))
				continue;
			if (sm_rejects(s, commands[c], NULL))
				continue;
			t = *j;
			*overflow += js_process(o, &t, i, commands[c]) < 0;
			add_edge(out, &n, j, &t, i, commands[c]);
		}
		/* node_set_failover(): off only records it; on feeds failover-on. */
		t = *j;
		t.off[i] = !j->off[i];
		if (!t.off[i])
			*overflow += js_process(o, &t, i, E_FAILOVER_ON) < 0;
		add_edge(out, &n, j, &t, i, t.off[i] ? X_FAILOVER_OFF : X_FAILOVER_ON);
		if (is_applying(s)) {
			for (size_t r = 0; r < sizeof(results) / sizeof(results[0]); r++) {
				t = *j;
				*overflow += js_process(o, &t, i, results[r]) < 0;
				add_edge(out, &n, j, &t, i, results[r]);
			}
		}
		/* on_decide() acts only while the peer is unheard. */
		if ((s == S_WAIT || s == S_RESUME) && !reachable) {
			enum sm_event e = j->off[i] ? E_PEER_LOST_HELD : E_DECIDE_TIMEOUT;

			t = *j;
			*overflow += js_process(o, &t, i, e) < 0;
			add_edge(out, &n, j, &t, i, e);
		}
		/* node.c fences a node running the PRIM role whose peer is lost
		 * when the witness's grant is gone: at any such moment. */
		if (sm_is_primary(s) && !reachable) {
			t = *j;
			*overflow += js_process(o, &t, i, E_FENCE) < 0;
			add_edge(out, &n, j, &t, i, E_FENCE);
		}
		if (s == S_BLOCKED && !retry_held(o, j, i)) {
			t = *j;
			*overflow += js_process(o, &t, i, E_RETRY) < 0;
			add_edge(out, &n, j, &t, i, E_RETRY);
		}
		if (o->model == M_INTERLEAVED) {
			enum sm_event pe = js_peer_event(o, j, i);

			t = *j;
			js_fire(o, &t, i, pe);
			add_edge(out, &n, j, &t, i, pe);
		} else if (heartbeat_due(j, i)) {
			t = *j;
			*overflow += deliver_heartbeat(o, &t, i) < 0;
			add_edge(out, &n, j, &t, i, X_HEARTBEAT);
		} else if (!j->link && j->r[i]) {
			t = *j;
			t.r[i] = false;
			*overflow += js_process(o, &t, i, j->off[i] ? E_PEER_LOST_HELD : E_PEER_LOST) < 0;
			add_edge(out, &n, j, &t, i, X_NOTICE_LOST);
		}
		if (o->daemon_restart && s != S_STOP) {
			int what = sm_is_primary(s) ? X_RESTART_RESUME : s == S_STOPPING ? X_RESTART_STOPPING : X_RESTART_WAIT;

			restart_daemon(o, j, i, what, &t);
			add_edge(out, &n, j, &t, i, what);
			/* GO_PRIM may have started nothing yet; STOPPING may come from
			 * a failure, with the node still meant to run. */
			if (s == S_GO_PRIM || s == S_STOPPING) {
				restart_daemon(o, j, i, X_RESTART_WAIT, &t);
				add_edge(out, &n, j, &t, i, X_RESTART_WAIT);
			}
		}
	}
	t = *j;
	t.link = !j->link;
	normalise(&t, o);
	add_edge(out, &n, j, &t, -1, j->link ? X_LINK_DOWN : X_LINK_UP);
	return n;
}

/* ---- the quiet period after any reachable state ---- */

#define SETTLE_STEPS 100

struct order {
	bool apply_first; /* apply results before peer events */
	int first;        /* which node goes first */
	const char *name;
};

static const struct order orders[] = {
	{ false, 0, "peer events first, node1 first" },
	{ false, 1, "peer events first, node2 first" },
	{ true, 0, "apply results first, node1 first" },
	{ true, 1, "apply results first, node2 first" },
};

#define NORDERS ((int)(sizeof(orders) / sizeof(orders[0])))

/* Who holds the virtual IP (or may still): a GO_PRIM that completes against
 * one of these finds it answering. The brief lists ALONE, PRIM, HANDOVER;
 * RESTART_P and RESUME hold it too until their apply or decision is done. */
static bool holds_vip(enum sm_state s)
{
	return s == S_ALONE || s == S_PRIM || s == S_HANDOVER || s == S_RESTART_P || s == S_RESUME ||
	       s == S_FENCING;
}

struct trace {
	int n;
	struct label via[SETTLE_STEPS];
	struct js js[SETTLE_STEPS + 1];
};

/* The next due event in the order's priority; false when nothing is due. */
static bool settle_step(const struct mc_opts *o, const struct order *ord, struct js *j, struct label *l)
{
	uint32_t before = js_code(j);

	for (int pass = 0; pass < 2; pass++) {
		bool results = (pass == 0) == ord->apply_first;

		for (int k = 0; k < 2; k++) {
			int i = k == 0 ? ord->first : 1 - ord->first;
			enum sm_state s = (enum sm_state)j->s[i];
			enum sm_event e;

			l->node = (int8_t)i;
			if (results) {
				if (!is_applying(s))
					continue;
				e = s == S_GO_PRIM && holds_vip((enum sm_state)j->s[1 - i]) ? E_VIP_IN_USE : E_APPLY_OK;
				l->what = (uint8_t)e;
				js_process(o, j, i, e);
			} else if (o->model == M_DRIVER) {
				if (!heartbeat_due(j, i))
					continue;
				l->what = X_HEARTBEAT;
				deliver_heartbeat(o, j, i);
			} else {
				e = js_peer_event(o, j, i);
				l->what = (uint8_t)e;
				js_fire(o, j, i, e);
			}
			if (js_code(j) != before)
				return true;
		}
	}
	for (int k = 0; k < 2; k++) {
		int i = k == 0 ? ord->first : 1 - ord->first;

		if (j->s[i] == S_BLOCKED && !retry_held(o, j, i)) {
			l->node = (int8_t)i;
			l->what = E_RETRY;
			js_process(o, j, i, E_RETRY);
			return true;
		}
	}
	return false;
}

/* Heal the link and let both nodes run with no commands: 0 when a state is
 * reached in which nothing more happens, -1 on a cycle or no end. */
static int settle(const struct mc_opts *o, const struct order *ord, const struct js *from, struct trace *tr)
{
	struct js j = *from;

	tr->n = 0;
	j.link = true;
	normalise(&j, o);
	tr->js[0] = j;
	for (;;) {
		struct label l;

		if (!settle_step(o, ord, &j, &l))
			return 0;
		if (tr->n == SETTLE_STEPS)
			return -1;
		tr->via[tr->n] = l;
		tr->js[++tr->n] = j;
		for (int p = 0; p < tr->n; p++)
			if (js_code(&tr->js[p]) == js_code(&j))
				return -1;
	}
}

enum prop { P_SETTLES, P_ONE_PRIMARY, P_BOTH_STARTED, P_ONE_STARTED, P__COUNT };

static const char *const prop_names[P__COUNT] = {
	"(a) settles: no endless cycle",
	"(b) never both nodes in ALONE/PRIM",
	"(c) both started: exactly one ALONE/PRIM and the other SECOND",
	"(d) exactly one started: it is ALONE",
};

static int check_settled(const struct js *j)
{
	enum sm_state a = (enum sm_state)j->s[0], b = (enum sm_state)j->s[1];

	if (is_running_role(a) && is_running_role(b))
		return P_ONE_PRIMARY;
	if (is_started(a) && is_started(b) &&
	    !((is_running_role(a) && b == S_SECOND) || (is_running_role(b) && a == S_SECOND)))
		return P_BOTH_STARTED;
	if (is_started(a) != is_started(b) && (is_started(a) ? a : b) != S_ALONE)
		return P_ONE_STARTED;
	return -1;
}

/* Reached joint states: BFS order, with the step that first reached each. */
struct reached {
	uint32_t *code;
	int *parent; /* -1: an initial state */
	struct label *via;
	int n, cap;
	int *slot; /* open addressing: index + 1, 0 empty */
	uint32_t mask;
};

static void reached_init(struct reached *r, int cap)
{
	r->cap = cap;
	r->n = 0;
	r->code = malloc((size_t)cap * sizeof(*r->code));
	r->parent = malloc((size_t)cap * sizeof(*r->parent));
	r->via = calloc((size_t)cap, sizeof(*r->via));
	r->mask = (uint32_t)(2 * cap - 1);
	r->slot = calloc((size_t)2 * cap, sizeof(*r->slot));
	assert_non_null(r->code);
	assert_non_null(r->parent);
	assert_non_null(r->via);
	assert_non_null(r->slot);
}

static void reached_free(struct reached *r)
{
	free(r->code);
	free(r->parent);
	free(r->via);
	free(r->slot);
}

/* Adds code unless known; true if it was new. */
static bool reached_add(struct reached *r, uint32_t code, int parent, struct label via)
{
	uint32_t h = (code * 2654435761u) & r->mask;

	while (r->slot[h]) {
		if (r->code[r->slot[h] - 1] == code)
			return false;
		h = (h + 1) & r->mask;
	}
	if (r->n == r->cap)
		fail_msg("more than %d joint states: raise the model checker's capacity", r->cap);
	r->code[r->n] = code;
	r->parent[r->n] = parent;
	r->via[r->n] = via;
	r->slot[h] = ++r->n;
	return true;
}

static void print_path(const struct mc_opts *o, const struct reached *m, int idx)
{
	int path[1024], n = 0;
	char buf[200];

	for (int p = idx; p >= 0 && n < 1024; p = m->parent[p])
		path[n++] = p;
	{
		struct js j0 = js_decode(m->code[path[n - 1]]);

		js_print(o, &j0, buf, sizeof(buf));
		fprintf(stderr, "  path from %s:\n", buf);
	}
	for (int k = n - 2, step = 1; k >= 0; k--, step++) {
		struct js j = js_decode(m->code[path[k]]);
		const struct label *l = &m->via[path[k]];

		js_print(o, &j, buf, sizeof(buf));
		if (l->node < 0)
			fprintf(stderr, "    %2d. %-30s -> %s\n", step, what_str(l->what), buf);
		else
			fprintf(stderr, "    %2d. node%d %-24s -> %s\n", step, l->node + 1, what_str(l->what), buf);
	}
}

static void print_settle(const struct mc_opts *o, const struct trace *tr, int rc)
{
	char buf[200];

	js_print(o, &tr->js[0], buf, sizeof(buf));
	fprintf(stderr, "  settle (link up, no commands) from %s:\n", buf);
	for (int k = 0; k < tr->n && k < 40; k++) {
		js_print(o, &tr->js[k + 1], buf, sizeof(buf));
		fprintf(stderr, "        node%d %-24s -> %s\n", tr->via[k].node + 1, what_str(tr->via[k].what), buf);
	}
	if (tr->n > 40)
		fprintf(stderr, "        ... (%d steps)\n", tr->n);
	js_print(o, &tr->js[tr->n], buf, sizeof(buf));
	fprintf(stderr, "  %s %s\n", rc == 0 ? "settled in" : "DID NOT SETTLE; last", buf);
}

#define PRINT_PER_PROP 3
#define MAX_JOINT (1 << 24)

static void model_check(const struct mc_opts *o, bool *reached_state)
{
	static int violations[NORDERS][P__COUNT];
	static int outcome[P__COUNT][S__COUNT][S__COUNT]; /* settled pairs that break a property */
	struct reached m;
	struct edge *edges = calloc(MAX_EDGES, sizeof(*edges));
	int total = 0, overflow = 0;
	const struct label none = { -1, 0 };
	const char *env = getenv("VIGIL_MC_STRIDE");
	int stride = env && atoi(env) > 0 ? atoi(env) : 1;

	memset(violations, 0, sizeof(violations));
	memset(outcome, 0, sizeof(outcome));
	assert_non_null(edges);
	reached_init(&m, MAX_JOINT);
	/* Both stopped, with any persisted terms, link up or down; vigild has
	 * just started and heard nothing (pv.term is 0). */
	for (int rel = 0; rel < 3; rel++) {
		for (int link = 0; link < 2; link++) {
			struct js j = { { S_STOP, S_STOP }, { 1 + (rel == 2), 1 + (rel == 0) }, { 0, 0 },
			                { S_STOP, S_STOP }, { false, false }, { false, false }, link, { false, false } };

			normalise(&j, o);
			reached_add(&m, js_code(&j), -1, none);
		}
	}
	for (int q = 0; q < m.n; q++) {
		struct js j = js_decode(m.code[q]);
		int n = successors(o, &j, edges, &overflow);

		reached_state[j.s[0]] = true;
		reached_state[j.s[1]] = true;
		for (int e = 0; e < n; e++)
			reached_add(&m, js_code(&edges[e].to), q, edges[e].via);
	}
	/* Every reachable state, in BFS order: the first counterexample printed
	 * for a property has the shortest path. VIGIL_MC_STRIDE=N settles
	 * every Nth state only: the sanitizer run (scripts/run-tests) uses it,
	 * the same code on fewer states; the normal run checks all. */
	for (int q = 0; q < m.n; q += stride) {
		struct js j = js_decode(m.code[q]);

		for (int oi = 0; oi < NORDERS; oi++) {
			struct trace tr;
			int rc = settle(o, &orders[oi], &j, &tr);
			int bad = rc < 0 ? P_SETTLES : check_settled(&tr.js[tr.n]);

			if (bad < 0)
				continue;
			total++;
			outcome[bad][tr.js[tr.n].s[0]][tr.js[tr.n].s[1]]++;
			if (violations[oi][bad]++ < PRINT_PER_PROP) {
				fprintf(stderr, "\n[%s] COUNTEREXAMPLE %s\n  settle order: %s\n", o->name, prop_names[bad],
				        orders[oi].name);
				print_path(o, &m, q);
				print_settle(o, &tr, rc);
			}
		}
	}
	fprintf(stderr, "[%s] %d joint states reached, %d settle runs (%s%s), %d violations\n", o->name,
	        m.n, (m.n + stride - 1) / stride * NORDERS, stride == 1 ? "every state" : "one state in ",
	        stride == 1 ? "" : env, total);
	for (int oi = 0; oi < NORDERS; oi++)
		for (int p = 0; p < P__COUNT; p++)
			if (violations[oi][p])
				fprintf(stderr, "[%s]   %s, %s: %d states\n", o->name, prop_names[p], orders[oi].name,
				        violations[oi][p]);
	for (int p = 0; p < P__COUNT; p++)
		for (int a = 0; a < S__COUNT; a++)
			for (int b = 0; b < S__COUNT; b++)
				if (outcome[p][a][b])
					fprintf(stderr, "[%s]   %s: ends in (%s, %s) %d times\n", o->name, prop_names[p],
					        sm_state_str((enum sm_state)a), sm_state_str((enum sm_state)b), outcome[p][a][b]);
	if (overflow)
		fprintf(stderr, "[%s] process() did not settle within %d peer events in %d transitions\n", o->name,
		        PROCESS_MAX, overflow);
	free(edges);
	reached_free(&m);
	if (overflow)
		fail_msg("[%s] node.c's process() loop would log 'state did not settle' %d times", o->name, overflow);
	if (total)
		fail_msg("[%s] %d settled states violate the cluster properties (see the counterexamples above)",
		         o->name, total);
}

/* The model as briefed: a new term is newer than both current terms. */
static void model_two_nodes(void **st)
{
	const struct mc_opts o = { "interleaved, exact terms", M_INTERLEAVED, false, false };
	bool reached[S__COUNT] = { false };

	model_check(&o, reached);
	/* The model is not vacuous: each state but RESUME (entered only by
	 * node_start) is reached. */
	for (int s = 0; s < S__COUNT; s++)
		if (s != S_RESUME && !reached[s])
			fail_msg("%s is never reached from (STOP, STOP)", sm_state_str((enum sm_state)s));
}

/* As node.c takes terms: max(own, last heard from the peer) + 1, so two
 * nodes cut off from each other can take equal or crossing terms. */
static void model_two_nodes_stale_terms(void **st)
{
	const struct mc_opts o = { "interleaved, stale terms", M_INTERLEAVED, true, false };
	bool reached[S__COUNT] = { false };

	model_check(&o, reached);
}

/* And vigild may be killed and restarted at any moment (RESUME). */
static void model_two_nodes_daemon_restart(void **st)
{
	const struct mc_opts o = { "interleaved, stale terms, daemon restart", M_INTERLEAVED, true, true };
	bool reached[S__COUNT] = { false };

	model_check(&o, reached);
	assert_true(reached[S_RESUME]);
}

/* node.c's own loop: stale views, heartbeats, timeouts, daemon restarts. */
static void model_two_nodes_driver(void **st)
{
	const struct mc_opts o = { "driver", M_DRIVER, true, true };
	bool reached[S__COUNT] = { false };

	model_check(&o, reached);
	for (int s = 0; s < S__COUNT; s++)
		if (!reached[s])
			fail_msg("%s is never reached from (STOP, STOP)", sm_state_str((enum sm_state)s));
}

/* The property check and the state code themselves. */
static void model_self_test(void **st)
{
	struct js j = { { S_ALONE, S_ALONE }, { 0, 1 }, { 1, 0 }, { S_STOP, S_STOP }, { false, false },
	                { false, false }, true, { false, false } };

	assert_int_equal(check_settled(&j), P_ONE_PRIMARY);
	j.s[1] = S_SECOND_HO;
	assert_int_equal(check_settled(&j), P_BOTH_STARTED);
	j.s[1] = S_STOP;
	j.s[0] = S_PRIM;
	assert_int_equal(check_settled(&j), P_ONE_STARTED);
	j.s[0] = S_ALONE;
	assert_int_equal(check_settled(&j), -1);
	j.s[1] = S_SECOND;
	j.s[0] = S_PRIM;
	assert_int_equal(check_settled(&j), -1);
	j.s[0] = S_STOP;
	j.s[1] = S_STOPPING;
	assert_int_equal(check_settled(&j), -1);

	struct js a = { { S_RESTART_S, S_STOPPING }, { 3, 2 }, { 1, 0 }, { S_SECOND_HO, S_WAIT }, { true, false },
	                { false, true }, true, { false, false } };
	struct js b = js_decode(js_code(&a));

	assert_int_equal(js_code(&b), js_code(&a));
	assert_int_equal(b.s[1], S_STOPPING);
	assert_int_equal(b.v[0], S_SECOND_HO);
	assert_int_equal(b.t[0], 3);
	assert_true(b.r[0] && !b.r[1] && !b.heard[0] && b.heard[1] && b.link);

	/* Ranks keep the order and close the gaps. */
	const struct mc_opts o = { "self-test", M_DRIVER, true, false };

	a.t[0] = 3;
	a.t[1] = 1;
	a.k[0] = 3;
	a.k[1] = 0;
	normalise(&a, &o);
	assert_int_equal(a.t[0], 2);
	assert_int_equal(a.t[1], 1);
	assert_int_equal(a.k[0], 2);
	assert_int_equal(a.k[1], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(table_every_cell),
		cmocka_unit_test(table_out_of_range),
		cmocka_unit_test(strings),
		cmocka_unit_test(display),
		cmocka_unit_test(is_primary),
		cmocka_unit_test(classify),
		cmocka_unit_test(classify_antisymmetric),
		cmocka_unit_test(scenario_first_start),
		cmocka_unit_test(scenario_failover_and_return),
		cmocka_unit_test(scenario_clean_stop),
		cmocka_unit_test(scenario_swap),
		cmocka_unit_test(scenario_restart),
		cmocka_unit_test(scenario_forcestart),
		cmocka_unit_test(scenario_resume),
		cmocka_unit_test(scenario_vip_in_use),
		cmocka_unit_test(scenario_split_brain),
		cmocka_unit_test(model_self_test),
		cmocka_unit_test(model_two_nodes),
		cmocka_unit_test(model_two_nodes_stale_terms),
		cmocka_unit_test(model_two_nodes_daemon_restart),
		cmocka_unit_test(model_two_nodes_driver),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
