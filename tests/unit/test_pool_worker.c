/* The pool's worker thread (src/pool/worker.c) on a real event loop: jobs
 * run one at a time in the order posted, on a thread of their own; their
 * done callbacks run on the loop's thread, in the same order, only when the
 * loop runs; pool_worker_pending counts what is not yet done;
 * pool_worker_free runs what is left, done callbacks included (so ASan sees
 * no leak); and a slow job does not hold the loop back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "pool/worker.h"
#include "testutil.h"

#define N 64

struct fx {
	struct event_base *base;
	struct pool_worker *w;
	int ctx;                        /* its address is the worker's ctx */
	pthread_t main;
	/* Written by the jobs (worker thread): read by the test only after the
	 * worker's lock ordered them (a done callback ran, or the thread was
	 * joined). */
	int job_order[N];
	pthread_t job_thr[N];
	void *job_ctx[N];
	int njobs;
	/* Written by the done callbacks. */
	int done_order[N];
	pthread_t done_thr[N];
	size_t pending_in_done[N];
	int ndone;
};

struct item {
	struct fx *f;
	int i;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->base = event_base_new();
	assert_non_null(f->base);
	f->main = pthread_self();
	f->w = pool_worker_new(f->base, "test", &f->ctx);
	assert_non_null(f->w);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	pool_worker_free(f->w);
	event_base_free(f->base);
	free(f);
	return 0;
}

static void rec_job(void *ctx, void *arg)
{
	struct item *it = arg;
	struct fx *f = it->f;

	f->job_ctx[f->njobs] = ctx;
	f->job_thr[f->njobs] = pthread_self();
	f->job_order[f->njobs++] = it->i;
}

static void rec_done(void *arg)
{
	struct item *it = arg;
	struct fx *f = it->f;

	f->pending_in_done[f->ndone] = pool_worker_pending(f->w);
	f->done_thr[f->ndone] = pthread_self();
	f->done_order[f->ndone++] = it->i;
	free(it);
}

static struct item *item_new(struct fx *f, int i)
{
	struct item *it = calloc(1, sizeof(*it));

	assert_non_null(it);
	it->f = f;
	it->i = i;
	return it;
}

static bool all_done(void *arg)
{
	struct fx *f = arg;

	return f->ndone == N;
}

/* Jobs in post order on one thread that is not the loop's; done callbacks
 * in the same order on the loop's thread, and only once the loop runs;
 * pending counts each job until its done callback. */
static void jobs_in_order_off_the_loop_done_on_the_loop(void **state)
{
	struct fx *f = *state;

	for (int i = 0; i < N; i++) {
		assert_int_equal(pool_worker_post(f->w, rec_job, rec_done, item_new(f, i)), 0);
		assert_int_equal(pool_worker_pending(f->w), (size_t)i + 1);
	}
	/* The jobs may all have run by now: their done callbacks wait for
	 * the loop, and they stay pending until then. */
	usleep(50 * 1000);
	assert_int_equal(f->ndone, 0);
	assert_int_equal(pool_worker_pending(f->w), N);

	assert_true(run_until(f->base, all_done, f, 5000));
	assert_int_equal(f->njobs, N);
	assert_int_equal(pool_worker_pending(f->w), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(f->job_order[i], i);
		assert_ptr_equal(f->job_ctx[i], &f->ctx);
		assert_false(pthread_equal(f->job_thr[i], f->main));
		assert_true(pthread_equal(f->job_thr[i], f->job_thr[0]));
		assert_int_equal(f->done_order[i], i);
		assert_true(pthread_equal(f->done_thr[i], f->main));
		/* A job stops counting just before its done callback runs. */
		assert_int_equal(f->pending_in_done[i], (size_t)(N - 1 - i));
	}
}

static void count_job(void *ctx, void *arg)
{
	(void)ctx;
	atomic_fetch_add((atomic_int *)arg, 1);
}

static bool nothing_pending(void *arg)
{
	return pool_worker_pending(arg) == 0;
}

/* A NULL done callback is allowed: the job runs and stops counting. */
static void null_done_callback(void **state)
{
	struct fx *f = *state;
	atomic_int ran = 0;

	for (int i = 0; i < 3; i++)
		assert_int_equal(pool_worker_post(f->w, count_job, NULL, &ran), 0);
	assert_true(run_until(f->base, nothing_pending, f->w, 5000));
	assert_int_equal(atomic_load(&ran), 3);
}

static void slow_job(void *ctx, void *arg)
{
	struct item *it = arg;

	(void)ctx;
	usleep(5 * 1000);
	rec_job(ctx, it);
}

/* Freed with jobs still queued (the loop never ran): every job runs to its
 * end, then every done callback, on the caller's thread; the callbacks free
 * their args, so nothing leaks (ASan). */
static void free_runs_queued_jobs_and_their_done_callbacks(void **state)
{
	struct fx *f = *state;
	int n = 20;

	for (int i = 0; i < n; i++)
		assert_int_equal(pool_worker_post(f->w, slow_job, rec_done, item_new(f, i)), 0);
	pool_worker_free(f->w);
	f->w = NULL;
	assert_int_equal(f->njobs, n);
	assert_int_equal(f->ndone, n);
	for (int i = 0; i < n; i++) {
		assert_int_equal(f->job_order[i], i);
		assert_int_equal(f->done_order[i], i);
		assert_true(pthread_equal(f->done_thr[i], f->main));
	}
}

static bool some_done(void *arg)
{
	struct fx *f = arg;

	return f->ndone >= 3;
}

/* The same after the loop has handled some of them: no done callback runs
 * twice, none is lost. */
static void free_after_some_were_done_on_the_loop(void **state)
{
	struct fx *f = *state;
	int n = 10;

	for (int i = 0; i < n; i++)
		assert_int_equal(pool_worker_post(f->w, slow_job, rec_done, item_new(f, i)), 0);
	assert_true(run_until(f->base, some_done, f, 5000));
	assert_true(f->ndone < n);
	pool_worker_free(f->w);
	f->w = NULL;
	assert_int_equal(f->njobs, n);
	assert_int_equal(f->ndone, n);
	for (int i = 0; i < n; i++)
		assert_int_equal(f->done_order[i], i);
}

/* A done callback that posts again while the worker is being freed: the
 * worker is stopped, so the post says -1 and the job is not queued to be
 * lost (worker.h: "or stopped"; ASan would see the job leak). */
static int repost_rc = 1;

static void repost_done(void *arg)
{
	struct item *it = arg;
	struct fx *f = it->f;

	repost_rc = pool_worker_post(f->w, count_job, NULL, &f->ctx);
	free(it);
}

static void post_while_stopping_is_refused(void **state)
{
	struct fx *f = *state;

	repost_rc = 1;
	assert_int_equal(pool_worker_post(f->w, rec_job, repost_done, item_new(f, 0)), 0);
	pool_worker_free(f->w);
	f->w = NULL;
	assert_int_equal(f->njobs, 1);
	assert_int_equal(repost_rc, -1);
}

/* A job that takes 200 ms does not hold the loop: a 10 ms timer fires while
 * it still runs, and its done callback comes after it ends. */
struct slow {
	atomic_int started, ended;
	int ended_at_timer;             /* -1: the timer did not fire */
	uint64_t timer_ms, done_ms;
	bool done;
};

static void sleep_job(void *ctx, void *arg)
{
	struct slow *s = arg;

	(void)ctx;
	atomic_store(&s->started, 1);
	usleep(200 * 1000);
	atomic_store(&s->ended, 1);
}

static void sleep_done(void *arg)
{
	struct slow *s = arg;

	s->done = true;
	s->done_ms = mono_ms();
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct slow *s = arg;

	(void)fd;
	(void)what;
	s->ended_at_timer = atomic_load(&s->ended);
	s->timer_ms = mono_ms();
}

static bool slow_done(void *arg)
{
	return ((struct slow *)arg)->done;
}

static void slow_job_does_not_block_the_loop(void **state)
{
	struct fx *f = *state;
	struct slow s = { .ended_at_timer = -1 };
	struct timeval ten_ms = { 0, 10 * 1000 };
	struct event *t = evtimer_new(f->base, on_timer, &s);
	uint64_t start = mono_ms();

	assert_non_null(t);
	assert_int_equal(pool_worker_post(f->w, sleep_job, sleep_done, &s), 0);
	/* Wait (off the loop) until the job sleeps, then arm the timer. */
	while (!atomic_load(&s.started) && mono_ms() - start < 2000)
		usleep(1000);
	assert_true(atomic_load(&s.started));
	assert_int_equal(evtimer_add(t, &ten_ms), 0);

	assert_true(run_until(f->base, slow_done, &s, 5000));
	assert_int_equal(s.ended_at_timer, 0);
	assert_true(s.timer_ms < s.done_ms);
	assert_true(s.done_ms - start >= 200);
	assert_int_equal(pool_worker_pending(f->w), 0);
	event_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(jobs_in_order_off_the_loop_done_on_the_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(null_done_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(free_runs_queued_jobs_and_their_done_callbacks, setup, teardown),
		cmocka_unit_test_setup_teardown(free_after_some_were_done_on_the_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(post_while_stopping_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(slow_job_does_not_block_the_loop, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
