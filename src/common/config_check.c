/* Checks of a configuration that need the whole file: resource order,
 * references between sections, the secret. Part of config.c's parser. */
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

/* Checks that need the whole file. */
int cfg_check_all(struct parse *p)
{
	struct config *cfg = p->cfg;
	int eof = p->line > 0 ? p->line : 1;

	for (int s = 0; s < S_COUNT; s++) {
		if (p->count[s] >= sects[s].min)
			continue;
		if (p->count[s] == 0)
			cfg_fail(p, eof, "missing required section [%s%s]", sects[s].name,
			     sects[s].named ? " NAME" : "");
		else
			cfg_fail(p, eof, "need %d [%s] sections, found %d", sects[s].min, sects[s].name,
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
	return p->skip_secret ? 0 : load_secret(p);
}
