/* vigilctl setup primary: node1 checks node2 through the security code,
 * learns node2's facts, writes both nodes' configuration, the secret, the
 * password hash, the CA and both certificates, sends node2 its part and
 * starts vigild. Everything is staged and put in place only once node2
 * acknowledged its part: a failure leaves nothing behind on node1. */
#include "vigilctl_setup_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/auth.h"
#include "common/util.h"
#include "pki/pki.h"
#include "vigil_build.h"

#define SAN_LEN 256

struct primary_opts {
	const char *peer, *vip, *code, *address, *replicate, *aside, *export_dir;
	const char *name, *node1, *node2;
};

/* Everything node1 knows once it heard node2. */
struct primary {
	const struct setup_paths *p;
	struct primary_opts o;
	struct setup_cluster c;
	struct in_addr peer[CFG_MAX_NETS];
	char code[SETUP_CODE_CHARS + 1];
	struct setup_ifs local, remote;
	char host1[256], host2[256];
	char hash[256];
	enum setup_console console;
	struct setup_stage stage;
	struct setup_chan chan;
	bool talking;                   /* the agent waits for our package */
};

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("vigilctl setup primary: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

static int parse(int argc, char **argv, struct primary_opts *o)
{
	static const struct {
		const char *name;
		size_t off;
	} opts[] = {
		{ "--peer", offsetof(struct primary_opts, peer) },
		{ "--vip", offsetof(struct primary_opts, vip) },
		{ "--code", offsetof(struct primary_opts, code) },
		{ "--address", offsetof(struct primary_opts, address) },
		{ "--replicate", offsetof(struct primary_opts, replicate) },
		{ "--aside-dir", offsetof(struct primary_opts, aside) },
		{ "--export", offsetof(struct primary_opts, export_dir) },
		{ "--name", offsetof(struct primary_opts, name) },
		{ "--node1", offsetof(struct primary_opts, node1) },
		{ "--node2", offsetof(struct primary_opts, node2) },
	};

	*o = (struct primary_opts){ .name = "vms", .node1 = "node1", .node2 = "node2" };
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *val = NULL;
		size_t k;

		for (k = 0; k < ARRAY_SIZE(opts); k++) {
			size_t n = strlen(opts[k].name);

			if (!strcmp(a, opts[k].name)) {
				if (i + 1 >= argc)
					return fail("%s needs a value (see vigilctl setup --help)", a);
				val = argv[++i];
				break;
			}
			if (!strncmp(a, opts[k].name, n) && a[n] == '=') {
				val = a + n + 1;
				break;
			}
		}
		if (k == ARRAY_SIZE(opts))
			return fail("unknown option '%s' (see vigilctl setup --help)", a);
		*(const char **)((char *)o + opts[k].off) = val;
	}
	if (!o->peer || !o->vip || !o->code)
		return fail("--peer, --vip and --code are needed, like: vigilctl setup primary --peer 10.0.0.2 "
			    "--vip 10.0.0.100/24 --code ABCD-EFGH-IJKL-MNOP-QRST");
	return 0;
}

static int check_dir(const char *what, const char *d)
{
	struct stat st;

	if (d[0] != '/')
		return fail("%s '%s': an absolute path is needed", what, d);
	if (stat(d, &st) < 0)
		return fail("%s %s: %s", what, d, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return fail("%s %s: not a directory", what, d);
	return 0;
}

/* --replicate: comma-separated existing directories, kept as "a, b". */
static int parse_replicate(struct primary *pr)
{
	char buf[sizeof(pr->c.repl_dirs)], *save = NULL, *tok;
	size_t used = 0;
	int n = 0;

	if (!pr->o.replicate) {
		if (pr->o.aside)
			return fail("--aside-dir %s: it goes with --replicate (where vigil-rfs keeps what it sets "
				    "aside), and --replicate is not given", pr->o.aside);
		return 0;
	}
	if (!strlcpy_ok(buf, pr->o.replicate, sizeof(buf)))
		return fail("--replicate: too long");
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		tok[strcspn(tok, " ")] = '\0';
		if (!*tok)
			continue;
		if (++n > CFG_MAX_REPL_DIRS)
			return fail("--replicate: at most %d directories", CFG_MAX_REPL_DIRS);
		if (check_dir("--replicate", tok) < 0)
			return -1;
		used += (size_t)snprintf(pr->c.repl_dirs + used, sizeof(pr->c.repl_dirs) - used, "%s%s",
					 used ? ", " : "", tok);
	}
	if (!n)
		return fail("--replicate: no directory given");
	if (pr->o.aside) {
		if (check_dir("--aside-dir", pr->o.aside) < 0)
			return -1;
		if (!strlcpy_ok(pr->c.aside_dir, pr->o.aside, sizeof(pr->c.aside_dir)))
			return fail("--aside-dir: too long");
	}
	return 0;
}

/* What can be checked before asking node2. */
static int check_args(struct primary *pr)
{
	char err[512];
	int npeer, naddr;
	struct in_addr own[CFG_MAX_NETS] = { { 0 } };

	if (setup_check_name("--name", pr->o.name, err, sizeof(err)) < 0 ||
	    setup_check_name("--node1", pr->o.node1, err, sizeof(err)) < 0 ||
	    setup_check_name("--node2", pr->o.node2, err, sizeof(err)) < 0)
		return fail("%s", err);
	if (!strcmp(pr->o.node1, pr->o.node2))
		return fail("--node1 and --node2 are both '%s': the nodes need different names", pr->o.node1);
	snprintf(pr->c.name, sizeof(pr->c.name), "%s", pr->o.name);
	snprintf(pr->c.node[0], sizeof(pr->c.node[0]), "%s", pr->o.node1);
	snprintf(pr->c.node[1], sizeof(pr->c.node[1]), "%s", pr->o.node2);
	if (setup_parse_addr_list("--peer", pr->o.peer, pr->peer, &npeer, err, sizeof(err)) < 0)
		return fail("%s (node2's IPv4 address)", err);
	if (setup_parse_cidr(pr->o.vip, &pr->c.vip, &pr->c.vip_prefix, err, sizeof(err)) < 0)
		return fail("--vip %s", err);
	if (setup_code_normalize(pr->o.code, pr->code, err, sizeof(err)) < 0)
		return fail("--code: %s", err);
	if (pr->o.address) {
		if (setup_parse_addr_list("--address", pr->o.address, own, &naddr, err, sizeof(err)) < 0)
			return fail("%s", err);
		if (naddr != npeer)
			return fail("--address gives %d address%s and --peer %d: give one address of this node "
				    "for each of node2's, in the same order", naddr, naddr == 1 ? "" : "es", npeer);
		memcpy(pr->c.addr[0], own, sizeof(own));
	}
	pr->c.nnets = npeer;
	if (pr->o.export_dir && check_dir("--export", pr->o.export_dir) < 0)
		return -1;
	return parse_replicate(pr);
}

/* This node's side: its addresses facing node2, the VIP's interface. */
static int check_local(struct primary *pr)
{
	char err[512], ip[INET_ADDRSTRLEN], vip[INET_ADDRSTRLEN];
	const struct setup_if *e;

	if (setup_local_ifs(&pr->local, err, sizeof(err)) < 0)
		return fail("%s", err);
	inet_ntop(AF_INET, &pr->c.vip, vip, sizeof(vip));
	for (int i = 0; i < pr->c.nnets; i++) {
		inet_ntop(AF_INET, &pr->peer[i], ip, sizeof(ip));
		if (setup_ifs_find(&pr->local, pr->peer[i]))
			return fail("--peer %s is an address of this machine: run setup primary on node1 and give "
				    "node2's address", ip);
		if (pr->o.address) {
			char own[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &pr->c.addr[0][i], own, sizeof(own));
			if (!setup_ifs_find(&pr->local, pr->c.addr[0][i]))
				return fail("--address %s is not an address of this machine", own);
			continue;
		}
		if (!(e = setup_ifs_subnet(&pr->local, pr->peer[i], -1)))
			return fail("no address of this machine is on the network of node2's %s: give this node's "
				    "address with --address", ip);
		pr->c.addr[0][i] = e->addr;
		pr->c.addr[1][i] = pr->peer[i];
		for (int j = 0; j < i; j++)
			if (pr->c.addr[0][j].s_addr == e->addr.s_addr)
				return fail("--peer %s: this machine reaches it through the same address as an earlier "
					    "--peer; give one address per network", ip);
	}
	for (int i = 0; i < pr->c.nnets; i++)
		pr->c.addr[1][i] = pr->peer[i];
	if ((e = setup_ifs_find(&pr->local, pr->c.vip)))
		return fail("--vip %s is already an address of this machine (on %s): the virtual IP must be a free "
			    "address", vip, e->name);
	if (pr->c.vip_prefix < 0) {
		if (!(e = setup_ifs_subnet(&pr->local, pr->c.vip, -1)))
			return fail("--vip %s: no network of this machine holds it: give its prefix (like %s/24) "
				    "and check the address", vip, vip);
		pr->c.vip_prefix = e->prefix;
	}
	if (pr->c.vip_prefix <= 30) {
		uint32_t host = ntohl(pr->c.vip.s_addr) & ((1u << (32 - pr->c.vip_prefix)) - 1);

		if (host == 0 || host == (1u << (32 - pr->c.vip_prefix)) - 1)
			return fail("--vip %s/%d is the %s address of its network, not a host address", vip,
				    pr->c.vip_prefix, host ? "broadcast" : "network");
	}
	if (!(e = setup_ifs_subnet(&pr->local, pr->c.vip, pr->c.vip_prefix)))
		return fail("--vip %s/%d: no interface of this machine has an address in that network, so none "
			    "can carry the virtual IP", vip, pr->c.vip_prefix);
	snprintf(pr->c.vip_if[0], sizeof(pr->c.vip_if[0]), "%s", e->name);
	gethostname(pr->host1, sizeof(pr->host1) - 1);
	return 0;
}

static int say_abort(struct primary *pr, const char *why)
{
	char err[256];
	json_t *m;

	if (!pr->talking)
		return 0;
	m = json_pack("{s:s, s:s}", "type", "abort", "error", why);
	if (m)
		setup_chan_send(&pr->chan, m, err, sizeof(err));
	json_decref(m);
	pr->talking = false;
	return 0;
}

/* The agent: is it node2 (key hash), does it take the code, its facts. */
static int ask_node2(struct primary *pr)
{
	unsigned char keyhash[32];
	char err[1024];
	json_t *hello, *ans, *f;
	const char *s, *bad;

	if (setup_chan_connect(&pr->chan, pr->peer[0], SETUP_PORT, keyhash, err, sizeof(err)) < 0)
		return fail("%s", err);
	if (!setup_code_fits_key(pr->code, keyhash))
		return fail("security code does not match node2's: wrong code or not the right machine (the "
			    "setup agent at %s has another key); nothing was sent to it", pr->chan.peer);
	hello = json_pack("{s:s, s:s, s:s, s:s}", "type", "hello", "code", pr->code, "node", pr->c.node[0],
			  "version", VIGIL_VERSION);
	if (!hello || setup_chan_send(&pr->chan, hello, err, sizeof(err)) < 0) {
		json_decref(hello);
		return fail("%s", hello ? err : "out of memory");
	}
	json_decref(hello);
	if (!(ans = setup_chan_recv(&pr->chan, err, sizeof(err))))
		return fail("no answer from node2's setup agent: %s", err);
	if (!json_is_true(json_object_get(ans, "ok"))) {
		fail("node2 refused: %s", json_string_value(json_object_get(ans, "error")) ?: "no reason given");
		json_decref(ans);
		return -1;
	}
	pr->talking = true;
	f = json_object_get(ans, "facts");
	s = json_string_value(json_object_get(f, "hostname"));
	snprintf(pr->host2, sizeof(pr->host2), "%s", s ? s : "");
	s = json_string_value(json_object_get(f, "password_hash"));
	if (!s || (bad = auth_hash_check(s)) || !strlcpy_ok(pr->hash, s, sizeof(pr->hash))) {
		json_decref(ans);
		say_abort(pr, "no usable password hash");
		return fail("node2 sent no usable password hash");
	}
	s = json_string_value(json_object_get(f, "console"));
	if (!s || setup_console_parse(s, &pr->console) < 0) {
		json_decref(ans);
		say_abort(pr, "unknown console choice");
		return fail("node2 sent an unknown console choice");
	}
	pr->c.console = pr->console;
	if (setup_ifs_from_json(json_object_get(f, "addresses"), &pr->remote, err, sizeof(err)) < 0) {
		json_decref(ans);
		say_abort(pr, err);
		return fail("%s", err);
	}
	json_decref(ans);
	return 0;
}

/* node2's side, from its facts. */
static int check_remote(struct primary *pr, char *err, size_t errlen)
{
	char ip[INET_ADDRSTRLEN], vip[INET_ADDRSTRLEN];
	const struct setup_if *e;

	inet_ntop(AF_INET, &pr->c.vip, vip, sizeof(vip));
	for (int i = 0; i < pr->c.nnets; i++) {
		inet_ntop(AF_INET, &pr->peer[i], ip, sizeof(ip));
		if (!setup_ifs_find(&pr->remote, pr->peer[i])) {
			snprintf(err, errlen, "--peer %s is not an address of node2 (the agent answered from a machine "
				 "without it: NAT?); give node2's own addresses", ip);
			return -1;
		}
	}
	if ((e = setup_ifs_find(&pr->remote, pr->c.vip))) {
		snprintf(err, errlen, "--vip %s is already an address of node2 (on %s): the virtual IP must be a "
			 "free address", vip, e->name);
		return -1;
	}
	if (!(e = setup_ifs_subnet(&pr->remote, pr->c.vip, pr->c.vip_prefix))) {
		snprintf(err, errlen, "--vip %s/%d: no interface of node2 has an address in that network, so it "
			 "could not carry the virtual IP", vip, pr->c.vip_prefix);
		return -1;
	}
	snprintf(pr->c.vip_if[1], sizeof(pr->c.vip_if[1]), "%s", e->name);
	return 0;
}

/* ---- the files ---- */

struct sans {
	char v[PKI_MAX_SANS][SAN_LEN];
	const char *ptr[PKI_MAX_SANS];
	int n;
};

static void san_add(struct sans *l, const char *s)
{
	char err[256];

	if (!*s || pki_san_check(s, err, sizeof(err)) < 0 || strlen(s) >= SAN_LEN || l->n >= PKI_MAX_SANS)
		return;
	for (int i = 0; i < l->n; i++)
		if (!strcasecmp(l->v[i], s))
			return;
	snprintf(l->v[l->n], SAN_LEN, "%s", s);
	l->ptr[l->n] = l->v[l->n];
	l->n++;
}

/* A host name, and its first label if it has a domain. */
static void san_add_host(struct sans *l, const char *host)
{
	char shortname[SAN_LEN];
	const char *dot = strchr(host, '.');

	if (!strcmp(host, "localhost"))
		return;
	san_add(l, host);
	if (dot && dot > host && (size_t)(dot - host) < sizeof(shortname)) {
		snprintf(shortname, sizeof(shortname), "%.*s", (int)(dot - host), host);
		san_add(l, shortname);
	}
}

static void collect_sans(const struct primary *pr, struct sans *l)
{
	char ip[INET_ADDRSTRLEN];

	san_add(l, pr->c.node[0]);
	san_add(l, pr->c.node[1]);
	san_add_host(l, pr->host1);
	san_add_host(l, pr->host2);
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < pr->c.nnets; i++) {
			inet_ntop(AF_INET, &pr->c.addr[k][i], ip, sizeof(ip));
			san_add(l, ip);
		}
	inet_ntop(AF_INET, &pr->c.vip, ip, sizeof(ip));
	san_add(l, ip);
}

static int stage_pki(struct primary *pr, char *err, size_t errlen)
{
	char dir[PATH_MAX], ca[PATH_MAX], exp[PATH_MAX];
	struct sans *l = calloc(1, sizeof(*l));
	int rc = -1;

	if (!l) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	collect_sans(pr, l);
	if (!stage_path(&pr->stage, PKI_SUBDIR, dir) || !stage_path(&pr->stage, PKI_SUBDIR "/" PKI_CA_CERT, ca) ||
	    !stage_path(&pr->stage, SETUP_EXPORT, exp))
		snprintf(err, errlen, "%s: path too long", pr->stage.dir);
	else if (pki_make_ca(dir, pr->c.name, PKI_DEFAULT_DAYS, err, errlen) == 0 &&
		 pki_make_server(dir, pr->c.node[0], l->ptr, l->n, PKI_DEFAULT_DAYS, err, errlen) == 0 &&
		 pki_make_server(dir, pr->c.node[1], l->ptr, l->n, PKI_DEFAULT_DAYS, err, errlen) == 0 &&
		 pki_export_ca(ca, exp, err, errlen) == 0)
		rc = 0;
	free(l);
	return rc;
}

/* A staged config must load (its secret is not in place yet). */
static int check_staged_config(const char *path, const char *who, char *err, size_t errlen)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	char why[1024];
	int rc;

	if (!cfg) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = config_load_flags(path, cfg, CONFIG_NO_SECRET, why, sizeof(why));
	if (rc < 0)
		snprintf(err, errlen, "the configuration made for %s does not load (a bug): %.700s", who, why);
	else
		config_free(cfg);
	free(cfg);
	return rc;
}

static int read_staged(const struct primary *pr, const char *rel, char **text, char *err, size_t errlen)
{
	char path[PATH_MAX];
	size_t len;
	int r;

	if (!stage_path(&pr->stage, rel, path) || (r = read_file(path, 1u << 20, text, &len)) < 0) {
		snprintf(err, errlen, "cannot read back %.300s/%.100s", pr->stage.dir, rel);
		return -1;
	}
	return 0;
}

/* node2's part: its config, the secret, the hash, its certificates. */
static json_t *make_package(const struct primary *pr, const char *config2, const char *secret, char *err,
			    size_t errlen)
{
	char rel[PATH_MAX], *text = NULL;
	const char *names[4];
	char n2crt[CFG_NAME_MAX + 8], n2key[CFG_NAME_MAX + 8], n1crt[CFG_NAME_MAX + 8];
	json_t *files = json_object(), *pkg;

	snprintf(n2crt, sizeof(n2crt), "%s.crt", pr->c.node[1]);
	snprintf(n2key, sizeof(n2key), "%s.key", pr->c.node[1]);
	snprintf(n1crt, sizeof(n1crt), "%s.crt", pr->c.node[0]);
	names[0] = PKI_CA_CERT;
	names[1] = n2crt;
	names[2] = n2key;
	names[3] = n1crt;
	for (size_t i = 0; files && i < ARRAY_SIZE(names); i++) {
		snprintf(rel, sizeof(rel), "%s/%s", PKI_SUBDIR, names[i]);
		if (read_staged(pr, rel, &text, err, errlen) < 0) {
			json_decref(files);
			return NULL;
		}
		json_object_set_new(files, names[i], json_string(text));
		explicit_bzero(text, strlen(text));
		free(text);
	}
	pkg = files ? json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "type", "package", "node", pr->c.node[1], "config",
				config2, "secret", secret, "password_hash", pr->hash, "files", files) : NULL;
	if (!pkg)
		snprintf(err, errlen, "out of memory");
	return pkg;
}

static int build_files(struct primary *pr, char **config2, char *secret, size_t slen, char *err, size_t errlen)
{
	char *config1 = NULL, path[PATH_MAX], line[300];
	unsigned char raw[32];
	int rc = -1;

	if (stage_open(&pr->stage, pr->p, err, errlen) < 0)
		return -1;
	if (random_bytes(raw, sizeof(raw)) < 0) {
		snprintf(err, errlen, "no randomness for the secret (getrandom)");
		return -1;
	}
	for (size_t i = 0; i < sizeof(raw) && 2 * i + 2 < slen; i++)
		snprintf(secret + 2 * i, 3, "%02x", raw[i]);
	strcat(secret, "\n");
	explicit_bzero(raw, sizeof(raw));
	snprintf(line, sizeof(line), "%s\n", pr->hash);
	config1 = setup_config_text(&pr->c, 0, pr->p);
	*config2 = setup_config_text(&pr->c, 1, pr->p);
	if (!config1 || !*config2) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (stage_write(&pr->stage, "vigil.conf", config1, strlen(config1), 0644, err, errlen) < 0 ||
	    stage_write(&pr->stage, SETUP_SECRET, secret, strlen(secret), 0600, err, errlen) < 0 ||
	    stage_write(&pr->stage, SETUP_PASSWD, line, strlen(line), 0600, err, errlen) < 0 ||
	    stage_write(&pr->stage, "node2.conf.check", *config2, strlen(*config2), 0600, err, errlen) < 0 ||
	    stage_pki(pr, err, errlen) < 0)
		goto out;
	if (!stage_path(&pr->stage, "vigil.conf", path) ||
	    check_staged_config(path, pr->c.node[0], err, errlen) < 0 ||
	    !stage_path(&pr->stage, "node2.conf.check", path) ||
	    check_staged_config(path, pr->c.node[1], err, errlen) < 0)
		goto out;
	unlink(path);
	rc = 0;
out:
	free(config1);
	return rc;
}

static int send_package(struct primary *pr, const char *config2, const char *secret, char *err, size_t errlen)
{
	json_t *pkg = make_package(pr, config2, secret, err, errlen), *ack;
	int rc;

	if (!pkg)
		return -1;
	rc = setup_chan_send(&pr->chan, pkg, err, errlen);
	json_decref(pkg);
	if (rc < 0)
		return -1;
	pr->talking = false;
	if (!(ack = setup_chan_recv(&pr->chan, err, errlen)))
		return -1;
	if (!json_is_true(json_object_get(ack, "ok"))) {
		snprintf(err, errlen, "node2 did not take its configuration: %s",
			 json_string_value(json_object_get(ack, "error")) ?: "no reason given");
		json_decref(ack);
		return -1;
	}
	json_decref(ack);
	return 0;
}

static void print_done(const struct primary *pr, const char *exported)
{
	char a[2][128] = { "", "" }, ip[INET_ADDRSTRLEN], fp[PKI_FINGERPRINT_LEN] = "?", err[256];

	for (int k = 0; k < 2; k++)
		for (int i = 0; i < pr->c.nnets; i++) {
			size_t n = strlen(a[k]);

			inet_ntop(AF_INET, &pr->c.addr[k][i], ip, sizeof(ip));
			snprintf(a[k] + n, sizeof(a[k]) - n, "%s%s", i ? ", " : "", ip);
		}
	inet_ntop(AF_INET, &pr->c.vip, ip, sizeof(ip));
	pki_fingerprint(exported, fp, sizeof(fp), err, sizeof(err));
	printf("Cluster %s: %s (%s) and %s (%s), virtual IP %s/%d on %s (%s) and %s (%s).\n", pr->c.name,
	       pr->c.node[0], a[0], pr->c.node[1], a[1], ip, pr->c.vip_prefix, pr->c.vip_if[0], pr->c.node[0],
	       pr->c.vip_if[1], pr->c.node[1]);
	printf("Wrote %s, %s, %s and %s/ (the cluster CA and both nodes' certificates).\n", pr->p->config,
	       pr->p->secret, pr->p->passwd, pr->p->pki);
	printf("CA certificate exported to %s\nCA SHA-256 fingerprint: %s\n(trust it in the browsers: "
	       "docs/pki.md)\n", exported, fp);
	printf("%s received its configuration.\n", pr->c.node[1]);
	if (pr->c.console != SETUP_CONSOLE_HTTP)
		printf("Console: https://%s:9453/ (user admin, the password set on %s)\n", ip, pr->c.node[1]);
	if (pr->c.console != SETUP_CONSOLE_HTTPS)
		printf("Console: http://%s:9010/ (user admin, the password set on %s)\n", ip, pr->c.node[1]);
}

static int run(struct primary *pr)
{
	char err[1024], secret[80] = "", exported[PATH_MAX], dst[PATH_MAX], *config2 = NULL, *run_dir = NULL;
	int rc = -1;

	if (setup_check_free(pr->p, err, sizeof(err)) < 0)
		return fail("%s", err);
	if (check_local(pr) < 0 || ask_node2(pr) < 0)
		return -1;
	if (check_remote(pr, err, sizeof(err)) < 0 || build_files(pr, &config2, secret, sizeof(secret), err,
								     sizeof(err)) < 0) {
		say_abort(pr, err);
		fail("%s; nothing written", err);
		goto out;
	}
	if (send_package(pr, config2, secret, err, sizeof(err)) < 0) {
		fail("%s; nothing written here (node2 may have to start over: `vigilctl setup remove` and "
		     "`vigilctl setup secondary` there)", err);
		goto out;
	}
	if (stage_install(&pr->stage, pr->p, err, sizeof(err)) < 0) {
		fail("%s; nothing written here, but node2 has its part: run `vigilctl setup remove` on node2 "
		     "and start over", err);
		goto out;
	}
	if (setup_check_installed(pr->p, pr->c.node[0], err, sizeof(err)) < 0) {
		stage_uninstall(&pr->stage, pr->p);
		fail("%s; nothing written here, but node2 has its part: run `vigilctl setup remove` on node2 and "
		     "start over", err);
		goto out;
	}
	snprintf(exported, sizeof(exported), "%s", pr->p->export_ca);
	if (pr->o.export_dir) {
		if (setup_join(dst, pr->o.export_dir, PKI_CA_CERT) && pki_export_ca(pr->p->export_ca, dst, err,
										  sizeof(err)) == 0)
			snprintf(exported, sizeof(exported), "%s", dst);
		else
			fprintf(stderr, "vigilctl setup primary: --export: %s (the CA certificate is in %s)\n", err,
				pr->p->export_ca);
	}
	print_done(pr, exported);
	run_dir = setup_run_dir(pr->p->config);
	if (!run_dir || setup_start_vigild(pr->p->config, run_dir, err, sizeof(err)) < 0) {
		fail("%s; the configuration is in place: start vigild once the problem is solved",
		     run_dir ? err : "cannot read run_dir back");
		goto out;
	}
	printf("Started vigild on %s.\n\nNext, on %s:\n  vigilctl setup finish\n", pr->c.node[0], pr->c.node[1]);
	rc = fflush(stdout) == 0 ? 0 : -1;
out:
	stage_discard(&pr->stage);
	if (config2)
		explicit_bzero(config2, strlen(config2));
	free(config2);
	free(run_dir);
	explicit_bzero(secret, sizeof(secret));
	return rc;
}

int setup_primary(const struct setup_paths *p, int argc, char **argv)
{
	struct primary *pr = calloc(1, sizeof(*pr));
	int rc;

	if (!pr) {
		fprintf(stderr, "vigilctl setup primary: out of memory\n");
		return SETUP_EXIT_FAIL;
	}
	pr->p = p;
	setup_chan_init(&pr->chan);
	if (parse(argc, argv, &pr->o) < 0 || check_args(pr) < 0) {
		free(pr);
		return SETUP_EXIT_USAGE;
	}
	rc = run(pr) < 0 ? SETUP_EXIT_FAIL : SETUP_EXIT_OK;
	setup_chan_close(&pr->chan);
	explicit_bzero(pr, sizeof(*pr));
	free(pr);
	return rc;
}
