#include "cluster/persist.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

const char *boot_mode_str(enum boot_mode b)
{
	switch (b) {
	case BOOT_KEEP: return "keep";
	case BOOT_ON: return "on";
	case BOOT_OFF: return "off";
	}
	return "?";
}

int boot_mode_parse(const char *s, enum boot_mode *out)
{
	if (!strcmp(s, "keep"))
		*out = BOOT_KEEP;
	else if (!strcmp(s, "on"))
		*out = BOOT_ON;
	else if (!strcmp(s, "off"))
		*out = BOOT_OFF;
	else
		return -1;
	return 0;
}

void persist_boot_id(char out[40])
{
	char *buf = NULL;

	out[0] = '\0';
	if (read_file("/proc/sys/kernel/random/boot_id", 256, &buf, NULL) == 0) {
		buf[strcspn(buf, "\n")] = '\0';
		strlcpy_ok(out, buf, 40);
	}
	free(buf);
}

static char *serialize(const struct persist_data *d)
{
	json_t *o = json_object(), *run = json_array(), *fo = json_array();
	char *s;

	for (int i = 0; i < d->nrunning; i++)
		json_array_append_new(run, json_string(d->running[i]));
	json_object_set_new(o, "version", json_integer(1));
	json_object_set_new(o, "state", json_string(d->state));
	json_object_set_new(o, "admin", json_string(d->admin_started ? "started" : "stopped"));
	json_object_set_new(o, "boot", json_string(boot_mode_str(d->boot)));
	json_object_set_new(o, "failover", json_boolean(!d->failover_off));
	json_object_set_new(o, "term", json_integer((json_int_t)d->term));
	json_object_set_new(o, "incarnation", json_integer((json_int_t)d->incarnation));
	json_object_set_new(o, "peer_incarnation", json_integer((json_int_t)d->peer_incarnation));
	json_object_set_new(o, "boot_id", json_string(d->boot_id));
	json_object_set_new(o, "vip_held", json_boolean(d->vip_held));
	json_object_set_new(o, "running", run);
	json_object_set_new(o, "checkers", json_boolean(!d->checkers_off));
	json_object_set_new(o, "errd", json_string(d->errd_suspended ? "suspended" : "active"));
	for (int i = 0; i < d->nfailovers && i < PERSIST_MAX_FAILOVERS; i++)
		json_array_append_new(fo, json_integer((json_int_t)d->failovers[i]));
	json_object_set_new(o, "failovers", fo);
	s = json_dumps(o, JSON_INDENT(2));
	json_decref(o);
	return s;
}

int persist_load(const char *path, struct persist_data *out)
{
	json_error_t jerr;
	json_t *o, *run = NULL, *fo = NULL;
	const char *state = "STOP", *admin = "stopped", *boot = "keep", *bid = "", *errd = "active";
	int checkers = 1;
	json_int_t term = 0, inc = 0, pinc = 0;
	int vip = 0, failover = 1;

	memset(out, 0, sizeof(*out));
	strcpy(out->state, "STOP");
	o = json_load_file(path, 0, &jerr);
	if (!o) {
		if (jerr.line == -1 && strstr(jerr.text, "No such file"))
			return -ENOENT;
		log_error("state file %s is unreadable (%s, line %d); starting as a new node",
		          path, jerr.text, jerr.line);
		return -EINVAL;
	}
	if (json_unpack_ex(o, &jerr, 0, "{s?s, s?s, s?s, s?b, s?I, s?I, s?I, s?s, s?b, s?o}",
	                   "state", &state, "admin", &admin, "boot", &boot, "failover", &failover, "term", &term,
	                   "incarnation", &inc, "peer_incarnation", &pinc, "boot_id", &bid,
	                   "vip_held", &vip, "running", &run) < 0) {
		log_error("state file %s: %s; starting as a new node", path, jerr.text);
		json_decref(o);
		return -EINVAL;
	}
	strlcpy_ok(out->state, state, sizeof(out->state));
	out->admin_started = !strcmp(admin, "started");
	out->failover_off = !failover;
	if (boot_mode_parse(boot, &out->boot) < 0)
		out->boot = BOOT_KEEP;
	out->term = term < 0 ? 0 : (uint64_t)term;
	out->incarnation = inc < 0 ? 0 : (uint64_t)inc;
	out->peer_incarnation = pinc < 0 ? 0 : (uint64_t)pinc;
	strlcpy_ok(out->boot_id, bid, sizeof(out->boot_id));
	out->vip_held = vip;
	if (json_is_array(run)) {
		size_t i;
		json_t *v;

		json_array_foreach(run, i, v) {
			if (json_is_string(v) && out->nrunning < CFG_MAX_RESOURCES)
				strlcpy_ok(out->running[out->nrunning++], json_string_value(v), CFG_NAME_MAX);
		}
	}
	if (json_unpack_ex(o, &jerr, 0, "{s?b, s?s, s?o}", "checkers", &checkers, "errd", &errd,
	                   "failovers", &fo) < 0) {
		log_error("state file %s: %s; switches and failover history reset", path, jerr.text);
		checkers = 1;
		errd = "active";
		fo = NULL;
	}
	out->checkers_off = !checkers;
	out->errd_suspended = !strcmp(errd, "suspended");
	if (json_is_array(fo)) {
		size_t i;
		json_t *v;

		json_array_foreach(fo, i, v) {
			if (json_is_integer(v) && json_integer_value(v) > 0 && out->nfailovers < PERSIST_MAX_FAILOVERS)
				out->failovers[out->nfailovers++] = (uint64_t)json_integer_value(v);
		}
	}
	json_decref(o);
	return 0;
}

int persist_save_now(const char *path, const struct persist_data *d)
{
	char *s = serialize(d);
	int r;

	if (!s)
		return -ENOMEM;
	r = write_file_atomic(path, s, strlen(s), 0640);
	free(s);
	return r;
}

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool running, stop, busy;
	char *pending;
	char path[4096];
} W = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void *writer(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&W.lock);
	for (;;) {
		while (!W.pending && !W.stop)
			pthread_cond_wait(&W.cond, &W.lock);
		if (!W.pending)
			break;
		char *s = W.pending;
		char path[4096];
		int r;

		W.pending = NULL;
		W.busy = true;
		strlcpy_ok(path, W.path, sizeof(path));
		pthread_mutex_unlock(&W.lock);
		r = write_file_atomic(path, s, strlen(s), 0640);
		if (r < 0)
			log_error("cannot save node state to %s: %s", path, strerror(-r));
		free(s);
		pthread_mutex_lock(&W.lock);
		W.busy = false;
		pthread_cond_broadcast(&W.cond);
	}
	pthread_mutex_unlock(&W.lock);
	return NULL;
}

void persist_save(const char *path, const struct persist_data *d)
{
	char *s = serialize(d);

	if (!s)
		return;
	pthread_mutex_lock(&W.lock);
	if (!W.running) {
		W.stop = false;
		if (pthread_create(&W.thread, NULL, writer, NULL) != 0) {
			pthread_mutex_unlock(&W.lock);
			log_error("cannot start the state writer thread; saving inline");
			persist_save_now(path, d);
			free(s);
			return;
		}
		W.running = true;
	}
	free(W.pending);
	W.pending = s;
	strlcpy_ok(W.path, path, sizeof(W.path));
	pthread_cond_signal(&W.cond);
	pthread_mutex_unlock(&W.lock);
}

void persist_flush(void)
{
	pthread_mutex_lock(&W.lock);
	if (!W.running) {
		pthread_mutex_unlock(&W.lock);
		return;
	}
	W.stop = true;
	pthread_cond_broadcast(&W.cond);
	pthread_mutex_unlock(&W.lock);
	pthread_join(W.thread, NULL);
	W.running = false;
}
