#include "resource/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "resource/checker.h"

struct pchk {
	struct policy *p;
	const struct cfg_checker *cfg;
	struct checker *c;
	bool running;
	bool acted;                 /* failover/stop/wait asked in this run of failures */
	uint64_t *restarts;         /* mono ms of the restarts within loop_window_ms */
	unsigned nrestarts;
};

struct policy {
	const struct config *cfg;
	struct policy_ops ops;
	char node[CFG_NAME_MAX];
	struct pchk chk[CFG_MAX_CHECKERS];
	int n;
	enum policy_role role;
	bool enabled;
	bool errd_suspended;
	struct pchk *restarting;    /* a restart asked and not done: checkers pause */
	struct pchk *waiting;       /* on_failure = wait: runs whatever the role */
};

const char *policy_role_str(enum policy_role r)
{
	switch (r) {
	case POLICY_NONE: return "none";
	case POLICY_PRIM: return "prim";
	case POLICY_SECOND: return "second";
	}
	return "?";
}

static int to_checker_cfg(const struct cfg_checker *in, struct checker_cfg *out, char *err, size_t errlen)
{
	checker_cfg_init(out);
	strlcpy_ok(out->name, in->name, sizeof(out->name));
	if (checker_type_parse(cfg_checker_type_names[in->type], &out->type) < 0) {
		snprintf(err, errlen, "checker %s: unknown type", in->name);
		return -1;
	}
	strlcpy_ok(out->target, in->target, sizeof(out->target));
	strlcpy_ok(out->url, in->url, sizeof(out->url));
	out->expect_status = (int)in->expect_status;
	strlcpy_ok(out->process, in->process, sizeof(out->process));
	strlcpy_ok(out->pidfile, in->pidfile, sizeof(out->pidfile));
	out->command = in->command;
	strlcpy_ok(out->ifname, in->interface, sizeof(out->ifname));
	out->interval_ms = in->interval_ms;
	out->timeout_ms = in->timeout_ms;
	return checker_validate(out, err, errlen);
}

int policy_validate(const struct config *cfg, char *err, size_t errlen)
{
	for (int i = 0; i < cfg->nchecker; i++) {
		struct checker_cfg cc;
		char why[512];

		if (to_checker_cfg(&cfg->checkers[i], &cc, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "%s:%d: %s", cfg->path, cfg->checkers[i].line, why);
			return -1;
		}
	}
	return 0;
}

static bool role_matches(enum policy_role r, enum res_when w)
{
	switch (r) {
	case POLICY_PRIM: return w == WHEN_PRIM || w == WHEN_BOTH;
	case POLICY_SECOND: return w == WHEN_SECOND || w == WHEN_BOTH;
	case POLICY_NONE: return false;
	}
	return false;
}

static bool should_run(const struct policy *p, const struct pchk *pc)
{
	if (!p->enabled || p->restarting)
		return false;
	if (p->waiting)
		return p->waiting == pc;
	return role_matches(p->role, pc->cfg->when);
}

/* Starts and stops checkers to match the role and the switches. */
static void sync_checkers(struct policy *p)
{
	for (int i = 0; i < p->n; i++) {
		struct pchk *pc = &p->chk[i];
		bool want = should_run(p, pc);

		if (want && !pc->running) {
			log_debug("checker %s: starting", pc->cfg->name);
			pc->acted = false;
			checker_start(pc->c);
		} else if (!want && pc->running) {
			log_debug("checker %s: stopping", pc->cfg->name);
			checker_stop(pc->c);
		}
		pc->running = want;
	}
}

/* Restarts within loop_window_ms, forgetting older ones. */
static unsigned recent_restarts(struct pchk *pc, uint64_t now)
{
	unsigned k = 0;

	for (unsigned i = 0; i < pc->nrestarts; i++)
		if (now - pc->restarts[i] < pc->cfg->loop_window_ms)
			pc->restarts[k++] = pc->restarts[i];
	pc->nrestarts = k;
	return k;
}

static void escalate(struct policy *p, struct pchk *pc, const char *why)
{
	pc->acted = true;
	if (p->ops.failover(p->ops.arg, why) < 0)
		log_warn("%s: checker %s: failover not carried out (see above); the service stays here",
		         p->node, pc->cfg->name);
}

static void act(struct policy *p, struct pchk *pc, const char *reason)
{
	const struct cfg_checker *cc = pc->cfg;
	char why[768];
	uint64_t now = mono_ms();

	switch (cc->on_failure) {
	case CHK_ACT_RESTART: {
		unsigned done = recent_restarts(pc, now);

		if (done >= cc->maxloop) {
			snprintf(why, sizeof(why), "checker %s failed (%s) after %u local restart%s within %u ms "
			         "(maxloop %u): failing over", cc->name, reason, done, done == 1 ? "" : "s",
			         cc->loop_window_ms, cc->maxloop);
			log_warn("%s: %s", p->node, why);
			escalate(p, pc, why);
			return;
		}
		snprintf(why, sizeof(why), "checker %s failed (%s): restarting %s (%u of %u within %u ms)", cc->name,
		         reason, cc->resource[0] ? cc->resource : "the role's resources", done + 1, cc->maxloop,
		         cc->loop_window_ms);
		log_warn("%s: %s", p->node, why);
		if (p->ops.restart(p->ops.arg, cc->resource[0] ? cc->resource : NULL, why) < 0) {
			log_warn("%s: checker %s: cannot restart now; trying again at its next failure", p->node,
			         cc->name);
			return;
		}
		pc->restarts[pc->nrestarts++] = now;
		p->restarting = pc;
		sync_checkers(p);
		return;
	}
	case CHK_ACT_FAILOVER:
		snprintf(why, sizeof(why), "checker %s failed (%s): failing over", cc->name, reason);
		log_warn("%s: %s", p->node, why);
		escalate(p, pc, why);
		return;
	case CHK_ACT_STOP:
		snprintf(why, sizeof(why), "checker %s failed (%s): stopping this node", cc->name, reason);
		log_warn("%s: %s", p->node, why);
		pc->acted = true;
		p->ops.stop(p->ops.arg, why);
		return;
	case CHK_ACT_WAIT:
		snprintf(why, sizeof(why), "checker %s failed (%s): stopping and waiting for it to pass", cc->name,
		         reason);
		log_warn("%s: %s", p->node, why);
		pc->acted = true;
		if (p->ops.wait(p->ops.arg, cc->name, why) == 0) {
			p->waiting = pc;
			sync_checkers(p);
		}
		return;
	}
}

static void on_result(struct checker *c, bool ok, const char *reason, void *arg)
{
	struct pchk *pc = arg;
	struct policy *p = pc->p;

	if (ok) {
		if (pc->acted || checker_failures(c))
			log_info("%s: checker %s passes again (%s)", p->node, pc->cfg->name, reason);
		pc->acted = false;
		if (p->waiting == pc) {
			p->waiting = NULL;
			log_info("%s: checker %s passes again: starting the node", p->node, pc->cfg->name);
			sync_checkers(p);
			p->ops.resume(p->ops.arg, pc->cfg->name);
		}
		return;
	}
	log_warn("%s: checker %s failed (%u in a row): %s", p->node, pc->cfg->name, checker_failures(c), reason);
	if (p->errd_suspended) {
		log_warn("%s: errd is suspended: not acting on checker %s (on_failure %s)", p->node, pc->cfg->name,
		         chk_action_str(pc->cfg->on_failure));
		return;
	}
	if (pc->acted || p->waiting == pc)
		return;
	act(p, pc, reason);
}

struct policy *policy_new(struct event_base *base, const struct config *cfg, const struct policy_ops *ops,
                          const char *node_name)
{
	struct policy *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->cfg = cfg;
	p->ops = *ops;
	p->enabled = true;
	strlcpy_ok(p->node, node_name, sizeof(p->node));
	for (int i = 0; i < cfg->nchecker; i++) {
		struct pchk *pc = &p->chk[i];
		struct checker_cfg cc;
		char err[512];

		pc->p = p;
		pc->cfg = &cfg->checkers[i];
		p->n = i + 1;
		if (to_checker_cfg(pc->cfg, &cc, err, sizeof(err)) < 0) {
			log_error("%s", err);
			policy_free(p);
			return NULL;
		}
		pc->restarts = calloc(pc->cfg->maxloop + 1, sizeof(*pc->restarts));
		pc->c = checker_new(base, &cc, on_result, pc);
		if (!pc->c || !pc->restarts) {
			policy_free(p);
			return NULL;
		}
	}
	return p;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->n; i++) {
		if (p->chk[i].c)
			checker_free(p->chk[i].c);
		free(p->chk[i].restarts);
	}
	free(p);
}

void policy_set_role(struct policy *p, enum policy_role role)
{
	if (p->role == role)
		return;
	log_debug("%s: checkers for role %s", p->node, policy_role_str(role));
	p->role = role;
	sync_checkers(p);
}

void policy_set_enabled(struct policy *p, bool on)
{
	p->enabled = on;
	if (!on)
		p->waiting = NULL;
	sync_checkers(p);
}

void policy_set_errd_suspended(struct policy *p, bool suspended)
{
	p->errd_suspended = suspended;
	/* Failures seen while suspended were not acted on: a resumed errd acts
	 * on the next one. */
	for (int i = 0; i < p->n; i++)
		p->chk[i].acted = false;
}

void policy_restart_done(struct policy *p, bool ok, const char *reason)
{
	struct pchk *pc = p->restarting;
	char why[768];

	if (!pc)
		return;
	p->restarting = NULL;
	if (ok) {
		log_info("%s: checker %s: restart done; checking again", p->node, pc->cfg->name);
		sync_checkers(p);
		return;
	}
	snprintf(why, sizeof(why), "checker %s: the restart failed (%s): failing over", pc->cfg->name,
	         reason && *reason ? reason : "?");
	log_warn("%s: %s", p->node, why);
	sync_checkers(p);
	escalate(p, pc, why);
}

void policy_cancel_wait(struct policy *p)
{
	if (!p->waiting)
		return;
	p->waiting = NULL;
	sync_checkers(p);
}

json_t *policy_status(const struct policy *p)
{
	json_t *a = json_array();
	uint64_t now = mono_ms();

	for (int i = 0; i < p->n; i++) {
		const struct pchk *pc = &p->chk[i];
		unsigned restarts = 0;

		for (unsigned k = 0; k < pc->nrestarts; k++)
			restarts += now - pc->restarts[k] < pc->cfg->loop_window_ms;
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:b, s:s, s:s}",
		                                   "name", pc->cfg->name,
		                                   "type", checker_type_str(checker_get_type(pc->c)),
		                                   "state", checker_state_str(checker_state(pc->c)),
		                                   "failures", (json_int_t)checker_failures(pc->c),
		                                   "restarts", (json_int_t)restarts,
		                                   "reason", checker_reason(pc->c),
		                                   "running", pc->running,
		                                   "when", res_when_str(pc->cfg->when),
		                                   "on_failure", chk_action_str(pc->cfg->on_failure)));
	}
	return a;
}

int policy_count(const struct policy *p)
{
	return p->n;
}
