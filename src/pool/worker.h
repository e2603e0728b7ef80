/* A worker thread for the pool's disk work (the registry, settings files,
 * disk probes, scans): jobs run one at a time, in the order posted, off the
 * event loop; each job's done callback then runs on the loop. The loop
 * never waits for a job: a stalled disk stalls only its worker.
 *
 * A daemon keeps one worker per kind of work, so that a disk probe stuck
 * on a dead disk does not hold back the registry. */
#ifndef VIGIL_POOL_WORKER_H
#define VIGIL_POOL_WORKER_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct pool_worker;

/* job runs in the worker thread, done (may be NULL) on the loop, with the
 * same arg; arg belongs to the caller, usually freed by done. */
typedef void (*pool_job_fn)(void *ctx, void *arg);
typedef void (*pool_done_fn)(void *arg);

/* ctx is handed to every job (the registry handle, say). NULL on error
 * (logged). */
struct pool_worker *pool_worker_new(struct event_base *base, const char *name, void *ctx);
/* Queues a job. 0, or -1 (out of memory, or stopped: logged) and nothing
 * runs. */
int pool_worker_post(struct pool_worker *w, pool_job_fn job, pool_done_fn done, void *arg);
/* Jobs queued and not yet done. */
size_t pool_worker_pending(const struct pool_worker *w);
/* Runs every queued job to the end (waiting for the thread), then the
 * done callbacks not yet run, and frees the worker. Blocks: only at
 * shutdown, and the callbacks' owners must still be alive. */
void pool_worker_free(struct pool_worker *w);

#endif
