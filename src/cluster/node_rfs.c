/* The node and its replication (resource/rfs_child.h): the child's hooks,
 * the outdate handshake over the peer link, and forcestart's part.
 *
 * Outdate (docs/design/rfs.md §6): a prim that loses its SECOND holds every
 * change. If the peer is still heard, its vigild is asked to mark its copy
 * outdated (it runs `vigil-rfs outdate` itself, which works with its own
 * vigil-rfs dead); only its answer, or losing the peer altogether, lets the
 * changes flow on this node alone. So an acknowledged write never lives
 * only here while a stale copy could take over. */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cluster/heartbeat.h"
#include "cluster/node_int.h"
#include "cluster/peerlink.h"
#include "common/log.h"
#include "common/util.h"
#include "resource/rfs_child.h"
#include "resource/resources.h"

/* Longer than the peer's outdate child may take (its stop, then 10 s). */
#define OUTDATE_TIMEOUT_MS 15000
#define OUTDATE_RETRY_MS 500

static void ask_outdate(struct node *n);

static void ask_later(struct node *n)
{
	struct timeval tv;

	ms_to_timeval(OUTDATE_RETRY_MS, &tv);
	evtimer_add(n->rfs_retry, &tv);
}

/* Asks the peer's vigild to mark its copy outdated (it answers once the
 * mark is written). */
static void request_outdate(struct node *n, bool full, peerlink_resp_cb cb, void *arg)
{
	json_t *req = json_pack("{s:s, s:b}", "cmd", "rfs-outdate", "full", full);

	peerlink_request(n->link, req, OUTDATE_TIMEOUT_MS, cb, arg);
	json_decref(req);
}

static void on_progress(void *arg)
{
	struct node *n = arg;

	resmgr_rfs_progress(n->res);
}

static void on_fatal(const char *why, void *arg)
{
	struct node *n = arg;

	log_error("%s: replication failed while serving: %s", node_name(n), why);
	node_process(n, E_FAILED, why, NULL, NULL);
}

static bool on_no_second(void *arg)
{
	struct node *n = arg;

	if (!node_peer_reachable(n))
		return true;
	/* Only a node on its way to SECOND (or still leaving PRIM in a swap)
	 * is worth waiting for; a stopped or held one runs no SECOND. */
	switch (n->pv.state) {
	case S_STOP: case S_STOPPING: case S_HELD: case S_BLOCKED:
		return true;
	default:
		return false;
	}
}

static void on_changed(void *arg)
{
	struct node *n = arg;

	/* A node held only by its data may serve now, or no longer. */
	guard_kick(n);
}

/* Releases the hold if the peer cannot be asked: lost peers are the
 * state machine's and the witness's business. True if released. */
static bool release_if_lost(struct node *n)
{
	if (node_peer_reachable(n))
		return false;
	log_warn("%s: replication: %s is lost; changes go on here alone", node_name(n),
	         node_peer_name(n));
	rfsc_release(n->rfs, n->rfs_hold);
	n->rfs_hold = 0;
	return true;
}

/* The hold this node waits on is the prim's current one (a hold of a
 * prim that ended, or was replaced, is forgotten). */
static bool hold_current(struct node *n)
{
	if (n->rfs_hold && rfsc_hold(n->rfs) != n->rfs_hold) {
		n->rfs_hold = 0;
		evtimer_del(n->rfs_retry);
	}
	return n->rfs_hold != 0;
}

static void on_outdate_answer(json_t *resp, const char *err, void *arg)
{
	struct node *n = arg;
	const char *why = err;
	uint64_t asked = n->rfs_asked;

	n->rfs_asking = false;
	if (!hold_current(n))
		return;
	if (asked != n->rfs_hold) {
		/* Answer for an earlier hold: ask again for this one. */
		ask_outdate(n);
		return;
	}
	if (resp && json_is_true(json_object_get(resp, "ok"))) {
		log_info("%s: replication: %s marked its copy outdated; changes go on here", node_name(n),
		         node_peer_name(n));
		rfsc_release(n->rfs, n->rfs_hold);
		n->rfs_hold = 0;
		return;
	}
	if (resp)
		why = json_string_value(json_object_get(resp, "error"));
	log_warn("%s: replication: %s did not mark its copy outdated (%s); changes stay held",
	         node_name(n), node_peer_name(n), why ? why : "no reason given");
	if (!release_if_lost(n))
		ask_later(n);
}

static void ask_outdate(struct node *n)
{
	if (!hold_current(n) || n->rfs_asking || release_if_lost(n))
		return;
	if (!n->link) {
		/* Starting up (a hold of an adopted vigil-rfs): the link comes. */
		ask_later(n);
		return;
	}
	n->rfs_asking = true;
	n->rfs_asked = n->rfs_hold;
	request_outdate(n, false, on_outdate_answer, n);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ask_outdate(arg);
}

static void on_hold(uint64_t id, void *arg)
{
	struct node *n = arg;

	n->rfs_hold = id;
	ask_outdate(n);
}

int node_rfs_init(struct node *n)
{
	struct rfsc_hooks h = { .progress = on_progress, .hold = on_hold, .fatal = on_fatal,
	                        .changed = on_changed, .no_second = on_no_second, .arg = n };

	n->rfs_retry = evtimer_new(n->base, on_retry, n);
	n->rfs = n->rfs_retry ? rfsc_new(n->cfg, n->self, &h) : NULL;
	if (!n->rfs || !n->rfs_retry)
		return -1;
	resmgr_set_rfs(n->res, n->rfs);
	return 0;
}

void node_rfs_free(struct node *n)
{
	if (n->rfs_retry)
		event_free(n->rfs_retry);
	rfsc_free(n->rfs);
}

void node_set_link(struct node *n, struct peerlink *pl)
{
	n->link = pl;
}

/* The peer lost: a hold waiting for its answer ends now. */
void node_rfs_peer_changed(struct node *n)
{
	if (n->rfs_hold)
		release_if_lost(n);
}

void node_rfs_outdate(struct node *n, bool full, void (*done)(bool ok, void *arg), void *arg)
{
	log_warn("%s: replication: %s goes on without this node; marking this copy outdated",
	         node_name(n), node_peer_name(n));
	rfsc_outdate(n->rfs, full, done, arg);
}

void node_rfs_force(struct node *n, char *msg, size_t len)
{
	rfsc_force(n->rfs, msg, len);
}

bool node_rfs_may_serve(struct node *n, char *why, size_t len)
{
	return rfsc_may_serve(n->rfs, why, len);
}

void node_rfs_status(struct node *n, json_t *o)
{
	uint64_t total, done;

	json_object_set_new(o, "sync", json_string(rfsc_sync(n->rfs)));
	if (rfsc_resync(n->rfs, &total, &done))
		json_object_set_new(o, "resync", json_pack("{s:I, s:I}", "bytes_total", (json_int_t)total,
		                                           "bytes_done", (json_int_t)done));
	if (rfsc_configured(n->rfs) && rfsc_error(n->rfs)[0])
		json_object_set_new(o, "sync_error", json_string(rfsc_error(n->rfs)));
}

/* swap from the PRIM: the SECOND must hold everything first, unless the
 * admin said --nosync (then msg says what the new PRIM may lack). */
int node_rfs_swap_check(struct node *n, bool nosync, char *why, size_t len, char *msg, size_t msglen)
{
	char lack[400];

	msg[0] = 0;
	if (!rfsc_configured(n->rfs) || !sm_is_primary(n->state) ||
	    rfsc_peer_uptodate(n->rfs, lack, sizeof(lack)))
		return 0;
	if (!nosync) {
		snprintf(why, len, "%s; swap waits for an up-to-date copy (swap --nosync swaps now, and "
		         "%s serves without what its copy lacks)", lack, node_peer_name(n));
		return -1;
	}
	snprintf(msg, msglen, "swapping without an up-to-date copy: %s; %s serves what it has, and "
	         "this node's copy is set aside when it returns as SECOND", lack, node_peer_name(n));
	log_warn("%s: %s", node_name(n), msg);
	return 0;
}

struct sync_call {
	struct node *n;
	void (*done)(json_t *res, const char *err, void *arg);
	void *arg;
};

static void on_estimate(uint64_t files, uint64_t bytes, bool full_copy, const char *err, void *arg)
{
	struct sync_call *sc = arg;

	if (err)
		sc->done(NULL, err, sc->arg);
	else
		sc->done(json_pack("{s:s, s:I, s:I, s:b, s:s}", "node", node_name(sc->n), "files",
		                   (json_int_t)files, "bytes", (json_int_t)bytes, "full_copy", full_copy,
		                   "message", full_copy ?
		                   "the peer's copy is not up to date and this node has no complete "
		                   "record of what changed since they were equal: every replicated "
		                   "file moves" :
		                   "the peer's copy is not up to date: what this node's record names "
		                   "moves, files that were being changed at a crash whole (a peer "
		                   "that changed its copy itself gets every file)"), NULL, sc->arg);
	free(sc);
}

static void on_full_answer(json_t *resp, const char *err, void *arg)
{
	struct sync_call *sc = arg;

	if (resp && json_is_true(json_object_get(resp, "ok"))) {
		char m[256];

		snprintf(m, sizeof(m), "%s's copy is compared whole with this node's by block hashes, "
		         "and what differs is copied; follow \"resync\" in status", node_peer_name(sc->n));
		log_info("%s: sync full: %s", node_name(sc->n), m);
		sc->done(json_pack("{s:s, s:s}", "node", node_name(sc->n), "message", m), NULL, sc->arg);
	} else {
		const char *why = resp ? json_string_value(json_object_get(resp, "error")) : err;

		sc->done(NULL, why ? why : "the peer did not answer", sc->arg);
	}
	free(sc);
}

void node_rfs_sync(struct node *n, const char *mode, void (*done)(json_t *res, const char *err, void *arg),
                   void *arg)
{
	struct sync_call *sc;
	char why[400];

	if (!rfsc_configured(n->rfs)) {
		done(NULL, "no [replication] in the configuration: nothing is replicated", arg);
		return;
	}
	if (!sm_is_primary(n->state)) {
		snprintf(why, sizeof(why), "%s does not serve the replicated data, and neither does %s",
		         node_name(n), node_peer_name(n));
		done(NULL, why, arg);
		return;
	}
	if (!strcmp(mode, "estimate") && rfsc_peer_uptodate(n->rfs, why, sizeof(why))) {
		done(json_pack("{s:s, s:i, s:i, s:b, s:s}", "node", node_name(n), "files", 0, "bytes", 0,
		               "full_copy", 0, "message", "the peer's copy is up to date: nothing would move"),
		     NULL, arg);
		return;
	}
	sc = calloc(1, sizeof(*sc));
	if (!sc) {
		done(NULL, "out of memory", arg);
		return;
	}
	*sc = (struct sync_call){ .n = n, .done = done, .arg = arg };
	if (!strcmp(mode, "estimate")) {
		if (rfsc_estimate(n->rfs, on_estimate, sc) < 0) {
			free(sc);
			done(NULL, "an estimate is already running, or the walk could not be started", arg);
		}
		return;
	}
	/* full: the SECOND's copy is marked outdated and to be verified, so
	 * that at its next connection the PRIM compares every file by block
	 * hashes (not only what its record holds) and sends what differs. */
	if (!node_peer_reachable(n) || !n->link) {
		free(sc);
		snprintf(why, sizeof(why), "%s is not reachable", node_peer_name(n));
		done(NULL, why, arg);
		return;
	}
	request_outdate(n, true, on_full_answer, sc);
}
