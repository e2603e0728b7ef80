/* The node state machine: pure, table-driven, no I/O, no clock, no globals.
 *
 * sm_step(state, event) -> (next state, actions, reason). The driver
 * (cluster/node.c) turns heartbeats, timers, script results and commands
 * into events and carries out the actions. Peer information enters only as
 * events, which the driver computes with sm_classify_peer() from what the
 * peer's heartbeats say; it feeds the current peer event again after every
 * transition, so each state sees the peer as it is now (level-triggered).
 *
 * Internal states are finer than the five states operators see (STOP WAIT
 * ALONE PRIM SECOND, with a color); sm_display() maps them. The full rules
 * are in docs/state-rules.md. */
#ifndef VIGIL_STATE_H
#define VIGIL_STATE_H

#include <stdbool.h>
#include <stdint.h>

enum sm_state {
	S_STOP,       /* stopped, runs nothing                      STOP   red     */
	S_WAIT,       /* started, learning who the peer is          WAIT   magenta */
	S_RESUME,     /* restarted daemon that held the PRIM role    WAIT   magenta */
	S_BLOCKED,    /* wants PRIM but may not: VIP in use          WAIT   red     */
	S_GO_PRIM,    /* bringing up the PRIM role                   ALONE  magenta */
	S_ALONE,      /* runs the service, no SECOND                 ALONE  green   */
	S_PRIM,       /* runs the service, peer is SECOND            PRIM   green   */
	S_GO_SECOND,  /* bringing up the SECOND role                 SECOND magenta */
	S_SECOND,     /* standby behind a PRIM                       SECOND green   */
	S_HANDOVER,   /* swap: PRIM releasing its role               PRIM   magenta */
	S_SECOND_HO,  /* swap: released, waiting for peer to take    SECOND magenta */
	S_RESTART_P,  /* restart: stopping the PRIM role             PRIM   magenta */
	S_RESTART_S,  /* restart: stopping the SECOND role           SECOND magenta */
	S_STOPPING,   /* stopping everything                         STOP   magenta */
	S_HELD,       /* peer lost, may not take over (see reason)   WAIT   red     */
	S_FENCING,    /* peer lost, no witness grant: releasing PRIM WAIT   magenta */
	S__COUNT
};

enum sm_event {
	/* commands */
	E_START, E_STOP, E_RESTART, E_SWAP, E_FORCESTART,
	E_START_PRIM,         /* vigilctl prim: start a stopped node as PRIM */
	E_START_SECOND,       /* vigilctl second: start a stopped node as SECOND */
	/* the peer, as classified by sm_classify_peer */
	E_PEER_LOST,          /* heartbeats stopped on every network */
	E_PEER_STOP,          /* peer runs nothing and will not take the role */
	E_PEER_STOPPING,      /* peer is releasing what it runs */
	E_PEER_WAIT_WIN,      /* peer deciding; we are preferred */
	E_PEER_WAIT_LOSE,     /* peer deciding; it is preferred */
	E_PEER_RESUMING_WIN,  /* peer restarted holding PRIM; our claim is older */
	E_PEER_RESUMING_LOSE, /* peer restarted holding PRIM; its claim stands */
	E_PEER_ACTIVE_WIN,    /* peer runs the PRIM role; if we do too, we keep it */
	E_PEER_ACTIVE_LOSE,   /* peer runs the PRIM role; if we do too, we yield */
	E_PEER_SECOND_WIN,    /* peer is SECOND; if we are too, we take PRIM */
	E_PEER_SECOND_LOSE,   /* peer is SECOND; if we are too, it takes PRIM */
	E_PEER_HANDOVER,      /* peer released PRIM for us (swap) */
	E_PEER_BLOCKED,       /* peer wants PRIM but the VIP is in use: stand by */
	E_PEER_LOST_HELD,     /* peer lost and this node may not take over: failover off,
	                       * no witness grant, or the failover limit reached */
	/* timers and results */
	E_DECIDE_TIMEOUT,     /* no word from the peer while deciding */
	E_APPLY_OK, E_APPLY_FAIL, E_VIP_IN_USE,
	E_RETRY,              /* time to try again from BLOCKED */
	E_FAILOVER_ON,        /* a held takeover may proceed (failover on, witness grant) */
	E_FENCE,              /* peer lost and the witness grant is gone: release PRIM */
	E_FAILED,             /* a checker's policy stops this node (failover, stop, wait) */
	E__COUNT
};

enum sm_action {
	A_NONE = 0,
	A_APPLY_NONE = 1 << 0,   /* bring resources to nothing */
	A_APPLY_SECOND = 1 << 1, /* bring resources to the SECOND role */
	A_APPLY_PRIM = 1 << 2,   /* bring resources (and the VIP) to PRIM */
	A_ARM_DECIDE = 1 << 3,   /* start the deciding timer */
	A_ARM_RETRY = 1 << 4,    /* start the retry timer */
	A_NEW_TERM = 1 << 5,     /* a new claim on the PRIM role begins */
	A_REJECT = 1 << 6,       /* the command is refused; reason says why */
	A_SPLIT = 1 << 7,        /* two primaries met: a split brain is resolved */
};

enum sm_display { D_STOP, D_WAIT, D_ALONE, D_PRIM, D_SECOND };
enum sm_color { C_GREEN, C_MAGENTA, C_RED };

struct sm_result {
	enum sm_state next;
	unsigned actions;        /* enum sm_action bits */
	const char *reason;      /* for the transition log or the refusal */
};

const char *sm_state_str(enum sm_state s);
const char *sm_event_str(enum sm_event e);
const char *sm_action_str(enum sm_action a);
const char *sm_display_str(enum sm_display d);
const char *sm_color_str(enum sm_color c);

/* One step; next == s and actions == 0 means the event changes nothing. */
struct sm_result sm_step(enum sm_state s, enum sm_event e);

void sm_display(enum sm_state s, enum sm_display *d, enum sm_color *c);

/* Holds (or may still hold) resources of the PRIM role. */
bool sm_is_primary(enum sm_state s);

/* What the peer said in its last heartbeat. */
struct sm_peer {
	bool reachable;
	enum sm_state state;
	uint64_t term;     /* its claim on PRIM: lower = older */
	int index;         /* its node index; lower = preferred */
};

/* The peer event for the driver, given our own term and index. A lost
 * peer is E_PEER_LOST, or E_PEER_LOST_HELD when this node may not take
 * over (may_take_over false: failover off, no witness grant, limit). */
enum sm_event sm_classify_peer(const struct sm_peer *peer, uint64_t my_term, int my_index,
                               bool may_take_over);

/* Whether a command event is refused in this state, without stepping. */
bool sm_rejects(enum sm_state s, enum sm_event e, const char **why);

#endif
