/* vigil-rfs under vigild (contract in rfs_child.h). */
#include "resource/rfs_child.h"
#include "resource/rfs_child_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "common/log.h"
#include "common/util.h"
#include "resource/script.h"
#include "rfs/gen.h"

const char *rfsc_proc_str(enum proc p)
{
	switch (p) {
	case PROC_NONE: return "none";
	case PROC_SECOND: return "second";
	case PROC_PRIM: return "prim";
	}
	return "?";
}

static void set_data(struct rfs_child *c, bool ok, const char *why)
{
	if (c->data_ok != ok || strcmp(c->data_why, why)) {
		if (!ok)
			log_warn("replication: this node's copy is not up to date: %s", why);
		else if (!c->data_ok)
			log_info("replication: this node's copy is up to date");
	}
	c->data_ok = ok;
	snprintf(c->data_why, sizeof(c->data_why), "%s", ok ? "" : why);
}

static void changed(struct rfs_child *c)
{
	if (c->h.changed)
		c->h.changed(c->h.arg);
}

static void progress(struct rfs_child *c)
{
	if (c->h.progress)
		c->h.progress(c->h.arg);
}

/* Appends ' word' to buf, single-quoted for /bin/sh. -1 if it does not fit. */
int rfsc_add_arg(char *buf, size_t len, const char *word)
{
	size_t n = strlen(buf);

	if (n + 3 >= len)
		return -1;
	buf[n++] = ' ';
	buf[n++] = '\'';
	for (const char *p = word; *p; p++) {
		if (*p == '\'') {
			if (n + 5 >= len)
				return -1;
			memcpy(buf + n, "'\\''", 4);
			n += 4;
		} else {
			if (n + 2 >= len)
				return -1;
			buf[n++] = *p;
		}
	}
	buf[n++] = '\'';
	buf[n] = 0;
	return 0;
}

static int add_argf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int add_argf(char *buf, size_t len, const char *fmt, ...)
{
	char word[PATH_MAX + 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(word, sizeof(word), fmt, ap);
	va_end(ap);
	return rfsc_add_arg(buf, len, word);
}

static int build_cmd(struct rfs_child *c, enum proc p, char *cmd, size_t len)
{
	const struct config *cfg = c->cfg;
	char addr[INET_ADDRSTRLEN];
	int e = 0;

	snprintf(cmd, len, "exec");
	e |= rfsc_add_arg(cmd, len, c->exe);
	e |= rfsc_add_arg(cmd, len, p == PROC_PRIM ? "prim" : "second");
	for (int i = 0; i < cfg->nrepl_dirs; i++)
		e |= rfsc_add_arg(cmd, len, cfg->repl_dirs[i]);
	inet_ntop(AF_INET, &cfg->nodes[p == PROC_PRIM ? 1 - c->self : c->self].addr[0], addr,
	          sizeof(addr));
	e |= rfsc_add_arg(cmd, len, p == PROC_PRIM ? "--peer" : "--listen");
	e |= add_argf(cmd, len, "%s:%u", addr, (unsigned)cfg->repl_port);
	e |= rfsc_add_arg(cmd, len, "--secret");
	e |= rfsc_add_arg(cmd, len, cfg->secret_file);
	e |= rfsc_add_arg(cmd, len, "--state");
	e |= rfsc_add_arg(cmd, len, c->state);
	e |= rfsc_add_arg(cmd, len, "--status");
	e |= rfsc_add_arg(cmd, len, c->status_path);
	e |= rfsc_add_arg(cmd, len, "--cluster");
	e |= rfsc_add_arg(cmd, len, cfg->cluster_name);
	e |= rfsc_add_arg(cmd, len, "--node");
	e |= rfsc_add_arg(cmd, len, cfg->nodes[c->self].name);
	e |= rfsc_add_arg(cmd, len, "--ack-timeout");
	e |= add_argf(cmd, len, "%u", (unsigned)cfg->repl_ack_timeout_ms);
	/* SECOND too: a reintegration's pruning keeps its excluded files. */
	for (int i = 0; i < cfg->nrepl_exclude; i++) {
		e |= rfsc_add_arg(cmd, len, "--exclude");
		e |= rfsc_add_arg(cmd, len, cfg->repl_exclude[i]);
	}
	if (p == PROC_PRIM) {
		bool lost = c->h.no_second && c->h.no_second(c->h.arg);

		e |= rfsc_add_arg(cmd, len, "--mode");
		e |= rfsc_add_arg(cmd, len, repl_mode_str(cfg->repl_mode));
		e |= rfsc_add_arg(cmd, len, "--cache");
		e |= rfsc_add_arg(cmd, len, repl_cache_str(cfg->repl_cache));
		e |= rfsc_add_arg(cmd, len, "--connect-timeout");
		e |= add_argf(cmd, len, "%u", lost ? 0u : (unsigned)cfg->repl_connect_timeout_ms);
		e |= rfsc_add_arg(cmd, len, "--hold-on-loss");
	} else {
		e |= rfsc_add_arg(cmd, len, "--checkpoint");
		e |= add_argf(cmd, len, "%u", (unsigned)cfg->repl_checkpoint_ms);
		if (cfg->repl_aside_dir[0]) {
			e |= rfsc_add_arg(cmd, len, "--aside");
			e |= rfsc_add_arg(cmd, len, cfg->repl_aside_dir);
		}
	}
	return e ? -1 : 0;
}

void rfsc_arm(struct event *ev, uint64_t ms)
{
	struct timeval tv;

	ms_to_timeval(ms, &tv);
	evtimer_add(ev, &tv);
}

static void reset_status(struct rfs_child *c)
{
	c->st_valid = c->mounted = c->connected = c->resyncing = false;
	c->rs_total = c->rs_done = c->hold_id = 0;
	c->error[0] = 0;
	/* A file left by the last child must not speak for the next one. */
	if (unlink(c->status_path) < 0 && errno != ENOENT)
		log_warn("replication: %s: %s", c->status_path, strerror(errno));
}

static void start_outdate(struct rfs_child *c);

static int spawn(struct rfs_child *c, enum proc p)
{
	char *cmd = malloc(CMD_MAX);

	if (!cmd || build_cmd(c, p, cmd, CMD_MAX) < 0) {
		snprintf(c->fail, sizeof(c->fail), "vigil-rfs %s: command line too long", rfsc_proc_str(p));
		free(cmd);
		return -1;
	}
	reset_status(c);
	/* Each vigil-rfs numbers its holds from 1. */
	c->hold_told = c->released = 0;
	c->s = script_run(p == PROC_PRIM ? "vigil-rfs prim" : "vigil-rfs second", cmd, NULL, 0,
	                  rfsc_on_exit, c);
	free(cmd);
	if (!c->s) {
		snprintf(c->fail, sizeof(c->fail), "vigil-rfs %s could not be started", rfsc_proc_str(p));
		return -1;
	}
	log_info("replication: vigil-rfs %s started (%d dirs)", rfsc_proc_str(p), c->cfg->nrepl_dirs);
	c->proc = p;
	c->stopping = false;
	c->served = false;
	c->fail[0] = 0;
	rfsc_arm(c->poll_ev, POLL_MS);
	changed(c);
	return 0;
}

static int child_signal(struct rfs_child *c, int sig)
{
	if (c->s)
		return script_signal(c->s, sig);
	if (c->adopted > 0)
		return kill(c->adopted, sig);
	errno = ESRCH;
	return -1;
}

static void begin_stop(struct rfs_child *c)
{
	if (c->stopping || (!c->s && !c->adopted))
		return;
	c->stopping = true;
	log_info("replication: stopping vigil-rfs %s", rfsc_proc_str(c->proc));
	if (child_signal(c, SIGTERM) < 0)
		log_warn("replication: SIGTERM to vigil-rfs: %s", strerror(errno));
	/* The prim drains to SECOND first (up to two ack timeouts). */
	rfsc_arm(c->stop_ev, 2ull * c->cfg->repl_ack_timeout_ms + STOP_EXTRA_MS);
}

static void on_stop_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct rfs_child *c = arg;

	(void)fd;
	(void)what;
	if (c->s || c->adopted) {
		log_error("replication: vigil-rfs %s did not stop in time; killing it", rfsc_proc_str(c->proc));
		if (c->s)
			script_cancel(c->s);
		else
			kill(c->adopted, SIGKILL);
	}
}

void rfsc_on_exit(const struct script_result *r, void *arg)
{
	struct rfs_child *c = arg;
	enum proc was = c->proc;
	char how[SCRIPT_TAIL_MAX + 96];

	if (r->signal)
		snprintf(how, sizeof(how), "killed by signal %d", r->signal);
	else
		snprintf(how, sizeof(how), "exit %d", r->exit_code);
	if (r->tail[0])
		snprintf(how + strlen(how), sizeof(how) - strlen(how), ": %s", r->tail);
	c->s = NULL;
	c->proc = PROC_NONE;
	evtimer_del(c->poll_ev);
	evtimer_del(c->stop_ev);
	c->mounted = c->connected = c->resyncing = false;
	c->hold_id = 0;
	if (c->outdate_pending) {
		/* The second is gone: the mark cannot be overwritten now. */
		log_info("replication: vigil-rfs %s ended (%s)", rfsc_proc_str(was), how);
		c->stopping = false;
		start_outdate(c);
		changed(c);
		return;
	}
	if (c->stopping) {
		log_info("replication: vigil-rfs %s stopped (%s)", rfsc_proc_str(was), how);
		c->stopping = false;
		c->backoff_ms = 0;
		/* Stopped to read a new mark (outdate): the role still wants one. */
		if (was == PROC_SECOND && c->want == ROLE_SECOND)
			rfsc_arm(c->respawn_ev, 0);
		changed(c);
		progress(c);
		return;
	}
	log_error("replication: vigil-rfs %s ended by itself (%s)", rfsc_proc_str(was), how);
	snprintf(c->error, sizeof(c->error), "vigil-rfs %s ended (%s)", rfsc_proc_str(was), how);
	changed(c);
	if (was == PROC_PRIM && c->served) {
		if (c->h.fatal)
			c->h.fatal(c->error, c->h.arg);
		return;
	}
	if (was == PROC_PRIM) {
		snprintf(c->fail, sizeof(c->fail), "%s", c->error);
		progress(c);
		return;
	}
	/* A SECOND keeps trying: the PRIM records meanwhile. */
	c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : RESPAWN_MIN_MS;
	if (c->backoff_ms > RESPAWN_MAX_MS)
		c->backoff_ms = RESPAWN_MAX_MS;
	if (c->want == ROLE_SECOND)
		rfsc_arm(c->respawn_ev, c->backoff_ms);
}

static void on_respawn(evutil_socket_t fd, short what, void *arg)
{
	struct rfs_child *c = arg;

	(void)fd;
	(void)what;
	if (c->aux || c->outdate_pending) {
		/* After the outdate or forcestart under way. */
		rfsc_arm(c->respawn_ev, 100);
		return;
	}
	if (c->want == ROLE_SECOND && c->proc == PROC_NONE && spawn(c, PROC_SECOND) < 0) {
		log_error("replication: %s", c->fail);
		rfsc_arm(c->respawn_ev, RESPAWN_MAX_MS);
	}
}

static void read_status(struct rfs_child *c)
{
	json_error_t jerr;
	json_t *j = json_load_file(c->status_path, 0, &jerr), *rs;
	const char *role, *link, *err;
	bool was_mounted = c->mounted, was_ok = c->data_ok;
	json_int_t hold = 0;

	if (!j)
		return;         /* not written yet, or being replaced */
	role = json_string_value(json_object_get(j, "role"));
	if (!role || strcmp(role, rfsc_proc_str(c->proc))) {
		json_decref(j);
		return;
	}
	link = json_string_value(json_object_get(j, "link"));
	err = json_string_value(json_object_get(j, "error"));
	c->st_valid = true;
	c->connected = link && !strcmp(link, "connected");
	snprintf(c->error, sizeof(c->error), "%s", err ? err : "");
	if (c->proc == PROC_PRIM) {
		c->mounted = json_is_true(json_object_get(j, "mounted"));
		hold = json_integer_value(json_object_get(j, "hold"));
		rs = json_object_get(j, "resync");
		c->resyncing = json_is_object(rs);
		c->rs_total = (uint64_t)json_integer_value(json_object_get(rs, "bytes_total"));
		c->rs_done = (uint64_t)json_integer_value(json_object_get(rs, "bytes_done"));
		if (c->mounted)
			set_data(c, true, "");
	} else {
		c->uptodate = json_is_true(json_object_get(j, "uptodate"));
		/* A second stopped for an outdate may still say it was up to
		 * date: that is what the mark undoes, so it must not win. */
		bool marking = c->outdate_pending || c->aux_outdate;

		if (c->uptodate && !marking)
			set_data(c, true, "");
		else if (!c->uptodate && !marking && (c->data_ok || !c->data_why[0]))
			set_data(c, false, c->connected ? "a reintegration from the PRIM is not finished"
			                               : "the copy is not the PRIM's (not reintegrated)");
	}
	json_decref(j);
	c->hold_id = hold > 0 ? (uint64_t)hold : 0;
	if (c->mounted && !was_mounted) {
		c->served = true;
		log_info("replication: %d dirs mounted and served", c->cfg->nrepl_dirs);
		progress(c);
	}
	if (c->hold_id && c->hold_id != c->hold_told && c->hold_id != c->released) {
		c->hold_told = c->hold_id;
		if (c->h.hold)
			c->h.hold(c->hold_id, c->h.arg);
	}
	if (was_ok != c->data_ok)
		changed(c);
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
	struct rfs_child *c = arg;

	(void)fd;
	(void)what;
	if (c->proc == PROC_NONE)
		return;
	read_status(c);
	if (c->proc != PROC_NONE)
		rfsc_arm(c->poll_ev, c->proc == PROC_PRIM && !c->mounted ? POLL_FAST_MS : POLL_MS);
}

static void finish_outdate(struct rfs_child *c, bool ok)
{
	int n = c->now;
	typeof(c->ow[0]) ow[OUTDATE_WAITERS];

	memcpy(ow, c->ow, sizeof(ow));
	c->now = 0;
	for (int i = 0; i < n; i++)
		ow[i].done(ok, ow[i].arg);
}

static void on_aux_exit(const struct script_result *r, void *arg)
{
	struct rfs_child *c = arg;
	bool outdate = c->aux_outdate;

	c->aux = NULL;
	c->aux_outdate = false;
	if (outdate) {
		if (!r->ok)
			log_error("replication: marking this copy outdated failed: %s",
			          r->tail[0] ? r->tail : "no output");
		finish_outdate(c, r->ok);
		/* A new second reads the mark. */
		if (c->want == ROLE_SECOND && c->proc == PROC_NONE)
			rfsc_arm(c->respawn_ev, 0);
	} else if (!r->ok) {
		snprintf(c->fail, sizeof(c->fail), "forcestart of the replicated data failed: %.512s",
		         r->tail[0] ? r->tail : "no output");
	}
	progress(c);
}

static int run_aux(struct rfs_child *c, const char *what)
{
	char cmd[PATH_MAX * 2 + 128] = "exec";
	int e = 0;

	e |= rfsc_add_arg(cmd, sizeof(cmd), c->exe);
	e |= rfsc_add_arg(cmd, sizeof(cmd), what);
	e |= rfsc_add_arg(cmd, sizeof(cmd), "--state");
	e |= rfsc_add_arg(cmd, sizeof(cmd), c->state);
	if (!strcmp(what, "outdate") && c->outdate_full)
		e |= rfsc_add_arg(cmd, sizeof(cmd), "--full");
	if (!strcmp(what, "forcestart")) {
		e |= rfsc_add_arg(cmd, sizeof(cmd), "--peer-name");
		e |= rfsc_add_arg(cmd, sizeof(cmd), c->cfg->nodes[1 - c->self].name);
	}
	if (e)
		return -1;
	c->aux = script_run(what, cmd, NULL, AUX_TIMEOUT_MS, on_aux_exit, c);
	c->aux_outdate = c->aux && !strcmp(what, "outdate");
	if (c->aux_outdate)
		c->outdate_full = false;
	return c->aux ? 0 : -1;
}

static void start_outdate(struct rfs_child *c)
{
	c->outdate_pending = false;
	if (run_aux(c, "outdate") < 0) {
		log_error("replication: vigil-rfs outdate could not be run");
		finish_outdate(c, false);
		if (c->want == ROLE_SECOND && c->proc == PROC_NONE)
			rfsc_arm(c->respawn_ev, 0);
	}
}

enum rfsc_run rfsc_want(struct rfs_child *c, enum role r, char *reason, size_t len)
{
	if (!c->cfg->repl_enabled)
		return RFSC_DONE;
	if (c->want != r)
		log_debug("replication: wanted %s (running %s)", role_str(r), rfsc_proc_str(c->proc));
	c->want = r;
	if (c->aux)
		return RFSC_WAIT;
	switch (r) {
	case ROLE_PRIM:
		if (c->proc == PROC_PRIM) {
			/* One on its way out is not serving: a new one follows. */
			if (c->mounted && !c->stopping)
				return RFSC_DONE;
			return RFSC_WAIT;
		}
		if (c->proc == PROC_SECOND) {
			begin_stop(c);
			return RFSC_WAIT;
		}
		if (c->fail[0]) {
			snprintf(reason, len, "replication: %s", c->fail);
			c->fail[0] = 0;
			return RFSC_FAIL;
		}
		if (c->force) {
			c->force = false;
			if (run_aux(c, "forcestart") < 0) {
				snprintf(reason, len, "replication: vigil-rfs forcestart could not be run");
				return RFSC_FAIL;
			}
			return RFSC_WAIT;
		}
		if (spawn(c, PROC_PRIM) < 0) {
			snprintf(reason, len, "replication: %s", c->fail);
			c->fail[0] = 0;
			return RFSC_FAIL;
		}
		return RFSC_WAIT;
	case ROLE_SECOND:
		c->force = false;
		if (c->proc == PROC_PRIM) {
			begin_stop(c);
			return RFSC_WAIT;
		}
		c->fail[0] = 0;
		if (c->proc == PROC_NONE && !evtimer_pending(c->respawn_ev, NULL) &&
		    spawn(c, PROC_SECOND) < 0) {
			log_error("replication: %s; trying again", c->fail);
			rfsc_arm(c->respawn_ev, RESPAWN_MAX_MS);
		}
		/* The role does not wait for its copy: SECOND is what a
		 * node is while its copy catches up. */
		return RFSC_DONE;
	case ROLE_NONE:
		c->force = false;
		evtimer_del(c->respawn_ev);
		c->fail[0] = 0;
		if (c->proc == PROC_NONE)
			return RFSC_DONE;
		begin_stop(c);
		return RFSC_WAIT;
	}
	return RFSC_DONE;
}

void rfsc_release(struct rfs_child *c, uint64_t id)
{
	if (c->proc != PROC_PRIM || c->hold_id != id || c->released == id)
		return;
	c->released = id;
	log_info("replication: releasing the changes held (hold %" PRIu64 ")", id);
	if (child_signal(c, SIGUSR1) < 0)
		log_error("replication: SIGUSR1 to vigil-rfs prim: %s", strerror(errno));
}

void rfsc_outdate(struct rfs_child *c, bool full, void (*done)(bool ok, void *arg), void *arg)
{
	char why[96];

	if (!c->cfg->repl_enabled || c->proc == PROC_PRIM || c->now == OUTDATE_WAITERS ||
	    (c->aux && !c->aux_outdate)) {
		done(false, arg);
		return;
	}
	snprintf(why, sizeof(why), "%s went on without it", c->cfg->nodes[1 - c->self].name);
	set_data(c, false, why);
	changed(c);
	if (!c->aux_outdate)
		c->outdate_full |= full;
	c->ow[c->now].done = done;
	c->ow[c->now].arg = arg;
	c->now++;
	/* One mark answers every peer request made while it is written. */
	if (c->aux_outdate || c->outdate_pending)
		return;
	if (c->proc == PROC_SECOND) {
		/* First the second ends: a SETGEN it still applies would
		 * overwrite the mark. */
		c->outdate_pending = true;
		begin_stop(c);
		return;
	}
	start_outdate(c);
}

void rfsc_force(struct rfs_child *c, char *msg, size_t len)
{
	msg[0] = 0;
	if (!c->cfg->repl_enabled || c->data_ok)
		return;
	c->force = true;
	snprintf(msg, len, "this node's copy is not up to date (%s): it serves what it has; "
	         "changes only %s holds are set aside when it returns",
	         c->data_why, c->cfg->nodes[1 - c->self].name);
	log_warn("replication: forcestart: %s", msg);
	set_data(c, true, "");
	changed(c);
}

bool rfsc_peer_uptodate(const struct rfs_child *c, char *why, size_t len)
{
	const char *peer = c->cfg->nodes[1 - c->self].name;

	if (c->proc != PROC_PRIM || !c->st_valid || !c->mounted)
		snprintf(why, len, "this node does not serve the replicated data");
	else if (!c->connected)
		snprintf(why, len, "%s's copy is not connected (%s)", peer,
		         c->error[0] ? c->error : "replication link down");
	else if (c->resyncing)
		snprintf(why, len, "%s's copy is being rebuilt (%" PRIu64 " of %" PRIu64 " bytes sent)",
		         peer, c->rs_done, c->rs_total);
	else if (c->hold_id)
		snprintf(why, len, "the link to %s's copy was just lost", peer);
	else
		return true;
	return false;
}

uint64_t rfsc_hold(const struct rfs_child *c)
{
	return c->proc == PROC_PRIM ? c->hold_id : 0;
}

bool rfsc_configured(const struct rfs_child *c)
{
	return c->cfg->repl_enabled;
}

bool rfsc_may_serve(const struct rfs_child *c, char *why, size_t len)
{
	if (!c->cfg->repl_enabled || c->data_ok || c->proc == PROC_PRIM)
		return true;
	snprintf(why, len, "data not up to date: %s (vigilctl forcestart serves it anyway)", c->data_why);
	return false;
}

const char *rfsc_sync(const struct rfs_child *c)
{
	if (!c->cfg->repl_enabled)
		return "not configured";
	if (c->proc == PROC_PRIM && c->st_valid)
		return c->connected ? "uptodate" : "connection error";
	if (c->proc == PROC_SECOND && c->st_valid) {
		if (!c->data_ok)
			return "not uptodate";
		return c->connected ? "uptodate" : "connection error";
	}
	if (c->want == ROLE_SECOND && c->error[0])
		return "connection error";
	return c->data_ok ? "uptodate" : "not uptodate";
}

bool rfsc_resync(const struct rfs_child *c, uint64_t *total, uint64_t *done)
{
	*total = c->rs_total;
	*done = c->rs_done;
	return c->proc == PROC_PRIM && c->resyncing;
}

const char *rfsc_error(const struct rfs_child *c)
{
	return c->error;
}

static int find_exe(char *out, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0)
		return -1;
	self[n] = 0;
	if ((size_t)snprintf(out, len, "%s/vigil-rfs", dirname(self)) >= len)
		return -1;
	return access(out, X_OK);
}

struct rfs_child *rfsc_new(const struct config *cfg, int self, const struct rfsc_hooks *h)
{
	struct rfs_child *c = calloc(1, sizeof(*c));
	struct event_base *base = script_event_base();
	char meta[PATH_MAX + 16], err[512] = "";
	struct rfs_gen g;
	int r;

	if (!c)
		return NULL;
	c->cfg = cfg;
	c->self = self;
	c->h = *h;
	c->want = ROLE_NONE;
	c->data_ok = true;
	c->pidfd = -1;
	if (!cfg->repl_enabled)
		return c;
	if (!base) {
		log_error("replication: no event loop");
		free(c);
		return NULL;
	}
	if (find_exe(c->exe, sizeof(c->exe)) < 0) {
		log_error("replication: vigil-rfs not found next to vigild (%s)", c->exe);
		free(c);
		return NULL;
	}
	/* The generations stay on vigild's own disk: a full data disk must
	 * not stop this copy from being marked outdated. */
	snprintf(c->state, sizeof(c->state), "%s/rfs", cfg->state_dir);
	snprintf(c->status_path, sizeof(c->status_path), "%s/rfs-status.json", cfg->run_dir);
	c->poll_ev = evtimer_new(base, on_poll, c);
	c->stop_ev = evtimer_new(base, on_stop_deadline, c);
	c->respawn_ev = evtimer_new(base, on_respawn, c);
	if (!c->poll_ev || !c->stop_ev || !c->respawn_ev) {
		rfsc_free(c);
		return NULL;
	}
	/* Before the loop runs: the one read of the disk vigild does itself. */
	r = rfs_gen_meta_path(c->state, meta, sizeof(meta)) < 0 ? -1 : rfs_gen_load(meta, &g, err, sizeof(err));
	if (r < 0 && !err[0])
		snprintf(err, sizeof(err), "%.400s: state_dir path too long", c->state);
	if (r < 0)
		set_data(c, false, err);
	else if (r == 1 || g.c == 0)
		set_data(c, false, "this node's copy was never synchronised with the peer");
	else if (g.outdated)
		set_data(c, false, "the peer went on with changes this copy lacks");
	rfsc_adopt(c, base);
	return c;
}

void rfsc_free(struct rfs_child *c)
{
	if (!c)
		return;
	/* vigild going away without stopping it (a second signal): the
	 * service may still use the mounts; the next vigild adopts it. */
	if (c->s)
		script_disown(c->s);
	rfsc_drop_adopted(c);
	if (c->aux)
		script_detach(c->aux);
	if (c->est)
		script_detach(c->est);
	if (c->poll_ev)
		event_free(c->poll_ev);
	if (c->stop_ev)
		event_free(c->stop_ev);
	if (c->respawn_ev)
		event_free(c->respawn_ev);
	free(c);
}
