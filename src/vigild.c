/* vigild: the node daemon. */
#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "api/auth.h"
#include "api/cert_watch.h"
#include "api/http.h"
#include "cluster/node.h"
#include "cluster/peerlink.h"
#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "pool/agent.h"
#include "pool/master.h"
#include "resource/policy.h"
#include "resource/script.h"
#include "vigil_build.h"

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: vigild [-c FILE] [--node NAME] [--foreground] [--verbose]\n"
	        "       vigild --check-config [-c FILE]\n"
	        "       vigild --help-config [--markdown]\n"
	        "\n"
	        "The vigil node daemon: heartbeats, node state, resources, virtual IP.\n"
	        "With [pool] role = master it also runs the recording pool's master while\n"
	        "the node runs the service; with role = recorder or spare it runs only the\n"
	        "pool agent (no mirror node). See docs/pool.md.\n"
	        "\n"
	        "  -c, --config FILE   configuration file (default %s)\n"
	        "  -n, --node NAME     which [node NAME] this machine is (default: the node\n"
	        "                      one of whose addresses is configured here)\n"
	        "  -f, --foreground    stay in the foreground, log to stderr (default: detach,\n"
	        "                      log to syslog/journal)\n"
	        "  -v, --verbose       also log debug messages to stderr/syslog\n"
	        "      --check-config  validate the file and exit: 0 if valid, else 1 with\n"
	        "                      FILE:LINE: message\n"
	        "      --help-config   describe every configuration key\n"
	        "  -V, --version       print the version\n"
	        "\n"
	        "Signals: SIGTERM/SIGINT stop the resources (the peer takes over) and exit;\n"
	        "a second one exits at once. The boot setting (vigilctl boot) decides what a\n"
	        "restarted vigild does. A pool agent exits at SIGTERM/SIGINT and leaves the\n"
	        "recording running. A second vigild (RUN_DIR/vigild.sock answers) exits 1\n"
	        "before it detaches. Files: STATE_DIR/node.json (state), STATE_DIR/*.log.\n",
	        VIGIL_DEFAULT_CONFIG);
}

struct daemon {
	struct event_base *base;
	struct node *node;
	struct api *api;
	struct peerlink *link;
	struct control *ctl;
	struct auth *auth;
	struct console *console;
	struct cert_watch *certs;
	struct pool_master *pool;
	struct event *pool_follow;
	struct pool_agent *agent;
	int signals;
};

#define POOL_FOLLOW_MS 200

/* The pool master runs while this node runs the service; it looks a few
 * times a second rather than hooking every transition. */
static void on_pool_follow(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	(void)fd, (void)what;
	pool_master_set_active(d->pool, node_runs_service(d->node));
}

static void on_agent_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	(void)what;
	/* The recording service goes on without vigild, as without the
	 * master: only the link ends. */
	log_info("%s received: pool agent exiting", strsignal((int)sig));
	event_base_loopexit(d->base, NULL);
}

/* RUN_DIR/vigild.sock into sock, and whether it is free. Said before
 * detaching: once detached, the exit status is gone and the error only in
 * the log. The socket stays the authority (control_new). */
static int control_path(const struct config *cfg, char *sock, size_t len)
{
	if (snprintf(sock, len, "%s/vigild.sock", cfg->run_dir) >= (int)len) {
		fprintf(stderr, "vigild: run_dir %s is too long\n", cfg->run_dir);
		return -1;
	}
	if (control_in_use(sock)) {
		fprintf(stderr, "vigild: another vigild is already listening on %s\n", sock);
		return -1;
	}
	return 0;
}

/* Requests arrive only once the loop runs, after the agent is made. */
static void on_agent_control(void *ctx, json_t *req, const char *origin, api_done_cb done, void *arg)
{
	struct daemon *d = ctx;

	pool_agent_control(d->agent, req, origin, done, arg);
}

/* vigild as a pool recorder or spare: no mirror node, only the agent. */
static int run_agent(struct config *cfg, bool foreground, bool verbose)
{
	struct daemon d = { 0 };
	struct event *sigs[2] = { 0 };
	char sock[PATH_MAX];
	int rc = 1;

	if (control_path(cfg, sock, sizeof(sock)) < 0) {
		config_free(cfg);
		return 1;
	}
	if (!foreground && daemon(0, 0) < 0) {
		fprintf(stderr, "vigild: cannot detach: %s\n", strerror(errno));
		return 1;
	}
	log_init("vigild", foreground, verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	if (log_open_files(cfg->state_dir, cfg->log_max_bytes) < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	d.base = event_base_new();
	if (!d.base || script_init(d.base) < 0) {
		log_error("cannot set up the event loop");
		goto out;
	}
	log_info("vigild %s starting: pool %s %s", VIGIL_VERSION, pool_cfg_role_str(cfg->pool_role), cfg->pool_name);
	/* The socket first: a second vigild stops here, before it starts
	 * the recording service a second time. */
	d.ctl = control_new_with(d.base, on_agent_control, &d, sock);
	if (!d.ctl)
		goto out;
	d.agent = pool_agent_new(d.base, cfg);
	if (!d.agent)
		goto out;
	sigs[0] = evsignal_new(d.base, SIGTERM, on_agent_signal, &d);
	sigs[1] = evsignal_new(d.base, SIGINT, on_agent_signal, &d);
	for (int i = 0; i < 2; i++)
		event_add(sigs[i], NULL);
	event_base_dispatch(d.base);
	rc = 0;
out:
	for (int i = 0; i < 2; i++)
		if (sigs[i])
			event_free(sigs[i]);
	control_free(d.ctl);
	pool_agent_free(d.agent);
	script_shutdown();
	if (d.base)
		event_base_free(d.base);
	log_close_files();
	config_free(cfg);
	return rc;
}

static void on_stopped(void *arg)
{
	struct daemon *d = arg;

	log_info("%s: resources stopped; exiting", node_name(d->node));
	event_base_loopexit(d->base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	if (++d->signals > 1) {
		log_warn("second %s: exiting now, resources left as they are", strsignal((int)sig));
		event_base_loopbreak(d->base);
		return;
	}
	log_info("%s received", strsignal((int)sig));
	node_shutdown(d->node, on_stopped, d);
}

static void on_peer_request(json_t *req, struct peerlink_reply *r, void *arg);

static void on_peer_answer(json_t *resp, void *arg)
{
	peerlink_reply_send(arg, resp);
}

static void on_peer_request(json_t *req, struct peerlink_reply *r, void *arg)
{
	struct daemon *d = arg;
	const char *origin = json_string_value(json_object_get(req, "origin"));
	char who[256];

	snprintf(who, sizeof(who), "%s via %s (%s)", origin ? origin : "peer",
	         node_peer_name(d->node), peerlink_reply_from(r));
	json_object_del(req, "origin");
	api_handle(d->api, req, who, true, on_peer_answer, r);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "node", required_argument, NULL, 'n' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "help-config", no_argument, NULL, 'H' },
		{ "markdown", no_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = VIGIL_DEFAULT_CONFIG, *node_arg = NULL;
	bool foreground = false, check = false, help_config = false, markdown = false, verbose = false;
	static struct config cfg;
	struct daemon d = { 0 };
	struct event *sigs[3] = { 0 };
	char err[1024], sock[PATH_MAX + 16];
	int self, c, rc = 1;

	while ((c = getopt_long(argc, argv, "c:n:fvhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'n': node_arg = optarg; break;
		case 'f': foreground = true; break;
		case 'v': verbose = true; break;
		case 'C': check = true; break;
		case 'H': help_config = true; break;
		case 'M': markdown = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("vigild %s\n", VIGIL_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vigild: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (help_config) {
		config_print_help(stdout, markdown);
		return 0;
	}
	log_init("vigild", true, verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	if (config_load(path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	/* The checkers' targets are checked by their engine's own rules. */
	if (policy_validate(&cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	if (config_pool_agent(&cfg)) {
		char ip[INET_ADDRSTRLEN];

		if (!check)
			return run_agent(&cfg, foreground, verbose);
		inet_ntop(AF_INET, &cfg.pool_master.sin_addr, ip, sizeof(ip));
		printf("%s: ok (pool %s %s, group %s%s%s, master %s:%u)\n", path, pool_cfg_role_str(cfg.pool_role),
		       cfg.pool_name, cfg.pool_group, cfg.pool_secondary_group[0] ? ", secondary " : "",
		       cfg.pool_secondary_group, ip, ntohs(cfg.pool_master.sin_port));
		config_free(&cfg);
		return 0;
	}
	if (node_arg) {
		self = config_node_index(&cfg, node_arg);
		if (self < 0) {
			fprintf(stderr, "vigild: --node %s: no [node %s] in %s\n", node_arg, node_arg, path);
			goto out;
		}
	} else {
		self = config_find_local_node(&cfg, err, sizeof(err));
		if (self < 0 && !check) {
			fprintf(stderr, "vigild: %s: %s\n", path, err);
			goto out;
		}
	}
	if (check) {
		printf("%s: ok (cluster %s, nodes %s and %s, %d heartbeat network%s, %d resource%s, "
		       "%d checker%s%s%s)\n",
		       path, cfg.cluster_name, cfg.nodes[0].name, cfg.nodes[1].name, cfg.nnets,
		       cfg.nnets == 1 ? "" : "s", cfg.nres, cfg.nres == 1 ? "" : "s", cfg.nchecker,
		       cfg.nchecker == 1 ? "" : "s",
		       self >= 0 ? ", this machine is " : "", self >= 0 ? cfg.nodes[self].name : "");
		rc = 0;
		goto out;
	}
	if (control_path(&cfg, sock, sizeof(sock)) < 0)
		goto out;
	if (!foreground && daemon(0, 0) < 0) {
		fprintf(stderr, "vigild: cannot detach: %s\n", strerror(errno));
		goto out;
	}
	log_init("vigild", foreground, verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	if (log_open_files(cfg.state_dir, cfg.log_max_bytes) < 0)
		goto out;
	signal(SIGPIPE, SIG_IGN);
	d.base = event_base_new();
	if (!d.base || script_init(d.base) < 0) {
		log_error("cannot set up the event loop");
		goto out;
	}
	d.node = node_new(d.base, &cfg, self);
	if (!d.node)
		goto out;
	d.api = api_new(d.node);
	d.ctl = control_new(d.base, d.api, sock);
	if (!d.ctl)
		goto out;
	d.link = peerlink_new(d.base, &cfg, self, on_peer_request, &d);
	if (!d.link)
		goto out;
	api_set_link(d.api, d.link);
	node_set_link(d.node, d.link);
	d.auth = auth_new(d.base, cfg.console_password_file);
	if (!d.auth)
		goto out;
	d.console = console_new(d.base, &cfg, cfg.nodes[self].name, d.api, d.auth);
	if (!d.console)
		goto out;
	api_set_console(d.api, d.auth, d.console);
	sigs[0] = evsignal_new(d.base, SIGTERM, on_signal, &d);
	sigs[1] = evsignal_new(d.base, SIGINT, on_signal, &d);
	for (int i = 0; i < 2; i++)
		event_add(sigs[i], NULL);
	log_info("vigild %s starting: cluster %s, this node %s, peer %s", VIGIL_VERSION,
	         cfg.cluster_name, cfg.nodes[self].name, cfg.nodes[1 - self].name);
	if (node_start(d.node) < 0)
		goto out;
	/* After the start, which clears the alarms of before. */
	{
		char dir[PATH_MAX];

		snprintf(dir, sizeof(dir), "%s", cfg.path);
		d.certs = cert_watch_new(d.base, d.node, dirname(dir), cfg.nodes[self].name);
		if (!d.certs)
			goto out;
		api_set_certs(d.api, d.certs);
	}
	if (cfg.pool_role == POOL_CFG_MASTER) {
		struct timeval tv = { 0, POOL_FOLLOW_MS * 1000 };

		d.pool = pool_master_new(d.base, &cfg, cfg.nodes[self].name);
		d.pool_follow = event_new(d.base, -1, EV_PERSIST, on_pool_follow, &d);
		if (!d.pool || !d.pool_follow || event_add(d.pool_follow, &tv) < 0)
			goto out;
		api_set_pool(d.api, d.pool);
		pool_master_set_notify(d.pool, node_notifier(d.node));
	}
	event_base_dispatch(d.base);
	rc = 0;
out:
	for (int i = 0; i < 3; i++)
		if (sigs[i])
			event_free(sigs[i]);
	control_free(d.ctl);
	if (d.pool_follow)
		event_free(d.pool_follow);
	pool_master_free(d.pool);
	cert_watch_free(d.certs);
	console_free(d.console);
	auth_free(d.auth);
	peerlink_free(d.link);
	node_free(d.node);
	api_free(d.api);
	script_shutdown();
	if (d.base)
		event_base_free(d.base);
	persist_flush();
	log_close_files();
	config_free(&cfg);
	return rc;
}
