/* vigil-rfs generations (src/rfs/gen.c): the relation table of
 * docs/design/rfs.md §5.2, its symmetry, a two-node random walk against the
 * ground truth of who holds which write, the HELLO bytes and the meta file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <glob.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/util.h"
#include "rfs/gen.h"

static char base_dir[PATH_MAX];

#define G(c_, b_, h0_, h1_) ((struct rfs_gen){ .c = (c_), .b = (b_), .h = { (h0_), (h1_) } })

/* Field by field: struct padding is not part of the value. */
static bool same(const struct rfs_gen *x, const struct rfs_gen *y)
{
	return x->c == y->c && x->b == y->b && x->h[0] == y->h[0] && x->h[1] == y->h[1] &&
	       x->outdated == y->outdated && x->outdated_since_ms == y->outdated_since_ms &&
	       x->clean_stop == y->clean_stop;
}
#define assert_same(x, y) assert_true(same((x), (y)))

/* Checks rel(a,p) and that rel(p,a) is its mirror. */
#define REL(a, p, want) do { \
		struct rfs_gen a_ = (a), p_ = (p); \
		assert_string_equal(rfs_relation_str(rfs_gen_relation(&a_, &p_)), rfs_relation_str(want)); \
		assert_string_equal(rfs_relation_str(rfs_gen_relation(&p_, &a_)), \
		                    rfs_relation_str(rfs_relation_mirror(want))); \
	} while (0)

#define outd(g) ({ struct rfs_gen o_ = (g); rfs_gen_set_outdated(&o_, 1000); o_; })

/* ---- the table ---- */

static void table_rows(void **st)
{
	(void)st;
	/* equal, whatever the records and histories say */
	REL(G(5, 0, 0, 0), G(5, 0, 0, 0), RFS_REL_EQUAL);
	REL(G(5, 3, 3, 0), G(5, 0, 9, 8), RFS_REL_EQUAL);
	/* two fresh nodes were never compared */
	REL(G(0, 0, 0, 0), G(0, 0, 0, 0), RFS_REL_UNRELATED);
	/* incremental: A went alone from P's C */
	REL(G(7, 5, 5, 0), G(5, 0, 0, 0), RFS_REL_A_NEWER);
	REL(G(9, 5, 7, 5), G(5, 0, 4, 0), RFS_REL_A_NEWER);   /* several alone steps, B kept */
	REL(G(9, 5, 7, 6), G(5, 0, 0, 0), RFS_REL_A_NEWER);   /* B fell out of H: still known */
	REL(G(5, 0, 0, 0), G(7, 5, 5, 0), RFS_REL_P_NEWER);
	/* split: both went alone from 5 */
	REL(G(7, 5, 5, 0), G(8, 5, 5, 0), RFS_REL_SPLIT);
	REL(G(7, 5, 6, 0), G(8, 5, 0, 0), RFS_REL_SPLIT);
	/* newer side known from history, record gone */
	REL(G(9, 0, 7, 0), G(7, 0, 0, 0), RFS_REL_A_NEWER_FULL);
	REL(G(9, 3, 8, 7), G(7, 0, 0, 0), RFS_REL_A_NEWER_FULL);
	REL(G(7, 0, 0, 0), G(9, 3, 7, 0), RFS_REL_P_NEWER_FULL);
	REL(G(7, 0, 4, 0), G(9, 0, 8, 7), RFS_REL_P_NEWER_FULL);
	/* unrelated */
	REL(G(1, 0, 0, 0), G(2, 0, 0, 0), RFS_REL_UNRELATED);
	REL(G(0, 0, 0, 0), G(2, 0, 0, 0), RFS_REL_UNRELATED);     /* fresh against data */
	REL(G(3, 1, 1, 0), G(4, 2, 2, 0), RFS_REL_UNRELATED);
	REL(G(9, 6, 8, 7), G(4, 2, 2, 0), RFS_REL_UNRELATED);     /* histories disjoint */
	/* contradictions get the safe verdict */
	REL(G(7, 8, 0, 0), G(8, 7, 0, 0), RFS_REL_UNRELATED);     /* both incremental */
	REL(G(7, 0, 8, 0), G(8, 0, 7, 0), RFS_REL_UNRELATED);     /* each in the other's H */
	REL(G(0, 5, 0, 0), G(5, 0, 0, 0), RFS_REL_UNRELATED);     /* invalid: C 0, B set */
	REL(G(5, 5, 0, 0), G(5, 0, 0, 0), RFS_REL_UNRELATED);     /* invalid: B = C */
	REL(G(7, 5, 0, 5), G(5, 0, 0, 0), RFS_REL_UNRELATED);     /* invalid: H gap */
}

static void table_outdated(void **st)
{
	(void)st;
	/* an outdated side named newer: no newer side, both sides' changes kept */
	REL(outd(G(7, 5, 5, 0)), G(5, 0, 0, 0), RFS_REL_SPLIT);
	REL(G(5, 0, 0, 0), outd(G(7, 5, 5, 0)), RFS_REL_SPLIT);
	REL(outd(G(9, 0, 7, 0)), G(7, 0, 0, 0), RFS_REL_UNRELATED);
	REL(G(7, 0, 0, 0), outd(G(9, 0, 7, 0)), RFS_REL_UNRELATED);
	REL(outd(G(7, 5, 5, 0)), outd(G(5, 0, 0, 0)), RFS_REL_SPLIT);
	/* the outdated side is the older one: the verdict stands */
	REL(outd(G(5, 0, 0, 0)), G(7, 5, 5, 0), RFS_REL_P_NEWER);
	REL(G(7, 5, 5, 0), outd(G(5, 0, 0, 0)), RFS_REL_A_NEWER);
	REL(outd(G(7, 0, 0, 0)), G(9, 0, 7, 0), RFS_REL_P_NEWER_FULL);
	/* no side newer: unchanged */
	REL(outd(G(5, 0, 0, 0)), G(5, 0, 0, 0), RFS_REL_EQUAL);
	REL(outd(G(5, 0, 0, 0)), outd(G(5, 0, 0, 0)), RFS_REL_EQUAL);
	REL(outd(G(7, 5, 5, 0)), G(8, 5, 5, 0), RFS_REL_SPLIT);
	REL(outd(G(1, 0, 0, 0)), G(2, 0, 0, 0), RFS_REL_UNRELATED);
}

/* Every pair over a small domain: mirror symmetry, an outdated side never
 * newer, and the table's rows where they apply. */
static void table_exhaustive(void **st)
{
	enum { V = 4, N = V * V * V * V * 2 };
	static struct rfs_gen all[N];
	int n = N, seen[RFS_REL_UNRELATED + 1] = { 0 };

	(void)st;
	for (int x = 0; x < N; x++) {
		all[x] = G(x % V, x / V % V, x / (V * V) % V, x / (V * V * V) % V);
		all[x].outdated = x / (V * V * V * V);
	}
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < n; j++) {
			const struct rfs_gen *a = &all[i], *p = &all[j];
			enum rfs_relation r = rfs_gen_relation(a, p);
			bool valid = !rfs_gen_check(a, NULL, 0) && !rfs_gen_check(p, NULL, 0);

			assert_true(r >= RFS_REL_EQUAL && r <= RFS_REL_UNRELATED);
			assert_int_equal(rfs_gen_relation(p, a), rfs_relation_mirror(r));
			seen[r]++;
			if (a->outdated)
				assert_false(rfs_relation_a_newer(r));
			if (p->outdated)
				assert_false(rfs_relation_p_newer(r));
			if (!valid) {
				assert_int_equal(r, RFS_REL_UNRELATED);
				continue;
			}
			if (a->c && a->c == p->c)
				assert_int_equal(r, RFS_REL_EQUAL);
			else if (a->b && a->b == p->b)
				assert_int_equal(r, RFS_REL_SPLIT);
			if (r == RFS_REL_A_NEWER)
				assert_true(a->b && a->b == p->c && !a->outdated);
			if (r == RFS_REL_A_NEWER_FULL)
				assert_true(p->c && (a->h[0] == p->c || a->h[1] == p->c));
		}
	}
	/* every verdict reached, each with its own name */
	for (int r = RFS_REL_EQUAL; r <= RFS_REL_UNRELATED; r++) {
		assert_true(seen[r] > 0);
		assert_int_equal(rfs_relation_mirror(rfs_relation_mirror(r)), r);
		for (int q = RFS_REL_EQUAL; q < r; q++)
			assert_string_not_equal(rfs_relation_str(r), rfs_relation_str(q));
	}
	assert_string_equal(rfs_relation_str(0), "?");
}

/* The merge decision: only a PRIM newer by a complete record, towards a
 * SECOND that changed nothing itself. */
static void incremental(void **st)
{
	struct rfs_gen prim = G(7, 5, 5, 0), second = G(5, 0, 0, 0), out = G(5, 0, 0, 0);

	(void)st;
	assert_true(rfs_gen_incremental(&prim, &second, true));
	assert_false(rfs_gen_incremental(&prim, &second, false));       /* record incomplete */
	assert_false(rfs_gen_incremental(&second, &prim, true));        /* roles the other way */
	second = G(8, 5, 5, 0);                                          /* SECOND went alone too */
	assert_false(rfs_gen_incremental(&prim, &second, true));
	assert_false(rfs_gen_incremental(&prim, &prim, true));          /* equal */
	prim.outdated = true;                                            /* PRIM outdated: a split */
	prim.outdated_since_ms = 1;
	assert_false(rfs_gen_incremental(&prim, &out, true));
	prim = G(7, 0, 5, 0);                                            /* newer, but no record */
	assert_false(rfs_gen_incremental(&prim, &out, true));
	out.outdated = true;                                             /* an outdated SECOND merges */
	out.outdated_since_ms = 1;
	prim = G(7, 5, 5, 0);
	assert_true(rfs_gen_incremental(&prim, &out, true));
}

/* The sync-full compare: asked by SECOND, which changed nothing itself,
 * from a PRIM whose copy is the same or newer by its own line. */
static void verify(void **st)
{
	struct rfs_gen prim = G(7, 5, 5, 0), second = G(5, 0, 0, 0);

	(void)st;
	assert_true(rfs_gen_verify(&prim, &second, true));              /* PRIM newer */
	assert_false(rfs_gen_verify(&prim, &second, false));            /* not asked */
	second.outdated = true;                                          /* outdate --full marks it */
	second.outdated_since_ms = 1;
	assert_true(rfs_gen_verify(&prim, &second, true));
	prim = G(5, 0, 0, 0);                                            /* equal */
	assert_true(rfs_gen_verify(&prim, &second, true));
	second = G(8, 5, 5, 0);                                          /* SECOND went alone: split */
	prim = G(7, 5, 5, 0);
	assert_false(rfs_gen_verify(&prim, &second, true));
	second = G(0, 0, 0, 0);                                          /* a fresh copy: full copy */
	assert_false(rfs_gen_verify(&prim, &second, true));
	second = G(9, 0, 0, 0);                                          /* unrelated */
	assert_false(rfs_gen_verify(&prim, &second, true));
	prim = G(5, 0, 0, 0);                                            /* SECOND newer */
	second = G(7, 5, 5, 0);
	assert_false(rfs_gen_verify(&prim, &second, true));
}

/* ---- transitions ---- */

static void transitions(void **st)
{
	struct rfs_gen g = { 0 }, before;
	char msg[256];

	(void)st;
	/* a fresh node going alone has no base for a record and no history */
	assert_int_equal(rfs_gen_go_alone(&g, 10), 0);
	assert_true(g.c == 10 && g.b == 0 && g.h[0] == 0 && g.h[1] == 0);
	assert_int_equal(rfs_gen_resync_done(&g, 20), 0);      /* synced to a PRIM at 20 */
	assert_true(g.c == 20 && g.b == 0);
	assert_int_equal(rfs_gen_go_alone(&g, 30), 0);
	assert_true(g.c == 30 && g.b == 20 && g.h[0] == 20 && g.h[1] == 0);   /* resync pushed nothing */
	assert_int_equal(rfs_gen_go_alone(&g, 40), 0);         /* B stays at the record's start */
	assert_true(g.c == 40 && g.b == 20 && g.h[0] == 30 && g.h[1] == 20);
	assert_int_equal(rfs_gen_go_alone(&g, 50), 0);
	assert_true(g.c == 50 && g.b == 20 && g.h[0] == 40 && g.h[1] == 30);
	/* a repeated or zero value is refused, g untouched */
	before = g;
	for (int i = 0; i < 5; i++) {
		assert_int_equal(rfs_gen_go_alone(&g, (uint64_t[]){ 0, 50, 20, 40, 30 }[i]), -1);
		assert_int_equal(rfs_gen_forcestart(&g, (uint64_t[]){ 0, 50, 20, 40, 30 }[i]), -1);
	}
	assert_same(&g, &before);
	assert_int_equal(rfs_gen_resync_done(&before, 60), 0);  /* the record is gone */
	assert_true(before.c == 60 && before.b == 0 && before.h[0] == 40);
	rfs_gen_record_cleared(&g);
	assert_true(g.b == 0 && g.c == 50);

	/* outdated: the first since is kept; resync clears it */
	rfs_gen_set_outdated(&g, 1000);
	rfs_gen_set_outdated(&g, 2000);
	assert_true(g.outdated && g.outdated_since_ms == 1000);
	assert_int_equal(rfs_gen_resync_done(&g, 0), -1);
	assert_true(g.outdated && g.c == 50);
	assert_int_equal(rfs_gen_resync_done(&g, 60), 0);
	assert_true(!g.outdated && g.outdated_since_ms == 0 && g.c == 60 && g.b == 0);
	assert_true(g.h[0] == 40 && g.h[1] == 30);             /* H names this node's own past */

	/* forcestart: a step alone that also drops outdated */
	rfs_gen_set_outdated(&g, 1700000000000ull);
	before = g;
	assert_int_equal(rfs_gen_forcestart(&g, 70), 0);
	assert_true(g.c == 70 && g.b == 60 && g.h[0] == 60 && !g.outdated && !g.outdated_since_ms);
	rfs_gen_forcestart_msg(&before, "node2", msg, sizeof(msg));
	assert_non_null(strstr(msg, "data not up to date since 2023-"));
	assert_non_null(strstr(msg, "changes on node2 after that are missing here"));
	before = G(5, 0, 0, 0);
	rfs_gen_forcestart_msg(&before, "node2", msg, sizeof(msg));
	assert_non_null(strstr(msg, "node2"));
	assert_null(strstr(msg, "since"));

	/* Outdated SECOND, its PRIM wrote alone and died, the SECOND was forced
	 * up and wrote too: they meet as a split, not as "older". */
	g = G(5, 0, 0, 0);
	before = outd(G(5, 0, 0, 0));
	assert_int_equal(rfs_gen_go_alone(&g, 6), 0);
	REL(g, before, RFS_REL_A_NEWER);        /* before forcestart: plainly older */
	assert_int_equal(rfs_gen_forcestart(&before, 7), 0);
	REL(g, before, RFS_REL_SPLIT);
}

/* ---- random walk ---- */

#define MAXW 1024
#define UNCKPT 6

struct node {
	bool up, prim;
	struct rfs_gen g;
	bool w[MAXW];           /* writes this node's copy holds */
	bool d[MAXW];           /* writes its dirty record covers */
};

struct world {
	struct node n[2];
	bool connected;
	unsigned nw;
	unsigned unckpt[UNCKPT], nun;   /* connected writes not yet checkpointed on SECOND */
	uint64_t rng, seed;
	int step;
};

static unsigned long rel_seen[RFS_REL_UNRELATED + 1], kept_aside, reconnects;

static uint64_t rnd(struct world *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return w->rng;
}

static unsigned pick(struct world *w, unsigned n)
{
	return (unsigned)(rnd(w) % n);
}

/* The seed and step replay the walk exactly. */
static void fail_walk(struct world *w, const char *why, enum rfs_relation r)
{
	print_error("walk seed %" PRIu64 " step %d: %s (relation %s)\n", w->seed, w->step, why,
	            rfs_relation_str(r));
	for (int k = 0; k < 2; k++)
		print_error("  node%d c=%" PRIx64 " b=%" PRIx64 " h=%" PRIx64 ",%" PRIx64 " outdated=%d\n",
		            k, w->n[k].g.c, w->n[k].g.b, w->n[k].g.h[0], w->n[k].g.h[1], w->n[k].g.outdated);
	fail();
}
#define WALK_CHECK(w, cond, r) do { if (!(cond)) fail_walk((w), #cond, (r)); } while (0)

static void alone(struct world *w, struct node *n)
{
	while (rfs_gen_go_alone(&n->g, rnd(w)) < 0)
		;
}

/* PRIM k loses its SECOND and goes on: descriptors past the checkpoint
 * become its record. */
static void prim_alone(struct world *w, int k)
{
	alone(w, &w->n[k]);
	for (unsigned i = 0; i < w->nun; i++)
		w->n[k].d[w->unckpt[i]] = true;
	w->nun = 0;
	w->connected = false;
}

static void take_over(struct world *w, int k)
{
	alone(w, &w->n[k]);
	w->n[k].prim = true;
}

/* One write on each PRIM: on both copies when connected, else into the
 * PRIM's copy and record. */
static void do_write(struct world *w)
{
	for (int k = 0; k < 2 && w->nw < MAXW; k++) {
		unsigned id = w->nw;

		if (!w->n[k].up || !w->n[k].prim)
			continue;
		w->nw++;
		if (!w->connected) {
			w->n[k].w[id] = w->n[k].d[id] = true;
			continue;
		}
		w->n[0].w[id] = w->n[1].w[id] = true;
		if (w->nun == UNCKPT)   /* the oldest reached the checkpoint */
			memmove(w->unckpt, w->unckpt + 1, --w->nun * sizeof(w->unckpt[0]));
		w->unckpt[w->nun++] = id;
	}
}

/* What x has that y lacks: 0 none, 1 all covered by x's record, 2 not. */
static int unique(const struct node *x, const struct node *y)
{
	int u = 0;

	for (unsigned i = 0; i < MAXW; i++) {
		if (x->w[i] && !y->w[i]) {
			if (!x->d[i])
				return 2;
			u = 1;
		}
	}
	return u;
}

static void handshake(struct world *w)
{
	struct node *a = &w->n[0], *p = &w->n[1], *pr, *se;
	struct rfs_gen g[2];
	uint8_t buf[RFS_GEN_LEN];
	uint32_t flags = 0;
	enum rfs_relation r;
	int ua = unique(a, p), up = unique(p, a), k;

	/* each side learns the other's gens through the HELLO bytes */
	for (k = 0; k < 2; k++) {
		assert_int_equal(rfs_gen_encode(&w->n[k].g, buf, &flags), 0);
		assert_int_equal(rfs_gen_decode(buf, flags, &g[k], NULL, 0), 0);
		assert_same(&g[k], &w->n[k].g);
	}
	r = rfs_gen_relation(&g[0], &g[1]);
	WALK_CHECK(w, rfs_gen_relation(&g[1], &g[0]) == rfs_relation_mirror(r), r);
	rel_seen[r]++;
	reconnects++;
	/* never a newer side that lacks writes the other has */
	if (rfs_relation_a_newer(r))
		WALK_CHECK(w, up == 0 && !a->g.outdated, r);
	if (rfs_relation_p_newer(r))
		WALK_CHECK(w, ua == 0 && !p->g.outdated, r);
	if (r == RFS_REL_EQUAL)
		WALK_CHECK(w, ua == 0 && up == 0, r);
	/* an incremental verdict: the record covers everything to send */
	if (r == RFS_REL_A_NEWER || r == RFS_REL_SPLIT)
		WALK_CHECK(w, ua < 2, r);
	if (r == RFS_REL_P_NEWER || r == RFS_REL_SPLIT)
		WALK_CHECK(w, up < 2, r);
	/* both sides with changes of their own: split or a full compare */
	if (ua && up)
		WALK_CHECK(w, r == RFS_REL_SPLIT || r == RFS_REL_UNRELATED, r);

	/* PRIM: the newer side, else the one serving, else either */
	k = rfs_relation_a_newer(r) ? 0 : rfs_relation_p_newer(r) ? 1 :
	    a->prim != p->prim ? !a->prim : (int)pick(w, 2);
	pr = &w->n[k];
	se = &w->n[1 - k];
	/* the loser's own changes go to split-<UTC>/ (SPLIT, UNRELATED only) */
	if (unique(se, pr)) {
		WALK_CHECK(w, r == RFS_REL_SPLIT || r == RFS_REL_UNRELATED, r);
		kept_aside++;
	}
	if (!pr->prim)
		take_over(w, k);
	se->prim = false;
	memcpy(se->w, pr->w, sizeof(se->w));
	memset(se->d, 0, sizeof(se->d));
	assert_int_equal(rfs_gen_resync_done(&se->g, pr->g.c), 0);
	w->nun = 0;
	if (pick(w, 8) == 0) {
		/* PRIM dies after SETGEN, before clearing its record */
		pr->up = pr->prim = false;
		w->connected = false;
		return;
	}
	rfs_gen_record_cleared(&pr->g);
	memset(pr->d, 0, sizeof(pr->d));
	w->connected = true;
}

enum ev {
	E_WRITE, E_CKPT, E_LOST_OUTDATE, E_LOST_OUTDATE_PRIM_CRASH, E_PART_BOTH, E_PART_PRIM,
	E_HANDOVER, E_PRIM_CRASH, E_SECOND_CRASH, E_END
};

static void step_connected(struct world *w)
{
	int i = w->n[0].prim ? 0 : 1, j = 1 - i;
	enum ev e = (enum ev)pick(w, E_END + 6);

	assert_true(w->n[i].prim && !w->n[j].prim && w->n[0].up && w->n[1].up);
	switch (e) {
	case E_CKPT:
		w->nun = 0;
		break;
	case E_LOST_OUTDATE:                /* the peer's vigild wrote "outdated" */
		rfs_gen_set_outdated(&w->n[j].g, 1000 + (uint64_t)w->step);
		prim_alone(w, i);
		break;
	case E_LOST_OUTDATE_PRIM_CRASH:     /* ... and the PRIM died before moving its generation */
		rfs_gen_set_outdated(&w->n[j].g, 1000 + (uint64_t)w->step);
		w->n[i].up = w->n[i].prim = false;
		w->connected = false;
		break;
	case E_PART_BOTH:                   /* partition, both serve */
		take_over(w, j);
		/* fall through */
	case E_PART_PRIM:                   /* partition, SECOND unreachable and passive */
		prim_alone(w, i);
		break;
	case E_PRIM_CRASH:
		w->n[i].up = false;
		/* fall through */
	case E_HANDOVER:                    /* swap, or a fenced PRIM: SECOND drained every op */
		w->n[i].prim = w->connected = false;
		w->nun = 0;
		take_over(w, j);
		break;
	case E_SECOND_CRASH: {              /* SECOND loses what it had not made durable */
		unsigned lose = pick(w, w->nun + 1);

		for (unsigned x = w->nun - lose; x < w->nun; x++)
			w->n[j].w[w->unckpt[x]] = false;
		w->n[j].up = false;
		prim_alone(w, i);
		break;
	}
	default:                            /* writes, most of the time */
		do_write(w);
	}
}

static void step_apart(struct world *w)
{
	int k = (int)pick(w, 2), e = (int)pick(w, 9);
	struct node *n = &w->n[k], *o = &w->n[1 - k];

	if (e == 0) {
		n->up = n->prim = false;                /* crash */
	} else if (e == 1) {
		n->up = true;                           /* restart */
	} else if (e == 2) {
		n->prim = false;                        /* stop: no quorum, or the admin */
	} else if (e == 3) {
		/* take over: never while outdated; with the peer up only as a rare partition */
		if (n->up && !n->prim && !n->g.outdated && (!o->up || pick(w, 4) == 0))
			take_over(w, k);
	} else if (e == 4) {
		if (n->up && !n->prim && n->g.outdated && !o->up) {
			while (rfs_gen_forcestart(&n->g, rnd(w)) < 0)
				;
			n->prim = true;
		}
	} else if (e == 5) {
		if (n->up && o->up)
			handshake(w);
	} else {
		do_write(w);
	}
}

static void walk(uint64_t seed, int steps)
{
	static struct world w;

	memset(&w, 0, sizeof(w));
	w.seed = seed;
	w.rng = seed * 0x9e3779b97f4a7c15ull | 1;
	w.n[0].up = w.n[1].up = true;
	/* dirs that held files before replication was set up, in no record */
	for (int k = 0; k < 2; k++)
		if (pick(&w, 2))
			w.n[k].w[w.nw++] = true;
	for (w.step = 0; w.step < steps; w.step++) {
		if (w.connected)
			step_connected(&w);
		else
			step_apart(&w);
		for (int k = 0; k < 2; k++)
			WALK_CHECK(&w, rfs_gen_check(&w.n[k].g, NULL, 0) == 0, RFS_REL_EQUAL);
	}
}

static void random_walk(void **st)
{
	(void)st;
	for (uint64_t seed = 1; seed <= 3000; seed++)
		walk(seed, 400);
	print_message("%lu reconnections, %lu with changes kept aside\n", reconnects, kept_aside);
	/* the walk reached every verdict */
	for (int r = RFS_REL_EQUAL; r <= RFS_REL_UNRELATED; r++) {
		print_message("  %-26s %lu\n", rfs_relation_str(r), rel_seen[r]);
		assert_true(rel_seen[r] > 0);
	}
	assert_true(kept_aside > 0);
}

/* ---- HELLO bytes ---- */

static const struct rfs_gen sample = {
	.c = 0xfedcba9876543210ull, .b = 0x0123456789abcdefull, .h = { 0x8000000000000001ull, 0xff },
	.outdated = true, .outdated_since_ms = 1700000000123ull, .clean_stop = true,
};

static void hello_round_trip(void **st)
{
	struct rfs_gen in[3] = { sample, sample, { 0 } }, out;
	uint8_t buf[RFS_GEN_LEN];
	uint32_t flags = 0x80000000u | WIRE_HELLO_OUTDATED;     /* a bit owned by someone else */
	static const uint8_t head[] = { 1, 0, 0, 0, 0, 0, 0, 0,
	                                0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
	                                0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };

	(void)st;
	assert_int_equal(rfs_gen_encode(&in[0], buf, &flags), 0);
	assert_memory_equal(buf, head, sizeof(head));
	assert_int_equal(flags, 0x80000000u | WIRE_HELLO_OUTDATED | WIRE_HELLO_CLEAN_STOP);
	/* the flags follow the struct both ways; a fresh node too */
	in[1].outdated = in[1].clean_stop = false;
	in[1].outdated_since_ms = 0;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(rfs_gen_encode(&in[i], buf, &flags), 0);
		assert_int_equal(flags & 0x80000000u, 0x80000000u);
		assert_int_equal(!!(flags & WIRE_HELLO_OUTDATED), in[i].outdated);
		memset(&out, 0xa5, sizeof(out));
		assert_int_equal(rfs_gen_decode(buf, flags, &out, NULL, 0), 0);
		assert_same(&out, &in[i]);
	}
	/* an invalid struct is not sent */
	in[0] = G(5, 5, 0, 0);
	assert_int_equal(rfs_gen_encode(&in[0], buf, &flags), -1);
}

static const struct rfs_gen zero;

static void expect_bad(const uint8_t *buf, uint32_t flags, const char *want)
{
	struct rfs_gen out;
	char err[200] = "";

	memset(&out, 0xa5, sizeof(out));
	assert_int_equal(rfs_gen_decode(buf, flags, &out, err, sizeof(err)), -1);
	if (!strstr(err, want)) {
		print_error("decode error \"%s\" does not say \"%s\"\n", err, want);
		fail();
	}
	assert_same(&out, &zero);
}

static void hello_malformed(void **st)
{
	/* each invariant: bytes [off, off+len) replaced by src (or zeroed) */
	static const struct { int off, len, src; const char *want; } inv[] = {
		{ 8, 8, -1, "generation is 0" },        /* C 0, B and H set */
		{ 16, 8, 8, "record base equals" },     /* B = C */
		{ 24, 8, -1, "history has a gap" },     /* H[0] empty, H[1] set */
		{ 40, 1, 24, "out of range" },          /* since >= 2^63 */
	};
	struct rfs_gen g = sample;
	uint8_t good[RFS_GEN_LEN], buf[RFS_GEN_LEN];
	uint32_t flags = 0;

	(void)st;
	assert_int_equal(rfs_gen_encode(&g, good, &flags), 0);
	for (unsigned v = 0; v < 256; v++) {
		memcpy(buf, good, sizeof(buf));
		buf[0] = (uint8_t)v;
		if (v != RFS_GEN_FORMAT)
			expect_bad(buf, flags, "format");
	}
	for (int i = 1; i < RFS_GEN_LEN; i = i == 7 ? 48 : i + 1) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(buf, good, sizeof(buf));
			buf[i] ^= (uint8_t)(1u << bit);
			expect_bad(buf, flags, "reserved");
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(inv); i++) {
		memcpy(buf, good, sizeof(buf));
		if (inv[i].src < 0)
			memset(buf + inv[i].off, 0, (size_t)inv[i].len);
		else
			memcpy(buf + inv[i].off, good + inv[i].src, (size_t)inv[i].len);
		expect_bad(buf, flags, inv[i].want);
	}
	expect_bad(good, flags & ~(uint32_t)WIRE_HELLO_OUTDATED, "not outdated");
	/* any other change of a value field decodes to another value */
	for (int i = 8; i < 48; i++) {
		struct rfs_gen out;

		memcpy(buf, good, sizeof(buf));
		buf[i] ^= 0x01;
		if (rfs_gen_decode(buf, flags, &out, NULL, 0) == 0)
			assert_false(same(&out, &g));
	}
}

/* ---- meta file ---- */

static void meta_path(const char *name, char *out, size_t len)
{
	char dir[PATH_MAX];

	FMT(dir, sizeof(dir), "%s/%s", base_dir, name);
	assert_int_equal(mkdir(dir, 0755), 0);
	FMT(out, len, "%s/meta", dir);
}

/* Files in path's directory: the meta file only, no temporary left. */
static size_t count_entries(const char *path)
{
	char pat[PATH_MAX];
	glob_t gl;
	size_t n;

	FMT(pat, sizeof(pat), "%.*s/*", (int)(strrchr(path, '/') - path), path);
	assert_int_equal(glob(pat, GLOB_PERIOD, NULL, &gl), 0);
	n = gl.gl_pathc - 2;    /* . and .. */
	globfree(&gl);
	return n;
}

static void put(const char *path, const void *text, size_t len)
{
	assert_int_equal(write_file_atomic(path, text, len, 0600), 0);
}

static void load_bad(const char *path, const char *want)
{
	struct rfs_gen out;
	char err[400] = "";

	memset(&out, 0xa5, sizeof(out));
	assert_int_equal(rfs_gen_load(path, &out, err, sizeof(err)), -1);
	if (strncmp(err, path, strlen(path)) || !strstr(err, want)) {
		print_error("load error \"%s\" does not name %s and \"%s\"\n", err, path, want);
		fail();
	}
	assert_same(&out, &zero);
}

static void meta_round_trip(void **st)
{
	struct rfs_gen in[4] = { sample, G(3, 0, 2, 1), { 0 }, G(5, 5, 0, 0) }, out;
	char path[PATH_MAX], err[300];
	struct stat sb;

	(void)st;
	meta_path("roundtrip", path, sizeof(path));
	/* missing: a fresh node, all zero */
	memset(&out, 0xa5, sizeof(out));
	assert_int_equal(rfs_gen_load(path, &out, err, sizeof(err)), 1);
	assert_same(&out, &zero);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(rfs_gen_store(path, &in[i]), 0);
		memset(&out, 0xa5, sizeof(out));
		assert_int_equal(rfs_gen_load(path, &out, err, sizeof(err)), 0);
		assert_same(&out, &in[i]);
	}
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(count_entries(path), 1);       /* no temporary left behind */
	/* an invalid struct is refused and the file kept */
	assert_int_equal(rfs_gen_store(path, &in[3]), -1);
	assert_int_equal(rfs_gen_load(path, &out, err, sizeof(err)), 0);
	assert_same(&out, &in[2]);
	assert_int_equal(count_entries(path), 1);
	/* nor is a store into a directory that does not exist a success */
	FMT(path, sizeof(path), "%s/nodir/meta", base_dir);
	assert_int_equal(rfs_gen_store(path, &in[0]), -1);
	/* a directory where the file should be is not "missing" */
	FMT(path, sizeof(path), "%s/roundtrip", base_dir);
	load_bad(path, "cannot read");
}

static void meta_truncated(void **st)
{
	char path[PATH_MAX], *full = NULL;
	struct rfs_gen in = sample;
	size_t len = 0;

	(void)st;
	meta_path("truncated", path, sizeof(path));
	assert_int_equal(rfs_gen_store(path, &in), 0);
	assert_int_equal(read_file(path, 4096, &full, &len), 0);
	assert_true(len > 20 && full[len - 1] == '\n' && full[len - 2] == '}');
	/* every cut before the closing brace: an error, never a fresh node */
	put(path, "", 0);
	load_bad(path, "empty");
	for (size_t cut = 1; cut < len - 1; cut++) {
		put(path, full, cut);
		load_bad(path, "not valid JSON");
	}
	free(full);
}

/* One change to a valid file per case. */
static const char meta_ok[] =
	"{\"format\":1,\"c\":\"0000000000000005\",\"b\":\"0000000000000000\",\"h\":[\"0000000000000004\","
	"\"0000000000000000\"],\"outdated\":false,\"outdated_since_ms\":0,\"clean_stop\":false}";

static void meta_corrupt(void **st)
{
	static const struct { const char *from, *to, *want; } cases[] = {
		{ "{", "garbage{", "not valid JSON" },
		{ "{\"format\":1,", "[{", "not valid JSON" },
		{ "\"format\":1", "\"format\":1,\"format\":1", "not valid JSON" },  /* duplicate key */
		{ "\"format\":1,", "", "\"format\" is missing" },
		{ ",\"clean_stop\":false", "", "\"clean_stop\" is missing" },
		{ "\"clean_stop\":false", "\"clean_stop\":false,\"x\":1", "unknown key \"x\"" },
		{ "\"format\":1", "\"format\":2", "\"format\" is not 1" },
		{ "\"format\":1", "\"format\":\"1\"", "\"format\" is not 1" },
		{ "\"0000000000000005\"", "\"000000000000005\"", "\"c\" is not a string of 16 hex digits" },
		{ "\"0000000000000005\"", "\"00000000000000005\"", "\"c\" is not a string of 16 hex" },
		{ "\"0000000000000005\"", "\"000000000000000g\"", "\"c\" is not a string of 16 hex" },
		{ "\"0000000000000005\"", "\"-000000000000005\"", "\"c\" is not a string of 16 hex" },
		{ "\"b\":\"0000000000000000\"", "\"b\":0", "\"b\" is not a string" },
		{ ",\"0000000000000000\"]", "]", "\"h\" is not an array of 2" },
		{ ",\"0000000000000000\"]", ",\"0000000000000000\",\"0000000000000000\"]", "\"h\" is not an array" },
		{ ",\"0000000000000000\"]", ",null]", "\"h\"[1] is not a string of 16 hex" },
		{ "\"outdated\":false", "\"outdated\":0", "\"outdated\" is not true or false" },
		{ "\"clean_stop\":false", "\"clean_stop\":\"no\"", "\"clean_stop\" is not true or false" },
		{ "\"outdated\":false,\"outdated_since_ms\":0", "\"outdated\":true,\"outdated_since_ms\":-1",
		  "\"outdated_since_ms\" is not a non-negative integer" },
		{ "\"outdated_since_ms\":0", "\"outdated_since_ms\":1.5", "\"outdated_since_ms\" is not" },
		{ "\"b\":\"0000000000000000\"", "\"b\":\"0000000000000005\"", "record base equals" },
		{ "\"c\":\"0000000000000005\"", "\"c\":\"0000000000000000\"", "generation is 0" },
		{ "\"h\":[\"0000000000000004\",\"0000000000000000\"]",
		  "\"h\":[\"0000000000000000\",\"0000000000000004\"]", "history has a gap" },
		{ "\"outdated_since_ms\":0", "\"outdated_since_ms\":7", "not outdated" },
	};
	static const char nul[] = "{\"format\":1,\0\"c\":\"0000000000000005\"}";
	char path[PATH_MAX], text[1024], big[RFS_GEN_META_MAX + 2], err[300];
	struct rfs_gen out;

	(void)st;
	meta_path("corrupt", path, sizeof(path));
	put(path, meta_ok, strlen(meta_ok));
	assert_int_equal(rfs_gen_load(path, &out, err, sizeof(err)), 0);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *at = strstr(meta_ok, cases[i].from);

		assert_non_null(at);
		FMT(text, sizeof(text), "%.*s%s%s", (int)(at - meta_ok), meta_ok, cases[i].to,
		    at + strlen(cases[i].from));
		put(path, text, strlen(text));
		load_bad(path, cases[i].want);
	}
	put(path, nul, sizeof(nul) - 1);
	load_bad(path, "not valid JSON");
	memset(big, ' ', sizeof(big));
	put(path, big, sizeof(big));
	load_bad(path, "larger than");
	/* upper-case hex, another key order and blank lines still load */
	FMT(text, sizeof(text), " {\"clean_stop\":true,\"format\":1,\"c\":\"00000000000000AB\","
	    "\"b\":\"0000000000000000\",\"h\":[\"0000000000000000\",\"0000000000000000\"],"
	    "\"outdated\":true,\"outdated_since_ms\":5}\n\n");
	put(path, text, strlen(text));
	assert_int_equal(rfs_gen_load(path, &out, err, sizeof(err)), 0);
	assert_true(out.c == 0xab && out.outdated && out.outdated_since_ms == 5 && out.clean_stop);
}

static int group_setup(void **st)
{
	(void)st;
	/* the refused stores log errors on purpose */
	log_init("ut-rfs-gen", true, LOG_LVL_ERROR - 1);
	return tu_mkdtemp(base_dir, "rfs-gen");
}

static int group_teardown(void **st)
{
	(void)st;
	tu_rm_rf(base_dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(table_rows),
		cmocka_unit_test(table_outdated),
		cmocka_unit_test(table_exhaustive),
		cmocka_unit_test(transitions),
		cmocka_unit_test(random_walk),
		cmocka_unit_test(incremental),
		cmocka_unit_test(verify),
		cmocka_unit_test(hello_round_trip),
		cmocka_unit_test(hello_malformed),
		cmocka_unit_test(meta_round_trip),
		cmocka_unit_test(meta_truncated),
		cmocka_unit_test(meta_corrupt),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
