/* vigil-witness: the wire protocol, the grant rules, the node-side client
 * against the rules on a loopback socket, and the daemon itself as a child
 * on 127.0.0.1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster/witness_client.h"
#include "cluster/witness_proto.h"
#include "cluster/witness_rules.h"
#include "common/config.h"
#include "common/log.h"
#include "common/util.h"

extern char **environ;

static const char secret[] = "unit-test-witness-secret-0123456789";
static unsigned char key[PROTO_KEY_LEN];        /* cluster "c1" */

static void derive(const char *cluster, unsigned char k[PROTO_KEY_LEN])
{
	wp_derive_key((const unsigned char *)secret, strlen(secret), cluster, k);
}

static struct wp_request req(const char *node, enum wp_op op, uint64_t term, bool primary,
                             uint64_t inc, uint64_t seq)
{
	struct wp_request r = { .op = op, .term = term, .primary = primary, .lease_ms = 1000,
	                        .incarnation = inc, .seq = seq };

	strcpy(r.cluster, "c1");
	strcpy(r.node, node);
	return r;
}

/* A datagram with the given JSON text, correctly signed: for testing what
 * the decoder does with signed nonsense. */
static size_t signed_raw(const char *json, size_t jlen, char dir, const unsigned char k[PROTO_KEY_LEN],
                         uint8_t out[WP_DATAGRAM_MAX + 64])
{
	memcpy(out + PROTO_MAC_LEN, json, jlen);
	proto_hmac(k, &dir, 1, json, jlen, NULL, 0, out);
	return PROTO_MAC_LEN + jlen;
}

/* ================= protocol ================= */

static void test_request_round_trip(void **st)
{
	struct wp_request r = req("node-2.a_b", WP_ACQUIRE, 41, true, 1700000000000000ull, 99), d;
	uint8_t buf[WP_DATAGRAM_MAX];
	char cluster[WP_NAME_MAX], node[WP_NAME_MAX], why[128];
	size_t len;

	r.lease_ms = 3000;
	assert_int_equal(wp_encode_request(&r, key, buf, &len), 0);
	assert_true(len > PROTO_MAC_LEN && len <= WP_DATAGRAM_MAX);
	assert_null(memchr(buf + PROTO_MAC_LEN, '\0', len - PROTO_MAC_LEN));
	assert_int_equal(wp_peek(buf, len, cluster, node), WP_OK);
	assert_string_equal(cluster, "c1");
	assert_string_equal(node, "node-2.a_b");
	assert_int_equal(wp_decode_request(buf, len, key, &d, why, sizeof(why)), WP_OK);
	assert_string_equal(d.cluster, "c1");
	assert_string_equal(d.node, "node-2.a_b");
	assert_int_equal(d.op, WP_ACQUIRE);
	assert_int_equal(d.term, 41);
	assert_true(d.primary);
	assert_int_equal(d.lease_ms, 3000);
	assert_int_equal(d.incarnation, 1700000000000000ull);
	assert_int_equal(d.seq, 99);

	r = req("n", WP_RELEASE, 0, false, 0, (uint64_t)INT64_MAX);
	assert_int_equal(wp_encode_request(&r, key, buf, &len), 0);
	assert_int_equal(wp_decode_request(buf, len, key, &d, why, sizeof(why)), WP_OK);
	assert_int_equal(d.op, WP_RELEASE);
	assert_false(d.primary);
	assert_int_equal(d.seq, (uint64_t)INT64_MAX);
	/* The exact wire form of the spec. */
	assert_non_null(strstr((char *)buf + PROTO_MAC_LEN, "\"op\":\"release\""));
}

static void test_answer_round_trip(void **st)
{
	struct wp_answer a = { .incarnation = 7, .seq = 8, .granted = true, .term = 9, .remaining_ms = 1234 }, d;
	uint8_t buf[WP_DATAGRAM_MAX];
	char why[128];
	size_t len;

	strcpy(a.cluster, "c1");
	strcpy(a.node, "node1");
	strcpy(a.holder, "node1");
	assert_int_equal(wp_encode_answer(&a, key, buf, &len), 0);
	assert_int_equal(wp_decode_answer(buf, len, key, &d, why, sizeof(why)), WP_OK);
	assert_string_equal(d.cluster, "c1");
	assert_string_equal(d.node, "node1");
	assert_int_equal(d.incarnation, 7);
	assert_int_equal(d.seq, 8);
	assert_true(d.granted);
	assert_string_equal(d.holder, "node1");
	assert_int_equal(d.term, 9);
	assert_int_equal(d.remaining_ms, 1234);
	assert_string_equal(d.error, "");

	/* No holder travels as null; the error text as is. */
	a.granted = false;
	a.holder[0] = '\0';
	strcpy(a.error, "old term 3: the witness granted term 9");
	assert_int_equal(wp_encode_answer(&a, key, buf, &len), 0);
	assert_non_null(strstr((char *)buf + PROTO_MAC_LEN, "\"holder\":null"));
	assert_int_equal(wp_decode_answer(buf, len, key, &d, why, sizeof(why)), WP_OK);
	assert_false(d.granted);
	assert_string_equal(d.holder, "");
	assert_string_equal(d.error, "old term 3: the witness granted term 9");
}

static void test_bad_mac(void **st)
{
	struct wp_request r = req("node1", WP_ACQUIRE, 5, false, 1, 1), d;
	struct wp_answer a;
	unsigned char other[PROTO_KEY_LEN];
	uint8_t buf[WP_DATAGRAM_MAX], copy[WP_DATAGRAM_MAX];
	char why[128], *t;
	size_t len;

	assert_int_equal(wp_encode_request(&r, key, buf, &len), 0);
	/* One changed character of the JSON: term 5 -> 6. */
	memcpy(copy, buf, len);
	t = strstr((char *)copy + PROTO_MAC_LEN, "\"term\":5");
	assert_non_null(t);
	t[7] = '6';
	assert_int_equal(wp_decode_request(copy, len, key, &d, why, sizeof(why)), WP_ERR_MAC);
	assert_string_equal(why, "bad signature");
	/* One changed bit of the MAC. */
	memcpy(copy, buf, len);
	copy[5] ^= 0x10;
	assert_int_equal(wp_decode_request(copy, len, key, &d, why, sizeof(why)), WP_ERR_MAC);
	/* Another secret, and another cluster with the same secret. */
	wp_derive_key((const unsigned char *)"another-secret-0123456789", 25, "c1", other);
	assert_int_equal(wp_decode_request(buf, len, other, &d, why, sizeof(why)), WP_ERR_MAC);
	derive("c2", other);
	assert_int_equal(wp_decode_request(buf, len, other, &d, why, sizeof(why)), WP_ERR_MAC);
	/* A request is not an answer (no reflection), and a truncated one fails. */
	assert_int_equal(wp_decode_answer(buf, len, key, &a, why, sizeof(why)), WP_ERR_MAC);
	assert_int_not_equal(wp_decode_request(buf, len - 1, key, &d, why, sizeof(why)), WP_OK);
	/* The untouched one still passes. */
	assert_int_equal(wp_decode_request(buf, len, key, &d, why, sizeof(why)), WP_OK);
}

struct bad_case {
	const char *json;
	enum wp_error e;
	const char *why;        /* substring of why */
};

#define GOOD_REQ_TAIL "\"op\":\"acquire\",\"term\":1,\"primary\":false,\"lease_ms\":1000,\"incarnation\":1,\"seq\":1}"

static void test_malformed_requests(void **st)
{
	static const struct bad_case cases[] = {
		{ "{\"v\":1,\"cluster\":\"c1\",\"node\":\"n1\"," GOOD_REQ_TAIL, WP_OK, "" },
		{ "{\"v\":2,\"cluster\":\"c1\",\"node\":\"n1\"," GOOD_REQ_TAIL, WP_ERR_VERSION, "version" },
		{ "{\"cluster\":\"c1\",\"node\":\"n1\"," GOOD_REQ_TAIL, WP_ERR_FIELD, "'v' is missing" },
		{ "{\"v\":1,\"cluster\":\"c1\"," GOOD_REQ_TAIL, WP_ERR_FIELD, "'node' is missing" },
		{ "{\"v\":1,\"cluster\":\"c1\",\"node\":\"a b\"," GOOD_REQ_TAIL, WP_ERR_FIELD, "'node' must be a name" },
		{ "{\"v\":1,\"cluster\":\"c1\",\"node\":\"\"," GOOD_REQ_TAIL, WP_ERR_FIELD, "'node'" },
		{ "{\"v\":1,\"cluster\":\"c1\",\"node\":\"n1\",\"op\":\"steal\",\"term\":1,\"primary\":false,"
		  "\"lease_ms\":1000,\"incarnation\":1,\"seq\":1}", WP_ERR_OP, "unknown op 'steal'" },
		{ "{\"v\":1,\"cluster\":\"c1\",\"node\":\"n1\",\"op\":7,\"term\":1,\"primary\":false,"
		  "\"lease_ms\":1000,\"incarnation\":1,\"seq\":1}", WP_ERR_OP, "unknown op" },
		{ "{\"v\":1,\"cluster\":\"c1\",\"node\":\"n1\",\"term\":1,\"primary\":false,"
		  "\"lease_ms\":1000,\"incarnation\":1,\"seq\":1}", WP_ERR_FIELD, "'op' is missing" },
		{ "{\"v\":1,\"cluster\":\"c1\",\"node\":\"n1\",\"op\":\"acquire\",\"term\":-1,\"primary\":false,"
		  "\"lease_ms\":1000,\"incarnation\":1,\"seq\":1}", WP_ERR_FIELD, "'term' must be a whole number" },
		{ "{\"v\":1,\"cluster\":\"c1\",\"node\":\"n1\",\"op\":\"acquire\",\"term\":\"1\",\"primary\":false,"
		  "\"lease_ms\":1000,\"incarnation\":1,\"seq\":1}", WP_ERR_FIELD, "'term'" },
		{ "{\"v\":1,\"cluster\":\"c1\",\"node\":\"n1\",\"op\":\"acquire\",\"term\":1.5,\"primary\":false,"
		  "\"lease_ms\":1000,\"incarnation\":1,\"seq\":1}", WP_ERR_FIELD, "'term'" },
		{ "{\"v\":1,\"cluster\":\"c1\",\"node\":\"n1\",\"op\":\"acquire\",\"term\":1,\"primary\":1,"
		  "\"lease_ms\":1000,\"incarnation\":1,\"seq\":1}", WP_ERR_FIELD, "'primary' must be true or false" },
		{ "{\"v\":1,\"cluster\":\"c1\",\"node\":\"n1\",\"op\":\"acquire\",\"term\":1,\"primary\":true,"
		  "\"lease_ms\":99,\"incarnation\":1,\"seq\":1}", WP_ERR_LEASE, "lease_ms 99 is outside 100 to 600000" },
		{ "{\"v\":1,\"cluster\":\"c1\",\"node\":\"n1\",\"op\":\"acquire\",\"term\":1,\"primary\":true,"
		  "\"lease_ms\":600001,\"incarnation\":1,\"seq\":1}", WP_ERR_LEASE, "600001" },
		{ "{\"v\":1,\"cluster\":\"c1\",\"node\":\"n1\",\"op\":\"acquire\",\"term\":1,\"primary\":true,"
		  "\"lease_ms\":100,\"incarnation\":1,\"seq\":1}", WP_OK, "" },
		{ "{\"v\":1,\"cluster\":\"c1\",\"node\":\"n1\",\"op\":\"acquire\",\"term\":1,\"primary\":true,"
		  "\"lease_ms\":600000,\"incarnation\":1,\"seq\":1}", WP_OK, "" },
		{ "{\"v\":1,\"cluster\":\"c1\",\"node\":\"n1\",\"op\":\"acquire\",\"term\":1,\"primary\":true,"
		  "\"incarnation\":1,\"seq\":1}", WP_ERR_FIELD, "'lease_ms' is missing" },
		{ "{\"v\":1,\"cluster\":\"c1\",\"node\":\"n1\",\"op\":\"acquire\",\"term\":1,\"primary\":true,"
		  "\"lease_ms\":1000,\"seq\":1}", WP_ERR_FIELD, "'incarnation' is missing" },
		{ "{\"v\":1,\"cluster\":\"c1\",\"node\":\"n1\",\"op\":\"acquire\",\"term\":1,\"primary\":true,"
		  "\"lease_ms\":1000,\"incarnation\":1}", WP_ERR_FIELD, "'seq' is missing" },
		{ "{\"v\":1,\"cluster\":\"c1\",\"node\":\"n1\",\"node\":\"n2\"," GOOD_REQ_TAIL, WP_ERR_JSON, "duplicate" },
		{ "{\"v\":1,\"cluster\":\"c1\",\"node\":\"n1\"," GOOD_REQ_TAIL "x", WP_ERR_JSON, "not JSON" },
		{ "{\"v\":1,\"cluster\":\"c1\",\"node\":\"n\\u0000x\"," GOOD_REQ_TAIL, WP_ERR_JSON, "not JSON" },
		{ "[1,2]", WP_ERR_JSON, "not an object" },
		{ "{\"v\":1,\"cluster\":\"c1\",\"node\":\"n1\",\"extra\":[1]," GOOD_REQ_TAIL, WP_OK, "" },
	};
	uint8_t buf[WP_DATAGRAM_MAX + 64];
	struct wp_request d;
	char why[200];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t len = signed_raw(cases[i].json, strlen(cases[i].json), 'Q', key, buf);
		enum wp_error e;

		why[0] = '\0';
		e = wp_decode_request(buf, len, key, &d, why, sizeof(why));
		if (e != cases[i].e || !strstr(why, cases[i].why))
			fail_msg("case %zu (%s): got %s '%s', expected %s '%s'", i, cases[i].json,
			         wp_error_str(e), why, wp_error_str(cases[i].e), cases[i].why);
	}
}

static void test_malformed_datagrams(void **st)
{
	uint8_t buf[WP_DATAGRAM_MAX + 64];
	char cluster[WP_NAME_MAX], node[WP_NAME_MAX], why[200], big[WP_DATAGRAM_MAX];
	struct wp_request d;
	size_t len;

	/* Too short for a MAC and "{}". */
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(wp_peek(buf, PROTO_MAC_LEN + 1, cluster, node), WP_ERR_SIZE);
	assert_int_equal(wp_decode_request(buf, 10, key, &d, why, sizeof(why)), WP_ERR_SIZE);
	/* Too long, even correctly signed. */
	memset(big, ' ', sizeof(big));
	memcpy(big, "{\"cluster\":\"c1\"}", 16);
	len = signed_raw(big, sizeof(big) - PROTO_MAC_LEN + 1, 'Q', key, buf);
	assert_int_equal(len, WP_DATAGRAM_MAX + 1);
	assert_int_equal(wp_peek(buf, len, cluster, node), WP_ERR_SIZE);
	assert_int_equal(wp_decode_request(buf, len, key, &d, why, sizeof(why)), WP_ERR_SIZE);
	assert_non_null(strstr(why, "1401 bytes"));
	/* A raw NUL byte in the text. */
	len = signed_raw("{\"cluster\":\"c1\"\0}", 17, 'Q', key, buf);
	assert_int_equal(wp_peek(buf, len, cluster, node), WP_ERR_JSON);
	/* Not JSON, no cluster, a cluster that is no name. */
	len = signed_raw("hello", 5, 'Q', key, buf);
	assert_int_equal(wp_peek(buf, len, cluster, node), WP_ERR_JSON);
	len = signed_raw("{\"node\":\"n1\"}", 13, 'Q', key, buf);
	assert_int_equal(wp_peek(buf, len, cluster, node), WP_ERR_CLUSTER);
	assert_string_equal(node, "n1");
	len = signed_raw("{\"cluster\":\"../etc\"}", 20, 'Q', key, buf);
	assert_int_equal(wp_peek(buf, len, cluster, node), WP_ERR_CLUSTER);
	assert_string_equal(cluster, "");
	len = signed_raw("{\"cluster\":5}", 13, 'Q', key, buf);
	assert_int_equal(wp_peek(buf, len, cluster, node), WP_ERR_CLUSTER);
	/* Signed JSON without v: refused after the MAC. */
	len = signed_raw("{\"cluster\":\"c1\"}", 16, 'Q', key, buf);
	assert_int_equal(wp_peek(buf, len, cluster, node), WP_OK);
	assert_int_equal(wp_decode_request(buf, len, key, &d, why, sizeof(why)), WP_ERR_FIELD);
	/* Every enum has a name. */
	for (int e = 0; e < WP_ERR__COUNT; e++)
		assert_string_not_equal(wp_error_str(e), "?");
	assert_string_equal(wp_error_str(WP_ERR__COUNT), "?");
	assert_string_equal(wp_op_str(WP_RELEASE), "release");
}

static void test_encode_refuses(void **st)
{
	struct wp_request r = req("node1", WP_ACQUIRE, 1, false, 1, 1);
	struct wp_answer a = { .seq = 1 };
	uint8_t buf[WP_DATAGRAM_MAX];
	size_t len;

	r.term = (uint64_t)INT64_MAX + 1;
	assert_int_equal(wp_encode_request(&r, key, buf, &len), -1);
	r = req("node 1", WP_ACQUIRE, 1, false, 1, 1);
	assert_int_equal(wp_encode_request(&r, key, buf, &len), -1);
	r = req("node1", WP_ACQUIRE, 1, false, 1, 1);
	r.cluster[0] = '\0';
	assert_int_equal(wp_encode_request(&r, key, buf, &len), -1);
	strcpy(a.cluster, "c1");
	strcpy(a.node, "node1");
	strcpy(a.holder, "bad holder");
	assert_int_equal(wp_encode_answer(&a, key, buf, &len), -1);
	a.holder[0] = '\0';
	assert_int_equal(wp_encode_answer(&a, key, buf, &len), 0);
}

/* ================= grant rules ================= */

static struct wr_state rs;

#define T0 1000000      /* far past the quiet period of a witness started at 0 */

static enum wr_verdict judge(const struct wp_request *r, uint64_t now, struct wp_answer *a,
                             struct wr_outcome *o)
{
	enum wr_verdict v = wr_judge(&rs, r, now, a, o);

	/* Every answer names the request, and refusals say why. */
	assert_string_equal(a->cluster, r->cluster);
	assert_string_equal(a->node, r->node);
	assert_int_equal(a->incarnation, r->incarnation);
	assert_int_equal(a->seq, r->seq);
	assert_int_equal(o->verdict, v);
	assert_int_equal(a->granted, v == WR_GRANTED || v == WR_RENEWED);
	assert_int_equal(a->error[0] != '\0', wr_verdict_refused(v));
	return v;
}

static void test_rules_grant_renew_held(void **st)
{
	struct wp_request r;
	struct wp_answer a;
	struct wr_outcome o;

	wr_init(&rs, 0);
	r = req("node1", WP_ACQUIRE, 3, true, 10, 1);
	assert_int_equal(judge(&r, T0, &a, &o), WR_GRANTED);
	assert_false(o.was_holder);
	assert_string_equal(a.holder, "node1");
	assert_int_equal(a.term, 3);
	assert_int_equal(a.remaining_ms, 1000);
	/* Renewal extends the lease from now. */
	r.seq = 2;
	assert_int_equal(judge(&r, T0 + 400, &a, &o), WR_RENEWED);
	assert_int_equal(a.remaining_ms, 1000);
	assert_int_equal(wr_find(&rs, "c1")->expires_ms, T0 + 1400);
	/* The other node, wanting to take over, is refused until then. */
	r = req("node2", WP_ACQUIRE, 4, false, 20, 1);
	assert_int_equal(judge(&r, T0 + 500, &a, &o), WR_HELD);
	assert_string_equal(a.error, "held by node1 (term 3) for 900 ms more");
	assert_string_equal(a.holder, "node1");
	assert_int_equal(a.term, 3);
	assert_int_equal(a.remaining_ms, 900);
	/* primary=true does not help it either. */
	r = req("node2", WP_ACQUIRE, 4, true, 20, 2);
	assert_int_equal(judge(&r, T0 + 1399, &a, &o), WR_HELD);
	assert_string_equal(a.error, "held by node1 (term 3) for 1 ms more");
	/* The holder moves to a newer term: a grant, logged as such. */
	r = req("node1", WP_ACQUIRE, 5, true, 10, 3);
	assert_int_equal(judge(&r, T0 + 1399, &a, &o), WR_GRANTED);
	assert_true(o.was_holder);
	assert_int_equal(o.prev_term, 3);
	assert_int_equal(a.term, 5);
	assert_int_equal(wr_find(&rs, "c1")->holder_term, 5);
}

static void test_rules_expiry(void **st)
{
	struct wp_request r;
	struct wp_answer a;
	struct wr_outcome o;

	wr_init(&rs, 0);
	r = req("node1", WP_ACQUIRE, 1, true, 10, 1);
	assert_int_equal(judge(&r, T0, &a, &o), WR_GRANTED);
	/* Still held one ms before the end ... */
	r = req("node2", WP_ACQUIRE, 2, false, 20, 1);
	assert_int_equal(judge(&r, T0 + 999, &a, &o), WR_HELD);
	assert_string_equal(o.expired_holder, "");
	/* ... and free at the end: the other node takes it. */
	r.seq = 2;
	assert_int_equal(judge(&r, T0 + 1000, &a, &o), WR_GRANTED);
	assert_string_equal(o.expired_holder, "node1");
	assert_int_equal(o.expired_term, 1);
	assert_int_equal(o.expired_ago_ms, 0);
	assert_string_equal(a.holder, "node2");
	assert_int_equal(a.term, 2);
	/* The old holder comes back under its old term: refused. */
	r = req("node1", WP_ACQUIRE, 1, true, 10, 2);
	assert_int_equal(judge(&r, T0 + 1100, &a, &o), WR_OLD_TERM);
	assert_string_equal(a.error, "old term 1: the witness granted term 2");
	/* Expired long ago: said how long. */
	r = req("node1", WP_ACQUIRE, 2, true, 10, 3);
	assert_int_equal(judge(&r, T0 + 5000, &a, &o), WR_GRANTED);
	assert_string_equal(o.expired_holder, "node2");
	assert_int_equal(o.expired_ago_ms, 3000);
	/* An answer with nobody holding it reports 0 ms left. */
	r = req("node1", WP_RELEASE, 2, true, 10, 4);
	assert_int_equal(judge(&r, T0 + 5001, &a, &o), WR_RELEASED);
	assert_string_equal(a.holder, "");
	assert_int_equal(a.remaining_ms, 0);
	assert_int_equal(a.term, 2);
}

static void test_rules_old_term(void **st)
{
	struct wp_request r;
	struct wp_answer a;
	struct wr_outcome o;

	wr_init(&rs, 0);
	r = req("node1", WP_ACQUIRE, 7, true, 10, 1);
	assert_int_equal(judge(&r, T0, &a, &o), WR_GRANTED);
	/* Even the holder cannot go back to an older term. */
	r = req("node1", WP_ACQUIRE, 6, true, 10, 2);
	assert_int_equal(judge(&r, T0 + 10, &a, &o), WR_OLD_TERM);
	assert_string_equal(a.error, "old term 6: the witness granted term 7");
	/* The lease it holds is untouched by the refusal. */
	assert_string_equal(a.holder, "node1");
	assert_int_equal(wr_find(&rs, "c1")->expires_ms, T0 + 1000);
	/* The old term check comes before "held by": it is the stronger reason. */
	r = req("node2", WP_ACQUIRE, 3, false, 20, 1);
	assert_int_equal(judge(&r, T0 + 20, &a, &o), WR_OLD_TERM);
	/* The same term as the newest is not old. */
	r = req("node2", WP_ACQUIRE, 7, false, 20, 2);
	assert_int_equal(judge(&r, T0 + 2000, &a, &o), WR_GRANTED);
}

static void test_rules_replay(void **st)
{
	struct wp_request r;
	struct wp_answer a;
	struct wr_outcome o;

	wr_init(&rs, 0);
	r = req("node1", WP_ACQUIRE, 1, true, 100, 5);
	assert_int_equal(judge(&r, T0, &a, &o), WR_GRANTED);
	/* The same request again, at a later time: refused, and the lease is
	 * not extended by it. */
	assert_int_equal(judge(&r, T0 + 500, &a, &o), WR_REPLAYED);
	assert_true(!strncmp(a.error, "replayed request", 16));
	assert_int_equal(wr_find(&rs, "c1")->expires_ms, T0 + 1000);
	assert_string_equal(a.holder, "node1");
	r.seq = 4;
	assert_int_equal(judge(&r, T0 + 500, &a, &o), WR_REPLAYED);
	/* An older incarnation, whatever its seq. */
	r = req("node1", WP_ACQUIRE, 1, true, 99, 1000);
	assert_int_equal(judge(&r, T0 + 500, &a, &o), WR_OLD_INCARNATION);
	assert_true(!strncmp(a.error, "old incarnation", 15));
	/* A replayed release does not release. */
	r = req("node1", WP_RELEASE, 1, true, 100, 5);
	assert_int_equal(judge(&r, T0 + 600, &a, &o), WR_REPLAYED);
	assert_string_equal(wr_find(&rs, "c1")->holder, "node1");
	/* The refusals did not move the record: seq 6 is still new. */
	r = req("node1", WP_ACQUIRE, 1, true, 100, 6);
	assert_int_equal(judge(&r, T0 + 700, &a, &o), WR_RENEWED);
	/* A new incarnation starts its own sequence. */
	r = req("node1", WP_ACQUIRE, 1, true, 101, 1);
	assert_int_equal(judge(&r, T0 + 800, &a, &o), WR_RENEWED);
	/* Records are per node and per cluster. */
	r = req("node2", WP_ACQUIRE, 1, false, 100, 6);
	assert_int_equal(judge(&r, T0 + 900, &a, &o), WR_HELD);
	r = req("node1", WP_ACQUIRE, 1, true, 101, 1);
	strcpy(r.cluster, "c2");
	assert_int_equal(judge(&r, T0 + 900, &a, &o), WR_GRANTED);
}

static void test_rules_quiet_period(void **st)
{
	struct wp_request r;
	struct wp_answer a;
	struct wr_outcome o;

	wr_init(&rs, 5000);
	/* Just restarted: a node wanting to take over waits a full lease. */
	r = req("node2", WP_ACQUIRE, 9, false, 20, 1);
	assert_int_equal(judge(&r, 5300, &a, &o), WR_QUIET);
	assert_string_equal(a.error, "witness restarted 300 ms ago: only the node running the service "
	                    "may claim the lease before 1000 ms");
	assert_string_equal(a.holder, "");
	r.seq = 2;
	assert_int_equal(judge(&r, 5999, &a, &o), WR_QUIET);
	/* The quiet period is the request's lease_ms. */
	r.seq = 3;
	r.lease_ms = 500;
	assert_int_equal(judge(&r, 5600, &a, &o), WR_GRANTED);
	r = req("node1", WP_RELEASE, 9, true, 10, 1);
	assert_int_equal(judge(&r, 5601, &a, &o), WR_RELEASE_NOT_HOLDER);
	r = req("node2", WP_RELEASE, 9, false, 20, 4);
	assert_int_equal(judge(&r, 5602, &a, &o), WR_RELEASED);

	/* The node running the service gets it at once, and keeps it. */
	wr_init(&rs, 5000);
	r = req("node1", WP_ACQUIRE, 8, true, 10, 1);
	assert_int_equal(judge(&r, 5001, &a, &o), WR_GRANTED);
	r = req("node2", WP_ACQUIRE, 9, false, 20, 1);
	assert_int_equal(judge(&r, 5500, &a, &o), WR_HELD);
	/* Even the holder is refused without primary: the grant may have
	 * answered a delayed or replayed request. */
	r = req("node1", WP_ACQUIRE, 8, false, 10, 2);
	assert_int_equal(judge(&r, 5600, &a, &o), WR_QUIET);
	assert_string_equal(a.holder, "node1");
	r = req("node1", WP_ACQUIRE, 8, true, 10, 3);
	assert_int_equal(judge(&r, 5601, &a, &o), WR_RENEWED);
	/* After the quiet period and the lease, the other node gets it. */
	r = req("node2", WP_ACQUIRE, 9, false, 20, 2);
	assert_int_equal(judge(&r, 6600, &a, &o), WR_HELD);
	assert_string_equal(a.error, "held by node1 (term 8) for 1 ms more");
	r.seq = 3;
	assert_int_equal(judge(&r, 6601, &a, &o), WR_GRANTED);
	/* Past the quiet period, primary no longer matters. */
	r = req("node1", WP_ACQUIRE, 10, false, 10, 4);
	assert_int_equal(judge(&r, 7601, &a, &o), WR_GRANTED);
}

static void test_rules_release(void **st)
{
	struct wp_request r;
	struct wp_answer a;
	struct wr_outcome o;

	wr_init(&rs, 0);
	r = req("node1", WP_ACQUIRE, 1, true, 10, 1);
	assert_int_equal(judge(&r, T0, &a, &o), WR_GRANTED);
	/* Only the holder can release. */
	r = req("node2", WP_RELEASE, 1, false, 20, 1);
	assert_int_equal(judge(&r, T0 + 1, &a, &o), WR_RELEASE_NOT_HOLDER);
	assert_string_equal(a.error, "");
	assert_false(a.granted);
	assert_string_equal(a.holder, "node1");
	r = req("node1", WP_RELEASE, 1, true, 10, 2);
	assert_int_equal(judge(&r, T0 + 2, &a, &o), WR_RELEASED);
	assert_string_equal(a.error, "");
	assert_false(a.granted);
	assert_string_equal(a.holder, "");
	/* The other node may take over at once. */
	r = req("node2", WP_ACQUIRE, 2, false, 20, 2);
	assert_int_equal(judge(&r, T0 + 3, &a, &o), WR_GRANTED);
	/* Releasing twice, or an expired lease, is nothing to do. */
	r = req("node1", WP_RELEASE, 1, true, 10, 3);
	assert_int_equal(judge(&r, T0 + 4, &a, &o), WR_RELEASE_NOT_HOLDER);
	r = req("node2", WP_RELEASE, 2, false, 20, 3);
	assert_int_equal(judge(&r, T0 + 5000, &a, &o), WR_RELEASE_NOT_HOLDER);
	assert_string_equal(o.expired_holder, "node2");
}

static void test_rules_limits(void **st)
{
	struct wp_request r;
	struct wp_answer a;
	struct wr_outcome o;

	wr_init(&rs, 0);
	for (int i = 0; i < WR_MAX_CLUSTERS; i++) {
		r = req("node1", WP_ACQUIRE, 1, true, 10, 1);
		snprintf(r.cluster, sizeof(r.cluster), "k%d", i);
		assert_int_equal(judge(&r, T0, &a, &o), WR_GRANTED);
	}
	r = req("node1", WP_ACQUIRE, 1, true, 10, 1);
	assert_int_equal(judge(&r, T0, &a, &o), WR_FULL);
	assert_string_equal(a.error, "the witness serves at most 64 clusters");
	/* Known clusters go on. */
	r = req("node1", WP_ACQUIRE, 1, true, 10, 2);
	strcpy(r.cluster, "k3");
	assert_int_equal(judge(&r, T0 + 1, &a, &o), WR_RENEWED);

	wr_init(&rs, 0);
	for (int i = 0; i < WR_MAX_NODES; i++) {
		char name[16];

		snprintf(name, sizeof(name), "n%d", i);
		r = req(name, WP_RELEASE, 1, false, 10, 1);
		assert_int_equal(judge(&r, T0, &a, &o), WR_RELEASE_NOT_HOLDER);
	}
	r = req("node99", WP_ACQUIRE, 1, true, 10, 1);
	assert_int_equal(judge(&r, T0, &a, &o), WR_FULL);
	assert_string_equal(a.error, "the witness keeps at most 16 nodes per cluster");
	assert_string_equal(a.holder, "");
	for (int v = 0; v < WR__COUNT; v++)
		assert_string_not_equal(wr_verdict_str(v), "?");
}

/* Random schedules of requests from three nodes with random delays, losses,
 * releases and witness restarts. A node believes it holds the lease from
 * the grant's arrival until the grant's request was SENT + lease_ms (the
 * client's rule), unless it released since; it asks as primary only while
 * it believes. Safety: never two believers at once. */
#define SIM_NODES 3
#define SIM_FLIGHT 64

struct sim_msg {
	bool used, answer;
	uint64_t at;            /* arrival */
	int node;
	struct wp_request r;
	struct wp_answer a;
	uint64_t sent;          /* request's send time */
};

struct sim_node {
	uint64_t seq, inc, term;
	uint64_t believe_from, believe_until;   /* [from, until) */
	uint64_t release_seq;
	uint64_t void_before;   /* grants of requests sent before: ignored */
};

static bool sim_believes(const struct sim_node *n, uint64_t now)
{
	return n->believe_from <= now && now < n->believe_until;
}

static void test_rules_random_schedules(void **st)
{
	uint64_t grants = 0, takeovers = 0;

	for (unsigned seed = 1; seed <= 300; seed++) {
		struct sim_msg fl[SIM_FLIGHT] = { 0 };
		struct sim_node nodes[SIM_NODES] = { 0 };
		uint64_t now = 1000;
		int last_holder = -1;
		const uint32_t lease = 1000;

		srandom(seed);
		wr_init(&rs, now);
		for (int i = 0; i < SIM_NODES; i++)
			nodes[i].inc = 1;
		for (int step = 0; step < 3000; step++) {
			int believers = 0;

			now += 1 + (uint64_t)(random() % 60);
			/* Deliver everything due, earliest first. */
			for (;;) {
				int pick = -1;

				for (int i = 0; i < SIM_FLIGHT; i++)
					if (fl[i].used && fl[i].at <= now && (pick < 0 || fl[i].at < fl[pick].at))
						pick = i;
				if (pick < 0)
					break;
				struct sim_msg m = fl[pick];

				fl[pick].used = false;
				if (!m.answer) {
					struct wr_outcome o;
					uint64_t at = m.at;

					wr_judge(&rs, &m.r, at, &m.a, &o);
					m.answer = true;
					m.at = at + (uint64_t)(random() % 400);
					if (random() % 10 == 0)
						continue;       /* answer lost */
					fl[pick] = m;
					fl[pick].used = true;
					continue;
				}
				struct sim_node *n = &nodes[m.node];

				/* A lease that ran out is not revived by the grant of
				 * a request sent before it ran out. */
				if (!sim_believes(n, m.at) && n->believe_until > n->void_before)
					n->void_before = n->believe_until;
				if (m.a.granted && m.r.seq > n->release_seq &&
				    m.r.incarnation == n->inc && m.sent >= n->void_before) {
					if (!sim_believes(n, m.at))
						n->believe_from = m.at;
					if (m.sent + lease > n->believe_until)
						n->believe_until = m.sent + lease;
					grants++;
					if (last_holder != m.node && last_holder >= 0)
						takeovers++;
					last_holder = m.node;
				}
				if (m.a.term > n->term)
					n->term = m.a.term;
			}
			/* Safety, checked at every step. */
			for (int i = 0; i < SIM_NODES; i++)
				believers += sim_believes(&nodes[i], now);
			if (believers > 1)
				fail_msg("seed %u step %d: %d nodes believe they hold the lease", seed, step, believers);
			/* Something happens. */
			int act = (int)(random() % 12), i = (int)(random() % SIM_NODES), slot = -1;
			struct sim_node *n = &nodes[i];
			bool release = false;

			if (act == 1) {
				if (random() % 20 == 0)
					wr_init(&rs, now);      /* the witness restarted */
				continue;
			}
			if (act == 0) {                 /* the node lets go */
				if (!sim_believes(n, now))
					continue;
				n->believe_until = now;
				release = true;
			} else if (random() % 50 == 0 && !sim_believes(n, now)) {
				n->inc++;               /* the node restarted */
				n->seq = 0;
				n->release_seq = 0;
				n->void_before = now;
			}
			for (int k = 0; k < SIM_FLIGHT; k++)
				if (!fl[k].used)
					slot = k;
			if (slot < 0)
				continue;
			fl[slot] = (struct sim_msg){ .used = true, .node = i, .sent = now,
			                             .at = now + (uint64_t)(random() % 300) };
			if (random() % 20 == 0)
				fl[slot].at += 2000;    /* a very late one */
			fl[slot].r = req("n", release ? WP_RELEASE : WP_ACQUIRE,
			                 sim_believes(n, now) ? n->term : n->term + 1,
			                 sim_believes(n, now), n->inc, ++n->seq);
			fl[slot].r.node[0] = (char)('a' + i);
			fl[slot].r.lease_ms = lease;
			if (release)
				n->release_seq = n->seq;
			if (random() % 10 == 0)
				fl[slot].used = false;  /* request lost */
		}
	}
	/* The schedules did exercise grants and takeovers. */
	assert_true(grants > 10000);
	assert_true(takeovers > 100);
}

/* ================= client against the rules on loopback ================= */

struct server {
	int fd;
	uint16_t port;
	struct event *ev;
	bool mute;
	bool wrong_key;         /* sign answers with another key */
	bool wrong_seq;         /* answer another seq */
	bool hold_back;         /* keep answers until server_flush() */
	int nheld;
	struct { uint8_t buf[WP_DATAGRAM_MAX]; size_t len; struct sockaddr_in to; uint64_t at; } held[32];
	int acquires, releases;
	struct wp_request first, last;
};

static struct config ccfg;
static struct event_base *base;
static struct server srv;

static void server_read(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	uint8_t buf[WP_DATAGRAM_MAX + 1], out[WP_DATAGRAM_MAX];
	char cluster[WP_NAME_MAX], node[WP_NAME_MAX], why[200];
	unsigned char k[PROTO_KEY_LEN];
	struct sockaddr_in from;
	socklen_t flen = sizeof(from);
	struct wp_request q;
	struct wp_answer a;
	struct wr_outcome o;
	size_t olen;
	ssize_t r;

	while ((r = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &flen)) >= 0) {
		assert_int_equal(wp_peek(buf, (size_t)r, cluster, node), WP_OK);
		derive(cluster, k);
		assert_int_equal(wp_decode_request(buf, (size_t)r, k, &q, why, sizeof(why)), WP_OK);
		if (!s->acquires && !s->releases)
			s->first = q;
		s->last = q;
		if (q.op == WP_ACQUIRE)
			s->acquires++;
		else
			s->releases++;
		if (s->mute)
			continue;
		wr_judge(&rs, &q, mono_ms(), &a, &o);
		if (s->wrong_seq)
			a.seq += 1000;
		if (s->wrong_key)
			derive("other", k);
		assert_int_equal(wp_encode_answer(&a, k, out, &olen), 0);
		if (s->hold_back) {
			if (s->nheld < (int)ARRAY_SIZE(s->held)) {
				memcpy(s->held[s->nheld].buf, out, olen);
				s->held[s->nheld].len = olen;
				s->held[s->nheld].at = mono_ms();
				s->held[s->nheld++].to = from;
			}
			continue;
		}
		sendto(fd, out, olen, 0, (struct sockaddr *)&from, flen);
	}
}

/* Sends the answers held back for requests received before `before`. */
static void server_flush(struct server *s, uint64_t before)
{
	for (int i = 0; i < s->nheld; i++)
		if (s->held[i].at < before)
			sendto(s->fd, s->held[i].buf, s->held[i].len, 0, (struct sockaddr *)&s->held[i].to,
		       sizeof(s->held[i].to));
	s->nheld = 0;
}

static int udp_bound(uint16_t *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

static void make_cfg(struct config *c, uint16_t port, uint32_t lease_ms)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->path, "test.conf");
	strcpy(c->cluster_name, "c1");
	c->nnodes = 2;
	strcpy(c->nodes[0].name, "node1");
	strcpy(c->nodes[1].name, "node2");
	c->witness_enabled = true;
	c->witness_addr = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(port),
	                                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	c->witness_lease_ms = lease_ms;
	memcpy(c->secret, secret, strlen(secret));
	c->secret_len = strlen(secret);
}

static int client_setup(void **st)
{
	base = event_base_new();
	if (!base)
		return -1;
	memset(&srv, 0, sizeof(srv));
	srv.fd = udp_bound(&srv.port);
	if (srv.fd < 0)
		return -1;
	srv.ev = event_new(base, srv.fd, EV_READ | EV_PERSIST, server_read, &srv);
	event_add(srv.ev, NULL);
	wr_init(&rs, 0);        /* started long ago: no quiet period */
	make_cfg(&ccfg, srv.port, 300);
	return 0;
}

static int client_teardown(void **st)
{
	event_free(srv.ev);
	close(srv.fd);
	event_base_free(base);
	return 0;
}

/* What one client's owner saw. */
struct owner {
	struct wclient *w;
	int changed;
	bool in_call;           /* inside a wclient_* call of ours */
	bool granted, refused;  /* as seen in the last callback */
	uint64_t changed_at;
};

static void on_changed(void *arg)
{
	struct owner *o = arg;

	/* Never called from inside a wclient_* call. */
	assert_false(o->in_call);
	o->changed++;
	o->granted = wclient_granted(o->w);
	o->refused = wclient_refused(o->w);
	o->changed_at = mono_ms();
}

static void want(struct owner *o, enum wc_want w, uint64_t term)
{
	o->in_call = true;
	wclient_want(o->w, w, term);
	o->in_call = false;
}

static bool is_granted(void *arg) { return wclient_granted(((struct owner *)arg)->w); }
static bool not_granted(void *arg) { return !wclient_granted(((struct owner *)arg)->w); }
static bool is_refused(void *arg) { return wclient_refused(((struct owner *)arg)->w); }
static bool owner_told_not_granted(void *arg)
{
	struct owner *o = arg;
	return o->changed && !o->granted;
}

static bool starts_with(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

static void test_client_hold_and_take(void **st)
{
	struct owner a = { 0 }, b = { 0 };

	a.w = wclient_new(base, &ccfg, 0, 1000, on_changed, &a);
	b.w = wclient_new(base, &ccfg, 1, 2000, on_changed, &b);
	assert_non_null(a.w);
	assert_non_null(b.w);
	assert_string_equal(wclient_reason(a.w), "not asked");
	assert_string_equal(wc_want_str(WC_TAKE), "take");

	/* The node running the service asks as primary and gets it. */
	want(&a, WC_HOLD, 1);
	assert_false(wclient_granted(a.w));     /* nothing before the answer */
	assert_true(run_until(base, is_granted, &a, 2000));
	assert_true(a.changed >= 1 && a.granted);
	/* The first request was not primary (no lease yet); renewals are. */
	assert_false(srv.first.primary);
	run_for(base, 60);
	assert_true(srv.last.primary);
	assert_true(wclient_fresh(a.w));
	assert_false(wclient_refused(a.w));
	assert_int_equal(wclient_witness_term(a.w), 1);
	assert_true(starts_with(wclient_reason(a.w), "granted (term 1, "));

	/* The other node wants to take over: refused while it is held. */
	want(&b, WC_TAKE, 2);
	assert_true(run_until(base, is_refused, &b, 2000));
	assert_false(srv.last.primary);
	assert_false(wclient_granted(b.w));
	assert_true(b.changed >= 1 && b.refused);
	assert_true(starts_with(wclient_reason(b.w), "refused: held by node1 (term 1) for "));
	assert_int_equal(wclient_witness_term(b.w), 1);

	/* a keeps renewing: two lease periods later b is still refused. */
	run_for(base, 650);
	assert_true(wclient_granted(a.w));
	assert_false(wclient_granted(b.w));
	assert_true(srv.acquires > 10);

	/* a lets go: granted drops at once, the callback comes from the loop,
	 * one release reaches the witness, and b takes over well before a
	 * lease would have run out. */
	int before = a.changed;
	uint64_t t = mono_ms();

	want(&a, WC_NONE, 0);
	assert_false(wclient_granted(a.w));
	assert_int_equal(a.changed, before);
	assert_true(run_until(base, is_granted, &b, 2000));
	assert_true(mono_ms() - t < 200);
	assert_true(a.changed > before && !a.granted);
	assert_int_equal(srv.releases, 1);
	assert_string_equal(wclient_reason(a.w), "not asked");
	assert_false(wclient_refused(b.w));
	assert_true(starts_with(wclient_reason(b.w), "granted (term 2, "));
	assert_int_equal(wclient_witness_term(b.w), 2);

	/* Asked again, a is refused: b holds it, and a's old term is old. */
	want(&a, WC_TAKE, 1);
	assert_true(run_until(base, is_refused, &a, 2000));
	assert_true(starts_with(wclient_reason(a.w), "refused: old term 1: the witness granted term 2"));
	/* Stopping without holding sends no release. */
	want(&a, WC_NONE, 0);
	want(&b, WC_NONE, 0);
	run_for(base, 50);
	/* a's acquire was recent (it might have been granted): it releases;
	 * b held it: it releases. */
	assert_int_equal(srv.releases, 3);
	int acquires = srv.acquires;

	run_for(base, 200);
	assert_int_equal(srv.acquires, acquires);       /* NONE stops asking */
	wclient_free(a.w);
	wclient_free(b.w);
}

static void test_client_lease_runs_out(void **st)
{
	struct owner a = { 0 };
	uint64_t muted, last_sent;

	a.w = wclient_new(base, &ccfg, 0, 3000, on_changed, &a);
	assert_non_null(a.w);
	want(&a, WC_HOLD, 4);
	assert_true(run_until(base, is_granted, &a, 2000));
	run_for(base, 120);
	/* The witness stops answering: the lease runs out by the clock, at
	 * most lease_ms after the last answered request was sent, and the
	 * owner is told. */
	srv.mute = true;
	muted = mono_ms();
	last_sent = muted;
	assert_true(run_until(base, owner_told_not_granted, &a, 2000));
	assert_false(wclient_granted(a.w));
	assert_true(a.changed_at <= last_sent + 300 + 30);
	/* Renewals came every lease/6 = 50 ms, so the last grant was recent. */
	assert_true(a.changed_at >= muted + 300 - 50 - 30);
	assert_false(wclient_fresh(a.w));
	assert_false(wclient_refused(a.w));
	run_for(base, 120);
	{
		char expect[64];

		snprintf(expect, sizeof(expect), "no answer from 127.0.0.1:%u for ", srv.port);
		assert_true(starts_with(wclient_reason(a.w), expect));
	}
	/* It answers again: granted again, and told. */
	srv.mute = false;
	int before = a.changed;

	assert_true(run_until(base, is_granted, &a, 2000));
	assert_true(a.changed > before && a.granted);
	want(&a, WC_NONE, 0);
	run_for(base, 20);
	wclient_free(a.w);
}

/* Grants that arrive after the lease ran out, for requests sent before,
 * do not revive it: meanwhile the peer may have been granted by a witness
 * that restarted and forgot this node's lease. */
static void test_client_late_grant_does_not_revive(void **st)
{
	struct owner a = { 0 };
	int held;

	a.w = wclient_new(base, &ccfg, 0, 3500, on_changed, &a);
	assert_non_null(a.w);
	want(&a, WC_HOLD, 4);
	assert_true(run_until(base, is_granted, &a, 2000));
	srv.hold_back = true;
	assert_true(run_until(base, owner_told_not_granted, &a, 2000));
	/* Grants judged but not delivered, for requests sent well before
	 * the end (a request sent after it would rightly count). */
	held = 0;
	for (int i = 0; i < srv.nheld; i++)
		held += srv.held[i].at < a.changed_at - 10;
	assert_true(held >= 3);
	srv.mute = true;                /* nothing newer gets through */
	server_flush(&srv, a.changed_at - 10);
	run_for(base, 100);
	assert_false(wclient_granted(a.w));
	assert_false(a.granted);
	/* Grants of requests sent after the end count again. */
	srv.mute = false;
	srv.hold_back = false;
	assert_true(run_until(base, is_granted, &a, 2000));
	want(&a, WC_NONE, 0);
	run_for(base, 20);
	wclient_free(a.w);
}

static void test_client_ignores_bad_answers(void **st)
{
	struct owner a = { 0 };

	a.w = wclient_new(base, &ccfg, 0, 4000, on_changed, &a);
	assert_non_null(a.w);
	/* Signed with another key: not an answer. */
	srv.wrong_key = true;
	want(&a, WC_HOLD, 5);
	run_for(base, 200);
	assert_true(srv.acquires >= 3);
	assert_false(wclient_granted(a.w));
	assert_false(wclient_refused(a.w));
	assert_int_equal(a.changed, 0);
	/* Answering requests it never sent: not an answer either. */
	srv.wrong_key = false;
	srv.wrong_seq = true;
	run_for(base, 200);
	assert_false(wclient_granted(a.w));
	assert_int_equal(a.changed, 0);
	{
		char expect[64];

		snprintf(expect, sizeof(expect), "no answer from 127.0.0.1:%u for ", srv.port);
		assert_true(starts_with(wclient_reason(a.w), expect));
	}
	srv.wrong_seq = false;
	assert_true(run_until(base, is_granted, &a, 2000));
	want(&a, WC_NONE, 0);
	run_for(base, 20);
	wclient_free(a.w);
}

static void test_client_quiet_and_no_witness(void **st)
{
	struct owner a = { 0 }, b = { 0 };
	struct config dead;
	uint16_t port;
	int fd;

	/* A freshly restarted witness: taking over waits, holding does not. */
	wr_init(&rs, mono_ms());
	a.w = wclient_new(base, &ccfg, 1, 5000, on_changed, &a);
	assert_non_null(a.w);
	want(&a, WC_TAKE, 9);
	assert_true(run_until(base, is_refused, &a, 2000));
	assert_true(starts_with(wclient_reason(a.w), "refused: witness restarted "));
	/* Then, past the quiet period with nobody holding it, it is granted. */
	assert_true(run_until(base, is_granted, &a, 2000));
	assert_false(wclient_refused(a.w));
	want(&a, WC_NONE, 0);
	wclient_free(a.w);

	/* Nobody listens (ICMP port unreachable): no answer, no crash. */
	fd = udp_bound(&port);
	assert_true(fd >= 0);
	close(fd);
	make_cfg(&dead, port, 300);
	b.w = wclient_new(base, &dead, 0, 6000, on_changed, &b);
	assert_non_null(b.w);
	want(&b, WC_HOLD, 1);
	assert_true(starts_with(wclient_reason(b.w), "asking 127.0.0.1:"));
	run_for(base, 250);
	assert_false(wclient_granted(b.w));
	assert_false(wclient_refused(b.w));
	assert_int_equal(b.changed, 0);
	assert_true(starts_with(wclient_reason(b.w), "no answer from 127.0.0.1:"));
	wclient_free(b.w);

	/* No witness configured: no client, and a clear log line. */
	dead.witness_enabled = false;
	assert_null(wclient_new(base, &dead, 0, 1, on_changed, &b));
	make_cfg(&dead, port, 50);
	assert_null(wclient_new(base, &dead, 0, 1, on_changed, &b));
}

/* ================= the vigil-witness daemon ================= */

static char tmpdir[PATH_MAX], witness_bin[PATH_MAX], conf[PATH_MAX], secret_path[PATH_MAX],
            logpath[PATH_MAX];
static pid_t child = -1;

static int daemon_setup(void **st)
{
	const char *env = getenv("VIGIL_WITNESS");
	char self[PATH_MAX];
	ssize_t n;
	FILE *f;

	if (env && *env) {
		snprintf(witness_bin, sizeof(witness_bin), "%s", env);
	} else {
		/* build/tests/unit/test_witness -> build/src/vigil-witness */
		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n < 0)
			return -1;
		self[n] = '\0';
		if (snprintf(witness_bin, sizeof(witness_bin), "%s/../../src/vigil-witness",
		             dirname(self)) >= (int)sizeof(witness_bin))
			return -1;
	}
	if (access(witness_bin, X_OK) < 0) {
		fprintf(stderr, "vigil-witness not found at %s (set VIGIL_WITNESS)\n", witness_bin);
		return -1;
	}
	log_init("ut-witness", true, LOG_LVL_ERROR);
	derive("c1", key);
	if (tu_mkdtemp(tmpdir, "witness") < 0)
		return -1;
	if (snprintf(conf, sizeof(conf), "%s/witness.conf", tmpdir) >= (int)sizeof(conf) ||
	    snprintf(secret_path, sizeof(secret_path), "%s/secret", tmpdir) >= (int)sizeof(secret_path) ||
	    snprintf(logpath, sizeof(logpath), "%s/out.log", tmpdir) >= (int)sizeof(logpath))
		return -1;
	f = fopen(secret_path, "w");
	if (!f)
		return -1;
	fprintf(f, "%s\n", secret);
	fclose(f);
	chmod(secret_path, 0600);
	base = event_base_new();
	return base ? 0 : -1;
}

static void reap_child(void)
{
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		child = -1;
	}
}

/* After each daemon test, also a failed one: no daemon left behind. */
static int reap_teardown(void **st)
{
	reap_child();
	return 0;
}

static int daemon_teardown(void **st)
{
	reap_child();
	tu_rm_rf(tmpdir);
	event_base_free(base);
	return 0;
}

static void write_conf(const char *text)
{
	FILE *f = fopen(conf, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Starts vigil-witness with args, stdout and stderr into logpath. */
static pid_t spawn(const char *const *args)
{
	posix_spawn_file_actions_t fa;
	char *argv[16];
	int n = 0;
	pid_t pid;

	argv[n++] = witness_bin;
	for (; *args; args++)
		argv[n++] = (char *)*args;
	argv[n] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	assert_int_equal(posix_spawn(&pid, witness_bin, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	return pid;
}

/* Waits (bounded) for pid to exit: its exit code, or -1. */
static int wait_exit(pid_t pid, uint32_t timeout_ms)
{
	uint64_t end = mono_ms() + timeout_ms;
	int status;

	while (mono_ms() < end) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		poll(NULL, 0, 10);
	}
	return -1;
}

static char *slurp(void)
{
	char *buf = NULL;
	size_t len;

	assert_int_equal(read_file(logpath, 1 << 20, &buf, &len), 0);
	return buf;
}

/* Runs vigil-witness to completion; its output must contain expect. */
static void expect_run(const char *const *args, int code, const char *expect)
{
	pid_t pid = spawn(args);
	int rc = wait_exit(pid, 5000);
	char *out;

	if (rc < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	out = slurp();
	if (rc != code || !strstr(out, expect))
		fail_msg("vigil-witness %s: exit %d (expected %d), output:\n%s\nexpected to contain: %s",
		         args[0], rc, code, out, expect);
	free(out);
}

static void expect_conf_error(const char *text, const char *expect)
{
	const char *args[] = { "--check-config", "-c", conf, NULL };
	char full[PATH_MAX + 256];

	write_conf(text);
	snprintf(full, sizeof(full), "%s:%s", conf, expect);
	expect_run(args, 1, full);
}

static void test_daemon_config(void **st)
{
	const char *check[] = { "--check-config", "-c", conf, NULL };
	const char *version[] = { "--version", NULL };
	const char *help[] = { "--help", NULL };
	const char *bogus[] = { "--bogus", NULL };
	char text[PATH_MAX + 256], expect[PATH_MAX + 64];

	expect_run(version, 0, "vigil-witness 0.");
	expect_run(help, 0, "secret_file");
	expect_run(bogus, 2, "usage: vigil-witness");

	snprintf(text, sizeof(text), "; witness\n[witness]\nlisten = 127.0.0.1:4800\nsecret_file = %s\n",
	         secret_path);
	write_conf(text);
	snprintf(expect, sizeof(expect), "%s: ok (listen 127.0.0.1:4800, secret %zu bytes)", conf,
	         strlen(secret));
	expect_run(check, 0, expect);

	snprintf(text, sizeof(text), "[witness]\nlisten = 127.0.0.1:4800\nsecret_file = %s\nport = 3\n",
	         secret_path);
	expect_conf_error(text, "4: unknown key 'port' in [witness]");
	snprintf(text, sizeof(text), "[cluster]\nlisten = 127.0.0.1:4800\nsecret_file = %s\n", secret_path);
	expect_conf_error(text, "1: unknown section [cluster]");
	snprintf(text, sizeof(text), "[witness]\nlisten = 127.0.0.300:4800\nsecret_file = %s\n", secret_path);
	expect_conf_error(text, "2: listen: '127.0.0.300' is not an IPv4 address");
	snprintf(text, sizeof(text), "[witness]\nlisten = 127.0.0.1\nsecret_file = %s\n", secret_path);
	expect_conf_error(text, "2: listen: '127.0.0.1' is not ADDRESS:PORT");
	snprintf(text, sizeof(text), "[witness]\nlisten = 127.0.0.1:70000\nsecret_file = %s\n", secret_path);
	expect_conf_error(text, "2: listen: port must be a whole number from 1 to 65535, got '70000'");
	snprintf(text, sizeof(text), "[witness]\nlisten = 0.0.0.0:4800\nsecret_file = %s\n", secret_path);
	expect_conf_error(text, "2: listen: 0.0.0.0 cannot be used");
	expect_conf_error("[witness]\nlisten = 127.0.0.1:4800\n", "1: missing required key 'secret_file'");
	expect_conf_error("[witness]\nlisten = 127.0.0.1:4800\nsecret_file = relative\n",
	                  "3: secret_file: must be an absolute path");
	snprintf(text, sizeof(text), "[witness]\nlisten = 127.0.0.1:4800\nlisten = 127.0.0.1:4801\n"
	         "secret_file = %s\n", secret_path);
	expect_conf_error(text, "3: duplicate key 'listen' (first at line 2)");
	expect_conf_error("listen = 127.0.0.1:4800\n", "1: key outside a section");
	expect_conf_error("[witness]\nthis is not a key\n", "2: expected 'key = value'");
	expect_conf_error("", "1: missing section [witness]");
	snprintf(text, sizeof(text), "[witness]\nlisten = 127.0.0.1:4800\nsecret_file = %s/none\n", tmpdir);
	expect_conf_error(text, "3: secret_file '");
	{
		char shortsecret[PATH_MAX + 16];
		FILE *f;

		snprintf(shortsecret, sizeof(shortsecret), "%s/short", tmpdir);
		f = fopen(shortsecret, "w");
		assert_non_null(f);
		fputs("short\n", f);
		fclose(f);
		snprintf(text, sizeof(text), "[witness]\nlisten = 127.0.0.1:4800\nsecret_file = %s\n",
		         shortsecret);
		expect_conf_error(text, "3: secret_file '");
		expect_run(check, 1, "must hold 16 to 1024 bytes, holds 5");
	}
	{
		const char *missing[] = { "-c", "/nonexistent/witness.conf", NULL };

		expect_run(missing, 1, "/nonexistent/witness.conf: No such file or directory");
	}
}

static int start_daemon(uint16_t *port)
{
	const char *args[] = { "-c", conf, "--foreground", NULL };
	char text[PATH_MAX + 128];
	int fd = udp_bound(port);

	reap_child();
	/* The port was free a moment ago; nobody else binds on loopback here. */
	if (fd < 0)
		return -1;
	close(fd);
	snprintf(text, sizeof(text), "[witness]\nlisten = 127.0.0.1:%u\nsecret_file = %s\n", *port, secret_path);
	write_conf(text);
	child = spawn(args);
	return 0;
}

/* Sends one datagram from fd and waits (bounded) for an answer; its length or -1. */
static ssize_t ask(int fd, uint16_t port, const uint8_t *buf, size_t len, uint8_t *ans, uint32_t wait_ms)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port),
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (sendto(fd, buf, len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		return -1;
	if (poll(&p, 1, (int)wait_ms) != 1)
		return -1;
	return recv(fd, ans, WP_DATAGRAM_MAX, MSG_DONTWAIT);
}

/* Reads away late answers. */
static void drain(int fd)
{
	uint8_t junk[WP_DATAGRAM_MAX];
	struct pollfd p = { .fd = fd, .events = POLLIN };

	while (poll(&p, 1, 100) == 1 && recv(fd, junk, sizeof(junk), MSG_DONTWAIT) >= 0)
		;
}

static bool log_has(const char *s)
{
	char *out = slurp();
	bool found = strstr(out, s) != NULL;

	free(out);
	return found;
}

static int log_count(const char *s)
{
	char *out = slurp();
	int n = 0;

	for (const char *p = out; (p = strstr(p, s)); p++)
		n++;
	free(out);
	return n;
}

static bool wait_log(const char *s, uint32_t timeout_ms)
{
	uint64_t end = mono_ms() + timeout_ms;

	while (!log_has(s)) {
		if (mono_ms() >= end)
			return false;
		poll(NULL, 0, 10);
	}
	return true;
}

static void test_daemon_serves(void **st)
{
	uint8_t buf[WP_DATAGRAM_MAX], ans[WP_DATAGRAM_MAX];
	struct wp_request r;
	struct wp_answer a;
	unsigned char wrong[PROTO_KEY_LEN];
	char why[200], line[256];
	uint16_t port, myport;
	ssize_t n = -1;
	size_t len;
	int fd;

	assert_int_equal(start_daemon(&port), 0);
	fd = udp_bound(&myport);
	assert_true(fd >= 0);
	/* Until it is up, ask again (each request a new seq). */
	r = req("node1", WP_ACQUIRE, 3, true, 77, 0);
	r.lease_ms = 60000;     /* still held when it releases, seconds later */
	for (int i = 0; i < 100 && n < 0; i++) {
		r.seq++;
		assert_int_equal(wp_encode_request(&r, key, buf, &len), 0);
		n = ask(fd, port, buf, len, ans, 100);
	}
	assert_true(n > 0);
	drain(fd);
	assert_int_equal(wp_decode_answer(ans, (size_t)n, key, &a, why, sizeof(why)), WP_OK);
	/* Started just now: the quiet period lets only primary nodes in. */
	assert_true(a.granted);
	assert_string_equal(a.holder, "node1");
	assert_int_equal(a.term, 3);
	assert_true(a.seq <= r.seq);
	assert_true(wait_log("cluster c1: node1 holds the lease now (term 3, 60000 ms, runs the service", 2000));

	/* The same datagram again: a signed refusal. */
	n = ask(fd, port, buf, len, ans, 1000);
	assert_true(n > 0);
	assert_int_equal(wp_decode_answer(ans, (size_t)n, key, &a, why, sizeof(why)), WP_OK);
	assert_false(a.granted);
	assert_true(starts_with(a.error, "replayed request"));
	snprintf(line, sizeof(line), "request from 127.0.0.1:%u (cluster c1, node node1): replayed request", myport);
	assert_true(wait_log(line, 2000));

	/* Another node, taking over: refused, with the reason. */
	r = req("node2", WP_ACQUIRE, 4, false, 88, 1);
	assert_int_equal(wp_encode_request(&r, key, buf, &len), 0);
	n = ask(fd, port, buf, len, ans, 1000);
	assert_true(n > 0);
	assert_int_equal(wp_decode_answer(ans, (size_t)n, key, &a, why, sizeof(why)), WP_OK);
	assert_false(a.granted);
	assert_true(starts_with(a.error, "held by node1 (term 3) for "));
	assert_true(wait_log("cluster c1: refused node2 (term 4, takes over): held by node1", 2000));

	/* A forged request: no answer, one clear line, repeated ones held back. */
	derive("c1", wrong);
	wrong[0] ^= 1;
	r = req("node2", WP_ACQUIRE, 4, false, 88, 2);
	assert_int_equal(wp_encode_request(&r, wrong, buf, &len), 0);
	for (int i = 0; i < 5; i++)
		assert_true(ask(fd, port, buf, len, ans, i ? 20 : 300) < 0);
	snprintf(line, sizeof(line), "request from 127.0.0.1:%u (cluster c1, node node2): bad signature; ignored",
	         myport);
	assert_true(wait_log(line, 2000));
	assert_int_equal(log_count("bad signature"), 1);
	poll(NULL, 0, 1100);
	assert_true(ask(fd, port, buf, len, ans, 100) < 0);
	assert_true(wait_log("bad signature; ignored (and 4 more like it)", 2000));
	/* Garbage and a lease out of range: ignored, said why. */
	assert_true(ask(fd, port, (const uint8_t *)"hello", 5, ans, 200) < 0);
	assert_true(wait_log("wrong size (5 bytes); ignored", 2000));
	r = req("node2", WP_ACQUIRE, 4, false, 88, 3);
	r.lease_ms = 50;
	{
		/* The encoder does not judge lease_ms: the witness does. */
		assert_int_equal(wp_encode_request(&r, key, buf, &len), 0);
	}
	assert_true(ask(fd, port, buf, len, ans, 200) < 0);
	assert_true(wait_log("(cluster c1, node node2): lease_ms 50 is outside 100 to 600000; ignored", 2000));

	/* The holder releases. */
	r = req("node1", WP_RELEASE, 3, true, 77, 1000);
	assert_int_equal(wp_encode_request(&r, key, buf, &len), 0);
	n = ask(fd, port, buf, len, ans, 1000);
	assert_true(n > 0);
	assert_int_equal(wp_decode_answer(ans, (size_t)n, key, &a, why, sizeof(why)), WP_OK);
	assert_false(a.granted);
	assert_string_equal(a.error, "");
	assert_string_equal(a.holder, "");
	assert_true(wait_log("cluster c1: node1 released the lease (term 3)", 2000));
	close(fd);

	/* SIGTERM: a clean exit. */
	kill(child, SIGTERM);
	assert_int_equal(wait_exit(child, 3000), 0);
	child = -1;
	assert_true(log_has("received; exiting"));
}

static void test_daemon_with_client(void **st)
{
	struct owner a = { 0 };
	const char *args[] = { "-c", conf, "--foreground", NULL };
	uint16_t port;
	int busy;
	char expect[128];

	assert_int_equal(start_daemon(&port), 0);
	make_cfg(&ccfg, port, 300);
	a.w = wclient_new(base, &ccfg, 0, 9000, on_changed, &a);
	assert_non_null(a.w);
	want(&a, WC_HOLD, 2);
	assert_true(run_until(base, is_granted, &a, 3000));
	assert_true(a.granted);
	/* The witness goes away: the lease runs out on the node. */
	kill(child, SIGTERM);
	assert_int_equal(wait_exit(child, 3000), 0);
	child = -1;
	assert_true(run_until(base, not_granted, &a, 1000));
	assert_true(run_until(base, owner_told_not_granted, &a, 1000));
	wclient_free(a.w);

	/* Its port taken: a clear error naming the address. */
	busy = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	{
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
		                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

		assert_int_equal(bind(busy, (struct sockaddr *)&sin, sizeof(sin)), 0);
	}
	snprintf(expect, sizeof(expect), "cannot listen on 127.0.0.1:%u ('listen' in ", port);
	expect_run(args, 1, expect);
	assert_true(log_has("): Address already in use"));
	close(busy);
}

static int group_setup(void **st)
{
	log_init("ut-witness", true, LOG_LVL_ERROR);
	signal(SIGPIPE, SIG_IGN);
	derive("c1", key);
	return 0;
}

int main(void)
{
	const struct CMUnitTest proto[] = {
		cmocka_unit_test(test_request_round_trip),
		cmocka_unit_test(test_answer_round_trip),
		cmocka_unit_test(test_bad_mac),
		cmocka_unit_test(test_malformed_requests),
		cmocka_unit_test(test_malformed_datagrams),
		cmocka_unit_test(test_encode_refuses),
		cmocka_unit_test(test_rules_grant_renew_held),
		cmocka_unit_test(test_rules_expiry),
		cmocka_unit_test(test_rules_old_term),
		cmocka_unit_test(test_rules_replay),
		cmocka_unit_test(test_rules_quiet_period),
		cmocka_unit_test(test_rules_release),
		cmocka_unit_test(test_rules_limits),
		cmocka_unit_test(test_rules_random_schedules),
	};
	const struct CMUnitTest client[] = {
		cmocka_unit_test_setup_teardown(test_client_hold_and_take, client_setup, client_teardown),
		cmocka_unit_test_setup_teardown(test_client_lease_runs_out, client_setup, client_teardown),
		cmocka_unit_test_setup_teardown(test_client_late_grant_does_not_revive, client_setup, client_teardown),
		cmocka_unit_test_setup_teardown(test_client_ignores_bad_answers, client_setup, client_teardown),
		cmocka_unit_test_setup_teardown(test_client_quiet_and_no_witness, client_setup, client_teardown),
	};
	const struct CMUnitTest daemon_tests[] = {
		cmocka_unit_test_teardown(test_daemon_config, reap_teardown),
		cmocka_unit_test_teardown(test_daemon_serves, reap_teardown),
		cmocka_unit_test_teardown(test_daemon_with_client, reap_teardown),
	};
	int rc = 0;

	rc |= cmocka_run_group_tests_name("witness protocol and rules", proto, group_setup, NULL);
	rc |= cmocka_run_group_tests_name("witness client", client, group_setup, NULL);
	rc |= cmocka_run_group_tests_name("vigil-witness daemon", daemon_tests, daemon_setup, daemon_teardown);
	return rc;
}
