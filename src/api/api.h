/* The one command API: every request, whether from vigilctl on the UNIX
 * socket or relayed by the peer, goes through api_handle(). Requests and
 * answers are JSON (docs/control-protocol.md). */
#ifndef VIGIL_API_H
#define VIGIL_API_H

#include <jansson.h>
#include <stdbool.h>

struct node;
struct peerlink;
struct api;

typedef void (*api_done_cb)(json_t *resp, void *arg);

struct api *api_new(struct node *node);
void api_free(struct api *a);
void api_set_link(struct api *a, struct peerlink *link);
/* The console (both may be NULL): for password changes and info. */
struct auth;
struct console;
void api_set_console(struct api *a, struct auth *auth, struct console *console);
struct pool_master;
/* The pool master of this node ([pool] role = master), or NULL. */
void api_set_pool(struct api *a, struct pool_master *pool);
struct cert_watch;
void api_set_certs(struct api *a, struct cert_watch *certs);

/* origin: who asked ("vigilctl uid 0 pid 42", "node2 10.0.0.2:4123").
 * relayed: the request came from the peer (never relay it again).
 * done gets the answer (stolen) exactly once, possibly later. */
void api_handle(struct api *a, json_t *req, const char *origin, bool relayed, api_done_cb done, void *arg);

/* UNIX socket server at path; NULL on error (logged). control_new answers
 * with api_handle(); control_new_with with any handler (a pool agent's). */
struct control;
struct event_base;
typedef void (*control_handler)(void *ctx, json_t *req, const char *origin, api_done_cb done, void *arg);
struct control *control_new(struct event_base *base, struct api *a, const char *path);
struct control *control_new_with(struct event_base *base, control_handler handle, void *ctx, const char *path);
void control_free(struct control *c);
/* Someone answers on the socket at path (a running vigild). */
bool control_in_use(const char *path);

#endif
