/* Watches the certificates this node shows (the console's, the peer
 * link's) and raises an alarm (log, status, notify) from 30 days before
 * one expires, then again every 12 hours until it is replaced. */
#ifndef VIGIL_CERT_WATCH_H
#define VIGIL_CERT_WATCH_H

#include <jansson.h>

struct event_base;
struct node;
struct cert_watch;

struct cert_watch *cert_watch_new(struct event_base *base, struct node *n, const char *config_dir,
                                  const char *node_name);
void cert_watch_free(struct cert_watch *w);
/* [{"use", "path", "days_left", "not_after"}] of the certificates found. */
json_t *cert_watch_status(const struct cert_watch *w);

#endif
