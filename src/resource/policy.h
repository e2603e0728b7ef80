/* The failure policy: the [checker NAME] sections, run while the node's
 * role matches their `when`, and what their failures lead to.
 *
 * restart: restart the checker's resource (and what starts after it) up to
 * maxloop times within loop_window_ms, then escalate to failover; a restart
 * that fails escalates at once. failover, stop, wait: asked of the node
 * (ops), which knows the cluster (the failover limit, the peer). While
 * errd is suspended, checkers run and report, and nothing is done.
 *
 * The policy never blocks: checks are the checker engine's, actions are
 * the node's. */
#ifndef VIGIL_POLICY_H
#define VIGIL_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"

struct event_base;
struct policy;

enum policy_role { POLICY_NONE, POLICY_PRIM, POLICY_SECOND };
const char *policy_role_str(enum policy_role r);

struct policy_ops {
	/* Restart resource (NULL: all of the role). 0 if under way (the node
	 * calls policy_restart_done later), -1 if it cannot now. */
	int (*restart)(void *arg, const char *resource, const char *why);
	/* The node should fail over / stop / stop and wait (why says which
	 * checker and what it saw). It returns 0 if it does, -1 if it refuses
	 * (and says why in the log and status, e.g. the failover limit). */
	int (*failover)(void *arg, const char *why);
	int (*stop)(void *arg, const char *why);
	int (*wait)(void *arg, const char *checker, const char *why);
	/* The checker a wait was for passes again. */
	void (*resume)(void *arg, const char *checker);
	void *arg;
};

/* Checks every [checker] against its type (targets, urls, names): 0, or -1
 * with "PATH:LINE: checker NAME: what is wrong" in err. */
int policy_validate(const struct config *cfg, char *err, size_t errlen);

/* NULL if a checker cannot be made (logged). cfg and ops must outlive it. */
struct policy *policy_new(struct event_base *base, const struct config *cfg, const struct policy_ops *ops,
                          const char *node_name);
void policy_free(struct policy *p);

/* The role the node runs, once it runs it stably (ALONE or PRIM: PRIM;
 * SECOND: SECOND; anything else, including a change under way: NONE). */
void policy_set_role(struct policy *p, enum policy_role role);
/* vigilctl checkers on|off; vigilctl errd resume|suspend. */
void policy_set_enabled(struct policy *p, bool on);
void policy_set_errd_suspended(struct policy *p, bool suspended);
/* The end of a restart asked through ops->restart. */
void policy_restart_done(struct policy *p, bool ok, const char *reason);
/* The node left the waiting that ops->wait began (a command, say). */
void policy_cancel_wait(struct policy *p);

/* [{"name", "type", "state", "failures", "restarts", "reason", "running"}]. */
json_t *policy_status(const struct policy *p);
int policy_count(const struct policy *p);

#endif
