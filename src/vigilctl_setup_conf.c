/* The setup wizard's facts and files: this machine's addresses, the config
 * text of a two-node cluster, and the staged files put in place by renames
 * (a failed setup leaves nothing behind). */
#include "vigilctl_setup_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "pki/pki.h"

/* ---- addresses ---- */

static int mask_prefix(struct in_addr mask)
{
	uint32_t m = ntohl(mask.s_addr);
	int n = 0;

	while (m & 0x80000000u) {
		n++;
		m <<= 1;
	}
	return n;
}

int setup_local_ifs(struct setup_ifs *out, char *err, size_t errlen)
{
	struct ifaddrs *ifa, *i;

	out->n = 0;
	if (getifaddrs(&ifa) < 0) {
		snprintf(err, errlen, "cannot list this machine's addresses: %s", strerror(errno));
		return -1;
	}
	for (i = ifa; i; i = i->ifa_next) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)i->ifa_addr;
		const struct sockaddr_in *m = (const struct sockaddr_in *)i->ifa_netmask;
		struct setup_if *e;

		if (!a || a->sin_family != AF_INET || (ntohl(a->sin_addr.s_addr) >> 24) == 127)
			continue;
		if (out->n >= SETUP_MAX_IFS)
			break;
		e = &out->v[out->n++];
		/* An alias label ("eth0:1") names the device before the colon. */
		snprintf(e->name, sizeof(e->name), "%.*s", (int)strcspn(i->ifa_name, ":"), i->ifa_name);
		e->addr = a->sin_addr;
		e->prefix = m ? mask_prefix(m->sin_addr) : 32;
	}
	freeifaddrs(ifa);
	return 0;
}

json_t *setup_ifs_json(const struct setup_ifs *ifs)
{
	json_t *arr = json_array();
	char ip[INET_ADDRSTRLEN];

	for (int i = 0; arr && i < ifs->n; i++) {
		inet_ntop(AF_INET, &ifs->v[i].addr, ip, sizeof(ip));
		json_array_append_new(arr, json_pack("{s:s, s:s, s:i}", "interface", ifs->v[i].name, "address", ip,
						     "prefix", ifs->v[i].prefix));
	}
	return arr;
}

int setup_ifs_from_json(json_t *arr, struct setup_ifs *out, char *err, size_t errlen)
{
	json_t *e;
	size_t i;

	out->n = 0;
	if (!json_is_array(arr)) {
		snprintf(err, errlen, "node2's addresses are missing from its answer");
		return -1;
	}
	json_array_foreach(arr, i, e) {
		const char *name = json_string_value(json_object_get(e, "interface"));
		const char *addr = json_string_value(json_object_get(e, "address"));
		json_t *pre = json_object_get(e, "prefix");
		struct setup_if *d;

		if (out->n >= SETUP_MAX_IFS)
			break;
		d = &out->v[out->n];
		if (!name || !*name || strlen(name) >= IF_NAMESIZE || strpbrk(name, " \t\n/") || !addr ||
		    setup_parse_ipv4(addr, &d->addr) < 0 || !json_is_integer(pre) ||
		    json_integer_value(pre) < 0 || json_integer_value(pre) > 32) {
			snprintf(err, errlen, "node2 sent a malformed address entry (#%zu)", i + 1);
			return -1;
		}
		snprintf(d->name, sizeof(d->name), "%s", name);
		d->prefix = (int)json_integer_value(pre);
		out->n++;
	}
	return 0;
}

const struct setup_if *setup_ifs_find(const struct setup_ifs *ifs, struct in_addr addr)
{
	for (int i = 0; i < ifs->n; i++)
		if (ifs->v[i].addr.s_addr == addr.s_addr)
			return &ifs->v[i];
	return NULL;
}

bool setup_same_net(struct in_addr a, struct in_addr b, int prefix)
{
	uint32_t m = prefix <= 0 ? 0 : prefix >= 32 ? 0xffffffffu : ~((1u << (32 - prefix)) - 1);

	return (ntohl(a.s_addr) & m) == (ntohl(b.s_addr) & m);
}

const struct setup_if *setup_ifs_subnet(const struct setup_ifs *ifs, struct in_addr addr, int prefix)
{
	for (int i = 0; i < ifs->n; i++) {
		const struct setup_if *e = &ifs->v[i];

		if (e->addr.s_addr != addr.s_addr && setup_same_net(e->addr, addr, prefix >= 0 ? prefix : e->prefix))
			return e;
	}
	return NULL;
}

int setup_parse_ipv4(const char *s, struct in_addr *addr)
{
	/* inet_pton takes only the dotted quad: no "10.1" shorthand. */
	return inet_pton(AF_INET, s, addr) == 1 ? 0 : -1;
}

int setup_parse_cidr(const char *s, struct in_addr *addr, int *prefix, char *err, size_t errlen)
{
	char ip[INET_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	uint64_t p;

	if (n >= sizeof(ip)) {
		snprintf(err, errlen, "'%.60s' is not an IPv4 address (expected like 10.0.0.100/24)", s);
		return -1;
	}
	memcpy(ip, s, n);
	ip[n] = '\0';
	if (setup_parse_ipv4(ip, addr) < 0) {
		snprintf(err, errlen, "'%.60s' is not an IPv4 address (expected like 10.0.0.100/24)", s);
		return -1;
	}
	*prefix = -1;
	if (slash) {
		if (parse_u64(slash + 1, 1, 32, &p) < 0) {
			snprintf(err, errlen, "'%.60s': the prefix length after '/' must be a number from 1 to 32", s);
			return -1;
		}
		*prefix = (int)p;
	}
	return 0;
}

int setup_parse_addr_list(const char *what, const char *s, struct in_addr *out, int *n, char *err,
			  size_t errlen)
{
	char buf[256], *save = NULL, *tok;

	*n = 0;
	if (!strlcpy_ok(buf, s, sizeof(buf))) {
		snprintf(err, errlen, "%s: too long", what);
		return -1;
	}
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		tok[strcspn(tok, " ")] = '\0';
		if (*n >= CFG_MAX_NETS) {
			snprintf(err, errlen, "%s '%s': at most %d addresses (one per heartbeat network)", what, s,
				 CFG_MAX_NETS);
			return -1;
		}
		if (setup_parse_ipv4(tok, &out[*n]) < 0) {
			snprintf(err, errlen, "%s '%s': '%s' is not an IPv4 address", what, s, tok);
			return -1;
		}
		for (int i = 0; i < *n; i++)
			if (out[i].s_addr == out[*n].s_addr) {
				snprintf(err, errlen, "%s '%s': %s is given twice", what, s, tok);
				return -1;
			}
		(*n)++;
	}
	if (*n == 0) {
		snprintf(err, errlen, "%s: no address given", what);
		return -1;
	}
	return 0;
}

int setup_check_name(const char *what, const char *s, char *err, size_t errlen)
{
	size_t n = strlen(s);

	if (n < 1 || n >= CFG_NAME_MAX || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				     "0123456789-_.") != n) {
		snprintf(err, errlen, "%s '%.80s': use 1 to %d letters, digits, '-', '_' or '.'", what, s,
			 CFG_NAME_MAX - 1);
		return -1;
	}
	return 0;
}

/* ---- the config text ---- */

static void addr_list(char *out, size_t len, const struct in_addr *a, int n)
{
	char ip[INET_ADDRSTRLEN];
	size_t used = 0;

	out[0] = '\0';
	for (int i = 0; i < n && used < len; i++) {
		inet_ntop(AF_INET, &a[i], ip, sizeof(ip));
		used += (size_t)snprintf(out + used, len - used, "%s%s", i ? ", " : "", ip);
	}
}

char *setup_config_text(const struct setup_cluster *c, int self, const struct setup_paths *p)
{
	char *text = NULL, addrs[2][128], vip[INET_ADDRSTRLEN], when[64];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	time_t now = time(NULL);
	struct tm tm;

	if (!f)
		return NULL;
	localtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
	for (int i = 0; i < 2; i++)
		addr_list(addrs[i], sizeof(addrs[i]), c->addr[i], c->nnets);
	inet_ntop(AF_INET, &c->vip, vip, sizeof(vip));
	fprintf(f,
		"# %s: written by `vigilctl setup` on %s for %s (docs/config.md).\n"
		"# Both nodes have this file; only [vip] interface may differ between them.\n"
		"# `vigilctl setup remove` takes it away again.\n"
		"\n"
		"[cluster]\n"
		"name = %s\n"
		"secret_file = %s\n"
		"state_dir = /var/lib/vigil\n"
		"run_dir = /run/vigil\n"
		"\n"
		"[node %s]\n"
		"address = %s\n"
		"\n"
		"[node %s]\n"
		"address = %s\n"
		"\n"
		"[heartbeat]\n"
		"port = 8888\n"
		"interval_ms = 1000\n"
		"timeout_ms = 5000\n"
		"\n"
		"[vip]\n"
		"address = %s/%d\n"
		"interface = %s\n"
		"\n"
		"[console]\n"
		"http_port = %d\n"
		"https_port = %d\n"
		"password_file = %s\n",
		p->config, when, c->node[self], c->name, p->secret, c->node[0], addrs[0], c->node[1], addrs[1],
		vip, c->vip_prefix, c->vip_if[self],
		c->console == SETUP_CONSOLE_HTTPS ? 0 : 9010, c->console == SETUP_CONSOLE_HTTP ? 0 : 9453, p->passwd);
	if (c->repl_dirs[0]) {
		fprintf(f, "\n[replication]\ndirs = %s\n", c->repl_dirs);
		if (c->aside_dir[0])
			fprintf(f, "aside_dir = %s\n", c->aside_dir);
	}
	fprintf(f, "\n# What the cluster protects: add [resource NAME] sections (start, stop,\n"
		   "# when) and [checker NAME] sections here, the same on both nodes.\n");
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* ---- staged files ---- */

/* What a configured node has, in install order: the config comes last, so
 * that a config in place means everything else is too. */
enum { T_PKI, T_PASSWD, T_SECRET, T_EXPORT, T_CONFIG, T_COUNT };
static const char *const stage_names[T_COUNT] = { PKI_SUBDIR, SETUP_PASSWD, SETUP_SECRET, SETUP_EXPORT,
						   "vigil.conf" };

static const char *target_of(const struct setup_paths *p, int t)
{
	switch (t) {
	case T_PKI: return p->pki;
	case T_PASSWD: return p->passwd;
	case T_SECRET: return p->secret;
	case T_EXPORT: return p->export_ca;
	default: return p->config;
	}
}

bool stage_path(const struct setup_stage *s, const char *rel, char out[PATH_MAX])
{
	return setup_join(out, s->dir, rel);
}

int setup_check_free(const struct setup_paths *p, char *err, size_t errlen)
{
	char list[2048] = "";
	size_t used = 0;
	struct stat st;

	for (int t = T_COUNT - 1; t >= 0; t--) {
		const char *path = target_of(p, t);

		if (lstat(path, &st) < 0)
			continue;
		/* An empty pki directory is no configuration. */
		if (t == T_PKI && S_ISDIR(st.st_mode) && rmdir(path) == 0)
			continue;
		if (used < sizeof(list))
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", used ? ", " : "", path);
	}
	if (!used)
		return 0;
	snprintf(err, errlen, "this node is already configured (%s exist%s); run `vigilctl setup remove` first",
		 list, strchr(list, ',') ? "" : "s");
	return -1;
}

int stage_open(struct setup_stage *s, const struct setup_paths *p, char *err, size_t errlen)
{
	char pki[PATH_MAX];
	int r;

	*s = (struct setup_stage){ 0 };
	if ((r = mkdir_p(p->dir, 0755)) < 0) {
		snprintf(err, errlen, "cannot create %s: %s", p->dir, strerror(-r));
		return -1;
	}
	if (!setup_join(s->dir, p->dir, ".setup-new.XXXXXX") || !mkdtemp(s->dir)) {
		snprintf(err, errlen, "cannot create a temporary directory in %s: %s", p->dir, strerror(errno));
		s->dir[0] = '\0';
		return -1;
	}
	if (!stage_path(s, PKI_SUBDIR, pki) || mkdir(pki, 0700) < 0) {
		snprintf(err, errlen, "cannot create %s: %s", pki, strerror(errno));
		stage_discard(s);
		return -1;
	}
	return 0;
}

int stage_write(struct setup_stage *s, const char *rel, const void *buf, size_t len, mode_t mode, char *err,
		size_t errlen)
{
	char path[PATH_MAX];
	int r;

	if (!stage_path(s, rel, path)) {
		snprintf(err, errlen, "%s/%s: path too long", s->dir, rel);
		return -1;
	}
	if ((r = write_file_atomic(path, buf, len, mode)) < 0) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(-r));
		return -1;
	}
	return 0;
}

static void sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

int stage_install(struct setup_stage *s, const struct setup_paths *p, char *err, size_t errlen)
{
	char src[PATH_MAX];
	struct stat st;

	if (setup_check_free(p, err, errlen) < 0)
		return -1;
	for (int t = 0; t < T_COUNT; t++) {
		if (!stage_path(s, stage_names[t], src) || lstat(src, &st) < 0)
			continue;
		if (rename(src, target_of(p, t)) < 0) {
			snprintf(err, errlen, "cannot put %s in place: %s", target_of(p, t), strerror(errno));
			stage_uninstall(s, p);
			return -1;
		}
		s->installed[t] = true;
	}
	sync_dir(p->dir);
	return 0;
}

void stage_uninstall(struct setup_stage *s, const struct setup_paths *p)
{
	char back[PATH_MAX];

	for (int t = T_COUNT - 1; t >= 0; t--) {
		if (!s->installed[t])
			continue;
		/* Back into the stage, which stage_discard then removes. */
		if (!stage_path(s, stage_names[t], back) || rename(target_of(p, t), back) < 0)
			setup_rm_tree(target_of(p, t));
		s->installed[t] = false;
	}
	sync_dir(p->dir);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
	return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

int setup_rm_tree(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
	/* FTW_MOUNT: never into another file system mounted below. */
	return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

void stage_discard(struct setup_stage *s)
{
	if (s->dir[0]) {
		setup_rm_tree(s->dir);
		s->dir[0] = '\0';
	}
}
