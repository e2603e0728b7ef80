#include "api/snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "resource/script.h"

/* vigilctl gathers logs and runs a few commands, each with its own
 * deadline (vigilctl_snapshot.c); this bounds the whole. */
#define SNAPSHOT_TIMEOUT_MS 120000

/* One dump at a time: two in the same second would share a name. */
static bool dump_running;

struct snap {
	bool keep;                  /* a dump: stays in state_dir/dumps */
	snapshot_cb cb;
	void *arg;
	char node[64];
	char dir[PATH_MAX];
	char name[128];
	char path[PATH_MAX + 160];
};

/* vigilctl next to vigild (the build tree), in ../bin (an install), or
 * in the usual places. */
static int find_vigilctl(char *out, size_t outlen)
{
	char self[PATH_MAX], dir[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	const char *fixed[] = { "/usr/bin/vigilctl", "/usr/local/bin/vigilctl", "/usr/sbin/vigilctl" };

	if (n > 0) {
		self[n] = '\0';
		snprintf(dir, sizeof(dir), "%s", dirname(self));
		if (snprintf(out, outlen, "%s/vigilctl", dir) < (int)outlen && access(out, X_OK) == 0)
			return 0;
		if (snprintf(out, outlen, "%s/../bin/vigilctl", dir) < (int)outlen && access(out, X_OK) == 0)
			return 0;
	}
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		snprintf(out, outlen, "%s", fixed[i]);
		if (access(out, X_OK) == 0)
			return 0;
	}
	return -1;
}

static void snap_free(struct snap *s)
{
	if (!s->keep) {
		unlink(s->path);
		rmdir(s->dir);
	} else {
		dump_running = false;
	}
	free(s);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* dump_*.tar.gz only: not the archiver's FILE.tmp-XXXXXX of a dump being
 * written. */
static int is_dump(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	return !strncmp(e->d_name, "dump_", 5) && n > 12 && !strcmp(e->d_name + n - 7, ".tar.gz");
}

/* Keeps the newest DUMPS_KEPT dumps, the one just written among them even
 * if the clock went back (names sort by time). */
static void prune_dumps(const char *dir, const char *keep)
{
	struct dirent **list;
	int n = scandir(dir, &list, is_dump, by_name);
	int others = 0, seen = 0;
	char path[PATH_MAX + 300];

	for (int i = 0; i < n; i++)
		others += strcmp(list[i]->d_name, keep) != 0;
	for (int i = 0; i < n; i++) {
		if (strcmp(list[i]->d_name, keep) && seen++ < others - (DUMPS_KEPT - 1) &&
		    snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name) < (int)sizeof(path) &&
		    unlink(path) == 0)
			log_info("dump %s removed (the newest %d are kept)", path, DUMPS_KEPT);
		free(list[i]);
	}
	if (n >= 0)
		free(list);
}

static void dump_done(struct snap *s)
{
	struct stat st;
	json_t *r;

	prune_dumps(s->dir, s->name);
	if (stat(s->path, &st) < 0) {
		s->cb(NULL, "the dump was not written", s->arg);
		return;
	}
	log_info("dump %s written (%lld bytes)", s->path, (long long)st.st_size);
	r = json_pack("{s:s, s:s, s:I}", "node", s->node, "path", s->path, "size", (json_int_t)st.st_size);
	s->cb(r, r ? NULL : "out of memory", s->arg);
}

static void on_done(const struct script_result *res, void *arg)
{
	struct snap *s = arg;
	char *buf = NULL, *b64 = NULL;
	size_t len = 0;
	char err[300];
	json_t *r;

	if (!res->ok) {
		snprintf(err, sizeof(err), "vigilctl snapshot failed%s: %.200s", res->timed_out ? " (timed out)" : "",
		         res->tail[0] ? res->tail : "no output");
		s->cb(NULL, err, s->arg);
		snap_free(s);
		return;
	}
	if (s->keep) {
		dump_done(s);
		snap_free(s);
		return;
	}
	if (read_file(s->path, SNAPSHOT_MAX, &buf, &len) < 0) {
		snprintf(err, sizeof(err), "the snapshot %.200s could not be read: %s", s->name,
		         errno == EFBIG ? "larger than 10 MiB" : strerror(errno));
		free(buf);
		s->cb(NULL, err, s->arg);
		snap_free(s);
		return;
	}
	b64 = malloc(4 * ((len + 2) / 3) + 1);
	if (!b64) {
		free(buf);
		s->cb(NULL, "out of memory", s->arg);
		snap_free(s);
		return;
	}
	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)buf, (int)len);
	r = json_pack("{s:s, s:s, s:I, s:s}", "node", s->node, "name", s->name, "size", (json_int_t)len, "data",
	              b64);
	free(buf);
	free(b64);
	log_info("snapshot %s made (%zu bytes)", s->name, len);
	s->cb(r, r ? NULL : "out of memory", s->arg);
	snap_free(s);
}

static int start(const struct config *cfg, const char *node, bool keep, snapshot_cb cb, void *arg, char *err,
                 size_t errlen)
{
	struct snap *s = calloc(1, sizeof(*s));
	char ctl[PATH_MAX], cmd[3 * PATH_MAX], stamp[32];
	time_t now = time(NULL);
	struct tm tm;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (keep && dump_running) {
		snprintf(err, errlen, "a dump is already being written; try again when it is done");
		free(s);
		return -1;
	}
	s->cb = cb;
	s->arg = arg;
	snprintf(s->node, sizeof(s->node), "%s", node);
	if (find_vigilctl(ctl, sizeof(ctl)) < 0) {
		snprintf(err, errlen, "vigilctl not found (next to vigild, in ../bin or /usr/bin)");
		free(s);
		return -1;
	}
	/* Paths go into a shell command between single quotes. */
	if (strchr(ctl, '\'') || strchr(cfg->path, '\'') || strchr(cfg->run_dir, '\'')) {
		snprintf(err, errlen, "a path holds a single quote: %s, %s or %s", ctl, cfg->path, cfg->run_dir);
		free(s);
		return -1;
	}
	s->keep = keep;
	if (keep) {
		if (snprintf(s->dir, sizeof(s->dir), "%s/dumps", cfg->state_dir) >= (int)sizeof(s->dir) ||
		    mkdir_p(s->dir, 0700) < 0) {
			snprintf(err, errlen, "cannot make %s/dumps: %s", cfg->state_dir, strerror(errno));
			free(s);
			return -1;
		}
	} else if (snprintf(s->dir, sizeof(s->dir), "%s/snapshot-XXXXXX", cfg->run_dir) >= (int)sizeof(s->dir) ||
	           !mkdtemp(s->dir)) {
		snprintf(err, errlen, "cannot make a directory in %s: %s", cfg->run_dir, strerror(errno));
		free(s);
		return -1;
	}
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), keep ? "%Y%m%d_%H%M%S" : "%Y%m%d-%H%M%S", &tm);
	if (keep)
		snprintf(s->name, sizeof(s->name), "dump_%s.tar.gz", stamp);
	else
		snprintf(s->name, sizeof(s->name), "vigil-%s-%s.tar.gz", node, stamp);
	snprintf(s->path, sizeof(s->path), "%s/%s", s->dir, s->name);
	if (snprintf(cmd, sizeof(cmd), "exec '%s' -c '%s' snapshot -o '%s'", ctl, cfg->path, s->path) >=
	    (int)sizeof(cmd)) {
		snprintf(err, errlen, "paths too long for the snapshot command");
		rmdir(s->dir);
		free(s);
		return -1;
	}
	if (keep)
		dump_running = true;
	if (!script_run(keep ? "dump" : "snapshot", cmd, NULL, SNAPSHOT_TIMEOUT_MS, on_done, s)) {
		snprintf(err, errlen, "vigilctl snapshot could not be started");
		if (!keep)
			rmdir(s->dir);
		else
			dump_running = false;
		free(s);
		return -1;
	}
	return 0;
}

int snapshot_make(const struct config *cfg, const char *node, snapshot_cb cb, void *arg, char *err,
                  size_t errlen)
{
	return start(cfg, node, false, cb, arg, err, errlen);
}

int snapshot_dump(const struct config *cfg, const char *node, snapshot_cb cb, void *arg, char *err,
                  size_t errlen)
{
	return start(cfg, node, true, cb, arg, err, errlen);
}
