/* Checks of a configuration that need the whole file: resource order,
 * references between sections, the secret, the [pool] role and what it
 * allows. Part of config.c's parser. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config_int.h"
#include "common/log.h"
#include "common/util.h"

static int res_index(const struct config *cfg, const char *name)
{
	for (int i = 0; i < cfg->nres; i++)
		if (!strcmp(cfg->res[i].name, name))
			return i;
	return -1;
}

/* Start order: each resource after its `after`, otherwise file order (the
 * smallest file index that is ready goes first). */
static int sort_resources(struct parse *p)
{
	struct config *cfg = p->cfg;
	int n = cfg->nres, dep[CFG_MAX_RESOURCES], order[CFG_MAX_RESOURCES];
	bool placed[CFG_MAX_RESOURCES] = { false };
	struct cfg_resource sorted[CFG_MAX_RESOURCES];

	for (int i = 0; i < n; i++) {
		dep[i] = -1;
		if (!cfg->res[i].after[0])
			continue;
		dep[i] = res_index(cfg, cfg->res[i].after);
		if (dep[i] < 0) {
			cfg_fail(p, p->res_after_line[i], "after: resource '%s' starts after '%s', "
			     "which is not a [resource]", cfg->res[i].name, cfg->res[i].after);
			return -1;
		}
	}
	for (int k = 0; k < n; k++) {
		int pick = -1;

		for (int i = 0; i < n && pick < 0; i++)
			if (!placed[i] && (dep[i] < 0 || placed[dep[i]]))
				pick = i;
		if (pick < 0) {
			char chain[CFG_MAX_RESOURCES * (CFG_NAME_MAX + 8)];
			int c = 0, first;
			size_t len;

			while (placed[c])
				c++;
			/* Walking n links from any waiting resource lands inside a cycle. */
			for (int i = 0; i < n; i++)
				c = dep[c];
			first = c;
			for (int i = dep[c]; i != c; i = dep[i])
				if (i < first)
					first = i;
			len = (size_t)snprintf(chain, sizeof(chain), "%s", cfg->res[first].name);
			for (int i = dep[first];; i = dep[i]) {
				len += (size_t)snprintf(chain + len, sizeof(chain) - len, " after %s",
						       cfg->res[i].name);
				if (i == first)
					break;
			}
			cfg_fail(p, p->res_after_line[first], "after: resource '%s' is in a cycle: %s",
			     cfg->res[first].name, chain);
			return -1;
		}
		placed[pick] = true;
		order[k] = pick;
	}
	for (int k = 0; k < n; k++)
		sorted[k] = cfg->res[order[k]];
	memcpy(cfg->res, sorted, sizeof(sorted[0]) * n);
	return 0;
}

static int load_secret(struct parse *p)
{
	struct config *cfg = p->cfg;
	unsigned char buf[CFG_SECRET_MAX + 2];
	size_t len = 0;
	struct stat st;
	int fd, rc = -1;

	fd = open(cfg->secret_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		cfg_fail(p, p->secret_line, "secret_file '%s': %s", cfg->secret_file, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		cfg_fail(p, p->secret_line, "secret_file '%s': %s", cfg->secret_file, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		cfg_fail(p, p->secret_line, "secret_file '%s': not a regular file", cfg->secret_file);
		goto out;
	}
	while (len < sizeof(buf)) {
		ssize_t r = read(fd, buf + len, sizeof(buf) - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			cfg_fail(p, p->secret_line, "secret_file '%s': %s", cfg->secret_file, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len < CFG_SECRET_MIN || len > CFG_SECRET_MAX) {
		cfg_fail(p, p->secret_line, "secret_file '%s': must hold %d to %d bytes, holds %s%zu",
		     cfg->secret_file, CFG_SECRET_MIN, CFG_SECRET_MAX,
		     len > CFG_SECRET_MAX ? "more than " : "", len > CFG_SECRET_MAX ? (size_t)CFG_SECRET_MAX : len);
		goto out;
	}
	if (st.st_mode & (S_IRGRP | S_IROTH))
		log_warn("secret_file '%s' can be read by group or others (mode %04o): chmod 600 it",
			 cfg->secret_file, (unsigned)(st.st_mode & 07777));
	memcpy(cfg->secret, buf, len);
	cfg->secret_len = len;
	rc = 0;
out:
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return rc;
}

/* vigil-rfs mounts over each replicated dir and never reaches it by path
 * afterwards, so vigild's own files must stay out of them; and vigild must
 * not write its state through a mount that a dying vigil-rfs could hang. */
static int check_repl_dirs(struct parse *p)
{
	const struct config *cfg = p->cfg;
	char sd[PATH_MAX], rd[PATH_MAX];

	if (!cfg->repl_enabled)
		return 0;
	/* state_dir and run_dir are only known to be absolute: "." and ".."
	 * stay as they are, which compares them textually. */
	cfg_norm_path(cfg->state_dir, sd, sizeof(sd));
	cfg_norm_path(cfg->run_dir, rd, sizeof(rd));
	for (int i = 0; i < cfg->nrepl_dirs; i++) {
		const char *d = cfg->repl_dirs[i];
		const struct { const char *name, *path; } own[] = { { "state_dir", sd }, { "run_dir", rd } };

		for (size_t j = 0; j < ARRAY_SIZE(own); j++) {
			if (!own[j].path[0])
				continue;
			if (!strcmp(d, own[j].path)) {
				cfg_fail(p, p->repl_dirs_line, "[replication] dirs: %s: is %s", d, own[j].name);
				return -1;
			}
			if (cfg_path_within(own[j].path, d)) {
				cfg_fail(p, p->repl_dirs_line, "[replication] dirs: %s: contains %s %s", d, own[j].name,
				         own[j].path);
				return -1;
			}
		}
		if (sd[0] && cfg_path_within(d, sd)) {
			cfg_fail(p, p->repl_dirs_line, "[replication] dirs: %s: lies inside state_dir %s", d, sd);
			return -1;
		}
		if (cfg->repl_aside_dir[0]) {
			char rs[PATH_MAX];

			cfg_norm_path(cfg->repl_aside_dir, rs, sizeof(rs));
			if (!strcmp(d, rs) || cfg_path_within(rs, d) || cfg_path_within(d, rs)) {
				cfg_fail(p, p->repl_dirs_line, "[replication] dirs: %s: overlaps "
				         "[replication] aside_dir %s", d, rs);
				return -1;
			}
		}
	}
	return 0;
}

bool config_pool_agent(const struct config *cfg)
{
	return cfg->pool_role == POOL_CFG_RECORDER || cfg->pool_role == POOL_CFG_SPARE;
}

int cfg_check_cluster_keys(struct parse *p)
{
	if (p->cluster_checked || !p->count[S_CLUSTER] || config_pool_agent(p->cfg))
		return 0;
	p->cluster_checked = true;
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].sect == S_CLUSTER && keys[i].required && !p->key_line[i]) {
			cfg_fail(p, p->sect_first[S_CLUSTER], "missing required key '%s' in [cluster]", keys[i].name);
			return -1;
		}
	return 0;
}

#define ROLE_M (1u << POOL_CFG_MASTER)
#define ROLE_R (1u << POOL_CFG_RECORDER)
#define ROLE_S (1u << POOL_CFG_SPARE)

/* The roles of every [pool] key but role itself. A key given to a role that
 * does not take it is an error rather than ignored: it would mean the file
 * was written for another machine. */
static const struct {
	const char *key;
	unsigned roles;         /* bit per enum pool_cfg_role that takes it */
	unsigned needs;         /* ... and that must have it */
	const char *why;        /* said instead of "this is a ROLE"; NULL: that */
} pool_keys[] = {
	{ "name", ROLE_R | ROLE_S, ROLE_R | ROLE_S, "the master is named by its [node]" },
	{ "master", ROLE_R | ROLE_S, ROLE_R | ROLE_S, NULL },
	{ "listen", ROLE_M, ROLE_M, NULL },
	{ "group", ROLE_R | ROLE_S, ROLE_R | ROLE_S, NULL },
	{ "secondary_group", ROLE_R, 0, NULL },
	{ "failover", ROLE_R, 0, NULL },
	{ "detect_timeout_ms", ROLE_M, 0, NULL },
	{ "heartbeat_ms", ROLE_M, 0, NULL },
	{ "settings_dir", ROLE_R | ROLE_S, 0, NULL },
	{ "recordings_dir", ROLE_R | ROLE_S, 0, NULL },
	{ "registry_dir", ROLE_M, 0, NULL },
	{ "settings_max_bytes", ROLE_M, 0, NULL },
	{ "failback", ROLE_M, 0, NULL },
	{ "after_failure", ROLE_M, 0, NULL },
	{ "start", ROLE_R | ROLE_S, ROLE_R | ROLE_S, NULL },
	{ "stop", ROLE_R | ROLE_S, ROLE_R | ROLE_S, NULL },
	{ "check", ROLE_R, 0, NULL },
	{ "script_timeout_ms", ROLE_R | ROLE_S, 0, NULL },
	{ "copy_port", ROLE_R, 0, NULL },
};

/* "master", "recorder or spare", ... */
static const char *roles_str(unsigned roles, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int r = POOL_CFG_MASTER; r <= POOL_CFG_SPARE && n < len; r++)
		if (roles & (1u << r))
			n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? " or " : "",
			                      pool_cfg_role_str((enum pool_cfg_role)r));
	return buf;
}

static int pool_key_line(const struct parse *p, const char *key)
{
	return p->key_line[cfg_find_key(S_POOL, key)];
}

/* Every key given belongs to the role, and the role has the keys it needs.
 * The first wrong key in the file is reported. */
static int check_pool_roles(struct parse *p)
{
	enum pool_cfg_role role = p->cfg->pool_role;
	unsigned bit = 1u << role;
	int bad = -1, bad_line = 0;
	char roles[32];

	for (size_t i = 0; i < ARRAY_SIZE(pool_keys); i++) {
		int line = pool_key_line(p, pool_keys[i].key);

		if (line && !(pool_keys[i].roles & bit) && (bad < 0 || line < bad_line)) {
			bad = (int)i;
			bad_line = line;
		}
	}
	if (bad >= 0) {
		char self[32];

		snprintf(self, sizeof(self), "this is a %s", pool_cfg_role_str(role));
		cfg_fail(p, bad_line, "[pool] %s: only for role = %s (%s)", pool_keys[bad].key,
		         roles_str(pool_keys[bad].roles, roles, sizeof(roles)),
		         pool_keys[bad].why ? pool_keys[bad].why : self);
		return -1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(pool_keys); i++)
		if ((pool_keys[i].needs & bit) && !pool_key_line(p, pool_keys[i].key)) {
			cfg_fail(p, p->sect_line, "missing required key '%s' in [pool] for role = %s", pool_keys[i].key,
			         pool_cfg_role_str(role));
			return -1;
		}
	return 0;
}

/* The sections of a mirror node; a pool recorder or spare has none. */
static bool mirror_only(int s)
{
	return s == S_NODE || s == S_HEARTBEAT || s == S_VIP || s == S_REPLICATION || s == S_RESOURCE ||
	       s == S_CHECKER || s == S_WITNESS;
}

int cfg_pool_refuse_section(struct parse *p, int s, const char *name, int line)
{
	if (!config_pool_agent(p->cfg) || !mirror_only(s))
		return 0;
	cfg_fail(p, line, "[%s%s%s]: a pool %s is not a mirror node; remove this section", sects[s].name,
	         *name ? " " : "", name, pool_cfg_role_str(p->cfg->pool_role));
	return -1;
}

/* A recorder's or spare's [pool] came after mirror sections: the first of
 * them in the file is refused. */
static int refuse_earlier_sections(struct parse *p)
{
	const struct config *cfg = p->cfg;
	int first = -1;

	for (int s = 0; s < S_COUNT; s++)
		if (mirror_only(s) && p->count[s] && (first < 0 || p->sect_first[s] < p->sect_first[first]))
			first = s;
	if (first < 0)
		return 0;
	return cfg_pool_refuse_section(p, first,
	                               first == S_NODE ? cfg->nodes[0].name :
	                               first == S_RESOURCE ? cfg->res[0].name :
	                               first == S_CHECKER ? cfg->checkers[0].name : "",
	                               p->sect_first[first]);
}

int cfg_close_pool(struct parse *p)
{
	const struct config *cfg = p->cfg;
	int sec = pool_key_line(p, "secondary_group");

	if (check_pool_roles(p) < 0)
		return -1;
	if (sec && !strcmp(cfg->pool_secondary_group, cfg->pool_group)) {
		cfg_fail(p, sec, "[pool] secondary_group: must differ from group ('%s')", cfg->pool_group);
		return -1;
	}
	/* Agents report every heartbeat_ms: two missed reports at least
	 * before a recorder counts as failed. */
	if (cfg->pool_detect_timeout_ms < 2 * cfg->pool_heartbeat_ms) {
		int d = pool_key_line(p, "detect_timeout_ms"), h = pool_key_line(p, "heartbeat_ms");

		cfg_fail(p, d ? d : h ? h : p->sect_line, "[pool] detect_timeout_ms: must be at least "
		         "2 * heartbeat_ms = %u, got %u", 2 * cfg->pool_heartbeat_ms, cfg->pool_detect_timeout_ms);
		return -1;
	}
	if (config_pool_agent(cfg))
		return refuse_earlier_sections(p);
	return cfg_check_cluster_keys(p);
}

/* Checks that need the whole file. */
int cfg_check_all(struct parse *p)
{
	struct config *cfg = p->cfg;
	int eof = p->line > 0 ? p->line : 1;

	if (cfg_check_cluster_keys(p) < 0)
		return -1;
	for (int s = 0; s < S_COUNT; s++) {
		/* A recorder's or spare's file needs only its [pool]. */
		int min = config_pool_agent(cfg) ? 0 : sects[s].min;

		if (p->count[s] >= min)
			continue;
		if (p->count[s] == 0)
			cfg_fail(p, eof, "missing required section [%s%s]", sects[s].name,
			     sects[s].named ? " NAME" : "");
		else
			cfg_fail(p, eof, "need %d [%s] sections, found %d", min, sects[s].name,
			     p->count[s]);
		return -1;
	}
	if (sort_resources(p) < 0)
		return -1;
	for (int i = 0; i < cfg->nchecker; i++) {
		const struct cfg_checker *c = &cfg->checkers[i];

		if (c->resource[0] && res_index(cfg, c->resource) < 0) {
			cfg_fail(p, c->resource_line, "resource: [checker %s] restarts '%s', which is not a [resource]",
			         c->name, c->resource);
			return -1;
		}
	}
	if (cfg->witness_enabled && cfg->witness_lease_ms < 2 * cfg->hb_timeout_ms) {
		cfg_fail(p, p->sect_first[S_WITNESS], "lease_ms: must be at least 2 * [heartbeat] timeout_ms = %u, got %u",
		         2 * cfg->hb_timeout_ms, cfg->witness_lease_ms);
		return -1;
	}
	if (cfg->vip_enabled)
		for (int j = 0; j < cfg->nnodes; j++)
			for (int i = 0; i < cfg->nodes[j].naddr; i++)
				if (cfg->nodes[j].addr[i].s_addr == cfg->vip_addr.s_addr) {
					char ip[INET_ADDRSTRLEN];

					inet_ntop(AF_INET, &cfg->vip_addr, ip, sizeof(ip));
					cfg_fail(p, p->vip_addr_line, "address: the virtual address %s is also "
					     "an address of [node %s]", ip, cfg->nodes[j].name);
					return -1;
				}
	if (check_repl_dirs(p) < 0)
		return -1;
	/* [cluster] may come after [pool]; state_dir fits (same size). */
	if (cfg->pool_role == POOL_CFG_MASTER && !cfg->pool_registry_dir[0])
		strlcpy_ok(cfg->pool_registry_dir, cfg->state_dir, sizeof(cfg->pool_registry_dir));
	/* A recorder or spare may have no secret_file: then it has no secret. */
	return p->skip_secret || !cfg->secret_file[0] ? 0 : load_secret(p);
}
