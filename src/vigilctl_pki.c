/* vigilctl pki: the cluster CA and one certificate per node, made on one
 * node (node1 in the wizard) and copied to the other; vigilctl cert
 * export: the CA certificate for browsers. */
#include "vigilctl_pki.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "pki/pki.h"
#include "pool/names.h"

enum { PKI_EXIT_OK = 0, PKI_EXIT_FAIL = 1, PKI_EXIT_USAGE = 2 };

#define SAN_LEN 256
#define HOSTNAME_FILE "/etc/hostname"

struct sanlist {
	char v[PKI_MAX_SANS][SAN_LEN];
	const char *ptr[PKI_MAX_SANS];
	int n;
};

struct pki_opts {
	bool force;
	int days;
	const char *extra[PKI_MAX_SANS];
	int nextra;
};

void vigilctl_pki_usage(FILE *out)
{
	fprintf(out,
		"Usage: vigilctl pki [--force] [--days N] [--san NAME|IP]...\n"
		"  Makes the cluster CA (CONFIG_DIR/pki/ca.key, cacert.crt) unless it exists,\n"
		"  and one certificate per node (pki/NODE.crt, pki/NODE.key) naming both nodes,\n"
		"  their addresses, the VIP and this machine's host name.\n"
		"  --force     replace the CA and the node certificates\n"
		"  --days N    validity in days (default %d: five years)\n"
		"  --san X     one more host name or IP address in the certificates\n"
		"\n"
		"Usage: vigilctl pki member NAME [--force] [--days N] [--san NAME|IP]...\n"
		"  A certificate of the cluster CA for a pool recorder or spare named NAME\n"
		"  ([pool] name): pki/NAME.crt and pki/NAME.key, marked OU \"" PKI_POOL_MEMBER_OU "\"\n"
		"  (the master takes only such certificates from recorders and spares, and\n"
		"  they refuse one as their master). Copy them, with pki/cacert.crt, into\n"
		"  the member's CONFIG_DIR/pki/ (docs/pool.md).\n",
		PKI_DEFAULT_DAYS);
}

static int usage_fail(const char *what, const char *arg)
{
	fprintf(stderr, "vigilctl pki: %s '%s'\n\n", what, arg);
	vigilctl_pki_usage(stderr);
	return PKI_EXIT_USAGE;
}

static int parse(int argc, char **argv, struct pki_opts *o)
{
	*o = (struct pki_opts){ .days = PKI_DEFAULT_DAYS };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL;
		char err[512];
		uint64_t v;

		if (!strcmp(a, "--force")) {
			o->force = true;
			continue;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			vigilctl_pki_usage(stdout);
			return -1;
		}
		if (!strcmp(a, "--days") || !strcmp(a, "--san")) {
			if (i + 1 >= argc)
				return usage_fail("a value is needed after", a);
			val = argv[++i];
		} else if (!strncmp(a, "--days=", 7) || !strncmp(a, "--san=", 6)) {
			val = strchr(a, '=') + 1;
		} else if (a[0] == '-') {
			return usage_fail("unknown option", a);
		} else {
			return usage_fail("unexpected argument", a);
		}
		if (!strncmp(a, "--days", 6)) {
			if (parse_u64(val, 1, PKI_MAX_DAYS, &v) < 0) {
				fprintf(stderr, "vigilctl pki: --days: expected a whole number from 1 to %d, got '%s'\n",
					PKI_MAX_DAYS, val);
				return PKI_EXIT_USAGE;
			}
			o->days = (int)v;
		} else {
			if (pki_san_check(val, err, sizeof(err)) < 0) {
				fprintf(stderr, "vigilctl pki: --san: %s\n", err);
				return PKI_EXIT_USAGE;
			}
			if (o->nextra >= PKI_MAX_SANS) {
				fprintf(stderr, "vigilctl pki: --san: at most %d names\n", PKI_MAX_SANS);
				return PKI_EXIT_USAGE;
			}
			o->extra[o->nextra++] = val;
		}
	}
	return 0;
}

/* Adds s unless already there; a name that cannot be a SAN is left out
 * with a warning saying where it came from. */
static void san_add(struct sanlist *l, const char *s, const char *from)
{
	char err[512];

	if (pki_san_check(s, err, sizeof(err)) < 0) {
		fprintf(stderr, "vigilctl pki: warning: %s: %s; left out of the certificates\n", from, err);
		return;
	}
	for (int i = 0; i < l->n; i++)
		if (!strcasecmp(l->v[i], s))
			return;
	if (l->n >= PKI_MAX_SANS || strlen(s) >= SAN_LEN) {
		fprintf(stderr, "vigilctl pki: warning: %s: '%s' left out (too many names)\n", from, s);
		return;
	}
	snprintf(l->v[l->n], SAN_LEN, "%s", s);
	l->ptr[l->n] = l->v[l->n];
	l->n++;
}

/* A host name and, if it has a domain, its first label too. */
static void san_add_host(struct sanlist *l, const char *host, const char *from)
{
	const char *dot = strchr(host, '.');
	char shortname[SAN_LEN];

	san_add(l, host, from);
	if (dot && dot > host && (size_t)(dot - host) < sizeof(shortname)) {
		snprintf(shortname, sizeof(shortname), "%.*s", (int)(dot - host), host);
		san_add(l, shortname, from);
	}
}

/* This machine's names without asking DNS (which may block or lie during
 * setup): gethostname(), and /etc/hostname when it holds an FQDN. */
static void san_add_local(struct sanlist *l)
{
	char host[SAN_LEN] = "";
	char *buf = NULL;
	size_t len;

	if (gethostname(host, sizeof(host) - 1) == 0 && host[0] && strcmp(host, "localhost"))
		san_add_host(l, host, "this machine's host name");
	if (read_file(HOSTNAME_FILE, 4096, &buf, &len) == 0) {
		buf[strcspn(buf, " \t\r\n#")] = '\0';
		if (strchr(buf, '.') && strlen(buf) < SAN_LEN)
			san_add_host(l, buf, HOSTNAME_FILE);
		free(buf);
	}
}

static void collect_sans(const struct config *cfg, const struct pki_opts *o, struct sanlist *l)
{
	char ip[INET_ADDRSTRLEN], from[CFG_NAME_MAX + 32];

	for (int i = 0; i < cfg->nnodes; i++) {
		snprintf(from, sizeof(from), "[node %s]", cfg->nodes[i].name);
		san_add(l, cfg->nodes[i].name, from);
	}
	for (int i = 0; i < cfg->nnodes; i++)
		for (int j = 0; j < cfg->nodes[i].naddr; j++)
			if (inet_ntop(AF_INET, &cfg->nodes[i].addr[j], ip, sizeof(ip)))
				san_add(l, ip, "node address");
	if (cfg->vip_enabled && inet_ntop(AF_INET, &cfg->vip_addr, ip, sizeof(ip)))
		san_add(l, ip, "[vip] address");
	san_add_local(l);
	for (int i = 0; i < o->nextra; i++)
		san_add(l, o->extra[i], "--san");
}

static int config_dir_of(const struct config *cfg, char *dir, size_t len)
{
	const char *slash = strrchr(cfg->path, '/');

	if (!slash)
		return snprintf(dir, len, ".") >= (int)len ? -1 : 0;
	if (slash == cfg->path)
		return snprintf(dir, len, "/") >= (int)len ? -1 : 0;
	return snprintf(dir, len, "%.*s", (int)(slash - cfg->path), cfg->path) >= (int)len ? -1 : 0;
}

/* out = a/b + c; false if it does not fit (then every use says so). */
static bool path3(char out[PATH_MAX], const char *a, const char *b, const char *c)
{
	return snprintf(out, PATH_MAX, "%s/%s%s", a, b, c) < PATH_MAX;
}

static bool file_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static void print_until(const char *path)
{
	char err[512], day[32];
	time_t end;
	struct tm tm;

	if (pki_cert_expiry(path, &end, err, sizeof(err)) == 0 && gmtime_r(&end, &tm) &&
	    strftime(day, sizeof(day), "%Y-%m-%d", &tm))
		printf(" (valid until %s UTC)", day);
}

/* The pki directory, private to root: it holds every node's key. */
static int make_pki_dir(const char *pdir)
{
	struct stat st;

	if (mkdir(pdir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "vigilctl pki: cannot create %s: %s\n", pdir, strerror(errno));
		return -1;
	}
	if (stat(pdir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "vigilctl pki: %s is not a directory\n", pdir);
		return -1;
	}
	if ((st.st_mode & 07777) != 0700 && chmod(pdir, 0700) < 0) {
		fprintf(stderr, "vigilctl pki: cannot make %s private (mode 0700): %s\n", pdir, strerror(errno));
		return -1;
	}
	return 0;
}

/* Says every existing node file at once, so one run shows all of them. */
static int refuse_existing_nodes(const struct config *cfg, const char *pdir)
{
	static const char *const exts[] = { ".crt", ".key" };
	char path[PATH_MAX], list[2048] = "";
	size_t used = 0;

	for (int i = 0; i < cfg->nnodes; i++)
		for (size_t e = 0; e < ARRAY_SIZE(exts); e++) {
			if (path3(path, pdir, cfg->nodes[i].name, exts[e]) && file_exists(path) && used < sizeof(list))
				used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", used ? ", " : "", path);
		}
	if (!used)
		return 0;
	fprintf(stderr, "vigilctl pki: node certificates already exist: %s\n"
		"vigilctl pki: not replacing them; use --force to make new ones (and a new CA)\n", list);
	return -1;
}

static int make_all(const struct config *cfg, const struct pki_opts *o, const char *cdir, const char *pdir,
		    struct sanlist *sans)
{
	char ca_key[PATH_MAX], ca_cert[PATH_MAX], path[PATH_MAX], err[1024], fp[PKI_FINGERPRINT_LEN];
	static const char *const custom[] = { PKI_CUSTOM_CA, PKI_CUSTOM_CERT, PKI_CUSTOM_KEY };
	const char *cluster = cfg->cluster_name[0] ? cfg->cluster_name : "cluster";
	bool have_key, have_cert, make_ca;

	if (!path3(ca_key, pdir, PKI_CA_KEY, "") || !path3(ca_cert, pdir, PKI_CA_CERT, "")) {
		fprintf(stderr, "vigilctl pki: %s: path too long\n", pdir);
		return -1;
	}
	have_key = file_exists(ca_key);
	have_cert = file_exists(ca_cert);
	if (have_key != have_cert && !o->force) {
		fprintf(stderr, "vigilctl pki: %s exists but %s is missing: use --force to make a new CA "
			"(the node certificates then need to be made again too)\n",
			have_key ? ca_key : ca_cert, have_key ? ca_cert : ca_key);
		return -1;
	}
	if (!o->force && refuse_existing_nodes(cfg, pdir) < 0)
		return -1;
	make_ca = o->force || !have_cert;
	if (make_pki_dir(pdir) < 0)
		return -1;
	if (make_ca) {
		if (pki_make_ca_flags(pdir, cluster, o->days, o->force ? PKI_FORCE : 0, err, sizeof(err)) < 0) {
			fprintf(stderr, "vigilctl pki: %s\n", err);
			return -1;
		}
		printf("wrote %s and %s: CA \"vigil CA %s\"", ca_key, ca_cert, cluster);
		print_until(ca_cert);
		printf("\n");
	} else {
		printf("using the existing CA %s\n", ca_cert);
	}
	for (int i = 0; i < cfg->nnodes; i++) {
		const char *name = cfg->nodes[i].name;

		if (pki_make_server_flags(pdir, name, sans->ptr, sans->n, o->days, o->force ? PKI_FORCE : 0, err,
					  sizeof(err)) < 0) {
			fprintf(stderr, "vigilctl pki: %s\n", err);
			return -1;
		}
		printf("wrote %s/%s.key and %s/%s.crt", pdir, name, pdir, name);
		if (path3(path, pdir, name, ".crt"))
			print_until(path);
		printf("\n");
	}
	printf("names in the node certificates:");
	for (int i = 0; i < sans->n; i++)
		printf(" %s", sans->v[i]);
	printf("\n");
	if (pki_fingerprint(ca_cert, fp, sizeof(fp), err, sizeof(err)) < 0) {
		fprintf(stderr, "vigilctl pki: %s\n", err);
		return -1;
	}
	printf("CA SHA-256 fingerprint: %s\n", fp);
	printf("copy cacert.crt and each other node's NODE.crt and NODE.key into %s on that node "
	       "(ca.key stays here)\n", pdir);
	/* Custom files win: say so, or the operator wonders why nothing changed. */
	for (size_t i = 0; i < ARRAY_SIZE(custom); i++) {
		if (path3(path, cdir, custom[i], "") && file_exists(path))
			printf("note: %s is present: this custom file is used instead of the generated one\n", path);
	}
	return 0;
}

/* vigilctl pki member NAME: the pool link proves names with these. */
static int make_member(const char *pdir, const char *name, const struct pki_opts *o)
{
	char err[1024];

	if (!pool_name_ok(name)) {
		fprintf(stderr, "vigilctl pki member: '%s' is not a pool name: 1 to 63 letters, digits, '-', '_' or '.'\n",
		        name);
		return PKI_EXIT_USAGE;
	}
	if (pki_make_server_flags(pdir, name, o->extra, o->nextra, o->days,
	                          PKI_POOL_MEMBER | (o->force ? PKI_FORCE : 0), err, sizeof(err)) < 0) {
		fprintf(stderr, "vigilctl pki member: %s\n", err);
		return PKI_EXIT_FAIL;
	}
	printf("made %s/%s.crt and %s/%s.key (CN %s, OU %s) signed by %s/%s\n", pdir, name, pdir, name, name,
	       PKI_POOL_MEMBER_OU, pdir, PKI_CA_CERT);
	return PKI_EXIT_OK;
}

int vigilctl_pki(const struct config *cfg, int argc, char **argv)
{
	char cdir[PATH_MAX], pdir[PATH_MAX];
	struct sanlist *sans;
	struct pki_opts o;
	const char *member = NULL;
	int rc;

	if (argc >= 2 && !strcmp(argv[1], "member")) {
		if (argc < 3 || argv[2][0] == '-')
			return usage_fail("pki member needs a name, got", argc < 3 ? "" : argv[2]);
		member = argv[2];
		argc -= 2;
		argv += 2;
	}
	rc = parse(argc, argv, &o);
	if (rc)
		return rc < 0 ? PKI_EXIT_OK : rc;
	if (config_dir_of(cfg, cdir, sizeof(cdir)) < 0 ||
	    !path3(pdir, cdir, PKI_SUBDIR, "")) {
		fprintf(stderr, "vigilctl pki: the directory of %s is too long\n", cfg->path);
		return PKI_EXIT_FAIL;
	}
	if (member)
		return make_member(pdir, member, &o);
	if (!(sans = calloc(1, sizeof(*sans)))) {
		fprintf(stderr, "vigilctl pki: out of memory\n");
		return PKI_EXIT_FAIL;
	}
	collect_sans(cfg, &o, sans);
	rc = make_all(cfg, &o, cdir, pdir, sans) < 0 ? PKI_EXIT_FAIL : PKI_EXIT_OK;
	free(sans);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "vigilctl pki: stdout: %s\n", strerror(errno));
		rc = PKI_EXIT_FAIL;
	}
	return rc;
}

int vigilctl_cert_export(const struct config *cfg, const char *dir)
{
	char cdir[PATH_MAX], custom[PATH_MAX], gen[PATH_MAX], dst[PATH_MAX], err[1024], fp[PKI_FINGERPRINT_LEN];
	const char *src;
	struct stat st;

	if (!dir || !*dir) {
		fprintf(stderr, "vigilctl cert export: needs a directory: vigilctl cert export DIR\n");
		return PKI_EXIT_USAGE;
	}
	if (stat(dir, &st) < 0) {
		fprintf(stderr, "vigilctl cert export: %s: %s\n", dir, strerror(errno));
		return PKI_EXIT_FAIL;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "vigilctl cert export: %s is not a directory\n", dir);
		return PKI_EXIT_FAIL;
	}
	if (config_dir_of(cfg, cdir, sizeof(cdir)) < 0 ||
	    !path3(custom, cdir, PKI_CUSTOM_CA, "") || !path3(gen, cdir, PKI_SUBDIR "/" PKI_CA_CERT, "") ||
	    !path3(dst, dir, PKI_CA_CERT, "")) {
		fprintf(stderr, "vigilctl cert export: path too long\n");
		return PKI_EXIT_FAIL;
	}
	src = file_exists(custom) ? custom : file_exists(gen) ? gen : NULL;
	if (!src) {
		fprintf(stderr, "vigilctl cert export: no CA certificate yet: neither %s nor %s exists "
			"(run vigilctl pki first)\n", custom, gen);
		return PKI_EXIT_FAIL;
	}
	if (pki_export_ca(src, dst, err, sizeof(err)) < 0 || pki_fingerprint(dst, fp, sizeof(fp), err, sizeof(err)) < 0) {
		fprintf(stderr, "vigilctl cert export: %s\n", err);
		return PKI_EXIT_FAIL;
	}
	printf("exported %s to %s\nCA SHA-256 fingerprint: %s\n", src, dst, fp);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "vigilctl cert export: stdout: %s\n", strerror(errno));
		return PKI_EXIT_FAIL;
	}
	return PKI_EXIT_OK;
}
