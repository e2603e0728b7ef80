/* A pool agent's control socket: vigilctl status on a recorder or spare
 * shows what this machine's vigild knows (its link to the master, its
 * recording, its health). The pool itself is the master's to show and to
 * change. */
#include <stdio.h>
#include <string.h>

#include "pool/agent.h"
#include "pool/agent_int.h"

static json_t *agent_status(const struct pool_agent *a)
{
	bool recorder = a->role == PA_RECORDER;

	return json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:b, s:b, s:s, s:b, s:b, s:I, s:I, s:I, s:b}}",
	                 "pool_agent", "name", a->name, "role", pool_agent_role_str(a->role), "group", a->group,
	                 "secondary_group", recorder ? a->secondary : "", "master", a->master,
	                 "connected", a->welcomed, "link", a->welcomed ? "" : a->last_why,
	                 "recording", recorder ? a->recording && !a->stood_down : a->serving[0] != '\0',
	                 "stood_down", recorder && a->stood_down, "serving", recorder ? "" : a->serving,
	                 "disks_failed", a->disks_failed, "watchdog_failed", a->watchdog_failed,
	                 "cameras", (json_int_t)a->cameras, "storage_used", (json_int_t)a->storage_used,
	                 "storage_total", (json_int_t)a->storage_total, "copying", a->copy_task != NULL);
}

void pool_agent_control(void *agent, json_t *req, const char *origin, void (*done)(json_t *resp, void *arg),
                        void *arg)
{
	const struct pool_agent *a = agent;
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	char why[256];
	json_t *st;

	(void)origin;
	if (cmd && !strcmp(cmd, "status") && (st = agent_status(a))) {
		done(json_pack("{s:b, s:o}", "ok", 1, "result", st), arg);
		return;
	}
	snprintf(why, sizeof(why), "this vigild is the pool %s %s: it answers status only; ask the pool master "
	         "(%s: vigilctl there, or its API)", pool_agent_role_str(a->role), a->name, a->master);
	done(json_pack("{s:b, s:s}", "ok", 0, "error", why), arg);
}
