/* The witness's grant rules: a pure function of (state, verified request,
 * monotonic now). No I/O, no clock, no logging: vigil-witness logs from the
 * verdict, and the unit tests walk the rules directly.
 *
 * Per cluster name: the lease holder (name, term, expiry), the newest term
 * ever granted, and per node the last (incarnation, seq) accepted. Plus the
 * witness's start time: the state lives in memory only, so after a restart
 * the witness cannot know whether it granted a lease just before; for
 * lease_ms it grants only to a node that runs the service (primary). */
#ifndef VIGIL_WITNESS_RULES_H
#define VIGIL_WITNESS_RULES_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster/witness_proto.h"

#define WR_MAX_CLUSTERS 64
#define WR_MAX_NODES 16         /* per cluster: replay records */

enum wr_verdict {
	WR_GRANTED,             /* a new holder, or the holder under a new term */
	WR_RENEWED,             /* the holder again, same term */
	WR_RELEASED,            /* the holder let it go */
	WR_RELEASE_NOT_HOLDER,  /* a release from a node that does not hold it: nothing to do */
	WR_OLD_INCARNATION,     /* refusals from here on */
	WR_REPLAYED,
	WR_OLD_TERM,
	WR_QUIET,               /* witness restarted less than lease_ms ago, requester not primary */
	WR_HELD,                /* another node holds a live lease */
	WR_FULL,                /* no room for another cluster or node */
	WR__COUNT
};
const char *wr_verdict_str(enum wr_verdict v);
/* The answer is a refusal (granted=false with an error). */
bool wr_verdict_refused(enum wr_verdict v);

struct wr_node {
	char name[WP_NAME_MAX];
	uint64_t incarnation, seq;
};

struct wr_cluster {
	char name[WP_NAME_MAX];
	char holder[WP_NAME_MAX];       /* "" = none */
	uint64_t holder_term;
	uint64_t expires_ms;            /* monotonic */
	uint64_t max_term;              /* newest term granted */
	struct wr_node nodes[WR_MAX_NODES];
	int nnodes;
};

struct wr_state {
	uint64_t start_ms;
	struct wr_cluster clusters[WR_MAX_CLUSTERS];
	int nclusters;
};

/* What else happened, for the log. */
struct wr_outcome {
	enum wr_verdict verdict;
	/* A lease found expired while judging (the witness expires leases
	 * lazily): who held it, under which term, and since when. */
	char expired_holder[WP_NAME_MAX];
	uint64_t expired_term;
	uint64_t expired_ago_ms;
	/* WR_GRANTED: whether the requester already held a live lease
	 * (a new term for the same holder), and under which term. */
	bool was_holder;
	uint64_t prev_term;
};

void wr_init(struct wr_state *s, uint64_t start_ms);

/* Judges a verified, well-formed request (lease_ms within WP_LEASE_MIN_MS
 * and WP_LEASE_MAX_MS) received at now_ms, updates s and fills the answer to
 * send. Every verdict gets an answer. */
enum wr_verdict wr_judge(struct wr_state *s, const struct wp_request *req, uint64_t now_ms,
                         struct wp_answer *ans, struct wr_outcome *out);

/* The cluster's record, or NULL (for status and tests). */
const struct wr_cluster *wr_find(const struct wr_state *s, const char *cluster);

#endif
