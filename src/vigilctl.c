/* vigilctl: the command line. One JSON request per connection to the local
 * vigild over RUN_DIR/vigild.sock (docs: notes/control-protocol.md). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "vigil_build.h"
#include "vigilctl_call.h"
#include "vigilctl_print.h"
#include "vigilctl_password.h"
#include "vigilctl_pki.h"
#include "vigilctl_setup.h"
#include "vigilctl_snapshot.h"

#define IO_TIMEOUT_S 10
/* A dump runs vigilctl snapshot on the node, relayed perhaps. */
#define DUMP_TIMEOUT_S 140
static int io_timeout_s = IO_TIMEOUT_S;
#define POLL_MS 100
#define WAIT_MAX_S 86400.0
#define SWAP_SYNC_WAIT_S 600.0     /* swap waiting for an up-to-date SECOND */
#define LINES_MAX 1000000

struct opts {
	const char *config;
	const char *node;
	bool json, all, verbose;
	bool wait_set;
	bool nosync;                /* swap --nosync */
	double wait_s;
	long lines;                 /* -1: not given */
	const char *cmd;
	const char *arg;            /* boot mode, log name or pool action */
	const char *arg2;           /* pool: the recorder */
	const char *role;           /* pool --role */
	const char *output;         /* snapshot -o FILE */
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: vigilctl [OPTIONS] COMMAND [ARGS]\n"
		"\n"
		"Commands:\n"
		"  status             both nodes: state, color, reachability, resources, VIP\n"
		"                     (on a pool recorder or spare: its link to the master,\n"
		"                     recording and health; the only command it answers)\n"
		"  start              start the node (it becomes PRIM, SECOND or ALONE)\n"
		"  stop               stop the node: resources stopped, VIP released\n"
		"  restart            stop, then start the node\n"
		"  swap               the SECOND node becomes PRIM, the PRIM node SECOND; with\n"
		"                     [replication], first waits until the SECOND's copy is up\n"
		"                     to date (--wait SECONDS, default 600); --nosync: now,\n"
		"                     the new PRIM serving what its copy has\n"
		"  forcestart         start the node as PRIM even if its data may be stale\n"
		"                     (changes made on the peer since may be lost)\n"
		"  stopstart          stop, then start again: on the PRIM, a failover to the\n"
		"                     SECOND, this node coming back as SECOND\n"
		"  prim               start a stopped node as PRIM (refused if the peer is PRIM)\n"
		"  second             start a stopped node as SECOND\n"
		"  failover on|off    off: if the PRIM is lost, this node does not take over\n"
		"                     by itself (it waits, WAIT red, until failover on or\n"
		"                     forcestart); kept across restarts\n"
		"  checkers on|off    off: no health check runs on the node; kept across restarts\n"
		"  errd suspend|resume\n"
		"                     suspend: checkers run and report, no failure is acted on;\n"
		"                     kept across restarts\n"
		"  boot keep|on|off   what the node does when vigild starts: what it did\n"
		"                     before (keep), start (on) or stay stopped (off)\n"
		"  log [module|application|commands]\n"
		"                     the last lines of a log (default: module)\n"
		"  sync estimate      with [replication]: files and bytes the SECOND's copy\n"
		"                     lacks (what its reintegration would send)\n"
		"  sync full          compare the SECOND's whole copy by block hashes and\n"
		"                     send only what differs\n"
		"  snapshot -o FILE   an archive for support (.tar.gz, .tgz or .zip): status,\n"
		"                     config, scripts, logs, state, system facts; no secret\n"
		"  dump               a snapshot kept on the node (state_dir/dumps, the\n"
		"                     newest 3), for support to fetch later\n"
		"  password           set the console's admin password on both nodes (asked\n"
		"                     twice on a terminal, else one line of stdin): 6 to 32\n"
		"                     letters, digits and ( ) * _ - .\n"
		"  pki [--force] [--days N] [--san NAME|IP]...\n"
		"                     make the cluster CA and both nodes' certificates in\n"
		"                     CONFIG_DIR/pki (docs/pki.md)\n"
		"  cert export DIR    write the CA certificate to DIR/cacert.crt, to trust\n"
		"                     it in browsers\n"
		"  setup secondary|primary|finish|remove\n"
		"                     the setup wizard (vigilctl setup --help)\n"
		"  pool status|queue|log\n"
		"                     the recording pool (docs/pool.md): recorders, spares,\n"
		"                     who serves whom, the queue, the failover log\n"
		"  pool failover|failback|copy|enable|disable RECORDER [--role ROLE]\n"
		"                     move a recorder's cameras to a spare of its group,\n"
		"                     give them back, copy its recordings home, allow or\n"
		"                     forbid its failover; --role viewer|operator acts with\n"
		"                     that role's rights only (failover, failback, copy:\n"
		"                     operator or admin; enable, disable: admin)\n"
		"\n"
		"Options (before or after the command):\n"
		"  -c, --config FILE  configuration file (default %s)\n"
		"      --node NAME    the node the command is about (default: this machine's)\n"
		"      --all          both nodes (start, stop, restart, second, stopstart, boot,\n"
		"                     failover, checkers, errd)\n"
		"      --wait SECONDS after start, stop, restart, swap or forcestart: wait\n"
		"                     until the nodes concerned are stable (not magenta)\n"
		"      --nosync       swap: do not wait for an up-to-date SECOND copy\n"
		"      --json         print the daemon's result as one JSON object\n"
		"      --verbose      log module: the verbose log, debug lines included\n"
		"      --lines N      log: the last N lines (default 200)\n"
		"  -h, --help         this help\n"
		"  -V, --version      the version\n"
		"\n"
		"Exit status: 0 done, 1 vigild refused or failed, 2 usage or configuration\n"
		"error, 3 vigild not reachable, 4 --wait timed out.\n",
		VIGIL_DEFAULT_CONFIG);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("vigilctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n\n", stderr);
	usage(stderr);
	return EXIT_USAGE;
}

static bool is_action(const char *cmd)
{
	static const char *const actions[] = { "start", "stop", "restart", "swap", "forcestart", "stopstart",
		                               "prim", "second" };

	for (size_t i = 0; i < ARRAY_SIZE(actions); i++)
		if (!strcmp(cmd, actions[i]))
			return true;
	return false;
}

/* 0, or an exit status after printing why. */
static int parse_args(int argc, char **argv, struct opts *o)
{
	enum { O_JSON = 256, O_NODE, O_ALL, O_WAIT, O_VERBOSE, O_LINES, O_NOSYNC, O_ROLE };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, O_JSON },
		{ "node", required_argument, NULL, O_NODE },
		{ "all", no_argument, NULL, O_ALL },
		{ "wait", required_argument, NULL, O_WAIT },
		{ "verbose", no_argument, NULL, O_VERBOSE },
		{ "lines", required_argument, NULL, O_LINES },
		{ "nosync", no_argument, NULL, O_NOSYNC },
		{ "role", required_argument, NULL, O_ROLE },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	bool lines_set = false;
	int c, nargs;
	char *end;

	*o = (struct opts){ .config = VIGIL_DEFAULT_CONFIG, .lines = -1 };
	opterr = 0;
	/* '+' is not used: GNU permutation lets options follow the command. */
	while ((c = getopt_long(argc, argv, ":c:hVo:", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case O_JSON:
			o->json = true;
			break;
		case O_NODE:
			o->node = optarg;
			break;
		case O_ALL:
			o->all = true;
			break;
		case O_WAIT:
			errno = 0;
			o->wait_s = strtod(optarg, &end);
			if (errno || end == optarg || *end || !isfinite(o->wait_s) || o->wait_s <= 0 ||
			    o->wait_s > WAIT_MAX_S)
				return usage_error("--wait: expected seconds from 0.1 to %.0f, got '%s'",
						   WAIT_MAX_S, optarg);
			o->wait_set = true;
			break;
		case O_VERBOSE:
			o->verbose = true;
			break;
		case O_NOSYNC:
			o->nosync = true;
			break;
		case O_ROLE:
			o->role = optarg;
			if (strcmp(optarg, "viewer") && strcmp(optarg, "operator") && strcmp(optarg, "admin"))
				return usage_error("--role: expected viewer, operator or admin, got '%s'", optarg);
			break;
		case O_LINES: {
			uint64_t v;

			if (parse_u64(optarg, 1, LINES_MAX, &v) < 0)
				return usage_error("--lines: expected a whole number from 1 to %d, got '%s'",
						   LINES_MAX, optarg);
			o->lines = (long)v;
			lines_set = true;
			break;
		}
		case 'h':
			usage(stdout);
			exit(EXIT_OK);
		case 'o':
			o->output = optarg;
			break;
		case 'V':
			printf("vigilctl %s\n", VIGIL_VERSION);
			exit(EXIT_OK);
		case ':':
			return usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			if (optopt)
				return usage_error("unknown option '-%c'", optopt);
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	nargs = argc - optind;
	if (nargs < 1)
		return usage_error("no command given");
	o->cmd = argv[optind];
	o->arg = nargs > 1 ? argv[optind + 1] : NULL;
	o->arg2 = nargs > 2 ? argv[optind + 2] : NULL;
	if (nargs > (strcmp(o->cmd, "pool") ? 2 : 3))
		return usage_error("%s: unexpected argument '%s'", o->cmd, argv[optind + (strcmp(o->cmd, "pool") ? 2 : 3)]);

	if (!strcmp(o->cmd, "status")) {
		if (o->arg)
			return usage_error("status takes no argument, got '%s'", o->arg);
	} else if (is_action(o->cmd)) {
		if (o->arg)
			return usage_error("%s takes no argument, got '%s'", o->cmd, o->arg);
		if (o->all && (!strcmp(o->cmd, "swap") || !strcmp(o->cmd, "forcestart") || !strcmp(o->cmd, "prim")))
			return usage_error("--all does not apply to %s", o->cmd);
	} else if (!strcmp(o->cmd, "boot")) {
		if (!o->arg)
			return usage_error("boot needs a mode: keep, on or off");
		if (strcmp(o->arg, "keep") && strcmp(o->arg, "on") && strcmp(o->arg, "off"))
			return usage_error("boot: mode must be keep, on or off, got '%s'", o->arg);
	} else if (!strcmp(o->cmd, "failover")) {
		if (!o->arg || (strcmp(o->arg, "on") && strcmp(o->arg, "off")))
			return usage_error("failover needs on or off%s%s%s", o->arg ? ", got '" : "",
			                   o->arg ? o->arg : "", o->arg ? "'" : "");
	} else if (!strcmp(o->cmd, "checkers")) {
		if (!o->arg || (strcmp(o->arg, "on") && strcmp(o->arg, "off")))
			return usage_error("checkers needs on or off%s%s%s", o->arg ? ", got '" : "",
			                   o->arg ? o->arg : "", o->arg ? "'" : "");
	} else if (!strcmp(o->cmd, "errd")) {
		if (!o->arg || (strcmp(o->arg, "suspend") && strcmp(o->arg, "resume")))
			return usage_error("errd needs suspend or resume%s%s%s", o->arg ? ", got '" : "",
			                   o->arg ? o->arg : "", o->arg ? "'" : "");
	} else if (!strcmp(o->cmd, "log")) {
		if (!o->arg)
			o->arg = "module";
		if (strcmp(o->arg, "module") && strcmp(o->arg, "application") && strcmp(o->arg, "commands"))
			return usage_error("log: expected module, application or commands, got '%s'", o->arg);
		if (o->verbose && strcmp(o->arg, "module"))
			return usage_error("--verbose applies to the module log only");
		if (o->all)
			return usage_error("--all does not apply to log");
	} else if (!strcmp(o->cmd, "sync")) {
		if (!o->arg || (strcmp(o->arg, "estimate") && strcmp(o->arg, "full")))
			return usage_error("sync needs estimate or full%s%s%s", o->arg ? ", got '" : "",
			                   o->arg ? o->arg : "", o->arg ? "'" : "");
		if (o->all)
			return usage_error("--all does not apply to sync (it runs where the data is served)");
	} else if (!strcmp(o->cmd, "dump")) {
		if (o->arg)
			return usage_error("dump takes no argument, got '%s'", o->arg);
		if (o->all)
			return usage_error("--all does not apply to dump");
	} else if (!strcmp(o->cmd, "password")) {
		if (o->arg)
			return usage_error("password takes no argument (it is read from stdin, never from "
			                   "the command line)");
		if (o->all || o->node)
			return usage_error("password is changed on both nodes: no --all or --node");
	} else if (!strcmp(o->cmd, "pool")) {
		static const char *const reads[] = { "status", "queue", "log" };
		static const char *const orders[] = { "failover", "failback", "copy", "enable", "disable" };
		bool read = false, order = false;

		for (size_t i = 0; o->arg && i < ARRAY_SIZE(reads); i++)
			read = read || !strcmp(o->arg, reads[i]);
		for (size_t i = 0; o->arg && i < ARRAY_SIZE(orders); i++)
			order = order || !strcmp(o->arg, orders[i]);
		if (!read && !order)
			return usage_error("pool needs status, queue, log, failover, failback, copy, enable or "
			                   "disable%s%s%s", o->arg ? ", got '" : "", o->arg ? o->arg : "",
			                   o->arg ? "'" : "");
		if (order && !o->arg2)
			return usage_error("pool %s needs a recorder's name", o->arg);
		if (read && o->arg2)
			return usage_error("pool %s takes no argument, got '%s'", o->arg, o->arg2);
		if (o->all || o->node)
			return usage_error("pool is asked where the service runs: no --all or --node");
	} else if (!strcmp(o->cmd, "snapshot")) {
		if (o->arg)
			return usage_error("snapshot takes no argument, got '%s' (use -o FILE)", o->arg);
		if (!o->output)
			return usage_error("snapshot needs -o FILE (.tar.gz, .tgz or .zip)");
		if (snapshot_format_of(o->output) < 0)
			return usage_error("snapshot: %s: the file name must end in .tar.gz, .tgz or .zip", o->output);
		if (o->all || o->node)
			return usage_error("snapshot is about this node: no --all or --node");
	} else {
		return usage_error("unknown command '%s'", o->cmd);
	}
	if (o->wait_set && !is_action(o->cmd))
		return usage_error("--wait applies to start, stop, restart, swap, forcestart and stopstart only");
	if ((o->verbose || lines_set) && strcmp(o->cmd, "log"))
		return usage_error("--verbose and --lines apply to log only");
	if (o->all && o->node)
		return usage_error("--all and --node exclude each other");
	if (o->output && strcmp(o->cmd, "snapshot"))
		return usage_error("-o applies to snapshot only");
	if (o->nosync && strcmp(o->cmd, "swap"))
		return usage_error("--nosync applies to swap only");
	if (o->role && strcmp(o->cmd, "pool"))
		return usage_error("--role applies to pool only");
	return 0;
}

/* ---- transport ---- */

static json_t *call(const char *path, json_t *req, struct conn_err *e)
{
	return vigilctl_call(path, req, io_timeout_s, e);
}

/* ---- output ---- */

/* ---- --wait ---- */

/* Names of the nodes an accepted action concerns, into names (a JSON array). */
static json_t *concerned_nodes(const struct opts *o, json_t *res)
{
	json_t *names = json_array(), *results = json_object_get(res, "results"), *r;
	const char *node = json_string_value(json_object_get(res, "node"));
	size_t i;

	if (json_is_array(results)) {
		json_array_foreach(results, i, r)
			if (json_is_true(json_object_get(r, "ok")) && json_is_string(json_object_get(r, "node")))
				json_array_append(names, json_object_get(r, "node"));
	} else if (!strcmp(o->cmd, "swap")) {
		/* Both change roles; an empty list means every node. */
	} else if (node) {
		json_array_append_new(names, json_string(node));
	} else if (o->node) {
		json_array_append_new(names, json_string(o->node));
	}
	return names;
}

static bool concerns(json_t *names, const char *name)
{
	json_t *v;
	size_t i;

	if (!json_array_size(names))
		return true;
	json_array_foreach(names, i, v)
		if (name && !strcmp(json_string_value(v), name))
			return true;
	return false;
}

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int wait_stable(const struct opts *o, const char *sock, json_t *res)
{
	json_t *names = concerned_nodes(o, res);
	uint64_t deadline = mono_ms() + (uint64_t)(o->wait_s * 1000.0 + 0.5);
	char pending[512] = "";
	int rc;

	/* A plain action without "node" in its result concerns the local node. */
	bool local_only = !json_array_size(names) && strcmp(o->cmd, "swap") &&
			  !json_is_array(json_object_get(res, "results"));

	for (;;) {
		json_t *req = json_pack("{s:s, s:s}", "cmd", "status", "client", "vigilctl");
		struct conn_err e = { 0 };
		json_t *st = call(sock, req, &e), *nodes, *n;
		size_t i, len = 0;
		bool stable = true;

		json_decref(req);
		if (!st) {
			fprintf(stderr, "vigilctl: while waiting: %s\n", e.msg);
			rc = e.code;
			break;
		}
		pending[0] = '\0';
		nodes = json_object_get(st, "nodes");
		json_array_foreach(nodes, i, n) {
			const char *name = str_or(n, "name", "?");
			bool local = json_is_true(json_object_get(n, "local"));

			if (local_only ? !local : !concerns(names, name))
				continue;
			if (!strcmp(str_or(n, "color", "?"), "magenta")) {
				stable = false;
				len += (size_t)snprintf(pending + len, len < sizeof(pending) ? sizeof(pending) - len : 0,
							"%s%s (%s, magenta)", len ? ", " : "", name,
							str_or(n, "state", "?"));
				if (len >= sizeof(pending))
					len = sizeof(pending) - 1;
			}
		}
		json_decref(st);
		if (stable) {
			rc = EXIT_OK;
			break;
		}
		if (mono_ms() >= deadline) {
			fprintf(stderr, "vigilctl: still not stable after %g s: %s\n", o->wait_s, pending);
			rc = EXIT_WAIT_TIMEOUT;
			break;
		}
		{
			uint64_t left = deadline - mono_ms();

			sleep_ms(left < POLL_MS ? left : POLL_MS);
		}
	}
	json_decref(names);
	return rc;
}

/* ---- main ---- */

/* For snapshot_run: ctx is the socket path. */
static json_t *snapshot_status(void *ctx, char *err, size_t errlen)
{
	json_t *req = json_pack("{s:s, s:s}", "cmd", "status", "client", "vigilctl"), *res;
	struct conn_err e = { .msg = "out of memory" };

	res = req ? call(ctx, req, &e) : NULL;
	json_decref(req);
	if (!res)
		snprintf(err, errlen, "%s", e.msg);
	return res;
}

static json_t *build_request(const struct opts *o)
{
	json_t *req = json_pack("{s:s, s:s}", "cmd", o->cmd, "client", "vigilctl");

	if (!req)
		return NULL;
	if (o->node)
		json_object_set_new(req, "node", json_string(o->node));
	if (o->all)
		json_object_set_new(req, "all", json_true());
	if (!strcmp(o->cmd, "boot") || !strcmp(o->cmd, "failover") || !strcmp(o->cmd, "checkers") ||
	    !strcmp(o->cmd, "errd") || !strcmp(o->cmd, "sync"))
		json_object_set_new(req, "mode", json_string(o->arg));
	if (o->nosync)
		json_object_set_new(req, "nosync", json_true());
	if (!strcmp(o->cmd, "pool")) {
		json_object_set_new(req, "action", json_string(o->arg));
		if (o->arg2)
			json_object_set_new(req, "recorder", json_string(o->arg2));
		if (o->role)
			json_object_set_new(req, "role", json_string(o->role));
	}
	if (!strcmp(o->cmd, "log")) {
		json_object_set_new(req, "log", json_string(o->arg));
		if (o->verbose)
			json_object_set_new(req, "verbose", json_true());
		if (o->lines > 0)
			json_object_set_new(req, "lines", json_integer(o->lines));
	}
	return req;
}

/* pki and cert have options of their own: found before the global
 * parser sees them. The command's index, or 0. */
static int files_command(int argc, char **argv, const char **config)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) {
			if (i + 1 < argc)
				*config = argv[++i];
			continue;
		}
		if (!strncmp(argv[i], "--config=", 9)) {
			*config = argv[i] + 9;
			continue;
		}
		if (argv[i][0] == '-')
			return 0;
		return !strcmp(argv[i], "pki") || !strcmp(argv[i], "cert") || !strcmp(argv[i], "setup") ? i : 0;
	}
	return 0;
}

static int run_files_command(int argc, char **argv, int at, const char *config)
{
	struct config *cfg;
	char err[1024];
	int rc;

	/* Before setup there is no config to load. */
	if (!strcmp(argv[at], "setup"))
		return vigilctl_setup(config, argc - at, argv + at);
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg) {
		fprintf(stderr, "vigilctl: out of memory\n");
		return EXIT_FAIL;
	}
	if (config_load_flags(config, cfg, CONFIG_NO_SECRET, err, sizeof(err)) < 0) {
		fprintf(stderr, "vigilctl: %s\n", err);
		free(cfg);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[at], "pki")) {
		rc = vigilctl_pki(cfg, argc - at, argv + at);
	} else if (argc - at != 3 || strcmp(argv[at + 1], "export")) {
		fprintf(stderr, "vigilctl: usage: vigilctl [-c FILE] cert export DIR\n");
		rc = EXIT_USAGE;
	} else {
		rc = vigilctl_cert_export(cfg, argv[at + 2]);
	}
	config_free(cfg);
	free(cfg);
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct config *cfg;
	char err[1024], sock[PATH_MAX + 32];
	struct conn_err e = { 0 };
	json_t *req, *res;
	int rc;

	log_init("vigilctl", true, LOG_LVL_WARN);
	{
		const char *config = VIGIL_DEFAULT_CONFIG;
		int at = files_command(argc, argv, &config);

		if (at)
			return run_files_command(argc, argv, at, config);
	}
	if ((rc = parse_args(argc, argv, &o)) != 0)
		return rc;

	/* Only run_dir is needed, but a broken file should be said loudly. */
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg) {
		fprintf(stderr, "vigilctl: out of memory\n");
		return EXIT_FAIL;
	}
	if (config_load_flags(o.config, cfg, CONFIG_NO_SECRET, err, sizeof(err)) < 0) {
		fprintf(stderr, "vigilctl: %s\n", err);
		free(cfg);
		return EXIT_USAGE;
	}
	if (o.node && config_node_index(cfg, o.node) < 0) {
		fprintf(stderr, "vigilctl: --node %s: no [node %s] in %s (nodes: %s, %s)\n", o.node, o.node,
			o.config, cfg->nodes[0].name, cfg->nodes[1].name);
		config_free(cfg);
		free(cfg);
		return EXIT_USAGE;
	}
	snprintf(sock, sizeof(sock), "%s/vigild.sock", cfg->run_dir);
	if (!strcmp(o.cmd, "snapshot")) {
		rc = snapshot_run(&(struct snapshot_args){ .cfg = cfg, .config_path = o.config, .output = o.output,
			.json = o.json, .status = snapshot_status, .status_ctx = sock });
		config_free(cfg);
		free(cfg);
		return rc;
	}
	config_free(cfg);
	free(cfg);

	req = build_request(&o);
	if (!req) {
		fprintf(stderr, "vigilctl: out of memory\n");
		return EXIT_FAIL;
	}
	if (!strcmp(o.cmd, "dump"))
		io_timeout_s = DUMP_TIMEOUT_S;
	if (!strcmp(o.cmd, "password")) {
		char pw[128];

		if (read_new_password("vigilctl", "New console password for admin: ", pw, sizeof(pw)) < 0) {
			json_decref(req);
			return EXIT_FAIL;
		}
		json_object_set_new(req, "password", json_string(pw));
		explicit_bzero(pw, sizeof(pw));
	}
	res = call(sock, req, &e);
	if (!res && e.wait_sync) {
		/* swap waits for an up-to-date SECOND: ask again until then. */
		uint64_t deadline = mono_ms() + (uint64_t)((o.wait_set ? o.wait_s : SWAP_SYNC_WAIT_S) * 1000.0);

		fprintf(stderr, "vigilctl: waiting: %s\n", e.msg);
		while (!res && e.wait_sync && mono_ms() < deadline) {
			sleep_ms(1000);
			e = (struct conn_err){ 0 };
			res = call(sock, req, &e);
		}
		if (!res && e.wait_sync) {
			fprintf(stderr, "vigilctl: gave up waiting: %s\n", e.msg);
			json_decref(req);
			return EXIT_WAIT_TIMEOUT;
		}
	}
	json_decref(req);
	if (!res) {
		fprintf(stderr, "vigilctl: %s\n", e.msg);
		return e.code;
	}
	if (json_is_string(json_object_get(res, "warning")) && !o.json)
		fprintf(stderr, "vigilctl: warning: %s\n", json_string_value(json_object_get(res, "warning")));

	rc = EXIT_OK;
	if (o.json)
		print_json(res);
	else if (!strcmp(o.cmd, "status"))
		print_status(res);
	else if (!strcmp(o.cmd, "log"))
		print_log(res);
	else if (!strcmp(o.cmd, "pool") && strcmp(o.arg, "status") && strcmp(o.arg, "log") && strcmp(o.arg, "queue"))
		rc = print_action(res);
	else if (!strcmp(o.cmd, "pool"))
		print_pool(o.arg, res);
	else
		rc = print_action(res);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "vigilctl: stdout: %s\n", strerror(errno));
		rc = EXIT_FAIL;
	}
	if (o.json && json_is_array(json_object_get(res, "results"))) {
		json_t *r;
		size_t i;

		json_array_foreach(json_object_get(res, "results"), i, r)
			if (!json_is_true(json_object_get(r, "ok")))
				rc = EXIT_FAIL;
	}
	if (rc == EXIT_OK && o.wait_set)
		rc = wait_stable(&o, sock, res);
	json_decref(res);
	return rc;
}
