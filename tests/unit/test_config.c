#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"

/* ---- getifaddrs() stand-in: config_find_local_node() sees these ---- */

static const char *fake_addrs[4];

int getifaddrs(struct ifaddrs **ifap)
{
	struct ifaddrs *head = NULL;

	for (int i = 0; i < 4 && fake_addrs[i]; i++) {
		struct ifaddrs *a = calloc(1, sizeof(*a));
		struct sockaddr_in *sin = calloc(1, sizeof(*sin));

		assert_non_null(a);
		assert_non_null(sin);
		sin->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, fake_addrs[i], &sin->sin_addr), 1);
		a->ifa_name = (char *)"fake0";
		a->ifa_addr = (struct sockaddr *)sin;
		a->ifa_next = head;
		head = a;
	}
	/* An entry without an address, as for interfaces that are down. */
	{
		struct ifaddrs *a = calloc(1, sizeof(*a));

		assert_non_null(a);
		a->ifa_name = (char *)"down0";
		a->ifa_next = head;
		head = a;
	}
	*ifap = head;
	return 0;
}

void freeifaddrs(struct ifaddrs *ifa)
{
	while (ifa) {
		struct ifaddrs *next = ifa->ifa_next;

		free(ifa->ifa_addr);
		free(ifa);
		ifa = next;
	}
}

/* ---- helpers ---- */

static char secret_path[64];
static char conf_path[64];

static void write_file_or_die(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CREAT, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static int setup(void **state)
{
	int fd;

	strcpy(secret_path, "/tmp/vigil-test-secret-XXXXXX");
	fd = mkstemp(secret_path);
	assert_true(fd >= 0);
	close(fd);
	write_file_or_die(secret_path, "0123456789abcdef0123456789abcdef\n", 0600);
	strcpy(conf_path, "/tmp/vigil-test-conf-XXXXXX");
	fd = mkstemp(conf_path);
	assert_true(fd >= 0);
	close(fd);
	memset(fake_addrs, 0, sizeof(fake_addrs));
	return 0;
}

static int teardown(void **state)
{
	unlink(secret_path);
	unlink(conf_path);
	return 0;
}

/* Writes text to conf_path, "@SECRET@" replaced by secret_path. */
static void write_conf(const char *text)
{
	char buf[32768];
	const char *at;
	size_t n = 0;

	while ((at = strstr(text, "@SECRET@"))) {
		memcpy(buf + n, text, (size_t)(at - text));
		n += (size_t)(at - text);
		n += (size_t)sprintf(buf + n, "%s", secret_path);
		text = at + strlen("@SECRET@");
	}
	assert_true(n + strlen(text) < sizeof(buf));
	strcpy(buf + n, text);
	write_file_or_die(conf_path, buf, 0600);
}

static int load(const char *text, struct config *cfg, char *err, size_t errlen)
{
	write_conf(text);
	return config_load(conf_path, cfg, err, errlen);
}

/* Lines 1-7; whatever is appended starts at line 8. */
#define BASE \
	"[cluster]\n" \
	"name = vms\n" \
	"secret_file = @SECRET@\n" \
	"[node node1]\n" \
	"address = 10.0.0.1\n" \
	"[node node2]\n" \
	"address = 10.0.0.2\n"

static void expect_error_flags(const char *text, unsigned flags, int line, const char *msg)
{
	struct config *cfg = malloc(sizeof(*cfg));
	char err[512], want[512];

	assert_non_null(cfg);
	err[0] = '\0';
	write_conf(text);
	assert_int_equal(config_load_flags(conf_path, cfg, flags, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:%d: %s", conf_path, line, msg);
	assert_string_equal(err, want);
	/* Freed on error; freeing again must be harmless. */
	assert_int_equal(cfg->nres, 0);
	config_free(cfg);
	free(cfg);
}

static void expect_error(const char *text, int line, const char *msg)
{
	expect_error_flags(text, 0, line, msg);
}

static struct config *load_ok(const char *text)
{
	struct config *cfg = malloc(sizeof(*cfg));
	char err[512] = "";

	assert_non_null(cfg);
	if (load(text, cfg, err, sizeof(err)) != 0)
		fail_msg("config_load failed: %s", err);
	return cfg;
}

static void done(struct config *cfg)
{
	config_free(cfg);
	free(cfg);
}

static const char *ip(struct in_addr a)
{
	static char buf[4][INET_ADDRSTRLEN];
	static int i;

	i = (i + 1) % 4;
	return inet_ntop(AF_INET, &a, buf[i], sizeof(buf[i]));
}


/* ---- [checker], [witness], failover limit (issue 3 contract) ---- */

static void test_checker_contract(void **state)
{
	struct config *cfg = load_ok(BASE
		"[resource web]\nstart = a\nstop = b\n"
		"[checker web]\ntype = tcp\ntarget = 127.0.0.1:8080\ninterval_ms = 1000\ntimeout_ms = 3000\n"
		"when = prim\nresource = web                ; what `restart` restarts\n"
		"on_failure = restart          ; restart | failover | stop | wait\nmaxloop = 3\n"
		"loop_window_ms = 86400000\n"
		"[checker up]\ntype = http\nurl = http://127.0.0.1:80/health\nexpect_status = 204\nwhen = both\n"
		"on_failure = failover\n"
		"[checker pid]\ntype = process\npidfile = /run/x.pid\non_failure = stop\n"
		"[checker sh]\ntype = custom\ncommand = /bin/true\non_failure = wait\n"
		"[checker nic]\ntype = interface\ninterface = eth0\n"
		"[checker gw]\ntype = ping\ntarget = 10.0.0.254\n"
		"[witness]\naddress = 10.0.0.3:4800\n");

	assert_int_equal(cfg->nchecker, 6);
	assert_string_equal(cfg->checkers[0].name, "web");
	assert_string_equal(cfg_checker_type_names[cfg->checkers[0].type], "tcp");
	assert_string_equal(cfg->checkers[0].target, "127.0.0.1:8080");
	assert_int_equal(cfg->checkers[0].interval_ms, 1000);
	assert_int_equal(cfg->checkers[0].timeout_ms, 3000);
	assert_int_equal(cfg->checkers[0].when, WHEN_PRIM);
	assert_string_equal(cfg->checkers[0].resource, "web");
	assert_int_equal(cfg->checkers[0].on_failure, CHK_ACT_RESTART);
	assert_int_equal(cfg->checkers[0].maxloop, 3);
	assert_int_equal(cfg->checkers[0].loop_window_ms, 86400000);
	assert_string_equal(cfg_checker_type_names[cfg->checkers[1].type], "http");
	assert_int_equal(cfg->checkers[1].expect_status, 204);
	assert_int_equal(cfg->checkers[1].when, WHEN_BOTH);
	assert_int_equal(cfg->checkers[1].on_failure, CHK_ACT_FAILOVER);
	assert_string_equal(cfg->checkers[1].resource, "");
	/* defaults */
	assert_int_equal(cfg->checkers[1].interval_ms, 5000);
	assert_int_equal(cfg->checkers[1].timeout_ms, 3000);
	assert_int_equal(cfg->checkers[1].maxloop, 3);
	assert_string_equal(cfg->checkers[2].pidfile, "/run/x.pid");
	assert_int_equal(cfg->checkers[2].on_failure, CHK_ACT_STOP);
	assert_string_equal(cfg->checkers[3].command, "/bin/true");
	assert_int_equal(cfg->checkers[3].on_failure, CHK_ACT_WAIT);
	assert_string_equal(cfg->checkers[4].interface, "eth0");
	assert_string_equal(cfg->checkers[5].target, "10.0.0.254");
	assert_true(cfg->witness_enabled);
	assert_false(cfg->witness_ping_enabled);
	assert_string_equal(ip(cfg->witness_addr.sin_addr), "10.0.0.3");
	assert_int_equal(ntohs(cfg->witness_addr.sin_port), 4800);
	assert_int_equal(cfg->witness_lease_ms, 15000);
	assert_int_equal(cfg->max_failovers, 2);
	assert_int_equal(cfg->failover_period_ms, 21600000);
	assert_string_equal(chk_action_str(CHK_ACT_WAIT), "wait");
	assert_string_equal(chk_action_str((enum chk_action)9), "?");
	done(cfg);

	cfg = load_ok("[cluster]\nname = vms\nsecret_file = @SECRET@\nmax_failovers = 5\nfailover_period_ms = 60000\n"
	              "[node node1]\naddress = 10.0.0.1\n[node node2]\naddress = 10.0.0.2\n"
	              "[witness]\nping = 10.0.0.254\n");
	assert_int_equal(cfg->max_failovers, 5);
	assert_int_equal(cfg->failover_period_ms, 60000);
	assert_false(cfg->witness_enabled);
	assert_true(cfg->witness_ping_enabled);
	assert_string_equal(ip(cfg->witness_ping), "10.0.0.254");
	done(cfg);
}

static void test_err_checker(void **state)
{
	expect_error(BASE "[checker web]\ntype = smtp\ntarget = 1.2.3.4:25\n", 9,
	             "type: must be one of tcp, http, process, custom, interface, ping; got 'smtp'");
	expect_error(BASE "[checker web]\ntype = tcp\n", 8, "[checker web]: a tcp checker needs target");
	expect_error(BASE "[checker web]\ntarget = 1.2.3.4:80\n", 8, "missing required key 'type' in [checker web]");
	expect_error(BASE "[checker web]\ntype = http\n\n", 8, "[checker web]: a http checker needs url");
	expect_error(BASE "[checker web]\ntype = tcp\ntarget = 1.2.3.4:80\nurl = http://1.2.3.4/\n", 11,
	             "url: does not apply to a tcp checker ([checker web])");
	expect_error(BASE "[checker p]\ntype = process\n", 8,
	             "[checker p]: a process checker needs exactly one of process and pidfile");
	expect_error(BASE "[checker p]\ntype = process\nprocess = x\npidfile = /run/x\n", 11,
	             "[checker p]: a process checker needs exactly one of process and pidfile");
	expect_error(BASE "[checker c]\ntype = custom\ncommand =\n", 10, "command: must not be empty");
	expect_error(BASE "[checker c]\ntype = tcp\ntarget = 1.2.3.4:1\non_failure = reboot\n", 11,
	             "on_failure: must be one of restart, failover, stop, wait; got 'reboot'");
	expect_error(BASE "[checker c]\ntype = tcp\ntarget = 1.2.3.4:1\nresource = db\n", 11,
	             "resource: [checker c] restarts 'db', which is not a [resource]");
	expect_error(BASE "[checker c]\ntype = tcp\ntarget = 1.2.3.4:1\n[checker c]\ntype = ping\ntarget = 1.2.3.4\n", 11,
	             "duplicate section [checker c] (first at line 8)");
	expect_error(BASE "[checker c]\ntype = tcp\ntarget = 1.2.3.4:1\ntimeout_ms = 5\n", 11,
	             "timeout_ms: must be a whole number from 10 to 600000, got '5'");
	expect_error(BASE "[checker]\ntype = tcp\n", 8, "section [checker] needs a name, like [checker NAME]");
}

static void test_err_witness(void **state)
{
	expect_error(BASE "[witness]\naddress = 10.0.0.3:4800\nping = 10.0.0.254\n", 10,
	             "[witness]: address and ping exclude each other; use one");
	expect_error(BASE "[witness]\nlease_ms = 20000\n", 8,
	             "[witness]: needs address = IPv4:PORT (a vigil-witness) or ping = IPv4");
	expect_error(BASE "[witness]\naddress = 10.0.0.3\n", 9,
	             "address: '10.0.0.3' is not IPv4:PORT, like 10.0.0.3:4800");
	expect_error(BASE "[witness]\naddress = witness.example:4800\n", 9,
	             "address: 'witness.example' is not a usable IPv4 address (in 'witness.example:4800')");
	expect_error(BASE "[witness]\naddress = 10.0.0.3:0\n", 9,
	             "address: port must be a whole number from 1 to 65535, got '0'");
	expect_error(BASE "[witness]\nping = 0.0.0.0\n", 9, "ping: '0.0.0.0' cannot be pinged");
	expect_error(BASE "[witness]\naddress = 10.0.0.3:4800\nlease_ms = 9000\n", 8,
	             "lease_ms: must be at least 2 * [heartbeat] timeout_ms = 10000, got 9000");
	expect_error("[cluster]\nname = vms\nsecret_file = @SECRET@\nmax_failovers = 0\n", 4,
	             "max_failovers: must be a whole number from 1 to 64, got '0'");
}

/* ---- valid files ---- */

static const char contract[] =
	"[cluster]\n"
	"name = vms\n"
	"secret_file = @SECRET@\n"
	"state_dir = /var/lib/vigil\n"
	"run_dir = /run/vigil            ; vigild.sock lives here\n"
	"[node node1]\n"
	"address = 10.0.0.1              ; one address per heartbeat network, comma-separated\n"
	"[node node2]\n"
	"address = 10.0.0.2\n"
	"[heartbeat]\n"
	"port = 8888\n"
	"interval_ms = 1000\n"
	"timeout_ms = 5000\n"
	"[vip]\n"
	"address = 10.0.0.100/24\n"
	"interface = eth0\n"
	"[resource web]\n"
	"start = /etc/vigil/scripts/web-start\n"
	"stop = /etc/vigil/scripts/web-stop\n"
	"when = prim\n";

static void test_contract_example(void **state)
{
	struct config *cfg = load_ok(contract);

	assert_string_equal(cfg->path, conf_path);
	assert_string_equal(cfg->cluster_name, "vms");
	assert_string_equal(cfg->secret_file, secret_path);
	assert_string_equal(cfg->state_dir, "/var/lib/vigil");
	assert_string_equal(cfg->run_dir, "/run/vigil");
	assert_int_equal(cfg->nnodes, 2);
	assert_int_equal(cfg->nnets, 1);
	assert_string_equal(cfg->nodes[0].name, "node1");
	assert_int_equal(cfg->nodes[0].naddr, 1);
	assert_string_equal(ip(cfg->nodes[0].addr[0]), "10.0.0.1");
	assert_int_equal(cfg->nodes[0].line, 6);
	assert_string_equal(cfg->nodes[1].name, "node2");
	assert_string_equal(ip(cfg->nodes[1].addr[0]), "10.0.0.2");
	assert_int_equal(cfg->nodes[1].line, 8);
	assert_int_equal(cfg->hb_port, 8888);
	assert_int_equal(cfg->hb_interval_ms, 1000);
	assert_int_equal(cfg->hb_timeout_ms, 5000);
	assert_true(cfg->vip_enabled);
	assert_string_equal(ip(cfg->vip_addr), "10.0.0.100");
	assert_int_equal(cfg->vip_prefix, 24);
	assert_string_equal(cfg->vip_interface, "eth0");
	assert_int_equal(cfg->nres, 1);
	assert_string_equal(cfg->res[0].name, "web");
	assert_string_equal(cfg->res[0].start, "/etc/vigil/scripts/web-start");
	assert_string_equal(cfg->res[0].stop, "/etc/vigil/scripts/web-stop");
	assert_int_equal(cfg->res[0].when, WHEN_PRIM);
	assert_string_equal(cfg->res[0].after, "");
	assert_int_equal(cfg->res[0].line, 17);
	assert_int_equal(cfg->secret_len, 32);
	assert_memory_equal(cfg->secret, "0123456789abcdef0123456789abcdef", 32);
	assert_int_equal(config_node_index(cfg, "node2"), 1);
	assert_int_equal(config_node_index(cfg, "node3"), -1);
	done(cfg);
}

static void test_defaults(void **state)
{
	struct config *cfg = load_ok(BASE "[vip]\naddress = 192.168.1.10/24\ninterface = br-lan\n"
				     "[resource r]\nstart = a\nstop = b\n");

	assert_string_equal(cfg->state_dir, "/var/lib/vigil");
	assert_string_equal(cfg->run_dir, "/run/vigil");
	assert_int_equal(cfg->log_max_bytes, 1048576);
	assert_int_equal(cfg->hb_port, 8888);
	assert_int_equal(cfg->hb_interval_ms, 1000);
	assert_int_equal(cfg->hb_timeout_ms, 5000);
	assert_int_equal(cfg->vip_probe_ms, 50);
	assert_int_equal(cfg->vip_garp_burst, 3);
	assert_int_equal(cfg->vip_garp_repeats, 3);
	assert_int_equal(cfg->vip_garp_interval_ms, 1000);
	assert_int_equal(cfg->res[0].when, WHEN_PRIM);
	assert_string_equal(cfg->res[0].after, "");
	assert_int_equal(cfg->res[0].timeout_ms, 30000);
	done(cfg);

	cfg = load_ok(BASE);
	assert_false(cfg->vip_enabled);
	assert_int_equal(cfg->nres, 0);
	assert_int_equal(cfg->hb_port, 8888);
	done(cfg);
}

static void test_all_keys_set(void **state)
{
	struct config *cfg = load_ok(
		"[cluster]\nname = a-b_c.d\nsecret_file = @SECRET@\nstate_dir = /srv/s\n"
		"run_dir = /srv/r\nlog_max_bytes = 4096\n"
		"[node n1]\naddress = 10.0.0.1, 10.1.0.1,10.2.0.1\n"
		"[node n2]\naddress = 10.0.0.2,10.1.0.2 , 10.2.0.2\n"
		"[heartbeat]\nport = 1\ninterval_ms = 10\ntimeout_ms = 30\n"
		"[vip]\naddress = 10.9.0.1/32\ninterface = eth1\nprobe_ms = 0\ngarp_burst = 20\n"
		"garp_repeats = 0\ngarp_interval_ms = 60000\n"
		"[resource r]\nstart = /bin/true arg\nstop = echo 'x y'\nwhen = both\ntimeout_ms = 3600000\n"
		"[resource s]\nstart = a\nstop = b\nwhen = second\nafter = none\n");

	assert_string_equal(cfg->cluster_name, "a-b_c.d");
	assert_string_equal(cfg->state_dir, "/srv/s");
	assert_string_equal(cfg->run_dir, "/srv/r");
	assert_int_equal(cfg->log_max_bytes, 4096);
	assert_int_equal(cfg->nnets, 3);
	assert_int_equal(cfg->nodes[1].naddr, 3);
	assert_string_equal(ip(cfg->nodes[0].addr[2]), "10.2.0.1");
	assert_string_equal(ip(cfg->nodes[1].addr[1]), "10.1.0.2");
	assert_int_equal(cfg->hb_port, 1);
	assert_int_equal(cfg->hb_interval_ms, 10);
	assert_int_equal(cfg->hb_timeout_ms, 30);
	assert_int_equal(cfg->vip_prefix, 32);
	assert_int_equal(cfg->vip_probe_ms, 0);
	assert_int_equal(cfg->vip_garp_burst, 20);
	assert_int_equal(cfg->vip_garp_repeats, 0);
	assert_int_equal(cfg->vip_garp_interval_ms, 60000);
	assert_string_equal(cfg->res[0].start, "/bin/true arg");
	assert_string_equal(cfg->res[0].stop, "echo 'x y'");
	assert_int_equal(cfg->res[0].when, WHEN_BOTH);
	assert_int_equal(cfg->res[0].timeout_ms, 3600000);
	assert_int_equal(cfg->res[1].when, WHEN_SECOND);
	assert_string_equal(cfg->res[1].after, "");
	done(cfg);
}

static void test_comments_and_layout(void **state)
{
	struct config *cfg = load_ok(
		"\xEF\xBB\xBF; leading comment\r\n"
		"# another\r\n"
		"\r\n"
		"[cluster] ; trailing comment on a header\r\n"
		"  name = vms ; indented, CRLF, inline comment\r\n"
		"\tsecret_file=@SECRET@\r\n"
		"run_dir = /run/x;y   ; ';' without a space before it is data\n"
		"[node node1]\n"
		"    address = 10.0.0.1\n"
		"    ; an indented comment\n"
		"[node node2]\n"
		"address : 10.0.0.2\n"
		"[resource web]\n"
		"start = /usr/bin/web --port=80   ; comment\n"
		"stop = /usr/bin/web-stop\n"
		"  when = second\n");

	assert_string_equal(cfg->cluster_name, "vms");
	assert_string_equal(cfg->run_dir, "/run/x;y");
	assert_string_equal(cfg->res[0].start, "/usr/bin/web --port=80");
	assert_int_equal(cfg->res[0].when, WHEN_SECOND);
	assert_string_equal(ip(cfg->nodes[1].addr[0]), "10.0.0.2");
	done(cfg);
}

static void test_resource_order(void **state)
{
	struct config *cfg = load_ok(BASE
		"[resource a]\nstart = s\nstop = t\nafter = c\n"
		"[resource b]\nstart = s\nstop = t\n"
		"[resource c]\nstart = s\nstop = t\nafter = d\n"
		"[resource d]\nstart = s\nstop = t\n"
		"[resource e]\nstart = s\nstop = t\nafter = b\n");
	const char *want[] = { "b", "d", "c", "a", "e" };

	assert_int_equal(cfg->nres, 5);
	for (int i = 0; i < 5; i++)
		assert_string_equal(cfg->res[i].name, want[i]);
	assert_string_equal(cfg->res[3].after, "c");
	assert_int_equal(cfg->res[3].line, 8);
	done(cfg);
}

static void test_max_resources(void **state)
{
	char text[16384] = BASE;
	struct config *cfg;
	char line[128];

	/* r0 after r1 after ... r31: a chain in reverse file order. */
	for (int i = 0; i < CFG_MAX_RESOURCES; i++) {
		if (i < CFG_MAX_RESOURCES - 1)
			snprintf(line, sizeof(line), "[resource r%d]\nstart = s\nstop = t\nafter = r%d\n", i, i + 1);
		else
			snprintf(line, sizeof(line), "[resource r%d]\nstart = s\nstop = t\nafter = none\n", i);
		strcat(text, line);
	}
	cfg = load_ok(text);
	assert_int_equal(cfg->nres, CFG_MAX_RESOURCES);
	for (int i = 0; i < cfg->nres; i++) {
		snprintf(line, sizeof(line), "r%d", CFG_MAX_RESOURCES - 1 - i);
		assert_string_equal(cfg->res[i].name, line);
	}
	done(cfg);

	/* The 33rd starts at line 8 + 32 * 4. */
	strcat(text, "[resource extra]\nstart = s\nstop = t\n");
	expect_error(text, 8 + CFG_MAX_RESOURCES * 4, "too many [resource] sections (at most 32)");
}

/* ---- errors named in the brief ---- */

static void test_err_unknown_key(void **state)
{
	expect_error(BASE "[heartbeat]\nport = 9\nfoo = 1\n", 10, "unknown key 'foo' in [heartbeat]");
	expect_error(BASE "[resource web]\nstart = a\nbogus = 1\n", 10, "unknown key 'bogus' in [resource web]");
	expect_error("[node n1]\nport = 1\n", 2, "unknown key 'port' in [node n1]");
}

static void test_err_unknown_section(void **state)
{
	expect_error(BASE "[bogus]\nport = 1\n", 8, "unknown section [bogus]");
	expect_error("[Cluster]\n", 1, "unknown section [Cluster]");
}

static void test_err_duplicate_key(void **state)
{
	expect_error(BASE "\n\n\n\n[heartbeat]\nport = 1\nport = 2\n", 14,
		     "duplicate key 'port' in [heartbeat] (first at line 13)");
	expect_error(BASE "[resource a]\nstart = x\nstart = y\n", 10,
		     "duplicate key 'start' in [resource a] (first at line 9)");
}

static void test_err_numbers(void **state)
{
	expect_error(BASE "[heartbeat]\ntimeout_ms = -5\n", 9,
		     "timeout_ms: must be a whole number from 30 to 600000, got '-5'");
	expect_error(BASE "[heartbeat]\ntimeout_ms = 29\n", 9,
		     "timeout_ms: must be a whole number from 30 to 600000, got '29'");
	expect_error(BASE "[heartbeat]\ninterval_ms = 1e3\n", 9,
		     "interval_ms: must be a whole number from 10 to 60000, got '1e3'");
	expect_error(BASE "[heartbeat]\nport = 0\n", 9,
		     "port: must be a whole number from 1 to 65535, got '0'");
	expect_error(BASE "[heartbeat]\nport = 65536\n", 9,
		     "port: must be a whole number from 1 to 65535, got '65536'");
	expect_error(BASE "[heartbeat]\nport =\n", 9,
		     "port: must be a whole number from 1 to 65535, got ''");
	expect_error(BASE "[heartbeat]\nport = 99999999999999999999999\n", 9,
		     "port: must be a whole number from 1 to 65535, got '99999999999999999999999'");
	expect_error("[cluster]\nlog_max_bytes = 4095\n", 2,
		     "log_max_bytes: must be a whole number from 4096 to 1073741824, got '4095'");
	expect_error(BASE "[resource r]\ntimeout_ms = 3600001\n", 9,
		     "timeout_ms: must be a whole number from 10 to 3600000, got '3600001'");
	expect_error(BASE "[vip]\ngarp_burst = 0\n", 9,
		     "garp_burst: must be a whole number from 1 to 20, got '0'");
}

static void test_err_timeout_vs_interval(void **state)
{
	expect_error(BASE "[heartbeat]\ninterval_ms = 1000\ntimeout_ms = 1999\n", 10,
		     "timeout_ms: must be at least 2 * interval_ms = 2000, got 1999");
	/* Only interval given: the default timeout is too short for it. */
	expect_error(BASE "[heartbeat]\ninterval_ms = 3000\n[resource x]\n", 9,
		     "timeout_ms: must be at least 2 * interval_ms = 6000, got 5000");
	/* Exactly twice is fine. */
	done(load_ok(BASE "[heartbeat]\ninterval_ms = 1000\ntimeout_ms = 2000\n"));
}

static void test_err_node_address(void **state)
{
	expect_error("[node a]\naddress = 10.0.0.300\n", 2,
		     "address: '10.0.0.300' is not an IPv4 address");
	expect_error("[node a]\naddress = 10.0.0.1,,10.0.0.2\n", 2,
		     "address: empty entry in '10.0.0.1,,10.0.0.2'");
	expect_error("[node a]\naddress = 10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4,10.0.0.5\n", 2,
		     "address: at most 4 addresses (one per heartbeat network)");
	expect_error("[node a]\naddress = 10.0.0.1, 10.0.0.1\n", 2, "address: 10.0.0.1 is listed twice");
	expect_error("[node a]\naddress = 10.0.0.1\n[node b]\naddress = 10.0.0.2,10.0.0.1\n", 4,
		     "address: 10.0.0.1 is also an address of [node a]");
	expect_error("[node a]\naddress = 10.0.0.1,10.1.0.1\n[node b]\naddress = 10.0.0.2\n", 4,
		     "address: [node b] lists 1 address but [node a] lists 2; each node needs one per heartbeat network");
	expect_error("[node a]\naddress = 0.0.0.0\n", 2, "address: '0.0.0.0' cannot be a node address");
	expect_error("[node a]\naddress = 224.0.0.1\n", 2, "address: '224.0.0.1' cannot be a node address");
	expect_error("[node a]\naddress = 10.0.0.01\n", 2, "address: '10.0.0.01' is not an IPv4 address");
}

static void test_err_nodes(void **state)
{
	expect_error(BASE "[node node3]\naddress = 10.0.0.3\n", 8, "too many [node] sections (at most 2)");
	expect_error("[cluster]\nname = vms\nsecret_file = @SECRET@\n[node node1]\naddress = 10.0.0.1\n\n", 6,
		     "need 2 [node] sections, found 1");
	expect_error("[cluster]\nname = vms\nsecret_file = @SECRET@\n", 3,
		     "missing required section [node NAME]");
	expect_error("[node a]\naddress = 10.0.0.1\n[node a]\n", 3, "duplicate section [node a] (first at line 1)");
	expect_error("[node]\n", 1, "section [node] needs a name, like [node NAME]");
	expect_error("[node a b]\n", 1, "node name 'a b' is invalid: use 1 to 63 letters, digits, '-', '_' or '.'");
	expect_error("[node a/b]\n", 1, "node name 'a/b' is invalid: use 1 to 63 letters, digits, '-', '_' or '.'");
	expect_error("[heartbeat x]\n", 1, "section [heartbeat] takes no name, got [heartbeat x]");
}

static void test_err_missing(void **state)
{
	/* End of file is line 7. */
	expect_error("[node node1]\naddress = 10.0.0.1\n[node node2]\naddress = 10.0.0.2\n[heartbeat]\n\n; end\n",
		     7, "missing required section [cluster]");
	expect_error("", 1, "missing required section [cluster]");
	expect_error("[cluster]\nname = vms\nsecret_file = @SECRET@\n[node node1]\naddress = 10.0.0.1\n"
		     "[node node2]\n\n[heartbeat]\n", 6, "missing required key 'address' in [node node2]");
	/* ...also when the section is the last one. */
	expect_error("[cluster]\nname = vms\nsecret_file = @SECRET@\n[node node1]\naddress = 10.0.0.1\n"
		     "[node node2]\n", 6, "missing required key 'address' in [node node2]");
	expect_error("[cluster]\nname = vms\n[node a]\n", 1, "missing required key 'secret_file' in [cluster]");
	expect_error(BASE "[vip]\ninterface = eth0\n", 8, "missing required key 'address' in [vip]");
	expect_error(BASE "[resource r]\nstart = x\n", 8, "missing required key 'stop' in [resource r]");
}

static void test_no_secret_flag(void **state)
{
	static const char text[] = "[cluster]\nname = vms\nsecret_file = /tmp/vigil-test-no-such-secret\n"
		"run_dir = /run/vigil-x\n[node node1]\naddress = 10.0.0.1\n[node node2]\naddress = 10.0.0.2\n";
	struct config cfg;
	char err[512];

	/* A client that needs only run_dir loads the file without the secret. */
	write_file_or_die(conf_path, text, 0644);
	assert_int_equal(config_load_flags(conf_path, &cfg, CONFIG_NO_SECRET, err, sizeof(err)), 0);
	assert_string_equal(cfg.run_dir, "/run/vigil-x");
	assert_int_equal(cfg.secret_len, 0);
	config_free(&cfg);
	/* The daemon's load still requires it. */
	assert_int_equal(config_load(conf_path, &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "No such file or directory"));
}

static void test_err_secret(void **state)
{
	char msg[256];

	expect_error("[cluster]\nname = vms\nsecret_file = /tmp/vigil-test-no-such-secret\n"
		     "[node node1]\naddress = 10.0.0.1\n[node node2]\naddress = 10.0.0.2\n", 3,
		     "secret_file '/tmp/vigil-test-no-such-secret': No such file or directory");
	expect_error("[cluster]\nname = vms\nsecret_file = /tmp\n"
		     "[node node1]\naddress = 10.0.0.1\n[node node2]\naddress = 10.0.0.2\n", 3,
		     "secret_file '/tmp': not a regular file");
	expect_error("[cluster]\nsecret_file = etc/secret\n", 2,
		     "secret_file: must be an absolute path, got 'etc/secret'");

	write_file_or_die(secret_path, "0123456789abcde\n", 0600);
	snprintf(msg, sizeof(msg), "secret_file '%s': must hold 16 to 1024 bytes, holds 15", secret_path);
	expect_error(BASE, 3, msg);

	{
		char big[1100];

		memset(big, 'x', 1025);
		big[1025] = '\0';
		write_file_or_die(secret_path, big, 0600);
		snprintf(msg, sizeof(msg), "secret_file '%s': must hold 16 to 1024 bytes, holds more than 1024",
			 secret_path);
		expect_error(BASE, 3, msg);
		/* Exactly 1024 plus a newline is fine. */
		big[1024] = '\n';
		write_file_or_die(secret_path, big, 0600);
		struct config *cfg = load_ok(BASE);
		assert_int_equal(cfg->secret_len, 1024);
		done(cfg);
	}

	/* 16 bytes without a newline; only one newline is trimmed. */
	write_file_or_die(secret_path, "0123456789abcdef", 0600);
	{
		struct config *cfg = load_ok(BASE);

		assert_int_equal(cfg->secret_len, 16);
		done(cfg);
	}
	write_file_or_die(secret_path, "0123456789abcde\n\n", 0600);
	{
		struct config *cfg = load_ok(BASE);

		assert_int_equal(cfg->secret_len, 16);
		assert_int_equal(cfg->secret[15], '\n');
		done(cfg);
	}
}

/* Runs config_load with stderr captured into out. */
static int load_capture(const char *text, struct config *cfg, char *out, size_t outlen)
{
	char path[] = "/tmp/vigil-test-stderr-XXXXXX", err[512];
	int fd = mkstemp(path), saved, rc;
	ssize_t n;

	assert_true(fd >= 0);
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	rc = load(text, cfg, err, sizeof(err));
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, out, outlen - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(path);
	return rc;
}

static void test_secret_permissions_warn(void **state)
{
	struct config *cfg = malloc(sizeof(*cfg));
	char out[2048];

	assert_non_null(cfg);
	log_init("test_config", true, LOG_LVL_INFO);
	write_file_or_die(secret_path, "0123456789abcdef0123456789abcdef\n", 0640);
	assert_int_equal(load_capture(BASE, cfg, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "can be read by group or others (mode 0640)"));
	assert_non_null(strstr(out, secret_path));
	config_free(cfg);

	write_file_or_die(secret_path, "0123456789abcdef0123456789abcdef\n", 0600);
	assert_int_equal(load_capture(BASE, cfg, out, sizeof(out)), 0);
	assert_null(strstr(out, "can be read"));
	config_free(cfg);
	free(cfg);
}

static void test_err_line_too_long(void **state)
{
	char text[2048] = BASE "[resource r]\nstart = ";
	size_t n = strlen("start = ");

	/* 199 characters: fits. */
	for (; n < 199; n++)
		strcat(text, "x");
	strcat(text, "\nstop = y\n");
	{
		struct config *cfg = load_ok(text);

		assert_int_equal(strlen(cfg->res[0].start), 199 - strlen("start = "));
		done(cfg);
	}
	/* 200 characters: reported, not split into two lines. */
	strcpy(text, BASE "[resource r]\nstart = ");
	for (n = strlen("start = "); n < 200; n++)
		strcat(text, "x");
	strcat(text, "\nstop = y\n");
	expect_error(text, 9, "line too long (max 199 characters)");
	/* Much longer, with CRLF. */
	strcpy(text, BASE "; ");
	for (n = 0; n < 900; n++)
		strcat(text, "z");
	strcat(text, "\r\n");
	expect_error(text, 8, "line too long (max 199 characters)");
}

static void test_err_syntax(void **state)
{
	expect_error(BASE "[heartbeat]\nport 8888\n", 9, "expected 'key = value', '[section]' or a comment");
	expect_error(BASE "[heartbeat\n", 8, "section header without ']'");
	expect_error(BASE "[heartbeat] port = 1\n", 8, "unexpected text after the section header: 'port = 1'");
	expect_error("name = vms\n[cluster]\n", 1, "key 'name' is outside any section");
	expect_error(BASE "[heartbeat]\n[heartbeat]\n", 9, "duplicate section [heartbeat] (first at line 8)");
	/* An indented line is a key of its own, not a continuation. */
	expect_error(BASE "[heartbeat]\nport = 1\n  port = 2\n", 10,
		     "duplicate key 'port' in [heartbeat] (first at line 9)");
	expect_error(BASE "[heartbeat]\nport = 1\n  10\n", 10, "expected 'key = value', '[section]' or a comment");
	/* The first error wins, even with a later one of another kind. */
	expect_error(BASE "[heartbeat]\nfoo = 1\nport 8888\n[bogus]\n", 9, "unknown key 'foo' in [heartbeat]");
}

static void test_err_nul_byte(void **state)
{
	struct config cfg;
	char err[512], want[512];
	static const char text[] = "[cluster]\nna\0me = x\n";
	int fd = open(conf_path, O_WRONLY | O_TRUNC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	assert_int_equal(config_load(conf_path, &cfg, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:2: line contains a NUL byte", conf_path);
	assert_string_equal(err, want);
}

static void test_err_strings(void **state)
{
	expect_error("[cluster]\nname = a b\n", 2,
		     "name: 'a b' is invalid: use 1 to 63 letters, digits, '-', '_' or '.'");
	expect_error("[cluster]\nname =\n", 2, "name: '' is invalid: use 1 to 63 letters, digits, '-', '_' or '.'");
	expect_error("[cluster]\nname = "
		     "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd\n", 2,
		     "name: 'abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd' is invalid: "
		     "use 1 to 63 letters, digits, '-', '_' or '.'");
	expect_error("[cluster]\nrun_dir = /var/run/"
		     "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij\n", 2,
		     "run_dir: too long (max 95 characters)");
	expect_error(BASE "[resource r]\nstart =   ; nothing\n", 9, "start: must not be empty");
	expect_error(BASE "[resource r]\nwhen = always\n", 9, "when: must be one of prim, second, both; got 'always'");
	expect_error(BASE "[resource r]\nafter = r\n", 9, "after: resource 'r' cannot start after itself");
	expect_error(BASE "[resource r]\nafter = x y\n", 9,
		     "after: 'x y' is not a resource name: use 1 to 63 letters, digits, '-', '_' or '.'");
	expect_error(BASE "[resource none]\n", 8, "resource name 'none' is reserved (it means no dependency in 'after')");
	expect_error(BASE "[resource a]\nstart = x\nstop = y\n[resource a]\n", 11,
		     "duplicate section [resource a] (first at line 8)");
}

static void test_err_vip(void **state)
{
	expect_error(BASE "[vip]\naddress = 10.0.0.100\n", 9,
		     "address: '10.0.0.100' needs a prefix length, like 10.0.0.100/24");
	expect_error(BASE "[vip]\naddress = 10.0.0.300/24\n", 9, "address: '10.0.0.300' is not an IPv4 address");
	expect_error(BASE "[vip]\naddress = eth0\n", 9,
		     "address: 'eth0' is not an IPv4 address with a prefix length, like 10.0.0.100/24");
	expect_error(BASE "[vip]\naddress = 10.0.0.100/33\n", 9,
		     "address: prefix length must be a whole number from 1 to 32, got '33'");
	expect_error(BASE "[vip]\naddress = 10.0.0.100/0\n", 9,
		     "address: prefix length must be a whole number from 1 to 32, got '0'");
	expect_error(BASE "[vip]\naddress = 10.0.0.0/24\n", 9, "address: 10.0.0.0 is the network address of 10.0.0.0/24");
	expect_error(BASE "[vip]\naddress = 10.0.0.255/24\n", 9,
		     "address: 10.0.0.255 is the broadcast address of 10.0.0.255/24");
	expect_error(BASE "[vip]\naddress = 10.0.0.2/24\ninterface = eth0\n", 9,
		     "address: the virtual address 10.0.0.2 is also an address of [node node2]");
	expect_error(BASE "[vip]\ninterface = abcdefghijklmnop\n", 9,
		     "interface: 'abcdefghijklmnop' is not a valid interface name (1 to 15 characters, no '/', ':' or spaces)");
	expect_error(BASE "[vip]\ninterface = eth0:1\n", 9,
		     "interface: 'eth0:1' is not a valid interface name (1 to 15 characters, no '/', ':' or spaces)");
	/* A /31 has no network or broadcast address. */
	{
		struct config *cfg = load_ok(BASE "[vip]\naddress = 10.9.0.0/31\ninterface = eth0\n");

		assert_int_equal(cfg->vip_prefix, 31);
		done(cfg);
	}
}

static void test_err_after(void **state)
{
	expect_error(BASE "[resource a]\nstart = s\nstop = t\nafter = zz\n", 11,
		     "after: resource 'a' starts after 'zz', which is not a [resource]");
	expect_error(BASE "[resource x]\nstart = s\nstop = t\n"
		     "[resource a]\nstart = s\nstop = t\nafter = c\n"
		     "[resource b]\nstart = s\nstop = t\nafter = a\n"
		     "[resource c]\nstart = s\nstop = t\nafter = b\n", 14,
		     "after: resource 'a' is in a cycle: a after c after b after a");
	/* A resource waiting on a cycle is not itself reported. */
	expect_error(BASE "[resource w]\nstart = s\nstop = t\nafter = b\n"
		     "[resource a]\nstart = s\nstop = t\nafter = b\n"
		     "[resource b]\nstart = s\nstop = t\nafter = a\n", 15,
		     "after: resource 'a' is in a cycle: a after b after a");
}

static void test_err_open(void **state)
{
	struct config cfg;
	char err[256];

	assert_int_equal(config_load("/tmp/vigil-test-no-such.conf", &cfg, err, sizeof(err)), -1);
	assert_string_equal(err, "/tmp/vigil-test-no-such.conf: No such file or directory");
}

/* ---- local node ---- */

static void test_find_local_node(void **state)
{
	struct config *cfg = load_ok("[cluster]\nname = vms\nsecret_file = @SECRET@\n"
				     "[node node1]\naddress = 10.0.0.1, 10.1.0.1\n"
				     "[node node2]\naddress = 10.0.0.2, 10.1.0.2\n");
	char err[256];

	fake_addrs[0] = "127.0.0.1";
	fake_addrs[1] = "10.1.0.2";
	fake_addrs[2] = NULL;
	assert_int_equal(config_find_local_node(cfg, err, sizeof(err)), 1);

	fake_addrs[1] = "10.0.0.1";
	assert_int_equal(config_find_local_node(cfg, err, sizeof(err)), 0);

	fake_addrs[1] = "10.0.0.3";
	assert_int_equal(config_find_local_node(cfg, err, sizeof(err)), -1);
	assert_string_equal(err, "none of this machine's addresses belongs to a [node] section (use --node NAME)");

	fake_addrs[1] = "10.0.0.1";
	fake_addrs[2] = "10.1.0.2";
	assert_int_equal(config_find_local_node(cfg, err, sizeof(err)), -1);
	assert_string_equal(err, "this machine holds addresses of both nodes (use --node NAME)");
	fake_addrs[1] = fake_addrs[2] = NULL;
	done(cfg);
}

/* ---- [notify] ---- */

static void test_notify(void **state)
{
	char text[4096] = BASE;
	struct config *cfg;
	char line[128];

	/* Lines 8-9, 10-12, 13-14. */
	cfg = load_ok(BASE "[notify]\ncommand = /etc/vigil/scripts/on-event\n"
		      "[notify vms-alarm]\ncommand = /usr/bin/alarm --to 'ops room'\ntimeout_ms = 100\n"
		      "[notify b]\ncommand = /nonexistent/yet   ; known only at run time\n");
	assert_int_equal(cfg->nnotify, 3);
	assert_string_equal(cfg->notify[0].name, "");
	assert_string_equal(cfg->notify[0].command, "/etc/vigil/scripts/on-event");
	assert_int_equal(cfg->notify[0].timeout_ms, 10000);
	assert_int_equal(cfg->notify[0].line, 8);
	assert_string_equal(cfg->notify[1].name, "vms-alarm");
	assert_string_equal(cfg->notify[1].command, "/usr/bin/alarm --to 'ops room'");
	assert_int_equal(cfg->notify[1].timeout_ms, 100);
	assert_int_equal(cfg->notify[1].line, 10);
	assert_string_equal(cfg->notify[2].command, "/nonexistent/yet");
	assert_int_equal(cfg->notify[2].timeout_ms, 10000);
	done(cfg);

	cfg = load_ok(BASE);
	assert_int_equal(cfg->nnotify, 0);
	assert_null(cfg->notify[0].command);
	done(cfg);

	/* the named ones alone, and the upper bound */
	cfg = load_ok(BASE "[notify only]\ncommand = x\ntimeout_ms = 600000\n");
	assert_int_equal(cfg->nnotify, 1);
	assert_string_equal(cfg->notify[0].name, "only");
	assert_int_equal(cfg->notify[0].timeout_ms, 600000);
	done(cfg);

	/* 8 in all, the unnamed one among them */
	strcat(text, "[notify]\ncommand = c\n");
	for (int i = 1; i < CFG_MAX_NOTIFY; i++) {
		snprintf(line, sizeof(line), "[notify n%d]\ncommand = c%d\n", i, i);
		strcat(text, line);
	}
	cfg = load_ok(text);
	assert_int_equal(cfg->nnotify, CFG_MAX_NOTIFY);
	assert_string_equal(cfg->notify[CFG_MAX_NOTIFY - 1].name, "n7");
	assert_string_equal(cfg->notify[CFG_MAX_NOTIFY - 1].command, "c7");
	done(cfg);
	strcat(text, "[notify extra]\ncommand = c\n");
	expect_error(text, 8 + CFG_MAX_NOTIFY * 2, "too many [notify] sections (at most 8)");
}

static void test_err_notify(void **state)
{
	expect_error(BASE "[notify]\ncommand = x\nfoo = 1\n", 10, "unknown key 'foo' in [notify]");
	expect_error(BASE "[notify a]\ncommand = x\nstart = y\n", 10, "unknown key 'start' in [notify a]");
	expect_error(BASE "[notify]\ntimeout_ms = 500\n", 8, "missing required key 'command' in [notify]");
	expect_error(BASE "[notify pager]\n[heartbeat]\n", 8, "missing required key 'command' in [notify pager]");
	/* at the end of the file too */
	expect_error(BASE "[notify]\n", 8, "missing required key 'command' in [notify]");
	expect_error(BASE "[notify]\ncommand =\n", 9, "command: must not be empty");
	expect_error(BASE "[notify]\ncommand = x\ntimeout_ms = 99\n", 10,
		     "timeout_ms: must be a whole number from 100 to 600000, got '99'");
	expect_error(BASE "[notify]\ncommand = x\ntimeout_ms = 600001\n", 10,
		     "timeout_ms: must be a whole number from 100 to 600000, got '600001'");
	expect_error(BASE "[notify]\ncommand = x\ncommand = y\n", 10,
		     "duplicate key 'command' in [notify] (first at line 9)");
	expect_error(BASE "[notify]\ncommand = x\n[notify]\ncommand = y\n", 10,
		     "duplicate section [notify] (first at line 8)");
	expect_error(BASE "[notify a]\ncommand = x\n[notify b]\ncommand = y\n[notify a]\ncommand = z\n", 12,
		     "duplicate section [notify a] (first at line 8)");
	expect_error(BASE "[notify a/b]\ncommand = x\n", 8,
		     "notify name 'a/b' is invalid: use 1 to 63 letters, digits, '-', '_' or '.'");
	/* the other unnamed sections still refuse a name */
	expect_error(BASE "[heartbeat x]\n", 8, "section [heartbeat] takes no name, got [heartbeat x]");
}

/* ---- [replication] ---- */

/* A temporary tree: @D@/a, @D@/a/inner, @D@/b (directories), @D@/f (a file). */
static char repl_dir[64];

static int setup_repl(void **state)
{
	char path[128];

	setup(state);
	strcpy(repl_dir, "/tmp/vigil-test-repl-XXXXXX");
	assert_non_null(mkdtemp(repl_dir));
	snprintf(path, sizeof(path), "%s/a", repl_dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/a/inner", repl_dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/b", repl_dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/f", repl_dir);
	write_file_or_die(path, "x", 0600);
	return 0;
}

static int teardown_repl(void **state)
{
	static const char *const rm[] = { "/a/inner", "/a", "/b", "/f", "" };
	char path[128];

	for (size_t i = 0; i < sizeof(rm) / sizeof(rm[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", repl_dir, rm[i]);
		if (rmdir(path) < 0)
			unlink(path);
	}
	return teardown(state);
}

/* text with every "@D@" replaced by repl_dir; a few results live at once. */
static const char *D(const char *text)
{
	static char buf[4][4096];
	static int slot;
	char *out = buf[slot = (slot + 1) % 4];
	const char *at;
	size_t n = 0;

	while ((at = strstr(text, "@D@"))) {
		assert_true(n + (size_t)(at - text) + strlen(repl_dir) < sizeof(buf[0]));
		memcpy(out + n, text, (size_t)(at - text));
		n += (size_t)(at - text);
		n += (size_t)sprintf(out + n, "%s", repl_dir);
		text = at + 3;
	}
	assert_true(n + strlen(text) < sizeof(buf[0]));
	strcpy(out + n, text);
	return out;
}

static void test_replication(void **state)
{
	struct config *cfg = load_ok(D(BASE "[replication]\ndirs = @D@/a/ , @D@//b\n"));

	assert_true(cfg->repl_enabled);
	assert_int_equal(cfg->nrepl_dirs, 2);
	assert_string_equal(cfg->repl_dirs[0], D("@D@/a"));
	assert_string_equal(cfg->repl_dirs[1], D("@D@/b"));
	assert_int_equal(cfg->nrepl_exclude, 0);
	assert_int_equal(cfg->repl_mode, REPL_SYNC);
	assert_int_equal(cfg->repl_cache, REPL_CACHE_DIRECT);
	assert_int_equal(cfg->repl_port, 5600);
	assert_int_equal(cfg->repl_ack_timeout_ms, 5000);
	assert_int_equal(cfg->repl_checkpoint_ms, 1000);
	assert_int_equal(cfg->repl_connect_timeout_ms, 10000);
	done(cfg);

	/* Every key, and [replication] before [cluster]. */
	cfg = load_ok(D("[replication]\ndirs = @D@/a/inner\nexclude = *.tmp , *.partial,~*\n"
			"mode = async\nport = 5601\ncache = page\nack_timeout_ms = 600000\n"
			"checkpoint_ms = 10\nconnect_timeout_ms = 0\n" BASE));
	assert_true(cfg->repl_enabled);
	assert_int_equal(cfg->nrepl_dirs, 1);
	assert_string_equal(cfg->repl_dirs[0], D("@D@/a/inner"));
	assert_int_equal(cfg->nrepl_exclude, 3);
	assert_string_equal(cfg->repl_exclude[0], "*.tmp");
	assert_string_equal(cfg->repl_exclude[1], "*.partial");
	assert_string_equal(cfg->repl_exclude[2], "~*");
	assert_int_equal(cfg->repl_mode, REPL_ASYNC);
	assert_int_equal(cfg->repl_cache, REPL_CACHE_PAGE);
	assert_int_equal(cfg->repl_port, 5601);
	assert_int_equal(cfg->repl_ack_timeout_ms, 600000);
	assert_int_equal(cfg->repl_checkpoint_ms, 10);
	assert_int_equal(cfg->repl_connect_timeout_ms, 0);
	done(cfg);

	cfg = load_ok(BASE);
	assert_false(cfg->repl_enabled);
	assert_int_equal(cfg->nrepl_dirs, 0);
	assert_int_equal(cfg->nrepl_exclude, 0);
	done(cfg);
}

/* A client does not stat the dirs, but still gets every other check. */
static void test_replication_client(void **state)
{
	static const char many[] = "/v/a,/v/b,/v/c,/v/d,/v/e,/v/f,/v/g,/v/h,/v/i,/v/j,/v/k,/v/l,/v/m,/v/n,/v/o,/v/p";
	struct config cfg;
	char err[512], text[512];

	snprintf(text, sizeof(text), "%s[replication]\ndirs = %s\n", BASE, many);
	write_conf(text);
	assert_int_equal(config_load_flags(conf_path, &cfg, CONFIG_NO_SECRET, err, sizeof(err)), 0);
	assert_int_equal(cfg.nrepl_dirs, CFG_MAX_REPL_DIRS);
	assert_string_equal(cfg.repl_dirs[15], "/v/p");
	config_free(&cfg);
	/* The daemon checks that they exist. */
	expect_error(text, 9, "[replication] dirs: /v/a: does not exist");
	snprintf(text, sizeof(text), "%s[replication]\ndirs = %s,/v/q\n", BASE, many);
	expect_error_flags(text, CONFIG_NO_SECRET, 9,
			   "[replication] dirs: at most 16 entries, got more in '/v/a,/v/b,/v/c,/v/d,/v/e,/v/f,"
			   "/v/g,/v/h,/v/i,/v/j,/v/k,/v/l,/v/m,/v/n,/v/o,/v/p,/v/q'");
	expect_error_flags(BASE "[replication]\ndirs = v/a\n", CONFIG_NO_SECRET, 9,
			   "[replication] dirs: v/a: is not an absolute path");
	expect_error_flags(BASE "[replication]\ndirs = /v, /v/a\n", CONFIG_NO_SECRET, 9,
			   "[replication] dirs: /v/a is nested in /v");
	expect_error_flags(BASE "[replication]\ndirs = /var/lib\n", CONFIG_NO_SECRET, 9,
			   "[replication] dirs: /var/lib: contains state_dir /var/lib/vigil");
}

static void test_err_replication(void **state)
{
	/* dirs */
	expect_error(BASE "[replication]\ndirs = srv/x\n", 9, "[replication] dirs: srv/x: is not an absolute path");
	expect_error(BASE "[replication]\ndirs = /\n", 9,
		     "[replication] dirs: /: the root directory cannot be replicated");
	expect_error(BASE "[replication]\ndirs = ///\n", 9,
		     "[replication] dirs: ///: the root directory cannot be replicated");
	expect_error(D(BASE "[replication]\ndirs = @D@/nope\n"), 9, D("[replication] dirs: @D@/nope: does not exist"));
	expect_error(D(BASE "[replication]\ndirs = @D@/f\n"), 9, D("[replication] dirs: @D@/f: is not a directory"));
	expect_error(D(BASE "[replication]\ndirs = @D@/f/x\n"), 9,
		     D("[replication] dirs: @D@/f/x: Not a directory"));
	expect_error(D(BASE "[replication]\ndirs = @D@/a/../b\n"), 9,
		     D("[replication] dirs: @D@/a/../b: has a '.' or '..' component"));
	expect_error(D(BASE "[replication]\ndirs = @D@/./a\n"), 9,
		     D("[replication] dirs: @D@/./a: has a '.' or '..' component"));
	expect_error(D(BASE "[replication]\ndirs = @D@/a, @D@/b, @D@/a\n"), 9,
		     D("[replication] dirs: @D@/a is listed twice"));
	expect_error(D(BASE "[replication]\ndirs = @D@/a, @D@/a/\n"), 9,
		     D("[replication] dirs: @D@/a and @D@/a/ are the same directory"));
	expect_error(D(BASE "[replication]\ndirs = @D@/a, @D@/a/inner\n"), 9,
		     D("[replication] dirs: @D@/a/inner is nested in @D@/a"));
	expect_error(D(BASE "[replication]\ndirs = @D@/a/inner/, @D@/a\n"), 9,
		     D("[replication] dirs: @D@/a/inner is nested in @D@/a"));
	expect_error(BASE "[replication]\ndirs =\n", 9, "[replication] dirs: needs at least one directory");
	expect_error(BASE "[replication]\ndirs =   ; none\n", 9, "[replication] dirs: needs at least one directory");
	expect_error(D(BASE "[replication]\ndirs = @D@/a,,@D@/b\n"), 9,
		     D("[replication] dirs: empty entry in '@D@/a,,@D@/b'"));
	expect_error(D(BASE "[replication]\ndirs = @D@/a,\n"), 9, D("[replication] dirs: empty entry in '@D@/a,'"));
	expect_error(BASE "[replication]\nmode = sync\n", 8, "missing required key 'dirs' in [replication]");
	expect_error(BASE "[replication]\n", 8, "missing required key 'dirs' in [replication]");

	/* against state_dir and run_dir, also when [cluster] comes later */
#define CLUSTER(extra) "[cluster]\nname = vms\nsecret_file = @SECRET@\n" extra \
	"[node node1]\naddress = 10.0.0.1\n[node node2]\naddress = 10.0.0.2\n"
	expect_error(D(CLUSTER("state_dir = @D@/a/inner\n") "[replication]\ndirs = @D@/b, @D@/a\n"), 10,
		     D("[replication] dirs: @D@/a: contains state_dir @D@/a/inner"));
	expect_error(D("[replication]\ndirs = @D@/a\n" CLUSTER("state_dir = @D@/a/inner/\n")), 2,
		     D("[replication] dirs: @D@/a: contains state_dir @D@/a/inner"));
	expect_error(D(CLUSTER("state_dir = @D@/a\n") "[replication]\ndirs = @D@/a\n"), 10,
		     D("[replication] dirs: @D@/a: is state_dir"));
	expect_error(D(CLUSTER("state_dir = @D@/a\n") "[replication]\ndirs = @D@/a/inner\n"), 10,
		     D("[replication] dirs: @D@/a/inner: lies inside state_dir @D@/a"));
	expect_error(D(CLUSTER("run_dir = @D@/b/run\n") "[replication]\ndirs = @D@/b\n"), 10,
		     D("[replication] dirs: @D@/b: contains run_dir @D@/b/run"));
	expect_error(D(CLUSTER("run_dir = @D@/b\n") "[replication]\ndirs = @D@/b\n"), 10,
		     D("[replication] dirs: @D@/b: is run_dir"));
#undef CLUSTER

	/* aside_dir */
	expect_error(D(BASE "[replication]\ndirs = @D@/a\naside_dir = @D@/a/aside\n"), 9,
		     D("[replication] dirs: @D@/a: overlaps [replication] aside_dir @D@/a/aside"));
	expect_error(D(BASE "[replication]\ndirs = @D@/a/inner\naside_dir = @D@/a\n"), 9,
		     D("[replication] dirs: @D@/a/inner: overlaps [replication] aside_dir @D@/a"));

	/* exclude */
	expect_error(D(BASE "[replication]\ndirs = @D@/a\nexclude = *.tmp, x, *.tmp\n"), 10,
		     "[replication] exclude: '*.tmp' is listed twice");
	expect_error(D(BASE "[replication]\ndirs = @D@/a\nexclude = *.tmp, pg_wal/*.partial\n"), 10,
		     "[replication] exclude: 'pg_wal/*.partial': a glob matches a file or directory name, "
		     "not a path (no '/')");
	expect_error(D(BASE "[replication]\ndirs = @D@/a\nexclude =\n"), 10,
		     "[replication] exclude: needs at least one glob");
	expect_error(D(BASE "[replication]\ndirs = @D@/a\nexclude = a,,b\n"), 10,
		     "[replication] exclude: empty entry in 'a,,b'");
	expect_error(D(BASE "[replication]\ndirs = @D@/a\nexclude = 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,"
		       "17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33\n"), 10,
		     "[replication] exclude: at most 32 entries, got more in '1,2,3,4,5,6,7,8,9,10,11,12,13,14,"
		     "15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33'");

	/* the other keys */
	expect_error(D(BASE "[replication]\ndirs = @D@/a\nmode = fast\n"), 10,
		     "mode: must be one of sync, async; got 'fast'");
	expect_error(D(BASE "[replication]\ndirs = @D@/a\ncache = none\n"), 10,
		     "cache: must be one of direct, page; got 'none'");
	expect_error(D(BASE "[replication]\ndirs = @D@/a\nport = 0\n"), 10,
		     "port: must be a whole number from 1 to 65535, got '0'");
	expect_error(D(BASE "[replication]\ndirs = @D@/a\nack_timeout_ms = 499\n"), 10,
		     "ack_timeout_ms: must be a whole number from 500 to 600000, got '499'");
	expect_error(D(BASE "[replication]\ndirs = @D@/a\nack_timeout_ms = 600001\n"), 10,
		     "ack_timeout_ms: must be a whole number from 500 to 600000, got '600001'");
	expect_error(D(BASE "[replication]\ndirs = @D@/a\ncheckpoint_ms = 9\n"), 10,
		     "checkpoint_ms: must be a whole number from 10 to 60000, got '9'");
	expect_error(D(BASE "[replication]\ndirs = @D@/a\ncheckpoint_ms = 60001\n"), 10,
		     "checkpoint_ms: must be a whole number from 10 to 60000, got '60001'");
	expect_error(D(BASE "[replication]\ndirs = @D@/a\nconnect_timeout_ms = 600001\n"), 10,
		     "connect_timeout_ms: must be a whole number from 0 to 600000, got '600001'");
	expect_error(D(BASE "[replication]\ndirs = @D@/a\nasync_max_ms = 1\n"), 10,
		     "unknown key 'async_max_ms' in [replication]");
	expect_error(D(BASE "[replication]\ndirs = @D@/a\ndirs = @D@/b\n"), 10,
		     "duplicate key 'dirs' in [replication] (first at line 9)");
	expect_error(D(BASE "[replication]\ndirs = @D@/a\n[replication]\ndirs = @D@/b\n"), 10,
		     "duplicate section [replication] (first at line 8)");
	expect_error(BASE "[replication r]\n", 8, "section [replication] takes no name, got [replication r]");
}

/* ---- [pool] ---- */

/* A recorder's whole file: lines 1-7; whatever is appended starts at 8. */
#define RECORDER \
	"[pool]\n" \
	"role = recorder\n" \
	"name = rec1\n" \
	"master = 10.0.0.100:4810\n" \
	"group = north\n" \
	"start = /usr/bin/rec-start\n" \
	"stop = /usr/bin/rec-stop\n"

/* A spare's, lines 1-7 as well. */
#define SPARE \
	"[pool]\n" \
	"role = spare\n" \
	"name = sp1\n" \
	"master = 10.0.0.100:4810\n" \
	"group = north\n" \
	"start = /usr/bin/spare-start\n" \
	"stop = /usr/bin/spare-stop\n"

/* After BASE: lines 8-10, then 11. */
#define MASTER "[pool]\nrole = master\nlisten = 10.0.0.100:4810\n"

static void test_pool_master(void **state)
{
	struct config *cfg = load_ok(BASE MASTER);

	assert_int_equal(cfg->pool_role, POOL_CFG_MASTER);
	assert_true(cfg->pool_listen_set);
	assert_string_equal(ip(cfg->pool_listen.sin_addr), "10.0.0.100");
	assert_int_equal(ntohs(cfg->pool_listen.sin_port), 4810);
	assert_false(cfg->pool_master_set);
	assert_string_equal(cfg->pool_name, "");
	assert_int_equal(cfg->pool_detect_timeout_ms, 10000);
	assert_int_equal(cfg->pool_heartbeat_ms, 1000);
	assert_int_equal(cfg->pool_settings_max_bytes, 16777216);
	assert_int_equal(cfg->pool_failback, POOL_CFG_FAILBACK_AUTO);
	assert_int_equal(cfg->pool_after_failure, POOL_CFG_AFTER_FAILBACK);
	/* registry_dir defaults to state_dir. */
	assert_string_equal(cfg->pool_registry_dir, "/var/lib/vigil");
	/* Everything else as without [pool]. */
	assert_int_equal(cfg->nnodes, 2);
	assert_string_equal(cfg->cluster_name, "vms");
	assert_int_equal(cfg->secret_len, 32);
	done(cfg);

	/* Every master key, [pool] before [cluster]: state_dir is still the default. */
	cfg = load_ok("[pool]\nrole = master\nlisten = 10.0.0.100:4810\ndetect_timeout_ms = 500\n"
	              "heartbeat_ms = 250\nsettings_max_bytes = 4096\nfailback = manual\nafter_failure = swap\n"
	              "[cluster]\nname = vms\nsecret_file = @SECRET@\nstate_dir = /srv/vigil\n"
	              "[node node1]\naddress = 10.0.0.1\n[node node2]\naddress = 10.0.0.2\n");
	assert_int_equal(cfg->pool_detect_timeout_ms, 500);
	assert_int_equal(cfg->pool_heartbeat_ms, 250);
	assert_int_equal(cfg->pool_settings_max_bytes, 4096);
	assert_int_equal(cfg->pool_failback, POOL_CFG_FAILBACK_MANUAL);
	assert_int_equal(cfg->pool_after_failure, POOL_CFG_AFTER_SWAP);
	assert_string_equal(cfg->pool_registry_dir, "/srv/vigil");
	done(cfg);

	cfg = load_ok(BASE MASTER "registry_dir = /srv/vms/db/pool\n");
	assert_string_equal(cfg->pool_registry_dir, "/srv/vms/db/pool");
	done(cfg);

	/* Without [pool]: no role; the defaults are in place but unused. */
	cfg = load_ok(BASE);
	assert_int_equal(cfg->pool_role, POOL_CFG_NONE);
	assert_string_equal(cfg->pool_registry_dir, "");
	assert_null(cfg->pool_start);
	done(cfg);
}

static void test_pool_recorder(void **state)
{
	/* No [cluster] at all. */
	struct config *cfg = load_ok(RECORDER);

	assert_int_equal(cfg->pool_role, POOL_CFG_RECORDER);
	assert_string_equal(cfg->pool_name, "rec1");
	assert_true(cfg->pool_master_set);
	assert_string_equal(ip(cfg->pool_master.sin_addr), "10.0.0.100");
	assert_int_equal(ntohs(cfg->pool_master.sin_port), 4810);
	assert_false(cfg->pool_listen_set);
	assert_string_equal(cfg->pool_group, "north");
	assert_string_equal(cfg->pool_secondary_group, "");
	assert_string_equal(cfg->pool_start, "/usr/bin/rec-start");
	assert_string_equal(cfg->pool_stop, "/usr/bin/rec-stop");
	assert_null(cfg->pool_check);
	/* defaults */
	assert_true(cfg->pool_failover);
	assert_int_equal(cfg->pool_detect_timeout_ms, 10000);
	assert_string_equal(cfg->pool_settings_dir, "/var/lib/vms/settings");
	assert_string_equal(cfg->pool_recordings_dir, "/var/lib/vms/recordings");
	assert_int_equal(cfg->pool_script_timeout_ms, 60000);
	assert_int_equal(cfg->pool_copy_port, 4811);
	assert_string_equal(cfg->pool_registry_dir, "");
	assert_string_equal(cfg->state_dir, "/var/lib/vigil");
	assert_string_equal(cfg->run_dir, "/run/vigil");
	assert_int_equal(cfg->log_max_bytes, 1048576);
	assert_string_equal(cfg->cluster_name, "");
	assert_int_equal(cfg->secret_len, 0);
	assert_int_equal(cfg->nnodes, 0);
	done(cfg);

	/* Every recorder key; a [cluster] without name and secret_file; [notify] and [console]. */
	cfg = load_ok("[cluster]\nstate_dir = /srv/vigil\nrun_dir = /run/v\n"
	              "[notify]\ncommand = /bin/true\n[console]\nhttp_port = 0\n"
	              RECORDER "secondary_group = south\nfailover = off\nsettings_dir = /srv/vms/settings\n"
	              "recordings_dir = /srv/vms/rec\ncheck = /usr/bin/rec-check\nscript_timeout_ms = 1000\n"
	              "copy_port = 5000\n");
	assert_string_equal(cfg->state_dir, "/srv/vigil");
	assert_string_equal(cfg->run_dir, "/run/v");
	assert_int_equal(cfg->nnotify, 1);
	assert_int_equal(cfg->console_http_port, 0);
	assert_string_equal(cfg->pool_secondary_group, "south");
	assert_false(cfg->pool_failover);
	assert_string_equal(cfg->pool_settings_dir, "/srv/vms/settings");
	assert_string_equal(cfg->pool_recordings_dir, "/srv/vms/rec");
	assert_string_equal(cfg->pool_check, "/usr/bin/rec-check");
	assert_int_equal(cfg->pool_script_timeout_ms, 1000);
	assert_int_equal(cfg->pool_copy_port, 5000);
	assert_int_equal(cfg->secret_len, 0);
	done(cfg);

	/* A secret_file given is loaded as on a mirror node. */
	cfg = load_ok(RECORDER "failover = on\n[cluster]\nsecret_file = @SECRET@\n");
	assert_true(cfg->pool_failover);
	assert_int_equal(cfg->secret_len, 32);
	done(cfg);
	expect_error(RECORDER "[cluster]\nsecret_file = /tmp/vigil-test-no-such-secret\n", 9,
	             "secret_file '/tmp/vigil-test-no-such-secret': No such file or directory");
}

static void test_pool_spare(void **state)
{
	struct config *cfg = load_ok(SPARE "recordings_dir = /srv/rec\nscript_timeout_ms = 600000\n");

	assert_int_equal(cfg->pool_role, POOL_CFG_SPARE);
	assert_string_equal(cfg->pool_name, "sp1");
	assert_string_equal(cfg->pool_group, "north");
	assert_string_equal(cfg->pool_start, "/usr/bin/spare-start");
	assert_string_equal(cfg->pool_stop, "/usr/bin/spare-stop");
	assert_string_equal(cfg->pool_settings_dir, "/var/lib/vms/settings");
	assert_string_equal(cfg->pool_recordings_dir, "/srv/rec");
	assert_int_equal(cfg->pool_script_timeout_ms, 600000);
	assert_int_equal(cfg->nnodes, 0);
	done(cfg);

	/* A client (vigilctl) loads it too. */
	{
		struct config c;
		char err[512];

		write_conf(SPARE);
		assert_int_equal(config_load_flags(conf_path, &c, CONFIG_NO_SECRET, err, sizeof(err)), 0);
		assert_int_equal(c.pool_role, POOL_CFG_SPARE);
		config_free(&c);
	}
}

static void test_err_pool_keys(void **state)
{
	expect_error("[pool]\nname = rec1\ngroup = north\n", 1, "missing required key 'role' in [pool]");
	expect_error(BASE "[pool]\nlisten = 10.0.0.100:4810\n", 8, "missing required key 'role' in [pool]");
	expect_error("[pool]\nrole = slave\n", 2, "role: must be one of master, recorder, spare; got 'slave'");
	expect_error("[pool]\nrole = none\n", 2, "role: must be one of master, recorder, spare; got 'none'");
	expect_error(RECORDER "bogus = 1\n", 8, "unknown key 'bogus' in [pool]");
	expect_error(RECORDER "name = rec2\n", 8, "duplicate key 'name' in [pool] (first at line 3)");
	expect_error(RECORDER "[pool]\n", 8, "duplicate section [pool] (first at line 1)");
	expect_error("[pool x]\n", 1, "section [pool] takes no name, got [pool x]");
	expect_error(RECORDER "failover = maybe\n", 8, "failover: must be one of on, off; got 'maybe'");
	expect_error(RECORDER "copy_port = 0\n", 8, "copy_port: must be a whole number from 1 to 65535, got '0'");
	expect_error(RECORDER "settings_dir = vms\n", 8, "settings_dir: must be an absolute path, got 'vms'");
	expect_error(BASE MASTER "failback = never\n", 11, "failback: must be one of auto, manual; got 'never'");
	expect_error(BASE MASTER "after_failure = keep\n", 11,
	             "after_failure: must be one of failback, swap; got 'keep'");
	expect_error(BASE MASTER "detect_timeout_ms = 499\n", 11,
	             "detect_timeout_ms: must be a whole number from 500 to 3600000, got '499'");
	expect_error(BASE MASTER "settings_max_bytes = 16777217\n", 11,
	             "settings_max_bytes: must be a whole number from 4096 to 16777216, got '16777217'");
	expect_error(BASE "[pool]\nrole = master\nlisten = 10.0.0.100\n", 10,
	             "listen: '10.0.0.100' is not IPv4:PORT, like 10.0.0.3:4800");
}

static void test_err_pool_roles(void **state)
{
	/* Required for the role: reported at the section's line. */
	expect_error("[pool]\nrole = recorder\nname = rec1\ngroup = north\nstart = a\nstop = b\n", 1,
	             "missing required key 'master' in [pool] for role = recorder");
	expect_error("[pool]\nrole = spare\nmaster = 10.0.0.100:4810\ngroup = north\nstart = a\nstop = b\n", 1,
	             "missing required key 'name' in [pool] for role = spare");
	expect_error("[pool]\nrole = spare\nname = sp1\nmaster = 10.0.0.100:4810\nstart = a\nstop = b\n", 1,
	             "missing required key 'group' in [pool] for role = spare");
	expect_error("[pool]\nrole = recorder\nname = r\nmaster = 10.0.0.100:4810\ngroup = g\nstop = b\n", 1,
	             "missing required key 'start' in [pool] for role = recorder");
	expect_error("[pool]\nrole = spare\nname = r\nmaster = 10.0.0.100:4810\ngroup = g\nstart = a\n", 1,
	             "missing required key 'stop' in [pool] for role = spare");
	expect_error(BASE "[pool]\nrole = master\n", 8, "missing required key 'listen' in [pool] for role = master");

	/* Given to a role that does not take it: reported at the key's line. */
	expect_error(SPARE "secondary_group = south\n", 8,
	             "[pool] secondary_group: only for role = recorder (this is a spare)");
	expect_error(SPARE "failover = off\n", 8, "[pool] failover: only for role = recorder (this is a spare)");
	expect_error(SPARE "check = /bin/true\n", 8, "[pool] check: only for role = recorder (this is a spare)");
	expect_error(SPARE "copy_port = 4812\n", 8, "[pool] copy_port: only for role = recorder (this is a spare)");
	expect_error(BASE MASTER "group = north\n", 11,
	             "[pool] group: only for role = recorder or spare (this is a master)");
	expect_error(BASE MASTER "start = /bin/true\n", 11,
	             "[pool] start: only for role = recorder or spare (this is a master)");
	expect_error(BASE MASTER "name = m1\n", 11,
	             "[pool] name: only for role = recorder or spare (the master is named by its [node])");
	expect_error(BASE MASTER "master = 10.0.0.1:4810\n", 11,
	             "[pool] master: only for role = recorder or spare (this is a master)");
	expect_error(BASE MASTER "settings_dir = /srv/s\n", 11,
	             "[pool] settings_dir: only for role = recorder or spare (this is a master)");
	expect_error(BASE MASTER "secondary_group = south\n", 11,
	             "[pool] secondary_group: only for role = recorder (this is a master)");
	expect_error(RECORDER "listen = 10.0.0.5:4810\n", 8,
	             "[pool] listen: only for role = master (this is a recorder)");
	expect_error(RECORDER "failback = manual\n", 8,
	             "[pool] failback: only for role = master (this is a recorder)");
	expect_error(SPARE "after_failure = swap\n", 8,
	             "[pool] after_failure: only for role = master (this is a spare)");
	expect_error(RECORDER "detect_timeout_ms = 20000\n", 8,
	             "[pool] detect_timeout_ms: only for role = master (this is a recorder)");
	expect_error(RECORDER "heartbeat_ms = 500\n", 8,
	             "[pool] heartbeat_ms: only for role = master (this is a recorder)");
	expect_error(RECORDER "registry_dir = /srv/db\n", 8,
	             "[pool] registry_dir: only for role = master (this is a recorder)");
	expect_error(SPARE "settings_max_bytes = 4096\n", 8,
	             "[pool] settings_max_bytes: only for role = master (this is a spare)");
	/* The first wrong key in the file, wherever the role line is. */
	expect_error("[pool]\nfailback = manual\nlisten = 10.0.0.5:4810\nrole = recorder\n", 2,
	             "[pool] failback: only for role = master (this is a recorder)");
	/* A wrong key is reported before a missing one. */
	expect_error("[pool]\nrole = recorder\nlisten = 10.0.0.5:4810\n", 3,
	             "[pool] listen: only for role = master (this is a recorder)");

	/* secondary_group differs from group. */
	expect_error(RECORDER "secondary_group = north\n", 8,
	             "[pool] secondary_group: must differ from group ('north')");

	/* detect_timeout_ms >= 2 * heartbeat_ms, at whichever was given. */
	expect_error(BASE MASTER "heartbeat_ms = 1000\ndetect_timeout_ms = 1999\n", 12,
	             "[pool] detect_timeout_ms: must be at least 2 * heartbeat_ms = 2000, got 1999");
	expect_error(BASE MASTER "heartbeat_ms = 6000\n", 11,
	             "[pool] detect_timeout_ms: must be at least 2 * heartbeat_ms = 12000, got 10000");
	expect_error(BASE MASTER "detect_timeout_ms = 1000\n", 11,
	             "[pool] detect_timeout_ms: must be at least 2 * heartbeat_ms = 2000, got 1000");
	done(load_ok(BASE MASTER "heartbeat_ms = 250\ndetect_timeout_ms = 500\n"));
}

static void test_err_pool_sections(void **state)
{
	/* A recorder or spare is not a mirror node: after [pool] ... */
	expect_error(RECORDER "[node n1]\naddress = 10.0.0.1\n", 8,
	             "[node n1]: a pool recorder is not a mirror node; remove this section");
	expect_error(SPARE "[heartbeat]\n", 8, "[heartbeat]: a pool spare is not a mirror node; remove this section");
	expect_error(RECORDER "[notify]\ncommand = x\n[vip]\n", 10,
	             "[vip]: a pool recorder is not a mirror node; remove this section");
	expect_error(RECORDER "[replication]\ndirs = /srv\n", 8,
	             "[replication]: a pool recorder is not a mirror node; remove this section");
	expect_error(RECORDER "[resource web]\nstart = a\nstop = b\n", 8,
	             "[resource web]: a pool recorder is not a mirror node; remove this section");
	expect_error(RECORDER "[checker c]\ntype = ping\ntarget = 10.0.0.254\n", 8,
	             "[checker c]: a pool recorder is not a mirror node; remove this section");
	expect_error(SPARE "[witness]\nping = 10.0.0.254\n", 8,
	             "[witness]: a pool spare is not a mirror node; remove this section");
	/* ... and before it: the first such section in the file. */
	expect_error("[cluster]\nname = vms\nsecret_file = @SECRET@\n[notify]\ncommand = x\n"
	             "[resource r]\nstart = a\nstop = b\n[witness]\nping = 10.0.0.254\n" RECORDER, 6,
	             "[resource r]: a pool recorder is not a mirror node; remove this section");
	/* Until [pool] is read, a mirror node's section makes the file a
	 * mirror node's, whose [cluster] needs all its keys. */
	expect_error("[cluster]\nstate_dir = /srv/v\n[resource r]\nstart = a\nstop = b\n" RECORDER, 1,
	             "missing required key 'name' in [cluster]");
	expect_error("[heartbeat]\nport = 9\n[node n1]\naddress = 10.0.0.1\n" SPARE, 1,
	             "[heartbeat]: a pool spare is not a mirror node; remove this section");
	expect_error("[node n1]\naddress = 10.0.0.1\n" SPARE, 1,
	             "[node n1]: a pool spare is not a mirror node; remove this section");

	/* A master's file is a mirror node's: [cluster] and two [node] as ever. */
	expect_error("[cluster]\nname = vms\n" MASTER "[node node1]\naddress = 10.0.0.1\n", 1,
	             "missing required key 'secret_file' in [cluster]");
	expect_error(MASTER "[cluster]\nsecret_file = @SECRET@\n[node node1]\naddress = 10.0.0.1\n", 4,
	             "missing required key 'name' in [cluster]");
	expect_error(MASTER "[node node1]\naddress = 10.0.0.1\n", 5, "missing required section [cluster]");
	expect_error("[cluster]\nname = vms\nsecret_file = @SECRET@\n" MASTER, 6,
	             "missing required section [node NAME]");
	expect_error(BASE MASTER "[node node3]\naddress = 10.0.0.3\n", 11, "too many [node] sections (at most 2)");
	/* Without [pool], a [cluster] that lacks keys is reported as before,
	 * also when only [notify] follows it. */
	expect_error("[cluster]\nname = vms\n[notify]\ncommand = x\n", 1,
	             "missing required key 'secret_file' in [cluster]");
	expect_error("[cluster]\nsecret_file = @SECRET@\n[console]\n", 1, "missing required key 'name' in [cluster]");
}

static void test_pool_str(void **state)
{
	assert_string_equal(pool_cfg_role_str(POOL_CFG_NONE), "none");
	assert_string_equal(pool_cfg_role_str(POOL_CFG_MASTER), "master");
	assert_string_equal(pool_cfg_role_str(POOL_CFG_RECORDER), "recorder");
	assert_string_equal(pool_cfg_role_str(POOL_CFG_SPARE), "spare");
	assert_string_equal(pool_cfg_role_str((enum pool_cfg_role)4), "?");
	assert_string_equal(pool_cfg_failback_str(POOL_CFG_FAILBACK_AUTO), "auto");
	assert_string_equal(pool_cfg_failback_str(POOL_CFG_FAILBACK_MANUAL), "manual");
	assert_string_equal(pool_cfg_failback_str((enum pool_cfg_failback)2), "?");
	assert_string_equal(pool_cfg_after_str(POOL_CFG_AFTER_FAILBACK), "failback");
	assert_string_equal(pool_cfg_after_str(POOL_CFG_AFTER_SWAP), "swap");
	assert_string_equal(pool_cfg_after_str((enum pool_cfg_after)2), "?");
}

/* ---- help ---- */

static void test_help(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	static const char *const keys[] = { "name", "secret_file", "state_dir", "run_dir", "log_max_bytes",
		"address", "port", "interval_ms", "timeout_ms", "interface", "probe_ms", "garp_burst",
		"garp_repeats", "garp_interval_ms", "start", "stop", "when", "after" };
	char want[64];

	assert_non_null(f);
	config_print_help(f, true);
	fclose(f);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(want, sizeof(want), "| `%s` |", keys[i]);
		assert_non_null(strstr(buf, want));
	}
	assert_non_null(strstr(buf, "## [heartbeat]\n"));
	assert_non_null(strstr(buf, "## [resource NAME]\n"));
	assert_non_null(strstr(buf, "| `timeout_ms` | integer | 5000 | 30..600000 |"));
	assert_non_null(strstr(buf, "| `when` | choice | prim | prim, second, both |"));
	assert_non_null(strstr(buf, "## [replication]\n"));
	assert_non_null(strstr(buf, "| `dirs` | path list | required | 1..16 absolute, comma-separated |"));
	assert_non_null(strstr(buf, "| `exclude` | glob list | - | 1..32 of max 255 chars, comma-separated |"));
	assert_non_null(strstr(buf, "| `mode` | choice | sync | sync, async |"));
	assert_non_null(strstr(buf, "| `port` | port | 5600 | 1..65535 |"));
	assert_non_null(strstr(buf, "| `cache` | choice | direct | direct, page |"));
	assert_non_null(strstr(buf, "| `ack_timeout_ms` | integer | 5000 | 500..600000 |"));
	assert_non_null(strstr(buf, "| `checkpoint_ms` | integer | 1000 | 10..60000 |"));
	assert_non_null(strstr(buf, "| `connect_timeout_ms` | integer | 10000 | 0..600000 |"));
	assert_non_null(strstr(buf, "## [pool]\n"));
	assert_non_null(strstr(buf, "| `role` | choice | required | master, recorder, spare |"));
	assert_non_null(strstr(buf, "| `failover` | choice | on | on, off |"));
	assert_non_null(strstr(buf, "| `detect_timeout_ms` | integer | 10000 | 500..3600000 |"));
	assert_non_null(strstr(buf, "| `copy_port` | port | 4811 | 1..65535 |"));
	free(buf);

	f = open_memstream(&buf, &len);
	assert_non_null(f);
	config_print_help(f, false);
	fclose(f);
	assert_null(strstr(buf, "| `"));
	assert_non_null(strstr(buf, "[vip]\n"));
	assert_non_null(strstr(buf, "  garp_interval_ms   integer      1000            10..60000\n"));
	assert_non_null(strstr(buf, "  connect_timeout_ms integer      10000           0..600000\n"));
	assert_non_null(strstr(buf, "\n[replication]\n"));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(want, sizeof(want), "\n  %s ", keys[i]);
		assert_non_null(strstr(buf, want));
	}
	free(buf);
}

static void test_when_str(void **state)
{
	assert_string_equal(res_when_str(WHEN_PRIM), "prim");
	assert_string_equal(res_when_str(WHEN_SECOND), "second");
	assert_string_equal(res_when_str(WHEN_BOTH), "both");
	assert_string_equal(res_when_str((enum res_when)7), "?");
	assert_string_equal(repl_mode_str(REPL_SYNC), "sync");
	assert_string_equal(repl_mode_str(REPL_ASYNC), "async");
	assert_string_equal(repl_mode_str((enum repl_mode)2), "?");
	assert_string_equal(repl_cache_str(REPL_CACHE_DIRECT), "direct");
	assert_string_equal(repl_cache_str(REPL_CACHE_PAGE), "page");
	assert_string_equal(repl_cache_str((enum repl_cache)2), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_contract_example, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_secret_flag, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_keys_set, setup, teardown),
		cmocka_unit_test_setup_teardown(test_comments_and_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resource_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_resources, setup, teardown),
		cmocka_unit_test_setup_teardown(test_err_unknown_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_err_unknown_section, setup, teardown),
		cmocka_unit_test_setup_teardown(test_err_duplicate_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_err_numbers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_err_timeout_vs_interval, setup, teardown),
		cmocka_unit_test_setup_teardown(test_err_node_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_err_nodes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_err_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_err_secret, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secret_permissions_warn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_err_line_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_err_syntax, setup, teardown),
		cmocka_unit_test_setup_teardown(test_err_nul_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_err_strings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_err_vip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_err_after, setup, teardown),
		cmocka_unit_test_setup_teardown(test_err_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_find_local_node, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_err_notify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checker_contract, setup, teardown),
		cmocka_unit_test_setup_teardown(test_err_checker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_err_witness, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replication, setup_repl, teardown_repl),
		cmocka_unit_test_setup_teardown(test_replication_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_err_replication, setup_repl, teardown_repl),
		cmocka_unit_test_setup_teardown(test_pool_master, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_recorder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_spare, setup, teardown),
		cmocka_unit_test_setup_teardown(test_err_pool_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_err_pool_roles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_err_pool_sections, setup, teardown),
		cmocka_unit_test(test_pool_str),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_when_str),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
