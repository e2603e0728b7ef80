/* The resource manager with real /bin/sh scripts on a real event loop and a
 * fake VIP (the real one needs an interface and is tested on its own). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "common/log.h"
#include "common/util.h"
#include "resource/resources.h"
#include "resource/script.h"
#include "resource/vip.h"

static struct event_base *base;
static char dir[] = "/tmp/vigil-test-resources-XXXXXX";
static char trace[300];

/* ---- fake VIP: only what resources.c calls ---- */

struct vip {
	enum vip_probe_result answer;
	int add_fail, del_fail;
	int probes, adds, dels, cancels;
	bool present;
	struct event *ev;
	vip_probe_cb cb;
	void *arg;
};

const char *vip_describe(const struct vip *v)
{
	return "10.0.0.100/24 on eth0";
}

static void fake_probe_done(evutil_socket_t fd, short what, void *arg)
{
	struct vip *v = arg;
	static const uint8_t mac[6] = { 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };

	v->cb(v->answer, mac, v->arg);
}

int vip_probe(struct vip *v, vip_probe_cb cb, void *arg)
{
	struct timeval tv = { 0, 50000 };

	v->probes++;
	v->cb = cb;
	v->arg = arg;
	evtimer_add(v->ev, &tv);
	return 0;
}

void vip_probe_cancel(struct vip *v)
{
	v->cancels++;
	evtimer_del(v->ev);
}

int vip_add(struct vip *v)
{
	v->adds++;
	if (v->add_fail)
		return -1;
	v->present = true;
	return 0;
}

int vip_del(struct vip *v)
{
	v->dels++;
	if (v->del_fail)
		return -1;
	v->present = false;
	return 0;
}

/* ---- harness ---- */

struct rec {
	int calls;
	uint64_t gen;
	enum apply_result r;
	char reason[1024];
	int changes;
	struct resmgr *m;
	int break_on_state_idx;     /* -1: none */
	enum res_state break_state;
	bool hit;
};

static void on_done(uint64_t gen, enum apply_result r, const char *reason, void *arg)
{
	struct rec *rc = arg;

	rc->calls++;
	rc->gen = gen;
	rc->r = r;
	snprintf(rc->reason, sizeof(rc->reason), "%s", reason ? reason : "(null)");
	assert_false(resmgr_busy(rc->m));
}

static void on_change(void *arg)
{
	struct rec *rc = arg;

	rc->changes++;
	if (rc->break_on_state_idx >= 0 &&
	    resmgr_state(rc->m, rc->break_on_state_idx) == rc->break_state)
		rc->hit = true;
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	*(bool *)arg = true;
}

/* Runs the loop until *flag (an int > 0 or a bool) or ms passed. */
static bool loop_until(const bool *bflag, const int *iflag, int n, uint64_t ms)
{
	bool expired = false;
	struct event *wd = evtimer_new(base, on_watchdog, &expired);
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	evtimer_add(wd, &tv);
	while (!expired && !(bflag && *bflag) && !(iflag && *iflag >= n))
		event_base_loop(base, EVLOOP_ONCE);
	event_free(wd);
	return (bflag && *bflag) || (iflag && *iflag >= n);
}

static void wait_scripts_gone(void)
{
	int st;

	for (uint64_t end = mono_ms() + 5000; script_running_count() > 0 && mono_ms() < end;)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(script_running_count(), 0);
	assert_int_equal(waitpid(-1, &st, WNOHANG), -1);
}

static char *cmd(const char *fmt, ...)
{
	char buf[512], *s;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	s = strdup(buf);
	assert_non_null(s);
	return s;
}

static void add_res(struct config *cfg, const char *name, enum res_when when, const char *after,
                    const char *start_extra, const char *stop_extra)
{
	struct cfg_resource *r = &cfg->res[cfg->nres++];

	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->after, sizeof(r->after), "%s", after);
	r->when = when;
	r->timeout_ms = 5000;
	r->start = cmd("echo \"$VIGIL_ACTION $VIGIL_RESOURCE $VIGIL_ROLE\" >> %s%s", trace,
	               start_extra ? start_extra : "");
	r->stop = cmd("echo \"$VIGIL_ACTION $VIGIL_RESOURCE $VIGIL_ROLE\" >> %s%s", trace,
	              stop_extra ? stop_extra : "");
}

static void free_cfg(struct config *cfg)
{
	for (int i = 0; i < cfg->nres; i++) {
		free(cfg->res[i].start);
		free(cfg->res[i].stop);
	}
	free(cfg);
}

static struct config *new_cfg(void)
{
	struct config *cfg = calloc(1, sizeof(*cfg));

	assert_non_null(cfg);
	unlink(trace);
	return cfg;
}

static void assert_trace(const char *want)
{
	char *buf = NULL;
	size_t len;

	if (read_file(trace, 1 << 16, &buf, &len) < 0)
		buf = strdup("");
	assert_string_equal(buf, want);
	free(buf);
}

static struct resmgr *new_mgr(struct config *cfg, struct vip *vip, struct rec *rc)
{
	memset(rc, 0, sizeof(*rc));
	rc->break_on_state_idx = -1;
	rc->m = resmgr_new(cfg, vip, on_done, on_change, rc);
	assert_non_null(rc->m);
	return rc->m;
}

/* Applies and waits for one report. */
static void apply_wait(struct rec *rc, enum role role, uint64_t gen)
{
	int before = rc->calls;

	resmgr_apply(rc->m, role, gen);
	assert_true(resmgr_busy(rc->m));
	assert_int_equal(rc->calls, before); /* never from inside resmgr_apply */
	assert_true(loop_until(NULL, &rc->calls, before + 1, 10000));
	assert_int_equal(rc->calls, before + 1);
	assert_int_equal(rc->gen, gen);
}

/* ---- tests ---- */

static void t_roles(void **state)
{
	struct config *cfg = new_cfg();
	struct rec rc;
	struct resmgr *m;

	add_res(cfg, "a", WHEN_PRIM, "", NULL, NULL);
	add_res(cfg, "b", WHEN_PRIM, "a", NULL, NULL);
	add_res(cfg, "c", WHEN_SECOND, "", NULL, NULL);
	m = new_mgr(cfg, NULL, &rc);
	assert_int_equal(resmgr_count(m), 3);
	assert_string_equal(resmgr_name(m, 1), "b");
	assert_null(resmgr_name(m, 3));

	apply_wait(&rc, ROLE_PRIM, 1);
	assert_int_equal(rc.r, APPLY_OK);
	assert_trace("start a prim\nstart b prim\n");
	assert_int_equal(resmgr_state(m, 0), RES_STARTED);
	assert_int_equal(resmgr_state(m, 1), RES_STARTED);
	assert_int_equal(resmgr_state(m, 2), RES_STOPPED);
	assert_int_equal(rc.changes, 4); /* starting+started, twice */
	assert_false(resmgr_vip_held(m));

	apply_wait(&rc, ROLE_SECOND, 2);
	assert_int_equal(rc.r, APPLY_OK);
	assert_trace("start a prim\nstart b prim\nstop b second\nstop a second\nstart c second\n");
	assert_int_equal(resmgr_state(m, 0), RES_STOPPED);
	assert_int_equal(resmgr_state(m, 1), RES_STOPPED);
	assert_int_equal(resmgr_state(m, 2), RES_STARTED);

	/* already there: nothing runs, still reported from the loop */
	apply_wait(&rc, ROLE_SECOND, 3);
	assert_int_equal(rc.r, APPLY_OK);

	apply_wait(&rc, ROLE_NONE, 4);
	assert_int_equal(rc.r, APPLY_OK);
	assert_trace("start a prim\nstart b prim\nstop b second\nstop a second\nstart c second\n"
	             "stop c none\n");
	for (int i = 0; i < 3; i++)
		assert_int_equal(resmgr_state(m, i), RES_STOPPED);
	resmgr_free(m);
	free_cfg(cfg);
	wait_scripts_gone();
}

static void t_both(void **state)
{
	struct config *cfg = new_cfg();
	struct rec rc;
	struct resmgr *m;

	add_res(cfg, "db", WHEN_BOTH, "", NULL, NULL);
	add_res(cfg, "web", WHEN_PRIM, "db", NULL, NULL);
	m = new_mgr(cfg, NULL, &rc);
	apply_wait(&rc, ROLE_SECOND, 1);
	apply_wait(&rc, ROLE_PRIM, 2);
	apply_wait(&rc, ROLE_SECOND, 3);
	assert_int_equal(rc.r, APPLY_OK);
	/* `both` keeps running across the role change */
	assert_trace("start db second\nstart web prim\nstop web second\n");
	resmgr_free(m);
	free_cfg(cfg);
}

static void t_failing_start(void **state)
{
	struct config *cfg = new_cfg();
	struct rec rc;
	struct resmgr *m;

	add_res(cfg, "a", WHEN_PRIM, "", NULL, NULL);
	add_res(cfg, "web", WHEN_PRIM, "a", "; echo starting; echo 'port 80 in use' >&2; exit 3", NULL);
	add_res(cfg, "d", WHEN_PRIM, "web", NULL, NULL);
	m = new_mgr(cfg, NULL, &rc);

	apply_wait(&rc, ROLE_PRIM, 7);
	assert_int_equal(rc.r, APPLY_FAILED);
	assert_string_equal(rc.reason, "start of resource web failed (exit 3): port 80 in use");
	assert_trace("start a prim\nstart web prim\n");
	assert_int_equal(resmgr_state(m, 0), RES_STARTED); /* not stopped on our own */
	assert_int_equal(resmgr_state(m, 1), RES_FAILED);
	assert_int_equal(resmgr_state(m, 2), RES_STOPPED);

	/* the caller stops everything: the failed one is stopped too */
	apply_wait(&rc, ROLE_NONE, 8);
	assert_int_equal(rc.r, APPLY_OK);
	assert_trace("start a prim\nstart web prim\nstop web none\nstop a none\n");
	for (int i = 0; i < 3; i++)
		assert_int_equal(resmgr_state(m, i), RES_STOPPED);
	resmgr_free(m);
	free_cfg(cfg);
	wait_scripts_gone();
}

static void t_timeout_start(void **state)
{
	struct config *cfg = new_cfg();
	struct rec rc;
	struct resmgr *m;
	uint64_t t0 = mono_ms();

	add_res(cfg, "slow", WHEN_PRIM, "", "; sleep 30", NULL);
	cfg->res[0].timeout_ms = 200;
	m = new_mgr(cfg, NULL, &rc);
	apply_wait(&rc, ROLE_PRIM, 1);
	assert_int_equal(rc.r, APPLY_FAILED);
	assert_string_equal(rc.reason, "start of resource slow failed (timed out after 200 ms)");
	assert_int_equal(resmgr_state(m, 0), RES_FAILED);
	assert_true(mono_ms() - t0 < 3000);
	resmgr_free(m);
	free_cfg(cfg);
	wait_scripts_gone();
}

static void t_failing_stop(void **state)
{
	struct config *cfg = new_cfg();
	struct rec rc;
	struct resmgr *m;

	add_res(cfg, "a", WHEN_PRIM, "", NULL, NULL);
	add_res(cfg, "b", WHEN_PRIM, "a", NULL, "; echo 'cannot stop b'; exit 1");
	add_res(cfg, "c", WHEN_SECOND, "", NULL, NULL);
	m = new_mgr(cfg, NULL, &rc);
	apply_wait(&rc, ROLE_PRIM, 1);
	apply_wait(&rc, ROLE_SECOND, 2);
	/* the rest of the apply went on, but it does not claim success */
	assert_int_equal(rc.r, APPLY_FAILED);
	assert_string_equal(rc.reason, "stop of resource b failed (exit 1): cannot stop b");
	assert_trace("start a prim\nstart b prim\nstop b second\nstop a second\nstart c second\n");
	assert_int_equal(resmgr_state(m, 0), RES_STOPPED);
	assert_int_equal(resmgr_state(m, 1), RES_FAILED);
	assert_int_equal(resmgr_state(m, 2), RES_STARTED);
	resmgr_free(m);
	free_cfg(cfg);
	wait_scripts_gone();
}

static void t_preempt_immediate(void **state)
{
	struct config *cfg = new_cfg();
	struct rec rc;
	struct resmgr *m;

	add_res(cfg, "a", WHEN_PRIM, "", "; sleep 30", NULL);
	m = new_mgr(cfg, NULL, &rc);
	resmgr_apply(m, ROLE_PRIM, 1);
	apply_wait(&rc, ROLE_NONE, 2);
	assert_int_equal(rc.calls, 1);
	assert_int_equal(rc.r, APPLY_OK);
	assert_trace("");
	assert_int_equal(resmgr_state(m, 0), RES_STOPPED);
	resmgr_free(m);
	free_cfg(cfg);
}

static void t_preempt_running_start(void **state)
{
	struct config *cfg = new_cfg();
	struct rec rc;
	struct resmgr *m;
	uint64_t t0;

	add_res(cfg, "a", WHEN_PRIM, "", NULL, NULL);
	add_res(cfg, "slow", WHEN_PRIM, "a", "; sleep 30", NULL);
	add_res(cfg, "c", WHEN_PRIM, "slow", NULL, NULL);
	m = new_mgr(cfg, NULL, &rc);
	rc.break_on_state_idx = 1;
	rc.break_state = RES_STARTING;
	resmgr_apply(m, ROLE_PRIM, 1);
	assert_true(loop_until(&rc.hit, NULL, 0, 5000));
	usleep(100000); /* let the shell reach its sleep */

	t0 = mono_ms();
	apply_wait(&rc, ROLE_NONE, 2);
	assert_int_equal(rc.calls, 1); /* only the newer one reports */
	assert_int_equal(rc.r, APPLY_OK);
	assert_true(mono_ms() - t0 < 3000);
	/* the cancelled start may have left something: its stop ran */
	assert_trace("start a prim\nstart slow prim\nstop slow none\nstop a none\n");
	for (int i = 0; i < 3; i++)
		assert_int_equal(resmgr_state(m, i), RES_STOPPED);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(rc.calls, 1);
	resmgr_free(m);
	free_cfg(cfg);
	wait_scripts_gone();
}

static void t_preempt_running_stop(void **state)
{
	struct config *cfg = new_cfg();
	struct rec rc;
	struct resmgr *m;

	add_res(cfg, "a", WHEN_PRIM, "", NULL, "; sleep 30");
	m = new_mgr(cfg, NULL, &rc);
	apply_wait(&rc, ROLE_PRIM, 1);
	rc.break_on_state_idx = 0;
	rc.break_state = RES_STOPPING;
	resmgr_apply(m, ROLE_NONE, 2);
	assert_true(loop_until(&rc.hit, NULL, 0, 5000));
	usleep(100000);
	apply_wait(&rc, ROLE_PRIM, 3);
	assert_int_equal(rc.calls, 2); /* gen 1 and gen 3, not gen 2 */
	assert_int_equal(rc.r, APPLY_OK);
	/* a half-done stop leaves it unknown: it is started again */
	assert_trace("start a prim\nstop a none\nstart a prim\n");
	assert_int_equal(resmgr_state(m, 0), RES_STARTED);
	resmgr_free(m);
	free_cfg(cfg);
	wait_scripts_gone();
}

static void t_vip(void **state)
{
	struct config *cfg = new_cfg();
	struct vip v = { .answer = VIP_FREE };
	struct rec rc;
	struct resmgr *m;

	v.ev = evtimer_new(base, fake_probe_done, &v);
	add_res(cfg, "a", WHEN_PRIM, "", NULL, NULL);
	add_res(cfg, "c", WHEN_SECOND, "", NULL, NULL);
	m = new_mgr(cfg, &v, &rc);

	apply_wait(&rc, ROLE_PRIM, 1);
	assert_int_equal(rc.r, APPLY_OK);
	assert_int_equal(v.probes, 1);
	assert_int_equal(v.adds, 1);
	assert_true(v.present);
	assert_true(resmgr_vip_held(m));

	apply_wait(&rc, ROLE_PRIM, 2); /* held: no second probe */
	assert_int_equal(v.probes, 1);

	apply_wait(&rc, ROLE_SECOND, 3);
	assert_int_equal(rc.r, APPLY_OK);
	assert_int_equal(v.dels, 1);
	assert_false(v.present);
	assert_false(resmgr_vip_held(m));
	assert_trace("start a prim\nstop a second\nstart c second\n");

	/* in use: nothing of PRIM starts */
	v.answer = VIP_IN_USE;
	apply_wait(&rc, ROLE_PRIM, 4);
	assert_int_equal(rc.r, APPLY_VIP_IN_USE);
	assert_string_equal(rc.reason, "virtual IP 10.0.0.100/24 on eth0 is in use by "
	                               "aa:bb:cc:dd:ee:ff: another host answered ARP; not taking it");
	assert_int_equal(v.adds, 1);
	assert_false(resmgr_vip_held(m));
	assert_int_equal(resmgr_state(m, 0), RES_STOPPED);
	assert_trace("start a prim\nstop a second\nstart c second\nstop c prim\n");

	v.answer = VIP_PROBE_ERROR;
	apply_wait(&rc, ROLE_PRIM, 5);
	assert_int_equal(rc.r, APPLY_FAILED);
	assert_string_equal(rc.reason, "probing virtual IP 10.0.0.100/24 on eth0 failed");

	v.answer = VIP_FREE;
	v.add_fail = 1;
	apply_wait(&rc, ROLE_PRIM, 6);
	assert_int_equal(rc.r, APPLY_FAILED);
	assert_string_equal(rc.reason, "adding virtual IP 10.0.0.100/24 on eth0 failed");
	assert_false(resmgr_vip_held(m));

	/* preempting a probe cancels it; only the newer apply reports */
	v.add_fail = 0;
	resmgr_apply(m, ROLE_PRIM, 7);
	assert_true(loop_until(NULL, &v.probes, 5, 2000));
	apply_wait(&rc, ROLE_NONE, 8);
	assert_int_equal(rc.r, APPLY_OK);
	assert_int_equal(v.cancels, 1);
	assert_int_equal(v.adds, 2);

	resmgr_free(m);
	event_free(v.ev);
	free_cfg(cfg);
	wait_scripts_gone();
}

static void t_assume(void **state)
{
	struct config *cfg = new_cfg();
	struct vip v = { .answer = VIP_FREE };
	struct rec rc;
	struct resmgr *m;

	v.ev = evtimer_new(base, fake_probe_done, &v);
	add_res(cfg, "a", WHEN_PRIM, "", NULL, NULL);
	add_res(cfg, "b", WHEN_PRIM, "a", NULL, NULL);
	m = new_mgr(cfg, &v, &rc);
	resmgr_assume_running(m, "b");
	resmgr_assume_running(m, "nosuch");
	resmgr_assume_vip(m, true);
	assert_int_equal(rc.changes, 2);
	assert_int_equal(resmgr_state(m, 1), RES_STARTED);
	assert_true(resmgr_vip_held(m));
	assert_trace("");

	apply_wait(&rc, ROLE_PRIM, 1); /* only a starts; no probe for a held VIP */
	assert_trace("start a prim\n");
	assert_int_equal(v.probes, 0);
	apply_wait(&rc, ROLE_NONE, 2);
	assert_trace("start a prim\nstop b none\nstop a none\n");
	assert_int_equal(v.dels, 1);
	resmgr_free(m);
	event_free(v.ev);
	free_cfg(cfg);
}

static void t_empty_commands(void **state)
{
	struct config *cfg = new_cfg();
	struct rec rc;
	struct resmgr *m;

	add_res(cfg, "a", WHEN_PRIM, "", NULL, NULL);
	free(cfg->res[0].start);
	cfg->res[0].start = NULL;
	free(cfg->res[0].stop);
	cfg->res[0].stop = strdup("");
	m = new_mgr(cfg, NULL, &rc);
	apply_wait(&rc, ROLE_PRIM, 1);
	assert_int_equal(rc.r, APPLY_OK);
	assert_int_equal(resmgr_state(m, 0), RES_STARTED);
	apply_wait(&rc, ROLE_NONE, 2);
	assert_int_equal(resmgr_state(m, 0), RES_STOPPED);
	assert_trace("");
	resmgr_free(m);
	free_cfg(cfg);
}

static void on_done_reapply(uint64_t gen, enum apply_result r, const char *reason, void *arg)
{
	struct rec *rc = arg;

	on_done(gen, r, reason, arg);
	if (gen == 1)
		resmgr_apply(rc->m, ROLE_NONE, 2); /* from inside done: allowed */
}

static void t_apply_from_done(void **state)
{
	struct config *cfg = new_cfg();
	struct rec rc = { .break_on_state_idx = -1 };

	add_res(cfg, "a", WHEN_PRIM, "", "; exit 4", NULL);
	rc.m = resmgr_new(cfg, NULL, on_done_reapply, on_change, &rc);
	assert_non_null(rc.m);
	resmgr_apply(rc.m, ROLE_PRIM, 1);
	assert_true(loop_until(NULL, &rc.calls, 2, 10000));
	assert_int_equal(rc.gen, 2);
	assert_int_equal(rc.r, APPLY_OK);
	assert_trace("start a prim\nstop a none\n");
	resmgr_free(rc.m);
	free_cfg(cfg);
	wait_scripts_gone();
}

static void t_free_while_running(void **state)
{
	struct config *cfg = new_cfg();
	struct rec rc;
	struct resmgr *m;

	add_res(cfg, "a", WHEN_PRIM, "", "; sleep 30", NULL);
	m = new_mgr(cfg, NULL, &rc);
	rc.break_on_state_idx = 0;
	rc.break_state = RES_STARTING;
	resmgr_apply(m, ROLE_PRIM, 1);
	assert_true(loop_until(&rc.hit, NULL, 0, 5000));
	resmgr_free(m);
	wait_scripts_gone(); /* killed, reaped, no callback into freed memory */
	assert_int_equal(rc.calls, 0);
	free_cfg(cfg);
}

static void t_strs(void **state)
{
	assert_string_equal(role_str(ROLE_PRIM), "prim");
	assert_string_equal(role_str(ROLE_SECOND), "second");
	assert_string_equal(role_str(ROLE_NONE), "none");
	assert_string_equal(res_state_str(RES_FAILED), "failed");
	assert_string_equal(res_state_str(RES_STOPPING), "stopping");
	assert_string_equal(apply_result_str(APPLY_VIP_IN_USE), "vip in use");
	assert_string_equal(role_str((enum role)42), "?");
}

static int setup(void **state)
{
	log_init("test_resources", true, LOG_LVL_WARN);
	if (!mkdtemp(dir))
		return -1;
	snprintf(trace, sizeof(trace), "%s/trace", dir);
	base = event_base_new();
	if (!base || script_init(base) < 0)
		return -1;
	script_set_kill_grace(500);
	return 0;
}

static int teardown(void **state)
{
	char rm[256];

	script_shutdown();
	event_base_free(base);
	snprintf(rm, sizeof(rm), "rm -rf '%s'", dir);
	return system(rm) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_roles),
		cmocka_unit_test(t_both),
		cmocka_unit_test(t_failing_start),
		cmocka_unit_test(t_timeout_start),
		cmocka_unit_test(t_failing_stop),
		cmocka_unit_test(t_preempt_immediate),
		cmocka_unit_test(t_preempt_running_start),
		cmocka_unit_test(t_preempt_running_stop),
		cmocka_unit_test(t_vip),
		cmocka_unit_test(t_assume),
		cmocka_unit_test(t_empty_commands),
		cmocka_unit_test(t_apply_from_done),
		cmocka_unit_test(t_free_while_running),
		cmocka_unit_test(t_strs),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
