#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/proto.h"

static const unsigned char secret[] = "0123456789abcdef-test-secret";

static void key_for(const char *purpose, const char *cluster, unsigned char k[PROTO_KEY_LEN])
{
	proto_derive_key(secret, sizeof(secret) - 1, purpose, cluster, k);
}

static struct hb_msg sample(void)
{
	struct hb_msg m = { .node = 1, .net = 0, .state = 6, .flags = 0,
	                    .incarnation = 1700000000123456ull, .seq = 42, .term = 7 };
	return m;
}

static void roundtrip(void **st)
{
	unsigned char k[PROTO_KEY_LEN];
	uint8_t buf[HB_WIRE_LEN];
	struct hb_msg in = sample(), out;

	key_for("heartbeat", "vms", k);
	hb_encode(&in, k, buf);
	assert_int_equal(hb_decode(buf, sizeof(buf), k, &out), HB_OK);
	assert_int_equal(out.node, 1);
	assert_int_equal(out.state, 6);
	assert_true(out.incarnation == in.incarnation);
	assert_true(out.seq == 42 && out.term == 7);
}

static void forged_and_malformed(void **st)
{
	unsigned char k[PROTO_KEY_LEN], other[PROTO_KEY_LEN];
	uint8_t buf[HB_WIRE_LEN];
	struct hb_msg in = sample(), out;

	key_for("heartbeat", "vms", k);
	hb_encode(&in, k, buf);
	/* Every single flipped bit in the signed part or the MAC is caught. */
	for (size_t i = 5; i < HB_WIRE_LEN; i++) {
		uint8_t t[HB_WIRE_LEN];

		memcpy(t, buf, sizeof(t));
		t[i] ^= 0x01;
		assert_int_equal(hb_decode(t, sizeof(t), k, &out), HB_ERR_MAC);
	}
	/* Another cluster name, another purpose: another key. */
	key_for("heartbeat", "other", other);
	assert_int_equal(hb_decode(buf, sizeof(buf), other, &out), HB_ERR_MAC);
	key_for("control", "vms", other);
	assert_int_equal(hb_decode(buf, sizeof(buf), other, &out), HB_ERR_MAC);
	assert_int_equal(hb_decode(buf, sizeof(buf) - 1, k, &out), HB_ERR_SIZE);
	assert_int_equal(hb_decode((const uint8_t *)"garbage garbage garbage garbage garbage garbage garbage garbage..",
	                           HB_WIRE_LEN, k, &out), HB_ERR_MAGIC);
	buf[4] = 99;
	assert_int_equal(hb_decode(buf, sizeof(buf), k, &out), HB_ERR_VERSION);
	assert_string_not_equal(hb_error_str(HB_ERR_MAC), "?");
}

static void replay(void **st)
{
	struct hb_replay r = { 0 };

	assert_int_equal(hb_replay_check(&r, 100, 5), HB_FRESH);
	assert_int_equal(hb_replay_check(&r, 100, 6), HB_FRESH);
	assert_int_equal(hb_replay_check(&r, 100, 6), HB_REPLAYED);
	assert_int_equal(hb_replay_check(&r, 100, 2), HB_REPLAYED);
	/* A restart: new incarnation, sequence starts over. */
	assert_int_equal(hb_replay_check(&r, 200, 1), HB_NEW_INCARNATION);
	/* A packet of the earlier run, replayed later, is refused. */
	assert_int_equal(hb_replay_check(&r, 100, 999), HB_OLD_INCARNATION);
	assert_int_equal(hb_replay_check(&r, 200, 2), HB_FRESH);
	assert_string_not_equal(hb_replay_verdict_str(HB_OLD_INCARNATION), "?");
}

static void hmac_parts(void **st)
{
	unsigned char k[PROTO_KEY_LEN], a[PROTO_MAC_LEN], b[PROTO_MAC_LEN];

	key_for("control", "vms", k);
	proto_hmac(k, "ab", 2, "cd", 2, NULL, 0, a);
	proto_hmac(k, "abcd", 4, NULL, 0, NULL, 0, b);
	assert_true(proto_mac_equal(a, b));
	proto_hmac(k, "abce", 4, NULL, 0, NULL, 0, b);
	assert_false(proto_mac_equal(a, b));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(roundtrip),
		cmocka_unit_test(forged_and_malformed),
		cmocka_unit_test(replay),
		cmocka_unit_test(hmac_parts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
