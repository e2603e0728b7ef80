/* vigil-rfs under vigild ([replication], docs/design/rfs.md §4.6).
 *
 * One child at a time, as the role says: `vigil-rfs prim` (the dirs
 * mounted over themselves, every change shipped to the peer) on PRIM,
 * `vigil-rfs second` (applying what arrives) on SECOND, nothing otherwise.
 * The child keeps a JSON status in run_dir/rfs-status.json; it is read
 * every 100 ms while a child runs (a small file on tmpfs).
 *
 * Ordering, kept by the resource manager: the dirs are mounted before the
 * VIP and the start scripts, and unmounted after the stop scripts and the
 * VIP. SECOND -> PRIM: the second ends first (everything it received is
 * applied and made durable), then the prim starts.
 *
 * A prim runs with --hold-on-loss: losing SECOND, it holds every change
 * until vigild has marked the peer's copy outdated (over the peer link) or
 * knows the peer is gone; the hold callback asks the owner to do that. */
#ifndef VIGIL_RFS_CHILD_H
#define VIGIL_RFS_CHILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "resource/resources.h"

struct rfs_child;

enum rfsc_run { RFSC_DONE, RFSC_WAIT, RFSC_FAIL };

struct rfsc_hooks {
	/* The wanted role was reached, or can no longer be: ask again. */
	void (*progress)(void *arg);
	/* The prim holds changes (hold number id): mark the peer outdated,
	 * or see that it is gone, then rfsc_release(id). */
	void (*hold)(uint64_t id, void *arg);
	/* The prim died while serving: the service sees errors now. */
	void (*fatal)(const char *why, void *arg);
	/* Anything shown in the status changed. */
	void (*changed)(void *arg);
	/* Whether the peer runs no SECOND now (lost, or stopped): a prim then
	 * goes on alone at once (after the hold) instead of waiting
	 * connect_timeout_ms for its SECOND. */
	bool (*no_second)(void *arg);
	void *arg;
};

/* NULL (logged) if the child cannot be prepared; a cfg without
 * [replication] gives a child that does nothing and reports
 * "not configured". Reads the generations (state_dir/rfs/meta) once, now:
 * call before the loop runs. */
struct rfs_child *rfsc_new(const struct config *cfg, int self, const struct rfsc_hooks *h);
void rfsc_free(struct rfs_child *c);
bool rfsc_configured(const struct rfs_child *c);

/* Brings vigil-rfs to role r. RFSC_WAIT: the progress hook will say when
 * to ask again. RFSC_FAIL: reason says why. */
enum rfsc_run rfsc_want(struct rfs_child *c, enum role r, char *reason, size_t len);

/* The prim's hold under way, 0 if none. */
uint64_t rfsc_hold(const struct rfs_child *c);
/* Ends hold id of the prim (a later hold needs its own release). */
void rfsc_release(struct rfs_child *c, uint64_t id);
/* The peer's prim went on without us: record that our copy is outdated
 * (a running second is stopped first, then a child runs `vigil-rfs
 * outdate`, then a new second starts), then done(ok). Requests made while
 * one mark is written all get its answer (up to 4). */
void rfsc_outdate(struct rfs_child *c, bool full, void (*done)(bool ok, void *arg), void *arg);
/* The next prim start serves this copy whatever it lacks (vigilctl
 * forcestart); msg gets what may be lost. */
void rfsc_force(struct rfs_child *c, char *msg, size_t len);

/* Whether this node's copy may serve without its peer; why if not. */
bool rfsc_may_serve(const struct rfs_child *c, char *why, size_t len);
/* "uptodate", "not uptodate", "connection error" or "not configured". */
const char *rfsc_sync(const struct rfs_child *c);
/* True while a reintegration runs from here, with its bytes. */
bool rfsc_resync(const struct rfs_child *c, uint64_t *total, uint64_t *done);
/* On the PRIM: its SECOND is connected, holds everything and no
 * reintegration runs (why says what is missing if not). */
bool rfsc_peer_uptodate(const struct rfs_child *c, char *why, size_t len);
/* What a reintegration would send now (a child walks the dirs and reads
 * the record on disk): done gets files and bytes, and full_copy false if
 * the record is complete (a SECOND that is only older gets just that), or
 * err. One at a time: -1 if one runs already. */
int rfsc_estimate(struct rfs_child *c, void (*done)(uint64_t files, uint64_t bytes, bool full_copy,
                                                    const char *err, void *arg), void *arg);

/* The child's last error text, "" if none. */
const char *rfsc_error(const struct rfs_child *c);

#endif
