/* The resource manager: one apply at a time, one script at a time.
 *
 * Each step is planned from the current states alone (what to stop, the
 * VIP, what to start), so a newer apply that preempts an older one simply
 * plans from wherever the older one left things.
 *
 * RES_FAILED means "state unknown, maybe partly running": a start that
 * failed, a stop that failed, or a start or stop that was cancelled half
 * way. Such a resource is stopped again if the target excludes it and
 * started again if the target includes it (scripts must be idempotent, as
 * OCF agents are). Within one apply each resource is tried at most once.
 *
 * The change callback runs in the middle of a step: it may read the state
 * (to persist it) but must not call resmgr_apply or resmgr_free; the done
 * callback may call either. */
#include "resource/resources.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common/log.h"
#include "resource/rfs_child.h"
#include "resource/script.h"
#include "resource/vip.h"

#define REASON_MAX 768

enum action { ACT_START, ACT_STOP };

/* The script's done callback points here and not at the manager, so that
 * resmgr_free can detach from a script still being killed. */
struct job {
	struct resmgr *m;
	int idx;
	enum action act;
};

struct resmgr {
	const struct config *cfg;
	struct vip *vip;
	resmgr_done_cb done;
	resmgr_change_cb change;
	void *arg;

	enum res_state st[CFG_MAX_RESOURCES];
	bool tried[CFG_MAX_RESOURCES];      /* in this apply */
	bool vip_held;

	bool busy;
	enum role target;
	bool excluded[CFG_MAX_RESOURCES];   /* restart, first half: stopped although wanted */
	bool restarting;
	uint64_t gen;
	bool preempted;                     /* a newer apply came during the script */
	char stop_failure[REASON_MAX];      /* first failed stop of this apply */

	struct script *script;
	struct job *job;
	bool probing;
	struct event *step_ev;
	struct rfs_child *rfs;              /* NULL: no replication */
	bool rfs_waiting;                   /* for rfsc_want's progress */
};

const char *role_str(enum role r)
{
	switch (r) {
	case ROLE_NONE: return "none";
	case ROLE_SECOND: return "second";
	case ROLE_PRIM: return "prim";
	}
	return "?";
}

const char *res_state_str(enum res_state s)
{
	switch (s) {
	case RES_STOPPED: return "stopped";
	case RES_STARTING: return "starting";
	case RES_STARTED: return "started";
	case RES_STOPPING: return "stopping";
	case RES_FAILED: return "failed";
	}
	return "?";
}

const char *apply_result_str(enum apply_result r)
{
	switch (r) {
	case APPLY_OK: return "ok";
	case APPLY_FAILED: return "failed";
	case APPLY_VIP_IN_USE: return "vip in use";
	}
	return "?";
}

static const char *action_str(enum action a)
{
	return a == ACT_START ? "start" : "stop";
}

static bool wanted(const struct resmgr *m, int i)
{
	enum res_when w = m->cfg->res[i].when;

	if (m->excluded[i])
		return false;
	switch (m->target) {
	case ROLE_PRIM: return w == WHEN_PRIM || w == WHEN_BOTH;
	case ROLE_SECOND: return w == WHEN_SECOND || w == WHEN_BOTH;
	case ROLE_NONE: return false;
	}
	return false;
}

static void changed(struct resmgr *m)
{
	if (m->change)
		m->change(m->arg);
}

static void set_state(struct resmgr *m, int i, enum res_state s)
{
	if (m->st[i] == s)
		return;
	log_debug("resource %s: %s -> %s", m->cfg->res[i].name, res_state_str(m->st[i]),
	          res_state_str(s));
	m->st[i] = s;
	changed(m);
}

static void set_vip_held(struct resmgr *m, bool held)
{
	if (m->vip_held == held)
		return;
	m->vip_held = held;
	changed(m);
}

static void schedule_step(struct resmgr *m)
{
	static const struct timeval zero = { 0, 0 };

	/* Through the loop even when nothing needs doing: done is never
	 * called from inside resmgr_apply. */
	evtimer_add(m->step_ev, &zero);
}

/* The last thing done with m: the callback may apply again or free it.
 * reason is copied, since a new apply clears m->stop_failure. */
static void report(struct resmgr *m, enum apply_result r, const char *reason)
{
	char why[REASON_MAX];

	snprintf(why, sizeof(why), "%s", reason ? reason : "");
	if (r == APPLY_OK)
		log_info("resources: role %s reached (gen %llu)", role_str(m->target),
		         (unsigned long long)m->gen);
	else
		log_error("resources: role %s not reached (gen %llu): %s", role_str(m->target),
		          (unsigned long long)m->gen, why);
	m->busy = false;
	m->done(m->gen, r, why, m->arg);
}

static void describe_failure(const struct script_result *r, uint32_t timeout_ms, char *buf,
                             size_t len)
{
	if (r->spawn_errno)
		snprintf(buf, len, "could not run /bin/sh: %s", strerror(r->spawn_errno));
	else if (r->timed_out)
		snprintf(buf, len, "timed out after %u ms", (unsigned)timeout_ms);
	else if (r->cancelled)
		snprintf(buf, len, "cancelled");
	else if (r->signal)
		snprintf(buf, len, "killed by signal %d", r->signal);
	else
		snprintf(buf, len, "exit %d", r->exit_code);
}

static void on_probe(enum vip_probe_result r, const uint8_t mac[6], void *arg);
static void on_script_done(const struct script_result *r, void *arg);

enum run { RUN_WAIT, RUN_DONE, RUN_FAIL };

/* The apply goes on after a failed stop, but must not end up claiming
 * success: the first one is its reason. */
static void note_stop_failure(struct resmgr *m, const char *reason)
{
	if (!m->stop_failure[0])
		snprintf(m->stop_failure, sizeof(m->stop_failure), "%s", reason);
}

/* Runs the action's script. RUN_WAIT: wait for on_script_done; RUN_DONE:
 * finished at once, plan on; RUN_FAIL: a start could not even be run. */
static enum run run(struct resmgr *m, int i, enum action act, char *reason, size_t rlen)
{
	const struct cfg_resource *res = &m->cfg->res[i];
	const char *cmd = act == ACT_START ? res->start : res->stop;
	char e_res[CFG_NAME_MAX + 32], e_act[32], e_role[32], name[CFG_NAME_MAX + 16];
	char *env[] = { e_res, e_act, e_role, NULL };
	struct job *job;

	m->tried[i] = true;
	if (!cmd || !cmd[0]) {
		log_info("resource %s: no %s command, marked %s", res->name, action_str(act),
		         act == ACT_START ? "started" : "stopped");
		set_state(m, i, act == ACT_START ? RES_STARTED : RES_STOPPED);
		return RUN_DONE;
	}
	snprintf(e_res, sizeof(e_res), "VIGIL_RESOURCE=%s", res->name);
	snprintf(e_act, sizeof(e_act), "VIGIL_ACTION=%s", action_str(act));
	snprintf(e_role, sizeof(e_role), "VIGIL_ROLE=%s", role_str(m->target));
	snprintf(name, sizeof(name), "%s %s", res->name, action_str(act));

	job = calloc(1, sizeof(*job));
	if (job) {
		job->m = m;
		job->idx = i;
		job->act = act;
		/* Before the script runs, so that a persisted "starting" tells a
		 * restarted daemon that something may be half up. */
		set_state(m, i, act == ACT_START ? RES_STARTING : RES_STOPPING);
		m->script = script_run(name, cmd, env, res->timeout_ms, on_script_done, job);
	}
	if (!job || !m->script) {
		free(job);
		set_state(m, i, RES_FAILED);
		snprintf(reason, rlen, "%s of resource %s failed: its script could not be run",
		         action_str(act), res->name);
		if (act == ACT_START)
			return RUN_FAIL;
		log_error("%s; marking it failed and going on", reason);
		note_stop_failure(m, reason);
		return RUN_DONE;
	}
	m->job = job;
	return RUN_WAIT;
}

/* vigil-rfs to the target role. Not RFSC_DONE: step returns (a failure
 * is reported here). */
static enum rfsc_run data_step(struct resmgr *m, char *reason, size_t len)
{
	enum rfsc_run r = rfsc_want(m->rfs, m->target, reason, len);

	if (r == RFSC_WAIT)
		m->rfs_waiting = true;
	else if (r == RFSC_FAIL)
		report(m, APPLY_FAILED, reason);
	return r;
}

static void step(struct resmgr *m)
{
	const struct config *cfg = m->cfg;
	char reason[REASON_MAX];

again:
	for (int i = cfg->nres - 1; i >= 0; i--) {
		if (wanted(m, i) || m->tried[i] || (m->st[i] != RES_STARTED && m->st[i] != RES_FAILED))
			continue;
		switch (run(m, i, ACT_STOP, reason, sizeof(reason))) {
		case RUN_WAIT: return;
		case RUN_DONE: goto again;
		case RUN_FAIL: goto again; /* not returned for stops */
		}
	}

	/* The data first: the dirs are mounted before the VIP and the start
	 * scripts of a PRIM, and unmounted after what the PRIM ran stopped. */
	if (m->rfs && m->target == ROLE_PRIM && data_step(m, reason, sizeof(reason)) != RFSC_DONE)
		return;
	if (m->vip && m->target == ROLE_PRIM && !m->vip_held) {
		if (vip_probe(m->vip, on_probe, m) < 0) {
			snprintf(reason, sizeof(reason), "probing virtual IP %s failed",
			         vip_describe(m->vip));
			report(m, APPLY_FAILED, reason);
			return;
		}
		m->probing = true;
		return;
	}
	if (m->vip && m->target != ROLE_PRIM && m->vip_held) {
		if (vip_del(m->vip) < 0) {
			snprintf(reason, sizeof(reason),
			         "removing virtual IP %s failed: it may still be on this node",
			         vip_describe(m->vip));
			report(m, APPLY_FAILED, reason);
			return;
		}
		log_info("resources: virtual IP %s removed", vip_describe(m->vip));
		set_vip_held(m, false);
	}
	if (m->rfs && m->target != ROLE_PRIM && data_step(m, reason, sizeof(reason)) != RFSC_DONE)
		return;

	for (int i = 0; i < cfg->nres; i++) {
		if (!wanted(m, i) || m->tried[i] || m->st[i] == RES_STARTED)
			continue;
		switch (run(m, i, ACT_START, reason, sizeof(reason))) {
		case RUN_WAIT: return;
		case RUN_DONE: goto again;
		case RUN_FAIL:
			report(m, APPLY_FAILED, reason);
			return;
		}
	}
	if (m->restarting && !m->stop_failure[0]) {
		/* Restart: everything excluded is stopped; now start it again. */
		m->restarting = false;
		memset(m->excluded, 0, sizeof(m->excluded));
		memset(m->tried, 0, sizeof(m->tried));
		goto again;
	}
	if (m->stop_failure[0])
		report(m, APPLY_FAILED, m->stop_failure);
	else
		report(m, APPLY_OK, NULL);
}

static void on_step(evutil_socket_t fd, short what, void *arg)
{
	struct resmgr *m = arg;

	if (m->busy && !m->script && !m->probing && !m->rfs_waiting)
		step(m);
}

static void on_probe(enum vip_probe_result r, const uint8_t mac[6], void *arg)
{
	struct resmgr *m = arg;
	char reason[REASON_MAX];

	m->probing = false;
	switch (r) {
	case VIP_FREE:
		if (vip_add(m->vip) < 0) {
			snprintf(reason, sizeof(reason), "adding virtual IP %s failed",
			         vip_describe(m->vip));
			report(m, APPLY_FAILED, reason);
			return;
		}
		log_info("resources: virtual IP %s added", vip_describe(m->vip));
		set_vip_held(m, true);
		step(m);
		return;
	case VIP_IN_USE:
		snprintf(reason, sizeof(reason),
		         "virtual IP %s is in use by %02x:%02x:%02x:%02x:%02x:%02x: another host "
		         "answered ARP; not taking it",
		         vip_describe(m->vip), mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
		report(m, APPLY_VIP_IN_USE, reason);
		return;
	case VIP_PROBE_ERROR:
		break;
	}
	snprintf(reason, sizeof(reason), "probing virtual IP %s failed", vip_describe(m->vip));
	report(m, APPLY_FAILED, reason);
}

static void on_script_done(const struct script_result *r, void *arg)
{
	struct job *job = arg;
	struct resmgr *m = job->m;
	int i = job->idx;
	enum action act = job->act;
	const char *name;
	char why[128], reason[REASON_MAX];
	bool preempted;

	free(job);
	if (!m)
		return; /* the manager was freed while this was being killed */
	m->script = NULL;
	m->job = NULL;
	preempted = m->preempted;
	m->preempted = false;
	name = m->cfg->res[i].name;

	if (r->ok) {
		log_info("resource %s: %s after %llu ms", name,
		         act == ACT_START ? "started" : "stopped", (unsigned long long)r->elapsed_ms);
		set_state(m, i, act == ACT_START ? RES_STARTED : RES_STOPPED);
		step(m);
		return;
	}
	/* Whatever went wrong, the resource may be partly up. */
	set_state(m, i, RES_FAILED);
	if (preempted) {
		log_info("resource %s: %s interrupted by a newer apply; its state is unknown, "
		         "it will be stopped or started again as the new role requires",
		         name, action_str(act));
		step(m);
		return;
	}
	describe_failure(r, m->cfg->res[i].timeout_ms, why, sizeof(why));
	snprintf(reason, sizeof(reason), "%s of resource %s failed (%s)%s%s", action_str(act), name,
	         why, r->tail[0] ? ": " : "", r->tail);
	if (act == ACT_STOP) {
		log_error("%s; marking it failed and going on, since there is nothing else to do "
		          "with a resource that will not stop", reason);
		note_stop_failure(m, reason);
		step(m);
		return;
	}
	report(m, APPLY_FAILED, reason);
}

struct resmgr *resmgr_new(const struct config *cfg, struct vip *vip,
                          resmgr_done_cb done, resmgr_change_cb change, void *arg)
{
	struct event_base *base = script_event_base();
	struct resmgr *m;

	if (!base) {
		log_error("resources: the manager needs script_init first");
		return NULL;
	}
	if (!cfg || !done || cfg->nres < 0 || cfg->nres > CFG_MAX_RESOURCES) {
		log_error("resources: resmgr_new with no config, no done callback or a bad count");
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		log_error("resources: out of memory");
		return NULL;
	}
	m->cfg = cfg;
	m->vip = vip;
	m->done = done;
	m->change = change;
	m->arg = arg;
	m->step_ev = evtimer_new(base, on_step, m);
	if (!m->step_ev) {
		log_error("resources: out of memory");
		free(m);
		return NULL;
	}
	return m;
}

void resmgr_free(struct resmgr *m)
{
	if (!m)
		return;
	if (m->script) {
		/* Its done will still come; the job no longer points here. */
		m->job->m = NULL;
		script_cancel(m->script);
	}
	if (m->probing)
		vip_probe_cancel(m->vip);
	event_free(m->step_ev);
	free(m);
}

void resmgr_set_rfs(struct resmgr *m, struct rfs_child *c)
{
	m->rfs = c;
}

void resmgr_rfs_progress(struct resmgr *m)
{
	if (!m->rfs_waiting)
		return;
	m->rfs_waiting = false;
	schedule_step(m);
}

void resmgr_apply(struct resmgr *m, enum role target, uint64_t gen)
{
	if (m->busy)
		log_info("resources: applying role %s (gen %llu), preempting gen %llu", role_str(target),
		         (unsigned long long)gen, (unsigned long long)m->gen);
	else
		log_info("resources: applying role %s (gen %llu)", role_str(target),
		         (unsigned long long)gen);
	m->target = target;
	m->gen = gen;
	m->busy = true;
	m->restarting = false;
	memset(m->excluded, 0, sizeof(m->excluded));
	memset(m->tried, 0, sizeof(m->tried));
	m->stop_failure[0] = '\0';
	m->rfs_waiting = false;
	if (m->script) {
		/* Planning resumes from on_script_done, once it has ended. */
		m->preempted = true;
		script_cancel(m->script);
		return;
	}
	if (m->probing) {
		vip_probe_cancel(m->vip);
		m->probing = false;
	}
	schedule_step(m);
}

/* Whether resource i starts after resource root, directly or not. */
static bool depends_on(const struct config *cfg, int i, int root)
{
	for (int hops = 0; hops < CFG_MAX_RESOURCES && i >= 0; hops++) {
		if (i == root)
			return true;
		if (!cfg->res[i].after[0])
			return false;
		for (int j = 0; j < cfg->nres; j++)
			if (!strcmp(cfg->res[j].name, cfg->res[i].after)) {
				i = j;
				goto next;
			}
		return false;
next:;
	}
	return false;
}

int resmgr_restart(struct resmgr *m, const char *name, uint64_t gen)
{
	int root = -1, n = 0;
	bool excl[CFG_MAX_RESOURCES] = { false };
	enum role target = m->target;

	if (name && *name) {
		for (int i = 0; i < m->cfg->nres; i++)
			if (!strcmp(m->cfg->res[i].name, name))
				root = i;
		if (root < 0) {
			log_error("resources: no resource %s to restart", name);
			return -1;
		}
	}
	if (m->busy) {
		log_warn("resources: not restarting %s: a change of role is under way", name && *name ? name : "the role");
		return -1;
	}
	for (int i = 0; i < m->cfg->nres; i++) {
		m->excluded[i] = false;
		if (!wanted(m, i) || (root >= 0 && !depends_on(m->cfg, i, root)))
			continue;
		excl[i] = true;
		n++;
	}
	if (!n) {
		log_warn("resources: nothing of role %s to restart%s%s", role_str(target), name ? " for " : "",
		         name ? name : "");
		return -1;
	}
	log_info("resources: restarting %s (%d resource%s, gen %llu)", root >= 0 ? name : "the role", n,
	         n == 1 ? "" : "s", (unsigned long long)gen);
	memcpy(m->excluded, excl, sizeof(excl));
	m->restarting = true;
	m->gen = gen;
	m->busy = true;
	memset(m->tried, 0, sizeof(m->tried));
	m->stop_failure[0] = '\0';
	schedule_step(m);
	return 0;
}

bool resmgr_busy(const struct resmgr *m)
{
	return m->busy;
}

int resmgr_count(const struct resmgr *m)
{
	return m->cfg->nres;
}

const char *resmgr_name(const struct resmgr *m, int i)
{
	if (i < 0 || i >= m->cfg->nres)
		return NULL;
	return m->cfg->res[i].name;
}

enum res_state resmgr_state(const struct resmgr *m, int i)
{
	if (i < 0 || i >= m->cfg->nres)
		return RES_STOPPED;
	return m->st[i];
}

bool resmgr_vip_held(const struct resmgr *m)
{
	return m->vip_held;
}

void resmgr_assume_running(struct resmgr *m, const char *name)
{
	for (int i = 0; i < m->cfg->nres; i++) {
		if (strcmp(m->cfg->res[i].name, name) == 0) {
			log_info("resource %s: assumed running (kept while vigild was away)", name);
			set_state(m, i, RES_STARTED);
			return;
		}
	}
	log_warn("resources: no resource named %s to assume running; ignored", name);
}

void resmgr_assume_vip(struct resmgr *m, bool held)
{
	if (held && !m->vip) {
		log_warn("resources: virtual IP assumed held but none is configured; ignored");
		return;
	}
	set_vip_held(m, held);
}
