/* The resources of a node and the virtual IP, brought to a role.
 *
 * A role is what the node runs: nothing, the SECOND set or the PRIM set
 * (`when = prim` and `both` resources plus the VIP on PRIM/ALONE; `second`
 * and `both` on SECOND). resmgr_apply(role) computes the difference with
 * what runs now and carries it out, one script at a time:
 *   1. stop what the target does not include, in reverse start order;
 *   2. if the target is PRIM: the replicated dirs mounted (vigil-rfs prim,
 *      resource/rfs_child.h), then probe the VIP (if not ours), add it,
 *      announce; if not: remove the VIP, then vigil-rfs to the role;
 *   3. start what the target includes and is not running, in order
 *      (`after = OTHER` runs after OTHER; stop runs in reverse).
 * A failing start stops there: the apply reports failure with the script's
 * words; the caller decides what to stop. A newer apply preempts a running
 * one (the running script is cancelled) and only the newer one reports. */
#ifndef VIGIL_RESOURCES_H
#define VIGIL_RESOURCES_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"

struct event_base;
struct resmgr;
struct vip;

enum role { ROLE_NONE, ROLE_SECOND, ROLE_PRIM };
const char *role_str(enum role r);

enum res_state { RES_STOPPED, RES_STARTING, RES_STARTED, RES_STOPPING, RES_FAILED };
const char *res_state_str(enum res_state s);

enum apply_result { APPLY_OK, APPLY_FAILED, APPLY_VIP_IN_USE };
const char *apply_result_str(enum apply_result r);

/* reason: for failures, one line saying what failed and its words,
 * e.g. "start of resource web failed (exit 3): port 80 in use". */
typedef void (*resmgr_done_cb)(uint64_t gen, enum apply_result r, const char *reason, void *arg);
/* Called whenever the set of running resources or the VIP changes, so the
 * caller can persist it. */
typedef void (*resmgr_change_cb)(void *arg);

/* vip may be NULL (no [vip]). cfg must outlive the manager. */
struct resmgr *resmgr_new(const struct config *cfg, struct vip *vip,
                          resmgr_done_cb done, resmgr_change_cb change, void *arg);
void resmgr_free(struct resmgr *m);

/* Replication (may stay unset): vigil-rfs is brought to the role too, its
 * dirs mounted before the VIP and the starts of a PRIM and unmounted after
 * the stops and the VIP. The owner calls resmgr_rfs_progress from the
 * child's progress hook. */
struct rfs_child;
void resmgr_set_rfs(struct resmgr *m, struct rfs_child *c);
void resmgr_rfs_progress(struct resmgr *m);

/* Starts bringing the node to role; gen is echoed in done. */
void resmgr_apply(struct resmgr *m, enum role target, uint64_t gen);
bool resmgr_busy(const struct resmgr *m);
/* Restarts resource name and those that start after it (directly or not),
 * or every resource of the current role if name is NULL or "": stops them
 * in reverse order, then starts them in order; the role and the VIP stay.
 * done reports gen like an apply. -1 (logged) if a change of role is under
 * way or there is nothing to restart. A later resmgr_apply preempts it. */
int resmgr_restart(struct resmgr *m, const char *name, uint64_t gen);

/* What runs, for status and persistence. */
int resmgr_count(const struct resmgr *m);
const char *resmgr_name(const struct resmgr *m, int i);
enum res_state resmgr_state(const struct resmgr *m, int i);
bool resmgr_vip_held(const struct resmgr *m);

/* After a daemon restart: mark resources as running without running their
 * start scripts (they kept running while vigild was away). */
void resmgr_assume_running(struct resmgr *m, const char *name);
void resmgr_assume_vip(struct resmgr *m, bool held);

#endif
