/* The PRIM's link manager (contract in prim.h). */
#include "rfs/prim.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "rfs/gen.h"
#include "rfs/record.h"
#include "rfs/resync.h"
#include "rfs/rfs_mount.h"
#include "rfs/stream_int.h"

#define REDIAL_MS 2000
#define REDIAL_FAILED_MS 30000          /* after SECOND itself failed (disk full...) */
#define FIRST_RETRY_MS 200
#define SETGEN_WAIT_MS 60000
#define HOLD_POLL_NS 5000000L
#define HOLD_LOG_MS 5000

static struct {
	struct rfs_prim_cfg cfg;
	pthread_t thread;
	pthread_mutex_t mu;             /* gen, ready, stop */
	pthread_cond_t cond;
	struct rfs_gen gen;
	bool ready, stop;
	bool holding;                   /* atomics: a hold is on ... */
	bool released;                  /* ... and vigild ended it */
	uint64_t holds;                 /* atomic: holds begun, for the status */
} P = { .mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* A new random generation (the transition refuses a used one: draw again). */
static int move_on(struct rfs_gen *g)
{
	for (int i = 0; i < 16; i++) {
		uint64_t rnd;

		if (random_bytes(&rnd, sizeof(rnd)) < 0)
			return -1;
		if (rfs_gen_go_alone(g, rnd) == 0)
			return 0;
	}
	return -1;
}

void rfs_prim_release(void)
{
	__atomic_store_n(&P.released, true, __ATOMIC_RELEASE);
}

uint64_t rfs_prim_holding(void)
{
	return __atomic_load_n(&P.holding, __ATOMIC_ACQUIRE) ? __atomic_load_n(&P.holds, __ATOMIC_ACQUIRE)
	                                                      : 0;
}

/* Waits for vigild's release, or for the end of serving. Runs under the
 * stream's lock: every change waits meanwhile, which is the point. True
 * if released; false if serving ends first (the peer was not marked). */
static bool hold(void)
{
	uint64_t t0 = mono_ms(), said = t0;

	/* Only a release sent for this hold counts: vigild sends one per
	 * hold number it saw. */
	__atomic_store_n(&P.released, false, __ATOMIC_RELEASE);
	__atomic_add_fetch(&P.holds, 1, __ATOMIC_ACQ_REL);
	__atomic_store_n(&P.holding, true, __ATOMIC_RELEASE);
	log_warn("holding every change until vigild has marked the peer's copy outdated");
	while (!__atomic_load_n(&P.released, __ATOMIC_ACQUIRE) &&
	       !__atomic_load_n(&rfs_serve_stopping, __ATOMIC_ACQUIRE) &&
	       !__atomic_load_n(&P.stop, __ATOMIC_ACQUIRE)) {
		struct timespec ts = { 0, HOLD_POLL_NS };
		sigset_t pend;

		/* A stop signal is blocked until the serve loop takes it (it
		 * may not run yet: a hold at the start). */
		if (sigpending(&pend) == 0 && (sigismember(&pend, SIGTERM) == 1 ||
		                               sigismember(&pend, SIGINT) == 1 ||
		                               sigismember(&pend, SIGHUP) == 1))
			break;

		nanosleep(&ts, NULL);
		if (mono_ms() - said >= HOLD_LOG_MS) {
			said = mono_ms();
			log_warn("still holding changes (%" PRIu64 " s): the peer's copy is not yet "
			         "marked outdated", (said - t0) / 1000);
		}
	}
	bool released = __atomic_exchange_n(&P.released, false, __ATOMIC_ACQ_REL);

	__atomic_store_n(&P.holding, false, __ATOMIC_RELEASE);
	if (released)
		log_info("changes flow again after %" PRIu64 " ms, on this node only", mono_ms() - t0);
	else
		log_error("stopping while holding: the changes held fail (EIO), since the peer's copy "
		          "was not marked outdated");
	return released;
}

/* Changes may now be made without SECOND: a new generation, stored.
 * Also the stream's on_lost hook: it runs under the stream's lock, before
 * any waiting change returns. */
static void go_alone_now(bool may_hold)
{
	if (may_hold && P.cfg.hold_on_loss && !hold()) {
		/* Not alone: nothing more may be acknowledged. The next start
		 * compares generations with the peer as they are. */
		rfs_stream_unsafe_loss_locked();
		return;
	}
	pthread_mutex_lock(&P.mu);
	if (move_on(&P.gen) < 0 || rfs_gen_store(P.cfg.meta, &P.gen) < 0)
		log_error("cannot record going on alone in %s: a later reintegration may "
		          "miss that SECOND is behind", P.cfg.meta);
	pthread_mutex_unlock(&P.mu);
}

static void go_alone(void)
{
	go_alone_now(true);
}

static void set_ready(void)
{
	pthread_mutex_lock(&P.mu);
	P.ready = true;
	pthread_cond_broadcast(&P.cond);
	pthread_mutex_unlock(&P.mu);
}

/* Sleeps ms unless stopped. True if stopped. */
static bool nap(uint64_t ms)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&P.mu);
	while (!P.stop && pthread_cond_timedwait(&P.cond, &P.mu, &ts) != ETIMEDOUT)
		;
	stop = P.stop;
	pthread_mutex_unlock(&P.mu);
	return stop;
}

/* SECOND's copy is rebuilt: namespace with the gate held (the caller took
 * it), then data while changes flow, then BARRIER and SETGEN. */
static void reintegrate(bool *first, bool incremental, bool verify)
{
	struct rfs_resync *r = rfs_resync_new(P.cfg.root_fd, P.cfg.stream.ndirs, incremental, verify);
	uint64_t t0 = mono_ms(), c;
	int rc;

	if (!r) {
		rfs_stream_gate_exclusive(false);
		rfs_stream_unsure_why("reintegration: out of memory");
		return;
	}
	rfs_stream_set_hooks(go_alone, r);
	rc = rfs_resync_walk(r);
	rfs_stream_gate_exclusive(false);
	if (*first) {
		set_ready();
		*first = false;
	}
	rfs_stream_set_resync(true, rfs_resync_total(r), 0);
	if (rc == 0)
		rc = rfs_resync_data(r);
	rfs_stream_set_resync(rc == 0, rfs_resync_total(r), rfs_resync_queued(r));
	rfs_stream_set_hooks(go_alone, NULL);
	if (rc == 0) {
		struct wire_op b = { .code = WIRE_OP_BARRIER, .arg = 1 };
		struct wire_op g = { .code = WIRE_OP_SETGEN };

		pthread_mutex_lock(&P.mu);
		c = P.gen.c;
		pthread_mutex_unlock(&P.mu);
		g.gen = c;
		rfs_stream_ship(&b, 1, false, false);
		rfs_stream_ship(&g, 1, false, false);
		if (rfs_stream_wait_applied(SETGEN_WAIT_MS)) {
			pthread_mutex_lock(&P.mu);
			/* Only if no loss moved the generation meanwhile. */
			if (P.gen.c == c) {
				rfs_gen_record_cleared(&P.gen);
				rfs_gen_store(P.cfg.meta, &P.gen);
				rfs_record_reset(c);
			}
			pthread_mutex_unlock(&P.mu);
			log_info("reintegration done (%s): %zu files, %" PRIu64 " bytes in %" PRIu64
			         " ms; SECOND is up to date", verify ? "compare" :
			         incremental ? "incremental" : "full copy",
			         rfs_resync_files(r), rfs_resync_queued(r), mono_ms() - t0);
		}
	}
	rfs_stream_set_resync(false, rfs_resync_total(r), rfs_resync_queued(r));
	rfs_resync_free(r);
}

static void *link_main(void *arg)
{
	uint64_t deadline = mono_ms() + P.cfg.connect_timeout_ms;
	bool first = true;

	(void)arg;
	if (P.cfg.connect_timeout_ms == 0) {
		/* No SECOND to wait for (vigild: the peer is lost or stopped):
		 * serve now, look for it later. */
		log_info("going on alone at once; SECOND at %s will be looked for", P.cfg.peer);
		go_alone_now(true);
		set_ready();
		first = false;
	}
	while (!__atomic_load_n(&P.stop, __ATOMIC_ACQUIRE)) {
		struct rfs_link_cfg lc = P.cfg.link;
		struct rfs_conn c;
		struct rfs_gen peer;
		enum rfs_relation rel;
		char err[160];
		bool incremental, verify, rebuild;

		pthread_mutex_lock(&P.mu);
		rfs_gen_encode(&P.gen, lc.gens, &lc.hello_flags);
		if (P.gen.b && rfs_record_complete(P.gen.b))
			lc.hello_flags |= WIRE_HELLO_RECORD;
		pthread_mutex_unlock(&P.mu);
		if (rfs_conn_dial(&lc, P.cfg.peer, &c) < 0) {
			rfs_conn_close(&c);
			if (first && mono_ms() < deadline) {
				if (nap(FIRST_RETRY_MS))
					break;
				continue;
			}
			if (first) {
				log_warn("no SECOND at %s: going on alone", P.cfg.peer);
				go_alone();
				set_ready();
				first = false;
			}
			if (nap(REDIAL_MS))
				break;
			continue;
		}
		if (rfs_gen_decode(c.hello.gens, c.hello.flags, &peer, err, sizeof(err)) < 0) {
			log_error("%s: the SECOND's generations: %s", c.peer, err);
			rfs_conn_close(&c);
			if (nap(REDIAL_MS))
				break;
			continue;
		}
		pthread_mutex_lock(&P.mu);
		rel = rfs_gen_relation(&P.gen, &peer);
		/* SECOND decides the same from the same gens and flag: its copy
		 * is merged, not set aside. */
		incremental = rfs_gen_incremental(&P.gen, &peer, lc.hello_flags & WIRE_HELLO_RECORD);
		verify = rfs_gen_verify(&P.gen, &peer, c.hello.flags & WIRE_HELLO_VERIFY);
		rebuild = rel != RFS_REL_EQUAL || verify;
		if (rel == RFS_REL_EQUAL) {
			if (P.gen.b) {
				/* Equal copies: a record left from before is void. */
				rfs_gen_record_cleared(&P.gen);
				rfs_gen_store(P.cfg.meta, &P.gen);
			}
			rfs_record_reset(P.gen.c);
		}
		pthread_mutex_unlock(&P.mu);
		log_info("%s: SECOND %s: data %s%s", c.peer, c.hello.node, rfs_relation_str(rel),
		         verify ? ", compared whole by block hashes (sync full)" :
		         incremental ? ", incremental from this node's record" : "");
		/* A copy to rebuild: no change may reach it before the walk
		 * has made the objects it names. */
		if (rebuild)
			rfs_stream_gate_exclusive(true);
		if (rfs_stream_attach(&c) < 0) {
			if (rebuild)
				rfs_stream_gate_exclusive(false);
			if (nap(REDIAL_MS))
				break;
			continue;
		}
		if (rebuild)
			reintegrate(&first, incremental || verify, verify);
		if (first) {
			set_ready();
			first = false;
		}
		rfs_stream_wait_lost();
		if (__atomic_load_n(&P.stop, __ATOMIC_ACQUIRE))
			break;
		rfs_stream_detach();
		{
			/* SECOND could not apply (disk full, I/O error): a rebuild
			 * right away would fail the same way. */
			struct rfs_stream_status st;
			bool failed;

			rfs_stream_status(&st);
			failed = !strncmp(st.error, "SECOND failed", 13);
			if (failed)
				log_warn("next attempt to reach SECOND in %d s", REDIAL_FAILED_MS / 1000);
			if (nap(failed ? REDIAL_FAILED_MS : REDIAL_MS))
				break;
		}
	}
	set_ready();
	return NULL;
}

int rfs_prim_start(const struct rfs_prim_cfg *cfg)
{
	char err[256];
	int r;

	P.cfg = *cfg;
	r = rfs_gen_load(cfg->meta, &P.gen, err, sizeof(err));
	if (r < 0) {
		log_error("%s", err);
		return -1;
	}
	/* A copy that ever served has a generation: SETGEN names it. */
	if (P.gen.c == 0 && (move_on(&P.gen) < 0 || rfs_gen_store(cfg->meta, &P.gen) < 0)) {
		log_error("cannot store a first generation in %s", cfg->meta);
		return -1;
	}
	/* Without its record on disk no change could be promised safe. */
	for (int d = 0; d < cfg->stream.ndirs; d++)
		rfs_record_set_root((uint8_t)d, cfg->root_fd[d]);
	if (cfg->journal && rfs_record_open(cfg->journal) < 0) {
		log_error("cannot open the record of changes %s", cfg->journal);
		return -1;
	}
	if (cfg->journal && P.gen.b == 0 && !rfs_record_clean(P.gen.c)) {
		/* The copies were equal at C, but this node may hold changes
		 * SECOND lacks (files hot at a crash), or its record does not
		 * reach back to C: a new generation, so that the next handshake
		 * reintegrates instead of taking the copies as equal. */
		if (move_on(&P.gen) < 0 || rfs_gen_store(cfg->meta, &P.gen) < 0) {
			log_error("cannot store a new generation in %s", cfg->meta);
			return -1;
		}
		if (rfs_record_complete(P.gen.b))
			log_info("this copy may hold changes SECOND lacks (files hot at a crash): "
			         "they go at the next reintegration");
	}
	rfs_stream_init(&cfg->stream);
	rfs_stream_set_hooks(go_alone, NULL);
	if (pthread_create(&P.thread, NULL, link_main, NULL) != 0) {
		log_error("cannot start the link thread");
		return -1;
	}
	pthread_mutex_lock(&P.mu);
	while (!P.ready)
		pthread_cond_wait(&P.cond, &P.mu);
	pthread_mutex_unlock(&P.mu);
	return 0;
}

bool rfs_prim_stop(uint32_t timeout_ms)
{
	bool all;

	pthread_mutex_lock(&P.mu);
	P.stop = true;
	pthread_cond_broadcast(&P.cond);
	pthread_mutex_unlock(&P.mu);
	all = rfs_stream_drain(timeout_ms);
	/* SECOND checkpoints within a second: then nothing stays hot, and
	 * this copy can come back as a SECOND that merges. */
	if (all)
		rfs_stream_wait_durable(timeout_ms);
	pthread_join(P.thread, NULL);
	rfs_stream_stop(0);
	if (P.cfg.journal)
		rfs_record_close();
	return all;
}
