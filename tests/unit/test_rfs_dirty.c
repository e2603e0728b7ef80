/* The dirty set of vigil-rfs: interval merging, the WHOLE overflow,
 * truncation, flags, the hash table, totals. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rfs/dirty.h"

#define K 4096ull
#define TOP DIRTY_LIMIT

/* Asserts the file's intervals are exactly the n pairs in want. */
static void expect_ivals(struct dirty_set *s, uint8_t dir, uint64_t ino, size_t n, const uint64_t *want)
{
	struct dirty_file *f = dirty_find(s, dir, ino);

	assert_non_null(f);
	assert_int_equal(f->n, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(f->iv[i].start, want[2 * i]);
		assert_int_equal(f->iv[i].end, want[2 * i + 1]);
	}
}

static void test_add_round_and_merge(void **state)
{
	struct dirty_set *s = dirty_new();

	assert_int_equal(dirty_add(s, 0, 7, 1, 1), 1);
	expect_ivals(s, 0, 7, 1, (uint64_t[]){ 0, K });
	/* adjacent block: one interval, not two */
	assert_int_equal(dirty_add(s, 0, 7, K, 1), 1);
	expect_ivals(s, 0, 7, 1, (uint64_t[]){ 0, 2 * K });
	/* inside: no change */
	assert_int_equal(dirty_add(s, 0, 7, 100, 5000), 0);
	/* an unaligned write across a block boundary dirties both blocks */
	assert_int_equal(dirty_add(s, 0, 7, 4 * K - 1, 2), 1);
	expect_ivals(s, 0, 7, 2, (uint64_t[]){ 0, 2 * K, 3 * K, 5 * K });
	/* len 0 changes nothing and enters nothing */
	assert_int_equal(dirty_add(s, 0, 8, 0, 0), 0);
	assert_null(dirty_find(s, 0, 8));
	/* same ino, other dir: another file */
	assert_int_equal(dirty_add(s, 1, 7, 0, 1), 1);
	expect_ivals(s, 1, 7, 1, (uint64_t[]){ 0, K });
	expect_ivals(s, 0, 7, 2, (uint64_t[]){ 0, 2 * K, 3 * K, 5 * K });
	dirty_free(s);
}

static void test_add_sorted_overlap_bridge(void **state)
{
	struct dirty_set *s = dirty_new();

	assert_int_equal(dirty_add(s, 0, 1, 16 * K, K), 1);
	assert_int_equal(dirty_add(s, 0, 1, 0, K), 1);
	assert_int_equal(dirty_add(s, 0, 1, 8 * K, K), 1);
	expect_ivals(s, 0, 1, 3, (uint64_t[]){ 0, K, 8 * K, 9 * K, 16 * K, 17 * K });
	/* overlapping the left end of one */
	assert_int_equal(dirty_add(s, 0, 1, 6 * K, 2 * K + 10), 1);
	expect_ivals(s, 0, 1, 3, (uint64_t[]){ 0, K, 6 * K, 9 * K, 16 * K, 17 * K });
	/* overlapping the right end of one */
	assert_int_equal(dirty_add(s, 0, 1, 16 * K + 5, 3 * K), 1);
	expect_ivals(s, 0, 1, 3, (uint64_t[]){ 0, K, 6 * K, 9 * K, 16 * K, 20 * K });
	/* a gap exactly filled: touching on both sides joins three */
	assert_int_equal(dirty_add(s, 0, 1, 9 * K, 7 * K), 1);
	expect_ivals(s, 0, 1, 2, (uint64_t[]){ 0, K, 6 * K, 20 * K });
	/* covering everything */
	assert_int_equal(dirty_add(s, 0, 1, 0, 64 * K), 1);
	expect_ivals(s, 0, 1, 1, (uint64_t[]){ 0, 64 * K });
	assert_int_equal(dirty_file_bytes(dirty_find(s, 0, 1)), 64 * K);
	dirty_free(s);
}

static void test_huge_offsets(void **state)
{
	struct dirty_set *s = dirty_new();

	assert_int_equal(dirty_add(s, 0, 1, TOP - 1, 1), 1);
	expect_ivals(s, 0, 1, 1, (uint64_t[]){ TOP - K, TOP });
	/* a length that would wrap is clipped at 2^63 */
	assert_int_equal(dirty_add(s, 0, 2, TOP - 3 * K - 1, UINT64_MAX), 1);
	expect_ivals(s, 0, 2, 1, (uint64_t[]){ TOP - 4 * K, TOP });
	assert_int_equal(dirty_add(s, 0, 3, 1ull << 62, 1ull << 63), 1);
	expect_ivals(s, 0, 3, 1, (uint64_t[]){ 1ull << 62, TOP });
	assert_int_equal(dirty_add(s, 0, 4, 0, UINT64_MAX), 1);
	expect_ivals(s, 0, 4, 1, (uint64_t[]){ 0, TOP });
	assert_int_equal(dirty_file_bytes(dirty_find(s, 0, 4)), TOP);
	/* no file byte at or past 2^63 */
	errno = 0;
	assert_int_equal(dirty_add(s, 0, 5, TOP, 1), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(dirty_add(s, 0, 5, UINT64_MAX, UINT64_MAX), -1);
	assert_null(dirty_find(s, 0, 5));
	/* truncates far up change nothing; at 2^63 - 1 the last block stays */
	assert_int_equal(dirty_truncate(s, 0, 1, UINT64_MAX), 0);
	assert_int_equal(dirty_truncate(s, 0, 1, TOP - 1), 0);
	assert_int_equal(dirty_truncate(s, 0, 1, TOP - K), 1);
	assert_null(dirty_find(s, 0, 1));
	dirty_free(s);
}

static void test_overflow_to_whole(void **state)
{
	struct dirty_set *s = dirty_new();
	struct dirty_file *f;

	/* every other block: DIRTY_MAX_IVALS separate intervals */
	for (uint64_t i = 0; i < DIRTY_MAX_IVALS; i++)
		assert_int_equal(dirty_add(s, 2, 9, 2 * i * K, K), 1);
	f = dirty_find(s, 2, 9);
	assert_int_equal(f->n, DIRTY_MAX_IVALS);
	assert_false(f->flags & DIRTY_WHOLE);
	/* at the limit, a merge still fits: filling a gap joins two */
	assert_int_equal(dirty_add(s, 2, 9, K, K), 1);
	f = dirty_find(s, 2, 9);
	assert_int_equal(f->n, DIRTY_MAX_IVALS - 1);
	assert_int_equal(dirty_add(s, 2, 9, 10 * DIRTY_MAX_IVALS * K, 1), 1);
	assert_int_equal(f->n, DIRTY_MAX_IVALS);
	/* one more separate interval: WHOLE, intervals gone */
	assert_int_equal(dirty_add(s, 2, 9, 20 * DIRTY_MAX_IVALS * K, 1), 1);
	f = dirty_find(s, 2, 9);
	assert_true(f->flags & DIRTY_WHOLE);
	assert_int_equal(f->n, 0);
	assert_null(f->iv);
	/* a WHOLE file takes no intervals and is not truncated away */
	assert_int_equal(dirty_add(s, 2, 9, 0, K), 0);
	assert_int_equal(dirty_truncate(s, 2, 9, 0), 0);
	assert_int_equal(dirty_whole(s, 2, 9), 0);
	assert_int_equal(dirty_file_bytes(f), 0);
	dirty_free(s);
}

static void test_truncate(void **state)
{
	struct dirty_set *s = dirty_new();

	dirty_add(s, 0, 1, 0, K);
	dirty_add(s, 0, 1, 2 * K, K);
	dirty_add(s, 0, 1, 4 * K, 2 * K);
	/* growing adds nothing */
	assert_int_equal(dirty_truncate(s, 0, 1, 100 * K), 0);
	expect_ivals(s, 0, 1, 3, (uint64_t[]){ 0, K, 2 * K, 3 * K, 4 * K, 6 * K });
	/* mid-block: the block with the last byte keeps its dirty part */
	assert_int_equal(dirty_truncate(s, 0, 1, 5 * K - 100), 1);
	expect_ivals(s, 0, 1, 3, (uint64_t[]){ 0, K, 2 * K, 3 * K, 4 * K, 5 * K });
	/* on an interval's end: unchanged */
	assert_int_equal(dirty_truncate(s, 0, 1, 5 * K), 0);
	/* between intervals */
	assert_int_equal(dirty_truncate(s, 0, 1, 3 * K + 1), 1);
	expect_ivals(s, 0, 1, 2, (uint64_t[]){ 0, K, 2 * K, 3 * K });
	/* exactly at an interval's start: it goes */
	assert_int_equal(dirty_truncate(s, 0, 1, 2 * K), 1);
	expect_ivals(s, 0, 1, 1, (uint64_t[]){ 0, K });
	/* to 0: no interval, no flag, so the file leaves the set */
	assert_int_equal(dirty_truncate(s, 0, 1, 0), 1);
	assert_null(dirty_find(s, 0, 1));
	/* a flag keeps it */
	dirty_add(s, 0, 2, 0, 3 * K);
	dirty_hot(s, 0, 2);
	assert_int_equal(dirty_truncate(s, 0, 2, 0), 1);
	assert_non_null(dirty_find(s, 0, 2));
	assert_int_equal(dirty_find(s, 0, 2)->n, 0);
	/* absent file */
	assert_int_equal(dirty_truncate(s, 0, 3, 0), 0);
	dirty_free(s);
}

static void test_flags(void **state)
{
	struct dirty_set *s = dirty_new();
	struct dirty_file *f;

	assert_int_equal(dirty_hot(s, 0, 1), 1);
	assert_int_equal(dirty_hot(s, 0, 1), 0);
	f = dirty_find(s, 0, 1);
	assert_int_equal(f->flags, DIRTY_HOT);
	assert_int_equal(f->mark, 0);
	/* cooling a file with nothing else removes it */
	assert_int_equal(dirty_cool(s, 0, 1), 1);
	assert_null(dirty_find(s, 0, 1));
	assert_int_equal(dirty_cool(s, 0, 1), 0);
	assert_int_equal(dirty_sure(s, 0, 1), 0);
	/* cooling keeps extents and UNSURE */
	dirty_hot(s, 0, 2);
	dirty_add(s, 0, 2, 0, 1);
	assert_int_equal(dirty_cool(s, 0, 2), 1);
	assert_int_equal(dirty_find(s, 0, 2)->flags, 0);
	assert_int_equal(dirty_find(s, 0, 2)->n, 1);
	dirty_hot(s, 0, 3);
	assert_int_equal(dirty_unsure(s, 0, 3), 1);
	assert_int_equal(dirty_unsure(s, 0, 3), 0);
	assert_int_equal(dirty_cool(s, 0, 3), 1);
	assert_int_equal(dirty_find(s, 0, 3)->flags, DIRTY_UNSURE);
	assert_int_equal(dirty_cool(s, 0, 3), 0);
	/* SURE clears both; WHOLE stays */
	assert_int_equal(dirty_sure(s, 0, 3), 1);
	assert_null(dirty_find(s, 0, 3));
	dirty_whole(s, 0, 4);
	dirty_hot(s, 0, 4);
	dirty_unsure(s, 0, 4);
	assert_int_equal(dirty_sure(s, 0, 4), 1);
	assert_int_equal(dirty_find(s, 0, 4)->flags, DIRTY_WHOLE);
	/* whole drops intervals */
	dirty_add(s, 0, 2, 10 * K, 1);
	assert_int_equal(dirty_whole(s, 0, 2), 1);
	assert_int_equal(dirty_find(s, 0, 2)->n, 0);
	assert_int_equal(dirty_forget(s, 0, 2), 1);
	assert_int_equal(dirty_forget(s, 0, 2), 0);
	assert_null(dirty_find(s, 0, 2));
	assert_string_equal(dirty_flag_str(DIRTY_HOT), "hot");
	assert_string_equal(dirty_flag_str(DIRTY_UNSURE), "unsure");
	assert_string_equal(dirty_flag_str(DIRTY_WHOLE), "whole");
	assert_string_equal(dirty_flag_str((enum dirty_flag)64), "?");
	dirty_free(s);
}

static void test_clear_and_unsure(void **state)
{
	struct dirty_set *s = dirty_new();
	struct dirty_count c;

	dirty_hot(s, 0, 1);
	dirty_add(s, 0, 1, 0, K);
	dirty_unsure(s, 0, 1);
	dirty_whole(s, 0, 2);
	dirty_add(s, 0, 3, 0, K);
	dirty_hot(s, 0, 4);
	assert_int_equal(dirty_clear(s, true), 3);
	dirty_count(s, &c);
	assert_int_equal(c.files, 2);
	assert_int_equal(dirty_find(s, 0, 1)->flags, DIRTY_HOT);
	assert_int_equal(dirty_find(s, 0, 1)->n, 0);
	assert_int_equal(dirty_find(s, 0, 4)->flags, DIRTY_HOT);
	assert_int_equal(dirty_hot_to_unsure(s), 2);
	assert_int_equal(dirty_find(s, 0, 4)->flags, DIRTY_UNSURE);
	assert_int_equal(dirty_hot_to_unsure(s), 0);
	assert_int_equal(dirty_clear(s, false), 2);
	dirty_count(s, &c);
	assert_int_equal(c.files, 0);
	assert_null(dirty_find(s, 0, 4));
	dirty_free(s);
}

static uint64_t size_of(uint8_t dir, uint64_t ino, void *arg)
{
	return *(uint64_t *)arg + ino;
}

static void test_totals(void **state)
{
	struct dirty_set *s = dirty_new();
	struct dirty_count c;
	uint64_t base = 1000;

	dirty_add(s, 0, 1, 0, 1);               /* 4 KiB */
	dirty_add(s, 0, 1, 8 * K, 2 * K);       /* + 8 KiB */
	dirty_whole(s, 0, 2);                   /* size_of: 1002 */
	dirty_add(s, 0, 3, 0, K);
	dirty_unsure(s, 0, 3);                  /* size_of: 1003, not its 4 KiB */
	dirty_hot(s, 1, 4);                     /* nothing */
	dirty_count(s, &c);
	assert_int_equal(c.files, 4);
	assert_int_equal(c.hot, 1);
	assert_int_equal(c.unsure, 1);
	assert_int_equal(c.whole, 1);
	assert_int_equal(c.ivals, 3);
	assert_int_equal(dirty_bytes(s, NULL, NULL), 3 * K);
	assert_int_equal(dirty_bytes(s, size_of, &base), 3 * K + 1002 + 1003);
	/* two files of 2^63 each: the total saturates */
	dirty_add(s, 0, 5, 0, UINT64_MAX);
	dirty_add(s, 0, 6, 0, UINT64_MAX);
	assert_int_equal(dirty_bytes(s, NULL, NULL), UINT64_MAX);
	dirty_free(s);
}

static int count_cb(struct dirty_file *f, void *arg)
{
	(*(size_t *)arg)++;
	f->mark = f->ino;
	return 0;
}

static int stop_cb(struct dirty_file *f, void *arg)
{
	return ++*(size_t *)arg == 10 ? 42 : 0;
}

static void test_many_files(void **state)
{
	struct dirty_set *s = dirty_new();
	const uint64_t n = 100000;
	struct dirty_count c;
	size_t seen = 0;

	/* sequential inode numbers in two dirs: the table grows, lookups hold */
	for (uint64_t i = 0; i < n; i++)
		assert_int_equal(dirty_add(s, (uint8_t)(i & 1), i, i * K, 1), 1);
	for (uint64_t i = 0; i < n; i++) {
		assert_non_null(dirty_find(s, (uint8_t)(i & 1), i));
		assert_null(dirty_find(s, (uint8_t)!(i & 1), i));
	}
	assert_int_equal(dirty_foreach(s, count_cb, &seen), 0);
	assert_int_equal(seen, n);
	assert_int_equal(dirty_find(s, 1, 777)->mark, 777);
	seen = 0;
	assert_int_equal(dirty_foreach(s, stop_cb, &seen), 42);
	assert_int_equal(seen, 10);
	for (uint64_t i = 0; i < n; i += 2)
		assert_int_equal(dirty_forget(s, 0, i), 1);
	dirty_count(s, &c);
	assert_int_equal(c.files, n / 2);
	assert_null(dirty_find(s, 0, 0));
	assert_non_null(dirty_find(s, 1, n - 1));
	dirty_free(s);
}

/* Random adds and truncates over 300 blocks against a bitmap: the
 * intervals must be exactly the bitmap's runs (sorted, merged, none
 * touching). */
static void test_random_vs_bitmap(void **state)
{
	enum { NB = 300 };
	struct dirty_set *s = dirty_new();
	bool bits[NB];
	unsigned seed = 12345;

	memset(bits, 0, sizeof(bits));
	dirty_hot(s, 0, 1);                     /* so an empty file stays */
	for (int round = 0; round < 20000; round++) {
		uint64_t off = (uint64_t)(rand_r(&seed) % (NB * K));
		uint64_t len = (uint64_t)(rand_r(&seed) % (8 * K));
		struct dirty_file *f;
		size_t k = 0;

		if (rand_r(&seed) % 10 == 0) {
			uint64_t keep = (off + K - 1) / K;

			dirty_truncate(s, 0, 1, off);
			for (uint64_t b = keep; b < NB; b++)
				bits[b] = false;
		} else {
			bool changed = false;

			if (off + len > NB * K)
				len = NB * K - off;
			for (uint64_t b = off / K; len && b < (off + len + K - 1) / K; b++) {
				changed |= !bits[b];
				bits[b] = true;
			}
			assert_int_equal(dirty_add(s, 0, 1, off, len), changed ? 1 : 0);
		}
		f = dirty_find(s, 0, 1);
		for (uint64_t b = 0; b < NB; ) {
			uint64_t e;

			if (!bits[b]) {
				b++;
				continue;
			}
			for (e = b; e < NB && bits[e]; e++)
				;
			assert_true(k < f->n);
			assert_int_equal(f->iv[k].start, b * K);
			assert_int_equal(f->iv[k].end, e * K);
			k++;
			b = e;
		}
		assert_int_equal(k, f->n);
	}
	dirty_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_round_and_merge),
		cmocka_unit_test(test_add_sorted_overlap_bridge),
		cmocka_unit_test(test_huge_offsets),
		cmocka_unit_test(test_overflow_to_whole),
		cmocka_unit_test(test_truncate),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_clear_and_unsure),
		cmocka_unit_test(test_totals),
		cmocka_unit_test(test_many_files),
		cmocka_unit_test(test_random_vs_bitmap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
