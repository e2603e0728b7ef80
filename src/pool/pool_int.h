/* Inside the pool core: what pool_sm.c (the engine) shares with
 * pool_step.c (pool_step and the registry). Not for the driver. */
#ifndef VIGIL_POOL_INT_H
#define VIGIL_POOL_INT_H

#include "pool/pool_sm.h"

/* One step in progress. */
struct pool_ctx {
	struct pool *p;
	struct pool_result *res;
	int depth;      /* recorder events nested */
	bool moved;     /* a state changed, an action was given, or a setting kept */
	bool refused;   /* a command was refused: nothing changed */
	struct pool_action dropped; /* where actions past POOL_MAX_ACTIONS go (never read) */
};

/* Appends to res->reason, "; " between parts, cut at its size. */
void pool_say(struct pool_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pool_set_link(struct pool_ctx *c, int r, enum pool_link l);
/* Applies a recorder's table to e, decides, then settles the recorder.
 * from_spare: the spare the event comes from (for the log), or -1. */
void pool_feed_rec(struct pool_ctx *c, int r, enum pool_rec_event e, int from_spare);
/* Applies a spare's table to e; tells its recorder what the rule says. */
void pool_feed_spare(struct pool_ctx *c, int s, enum pool_spare_event e);
/* Free spares to the queue (in order), then to the copy-backs they owe. */
void pool_dispatch(struct pool_ctx *c);

#endif
