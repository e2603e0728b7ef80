/* The vigil-rfs wire codec: frames, AEAD, op records, bodies.
 * `test_rfs_wire --bench` measures seal+open of 1 MiB bodies instead. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "common/proto.h"
#include "common/util.h"
#include "rfs/wire.h"

static const uint8_t secret[] = "0123456789abcdef-test-secret";
static const uint8_t nonce_d[WIRE_NONCE_LEN] = "dialer-nonce-123";
static const uint8_t nonce_l[WIRE_NONCE_LEN] = "listen-nonce-456";

/* Both ends of one connection: dialer's tx -> listener's rx and back. */
struct pair {
	struct wire_key kd, kl;
	struct wire_tx dtx, ltx;
	struct wire_rx drx, lrx;
};

static void pair_init_with(struct pair *p, const char *cluster_d, const char *cluster_l)
{
	struct wire_key kd2, kl2;

	assert_int_equal(wire_key_derive(secret, sizeof(secret) - 1, cluster_d, nonce_d, nonce_l, 'D', &p->kd), 0);
	assert_int_equal(wire_key_derive(secret, sizeof(secret) - 1, cluster_d, nonce_d, nonce_l, 'L', &p->kl), 0);
	assert_int_equal(wire_key_derive(secret, sizeof(secret) - 1, cluster_l, nonce_d, nonce_l, 'D', &kd2), 0);
	assert_int_equal(wire_key_derive(secret, sizeof(secret) - 1, cluster_l, nonce_d, nonce_l, 'L', &kl2), 0);
	assert_int_equal(wire_tx_init(&p->dtx, &p->kd), 0);
	assert_int_equal(wire_rx_init(&p->drx, &p->kl, &p->kd), 0);
	assert_int_equal(wire_tx_init(&p->ltx, &kl2), 0);
	assert_int_equal(wire_rx_init(&p->lrx, &kd2, &kl2), 0);
}

static void pair_init(struct pair *p)
{
	pair_init_with(p, "vms", "vms");
}

static void pair_free(struct pair *p)
{
	wire_tx_free(&p->dtx);
	wire_tx_free(&p->ltx);
	wire_rx_free(&p->drx);
	wire_rx_free(&p->lrx);
}

/* What a receiver does with a frame that arrives from the byte stream:
 * header, then exactly hdr.len + tag more bytes (from the stream, zeros if
 * the stream has fewer), in a buffer of exactly that size so ASan sees any
 * read past it. */
static enum wire_err receive(struct wire_rx *rx, const uint8_t *stream, size_t slen, bool in_place,
                             uint8_t **plain, struct wire_hdr *hdr)
{
	uint8_t h[WIRE_HDR_LEN];
	enum wire_err e;
	uint8_t *bt, *pt;
	size_t need;

	*plain = NULL;
	assert_true(slen >= WIRE_HDR_LEN);
	memcpy(h, stream, WIRE_HDR_LEN);
	e = wire_open_hdr(h, hdr);
	if (e)
		return e;
	need = hdr->len + WIRE_TAG_LEN;
	bt = calloc(1, need);
	assert_non_null(bt);
	memcpy(bt, stream + WIRE_HDR_LEN, need < slen - WIRE_HDR_LEN ? need : slen - WIRE_HDR_LEN);
	pt = in_place ? bt : malloc(hdr->len ? hdr->len : 1);
	assert_non_null(pt);
	e = wire_open(rx, hdr, bt, pt);
	if (!in_place)
		free(bt);
	if (e) {
		free(pt);
		return e;
	}
	*plain = pt;
	return WIRE_OK;
}

/* ---- sample ops: every code, plus variants ---- */

static uint8_t wdata[3000];
static uint8_t xval[100];

static size_t sample_ops(struct wire_op *ops)
{
	size_t n = 0;
	uint64_t seq = 100;

	for (size_t i = 0; i < sizeof(wdata); i++)
		wdata[i] = (uint8_t)(i * 7 + 3);
	memset(xval, 0xab, sizeof(xval));
#define OP(...) ops[n++] = (struct wire_op){ .seq = seq++, __VA_ARGS__ }
	OP(.code = WIRE_OP_BIND, .dir = 0, .fid = 2, .arg = 0);
	OP(.code = WIRE_OP_BIND, .dir = 1, .fid = 77, .arg = 2, .name = "db", .name_len = 2);
	OP(.code = WIRE_OP_UNBIND, .dir = 1, .fid = 77);
	OP(.code = WIRE_OP_CREATE, .dir = 2, .fid = 1000, .arg = 2, .mode = S_IFREG | 0640,
	   .uid = 105, .gid = 110, .mtime_ns = 1700000000123456789ll, .pmtime_ns = -5,
	   .name = "file.dat", .name_len = 8);
	OP(.code = WIRE_OP_CREATE, .fid = 1001, .arg = 2, .mode = S_IFDIR | 01777,
	   .name = "tmp", .name_len = 3, .pmtime_ns = 42);
	OP(.code = WIRE_OP_CREATE, .fid = 1002, .arg = 2, .mode = S_IFLNK | 0777,
	   .name = "link", .name_len = 4, .name2 = "../x/y z", .name2_len = 8);
	OP(.code = WIRE_OP_CREATE, .fid = 1003, .arg = 2, .mode = S_IFCHR | 0600,
	   .rdev = makedev(1, 3), .name = "null", .name_len = 4);
	OP(.code = WIRE_OP_CREATE, .fid = 1004, .arg = 2, .mode = S_IFIFO | 0600,
	   .name = "fifo", .name_len = 4);
	OP(.code = WIRE_OP_LINK, .fid = 1000, .arg = 1001, .pmtime_ns = 9, .name = "hard", .name_len = 4);
	OP(.code = WIRE_OP_UNLINK, .fid = 2, .arg = 0, .pmtime_ns = 10, .name = "file.dat", .name_len = 8);
	OP(.code = WIRE_OP_UNLINK, .fid = 2, .arg = WIRE_UNLINK_RMDIR, .name = "tmp", .name_len = 3);
	OP(.code = WIRE_OP_RENAME, .fid = 2, .arg = 1001, .rename_flags = WIRE_RENAME_NOREPLACE,
	   .pmtime_ns = 11, .new_pmtime_ns = 12, .name = "a", .name_len = 1, .name2 = "b.new", .name2_len = 5);
	OP(.code = WIRE_OP_RENAME, .fid = 2, .arg = 2, .rename_flags = WIRE_RENAME_EXCHANGE,
	   .name = "..a", .name_len = 3, .name2 = "...", .name2_len = 3);
	OP(.code = WIRE_OP_WRITE, .dir = 3, .fid = 1000, .arg = 8192, .flags = WIRE_OPF_DSYNC,
	   .data = wdata, .data_len = sizeof(wdata));
	OP(.code = WIRE_OP_WRITE, .fid = 1000, .arg = 1ull << 40, .flags = WIRE_OPF_RESYNC | WIRE_OPF_SYNC,
	   .data = wdata, .data_len = 1);
	OP(.code = WIRE_OP_WRITE, .fid = 1000, .arg = 5);
	OP(.code = WIRE_OP_TRUNCATE, .fid = 1000, .arg = 123456789);
	OP(.code = WIRE_OP_FALLOCATE, .fid = 1000, .arg = 4096, .fl_mode = 3, .len = 65536);
	OP(.code = WIRE_OP_COPY, .fid = 1000, .arg = 0, .fid_in = 1005, .off_in = 4096, .len = 1 << 20);
	OP(.code = WIRE_OP_SETATTR, .fid = 1000, .arg = WIRE_ATTR_MODE | WIRE_ATTR_UID | WIRE_ATTR_GID |
	   WIRE_ATTR_ATIME | WIRE_ATTR_MTIME, .mode = 04755, .uid = 1, .gid = 2, .atime_ns = 3,
	   .mtime_ns = -4);
	OP(.code = WIRE_OP_SETATTR, .fid = 1000, .arg = WIRE_ATTR_UID, .uid = 65534);
	OP(.code = WIRE_OP_TIMES, .fid = 1000, .arg = WIRE_ATTR_ATIME | WIRE_ATTR_MTIME,
	   .atime_ns = 1, .mtime_ns = 2);
	OP(.code = WIRE_OP_SETXATTR, .fid = 1000, .arg = WIRE_XATTR_CREATE,
	   .name = "system.posix_acl_access", .name_len = 23, .data = xval, .data_len = sizeof(xval));
	OP(.code = WIRE_OP_SETXATTR, .fid = 1000, .name = "user.empty/ok", .name_len = 13);
	OP(.code = WIRE_OP_RMXATTR, .fid = 1000, .name = "user.x", .name_len = 6);
	OP(.code = WIRE_OP_FSYNC, .fid = 1000, .arg = 1);
	OP(.code = WIRE_OP_FSYNCDIR, .fid = 2, .arg = 0);
	OP(.code = WIRE_OP_BARRIER, .arg = 0xdeadbeefcafeull);
	OP(.code = WIRE_OP_HASHREQ, .fid = 1000, .arg = 1 << 20, .len = 1 << 20, .block = 65536);
	OP(.code = WIRE_OP_SETGEN, .gen = 0x1122334455667788ull, .bitmap = 5);
	OP(.code = WIRE_OP_STASH, .dir = 1, .fid = 1005, .name = "old dir/f.dat", .name_len = 13);
#undef OP
	return n;
}

static void assert_op_equal(const struct wire_op *a, const struct wire_op *b)
{
	assert_true(a->seq == b->seq);
	assert_int_equal(a->code, b->code);
	assert_int_equal(a->dir, b->dir);
	assert_int_equal(a->flags, b->flags);
	assert_true(a->fid == b->fid && a->arg == b->arg);
	assert_int_equal(a->mode, b->mode);
	assert_int_equal(a->uid, b->uid);
	assert_int_equal(a->gid, b->gid);
	assert_true(a->rdev == b->rdev);
	assert_true(a->atime_ns == b->atime_ns && a->mtime_ns == b->mtime_ns);
	assert_true(a->pmtime_ns == b->pmtime_ns && a->new_pmtime_ns == b->new_pmtime_ns);
	assert_int_equal(a->rename_flags, b->rename_flags);
	assert_int_equal(a->fl_mode, b->fl_mode);
	assert_true(a->len == b->len && a->fid_in == b->fid_in && a->off_in == b->off_in);
	assert_int_equal(a->block, b->block);
	assert_true(a->gen == b->gen && a->bitmap == b->bitmap);
	assert_int_equal(a->name_len, b->name_len);
	if (a->name_len)
		assert_memory_equal(a->name, b->name, a->name_len);
	assert_int_equal(a->name2_len, b->name2_len);
	if (a->name2_len)
		assert_memory_equal(a->name2, b->name2, a->name2_len);
	assert_int_equal(a->data_len, b->data_len);
	if (a->data_len)
		assert_memory_equal(a->data, b->data, a->data_len);
}

static void assert_hello_equal(const struct wire_hello *a, const struct wire_hello *b)
{
	assert_int_equal(a->version, b->version);
	assert_int_equal(a->role, b->role);
	assert_int_equal(a->flags, b->flags);
	assert_memory_equal(a->dirs_hash, b->dirs_hash, sizeof(a->dirs_hash));
	assert_memory_equal(a->gens, b->gens, sizeof(a->gens));
	assert_string_equal(a->node, b->node);
	assert_string_equal(a->cluster, b->cluster);
}

/* Encodes all sample ops into buf; returns the body length. */
static size_t encode_ops(const struct wire_op *ops, size_t n, uint8_t *buf, size_t cap)
{
	size_t pos = 0, len;

	for (size_t i = 0; i < n; i++) {
		assert_int_equal(wire_op_encode(&ops[i], buf + pos, cap - pos, &len), WIRE_OK);
		assert_int_equal(len, wire_op_size(&ops[i]));
		pos += len;
	}
	return pos;
}

/* ---- tests ---- */

static void every_code_and_string_named(void **st)
{
	for (unsigned c = 1; c < WIRE_OP_END; c++)
		assert_string_not_equal(wire_code_str(c), "unknown");
	assert_string_equal(wire_code_str(0), "unknown");
	assert_string_equal(wire_code_str(WIRE_OP_END), "unknown");
	for (unsigned t = 1; t < WIRE_TYPE_END; t++)
		assert_string_not_equal(wire_type_str(t), "unknown");
	assert_string_equal(wire_type_str(WIRE_TYPE_END), "unknown");
	for (unsigned e = 0; e < WIRE_ERR__COUNT; e++)
		assert_string_not_equal(wire_err_str(e), "?");
	assert_string_equal(wire_err_str(WIRE_ERR__COUNT), "?");
	assert_string_equal(wire_role_str(WIRE_ROLE_PRIM), "prim");
	assert_string_equal(wire_role_str(0), "unknown");
}

/* The key is the documented HKDF, computed here from HMAC alone. */
static void key_derivation(void **st)
{
	unsigned char ikm[PROTO_KEY_LEN], zero[PROTO_KEY_LEN] = { 0 }, prk[PROTO_MAC_LEN], t1[PROTO_MAC_LEN];
	uint8_t info[33], nd2[WIRE_NONCE_LEN];
	struct wire_key k, k2;

	proto_derive_key(secret, sizeof(secret) - 1, "rfs", "vms", ikm);
	proto_hmac(zero, ikm, sizeof(ikm), NULL, 0, NULL, 0, prk);
	memcpy(info, nonce_d, 16);
	memcpy(info + 16, nonce_l, 16);
	info[32] = 'D';
	proto_hmac(prk, info, sizeof(info), "\x01", 1, NULL, 0, t1);
	assert_int_equal(wire_key_derive(secret, sizeof(secret) - 1, "vms", nonce_d, nonce_l, 'D', &k), 0);
	assert_memory_equal(k.k, t1, WIRE_KEY_LEN);

	/* Each input changes the key. */
	assert_int_equal(wire_key_derive(secret, sizeof(secret) - 1, "vms", nonce_d, nonce_l, 'L', &k2), 0);
	assert_memory_not_equal(k.k, k2.k, WIRE_KEY_LEN);
	assert_int_equal(wire_key_derive(secret, sizeof(secret) - 1, "vms2", nonce_d, nonce_l, 'D', &k2), 0);
	assert_memory_not_equal(k.k, k2.k, WIRE_KEY_LEN);
	assert_int_equal(wire_key_derive(secret, sizeof(secret) - 2, "vms", nonce_d, nonce_l, 'D', &k2), 0);
	assert_memory_not_equal(k.k, k2.k, WIRE_KEY_LEN);
	memcpy(nd2, nonce_d, sizeof(nd2));
	nd2[15] ^= 1;
	assert_int_equal(wire_key_derive(secret, sizeof(secret) - 1, "vms", nd2, nonce_l, 'D', &k2), 0);
	assert_memory_not_equal(k.k, k2.k, WIRE_KEY_LEN);
	/* Swapped nonces (each side thinking it dialed) give other keys. */
	assert_int_equal(wire_key_derive(secret, sizeof(secret) - 1, "vms", nonce_l, nonce_d, 'D', &k2), 0);
	assert_memory_not_equal(k.k, k2.k, WIRE_KEY_LEN);
	assert_int_equal(wire_key_derive(secret, sizeof(secret) - 1, "vms", nonce_d, nonce_l, 'X', &k2), -1);
	wire_key_wipe(&k);
	assert_memory_equal(k.k, zero, WIRE_KEY_LEN);
}

static void ops_roundtrip_every_code(void **st)
{
	struct wire_op ops[64], got;
	uint8_t *buf = malloc(1 << 16);
	size_t n = sample_ops(ops), len;
	struct wire_op_iter it;
	bool seen[WIRE_OP_END] = { false };
	char why[200];

	assert_non_null(buf);
	len = encode_ops(ops, n, buf, 1 << 16);
	wire_op_iter_init(&it, buf, len, (uint16_t)n, 99);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(wire_op_next(&it, &got), 1);
		assert_op_equal(&ops[i], &got);
		seen[got.code] = true;
		/* Decoded ops point into the body, not at the originals. */
		if (got.name_len)
			assert_true((const uint8_t *)got.name > buf && (const uint8_t *)got.name < buf + len);
	}
	assert_int_equal(wire_op_next(&it, &got), 0);
	wire_op_iter_explain(&it, why, sizeof(why));
	assert_string_equal(why, "ops fine");
	for (unsigned c = 1; c < WIRE_OP_END; c++)
		assert_true(seen[c]);
	/* prev_seq is honoured: the first op must be above it. */
	wire_op_iter_init(&it, buf, len, (uint16_t)n, 100);
	assert_int_equal(wire_op_next(&it, &got), -1);
	assert_int_equal(it.err, WIRE_ERR_SEQ);
	free(buf);
}

/* encode_head + the data as its own piece = encode, also sealed. */
static void zero_copy_head(void **st)
{
	struct wire_op ops[64], w = { 0 }, got;
	uint8_t full[4096], head[64], frame[8192], *plain;
	size_t n = sample_ops(ops), flen, hlen;
	struct wire_hdr h;
	struct wire_op_iter it;
	struct pair p;

	for (size_t i = 0; i < n; i++)
		if (ops[i].code == WIRE_OP_WRITE && ops[i].data_len > 1000)
			w = ops[i];
	assert_int_equal(w.code, WIRE_OP_WRITE);
	assert_int_equal(wire_op_encode(&w, full, sizeof(full), &flen), WIRE_OK);
	assert_int_equal(wire_op_encode_head(&w, head, sizeof(head), &hlen), WIRE_OK);
	assert_int_equal(hlen, WIRE_OP_HDR_LEN);
	assert_int_equal(flen, hlen + w.data_len);
	assert_memory_equal(full, head, hlen);

	pair_init(&p);
	struct iovec iov[2] = { { head, hlen }, { (void *)w.data, w.data_len } };
	size_t fl = wire_seal_iov(&p.dtx, WIRE_OPS, 0, 1, iov, 2, frame, sizeof(frame));
	assert_int_equal(fl, WIRE_HDR_LEN + flen + WIRE_TAG_LEN);
	assert_int_equal(receive(&p.lrx, frame, fl, false, &plain, &h), WIRE_OK);
	assert_memory_equal(plain, full, flen);
	wire_op_iter_init(&it, plain, h.len, h.nops, 0);
	assert_int_equal(wire_op_next(&it, &got), 1);
	assert_op_equal(&w, &got);
	free(plain);

	/* In place: the body built at its place in the frame buffer. */
	memcpy(frame + WIRE_HDR_LEN, full, flen);
	fl = wire_seal(&p.dtx, WIRE_OPS, 0, 1, frame + WIRE_HDR_LEN, flen, frame, sizeof(frame));
	assert_int_equal(fl, WIRE_HDR_LEN + flen + WIRE_TAG_LEN);
	assert_int_equal(receive(&p.lrx, frame, fl, true, &plain, &h), WIRE_OK);
	assert_memory_equal(plain, full, flen);
	free(plain);
	pair_free(&p);
}

/* The frame is exactly the documented AES-128-GCM: opened here with plain
 * EVP, IV = 0 u32 | frame_no u64, header as AAD. Same body twice: other bytes. */
static void documented_aead(void **st)
{
	uint8_t body[100], f1[200], f2[200], pt[100], iv[12] = { 0 };
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	struct pair p;
	size_t n1, n2;
	int l;

	memset(body, 'q', sizeof(body));
	pair_init(&p);
	n1 = wire_seal(&p.dtx, WIRE_LIST, 0, 0, body, sizeof(body), f1, sizeof(f1));
	n2 = wire_seal(&p.dtx, WIRE_LIST, 0, 0, body, sizeof(body), f2, sizeof(f2));
	assert_true(n1 == n2 && n1 == WIRE_HDR_LEN + sizeof(body) + WIRE_TAG_LEN);
	assert_memory_equal(f1, "VRF1", 4);
	assert_memory_not_equal(f1 + WIRE_HDR_LEN, f2 + WIRE_HDR_LEN, sizeof(body));
	assert_memory_not_equal(f1 + n1 - WIRE_TAG_LEN, f2 + n2 - WIRE_TAG_LEN, WIRE_TAG_LEN);
	iv[11] = 2;
	assert_non_null(ctx);
	assert_int_equal(EVP_DecryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, p.kd.k, iv), 1);
	assert_int_equal(EVP_DecryptUpdate(ctx, NULL, &l, f2, WIRE_HDR_LEN), 1);
	assert_int_equal(EVP_DecryptUpdate(ctx, pt, &l, f2 + WIRE_HDR_LEN, sizeof(body)), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, WIRE_TAG_LEN, f2 + n2 - WIRE_TAG_LEN), 1);
	assert_int_equal(EVP_DecryptFinal_ex(ctx, pt, &l), 1);
	assert_memory_equal(pt, body, sizeof(body));
	EVP_CIPHER_CTX_free(ctx);
	pair_free(&p);
}

/* Every frame type through seal and open, both directions, with its body codec. */
static void frames_roundtrip_every_type(void **st)
{
	struct wire_op ops[64];
	size_t n = sample_ops(ops), blen = 0, fl;
	uint8_t *body = malloc(WIRE_BODY_MAX), *frame = malloc(WIRE_FRAME_MAX), *plain;
	struct wire_hello hi = { .version = WIRE_VERSION, .role = WIRE_ROLE_PRIM,
	                         .flags = WIRE_HELLO_CLEAN_STOP, .node = "node1", .cluster = "vms" }, ho;
	struct wire_ack ack = { 10, 9, 8, 7, 0, 0, "", 0 }, ao;
	struct wire_ack err = { 10, 9, 8, 7, 9, 28, "node2: applying WRITE db/x @8192: No space left on device", 0 };
	uint8_t hashes[16 * 16];
	struct wire_hashes hs = { .seq = 5, .fid = 1000, .off = 1 << 20, .len = 1 << 20, .block = 65536,
	                          .dir = 1, .count = 16, .hashes = hashes }, hso;
	struct wire_hdr h;
	struct pair p;

	assert_non_null(body);
	assert_non_null(frame);
	err.text_len = (uint16_t)strlen(err.text);
	memset(hi.dirs_hash, 0x5a, sizeof(hi.dirs_hash));
	for (size_t i = 0; i < sizeof(hi.gens); i++)
		hi.gens[i] = (uint8_t)i;
	for (size_t i = 0; i < sizeof(hashes); i++)
		hashes[i] = (uint8_t)(i ^ 0x33);
	pair_init(&p);
	for (unsigned t = 1; t < WIRE_TYPE_END; t++) {
		uint16_t nops = 0;

		switch (t) {
		case WIRE_HELLO:
			assert_int_equal(wire_hello_encode(&hi, body, WIRE_BODY_MAX, &blen), WIRE_OK);
			break;
		case WIRE_OPS:
			blen = encode_ops(ops, n, body, WIRE_BODY_MAX);
			nops = (uint16_t)n;
			break;
		case WIRE_ACK:
			assert_int_equal(wire_ack_encode(WIRE_ACK, &ack, body, WIRE_BODY_MAX, &blen), WIRE_OK);
			break;
		case WIRE_ERROR:
			assert_int_equal(wire_ack_encode(WIRE_ERROR, &err, body, WIRE_BODY_MAX, &blen), WIRE_OK);
			break;
		case WIRE_LIST:
			blen = 1000;
			memset(body, 'L', blen);
			nops = 3;
			break;
		case WIRE_HASHES:
			assert_int_equal(wire_hashes_encode(&hs, body, WIRE_BODY_MAX, &blen), WIRE_OK);
			break;
		case WIRE_PING:
			blen = 0;
			break;
		}
		/* Dialer to listener, then listener to dialer. */
		for (int dir = 0; dir < 2; dir++) {
			struct wire_tx *tx = dir ? &p.ltx : &p.dtx;
			struct wire_rx *rx = dir ? &p.drx : &p.lrx;

			fl = wire_seal(tx, (uint8_t)t, 0x80, nops, body, blen, frame, WIRE_FRAME_MAX);
			assert_int_equal(fl, WIRE_HDR_LEN + blen + WIRE_TAG_LEN);
			if (blen > 16)  /* it is encrypted */
				assert_memory_not_equal(frame + WIRE_HDR_LEN, body, 16);
			assert_int_equal(receive(rx, frame, fl, dir, &plain, &h), WIRE_OK);
			assert_int_equal(h.type, t);
			assert_int_equal(h.flags, 0x80);
			assert_int_equal(h.nops, nops);
			assert_int_equal(h.len, blen);
			assert_true(h.frame_no == t);
			if (blen)
				assert_memory_equal(plain, body, blen);
			switch (t) {
			case WIRE_HELLO:
				assert_int_equal(wire_hello_decode(plain, h.len, &ho), WIRE_OK);
				assert_hello_equal(&ho, &hi);
				break;
			case WIRE_ACK:
				assert_int_equal(wire_ack_decode(WIRE_ACK, plain, h.len, &ao), WIRE_OK);
				assert_true(ao.recv_seq == 10 && ao.applied_seq == 9 && ao.durable_seq == 8 &&
				            ao.ckpt_seq == 7 && ao.err_seq == 0 && ao.err_no == 0 && ao.text_len == 0);
				break;
			case WIRE_ERROR:
				assert_int_equal(wire_ack_decode(WIRE_ERROR, plain, h.len, &ao), WIRE_OK);
				assert_true(ao.err_seq == 9 && ao.err_no == 28);
				assert_int_equal(ao.text_len, err.text_len);
				assert_memory_equal(ao.text, err.text, err.text_len);
				/* An ERROR reads as an ACK with an error; not the other way round (below). */
				assert_int_equal(wire_ack_decode(WIRE_ACK, plain, h.len, &ao), WIRE_OK);
				break;
			case WIRE_HASHES:
				assert_int_equal(wire_hashes_decode(plain, h.len, &hso), WIRE_OK);
				assert_true(hso.seq == 5 && hso.fid == 1000 && hso.off == 1 << 20 && hso.dir == 1);
				assert_int_equal(hso.count, 16);
				assert_memory_equal(hso.hashes, hashes, sizeof(hashes));
				break;
			}
			free(plain);
		}
	}
	assert_int_equal(wire_ack_decode(WIRE_ERROR, body, 0, &ao), WIRE_ERR_TRUNCATED);
	assert_int_equal(wire_ack_encode(WIRE_ACK, &ack, body, WIRE_BODY_MAX, &blen), WIRE_OK);
	assert_int_equal(wire_ack_decode(WIRE_ERROR, body, blen, &ao), WIRE_ERR_FIELD);
	pair_free(&p);
	free(body);
	free(frame);
}

/* One 1 MiB write alone fills a frame; the frame limit holds at seal. */
static void big_write_and_limits(void **st)
{
	uint8_t *data = malloc(WIRE_DATA_MAX + 1), *body = malloc(WIRE_BODY_MAX + 1);
	uint8_t *frame = malloc(WIRE_FRAME_MAX + 1), *plain;
	struct wire_op w = { .seq = 1, .code = WIRE_OP_WRITE, .fid = 9, .arg = 0, .data = data,
	                     .data_len = WIRE_DATA_MAX }, got;
	struct wire_op_iter it;
	struct wire_hdr h;
	struct pair p;
	size_t len, fl;

	assert_non_null(data);
	assert_non_null(body);
	assert_non_null(frame);
	for (size_t i = 0; i <= WIRE_DATA_MAX; i++)
		data[i] = (uint8_t)(i >> 3);
	assert_int_equal(wire_op_encode(&w, body, WIRE_BODY_MAX, &len), WIRE_OK);
	pair_init(&p);
	fl = wire_seal(&p.dtx, WIRE_OPS, 0, 1, body, len, frame, WIRE_FRAME_MAX);
	assert_int_equal(fl, WIRE_HDR_LEN + WIRE_OP_HDR_LEN + WIRE_DATA_MAX + WIRE_TAG_LEN);
	assert_int_equal(receive(&p.lrx, frame, fl, false, &plain, &h), WIRE_OK);
	wire_op_iter_init(&it, plain, h.len, h.nops, 0);
	assert_int_equal(wire_op_next(&it, &got), 1);
	assert_op_equal(&w, &got);
	assert_int_equal(wire_op_next(&it, &got), 0);
	free(plain);

	/* One byte more of data is refused, encoding and decoding. */
	w.data_len = WIRE_DATA_MAX + 1;
	assert_int_equal(wire_op_encode(&w, body, WIRE_BODY_MAX, &len), WIRE_ERR_DATA_LEN);
	memcpy(body + WIRE_OP_HDR_LEN, data, WIRE_DATA_MAX + 1);
	body[12] = 0x00; body[13] = 0x10; body[14] = 0x00; body[15] = 0x01;  /* body_len 1 MiB + 1 */
	wire_op_iter_init(&it, body, WIRE_OP_HDR_LEN + WIRE_DATA_MAX + 1, 1, 0);
	assert_int_equal(wire_op_next(&it, &got), -1);
	assert_int_equal(it.err, WIRE_ERR_DATA_LEN);

	/* Body limit, output capacity, bad types and counts: no frame, no frame_no used. */
	memset(body, 0, WIRE_BODY_MAX + 1);
	assert_int_equal(wire_seal(&p.dtx, WIRE_LIST, 0, 0, body, WIRE_BODY_MAX + 1, frame, WIRE_FRAME_MAX + 1), 0);
	assert_int_equal(wire_seal(&p.dtx, WIRE_LIST, 0, 0, body, WIRE_BODY_MAX, frame, WIRE_FRAME_MAX - 1), 0);
	assert_int_equal(wire_seal(&p.dtx, 0, 0, 0, NULL, 0, frame, WIRE_FRAME_MAX), 0);
	assert_int_equal(wire_seal(&p.dtx, WIRE_TYPE_END, 0, 0, NULL, 0, frame, WIRE_FRAME_MAX), 0);
	assert_int_equal(wire_seal(&p.dtx, WIRE_PING, 0, 0, body, 1, frame, WIRE_FRAME_MAX), 0);
	assert_int_equal(wire_seal(&p.dtx, WIRE_PING, 0, 1, NULL, 0, frame, WIRE_FRAME_MAX), 0);
	assert_int_equal(wire_seal(&p.dtx, WIRE_OPS, 0, 0, body, 64, frame, WIRE_FRAME_MAX), 0);
	assert_int_equal(wire_seal(&p.dtx, WIRE_OPS, 0, 3, body, 64, frame, WIRE_FRAME_MAX), 0);
	fl = wire_seal(&p.dtx, WIRE_LIST, 0, 0, body, WIRE_BODY_MAX, frame, WIRE_FRAME_MAX);
	assert_int_equal(fl, WIRE_FRAME_MAX);
	assert_int_equal(receive(&p.lrx, frame, fl, true, &plain, &h), WIRE_OK);
	assert_true(h.frame_no == 2);
	free(plain);
	pair_free(&p);
	free(data);
	free(body);
	free(frame);
}

/* Headers are judged from their 24 bytes alone (ASan: nothing past them is read). */
static void header_bounds(void **st)
{
	uint8_t frame[256], *h = malloc(WIRE_HDR_LEN);
	struct wire_hdr hd;
	struct pair p;
	size_t fl;

	assert_non_null(h);
	pair_init(&p);
	fl = wire_seal(&p.dtx, WIRE_PING, 0, 0, NULL, 0, frame, sizeof(frame));
	assert_int_equal(fl, WIRE_HDR_LEN + WIRE_TAG_LEN);
	memcpy(h, frame, WIRE_HDR_LEN);
	assert_int_equal(wire_open_hdr(h, &hd), WIRE_OK);
#define MUT(off, val, want) do { memcpy(h, frame, WIRE_HDR_LEN); h[off] = (val); \
	assert_int_equal(wire_open_hdr(h, &hd), (want)); } while (0)
	MUT(0, 'X', WIRE_ERR_MAGIC);
	MUT(3, '2', WIRE_ERR_MAGIC);
	MUT(4, 0, WIRE_ERR_TYPE);
	MUT(4, WIRE_TYPE_END, WIRE_ERR_TYPE);
	MUT(4, 0xff, WIRE_ERR_TYPE);
	MUT(8, 0x80, WIRE_ERR_TOO_LONG);                /* 2 GiB */
	MUT(9, 0x21, WIRE_ERR_TOO_LONG);
	MUT(9, 0x20, WIRE_ERR_FRAME_LEN);               /* 2 MiB is not too long, but not a PING */
	MUT(23, 1, WIRE_ERR_RESERVED);
	MUT(20, 0x80, WIRE_ERR_RESERVED);
	MUT(11, 1, WIRE_ERR_FRAME_LEN);                 /* PING with a body */
	MUT(7, 1, WIRE_ERR_NOPS);                       /* PING with ops */
	memcpy(h, frame, WIRE_HDR_LEN);
	h[4] = WIRE_LIST; h[9] = 0x20; h[10] = 0; h[11] = 0;
	assert_int_equal(wire_open_hdr(h, &hd), WIRE_OK); /* exactly 2 MiB */
	h[11] = 1;
	assert_int_equal(wire_open_hdr(h, &hd), WIRE_ERR_TOO_LONG);
	/* Per-type lengths. */
	struct { uint8_t type; uint16_t nops; uint32_t len; enum wire_err want; } cases[] = {
		{ WIRE_HELLO, 0, WIRE_HELLO_FIXED_LEN + 1, WIRE_ERR_FRAME_LEN },
		{ WIRE_HELLO, 0, WIRE_HELLO_FIXED_LEN + 2, WIRE_OK },
		{ WIRE_HELLO, 0, WIRE_HELLO_FIXED_LEN + 126, WIRE_OK },
		{ WIRE_HELLO, 0, WIRE_HELLO_FIXED_LEN + 127, WIRE_ERR_FRAME_LEN },
		{ WIRE_HELLO, 1, WIRE_HELLO_FIXED_LEN + 2, WIRE_ERR_NOPS },
		{ WIRE_OPS, 0, 32, WIRE_ERR_NOPS },
		{ WIRE_OPS, 1, 31, WIRE_ERR_FRAME_LEN },
		{ WIRE_OPS, 2, 64, WIRE_OK },
		{ WIRE_OPS, 65535, WIRE_BODY_MAX, WIRE_OK },
		{ WIRE_ACK, 0, WIRE_ACK_FIXED_LEN - 1, WIRE_ERR_FRAME_LEN },
		{ WIRE_ACK, 0, WIRE_ACK_FIXED_LEN + WIRE_TEXT_MAX, WIRE_OK },
		{ WIRE_ACK, 0, WIRE_ACK_FIXED_LEN + WIRE_TEXT_MAX + 1, WIRE_ERR_FRAME_LEN },
		{ WIRE_ERROR, 0, WIRE_ACK_FIXED_LEN, WIRE_ERR_FRAME_LEN },
		{ WIRE_ACK, 2, WIRE_ACK_FIXED_LEN, WIRE_ERR_NOPS },
		{ WIRE_HASHES, 0, WIRE_HASHES_FIXED_LEN, WIRE_ERR_FRAME_LEN },
		{ WIRE_HASHES, 0, WIRE_HASHES_FIXED_LEN + 17, WIRE_ERR_FRAME_LEN },
		{ WIRE_HASHES, 0, WIRE_HASHES_FIXED_LEN + 256 * 16, WIRE_OK },
		{ WIRE_HASHES, 0, WIRE_HASHES_FIXED_LEN + 257 * 16, WIRE_ERR_FRAME_LEN },
		{ WIRE_HASHES, 0, 7, WIRE_ERR_FRAME_LEN },
		{ WIRE_LIST, 9, 0, WIRE_OK },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		memcpy(h, frame, WIRE_HDR_LEN);
		h[4] = cases[i].type;
		h[6] = (uint8_t)(cases[i].nops >> 8);
		h[7] = (uint8_t)cases[i].nops;
		h[8] = (uint8_t)(cases[i].len >> 24);
		h[9] = (uint8_t)(cases[i].len >> 16);
		h[10] = (uint8_t)(cases[i].len >> 8);
		h[11] = (uint8_t)cases[i].len;
		assert_int_equal(wire_open_hdr(h, &hd), cases[i].want);
	}
#undef MUT
	pair_free(&p);
	free(h);
}

/* Every single bit flipped anywhere in a sealed frame is refused, and the
 * receiver still takes the intact frame afterwards. */
static void every_bit_flip_rejected(void **st)
{
	struct wire_op ops[64];
	uint8_t body[512], frame[1024], t[1024], *plain;
	size_t n = sample_ops(ops), blen = 0, fl;
	struct wire_hdr h;
	struct pair p;
	unsigned hdr_err = 0, replay = 0, reorder = 0, auth = 0;

	/* A few small ops: a body of a few hundred bytes. */
	assert_true(n > 6);
	for (size_t i = 0, len; i < 6; i++) {
		assert_int_equal(wire_op_encode(&ops[i], body + blen, sizeof(body) - blen, &len), WIRE_OK);
		blen += len;
	}
	pair_init(&p);
	fl = wire_seal(&p.dtx, WIRE_OPS, 0, 6, body, blen, frame, sizeof(frame));
	assert_int_equal(fl, WIRE_HDR_LEN + blen + WIRE_TAG_LEN);
	for (size_t bit = 0; bit < fl * 8; bit++) {
		enum wire_err e;

		memcpy(t, frame, fl);
		t[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		e = receive(&p.lrx, t, fl, bit & 1, &plain, &h);
		assert_int_not_equal(e, WIRE_OK);
		assert_null(plain);
		if (bit < WIRE_HDR_LEN * 8 && e != WIRE_ERR_AUTH && e != WIRE_ERR_REPLAY && e != WIRE_ERR_REORDER)
			hdr_err++;
		replay += e == WIRE_ERR_REPLAY;
		reorder += e == WIRE_ERR_REORDER;
		auth += e == WIRE_ERR_AUTH;
		/* Only frame_no bits may give replay/reorder; nothing is a reflection. */
		if (e == WIRE_ERR_REPLAY || e == WIRE_ERR_REORDER)
			assert_true(bit >= 12 * 8 && bit < 20 * 8);
		assert_int_not_equal(e, WIRE_ERR_REFLECTED);
	}
	assert_true(hdr_err > 0 && reorder == 63 && replay == 1);
	assert_true(auth >= (blen + WIRE_TAG_LEN) * 8);
	assert_int_equal(receive(&p.lrx, frame, fl, false, &plain, &h), WIRE_OK);
	assert_memory_equal(plain, body, blen);
	free(plain);
	pair_free(&p);
}

static void replay_reorder_reflection(void **st)
{
	uint8_t f1[64], f2[64], f3[64], l1[64], *plain;
	size_t n1, n2, n3, m1;
	struct wire_hdr h;
	struct pair p, q;

	pair_init(&p);
	n1 = wire_seal(&p.dtx, WIRE_PING, 0, 0, NULL, 0, f1, sizeof(f1));
	n2 = wire_seal(&p.dtx, WIRE_PING, 0, 0, NULL, 0, f2, sizeof(f2));
	n3 = wire_seal(&p.dtx, WIRE_PING, 0, 0, NULL, 0, f3, sizeof(f3));
	assert_true(n1 && n2 && n3);
	/* Reorder: 2 before 1. */
	assert_int_equal(receive(&p.lrx, f2, n2, false, &plain, &h), WIRE_ERR_REORDER);
	assert_int_equal(receive(&p.lrx, f1, n1, false, &plain, &h), WIRE_OK);
	free(plain);
	/* Replay: 1 again. */
	assert_int_equal(receive(&p.lrx, f1, n1, false, &plain, &h), WIRE_ERR_REPLAY);
	/* Skipping 2 (a lost frame) is refused too. */
	assert_int_equal(receive(&p.lrx, f3, n3, false, &plain, &h), WIRE_ERR_REORDER);
	assert_int_equal(receive(&p.lrx, f2, n2, false, &plain, &h), WIRE_OK);
	free(plain);
	assert_int_equal(receive(&p.lrx, f2, n2, false, &plain, &h), WIRE_ERR_REPLAY);
	/* Forging frame_no in the header is caught by the tag. */
	f1[19] = 3;
	assert_int_equal(receive(&p.lrx, f1, n1, false, &plain, &h), WIRE_ERR_AUTH);
	assert_int_equal(receive(&p.lrx, f3, n3, false, &plain, &h), WIRE_OK);
	free(plain);

	pair_free(&p);

	/* Reflection: a node's own frame sent back to it, in place and not
	 * (in place, the ciphertext is restored for the check). */
	{
		uint8_t body[300], fr[400];
		size_t k;

		pair_init(&p);
		m1 = wire_seal(&p.ltx, WIRE_PING, 0, 0, NULL, 0, l1, sizeof(l1));
		n1 = wire_seal(&p.dtx, WIRE_PING, 0, 0, NULL, 0, f1, sizeof(f1));
		assert_true(m1 && n1);
		assert_int_equal(receive(&p.lrx, l1, m1, false, &plain, &h), WIRE_ERR_REFLECTED);
		assert_int_equal(receive(&p.drx, f1, n1, true, &plain, &h), WIRE_ERR_REFLECTED);
		/* The genuine deliveries still work afterwards. */
		assert_int_equal(receive(&p.drx, l1, m1, false, &plain, &h), WIRE_OK);
		free(plain);
		assert_int_equal(receive(&p.lrx, f1, n1, true, &plain, &h), WIRE_OK);
		free(plain);
		memset(body, 'b', sizeof(body));
		k = wire_seal(&p.ltx, WIRE_LIST, 0, 0, body, sizeof(body), fr, sizeof(fr));
		assert_int_equal(k, WIRE_HDR_LEN + sizeof(body) + WIRE_TAG_LEN);
		assert_int_equal(receive(&p.lrx, fr, k, true, &plain, &h), WIRE_ERR_REFLECTED);
		assert_int_equal(receive(&p.lrx, fr, k, false, &plain, &h), WIRE_ERR_REFLECTED);
		assert_int_equal(receive(&p.drx, fr, k, true, &plain, &h), WIRE_OK);
		assert_memory_equal(plain, body, sizeof(body));
		free(plain);
		pair_free(&p);
	}

	/* Wrong cluster, wrong secret, wrong nonces: bad tag. */
	pair_init_with(&q, "vms", "other");
	n1 = wire_seal(&q.dtx, WIRE_PING, 0, 0, NULL, 0, f1, sizeof(f1));
	assert_int_equal(receive(&q.lrx, f1, n1, false, &plain, &h), WIRE_ERR_AUTH);
	pair_free(&q);
	{
		struct wire_key k;
		struct wire_rx rx;
		struct wire_tx tx;
		uint8_t nl2[WIRE_NONCE_LEN];

		pair_init(&p);
		n1 = wire_seal(&p.dtx, WIRE_PING, 0, 0, NULL, 0, f1, sizeof(f1));
		assert_int_equal(wire_key_derive((const uint8_t *)"another secret", 14, "vms", nonce_d, nonce_l, 'D', &k), 0);
		assert_int_equal(wire_rx_init(&rx, &k, NULL), 0);
		assert_int_equal(receive(&rx, f1, n1, false, &plain, &h), WIRE_ERR_AUTH);
		wire_rx_free(&rx);
		memcpy(nl2, nonce_l, sizeof(nl2));
		nl2[0] ^= 0x40;
		assert_int_equal(wire_key_derive(secret, sizeof(secret) - 1, "vms", nonce_d, nl2, 'D', &k), 0);
		assert_int_equal(wire_rx_init(&rx, &k, NULL), 0);
		assert_int_equal(receive(&rx, f1, n1, false, &plain, &h), WIRE_ERR_AUTH);
		wire_rx_free(&rx);
		/* An rx without its own key cannot name a reflection. */
		assert_int_equal(wire_rx_init(&rx, &p.kd, NULL), 0);
		assert_int_equal(wire_tx_init(&tx, &p.kl), 0);
		m1 = wire_seal(&tx, WIRE_PING, 0, 0, NULL, 0, l1, sizeof(l1));
		assert_int_equal(receive(&rx, l1, m1, false, &plain, &h), WIRE_ERR_AUTH);
		wire_tx_free(&tx);
		wire_rx_free(&rx);
		pair_free(&p);
	}
}

static void hello_clear_and_hello(void **st)
{
	struct wire_hello_clear c = { .version = WIRE_VERSION }, co;
	uint8_t buf[WIRE_HELLO_CLEAR_LEN], body[300];
	struct wire_hello hi = { .version = WIRE_VERSION, .role = WIRE_ROLE_SECOND,
	                         .flags = WIRE_HELLO_OUTDATED | WIRE_HELLO_VERIFY, .node = "n", .cluster = "c" }, ho;
	size_t len;

	memcpy(c.nonce, nonce_d, WIRE_NONCE_LEN);
	wire_hello_clear_encode(&c, buf);
	assert_memory_equal(buf, "VRH1\x01", 5);
	assert_int_equal(wire_hello_clear_decode(buf, &co), WIRE_OK);
	assert_memory_equal(co.nonce, nonce_d, WIRE_NONCE_LEN);
	buf[4] = 2;
	assert_int_equal(wire_hello_clear_decode(buf, &co), WIRE_ERR_VERSION);
	assert_int_equal(co.version, 2);
	buf[0] = 'X';
	assert_int_equal(wire_hello_clear_decode(buf, &co), WIRE_ERR_MAGIC);

	/* Longest names. */
	memset(hi.node, 'n', WIRE_HELLO_NAME_MAX);
	memset(hi.cluster, 'c', WIRE_HELLO_NAME_MAX);
	assert_int_equal(wire_hello_encode(&hi, body, sizeof(body), &len), WIRE_OK);
	assert_int_equal(len, WIRE_HELLO_FIXED_LEN + 2 * WIRE_HELLO_NAME_MAX);
	assert_int_equal(wire_hello_decode(body, len, &ho), WIRE_OK);
	assert_hello_equal(&ho, &hi);
	assert_int_equal(wire_hello_encode(&hi, body, len - 1, &len), WIRE_ERR_NOSPACE);
	/* Every truncation fails. */
	assert_int_equal(wire_hello_encode(&hi, body, sizeof(body), &len), WIRE_OK);
	for (size_t l = 0; l < len; l++) {
		uint8_t *cut = malloc(l ? l : 1);

		memcpy(cut, body, l);
		assert_int_not_equal(wire_hello_decode(cut, l, &ho), WIRE_OK);
		free(cut);
	}
	/* Field checks, both ways. */
	struct wire_hello bad = hi;
	bad.version = 2;
	assert_int_equal(wire_hello_encode(&bad, body, sizeof(body), &len), WIRE_ERR_VERSION);
	bad = hi; bad.role = 0;
	assert_int_equal(wire_hello_encode(&bad, body, sizeof(body), &len), WIRE_ERR_FIELD);
	bad = hi; bad.flags = WIRE_HELLO_FLAGS_KNOWN + 1;
	assert_int_equal(wire_hello_encode(&bad, body, sizeof(body), &len), WIRE_ERR_FLAGS);
	bad = hi; bad.node[0] = 0;
	assert_int_equal(wire_hello_encode(&bad, body, sizeof(body), &len), WIRE_ERR_NAME);
	assert_int_equal(wire_hello_encode(&hi, body, sizeof(body), &len), WIRE_OK);
	body[1] = 9;
	assert_int_equal(wire_hello_decode(body, len, &ho), WIRE_ERR_VERSION);
	body[1] = WIRE_VERSION; body[2] = WIRE_ROLE_END;
	assert_int_equal(wire_hello_decode(body, len, &ho), WIRE_ERR_FIELD);
	body[2] = WIRE_ROLE_PRIM; body[3] = 1;
	assert_int_equal(wire_hello_decode(body, len, &ho), WIRE_ERR_RESERVED);
	body[3] = 0; body[7] = 0x10;
	assert_int_equal(wire_hello_decode(body, len, &ho), WIRE_ERR_FLAGS);
	body[7] = 0; body[WIRE_HELLO_FIXED_LEN - 1] = 0;    /* node length 0 */
	assert_int_not_equal(wire_hello_decode(body, len, &ho), WIRE_OK);
	body[WIRE_HELLO_FIXED_LEN - 1] = WIRE_HELLO_NAME_MAX;
	body[WIRE_HELLO_FIXED_LEN + 5] = 0;                  /* NUL inside the node name */
	assert_int_equal(wire_hello_decode(body, len, &ho), WIRE_ERR_NAME);
	body[WIRE_HELLO_FIXED_LEN + 5] = 'n';
	assert_int_equal(wire_hello_decode(body, len, &ho), WIRE_OK);
	assert_int_equal(wire_hello_decode(body, len + 1, &ho), WIRE_ERR_LEN);
}

static void ack_and_hashes_rules(void **st)
{
	uint8_t body[WIRE_ACK_FIXED_LEN + WIRE_TEXT_MAX + 1], hb[WIRE_HASHES_FIXED_LEN + 64];
	char text[WIRE_TEXT_MAX + 1];
	struct wire_ack a = { 5, 5, 5, 5, 0, 0, NULL, 0 }, o;
	uint8_t hashes[64] = { 1 };
	struct wire_hashes hs = { .seq = 1, .fid = 2, .off = 0, .len = 10000, .block = 4096, .count = 3,
	                          .hashes = hashes }, ho;
	size_t len;

	memset(hb, 0, sizeof(hb));
	memset(text, 'x', sizeof(text));
	a.text = text;
	a.text_len = WIRE_TEXT_MAX;
	a.err_seq = 5; a.err_no = 5;
	assert_int_equal(wire_ack_encode(WIRE_ACK, &a, body, sizeof(body), &len), WIRE_OK);
	assert_int_equal(wire_ack_decode(WIRE_ACK, body, len, &o), WIRE_OK);
	assert_int_equal(o.text_len, WIRE_TEXT_MAX);
	for (size_t l = 0; l < len; l++)
		assert_int_not_equal(wire_ack_decode(WIRE_ACK, body, l, &o), WIRE_OK);
	assert_int_equal(wire_ack_decode(WIRE_ACK, body, len + 1, &o), WIRE_ERR_LEN);
	a.text_len = WIRE_TEXT_MAX + 1;
	assert_int_equal(wire_ack_encode(WIRE_ACK, &a, body, sizeof(body), &len), WIRE_ERR_TEXT);
	a.text_len = 3; text[1] = 0;
	assert_int_equal(wire_ack_encode(WIRE_ACK, &a, body, sizeof(body), &len), WIRE_ERR_TEXT);
	text[1] = 'x';
	a.applied_seq = 6;
	assert_int_equal(wire_ack_encode(WIRE_ACK, &a, body, sizeof(body), &len), WIRE_ERR_SEQ);
	a.applied_seq = 5; a.durable_seq = 6;
	assert_int_equal(wire_ack_encode(WIRE_ACK, &a, body, sizeof(body), &len), WIRE_ERR_SEQ);
	a.durable_seq = 5; a.ckpt_seq = 6;
	assert_int_equal(wire_ack_encode(WIRE_ACK, &a, body, sizeof(body), &len), WIRE_ERR_SEQ);
	a.ckpt_seq = 5; a.err_no = 0;
	assert_int_equal(wire_ack_encode(WIRE_ACK, &a, body, sizeof(body), &len), WIRE_ERR_FIELD);
	assert_int_equal(wire_ack_encode(WIRE_ERROR, &a, body, sizeof(body), &len), WIRE_ERR_FIELD);
	assert_int_equal(wire_ack_encode(WIRE_PING, &a, body, sizeof(body), &len), WIRE_ERR_TYPE);
	a.err_no = 1;
	assert_int_equal(wire_ack_encode(WIRE_ACK, &a, body, 10, &len), WIRE_ERR_NOSPACE);
	/* Decoding checks the order of the levels too. */
	assert_int_equal(wire_ack_encode(WIRE_ACK, &a, body, sizeof(body), &len), WIRE_OK);
	body[15] = 6;   /* applied 6 > recv 5 */
	assert_int_equal(wire_ack_decode(WIRE_ACK, body, len, &o), WIRE_ERR_SEQ);
	body[15] = 5; body[45] = 0x10; body[44] = 0x10;    /* text_len 4112 */
	assert_int_equal(wire_ack_decode(WIRE_ACK, body, len, &o), WIRE_ERR_TEXT);

	assert_int_equal(wire_hashes_encode(&hs, hb, sizeof(hb), &len), WIRE_OK);
	assert_int_equal(len, WIRE_HASHES_FIXED_LEN + 48);
	assert_int_equal(wire_hashes_decode(hb, len, &ho), WIRE_OK);
	assert_int_equal(ho.count, 3);
	for (size_t l = 0; l < len; l++)
		assert_int_not_equal(wire_hashes_decode(hb, l, &ho), WIRE_OK);
	assert_int_equal(wire_hashes_decode(hb, len + 16, &ho), WIRE_ERR_LEN);
	hs.count = 2;
	assert_int_equal(wire_hashes_encode(&hs, hb, sizeof(hb), &len), WIRE_ERR_RECORDS);
	hs.count = 3; hs.block = 5000;
	assert_int_equal(wire_hashes_encode(&hs, hb, sizeof(hb), &len), WIRE_ERR_FIELD);
	hs.block = 4096; hs.off = 100;
	assert_int_equal(wire_hashes_encode(&hs, hb, sizeof(hb), &len), WIRE_ERR_FIELD);
	hs.off = 0; hs.seq = 0;
	assert_int_equal(wire_hashes_encode(&hs, hb, sizeof(hb), &len), WIRE_ERR_SEQ);
	hs.seq = 1;
	assert_int_equal(wire_hashes_encode(&hs, hb, sizeof(hb), &len), WIRE_OK);
	hb[34] = 1;     /* reserved */
	assert_int_equal(wire_hashes_decode(hb, len, &ho), WIRE_ERR_RESERVED);
}

/* Where the (first) name's bytes start in an encoded op. */
static size_t name_off(uint16_t code)
{
	switch (code) {
	case WIRE_OP_CREATE:
		return WIRE_OP_HDR_LEN + 36 + 2;
	case WIRE_OP_LINK:
	case WIRE_OP_UNLINK:
		return WIRE_OP_HDR_LEN + 8 + 2;
	case WIRE_OP_RENAME:
		return WIRE_OP_HDR_LEN + 20 + 2;
	}
	return WIRE_OP_HDR_LEN + 2;
}

static void name_rules(void **st)
{
	char n255[256], n256[257];

	memset(n255, 'a', sizeof(n255));
	memset(n256, 'a', sizeof(n256));
	assert_int_equal(wire_name_check("a", 1), WIRE_OK);
	assert_int_equal(wire_name_check(n255, 255), WIRE_OK);
	assert_int_equal(wire_name_check("...", 3), WIRE_OK);
	assert_int_equal(wire_name_check(".hidden", 7), WIRE_OK);
	assert_int_equal(wire_name_check("sp ace\n\xff", 8), WIRE_OK);
	assert_int_equal(wire_name_check(n256, 256), WIRE_ERR_NAME);
	assert_int_equal(wire_name_check("", 0), WIRE_ERR_NAME);
	assert_int_equal(wire_name_check(NULL, 0), WIRE_ERR_NAME);
	assert_int_equal(wire_name_check(".", 1), WIRE_ERR_NAME);
	assert_int_equal(wire_name_check("..", 2), WIRE_ERR_NAME);
	assert_int_equal(wire_name_check("a/b", 3), WIRE_ERR_NAME);
	assert_int_equal(wire_name_check("/", 1), WIRE_ERR_NAME);
	assert_int_equal(wire_name_check("a\0b", 3), WIRE_ERR_NAME);

	/* The same rules on every named op, encoding and decoding. */
	static const uint16_t named[] = { WIRE_OP_BIND, WIRE_OP_CREATE, WIRE_OP_LINK, WIRE_OP_UNLINK,
	                                  WIRE_OP_RENAME };
	struct { const char *s; uint16_t len; } bad[] = {
		{ ".", 1 }, { "..", 2 }, { "x/y", 3 }, { "x\0y", 3 }, { "", 0 }, { n256, 256 },
	};
	struct wire_op ops[64];
	size_t n = sample_ops(ops);

	for (size_t c = 0; c < ARRAY_SIZE(named); c++) {
		struct wire_op op = { 0 };
		uint8_t buf[2048];
		size_t len;

		for (size_t i = 0; i < n; i++)
			if (ops[i].code == named[c] && ops[i].name_len) {
				op = ops[i];
				break;
			}
		assert_int_equal(op.code, named[c]);
		for (size_t b = 0; b < ARRAY_SIZE(bad); b++) {
			struct wire_op o2 = op, got;
			struct wire_op_iter it;
			char why[256];

			o2.name = bad[b].s;
			o2.name_len = bad[b].len;
			assert_int_equal(wire_op_encode(&o2, buf, sizeof(buf), &len), WIRE_ERR_NAME);
			if (op.code == WIRE_OP_RENAME) {
				o2 = op;
				o2.name2 = bad[b].s;
				o2.name2_len = bad[b].len;
				assert_int_equal(wire_op_encode(&o2, buf, sizeof(buf), &len), WIRE_ERR_NAME);
			}
			/* Decoding: encode with a good name of that length, then write the bad bytes. */
			if (bad[b].len == 0 || bad[b].len > 255)
				continue;
			o2 = op;
			o2.name = "zzz";
			o2.name_len = bad[b].len;
			assert_int_equal(wire_op_encode(&o2, buf, sizeof(buf), &len), WIRE_OK);
			memcpy(buf + name_off(op.code), bad[b].s, bad[b].len);
			wire_op_iter_init(&it, buf, len, 1, 0);
			assert_int_equal(wire_op_next(&it, &got), -1);
			assert_int_equal(it.err, WIRE_ERR_NAME);
			wire_op_iter_explain(&it, why, sizeof(why));
			assert_non_null(strstr(why, "op 1 of 1"));
			assert_non_null(strstr(why, wire_code_str(op.code)));
			assert_non_null(strstr(why, "name"));
		}
	}
	/* Xattr names may hold '/', not NUL; the root is bound without a name. */
	struct wire_op x = { .seq = 1, .code = WIRE_OP_RMXATTR, .fid = 1, .name = "user.a\0", .name_len = 7 };
	uint8_t buf[600];
	size_t len;

	assert_int_equal(wire_op_encode(&x, buf, sizeof(buf), &len), WIRE_ERR_NAME);
	x.name_len = 0;
	assert_int_equal(wire_op_encode(&x, buf, sizeof(buf), &len), WIRE_ERR_NAME);
	x.code = WIRE_OP_SETXATTR;
	x.name = n256;
	x.name_len = 256;
	assert_int_equal(wire_op_encode(&x, buf, sizeof(buf), &len), WIRE_ERR_NAME);
	struct wire_op root = { .seq = 1, .code = WIRE_OP_BIND, .fid = 5, .arg = 0, .name = "a", .name_len = 1 };
	assert_int_equal(wire_op_encode(&root, buf, sizeof(buf), &len), WIRE_ERR_NAME);
}

/* Struct-level rules: what each code refuses. */
static void op_field_rules(void **st)
{
	struct wire_op ops[64];
	size_t n = sample_ops(ops);
	uint8_t buf[8192];
	size_t len;

	struct wire_op *by_code[WIRE_OP_END] = { NULL };
	for (size_t i = n; i-- > 0;)
		by_code[ops[i].code] = &ops[i];
#define REFUSE(code_, field, val, want) do { struct wire_op o = *by_code[code_]; o.field = (val); \
	assert_int_equal(wire_op_encode(&o, buf, sizeof(buf), &len), (want)); \
	assert_int_equal(wire_op_check(&o, NULL), (want)); } while (0)
	REFUSE(WIRE_OP_BIND, code, 0, WIRE_ERR_CODE);
	REFUSE(WIRE_OP_BIND, code, WIRE_OP_END, WIRE_ERR_CODE);
	REFUSE(WIRE_OP_BIND, seq, 0, WIRE_ERR_SEQ);
	REFUSE(WIRE_OP_BIND, flags, 1, WIRE_ERR_FLAGS);
	REFUSE(WIRE_OP_WRITE, flags, 8, WIRE_ERR_FLAGS);
	REFUSE(WIRE_OP_CREATE, flags, WIRE_OPF_FRESH, WIRE_ERR_FLAGS);   /* FRESH needs RESYNC */
	REFUSE(WIRE_OP_CREATE, flags, WIRE_OPF_DSYNC, WIRE_ERR_FLAGS);
	REFUSE(WIRE_OP_CREATE, flags, WIRE_OPF_RESYNC | WIRE_OPF_FRESH, WIRE_OK);
	REFUSE(WIRE_OP_LINK, flags, WIRE_OPF_RESYNC, WIRE_OK);
	REFUSE(WIRE_OP_LINK, flags, WIRE_OPF_FRESH, WIRE_ERR_FLAGS);
	REFUSE(WIRE_OP_SETATTR, flags, WIRE_OPF_RESYNC, WIRE_OK);
	REFUSE(WIRE_OP_TIMES, flags, WIRE_OPF_RESYNC, WIRE_ERR_FLAGS);
	REFUSE(WIRE_OP_BIND, fid, 0, WIRE_ERR_FID);
	REFUSE(WIRE_OP_BARRIER, fid, 1, WIRE_ERR_FID);
	REFUSE(WIRE_OP_BARRIER, dir, 1, WIRE_ERR_FID);
	REFUSE(WIRE_OP_SETGEN, fid, 1, WIRE_ERR_FID);
	REFUSE(WIRE_OP_SETGEN, arg, 1, WIRE_ERR_ARG);
	REFUSE(WIRE_OP_UNBIND, arg, 2, WIRE_ERR_ARG);
	REFUSE(WIRE_OP_CREATE, arg, 0, WIRE_ERR_ARG);
	REFUSE(WIRE_OP_CREATE, mode, 0644, WIRE_ERR_FIELD);             /* no type */
	REFUSE(WIRE_OP_CREATE, mode, S_IFREG | 010000 | 0644 | 0x10000, WIRE_ERR_FIELD);
	REFUSE(WIRE_OP_CREATE, rdev, 5, WIRE_ERR_FIELD);                /* regular file with rdev */
	REFUSE(WIRE_OP_CREATE, name2_len, 3, WIRE_ERR_FIELD);           /* target on a file */
	REFUSE(WIRE_OP_LINK, arg, 0, WIRE_ERR_ARG);
	REFUSE(WIRE_OP_UNLINK, arg, 2, WIRE_ERR_ARG);
	REFUSE(WIRE_OP_RENAME, arg, 0, WIRE_ERR_ARG);
	REFUSE(WIRE_OP_RENAME, rename_flags, 3, WIRE_ERR_FIELD);
	REFUSE(WIRE_OP_RENAME, rename_flags, 4, WIRE_ERR_FIELD);        /* WHITEOUT */
	REFUSE(WIRE_OP_WRITE, arg, (uint64_t)INT64_MAX, WIRE_ERR_ARG);
	REFUSE(WIRE_OP_TRUNCATE, arg, (uint64_t)INT64_MAX + 1, WIRE_ERR_ARG);
	REFUSE(WIRE_OP_FALLOCATE, fl_mode, 4, WIRE_ERR_FIELD);
	REFUSE(WIRE_OP_FALLOCATE, len, 0, WIRE_ERR_FIELD);
	REFUSE(WIRE_OP_FALLOCATE, len, (uint64_t)INT64_MAX, WIRE_ERR_FIELD);
	REFUSE(WIRE_OP_COPY, fid_in, 0, WIRE_ERR_FID);
	REFUSE(WIRE_OP_COPY, off_in, (uint64_t)INT64_MAX, WIRE_ERR_FIELD);
	REFUSE(WIRE_OP_COPY, len, 0, WIRE_ERR_FIELD);
	REFUSE(WIRE_OP_SETATTR, arg, 0, WIRE_ERR_ARG);
	REFUSE(WIRE_OP_SETATTR, arg, 1 << 3, WIRE_ERR_ARG);             /* SIZE goes as TRUNCATE */
	REFUSE(WIRE_OP_SETATTR, mode, 010000, WIRE_ERR_FIELD);
	REFUSE(WIRE_OP_TIMES, arg, WIRE_ATTR_MODE | WIRE_ATTR_MTIME, WIRE_ERR_ARG);
	REFUSE(WIRE_OP_TIMES, mode, 1, WIRE_ERR_FIELD);                 /* outside the mask */
	REFUSE(WIRE_OP_SETXATTR, arg, 3, WIRE_ERR_ARG);
	REFUSE(WIRE_OP_SETXATTR, data_len, WIRE_XATTR_VALUE_MAX + 1, WIRE_ERR_DATA_LEN);
	REFUSE(WIRE_OP_RMXATTR, arg, 1, WIRE_ERR_ARG);
	REFUSE(WIRE_OP_FSYNC, arg, 2, WIRE_ERR_ARG);
	REFUSE(WIRE_OP_FSYNCDIR, arg, 2, WIRE_ERR_ARG);
	REFUSE(WIRE_OP_HASHREQ, len, 0, WIRE_ERR_FIELD);
	REFUSE(WIRE_OP_HASHREQ, len, WIRE_DATA_MAX + 1, WIRE_ERR_FIELD);
	REFUSE(WIRE_OP_HASHREQ, block, 3 << 12, WIRE_ERR_FIELD);
	REFUSE(WIRE_OP_HASHREQ, block, 2048, WIRE_ERR_FIELD);
	REFUSE(WIRE_OP_HASHREQ, arg, 4096, WIRE_ERR_ARG);
	{
		struct wire_op o = *by_code[WIRE_OP_SETATTR];
		o.arg = WIRE_ATTR_UID;              /* the other fields are set: not 0 outside the mask */
		assert_int_equal(wire_op_encode(&o, buf, sizeof(buf), &len), WIRE_ERR_FIELD);
		o = *by_code[WIRE_OP_WRITE];
		o.data = NULL;
		assert_int_equal(wire_op_encode(&o, buf, sizeof(buf), &len), WIRE_ERR_DATA_LEN);
		o = *by_code[WIRE_OP_WRITE];
		assert_int_equal(wire_op_encode(&o, buf, wire_op_size(&o) - 1, &len), WIRE_ERR_NOSPACE);
	}
	/* Symlinks need a target; its own limit is 4095. */
	{
		struct wire_op o = { 0 };
		static char tgt[4096];

		for (size_t i = 0; i < n; i++)
			if (ops[i].code == WIRE_OP_CREATE && S_ISLNK(ops[i].mode))
				o = ops[i];
		memset(tgt, 't', sizeof(tgt));
		o.name2 = tgt;
		o.name2_len = 4095;
		assert_int_equal(wire_op_encode(&o, buf, sizeof(buf), &len), WIRE_OK);
		o.name2_len = 4096;
		assert_int_equal(wire_op_encode(&o, buf, sizeof(buf), &len), WIRE_ERR_NAME);
		o.name2_len = 0;
		assert_int_equal(wire_op_encode(&o, buf, sizeof(buf), &len), WIRE_ERR_NAME);
	}
#undef REFUSE
}

/* CREATE's MAYBE flag: only with RESYNC, never with FRESH, on CREATE only.
 * Checked at the struct level (encode, check) and by the decoder, which
 * must refuse the flags byte on its own. */
/* STASH carries a relative path: every component a file name. */
static void stash_paths(void **st)
{
	static const struct {
		const char *p;
		bool ok;
	} c[] = {
		{ "a", true }, { "a/b/c", true }, { "d i r/..x/.y", true },
		{ "", false }, { "/a", false }, { "a/", false }, { "a//b", false }, { ".", false },
		{ "..", false }, { "a/../b", false }, { "a/./b", false }, { "../a", false },
	};
	char long_name[300], long_path[WIRE_TARGET_MAX + 2];
	struct wire_op o = { .seq = 1, .code = WIRE_OP_STASH, .dir = 1, .fid = 7 };
	uint8_t buf[WIRE_OP_HDR_LEN + 2 + WIRE_TARGET_MAX + 1];
	size_t len;
	const char *w;

	(void)st;
	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		o.name = c[i].p;
		o.name_len = (uint16_t)strlen(c[i].p);
		assert_int_equal(wire_path_check(c[i].p, strlen(c[i].p)), c[i].ok ? WIRE_OK : WIRE_ERR_NAME);
		w = NULL;
		assert_int_equal(wire_op_check(&o, &w), c[i].ok ? WIRE_OK : WIRE_ERR_NAME);
		if (!c[i].ok)
			assert_non_null(strstr(w, "stash path"));
	}
	assert_int_equal(wire_path_check("a\0b", 3), WIRE_ERR_NAME);
	memset(long_name, 'n', 256);
	long_name[256] = 0;                             /* one component too long */
	assert_int_equal(wire_path_check(long_name, 256), WIRE_ERR_NAME);
	for (size_t i = 0; i < sizeof(long_path) - 1; i++)
		long_path[i] = i % 2 ? '/' : 'p';
	long_path[WIRE_TARGET_MAX] = 'p';               /* 4095 bytes, ends with a name */
	assert_int_equal(wire_path_check(long_path, WIRE_TARGET_MAX), WIRE_OK);
	assert_int_equal(wire_path_check(long_path, WIRE_TARGET_MAX + 1), WIRE_ERR_NAME);
	/* the decoder checks too, and fid 0 and an argument are refused */
	o.name = "x/y";
	o.name_len = 3;
	assert_int_equal(wire_op_encode(&o, buf, sizeof(buf), &len), WIRE_OK);
	buf[len - 2] = '/';                             /* "x//" */
	buf[len - 1] = '/';
	{
		struct wire_op_iter it;
		struct wire_op got;

		wire_op_iter_init(&it, buf, len, 1, 0);
		assert_int_equal(wire_op_next(&it, &got), -1);
		assert_int_equal(it.err, WIRE_ERR_NAME);
	}
	o.fid = 0;
	assert_int_equal(wire_op_check(&o, NULL), WIRE_ERR_FID);
	o.fid = 7;
	o.arg = 1;
	assert_int_equal(wire_op_check(&o, NULL), WIRE_ERR_ARG);
}

static void create_maybe_flags(void **st)
{
	struct wire_op ops[64], create = { 0 }, link = { 0 }, got;
	size_t n = sample_ops(ops), len;
	struct wire_op_iter it;
	uint8_t buf[600];
	char why[256];
	const char *w;
	struct {
		uint32_t flags;
		enum wire_err want;
		const char *text;
	} c[] = {
		{ WIRE_OPF_MAYBE, WIRE_ERR_FLAGS, "without RESYNC" },
		{ WIRE_OPF_FRESH | WIRE_OPF_MAYBE, WIRE_ERR_FLAGS, "without RESYNC" },
		{ WIRE_OPF_RESYNC | WIRE_OPF_FRESH | WIRE_OPF_MAYBE, WIRE_ERR_FLAGS, "FRESH with MAYBE" },
		{ WIRE_OPF_RESYNC | WIRE_OPF_MAYBE, WIRE_OK, NULL },
		{ WIRE_OPF_RESYNC | WIRE_OPF_FRESH | WIRE_OPF_ORIGIN, WIRE_OK, NULL },
		{ WIRE_OPF_RESYNC | WIRE_OPF_ORIGIN, WIRE_ERR_FLAGS, "ORIGIN without FRESH" },
		{ WIRE_OPF_ORIGIN << 1 | WIRE_OPF_RESYNC, WIRE_ERR_FLAGS, "unknown CREATE flags" },
	};

	for (size_t i = 0; i < n; i++) {
		if (ops[i].code == WIRE_OP_CREATE && !create.code)
			create = ops[i];
		if (ops[i].code == WIRE_OP_LINK && !link.code)
			link = ops[i];
	}
	assert_int_equal(create.code, WIRE_OP_CREATE);
	assert_int_equal(link.code, WIRE_OP_LINK);
	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		struct wire_op o = create;

		o.flags = c[i].flags;
		w = NULL;
		assert_int_equal(wire_op_check(&o, &w), c[i].want);
		assert_int_equal(wire_op_encode(&o, buf, sizeof(buf), &len), c[i].want);
		if (c[i].want == WIRE_OK) {
			/* round trip keeps the flags */
			wire_op_iter_init(&it, buf, len, 1, 0);
			assert_int_equal(wire_op_next(&it, &got), 1);
			assert_int_equal(got.flags, c[i].flags);
			assert_op_equal(&o, &got);
			continue;
		}
		assert_non_null(w);
		assert_non_null(strstr(w, c[i].text));
		/* the decoder: a good op whose flags byte is then made bad */
		o.flags = WIRE_OPF_RESYNC;
		assert_int_equal(wire_op_encode(&o, buf, sizeof(buf), &len), WIRE_OK);
		buf[11] = (uint8_t)c[i].flags;
		wire_op_iter_init(&it, buf, len, 1, 0);
		assert_int_equal(wire_op_next(&it, &got), -1);
		assert_int_equal(it.err, WIRE_ERR_FLAGS);
		wire_op_iter_explain(&it, why, sizeof(why));
		assert_non_null(strstr(why, "CREATE"));
		assert_non_null(strstr(why, c[i].text));
	}
	/* MAYBE belongs to CREATE: LINK (with or without RESYNC) and others refuse it */
	link.flags = WIRE_OPF_MAYBE;
	assert_int_equal(wire_op_check(&link, NULL), WIRE_ERR_FLAGS);
	assert_int_equal(wire_op_encode(&link, buf, sizeof(buf), &len), WIRE_ERR_FLAGS);
	link.flags = WIRE_OPF_RESYNC | WIRE_OPF_MAYBE;
	assert_int_equal(wire_op_check(&link, NULL), WIRE_ERR_FLAGS);
	link.flags = WIRE_OPF_RESYNC;
	assert_int_equal(wire_op_encode(&link, buf, sizeof(buf), &len), WIRE_OK);
	buf[11] = WIRE_OPF_RESYNC | WIRE_OPF_MAYBE;
	wire_op_iter_init(&it, buf, len, 1, 0);
	assert_int_equal(wire_op_next(&it, &got), -1);
	assert_int_equal(it.err, WIRE_ERR_FLAGS);
	for (size_t i = 0; i < n; i++) {
		struct wire_op o = ops[i];

		if (o.code == WIRE_OP_CREATE)
			continue;
		o.flags = WIRE_OPF_RESYNC | WIRE_OPF_MAYBE;
		assert_int_equal(wire_op_check(&o, NULL), WIRE_ERR_FLAGS);
	}
}

/* Writes an op header with any body_len, for bodies the encoder refuses. */
static size_t raw_op(uint8_t *p, uint64_t seq, uint16_t code, uint8_t flags, uint32_t body_len,
                     uint64_t fid, uint64_t arg)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(seq >> (56 - 8 * i));
	p[8] = (uint8_t)(code >> 8);
	p[9] = (uint8_t)code;
	p[10] = 0;
	p[11] = flags;
	for (int i = 0; i < 4; i++)
		p[12 + i] = (uint8_t)(body_len >> (24 - 8 * i));
	for (int i = 0; i < 8; i++) {
		p[16 + i] = (uint8_t)(fid >> (56 - 8 * i));
		p[24 + i] = (uint8_t)(arg >> (56 - 8 * i));
	}
	return WIRE_OP_HDR_LEN;
}

/* The decoder refuses on its own (not only because the encoder would). */
static void malformed_records(void **st)
{
	uint8_t buf[4096];
	struct wire_op op;
	struct wire_op_iter it;
	char why[256];
	struct { uint16_t code; uint8_t flags; uint32_t body_len; uint64_t fid, arg; enum wire_err want; } c[] = {
		{ 0, 0, 0, 1, 0, WIRE_ERR_CODE },
		{ WIRE_OP_END, 0, 0, 1, 0, WIRE_ERR_CODE },
		{ 0xffff, 0, 0, 1, 0, WIRE_ERR_CODE },
		{ WIRE_OP_UNBIND, 0, 1, 1, 0, WIRE_ERR_LEN },           /* body where none is */
		{ WIRE_OP_TRUNCATE, 0, 8, 1, 0, WIRE_ERR_LEN },
		{ WIRE_OP_FSYNC, 0, 0, 1, 2, WIRE_ERR_ARG },
		{ WIRE_OP_FALLOCATE, 0, 11, 1, 0, WIRE_ERR_LEN },
		{ WIRE_OP_FALLOCATE, 0, 13, 1, 0, WIRE_ERR_LEN },
		{ WIRE_OP_COPY, 0, 23, 1, 0, WIRE_ERR_LEN },
		{ WIRE_OP_SETATTR, 0, 16, 1, WIRE_ATTR_ATIME, WIRE_ERR_LEN },  /* TIMES' length */
		{ WIRE_OP_TIMES, 0, 28, 1, WIRE_ATTR_ATIME, WIRE_ERR_LEN },
		{ WIRE_OP_HASHREQ, 0, 4, 1, 0, WIRE_ERR_LEN },
		{ WIRE_OP_SETGEN, 0, 15, 0, 0, WIRE_ERR_LEN },
		{ WIRE_OP_BIND, 0, 1, 1, 2, WIRE_ERR_LEN },             /* half a name length */
		{ WIRE_OP_BARRIER, 0, 0, 7, 1, WIRE_ERR_FID },
		{ WIRE_OP_TRUNCATE, 1, 0, 1, 0, WIRE_ERR_FLAGS },
		{ WIRE_OP_TRUNCATE, 0, 0, 0, 0, WIRE_ERR_FID },
		{ WIRE_OP_TRUNCATE, 0, 100, 1, 0, WIRE_ERR_TRUNCATED }, /* body past the frame */
		{ WIRE_OP_WRITE, 0, 0xffffffff, 1, 0, WIRE_ERR_TRUNCATED },
	};

	memset(buf, 0, sizeof(buf));
	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		size_t len = raw_op(buf, 7, c[i].code, c[i].flags, c[i].body_len, c[i].fid, c[i].arg);

		len += c[i].body_len < 64 ? c[i].body_len : 0;
		if (c[i].want == WIRE_ERR_TRUNCATED)
			len = WIRE_OP_HDR_LEN + 10;
		wire_op_iter_init(&it, buf, len, 1, 0);
		assert_int_equal(wire_op_next(&it, &op), -1);
		assert_int_equal(it.err, c[i].want);
		assert_int_equal(it.index, 0);
		assert_non_null(it.why);
		/* Stays failed. */
		assert_int_equal(wire_op_next(&it, &op), -1);
		wire_op_iter_explain(&it, why, sizeof(why));
		assert_non_null(strstr(why, "op 1 of 1"));
	}
	/* Counts: fewer ops than announced, bytes after the last one, seqs that do not grow. */
	size_t len = raw_op(buf, 7, WIRE_OP_TRUNCATE, 0, 0, 1, 0);
	len += raw_op(buf + len, 8, WIRE_OP_TRUNCATE, 0, 0, 1, 0);
	wire_op_iter_init(&it, buf, len, 3, 0);
	assert_int_equal(wire_op_next(&it, &op), 1);
	assert_int_equal(wire_op_next(&it, &op), 1);
	assert_int_equal(wire_op_next(&it, &op), -1);
	assert_int_equal(it.err, WIRE_ERR_RECORDS);
	assert_int_equal(it.index, 2);
	wire_op_iter_init(&it, buf, len, 1, 0);
	assert_int_equal(wire_op_next(&it, &op), 1);
	assert_int_equal(wire_op_next(&it, &op), -1);
	assert_int_equal(it.err, WIRE_ERR_RECORDS);
	raw_op(buf + WIRE_OP_HDR_LEN, 7, WIRE_OP_TRUNCATE, 0, 0, 1, 0);
	wire_op_iter_init(&it, buf, len, 2, 0);
	assert_int_equal(wire_op_next(&it, &op), 1);
	assert_int_equal(wire_op_next(&it, &op), -1);
	assert_int_equal(it.err, WIRE_ERR_SEQ);
	assert_int_equal(it.index, 1);
	wire_op_iter_explain(&it, why, sizeof(why));
	assert_string_equal(why, "op 2 of 2 (seq 7, TRUNCATE): bad sequence number: seq not above the previous op's");
	raw_op(buf, 0, WIRE_OP_TRUNCATE, 0, 0, 1, 0);
	wire_op_iter_init(&it, buf, WIRE_OP_HDR_LEN, 1, 0);
	assert_int_equal(wire_op_next(&it, &op), -1);
	assert_int_equal(it.err, WIRE_ERR_SEQ);
	/* A CREATE whose mode says symlink but has no target. */
	{
		struct wire_op cr = { .seq = 1, .code = WIRE_OP_CREATE, .fid = 3, .arg = 2, .mode = S_IFREG | 0644,
		                      .name = "x", .name_len = 1 };
		assert_int_equal(wire_op_encode(&cr, buf, sizeof(buf), &len), WIRE_OK);
		buf[WIRE_OP_HDR_LEN + 2] = (S_IFLNK >> 8) & 0xff;
		wire_op_iter_init(&it, buf, len, 1, 0);
		assert_int_equal(wire_op_next(&it, &op), -1);
		assert_int_equal(it.err, WIRE_ERR_LEN);
	}
}

/* Every truncation of a valid OPS body fails cleanly (ASan: no read past it). */
static void every_truncation_fails(void **st)
{
	struct wire_op ops[64], op;
	uint8_t *full = malloc(1 << 16);
	size_t n = sample_ops(ops), len;
	struct wire_op_iter it;

	assert_non_null(full);
	len = encode_ops(ops, n, full, 1 << 16);
	for (size_t l = 0; l < len; l++) {
		uint8_t *cut = malloc(l ? l : 1);
		size_t got = 0;
		int r;

		memcpy(cut, full, l);
		wire_op_iter_init(&it, cut, l, (uint16_t)n, 0);
		while ((r = wire_op_next(&it, &op)) == 1) {
			/* What was returned lies inside the cut body. */
			if (op.data_len)
				assert_true(op.data >= cut && op.data + op.data_len <= cut + l);
			if (op.name_len)
				assert_true((const uint8_t *)op.name >= cut &&
				            (const uint8_t *)op.name + op.name_len <= cut + l);
			got++;
		}
		assert_int_equal(r, -1);
		assert_true(got < n);
		assert_int_equal(it.index, got);
		free(cut);
	}
	free(full);
}

/* A small deterministic PRNG: the fuzz loop is the same on every run. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* 20000 mutations of valid bodies through the decoders: no crash, no ASan
 * report, and whatever is accepted re-encodes to the very same bytes. */
static void fuzz_decoders(void **st)
{
	struct wire_op ops[64], op;
	uint8_t *full = malloc(1 << 16), *re = malloc(1 << 16);
	size_t n = sample_ops(ops), len;
	unsigned accepted_ops = 0, rejected = 0;

	assert_non_null(full);
	assert_non_null(re);
	len = encode_ops(ops, n, full, 1 << 16);
	for (int round = 0; round < 20000; round++) {
		size_t mlen = len, start = 0;
		uint8_t *m;
		struct wire_op_iter it;
		int r, muts = 1 + (int)(rng() % 4);

		/* Sometimes only a slice starting at an op boundary. */
		if (rng() % 4 == 0) {
			size_t skip = rng() % n, pos = 0;

			for (size_t i = 0; i < skip; i++)
				pos += wire_op_size(&ops[i]);
			start = pos;
			mlen = len - pos;
		}
		m = malloc(mlen + 64);
		assert_non_null(m);
		memcpy(m, full + start, mlen);
		for (int k = 0; k < muts; k++) {
			size_t at = mlen ? rng() % mlen : 0;

			switch (rng() % 6) {
			case 0:     /* flip a bit */
				if (mlen)
					m[at] ^= (uint8_t)(1u << (rng() % 8));
				break;
			case 1:     /* random byte */
				if (mlen)
					m[at] = (uint8_t)rng();
				break;
			case 2:     /* cut */
				mlen = at;
				break;
			case 3:     /* grow by up to 64 random bytes */
				for (size_t g = rng() % 64; g > 0 && mlen < len - start + 64; g--)
					m[mlen++] = (uint8_t)rng();
				break;
			case 4:     /* interesting value into an op header field (body_len, code) */
				if (mlen >= 16) {
					static const uint8_t vals[] = { 0, 1, 0x7f, 0x80, 0xff, 0x20 };
					m[8 + rng() % 8] = vals[rng() % ARRAY_SIZE(vals)];
				}
				break;
			case 5:     /* byte of a name or a length: small values */
				if (mlen)
					m[at] = (uint8_t)(rng() % 4 ? '/' : '.');
				break;
			}
		}
		/* Exactly mlen bytes: a copy ASan guards. */
		uint8_t *exact = malloc(mlen ? mlen : 1);
		assert_non_null(exact);
		memcpy(exact, m, mlen);
		free(m);
		wire_op_iter_init(&it, exact, mlen, (uint16_t)(1 + rng() % (n + 2)), 0);
		for (const uint8_t *at = it.p; (r = wire_op_next(&it, &op)) == 1; at = it.p) {
			size_t rl;

			/* Accepted means canonical: it re-encodes to the same bytes. */
			assert_int_equal(wire_op_check(&op, NULL), WIRE_OK);
			assert_int_equal(wire_op_encode(&op, re, 1 << 16, &rl), WIRE_OK);
			assert_true(at + rl <= exact + mlen);
			assert_memory_equal(re, at, rl);
			accepted_ops++;
		}
		rejected += r < 0;
		/* The other body decoders on the same bytes. */
		struct wire_ack a;
		struct wire_hello h;
		struct wire_hashes hs;
		struct wire_hdr hd;
		(void)wire_ack_decode(WIRE_ACK, exact, mlen, &a);
		(void)wire_ack_decode(WIRE_ERROR, exact, mlen, &a);
		(void)wire_hello_decode(exact, mlen, &h);
		(void)wire_hashes_decode(exact, mlen, &hs);
		if (mlen >= WIRE_HDR_LEN)
			(void)wire_open_hdr(exact, &hd);
		free(exact);
	}
	/* Both outcomes happened, so the loop tested something. */
	assert_true(accepted_ops > 1000);
	assert_true(rejected > 10000);
	/* Canonical form: an accepted single op re-encodes byte for byte. */
	for (size_t i = 0; i < n; i++) {
		size_t off = 0, rl;
		struct wire_op_iter it;

		for (size_t j = 0; j < i; j++)
			off += wire_op_size(&ops[j]);
		wire_op_iter_init(&it, full + off, wire_op_size(&ops[i]), 1, 0);
		assert_int_equal(wire_op_next(&it, &op), 1);
		assert_int_equal(wire_op_encode(&op, re, 1 << 16, &rl), WIRE_OK);
		assert_int_equal(rl, wire_op_size(&ops[i]));
		assert_memory_equal(re, full + off, rl);
	}
	free(full);
	free(re);
}

/* Mutated HELLO, ACK and HASHES bodies: no crash, and what is accepted
 * re-encodes to the same bytes. */
static void fuzz_bodies(void **st)
{
	struct wire_hello hi = { .version = WIRE_VERSION, .role = WIRE_ROLE_PRIM, .node = "node1",
	                         .cluster = "vms" }, ho;
	struct wire_ack a = { 9, 8, 7, 6, 8, 5, "applying x", 10 }, ao;
	uint8_t hashes[16 * 4] = { 7 };
	struct wire_hashes hs = { .seq = 3, .fid = 4, .off = 65536, .len = 4 * 4096 - 1, .block = 4096,
	                          .count = 4, .hashes = hashes }, hso;
	uint8_t valid[3][600], re[600];
	size_t vlen[3], rl;
	unsigned accepted = 0;

	assert_int_equal(wire_hello_encode(&hi, valid[0], sizeof(valid[0]), &vlen[0]), WIRE_OK);
	assert_int_equal(wire_ack_encode(WIRE_ACK, &a, valid[1], sizeof(valid[1]), &vlen[1]), WIRE_OK);
	assert_int_equal(wire_hashes_encode(&hs, valid[2], sizeof(valid[2]), &vlen[2]), WIRE_OK);
	for (int round = 0; round < 9000; round++) {
		int kind = round % 3;
		size_t mlen = vlen[kind];
		uint8_t m[700], *exact;
		enum wire_err e = WIRE_OK;

		memcpy(m, valid[kind], mlen);
		for (int k = 1 + (int)(rng() % 3); k > 0; k--) {
			size_t at = mlen ? rng() % mlen : 0;

			switch (rng() % 4) {
			case 0: if (mlen) m[at] ^= (uint8_t)(1u << (rng() % 8)); break;
			case 1: if (mlen) m[at] = (uint8_t)(rng() % 3 ? rng() % 4 : rng()); break;
			case 2: mlen = at; break;
			case 3: for (size_t g = rng() % 20; g > 0 && mlen < sizeof(m); g--) m[mlen++] = (uint8_t)rng(); break;
			}
		}
		exact = malloc(mlen ? mlen : 1);
		assert_non_null(exact);
		memcpy(exact, m, mlen);
		if (kind == 0 && wire_hello_decode(exact, mlen, &ho) == WIRE_OK)
			e = wire_hello_encode(&ho, re, sizeof(re), &rl);
		else if (kind == 1 && wire_ack_decode(WIRE_ACK, exact, mlen, &ao) == WIRE_OK)
			e = wire_ack_encode(WIRE_ACK, &ao, re, sizeof(re), &rl);
		else if (kind == 2 && wire_hashes_decode(exact, mlen, &hso) == WIRE_OK)
			e = wire_hashes_encode(&hso, re, sizeof(re), &rl);
		else
			rl = SIZE_MAX;
		if (rl != SIZE_MAX) {
			assert_int_equal(e, WIRE_OK);
			assert_int_equal(rl, mlen);
			assert_memory_equal(re, exact, mlen);
			accepted++;
		}
		free(exact);
	}
	assert_true(accepted > 100 && accepted < 8000);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Not a test: seal and open of 1 MiB bodies, in place, as the stream would. */
static int bench(void)
{
	struct pair p;
	uint8_t *frame = malloc(WIRE_FRAME_MAX), *body = malloc(WIRE_DATA_MAX);
	struct wire_hdr h;
	double t0, ts = 0, to = 0;
	int iters = 0;

	if (!frame || !body)
		return 1;
	for (size_t i = 0; i < WIRE_DATA_MAX; i++)
		body[i] = (uint8_t)(i * 31);
	pair_init(&p);
	for (double start = now_s(); now_s() - start < 3.0; iters++) {
		size_t fl;

		t0 = now_s();
		memcpy(frame + WIRE_HDR_LEN, body, WIRE_DATA_MAX);
		fl = wire_seal(&p.dtx, WIRE_LIST, 0, 0, frame + WIRE_HDR_LEN, WIRE_DATA_MAX, frame, WIRE_FRAME_MAX);
		ts += now_s() - t0;
		t0 = now_s();
		if (!fl || wire_open_hdr(frame, &h) || wire_open(&p.lrx, &h, frame + WIRE_HDR_LEN, frame + WIRE_HDR_LEN))
			return 1;
		to += now_s() - t0;
	}
	printf("1 MiB bodies, %d rounds: seal (with the copy in) %.0f MB/s, open %.0f MB/s, "
	       "seal+open %.0f MB/s\n", iters, iters * 1.048576 / ts, iters * 1.048576 / to,
	       iters * 1.048576 / (ts + to));
	pair_free(&p);
	free(frame);
	free(body);
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_code_and_string_named),
		cmocka_unit_test(key_derivation),
		cmocka_unit_test(ops_roundtrip_every_code),
		cmocka_unit_test(zero_copy_head),
		cmocka_unit_test(documented_aead),
		cmocka_unit_test(frames_roundtrip_every_type),
		cmocka_unit_test(big_write_and_limits),
		cmocka_unit_test(header_bounds),
		cmocka_unit_test(every_bit_flip_rejected),
		cmocka_unit_test(replay_reorder_reflection),
		cmocka_unit_test(hello_clear_and_hello),
		cmocka_unit_test(ack_and_hashes_rules),
		cmocka_unit_test(name_rules),
		cmocka_unit_test(op_field_rules),
		cmocka_unit_test(create_maybe_flags),
		cmocka_unit_test(stash_paths),
		cmocka_unit_test(malformed_records),
		cmocka_unit_test(every_truncation_fails),
		cmocka_unit_test(fuzz_decoders),
		cmocka_unit_test(fuzz_bodies),
	};

	if (argc > 1 && strcmp(argv[1], "--bench") == 0)
		return bench();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
