#include "api/cert_watch.h"

#include <event2/event.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/node.h"
#include "common/log.h"
#include "common/util.h"
#include "pki/pki.h"

#define CHECK_EVERY_MS (12u * 3600 * 1000)

struct watched {
	const char *use;
	char path[PATH_MAX + 80];
	bool found;
	int days_left;
	time_t not_after;
};

struct cert_watch {
	struct node *node;
	struct event *ev;
	struct watched certs[2];
};

static void check(struct cert_watch *w)
{
	for (size_t i = 0; i < sizeof(w->certs) / sizeof(w->certs[0]); i++) {
		struct watched *c = &w->certs[i];
		char err[300];

		c->found = c->path[0] && pki_cert_expiry(c->path, &c->not_after, err, sizeof(err)) == 0;
		if (!c->found)
			continue;
		c->days_left = pki_days_until(c->not_after, time(NULL));
		if (c->days_left < 0)
			node_alarm(w->node, "the %s certificate %s has expired: renew it (vigilctl pki --force, "
			           "or a new custom certificate)", c->use, c->path);
		else if (c->days_left <= PKI_WARN_DAYS)
			node_alarm(w->node, "the %s certificate %s expires in %d day%s: renew it (vigilctl pki "
			           "--force, or a new custom certificate)", c->use, c->path, c->days_left,
			           c->days_left == 1 ? "" : "s");
	}
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	check(arg);
}

struct cert_watch *cert_watch_new(struct event_base *base, struct node *n, const char *config_dir,
                                  const char *node_name)
{
	struct cert_watch *w = calloc(1, sizeof(*w));
	struct pki_paths p;
	struct timeval tv;

	if (!w)
		return NULL;
	w->node = n;
	w->certs[0].use = "console (HTTPS)";
	w->certs[1].use = "peer link";
	if (pki_paths(config_dir, node_name, &p) == 0)
		snprintf(w->certs[0].path, sizeof(w->certs[0].path), "%s", p.cert.path);
	if (snprintf(w->certs[1].path, sizeof(w->certs[1].path), "%s/pki/%s.crt", config_dir, node_name) >=
	    (int)sizeof(w->certs[1].path))
		w->certs[1].path[0] = '\0';
	/* The same file for both: watched once. */
	if (!strcmp(w->certs[0].path, w->certs[1].path))
		w->certs[1].path[0] = '\0';
	w->ev = event_new(base, -1, EV_PERSIST, on_timer, w);
	ms_to_timeval(CHECK_EVERY_MS, &tv);
	if (!w->ev || event_add(w->ev, &tv) < 0) {
		cert_watch_free(w);
		return NULL;
	}
	check(w);
	return w;
}

void cert_watch_free(struct cert_watch *w)
{
	if (!w)
		return;
	if (w->ev)
		event_free(w->ev);
	free(w);
}

json_t *cert_watch_status(const struct cert_watch *w)
{
	json_t *a = json_array();

	for (size_t i = 0; w && i < sizeof(w->certs) / sizeof(w->certs[0]); i++) {
		const struct watched *c = &w->certs[i];
		char when[32];
		struct tm tm;

		if (!c->found)
			continue;
		gmtime_r(&c->not_after, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		json_array_append_new(a, json_pack("{s:s, s:s, s:i, s:s}", "use", c->use, "path", c->path,
		                                   "days_left", c->days_left, "not_after", when));
	}
	return a;
}
