#include "common/proto.h"

#include <endian.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "common/util.h"

const char *hb_error_str(enum hb_error e)
{
	static const char *const names[] = {
		"ok", "wrong size", "not a vigil heartbeat", "unsupported version",
		"bad signature (wrong secret or forged)",
	};
	return (unsigned)e < ARRAY_SIZE(names) ? names[e] : "?";
}

const char *hb_replay_verdict_str(enum hb_replay_verdict v)
{
	static const char *const names[] = { "fresh", "new incarnation", "replayed (old sequence)",
	                                     "from an old incarnation" };
	return (unsigned)v < ARRAY_SIZE(names) ? names[v] : "?";
}

void proto_hmac(const unsigned char key[PROTO_KEY_LEN], const void *a, size_t alen,
                const void *b, size_t blen, const void *c, size_t clen,
                unsigned char out[PROTO_MAC_LEN])
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	size_t outl = 0;

	/* Without HMAC-SHA256 nothing can be trusted; OpenSSL always has it. */
	if (!ctx || !EVP_MAC_init(ctx, key, PROTO_KEY_LEN, params))
		abort();
	if (a)
		EVP_MAC_update(ctx, a, alen);
	if (b)
		EVP_MAC_update(ctx, b, blen);
	if (c)
		EVP_MAC_update(ctx, c, clen);
	if (!EVP_MAC_final(ctx, out, &outl, PROTO_MAC_LEN) || outl != PROTO_MAC_LEN)
		abort();
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
}

bool proto_mac_equal(const unsigned char *a, const unsigned char *b)
{
	return CRYPTO_memcmp(a, b, PROTO_MAC_LEN) == 0;
}

void proto_derive_key(const unsigned char *secret, size_t secret_len, const char *purpose,
                      const char *cluster, unsigned char key[PROTO_KEY_LEN])
{
	unsigned char k0[PROTO_KEY_LEN];
	unsigned int l = 0;

	/* k0 = SHA256(secret) lets a secret of any length key the HMAC. */
	EVP_Digest(secret, secret_len, k0, &l, EVP_sha256(), NULL);
	proto_hmac(k0, "vigil v1 ", 9, purpose, strlen(purpose), cluster, strlen(cluster), key);
	OPENSSL_cleanse(k0, sizeof(k0));
}

static uint8_t *put32(uint8_t *p, uint32_t v) { v = htobe32(v); memcpy(p, &v, 4); return p + 4; }
static uint8_t *put64(uint8_t *p, uint64_t v) { v = htobe64(v); memcpy(p, &v, 8); return p + 8; }
static const uint8_t *get32(const uint8_t *p, uint32_t *v) { memcpy(v, p, 4); *v = be32toh(*v); return p + 4; }
static const uint8_t *get64(const uint8_t *p, uint64_t *v) { memcpy(v, p, 8); *v = be64toh(*v); return p + 8; }

void hb_encode(const struct hb_msg *m, const unsigned char key[PROTO_KEY_LEN], uint8_t out[HB_WIRE_LEN])
{
	uint8_t *p = out;

	p = put32(p, HB_MAGIC);
	*p++ = HB_VERSION;
	*p++ = m->node;
	*p++ = m->net;
	*p++ = m->state;
	p = put32(p, m->flags);
	p = put64(p, m->incarnation);
	p = put64(p, m->seq);
	p = put64(p, m->term);
	proto_hmac(key, out, (size_t)(p - out), NULL, 0, NULL, 0, p);
}

enum hb_error hb_decode(const uint8_t *buf, size_t len, const unsigned char key[PROTO_KEY_LEN],
                        struct hb_msg *out)
{
	const size_t body = HB_WIRE_LEN - PROTO_MAC_LEN;
	unsigned char mac[PROTO_MAC_LEN];
	const uint8_t *p = buf;
	uint32_t magic;

	if (len != HB_WIRE_LEN)
		return HB_ERR_SIZE;
	get32(p, &magic);
	if (magic != HB_MAGIC)
		return HB_ERR_MAGIC;
	if (buf[4] != HB_VERSION)
		return HB_ERR_VERSION;
	proto_hmac(key, buf, body, NULL, 0, NULL, 0, mac);
	if (!proto_mac_equal(mac, buf + body))
		return HB_ERR_MAC;
	p = buf + 5;
	out->node = *p++;
	out->net = *p++;
	out->state = *p++;
	p = get32(p, &out->flags);
	p = get64(p, &out->incarnation);
	p = get64(p, &out->seq);
	get64(p, &out->term);
	return HB_OK;
}

enum hb_replay_verdict hb_replay_check(struct hb_replay *r, uint64_t incarnation, uint64_t seq)
{
	enum hb_replay_verdict v;

	if (!r->seen || incarnation > r->incarnation)
		v = r->seen ? HB_NEW_INCARNATION : HB_FRESH;
	else if (incarnation < r->incarnation)
		return HB_OLD_INCARNATION;
	else if (seq <= r->seq)
		return HB_REPLAYED;
	else
		v = HB_FRESH;
	r->seen = true;
	r->incarnation = incarnation;
	r->seq = seq;
	return v;
}
