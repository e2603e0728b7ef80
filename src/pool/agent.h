/* A recorder's or a spare's side of the pool (docs/pool.md): vigild with
 * [pool] role = recorder or spare. It keeps one connection to the master
 * (reconnecting), sends hello, a health report each heartbeat (disks,
 * watchdog, cameras, storage) and, for a recorder, its settings files when
 * they change; it runs the [pool] start and stop commands the master asks
 * for, and copies recordings home (agent_copy.c).
 *
 * Nothing here blocks the loop: disk probes, scans and file writes run on
 * workers, commands through script.c, copies on their own threads. */
#ifndef VIGIL_POOL_AGENT_H
#define VIGIL_POOL_AGENT_H

#include <jansson.h>

#include "common/config.h"

struct event_base;
struct pool_agent;

/* NULL on error (logged: certificates, directories). */
struct pool_agent *pool_agent_new(struct event_base *base, const struct config *cfg);
/* The link and the threads go; the recording goes on without vigild, as
 * it would without the master. */
void pool_agent_free(struct pool_agent *a);

/* The agent's control socket (agent_ctl.c): "status" answers with
 * {"pool_agent": {...}} (docs/pool.md); anything else is refused, naming
 * the master to ask. done gets the answer (stolen), at once. */
void pool_agent_control(void *agent, json_t *req, const char *origin, void (*done)(json_t *resp, void *arg),
                        void *arg);

#endif
