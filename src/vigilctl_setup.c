/* vigilctl setup: the setup wizard on the command line (docs/setup.md).
 *
 *   node2: setup secondary   password, console choice; a setup agent waits
 *                            for node1 and a security code is printed
 *   node1: setup primary     checks node2 through the code, writes both
 *                            configs, the secret, the CA and certificates,
 *                            sends node2 its part, starts vigild
 *   node2: setup finish      writes what node1 sent, starts vigild
 *   either: setup remove     undoes it on this node, data left in place
 *
 * This file: the commands, secondary and finish. */
#include "vigilctl_setup.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/auth.h"
#include "common/util.h"
#include "pki/pki.h"
#include "vigilctl_password.h"
#include "vigilctl_setup_int.h"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: vigilctl [-c FILE] setup COMMAND [OPTIONS]\n"
		"\n"
		"The setup wizard: a two-node cluster from nothing, in three steps.\n"
		"\n"
		"1. On node2:\n"
		"  setup secondary [--https|--http|--both] [--listen ADDR] [--timeout SECONDS]\n"
		"      Asks the console password for user admin (twice on a terminal, else one\n"
		"      line of stdin; 6 to 32 letters, digits and ( ) * _ - .), starts a setup\n"
		"      agent that waits for node1 on TCP port %d (ADDR, default all addresses)\n"
		"      for at most SECONDS (default %d), and prints the security code.\n"
		"      --https (default), --http or --both: how the web console is served\n"
		"      (HTTPS port 9453, HTTP port 9010).\n"
		"\n"
		"2. On node1:\n"
		"  setup primary --peer ADDR[,ADDR...] --vip ADDR/PREFIX --code CODE\n"
		"                [--name CLUSTER] [--node1 NAME] [--node2 NAME]\n"
		"                [--address ADDR[,ADDR...]] [--replicate DIR[,DIR...]]\n"
		"                [--aside-dir DIR] [--export DIR]\n"
		"      --peer: node2's IPv4 address (the agent is asked there); more, comma-\n"
		"      separated, for more heartbeat networks. --address: this node's, one per\n"
		"      --peer (default: the address on the same network). --vip: the virtual\n"
		"      IP held by the PRIM node, on the interface of its network on each node.\n"
		"      --code: the code node2 printed; a wrong one is refused. --name: the\n"
		"      cluster (default vms); --node1/--node2: the node names (default node1,\n"
		"      node2). --replicate: directories replicated in real time from the PRIM\n"
		"      to the SECOND ([replication] dirs; --aside-dir: its aside_dir).\n"
		"      Writes the config, the shared secret, the console password hash, the\n"
		"      cluster CA and both nodes' certificates on this node, exports the CA\n"
		"      certificate for browsers (CONFIG_DIR/%s, or DIR/cacert.crt\n"
		"      with --export), sends node2 its files and starts vigild.\n"
		"\n"
		"3. On node2:\n"
		"  setup finish\n"
		"      Writes what node1 sent and starts vigild: node1 becomes PRIM, node2\n"
		"      SECOND.\n"
		"\n"
		"On either node:\n"
		"  setup remove [--yes]\n"
		"      Stops vigild (its resources and the virtual IP), unmounts what vigil\n"
		"      mounted, stops a waiting setup agent, and removes the config, the\n"
		"      secret, the certificates (pki/), the password file and the setup's\n"
		"      state. Data stays: the replicated directories and the logs. Asks for\n"
		"      confirmation on a terminal unless --yes.\n"
		"\n"
		"Exit status: 0 done, 1 failed, 2 usage error.\n",
		SETUP_PORT, SETUP_TIMEOUT_DEFAULT_S, SETUP_EXPORT);
}

const char *setup_console_str(enum setup_console c)
{
	switch (c) {
	case SETUP_CONSOLE_HTTPS: return "https";
	case SETUP_CONSOLE_HTTP: return "http";
	case SETUP_CONSOLE_BOTH: return "both";
	}
	return "?";
}

int setup_console_parse(const char *s, enum setup_console *out)
{
	static const enum setup_console all[] = { SETUP_CONSOLE_HTTPS, SETUP_CONSOLE_HTTP, SETUP_CONSOLE_BOTH };

	for (size_t i = 0; i < ARRAY_SIZE(all); i++)
		if (!strcmp(s, setup_console_str(all[i]))) {
			*out = all[i];
			return 0;
		}
	return -1;
}

bool setup_join(char out[PATH_MAX], const char *dir, const char *name)
{
	return snprintf(out, PATH_MAX, "%s/%s", strcmp(dir, "/") ? dir : "", name) < PATH_MAX;
}

int setup_paths_init(const char *config, struct setup_paths *p, char *err, size_t errlen)
{
	char cwd[PATH_MAX];
	const char *slash;

	*p = (struct setup_paths){ 0 };
	if (!*config) {
		snprintf(err, errlen, "-c: empty config path");
		return -1;
	}
	/* Absolute: the config names its files by absolute paths, and vigild
	 * is started from another directory. */
	if (config[0] == '/') {
		if (!strlcpy_ok(p->config, config, sizeof(p->config)))
			goto toolong;
	} else {
		if (!getcwd(cwd, sizeof(cwd)) || !setup_join(p->config, cwd, config))
			goto toolong;
	}
	slash = strrchr(p->config, '/');
	if (!slash[1]) {
		snprintf(err, errlen, "-c %s: a file name is needed, not a directory", config);
		return -1;
	}
	snprintf(p->dir, sizeof(p->dir), "%.*s", slash == p->config ? 1 : (int)(slash - p->config), p->config);
	if (!setup_join(p->secret, p->dir, SETUP_SECRET) || !setup_join(p->passwd, p->dir, SETUP_PASSWD) ||
	    !setup_join(p->pki, p->dir, PKI_SUBDIR) || !setup_join(p->state, p->dir, SETUP_STATE) ||
	    !setup_join(p->export_ca, p->dir, SETUP_EXPORT))
		goto toolong;
	return 0;
toolong:
	snprintf(err, errlen, "-c %.200s: path too long", config);
	return -1;
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* ---- secondary ---- */

struct secondary_opts {
	struct setup_agent_params a;
};

static int opt_value(int argc, char **argv, int *i, const char *name, const char **val)
{
	size_t n = strlen(name);

	if (!strcmp(argv[*i], name)) {
		if (*i + 1 >= argc) {
			fprintf(stderr, "vigilctl setup: %s needs a value\n", name);
			return -1;
		}
		*val = argv[++*i];
		return 1;
	}
	if (!strncmp(argv[*i], name, n) && argv[*i][n] == '=') {
		*val = argv[*i] + n + 1;
		return 1;
	}
	return 0;
}

static int parse_secondary(int argc, char **argv, struct secondary_opts *o)
{
	*o = (struct secondary_opts){ .a = { .console = SETUP_CONSOLE_HTTPS, .port = SETUP_PORT,
					     .timeout_s = SETUP_TIMEOUT_DEFAULT_S } };
	for (int i = 2; i < argc; i++) {
		const char *v = NULL;
		int r;

		if (!strcmp(argv[i], "--https") || !strcmp(argv[i], "--http") || !strcmp(argv[i], "--both")) {
			setup_console_parse(argv[i] + 2, &o->a.console);
		} else if ((r = opt_value(argc, argv, &i, "--listen", &v)) != 0) {
			if (r < 0)
				return -1;
			if (setup_parse_ipv4(v, &o->a.listen) < 0) {
				fprintf(stderr, "vigilctl setup secondary: --listen '%s': expected an IPv4 address of "
					"this machine\n", v);
				return -1;
			}
		} else if ((r = opt_value(argc, argv, &i, "--timeout", &v)) != 0) {
			uint64_t t;

			if (r < 0)
				return -1;
			if (parse_u64(v, 1, SETUP_TIMEOUT_MAX_S, &t) < 0) {
				fprintf(stderr, "vigilctl setup secondary: --timeout '%s': expected whole seconds from "
					"1 to %d\n", v, SETUP_TIMEOUT_MAX_S);
				return -1;
			}
			o->a.timeout_s = (unsigned)t;
		} else {
			fprintf(stderr, "vigilctl setup secondary: unknown option '%s' (see vigilctl setup --help)\n",
				argv[i]);
			return -1;
		}
	}
	return 0;
}

/* A setup already under way here: refused with what to do instead;
 * a stale one (its agent gone, nothing received) is cleared. */
static int check_no_setup(const struct setup_paths *p)
{
	char pkg[PATH_MAX];
	pid_t agent = setup_agent_pid(p);

	if (agent > 0) {
		fprintf(stderr, "vigilctl setup secondary: a setup agent already waits for node1 (pid %d); use its "
			"security code, or start over with `vigilctl setup remove`\n", (int)agent);
		return -1;
	}
	if (setup_join(pkg, p->state, SETUP_PACKAGE) && exists(pkg)) {
		fprintf(stderr, "vigilctl setup secondary: node1 already sent this node's configuration: run "
			"`vigilctl setup finish` (or `vigilctl setup remove` to start over)\n");
		return -1;
	}
	if (setup_rm_tree(p->state) < 0) {
		fprintf(stderr, "vigilctl setup secondary: cannot remove the old %s: %s\n", p->state, strerror(errno));
		return -1;
	}
	return 0;
}

static void print_addresses(void)
{
	struct setup_ifs *ifs = calloc(1, sizeof(*ifs));
	char err[256], ip[INET_ADDRSTRLEN];

	if (!ifs || setup_local_ifs(ifs, err, sizeof(err)) < 0 || !ifs->n) {
		free(ifs);
		return;
	}
	printf("This node's addresses (for --peer):");
	for (int i = 0; i < ifs->n; i++) {
		inet_ntop(AF_INET, &ifs->v[i].addr, ip, sizeof(ip));
		printf(" %s (%s)", ip, ifs->v[i].name);
	}
	printf("\n");
	free(ifs);
}

static int setup_secondary(const struct setup_paths *p, int argc, char **argv)
{
	struct secondary_opts o;
	char pw[128], err[1024], cert[PATH_MAX], code[SETUP_CODE_TEXT], until[32];
	unsigned char keyhash[32], rnd[SETUP_CODE_RAND_BYTES];
	const char *rule;
	time_t end;
	struct tm tm;
	pid_t pid;
	int r, days;

	if (parse_secondary(argc, argv, &o) < 0)
		return SETUP_EXIT_USAGE;
	if (setup_check_free(p, err, sizeof(err)) < 0) {
		fprintf(stderr, "vigilctl setup secondary: %s\n", err);
		return SETUP_EXIT_FAIL;
	}
	if (check_no_setup(p) < 0)
		return SETUP_EXIT_FAIL;
	if (read_new_password("vigilctl setup secondary", "Console password for user admin: ", pw, sizeof(pw)) < 0)
		return SETUP_EXIT_FAIL;
	if ((rule = auth_password_rule(pw))) {
		fprintf(stderr, "vigilctl setup secondary: %s; nothing done\n", rule);
		explicit_bzero(pw, sizeof(pw));
		return SETUP_EXIT_FAIL;
	}
	r = auth_hash_password(pw, o.a.hash, sizeof(o.a.hash));
	explicit_bzero(pw, sizeof(pw));
	if (r < 0) {
		fprintf(stderr, "vigilctl setup secondary: cannot hash the password (argon2id)\n");
		return SETUP_EXIT_FAIL;
	}
	if ((r = mkdir_p(p->dir, 0755)) < 0 || (r = mkdir_p(p->state, 0700)) < 0 || chmod(p->state, 0700) < 0) {
		fprintf(stderr, "vigilctl setup secondary: cannot create %s: %s\n", p->state,
			strerror(r < 0 ? -r : errno));
		return SETUP_EXIT_FAIL;
	}
	/* The channel's own certificate: a self-signed pair for this setup
	 * only, never trusted by anything but the security code. */
	days = (int)(o.a.timeout_s / 86400) + 2;
	if (pki_make_ca(p->state, "setup", days, err, sizeof(err)) < 0 ||
	    !setup_join(cert, p->state, SETUP_AGENT_CERT) || setup_cert_keyhash(cert, keyhash, err, sizeof(err)) < 0 ||
	    random_bytes(rnd, sizeof(rnd)) < 0) {
		fprintf(stderr, "vigilctl setup secondary: %s\n", err);
		setup_rm_tree(p->state);
		return SETUP_EXIT_FAIL;
	}
	setup_code_make(keyhash, rnd, code);
	explicit_bzero(rnd, sizeof(rnd));
	if (setup_code_normalize(code, o.a.code, err, sizeof(err)) < 0 ||
	    setup_agent_spawn(p, &o.a, &pid, err, sizeof(err)) < 0) {
		fprintf(stderr, "vigilctl setup secondary: %s\n", err);
		setup_rm_tree(p->state);
		return SETUP_EXIT_FAIL;
	}
	end = time(NULL) + (time_t)o.a.timeout_s;
	localtime_r(&end, &tm);
	strftime(until, sizeof(until), "%Y-%m-%d %H:%M", &tm);
	printf("The setup agent (pid %d) waits for node1 on TCP port %u until %s.\n", (int)pid, o.a.port, until);
	print_addresses();
	printf("Console: %s. Password set.\n",
	       o.a.console == SETUP_CONSOLE_HTTPS ? "HTTPS (port 9453)" :
	       o.a.console == SETUP_CONSOLE_HTTP ? "HTTP (port 9010)" : "HTTPS (port 9453) and HTTP (port 9010)");
	printf("\nSecurity code: %s\n\n", code);
	printf("Next, on node1:\n  vigilctl setup primary --peer THIS-NODE-ADDRESS --vip ADDRESS/PREFIX --code %s\n"
	       "Then here:\n  vigilctl setup finish\n", code);
	explicit_bzero(code, sizeof(code));
	explicit_bzero(&o, sizeof(o));
	return fflush(stdout) == 0 ? SETUP_EXIT_OK : SETUP_EXIT_FAIL;
}

/* ---- finish ---- */

/* A file name node1 may send: NAME.crt or NAME.key, no path, no CA key. */
static bool pki_name_ok(const char *name)
{
	size_t n = strlen(name);

	return n > 4 && n < 128 && name[0] != '.' &&
	       strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") == n &&
	       (!strcmp(name + n - 4, ".crt") || !strcmp(name + n - 4, ".key")) && strcmp(name, PKI_CA_KEY);
}

static int stage_package(struct setup_stage *s, json_t *pkg, char *err, size_t errlen)
{
	const char *config = json_string_value(json_object_get(pkg, "config"));
	const char *secret = json_string_value(json_object_get(pkg, "secret"));
	const char *hash = json_string_value(json_object_get(pkg, "password_hash"));
	json_t *files = json_object_get(pkg, "files"), *v;
	const char *name, *bad;
	char rel[PATH_MAX];

	if (!config || !secret || !json_is_object(files)) {
		snprintf(err, errlen, "the package from node1 is incomplete (config, secret or files missing)");
		return -1;
	}
	if (hash && (bad = auth_hash_check(hash))) {
		snprintf(err, errlen, "the package's password hash is unusable: %s", bad);
		return -1;
	}
	if (stage_write(s, "vigil.conf", config, strlen(config), 0644, err, errlen) < 0 ||
	    stage_write(s, SETUP_SECRET, secret, strlen(secret), 0600, err, errlen) < 0)
		return -1;
	if (hash) {
		char line[300];

		snprintf(line, sizeof(line), "%s\n", hash);
		if (stage_write(s, SETUP_PASSWD, line, strlen(line), 0600, err, errlen) < 0)
			return -1;
	}
	json_object_foreach(files, name, v) {
		const char *text = json_string_value(v);
		size_t n = strlen(name);

		if (!text || !pki_name_ok(name)) {
			snprintf(err, errlen, "the package holds a file this node does not take: '%.80s'", name);
			return -1;
		}
		snprintf(rel, sizeof(rel), "%s/%s", PKI_SUBDIR, name);
		if (stage_write(s, rel, text, strlen(text), strcmp(name + n - 4, ".key") ? 0644 : 0600, err,
				errlen) < 0)
			return -1;
	}
	return 0;
}

/* The config in place is whole and names this machine as node: else the
 * install is undone. */
int setup_check_installed(const struct setup_paths *p, const char *node, char *err, size_t errlen)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	char why[1024];
	int self;

	if (!cfg) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (config_load(p->config, cfg, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "the configuration does not load: %s", why);
		free(cfg);
		return -1;
	}
	self = config_find_local_node(cfg, why, sizeof(why));
	if (self < 0 || strcmp(cfg->nodes[self].name, node)) {
		snprintf(err, errlen, "%s does not make this machine %s: %s", p->config, node,
			 self < 0 ? why : cfg->nodes[self].name);
		config_free(cfg);
		free(cfg);
		return -1;
	}
	config_free(cfg);
	free(cfg);
	return 0;
}

char *setup_run_dir(const char *config)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	char err[1024], *out = NULL;

	if (cfg && config_load_flags(config, cfg, CONFIG_NO_SECRET, err, sizeof(err)) == 0) {
		out = strdup(cfg->run_dir);
		config_free(cfg);
	}
	free(cfg);
	return out;
}

static int no_package(const struct setup_paths *p)
{
	pid_t agent = setup_agent_pid(p);
	char log[PATH_MAX];

	if (agent > 0) {
		fprintf(stderr, "vigilctl setup finish: nothing received from node1 yet: run `vigilctl setup primary "
			"--peer ... --vip ... --code ...` on node1 first (the setup agent, pid %d, waits for it)\n",
			(int)agent);
	} else if (setup_join(log, p->state, SETUP_AGENT_LOG) && exists(log)) {
		fprintf(stderr, "vigilctl setup finish: nothing received from node1, and the setup agent has "
			"stopped (see %s): run `vigilctl setup secondary` again\n", log);
	} else {
		fprintf(stderr, "vigilctl setup finish: no setup under way on this node: run `vigilctl setup "
			"secondary` first\n");
	}
	return SETUP_EXIT_FAIL;
}

static int setup_finish(const struct setup_paths *p, int argc, char **argv)
{
	char path[PATH_MAX], err[1024], *text = NULL, *run_dir = NULL;
	struct setup_stage s;
	json_error_t jerr;
	const char *node;
	json_t *pkg;
	size_t len;
	int r, rc = SETUP_EXIT_FAIL;

	if (argc > 2) {
		fprintf(stderr, "vigilctl setup finish: unexpected argument '%s'\n", argv[2]);
		return SETUP_EXIT_USAGE;
	}
	if (setup_check_free(p, err, sizeof(err)) < 0) {
		fprintf(stderr, "vigilctl setup finish: %s\n", err);
		return SETUP_EXIT_FAIL;
	}
	if (!setup_join(path, p->state, SETUP_PACKAGE) || (r = read_file(path, SETUP_MSG_MAX * 2, &text, &len)) == -ENOENT)
		return no_package(p);
	if (r < 0) {
		fprintf(stderr, "vigilctl setup finish: cannot read %s: %s\n", path, strerror(-r));
		return SETUP_EXIT_FAIL;
	}
	pkg = json_loadb(text, len, 0, &jerr);
	explicit_bzero(text, len);
	free(text);
	node = json_string_value(json_object_get(pkg, "node"));
	if (!json_is_object(pkg) || !node || setup_check_name("node", node, err, sizeof(err)) < 0) {
		fprintf(stderr, "vigilctl setup finish: %s is damaged: run `vigilctl setup remove` here and start "
			"over\n", path);
		json_decref(pkg);
		return SETUP_EXIT_FAIL;
	}
	if (stage_open(&s, p, err, sizeof(err)) < 0) {
		fprintf(stderr, "vigilctl setup finish: %s\n", err);
		json_decref(pkg);
		return SETUP_EXIT_FAIL;
	}
	if (stage_package(&s, pkg, err, sizeof(err)) < 0 || stage_install(&s, p, err, sizeof(err)) < 0) {
		fprintf(stderr, "vigilctl setup finish: %s; nothing written\n", err);
		goto out;
	}
	if (setup_check_installed(p, node, err, sizeof(err)) < 0) {
		stage_uninstall(&s, p);
		fprintf(stderr, "vigilctl setup finish: %s; nothing written (the package is kept: fix this and run "
			"setup finish again, or `vigilctl setup remove` to start over)\n", err);
		goto out;
	}
	printf("Wrote %s, %s, %s and %s/ (from node1 at %s).\n", p->config, p->secret, p->passwd, p->pki,
	       json_string_value(json_object_get(pkg, "received_from")) ?: "?");
	/* Done with the setup: its state goes (the package held the secret). */
	setup_rm_tree(p->state);
	run_dir = setup_run_dir(p->config);
	if (!run_dir || setup_start_vigild(p->config, run_dir, err, sizeof(err)) < 0) {
		fprintf(stderr, "vigilctl setup finish: %s\n", run_dir ? err : "cannot read the run_dir back");
		fprintf(stderr, "vigilctl setup finish: the configuration is in place; start vigild once the problem "
			"is solved\n");
		goto out;
	}
	printf("Started vigild on %s: it joins node1 (check with `vigilctl status`).\n", node);
	rc = fflush(stdout) == 0 ? SETUP_EXIT_OK : SETUP_EXIT_FAIL;
out:
	stage_discard(&s);
	free(run_dir);
	json_decref(pkg);
	return rc;
}

int vigilctl_setup(const char *config, int argc, char **argv)
{
	struct setup_paths p;
	char err[512];
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (!cmd || !strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		usage(cmd ? stdout : stderr);
		return cmd ? SETUP_EXIT_OK : SETUP_EXIT_USAGE;
	}
	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return SETUP_EXIT_OK;
		}
	if (setup_paths_init(config, &p, err, sizeof(err)) < 0) {
		fprintf(stderr, "vigilctl setup: %s\n", err);
		return SETUP_EXIT_USAGE;
	}
	if (!strcmp(cmd, "secondary"))
		return setup_secondary(&p, argc, argv);
	if (!strcmp(cmd, "primary"))
		return setup_primary(&p, argc, argv);
	if (!strcmp(cmd, "finish"))
		return setup_finish(&p, argc, argv);
	if (!strcmp(cmd, "remove"))
		return setup_remove(&p, argc, argv);
	if (!strcmp(cmd, "agent"))
		return argc == 2 ? setup_agent_main(&p) : SETUP_EXIT_USAGE;
	fprintf(stderr, "vigilctl setup: unknown command '%s': use secondary, primary, finish or remove\n\n", cmd);
	usage(stderr);
	return SETUP_EXIT_USAGE;
}
