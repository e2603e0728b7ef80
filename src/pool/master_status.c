/* The master's status, failover log, user commands and settings cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "pool/conn.h"
#include "pool/master_int.h"
#include "pool/names.h"

void master_log_keep(struct pool_master *m, const struct reg_log_entry *e)
{
	m->log[m->log_head] = *e;
	m->log_head = (m->log_head + 1) % MASTER_LOG_KEEP;
	if (m->log_n < MASTER_LOG_KEEP)
		m->log_n++;
}

json_t *pool_master_log(struct pool_master *m, int max)
{
	json_t *a = json_array();
	int n = max > 0 && max < m->log_n ? max : m->log_n;

	for (int i = 0; a && i < n; i++) {
		const struct reg_log_entry *e = &m->log[(m->log_head - n + i + MASTER_LOG_KEEP) % MASTER_LOG_KEEP];

		json_array_append_new(a, json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s}", "time_ms", (json_int_t)e->time_ms,
		                                   "event", e->event, "recorder", e->recorder, "spare", e->spare,
		                                   "trigger", e->trigger, "result", e->result, "detail", e->detail));
	}
	return a;
}

static json_t *rec_status(struct pool_master *m, int r)
{
	const struct pool_recorder *pr = &m->pool->rec[r];
	const struct rec_x *x = &m->rx[r];
	int by = pool_served_by(m->pool, r);
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:b}", "name", pr->name, "state",
	                      pool_rec_state_str(pr->state), "served_by", by >= 0 ? m->pool->spare[by].name : "",
	                      "group", pr->group, "secondary_group", pr->secondary, "failover", pr->failover, "link",
	                      pool_link_str(pr->link), "trigger", pool_trigger_str(pr->trigger), "connected",
	                      x->link != NULL);

	if (!o)
		return NULL;
	if (x->link)
		json_object_set_new(o, "address", json_string(pool_conn_addr(x->link->conn)));
	json_object_set_new(o, "health", json_pack("{s:b, s:b, s:I, s:I, s:I}", "disks_failed", x->disks_failed,
	                                           "watchdog_failed", x->watchdog_failed, "cameras",
	                                           (json_int_t)x->cameras, "storage_used",
	                                           (json_int_t)x->storage_used, "storage_total",
	                                           (json_int_t)x->storage_total));
	json_object_set_new(o, "settings", json_pack("{s:I, s:I, s:s}", "files", (json_int_t)x->nfiles, "bytes",
	                                             (json_int_t)x->bytes, "error", x->settings_error));
	if (pr->state == POOL_R_COPYING || x->copy_total)
		json_object_set_new(o, "copy", json_pack("{s:I, s:I, s:I, s:I}", "bytes_done", (json_int_t)x->copy_done,
		                                         "bytes_total", (json_int_t)x->copy_total, "files_done",
		                                         (json_int_t)x->copy_files_done, "files_total",
		                                         (json_int_t)x->copy_files_total));
	return o;
}

static json_t *spare_status(struct pool_master *m, int s)
{
	const struct pool_spare *ps = &m->pool->spare[s];
	json_t *owes = json_array();
	json_t *o;

	for (int r = 0; owes && r < m->pool->n_rec; r++)
		if (pool_owes(m->pool, s, r))
			json_array_append_new(owes, json_string(m->pool->rec[r].name));
	o = json_pack("{s:s, s:s, s:s, s:s, s:b, s:o}", "name", ps->name, "state", pool_spare_state_str(ps->state),
	              "serving", ps->rec >= 0 ? m->pool->rec[ps->rec].name : "", "group", ps->group, "connected",
	              m->sx[s].link != NULL, "owes", owes ? owes : json_array());
	if (o && m->sx[s].link)
		json_object_set_new(o, "address", json_string(pool_conn_addr(m->sx[s].link->conn)));
	return o;
}

json_t *pool_master_queue(struct pool_master *m)
{
	json_t *queue = json_array();

	for (int i = 0; m->active && queue && i < m->pool->n_queue; i++)
		json_array_append_new(queue, json_string(m->pool->rec[m->pool->queue[i]].name));
	return queue ? queue : json_array();
}

json_t *pool_master_status(struct pool_master *m)
{
	json_t *recs = json_array(), *spares = json_array();

	for (int r = 0; m->active && recs && r < m->pool->n_rec; r++)
		json_array_append_new(recs, rec_status(m, r));
	for (int s = 0; m->active && spares && s < m->pool->n_spare; s++)
		json_array_append_new(spares, spare_status(m, s));
	return json_pack("{s:b, s:s, s:s, s:I, s:o, s:o, s:o}", "active", m->active, "failback",
	                 pool_failback_str(m->pool->failback), "after_failure", pool_after_str(m->pool->after),
	                 "detect_timeout_ms", (json_int_t)m->cfg->pool_detect_timeout_ms, "recorders",
	                 recs ? recs : json_array(), "spares", spares ? spares : json_array(), "queue",
	                 pool_master_queue(m));
}

int pool_master_command(struct pool_master *m, const char *cmd, const char *recorder, enum pool_role role,
                        char *msg, size_t msglen)
{
	static const struct {
		const char *name;
		enum pool_event_type type;
	} cmds[] = {
		{ "failover", POOL_E_FAILOVER }, { "failback", POOL_E_FAILBACK }, { "copy", POOL_E_COPY },
		{ "enable", POOL_E_ENABLE }, { "disable", POOL_E_DISABLE },
	};
	struct pool_event ev = { .spare = -1, .role = role };
	struct pool_result res;
	size_t i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]) && strcmp(cmds[i].name, cmd); i++)
		;
	if (i == sizeof(cmds) / sizeof(cmds[0])) {
		snprintf(msg, msglen, "unknown pool command '%s' (failover, failback, copy, enable, disable)", cmd);
		return -1;
	}
	if (!m->active) {
		snprintf(msg, msglen, "the pool master does not run on this node (it runs where the service runs)");
		return -1;
	}
	ev.type = cmds[i].type;
	ev.rec = pool_find_recorder(m->pool, recorder);
	if (ev.rec < 0) {
		snprintf(msg, msglen, "no recorder '%s' in the pool%s", recorder,
		         pool_find_spare(m->pool, recorder) >= 0 ? " (it is a spare)" : "");
		return -1;
	}
	if (!pool_role_allows(role, ev.type)) {
		snprintf(msg, msglen, "pool %s %s: refused: role %s may not do this (%s)", cmd, recorder,
		         pool_role_str(role), ev.type == POOL_E_ENABLE || ev.type == POOL_E_DISABLE
		                                  ? "admin only" : "admin or operator");
		return -1;
	}
	master_step(m, &ev, &res);
	snprintf(msg, msglen, "pool %s %s: %s%s%s", cmd, recorder, pool_status_str(res.status),
	         res.reason[0] ? ": " : "", res.reason);
	return res.status == POOL_OK ? 0 : -1;
}

/* ---- the settings cache ---------------------------------------------------- */

void master_cache_free(struct rec_x *x)
{
	pool_files_free(x->files, x->nfiles);
	x->files = NULL;
	x->nfiles = x->bytes = 0;
}

static struct pool_file *cache_find(struct rec_x *x, const char *path)
{
	for (size_t i = 0; i < x->nfiles; i++)
		if (!strcmp(x->files[i].path, path))
			return &x->files[i];
	return NULL;
}

int master_cache_put(struct pool_master *m, int r, const struct pool_msg *msg, char *err, size_t errlen)
{
	struct rec_x *x = &m->rx[r];
	struct pool_file *f = cache_find(x, msg->u.settings.file), *v;
	size_t total = x->bytes - (f ? f->len : 0) + msg->u.settings.len;
	unsigned char *data;

	if (f && !strcmp(f->sha256, msg->u.settings.sha256))
		return 0;
	if (total > m->cfg->pool_settings_max_bytes) {
		snprintf(err, errlen, "%s: %zu bytes would make %zu in all, over [pool] settings_max_bytes = %u; the "
		         "cached version is kept", msg->u.settings.file, msg->u.settings.len, total,
		         m->cfg->pool_settings_max_bytes);
		snprintf(x->settings_error, sizeof(x->settings_error), "%s", err);
		return -1;
	}
	data = malloc(msg->u.settings.len ? msg->u.settings.len : 1);
	if (!data) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(data, msg->u.settings.data, msg->u.settings.len);
	if (!f) {
		v = realloc(x->files, (x->nfiles + 1) * sizeof(*v));
		if (!v) {
			free(data);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		x->files = v;
		f = &x->files[x->nfiles++];
		memset(f, 0, sizeof(*f));
		snprintf(f->path, sizeof(f->path), "%s", msg->u.settings.file);
	} else {
		free(f->data);
	}
	x->bytes = total;
	f->data = data;
	f->len = msg->u.settings.len;
	snprintf(f->sha256, sizeof(f->sha256), "%s", msg->u.settings.sha256);
	x->settings_error[0] = '\0';
	log_info("pool: recorder %s: settings %s cached (%zu bytes, sha256 %.12s...)", m->pool->rec[r].name, f->path,
	         f->len, f->sha256);
	master_reg_settings(m, r, f);
	return 0;
}

/* settings_end: the recorder's whole list; files not in it are gone. */
void master_cache_keep_only(struct pool_master *m, int r, const struct pool_msg *msg)
{
	struct rec_x *x = &m->rx[r];
	size_t k = 0;

	for (size_t i = 0; i < x->nfiles; i++) {
		bool keep = false;

		for (size_t j = 0; j < msg->u.settings_end.n && !keep; j++)
			keep = !strcmp(msg->u.settings_end.files[j].file, x->files[i].path);
		if (keep) {
			x->files[k++] = x->files[i];
			continue;
		}
		log_info("pool: recorder %s: settings %s removed", m->pool->rec[r].name, x->files[i].path);
		/* Else a restart would bring it back, and a spare would get it. */
		master_reg_settings_del(m, r, x->files[i].path);
		x->bytes -= x->files[i].len;
		free(x->files[i].data);
	}
	x->nfiles = k;
}
