/* vigil-rfs under vigild: the vigil-rfs a killed vigild left running, and
 * the walk behind `vigilctl sync estimate` (contract in rfs_child.h). */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "common/log.h"
#include "resource/rfs_child_int.h"

static void on_est_exit(const struct script_result *r, void *arg)
{
	struct rfs_child *c = arg;
	void (*done)(uint64_t, uint64_t, bool, const char *, void *) = c->est_done;
	json_t *j = r->ok ? json_loads(r->tail, 0, NULL) : NULL;
	json_t *f = json_object_get(j, "files"), *b = json_object_get(j, "bytes");
	json_t *full = json_object_get(j, "full_copy");
	char err[SCRIPT_TAIL_MAX + 64];

	c->est = NULL;
	c->est_done = NULL;
	if (json_is_integer(f) && json_is_integer(b)) {
		done((uint64_t)json_integer_value(f), (uint64_t)json_integer_value(b),
		     !json_is_false(full), NULL, c->est_arg);
	} else {
		snprintf(err, sizeof(err), "walking the replicated dirs failed: %s",
		         r->tail[0] ? r->tail : "no output");
		done(0, 0, true, err, c->est_arg);
	}
	json_decref(j);
}

int rfsc_estimate(struct rfs_child *c, void (*done)(uint64_t files, uint64_t bytes, bool full_copy,
                                                    const char *err, void *arg), void *arg)
{
	char *cmd;
	int e = 0;

	if (c->est || !(cmd = malloc(CMD_MAX)))
		return -1;
	snprintf(cmd, CMD_MAX, "exec");
	e |= rfsc_add_arg(cmd, CMD_MAX, c->exe);
	e |= rfsc_add_arg(cmd, CMD_MAX, "estimate");
	for (int i = 0; i < c->cfg->nrepl_dirs; i++)
		e |= rfsc_add_arg(cmd, CMD_MAX, c->cfg->repl_dirs[i]);
	for (int i = 0; i < c->cfg->nrepl_exclude; i++) {
		e |= rfsc_add_arg(cmd, CMD_MAX, "--exclude");
		e |= rfsc_add_arg(cmd, CMD_MAX, c->cfg->repl_exclude[i]);
	}
	e |= rfsc_add_arg(cmd, CMD_MAX, "--state");
	e |= rfsc_add_arg(cmd, CMD_MAX, c->state);
	c->est = e ? NULL : script_run("vigil-rfs estimate", cmd, NULL, ESTIMATE_TIMEOUT_MS, on_est_exit, c);
	free(cmd);
	if (!c->est)
		return -1;
	script_quiet(c->est);
	c->est_done = done;
	c->est_arg = arg;
	return 0;
}

void rfsc_drop_adopted(struct rfs_child *c)
{
	if (c->pidfd_ev)
		event_free(c->pidfd_ev);
	if (c->pidfd >= 0)
		close(c->pidfd);
	c->pidfd_ev = NULL;
	c->pidfd = -1;
	c->adopted = 0;
}

/* Not our child: its exit is seen through a pidfd, without a status. */
static void on_adopted_exit(evutil_socket_t fd, short what, void *arg)
{
	struct rfs_child *c = arg;
	struct script_result r = { .exit_code = -1 };

	(void)fd;
	(void)what;
	rfsc_drop_adopted(c);
	snprintf(r.tail, sizeof(r.tail), "a vigil-rfs adopted from an earlier vigild");
	rfsc_on_exit(&r, c);
}

/* A vigil-rfs started by a vigild that was killed goes on serving (as the
 * resources do): take it over rather than start a second one over it. */
void rfsc_adopt(struct rfs_child *c, struct event_base *base)
{
	json_t *j = json_load_file(c->status_path, 0, NULL);
	const char *r = json_string_value(json_object_get(j, "role"));
	json_int_t pid = json_integer_value(json_object_get(j, "pid"));
	char path[64], comm[32] = "", role[16];
	FILE *f;

	snprintf(role, sizeof(role), "%s", r ? r : "");
	json_decref(j);
	if (role[0] && pid > 1 && pid < INT32_MAX) {
		char stat[256] = "", *paren;

		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
		if ((f = fopen(path, "r"))) {
			if (!fgets(comm, sizeof(comm), f))
				comm[0] = 0;
			fclose(f);
		}
		/* A killed one may linger as a zombie: "pid (comm) Z ...". */
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		if ((f = fopen(path, "r"))) {
			if (!fgets(stat, sizeof(stat), f))
				stat[0] = 0;
			fclose(f);
		}
		paren = strrchr(stat, ')');
		if (!paren || paren[1] != ' ' || paren[2] == 'Z' || paren[2] == 'X')
			comm[0] = 0;
	}
	if (strcmp(comm, "vigil-rfs\n") || (strcmp(role, "prim") && strcmp(role, "second")))
		return;
	c->pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	c->pidfd_ev = c->pidfd >= 0 ? event_new(base, c->pidfd, EV_READ, on_adopted_exit, c) : NULL;
	if (!c->pidfd_ev || event_add(c->pidfd_ev, NULL) < 0) {
		log_error("replication: cannot watch vigil-rfs %s (pid %d) left by an earlier vigild: %s",
		          role, (int)pid, strerror(errno));
		rfsc_drop_adopted(c);
		return;
	}
	c->adopted = (pid_t)pid;
	c->proc = strcmp(role, "prim") ? PROC_SECOND : PROC_PRIM;
	c->hold_told = c->released = 0;
	log_info("replication: took over vigil-rfs %s (pid %d) from an earlier vigild", role, (int)pid);
	/* Its status is read from the loop: the hooks need the owner ready.
	 * Once mounted, its end is a failure like any other (served). */
	rfsc_arm(c->poll_ev, 0);
}
