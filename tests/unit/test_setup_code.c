/* The setup wizard's security code (src/vigilctl_setup_chan.c) and its pure
 * parsers (src/vigilctl_setup_conf.c, src/vigilctl_setup.c): the code is
 * RFC 4648 base32 of the agent's key hash and of random bytes, checked here
 * against known vectors and a reference encoder of this file; what node1
 * sees over TLS is the hash of the certificate node2 made its code from;
 * the address, name and console parsers refuse bad input with the message
 * the operator reads (docs/setup.md). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/config.h"
#include "pki/pki.h"
#include "testutil.h"
#include "vigilctl_setup_int.h"

static const char B32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* A reference base32 encoder, written differently from the one under test:
 * bits are shifted into an accumulator one byte at a time (RFC 4648 §6,
 * no padding, the last group filled with zero bits). */
static void ref_base32(const unsigned char *in, size_t inlen, char *out, size_t nchars)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0, i = 0;

	while (o < nchars) {
		if (bits < 5) {
			acc = acc << 8 | (i < inlen ? in[i] : 0);
			i++;
			bits += 8;
		}
		out[o++] = B32[(acc >> (bits - 5)) & 31];
		bits -= 5;
	}
	out[o] = '\0';
}

/* The 20 characters of a displayed code (dashes dropped). */
static void undash(const char *code, char out[SETUP_CODE_CHARS + 1])
{
	size_t n = 0;

	for (; *code; code++)
		if (*code != '-')
			out[n++] = *code;
	out[n] = '\0';
}

static struct in_addr ip4(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a;
}

/* ---- the code ---- */

/* RFC 4648 §10 vectors: base32("foobar") = MZXW6YTBOI======,
 * base32("fooba") = MZXW6YTB. A key hash starting with "foobar" and then
 * zeros gives MZXW6YTBOI, then AA (zero bits); the random part "fooba"
 * gives MZXW6YTB. */
static void test_code_rfc4648_vectors(void **state)
{
	unsigned char hash[32] = "foobar", rnd[SETUP_CODE_RAND_BYTES] = { 'f', 'o', 'o', 'b', 'a' };
	char code[SETUP_CODE_TEXT];

	(void)state;
	assert_int_equal(setup_code_make(hash, rnd, code), 0);
	assert_string_equal(code, "MZXW-6YTB-OIAA-MZXW-6YTB");

	memset(hash, 0, sizeof(hash));
	memset(rnd, 0, sizeof(rnd));
	setup_code_make(hash, rnd, code);
	assert_string_equal(code, "AAAA-AAAA-AAAA-AAAA-AAAA");
	memset(hash, 0xff, sizeof(hash));
	memset(rnd, 0xff, sizeof(rnd));
	setup_code_make(hash, rnd, code);
	assert_string_equal(code, "7777-7777-7777-7777-7777");
}

/* SHA-256("abc") = ba7816bf 8f01cfea ...: 10111 01001 11100 00001 01101
 * 01111 11100 01111 00000 00111 00111 11110 = X J 4 B N P 4 P A H H 6
 * (worked out by hand from FIPS 180-2's example digest). */
static void test_code_key_part_is_the_key_hash(void **state)
{
	unsigned char hash[32], rnd[SETUP_CODE_RAND_BYTES] = { 1, 2, 3, 4, 5 };
	unsigned int hlen = 0;
	char code[SETUP_CODE_TEXT], raw[SETUP_CODE_CHARS + 1], want[SETUP_CODE_KEY_CHARS + 1];

	(void)state;
	assert_int_equal(EVP_Digest("abc", 3, hash, &hlen, EVP_sha256(), NULL), 1);
	assert_int_equal(hlen, 32);
	assert_int_equal(hash[0], 0xba);
	setup_code_make(hash, rnd, code);
	assert_memory_equal(code, "XJ4B-NP4P-AHH6-", 15);
	/* The random part: 01020304 05 = 00000 00100 00001 00000 00110 00001 00000 00101. */
	assert_string_equal(code + 15, "AEBA-GBAF");

	/* Many hashes against the reference encoder. */
	for (int round = 0; round < 200; round++) {
		unsigned char seed[4] = { (unsigned char)round, (unsigned char)(round >> 8), 0x5a, 0xa5 };

		EVP_Digest(seed, sizeof(seed), hash, NULL, EVP_sha256(), NULL);
		memcpy(rnd, hash + 27, sizeof(rnd));
		setup_code_make(hash, rnd, code);
		undash(code, raw);
		ref_base32(hash, sizeof(hash), want, SETUP_CODE_KEY_CHARS);
		assert_memory_equal(raw, want, SETUP_CODE_KEY_CHARS);
		ref_base32(rnd, sizeof(rnd), want, SETUP_CODE_CHARS - SETUP_CODE_KEY_CHARS);
		assert_string_equal(raw + SETUP_CODE_KEY_CHARS, want);
	}
}

static void test_code_shape(void **state)
{
	unsigned char hash[32], rnd[SETUP_CODE_RAND_BYTES];
	char code[SETUP_CODE_TEXT];

	(void)state;
	for (int round = 0; round < 100; round++) {
		assert_int_equal(random_bytes(hash, sizeof(hash)), 0);
		assert_int_equal(random_bytes(rnd, sizeof(rnd)), 0);
		memset(code, 'x', sizeof(code));
		setup_code_make(hash, rnd, code);
		/* "ABCD-EFGH-IJKL-MNOP-QRST": 5 groups of 4, 4 dashes, NUL-terminated. */
		assert_int_equal(strlen(code), SETUP_CODE_TEXT - 1);
		for (int i = 0; i < SETUP_CODE_TEXT - 1; i++) {
			if (i % 5 == 4)
				assert_int_equal(code[i], '-');
			else
				assert_non_null(strchr(B32, code[i]));
		}
	}
}

static void test_normalize_accepts_what_people_type(void **state)
{
	static const char *const same[] = {
		"MZXW-6YTB-OIAA-MZXW-6YTB",
		"mzxw-6ytb-oiaa-mzxw-6ytb",
		"MZXW6YTBOIAAMZXW6YTB",
		"  mzxw 6ytb\toiaa-MZXW  6YTB ",
		"M-Z-X-W-6-Y-T-B-O-I-A-A-M-Z-X-W-6-Y-T-B--",
	};
	char out[SETUP_CODE_CHARS + 1], err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		memset(out, 'x', sizeof(out));
		err[0] = '\0';
		assert_int_equal(setup_code_normalize(same[i], out, err, sizeof(err)), 0);
		assert_string_equal(out, "MZXW6YTBOIAAMZXW6YTB");
		assert_string_equal(err, "");
	}
}

static void test_normalize_refuses_wrong_codes(void **state)
{
	static const char *const bad[] = {
		"",                               /* nothing */
		"----",                           /* nothing but dashes */
		"MZXW-6YTB-OIAA-MZXW-6YT",        /* 19 characters */
		"MZXW-6YTB-OIAA-MZXW-6YTBA",      /* 21 */
		"MZXW-6YTB-OIAA-MZXW-6YTB-MZXW",  /* 24 */
		"MZXW-6YTB-OIAA-MZXW-6YT1",       /* 1 is not base32 */
		"MZXW-6YTB-OIAA-MZXW-6YT0",       /* nor 0 */
		"MZXW-6YTB-OIAA-MZXW-6YT8",       /* nor 8 */
		"MZXW_6YTB_OIAA_MZXW_6YTB",       /* other separators */
		"MZXW.6YTB.OIAA.MZXW.6YTB",
		"MZXW-6YTB-OIAA-MZXW-6YTB\n",     /* a newline is no blank */
		"MZXW-6YTB-OIAA-MZXW-6YT\xc3\x89", /* UTF-8 É */
	};
	char out[SETUP_CODE_CHARS + 1], err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(setup_code_normalize(bad[i], out, err, sizeof(err)), -1);
		/* What was given, and what is expected. */
		assert_non_null(strstr(err, "security code '"));
		assert_non_null(strstr(err, "expected 20 characters of A-Z and 2-7 in groups of 4"));
		assert_non_null(strstr(err, "ABCD-EFGH-IJKL-MNOP-QRST"));
	}
	/* The given text is quoted, cut short if long. */
	{
		char longer[400];

		memset(longer, 'A', sizeof(longer) - 1);
		longer[sizeof(longer) - 1] = '\0';
		assert_int_equal(setup_code_normalize(longer, out, err, sizeof(err)), -1);
		assert_true(strlen(err) < 300);
		/* A small err buffer is not overrun. */
		memset(err, 'z', sizeof(err));
		assert_int_equal(setup_code_normalize("X", out, err, 16), -1);
		assert_int_equal(strlen(err), 15);
	}
}

static void test_fits_key(void **state)
{
	unsigned char hash[32], other[32], rnd[SETUP_CODE_RAND_BYTES] = { 9, 8, 7, 6, 5 };
	char code[SETUP_CODE_TEXT], norm[SETUP_CODE_CHARS + 1], changed[SETUP_CODE_CHARS + 1], err[256];

	(void)state;
	assert_int_equal(random_bytes(hash, sizeof(hash)), 0);
	setup_code_make(hash, rnd, code);
	assert_int_equal(setup_code_normalize(code, norm, err, sizeof(err)), 0);
	assert_true(setup_code_fits_key(norm, hash));

	/* Any one of the 12 key characters changed: refused. */
	for (int at = 0; at < SETUP_CODE_KEY_CHARS; at++)
		for (int d = 1; d < 32; d++) {
			memcpy(changed, norm, sizeof(changed));
			changed[at] = B32[(strchr(B32, norm[at]) - B32 + d) % 32];
			assert_false(setup_code_fits_key(changed, hash));
		}
	/* The random part does not name the key. */
	for (int at = SETUP_CODE_KEY_CHARS; at < SETUP_CODE_CHARS; at++) {
		memcpy(changed, norm, sizeof(changed));
		changed[at] = B32[(strchr(B32, norm[at]) - B32 + 1) % 32];
		assert_true(setup_code_fits_key(changed, hash));
	}
	/* Another key: one bit of the hash changes the code (in its first 60
	 * bits) or not (after them). */
	memcpy(other, hash, sizeof(other));
	other[0] ^= 0x01;
	assert_false(setup_code_fits_key(norm, other));
	memcpy(other, hash, sizeof(other));
	other[7] ^= 0x10;               /* bit 59: the last one the code holds */
	assert_false(setup_code_fits_key(norm, other));
	memcpy(other, hash, sizeof(other));
	other[7] ^= 0x08;               /* bit 60: beyond it */
	assert_true(setup_code_fits_key(norm, other));
	memcpy(other, hash, sizeof(other));
	other[31] ^= 0x80;
	assert_true(setup_code_fits_key(norm, other));
}

static void test_code_equal(void **state)
{
	char a[] = "MZXW6YTBOIAAMZXW6YTB", b[sizeof(a)];

	(void)state;
	memcpy(b, a, sizeof(a));
	assert_true(setup_code_equal(a, b));
	for (int at = 0; at < SETUP_CODE_CHARS; at++) {
		memcpy(b, a, sizeof(a));
		b[at] = b[at] == 'A' ? 'B' : 'A';
		assert_false(setup_code_equal(a, b));
		assert_false(setup_code_equal(b, a));
	}
	/* Only whole normalized codes are equal: not prefixes, not dashed. */
	assert_false(setup_code_equal(a, "MZXW6YTBOIAAMZXW6YT"));
	assert_false(setup_code_equal("MZXW6YTBOIAAMZXW6YT", "MZXW6YTBOIAAMZXW6YT"));
	assert_false(setup_code_equal(a, "MZXW6YTBOIAAMZXW6YTBA"));
	assert_false(setup_code_equal("MZXW6YTBOIAAMZXW6YTBA", a));
	assert_false(setup_code_equal("MZXW-6YTB-OIAA-MZXW-6YTB", "MZXW-6YTB-OIAA-MZXW-6YTB"));
	assert_false(setup_code_equal("", ""));
}

/* ---- the key hash: file and TLS see the same ---- */

/* SHA-256 of the DER SubjectPublicKeyInfo, computed here through another
 * OpenSSL path than setup_cert_keyhash's. */
static void ref_keyhash(const char *certfile, unsigned char out[32])
{
	FILE *f = fopen(certfile, "r");
	X509 *x;
	unsigned char *der = NULL;
	int len;

	assert_non_null(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	assert_true(len > 0);
	assert_int_equal(EVP_Digest(der, (size_t)len, out, NULL, EVP_sha256(), NULL), 1);
	OPENSSL_free(der);
	X509_free(x);
}

/* The child: node2's agent side, one connection: it echoes "x" back. */
static void serve_once(int lfd, const char *key, const char *cert)
{
	char err[512];
	struct setup_chan c;
	struct ssl_ctx_st *ctx;
	json_t *m, *ans;
	int fd;

	alarm(30);              /* never outlives a failed test */
	ctx = setup_chan_server_ctx(key, cert, err, sizeof(err));
	fd = accept(lfd, NULL, NULL);
	if (!ctx || fd < 0 || setup_chan_accept(&c, ctx, fd, err, sizeof(err)) < 0)
		_exit(2);
	if (!(m = setup_chan_recv(&c, err, sizeof(err))))
		_exit(3);
	ans = json_pack("{s:O}", "echo", json_object_get(m, "x"));
	if (!ans || setup_chan_send(&c, ans, err, sizeof(err)) < 0)
		_exit(4);
	setup_chan_close(&c);
	_exit(0);
}

static void test_tls_peer_key_is_the_code_key(void **state)
{
	char dir[PATH_MAX], key[PATH_MAX], cert[PATH_MAX], err[1024], code[SETUP_CODE_TEXT];
	char norm[SETUP_CODE_CHARS + 1];
	unsigned char file_hash[32], ref_hash[32], seen[32], rnd[SETUP_CODE_RAND_BYTES] = { 0 };
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	struct setup_chan c;
	json_t *m, *ans;
	int lfd, status = 0;
	pid_t pid;

	(void)state;
	assert_int_equal(tu_mkdtemp(dir, "setup-code"), 0);
	/* What `setup secondary` does: a throwaway self-signed pair. */
	assert_int_equal(pki_make_ca(dir, "setup", 2, err, sizeof(err)), 0);
	FMT(key, sizeof(key), "%s/%s", dir, SETUP_AGENT_KEY);
	FMT(cert, sizeof(cert), "%s/%s", dir, SETUP_AGENT_CERT);
	assert_int_equal(setup_cert_keyhash(cert, file_hash, err, sizeof(err)), 0);
	ref_keyhash(cert, ref_hash);
	assert_memory_equal(file_hash, ref_hash, 32);
	setup_code_make(file_hash, rnd, code);
	assert_int_equal(setup_code_normalize(code, norm, err, sizeof(err)), 0);

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		serve_once(lfd, key, cert);
	close(lfd);

	/* node1's side: the key it sees is the one the code names. */
	assert_int_equal(setup_chan_connect(&c, sa.sin_addr, ntohs(sa.sin_port), seen, err, sizeof(err)), 0);
	assert_memory_equal(seen, file_hash, 32);
	assert_true(setup_code_fits_key(norm, seen));
	m = json_pack("{s:s}", "x", "hello node2");
	assert_int_equal(setup_chan_send(&c, m, err, sizeof(err)), 0);
	json_decref(m);
	ans = setup_chan_recv(&c, err, sizeof(err));
	assert_non_null(ans);
	assert_string_equal(json_string_value(json_object_get(ans, "echo")), "hello node2");
	json_decref(ans);
	setup_chan_close(&c);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	/* Another pair (another machine): its key does not fit the code. */
	tu_rm_rf(dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(pki_make_ca(dir, "setup", 2, err, sizeof(err)), 0);
	assert_int_equal(setup_cert_keyhash(cert, seen, err, sizeof(err)), 0);
	assert_memory_not_equal(seen, file_hash, 32);
	assert_false(setup_code_fits_key(norm, seen));

	/* A file without a certificate. */
	assert_int_equal(setup_cert_keyhash(key, seen, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no certificate in it"));
	tu_rm_rf(dir);
	assert_int_equal(setup_cert_keyhash(cert, seen, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot read"));
}

/* ---- addresses ---- */

static void test_parse_ipv4(void **state)
{
	static const char *const bad[] = { "", "10.1", "10.0.0", "10.0.0.256", "10.0.0.1 ", " 10.0.0.1",
					   "10.0.0.1/24", "::1", "node2", "10.0.0.-1", "1.2.3.4.5" };
	struct in_addr a;

	(void)state;
	assert_int_equal(setup_parse_ipv4("10.0.0.2", &a), 0);
	assert_int_equal(a.s_addr, ip4("10.0.0.2").s_addr);
	assert_int_equal(setup_parse_ipv4("255.255.255.255", &a), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(setup_parse_ipv4(bad[i], &a), -1);
}

static void test_parse_cidr(void **state)
{
	static const char *const bad_addr[] = { "10.0.0/24", "/24", "", "vip/24", "10.0.0.100.1/24",
						"10.0.0.1000/24", "0123456789012345678/24" };
	static const char *const bad_prefix[] = { "10.0.0.100/", "10.0.0.100/0", "10.0.0.100/33",
						  "10.0.0.100/024x", "10.0.0.100/-1", "10.0.0.100/+24",
						  "10.0.0.100/ 24", "10.0.0.100/24/8", "10.0.0.100/255.255.255.0" };
	struct in_addr a;
	int prefix = 99;
	char err[256];

	(void)state;
	assert_int_equal(setup_parse_cidr("10.0.0.100/24", &a, &prefix, err, sizeof(err)), 0);
	assert_int_equal(a.s_addr, ip4("10.0.0.100").s_addr);
	assert_int_equal(prefix, 24);
	assert_int_equal(setup_parse_cidr("192.168.1.7/32", &a, &prefix, err, sizeof(err)), 0);
	assert_int_equal(prefix, 32);
	assert_int_equal(setup_parse_cidr("10.0.0.100/1", &a, &prefix, err, sizeof(err)), 0);
	assert_int_equal(prefix, 1);
	/* No prefix: -1, node1 takes its network's. */
	assert_int_equal(setup_parse_cidr("10.0.0.100", &a, &prefix, err, sizeof(err)), 0);
	assert_int_equal(prefix, -1);

	for (size_t i = 0; i < sizeof(bad_addr) / sizeof(bad_addr[0]); i++) {
		err[0] = '\0';
		assert_int_equal(setup_parse_cidr(bad_addr[i], &a, &prefix, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "is not an IPv4 address (expected like 10.0.0.100/24)"));
	}
	for (size_t i = 0; i < sizeof(bad_prefix) / sizeof(bad_prefix[0]); i++) {
		err[0] = '\0';
		assert_int_equal(setup_parse_cidr(bad_prefix[i], &a, &prefix, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "the prefix length after '/' must be a number from 1 to 32"));
		/* It quotes what was given. */
		assert_non_null(strstr(err, bad_prefix[i]));
	}
}

static void test_parse_addr_list(void **state)
{
	struct in_addr v[CFG_MAX_NETS];
	char err[512], longer[300];
	int n = -1;

	(void)state;
	assert_int_equal(setup_parse_addr_list("--peer", "10.0.0.2", v, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].s_addr, ip4("10.0.0.2").s_addr);
	assert_int_equal(setup_parse_addr_list("--peer", " 10.0.0.2 , 10.0.1.2,10.0.2.2,10.0.3.2 ", v, &n, err,
					       sizeof(err)), 0);
	assert_int_equal(n, 4);
	assert_int_equal(v[1].s_addr, ip4("10.0.1.2").s_addr);
	assert_int_equal(v[3].s_addr, ip4("10.0.3.2").s_addr);
	/* Empty items between commas are skipped. */
	assert_int_equal(setup_parse_addr_list("--peer", ",10.0.0.2,,10.0.1.2,", v, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);

	assert_int_equal(setup_parse_addr_list("--peer", "", v, &n, err, sizeof(err)), -1);
	assert_string_equal(err, "--peer: no address given");
	assert_int_equal(setup_parse_addr_list("--peer", ",,", v, &n, err, sizeof(err)), -1);
	assert_string_equal(err, "--peer: no address given");
	assert_int_equal(setup_parse_addr_list("--address", "10.0.0.1,node2", v, &n, err, sizeof(err)), -1);
	assert_string_equal(err, "--address '10.0.0.1,node2': 'node2' is not an IPv4 address");
	assert_int_equal(setup_parse_addr_list("--peer", "10.0.0.2,10.0.1", v, &n, err, sizeof(err)), -1);
	assert_string_equal(err, "--peer '10.0.0.2,10.0.1': '10.0.1' is not an IPv4 address");
	assert_int_equal(setup_parse_addr_list("--peer", "10.0.0.2, 10.0.0.2", v, &n, err, sizeof(err)), -1);
	assert_string_equal(err, "--peer '10.0.0.2, 10.0.0.2': 10.0.0.2 is given twice");
	assert_int_equal(setup_parse_addr_list("--peer", "1.0.0.1,1.0.0.2,1.0.0.3,1.0.0.4,1.0.0.5", v, &n, err,
					       sizeof(err)), -1);
	assert_non_null(strstr(err, "at most 4 addresses (one per heartbeat network)"));
	/* Writes no more than CFG_MAX_NETS entries. */
	assert_int_equal(n, CFG_MAX_NETS);
	memset(longer, '1', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	assert_int_equal(setup_parse_addr_list("--peer", longer, v, &n, err, sizeof(err)), -1);
	assert_string_equal(err, "--peer: too long");
}

static void test_same_net(void **state)
{
	(void)state;
	assert_true(setup_same_net(ip4("10.0.0.1"), ip4("10.0.0.200"), 24));
	assert_false(setup_same_net(ip4("10.0.0.1"), ip4("10.0.1.1"), 24));
	assert_true(setup_same_net(ip4("10.0.0.1"), ip4("10.0.1.1"), 16));
	assert_true(setup_same_net(ip4("10.0.0.1"), ip4("10.0.0.127"), 25));
	assert_false(setup_same_net(ip4("10.0.0.1"), ip4("10.0.0.128"), 25));
	assert_true(setup_same_net(ip4("10.0.0.1"), ip4("10.0.0.1"), 32));
	assert_false(setup_same_net(ip4("10.0.0.1"), ip4("10.0.0.2"), 32));
	assert_true(setup_same_net(ip4("10.0.0.1"), ip4("11.0.0.1"), 7));
	assert_false(setup_same_net(ip4("10.0.0.1"), ip4("11.0.0.1"), 8));
	assert_true(setup_same_net(ip4("1.2.3.4"), ip4("200.1.1.1"), 0));
	assert_false(setup_same_net(ip4("1.2.3.4"), ip4("200.1.1.1"), 1));
}

static void test_ifs_lookup_and_json(void **state)
{
	struct setup_ifs ifs = { .n = 3 }, back;
	char err[256];
	json_t *j, *bad;

	(void)state;
	snprintf(ifs.v[0].name, IF_NAMESIZE, "eth0");
	ifs.v[0].addr = ip4("10.0.0.2");
	ifs.v[0].prefix = 24;
	snprintf(ifs.v[1].name, IF_NAMESIZE, "eth1");
	ifs.v[1].addr = ip4("10.0.1.2");
	ifs.v[1].prefix = 24;
	snprintf(ifs.v[2].name, IF_NAMESIZE, "wg0");
	ifs.v[2].addr = ip4("172.16.0.2");
	ifs.v[2].prefix = 32;

	assert_ptr_equal(setup_ifs_find(&ifs, ip4("10.0.1.2")), &ifs.v[1]);
	assert_null(setup_ifs_find(&ifs, ip4("10.0.1.3")));
	/* The interface of a network: by its own prefix, or the one given. */
	assert_ptr_equal(setup_ifs_subnet(&ifs, ip4("10.0.1.100"), -1), &ifs.v[1]);
	assert_null(setup_ifs_subnet(&ifs, ip4("10.0.2.100"), -1));
	assert_ptr_equal(setup_ifs_subnet(&ifs, ip4("10.0.2.100"), 16), &ifs.v[0]);
	/* Never the address itself. */
	assert_null(setup_ifs_subnet(&ifs, ip4("172.16.0.2"), 24));
	assert_null(setup_ifs_subnet(&ifs, ip4("10.0.0.2"), 24));

	j = setup_ifs_json(&ifs);
	assert_int_equal(json_array_size(j), 3);
	assert_int_equal(setup_ifs_from_json(j, &back, err, sizeof(err)), 0);
	assert_int_equal(back.n, 3);
	for (int i = 0; i < 3; i++) {
		assert_string_equal(back.v[i].name, ifs.v[i].name);
		assert_int_equal(back.v[i].addr.s_addr, ifs.v[i].addr.s_addr);
		assert_int_equal(back.v[i].prefix, ifs.v[i].prefix);
	}
	/* What node2 sends is checked. */
	bad = json_deep_copy(j);
	json_object_set_new(json_array_get(bad, 1), "prefix", json_integer(33));
	assert_int_equal(setup_ifs_from_json(bad, &back, err, sizeof(err)), -1);
	assert_string_equal(err, "node2 sent a malformed address entry (#2)");
	json_decref(bad);
	bad = json_deep_copy(j);
	json_object_set_new(json_array_get(bad, 2), "interface", json_string("../x"));
	assert_int_equal(setup_ifs_from_json(bad, &back, err, sizeof(err)), -1);
	assert_string_equal(err, "node2 sent a malformed address entry (#3)");
	json_decref(bad);
	bad = json_deep_copy(j);
	json_object_set_new(json_array_get(bad, 0), "address", json_string("10.0.0"));
	assert_int_equal(setup_ifs_from_json(bad, &back, err, sizeof(err)), -1);
	json_decref(bad);
	assert_int_equal(setup_ifs_from_json(NULL, &back, err, sizeof(err)), -1);
	assert_string_equal(err, "node2's addresses are missing from its answer");
	json_decref(j);
}

/* ---- names, console, paths ---- */

static void test_check_name(void **state)
{
	char name[80], err[256];

	(void)state;
	assert_int_equal(setup_check_name("--name", "vms", err, sizeof(err)), 0);
	assert_int_equal(setup_check_name("--node1", "node-1_a.B9", err, sizeof(err)), 0);
	memset(name, 'n', 63);
	name[63] = '\0';
	assert_int_equal(setup_check_name("--node2", name, err, sizeof(err)), 0);
	name[63] = 'n';
	name[64] = '\0';
	assert_int_equal(setup_check_name("--node2", name, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "use 1 to 63 letters, digits, '-', '_' or '.'"));

	assert_int_equal(setup_check_name("--name", "", err, sizeof(err)), -1);
	assert_string_equal(err, "--name '': use 1 to 63 letters, digits, '-', '_' or '.'");
	assert_int_equal(setup_check_name("--node1", "node 1", err, sizeof(err)), -1);
	assert_string_equal(err, "--node1 'node 1': use 1 to 63 letters, digits, '-', '_' or '.'");
	assert_int_equal(setup_check_name("--node1", "a/b", err, sizeof(err)), -1);
	assert_int_equal(setup_check_name("--node1", "n\xc5\x93ud", err, sizeof(err)), -1);
	assert_int_equal(setup_check_name("--node1", "node]", err, sizeof(err)), -1);
}

static void test_console_choice(void **state)
{
	enum setup_console c = SETUP_CONSOLE_HTTPS;

	(void)state;
	assert_int_equal(setup_console_parse("http", &c), 0);
	assert_int_equal(c, SETUP_CONSOLE_HTTP);
	assert_int_equal(setup_console_parse("both", &c), 0);
	assert_int_equal(c, SETUP_CONSOLE_BOTH);
	assert_int_equal(setup_console_parse("https", &c), 0);
	assert_int_equal(c, SETUP_CONSOLE_HTTPS);
	for (int i = SETUP_CONSOLE_HTTPS; i <= SETUP_CONSOLE_BOTH; i++) {
		enum setup_console back;

		assert_int_equal(setup_console_parse(setup_console_str((enum setup_console)i), &back), 0);
		assert_int_equal(back, i);
	}
	c = SETUP_CONSOLE_BOTH;
	assert_int_equal(setup_console_parse("HTTPS", &c), -1);
	assert_int_equal(setup_console_parse("--https", &c), -1);
	assert_int_equal(setup_console_parse("", &c), -1);
	assert_int_equal(c, SETUP_CONSOLE_BOTH);
}

static void test_paths(void **state)
{
	struct setup_paths p;
	char err[512], cwd[PATH_MAX], want[PATH_MAX + 32];

	(void)state;
	assert_int_equal(setup_paths_init("/etc/vigil/vigil.conf", &p, err, sizeof(err)), 0);
	assert_string_equal(p.config, "/etc/vigil/vigil.conf");
	assert_string_equal(p.dir, "/etc/vigil");
	assert_string_equal(p.secret, "/etc/vigil/secret");
	assert_string_equal(p.passwd, "/etc/vigil/console.passwd");
	assert_string_equal(p.pki, "/etc/vigil/pki");
	assert_string_equal(p.state, "/etc/vigil/setup");
	assert_string_equal(p.export_ca, "/etc/vigil/cacert-export.crt");

	assert_int_equal(setup_paths_init("/vigil.conf", &p, err, sizeof(err)), 0);
	assert_string_equal(p.dir, "/");
	assert_string_equal(p.secret, "/secret");

	/* Relative: made absolute (vigild runs from elsewhere). */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(setup_paths_init("x/v.conf", &p, err, sizeof(err)), 0);
	FMT(want, sizeof(want), "%s/x/v.conf", strcmp(cwd, "/") ? cwd : "");
	assert_string_equal(p.config, want);
	FMT(want, sizeof(want), "%s/x/secret", strcmp(cwd, "/") ? cwd : "");
	assert_string_equal(p.secret, want);

	assert_int_equal(setup_paths_init("", &p, err, sizeof(err)), -1);
	assert_string_equal(err, "-c: empty config path");
	assert_int_equal(setup_paths_init("/etc/vigil/", &p, err, sizeof(err)), -1);
	assert_string_equal(err, "-c /etc/vigil/: a file name is needed, not a directory");
}

/* ---- the generated config ---- */

static void fill_cluster(struct setup_cluster *c, enum setup_console console)
{
	*c = (struct setup_cluster){ .nnets = 2, .vip_prefix = 24, .console = console };
	snprintf(c->name, sizeof(c->name), "vms");
	snprintf(c->node[0], sizeof(c->node[0]), "alpha");
	snprintf(c->node[1], sizeof(c->node[1]), "beta");
	c->addr[0][0] = ip4("10.0.0.1");
	c->addr[0][1] = ip4("10.0.1.1");
	c->addr[1][0] = ip4("10.0.0.2");
	c->addr[1][1] = ip4("10.0.1.2");
	c->vip = ip4("10.0.0.100");
	snprintf(c->vip_if[0], IF_NAMESIZE, "eth0");
	snprintf(c->vip_if[1], IF_NAMESIZE, "ens3");
}

static void load_text(const char *dir, const char *text, struct config *cfg)
{
	char path[PATH_MAX], err[1024];

	FMT(path, sizeof(path), "%s/check.conf", dir);
	assert_int_equal(write_file_atomic(path, text, strlen(text), 0600), 0);
	err[0] = '\0';
	if (config_load_flags(path, cfg, CONFIG_NO_SECRET, err, sizeof(err)) < 0)
		fail_msg("the generated config does not load: %s\n%s", err, text);
}

static void test_config_text(void **state)
{
	struct setup_paths p;
	struct setup_cluster c;
	struct config *cfg = calloc(1, sizeof(*cfg));
	char dir[PATH_MAX], conf[PATH_MAX], err[512], data[PATH_MAX], aside[PATH_MAX];
	char *t0, *t1, *nl0, *nl1;

	(void)state;
	assert_non_null(cfg);
	assert_int_equal(tu_mkdtemp(dir, "setup-conf"), 0);
	FMT(conf, sizeof(conf), "%s/vigil.conf", dir);
	assert_int_equal(setup_paths_init(conf, &p, err, sizeof(err)), 0);

	fill_cluster(&c, SETUP_CONSOLE_HTTPS);
	t0 = setup_config_text(&c, 0, &p);
	t1 = setup_config_text(&c, 1, &p);
	assert_non_null(t0);
	assert_non_null(t1);
	/* Both load, with what was asked. */
	load_text(dir, t0, cfg);
	assert_string_equal(cfg->cluster_name, "vms");
	assert_string_equal(cfg->nodes[0].name, "alpha");
	assert_string_equal(cfg->nodes[1].name, "beta");
	assert_int_equal(cfg->nodes[1].naddr, 2);
	assert_int_equal(cfg->nodes[1].addr[1].s_addr, ip4("10.0.1.2").s_addr);
	assert_string_equal(cfg->secret_file, p.secret);
	assert_string_equal(cfg->console_password_file, p.passwd);
	assert_string_equal(cfg->vip_interface, "eth0");
	assert_int_equal(cfg->vip_addr.s_addr, c.vip.s_addr);
	assert_int_equal(cfg->vip_prefix, 24);
	assert_int_equal(cfg->console_http_port, 0);
	assert_int_equal(cfg->console_https_port, 9453);
	assert_int_equal(cfg->nrepl_dirs, 0);
	config_free(cfg);
	load_text(dir, t1, cfg);
	assert_string_equal(cfg->vip_interface, "ens3");
	config_free(cfg);
	/* The two files differ only in the first comment line (whose file) and
	 * in [vip] interface. */
	nl0 = strchr(t0, '\n');
	nl1 = strchr(t1, '\n');
	assert_non_null(strstr(t0, "for alpha (docs/config.md)"));
	assert_non_null(strstr(t1, "for beta (docs/config.md)"));
	assert_non_null(strstr(t0, "\ninterface = eth0\n"));
	assert_non_null(strstr(t1, "\ninterface = ens3\n"));
	{
		char *a = strdup(nl0), *b = strdup(nl1), *ia = strstr(a, "\ninterface = "), *ib = strstr(b, "\ninterface = ");

		assert_non_null(ia);
		assert_non_null(ib);
		memcpy(ia + 13, "XXXX", 4);
		memcpy(ib + 13, "XXXX", 4);
		assert_string_equal(a, b);
		free(a);
		free(b);
	}
	/* The console choice: a port of 0 turns a protocol off. */
	assert_non_null(strstr(t0, "http_port = 0\nhttps_port = 9453\n"));
	free(t0);
	free(t1);
	fill_cluster(&c, SETUP_CONSOLE_HTTP);
	t0 = setup_config_text(&c, 0, &p);
	assert_non_null(strstr(t0, "http_port = 9010\nhttps_port = 0\n"));
	free(t0);
	fill_cluster(&c, SETUP_CONSOLE_BOTH);
	t0 = setup_config_text(&c, 0, &p);
	assert_non_null(strstr(t0, "http_port = 9010\nhttps_port = 9453\n"));
	assert_null(strstr(t0, "[replication]"));
	free(t0);

	/* --replicate and --aside-dir. */
	FMT(data, sizeof(data), "%s/data", dir);
	FMT(aside, sizeof(aside), "%s/aside", dir);
	assert_int_equal(mkdir(data, 0755), 0);
	assert_int_equal(mkdir(aside, 0755), 0);
	FMT(c.repl_dirs, sizeof(c.repl_dirs), "%s", data);
	FMT(c.aside_dir, sizeof(c.aside_dir), "%s", aside);
	t0 = setup_config_text(&c, 0, &p);
	assert_non_null(strstr(t0, "\n[replication]\ndirs = "));
	load_text(dir, t0, cfg);
	assert_int_equal(cfg->nrepl_dirs, 1);
	assert_string_equal(cfg->repl_dirs[0], data);
	config_free(cfg);
	free(t0);

	free(cfg);
	tu_rm_rf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_code_rfc4648_vectors),
		cmocka_unit_test(test_code_key_part_is_the_key_hash),
		cmocka_unit_test(test_code_shape),
		cmocka_unit_test(test_normalize_accepts_what_people_type),
		cmocka_unit_test(test_normalize_refuses_wrong_codes),
		cmocka_unit_test(test_fits_key),
		cmocka_unit_test(test_code_equal),
		cmocka_unit_test(test_tls_peer_key_is_the_code_key),
		cmocka_unit_test(test_parse_ipv4),
		cmocka_unit_test(test_parse_cidr),
		cmocka_unit_test(test_parse_addr_list),
		cmocka_unit_test(test_same_net),
		cmocka_unit_test(test_ifs_lookup_and_json),
		cmocka_unit_test(test_check_name),
		cmocka_unit_test(test_console_choice),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_config_text),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
