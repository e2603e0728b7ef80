/* The console's HTTP and HTTPS servers (libevent evhttp; TLS by OpenSSL):
 * the embedded single page and the JSON API of docs/api.md, whose handlers
 * are api_handle()'s, as on the UNIX socket. */
#ifndef VIGIL_HTTP_H
#define VIGIL_HTTP_H

struct event_base;
struct api;
struct auth;
struct config;
struct console;

/* Listens on the ports of [console]; a port that cannot be opened (or
 * HTTPS without a certificate) is logged and left off: the cluster runs
 * without its console rather than not at all. NULL only without memory. */
struct console *console_new(struct event_base *base, const struct config *cfg, const char *node_name,
                            struct api *api, struct auth *auth);
void console_free(struct console *c);
/* For status: "off", "on", or why it is off. */
const char *console_http_state(const struct console *c);
const char *console_https_state(const struct console *c);

#endif
