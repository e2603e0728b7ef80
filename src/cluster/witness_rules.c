#include "cluster/witness_rules.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"

const char *wr_verdict_str(enum wr_verdict v)
{
	static const char *const names[] = {
		"granted", "renewed", "released", "release from a node not holding the lease",
		"old incarnation", "replayed request", "old term", "quiet period after a witness restart",
		"held by another node", "no room",
	};
	return (unsigned)v < ARRAY_SIZE(names) ? names[v] : "?";
}

bool wr_verdict_refused(enum wr_verdict v)
{
	return v >= WR_OLD_INCARNATION && v < WR__COUNT;
}

void wr_init(struct wr_state *s, uint64_t start_ms)
{
	memset(s, 0, sizeof(*s));
	s->start_ms = start_ms;
}

const struct wr_cluster *wr_find(const struct wr_state *s, const char *cluster)
{
	for (int i = 0; i < s->nclusters; i++)
		if (!strcmp(s->clusters[i].name, cluster))
			return &s->clusters[i];
	return NULL;
}

static struct wr_cluster *cluster_get(struct wr_state *s, const char *name)
{
	struct wr_cluster *c = (struct wr_cluster *)wr_find(s, name);

	if (c || s->nclusters == WR_MAX_CLUSTERS)
		return c;
	c = &s->clusters[s->nclusters++];
	memset(c, 0, sizeof(*c));
	strlcpy_ok(c->name, name, sizeof(c->name));
	return c;
}

/* *fresh: the node was not known yet (any incarnation and seq are new). */
static struct wr_node *node_get(struct wr_cluster *c, const char *name, bool *fresh)
{
	struct wr_node *n;

	*fresh = false;
	for (int i = 0; i < c->nnodes; i++)
		if (!strcmp(c->nodes[i].name, name))
			return &c->nodes[i];
	if (c->nnodes == WR_MAX_NODES)
		return NULL;
	n = &c->nodes[c->nnodes++];
	memset(n, 0, sizeof(*n));
	strlcpy_ok(n->name, name, sizeof(n->name));
	*fresh = true;
	return n;
}

static enum wr_verdict refuse(struct wp_answer *ans, enum wr_verdict v, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum wr_verdict refuse(struct wp_answer *ans, enum wr_verdict v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ans->error, sizeof(ans->error), fmt, ap);
	va_end(ap);
	ans->granted = false;
	return v;
}

static enum wr_verdict judge(struct wr_state *s, struct wr_cluster *c, const struct wp_request *req,
                             uint64_t now, struct wp_answer *ans, struct wr_outcome *out)
{
	struct wr_node *n;
	bool fresh, live, mine;

	n = node_get(c, req->node, &fresh);
	if (!n)
		return refuse(ans, WR_FULL, "the witness keeps at most %d nodes per cluster", WR_MAX_NODES);
	/* Replayed requests change nothing, not even the replay record. */
	if (!fresh && req->incarnation < n->incarnation)
		return refuse(ans, WR_OLD_INCARNATION, "old incarnation %llu (the witness has seen %llu)",
		              (unsigned long long)req->incarnation, (unsigned long long)n->incarnation);
	if (!fresh && req->incarnation == n->incarnation && req->seq <= n->seq)
		return refuse(ans, WR_REPLAYED, "replayed request (seq %llu, the witness has seen %llu)",
		              (unsigned long long)req->seq, (unsigned long long)n->seq);
	n->incarnation = req->incarnation;
	n->seq = req->seq;

	live = c->holder[0] != '\0';    /* expired leases were cleared by the caller */
	mine = live && !strcmp(c->holder, req->node);
	if (req->op == WP_RELEASE) {
		if (!mine)
			return WR_RELEASE_NOT_HOLDER;
		c->holder[0] = '\0';
		c->expires_ms = 0;
		return WR_RELEASED;
	}
	if (req->term < c->max_term)
		return refuse(ans, WR_OLD_TERM, "old term %llu: the witness granted term %llu",
		              (unsigned long long)req->term, (unsigned long long)c->max_term);
	if (live && !mine)
		return refuse(ans, WR_HELD, "held by %s (term %llu) for %llu ms more", c->holder,
		              (unsigned long long)c->holder_term, (unsigned long long)(c->expires_ms - now));
	/* The witness may have granted a lease before it restarted: until
	 * that lease would have expired, only its holder, who runs the
	 * service, may claim it. Not even a holder of a lease granted since
	 * the restart is spared: that grant may have answered a delayed or
	 * replayed request (the replay records were lost too), and a node
	 * not claiming primary does not hold a lease in its own view. */
	if (!req->primary && now < s->start_ms + req->lease_ms)
		return refuse(ans, WR_QUIET, "witness restarted %llu ms ago: only the node running the "
		              "service may claim the lease before %u ms",
		              (unsigned long long)(now - s->start_ms), req->lease_ms);
	out->was_holder = mine;
	out->prev_term = mine ? c->holder_term : 0;
	strlcpy_ok(c->holder, req->node, sizeof(c->holder));
	c->holder_term = req->term;
	c->expires_ms = now + req->lease_ms;
	if (req->term > c->max_term)
		c->max_term = req->term;
	ans->granted = true;
	return mine && out->prev_term == req->term ? WR_RENEWED : WR_GRANTED;
}

enum wr_verdict wr_judge(struct wr_state *s, const struct wp_request *req, uint64_t now_ms,
                         struct wp_answer *ans, struct wr_outcome *out)
{
	struct wr_cluster *c;

	memset(ans, 0, sizeof(*ans));
	memset(out, 0, sizeof(*out));
	strlcpy_ok(ans->cluster, req->cluster, sizeof(ans->cluster));
	strlcpy_ok(ans->node, req->node, sizeof(ans->node));
	ans->incarnation = req->incarnation;
	ans->seq = req->seq;
	c = cluster_get(s, req->cluster);
	if (!c) {
		out->verdict = refuse(ans, WR_FULL, "the witness serves at most %d clusters", WR_MAX_CLUSTERS);
		return out->verdict;
	}
	if (c->holder[0] && now_ms >= c->expires_ms) {
		strlcpy_ok(out->expired_holder, c->holder, sizeof(out->expired_holder));
		out->expired_term = c->holder_term;
		out->expired_ago_ms = now_ms - c->expires_ms;
		c->holder[0] = '\0';
	}
	out->verdict = judge(s, c, req, now_ms, ans, out);
	strlcpy_ok(ans->holder, c->holder, sizeof(ans->holder));
	ans->term = c->max_term;
	ans->remaining_ms = c->holder[0] ? c->expires_ms - now_ms : 0;
	return out->verdict;
}
