/* What travels between nodes.
 *
 * Heartbeat (UDP, one datagram, network byte order):
 *   magic "VGL1" | version u8 | node u8 | net u8 | state u8 | flags u32 |
 *   incarnation u64 | seq u64 | term u64 | hmac[32]
 * The HMAC-SHA256 covers everything before it, with a key derived from the
 * cluster secret and the cluster name (two clusters sharing a secret do not
 * hear each other). Replay protection: per sending node and network, the
 * pair (incarnation, seq) must grow; a restarted node picks a larger
 * incarnation.
 *
 * Control frames (TCP between the two vigild, for relayed commands):
 *   server sends a 16-byte nonce; then each frame is
 *   len u32 | hmac[32] | len bytes of JSON
 * with hmac = HMAC(key, nonce | direction | json), direction 'Q' for the
 * request and 'A' for the answer: a frame cannot be replayed on another
 * connection nor reflected. */
#ifndef VIGIL_PROTO_H
#define VIGIL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_KEY_LEN 32
#define PROTO_MAC_LEN 32
#define PROTO_NONCE_LEN 16
#define PROTO_FRAME_MAX (16u << 20)

#define HB_MAGIC 0x56474c31u
#define HB_VERSION 1
#define HB_WIRE_LEN (4 + 4 + 4 + 8 + 8 + 8 + PROTO_MAC_LEN)

struct hb_msg {
	uint8_t node;         /* sender's node index */
	uint8_t net;          /* network index it was sent on */
	uint8_t state;        /* sender's enum sm_state */
	uint32_t flags;
	uint64_t incarnation;
	uint64_t seq;
	uint64_t term;
};

enum hb_error { HB_OK, HB_ERR_SIZE, HB_ERR_MAGIC, HB_ERR_VERSION, HB_ERR_MAC, HB_ERR__COUNT };
const char *hb_error_str(enum hb_error e);

/* Derives a key for one purpose ("heartbeat", "control") of one cluster. */
void proto_derive_key(const unsigned char *secret, size_t secret_len, const char *purpose,
                      const char *cluster, unsigned char key[PROTO_KEY_LEN]);

/* HMAC-SHA256 over the concatenation of up to three parts (NULL = absent). */
void proto_hmac(const unsigned char key[PROTO_KEY_LEN], const void *a, size_t alen,
                const void *b, size_t blen, const void *c, size_t clen,
                unsigned char out[PROTO_MAC_LEN]);
bool proto_mac_equal(const unsigned char *a, const unsigned char *b);

/* Writes HB_WIRE_LEN bytes. */
void hb_encode(const struct hb_msg *m, const unsigned char key[PROTO_KEY_LEN], uint8_t out[HB_WIRE_LEN]);
/* Verifies and decodes; nothing is trusted before the MAC checks. */
enum hb_error hb_decode(const uint8_t *buf, size_t len, const unsigned char key[PROTO_KEY_LEN],
                        struct hb_msg *out);

/* Replay window for one (sender, network). */
struct hb_replay {
	bool seen;
	uint64_t incarnation;
	uint64_t seq;
};
enum hb_replay_verdict { HB_FRESH, HB_NEW_INCARNATION, HB_REPLAYED, HB_OLD_INCARNATION };
const char *hb_replay_verdict_str(enum hb_replay_verdict v);
/* Judges (incarnation, seq) and records it when accepted. */
enum hb_replay_verdict hb_replay_check(struct hb_replay *r, uint64_t incarnation, uint64_t seq);

#endif
