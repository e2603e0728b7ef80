/* Block hashes (src/rfs/hash.c): the count of blocks, the digest itself
 * (SHA-256 cut to 16 bytes, checked against the FIPS 180-2 vector), and
 * the short-region rule both sides of a compare rely on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "rfs/hash.h"
#include "rfs/wire.h"

static void test_count(void **state)
{
	(void)state;
	assert_int_equal(rfs_hash_count(0, RFS_HASH_BLOCK), 1);
	assert_int_equal(rfs_hash_count(1, RFS_HASH_BLOCK), 1);
	assert_int_equal(rfs_hash_count(RFS_HASH_BLOCK, RFS_HASH_BLOCK), 1);
	assert_int_equal(rfs_hash_count(RFS_HASH_BLOCK + 1, RFS_HASH_BLOCK), 2);
	assert_int_equal(rfs_hash_count(WIRE_DATA_MAX, RFS_HASH_BLOCK), WIRE_DATA_MAX / RFS_HASH_BLOCK);
}

static void test_vector(void **state)
{
	/* SHA-256("abc") = ba7816bf 8f01cfea 414140de 5dae2223 b00361a3 ... */
	static const uint8_t want[16] = { 0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
	                                  0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23 };
	uint8_t out[WIRE_HASH_LEN];

	(void)state;
	assert_int_equal(rfs_hash_blocks((const uint8_t *)"abc", 3, 3, RFS_HASH_BLOCK, out), 0);
	assert_memory_equal(out, want, sizeof(want));
}

/* PRIM hashes what it read (have = want); SECOND what its copy holds of
 * the same region: equal blocks hash equal, a copy that ends early differs
 * in its last blocks only, and a block changed anywhere differs alone. */
static void test_regions(void **state)
{
	static uint8_t a[3 * 4096 + 100], b[sizeof(a)];
	uint8_t ha[4 * WIRE_HASH_LEN], hb[4 * WIRE_HASH_LEN];
	const uint32_t blk = 4096, want = sizeof(a);

	(void)state;
	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = (uint8_t)(i * 7 + 3);
	memcpy(b, a, sizeof(b));
	assert_int_equal(rfs_hash_count(want, blk), 4);
	assert_int_equal(rfs_hash_blocks(a, want, want, blk, ha), 0);
	assert_int_equal(rfs_hash_blocks(b, want, want, blk, hb), 0);
	assert_memory_equal(ha, hb, sizeof(ha));

	b[4096 + 5] ^= 1;               /* block 1 differs, only it */
	assert_int_equal(rfs_hash_blocks(b, want, want, blk, hb), 0);
	assert_memory_equal(ha, hb, WIRE_HASH_LEN);
	assert_memory_not_equal(ha + WIRE_HASH_LEN, hb + WIRE_HASH_LEN, WIRE_HASH_LEN);
	assert_memory_equal(ha + 2 * WIRE_HASH_LEN, hb + 2 * WIRE_HASH_LEN, 2 * WIRE_HASH_LEN);

	/* The other copy ends inside block 2: blocks 2 and 3 differ. */
	b[4096 + 5] ^= 1;
	assert_int_equal(rfs_hash_blocks(b, 2 * 4096 + 10, want, blk, hb), 0);
	assert_memory_equal(ha, hb, 2 * WIRE_HASH_LEN);
	assert_memory_not_equal(ha + 2 * WIRE_HASH_LEN, hb + 2 * WIRE_HASH_LEN, WIRE_HASH_LEN);
	assert_memory_not_equal(ha + 3 * WIRE_HASH_LEN, hb + 3 * WIRE_HASH_LEN, WIRE_HASH_LEN);
	/* Nothing there at all: block 3 hashes the empty string, as block 2. */
	assert_int_equal(rfs_hash_blocks(b, 0, want, blk, hb), 0);
	assert_memory_equal(hb + 2 * WIRE_HASH_LEN, hb + 3 * WIRE_HASH_LEN, WIRE_HASH_LEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_count),
		cmocka_unit_test(test_vector),
		cmocka_unit_test(test_regions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
