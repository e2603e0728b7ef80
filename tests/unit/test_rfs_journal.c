/* The dirty record on disk: codec, replay cut at every byte and at every
 * flipped bit, durability of HOT, compaction, CLEAR, recovery from a failed
 * write, many threads. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/log.h"
#include "common/util.h"
#include "rfs/journal.h"

#define K 4096ull

static char tmpdir[PATH_MAX];
static struct rlimit saved_fsize;

#define PATHF(buf, ...) assert_true(snprintf((buf), sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))

/* ---- canonical text of a set: one sorted line per file */

struct lines {
	char **v;
	size_t n;
};

static int line_cb(struct dirty_file *f, void *arg)
{
	struct lines *l = arg;
	char *s = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&s, &len);

	assert_non_null(m);
	fprintf(m, "%u/%" PRIu64 " %s%s%s", f->dir, f->ino, f->flags & DIRTY_HOT ? "H" : "-",
	        f->flags & DIRTY_UNSURE ? "U" : "-", f->flags & DIRTY_WHOLE ? "W" : "-");
	for (uint32_t i = 0; i < f->n; i++)
		fprintf(m, " %" PRIx64 "-%" PRIx64, f->iv[i].start, f->iv[i].end);
	fclose(m);
	l->v = realloc(l->v, (l->n + 1) * sizeof(*l->v));
	assert_non_null(l->v);
	l->v[l->n++] = s;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *lines_join(struct lines *l)
{
	char *s = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&s, &len);

	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), cmp_str);
	for (size_t i = 0; i < l->n; i++) {
		fprintf(m, "%s\n", l->v[i]);
		free(l->v[i]);
	}
	free(l->v);
	fclose(m);
	return s;
}

/* Of a set, or (set NULL) of a journal's. */
static char *snap(struct dirty_set *s, struct journal *j)
{
	struct lines l = { NULL, 0 };

	if (s)
		dirty_foreach(s, line_cb, &l);
	else
		journal_foreach(j, line_cb, &l);
	return lines_join(&l);
}

static void expect_snap(char *got, const char *want)
{
	assert_string_equal(got, want);
	free(got);
}

/* ---- file helpers */

static uint8_t *slurp(const char *path, size_t *len)
{
	char *buf;

	assert_int_equal(read_file(path, 64 << 20, &buf, len), 0);
	return (uint8_t *)buf;
}

static void spit(const char *path, const uint8_t *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, len), (ssize_t)len);
	close(fd);
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

/* A journal at tmpdir/name, empty. */
static struct journal *fresh(char *path, size_t size, const char *name, uint64_t compact)
{
	struct journal *j;

	assert_true(snprintf(path, size, "%s/%s", tmpdir, name) < (int)size);
	unlink(path);
	j = journal_open(path, compact);
	assert_non_null(j);
	return j;
}

/* Closes j and replays its file. */
static struct journal *reopen(struct journal *j, const char *path, uint64_t compact)
{
	journal_close(j);
	j = journal_open(path, compact);
	assert_non_null(j);
	return j;
}

/* ---- a known sequence of operations, applied to a journal or a model */

enum opk { O_HOT, O_COOL, O_SURE, O_UNSURE, O_EXT, O_WHOLE, O_FORGET, O_CLEAR };

struct op {
	enum opk k;
	uint8_t dir;
	uint64_t ino, off, len;
};

static const struct op seq_ops[] = {
	{ O_HOT, 0, 1, 0, 0 },
	{ O_EXT, 0, 1, 0, 10000 },
	{ O_HOT, 0, 2, 0, 0 },
	{ O_EXT, 0, 2, 8192, 1 },
	{ O_HOT, 0, 1, 0, 0 },                  /* already hot: no record */
	{ O_COOL, 0, 1, 0, 0 },
	{ O_HOT, 1, 1, 0, 0 },
	{ O_UNSURE, 1, 1, 0, 0 },
	{ O_COOL, 1, 1, 0, 0 },                 /* stays unsure */
	{ O_WHOLE, 0, 3, 0, 0 },
	{ O_HOT, 0, 4, 0, 0 },
	{ O_SURE, 0, 4, 0, 0 },                 /* leaves the set */
	{ O_EXT, 0, 5, DIRTY_LIMIT - K, K },
	{ O_HOT, 0, 6, 0, 0 },
	{ O_CLEAR, 0, 0, 0, 0 },                /* 0/2 and 0/6 stay hot */
	{ O_HOT, 0, 7, 0, 0 },
	{ O_EXT, 0, 7, 0, 1 },
	{ O_FORGET, 0, 2, 0, 0 },
	{ O_EXT, 0, 6, 3 * K, 100 },
	{ O_COOL, 0, 6, 0, 0 },
	{ O_HOT, 0, 8, 0, 0 },
	{ O_EXT, 0, 8, 1ull << 40, 1 },
};
#define NOPS (sizeof(seq_ops) / sizeof(seq_ops[0]))

/* The journal call and the dirty.h call each op stands for. */
static const struct {
	int (*jn)(struct journal *j, uint8_t dir, uint64_t ino);
	int (*dn)(struct dirty_set *s, uint8_t dir, uint64_t ino);
} op_fns[] = {
	[O_HOT] = { journal_hot, dirty_hot }, [O_COOL] = { journal_cool, dirty_cool },
	[O_SURE] = { journal_sure, dirty_sure }, [O_UNSURE] = { journal_unsure, dirty_unsure },
	[O_WHOLE] = { journal_whole, dirty_whole }, [O_FORGET] = { journal_forget, dirty_forget },
};

static void op_journal(struct journal *j, const struct op *o)
{
	if (o->k == O_EXT)
		assert_int_equal(journal_ext(j, o->dir, o->ino, o->off, o->len), 0);
	else if (o->k == O_CLEAR)
		assert_int_equal(journal_clear(j), 0);
	else
		assert_int_equal(op_fns[o->k].jn(j, o->dir, o->ino), 0);
}

static void op_model(struct dirty_set *s, const struct op *o)
{
	if (o->k == O_EXT)
		dirty_add(s, o->dir, o->ino, o->off, o->len);
	else if (o->k == O_CLEAR)
		dirty_clear(s, true);
	else
		op_fns[o->k].dn(s, o->dir, o->ino);
}

/* Writes seq_ops to a fresh journal at path, flushing after each, so
 * ends[i] is the file size once op i is on disk. */
static void build_seq(const char *path, uint64_t ends[NOPS])
{
	struct journal *j;

	unlink(path);
	j = journal_open(path, 0);
	assert_non_null(j);
	assert_int_equal(file_size(path), 0);
	for (size_t i = 0; i < NOPS; i++) {
		op_journal(j, &seq_ops[i]);
		assert_int_equal(journal_flush(j), 0);
		ends[i] = file_size(path);
	}
	journal_close(j);
}

/* What a replay of the first len bytes must give: the ops whose records
 * are complete within them, then HOT -> UNSURE. */
static char *model_upto(const uint64_t ends[NOPS], size_t len)
{
	struct dirty_set *m = dirty_new();
	char *s;

	for (size_t i = 0; i < NOPS && ends[i] <= len; i++)
		op_model(m, &seq_ops[i]);
	dirty_hot_to_unsure(m);
	s = snap(m, NULL);
	dirty_free(m);
	return s;
}

static bool same_file(const struct op *a, const struct op *b)
{
	return a->dir == b->dir && a->ino == b->ino;
}

/* Nothing invented: each file present was named by an op on disk (the
 * first *arg ops). */
static int invented_cb(struct dirty_file *f, void *arg)
{
	size_t n = *(size_t *)arg;

	for (size_t i = 0; i < n; i++)
		if (seq_ops[i].dir == f->dir && seq_ops[i].ino == f->ino)
			return 0;
	return 1;
}

/* The promises of replay, checked directly rather than through the model:
 * a HOT on disk and not cooled is UNSURE; an extent on disk and not
 * forgotten or cleared is there; every file present was named on disk. */
static void check_promises(struct dirty_set *got, const uint64_t ends[NOPS], size_t len)
{
	size_t n = 0;

	while (n < NOPS && ends[n] <= len)
		n++;
	for (size_t i = 0; i < n; i++) {
		const struct op *o = &seq_ops[i];
		struct dirty_file *f = dirty_find(got, o->dir, o->ino);
		bool undone = false;

		for (size_t k = i + 1; k < n; k++) {
			const struct op *l = &seq_ops[k];

			if (o->k == O_HOT && same_file(o, l) &&
			    (l->k == O_COOL || l->k == O_SURE || l->k == O_FORGET))
				undone = true;
			if (o->k == O_EXT && ((same_file(o, l) && l->k == O_FORGET) || l->k == O_CLEAR))
				undone = true;
		}
		if (undone)
			continue;
		if (o->k == O_HOT) {
			assert_non_null(f);
			assert_true(f->flags & DIRTY_UNSURE);
			assert_false(f->flags & DIRTY_HOT);
		} else if (o->k == O_EXT) {
			bool covered = false;

			assert_non_null(f);
			for (uint32_t v = 0; v < f->n; v++)
				covered |= f->iv[v].start <= o->off && o->off < f->iv[v].end;
			assert_true(covered || (f->flags & DIRTY_WHOLE));
		}
	}
	assert_int_equal(dirty_foreach(got, invented_cb, &n), 0);
}

/* Replays len bytes of data: the good length and the set must be these
 * (want NULL: any set), and with ends, the promises must hold. */
static void expect_replay(const uint8_t *data, size_t len, size_t good, const char *want,
                          const uint64_t *ends)
{
	struct dirty_set *s = dirty_new();
	struct journal_replay r;

	assert_int_equal(journal_replay_buf(data, len, s, &r), 0);
	assert_int_equal(r.good, good);
	assert_true(good == len ? r.cut == NULL : r.cut != NULL);
	if (ends)
		check_promises(s, ends, len);
	if (want)
		expect_snap(snap(s, NULL), want);
	dirty_free(s);
}

/* ---- tests */

static void test_crc_and_codec(void **state)
{
	uint8_t b[JOURNAL_REC_MAX * 3];
	struct dirty_set *s = dirty_new();
	struct journal_replay r;
	size_t n = 0;

	assert_int_equal(journal_crc32c("123456789", 9), 0xe3069283u);
	assert_int_equal(journal_crc32c("", 0), 0);
	assert_int_equal(journal_encode(b, JREC_HOT, 3, 0x0102030405060708ull, 0, 0), 18);
	/* big-endian len = 10 (type + dir + ino), then type, dir, ino */
	assert_memory_equal(b, "\0\0\0\x0a", 4);
	assert_memory_equal(b + 8, "\x01\x03\x01\x02\x03\x04\x05\x06\x07\x08", 10);
	n = 18;
	assert_int_equal(journal_encode(b + n, JREC_EXT, 3, 9, 5 * K, 1), JOURNAL_REC_MAX);
	n += JOURNAL_REC_MAX;
	assert_int_equal(journal_encode(b + n, JREC_CLEAR, 0, 0, 0, 0), 9);
	n += 9;
	assert_int_equal(journal_replay_buf(b, n, s, &r), 0);
	assert_null(r.cut);
	assert_int_equal(r.good, n);
	assert_int_equal(r.records, 3);
	/* the CLEAR kept the hot file, as HOT, which replay made UNSURE */
	assert_int_equal(r.unsure, 1);
	expect_snap(snap(s, NULL), "3/72623859790382856 -U-\n");
	for (int t = JREC_HOT; t <= JREC_BASE; t++)
		assert_string_not_equal(journal_rec_str((enum journal_rec)t), "?");
	assert_string_equal(journal_rec_str((enum journal_rec)0), "?");
	dirty_free(s);
}

/* Rewrites the CRC of the record at b as the writer computes it: over the
 * len field, then type and payload. */
static void recrc(uint8_t *b)
{
	uint32_t rl = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
	uint8_t tmp[4 + 64];
	uint32_t c;

	assert_true(rl <= 64);
	memcpy(tmp, b, 4);
	memcpy(tmp + 4, b + JOURNAL_HDR_LEN, rl);
	c = journal_crc32c(tmp, 4 + rl);
	for (int i = 0; i < 4; i++)
		b[4 + i] = (uint8_t)(c >> (24 - 8 * i));
}

/* Replay of b stops at once, for this reason. */
static void expect_cut(const uint8_t *b, size_t len, const char *why)
{
	struct dirty_set *s = dirty_new();
	struct journal_replay r;

	assert_int_equal(journal_replay_buf(b, len, s, &r), 0);
	assert_string_equal(r.cut, why);
	assert_int_equal(r.good, 0);
	assert_int_equal(r.records, 0);
	assert_null(dirty_find(s, 0, 1));
	dirty_free(s);
}

static void test_bad_records(void **state)
{
	uint8_t b[64];
	struct dirty_set *s = dirty_new();
	struct journal_replay r;
	size_t n = journal_encode(b, JREC_WHOLE, 0, 1, 0, 0);

	/* the helper agrees with the writer */
	memcpy(b + 32, b, n);
	recrc(b + 32);
	assert_memory_equal(b, b + 32, n);
	/* an unknown type with a good CRC */
	b[8] = 99;
	recrc(b);
	expect_cut(b, n, "unknown record type");
	/* a known type with the wrong length (good CRC): HOT with 10 bytes */
	journal_encode(b, JREC_EXT, 0, 1, 0, 1);
	b[8] = JREC_HOT;
	b[3] = 11;
	recrc(b);
	expect_cut(b, JOURNAL_HDR_LEN + 11, "wrong length for the record type");
	/* a length beyond any record */
	b[3] = JOURNAL_REC_MAX;
	recrc(b);
	expect_cut(b, sizeof(b), "bad record length");
	/* a header cut short, a body cut short */
	n = journal_encode(b, JREC_HOT, 0, 1, 0, 0);
	expect_cut(b, 7, "short record header");
	expect_cut(b, n - 1, "short record");
	/* zeros (a pre-extended tail): bad length at once */
	memset(b, 0, sizeof(b));
	expect_cut(b, sizeof(b), "bad record length");
	/* an EXT past 2^63 with a good CRC: the file was written, so WHOLE */
	n = journal_encode(b, JREC_EXT, 0, 5, DIRTY_LIMIT, 1);
	assert_int_equal(journal_replay_buf(b, n, s, &r), 0);
	assert_null(r.cut);
	expect_snap(snap(s, NULL), "0/5 --W\n");
	dirty_free(s);
}

/* Every prefix of a journal replays to exactly the records complete in it:
 * no HOT lost, nothing invented. Also through journal_open, which must cut
 * the file so a later append is not hidden behind the torn tail. */
static void test_cut_at_every_byte(void **state)
{
	char path[PATH_MAX], ppath[PATH_MAX];
	uint64_t ends[NOPS];
	uint8_t *data;
	size_t len;

	PATHF(path, "%s/cut", tmpdir);
	PATHF(ppath, "%s/prefix", tmpdir);
	build_seq(path, ends);
	data = slurp(path, &len);
	assert_int_equal(len, ends[NOPS - 1]);
	log_init("test_rfs_journal", true, LOG_LVL_ERROR);      /* one warning per cut */
	for (size_t l = 0; l <= len; l++) {
		struct journal *j;
		char *want = model_upto(ends, l);
		size_t good = 0;

		for (size_t i = 0; i < NOPS; i++)
			if (ends[i] <= l)
				good = ends[i];
		/* good == l (a cut exactly between records) means no cut */
		expect_replay(data, l, good, want, ends);
		spit(ppath, data, l);
		j = journal_open(ppath, 0);
		assert_non_null(j);
		expect_snap(snap(NULL, j), want);
		/* appended after the cut, and found again */
		assert_int_equal(journal_hot(j, 9, 9), 0);
		j = reopen(j, ppath, 0);
		assert_int_equal(journal_flags(j, 9, 9), DIRTY_UNSURE);
		journal_close(j);
		free(want);
	}
	log_init("test_rfs_journal", true, LOG_LVL_WARN);
	free(data);
}

/* A flipped bit anywhere in record k cuts the replay at k's start. */
static void test_flipped_bit(void **state)
{
	char path[PATH_MAX], logdir[PATH_MAX], *logtext, needle[64];
	uint64_t ends[NOPS];
	const size_t k = NOPS / 2;
	uint8_t *data;
	size_t len, loglen;
	struct journal *j;
	char *want;

	PATHF(path, "%s/flip", tmpdir);
	PATHF(logdir, "%s/logs", tmpdir);
	build_seq(path, ends);
	data = slurp(path, &len);
	assert_true(ends[k] > ends[k - 1]);     /* record k is a real record */
	want = model_upto(ends, ends[k - 1]);
	for (uint64_t byte = ends[k - 1]; byte < ends[k]; byte++)
		for (int bit = 0; bit < 8; bit++) {
			data[byte] ^= (uint8_t)(1 << bit);
			expect_replay(data, len, ends[k - 1], want, NULL);
			data[byte] ^= (uint8_t)(1 << bit);
		}
	/* journal_open logs the cut with its byte offset, then compacts */
	data[ends[k - 1] + 12] ^= 0x10;
	spit(path, data, len);
	assert_int_equal(log_open_files(logdir, 1 << 20), 0);
	j = journal_open(path, 0);
	log_close_files();
	assert_non_null(j);
	expect_snap(snap(NULL, j), want);
	journal_close(j);
	PATHF(logdir, "%s/logs/module.log", tmpdir);
	assert_int_equal(read_file(logdir, 1 << 20, &logtext, &loglen), 0);
	PATHF(needle, "cut at byte %" PRIu64 " of %zu: bad CRC", ends[k - 1], len);
	assert_non_null(strstr(logtext, needle));
	free(logtext);
	free(data);
	data = slurp(path, &len);
	expect_replay(data, len, len, want, NULL);
	free(data);
	free(want);
}

static void test_round_trip_and_hot_fast(void **state)
{
	char path[PATH_MAX];
	struct journal_stats st, st2;
	struct journal *j;

	j = fresh(path, sizeof(path), "rt", 0);
	assert_int_equal(journal_hot(j, 0, 1), 0);
	/* the HOT is on disk when journal_hot returns */
	assert_int_equal(file_size(path), 18);
	journal_stats(j, &st);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(journal_hot(j, 0, 1), 0);
	journal_stats(j, &st2);
	assert_int_equal(st2.syncs, st.syncs);
	assert_int_equal(file_size(path), 18);
	/* buffered records stay in memory until a flush */
	assert_int_equal(journal_ext(j, 0, 1, 5 * K + 1, 2 * K), 0);
	assert_int_equal(journal_ext(j, 0, 1, 5 * K, 10), 0);   /* inside: no record */
	assert_int_equal(journal_whole(j, 2, 77), 0);
	assert_int_equal(journal_unsure(j, 0, 3), 0);
	assert_int_equal(journal_ext(j, 0, 4, DIRTY_LIMIT, 1), 0);     /* impossible: WHOLE */
	assert_int_equal(file_size(path), 18);
	assert_int_equal(journal_flush(j), 0);
	assert_int_equal(file_size(path), 18 + 34 + 3 * 18);
	journal_stats(j, &st);
	assert_int_equal(journal_flush(j), 0);  /* nothing new: no I/O */
	journal_stats(j, &st2);
	assert_int_equal(st2.syncs, st.syncs);
	assert_int_equal(journal_flags(j, 0, 1), DIRTY_HOT);
	assert_int_equal(journal_flags(j, 0, 9), -1);
	assert_int_equal(journal_bytes(j, NULL, NULL), 3 * K);
	expect_snap(snap(NULL, j), "0/1 H-- 5000-8000\n0/3 -U-\n0/4 --W\n2/77 --W\n");
	j = reopen(j, path, 0);
	expect_snap(snap(NULL, j), "0/1 -U- 5000-8000\n0/3 -U-\n0/4 --W\n2/77 --W\n");
	/* close flushes what is buffered */
	assert_int_equal(journal_sure(j, 0, 1), 0);
	assert_int_equal(journal_forget(j, 2, 77), 0);
	j = reopen(j, path, 0);
	expect_snap(snap(NULL, j), "0/1 --- 5000-8000\n0/3 -U-\n0/4 --W\n");
	/* journal_truncate is memory only: the file replays to more, never less */
	assert_int_equal(journal_ext(j, 0, 5, 0, 8 * K), 0);
	assert_int_equal(journal_ext(j, 0, 6, 0, 8 * K), 0);
	assert_int_equal(journal_truncate(j, 0, 5, K), 0);
	assert_int_equal(journal_truncate(j, 0, 6, 0), 0);
	expect_snap(snap(NULL, j), "0/1 --- 5000-8000\n0/3 -U-\n0/4 --W\n0/5 --- 0-1000\n");
	j = reopen(j, path, 0);
	expect_snap(snap(NULL, j), "0/1 --- 5000-8000\n0/3 -U-\n0/4 --W\n0/5 --- 0-8000\n0/6 --- 0-8000\n");
	journal_close(j);
}

static void test_compaction(void **state)
{
	char path[PATH_MAX];
	struct journal_stats st;
	struct journal *j;
	char *before;
	unsigned seed = 7;

	j = fresh(path, sizeof(path), "compact", 2048);
	for (int i = 0; i < 3000; i++) {
		static const enum opk kinds[] = { O_HOT, O_COOL, O_FORGET, O_UNSURE, O_EXT, O_EXT, O_EXT };
		struct op o = { kinds[rand_r(&seed) % 7], 0, (uint64_t)(rand_r(&seed) % 40),
		                (uint64_t)(rand_r(&seed) % 1000) * K, K };

		op_journal(j, &o);
		if (i % 10 == 0)
			assert_int_equal(journal_flush(j), 0);
	}
	assert_int_equal(journal_flush(j), 0);
	journal_stats(j, &st);
	assert_true(st.compactions >= 2);
	assert_false(st.broken);
	/* no HOT left, so the replayed set must be the same exactly */
	for (uint64_t ino = 0; ino < 40; ino++)
		assert_int_equal(journal_cool(j, 0, ino), 0);
	before = snap(NULL, j);
	assert_true(strlen(before) > 100);
	assert_int_equal(journal_compact(j), 0);
	/* the image is the set: one record per flag or interval */
	{
		struct dirty_count c;

		journal_count(j, &c);
		journal_stats(j, &st);
		assert_int_equal(st.file_bytes, file_size(path));
		assert_int_equal(st.file_bytes, c.ivals * 34 + (c.unsure + c.whole) * 18);
	}
	j = reopen(j, path, 2048);
	expect_snap(snap(NULL, j), before);
	journal_close(j);
	assert_null(strstr(before, "H"));
	free(before);
	PATHF(path, "%s/compact.new", tmpdir);
	assert_int_equal(access(path, F_OK), -1);
}

static void test_clear(void **state)
{
	char path[PATH_MAX];
	struct journal *j;

	j = fresh(path, sizeof(path), "clear", 0);
	assert_int_equal(journal_ext(j, 0, 1, 0, K), 0);
	assert_int_equal(journal_whole(j, 0, 2), 0);
	assert_int_equal(journal_hot(j, 0, 3), 0);
	assert_int_equal(journal_ext(j, 0, 3, 0, K), 0);
	assert_int_equal(journal_unsure(j, 0, 3), 0);
	assert_int_equal(journal_clear(j), 0);
	/* the hot file stays hot (a write may be in flight), nothing else */
	expect_snap(snap(NULL, j), "0/3 H--\n");
	j = reopen(j, path, 0);
	expect_snap(snap(NULL, j), "0/3 -U-\n");
	assert_int_equal(journal_sure(j, 0, 3), 0);
	assert_int_equal(journal_ext(j, 0, 4, 0, K), 0);
	assert_int_equal(journal_clear(j), 0);
	expect_snap(snap(NULL, j), "");
	j = reopen(j, path, 0);
	expect_snap(snap(NULL, j), "");
	journal_close(j);
}

/* A write that fails half way (file size limit) leaves a torn record: the
 * journal must not append behind it, must fail journal_hot while it cannot
 * make a HOT durable, and must recover by rewriting once it can. */
static void test_write_failure(void **state)
{
	char path[PATH_MAX];
	struct rlimit lim;
	struct journal_stats st;
	struct journal *j;
	uint8_t *data;
	size_t len;

	j = fresh(path, sizeof(path), "fail", 0);
	for (uint64_t ino = 0; ino < 100; ino++)
		assert_int_equal(journal_hot(j, 0, ino), 0);
	assert_int_equal(file_size(path), 100 * 18);
	signal(SIGXFSZ, SIG_IGN);
	lim = saved_fsize;
	lim.rlim_cur = 100 * 18 + 30;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(journal_hot(j, 0, 100), 0);    /* fits */
	assert_int_equal(journal_hot(j, 0, 101), -1);   /* torn; rewrite too big */
	assert_int_equal(journal_hot(j, 0, 101), -1);   /* still not durable */
	assert_int_equal(journal_hot(j, 0, 5), 0);      /* durable before: no I/O */
	journal_stats(j, &st);
	assert_true(st.broken);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved_fsize), 0);
	signal(SIGXFSZ, SIG_DFL);
	/* what is on disk now ends in a torn record */
	data = slurp(path, &len);
	expect_replay(data, len, 101 * 18, NULL, NULL);
	free(data);
	assert_int_equal(journal_hot(j, 0, 101), 0);
	assert_int_equal(journal_hot(j, 0, 102), 0);
	journal_stats(j, &st);
	assert_false(st.broken);
	j = reopen(j, path, 0);
	for (uint64_t ino = 0; ino <= 102; ino++)
		assert_int_equal(journal_flags(j, 0, ino), DIRTY_UNSURE);
	journal_close(j);
}

#define NTHREADS 8
#define PER_THREAD 300

struct worker {
	struct journal *j;
	int id;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	for (uint64_t k = 0; k < PER_THREAD; k++) {
		uint64_t ino = 1000 * (uint64_t)(w->id + 1) + k;

		if (journal_hot(w->j, 0, ino) < 0 || journal_hot(w->j, 0, 0) < 0)
			return (void *)1;
		if (journal_ext(w->j, 0, ino, k * K, 1) < 0)
			return (void *)1;
		if (k % 3 == 0 && journal_cool(w->j, 0, ino) < 0)
			return (void *)1;
		if (k % 50 == 0 && journal_flush(w->j) < 0)
			return (void *)1;
	}
	return NULL;
}

static void test_threads(void **state)
{
	char path[PATH_MAX];
	pthread_t t[NTHREADS];
	struct worker w[NTHREADS];
	struct dirty_count c;
	struct journal_stats st;
	struct journal *j;

	/* small threshold: compactions run between the threads' syncs */
	j = fresh(path, sizeof(path), "threads", 8192);
	for (int i = 0; i < NTHREADS; i++) {
		w[i].j = j;
		w[i].id = i;
		assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		void *rv;

		pthread_join(t[i], &rv);
		assert_null(rv);
	}
	journal_count(j, &c);
	assert_int_equal(c.files, NTHREADS * PER_THREAD + 1);
	assert_int_equal(c.hot, NTHREADS * (PER_THREAD - PER_THREAD / 3) + 1);
	journal_stats(j, &st);
	assert_true(st.compactions > 0);
	/* concurrent callers shared syncs */
	assert_true(st.syncs <= NTHREADS * PER_THREAD + 1);
	j = reopen(j, path, 8192);
	journal_count(j, &c);
	assert_int_equal(c.files, NTHREADS * PER_THREAD + 1);
	assert_int_equal(c.unsure, NTHREADS * (PER_THREAD - PER_THREAD / 3) + 1);
	assert_int_equal(c.ivals, NTHREADS * PER_THREAD);
	journal_close(j);
}

/* ---- BASE, the in-memory journal, hot files under way and their cooling */

#define REC_ID (JOURNAL_HDR_LEN + 1 + 9)        /* HOT, COOL, BASE, ...: 18 bytes */
#define REC_CLEAR (JOURNAL_HDR_LEN + 1)         /* 9 bytes */
#define REC_EXT (JOURNAL_HDR_LEN + 1 + 25)      /* 34 bytes */

/* The replay of a journal's file, pure: its base and its set. */
static uint64_t file_base(const char *path, char **set)
{
	struct dirty_set *s = dirty_new();
	struct journal_replay r;
	uint8_t *data;
	size_t len;

	data = slurp(path, &len);
	assert_int_equal(journal_replay_buf(data, len, s, &r), 0);
	assert_null(r.cut);
	free(data);
	if (set)
		*set = snap(s, NULL);
	dirty_free(s);
	return r.base;
}

/* journal_replay_buf: the last BASE wins, a CLEAR voids it, BASE leaves
 * the set alone. */
static void test_base_replay(void **state)
{
	uint8_t b[JOURNAL_REC_MAX * 8];
	struct dirty_set *s;
	struct journal_replay r;
	size_t n = 0;

	n += journal_encode(b + n, JREC_BASE, 0, 0x0102030405060708ull, 0, 0);
	assert_int_equal(n, REC_ID);
	assert_int_equal(b[JOURNAL_HDR_LEN], JREC_BASE);
	assert_string_equal(journal_rec_str(JREC_BASE), "BASE");
	s = dirty_new();
	assert_int_equal(journal_replay_buf(b, n, s, &r), 0);
	assert_null(r.cut);
	assert_int_equal(r.records, 1);
	assert_true(r.base == 0x0102030405060708ull);
	expect_snap(snap(s, NULL), "");
	dirty_free(s);

	/* EXT, BASE 3, BASE 4: 4, and the EXT stays */
	n = journal_encode(b, JREC_EXT, 0, 1, 0, K);
	n += journal_encode(b + n, JREC_BASE, 0, 3, 0, 0);
	n += journal_encode(b + n, JREC_BASE, 0, 4, 0, 0);
	s = dirty_new();
	assert_int_equal(journal_replay_buf(b, n, s, &r), 0);
	assert_int_equal(r.base, 4);
	expect_snap(snap(s, NULL), "0/1 --- 0-1000\n");
	dirty_free(s);

	/* ... then CLEAR: no base */
	n += journal_encode(b + n, JREC_CLEAR, 0, 0, 0, 0);
	s = dirty_new();
	assert_int_equal(journal_replay_buf(b, n, s, &r), 0);
	assert_int_equal(r.base, 0);
	expect_snap(snap(s, NULL), "");
	dirty_free(s);

	/* ... then BASE 6 and an EXT: 6 with the EXT */
	n += journal_encode(b + n, JREC_BASE, 0, 6, 0, 0);
	n += journal_encode(b + n, JREC_EXT, 0, 2, K, 1);
	s = dirty_new();
	assert_int_equal(journal_replay_buf(b, n, s, &r), 0);
	assert_int_equal(r.base, 6);
	assert_int_equal(r.records, 6);
	expect_snap(snap(s, NULL), "0/2 --- 1000-2000\n");
	dirty_free(s);

	/* ... then BASE 0 (journal_set_base(0)): 0, the set kept */
	n += journal_encode(b + n, JREC_BASE, 0, 0, 0, 0);
	s = dirty_new();
	assert_int_equal(journal_replay_buf(b, n, s, &r), 0);
	assert_int_equal(r.base, 0);
	expect_snap(snap(s, NULL), "0/2 --- 1000-2000\n");
	dirty_free(s);

	/* a torn BASE at the end does not count */
	n = journal_encode(b, JREC_BASE, 0, 8, 0, 0);
	n += journal_encode(b + n, JREC_BASE, 0, 9, 0, 0);
	s = dirty_new();
	assert_int_equal(journal_replay_buf(b, n - 1, s, &r), 0);
	assert_string_equal(r.cut, "short record");
	assert_int_equal(r.good, REC_ID);
	assert_int_equal(r.base, 8);
	dirty_free(s);

	/* a BASE without its payload: wrong length for its type */
	memset(b, 0, sizeof(b));
	b[3] = 1;
	b[JOURNAL_HDR_LEN] = JREC_BASE;
	recrc(b);
	expect_cut(b, REC_CLEAR, "wrong length for the record type");
}

/* reset, set_base and clear through the file: durable on return, kept by
 * close + open and by compaction. */
static void test_base_journal(void **state)
{
	char path[PATH_MAX], *set;
	struct journal *j;
	uint64_t size;
	uint8_t *data;
	size_t len;

	j = fresh(path, sizeof(path), "base", 0);
	assert_int_equal(journal_base(j), 0);
	assert_int_equal(file_size(path), 0);

	/* reset: CLEAR + BASE, on disk at once; HOT files stay HOT */
	assert_int_equal(journal_ext(j, 0, 1, 0, K), 0);
	assert_int_equal(journal_hot(j, 0, 2), 0);
	assert_int_equal(journal_ext(j, 0, 2, 0, K), 0);
	assert_int_equal(journal_reset(j, 7), 0);
	assert_int_equal(journal_base(j), 7);
	expect_snap(snap(NULL, j), "0/2 H--\n");
	assert_int_equal(file_size(path), REC_EXT + REC_ID + REC_EXT + REC_CLEAR + REC_ID);
	assert_int_equal(file_base(path, NULL), 7);
	journal_done(j, 0, 2, 0);
	assert_int_equal(journal_sure(j, 0, 2), 0);
	j = reopen(j, path, 0);
	assert_int_equal(journal_base(j), 7);
	expect_snap(snap(NULL, j), "");

	/* set_base keeps the set, and is durable on return */
	assert_int_equal(journal_ext(j, 0, 3, 0, K), 0);
	size = file_size(path);
	assert_int_equal(journal_set_base(j, 9), 0);
	/* the buffered EXT went with it */
	assert_int_equal(file_size(path), size + REC_EXT + REC_ID);
	assert_int_equal(journal_base(j), 9);
	expect_snap(snap(NULL, j), "0/3 --- 0-1000\n");
	assert_int_equal(file_base(path, &set), 9);
	expect_snap(set, "0/3 --- 0-1000\n");
	j = reopen(j, path, 0);
	assert_int_equal(journal_base(j), 9);
	expect_snap(snap(NULL, j), "0/3 --- 0-1000\n");

	/* compaction writes BASE first, then the set */
	assert_int_equal(journal_compact(j), 0);
	assert_int_equal(file_size(path), REC_ID + REC_EXT);
	data = slurp(path, &len);
	assert_int_equal(data[JOURNAL_HDR_LEN], JREC_BASE);
	assert_int_equal(data[REC_ID + JOURNAL_HDR_LEN], JREC_EXT);
	free(data);
	assert_int_equal(file_base(path, NULL), 9);
	j = reopen(j, path, 0);
	assert_int_equal(journal_base(j), 9);
	expect_snap(snap(NULL, j), "0/3 --- 0-1000\n");

	/* clear: no base, in memory, on disk, after compaction */
	assert_int_equal(journal_clear(j), 0);
	assert_int_equal(journal_base(j), 0);
	assert_int_equal(file_base(path, NULL), 0);
	assert_int_equal(journal_compact(j), 0);
	assert_int_equal(file_size(path), 0);
	j = reopen(j, path, 0);
	assert_int_equal(journal_base(j), 0);

	/* reset(0) only clears */
	assert_int_equal(journal_set_base(j, 4), 0);
	assert_int_equal(journal_ext(j, 0, 5, 0, K), 0);
	size = file_size(path);
	assert_int_equal(journal_reset(j, 0), 0);
	assert_int_equal(file_size(path), size + REC_EXT + REC_CLEAR);
	assert_int_equal(journal_base(j), 0);
	expect_snap(snap(NULL, j), "");
	j = reopen(j, path, 0);
	assert_int_equal(journal_base(j), 0);

	/* set_base(0) after reset(g): base 0, the set kept, through replay
	 * and through compaction */
	assert_int_equal(journal_reset(j, 11), 0);
	assert_int_equal(journal_ext(j, 0, 6, 2 * K, K), 0);
	assert_int_equal(journal_whole(j, 1, 7), 0);
	assert_int_equal(journal_set_base(j, 0), 0);
	assert_int_equal(journal_base(j), 0);
	assert_int_equal(file_base(path, &set), 0);
	expect_snap(set, "0/6 --- 2000-3000\n1/7 --W\n");
	j = reopen(j, path, 0);
	assert_int_equal(journal_base(j), 0);
	expect_snap(snap(NULL, j), "0/6 --- 2000-3000\n1/7 --W\n");
	assert_int_equal(journal_compact(j), 0);
	assert_int_equal(file_size(path), REC_EXT + REC_ID);        /* no BASE */
	j = reopen(j, path, 0);
	assert_int_equal(journal_base(j), 0);
	expect_snap(snap(NULL, j), "0/6 --- 2000-3000\n1/7 --W\n");

	/* the base survives the compaction journal_open does after a cut */
	assert_int_equal(journal_reset(j, 12), 0);
	assert_int_equal(journal_hot(j, 0, 8), 0);
	journal_close(j);
	data = slurp(path, &len);
	spit(path, data, len - 1);              /* tear the HOT */
	free(data);
	log_init("test_rfs_journal", true, LOG_LVL_ERROR);
	j = journal_open(path, 0);
	log_init("test_rfs_journal", true, LOG_LVL_WARN);
	assert_non_null(j);
	assert_int_equal(journal_base(j), 12);
	assert_int_equal(file_base(path, NULL), 12);
	journal_close(j);
}

static size_t dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* journal_open(NULL): every call works, nothing reaches any file. */
static void test_memory(void **state)
{
	char dir[PATH_MAX];
	struct journal_stats st;
	struct dirty_ival *iv;
	struct journal *j;
	uint8_t flags;
	uint32_t n;
	int cwd;

	/* run in an empty directory: anything written relative shows up */
	PATHF(dir, "%s/mem", tmpdir);
	assert_int_equal(mkdir(dir, 0700), 0);
	cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(cwd >= 0);
	assert_int_equal(chdir(dir), 0);

	j = journal_open(NULL, 0);
	assert_non_null(j);
	assert_int_equal(journal_base(j), 0);
	assert_int_equal(journal_hot(j, 0, 1), 0);
	assert_int_equal(journal_hot(j, 0, 1), 0);
	assert_int_equal(journal_ext(j, 0, 1, K, 1), 0);
	log_init("test_rfs_journal", true, LOG_LVL_ERROR);      /* past 2^63: warned */
	assert_int_equal(journal_ext(j, 0, 2, DIRTY_LIMIT, 1), 0);      /* WHOLE */
	log_init("test_rfs_journal", true, LOG_LVL_WARN);
	assert_int_equal(journal_unsure(j, 0, 3), 0);
	assert_int_equal(journal_whole(j, 0, 4), 0);
	assert_int_equal(journal_forget(j, 0, 4), 0);
	assert_int_equal(journal_ext(j, 0, 5, 0, 4 * K), 0);
	assert_int_equal(journal_truncate(j, 0, 5, K), 0);
	assert_int_equal(journal_flush(j), 0);
	expect_snap(snap(NULL, j), "0/1 H-- 1000-2000\n0/2 --W\n0/3 -U-\n0/5 --- 0-1000\n");
	assert_int_equal(journal_get(j, 0, 1, &flags, &iv, &n), 0);
	assert_int_equal(flags, DIRTY_HOT);
	assert_int_equal(n, 1);
	assert_true(iv[0].start == K && iv[0].end == 2 * K);
	free(iv);
	/* hot, busy, done, cooled as with a file */
	assert_int_equal(journal_cool_idle(j, 0), 0);   /* busy (two ops) */
	journal_done(j, 0, 1, 0);
	assert_int_equal(journal_cool_idle(j, 0), 0);   /* one still under way */
	journal_done(j, 0, 1, 0);
	assert_int_equal(journal_cool_idle(j, 0), 1);
	assert_int_equal(journal_flags(j, 0, 1), 0);
	assert_int_equal(journal_cool(j, 0, 5), 0);
	assert_int_equal(journal_sure(j, 0, 3), 0);
	assert_int_equal(journal_flags(j, 0, 3), -1);
	assert_int_equal(journal_reset(j, 5), 0);
	assert_int_equal(journal_base(j), 5);
	expect_snap(snap(NULL, j), "");
	assert_int_equal(journal_ext(j, 1, 1, 0, 1), 0);
	assert_int_equal(journal_set_base(j, 6), 0);
	assert_int_equal(journal_base(j), 6);
	assert_int_equal(journal_compact(j), 0);
	assert_int_equal(journal_base(j), 6);
	expect_snap(snap(NULL, j), "1/1 --- 0-1000\n");
	assert_int_equal(journal_clear(j), 0);
	assert_int_equal(journal_base(j), 0);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(journal_hot(j, 2, (uint64_t)i), 0);
		assert_int_equal(journal_ext(j, 2, (uint64_t)i, 0, 1), 0);
		journal_done(j, 2, (uint64_t)i, (uint64_t)i);
	}
	assert_int_equal(journal_flush(j), 0);
	journal_stats(j, &st);
	assert_int_equal(st.file_bytes, 0);
	assert_int_equal(st.syncs, 0);
	assert_int_equal(st.compactions, 0);
	assert_false(st.broken);
	assert_int_equal(dir_entries(dir), 0);
	journal_close(j);
	assert_int_equal(dir_entries(dir), 0);
	journal_close(NULL);

	assert_int_equal(fchdir(cwd), 0);
	close(cwd);
	assert_int_equal(rmdir(dir), 0);
}

/* journal_get copies out; the caller frees; 1 when the file is absent. */
static void test_get(void **state)
{
	struct dirty_ival *iv = (struct dirty_ival *)&iv;       /* overwritten */
	struct journal *j = journal_open(NULL, 0);
	uint8_t flags = 0xff;
	uint32_t n = 77;

	assert_non_null(j);
	assert_int_equal(journal_get(j, 0, 1, &flags, &iv, &n), 1);
	assert_int_equal(flags, 0);
	assert_null(iv);
	assert_int_equal(n, 0);

	assert_int_equal(journal_ext(j, 0, 1, 0, 1), 0);
	assert_int_equal(journal_ext(j, 0, 1, 4 * K, 2 * K), 0);
	assert_int_equal(journal_ext(j, 0, 1, 10 * K, 1), 0);
	assert_int_equal(journal_unsure(j, 0, 1), 0);
	assert_int_equal(journal_get(j, 0, 1, &flags, &iv, &n), 0);
	assert_int_equal(flags, DIRTY_UNSURE);
	assert_int_equal(n, 3);
	assert_true(iv[0].start == 0 && iv[0].end == K);
	assert_true(iv[1].start == 4 * K && iv[1].end == 6 * K);
	assert_true(iv[2].start == 10 * K && iv[2].end == 11 * K);
	/* a copy: the set changing later does not change it */
	assert_int_equal(journal_forget(j, 0, 1), 0);
	assert_true(iv[1].start == 4 * K && iv[1].end == 6 * K);
	free(iv);
	assert_int_equal(journal_get(j, 0, 1, &flags, &iv, &n), 1);

	/* flags only: no array */
	assert_int_equal(journal_whole(j, 3, 9), 0);
	n = 5;
	assert_int_equal(journal_get(j, 3, 9, &flags, &iv, &n), 0);
	assert_int_equal(flags, DIRTY_WHOLE);
	assert_null(iv);
	assert_int_equal(n, 0);
	/* another dir, same ino: another file */
	assert_int_equal(journal_get(j, 2, 9, &flags, &iv, &n), 1);
	journal_close(j);
}

/* journal_cool_idle: only hot files that are not busy, whose seq is
 * covered, and that were not made hot since the previous call. */
static void test_cool_idle(void **state)
{
	char path[PATH_MAX];
	struct dirty_ival *iv;
	struct journal *j;
	uint8_t flags;
	uint32_t n;

	j = fresh(path, sizeof(path), "cool", 0);
	assert_int_equal(journal_cool_idle(j, 100), 0);         /* empty */

	/* hot and busy: never cooled, whatever the periods and covered */
	assert_int_equal(journal_hot(j, 0, 1), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(journal_cool_idle(j, UINT64_MAX), 0);
	assert_int_equal(journal_flags(j, 0, 1), DIRTY_HOT);
	/* done with seq 10: covered 5 is not enough, 10 is */
	journal_done(j, 0, 1, 10);
	assert_int_equal(journal_cool_idle(j, 5), 0);
	assert_int_equal(journal_cool_idle(j, 9), 0);
	assert_int_equal(journal_flags(j, 0, 1), DIRTY_HOT);
	assert_int_equal(journal_cool_idle(j, 10), 1);
	assert_int_equal(journal_flags(j, 0, 1), -1);           /* nothing else: left */

	/* made hot between two calls: survives the next, cooled by the one after */
	assert_int_equal(journal_hot(j, 0, 2), 0);
	journal_done(j, 0, 2, 0);
	assert_int_equal(journal_cool_idle(j, 0), 0);
	assert_int_equal(journal_flags(j, 0, 2), DIRTY_HOT);
	assert_int_equal(journal_cool_idle(j, 0), 1);
	assert_int_equal(journal_flags(j, 0, 2), -1);

	/* an op on a file already hot counts as being made hot again */
	assert_int_equal(journal_hot(j, 0, 3), 0);
	journal_done(j, 0, 3, 1);
	assert_int_equal(journal_cool_idle(j, 1), 0);
	assert_int_equal(journal_hot(j, 0, 3), 0);
	journal_done(j, 0, 3, 2);
	assert_int_equal(journal_cool_idle(j, 2), 0);
	assert_int_equal(journal_flags(j, 0, 3), DIRTY_HOT);
	/* the max seq is kept: a later done with a lower seq does not lower it */
	assert_int_equal(journal_hot(j, 0, 3), 0);
	journal_done(j, 0, 3, 1);
	assert_int_equal(journal_cool_idle(j, 1), 0);
	assert_int_equal(journal_cool_idle(j, 1), 0);           /* seq 2 > 1 */
	assert_int_equal(journal_cool_idle(j, 2), 1);

	/* two ops under way: one done is not enough */
	assert_int_equal(journal_hot(j, 0, 4), 0);
	assert_int_equal(journal_hot(j, 0, 4), 0);
	journal_done(j, 0, 4, 0);
	assert_int_equal(journal_cool_idle(j, 0), 0);
	assert_int_equal(journal_cool_idle(j, 0), 0);
	assert_int_equal(journal_flags(j, 0, 4), DIRTY_HOT);
	journal_done(j, 0, 4, 0);
	assert_int_equal(journal_cool_idle(j, 0), 1);
	/* a done the file does not owe (busy 0, or not in the set) is harmless */
	journal_done(j, 0, 4, 0);
	journal_done(j, 9, 9, 100);
	assert_int_equal(journal_flags(j, 9, 9), -1);

	/* extents stay after cooling, without HOT; UNSURE stays too */
	assert_int_equal(journal_hot(j, 0, 5), 0);
	assert_int_equal(journal_ext(j, 0, 5, 3 * K, 1), 0);
	journal_done(j, 0, 5, 0);
	assert_int_equal(journal_hot(j, 0, 6), 0);
	assert_int_equal(journal_unsure(j, 0, 6), 0);
	journal_done(j, 0, 6, 0);
	assert_int_equal(journal_hot(j, 0, 7), 0);          /* stays hot: busy */
	assert_int_equal(journal_cool_idle(j, 0), 0);
	assert_int_equal(journal_cool_idle(j, 0), 2);       /* 0/5 and 0/6, not 0/7 */
	assert_int_equal(journal_get(j, 0, 5, &flags, &iv, &n), 0);
	assert_int_equal(flags, 0);
	assert_int_equal(n, 1);
	assert_true(iv[0].start == 3 * K && iv[0].end == 4 * K);
	free(iv);
	assert_int_equal(journal_flags(j, 0, 6), DIRTY_UNSURE);
	assert_int_equal(journal_flags(j, 0, 7), DIRTY_HOT);
	expect_snap(snap(NULL, j), "0/5 --- 3000-4000\n0/6 -U-\n0/7 H--\n");

	/* the COOLs reach the file: after a reopen the cooled file is not
	 * UNSURE; the one hot at close (close flushes) is */
	assert_int_equal(journal_flush(j), 0);
	j = reopen(j, path, 0);
	expect_snap(snap(NULL, j), "0/5 --- 3000-4000\n0/6 -U-\n0/7 -U-\n");
	assert_int_equal(journal_flags(j, 0, 1), -1);
	assert_int_equal(journal_flags(j, 0, 2), -1);
	assert_int_equal(journal_flags(j, 0, 3), -1);
	assert_int_equal(journal_flags(j, 0, 4), -1);
	/* nothing is hot after replay: nothing to cool */
	assert_int_equal(journal_cool_idle(j, UINT64_MAX), 0);
	assert_int_equal(journal_cool_idle(j, UINT64_MAX), 0);
	journal_close(j);
}

/* A COOL from journal_cool_idle is buffered, like journal_cool: it reaches
 * the file with the next flush, or with close, and a cooled file replays
 * as sure. */
static void test_cool_idle_durable(void **state)
{
	char path[PATH_MAX];
	struct journal *j;
	uint64_t size;

	j = fresh(path, sizeof(path), "cooldur", 0);
	assert_int_equal(journal_hot(j, 0, 1), 0);
	assert_int_equal(journal_ext(j, 0, 1, 0, K), 0);
	journal_done(j, 0, 1, 4);
	assert_int_equal(journal_hot(j, 0, 2), 0);
	journal_done(j, 0, 2, 4);
	assert_int_equal(journal_flush(j), 0);
	size = file_size(path);
	assert_int_equal(journal_cool_idle(j, 4), 0);
	assert_int_equal(journal_cool_idle(j, 4), 2);
	assert_int_equal(file_size(path), size);                /* buffered */
	assert_int_equal(journal_flush(j), 0);
	assert_int_equal(file_size(path), size + 2 * REC_ID);
	j = reopen(j, path, 0);
	expect_snap(snap(NULL, j), "0/1 --- 0-1000\n");

	/* cooled and closed without a flush: close writes the COOL */
	assert_int_equal(journal_hot(j, 0, 3), 0);
	journal_done(j, 0, 3, 0);
	assert_int_equal(journal_cool_idle(j, 0), 0);
	assert_int_equal(journal_cool_idle(j, 0), 1);
	j = reopen(j, path, 0);
	assert_int_equal(journal_flags(j, 0, 3), -1);
	/* hot at close, never cooled: UNSURE */
	assert_int_equal(journal_hot(j, 0, 4), 0);
	journal_done(j, 0, 4, 0);
	assert_int_equal(journal_cool_idle(j, 0), 0);           /* too soon */
	j = reopen(j, path, 0);
	assert_int_equal(journal_flags(j, 0, 4), DIRTY_UNSURE);
	expect_snap(snap(NULL, j), "0/1 --- 0-1000\n0/4 -U-\n");
	journal_close(j);
}

static void test_open_errors(void **state)
{
	char path[PATH_MAX];

	log_init("test_rfs_journal", true, LOG_LVL_ERROR);
	assert_null(journal_open(tmpdir, 0));                   /* a directory */
	PATHF(path, "%s/missing/journal", tmpdir);
	assert_null(journal_open(path, 0));
	assert_null(journal_open("/dev/null", 0));              /* not a regular file */
	log_init("test_rfs_journal", true, LOG_LVL_WARN);
}

static int rm_tree(const char *dir)
{
	char cmd[PATH_MAX + 16];

	if (snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir) >= (int)sizeof(cmd))
		return -1;
	return system(cmd);
}

/* A failed assertion in test_write_failure must not leave the limit on. */
static int restore_fsize(void **state)
{
	signal(SIGXFSZ, SIG_DFL);
	return setrlimit(RLIMIT_FSIZE, &saved_fsize);
}

static int setup(void **state)
{
	const char *t = getenv("TMPDIR");

	log_init("test_rfs_journal", true, LOG_LVL_WARN);
	if (getrlimit(RLIMIT_FSIZE, &saved_fsize) < 0)
		return -1;
	snprintf(tmpdir, sizeof(tmpdir), "%s/vigil-ut-journal-XXXXXX", t && *t ? t : "/tmp");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	return rm_tree(tmpdir) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc_and_codec),
		cmocka_unit_test(test_bad_records),
		cmocka_unit_test(test_cut_at_every_byte),
		cmocka_unit_test(test_flipped_bit),
		cmocka_unit_test(test_round_trip_and_hot_fast),
		cmocka_unit_test(test_compaction),
		cmocka_unit_test(test_clear),
		cmocka_unit_test_teardown(test_write_failure, restore_fsize),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_base_replay),
		cmocka_unit_test(test_base_journal),
		cmocka_unit_test(test_memory),
		cmocka_unit_test(test_get),
		cmocka_unit_test(test_cool_idle),
		cmocka_unit_test(test_cool_idle_durable),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
