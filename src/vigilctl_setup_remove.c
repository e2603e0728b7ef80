/* vigilctl setup remove: undoes the setup on this node. vigild stops (its
 * resources with it: the peer takes over), nothing of vigil stays mounted,
 * the virtual IP is gone, and the configuration, secret, certificates,
 * password hash and setup state are removed. Data stays: the replicated
 * directories, the logs and what vigil-rfs set aside (seeds: "Remove the
 * existing failover cluster configuration"). */
#include "vigilctl_setup_int.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mntent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "pki/pki.h"
#include "resource/vip.h"
#include "vigilctl_child.h"

#define MAX_PROCS 16
#define RFS_FSTYPE "fuse.vigil-rfs"
#define RFS_EXIT_WAIT_MS 2000
#define FUSERMOUNT_TIMEOUT_MS 10000

struct removal {
	const struct setup_paths *p;
	struct config *cfg;             /* NULL: no (loadable) config */
	char run_dir[PATH_MAX];
	int problems;                   /* what could not be undone */
};

static void problem(struct removal *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(struct removal *r, const char *fmt, ...)
{
	va_list ap;

	fputs("vigilctl setup remove: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	r->problems++;
}

static int confirm(const struct setup_paths *p)
{
	char line[16] = "";

	if (!isatty(STDIN_FILENO)) {
		fprintf(stderr, "vigilctl setup remove: stdin is not a terminal: add --yes to remove this node's "
			"configuration (%s)\n", p->config);
		return -1;
	}
	fprintf(stderr, "Remove the vigil configuration of this node (%s)? vigild stops here; if this node "
		"runs the service, the other node takes over. Data stays. [y/N] ", p->config);
	if (!fgets(line, sizeof(line), stdin) || (line[0] != 'y' && line[0] != 'Y')) {
		fprintf(stderr, "vigilctl setup remove: nothing done\n");
		return -1;
	}
	return 0;
}

static void stop_agent(struct removal *r)
{
	pid_t pid = setup_agent_pid(r->p);

	if (pid <= 0)
		return;
	if (setup_kill_wait(pid, 5000, "the setup agent") < 0)
		problem(r, "the setup agent (pid %d) does not stop", (int)pid);
	else
		printf("Stopped the setup agent (pid %d).\n", (int)pid);
}

static void stop_vigild(struct removal *r)
{
	pid_t pids[MAX_PROCS], sock = setup_vigild_sock_pid(r->run_dir);
	int n = setup_find_procs("vigild", r->p->config, pids, MAX_PROCS);
	char err[512];
	bool listed = false;

	if (sock > 0) {
		json_t *req = json_pack("{s:s, s:s}", "cmd", "stop", "client", "vigilctl setup remove"), *res;

		/* Stopped first: resources stop and the peer takes over, as with
		 * vigilctl stop; SIGTERM then ends the daemon. */
		res = req ? setup_vigild_call(r->run_dir, req, err, sizeof(err)) : NULL;
		if (!res)
			fprintf(stderr, "vigilctl setup remove: asking vigild to stop: %s (stopping it anyway)\n", err);
		json_decref(res);
		json_decref(req);
		for (int i = 0; i < n; i++)
			listed |= pids[i] == sock;
		if (!listed && n < MAX_PROCS)
			pids[n++] = sock;
	}
	for (int i = 0; i < n; i++) {
		if (setup_kill_wait(pids[i], SETUP_STOP_WAIT_MS, "vigild") < 0)
			problem(r, "vigild (pid %d) does not stop", (int)pids[i]);
		else
			printf("Stopped vigild (pid %d): resources stopped, the virtual IP released.\n", (int)pids[i]);
	}
}

/* vigil-rfs ends with vigild; one left over (vigild killed) is stopped. */
static void stop_rfs(struct removal *r)
{
	uint64_t deadline = mono_ms() + RFS_EXIT_WAIT_MS;
	pid_t pids[MAX_PROCS];
	int n;

	while ((n = setup_find_procs("vigil-rfs", NULL, pids, MAX_PROCS)) > 0 && mono_ms() < deadline)
		setup_nap(100);
	for (int i = 0; i < n; i++) {
		if (setup_kill_wait(pids[i], 5000, "vigil-rfs") < 0)
			problem(r, "vigil-rfs (pid %d) does not stop", (int)pids[i]);
		else
			printf("Stopped a leftover vigil-rfs (pid %d).\n", (int)pids[i]);
	}
}

/* A FUSE mount whose vigil-rfs died: fusermount3 knows how, within a
 * deadline (a hung mount must not hang the removal). */
static int fusermount_u(const char *dir)
{
	char *argv[] = { "fusermount3", "-u", "-z", (char *)dir, NULL };
	char why[256];
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	int r = child_run(argv, NULL, null, null, FUSERMOUNT_TIMEOUT_MS, NULL, why, sizeof(why));

	if (null >= 0)
		close(null);
	return r;
}

static void unmount_rfs(struct removal *r)
{
	char dirs[32][PATH_MAX];
	int n = 0;
	FILE *f = setmntent("/proc/self/mounts", "re");
	struct mntent *m;

	if (!f)
		return;
	while ((m = getmntent(f)) && n < 32)
		if (!strcmp(m->mnt_type, RFS_FSTYPE))
			snprintf(dirs[n++], PATH_MAX, "%s", m->mnt_dir);
	endmntent(f);
	/* Innermost first. */
	for (int i = n - 1; i >= 0; i--) {
		if (umount2(dirs[i], 0) == 0 || umount2(dirs[i], MNT_DETACH) == 0 || fusermount_u(dirs[i]) == 0)
			printf("Unmounted vigil-rfs from %s.\n", dirs[i]);
		else
			problem(r, "cannot unmount vigil-rfs from %s: %s", dirs[i], strerror(errno));
	}
}

static void release_vip(struct removal *r)
{
	struct setup_ifs *ifs;
	char ip[INET_ADDRSTRLEN], err[256];
	const struct setup_if *e;

	if (!r->cfg || !r->cfg->vip_enabled || !(ifs = calloc(1, sizeof(*ifs))))
		return;
	inet_ntop(AF_INET, &r->cfg->vip_addr, ip, sizeof(ip));
	/* vigild released it on stop; a killed one could not. */
	if (setup_local_ifs(ifs, err, sizeof(err)) == 0 && (e = setup_ifs_find(ifs, r->cfg->vip_addr))) {
		int gone = vip_addr_del(e->name, e->addr, e->prefix);

		if (gone < 0)
			problem(r, "the virtual IP %s is still on %s and cannot be removed: %s", ip, e->name,
				strerror(errno));
		else if (gone)
			printf("Removed the virtual IP %s from %s.\n", ip, e->name);
	}
	if (setup_local_ifs(ifs, err, sizeof(err)) == 0 && setup_ifs_find(ifs, r->cfg->vip_addr))
		problem(r, "the virtual IP %s is still on this machine", ip);
	free(ifs);
}

static bool in_dir(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return !strncmp(path, dir, n) && path[n] == '/' && !strchr(path + n + 1, '/');
}

static void remove_path(struct removal *r, const char *path, char *done, size_t donelen)
{
	struct stat st;
	size_t n = strlen(done);

	if (lstat(path, &st) < 0)
		return;
	if (setup_rm_tree(path) < 0) {
		problem(r, "cannot remove %s: %s", path, strerror(errno));
		return;
	}
	snprintf(done + n, donelen - n, "%s%s%s", n ? ", " : "", path, S_ISDIR(st.st_mode) ? "/" : "");
}

/* Crashed setups' stages: .setup-new.* in the config directory. */
static void remove_stages(struct removal *r, char *done, size_t donelen)
{
	DIR *d = opendir(r->p->dir);
	struct dirent *e;
	char path[PATH_MAX];

	if (!d)
		return;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, ".setup-new.", 11) && setup_join(path, r->p->dir, e->d_name))
			remove_path(r, path, done, donelen);
	closedir(d);
}

static void remove_files(struct removal *r)
{
	char done[8192] = "", path[PATH_MAX];
	static const char *const custom[] = { PKI_CUSTOM_CA, PKI_CUSTOM_CERT, PKI_CUSTOM_KEY, PKI_CUSTOM_CLIENT_CA };

	remove_path(r, r->p->config, done, sizeof(done));
	remove_path(r, r->p->secret, done, sizeof(done));
	remove_path(r, r->p->passwd, done, sizeof(done));
	if (r->cfg) {
		/* The config's own names, when they are files of its directory. */
		if (in_dir(r->cfg->secret_file, r->p->dir))
			remove_path(r, r->cfg->secret_file, done, sizeof(done));
		else if (access(r->cfg->secret_file, F_OK) == 0)
			printf("Left %s in place (outside %s).\n", r->cfg->secret_file, r->p->dir);
		if (in_dir(r->cfg->console_password_file, r->p->dir))
			remove_path(r, r->cfg->console_password_file, done, sizeof(done));
		/* The cluster state (not data): a new setup starts afresh. */
		if (setup_join(path, r->cfg->state_dir, "node.json"))
			remove_path(r, path, done, sizeof(done));
	}
	remove_path(r, r->p->pki, done, sizeof(done));
	remove_path(r, r->p->export_ca, done, sizeof(done));
	remove_path(r, r->p->state, done, sizeof(done));
	remove_stages(r, done, sizeof(done));
	if (done[0])
		printf("Removed %s.\n", done);
	for (size_t i = 0; i < ARRAY_SIZE(custom); i++)
		if (setup_join(path, r->p->dir, custom[i]) && access(path, F_OK) == 0)
			printf("Left the custom certificate file %s in place.\n", path);
}

static void print_kept(const struct removal *r)
{
	if (!r->cfg)
		return;
	printf("Kept: the logs in %s", r->cfg->state_dir);
	for (int i = 0; i < r->cfg->nrepl_dirs; i++)
		printf("%s%s", i ? ", " : "; the replicated data in ", r->cfg->repl_dirs[i]);
	printf(".\n");
}

int setup_remove(const struct setup_paths *p, int argc, char **argv)
{
	struct removal r = { .p = p };
	bool yes = false;
	char err[1024];

	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--yes") || !strcmp(argv[i], "-y")) {
			yes = true;
			continue;
		}
		fprintf(stderr, "vigilctl setup remove: unknown option '%s' (see vigilctl setup --help)\n", argv[i]);
		return SETUP_EXIT_USAGE;
	}
	if (!yes && confirm(p) < 0)
		return SETUP_EXIT_FAIL;
	snprintf(r.run_dir, sizeof(r.run_dir), "/run/vigil");
	if (access(p->config, F_OK) == 0) {
		r.cfg = calloc(1, sizeof(*r.cfg));
		if (r.cfg && config_load_flags(p->config, r.cfg, CONFIG_NO_SECRET, err, sizeof(err)) == 0) {
			snprintf(r.run_dir, sizeof(r.run_dir), "%s", r.cfg->run_dir);
		} else {
			fprintf(stderr, "vigilctl setup remove: %s: %s (removing it anyway; run_dir taken as %s)\n",
				p->config, r.cfg ? err : "out of memory", r.run_dir);
			free(r.cfg);
			r.cfg = NULL;
		}
	}
	stop_agent(&r);
	stop_vigild(&r);
	stop_rfs(&r);
	unmount_rfs(&r);
	release_vip(&r);
	remove_files(&r);
	print_kept(&r);
	if (r.cfg) {
		config_free(r.cfg);
		free(r.cfg);
	}
	if (r.problems) {
		fprintf(stderr, "vigilctl setup remove: %d thing%s could not be undone (above)\n", r.problems,
			r.problems == 1 ? "" : "s");
		return SETUP_EXIT_FAIL;
	}
	printf("This node's vigil configuration is removed.\n");
	return fflush(stdout) == 0 ? SETUP_EXIT_OK : SETUP_EXIT_FAIL;
}
