/* The pool master's driver (docs/pool.md, "What the driver has to do"):
 * the listener of the pool link, one connection per recorder and spare,
 * the detect timers, the settings cache, and pool_step() fed with all of
 * it; the registry is written by a worker thread, never by the loop.
 *
 * The master runs while its node runs the service (ALONE or PRIM), so that
 * a mirror pair protects it: the registry lives in [pool] registry_dir. */
#ifndef VIGIL_POOL_MASTER_H
#define VIGIL_POOL_MASTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"
#include "pool/pool_sm.h"

struct event_base;
struct pool_master;

/* self: this node's name (its certificate). NULL on error (logged). */
struct pool_master *pool_master_new(struct event_base *base, const struct config *cfg, const char *self);
void pool_master_free(struct pool_master *m);
/* Where pool events go ([notify] commands and the EVENT log line); NULL:
 * the log line only. */
struct notify;
void pool_master_set_notify(struct pool_master *m, struct notify *n);

/* Follows the node: active while it runs the service. Going active loads
 * the registry (off the loop) and then listens; going inactive closes
 * every connection and the listener. */
void pool_master_set_active(struct pool_master *m, bool active);
bool pool_master_active(const struct pool_master *m);

/* `vigilctl pool status --json`: {"active", "recorders": [{"name", "state",
 * "served_by", "group", ...}], "spares": [{"name", "state", "serving",
 * ...}], "queue": [names]}. */
json_t *pool_master_status(struct pool_master *m);
/* The queue alone: recorder names, in order. */
json_t *pool_master_queue(struct pool_master *m);
/* The newest max failover-log entries, oldest first. */
json_t *pool_master_log(struct pool_master *m, int max);

/* cmd: failover, failback, copy, enable, disable; role: the user's. 0 with
 * msg saying what happened, or -1 with msg saying why not (nothing
 * changed): unknown recorder, role, state. */
int pool_master_command(struct pool_master *m, const char *cmd, const char *recorder, enum pool_role role,
                        char *msg, size_t msglen);

#endif
