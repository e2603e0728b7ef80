/* What travels between a vigil node and vigil-witness (UDP, one datagram
 * each way, at most WP_DATAGRAM_MAX bytes):
 *
 *   datagram = hmac[32] | JSON text (no NUL)
 *   hmac     = HMAC(key, dir | json), dir 'Q' for a request, 'A' for an answer
 *   key      = proto_derive_key(secret, "witness", cluster name)
 *
 * The receiver reads "cluster" from the still untrusted JSON only to derive
 * the key, then verifies the MAC over the exact bytes received, and only
 * then trusts the rest. The direction byte keeps an answer from passing as
 * a request (and the reverse). Integers are JSON integers from 0 to
 * INT64_MAX (jansson's range); larger values cannot be encoded.
 *
 * Request: {"v":1,"cluster":C,"node":N,"op":"acquire"|"release","term":T,
 *           "primary":bool,"lease_ms":L,"incarnation":I,"seq":S}
 * Answer:  {"v":1,"cluster":C,"node":N,"incarnation":I,"seq":S,"granted":bool,
 *           "holder":NAME|null,"term":M,"remaining_ms":R,"error":"..."} */
#ifndef VIGIL_WITNESS_PROTO_H
#define VIGIL_WITNESS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/proto.h"

#define WP_VERSION 1
#define WP_DATAGRAM_MAX 1400
#define WP_NAME_MAX 64          /* = CFG_NAME_MAX: 1 to 63 of [A-Za-z0-9._-] */
#define WP_ERROR_MAX 256
#define WP_LEASE_MIN_MS 100
#define WP_LEASE_MAX_MS 600000

enum wp_op { WP_ACQUIRE, WP_RELEASE };
const char *wp_op_str(enum wp_op op);

struct wp_request {
	char cluster[WP_NAME_MAX];
	char node[WP_NAME_MAX];
	enum wp_op op;
	uint64_t term;
	bool primary;           /* the sender runs the service now */
	uint32_t lease_ms;
	uint64_t incarnation;
	uint64_t seq;
};

struct wp_answer {
	char cluster[WP_NAME_MAX];
	char node[WP_NAME_MAX];         /* who asked */
	uint64_t incarnation, seq;      /* of the request answered */
	bool granted;
	char holder[WP_NAME_MAX];       /* "" = nobody (null on the wire) */
	uint64_t term;                  /* the witness's newest granted term */
	uint64_t remaining_ms;          /* holder's lease left, 0 if none */
	char error[WP_ERROR_MAX];       /* "" or why it was refused */
};

enum wp_error {
	WP_OK,
	WP_ERR_SIZE,            /* shorter than a MAC plus "{}", or over WP_DATAGRAM_MAX */
	WP_ERR_JSON,            /* not a JSON object */
	WP_ERR_CLUSTER,         /* no valid "cluster": no key to check it with */
	WP_ERR_MAC,
	WP_ERR_VERSION,
	WP_ERR_FIELD,           /* a field missing or of the wrong type or range */
	WP_ERR_OP,
	WP_ERR_LEASE,
	WP_ERR__COUNT
};
const char *wp_error_str(enum wp_error e);

/* 1 to 63 letters, digits, '-', '_' or '.' (as config names). */
bool wp_valid_name(const char *s);

void wp_derive_key(const unsigned char *secret, size_t secret_len, const char *cluster,
                   unsigned char key[PROTO_KEY_LEN]);

/* Writes the signed datagram into out (WP_DATAGRAM_MAX bytes) and its
 * length into *len. -1 if a field cannot be sent (bad name, value over
 * INT64_MAX, too long); nothing is logged. */
int wp_encode_request(const struct wp_request *r, const unsigned char key[PROTO_KEY_LEN],
                      uint8_t out[WP_DATAGRAM_MAX], size_t *len);
int wp_encode_answer(const struct wp_answer *a, const unsigned char key[PROTO_KEY_LEN],
                     uint8_t out[WP_DATAGRAM_MAX], size_t *len);

/* Untrusted look at a datagram, for choosing the key and for log lines:
 * "cluster" and "node" if they are valid names, else "" (the error is about
 * the cluster only: a bad node name is found after the MAC). */
enum wp_error wp_peek(const uint8_t *buf, size_t len, char cluster[WP_NAME_MAX],
                      char node[WP_NAME_MAX]);

/* Verify the MAC with key, then decode every field. why (may be NULL)
 * receives one line about what was wrong, e.g. "field 'term' is missing". */
enum wp_error wp_decode_request(const uint8_t *buf, size_t len, const unsigned char key[PROTO_KEY_LEN],
                                struct wp_request *out, char *why, size_t whylen);
enum wp_error wp_decode_answer(const uint8_t *buf, size_t len, const unsigned char key[PROTO_KEY_LEN],
                               struct wp_answer *out, char *why, size_t whylen);

#endif
