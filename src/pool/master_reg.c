/* The master's registry, written by its worker thread in the order the
 * loop changed things; the loop only posts copies (docs/pool.md, "Master
 * restart" for what is read back). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "pool/master_int.h"
#include "pool/worker.h"

enum job_kind { J_LOAD, J_CLOSE, J_REC_PUT, J_SPARE_PUT, J_REC_STATE, J_SPARE_STATE, J_QUEUE, J_LOG, J_SETTINGS,
	        J_SETTINGS_DEL, J_SWAP };

struct loaded_rec {
	struct reg_recorder row;
	struct pool_file *files;
	size_t nfiles;
};

struct job {
	struct pool_master *m;
	enum job_kind kind;
	unsigned generation;
	char path[PATH_MAX + 16];
	struct reg_recorder rec, rec2;
	struct reg_spare spare, spare2;
	char name[REG_NAME_MAX], state[REG_STATE_MAX], by[REG_NAME_MAX];
	char (*queue)[REG_NAME_MAX];
	size_t nqueue;
	struct reg_log_entry entry;
	struct pool_file file;
	size_t limit;
	/* J_LOAD's result */
	bool ok;
	struct loaded_rec *recs;
	size_t nrecs, caprecs;
	struct reg_spare *spares;
	size_t nspares, capspares;
	struct reg_log_entry *log;
	size_t nlog;
};

static void *grow(void *v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return v;
	*cap = *cap ? *cap * 2 : 16;
	return realloc(v, *cap * size);
}

static int load_rec(const struct reg_recorder *rec, void *arg)
{
	struct job *j = arg;
	void *v = grow(j->recs, &j->caprecs, j->nrecs, sizeof(*j->recs));

	if (!v)
		return -1;
	j->recs = v;
	memset(&j->recs[j->nrecs], 0, sizeof(j->recs[0]));
	j->recs[j->nrecs++].row = *rec;
	return 0;
}

static int load_spare(const struct reg_spare *sp, void *arg)
{
	struct job *j = arg;
	void *v = grow(j->spares, &j->capspares, j->nspares, sizeof(*j->spares));

	if (!v)
		return -1;
	j->spares = v;
	j->spares[j->nspares++] = *sp;
	return 0;
}

static int load_file(const struct reg_settings_file *f, void *arg)
{
	struct loaded_rec *lr = arg;
	struct pool_file *v = realloc(lr->files, (lr->nfiles + 1) * sizeof(*v));

	if (!v)
		return -1;
	lr->files = v;
	v = &lr->files[lr->nfiles];
	memset(v, 0, sizeof(*v));
	snprintf(v->path, sizeof(v->path), "%s", f->file);
	snprintf(v->sha256, sizeof(v->sha256), "%s", f->sha256);
	v->data = malloc(f->len ? f->len : 1);
	if (!v->data)
		return -1;
	memcpy(v->data, f->data, f->len);
	v->len = f->len;
	lr->nfiles++;
	return 0;
}

static int load_log(const struct reg_log_entry *e, void *arg)
{
	struct job *j = arg;

	if (j->nlog < MASTER_LOG_KEEP)
		j->log[j->nlog++] = *e;
	return 0;
}

static void job_load(struct job *j, char *err, size_t errlen)
{
	struct pool_master *m = j->m;

	if (!m->reg && !(m->reg = reg_open(j->path, err, errlen)))
		return;
	j->log = calloc(MASTER_LOG_KEEP, sizeof(*j->log));
	if (!j->log) {
		snprintf(err, errlen, "out of memory");
		return;
	}
	if (reg_recorders(m->reg, load_rec, j, err, errlen) < 0 || reg_spares(m->reg, load_spare, j, err, errlen) < 0 ||
	    reg_log_list(m->reg, MASTER_LOG_KEEP, load_log, j, err, errlen) < 0)
		return;
	for (size_t i = 0; i < j->nrecs; i++)
		if (reg_settings(m->reg, j->recs[i].row.name, load_file, &j->recs[i], err, errlen) < 0)
			return;
	j->ok = true;
}

static void run_job(void *ctx, void *arg)
{
	struct pool_master *m = ctx;
	struct job *j = arg;
	char err[512] = "";
	int rc = 0;
	bool changed;

	if (j->kind != J_LOAD && !m->reg)
		return;                 /* the load failed: it said why */
	switch (j->kind) {
	case J_LOAD:
		job_load(j, err, sizeof(err));
		rc = j->ok ? 0 : -1;
		break;
	case J_CLOSE:
		reg_close(m->reg);
		m->reg = NULL;
		break;
	case J_REC_PUT:
		rc = reg_recorder_put(m->reg, &j->rec, err, sizeof(err));
		break;
	case J_SPARE_PUT:
		rc = reg_spare_put(m->reg, &j->spare, err, sizeof(err));
		break;
	case J_REC_STATE:
		rc = reg_recorder_set_state(m->reg, j->name, j->state, j->by, err, sizeof(err));
		break;
	case J_SPARE_STATE:
		rc = reg_spare_set_state(m->reg, j->name, j->state, j->by, err, sizeof(err));
		break;
	case J_QUEUE: {
		const char **names = calloc(j->nqueue + 1, sizeof(*names));

		if (!names) {
			snprintf(err, sizeof(err), "out of memory");
			rc = -1;
			break;
		}
		for (size_t i = 0; i < j->nqueue; i++)
			names[i] = j->queue[i];
		rc = reg_queue_set(m->reg, names, j->nqueue, err, sizeof(err));
		free(names);
		break;
	}
	case J_LOG:
		rc = reg_log_add(m->reg, &j->entry, err, sizeof(err));
		break;
	case J_SETTINGS:
		rc = reg_settings_put(m->reg, j->name, j->file.path, j->file.data, j->file.len, j->limit, &changed, err,
		                      sizeof(err));
		break;
	case J_SETTINGS_DEL:
		rc = reg_settings_del(m->reg, j->name, j->file.path, err, sizeof(err));
		break;
	case J_SWAP:
		/* One machine leaves each table before the other joins it. */
		rc = reg_recorder_del(m->reg, j->rec2.name, err, sizeof(err));
		if (rc == 0)
			rc = reg_spare_del(m->reg, j->spare2.name, err, sizeof(err));
		if (rc == 0)
			rc = reg_recorder_put(m->reg, &j->rec, err, sizeof(err));
		if (rc == 0)
			rc = reg_spare_put(m->reg, &j->spare, err, sizeof(err));
		if (rc == 0)
			rc = reg_recorder_set_state(m->reg, j->rec.name, j->rec.state, j->rec.served_by, err, sizeof(err));
		if (rc == 0)
			rc = reg_spare_set_state(m->reg, j->spare.name, j->spare.state, j->spare.serving, err, sizeof(err));
		break;
	}
	if (rc < 0)
		log_error("pool registry (%s/pool.db): %s", m->cfg->pool_registry_dir, err);
}

static void free_job(struct job *j)
{
	for (size_t i = 0; i < j->nrecs; i++)
		pool_files_free(j->recs[i].files, j->recs[i].nfiles);
	free(j->recs);
	free(j->spares);
	free(j->log);
	free(j->queue);
	free(j->file.data);
	free(j);
}

static enum pool_rec_state rec_state_parse(const char *s)
{
	for (int i = 0; i < POOL_R__COUNT; i++)
		if (!strcmp(s, pool_rec_state_str((enum pool_rec_state)i)))
			return (enum pool_rec_state)i;
	return POOL_R_OFFLINE;
}

/* The grace after a restart: agents reconnect before anyone fails over. */
static uint32_t grace_ms(const struct pool_master *m)
{
	return 2 * m->cfg->pool_detect_timeout_ms;
}

static void load_done(void *arg)
{
	struct job *j = arg;
	struct pool_master *m = j->m;
	const char *why;

	if (j->generation != m->generation || !m->active) {
		free_job(j);
		return;
	}
	if (!j->ok) {
		log_error("pool: the registry cannot be read: the master does not start");
		free_job(j);
		return;
	}
	for (size_t i = 0; i < j->nrecs; i++) {
		const struct reg_recorder *row = &j->recs[i].row;
		int r = pool_add_recorder(m->pool, row->name, row->group, row->secondary_group, row->failover, &why);

		if (r < 0) {
			log_error("pool registry: recorder %s left out: %s", row->name, why);
			continue;
		}
		m->rx[r].files = j->recs[i].files;
		m->rx[r].nfiles = j->recs[i].nfiles;
		for (size_t k = 0; k < m->rx[r].nfiles; k++)
			m->rx[r].bytes += m->rx[r].files[k].len;
		j->recs[i].files = NULL;
		j->recs[i].nfiles = 0;
	}
	for (size_t i = 0; i < j->nspares; i++)
		if (pool_add_spare(m->pool, j->spares[i].name, j->spares[i].group, &why) < 0)
			log_error("pool registry: spare %s left out: %s", j->spares[i].name, why);
	for (size_t i = 0; i < j->nrecs; i++) {
		const struct reg_recorder *row = &j->recs[i].row;
		int r = pool_find_recorder(m->pool, row->name), s = pool_find_spare(m->pool, row->served_by);
		enum pool_rec_state st = rec_state_parse(row->state);

		if (r < 0 || s < 0)
			continue;
		if (st == POOL_R_FAILING_OVER || st == POOL_R_FAILED_OVER || st == POOL_R_BACK) {
			if (!pool_restore_served(m->pool, r, s, POOL_T_LOST, &why))
				log_error("pool registry: %s served by %s not restored: %s", row->name, row->served_by, why);
		} else if ((st == POOL_R_FAILING_BACK || st == POOL_R_COPYING) && !pool_restore_owed(m->pool, s, r, &why)) {
			log_error("pool registry: copy-back of %s from %s not restored: %s", row->name, row->served_by, why);
		}
	}
	for (size_t i = 0; i < j->nlog; i++)
		master_log_keep(m, &j->log[i]);
	for (int r = 0; r < m->pool->n_rec; r++) {
		snprintf(m->rx[r].saved_state, sizeof(m->rx[r].saved_state), "%s",
		         pool_rec_state_str(m->pool->rec[r].state));
		if (m->pool->rec[r].state == POOL_R_OFFLINE)
			master_arm(m, false, r, grace_ms(m), false);
	}
	for (int s = 0; s < m->pool->n_spare; s++)
		if (m->pool->spare[s].state == POOL_S_LOST)
			master_arm(m, true, s, grace_ms(m), false);
	master_reg_persist(m);
	free_job(j);
	master_loaded(m);
}

static struct job *job_new(struct pool_master *m, enum job_kind kind)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j) {
		log_error("pool registry: out of memory: a change is not saved");
		return NULL;
	}
	j->m = m;
	j->kind = kind;
	j->generation = m->generation;
	return j;
}

static void post(struct pool_master *m, struct job *j, pool_done_fn done)
{
	if (j && pool_worker_post(m->worker, run_job, done ? done : (pool_done_fn)free_job, j) < 0)
		free_job(j);
}

void master_reg_load(struct pool_master *m)
{
	struct job *j = job_new(m, J_LOAD);

	if (!j)
		return;
	snprintf(j->path, sizeof(j->path), "%s/pool.db", m->cfg->pool_registry_dir);
	post(m, j, load_done);
}

void master_reg_stop(struct pool_master *m)
{
	post(m, job_new(m, J_CLOSE), NULL);
}

static void fill_rec(struct pool_master *m, int r, struct reg_recorder *row)
{
	const struct pool_recorder *pr = &m->pool->rec[r];
	int by = pool_served_by(m->pool, r);

	snprintf(row->name, sizeof(row->name), "%s", pr->name);
	snprintf(row->group, sizeof(row->group), "%s", pr->group);
	snprintf(row->secondary_group, sizeof(row->secondary_group), "%s", pr->secondary);
	row->failover = pr->failover;
	snprintf(row->state, sizeof(row->state), "%s", pool_rec_state_str(pr->state));
	snprintf(row->served_by, sizeof(row->served_by), "%s", by >= 0 ? m->pool->spare[by].name : "");
}

static void fill_spare(struct pool_master *m, int s, struct reg_spare *row)
{
	const struct pool_spare *ps = &m->pool->spare[s];

	snprintf(row->name, sizeof(row->name), "%s", ps->name);
	snprintf(row->group, sizeof(row->group), "%s", ps->group);
	snprintf(row->state, sizeof(row->state), "%s", pool_spare_state_str(ps->state));
	snprintf(row->serving, sizeof(row->serving), "%s", ps->rec >= 0 ? m->pool->rec[ps->rec].name : "");
}

void master_reg_put_recorder(struct pool_master *m, int r)
{
	struct job *j = job_new(m, J_REC_PUT);

	if (j)
		fill_rec(m, r, &j->rec);
	post(m, j, NULL);
	master_reg_persist(m);
}

void master_reg_put_spare(struct pool_master *m, int s)
{
	struct job *j = job_new(m, J_SPARE_PUT);

	if (j)
		fill_spare(m, s, &j->spare);
	post(m, j, NULL);
	master_reg_persist(m);
}

/* What changed since the last call: states, who serves whom, the queue. */
void master_reg_persist(struct pool_master *m)
{
	char queue[sizeof(m->saved_queue)] = "";
	size_t qlen = 0;

	for (int r = 0; r < m->pool->n_rec; r++) {
		struct reg_recorder row = { 0 };
		struct job *j;

		fill_rec(m, r, &row);
		if (!strcmp(row.state, m->rx[r].saved_state) && !strcmp(row.served_by, m->rx[r].saved_by))
			continue;
		snprintf(m->rx[r].saved_state, sizeof(m->rx[r].saved_state), "%s", row.state);
		snprintf(m->rx[r].saved_by, sizeof(m->rx[r].saved_by), "%s", row.served_by);
		if (!(j = job_new(m, J_REC_STATE)))
			continue;
		snprintf(j->name, sizeof(j->name), "%s", row.name);
		snprintf(j->state, sizeof(j->state), "%s", row.state);
		snprintf(j->by, sizeof(j->by), "%s", row.served_by);
		post(m, j, NULL);
	}
	for (int s = 0; s < m->pool->n_spare; s++) {
		struct reg_spare row = { 0 };
		struct job *j;

		fill_spare(m, s, &row);
		if (!strcmp(row.state, m->sx[s].saved_state) && !strcmp(row.serving, m->sx[s].saved_by))
			continue;
		snprintf(m->sx[s].saved_state, sizeof(m->sx[s].saved_state), "%s", row.state);
		snprintf(m->sx[s].saved_by, sizeof(m->sx[s].saved_by), "%s", row.serving);
		if (!(j = job_new(m, J_SPARE_STATE)))
			continue;
		snprintf(j->name, sizeof(j->name), "%s", row.name);
		snprintf(j->state, sizeof(j->state), "%s", row.state);
		snprintf(j->by, sizeof(j->by), "%s", row.serving);
		post(m, j, NULL);
	}
	for (int i = 0; i < m->pool->n_queue && qlen + REG_NAME_MAX + 1 < sizeof(queue); i++)
		qlen += (size_t)snprintf(queue + qlen, sizeof(queue) - qlen, "%s,", m->pool->rec[m->pool->queue[i]].name);
	if (strcmp(queue, m->saved_queue)) {
		struct job *j = job_new(m, J_QUEUE);

		memcpy(m->saved_queue, queue, sizeof(queue));
		if (j && m->pool->n_queue && !(j->queue = calloc((size_t)m->pool->n_queue, REG_NAME_MAX))) {
			free_job(j);
			j = NULL;
		}
		for (int i = 0; j && i < m->pool->n_queue; i++)
			snprintf(j->queue[j->nqueue++], REG_NAME_MAX, "%s", m->pool->rec[m->pool->queue[i]].name);
		post(m, j, NULL);
	}
}

void master_reg_swap(struct pool_master *m, int r, int s)
{
	struct job *j = job_new(m, J_SWAP);

	if (!j)
		return;
	fill_rec(m, r, &j->rec);
	fill_spare(m, s, &j->spare);
	/* The rows to drop carry the other table's new names. */
	snprintf(j->rec2.name, sizeof(j->rec2.name), "%s", j->spare.name);
	snprintf(j->spare2.name, sizeof(j->spare2.name), "%s", j->rec.name);
	snprintf(m->rx[r].saved_state, sizeof(m->rx[r].saved_state), "%s", j->rec.state);
	snprintf(m->rx[r].saved_by, sizeof(m->rx[r].saved_by), "%s", j->rec.served_by);
	snprintf(m->sx[s].saved_state, sizeof(m->sx[s].saved_state), "%s", j->spare.state);
	snprintf(m->sx[s].saved_by, sizeof(m->sx[s].saved_by), "%s", j->spare.serving);
	post(m, j, NULL);
}

void master_reg_log(struct pool_master *m, const struct reg_log_entry *e)
{
	struct job *j = job_new(m, J_LOG);

	if (j)
		j->entry = *e;
	post(m, j, NULL);
}

void master_reg_settings(struct pool_master *m, int r, const struct pool_file *f)
{
	struct job *j = job_new(m, J_SETTINGS);

	if (!j)
		return;
	snprintf(j->name, sizeof(j->name), "%s", m->pool->rec[r].name);
	j->file = *f;
	j->file.data = malloc(f->len ? f->len : 1);
	if (!j->file.data) {
		log_error("pool registry: out of memory: %s's %s is not saved", j->name, f->path);
		free_job(j);
		return;
	}
	memcpy(j->file.data, f->data, f->len);
	j->limit = m->cfg->pool_settings_max_bytes;
	post(m, j, NULL);
}

void master_reg_settings_del(struct pool_master *m, int r, const char *file)
{
	struct job *j = job_new(m, J_SETTINGS_DEL);

	if (!j)
		return;
	snprintf(j->name, sizeof(j->name), "%s", m->pool->rec[r].name);
	snprintf(j->file.path, sizeof(j->file.path), "%s", file);
	post(m, j, NULL);
}
