/* The node state machine table. Every (state, event) cell is written out:
 * an event a state does not act on says why (IGN), a refused command says
 * why (REJ). tests/unit/test_state.c walks every cell. Rules in prose:
 * docs/state-rules.md. */
#include "cluster/state.h"

#include <stddef.h>

#include "common/util.h"

#define SAME (-1)

struct row {
	int next;          /* enum sm_state, or SAME */
	unsigned actions;
	const char *reason;
};

#define GO(st, act, why) { st, act, why }
#define IGN(why) { SAME, 0, why }
#define KEEP(act, why) { SAME, act, why }
#define REJ(why) { SAME, A_REJECT, why }

#define TAKE (A_APPLY_PRIM | A_NEW_TERM)

/* Events a stopped or stopping node does not listen to. */
#define DEAF_TO_PEER(why) \
	[E_PEER_LOST] = IGN(why), [E_PEER_STOP] = IGN(why), [E_PEER_STOPPING] = IGN(why), \
	[E_PEER_WAIT_WIN] = IGN(why), [E_PEER_WAIT_LOSE] = IGN(why), \
	[E_PEER_RESUMING_WIN] = IGN(why), [E_PEER_RESUMING_LOSE] = IGN(why), \
	[E_PEER_ACTIVE_WIN] = IGN(why), [E_PEER_ACTIVE_LOSE] = IGN(why), \
	[E_PEER_SECOND_WIN] = IGN(why), [E_PEER_SECOND_LOSE] = IGN(why), \
	[E_PEER_HANDOVER] = IGN(why), [E_PEER_BLOCKED] = IGN(why), [E_PEER_LOST_HELD] = IGN(why)

/* prim and second start a stopped node only. */
#define STARTED_ALREADY \
	[E_START_PRIM] = REJ("the node is started; prim and second start a stopped node (stop it first)"), \
	[E_START_SECOND] = REJ("the node is started; prim and second start a stopped node (stop it first)")

#define NOT_PRIM_ROLE(why) [E_FENCE] = IGN(why)
#define FENCE [E_FENCE] = GO(S_FENCING, A_APPLY_NONE, "peer lost and no grant from the witness: releasing the PRIM role")

static const struct row table[S__COUNT][E__COUNT] = {
	[S_STOP] = {
		[E_START] = GO(S_WAIT, A_ARM_DECIDE, "started by command"),
		[E_STOP] = IGN("already stopped"),
		[E_FAILED] = IGN("already stopped"),
		[E_RESTART] = REJ("the node is stopped; use start"),
		[E_SWAP] = REJ("the node is stopped; swap needs a PRIM and a SECOND"),
		[E_FORCESTART] = GO(S_GO_PRIM, TAKE, "forced start"),
		DEAF_TO_PEER("a stopped node does not act on its peer"),
		[E_DECIDE_TIMEOUT] = IGN("not deciding"),
		[E_APPLY_OK] = IGN("no change of role under way"),
		[E_APPLY_FAIL] = IGN("no change of role under way"),
		[E_VIP_IN_USE] = IGN("not taking the virtual IP"),
		[E_RETRY] = IGN("nothing to retry"),
		[E_START_PRIM] = GO(S_GO_PRIM, TAKE, "started as PRIM by command"),
		[E_START_SECOND] = GO(S_GO_SECOND, A_APPLY_SECOND, "started as SECOND by command"),
		NOT_PRIM_ROLE("a stopped node runs nothing"),
		[E_FAILOVER_ON] = IGN("nothing is held"),
	},
	[S_WAIT] = {
		[E_START] = IGN("already starting"),
		[E_STOP] = GO(S_STOPPING, A_APPLY_NONE, "stopped by command"),
		[E_FAILED] = GO(S_STOPPING, A_APPLY_NONE, "stopping after a failure"),
		[E_RESTART] = REJ("the node is still starting"),
		[E_SWAP] = REJ("the node is not PRIM"),
		[E_FORCESTART] = GO(S_GO_PRIM, TAKE, "forced start: not waiting for the peer"),
		[E_PEER_LOST] = GO(S_GO_PRIM, TAKE, "peer lost on all heartbeat networks while deciding"),
		[E_PEER_STOP] = GO(S_GO_PRIM, TAKE, "peer is stopped"),
		[E_PEER_STOPPING] = IGN("waiting for the peer to finish stopping"),
		[E_PEER_WAIT_WIN] = GO(S_GO_PRIM, TAKE, "both nodes starting; this node is preferred"),
		[E_PEER_WAIT_LOSE] = GO(S_GO_SECOND, A_APPLY_SECOND, "both nodes starting; the peer is preferred"),
		[E_PEER_RESUMING_WIN] = GO(S_GO_SECOND, A_APPLY_SECOND, "the peer holds the PRIM role"),
		[E_PEER_RESUMING_LOSE] = GO(S_GO_SECOND, A_APPLY_SECOND, "the peer holds the PRIM role"),
		[E_PEER_ACTIVE_WIN] = GO(S_GO_SECOND, A_APPLY_SECOND, "the peer runs the service"),
		[E_PEER_ACTIVE_LOSE] = GO(S_GO_SECOND, A_APPLY_SECOND, "the peer runs the service"),
		[E_PEER_SECOND_WIN] = GO(S_GO_PRIM, TAKE, "the peer is SECOND and nobody is PRIM"),
		[E_PEER_SECOND_LOSE] = GO(S_GO_PRIM, TAKE, "the peer is SECOND and nobody is PRIM"),
		[E_PEER_HANDOVER] = GO(S_GO_PRIM, TAKE, "the peer hands the PRIM role over"),
		[E_PEER_BLOCKED] = GO(S_GO_SECOND, A_APPLY_SECOND, "the peer is waiting for the virtual IP; standing by as SECOND"),
		[E_DECIDE_TIMEOUT] = GO(S_GO_PRIM, TAKE, "no peer heard on any heartbeat network"),
		[E_APPLY_OK] = IGN("no change of role under way"),
		[E_APPLY_FAIL] = IGN("no change of role under way"),
		[E_VIP_IN_USE] = IGN("not taking the virtual IP"),
		[E_RETRY] = IGN("nothing to retry"),
		[E_PEER_LOST_HELD] = GO(S_HELD, 0, "peer lost while deciding; not taking over"),
		STARTED_ALREADY,
		NOT_PRIM_ROLE("not running the PRIM role"),
		[E_FAILOVER_ON] = IGN("nothing is held"),
	},
	[S_RESUME] = {
		[E_START] = IGN("already starting"),
		[E_STOP] = GO(S_STOPPING, A_APPLY_NONE, "stopped by command"),
		[E_FAILED] = GO(S_STOPPING, A_APPLY_NONE, "stopping after a failure"),
		[E_RESTART] = REJ("the node is still starting"),
		[E_SWAP] = REJ("the node is not PRIM yet"),
		[E_FORCESTART] = GO(S_GO_PRIM, A_APPLY_PRIM, "forced start: resuming the PRIM role"),
		[E_PEER_LOST] = GO(S_GO_PRIM, A_APPLY_PRIM, "peer lost; resuming the PRIM role"),
		[E_PEER_STOP] = GO(S_GO_PRIM, A_APPLY_PRIM, "the peer is stopped; resuming the PRIM role"),
		[E_PEER_STOPPING] = IGN("waiting for the peer to finish stopping"),
		[E_PEER_WAIT_WIN] = GO(S_GO_PRIM, A_APPLY_PRIM, "the peer is starting; resuming the PRIM role"),
		[E_PEER_WAIT_LOSE] = GO(S_GO_PRIM, A_APPLY_PRIM, "the peer is starting; resuming the PRIM role"),
		[E_PEER_RESUMING_WIN] = GO(S_GO_PRIM, A_APPLY_PRIM, "both resumed the PRIM role; this node's claim is older"),
		[E_PEER_RESUMING_LOSE] = GO(S_GO_SECOND, A_APPLY_SECOND, "both resumed the PRIM role; the peer's claim is older"),
		[E_PEER_ACTIVE_WIN] = GO(S_GO_SECOND, A_APPLY_SECOND, "the peer took over while this node was away"),
		[E_PEER_ACTIVE_LOSE] = GO(S_GO_SECOND, A_APPLY_SECOND, "the peer took over while this node was away"),
		[E_PEER_SECOND_WIN] = GO(S_GO_PRIM, A_APPLY_PRIM, "the peer is SECOND; resuming the PRIM role"),
		[E_PEER_SECOND_LOSE] = GO(S_GO_PRIM, A_APPLY_PRIM, "the peer is SECOND; resuming the PRIM role"),
		[E_PEER_HANDOVER] = GO(S_GO_PRIM, A_APPLY_PRIM, "the peer hands the PRIM role over"),
		[E_PEER_BLOCKED] = GO(S_GO_PRIM, A_APPLY_PRIM, "the peer is waiting for the virtual IP this node holds; resuming"),
		[E_DECIDE_TIMEOUT] = GO(S_GO_PRIM, A_APPLY_PRIM, "no peer heard; resuming the PRIM role"),
		[E_APPLY_OK] = IGN("no change of role under way"),
		[E_APPLY_FAIL] = IGN("no change of role under way"),
		[E_VIP_IN_USE] = IGN("not taking the virtual IP"),
		[E_RETRY] = IGN("nothing to retry"),
		[E_PEER_LOST_HELD] = GO(S_GO_PRIM, A_APPLY_PRIM, "peer lost; resuming the PRIM role"),
		STARTED_ALREADY,
		FENCE,
		[E_FAILOVER_ON] = IGN("nothing is held"),
	},
	[S_BLOCKED] = {
		[E_START] = IGN("already started; waiting for the virtual IP to be free"),
		[E_STOP] = GO(S_STOPPING, A_APPLY_NONE, "stopped by command"),
		[E_FAILED] = GO(S_STOPPING, A_APPLY_NONE, "stopping after a failure"),
		[E_RESTART] = REJ("the node is waiting; use stop, then start"),
		[E_SWAP] = REJ("the node is not PRIM"),
		[E_FORCESTART] = GO(S_GO_PRIM, A_APPLY_PRIM, "forced start: trying again now"),
		[E_PEER_LOST] = IGN("will try again at the next retry"),
		[E_PEER_STOP] = IGN("will try again at the next retry"),
		[E_PEER_STOPPING] = IGN("will try again at the next retry"),
		[E_PEER_WAIT_WIN] = IGN("will try again at the next retry"),
		[E_PEER_WAIT_LOSE] = IGN("will try again at the next retry"),
		[E_PEER_RESUMING_WIN] = GO(S_GO_SECOND, A_APPLY_SECOND, "the peer holds the PRIM role"),
		[E_PEER_RESUMING_LOSE] = GO(S_GO_SECOND, A_APPLY_SECOND, "the peer holds the PRIM role"),
		[E_PEER_ACTIVE_WIN] = GO(S_GO_SECOND, A_APPLY_SECOND, "the peer runs the service"),
		[E_PEER_ACTIVE_LOSE] = GO(S_GO_SECOND, A_APPLY_SECOND, "the peer runs the service"),
		[E_PEER_SECOND_WIN] = IGN("will try again at the next retry"),
		[E_PEER_SECOND_LOSE] = IGN("will try again at the next retry"),
		[E_PEER_HANDOVER] = GO(S_GO_PRIM, A_APPLY_PRIM, "the peer hands the PRIM role over; trying again"),
		[E_PEER_BLOCKED] = IGN("both nodes wait for the virtual IP; the preferred one retries"),
		[E_DECIDE_TIMEOUT] = IGN("not deciding"),
		[E_APPLY_OK] = IGN("no change of role under way"),
		[E_APPLY_FAIL] = IGN("no change of role under way"),
		[E_VIP_IN_USE] = IGN("already waiting for the virtual IP"),
		[E_RETRY] = GO(S_GO_PRIM, A_APPLY_PRIM, "trying again to take the virtual IP"),
		[E_PEER_LOST_HELD] = IGN("will try again at the next retry"),
		STARTED_ALREADY,
		NOT_PRIM_ROLE("not running the PRIM role"),
		[E_FAILOVER_ON] = IGN("nothing is held"),
	},
	[S_GO_PRIM] = {
		[E_START] = IGN("already starting"),
		[E_STOP] = GO(S_STOPPING, A_APPLY_NONE, "stopped by command"),
		[E_FAILED] = GO(S_STOPPING, A_APPLY_NONE, "stopping after a failure"),
		[E_RESTART] = REJ("the node is still starting its resources"),
		[E_SWAP] = REJ("the node is not PRIM yet"),
		[E_FORCESTART] = IGN("already starting as primary"),
		[E_PEER_LOST] = IGN("already taking the PRIM role"),
		[E_PEER_STOP] = IGN("already taking the PRIM role"),
		[E_PEER_STOPPING] = IGN("already taking the PRIM role"),
		[E_PEER_WAIT_WIN] = IGN("already taking the PRIM role"),
		[E_PEER_WAIT_LOSE] = IGN("already taking the PRIM role"),
		[E_PEER_RESUMING_WIN] = IGN("the restarted peer will yield"),
		[E_PEER_RESUMING_LOSE] = IGN("the restarted peer will yield"),
		[E_PEER_ACTIVE_WIN] = KEEP(A_SPLIT, "two primaries: this node's claim is older; keeping the PRIM role"),
		[E_PEER_ACTIVE_LOSE] = GO(S_GO_SECOND, A_APPLY_SECOND | A_SPLIT, "two primaries: the peer's claim is older; yielding"),
		[E_PEER_SECOND_WIN] = IGN("already taking the PRIM role"),
		[E_PEER_SECOND_LOSE] = IGN("already taking the PRIM role"),
		[E_PEER_HANDOVER] = IGN("already taking the PRIM role"),
		[E_PEER_BLOCKED] = IGN("the blocked peer will see this node take the PRIM role"),
		[E_DECIDE_TIMEOUT] = IGN("not deciding"),
		[E_APPLY_OK] = GO(S_ALONE, 0, "resources started"),
		[E_APPLY_FAIL] = GO(S_STOPPING, A_APPLY_NONE, "start failed"),
		[E_VIP_IN_USE] = GO(S_BLOCKED, A_ARM_RETRY, "the virtual IP is in use by another host"),
		[E_RETRY] = IGN("nothing to retry"),
		[E_PEER_LOST_HELD] = IGN("already taking the PRIM role"),
		STARTED_ALREADY,
		FENCE,
		[E_FAILOVER_ON] = IGN("nothing is held"),
	},
	[S_ALONE] = {
		[E_START] = IGN("already running"),
		[E_STOP] = GO(S_STOPPING, A_APPLY_NONE, "stopped by command"),
		[E_FAILED] = GO(S_STOPPING, A_APPLY_NONE, "stopping after a failure"),
		[E_RESTART] = GO(S_RESTART_P, A_APPLY_NONE, "restart by command"),
		[E_SWAP] = REJ("there is no SECOND to swap with"),
		[E_FORCESTART] = IGN("already running"),
		[E_PEER_LOST] = IGN("already alone"),
		[E_PEER_STOP] = IGN("already alone"),
		[E_PEER_STOPPING] = IGN("already alone"),
		[E_PEER_WAIT_WIN] = IGN("the peer is starting; it will join as SECOND"),
		[E_PEER_WAIT_LOSE] = IGN("the peer is starting; it will join as SECOND"),
		[E_PEER_RESUMING_WIN] = IGN("the restarted peer will yield"),
		[E_PEER_RESUMING_LOSE] = IGN("the restarted peer will yield"),
		[E_PEER_ACTIVE_WIN] = KEEP(A_SPLIT, "two primaries: this node's claim is older; keeping the PRIM role"),
		[E_PEER_ACTIVE_LOSE] = GO(S_GO_SECOND, A_APPLY_SECOND | A_SPLIT, "two primaries: the peer's claim is older; yielding"),
		[E_PEER_SECOND_WIN] = GO(S_PRIM, 0, "the peer is SECOND"),
		[E_PEER_SECOND_LOSE] = GO(S_PRIM, 0, "the peer is SECOND"),
		[E_PEER_HANDOVER] = GO(S_PRIM, 0, "the peer is SECOND"),
		[E_PEER_BLOCKED] = IGN("the blocked peer will stand by"),
		[E_DECIDE_TIMEOUT] = IGN("not deciding"),
		[E_APPLY_OK] = IGN("no change of role under way"),
		[E_APPLY_FAIL] = IGN("no change of role under way"),
		[E_VIP_IN_USE] = IGN("already holds the virtual IP"),
		[E_RETRY] = IGN("nothing to retry"),
		[E_PEER_LOST_HELD] = IGN("already alone"),
		STARTED_ALREADY,
		FENCE,
		[E_FAILOVER_ON] = IGN("nothing is held"),
	},
	[S_PRIM] = {
		[E_START] = IGN("already running"),
		[E_STOP] = GO(S_STOPPING, A_APPLY_NONE, "stopped by command"),
		[E_FAILED] = GO(S_STOPPING, A_APPLY_NONE, "stopping after a failure"),
		[E_RESTART] = GO(S_RESTART_P, A_APPLY_NONE, "restart by command"),
		[E_SWAP] = GO(S_HANDOVER, A_APPLY_SECOND, "swap by command"),
		[E_FORCESTART] = IGN("already running"),
		[E_PEER_LOST] = GO(S_ALONE, 0, "peer lost on all heartbeat networks"),
		[E_PEER_STOP] = GO(S_ALONE, 0, "the peer stopped"),
		[E_PEER_STOPPING] = IGN("the peer is stopping"),
		[E_PEER_WAIT_WIN] = GO(S_ALONE, 0, "the peer restarted"),
		[E_PEER_WAIT_LOSE] = GO(S_ALONE, 0, "the peer restarted"),
		[E_PEER_RESUMING_WIN] = IGN("the restarted peer will yield"),
		[E_PEER_RESUMING_LOSE] = IGN("the restarted peer will yield"),
		[E_PEER_ACTIVE_WIN] = KEEP(A_SPLIT, "two primaries: this node's claim is older; keeping the PRIM role"),
		[E_PEER_ACTIVE_LOSE] = GO(S_GO_SECOND, A_APPLY_SECOND | A_SPLIT, "two primaries: the peer's claim is older; yielding"),
		[E_PEER_SECOND_WIN] = IGN("the peer is SECOND"),
		[E_PEER_SECOND_LOSE] = IGN("the peer is SECOND"),
		[E_PEER_HANDOVER] = IGN("the peer is SECOND"),
		[E_PEER_BLOCKED] = IGN("the blocked peer will stand by"),
		[E_DECIDE_TIMEOUT] = IGN("not deciding"),
		[E_APPLY_OK] = IGN("no change of role under way"),
		[E_APPLY_FAIL] = IGN("no change of role under way"),
		[E_VIP_IN_USE] = IGN("already holds the virtual IP"),
		[E_RETRY] = IGN("nothing to retry"),
		[E_PEER_LOST_HELD] = GO(S_ALONE, 0, "peer lost on all heartbeat networks"),
		STARTED_ALREADY,
		FENCE,
		[E_FAILOVER_ON] = IGN("nothing is held"),
	},
	[S_GO_SECOND] = {
		[E_START] = IGN("already starting"),
		[E_STOP] = GO(S_STOPPING, A_APPLY_NONE, "stopped by command"),
		[E_FAILED] = GO(S_STOPPING, A_APPLY_NONE, "stopping after a failure"),
		[E_RESTART] = REJ("the node is still starting its resources"),
		[E_SWAP] = REJ("the node is not PRIM"),
		[E_FORCESTART] = GO(S_GO_PRIM, TAKE, "forced start"),
		[E_PEER_LOST] = GO(S_GO_PRIM, TAKE, "peer lost on all heartbeat networks: taking over"),
		[E_PEER_STOP] = GO(S_GO_PRIM, TAKE, "the peer stopped: taking over"),
		[E_PEER_STOPPING] = IGN("waiting for the peer to finish stopping"),
		[E_PEER_WAIT_WIN] = IGN("the peer is starting and will take the PRIM role"),
		[E_PEER_WAIT_LOSE] = IGN("the peer is starting and will take the PRIM role"),
		[E_PEER_RESUMING_WIN] = IGN("the peer resumes the PRIM role"),
		[E_PEER_RESUMING_LOSE] = IGN("the peer resumes the PRIM role"),
		[E_PEER_ACTIVE_WIN] = IGN("the peer runs the service"),
		[E_PEER_ACTIVE_LOSE] = IGN("the peer runs the service"),
		[E_PEER_SECOND_WIN] = GO(S_GO_PRIM, TAKE, "both nodes SECOND; this node is preferred"),
		[E_PEER_SECOND_LOSE] = IGN("both nodes SECOND; the peer is preferred and will take the PRIM role"),
		[E_PEER_HANDOVER] = GO(S_GO_PRIM, TAKE, "the peer hands the PRIM role over"),
		[E_PEER_BLOCKED] = IGN("the peer retries the virtual IP; standing by"),
		[E_DECIDE_TIMEOUT] = IGN("not deciding"),
		[E_APPLY_OK] = GO(S_SECOND, 0, "SECOND resources started"),
		[E_APPLY_FAIL] = GO(S_STOPPING, A_APPLY_NONE, "start failed"),
		[E_VIP_IN_USE] = IGN("not taking the virtual IP"),
		[E_RETRY] = IGN("nothing to retry"),
		[E_PEER_LOST_HELD] = GO(S_HELD, 0, "peer lost on all heartbeat networks; not taking over"),
		STARTED_ALREADY,
		NOT_PRIM_ROLE("not running the PRIM role"),
		[E_FAILOVER_ON] = IGN("nothing is held"),
	},
	[S_SECOND] = {
		[E_START] = IGN("already running"),
		[E_STOP] = GO(S_STOPPING, A_APPLY_NONE, "stopped by command"),
		[E_FAILED] = GO(S_STOPPING, A_APPLY_NONE, "stopping after a failure"),
		[E_RESTART] = GO(S_RESTART_S, A_APPLY_NONE, "restart by command"),
		[E_SWAP] = REJ("swap runs on the PRIM node"),
		[E_FORCESTART] = GO(S_GO_PRIM, TAKE, "forced start"),
		[E_PEER_LOST] = GO(S_GO_PRIM, TAKE, "peer lost on all heartbeat networks: failover"),
		[E_PEER_STOP] = GO(S_GO_PRIM, TAKE, "the peer stopped: taking over"),
		[E_PEER_STOPPING] = IGN("waiting for the peer to finish stopping"),
		[E_PEER_WAIT_WIN] = IGN("the peer is starting and will take the PRIM role"),
		[E_PEER_WAIT_LOSE] = IGN("the peer is starting and will take the PRIM role"),
		[E_PEER_RESUMING_WIN] = IGN("the peer resumes the PRIM role"),
		[E_PEER_RESUMING_LOSE] = IGN("the peer resumes the PRIM role"),
		[E_PEER_ACTIVE_WIN] = IGN("the peer runs the service"),
		[E_PEER_ACTIVE_LOSE] = IGN("the peer runs the service"),
		[E_PEER_SECOND_WIN] = GO(S_GO_PRIM, TAKE, "both nodes SECOND; this node is preferred"),
		[E_PEER_SECOND_LOSE] = IGN("both nodes SECOND; the peer is preferred and will take the PRIM role"),
		[E_PEER_HANDOVER] = GO(S_GO_PRIM, TAKE, "the peer hands the PRIM role over (swap)"),
		[E_PEER_BLOCKED] = IGN("the peer retries the virtual IP; standing by"),
		[E_DECIDE_TIMEOUT] = IGN("not deciding"),
		[E_APPLY_OK] = IGN("no change of role under way"),
		[E_APPLY_FAIL] = IGN("no change of role under way"),
		[E_VIP_IN_USE] = IGN("not taking the virtual IP"),
		[E_RETRY] = IGN("nothing to retry"),
		[E_PEER_LOST_HELD] = GO(S_HELD, 0, "peer lost on all heartbeat networks; not taking over"),
		STARTED_ALREADY,
		NOT_PRIM_ROLE("not running the PRIM role"),
		[E_FAILOVER_ON] = IGN("nothing is held"),
	},
	[S_HANDOVER] = {
		[E_START] = IGN("already running"),
		[E_STOP] = GO(S_STOPPING, A_APPLY_NONE, "stopped by command"),
		[E_FAILED] = GO(S_STOPPING, A_APPLY_NONE, "stopping after a failure"),
		[E_RESTART] = REJ("a swap is under way"),
		[E_SWAP] = IGN("a swap is already under way"),
		[E_FORCESTART] = REJ("a swap is under way"),
		[E_PEER_LOST] = GO(S_GO_PRIM, A_APPLY_PRIM, "peer lost during the swap: keeping the PRIM role"),
		[E_PEER_STOP] = GO(S_GO_PRIM, A_APPLY_PRIM, "the peer stopped during the swap: keeping the PRIM role"),
		[E_PEER_STOPPING] = IGN("releasing the PRIM role"),
		[E_PEER_WAIT_WIN] = IGN("releasing the PRIM role"),
		[E_PEER_WAIT_LOSE] = IGN("releasing the PRIM role"),
		[E_PEER_RESUMING_WIN] = IGN("releasing the PRIM role"),
		[E_PEER_RESUMING_LOSE] = IGN("releasing the PRIM role"),
		[E_PEER_ACTIVE_WIN] = IGN("releasing the PRIM role"),
		[E_PEER_ACTIVE_LOSE] = IGN("releasing the PRIM role"),
		[E_PEER_SECOND_WIN] = IGN("releasing the PRIM role"),
		[E_PEER_SECOND_LOSE] = IGN("releasing the PRIM role"),
		[E_PEER_HANDOVER] = IGN("releasing the PRIM role"),
		[E_PEER_BLOCKED] = IGN("releasing the PRIM role"),
		[E_DECIDE_TIMEOUT] = IGN("not deciding"),
		[E_APPLY_OK] = GO(S_SECOND_HO, 0, "PRIM role released; waiting for the peer to take it"),
		[E_APPLY_FAIL] = GO(S_STOPPING, A_APPLY_NONE, "swap failed"),
		[E_VIP_IN_USE] = IGN("not taking the virtual IP"),
		[E_RETRY] = IGN("nothing to retry"),
		[E_PEER_LOST_HELD] = GO(S_GO_PRIM, A_APPLY_PRIM, "peer lost during the swap: keeping the PRIM role"),
		STARTED_ALREADY,
		FENCE,
		[E_FAILOVER_ON] = IGN("nothing is held"),
	},
	[S_SECOND_HO] = {
		[E_START] = IGN("already running"),
		[E_STOP] = GO(S_STOPPING, A_APPLY_NONE, "stopped by command"),
		[E_FAILED] = GO(S_STOPPING, A_APPLY_NONE, "stopping after a failure"),
		[E_RESTART] = REJ("a swap is under way"),
		[E_SWAP] = IGN("a swap is already under way"),
		[E_FORCESTART] = REJ("a swap is under way"),
		[E_PEER_LOST] = GO(S_GO_PRIM, TAKE, "peer lost during the swap: taking the PRIM role back"),
		[E_PEER_STOP] = GO(S_GO_PRIM, TAKE, "the peer stopped during the swap: taking the PRIM role back"),
		[E_PEER_STOPPING] = IGN("waiting for the peer to take the PRIM role"),
		[E_PEER_WAIT_WIN] = IGN("waiting for the peer to take the PRIM role"),
		[E_PEER_WAIT_LOSE] = IGN("waiting for the peer to take the PRIM role"),
		[E_PEER_RESUMING_WIN] = IGN("waiting for the peer to take the PRIM role"),
		[E_PEER_RESUMING_LOSE] = IGN("waiting for the peer to take the PRIM role"),
		[E_PEER_ACTIVE_WIN] = GO(S_SECOND, 0, "the peer took the PRIM role"),
		[E_PEER_ACTIVE_LOSE] = GO(S_SECOND, 0, "the peer took the PRIM role"),
		[E_PEER_SECOND_WIN] = IGN("waiting for the peer to take the PRIM role"),
		[E_PEER_SECOND_LOSE] = IGN("waiting for the peer to take the PRIM role"),
		[E_PEER_HANDOVER] = GO(S_SECOND, 0, "both nodes released the PRIM role; the preferred one takes it"),
		[E_PEER_BLOCKED] = IGN("the peer retries the virtual IP; standing by"),
		[E_DECIDE_TIMEOUT] = IGN("not deciding"),
		[E_APPLY_OK] = IGN("no change of role under way"),
		[E_APPLY_FAIL] = IGN("no change of role under way"),
		[E_VIP_IN_USE] = IGN("not taking the virtual IP"),
		[E_RETRY] = IGN("nothing to retry"),
		[E_PEER_LOST_HELD] = GO(S_HELD, 0, "peer lost during the swap; not taking over"),
		STARTED_ALREADY,
		NOT_PRIM_ROLE("not running the PRIM role"),
		[E_FAILOVER_ON] = IGN("nothing is held"),
	},
	[S_RESTART_P] = {
		[E_START] = IGN("already running"),
		[E_STOP] = GO(S_STOPPING, A_APPLY_NONE, "stopped by command"),
		[E_FAILED] = GO(S_STOPPING, A_APPLY_NONE, "stopping after a failure"),
		[E_RESTART] = IGN("a restart is already under way"),
		[E_SWAP] = REJ("a restart is under way"),
		[E_FORCESTART] = IGN("a restart is under way"),
		[E_PEER_LOST] = IGN("restarting the PRIM role"),
		[E_PEER_STOP] = IGN("restarting the PRIM role"),
		[E_PEER_STOPPING] = IGN("restarting the PRIM role"),
		[E_PEER_WAIT_WIN] = IGN("restarting the PRIM role"),
		[E_PEER_WAIT_LOSE] = IGN("restarting the PRIM role"),
		[E_PEER_RESUMING_WIN] = IGN("the restarted peer will yield"),
		[E_PEER_RESUMING_LOSE] = IGN("the restarted peer will yield"),
		[E_PEER_ACTIVE_WIN] = KEEP(A_SPLIT, "two primaries: this node's claim is older; keeping the PRIM role"),
		[E_PEER_ACTIVE_LOSE] = GO(S_GO_SECOND, A_APPLY_SECOND | A_SPLIT, "two primaries: the peer's claim is older; yielding"),
		[E_PEER_SECOND_WIN] = IGN("restarting the PRIM role"),
		[E_PEER_SECOND_LOSE] = IGN("restarting the PRIM role"),
		[E_PEER_HANDOVER] = IGN("restarting the PRIM role"),
		[E_PEER_BLOCKED] = IGN("restarting the PRIM role"),
		[E_DECIDE_TIMEOUT] = IGN("not deciding"),
		[E_APPLY_OK] = GO(S_GO_PRIM, A_APPLY_PRIM, "restart: resources stopped, starting them again"),
		[E_APPLY_FAIL] = GO(S_STOPPING, A_APPLY_NONE, "restart: stopping the resources failed"),
		[E_VIP_IN_USE] = IGN("not taking the virtual IP"),
		[E_RETRY] = IGN("nothing to retry"),
		[E_PEER_LOST_HELD] = IGN("restarting the PRIM role"),
		STARTED_ALREADY,
		FENCE,
		[E_FAILOVER_ON] = IGN("nothing is held"),
	},
	[S_RESTART_S] = {
		[E_START] = IGN("already running"),
		[E_STOP] = GO(S_STOPPING, A_APPLY_NONE, "stopped by command"),
		[E_FAILED] = GO(S_STOPPING, A_APPLY_NONE, "stopping after a failure"),
		[E_RESTART] = IGN("a restart is already under way"),
		[E_SWAP] = REJ("a restart is under way"),
		[E_FORCESTART] = GO(S_GO_PRIM, TAKE, "forced start"),
		[E_PEER_LOST] = GO(S_GO_PRIM, TAKE, "peer lost on all heartbeat networks during restart: failover"),
		[E_PEER_STOP] = GO(S_GO_PRIM, TAKE, "the peer stopped during restart: taking over"),
		[E_PEER_STOPPING] = IGN("restarting the SECOND role"),
		[E_PEER_WAIT_WIN] = IGN("restarting the SECOND role"),
		[E_PEER_WAIT_LOSE] = IGN("restarting the SECOND role"),
		[E_PEER_RESUMING_WIN] = IGN("restarting the SECOND role"),
		[E_PEER_RESUMING_LOSE] = IGN("restarting the SECOND role"),
		[E_PEER_ACTIVE_WIN] = IGN("restarting the SECOND role"),
		[E_PEER_ACTIVE_LOSE] = IGN("restarting the SECOND role"),
		[E_PEER_SECOND_WIN] = IGN("restarting the SECOND role"),
		[E_PEER_SECOND_LOSE] = IGN("restarting the SECOND role"),
		[E_PEER_HANDOVER] = GO(S_GO_PRIM, TAKE, "the peer hands the PRIM role over"),
		[E_PEER_BLOCKED] = IGN("restarting the SECOND role"),
		[E_DECIDE_TIMEOUT] = IGN("not deciding"),
		[E_APPLY_OK] = GO(S_GO_SECOND, A_APPLY_SECOND, "restart: resources stopped, starting them again"),
		[E_APPLY_FAIL] = GO(S_STOPPING, A_APPLY_NONE, "restart: stopping the resources failed"),
		[E_VIP_IN_USE] = IGN("not taking the virtual IP"),
		[E_RETRY] = IGN("nothing to retry"),
		[E_PEER_LOST_HELD] = GO(S_HELD, 0, "peer lost during restart; not taking over"),
		STARTED_ALREADY,
		NOT_PRIM_ROLE("not running the PRIM role"),
		[E_FAILOVER_ON] = IGN("nothing is held"),
	},
	[S_STOPPING] = {
		[E_START] = REJ("the node is stopping; start it once it is STOP"),
		[E_STOP] = IGN("already stopping"),
		[E_FAILED] = IGN("already stopping"),
		[E_RESTART] = REJ("the node is stopping"),
		[E_SWAP] = REJ("the node is stopping"),
		[E_FORCESTART] = REJ("the node is stopping; start it once it is STOP"),
		DEAF_TO_PEER("a stopping node does not act on its peer"),
		[E_DECIDE_TIMEOUT] = IGN("not deciding"),
		[E_APPLY_OK] = GO(S_STOP, 0, "resources stopped"),
		[E_APPLY_FAIL] = GO(S_STOP, 0, "stopping failed; some resources may still run"),
		[E_VIP_IN_USE] = IGN("not taking the virtual IP"),
		[E_RETRY] = IGN("nothing to retry"),
		[E_START_PRIM] = REJ("the node is stopping; start it once it is STOP"),
		[E_START_SECOND] = REJ("the node is stopping; start it once it is STOP"),
		NOT_PRIM_ROLE("a stopping node is releasing everything"),
		[E_FAILOVER_ON] = IGN("nothing is held"),
	},
	[S_HELD] = {
		[E_START] = IGN("already started; waiting before taking over (see the reason)"),
		[E_STOP] = GO(S_STOPPING, A_APPLY_NONE, "stopped by command"),
		[E_FAILED] = GO(S_STOPPING, A_APPLY_NONE, "stopping after a failure"),
		[E_RESTART] = REJ("the node is waiting (see the reason); use failover on, forcestart or stop"),
		[E_SWAP] = REJ("the node is not PRIM"),
		[E_FORCESTART] = GO(S_GO_PRIM, TAKE, "forced start"),
		[E_PEER_LOST] = GO(S_GO_PRIM, TAKE, "peer still lost and this node may take over again"),
		[E_PEER_STOP] = GO(S_GO_PRIM, TAKE, "the peer stopped: taking over"),
		[E_PEER_STOPPING] = IGN("waiting for the peer to finish stopping"),
		[E_PEER_WAIT_WIN] = IGN("the peer is starting and will take the PRIM role"),
		[E_PEER_WAIT_LOSE] = IGN("the peer is starting and will take the PRIM role"),
		[E_PEER_RESUMING_WIN] = IGN("the peer resumes the PRIM role"),
		[E_PEER_RESUMING_LOSE] = IGN("the peer resumes the PRIM role"),
		[E_PEER_ACTIVE_WIN] = GO(S_GO_SECOND, A_APPLY_SECOND, "the peer runs the service again"),
		[E_PEER_ACTIVE_LOSE] = GO(S_GO_SECOND, A_APPLY_SECOND, "the peer runs the service again"),
		[E_PEER_SECOND_WIN] = GO(S_GO_PRIM, TAKE, "both nodes SECOND; this node is preferred"),
		[E_PEER_SECOND_LOSE] = IGN("both nodes SECOND; the peer is preferred and will take the PRIM role"),
		[E_PEER_HANDOVER] = GO(S_GO_PRIM, TAKE, "the peer hands the PRIM role over"),
		[E_PEER_BLOCKED] = IGN("the peer retries the virtual IP; standing by"),
		[E_PEER_LOST_HELD] = IGN("already waiting"),
		[E_DECIDE_TIMEOUT] = IGN("not deciding"),
		[E_APPLY_OK] = IGN("no change of role under way"),
		[E_APPLY_FAIL] = IGN("no change of role under way"),
		[E_VIP_IN_USE] = IGN("not taking the virtual IP"),
		[E_RETRY] = IGN("nothing to retry"),
		STARTED_ALREADY,
		NOT_PRIM_ROLE("not running the PRIM role"),
		[E_FAILOVER_ON] = GO(S_GO_PRIM, TAKE, "may take over again: taking over from the lost peer"),
	},
	[S_FENCING] = {
		[E_START] = IGN("already started; releasing the PRIM role"),
		[E_STOP] = GO(S_STOPPING, A_APPLY_NONE, "stopped by command"),
		[E_FAILED] = GO(S_STOPPING, A_APPLY_NONE, "stopping after a failure"),
		[E_RESTART] = REJ("the node is releasing the PRIM role; use stop or forcestart"),
		[E_SWAP] = REJ("the node is releasing the PRIM role"),
		[E_FORCESTART] = GO(S_GO_PRIM, A_APPLY_PRIM, "forced start: keeping the PRIM role"),
		STARTED_ALREADY,
		DEAF_TO_PEER("releasing the PRIM role first"),
		[E_DECIDE_TIMEOUT] = IGN("not deciding"),
		[E_APPLY_OK] = GO(S_HELD, 0, "PRIM role released; waiting for the peer or a grant from the witness"),
		[E_APPLY_FAIL] = GO(S_HELD, 0, "releasing the PRIM role failed; some resources may still run"),
		[E_VIP_IN_USE] = IGN("not taking the virtual IP"),
		[E_RETRY] = IGN("nothing to retry"),
		[E_FAILOVER_ON] = IGN("releasing the PRIM role; a grant is used once it is released"),
		[E_FENCE] = IGN("already releasing the PRIM role"),
	},
};

struct sm_result sm_step(enum sm_state s, enum sm_event e)
{
	struct sm_result r = { s, 0, "invalid state or event" };
	const struct row *row;

	if ((unsigned)s >= S__COUNT || (unsigned)e >= E__COUNT)
		return r;
	row = &table[s][e];
	r.next = row->next == SAME ? s : (enum sm_state)row->next;
	r.actions = row->actions;
	r.reason = row->reason;
	return r;
}

bool sm_rejects(enum sm_state s, enum sm_event e, const char **why)
{
	struct sm_result r = sm_step(s, e);

	if (why)
		*why = r.reason;
	return (r.actions & A_REJECT) != 0;
}

static const struct {
	enum sm_display d;
	enum sm_color c;
} display[S__COUNT] = {
	[S_STOP] = { D_STOP, C_RED },
	[S_WAIT] = { D_WAIT, C_MAGENTA },
	[S_RESUME] = { D_WAIT, C_MAGENTA },
	[S_BLOCKED] = { D_WAIT, C_RED },
	[S_GO_PRIM] = { D_ALONE, C_MAGENTA },
	[S_ALONE] = { D_ALONE, C_GREEN },
	[S_PRIM] = { D_PRIM, C_GREEN },
	[S_GO_SECOND] = { D_SECOND, C_MAGENTA },
	[S_SECOND] = { D_SECOND, C_GREEN },
	[S_HANDOVER] = { D_PRIM, C_MAGENTA },
	[S_SECOND_HO] = { D_SECOND, C_MAGENTA },
	[S_RESTART_P] = { D_PRIM, C_MAGENTA },
	[S_RESTART_S] = { D_SECOND, C_MAGENTA },
	[S_STOPPING] = { D_STOP, C_MAGENTA },
	[S_HELD] = { D_WAIT, C_RED },
	[S_FENCING] = { D_WAIT, C_MAGENTA },
};

void sm_display(enum sm_state s, enum sm_display *d, enum sm_color *c)
{
	if ((unsigned)s >= S__COUNT) {
		*d = D_STOP;
		*c = C_RED;
		return;
	}
	*d = display[s].d;
	*c = display[s].c;
}

bool sm_is_primary(enum sm_state s)
{
	switch (s) {
	case S_RESUME: case S_GO_PRIM: case S_ALONE: case S_PRIM:
	case S_HANDOVER: case S_RESTART_P: case S_FENCING:
		return true;
	default:
		return false;
	}
}

enum sm_event sm_classify_peer(const struct sm_peer *p, uint64_t my_term, int my_index,
                               bool may_take_over)
{
	bool preferred = my_index < p->index;
	bool older = my_term < p->term || (my_term == p->term && preferred);

	if (!p->reachable)
		return may_take_over ? E_PEER_LOST : E_PEER_LOST_HELD;
	switch (p->state) {
	case S_STOP:
		return E_PEER_STOP;
	case S_BLOCKED:
		return E_PEER_BLOCKED;
	case S_STOPPING:
	case S_HANDOVER:
	case S_FENCING:
		return E_PEER_STOPPING;
	case S_WAIT:
		return preferred ? E_PEER_WAIT_WIN : E_PEER_WAIT_LOSE;
	case S_RESUME:
		return older ? E_PEER_RESUMING_WIN : E_PEER_RESUMING_LOSE;
	case S_GO_PRIM:
	case S_ALONE:
	case S_PRIM:
	case S_RESTART_P:
		return older ? E_PEER_ACTIVE_WIN : E_PEER_ACTIVE_LOSE;
	case S_GO_SECOND:
	case S_SECOND:
	case S_RESTART_S:
	case S_HELD:
		return preferred ? E_PEER_SECOND_WIN : E_PEER_SECOND_LOSE;
	case S_SECOND_HO:
		return E_PEER_HANDOVER;
	case S__COUNT:
		break;
	}
	/* An unknown state from a newer peer: treat it as not running the role. */
	return E_PEER_STOP;
}

static const char *const state_names[S__COUNT] = {
	"STOP", "WAIT", "RESUME", "BLOCKED", "GO_PRIM", "ALONE", "PRIM", "GO_SECOND",
	"SECOND", "HANDOVER", "SECOND_HO", "RESTART_P", "RESTART_S", "STOPPING", "HELD",
	"FENCING",
};
static const char *const event_names[E__COUNT] = {
	"start", "stop", "restart", "swap", "forcestart", "start-prim", "start-second",
	"peer-lost", "peer-stop", "peer-stopping", "peer-wait-win", "peer-wait-lose",
	"peer-resuming-win", "peer-resuming-lose", "peer-active-win", "peer-active-lose",
	"peer-second-win", "peer-second-lose", "peer-handover", "peer-blocked", "peer-lost-held",
	"decide-timeout", "apply-ok", "apply-fail", "vip-in-use", "retry", "failover-on", "fence", "failed",
};
static const char *const display_names[] = { "STOP", "WAIT", "ALONE", "PRIM", "SECOND" };
static const char *const color_names[] = { "green", "magenta", "red" };

const char *sm_state_str(enum sm_state s)
{
	return (unsigned)s < S__COUNT ? state_names[s] : "?";
}

const char *sm_event_str(enum sm_event e)
{
	return (unsigned)e < E__COUNT ? event_names[e] : "?";
}

const char *sm_display_str(enum sm_display d)
{
	return (unsigned)d < ARRAY_SIZE(display_names) ? display_names[d] : "?";
}

const char *sm_color_str(enum sm_color c)
{
	return (unsigned)c < ARRAY_SIZE(color_names) ? color_names[c] : "?";
}

const char *sm_action_str(enum sm_action a)
{
	switch (a) {
	case A_NONE: return "none";
	case A_APPLY_NONE: return "apply-none";
	case A_APPLY_SECOND: return "apply-second";
	case A_APPLY_PRIM: return "apply-prim";
	case A_ARM_DECIDE: return "arm-decide";
	case A_ARM_RETRY: return "arm-retry";
	case A_NEW_TERM: return "new-term";
	case A_REJECT: return "reject";
	case A_SPLIT: return "split";
	}
	return "?";
}
