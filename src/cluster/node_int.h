/* The node driver's state, shared by its files: node.c (the state
 * machine's I/O), node_guard.c (checkers' actions, witness, failover
 * limit, alarms) and node_status.c (status JSON). Internal to vigild. */
#ifndef VIGIL_NODE_INT_H
#define VIGIL_NODE_INT_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "cluster/node.h"
#include "cluster/persist.h"
#include "cluster/state.h"
#include "common/config.h"

struct event;
struct hb;
struct notify;
struct vip;
struct resmgr;
struct policy;
struct wclient;
struct checker;
struct rfs_child;
struct peerlink;

struct node {
	struct event_base *base;
	struct config *cfg;
	int self, peer;
	char state_path[PATH_MAX + 16];

	enum sm_state state;
	char reason[512];
	char failure[512];           /* why the last STOPPING began, if a failure */
	uint64_t since_ms;           /* wall clock of the last transition */
	uint64_t term;
	uint64_t incarnation;
	bool admin_started;
	enum boot_mode boot;
	bool failover;               /* off: a lost PRIM is not taken over */

	struct sm_peer pv;           /* what the peer's heartbeats say */
	bool peer_heard;             /* since we started */
	uint64_t peer_seen_ms;       /* mono ms: the peer's last heartbeat, or our start */
	uint64_t peer_incarnation;
	uint64_t split_ms;           /* last split brain resolved, 0 if none */

	struct hb *hb;
	struct notify *notify;
	struct vip *vip;
	struct resmgr *res;
	uint64_t gen;

	struct event *decide;
	struct event *retry;
	struct event *done_ev;
	struct event *restart_ev;    /* stopstart: start again once STOP */
	bool start_after_stop;
	uint64_t restart_deadline;   /* mono ms: start again even if the peer did not take over */

	/* issue 3: checkers, switches, witness, failover limit (node_guard.c) */
	struct policy *policy;
	bool checkers_on;
	bool errd_suspended;
	uint64_t restart_gen;        /* a checker's restart under way: its apply gen, else 0 */
	char waiting_checker[CFG_NAME_MAX]; /* on_failure wait: stopped until it passes */
	int nfailovers;              /* automatic failovers this node counted, wall ms */
	uint64_t failovers[PERSIST_MAX_FAILOVERS];
	unsigned peer_failovers;     /* the peer's count, from its heartbeats */
	uint32_t peer_flags;         /* the peer's heartbeat flags */
	json_t *alarms;              /* [{"time", "message"}] until a command clears them */
	struct wclient *wc;          /* [witness] address */
	struct checker *ping;        /* [witness] ping */
	struct event *guard_ev;      /* re-evaluate fencing and held takeovers */
	int wc_want;                 /* enum wc_want last asked */
	uint64_t wc_since;           /* mono ms when it was first asked */
	uint64_t wc_term;            /* the term last asked with */
	bool limit_alarmed;          /* the failover limit's alarm is raised */
	bool ping_ok;
	char hold_why[512];          /* why a lost peer is not taken over */

	bool shutting_down;
	void (*shutdown_done)(void *);
	void *shutdown_arg;

	/* [replication] (node_rfs.c) */
	struct rfs_child *rfs;
	struct peerlink *link;
	struct event *rfs_retry;     /* asking the peer to mark its copy outdated again */
	uint64_t rfs_hold;           /* the prim's hold waiting for that, 0 if none */
	uint64_t rfs_asked;          /* the hold the request in flight is for */
	bool rfs_asking;
};


/* node.c */
void node_process(struct node *n, enum sm_event e, const char *detail, int *rc, const char **why);
void node_save(struct node *n);
void node_notify(struct node *n, const char *type, enum sm_state from, enum sm_state to);
void node_display_name(enum sm_state s, char *buf, size_t len);
/* Heartbeat flags: bits 0-7 the automatic failovers this node counted;
 * HB_FLAG_GRANT: it holds a fresh grant of the witness. */
#define HB_FLAG_GRANT 0x100u
void node_announce(struct node *n);
/* Feeds the peer event for what the peer's heartbeats say now. */
void node_refeed_peer(struct node *n);

/* node_rfs.c */
int node_rfs_init(struct node *n);
void node_rfs_free(struct node *n);
void node_rfs_peer_changed(struct node *n);
void node_rfs_force(struct node *n, char *msg, size_t len);
bool node_rfs_may_serve(struct node *n, char *why, size_t len);
void node_rfs_status(struct node *n, json_t *o);

/* node_guard.c */
int guard_init(struct node *n);
void guard_free(struct node *n);
/* Whether this node may take over from a lost peer; if not, why. */
bool guard_may_take_over(struct node *n, char *why, size_t len);
/* Holds a grant of the witness, confirmed within lease_ms / 3. */
bool guard_holds_grant(const struct node *n);
/* Asked for lease_ms and neither granted nor refused: the witness is down. */
bool guard_witness_silent(const struct node *n);
/* Tells the witness client what this node wants now (hold, take, none). */
void guard_want(struct node *n);
/* After a transition or a change of the witness's answer (deferred). */
void guard_kick(struct node *n);
/* A takeover or a checker's failover: counted for max_failovers. */
void guard_record_failover(struct node *n);
unsigned guard_failovers(struct node *n);
void guard_alarm(struct node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The role the checkers see for state s. */
void guard_set_role(struct node *n);
/* An apply finished: 1 if it was a checker's restart (handled), else 0. */
int guard_apply_done(struct node *n, uint64_t gen, bool ok, const char *reason);
/* A command clears alarms and a checker's wait. */
void guard_command(struct node *n);
json_t *guard_status(struct node *n, json_t *o);

#endif
