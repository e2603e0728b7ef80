#include "common/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <ini.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "common/config_int.h"
#include "common/config_table.h"



void cfg_fail(struct parse *p, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->failed)
		return;
	p->failed = true;
	if (!p->err || !p->errlen)
		return;
	n = snprintf(p->err, p->errlen, "%s:%d: ", p->path, line);
	if (n < 0 || (size_t)n >= p->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - n, fmt, ap);
	va_end(ap);
}

bool cfg_valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > CFG_NAME_MAX - 1)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return false;
	return true;
}


/* Same rule as the kernel's dev_valid_name(). */
static bool valid_ifname(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n >= IF_NAMESIZE || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || isspace((unsigned char)*s) || !isprint((unsigned char)*s))
			return false;
	return true;
}

/* "[node node1]" for messages. */
static const char *sect_label(const struct parse *p, char *buf, size_t len)
{
	const char *name = NULL;

	if (p->sect == S_NODE)
		name = ((const struct cfg_node *)p->base)->name;
	else if (p->sect == S_RESOURCE)
		name = ((const struct cfg_resource *)p->base)->name;
	else if (p->sect == S_NOTIFY)
		name = ((const struct cfg_notify *)p->base)->name;
	else if (p->sect == S_CHECKER)
		name = ((const struct cfg_checker *)p->base)->name;
	if (name && *name)
		snprintf(buf, len, "[%s %s]", sects[p->sect].name, name);
	else
		snprintf(buf, len, "[%s]", sects[p->sect].name);
	return buf;
}

static int parse_ipv4(const char *s, struct in_addr *a)
{
	return inet_pton(AF_INET, s, a) == 1 ? 0 : -1;
}

static int set_addrlist(struct parse *p, const struct key *k, struct cfg_node *node, const char *value)
{
	struct config *cfg = p->cfg;
	char buf[256];
	int n = 0;

	if (!strlcpy_ok(buf, value, sizeof(buf))) {
		cfg_fail(p, p->line, "%s: value too long", k->name);
		return -1;
	}
	/* strtok_r would silently skip empty entries such as "a,,b". */
	for (char *s = buf, *next; s; s = next) {
		struct in_addr a;
		char *end;

		next = strchr(s, ',');
		if (next)
			*next++ = '\0';
		while (isspace((unsigned char)*s))
			s++;
		end = s + strlen(s);
		while (end > s && isspace((unsigned char)end[-1]))
			*--end = '\0';
		if (!*s) {
			cfg_fail(p, p->line, "%s: empty entry in '%s'", k->name, value);
			return -1;
		}
		if (n == (int)k->max) {
			cfg_fail(p, p->line, "%s: at most %u addresses (one per heartbeat network)",
			     k->name, k->max);
			return -1;
		}
		if (parse_ipv4(s, &a) < 0) {
			cfg_fail(p, p->line, "%s: '%s' is not an IPv4 address", k->name, s);
			return -1;
		}
		if (a.s_addr == htonl(INADDR_ANY) || a.s_addr == htonl(INADDR_BROADCAST) ||
		    IN_MULTICAST(ntohl(a.s_addr))) {
			cfg_fail(p, p->line, "%s: '%s' cannot be a node address", k->name, s);
			return -1;
		}
		for (int i = 0; i < n; i++)
			if (node->addr[i].s_addr == a.s_addr) {
				cfg_fail(p, p->line, "%s: %s is listed twice", k->name, s);
				return -1;
			}
		for (int j = 0; j < cfg->nnodes; j++) {
			const struct cfg_node *o = &cfg->nodes[j];

			if (o == node)
				continue;
			for (int i = 0; i < o->naddr; i++)
				if (o->addr[i].s_addr == a.s_addr) {
					cfg_fail(p, p->line, "%s: %s is also an address of [node %s]",
					     k->name, s, o->name);
					return -1;
				}
		}
		node->addr[n++] = a;
	}
	for (int j = 0; j < cfg->nnodes; j++) {
		const struct cfg_node *o = &cfg->nodes[j];

		if (o != node && o->naddr && o->naddr != n) {
			cfg_fail(p, p->line, "%s: [node %s] lists %d address%s but [node %s] lists %d; "
			     "each node needs one per heartbeat network", k->name, node->name, n,
			     n == 1 ? "" : "es", o->name, o->naddr);
			return -1;
		}
	}
	node->naddr = n;
	cfg->nnets = n;
	return 0;
}

int cfg_norm_path(const char *in, char *out, size_t outlen)
{
	size_t n = 0;
	bool dots = false;

	if (!outlen)
		return -1;
	while (*in) {
		const char *c;
		size_t len;

		while (*in == '/')
			in++;
		if (!*in)
			break;
		c = in;
		len = strcspn(c, "/");
		in += len;
		if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
			dots = true;
		if (n + 1 + len >= outlen) {
			out[0] = '\0';
			return -1;
		}
		out[n++] = '/';
		memcpy(out + n, c, len);
		n += len;
	}
	if (!n) {
		if (outlen < 2)
			return -1;
		out[n++] = '/';
	}
	out[n] = '\0';
	return dots ? -1 : 0;
}

bool cfg_path_within(const char *inner, const char *outer)
{
	size_t n = strlen(outer);

	if (!strcmp(outer, "/"))
		return true;
	return !strncmp(inner, outer, n) && (inner[n] == '\0' || inner[n] == '/');
}

/* Splits value, comma-separated, into trimmed entries in buf. An empty
 * entry is an error: strtok_r would silently skip the one in "a,,b". */
static int split_list(struct parse *p, const struct key *k, const char *value, const char *what,
                      unsigned cap, char *buf, size_t buflen, char **ent)
{
	char label[CFG_NAME_MAX + 16];
	int n = 0;

	if (k->max > cap) {
		cfg_fail(p, p->line, "%s: list longer than its field", k->name);
		return -1;
	}
	sect_label(p, label, sizeof(label));
	if (!strlcpy_ok(buf, value, buflen)) {
		cfg_fail(p, p->line, "%s %s: value too long", label, k->name);
		return -1;
	}
	for (char *s = buf, *next; s; s = next) {
		char *end;

		next = strchr(s, ',');
		if (next)
			*next++ = '\0';
		while (isspace((unsigned char)*s))
			s++;
		end = s + strlen(s);
		while (end > s && isspace((unsigned char)end[-1]))
			*--end = '\0';
		if (!*s && !n && !next) {
			cfg_fail(p, p->line, "%s %s: needs at least one %s", label, k->name, what);
			return -1;
		}
		if (!*s) {
			cfg_fail(p, p->line, "%s %s: empty entry in '%s'", label, k->name, value);
			return -1;
		}
		if (n == (int)k->max) {
			cfg_fail(p, p->line, "%s %s: at most %u entries, got more in '%s'", label, k->name, k->max,
			         value);
			return -1;
		}
		ent[n++] = s;
	}
	return n;
}

/* [replication] dirs: absolute directories, none nested in another. The
 * checks against state_dir and run_dir wait for the whole file
 * (cfg_check_all), since [cluster] may come later. */
static int set_dirlist(struct parse *p, const struct key *k, void *base, const char *value)
{
	char (*dirs)[PATH_MAX] = (void *)((char *)base + k->off);
	char buf[PATH_MAX], label[CFG_NAME_MAX + 16];
	char *ent[CFG_MAX_REPL_DIRS];
	int n = split_list(p, k, value, "directory", CFG_MAX_REPL_DIRS, buf, sizeof(buf), ent);

	if (n < 0)
		return -1;
	sect_label(p, label, sizeof(label));
	for (int i = 0; i < n; i++) {
		const char *d = ent[i];
		struct stat st;

		if (d[0] != '/') {
			cfg_fail(p, p->line, "%s %s: %s: is not an absolute path", label, k->name, d);
			return -1;
		}
		if (cfg_norm_path(d, dirs[i], PATH_MAX) < 0) {
			if (dirs[i][0])
				cfg_fail(p, p->line, "%s %s: %s: has a '.' or '..' component", label, k->name, d);
			else
				cfg_fail(p, p->line, "%s %s: %s: too long", label, k->name, d);
			return -1;
		}
		if (!strcmp(dirs[i], "/")) {
			cfg_fail(p, p->line, "%s %s: %s: the root directory cannot be replicated", label, k->name, d);
			return -1;
		}
		for (int j = 0; j < i; j++) {
			if (!strcmp(dirs[i], dirs[j])) {
				if (!strcmp(d, ent[j]))
					cfg_fail(p, p->line, "%s %s: %s is listed twice", label, k->name, d);
				else
					cfg_fail(p, p->line, "%s %s: %s and %s are the same directory", label, k->name,
					         ent[j], d);
				return -1;
			}
			if (cfg_path_within(dirs[i], dirs[j]) || cfg_path_within(dirs[j], dirs[i])) {
				bool inner_i = cfg_path_within(dirs[i], dirs[j]);

				cfg_fail(p, p->line, "%s %s: %s is nested in %s", label, k->name,
				         inner_i ? dirs[i] : dirs[j], inner_i ? dirs[j] : dirs[i]);
				return -1;
			}
		}
		/* A client (vigilctl) may run where the directories are not visible. */
		if (p->skip_secret)
			continue;
		/* ENOTCONN: the mount of a vigil-rfs that died (the node was
		 * killed while PRIM); vigil-rfs detaches it before serving. */
		if (stat(dirs[i], &st) < 0) {
			if (errno == ENOTCONN)
				continue;
			cfg_fail(p, p->line, "%s %s: %s: %s", label, k->name, d,
			         errno == ENOENT ? "does not exist" : strerror(errno));
			return -1;
		}
		if (!S_ISDIR(st.st_mode)) {
			cfg_fail(p, p->line, "%s %s: %s: is not a directory", label, k->name, d);
			return -1;
		}
	}
	*(int *)(void *)((char *)base + k->off2) = n;
	p->repl_dirs_line = p->line;
	return 0;
}

/* [replication] exclude: fnmatch globs, used by vigil-rfs as they are. */
static int set_globlist(struct parse *p, const struct key *k, void *base, const char *value)
{
	char (*globs)[256] = (void *)((char *)base + k->off);
	char buf[PATH_MAX], label[CFG_NAME_MAX + 16];
	char *ent[CFG_MAX_REPL_EXCLUDE];
	int n = split_list(p, k, value, "glob", CFG_MAX_REPL_EXCLUDE, buf, sizeof(buf), ent);

	if (n < 0)
		return -1;
	sect_label(p, label, sizeof(label));
	for (int i = 0; i < n; i++) {
		if (!strlcpy_ok(globs[i], ent[i], sizeof(globs[i]))) {
			cfg_fail(p, p->line, "%s %s: '%s' is longer than %zu bytes", label, k->name, ent[i],
			         sizeof(globs[i]) - 1);
			return -1;
		}
		/* vigil-rfs matches names, never paths (its --exclude refuses '/'). */
		if (strchr(ent[i], '/')) {
			cfg_fail(p, p->line, "%s %s: '%s': a glob matches a file or directory name, "
			         "not a path (no '/')", label, k->name, ent[i]);
			return -1;
		}
		for (int j = 0; j < i; j++)
			if (!strcmp(globs[i], globs[j])) {
				cfg_fail(p, p->line, "%s %s: '%s' is listed twice", label, k->name, ent[i]);
				return -1;
			}
	}
	*(int *)(void *)((char *)base + k->off2) = n;
	return 0;
}

static int set_cidr(struct parse *p, const struct key *k, void *base, const char *value)
{
	char buf[INET_ADDRSTRLEN + 8];
	char *slash;
	uint64_t prefix;
	struct in_addr a;
	uint32_t host, mask;

	if (!strlcpy_ok(buf, value, sizeof(buf)) || !(slash = strchr(buf, '/'))) {
		if (!strchr(value, '/') && parse_ipv4(value, &a) == 0)
			cfg_fail(p, p->line, "%s: '%s' needs a prefix length, like %s/24", k->name, value, value);
		else
			cfg_fail(p, p->line, "%s: '%s' is not an IPv4 address with a prefix length, like 10.0.0.100/24",
			     k->name, value);
		return -1;
	}
	*slash = '\0';
	if (parse_ipv4(buf, &a) < 0) {
		cfg_fail(p, p->line, "%s: '%s' is not an IPv4 address", k->name, buf);
		return -1;
	}
	if (parse_u64(slash + 1, k->min, k->max, &prefix) < 0) {
		cfg_fail(p, p->line, "%s: prefix length must be a whole number from %u to %u, got '%s'",
		     k->name, k->min, k->max, slash + 1);
		return -1;
	}
	if (a.s_addr == htonl(INADDR_ANY) || IN_MULTICAST(ntohl(a.s_addr)) ||
	    a.s_addr == htonl(INADDR_BROADCAST)) {
		cfg_fail(p, p->line, "%s: '%s' cannot be a virtual address", k->name, buf);
		return -1;
	}
	/* /31 and /32 have no network or broadcast address. */
	if (prefix <= 30) {
		mask = 0xffffffffu << (32 - prefix);
		host = ntohl(a.s_addr) & ~mask;
		if (host == 0 || host == ~mask) {
			cfg_fail(p, p->line, "%s: %s is the %s address of %s/%u", k->name, buf,
			     host == 0 ? "network" : "broadcast", buf, (unsigned)prefix);
			return -1;
		}
	}
	memcpy((char *)base + k->off, &a, sizeof(a));
	*(int *)((char *)base + k->off2) = (int)prefix;
	p->vip_addr_line = p->line;
	return 0;
}

/* Parses value for key k into base (struct config, cfg_node, cfg_resource or cfg_notify). */
static int set_value(struct parse *p, const struct key *k, void *base, const char *value)
{
	char *field = (char *)base + k->off;
	uint64_t v;

	switch (k->type) {
	case T_NAME:
		if (!cfg_valid_name(value)) {
			cfg_fail(p, p->line, "%s: '%s' is invalid: " NAME_RULE, k->name, value);
			return -1;
		}
		strlcpy_ok(field, value, CFG_NAME_MAX);
		return 0;
	case T_PATH:
		if (value[0] != '/') {
			cfg_fail(p, p->line, "%s: must be an absolute path, got '%s'", k->name, value);
			return -1;
		}
		if (strlen(value) > k->max) {
			cfg_fail(p, p->line, "%s: too long (max %u characters)", k->name, k->max);
			return -1;
		}
		strlcpy_ok(field, value, PATH_MAX);
		if (k->off == CFG(secret_file) && p->sect == S_CLUSTER)
			p->secret_line = p->line;
		return 0;
	case T_COMMAND: {
		char **dst = (char **)(void *)field;
		char *s;

		if (!*value) {
			cfg_fail(p, p->line, "%s: must not be empty", k->name);
			return -1;
		}
		if (!(s = strdup(value))) {
			cfg_fail(p, p->line, "%s: out of memory", k->name);
			return -1;
		}
		free(*dst);
		*dst = s;
		return 0;
	}
	case T_UINT:
	case T_PORT:
		if (parse_u64(value, k->min, k->max, &v) < 0) {
			cfg_fail(p, p->line, "%s: must be a whole number from %u to %u, got '%s'",
			     k->name, k->min, k->max, value);
			return -1;
		}
		if (k->type == T_PORT)
			*(uint16_t *)(void *)field = (uint16_t)v;
		else
			*(uint32_t *)(void *)field = (uint32_t)v;
		return 0;
	case T_ENUM:
	case T_BOOL:
		for (int i = 0; k->choices[i]; i++)
			if (!strcmp(value, k->choices[i])) {
				if (k->type == T_BOOL)
					*(bool *)(void *)field = i == 0;    /* onoff_names: on, off */
				else
					*(int *)(void *)field = (int)k->min + i;
				return 0;
			}
		{
			char list[128] = "";

			for (int i = 0; k->choices[i]; i++) {
				if (i)
					strncat(list, ", ", sizeof(list) - strlen(list) - 1);
				strncat(list, k->choices[i], sizeof(list) - strlen(list) - 1);
			}
			cfg_fail(p, p->line, "%s: must be one of %s; got '%s'", k->name, list, value);
		}
		return -1;
	case T_RESREF: {
		const struct cfg_resource *r = base;

		if (!*value || !strcmp(value, "none")) {
			field[0] = '\0';
			return 0;
		}
		if (!cfg_valid_name(value)) {
			cfg_fail(p, p->line, "%s: '%s' is not a resource name: " NAME_RULE, k->name, value);
			return -1;
		}
		if (!strcmp(value, r->name)) {
			cfg_fail(p, p->line, "%s: resource '%s' cannot start after itself", k->name, value);
			return -1;
		}
		strlcpy_ok(field, value, CFG_NAME_MAX);
		return 0;
	}
	case T_IFNAME:
		if (!valid_ifname(value)) {
			cfg_fail(p, p->line, "%s: '%s' is not a valid interface name (1 to %d characters, "
			     "no '/', ':' or spaces)", k->name, value, IF_NAMESIZE - 1);
			return -1;
		}
		strlcpy_ok(field, value, IF_NAMESIZE);
		return 0;
	case T_STRING:
		if (!*value) {
			cfg_fail(p, p->line, "%s: must not be empty", k->name);
			return -1;
		}
		if (strlen(value) > k->max) {
			cfg_fail(p, p->line, "%s: too long (max %u characters)", k->name, k->max);
			return -1;
		}
		strlcpy_ok(field, value, k->max + 1);
		return 0;
	case T_NAMEREF:
		if (!*value || !strcmp(value, "none")) {
			field[0] = '\0';
			return 0;
		}
		if (!cfg_valid_name(value)) {
			cfg_fail(p, p->line, "%s: '%s' is not a resource name: " NAME_RULE, k->name, value);
			return -1;
		}
		strlcpy_ok(field, value, CFG_NAME_MAX);
		if (p->sect == S_CHECKER)
			((struct cfg_checker *)base)->resource_line = p->line;
		return 0;
	case T_IPV4: {
		struct in_addr a;

		if (parse_ipv4(value, &a) < 0) {
			cfg_fail(p, p->line, "%s: '%s' is not an IPv4 address", k->name, value);
			return -1;
		}
		if (a.s_addr == htonl(INADDR_ANY) || a.s_addr == htonl(INADDR_BROADCAST) ||
		    IN_MULTICAST(ntohl(a.s_addr))) {
			cfg_fail(p, p->line, "%s: '%s' cannot be pinged", k->name, value);
			return -1;
		}
		memcpy(field, &a, sizeof(a));
		*(bool *)((char *)base + k->off2) = true;
		return 0;
	}
	case T_HOSTPORT: {
		char buf[INET_ADDRSTRLEN + 8], *colon;
		struct sockaddr_in sa = { .sin_family = AF_INET };

		if (!strlcpy_ok(buf, value, sizeof(buf)) || !(colon = strrchr(buf, ':'))) {
			cfg_fail(p, p->line, "%s: '%s' is not IPv4:PORT, like 10.0.0.3:4800", k->name, value);
			return -1;
		}
		*colon = '\0';
		if (parse_ipv4(buf, &sa.sin_addr) < 0 || sa.sin_addr.s_addr == htonl(INADDR_ANY) ||
		    sa.sin_addr.s_addr == htonl(INADDR_BROADCAST) || IN_MULTICAST(ntohl(sa.sin_addr.s_addr))) {
			cfg_fail(p, p->line, "%s: '%s' is not a usable IPv4 address (in '%s')", k->name, buf, value);
			return -1;
		}
		if (parse_u64(colon + 1, 1, 65535, &v) < 0) {
			cfg_fail(p, p->line, "%s: port must be a whole number from 1 to 65535, got '%s'", k->name,
			         colon + 1);
			return -1;
		}
		sa.sin_port = htons((uint16_t)v);
		memcpy(field, &sa, sizeof(sa));
		*(bool *)((char *)base + k->off2) = true;
		return 0;
	}
	case T_CIDR:
		return set_cidr(p, k, base, value);
	case T_ADDRLIST:
		return set_addrlist(p, k, base, value);
	case T_DIRLIST:
		return set_dirlist(p, k, base, value);
	case T_GLOBLIST:
		return set_globlist(p, k, base, value);
	}
	cfg_fail(p, p->line, "%s: unknown key type", k->name);
	return -1;
}

static int apply_defaults(struct parse *p, enum sect s, void *base)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].sect == s && keys[i].def && set_value(p, &keys[i], base, keys[i].def) < 0)
			return -1;
	return 0;
}

int cfg_find_key(int s, const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if ((int)keys[i].sect == s && !strcmp(keys[i].name, name))
			return (int)i;
	return -1;
}

/* The keys a checker type uses: given where it needs them, and only there. */
static const struct {
	const char *key;
	unsigned types;       /* bit per type index in cfg_checker_type_names */
} chk_keys[] = {
	{ "target", 1u << 0 | 1u << 5 },     /* tcp, ping */
	{ "url", 1u << 1 },                  /* http */
	{ "expect_status", 1u << 1 },
	{ "process", 1u << 2 },              /* process (or pidfile) */
	{ "pidfile", 1u << 2 },
	{ "command", 1u << 3 },              /* custom */
	{ "interface", 1u << 4 },            /* interface */
};

static int check_checker_keys(struct parse *p, const struct cfg_checker *c)
{
	const char *type = cfg_checker_type_names[c->type];
	int proc = p->key_line[cfg_find_key(S_CHECKER, "process")];
	int pidf = p->key_line[cfg_find_key(S_CHECKER, "pidfile")];

	for (size_t i = 0; i < ARRAY_SIZE(chk_keys); i++) {
		int line = p->key_line[cfg_find_key(S_CHECKER, chk_keys[i].key)];
		bool used = chk_keys[i].types & (1u << c->type);

		if (line && !used) {
			cfg_fail(p, line, "%s: does not apply to a %s checker ([checker %s])", chk_keys[i].key, type,
			         c->name);
			return -1;
		}
		if (!line && used && strcmp(chk_keys[i].key, "expect_status") &&
		    strcmp(chk_keys[i].key, "process") && strcmp(chk_keys[i].key, "pidfile")) {
			cfg_fail(p, p->sect_line, "[checker %s]: a %s checker needs %s", c->name, type, chk_keys[i].key);
			return -1;
		}
	}
	if (c->type == 2 && !proc == !pidf) {
		cfg_fail(p, proc ? (proc > pidf ? proc : pidf) : p->sect_line,
		         "[checker %s]: a process checker needs exactly one of process and pidfile", c->name);
		return -1;
	}
	return 0;
}

static int close_section(struct parse *p)
{
	struct config *cfg = p->cfg;
	char label[CFG_NAME_MAX + 16];

	if (p->sect < 0 || p->failed)
		return p->failed ? -1 : 0;
	/* [cluster]'s keys are required only once the role is known: a pool
	 * recorder or spare may omit them (cfg_check_cluster_keys). */
	for (size_t i = 0; i < NKEYS; i++)
		if ((int)keys[i].sect == p->sect && p->sect != S_CLUSTER && keys[i].required && !p->key_line[i]) {
			cfg_fail(p, p->sect_line, "missing required key '%s' in %s", keys[i].name,
			     sect_label(p, label, sizeof(label)));
			return -1;
		}
	if (p->sect == S_CLUSTER && p->count[S_POOL])
		return cfg_check_cluster_keys(p);
	if (p->sect == S_POOL)
		return cfg_close_pool(p);
	if (p->sect == S_HEARTBEAT && cfg->hb_timeout_ms < 2 * cfg->hb_interval_ms) {
		int t = cfg_find_key(S_HEARTBEAT, "timeout_ms"), iv = cfg_find_key(S_HEARTBEAT, "interval_ms");
		int line = p->key_line[t] ? p->key_line[t] : p->key_line[iv] ? p->key_line[iv] : p->sect_line;

		cfg_fail(p, line, "timeout_ms: must be at least 2 * interval_ms = %u, got %u",
		     2 * cfg->hb_interval_ms, cfg->hb_timeout_ms);
		return -1;
	}
	if (p->sect == S_RESOURCE)
		p->res_after_line[cfg->nres - 1] = p->key_line[cfg_find_key(S_RESOURCE, "after")];
	if (p->sect == S_CHECKER)
		return check_checker_keys(p, p->base);
	if (p->sect == S_WITNESS) {
		int a = p->key_line[cfg_find_key(S_WITNESS, "address")], g = p->key_line[cfg_find_key(S_WITNESS, "ping")];

		if (a && g) {
			cfg_fail(p, a > g ? a : g, "[witness]: address and ping exclude each other; use one");
			return -1;
		}
		if (!a && !g) {
			cfg_fail(p, p->sect_line, "[witness]: needs address = IPv4:PORT (a vigil-witness) or ping = IPv4");
			return -1;
		}
	}
	return 0;
}

/* text: what is between '[' and ']'. */
static int open_section(struct parse *p, char *text)
{
	struct config *cfg = p->cfg;
	char *kind = text, *name, *end;
	int s;

	if (close_section(p) < 0)
		return -1;
	while (isspace((unsigned char)*kind))
		kind++;
	end = kind + strlen(kind);
	while (end > kind && isspace((unsigned char)end[-1]))
		*--end = '\0';
	name = kind;
	while (*name && !isspace((unsigned char)*name))
		name++;
	if (*name) {
		*name++ = '\0';
		while (isspace((unsigned char)*name))
			name++;
	}
	for (s = 0; s < S_COUNT; s++)
		if (!strcmp(kind, sects[s].name))
			break;
	/* A section that a pool recorder's or spare's file cannot have makes
	 * this a mirror node's file, whose [cluster] needs all its keys: say
	 * so before anything about the new section. */
	if (s != S_POOL && s != S_NOTIFY && s != S_CONSOLE && cfg_check_cluster_keys(p) < 0)
		return -1;
	if (s == S_COUNT) {
		cfg_fail(p, p->line, "unknown section [%s%s%s]", kind, *name ? " " : "", name);
		return -1;
	}
	if (sects[s].named && !*name) {
		cfg_fail(p, p->line, "section [%s] needs a name, like [%s NAME]", kind, kind);
		return -1;
	}
	if (!sects[s].named && !sects[s].name_optional && *name) {
		cfg_fail(p, p->line, "section [%s] takes no name, got [%s %s]", kind, kind, name);
		return -1;
	}
	if (*name && !cfg_valid_name(name)) {
		cfg_fail(p, p->line, "%s name '%s' is invalid: " NAME_RULE, kind, name);
		return -1;
	}
	if (cfg_pool_refuse_section(p, s, name, p->line) < 0)
		return -1;
	if (s == S_NODE) {
		for (int i = 0; i < cfg->nnodes; i++)
			if (!strcmp(cfg->nodes[i].name, name)) {
				cfg_fail(p, p->line, "duplicate section [node %s] (first at line %d)", name,
				     cfg->nodes[i].line);
				return -1;
			}
	} else if (s == S_RESOURCE) {
		if (!strcmp(name, "none")) {
			cfg_fail(p, p->line, "resource name 'none' is reserved (it means no dependency in 'after')");
			return -1;
		}
		for (int i = 0; i < cfg->nres; i++)
			if (!strcmp(cfg->res[i].name, name)) {
				cfg_fail(p, p->line, "duplicate section [resource %s] (first at line %d)", name,
				     cfg->res[i].line);
				return -1;
			}
	} else if (s == S_CHECKER) {
		for (int i = 0; i < cfg->nchecker; i++)
			if (!strcmp(cfg->checkers[i].name, name)) {
				cfg_fail(p, p->line, "duplicate section [checker %s] (first at line %d)", name,
				     cfg->checkers[i].line);
				return -1;
			}
	} else if (s == S_NOTIFY) {
		for (int i = 0; i < cfg->nnotify; i++)
			if (!strcmp(cfg->notify[i].name, name)) {
				cfg_fail(p, p->line, "duplicate section [notify%s%s] (first at line %d)",
				     *name ? " " : "", name, cfg->notify[i].line);
				return -1;
			}
	} else if (p->count[s]) {
		cfg_fail(p, p->line, "duplicate section [%s] (first at line %d)", kind, p->sect_first[s]);
		return -1;
	}
	if (p->count[s] == sects[s].max) {
		cfg_fail(p, p->line, "too many [%s] sections (at most %d)", kind, sects[s].max);
		return -1;
	}
	if (!p->count[s]++)
		p->sect_first[s] = p->line;
	p->sect = s;
	p->sect_line = p->line;

	switch (s) {
	case S_NODE: {
		struct cfg_node *n = &cfg->nodes[cfg->nnodes++];

		strlcpy_ok(n->name, name, sizeof(n->name));
		n->line = p->line;
		p->base = n;
		break;
	}
	case S_RESOURCE: {
		struct cfg_resource *r = &cfg->res[cfg->nres++];

		strlcpy_ok(r->name, name, sizeof(r->name));
		r->line = p->line;
		p->base = r;
		break;
	}
	case S_CHECKER: {
		struct cfg_checker *c = &cfg->checkers[cfg->nchecker++];

		strlcpy_ok(c->name, name, sizeof(c->name));
		c->line = p->line;
		p->base = c;
		break;
	}
	case S_NOTIFY: {
		struct cfg_notify *nt = &cfg->notify[cfg->nnotify++];

		strlcpy_ok(nt->name, name, sizeof(nt->name));
		nt->line = p->line;
		p->base = nt;
		break;
	}
	default:
		p->base = cfg;
		if (s == S_VIP)
			cfg->vip_enabled = true;
		if (s == S_REPLICATION)
			cfg->repl_enabled = true;
		/* Defaults of unnamed sections are in place since config_load's start. */
		return 0;
	}
	for (size_t i = 0; i < NKEYS; i++)
		if ((int)keys[i].sect == s)
			p->key_line[i] = 0;
	return apply_defaults(p, s, p->base);
}

/* inih's find_chars_or_comment(): the first of chars, or an inline comment
 * (';' after whitespace). The reader checks syntax with inih's own rules so
 * that errors are reported with our own words and line numbers. */
static char *find_chars_or_comment(char *s, const char *chars)
{
	bool was_space = false;

	while (*s && !strchr(chars, *s) && !(was_space && *s == ';')) {
		was_space = isspace((unsigned char)*s);
		s++;
	}
	return s;
}

/* Handles one line that is not a key (section header, comment, blank) and
 * checks the syntax of key lines. 0 or -1. */
static int scan_line(struct parse *p, char *str)
{
	char *end;

	if (!*str || *str == ';' || *str == '#')
		return 0;
	if (*str == '[') {
		char inner[256];

		end = find_chars_or_comment(str + 1, "]");
		if (*end != ']') {
			cfg_fail(p, p->line, "section header without ']'");
			return -1;
		}
		*end = '\0';
		strlcpy_ok(inner, str + 1, sizeof(inner));
		*end = ']';
		for (end++; isspace((unsigned char)*end); end++)
			;
		if (*end && *end != ';' && *end != '#') {
			cfg_fail(p, p->line, "unexpected text after the section header: '%s'", end);
			return -1;
		}
		return open_section(p, inner);
	}
	end = find_chars_or_comment(str, "=:");
	if (*end != '=' && *end != ':') {
		cfg_fail(p, p->line, "expected 'key = value', '[section]' or a comment");
		return -1;
	}
	return 0;
}

/* inih reader: one line per call, so inih's line count is ours. */
static char *read_line(char *str, int num, void *stream)
{
	struct parse *p = stream;
	size_t n = 0, total = 0, cap = num > 0 ? (size_t)num - 1 : 0;
	bool nul = false, any = false, cr = false;
	int c;

	if (p->failed)
		return NULL;
	while ((c = getc(p->f)) != EOF) {
		any = true;
		if (c == '\n')
			break;
		if (c == '\0')
			nul = true;
		cr = c == '\r';
		if (n < cap)
			str[n++] = (char)c;
		total++;
	}
	if (ferror(p->f)) {
		cfg_fail(p, p->line + 1, "read error: %s", strerror(errno));
		return NULL;
	}
	if (!any)
		return NULL;
	p->line++;
	if (cr) {       /* CRLF line ending */
		total--;
		if (n > total)
			n = total;
	}
	if (total > cap) {
		cfg_fail(p, p->line, "line too long (max %zu characters)", cap);
		return NULL;
	}
	if (nul) {
		cfg_fail(p, p->line, "line contains a NUL byte");
		return NULL;
	}
	str[n] = '\0';
	if (p->line == 1 && !strncmp(str, "\xEF\xBB\xBF", 3))
		memmove(str, str + 3, n - 2);
	/* Without leading whitespace, inih never treats an indented line as
	 * the continuation of the previous value. */
	{
		char *s = str;

		while (isspace((unsigned char)*s))
			s++;
		memmove(str, s, strlen(s) + 1);
	}
	if (scan_line(p, str) < 0)
		return NULL;
	return str;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;
	char label[CFG_NAME_MAX + 16];
	int i;

	(void)section;  /* ours is not truncated to 50 bytes */
	if (p->failed)
		return 0;
	if (!value)
		value = "";
	if (p->sect < 0) {
		cfg_fail(p, p->line, "key '%s' is outside any section", name);
		return 0;
	}
	i = cfg_find_key(p->sect, name);
	if (i < 0) {
		cfg_fail(p, p->line, "unknown key '%s' in %s", name, sect_label(p, label, sizeof(label)));
		return 0;
	}
	if (p->key_line[i]) {
		cfg_fail(p, p->line, "duplicate key '%s' in %s (first at line %d)", name,
		     sect_label(p, label, sizeof(label)), p->key_line[i]);
		return 0;
	}
	p->key_line[i] = p->line;
	return set_value(p, &keys[i], p->base, value) < 0 ? 0 : 1;
}


int config_load(const char *path, struct config *cfg, char *err, size_t errlen)
{
	return config_load_flags(path, cfg, 0, err, errlen);
}

int config_load_flags(const char *path, struct config *cfg, unsigned flags, char *err, size_t errlen)
{
	struct parse p = { .cfg = cfg, .path = path, .err = err, .errlen = errlen, .sect = -1,
	                   .skip_secret = (flags & CONFIG_NO_SECRET) != 0 };
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	if (err && errlen)
		err[0] = '\0';
	if (!strlcpy_ok(cfg->path, path, sizeof(cfg->path))) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	p.f = fopen(path, "re");
	if (!p.f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (apply_defaults(&p, S_CLUSTER, cfg) < 0 || apply_defaults(&p, S_HEARTBEAT, cfg) < 0 ||
	    apply_defaults(&p, S_VIP, cfg) < 0 || apply_defaults(&p, S_WITNESS, cfg) < 0 ||
	    apply_defaults(&p, S_REPLICATION, cfg) < 0 || apply_defaults(&p, S_CONSOLE, cfg) < 0 ||
	    apply_defaults(&p, S_POOL, cfg) < 0)
		goto fail;
	rc = ini_parse_stream(read_line, &p, on_key, &p);
	if (!p.failed && rc != 0) {
		/* scan_line() checks inih's syntax rules first, so this is only
		 * reached if inih disagrees with it. */
		if (rc > 0)
			cfg_fail(&p, rc, "syntax error");
		else
			cfg_fail(&p, p.line, "cannot parse (inih error %d)", rc);
	}
	if (p.failed || close_section(&p) < 0 || cfg_check_all(&p) < 0)
		goto fail;
	fclose(p.f);
	return 0;
fail:
	fclose(p.f);
	config_free(cfg);
	return -1;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	for (int i = 0; i < CFG_MAX_RESOURCES; i++) {
		free(cfg->res[i].start);
		free(cfg->res[i].stop);
		cfg->res[i].start = cfg->res[i].stop = NULL;
	}
	cfg->nres = 0;
	for (int i = 0; i < CFG_MAX_NOTIFY; i++) {
		free(cfg->notify[i].command);
		cfg->notify[i].command = NULL;
	}
	cfg->nnotify = 0;
	for (int i = 0; i < CFG_MAX_CHECKERS; i++) {
		free(cfg->checkers[i].command);
		cfg->checkers[i].command = NULL;
	}
	cfg->nchecker = 0;
	free(cfg->pool_start);
	free(cfg->pool_stop);
	free(cfg->pool_check);
	cfg->pool_start = cfg->pool_stop = cfg->pool_check = NULL;
	explicit_bzero(cfg->secret, sizeof(cfg->secret));
	cfg->secret_len = 0;
}

int config_node_index(const struct config *cfg, const char *name)
{
	for (int i = 0; i < cfg->nnodes; i++)
		if (!strcmp(cfg->nodes[i].name, name))
			return i;
	return -1;
}

int config_find_local_node(const struct config *cfg, char *err, size_t errlen)
{
	struct ifaddrs *ifa;
	int found = -1, nfound = 0;

	if (getifaddrs(&ifa) < 0) {
		snprintf(err, errlen, "cannot list this machine's addresses: %s", strerror(errno));
		return -1;
	}
	for (int j = 0; j < cfg->nnodes; j++) {
		bool mine = false;

		for (int i = 0; i < cfg->nodes[j].naddr && !mine; i++)
			for (struct ifaddrs *a = ifa; a && !mine; a = a->ifa_next)
				if (a->ifa_addr && a->ifa_addr->sa_family == AF_INET &&
				    ((struct sockaddr_in *)(void *)a->ifa_addr)->sin_addr.s_addr ==
				    cfg->nodes[j].addr[i].s_addr)
					mine = true;
		if (mine) {
			found = j;
			nfound++;
		}
	}
	freeifaddrs(ifa);
	if (nfound == 1)
		return found;
	if (nfound == 0)
		snprintf(err, errlen, "none of this machine's addresses belongs to a [node] section (use --node NAME)");
	else
		snprintf(err, errlen, "this machine holds addresses of both nodes (use --node NAME)");
	return -1;
}

