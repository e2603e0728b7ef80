/* The replication stream of vigil-rfs, as bytes: frames, their AEAD, and
 * the records inside them. Pure: no I/O, no allocation except the OpenSSL
 * cipher contexts of wire_tx/wire_rx. docs/design/rfs.md §4.3 is the plan;
 * this header is the exact format. Everything is big-endian.
 *
 * Connection start (in clear, each side sends one, dialer first):
 *   hello_clear = magic "VRH1" u32 | version u8 | nonce[16]            (21 bytes)
 * Nonces come from random_bytes(), fresh per connection. Then each side
 * derives its two direction keys (wire_key_derive) and every further byte
 * is a frame:
 *   frame = hdr(24) | body(len, encrypted) | tag(16)
 *   hdr   = magic "VRF1" u32 | type u8 | flags u8 | nops u16 | len u32 |
 *           frame_no u64 | rsv u32 (0)
 * AES-128-GCM, hdr as AAD, IV = 0 u32 | frame_no u64. frame_no is 1 for a
 * direction's first frame and grows by one. A receiver takes only the next
 * one, so a frame cannot be replayed, reordered, or reflected back (the
 * other direction has another key). The first frame of each direction is
 * HELLO. Any error ends the connection (the stream layer's rule); a failed
 * open leaves the rx context as it was. frame_no is judged before the tag,
 * so REPLAY/REORDER may name a forged header: fatal either way.
 *
 *   key(direction) = HKDF-SHA256(ikm = proto_derive_key(secret, "rfs", cluster),
 *                                salt = none (RFC 5869: 32 zero bytes),
 *                                info = nonce_dialer | nonce_listener | direction,
 *                                L = 16)
 *   direction = 'D' for dialer -> listener, 'L' for listener -> dialer.
 *
 * Frame bodies by type (the header checks these lengths before any body
 * byte is read):
 *   HELLO   version u16 | role u8 | rsv u8 | flags u32 | dirs_hash[32] |
 *           gens[64] | node_len u8 | node | cluster_len u8 | cluster
 *           (names 1..63 bytes, no NUL; nops 0)
 *   OPS     nops >= 1 op records, exactly filling len (below)
 *   ACK     recv_seq u64 | applied_seq u64 | durable_seq u64 | ckpt_seq u64 |
 *   ERROR   err_seq u64 | err_no u32 | text_len u16 | text (<= 512 bytes, no NUL)
 *           ERROR is an ACK with err_no != 0 and a text: the last word
 *           before the sender drops the stream.
 *   LIST    opaque here (stage 5 defines it); nops free
 *   HASHES  seq u64 | fid u64 | off u64 | len u32 | block u32 | dir u8 |
 *           rsv[3] | count u32 | count x 16-byte hash (count = ceil(len/block))
 *   PING    empty
 * The header flags byte is not interpreted by the codec (authenticated,
 * passed through): the stream layer owns it.
 *
 * Op record (inside OPS):
 *   seq u64 | code u16 | dir u8 | flags u8 | body_len u32 | fid u64 | arg u64 | body
 * Bodies by code ("name" = u16 len | bytes; times are signed ns since the
 * epoch; "pmtime" = the mtime the named entry's directory has after the op):
 *   BIND      fid=inode  arg=parent fid  name. arg 0 = the root of dir, name empty.
 *   UNBIND    fid        arg=0           -
 *   CREATE    fid=new    arg=parent      mode u32 | uid u32 | gid u32 | rdev u64 |
 *                                        mtime_ns | pmtime | name | [target name]
 *             the file type comes from mode; target (1..4095 bytes, no NUL)
 *             iff a symlink; rdev 0 unless a device.
 *   LINK      fid=inode  arg=new parent  pmtime (of arg) | name
 *   UNLINK    fid=parent arg=0, or 1 for rmdir           pmtime | name
 *   RENAME    fid=parent arg=new parent  rename_flags u32 | pmtime | new_pmtime |
 *                                        name | new name
 *   WRITE     fid        arg=offset      data (0..1 MiB); flags DSYNC SYNC RESYNC
 *   TRUNCATE  fid        arg=size        -
 *   FALLOCATE fid        arg=offset      fl_mode u32 | len u64
 *   COPY      fid=out    arg=off_out     fid_in u64 | off_in u64 | len u64
 *   SETATTR   fid        arg=mask        mode u32 | uid u32 | gid u32 | atime_ns | mtime_ns
 *             mask of WIRE_ATTR_*; size goes as TRUNCATE; fields outside the
 *             mask are 0; mode holds permission bits only.
 *   TIMES     fid        arg=mask        atime_ns | mtime_ns   (mask ATIME|MTIME)
 *   SETXATTR  fid        arg=0|CREATE|REPLACE     name (xattr: 1..255, no NUL) | value (rest, <= 64 KiB)
 *   RMXATTR   fid        arg=0           name
 *   FSYNC     fid        arg=datasync 0|1  -
 *   FSYNCDIR  fid        arg=datasync 0|1  -
 *   BARRIER   fid=0,dir=0 arg=id         -
 *   HASHREQ   fid        arg=offset      len u32 (1..1 MiB) | block u32 (power of 2,
 *                                        4 KiB..1 MiB; offset a multiple of it)
 *   SETGEN    fid=0,dir=0 arg=0          gen u64 | bitmap u64 (meaning: gen.c, stage 4)
 * Rules: seq != 0 and strictly growing inside a body (and above the
 * iterator's prev_seq); fid != 0 except for BARRIER and SETGEN; op flags
 * as listed with WIRE_OPF_*; file names 1..255 bytes, no '/' or NUL, not "." or "..";
 * offsets + lengths stay below 2^63. dir < number of dirs is the
 * applier's check (the codec does not know the dirs). */
#ifndef VIGIL_RFS_WIRE_H
#define VIGIL_RFS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define WIRE_VERSION 1
#define WIRE_NONCE_LEN 16
#define WIRE_KEY_LEN 16
#define WIRE_HDR_LEN 24
#define WIRE_TAG_LEN 16
#define WIRE_BODY_MAX (2u << 20)
#define WIRE_FRAME_MAX (WIRE_HDR_LEN + WIRE_BODY_MAX + WIRE_TAG_LEN)
#define WIRE_HELLO_CLEAR_LEN 21

#define WIRE_OP_HDR_LEN 32
#define WIRE_DATA_MAX (1u << 20)        /* WRITE data */
#define WIRE_XATTR_VALUE_MAX 65536
#define WIRE_NAME_MAX 255
#define WIRE_TARGET_MAX 4095
#define WIRE_TEXT_MAX 512
#define WIRE_HASH_LEN 16
#define WIRE_DIRS_HASH_LEN 32
#define WIRE_GENS_LEN 64
#define WIRE_HELLO_NAME_MAX 63
#define WIRE_ACK_FIXED_LEN 46
#define WIRE_HASHES_FIXED_LEN 40
#define WIRE_HELLO_FIXED_LEN 106        /* with the two name lengths, without the names */

enum wire_type {
	WIRE_HELLO = 1,
	WIRE_OPS,
	WIRE_ACK,
	WIRE_LIST,
	WIRE_HASHES,
	WIRE_ERROR,
	WIRE_PING,
	WIRE_TYPE_END
};
const char *wire_type_str(unsigned type);

enum wire_code {
	WIRE_OP_BIND = 1,
	WIRE_OP_UNBIND,
	WIRE_OP_CREATE,
	WIRE_OP_LINK,
	WIRE_OP_UNLINK,
	WIRE_OP_RENAME,
	WIRE_OP_WRITE,
	WIRE_OP_TRUNCATE,
	WIRE_OP_FALLOCATE,
	WIRE_OP_COPY,
	WIRE_OP_SETATTR,
	WIRE_OP_TIMES,
	WIRE_OP_SETXATTR,
	WIRE_OP_RMXATTR,
	WIRE_OP_FSYNC,
	WIRE_OP_FSYNCDIR,
	WIRE_OP_BARRIER,
	WIRE_OP_HASHREQ,
	WIRE_OP_SETGEN,
	WIRE_OP_STASH,
	WIRE_OP_END
};
const char *wire_code_str(unsigned code);

/* Op flags: DSYNC and SYNC on WRITE; RESYNC on WRITE, and on the walk's
 * CREATE, LINK and SETATTR (SECOND merges the walk into the copy it has:
 * a RESYNC SETATTR of a directory ends its listing, and what it holds that
 * the walk did not list is removed); FRESH with RESYNC on CREATE (the
 * object is new to SECOND: whatever holds its name there is replaced; a
 * CREATE without FRESH names an object SECOND must already hold); MAYBE
 * with RESYNC on CREATE, not with FRESH (the name is in a directory whose
 * changes PRIM may not have recorded before a crash: SECOND keeps an object
 * of the same type with one link, a symlink with the same target, creates
 * it if missing, and replaces anything else); ORIGIN with FRESH on a
 * regular file's or a directory's CREATE (the object was renamed while
 * SECOND was away, and a STASH before the walk named where SECOND had it:
 * SECOND moves what it stashed for this fid into the name, if anything,
 * instead of making an empty one; PRIM then compares it by block hashes).
 *
 * STASH (reintegration only, before the walk): name is a path relative to
 * the dir's root where SECOND may hold fid's object under an older name;
 * SECOND moves a regular file with one link or a directory found there
 * into its stash, for a CREATE with ORIGIN to take. */
enum {
	WIRE_OPF_DSYNC = 1 << 0,        /* O_DSYNC/RWF_DSYNC write: fdatasync, ack durable */
	WIRE_OPF_SYNC = 1 << 1,         /* O_SYNC: fsync, ack durable */
	WIRE_OPF_RESYNC = 1 << 2,       /* sent by reintegration, not by the application */
	WIRE_OPF_FRESH = 1 << 3,        /* CREATE: replace whatever holds the name */
	WIRE_OPF_MAYBE = 1 << 4,        /* CREATE: keep an object of the same type, else
	                                 * replace (PRIM's record lost this name's history) */
	WIRE_OPF_ORIGIN = 1 << 5,       /* CREATE with FRESH: take what STASH put aside */
};
/* SETATTR/TIMES mask: the values of RFS_ATTR_* (SIZE is not allowed). */
enum {
	WIRE_ATTR_MODE = 1 << 0,
	WIRE_ATTR_UID = 1 << 1,
	WIRE_ATTR_GID = 1 << 2,
	WIRE_ATTR_ATIME = 1 << 4,
	WIRE_ATTR_MTIME = 1 << 5,
};
#define WIRE_UNLINK_RMDIR 1
#define WIRE_RENAME_NOREPLACE 1         /* = RENAME_NOREPLACE */
#define WIRE_RENAME_EXCHANGE 2          /* = RENAME_EXCHANGE */
#define WIRE_XATTR_CREATE 1             /* = XATTR_CREATE */
#define WIRE_XATTR_REPLACE 2            /* = XATTR_REPLACE */

enum wire_role { WIRE_ROLE_STANDBY = 1, WIRE_ROLE_SECOND, WIRE_ROLE_PRIM, WIRE_ROLE_END };
const char *wire_role_str(unsigned role);
enum {
	WIRE_HELLO_OUTDATED = 1 << 0,
	WIRE_HELLO_CLEAN_STOP = 1 << 1,
	WIRE_HELLO_RECORD = 1 << 2,     /* PRIM: its record of changes since its B is complete */
	WIRE_HELLO_VERIFY = 1 << 3,     /* SECOND: compare its whole copy by hashes (sync full) */
	WIRE_HELLO_FLAGS_KNOWN = (1 << 4) - 1,
};

enum wire_err {
	WIRE_OK,
	/* header and frame */
	WIRE_ERR_MAGIC,
	WIRE_ERR_TYPE,
	WIRE_ERR_TOO_LONG,
	WIRE_ERR_RESERVED,
	WIRE_ERR_FRAME_LEN,
	WIRE_ERR_NOPS,
	WIRE_ERR_REPLAY,
	WIRE_ERR_REORDER,
	WIRE_ERR_REFLECTED,
	WIRE_ERR_AUTH,
	WIRE_ERR_CRYPTO,
	WIRE_ERR_VERSION,
	/* records */
	WIRE_ERR_TRUNCATED,
	WIRE_ERR_RECORDS,
	WIRE_ERR_CODE,
	WIRE_ERR_LEN,
	WIRE_ERR_FLAGS,
	WIRE_ERR_SEQ,
	WIRE_ERR_FID,
	WIRE_ERR_ARG,
	WIRE_ERR_FIELD,
	WIRE_ERR_NAME,
	WIRE_ERR_DATA_LEN,
	WIRE_ERR_TEXT,
	/* encoding */
	WIRE_ERR_NOSPACE,
	WIRE_ERR__COUNT
};
const char *wire_err_str(enum wire_err e);

/* ---- keys and AEAD ---- */

struct wire_key {
	uint8_t k[WIRE_KEY_LEN];
};

/* direction: 'D' (dialer -> listener) or 'L'. 0, or -1 with a log line. */
int wire_key_derive(const uint8_t *secret, size_t secret_len, const char *cluster,
                    const uint8_t nonce_dialer[WIRE_NONCE_LEN],
                    const uint8_t nonce_listener[WIRE_NONCE_LEN], char direction,
                    struct wire_key *out);
void wire_key_wipe(struct wire_key *k);

struct evp_cipher_ctx_st;

/* One direction each. Not thread-safe: one sender, one receiver thread. */
struct wire_tx {
	struct evp_cipher_ctx_st *ctx;
	uint64_t next;                  /* frame_no of the next frame sealed */
};
struct wire_rx {
	struct evp_cipher_ctx_st *ctx;
	uint64_t next;                  /* frame_no accepted next */
	bool have_own;
	struct wire_key own;            /* our sending key: names a reflected frame */
};

/* 0, or -1 (out of memory; logged). The key is copied. */
int wire_tx_init(struct wire_tx *tx, const struct wire_key *key);
void wire_tx_free(struct wire_tx *tx);
/* own_tx_key (may be NULL) is only used to tell WIRE_ERR_REFLECTED from
 * WIRE_ERR_AUTH after a frame failed. */
int wire_rx_init(struct wire_rx *rx, const struct wire_key *key, const struct wire_key *own_tx_key);
void wire_rx_free(struct wire_rx *rx);

struct wire_hdr {
	uint8_t type;
	uint8_t flags;
	uint16_t nops;
	uint32_t len;
	uint64_t frame_no;
	uint8_t raw[WIRE_HDR_LEN];      /* the AAD, as received */
};

/* Seals one frame into out: returns its length (WIRE_HDR_LEN + len +
 * WIRE_TAG_LEN), or 0 on a bad type/length for the type, outcap too small,
 * frame numbers exhausted or a cipher failure. body may be exactly
 * out + WIRE_HDR_LEN (encrypted in place); otherwise it must not overlap
 * out. Consumes a frame_no only on success. */
size_t wire_seal(struct wire_tx *tx, uint8_t type, uint8_t flags, uint16_t nops,
                 const uint8_t *body, size_t len, uint8_t *out, size_t outcap);
/* The same over pieces (so an op's data need not be copied first); each
 * piece is either exactly at its place in out or does not overlap out. */
size_t wire_seal_iov(struct wire_tx *tx, uint8_t type, uint8_t flags, uint16_t nops,
                     const struct iovec *iov, int iovcnt, uint8_t *out, size_t outcap);

/* Checks a received header before its body is read: magic, type, rsv,
 * len <= WIRE_BODY_MAX and within the type's bounds, nops for the type.
 * Then read hdr->len + WIRE_TAG_LEN more bytes. */
enum wire_err wire_open_hdr(const uint8_t hdr[WIRE_HDR_LEN], struct wire_hdr *out);
/* Checks frame_no (REPLAY below the expected one, REORDER above), then
 * the tag; writes hdr->len plain bytes into plain_out (which may be
 * body_and_tag itself). On failure plain_out is wiped. */
enum wire_err wire_open(struct wire_rx *rx, const struct wire_hdr *hdr,
                        const uint8_t *body_and_tag, uint8_t *plain_out);

/* ---- clear hello ---- */

struct wire_hello_clear {
	uint8_t version;
	uint8_t nonce[WIRE_NONCE_LEN];
};
void wire_hello_clear_encode(const struct wire_hello_clear *h, uint8_t out[WIRE_HELLO_CLEAR_LEN]);
/* WIRE_ERR_MAGIC, or WIRE_ERR_VERSION with out->version set (to name it). */
enum wire_err wire_hello_clear_decode(const uint8_t in[WIRE_HELLO_CLEAR_LEN],
                                      struct wire_hello_clear *out);

/* ---- frame bodies ---- */

struct wire_hello {
	uint16_t version;
	uint8_t role;                   /* enum wire_role */
	uint32_t flags;                 /* WIRE_HELLO_* */
	uint8_t dirs_hash[WIRE_DIRS_HASH_LEN];
	uint8_t gens[WIRE_GENS_LEN];    /* opaque here: gen.c */
	char node[WIRE_HELLO_NAME_MAX + 1];
	char cluster[WIRE_HELLO_NAME_MAX + 1];
};
enum wire_err wire_hello_encode(const struct wire_hello *h, uint8_t *out, size_t cap, size_t *len);
enum wire_err wire_hello_decode(const uint8_t *body, size_t len, struct wire_hello *out);

struct wire_ack {
	uint64_t recv_seq;              /* frames read and verified up to this op */
	uint64_t applied_seq;           /* <= recv_seq */
	uint64_t durable_seq;           /* <= applied_seq */
	uint64_t ckpt_seq;              /* <= applied_seq */
	uint64_t err_seq;               /* the op that failed, 0 if none */
	uint32_t err_no;
	const char *text;               /* points into the body; not NUL-terminated */
	uint16_t text_len;
};
/* type is WIRE_ACK or WIRE_ERROR. */
enum wire_err wire_ack_encode(uint8_t type, const struct wire_ack *a, uint8_t *out, size_t cap,
                              size_t *len);
enum wire_err wire_ack_decode(uint8_t type, const uint8_t *body, size_t len, struct wire_ack *out);

struct wire_hashes {
	uint64_t seq;                   /* of the HASHREQ answered */
	uint64_t fid;
	uint64_t off;
	uint32_t len;
	uint32_t block;
	uint8_t dir;
	uint32_t count;
	const uint8_t *hashes;          /* count * WIRE_HASH_LEN bytes, into the body */
};
enum wire_err wire_hashes_encode(const struct wire_hashes *h, uint8_t *out, size_t cap, size_t *len);
enum wire_err wire_hashes_decode(const uint8_t *body, size_t len, struct wire_hashes *out);

/* ---- ops ---- */

/* Decoded ops point into the body they came from (names are not
 * NUL-terminated: print with "%.*s"). Fields a code does not use are 0. */
struct wire_op {
	uint64_t seq;
	uint16_t code;
	uint8_t dir;
	uint8_t flags;
	uint64_t fid;
	uint64_t arg;
	uint32_t mode, uid, gid;        /* CREATE, SETATTR */
	uint64_t rdev;                  /* CREATE */
	int64_t atime_ns;               /* SETATTR, TIMES */
	int64_t mtime_ns;               /* SETATTR, TIMES, CREATE (the new object) */
	int64_t pmtime_ns;              /* CREATE LINK UNLINK RENAME */
	int64_t new_pmtime_ns;          /* RENAME */
	uint32_t rename_flags;          /* RENAME */
	uint32_t fl_mode;               /* FALLOCATE */
	uint64_t len;                   /* FALLOCATE, COPY, HASHREQ */
	uint64_t fid_in, off_in;        /* COPY */
	uint32_t block;                 /* HASHREQ */
	uint64_t gen, bitmap;           /* SETGEN */
	const char *name;               /* BIND CREATE LINK UNLINK RENAME SETXATTR RMXATTR;
	                                 * STASH: a relative path (wire_path_check) */
	uint16_t name_len;
	const char *name2;              /* RENAME: new name; CREATE: symlink target */
	uint16_t name2_len;
	const uint8_t *data;            /* WRITE data, SETXATTR value: always last in the op */
	uint32_t data_len;
};

/* WIRE_OK, or WIRE_ERR_NAME: a file name's rules (1..255, no '/' or NUL,
 * not "." or ".."). */
enum wire_err wire_name_check(const char *name, size_t len);
/* WIRE_OK, or WIRE_ERR_NAME: a relative path's rules (1..4095 bytes, no
 * NUL, not starting with '/', each component a name by wire_name_check). */
enum wire_err wire_path_check(const char *path, size_t len);

/* Full size of the encoded op (0 if the code is unknown). */
size_t wire_op_size(const struct wire_op *op);
/* Validates and writes the op: *len = bytes written. */
enum wire_err wire_op_encode(const struct wire_op *op, uint8_t *out, size_t cap, size_t *len);
/* The same without the trailing data_len bytes of op->data (the caller
 * sends them as the next piece, see wire_seal_iov). */
enum wire_err wire_op_encode_head(const struct wire_op *op, uint8_t *out, size_t cap, size_t *len);
/* Validation only; why (may be NULL) gets a static explanation. */
enum wire_err wire_op_check(const struct wire_op *op, const char **why);

struct wire_op_iter {
	const uint8_t *p;
	size_t left;
	uint16_t nops;
	uint16_t index;                 /* of the next op, or of the bad one after an error */
	uint64_t prev_seq;
	enum wire_err err;
	const char *why;                /* static detail of err */
	uint16_t err_code;              /* the bad op's code, 0 if not read */
	uint64_t err_seq;
};
/* prev_seq: the last seq seen on the stream (0: none): every op must be above it. */
void wire_op_iter_init(struct wire_op_iter *it, const uint8_t *body, size_t len, uint16_t nops,
                       uint64_t prev_seq);
/* 1 with *op set, 0 after the last op, -1 at a malformed op (it->err,
 * it->index, it->why; wire_op_iter_explain formats them). Stays failed. */
int wire_op_next(struct wire_op_iter *it, struct wire_op *op);
/* "op 3 of 7 (seq 120, WRITE): data longer than 1 MiB" into buf. */
void wire_op_iter_explain(const struct wire_op_iter *it, char *buf, size_t len);

#endif
