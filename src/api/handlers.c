#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/auth.h"
#include "api/cert_watch.h"
#include "api/http.h"
#include "api/snapshot.h"
#include "cluster/node.h"
#include "cluster/peerlink.h"
#include "common/log.h"
#include "common/util.h"
#include "pool/master.h"
#include "vigil_build.h"

#define RELAY_TIMEOUT_MS 3000
#define STATUS_RELAY_TIMEOUT_MS 1000
#define LOG_LINES_DEFAULT 200
#define LOG_LINES_MAX 20000
#define LOG_READ_MAX (8u << 20)
/* vigilctl snapshot on the peer, plus the way back. */
#define SNAPSHOT_RELAY_TIMEOUT_MS 130000

struct api {
	struct node *node;
	struct peerlink *link;
	struct auth *auth;
	struct console *console;
	struct cert_watch *certs;
	struct pool_master *pool;
};

struct api *api_new(struct node *node)
{
	struct api *a = calloc(1, sizeof(*a));

	if (a)
		a->node = node;
	return a;
}

void api_free(struct api *a)
{
	free(a);
}

void api_set_link(struct api *a, struct peerlink *link)
{
	a->link = link;
}

void api_set_pool(struct api *a, struct pool_master *pool)
{
	a->pool = pool;
}

void api_set_certs(struct api *a, struct cert_watch *certs)
{
	a->certs = certs;
}

void api_set_console(struct api *a, struct auth *auth, struct console *console)
{
	a->auth = auth;
	a->console = console;
}

static json_t *ok(json_t *result)
{
	return json_pack("{s:b, s:o}", "ok", 1, "result", result ? result : json_object());
}

static json_t *vfail(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static json_t *vfail(const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

static json_t *fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *fail(const char *fmt, ...)
{
	va_list ap;
	json_t *r;

	va_start(ap, fmt);
	r = vfail(fmt, ap);
	va_end(ap);
	return r;
}

/* One request in flight, possibly waiting for the peer. */
struct call {
	struct api *a;
	json_t *req;
	char cmd[32];
	char origin[160];
	bool relayed;
	api_done_cb done;
	void *arg;
	json_t *local_result;       /* for --all and status */
	bool local_ok;
};

static void log_result(struct call *c, json_t *resp)
{
	const char *target = json_string_value(json_object_get(c->req, "node"));
	const char *mode = json_string_value(json_object_get(c->req, "mode"));
	bool all = json_is_true(json_object_get(c->req, "all"));
	bool good = json_is_true(json_object_get(resp, "ok"));
	const char *err = json_string_value(json_object_get(resp, "error"));
	const char *msg = json_string_value(json_object_get(json_object_get(resp, "result"), "message"));
	char what[160];

	/* Reads change nothing: the commands log is about changes. */
	if (!strcmp(c->cmd, "status") || !strcmp(c->cmd, "log") || !strcmp(c->cmd, "info"))
		return;
	if (!strcmp(c->cmd, "pool")) {
		const char *act = json_string_value(json_object_get(c->req, "action"));
		const char *rec = json_string_value(json_object_get(c->req, "recorder"));
		const char *role = json_string_value(json_object_get(c->req, "role"));

		if (!act || !strcmp(act, "status") || !strcmp(act, "log") || !strcmp(act, "queue"))
			return;
		log_command("%s%s: pool %.32s %.64s%s%.16s -> %s%s", c->relayed ? "relayed from " : "", c->origin, act,
		            rec ? rec : "", role ? " as " : "", role ? role : "", good ? "ok" : "refused: ",
		            good ? "" : (err ? err : "?"));
		return;
	}
	snprintf(what, sizeof(what), "%s%s%s%s%s", c->cmd, mode ? " " : "", mode ? mode : "",
	         all ? " --all" : target ? " --node " : "", !all && target ? target : "");
	log_command("%s%s: %s -> %s%s", c->relayed ? "relayed from " : "", c->origin, what,
	            good ? "ok" : "refused: ", good ? "" : (err ? err : "?"));
	if (good && msg)
		log_command("  %s", msg);
}

static void finish(struct call *c, json_t *resp)
{
	log_result(c, resp);
	c->done(resp, c->arg);
	json_decref(c->req);
	json_decref(c->local_result);
	free(c);
}

static const struct {
	const char *name;
	enum sm_event ev;
} actions[] = {
	{ "start", E_START }, { "stop", E_STOP }, { "restart", E_RESTART },
	{ "swap", E_SWAP }, { "forcestart", E_FORCESTART }, { "prim", E_START_PRIM },
	{ "second", E_START_SECOND },
};

/* Runs an action or boot on this node. */
static json_t *run_local(struct api *a, const char *cmd, json_t *req)
{
	char msg[600];
	const char *err = NULL;

	if (!strcmp(cmd, "stopstart")) {
		if (node_stopstart(a->node, &err, msg, sizeof(msg)) < 0)
			return fail("%s: stopstart refused: %s", node_name(a->node), err);
		return ok(json_pack("{s:s, s:s}", "node", node_name(a->node), "message", msg));
	}
	if (!strcmp(cmd, "failover")) {
		const char *mode = json_string_value(json_object_get(req, "mode"));

		if (!mode)
			return fail("failover needs a mode: on or off");
		if (node_set_failover(a->node, mode, msg, sizeof(msg)) < 0)
			return fail("%s", msg);
		return ok(json_pack("{s:s, s:s}", "node", node_name(a->node), "message", msg));
	}
	if (!strcmp(cmd, "checkers") || !strcmp(cmd, "errd")) {
		const char *mode = json_string_value(json_object_get(req, "mode"));
		bool chk = !strcmp(cmd, "checkers");

		if (!mode)
			return fail("%s needs a mode: %s", cmd, chk ? "on or off" : "suspend or resume");
		if ((chk ? node_set_checkers : node_set_errd)(a->node, mode, msg, sizeof(msg)) < 0)
			return fail("%s", msg);
		return ok(json_pack("{s:s, s:s}", "node", node_name(a->node), "message", msg));
	}
	if (!strcmp(cmd, "boot")) {
		const char *mode = json_string_value(json_object_get(req, "mode"));

		if (!mode)
			return fail("boot needs a mode: keep, on or off");
		if (node_set_boot(a->node, mode, msg, sizeof(msg)) < 0)
			return fail("%s", msg);
		return ok(json_pack("{s:s, s:s}", "node", node_name(a->node), "message", msg));
	}
	for (size_t i = 0; i < ARRAY_SIZE(actions); i++) {
		char why[600], warn[600] = "";

		if (strcmp(cmd, actions[i].name))
			continue;
		/* Replication: a swap waits for the SECOND's copy (vigilctl
		 * retries while "wait" says so), unless --nosync. */
		if (actions[i].ev == E_SWAP &&
		    node_rfs_swap_check(a->node, json_is_true(json_object_get(req, "nosync")), why, sizeof(why),
		                        warn, sizeof(warn)) < 0) {
			json_t *r = fail("%s: swap refused: %s", node_name(a->node), why);

			json_object_set_new(r, "wait", json_string("sync"));
			return r;
		}
		if (node_command(a->node, actions[i].ev, &err, msg, sizeof(msg)) < 0)
			return fail("%s: %s refused: %s", node_name(a->node), cmd, err);
		if (warn[0])
			return ok(json_pack("{s:s, s:s, s:s}", "node", node_name(a->node), "message", msg,
			                    "warning", warn));
		return ok(json_pack("{s:s, s:s}", "node", node_name(a->node), "message", msg));
	}
	return fail("unknown command '%s'", cmd);
}

static json_t *relay_req(struct call *c)
{
	json_t *r = json_deep_copy(c->req);

	json_object_set_new(r, "node", json_string(node_peer_name(c->a->node)));
	json_object_del(r, "all");
	json_object_set_new(r, "origin", json_string(c->origin));
	return r;
}

/* A failure to reach the peer at all, told apart from its refusal (the
 * HTTP API answers 502 rather than 409). */
static json_t *unreachable(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *unreachable(const char *fmt, ...)
{
	va_list ap;
	json_t *r;

	va_start(ap, fmt);
	r = vfail(fmt, ap);
	va_end(ap);
	if (r)
		json_object_set_new(r, "unreachable", json_true());
	return r;
}

static void on_relay_single(json_t *resp, const char *err, void *arg)
{
	struct call *c = arg;

	if (!resp) {
		finish(c, unreachable("%s", err));
		return;
	}
	finish(c, json_incref(resp));
}

/* A two-element array, this node's and the peer's objects (both stolen) in
 * config order, so output reads the same on both nodes. */
static json_t *in_config_order(struct api *a, json_t *mine, json_t *theirs)
{
	json_t *arr = json_array();
	bool first = !strcmp(node_config(a->node)->nodes[0].name, node_name(a->node));

	json_array_append_new(arr, first ? mine : theirs);
	json_array_append_new(arr, first ? theirs : mine);
	return arr;
}

/* One node's line of an --all answer: its answer, or err if it gave none. */
static json_t *all_entry(const char *node, json_t *answer, const char *err)
{
	json_t *e = json_pack("{s:s}", "node", node);
	bool good = answer && json_is_true(json_object_get(answer, "ok"));

	json_object_set_new(e, "ok", json_boolean(good));
	if (!answer)
		json_object_set_new(e, "error", json_string(err));
	else if (good)
		json_object_set(e, "message", json_object_get(json_object_get(answer, "result"), "message"));
	else
		json_object_set(e, "error", json_object_get(answer, "error"));
	return e;
}

static void on_relay_all(json_t *resp, const char *err, void *arg)
{
	struct call *c = arg;
	json_t *mine = all_entry(node_name(c->a->node), c->local_result, NULL);
	json_t *theirs = all_entry(node_peer_name(c->a->node), resp, err);
	bool good = json_is_true(json_object_get(mine, "ok")) && json_is_true(json_object_get(theirs, "ok"));

	finish(c, json_pack("{s:b, s:{s:o}}", "ok", good, "result", "results",
	                    in_config_order(c->a, mine, theirs)));
}

static void on_relay_all_then_local(json_t *resp, const char *err, void *arg)
{
	struct call *c = arg;

	c->local_result = run_local(c->a, c->cmd, c->req);
	on_relay_all(resp, err, c);
}

static json_t *cluster_status(struct call *c, json_t *peer_obj)
{
	return json_pack("{s:s, s:s, s:o}", "cluster", node_config(c->a->node)->cluster_name,
	                 "local", node_name(c->a->node),
	                 "nodes", in_config_order(c->a, node_status_self(c->a->node), peer_obj));
}

static void on_relay_status(json_t *resp, const char *err, void *arg)
{
	struct call *c = arg;
	json_t *peer = NULL;

	if (resp && json_is_true(json_object_get(resp, "ok")) &&
	    json_is_object(json_object_get(resp, "result"))) {
		peer = json_deep_copy(json_object_get(resp, "result"));
		json_object_set_new(peer, "local", json_false());
		json_object_set_new(peer, "reachable", json_boolean(node_peer_reachable(c->a->node)));
	} else {
		log_debug("status: %s did not answer: %s", node_peer_name(c->a->node), err ? err : "refused");
		peer = node_status_peer_view(c->a->node);
	}
	finish(c, ok(cluster_status(c, peer)));
}

/* The last `lines` lines of a log file. */
static json_t *log_tail(const char *path, long lines)
{
	json_t *arr = json_array();
	char *buf = NULL;
	size_t len = 0;
	int r;
	char *start;
	long count = 0;

	if (!path)
		return arr;
	r = read_file(path, LOG_READ_MAX, &buf, &len);
	if (r < 0) {
		free(buf);
		return arr;
	}
	start = buf + len;
	while (start > buf && count <= lines) {
		start--;
		if (*start == '\n' && start != buf + len - 1)
			count++;
	}
	if (count > lines)
		start++;
	for (char *line = start, *nl; line < buf + len; line = nl + 1) {
		nl = memchr(line, '\n', (size_t)(buf + len - line));
		if (!nl)
			nl = buf + len;
		*nl = '\0';
		json_array_append_new(arr, json_string(line));
	}
	free(buf);
	return arr;
}

static json_t *run_log(struct api *a, json_t *req)
{
	const char *which = json_string_value(json_object_get(req, "log"));
	bool verbose = json_is_true(json_object_get(req, "verbose"));
	json_t *jl = json_object_get(req, "lines");
	long lines = LOG_LINES_DEFAULT;
	enum log_file f;

	if (!which)
		which = "module";
	if (jl) {
		if (!json_is_integer(jl) || json_integer_value(jl) < 1 || json_integer_value(jl) > LOG_LINES_MAX)
			return fail("lines must be a whole number from 1 to %d", LOG_LINES_MAX);
		lines = (long)json_integer_value(jl);
	}
	if (!strcmp(which, "module"))
		f = verbose ? LOGF_MODULE_VERBOSE : LOGF_MODULE;
	else if (!strcmp(which, "application"))
		f = LOGF_APPLICATION;
	else if (!strcmp(which, "commands"))
		f = LOGF_COMMANDS;
	else
		return fail("unknown log '%s' (module, application or commands)", which);
	return ok(json_pack("{s:s, s:s, s:b, s:o}", "node", node_name(a->node), "log", which,
	                    "verbose", verbose, "lines", log_tail(log_file_path(f), lines)));
}

static void on_outdated(bool good, void *arg)
{
	struct call *c = arg;

	finish(c, good ? ok(json_pack("{s:s}", "node", node_name(c->a->node)))
	               : fail("%s: its copy could not be marked outdated", node_name(c->a->node)));
}

static void on_sync_done(json_t *res, const char *err, void *arg)
{
	struct call *c = arg;

	finish(c, res ? ok(res) : fail("%s: sync %s: %s", node_name(c->a->node),
	                               json_string_value(json_object_get(c->req, "mode")), err));
}

static const char *const known_cmds[] = { "rfs-outdate", "sync", "status", "start", "stop", "restart", "swap",
                                          "forcestart", "stopstart", "prim", "second", "boot", "failover",
                                          "checkers", "errd", "log", "info", "snapshot", "dump", "password",
                                          "password-hash", "pool" };

/* ---- pool ---- */

/* {"cmd": "pool", "action": ..., "recorder": ..., "role": ...}. The
 * role of a request is admin unless it asks for less: "role" can only
 * lower what the caller may do (a script acting as an operator). */
static json_t *run_pool(struct api *a, json_t *req)
{
	const char *action = json_string_value(json_object_get(req, "action"));
	const char *rec = json_string_value(json_object_get(req, "recorder"));
	const char *role_s = json_string_value(json_object_get(req, "role"));
	json_t *jmax = json_object_get(req, "max");
	int role = role_s ? pool_role_parse(role_s) : POOL_ROLE_ADMIN;
	char msg[1400];

	if (!action)
		return fail("pool: \"action\" is missing (status, log, queue, failover, failback, copy, enable, disable)");
	if (role < 0)
		return fail("pool: unknown role '%.64s' (viewer, operator, admin)", role_s);
	if (!strcmp(action, "status"))
		return ok(pool_master_status(a->pool));
	if (!strcmp(action, "queue"))
		return ok(json_pack("{s:o}", "queue", pool_master_queue(a->pool)));
	if (!strcmp(action, "log")) {
		if (jmax && (!json_is_integer(jmax) || json_integer_value(jmax) < 1 || json_integer_value(jmax) > 1000))
			return fail("pool log: \"max\" must be an integer from 1 to 1000");
		return ok(json_pack("{s:o}", "log", pool_master_log(a->pool, jmax ? (int)json_integer_value(jmax) : 1000)));
	}
	if (!rec)
		return fail("pool %.32s: \"recorder\" is missing", action);
	if (pool_master_command(a->pool, action, rec, (enum pool_role)role, msg, sizeof(msg)) < 0)
		return fail("%s", msg);
	return ok(json_pack("{s:s}", "message", msg));
}

/* ---- info, snapshot, password ---- */

static json_t *info_local(struct api *a)
{
	const struct config *cfg = node_config(a->node);
	char host[256] = "", addr[INET_ADDRSTRLEN];
	json_t *nodes = json_array(), *res = json_array(), *chk = json_array(), *dirs = json_array();
	json_t *conf;

	if (gethostname(host, sizeof(host) - 1) < 0)
		snprintf(host, sizeof(host), "?");
	for (int i = 0; i < cfg->nnodes; i++) {
		json_t *addrs = json_array();

		for (int j = 0; j < cfg->nodes[i].naddr; j++)
			json_array_append_new(addrs, json_string(inet_ntop(AF_INET, &cfg->nodes[i].addr[j], addr,
			                                                   sizeof(addr))));
		json_array_append_new(nodes, json_pack("{s:s, s:o}", "name", cfg->nodes[i].name, "addresses", addrs));
	}
	for (int i = 0; i < cfg->nres; i++)
		json_array_append_new(res, json_string(cfg->res[i].name));
	for (int i = 0; i < cfg->nchecker; i++)
		json_array_append_new(chk, json_string(cfg->checkers[i].name));
	for (int i = 0; i < cfg->nrepl_dirs; i++)
		json_array_append_new(dirs, json_string(cfg->repl_dirs[i]));
	conf = json_pack("{s:s, s:o, s:{s:i, s:I, s:I}, s:o, s:o}", "path", cfg->path, "nodes", nodes,
	                 "heartbeat", "port", cfg->hb_port, "interval_ms", (json_int_t)cfg->hb_interval_ms,
	                 "timeout_ms", (json_int_t)cfg->hb_timeout_ms, "resources", res, "checkers", chk);
	if (cfg->vip_enabled)
		json_object_set_new(conf, "vip", json_pack("{s:s, s:i, s:s}", "address",
		                                           inet_ntop(AF_INET, &cfg->vip_addr, addr, sizeof(addr)),
		                                           "prefix", cfg->vip_prefix, "interface", cfg->vip_interface));
	if (cfg->repl_enabled)
		json_object_set_new(conf, "replication", json_pack("{s:o, s:s}", "dirs", dirs, "mode",
		                                                   repl_mode_str(cfg->repl_mode)));
	else
		json_decref(dirs);
	json_object_set_new(conf, "console", json_pack("{s:s, s:s}", "http", console_http_state(a->console),
	                                               "https", console_https_state(a->console)));
	json_object_set_new(conf, "link_tls", json_string(link_tls_str(cfg->link_tls)));
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "node", node_name(a->node), "version", VIGIL_VERSION,
	                 "hostname", host, "cluster", cfg->cluster_name, "peer", node_peer_name(a->node),
	                 "config", conf, "certificates", cert_watch_status(a->certs));
}

static void on_snapshot_made(json_t *result, const char *err, void *arg)
{
	struct call *c = arg;

	if (result && !strcmp(c->cmd, "dump"))
		json_object_set_new(result, "message", json_sprintf("%s: dump written to %s", node_name(c->a->node),
		                                                     json_string_value(json_object_get(result, "path"))));
	finish(c, result ? ok(result) : fail("%s: %s: %s", node_name(c->a->node), c->cmd, err));
}

static void run_snapshot(struct call *c)
{
	char err[400];
	bool dump = !strcmp(c->cmd, "dump");

	if ((dump ? snapshot_dump : snapshot_make)(node_config(c->a->node), node_name(c->a->node), on_snapshot_made, c, err,
	                  sizeof(err)) < 0)
		finish(c, fail("%s: %s: %s", node_name(c->a->node), c->cmd, err));
}

static void on_peer_hash(json_t *resp, const char *err, void *arg)
{
	struct call *c = arg;
	const char *peer = node_peer_name(c->a->node);

	if (resp && json_is_true(json_object_get(resp, "ok"))) {
		finish(c, ok(json_pack("{s:s, s:s}", "node", node_name(c->a->node), "message",
		                       "the password is changed on both nodes")));
		return;
	}
	if (!resp)
		finish(c, unreachable("the password is changed on %s only: %s: %s (change it again once %s is back)",
		                      node_name(c->a->node), peer, err, peer));
	else
		finish(c, fail("the password is changed on %s only: %s refused it: %s", node_name(c->a->node), peer,
		               json_string_value(json_object_get(resp, "error"))));
}

static void on_password_written(enum auth_result r, const char *why, void *arg)
{
	struct call *c = arg;
	json_t *req;

	if (r != AUTH_OK) {
		finish(c, fail("%s: the password could not be changed: %s", node_name(c->a->node), why));
		return;
	}
	/* Whoever logged in with the old password (perhaps the reason it was
	 * changed) is out: every session on this node ends, the peer's when
	 * its copy is written. */
	auth_logout_all(c->a->auth);
	log_info("console password changed: every console session ended");
	if (c->relayed) {
		finish(c, ok(json_pack("{s:s}", "node", node_name(c->a->node))));
		return;
	}
	if (!c->a->link) {
		on_peer_hash(NULL, "no peer link", c);
		return;
	}
	/* The hash, not the password, crosses to the peer: both files hold the
	 * same line, as the rules ask. */
	req = json_pack("{s:s, s:s, s:s, s:s}", "cmd", "password-hash", "hash", auth_last_hash(c->a->auth), "node",
	                node_peer_name(c->a->node), "origin", c->origin);
	peerlink_request(c->a->link, req, RELAY_TIMEOUT_MS, on_peer_hash, c);
	json_decref(req);
}

static void run_password(struct call *c)
{
	const char *pw = json_string_value(json_object_get(c->req, "password"));
	const char *hash = json_string_value(json_object_get(c->req, "hash"));
	const char *rule;

	if (!c->a->auth) {
		finish(c, fail("the console is not running on %s", node_name(c->a->node)));
		return;
	}
	if (!strcmp(c->cmd, "password-hash")) {
		if (!c->relayed) {
			finish(c, fail("password-hash is sent by the peer's vigild only"));
			return;
		}
		rule = hash ? auth_hash_check(hash) : "\"hash\" is missing";
		if (rule || auth_set_hash(c->a->auth, hash, on_password_written, c) < 0)
			finish(c, fail("%s: password hash refused: %s", node_name(c->a->node), rule ? rule : "busy"));
		return;
	}
	rule = pw ? auth_password_rule(pw) : "\"password\" (a string) is missing";
	if (rule) {
		finish(c, fail("password refused: %s", rule));
		return;
	}
	if (auth_set_password(c->a->auth, pw, on_password_written, c) < 0)
		finish(c, fail("%s: too many password changes under way", node_name(c->a->node)));
}

void api_handle(struct api *a, json_t *req, const char *origin, bool relayed, api_done_cb done, void *arg)
{
	struct call *c = calloc(1, sizeof(*c));
	const char *cmd, *target;
	json_t *jn, *jall;
	bool all, known = false, to_peer;

	if (!c) {
		done(fail("out of memory"), arg);
		return;
	}
	c->a = a;
	c->req = json_incref(req);
	c->relayed = relayed;
	c->done = done;
	c->arg = arg;
	snprintf(c->origin, sizeof(c->origin), "%s", origin);
	if (!json_is_object(req)) {
		finish(c, fail("invalid request: expected a JSON object"));
		return;
	}
	cmd = json_string_value(json_object_get(req, "cmd"));
	if (!cmd) {
		finish(c, fail("invalid request: \"cmd\" (a string) is missing"));
		return;
	}
	snprintf(c->cmd, sizeof(c->cmd), "%.31s", cmd);
	for (size_t i = 0; i < ARRAY_SIZE(known_cmds); i++)
		known = known || !strcmp(cmd, known_cmds[i]);
	if (!known) {
		finish(c, fail("unknown command '%.64s' (known: status, start, stop, restart, swap, forcestart, stopstart, prim, second, boot, failover, checkers, errd, log, sync, info, snapshot, dump, password, pool)", cmd));
		return;
	}
	if (!strcmp(cmd, "password") || !strcmp(cmd, "password-hash")) {
		run_password(c);
		return;
	}
	/* The pool master runs where the service runs: ask there. */
	if (!strcmp(cmd, "pool")) {
		json_t *r;

		if (a->pool && pool_master_active(a->pool)) {
			finish(c, run_pool(a, req));
			return;
		}
		if (relayed || !a->link || !node_peer_primary(a->node)) {
			finish(c, fail(a->pool ? "pool: the pool master runs on the node that runs the service, and "
			                         "neither node does now"
			                       : "pool: this cluster has no [pool] role = master"));
			return;
		}
		r = relay_req(c);
		peerlink_request(a->link, r, RELAY_TIMEOUT_MS, on_relay_single, c);
		json_decref(r);
		return;
	}
	jn = json_object_get(req, "node");
	jall = json_object_get(req, "all");
	if (jn && !json_is_string(jn)) {
		finish(c, fail("invalid request: \"node\" must be a string"));
		return;
	}
	if (jall && !json_is_boolean(jall)) {
		finish(c, fail("invalid request: \"all\" must be true or false"));
		return;
	}
	target = jn ? json_string_value(jn) : node_name(a->node);
	all = json_is_true(jall);
	if (strcmp(target, node_name(a->node)) && strcmp(target, node_peer_name(a->node))) {
		finish(c, fail("unknown node '%.64s' (nodes: %s, %s)", target, node_config(a->node)->nodes[0].name,
		               node_config(a->node)->nodes[1].name));
		return;
	}
	to_peer = strcmp(target, node_name(a->node)) != 0;

	if (!strcmp(cmd, "status")) {
		if (relayed || json_is_true(json_object_get(req, "self"))) {
			finish(c, ok(node_status_self(a->node)));
			return;
		}
		if (a->link && node_peer_reachable(a->node)) {
			json_t *r = json_pack("{s:s, s:b}", "cmd", "status", "self", 1);

			peerlink_request(a->link, r, STATUS_RELAY_TIMEOUT_MS, on_relay_status, c);
			json_decref(r);
			return;
		}
		on_relay_status(NULL, "not reachable", c);
		return;
	}
	/* Between the two vigild only: the peer's prim goes on without us. */
	if (!strcmp(cmd, "rfs-outdate")) {
		if (!relayed || to_peer) {
			finish(c, fail("rfs-outdate is sent by the peer's vigild only"));
			return;
		}
		node_rfs_outdate(a->node, json_is_true(json_object_get(c->req, "full")), on_outdated, c);
		return;
	}
	/* swap and sync belong to the PRIM: send them there whoever was named. */
	if ((!strcmp(cmd, "swap") || !strcmp(cmd, "sync")) && !jn && !node_is_primary(a->node) &&
	    node_peer_primary(a->node))
		to_peer = true;
	if (relayed && to_peer) {
		finish(c, fail("relay loop: %s was asked to relay to itself", node_name(a->node)));
		return;
	}
	if (!strcmp(cmd, "sync") && !to_peer) {
		const char *mode = json_string_value(json_object_get(req, "mode"));

		if (!mode || (strcmp(mode, "estimate") && strcmp(mode, "full"))) {
			finish(c, fail("sync needs a mode: estimate or full"));
			return;
		}
		node_rfs_sync(a->node, mode, on_sync_done, c);
		return;
	}
	if (!strcmp(cmd, "info") && !to_peer) {
		finish(c, ok(info_local(a)));
		return;
	}
	if ((!strcmp(cmd, "snapshot") || !strcmp(cmd, "dump")) && !to_peer) {
		run_snapshot(c);
		return;
	}
	if (!strcmp(cmd, "log") && !to_peer) {
		finish(c, run_log(a, req));
		return;
	}
	if (all && !relayed && strcmp(cmd, "log") && strcmp(cmd, "swap")) {
		/* The preferred node (listed first) goes first, so that with
		 * "start --all" both nodes starting resolve as the rules say. */
		bool local_first = !strcmp(node_config(a->node)->nodes[0].name, node_name(a->node));
		json_t *r;

		if (local_first)
			c->local_result = run_local(a, cmd, req);
		if (!a->link) {
			if (!local_first)
				c->local_result = run_local(a, cmd, req);
			on_relay_all(NULL, "no peer link", c);
			return;
		}
		r = relay_req(c);
		peerlink_request(a->link, r, RELAY_TIMEOUT_MS, local_first ? on_relay_all : on_relay_all_then_local, c);
		json_decref(r);
		return;
	}
	if (to_peer) {
		json_t *r;

		if (!a->link) {
			finish(c, unreachable("cannot relay to %s: no peer link", target));
			return;
		}
		r = relay_req(c);
		peerlink_request(a->link, r, (!strcmp(cmd, "snapshot") || !strcmp(cmd, "dump")) ? SNAPSHOT_RELAY_TIMEOUT_MS : RELAY_TIMEOUT_MS,
		                 on_relay_single, c);
		json_decref(r);
		return;
	}
	finish(c, run_local(a, cmd, req));
}
