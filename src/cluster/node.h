/* The node driver: the state machine wrapped in its I/O. It turns
 * heartbeats, timers, resource results and commands into events for
 * sm_step() and carries out the actions it returns. */
#ifndef VIGIL_NODE_H
#define VIGIL_NODE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cluster/persist.h"
#include "cluster/state.h"
#include "common/config.h"

struct event_base;
struct node;

struct node *node_new(struct event_base *base, struct config *cfg, int self);
void node_free(struct node *n);

/* Loads the persisted state and starts as the boot mode says. 0 or -1. */
int node_start(struct node *n);

/* Commands on this node. 0, or -1 with *err set to why it was refused. */
int node_command(struct node *n, enum sm_event cmd, const char **err, char *msg, size_t msglen);
int node_set_boot(struct node *n, const char *mode, char *msg, size_t msglen);
/* vigilctl stopstart: stop, then start again once stopped (a failover when
 * run on the PRIM). 0, or -1 with *err. */
int node_stopstart(struct node *n, const char **err, char *msg, size_t msglen);
/* vigilctl failover on|off. 0, or -1 with msg saying why. */
int node_set_failover(struct node *n, const char *mode, char *msg, size_t msglen);

/* vigilctl checkers on|off, vigilctl errd suspend|resume: kept across
 * restarts. 0, or -1 with msg saying why. */
int node_set_checkers(struct node *n, const char *mode, char *msg, size_t msglen);
int node_set_errd(struct node *n, const char *mode, char *msg, size_t msglen);

/* Shutdown (SIGTERM): stop resources, then call done. */
void node_shutdown(struct node *n, void (*done)(void *), void *arg);

/* Status of this node as a JSON object (see docs/control-protocol.md). */
json_t *node_status_self(struct node *n);
/* What the heartbeats tell about the peer, when it cannot be asked. */
json_t *node_status_peer_view(struct node *n);

/* The link to the peer's vigild (for replication's outdate request). */
struct peerlink;
void node_set_link(struct node *n, struct peerlink *pl);
/* Raises an alarm: logged, shown in status until the next command, and
 * sent to [notify]. */
void node_alarm(struct node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The peer asks: it goes on without this node, whose copy is outdated from
 * now on. done(ok) once that is recorded (or failed). */
void node_rfs_outdate(struct node *n, bool full, void (*done)(bool ok, void *arg), void *arg);

/* swap on the PRIM with [replication]: -1 (why) while the SECOND's copy
 * is not up to date, unless nosync (then msg warns). */
int node_rfs_swap_check(struct node *n, bool nosync, char *why, size_t len, char *msg, size_t msglen);
/* vigilctl sync estimate|full, on the node serving the data: done gets a
 * result object or err. */
void node_rfs_sync(struct node *n, const char *mode, void (*done)(json_t *res, const char *err, void *arg),
                   void *arg);

const char *node_name(const struct node *n);
const char *node_peer_name(const struct node *n);
bool node_peer_reachable(const struct node *n);
bool node_peer_primary(const struct node *n);
bool node_is_primary(const struct node *n);
/* ALONE or PRIM: its resources are up (the pool master follows this). */
bool node_runs_service(const struct node *n);
/* Its [notify] commands, for events of the pool master it carries. */
struct notify;
struct notify *node_notifier(struct node *n);
const struct config *node_config(const struct node *n);

#endif
