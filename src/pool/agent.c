#include "pool/agent.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "cluster/peerlink_tls.h"
#include "common/log.h"
#include "common/util.h"
#include "pool/agent_int.h"
#include "pool/conn.h"
#include "pool/copy.h"
#include "pool/names.h"
#include "pool/worker.h"
#include "resource/script.h"

#define RECONNECT_MS 1000
#define WATCHDOG_EVERY_MS 5000
#define SCAN_EVERY_MS 5000
#define STOOD_DOWN_FILE "pool-stood-down"
#define ROLE_FILE "pool-role"

int64_t agent_now(void)
{
	return (int64_t)mono_ms();
}

static struct timeval tv_ms(int64_t ms)
{
	struct timeval tv;

	ms_to_timeval((uint64_t)ms, &tv);
	return tv;
}

void agent_send(struct pool_agent *a, json_t *msg)
{
	if (a->conn && a->welcomed)
		pool_conn_send(a->conn, msg);
	else
		json_decref(msg);
}

void agent_result(struct pool_agent *a, uint64_t id, bool ok, const char *error)
{
	if (id)
		agent_send(a, pool_msg_result(id, ok, ok ? NULL : error));
}

/* ---- scripts -------------------------------------------------------------- */

void agent_script_why(const struct script_result *res, char *out, size_t len)
{
	if (res->timed_out)
		snprintf(out, len, "timed out after %llu ms", (unsigned long long)res->elapsed_ms);
	else if (res->spawn_errno)
		snprintf(out, len, "could not run: %s", strerror(res->spawn_errno));
	else if (res->signal)
		snprintf(out, len, "killed by signal %d", res->signal);
	else
		snprintf(out, len, "exit %d", res->exit_code);
	if (res->tail[0])
		snprintf(out + strlen(out), len - strlen(out), ": %s", res->tail);
}

/* The [pool] start or stop command, for a recorder (itself) or, on a
 * spare, for the recorder it stands in for. */
/* A spare works for rec in settings_dir/rec and recordings_dir/rec; a
 * recorder in the directories themselves, unless a swap made it go on with
 * the service of the recorder it stood in for (a->as). */
void agent_dirs(const struct pool_agent *a, const char *rec, char *settings, size_t slen, char *recordings,
                size_t rlen)
{
	const char *sub = a->role == PA_SPARE ? rec : strcmp(a->as, a->name) ? a->as : "";

	snprintf(settings, slen, "%s%s%s", a->cfg->pool_settings_dir, *sub ? "/" : "", sub);
	snprintf(recordings, rlen, "%s%s%s", a->cfg->pool_recordings_dir, *sub ? "/" : "", sub);
}

/* The [pool] start or stop command, for a recorder (itself) or, on a
 * spare, for the recorder it stands in for. */
struct script *agent_script(struct pool_agent *a, const char *what, const char *command, const char *rec,
                            script_done_cb done, void *arg)
{
	char role[64], name[96], recorder[96], settings[PATH_MAX + 96], recordings[PATH_MAX + 96], label[128];
	char sdir[PATH_MAX + CFG_NAME_MAX], rdir[PATH_MAX + CFG_NAME_MAX];
	char *env[] = { role, name, recorder, settings, recordings, NULL };

	agent_dirs(a, rec, sdir, sizeof(sdir), rdir, sizeof(rdir));
	snprintf(role, sizeof(role), "VIGIL_POOL_ROLE=%s", pool_agent_role_str(a->role));
	snprintf(name, sizeof(name), "VIGIL_POOL_NAME=%s", a->name);
	snprintf(recorder, sizeof(recorder), "VIGIL_POOL_RECORDER=%s", a->role == PA_SPARE ? rec : a->as);
	snprintf(settings, sizeof(settings), "VIGIL_POOL_SETTINGS=%s", sdir);
	snprintf(recordings, sizeof(recordings), "VIGIL_POOL_RECORDINGS=%s", rdir);
	snprintf(label, sizeof(label), "pool-%s", what);
	return script_run(label, command, env, a->cfg->pool_script_timeout_ms, done, arg);
}

/* ---- the recorder's own service: start, stop, watchdog ------------------- */

static void mark_file_job(void *ctx, void *arg)
{
	struct pool_agent *a = ctx;
	char path[PATH_MAX + 32];
	int rc;

	snprintf(path, sizeof(path), "%s/" STOOD_DOWN_FILE, a->cfg->state_dir);
	if (!arg) {
		if (unlink(path) < 0 && errno != ENOENT)
			log_warn("pool: cannot remove %s: %s", path, strerror(errno));
		return;
	}
	rc = write_file_atomic(path, "", 0, 0644);
	if (rc < 0)
		log_warn("pool: cannot record that the master stood this recorder down (%s): %s", path,
		         strerror(-rc));
}

static void rec_cmd_done(const struct script_result *res, void *arg)
{
	struct pool_agent *a = arg;
	uint64_t id = a->cmd_id;
	enum pool_msg_type cmd = a->cmd;
	char err[SCRIPT_TAIL_MAX + 64];

	/* Cut short by a newer order, which answered for it already. */
	if (res->cancelled)
		return;
	a->busy = NULL;
	a->cmd_id = 0;
	agent_script_why(res, err, sizeof(err));
	if (cmd == PM_STOP) {
		a->recording = false;
	} else {
		a->recording = res->ok;
		a->watchdog_failed = !res->ok;
		if (!res->ok)
			log_warn("pool: recorder %s: the recording service cannot start (%s): watchdog failure", a->name,
			         err);
	}
	agent_result(a, id, res->ok, err);
}

static int rec_run(struct pool_agent *a, enum pool_msg_type cmd, uint64_t id)
{
	const char *what = cmd == PM_STOP ? "stop" : "start";

	if (a->busy)
		return -1;
	a->cmd = cmd;
	a->cmd_id = id;
	a->busy = agent_script(a, what, cmd == PM_STOP ? a->cfg->pool_stop : a->cfg->pool_start, a->as,
	                       rec_cmd_done, a);
	if (!a->busy) {
		a->cmd_id = 0;
		agent_result(a, id, false, "cannot run the command");
		return -1;
	}
	return 0;
}

static void check_done(const struct script_result *res, void *arg)
{
	struct pool_agent *a = arg;

	a->checking = NULL;
	if (res->cancelled)
		return;
	if (res->ok) {
		a->recording = true;
		a->watchdog_failed = false;
		return;
	}
	if (a->stood_down)
		return;
	{
		char why[SCRIPT_TAIL_MAX + 64];

		agent_script_why(res, why, sizeof(why));
		log_warn("pool: recorder %s: check failed (%s): starting the recording service again", a->name, why);
	}
	rec_run(a, PM_RESUME, 0);
}

static void watchdog(struct pool_agent *a)
{
	if (a->role != PA_RECORDER || !a->booted || a->stood_down || a->busy || a->checking)
		return;
	if (a->cfg->pool_check) {
		a->checking = agent_script(a, "check", a->cfg->pool_check, a->as, check_done, a);
		return;
	}
	/* Without a check, a failed start is retried. */
	if (!a->recording)
		rec_run(a, PM_RESUME, 0);
}

static void on_recorder_cmd(struct pool_agent *a, const struct pool_msg *m)
{
	if (m->type == PM_STOP) {
		a->stood_down = true;
		pool_worker_post(a->files, mark_file_job, NULL, (void *)1);
	} else {
		a->stood_down = false;
		pool_worker_post(a->files, mark_file_job, NULL, NULL);
	}
	if (a->checking)
		script_cancel(a->checking);
	/* A start already running (at boot, or the watchdog's) answers this
	 * resume when it ends. */
	if (m->type == PM_RESUME && a->busy && a->cmd == PM_RESUME) {
		agent_result(a, a->cmd_id, false, "superseded by a newer order");
		a->cmd_id = m->id;
		return;
	}
	if (a->busy) {
		/* The order that came last wins: the one running is cut short. */
		script_cancel(a->busy);
		a->busy = NULL;
		agent_result(a, a->cmd_id, false, "superseded by a newer order");
		a->cmd_id = 0;
	}
	rec_run(a, m->type, m->id);
}

/* ---- health ----------------------------------------------------------------- */

struct probe {
	struct pool_agent *a;
	bool ok;
	uint32_t cameras;
	uint64_t used, total;
};

static void probe_job(void *ctx, void *arg)
{
	struct pool_agent *a = ctx;
	struct probe *p = arg;
	char path[PATH_MAX + 32];
	struct statvfs vfs;
	DIR *d;
	int fd, rc;

	snprintf(path, sizeof(path), "%s/.vigil-probe", a->cfg->pool_recordings_dir);
	/* Made at the first probe (a spare's may not exist yet). */
	if ((rc = mkdir_p(a->cfg->pool_recordings_dir, 0755)) < 0)
		log_error("pool: cannot make %s: %s", a->cfg->pool_recordings_dir, strerror(-rc));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	p->ok = fd >= 0 && write(fd, "x", 1) == 1 && fsync(fd) == 0;
	if (fd >= 0) {
		close(fd);
		unlink(path);
	}
	if (statvfs(a->cfg->pool_recordings_dir, &vfs) == 0) {
		p->total = (uint64_t)vfs.f_blocks * vfs.f_frsize;
		p->used = (uint64_t)(vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize;
	}
	/* The recording service keeps a directory per camera. */
	d = opendir(a->cfg->pool_recordings_dir);
	for (struct dirent *e; d && (e = readdir(d));)
		if (e->d_type == DT_DIR && e->d_name[0] != '.' && a->role == PA_RECORDER)
			p->cameras++;
	if (d)
		closedir(d);
}

static void probe_done(void *arg)
{
	struct probe *p = arg;
	struct pool_agent *a = p->a;

	a->probe_started = 0;
	if (p->ok != !a->disks_failed)
		log_msg(p->ok ? LOG_LVL_INFO : LOG_LVL_ERROR, "pool: %s: recording disk %s %s", a->name,
		        a->cfg->pool_recordings_dir, p->ok ? "works again" : "failed (cannot write and sync a file)");
	a->disks_failed = !p->ok;
	a->cameras = p->cameras;
	a->storage_used = p->used;
	a->storage_total = p->total;
	free(p);
}

static void health(struct pool_agent *a)
{
	int64_t now = agent_now(), stall = 3 * (int64_t)a->heartbeat_ms;

	if (stall < 5000)
		stall = 5000;
	/* A probe stuck in the kernel is a dead disk too. */
	if (a->probe_started && now - a->probe_started > stall && !a->disks_failed) {
		log_error("pool: %s: recording disk %s does not answer (probe stuck %lld ms)", a->name,
		          a->cfg->pool_recordings_dir, (long long)(now - a->probe_started));
		a->disks_failed = true;
	}
	if (!a->probe_started) {
		struct probe *p = calloc(1, sizeof(*p));

		if (p) {
			p->a = a;
			a->probe_started = now;
			if (pool_worker_post(a->disk, probe_job, probe_done, p) < 0) {
				a->probe_started = 0;
				free(p);
			}
		}
	}
	agent_send(a, pool_msg_health(++a->seq, a->disks_failed, a->role == PA_RECORDER && a->watchdog_failed,
	                              a->cameras, a->storage_used, a->storage_total));
	agent_copy_progress(a);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct pool_agent *a = arg;
	struct timeval tv = tv_ms(a->heartbeat_ms);
	int64_t now = agent_now();

	(void)fd, (void)what;
	health(a);
	if (now - a->last_watchdog >= WATCHDOG_EVERY_MS) {
		a->last_watchdog = now;
		watchdog(a);
	}
	if (a->role == PA_RECORDER && a->welcomed && now - a->last_scan >= SCAN_EVERY_MS) {
		a->last_scan = now;
		agent_settings_scan(a);
	}
	event_add(a->tick, &tv);
}

/* ---- the link ----------------------------------------------------------------- */

static void connect_master(struct pool_agent *a);

static void on_reconnect(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	connect_master(arg);
}

static void lost(struct pool_agent *a, const char *why)
{
	struct timeval tv = tv_ms(RECONNECT_MS);

	if (a->welcomed || !a->last_why[0] || strcmp(a->last_why, why))
		log_warn("pool: %s: link to the master %s lost: %s", a->name, a->master, why);
	snprintf(a->last_why, sizeof(a->last_why), "%s", why);
	a->conn = NULL;
	a->welcomed = false;
	event_add(a->reconnect, &tv);
}

static void on_open(struct pool_conn *c, const char *peer, void *arg)
{
	struct pool_agent *a = arg;
	char err[256];
	json_t *hello;

	log_debug("pool: %s: connected to the master %s (%s)", a->name, a->master, peer);
	/* Another recorder's or spare's key must not pose as the master. */
	if (pool_conn_peer_member(c)) {
		snprintf(err, sizeof(err), "refused: %s shows the pool member certificate of '%s', not a "
		         "master's", a->master, peer);
		pool_conn_close(c, false);
		lost(a, err);
		return;
	}
	hello = pool_msg_hello(a->name, a->role, a->group, a->role == PA_RECORDER ? a->secondary : "",
	                       a->cfg->pool_failover, a->role == PA_RECORDER && a->recording && !a->stood_down,
	                       a->role == PA_SPARE ? a->serving : "", err, sizeof(err));
	if (!hello) {
		log_error("pool: %s: cannot say hello: %s", a->name, err);
		pool_conn_close(c, false);
		lost(a, err);
		return;
	}
	if (a->role == PA_RECORDER)
		json_object_set_new(hello, "copy_port", json_integer(a->cfg->pool_copy_port));
	pool_conn_send(c, hello);
}

static void on_msg(struct pool_conn *c, const struct pool_msg *m, void *arg)
{
	struct pool_agent *a = arg;

	(void)c;
	if (!a->welcomed && m->type != PM_WELCOME && m->type != PM_ERROR) {
		log_warn("pool: %s: the master sent %s before welcome", a->name, pool_msg_type_str(m->type));
		return;
	}
	switch (m->type) {
	case PM_WELCOME:
		a->welcomed = true;
		a->last_why[0] = '\0';
		a->heartbeat_ms = m->u.welcome.heartbeat_ms;
		log_info("pool: %s: %s of the pool, master %s (heartbeat %u ms, detect timeout %u ms)", a->name,
		         pool_agent_role_str(a->role), a->master, m->u.welcome.heartbeat_ms,
		         m->u.welcome.detect_timeout_ms);
		agent_settings_reset(a);
		health(a);
		if (a->role == PA_RECORDER) {
			a->last_scan = agent_now();
			agent_settings_scan(a);
		}
		break;
	case PM_ERROR:
		log_error("pool: %s: the master refused this agent: %s", a->name, m->u.error.message);
		break;
	case PM_SETTINGS:
		if (a->role == PA_SPARE)
			agent_spare_settings(a, m);
		break;
	case PM_START:
	case PM_STOP:
	case PM_COPY:
	case PM_RESUME:
		if (a->role == PA_RECORDER && (m->type == PM_STOP || m->type == PM_RESUME))
			on_recorder_cmd(a, m);
		else if (a->role == PA_SPARE && m->type != PM_RESUME)
			agent_spare_cmd(a, m);
		else
			agent_result(a, m->id, false, "not an order for this role");
		break;
	case PM_ROLE:
		agent_set_role(a, m->u.role.role, m->u.role.group);
		break;
	default:
		log_warn("pool: %s: unexpected %s from the master", a->name, pool_msg_type_str(m->type));
	}
}

/* ---- after_failure = swap ------------------------------------------------ */

static void role_file(const struct pool_agent *a, char *path, size_t len)
{
	snprintf(path, len, "%s/" ROLE_FILE, a->cfg->state_dir);
}

struct role_job {
	char path[PATH_MAX + 32];
	char text[256];
};

static void role_write_job(void *ctx, void *arg)
{
	struct role_job *j = arg;
	int rc = write_file_atomic(j->path, j->text, strlen(j->text), 0644);

	(void)ctx;
	if (rc < 0)
		log_error("pool: cannot keep the new role in %s: %s (a restart would use the configured one)",
		          j->path, strerror(-rc));
	free(j);
}

/* The master exchanged this machine's role with another's: a spare goes on
 * recording as the recorder it served, a repaired recorder stops and
 * becomes a free spare. Kept in STATE_DIR/pool-role across restarts (it
 * overrides [pool] role and group until removed). */
void agent_set_role(struct pool_agent *a, enum pool_agent_role role, const char *group)
{
	struct role_job *j;

	log_info("pool: %s: the master makes this machine a %s of group %s%s%s (after_failure = swap)", a->name,
	         pool_agent_role_str(role), group, role == PA_RECORDER && a->serving[0] ? ", going on as " : "",
	         role == PA_RECORDER ? a->serving : "");
	if (role == PA_SPARE && a->role == PA_RECORDER) {
		if (a->checking)
			script_cancel(a->checking);
		if (a->busy) {
			script_cancel(a->busy);
			a->busy = NULL;
			a->cmd_id = 0;
		}
		a->stood_down = true;           /* no watchdog: it is not its service any more */
		rec_run(a, PM_STOP, 0);         /* the env is fixed now, as the recorder */
		snprintf(a->as, sizeof(a->as), "%s", a->name);
	} else if (role == PA_RECORDER && a->role == PA_SPARE) {
		snprintf(a->as, sizeof(a->as), "%s", a->serving[0] ? a->serving : a->name);
		a->serving[0] = '\0';
		agent_keep_serving(a);
		a->recording = true;
		a->stood_down = false;
		a->booted = true;
	}
	a->role = role;
	snprintf(a->group, sizeof(a->group), "%s", group);
	a->secondary[0] = '\0';
	agent_settings_reset(a);
	j = calloc(1, sizeof(*j));
	if (!j)
		return;
	role_file(a, j->path, sizeof(j->path));
	snprintf(j->text, sizeof(j->text), "%s %s %s\n", pool_agent_role_str(role), group, a->as);
	if (pool_worker_post(a->files, role_write_job, NULL, j) < 0)
		free(j);
}

/* At start, before the loop: a swap recorded earlier wins over the file. */
static void load_role(struct pool_agent *a)
{
	char path[PATH_MAX + 32], role[16], group[CFG_NAME_MAX], as[CFG_NAME_MAX];
	FILE *f;

	role_file(a, path, sizeof(path));
	f = fopen(path, "re");
	if (!f)
		return;
	if (fscanf(f, "%15s %63s %63s", role, group, as) == 3 && pool_name_ok(group) && pool_name_ok(as) &&
	    (!strcmp(role, "recorder") || !strcmp(role, "spare"))) {
		a->role = !strcmp(role, "spare") ? PA_SPARE : PA_RECORDER;
		snprintf(a->group, sizeof(a->group), "%s", group);
		snprintf(a->as, sizeof(a->as), "%s", as);
		if (strcmp(group, a->cfg->pool_group) || a->role != (a->cfg->pool_role == POOL_CFG_SPARE ? PA_SPARE
		                                                                                          : PA_RECORDER))
			a->secondary[0] = '\0';
		log_info("pool: %s: %s of group %s%s%s since a swap (%s; remove it to use [pool] role again)", a->name,
		         role, group, strcmp(as, a->name) ? ", as " : "", strcmp(as, a->name) ? as : "", path);
	} else {
		log_error("pool: %s: %s is not 'ROLE GROUP NAME': ignored", a->name, path);
	}
	fclose(f);
}

static void on_bad(struct pool_conn *c, const char *err, void *arg)
{
	struct pool_agent *a = arg;

	log_error("pool: %s: bad message from the master: %s", a->name, err);
	pool_conn_close(c, false);
	lost(a, err);
}

static void on_closed(struct pool_conn *c, const char *why, void *arg)
{
	(void)c;
	lost(arg, why);
}

static const struct pool_conn_cbs agent_cbs = { on_open, on_msg, on_bad, on_closed };

static void connect_master(struct pool_agent *a)
{
	a->conn = pool_conn_connect(a->base, a->tls, &a->cfg->pool_master, &agent_cbs, a);
	if (!a->conn)
		lost(a, "cannot connect");
}

/* ---- life ------------------------------------------------------------------- */

static void mkdir_job(void *ctx, void *arg)
{
	struct pool_agent *a = ctx;
	char path[PATH_MAX + 32];
	struct stat st;

	(void)arg;
	snprintf(path, sizeof(path), "%s/" STOOD_DOWN_FILE, a->cfg->state_dir);
	a->stood_down_at_start = stat(path, &st) == 0;
}

static void start_done(void *arg)
{
	struct pool_agent *a = arg;

	if (a->role != PA_RECORDER)
		return;
	a->booted = true;
	a->stood_down = a->stood_down_at_start;
	if (a->stood_down) {
		log_info("pool: recorder %s: stood down by the master: not recording until it says resume", a->name);
		return;
	}
	rec_run(a, PM_RESUME, 0);
}

struct pool_agent *pool_agent_new(struct event_base *base, const struct config *cfg)
{
	struct pool_agent *a = calloc(1, sizeof(*a));
	char err[512], ip[INET_ADDRSTRLEN];
	struct timeval now = { 0, 0 };

	if (!a) {
		log_error("pool: out of memory");
		return NULL;
	}
	a->base = base;
	a->cfg = cfg;
	a->role = cfg->pool_role == POOL_CFG_SPARE ? PA_SPARE : PA_RECORDER;
	a->heartbeat_ms = 1000;
	snprintf(a->name, sizeof(a->name), "%s", cfg->pool_name);
	snprintf(a->group, sizeof(a->group), "%s", cfg->pool_group);
	snprintf(a->secondary, sizeof(a->secondary), "%s", cfg->pool_secondary_group);
	snprintf(a->as, sizeof(a->as), "%s", cfg->pool_name);
	load_role(a);
	if (a->role == PA_SPARE)
		agent_load_serving(a);
	inet_ntop(AF_INET, &cfg->pool_master.sin_addr, ip, sizeof(ip));
	snprintf(a->master, sizeof(a->master), "%s:%u", ip, ntohs(cfg->pool_master.sin_port));
	a->tls = tls_mutual_ctx(cfg->path, a->name, NULL, "pool link", err, sizeof(err));
	if (!a->tls) {
		log_error("pool: %s: the pool link needs certificates: %s", a->name, err);
		goto fail;
	}
	a->disk = pool_worker_new(base, "disk-probe", a);
	a->files = pool_worker_new(base, "files", a);
	a->copier = pool_worker_new(base, "copy", a);
	a->tick = evtimer_new(base, on_tick, a);
	a->reconnect = evtimer_new(base, on_reconnect, a);
	if (!a->disk || !a->files || !a->copier || !a->tick || !a->reconnect)
		goto fail;
	/* Any machine may be a recorder after a swap: each takes copies. */
	{
		a->copy_server = copy_server_start(a->tls, cfg->pool_copy_port, cfg->pool_recordings_dir, err, sizeof(err));
		if (!a->copy_server) {
			log_error("pool: recorder %s: cannot take copies back: %s", a->name, err);
			goto fail;
		}
	}
	pool_worker_post(a->files, mkdir_job, start_done, a);
	log_info("pool: %s %s (group %s%s%s), master %s", pool_agent_role_str(a->role), a->name, a->group,
	         a->secondary[0] ? ", secondary " : "", a->secondary, a->master);
	event_add(a->tick, &now);
	connect_master(a);
	return a;
fail:
	pool_agent_free(a);
	return NULL;
}

void pool_agent_free(struct pool_agent *a)
{
	if (!a)
		return;
	pool_conn_free(a->conn);
	if (a->copy_task)
		a->copy_task->cancel = 1;
	copy_server_stop(a->copy_server);
	pool_worker_free(a->copier);
	pool_worker_free(a->files);
	pool_worker_free(a->disk);
	agent_settings_free(a);
	if (a->tick)
		event_free(a->tick);
	if (a->reconnect)
		event_free(a->reconnect);
	if (a->tls)
		peerlink_tls_ctx_free(a->tls);
	free(a);
}
