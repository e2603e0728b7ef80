/* A spare's orders (start with a recorder's settings, stop, copy home),
 * and a recorder's settings upload. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "pool/agent_int.h"
#include "pool/copy.h"
#include "pool/names.h"
#include "pool/worker.h"

/* ---- a spare's orders ----------------------------------------------------- */

struct serving_job {
	char path[PATH_MAX + 32];
	char name[CFG_NAME_MAX];
};

static void serving_job(void *ctx, void *arg)
{
	struct serving_job *j = arg;
	int rc;

	(void)ctx;
	if (!j->name[0])
		rc = unlink(j->path) < 0 && errno != ENOENT ? -errno : 0;
	else
		rc = write_file_atomic(j->path, j->name, strlen(j->name), 0644);
	if (rc < 0)
		log_warn("pool: cannot keep %s: %s (a restart would not know what this spare records)", j->path,
		         strerror(-rc));
	free(j);
}

/* What the spare records for survives a restart of vigild (the recording
 * does), so that its hello tells the master the truth. */
void agent_keep_serving(struct pool_agent *a)
{
	struct serving_job *j = calloc(1, sizeof(*j));

	if (!j)
		return;
	snprintf(j->path, sizeof(j->path), "%s/" AGENT_SERVING_FILE, a->cfg->state_dir);
	snprintf(j->name, sizeof(j->name), "%s", a->serving);
	if (pool_worker_post(a->files, serving_job, NULL, j) < 0)
		free(j);
}

/* At start, before the loop. */
void agent_load_serving(struct pool_agent *a)
{
	char path[PATH_MAX + 32], *text = NULL;
	size_t len;

	snprintf(path, sizeof(path), "%s/" AGENT_SERVING_FILE, a->cfg->state_dir);
	if (read_file(path, CFG_NAME_MAX, &text, &len) < 0)
		return;
	if (pool_name_ok(text)) {
		snprintf(a->serving, sizeof(a->serving), "%s", text);
		log_info("pool: spare %s: records for %s (since before this restart)", a->name, a->serving);
	} else {
		log_error("pool: spare %s: %s does not hold a recorder's name: ignored", a->name, path);
	}
	free(text);
}

void agent_spare_settings(struct pool_agent *a, const struct pool_msg *m)
{
	const char *rec = json_string_value(json_object_get(m->root, "recorder"));
	struct pool_file *v;

	if (!rec || !*rec) {
		log_warn("pool: spare %s: settings %s without a recorder: ignored", a->name, m->u.settings.file);
		return;
	}
	if (strcmp(a->pending_for, rec)) {
		pool_files_free(a->pending, a->npending);
		a->pending = NULL;
		a->npending = 0;
		snprintf(a->pending_for, sizeof(a->pending_for), "%s", rec);
	}
	v = realloc(a->pending, (a->npending + 1) * sizeof(*v));
	if (!v) {
		log_error("pool: spare %s: out of memory for %s's settings", a->name, rec);
		return;
	}
	a->pending = v;
	v = &a->pending[a->npending];
	snprintf(v->path, sizeof(v->path), "%s", m->u.settings.file);
	v->len = m->u.settings.len;
	v->data = malloc(v->len ? v->len : 1);
	if (!v->data) {
		log_error("pool: spare %s: out of memory for %s's settings", a->name, rec);
		return;
	}
	memcpy(v->data, m->u.settings.data, v->len);
	a->npending++;
}

struct start_job {
	struct pool_agent *a;
	uint64_t id;
	char rec[CFG_NAME_MAX];
	struct pool_file *files;
	size_t n;
	bool ok;
	char err[512];
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag;
	return ftw->level == 0 ? 0 : remove(path);
}

static int write_file(const char *dir, const struct pool_file *f, char *err, size_t errlen)
{
	char path[PATH_MAX + POOL_PATH_MAX + 8], *slash;
	int rc;

	if (snprintf(path, sizeof(path), "%s/%s", dir, f->path) >= (int)sizeof(path)) {
		snprintf(err, errlen, "%.200s/%.200s: path too long", dir, f->path);
		return -1;
	}
	slash = strrchr(path, '/');
	*slash = '\0';
	rc = mkdir_p(path, 0755);
	*slash = '/';
	if (rc == 0)
		rc = write_file_atomic(path, f->data, f->len, 0644);
	if (rc < 0) {
		snprintf(err, errlen, "cannot write %.300s: %s", path, strerror(-rc));
		return -1;
	}
	return 0;
}

/* The recorder's settings as the master cached them, in a directory of
 * their own (what was there before goes: an old schedule must not
 * linger), and a directory to record into. */
static void start_files_job(void *ctx, void *arg)
{
	struct pool_agent *a = ctx;
	struct start_job *j = arg;
	char dir[PATH_MAX + CFG_NAME_MAX + 2], out[PATH_MAX + CFG_NAME_MAX + 2];
	int rc;

	snprintf(dir, sizeof(dir), "%s/%s", a->cfg->pool_settings_dir, j->rec);
	snprintf(out, sizeof(out), "%s/%s", a->cfg->pool_recordings_dir, j->rec);
	if ((rc = mkdir_p(dir, 0755)) < 0 || (rc = mkdir_p(out, 0755)) < 0) {
		snprintf(j->err, sizeof(j->err), "cannot make %.200s or %.200s: %s", dir, out, strerror(-rc));
		return;
	}
	if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0) {
		snprintf(j->err, sizeof(j->err), "cannot empty %.300s: %s", dir, strerror(errno));
		return;
	}
	for (size_t i = 0; i < j->n; i++)
		if (write_file(dir, &j->files[i], j->err, sizeof(j->err)) < 0)
			return;
	j->ok = true;
}

static void spare_cmd_done(const struct script_result *res, void *arg)
{
	struct pool_agent *a = arg;
	char err[SCRIPT_TAIL_MAX + 64], rec[CFG_NAME_MAX];
	uint64_t id = a->cmd_id;

	a->busy = NULL;
	a->cmd_id = 0;
	agent_script_why(res, err, sizeof(err));
	snprintf(rec, sizeof(rec), "%s", a->cmd == PM_START ? a->pending_for : a->serving);
	if (res->ok) {
		snprintf(a->serving, sizeof(a->serving), "%s", a->cmd == PM_START ? a->pending_for : "");
		agent_keep_serving(a);
	}
	log_msg(res->ok ? LOG_LVL_INFO : LOG_LVL_ERROR, "pool: spare %s: %s for %s %s%s", a->name,
	        a->cmd == PM_START ? "start" : "stop", rec, res->ok ? "done" : "failed: ", res->ok ? "" : err);
	agent_result(a, id, res->ok, err);
}

static void start_files_done(void *arg)
{
	struct start_job *j = arg;
	struct pool_agent *a = j->a;

	pool_files_free(j->files, j->n);
	if (!j->ok) {
		log_error("pool: spare %s: cannot start for %s: %s", a->name, j->rec, j->err);
		a->cmd_id = 0;
		agent_result(a, j->id, false, j->err);
		free(j);
		return;
	}
	a->busy = agent_script(a, "start", a->cfg->pool_start, j->rec, spare_cmd_done, a);
	if (!a->busy) {
		a->cmd_id = 0;
		agent_result(a, j->id, false, "cannot run the start command");
	}
	free(j);
}

static void copy_job(void *ctx, void *arg)
{
	(void)ctx;
	copy_run(arg);
}

static void copy_done(void *arg)
{
	struct copy_task *t = arg;
	struct pool_agent *a = t->owner;

	log_msg(t->ok ? LOG_LVL_INFO : LOG_LVL_ERROR, "pool: spare %s: copy-back to %s %s%s (%u of %u files, %llu bytes)",
	        a->name, t->recorder, t->ok ? "done" : "failed: ", t->ok ? "" : t->err, t->stats.files_done,
	        t->stats.files_total, (unsigned long long)t->stats.bytes_done);
	agent_copy_progress(a);
	agent_result(a, a->copy_id, t->ok, t->err);
	a->copy_task = NULL;
	a->copy_id = 0;
	free(t);
}

void agent_copy_progress(struct pool_agent *a)
{
	struct copy_task *t = a->copy_task;

	if (!t)
		return;
	agent_send(a, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "type", "copy_progress", "recorder", t->recorder,
	                        "bytes_done", (json_int_t)t->stats.bytes_done, "bytes_total",
	                        (json_int_t)t->stats.bytes_total, "files_done", (json_int_t)t->stats.files_done,
	                        "files_total", (json_int_t)t->stats.files_total));
}

static void start_copy(struct pool_agent *a, const struct pool_msg *m)
{
	struct copy_task *t;

	if (a->copy_task) {
		agent_result(a, m->id, false, "a copy-back is running already");
		return;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		agent_result(a, m->id, false, "out of memory");
		return;
	}
	t->owner = a;
	t->tls = a->tls;
	t->remove_after = true;
	snprintf(t->address, sizeof(t->address), "%s", m->u.cmd.address);
	snprintf(t->recorder, sizeof(t->recorder), "%s", m->u.cmd.recorder);
	snprintf(t->src, sizeof(t->src), "%s/%s", a->cfg->pool_recordings_dir, m->u.cmd.recorder);
	a->copy_task = t;
	a->copy_id = m->id;
	log_info("pool: spare %s: copying %s's recordings home to %s", a->name, t->recorder, t->address);
	if (pool_worker_post(a->copier, copy_job, copy_done, t) < 0) {
		a->copy_task = NULL;
		a->copy_id = 0;
		free(t);
		agent_result(a, m->id, false, "cannot start the copy");
	}
}

void agent_spare_cmd(struct pool_agent *a, const struct pool_msg *m)
{
	struct start_job *j;

	if (m->type == PM_COPY) {
		start_copy(a, m);
		return;
	}
	if (a->busy || a->cmd_id) {
		agent_result(a, m->id, false, "busy with an earlier order");
		return;
	}
	a->cmd = m->type;
	a->cmd_id = m->id;
	if (m->type == PM_STOP) {
		const char *rec = a->serving[0] ? a->serving : m->u.cmd.recorder;

		a->busy = agent_script(a, "stop", a->cfg->pool_stop, rec, spare_cmd_done, a);
		if (!a->busy) {
			a->cmd_id = 0;
			agent_result(a, m->id, false, "cannot run the stop command");
		}
		return;
	}
	if (a->serving[0] && strcmp(a->serving, m->u.cmd.recorder)) {
		a->cmd_id = 0;
		agent_result(a, m->id, false, "records for another recorder already");
		return;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		a->cmd_id = 0;
		agent_result(a, m->id, false, "out of memory");
		return;
	}
	j->a = a;
	j->id = m->id;
	snprintf(j->rec, sizeof(j->rec), "%s", m->u.cmd.recorder);
	if (!strcmp(a->pending_for, j->rec)) {
		j->files = a->pending;
		j->n = a->npending;
		a->pending = NULL;
		a->npending = 0;
	}
	snprintf(a->pending_for, sizeof(a->pending_for), "%s", j->rec);
	log_info("pool: spare %s: starting in the place of %s (%zu settings files)", a->name, j->rec, j->n);
	if (pool_worker_post(a->files, start_files_job, start_files_done, j) < 0) {
		pool_files_free(j->files, j->n);
		free(j);
		a->cmd_id = 0;
		agent_result(a, m->id, false, "cannot write the settings");
	}
}

/* ---- a recorder's settings upload ------------------------------------------- */

struct scan_job {
	struct pool_agent *a;
	char dir[PATH_MAX + CFG_NAME_MAX];
	unsigned gen;
	struct pool_sset prev, next;
	bool prev_valid, ok;
	char err[512];
	struct pool_file *files;       /* new or changed, with their data */
	size_t n, removed;
};

static void sset_copy(struct pool_sset *dst, const struct pool_sset *src)
{
	*dst = (struct pool_sset){ 0 };
	if (!src->n)
		return;
	dst->v = malloc(src->n * sizeof(*dst->v));
	if (dst->v) {
		memcpy(dst->v, src->v, src->n * sizeof(*dst->v));
		dst->n = src->n;
	}
}

static void collect(const struct pool_sfile *f, bool present, void *arg)
{
	struct scan_job *j = arg;
	struct pool_file *v;

	if (!present) {
		j->removed++;
		return;
	}
	if (j->err[0])
		return;
	v = realloc(j->files, (j->n + 1) * sizeof(*v));
	if (!v) {
		snprintf(j->err, sizeof(j->err), "out of memory");
		return;
	}
	j->files = v;
	v = &j->files[j->n];
	memset(v, 0, sizeof(*v));
	snprintf(v->path, sizeof(v->path), "%s", f->path);
	j->n++;
}

static int read_whole(const char *path, struct pool_file *f)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size > POOL_SETTINGS_FILE_MAX) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	f->data = malloc(st.st_size ? (size_t)st.st_size : 1);
	n = f->data ? read(fd, f->data, (size_t)st.st_size) : -1;
	close(fd);
	if (n != st.st_size)
		return -1;
	f->len = (size_t)n;
	return 0;
}

static void scan_job(void *ctx, void *arg)
{
	struct pool_agent *a = ctx;
	struct scan_job *j = arg;
	struct pool_scan_limits lim = { .file_max = POOL_SETTINGS_FILE_MAX, .count_max = POOL_SETTINGS_FILES_MAX,
	                                .depth_max = 16 };
	struct pool_sset empty = { 0 };
	struct stat st;

	(void)a;
	if (stat(j->dir, &st) < 0 && errno == ENOENT) {
		j->ok = true;           /* no settings: an empty list */
	} else if (pool_settings_scan(j->dir, &lim, j->prev_valid ? &j->prev : NULL, &j->next,
	                              j->err, sizeof(j->err)) == 0) {
		j->ok = true;
	}
	if (!j->ok)
		return;
	pool_sset_diff(j->prev_valid ? &j->prev : &empty, &j->next, collect, j);
	for (size_t i = 0; i < j->n && !j->err[0]; i++) {
		char path[sizeof(j->dir) + POOL_PATH_MAX + 8];

		snprintf(path, sizeof(path), "%s/%s", j->dir, j->files[i].path);
		if (read_whole(path, &j->files[i]) < 0)
			snprintf(j->err, sizeof(j->err), "cannot read %.300s: %s", path, strerror(errno));
	}
	if (j->err[0])
		j->ok = false;
}

static void scan_done(void *arg)
{
	struct scan_job *j = arg;
	struct pool_agent *a = j->a;
	json_t *list;

	a->scanning = false;
	if (!j->ok) {
		log_warn("pool: recorder %s: settings not uploaded: %s", a->name, j->err);
	} else if (j->gen == a->scan_gen && a->welcomed && (j->n || j->removed || !j->prev_valid)) {
		char err[256];

		for (size_t i = 0; i < j->n; i++) {
			json_t *msg = pool_msg_settings(j->files[i].path, j->files[i].data, j->files[i].len, err, sizeof(err));

			if (msg)
				agent_send(a, msg);
			else
				log_warn("pool: recorder %s: settings %s not sent: %s", a->name, j->files[i].path, err);
		}
		list = json_array();
		for (size_t i = 0; list && i < j->next.n; i++)
			json_array_append_new(list, json_pack("{s:s, s:s}", "file", j->next.v[i].path, "sha256",
			                                      j->next.v[i].sha256));
		agent_send(a, json_pack("{s:s, s:o}", "type", "settings_end", "files", list ? list : json_array()));
		log_info("pool: recorder %s: %zu settings file%s uploaded (%zu in all)", a->name, j->n,
		         j->n == 1 ? "" : "s", j->next.n);
		pool_sset_free(&a->sent);
		a->sent = j->next;
		a->sent_valid = true;
		j->next = (struct pool_sset){ 0 };
	}
	pool_sset_free(&j->prev);
	pool_sset_free(&j->next);
	pool_files_free(j->files, j->n);
	free(j);
}

void agent_settings_scan(struct pool_agent *a)
{
	struct scan_job *j;

	if (a->scanning || a->role != PA_RECORDER)
		return;
	j = calloc(1, sizeof(*j));
	if (!j)
		return;
	j->a = a;
	{
		char rdir[PATH_MAX + CFG_NAME_MAX];

		agent_dirs(a, "", j->dir, sizeof(j->dir), rdir, sizeof(rdir));
	}
	j->gen = a->scan_gen;
	j->prev_valid = a->sent_valid;
	sset_copy(&j->prev, &a->sent);
	a->scanning = true;
	if (pool_worker_post(a->files, scan_job, scan_done, j) < 0) {
		a->scanning = false;
		pool_sset_free(&j->prev);
		free(j);
	}
}

/* A new connection: the master gets the whole directory again. */
void agent_settings_reset(struct pool_agent *a)
{
	pool_sset_free(&a->sent);
	a->sent_valid = false;
	a->scan_gen++;
}

void agent_settings_free(struct pool_agent *a)
{
	pool_sset_free(&a->sent);
	pool_files_free(a->pending, a->npending);
	a->pending = NULL;
	a->npending = 0;
}
