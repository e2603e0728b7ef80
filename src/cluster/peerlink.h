/* The command link between the two vigild: TCP on the heartbeat port of
 * each heartbeat address, one request per connection, every frame signed
 * (common/proto.h). vigild relays commands for the peer over it, so every
 * command works from either node. */
#ifndef VIGIL_PEERLINK_H
#define VIGIL_PEERLINK_H

#include <jansson.h>
#include <stdint.h>

#include "common/config.h"

struct event_base;
struct peerlink;
struct peerlink_reply;

/* The server side: answer with peerlink_reply_send (now or later). */
typedef void (*peerlink_handler)(json_t *req, struct peerlink_reply *r, void *arg);
/* The client side: resp is NULL on failure, with err saying why. */
typedef void (*peerlink_resp_cb)(json_t *resp, const char *err, void *arg);

struct peerlink *peerlink_new(struct event_base *base, const struct config *cfg, int self,
                              peerlink_handler handler, void *arg);
void peerlink_free(struct peerlink *pl);

/* Takes a reference to nothing: req is serialised before return. */
void peerlink_request(struct peerlink *pl, json_t *req, uint32_t timeout_ms,
                      peerlink_resp_cb cb, void *arg);

/* Sends resp (stolen) and finishes the connection. */
void peerlink_reply_send(struct peerlink_reply *r, json_t *resp);
/* Who asked, e.g. "10.0.0.2:41234". */
const char *peerlink_reply_from(const struct peerlink_reply *r);

#endif
