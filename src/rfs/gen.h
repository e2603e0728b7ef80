/* Generations (docs/design/rfs.md §5.2): how two nodes that meet again tell
 * which of them holds the newer copy, and whether a dirty record can bring
 * the other one up to date. Pure (no I/O) except rfs_gen_load/store.
 *
 * Each node keeps:
 *   C  its current generation: a random non-zero u64, 0 on a node that
 *      never had one (fresh);
 *   B  the C at which its dirty record began, 0 = no record;
 *   H  the two C's before the current one, H[0] the latest, 0 = empty;
 *   outdated (+ since, wall clock ms, for messages): the peer went on with
 *      acknowledged writes this node lacks;
 *   clean_stop: the last stop was clean. It does not change the relation:
 *      the caller uses it to decide whether HOT files need a look.
 *
 * Invariants (rfs_gen_check, enforced by decode and load):
 *   C = 0 => B = 0 and H empty; B != 0 => B != C; H[1] != 0 => H[0] != 0;
 *   not outdated => outdated_since_ms = 0; outdated_since_ms <= INT64_MAX.
 *
 * HELLO (src/rfs/wire.h): outdated and clean_stop travel as the frame's
 * WIRE_HELLO_OUTDATED and WIRE_HELLO_CLEAN_STOP flags; the 64 gens bytes
 * are, big-endian:
 *     0  format u8 (= RFS_GEN_FORMAT) | rsv u8[7] (0)
 *     8  C u64
 *    16  B u64
 *    24  H[0] u64
 *    32  H[1] u64
 *    40  outdated_since_ms u64 (0 unless the OUTDATED flag is set)
 *    48  rsv u8[16] (0)
 *
 * Meta file (state_dir/rfs/meta), JSON, u64 generations as 16 hex digits:
 *   {"format": 1, "c": "…", "b": "…", "h": ["…", "…"], "outdated": false,
 *    "outdated_since_ms": 0, "clean_stop": false}
 * Every key is required and no other is accepted. */
#ifndef VIGIL_RFS_GEN_H
#define VIGIL_RFS_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rfs/wire.h"

#define RFS_GEN_FORMAT 1
#define RFS_GEN_LEN WIRE_GENS_LEN
#define RFS_GEN_HIST 2
#define RFS_GEN_META_MAX 4096           /* bytes of meta file read at most */

struct rfs_gen {
	uint64_t c;
	uint64_t b;
	uint64_t h[RFS_GEN_HIST];
	bool outdated;
	uint64_t outdated_since_ms;     /* wall_ms() when it became outdated */
	bool clean_stop;
};

/* 0, or -1 with the broken invariant in err (may be NULL). */
int rfs_gen_check(const struct rfs_gen *g, char *err, size_t errlen);

/* ---- transitions: each returns 0, or -1 leaving *g unchanged ---- */

/* Going ALONE, PRIM without a peer, or taking over:
 * H <- C (shifting H; a C of 0 is not history), if B = 0 then B <- C,
 * C <- rnd. -1 if rnd is 0 or already C, B or in H: draw again. The caller
 * stores the result before any further acknowledged mutation. */
int rfs_gen_go_alone(struct rfs_gen *g, uint64_t rnd);

/* SECOND after a resync (SETGEN): C <- prim_c, B <- 0, not outdated.
 * H is left alone: it names this node's own past. -1 if prim_c is 0 (a
 * PRIM goes alone before it serves, so 0 cannot name a synced copy). */
int rfs_gen_resync_done(struct rfs_gen *second, uint64_t prim_c);

/* PRIM once SECOND confirmed SETGEN: B <- 0 (its record is truncated). */
void rfs_gen_record_cleared(struct rfs_gen *prim);

/* An admin starts this node whatever it may lack: like going alone (so a
 * peer with changes of its own later meets it as a split, not as older),
 * and it is no longer outdated. */
int rfs_gen_forcestart(struct rfs_gen *g, uint64_t rnd);

/* What forcestart gives up, for the log and the reply, from the state
 * before it, e.g. "data not up to date since 2026-11-23 20:41:07.123;
 * changes on node2 after that are missing here". */
void rfs_gen_forcestart_msg(const struct rfs_gen *before, const char *peer, char *buf,
                            size_t len);

/* Marks this node outdated; a node already outdated keeps its first
 * since, which is how long it has been stale. */
void rfs_gen_set_outdated(struct rfs_gen *g, uint64_t now_wall_ms);

/* ---- relation at handshake ---- */

enum rfs_relation {
	RFS_REL_EQUAL = 1,      /* same copy: only HOT/UNSURE files resync */
	RFS_REL_A_NEWER,        /* incremental from A's record (A.B = P.C) */
	RFS_REL_P_NEWER,        /* incremental from P's record (P.B = A.C) */
	RFS_REL_SPLIT,          /* both changed since a common point (A.B = P.B != 0) */
	RFS_REL_A_NEWER_FULL,   /* A is newer (P.C in A.H), no record: full compare */
	RFS_REL_P_NEWER_FULL,   /* P is newer (A.C in P.H), no record: full compare */
	RFS_REL_UNRELATED,      /* nothing known: full compare, PRIM wins */
};
const char *rfs_relation_str(enum rfs_relation r);
/* The same relation seen from the other side (A_* <-> P_*). */
enum rfs_relation rfs_relation_mirror(enum rfs_relation r);
/* True for A_NEWER and A_NEWER_FULL. */
bool rfs_relation_a_newer(enum rfs_relation r);
bool rfs_relation_p_newer(enum rfs_relation r);

/* a = this node, p = the peer. The first matching row wins, safest first:
 *  1. either side breaks an invariant                 -> UNRELATED
 *  2. A.C = P.C != 0                                  -> EQUAL
 *     (two fresh nodes, C = 0, are UNRELATED: their dirs were never compared)
 *  3. A.B = P.B != 0                                  -> SPLIT
 *  4. A.B = P.C (B != 0) / P.B = A.C                  -> A_NEWER / P_NEWER;
 *     both at once is a contradiction                 -> UNRELATED
 *  5. P.C in A.H / A.C in P.H (non-zero)              -> A_NEWER_FULL / P_NEWER_FULL;
 *     both at once                                    -> UNRELATED
 *  6. otherwise                                       -> UNRELATED
 * Then outdated: an outdated node knows the peer may hold acknowledged
 * writes it lacks, so it is never named newer. A verdict naming it newer
 * turns into one with no newer side that still keeps both sides' changes:
 * A_NEWER (or P_NEWER) becomes SPLIT (both records stay valid: the newer
 * side's from its B, the other's from the C it is at), and *_NEWER_FULL
 * becomes UNRELATED. EQUAL stays EQUAL (no side is newer), and a verdict
 * naming the non-outdated side newer stands.
 * Rows 3-5 cannot overlap for gens that pass rfs_gen_check; the order only
 * matters for a contradiction, which then gets the safer verdict.
 * rfs_gen_relation(p, a) is always rfs_relation_mirror(rfs_gen_relation(a, p)). */
enum rfs_relation rfs_gen_relation(const struct rfs_gen *a, const struct rfs_gen *p);

/* Whether a reintegration merges PRIM's record into SECOND's copy instead
 * of setting the copy aside (docs/design/rfs.md §5.5): PRIM is newer by
 * its record (A_NEWER from PRIM's side), says the record is complete
 * (record, its HELLO flag), and SECOND changed nothing itself (B = 0).
 * Both sides call it with the same arguments in the same order, so they
 * cannot decide differently. */
bool rfs_gen_incremental(const struct rfs_gen *prim, const struct rfs_gen *second, bool record);
/* Whether a reintegration compares SECOND's whole copy with PRIM's by
 * block hashes and merges what differs (docs/design/rfs.md §5.6,
 * `sync full`): SECOND asks for it (verify, its HELLO flag), changed
 * nothing itself (B = 0), and PRIM's copy is the same or newer by its own
 * line (EQUAL or A_NEWER from PRIM's side). Same rule as above for both
 * sides. */
bool rfs_gen_verify(const struct rfs_gen *prim, const struct rfs_gen *second, bool verify);

/* ---- HELLO bytes ---- */

/* Writes the 64 bytes and sets or clears WIRE_HELLO_OUTDATED and
 * WIRE_HELLO_CLEAN_STOP in *hello_flags (other bits untouched). -1 if g
 * breaks an invariant (a peer would refuse it). */
int rfs_gen_encode(const struct rfs_gen *g, uint8_t out[RFS_GEN_LEN], uint32_t *hello_flags);
/* Reads the peer's 64 bytes and the two flags (other flag bits are not
 * looked at). 0, or -1 with what is wrong in err; *out is then zeroed. */
int rfs_gen_decode(const uint8_t in[RFS_GEN_LEN], uint32_t hello_flags, struct rfs_gen *out,
                   char *err, size_t errlen);

/* ---- meta file ---- */

/* The meta file of a replication state dir (DIR/meta) into out. 0, or -1
 * if DIR is not absolute or the path does not fit. */
int rfs_gen_meta_path(const char *state_dir, char *out, size_t len);
/* The verify mark of a state dir (DIR/verify): while it exists, this
 * node's SECOND asks for a compare of its whole copy (rfs_gen_verify). */
int rfs_gen_verify_path(const char *state_dir, char *out, size_t len);
/* Sets (durably: write, fsync, rename, fsync dir) or removes the mark.
 * 0, or -1 (logged). */
int rfs_gen_verify_mark(const char *path, bool on);
/* 0 loaded; 1 the file does not exist: a fresh node, *out all zero;
 * -1 unreadable or corrupt: err names the file and what is wrong, *out
 * zeroed. Never treat -1 as fresh: that would forget a dirty record. */
int rfs_gen_load(const char *path, struct rfs_gen *out, char *err, size_t errlen);
/* tmp + fsync + rename + fsync dir. 0, or -1 (logged). */
int rfs_gen_store(const char *path, const struct rfs_gen *g);

#endif
