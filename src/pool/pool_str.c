/* Names of the pool's values: status output, the failover log, the tests
 * and docs/pool.md use them; the parse functions read the config and the
 * API. */
#include "pool/pool_sm.h"

#include <string.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const rec_states[POOL_R__COUNT] = {
	"OFFLINE", "OK", "LOST", "DOWN", "QUEUED", "FAILING_OVER", "FAILED_OVER", "BACK", "FAILING_BACK", "COPYING",
};
static const char *const spare_states[POOL_S__COUNT] = {
	"OFFLINE", "FREE", "STARTING", "SERVING", "LOST", "STOPPING", "COPYING", "FAILED",
};
static const char *const links[POOL_LINK__COUNT] = { "down", "up", "disk", "watchdog", "held" };
static const char *const triggers[POOL_T__COUNT] = {
	"none", "lost", "absent", "disk", "watchdog", "manual", "spare-lost",
};
static const char *const events[POOL_E__COUNT] = {
	"rec-up", "rec-lost", "rec-disk", "rec-watchdog", "rec-timeout", "failover", "failback", "copy",
	"enable", "disable", "spare-up", "spare-lost", "spare-timeout", "spare-started", "spare-start-failed",
	"spare-stopped", "copy-done", "copy-failed",
};
static const char *const rec_events[POOL_RE__COUNT] = {
	"up", "lost", "disk", "watchdog", "timeout", "cmd-failover", "cmd-failback", "cmd-copy", "enable",
	"disable", "spare-started", "spare-failed", "spare-stopped", "spare-gone", "spare-back", "copy-done",
	"copy-failed", "held",
};
static const char *const spare_events[POOL_SE__COUNT] = {
	"up-idle", "up-running", "up-stale", "lost", "timeout", "started", "start-failed", "stopped",
	"copy-done", "copy-failed", "assign", "release", "copy", "abort-copy", "swap",
};
static const char *const actions[POOL_A__COUNT] = {
	"arm-recorder", "arm-spare", "start-spare", "stop-spare", "mark-broken", "resume", "start-copy",
	"stop-copy", "swap", "log", "notify",
};
static const char *const log_whats[POOL_LOG__COUNT] = { "none", "failover", "failback", "copy", "swap" };
static const char *const log_results[POOL_RES__COUNT] = {
	"started", "queued", "done", "failed", "skipped", "paused",
};
static const char *const statuses[POOL_STATUS__COUNT] = { "ok", "ignored", "refused", "error" };
static const char *const roles[POOL_ROLE__COUNT] = { "viewer", "operator", "admin" };
static const char *const failbacks[POOL_FAILBACK__COUNT] = { "auto", "manual" };
static const char *const afters[POOL_AFTER__COUNT] = { "failback", "swap" };
static const char *const kinds[POOL_K__COUNT] = { "move", "keep", "ignore", "refuse", "decide" };
static const char *const decisions[POOL_D__COUNT] = {
	"none", "need-spare", "manual", "return", "give-back", "copy",
};
static const char *const rec_acts[] = {
	"arm", "resume", "mark-broken", "abort-copy", "hold-copy", "keep-place",
};
static const char *const spare_acts[] = { "start", "stop", "copy", "stop-copy", "arm", "owe", "paid" };

#define NAME(table, v) ((unsigned)(v) < COUNT(table) ? (table)[v] : "?")

const char *pool_rec_state_str(enum pool_rec_state s) { return NAME(rec_states, s); }
const char *pool_spare_state_str(enum pool_spare_state s) { return NAME(spare_states, s); }
const char *pool_link_str(enum pool_link l) { return NAME(links, l); }
const char *pool_trigger_str(enum pool_trigger t) { return NAME(triggers, t); }
const char *pool_event_str(enum pool_event_type t) { return NAME(events, t); }
const char *pool_rec_event_str(enum pool_rec_event e) { return NAME(rec_events, e); }
const char *pool_spare_event_str(enum pool_spare_event e) { return NAME(spare_events, e); }
const char *pool_action_str(enum pool_action_type a) { return NAME(actions, a); }
const char *pool_log_what_str(enum pool_log_what w) { return NAME(log_whats, w); }
const char *pool_log_result_str(enum pool_log_result r) { return NAME(log_results, r); }
const char *pool_status_str(enum pool_status s) { return NAME(statuses, s); }
const char *pool_role_str(enum pool_role r) { return NAME(roles, r); }
const char *pool_failback_str(enum pool_failback f) { return NAME(failbacks, f); }
const char *pool_after_str(enum pool_after a) { return NAME(afters, a); }
const char *pool_kind_str(enum pool_kind k) { return NAME(kinds, k); }
const char *pool_decision_str(enum pool_decision d) { return NAME(decisions, d); }

/* One bit set, and a known one: its name. */
static const char *bit_name(unsigned v, const char *const *names, unsigned n)
{
	if (v == 0 || (v & (v - 1)) != 0)
		return "?";
	for (unsigned i = 0; i < n; i++)
		if (v == 1u << i)
			return names[i];
	return "?";
}

const char *pool_rec_act_str(enum pool_rec_act a)
{
	return bit_name((unsigned)a, rec_acts, COUNT(rec_acts));
}

const char *pool_spare_act_str(enum pool_spare_act a)
{
	return bit_name((unsigned)a, spare_acts, COUNT(spare_acts));
}

static int parse(const char *s, const char *const *names, int n)
{
	for (int i = 0; s && i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

int pool_role_parse(const char *s) { return parse(s, roles, POOL_ROLE__COUNT); }
int pool_failback_parse(const char *s) { return parse(s, failbacks, POOL_FAILBACK__COUNT); }
int pool_after_parse(const char *s) { return parse(s, afters, POOL_AFTER__COUNT); }
