/* The replication stream's frames: keys, AEAD seal/open, the frame
 * header and the clear hello. See wire.h for the format. */
#include "rfs/wire.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <string.h>

#include "common/log.h"
#include "common/proto.h"
#include "common/util.h"
#include "rfs/wire_int.h"

#define WIRE_MAGIC 0x56524631u          /* "VRF1" */
#define WIRE_HELLO_MAGIC 0x56524831u    /* "VRH1" */
#define IV_LEN 12

_Static_assert(WIRE_HDR_LEN + WIRE_BODY_MAX + WIRE_TAG_LEN < INT32_MAX, "EVP takes int lengths");

/* ---- names of things ---- */

const char *wire_type_str(unsigned type)
{
	static const char *const names[] = {
		[WIRE_HELLO] = "HELLO", [WIRE_OPS] = "OPS", [WIRE_ACK] = "ACK", [WIRE_LIST] = "LIST",
		[WIRE_HASHES] = "HASHES", [WIRE_ERROR] = "ERROR", [WIRE_PING] = "PING",
	};
	return type < ARRAY_SIZE(names) && names[type] ? names[type] : "unknown";
}

const char *wire_err_str(enum wire_err e)
{
	static const char *const names[] = {
		[WIRE_OK] = "ok",
		[WIRE_ERR_MAGIC] = "not a vigil-rfs frame (bad magic)",
		[WIRE_ERR_TYPE] = "unknown frame type",
		[WIRE_ERR_TOO_LONG] = "frame body longer than 2 MiB",
		[WIRE_ERR_RESERVED] = "reserved header field not zero",
		[WIRE_ERR_FRAME_LEN] = "frame length impossible for its type",
		[WIRE_ERR_NOPS] = "op count impossible for the frame type",
		[WIRE_ERR_REPLAY] = "frame number already seen (replayed frame)",
		[WIRE_ERR_REORDER] = "frame number skips ahead (reordered or lost frame)",
		[WIRE_ERR_REFLECTED] = "frame sealed by this node (reflected back)",
		[WIRE_ERR_AUTH] = "bad tag (wrong secret, cluster or session, or tampered)",
		[WIRE_ERR_CRYPTO] = "cipher failure",
		[WIRE_ERR_VERSION] = "unsupported protocol version",
		[WIRE_ERR_TRUNCATED] = "record cut short",
		[WIRE_ERR_RECORDS] = "record count does not match the content",
		[WIRE_ERR_CODE] = "unknown op code",
		[WIRE_ERR_LEN] = "body length wrong for the op code",
		[WIRE_ERR_FLAGS] = "bad flags",
		[WIRE_ERR_SEQ] = "bad sequence number",
		[WIRE_ERR_FID] = "bad file id or dir",
		[WIRE_ERR_ARG] = "bad argument",
		[WIRE_ERR_FIELD] = "bad field value",
		[WIRE_ERR_NAME] = "bad name",
		[WIRE_ERR_DATA_LEN] = "data too long",
		[WIRE_ERR_TEXT] = "bad text",
		[WIRE_ERR_NOSPACE] = "output buffer too small",
	};
	return (unsigned)e < ARRAY_SIZE(names) && names[e] ? names[e] : "?";
}

/* ---- keys ---- */

int wire_key_derive(const uint8_t *secret, size_t secret_len, const char *cluster,
                    const uint8_t nonce_dialer[WIRE_NONCE_LEN],
                    const uint8_t nonce_listener[WIRE_NONCE_LEN], char direction,
                    struct wire_key *out)
{
	unsigned char ikm[PROTO_KEY_LEN];
	uint8_t info[2 * WIRE_NONCE_LEN + 1];
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *kctx = NULL;
	int rc = -1;

	if (direction != 'D' && direction != 'L') {
		log_error("rfs wire: key direction '%c' is neither 'D' nor 'L'", direction);
		return -1;
	}
	proto_derive_key(secret, secret_len, "rfs", cluster, ikm);
	memcpy(info, nonce_dialer, WIRE_NONCE_LEN);
	memcpy(info + WIRE_NONCE_LEN, nonce_listener, WIRE_NONCE_LEN);
	info[2 * WIRE_NONCE_LEN] = (uint8_t)direction;

	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, ikm, sizeof(ikm)),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof(info)),
		OSSL_PARAM_construct_end(),
	};
	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	if (!kctx || EVP_KDF_derive(kctx, out->k, WIRE_KEY_LEN, params) != 1)
		log_error("rfs wire: HKDF-SHA256 failed (OpenSSL without the HKDF KDF?)");
	else
		rc = 0;
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	OPENSSL_cleanse(ikm, sizeof(ikm));
	if (rc)
		OPENSSL_cleanse(out->k, sizeof(out->k));
	return rc;
}

void wire_key_wipe(struct wire_key *k)
{
	OPENSSL_cleanse(k->k, sizeof(k->k));
}

static EVP_CIPHER_CTX *gcm_ctx(const struct wire_key *key, bool enc)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	if (ctx && EVP_CipherInit_ex(ctx, EVP_aes_128_gcm(), NULL, key->k, NULL, enc ? 1 : 0) == 1)
		return ctx;
	EVP_CIPHER_CTX_free(ctx);
	return NULL;
}

int wire_tx_init(struct wire_tx *tx, const struct wire_key *key)
{
	tx->next = 1;
	tx->ctx = gcm_ctx(key, true);
	if (!tx->ctx) {
		log_error("rfs wire: cannot set up AES-128-GCM (out of memory?)");
		return -1;
	}
	return 0;
}

void wire_tx_free(struct wire_tx *tx)
{
	EVP_CIPHER_CTX_free(tx->ctx);
	tx->ctx = NULL;
}

int wire_rx_init(struct wire_rx *rx, const struct wire_key *key, const struct wire_key *own_tx_key)
{
	rx->next = 1;
	rx->have_own = own_tx_key != NULL;
	if (own_tx_key)
		rx->own = *own_tx_key;
	else
		memset(&rx->own, 0, sizeof(rx->own));
	rx->ctx = gcm_ctx(key, false);
	if (!rx->ctx) {
		log_error("rfs wire: cannot set up AES-128-GCM (out of memory?)");
		wire_key_wipe(&rx->own);
		return -1;
	}
	return 0;
}

void wire_rx_free(struct wire_rx *rx)
{
	EVP_CIPHER_CTX_free(rx->ctx);
	rx->ctx = NULL;
	wire_key_wipe(&rx->own);
}

/* ---- frames ---- */

static void make_iv(uint64_t frame_no, uint8_t iv[IV_LEN])
{
	memset(iv, 0, 4);
	put64(iv + 4, frame_no);
}

enum wire_err wire_open_hdr(const uint8_t hdr[WIRE_HDR_LEN], struct wire_hdr *out)
{
	struct rd r = { hdr, WIRE_HDR_LEN, false };
	uint32_t magic = rd32(&r), rsv;
	unsigned minlen = 0, maxlen = WIRE_BODY_MAX;

	out->type = rd8(&r);
	out->flags = rd8(&r);
	out->nops = rd16(&r);
	out->len = rd32(&r);
	out->frame_no = rd64(&r);
	rsv = rd32(&r);
	memcpy(out->raw, hdr, WIRE_HDR_LEN);
	if (magic != WIRE_MAGIC)
		return WIRE_ERR_MAGIC;
	if (out->type == 0 || out->type >= WIRE_TYPE_END)
		return WIRE_ERR_TYPE;
	if (out->len > WIRE_BODY_MAX)
		return WIRE_ERR_TOO_LONG;
	if (rsv)
		return WIRE_ERR_RESERVED;
	if (out->type == WIRE_OPS) {
		if (out->nops == 0)
			return WIRE_ERR_NOPS;
		minlen = (unsigned)out->nops * WIRE_OP_HDR_LEN;
	} else if (out->nops && out->type != WIRE_LIST) {
		return WIRE_ERR_NOPS;
	}
	switch (out->type) {
	case WIRE_HELLO:
		minlen = WIRE_HELLO_FIXED_LEN + 2;
		maxlen = WIRE_HELLO_FIXED_LEN + 2 * WIRE_HELLO_NAME_MAX;
		break;
	case WIRE_ACK:
	case WIRE_ERROR:
		minlen = WIRE_ACK_FIXED_LEN + (out->type == WIRE_ERROR);
		maxlen = WIRE_ACK_FIXED_LEN + WIRE_TEXT_MAX;
		break;
	case WIRE_HASHES:
		minlen = WIRE_HASHES_FIXED_LEN + WIRE_HASH_LEN;
		maxlen = WIRE_HASHES_FIXED_LEN + (WIRE_DATA_MAX / 4096) * WIRE_HASH_LEN;
		break;
	case WIRE_PING:
		maxlen = 0;
		break;
	}
	if (out->len < minlen || out->len > maxlen)
		return WIRE_ERR_FRAME_LEN;
	if (out->type == WIRE_HASHES && (out->len - WIRE_HASHES_FIXED_LEN) % WIRE_HASH_LEN)
		return WIRE_ERR_FRAME_LEN;
	return WIRE_OK;
}

size_t wire_seal_iov(struct wire_tx *tx, uint8_t type, uint8_t flags, uint16_t nops,
                     const struct iovec *iov, int iovcnt, uint8_t *out, size_t outcap)
{
	uint8_t hdr[WIRE_HDR_LEN], iv[IV_LEN], *p;
	struct wire_hdr h;
	size_t total = 0, pos = 0;
	int n;

	if (!tx->ctx || tx->next == 0 || iovcnt < 0)
		return 0;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > WIRE_BODY_MAX || total + iov[i].iov_len > WIRE_BODY_MAX)
			return 0;
		total += iov[i].iov_len;
	}
	p = put32(hdr, WIRE_MAGIC);
	p = put8(p, type);
	p = put8(p, flags);
	p = put16(p, nops);
	p = put32(p, (uint32_t)total);
	p = put64(p, tx->next);
	put32(p, 0);
	/* What the peer would refuse is not sent. */
	if (wire_open_hdr(hdr, &h) != WIRE_OK || outcap < WIRE_HDR_LEN + total + WIRE_TAG_LEN)
		return 0;
	memcpy(out, hdr, WIRE_HDR_LEN);
	make_iv(tx->next, iv);
	if (EVP_EncryptInit_ex(tx->ctx, NULL, NULL, NULL, iv) != 1 ||
	    EVP_EncryptUpdate(tx->ctx, NULL, &n, hdr, WIRE_HDR_LEN) != 1)
		return 0;
	for (int i = 0; i < iovcnt; i++) {
		if (!iov[i].iov_len)
			continue;
		if (EVP_EncryptUpdate(tx->ctx, out + WIRE_HDR_LEN + pos, &n, iov[i].iov_base,
		                      (int)iov[i].iov_len) != 1 || (size_t)n != iov[i].iov_len)
			return 0;
		pos += iov[i].iov_len;
	}
	if (EVP_EncryptFinal_ex(tx->ctx, out + WIRE_HDR_LEN + total, &n) != 1 || n != 0 ||
	    EVP_CIPHER_CTX_ctrl(tx->ctx, EVP_CTRL_GCM_GET_TAG, WIRE_TAG_LEN,
	                        out + WIRE_HDR_LEN + total) != 1)
		return 0;
	tx->next++;
	return WIRE_HDR_LEN + total + WIRE_TAG_LEN;
}

size_t wire_seal(struct wire_tx *tx, uint8_t type, uint8_t flags, uint16_t nops,
                 const uint8_t *body, size_t len, uint8_t *out, size_t outcap)
{
	struct iovec iov = { (void *)body, len };

	if (len && !body)
		return 0;
	return wire_seal_iov(tx, type, flags, nops, &iov, len ? 1 : 0, out, outcap);
}

/* 1: tag good; 0: tag bad; -1: cipher failure. pt NULL: the plaintext is
 * thrown away (only the tag matters). */
static int gcm_open(EVP_CIPHER_CTX *ctx, const uint8_t iv[IV_LEN], const uint8_t *aad,
                    const uint8_t *ct, size_t len, uint8_t *pt)
{
	uint8_t tag[WIRE_TAG_LEN], scratch[4096];
	size_t done = 0;
	int n;

	memcpy(tag, ct + len, WIRE_TAG_LEN);
	if (EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, iv) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &n, aad, WIRE_HDR_LEN) != 1)
		return -1;
	while (done < len) {
		size_t chunk = len - done;

		if (!pt && chunk > sizeof(scratch))
			chunk = sizeof(scratch);

		if (EVP_DecryptUpdate(ctx, pt ? pt + done : scratch, &n, ct + done, (int)chunk) != 1 ||
		    (size_t)n != chunk)
			return -1;
		done += chunk;
	}
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, WIRE_TAG_LEN, tag) != 1)
		return -1;
	OPENSSL_cleanse(scratch, sizeof(scratch));
	return EVP_DecryptFinal_ex(ctx, scratch, &n) == 1 ? 1 : 0;
}

/* Was this frame sealed with our own sending key? Only asked after the
 * real key failed, to name the attack. */
static bool reflected(const struct wire_rx *rx, const uint8_t iv[IV_LEN], const uint8_t *aad,
                      const uint8_t *ct, size_t len)
{
	EVP_CIPHER_CTX *ctx;
	int ok;

	if (!rx->have_own)
		return false;
	ctx = gcm_ctx(&rx->own, false);
	if (!ctx)
		return false;
	ok = gcm_open(ctx, iv, aad, ct, len, NULL);
	EVP_CIPHER_CTX_free(ctx);
	return ok == 1;
}

enum wire_err wire_open(struct wire_rx *rx, const struct wire_hdr *hdr,
                        const uint8_t *body_and_tag, uint8_t *plain_out)
{
	uint8_t iv[IV_LEN];
	enum wire_err e = WIRE_ERR_AUTH;
	int ok;

	if (!rx->ctx)
		return WIRE_ERR_CRYPTO;
	if (hdr->frame_no < rx->next || rx->next == 0)
		return WIRE_ERR_REPLAY;
	if (hdr->frame_no > rx->next)
		return WIRE_ERR_REORDER;
	if (hdr->len > WIRE_BODY_MAX)
		return WIRE_ERR_TOO_LONG;
	make_iv(hdr->frame_no, iv);
	ok = gcm_open(rx->ctx, iv, hdr->raw, body_and_tag, hdr->len, plain_out);
	if (ok == 1) {
		rx->next++;
		return WIRE_OK;
	}
	if (ok < 0) {
		e = WIRE_ERR_CRYPTO;
	} else if (rx->have_own) {
		/* In place, the failed decryption replaced the ciphertext:
		 * GCM's keystream is its own inverse, so encrypt it back. */
		if (plain_out == body_and_tag) {
			int n;

			if (EVP_EncryptInit_ex(rx->ctx, NULL, NULL, NULL, iv) != 1 ||
			    (hdr->len && (EVP_EncryptUpdate(rx->ctx, plain_out, &n, plain_out,
			                                    (int)hdr->len) != 1 || n != (int)hdr->len)))
				e = WIRE_ERR_CRYPTO;
		}
		if (e == WIRE_ERR_AUTH && reflected(rx, iv, hdr->raw, body_and_tag, hdr->len))
			e = WIRE_ERR_REFLECTED;
	}
	if (hdr->len)
		OPENSSL_cleanse(plain_out, hdr->len);
	return e;
}

/* ---- clear hello ---- */

void wire_hello_clear_encode(const struct wire_hello_clear *h, uint8_t out[WIRE_HELLO_CLEAR_LEN])
{
	uint8_t *p = put32(out, WIRE_HELLO_MAGIC);

	p = put8(p, h->version);
	memcpy(p, h->nonce, WIRE_NONCE_LEN);
}

enum wire_err wire_hello_clear_decode(const uint8_t in[WIRE_HELLO_CLEAR_LEN],
                                      struct wire_hello_clear *out)
{
	struct rd r = { in, WIRE_HELLO_CLEAR_LEN, false };
	uint32_t magic = rd32(&r);

	out->version = rd8(&r);
	memcpy(out->nonce, rdmem(&r, WIRE_NONCE_LEN), WIRE_NONCE_LEN);
	if (magic != WIRE_HELLO_MAGIC)
		return WIRE_ERR_MAGIC;
	if (out->version != WIRE_VERSION)
		return WIRE_ERR_VERSION;
	return WIRE_OK;
}
