#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/config.h"
#include "common/util.h"
#include "pki/pki.h"
#include "testutil.h"
#include "vigilctl_pki.h"

/* ---- helpers ---- */

static int setup(void **state)
{
	char *dir = malloc(PATH_MAX);

	assert_non_null(dir);
	assert_int_equal(tu_mkdtemp(dir, "pki"), 0);
	*state = dir;
	return 0;
}

static int teardown(void **state)
{
	char *dir = *state;

	tu_rm_rf(dir);
	free(dir);
	return 0;
}

static void path_of(char *out, const char *dir, const char *name)
{
	FMT(out, PATH_MAX, "%s/%s", dir, name);
}

static mode_t mode_of(const char *dir, const char *name)
{
	char p[PATH_MAX];
	struct stat st;

	path_of(p, dir, name);
	assert_int_equal(stat(p, &st), 0);
	return st.st_mode & 07777;
}

static bool exists(const char *dir, const char *name)
{
	char p[PATH_MAX];

	path_of(p, dir, name);
	return access(p, F_OK) == 0;
}

static X509 *load(const char *dir, const char *name)
{
	char p[PATH_MAX];
	FILE *f;
	X509 *x;

	path_of(p, dir, name);
	f = fopen(p, "r");
	assert_non_null(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	return x;
}

static void make_ca(const char *dir, const char *cluster, int days)
{
	char err[512] = "";

	if (pki_make_ca(dir, cluster, days, err, sizeof(err)) != 0)
		fail_msg("pki_make_ca: %s", err);
}

static void make_server(const char *dir, const char *name, const char *const *sans, int n, int days)
{
	char err[512] = "";

	if (pki_make_server(dir, name, sans, n, days, err, sizeof(err)) != 0)
		fail_msg("pki_make_server: %s", err);
}

static void fingerprint(const char *dir, const char *name, char fp[PKI_FINGERPRINT_LEN])
{
	char p[PATH_MAX], err[512];

	path_of(p, dir, name);
	assert_int_equal(pki_fingerprint(p, fp, PKI_FINGERPRINT_LEN, err, sizeof(err)), 0);
	assert_int_equal(strlen(fp), 95);
}

/* X509_verify_cert directly, with the purpose the TLS code will ask for. */
static int verify_with(const char *dir_ca, const char *dir_cert, const char *name, int purpose)
{
	X509 *ca = load(dir_ca, PKI_CA_CERT), *leaf = load(dir_cert, name);
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok;

	assert_non_null(st);
	assert_non_null(ctx);
	assert_int_equal(X509_STORE_add_cert(st, ca), 1);
	assert_int_equal(X509_STORE_CTX_init(ctx, st, leaf, NULL), 1);
	assert_int_equal(X509_STORE_CTX_set_purpose(ctx, purpose), 1);
	ok = X509_verify_cert(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	X509_free(ca);
	X509_free(leaf);
	ERR_clear_error();
	return ok;
}

static bool has_name(char **names, int n, const char *want)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(names[i], want))
			return true;
	return false;
}

/* ---- tests ---- */

static void test_ca(void **state)
{
	const char *dir = *state;
	X509 *ca;
	char cn[128], p[PATH_MAX], err[512];
	int crit = -1;
	BASIC_CONSTRAINTS *bc;

	make_ca(dir, "vms", 30);
	assert_int_equal(mode_of(dir, PKI_CA_KEY), 0600);
	assert_int_equal(mode_of(dir, PKI_CA_CERT), 0644);
	assert_int_equal(tu_count_entries(dir), 2);

	ca = load(dir, PKI_CA_CERT);
	assert_int_equal(X509_get_version(ca), X509_VERSION_3);
	assert_int_equal(X509_check_ca(ca), 1);
	assert_int_equal(X509_self_signed(ca, 1), 1);
	bc = X509_get_ext_d2i(ca, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_true(bc->ca);
	assert_int_equal(crit, 1);
	BASIC_CONSTRAINTS_free(bc);
	assert_true(X509_get_extension_flags(ca) & EXFLAG_KUSAGE);
	assert_int_equal(X509_get_key_usage(ca), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	assert_non_null(X509_get0_subject_key_id(ca));
	assert_int_equal(EVP_PKEY_get_id(X509_get0_pubkey(ca)), EVP_PKEY_EC);
	assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(ca)), 256);
	{
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(ca), NULL);

		assert_non_null(bn);
		assert_false(BN_is_negative(bn));
		assert_true(BN_num_bits(bn) > 64 && BN_num_bits(bn) <= 128);
		BN_free(bn);
	}
	X509_free(ca);

	path_of(p, dir, PKI_CA_CERT);
	assert_int_equal(pki_cert_cn(p, cn, sizeof(cn), err, sizeof(err)), 0);
	assert_string_equal(cn, "vigil CA vms");
	/* The CA verifies against itself and its key matches. */
	assert_int_equal(pki_verify(p, p, err, sizeof(err)), 0);
	{
		char k[PATH_MAX];

		path_of(k, dir, PKI_CA_KEY);
		assert_int_equal(pki_key_matches(p, k, err, sizeof(err)), 0);
	}
}

static void test_server(void **state)
{
	const char *dir = *state;
	const char *sans[] = { "node1", "node1.example.com", "10.0.0.1", "fd00::1", "10.0.0.1", "NODE1",
			       "fd00:0::1", "*.vms.example.com" };
	char p[PATH_MAX], cap[PATH_MAX], k[PATH_MAX], err[512], cn[64], **names;
	time_t end, now = time(NULL);
	int n, days;
	X509 *ca, *x;

	make_ca(dir, "vms", 60);
	make_server(dir, "node1", sans, (int)(sizeof(sans) / sizeof(sans[0])), 30);
	assert_int_equal(mode_of(dir, "node1.key"), 0600);
	assert_int_equal(mode_of(dir, "node1.crt"), 0644);
	assert_int_equal(tu_count_entries(dir), 4);

	path_of(p, dir, "node1.crt");
	path_of(cap, dir, PKI_CA_CERT);
	path_of(k, dir, "node1.key");
	if (pki_verify(cap, p, err, sizeof(err)) != 0)
		fail_msg("pki_verify: %s", err);
	assert_int_equal(verify_with(dir, dir, "node1.crt", X509_PURPOSE_SSL_SERVER), 1);
	assert_int_equal(verify_with(dir, dir, "node1.crt", X509_PURPOSE_SSL_CLIENT), 1);
	assert_int_equal(pki_key_matches(p, k, err, sizeof(err)), 0);

	/* The key of another file is told apart. */
	path_of(k, dir, PKI_CA_KEY);
	assert_int_equal(pki_key_matches(p, k, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "is not the key of"));

	/* Names: duplicates (same IP written twice, a name in other case) dropped. */
	assert_int_equal(pki_cert_names(p, &names, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 5);
	assert_string_equal(names[0], "DNS:node1");
	assert_string_equal(names[1], "DNS:node1.example.com");
	assert_string_equal(names[2], "IP:10.0.0.1");
	assert_string_equal(names[3], "IP:fd00::1");
	assert_string_equal(names[4], "DNS:*.vms.example.com");
	pki_names_free(names, n);
	assert_int_equal(pki_cert_cn(p, cn, sizeof(cn), err, sizeof(err)), 0);
	assert_string_equal(cn, "node1");

	/* What TLS peers will check. */
	x = load(dir, "node1.crt");
	assert_int_equal(X509_check_host(x, "node1.example.com", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(x, "a.vms.example.com", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(x, "node2", 0, 0, NULL), 0);
	assert_int_equal(X509_check_ip_asc(x, "10.0.0.1", 0), 1);
	assert_int_equal(X509_check_ip_asc(x, "10.0.0.2", 0), 0);
	assert_int_equal(X509_check_ca(x), 0);
	assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
	assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_SERVER | XKU_SSL_CLIENT);
	ca = load(dir, PKI_CA_CERT);
	assert_non_null(X509_get0_authority_key_id(x));
	assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x), X509_get0_subject_key_id(ca)), 0);
	assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(x), X509_get0_serialNumber(ca)), 0);
	X509_free(ca);
	X509_free(x);

	/* Valid about 30 days. */
	assert_int_equal(pki_cert_expiry(p, &end, err, sizeof(err)), 0);
	assert_true(end >= now + 30 * 86400 - 5 && end <= time(NULL) + 30 * 86400 + 5);
	assert_int_equal(pki_days_left(p, &days, err, sizeof(err)), 0);
	assert_true(days == 29 || days == 30);
}

static int ou_count(X509 *x, char *ou, size_t oulen)
{
	X509_NAME *subj = X509_get_subject_name(x);

	ou[0] = '\0';
	X509_NAME_get_text_by_NID(subj, NID_organizationalUnitName, ou, (int)oulen);
	return X509_NAME_entry_count(subj);
}

/* A pool member's certificate (vigilctl pki member) carries the member OU
 * the pool link checks both ways; a node's has none. Otherwise the same. */
static void test_pool_member(void **state)
{
	const char *dir = *state;
	const char *sans[] = { "10.0.0.2" };
	char err[512], ou[64], cn[64], p[PATH_MAX];
	X509 *x;

	make_ca(dir, "vms", 60);
	make_server(dir, "node1", sans, 1, 30);
	if (pki_make_server_flags(dir, "rec1", sans, 1, 30, PKI_POOL_MEMBER, err, sizeof(err)) < 0)
		fail_msg("pki_make_server_flags: %s", err);
	x = load(dir, "node1.crt");
	assert_int_equal(ou_count(x, ou, sizeof(ou)), 1);
	assert_string_equal(ou, "");
	X509_free(x);
	x = load(dir, "rec1.crt");
	assert_int_equal(ou_count(x, ou, sizeof(ou)), 2);
	assert_string_equal(ou, PKI_POOL_MEMBER_OU);
	assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_SERVER | XKU_SSL_CLIENT);
	X509_free(x);
	path_of(p, dir, "rec1.crt");
	assert_int_equal(pki_cert_cn(p, cn, sizeof(cn), err, sizeof(err)), 0);
	assert_string_equal(cn, "rec1");
	assert_int_equal(verify_with(dir, dir, "rec1.crt", X509_PURPOSE_SSL_CLIENT), 1);
}

/* A certificate cannot outlive its CA. */
static void test_server_capped_by_ca(void **state)
{
	const char *dir = *state;
	const char *sans[] = { "node1" };
	char p[PATH_MAX], err[512];
	time_t ca_end, end;

	make_ca(dir, "vms", 10);
	make_server(dir, "node1", sans, 1, 1826);
	path_of(p, dir, PKI_CA_CERT);
	assert_int_equal(pki_cert_expiry(p, &ca_end, err, sizeof(err)), 0);
	path_of(p, dir, "node1.crt");
	assert_int_equal(pki_cert_expiry(p, &end, err, sizeof(err)), 0);
	assert_true(end <= ca_end);
	assert_true(end >= ca_end - 5);
}

static void test_other_ca(void **state)
{
	const char *dir = *state;
	const char *sans[] = { "node1", "10.0.0.1" };
	char a[PATH_MAX], b[PATH_MAX], p[PATH_MAX], err[512];

	path_of(a, dir, "a");
	path_of(b, dir, "b");
	assert_int_equal(mkdir(a, 0700), 0);
	assert_int_equal(mkdir(b, 0700), 0);
	make_ca(a, "vms", 30);
	make_ca(b, "vms", 30);     /* same name, different key */
	make_server(b, "node1", sans, 2, 30);

	path_of(p, b, "node1.crt");
	FMT(a, sizeof(a), "%s/a/%s", dir, PKI_CA_CERT);
	err[0] = '\0';
	assert_int_equal(pki_verify(a, p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not verify against"));
	assert_non_null(strstr(err, p));
	FMT(a, sizeof(a), "%s/a", dir);
	assert_int_equal(verify_with(a, b, "node1.crt", X509_PURPOSE_SSL_SERVER), 0);
	assert_int_equal(verify_with(b, b, "node1.crt", X509_PURPOSE_SSL_SERVER), 1);
}

static void expect_bad_san(const char *s, const char *why)
{
	char err[512] = "";

	assert_int_equal(pki_san_check(s, err, sizeof(err)), -1);
	if (!strstr(err, why))
		fail_msg("SAN '%s': got \"%s\", expected \"%s\" in it", s, err, why);
}

static void test_san_rules(void **state)
{
	char err[512], label64[80], long_name[300];

	(void)state;
	assert_int_equal(pki_san_check("node1", err, sizeof(err)), 0);
	assert_int_equal(pki_san_check("node-1.example.com", err, sizeof(err)), 0);
	assert_int_equal(pki_san_check("10.0.0.1", err, sizeof(err)), 0);
	assert_int_equal(pki_san_check("::1", err, sizeof(err)), 0);
	assert_int_equal(pki_san_check("*.example.com", err, sizeof(err)), 0);
	assert_true(pki_san_is_ip("fe80::1"));
	assert_false(pki_san_is_ip("node1"));

	expect_bad_san("bad name!", "'bad name!' is neither an IP address nor a host name: ' ' is not allowed");
	expect_bad_san("", "empty subject alternative name");
	expect_bad_san(NULL, "empty subject alternative name");
	expect_bad_san("-node", "starting or ending with '-'");
	expect_bad_san("node-.x", "starting or ending with '-'");
	expect_bad_san("a..b", "empty label");
	expect_bad_san(".a", "empty label");
	expect_bad_san("a.", "empty label");
	expect_bad_san("1.2.3", "neither a valid IP address nor a host name");
	expect_bad_san("256.1.1.1", "neither a valid IP address nor a host name");
	expect_bad_san("x*.example.com", "'*' may only be the whole first label");
	expect_bad_san("a.*.com", "'*' may only be the whole first label");
	expect_bad_san("*", "'*' may only be the whole first label");
	expect_bad_san("node_1", "'_' is not allowed");
	expect_bad_san("[::1]", "'[::1]' is not a valid IP address");
	expect_bad_san("fe80::1%eth0", "without a %zone");
	expect_bad_san("10.0.0.1/24", "'/' is not allowed");
	expect_bad_san("a\nb", "byte 0x0a is not allowed");
	memset(label64, 'a', 64);
	label64[64] = '\0';
	expect_bad_san(label64, "label longer than 63");
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	for (int i = 50; i < (int)sizeof(long_name) - 1; i += 51)
		long_name[i] = '.';
	expect_bad_san(long_name, "longer than 253");
}

static void test_bad_san_refused(void **state)
{
	const char *dir = *state;
	const char *bad1[] = { "node1", "bad name!" };
	const char *bad2[] = { "" };
	char err[512] = "";

	make_ca(dir, "vms", 30);
	assert_int_equal(pki_make_server(dir, "node1", bad1, 2, 30, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "'bad name!'"));
	assert_int_equal(pki_make_server(dir, "node1", bad2, 1, 30, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "empty subject alternative name"));
	/* Nothing written, no temporary file left. */
	assert_false(exists(dir, "node1.crt"));
	assert_false(exists(dir, "node1.key"));
	assert_int_equal(tu_count_entries(dir), 2);
}

static void test_refuse_overwrite(void **state)
{
	const char *dir = *state;
	const char *sans[] = { "node1" };
	char fp1[PKI_FINGERPRINT_LEN], fp2[PKI_FINGERPRINT_LEN], fk1[PKI_FINGERPRINT_LEN], err[512];
	char p[PATH_MAX], k[PATH_MAX];

	make_ca(dir, "vms", 30);
	fingerprint(dir, PKI_CA_CERT, fp1);
	assert_int_equal(pki_make_ca(dir, "vms", 30, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "already exists; not replacing it"));
	assert_non_null(strstr(err, PKI_CA_KEY));
	fingerprint(dir, PKI_CA_CERT, fp2);
	assert_string_equal(fp1, fp2);

	make_server(dir, "node1", sans, 1, 30);
	fingerprint(dir, "node1.crt", fk1);
	assert_int_equal(pki_make_server(dir, "node1", sans, 1, 30, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "node1.key already exists"));
	fingerprint(dir, "node1.crt", fp2);
	assert_string_equal(fk1, fp2);

	/* Only the certificate there (the key lost): still refused, nothing written. */
	path_of(k, dir, "node1.key");
	assert_int_equal(unlink(k), 0);
	assert_int_equal(pki_make_server(dir, "node1", sans, 1, 30, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "node1.crt already exists"));
	assert_false(exists(dir, "node1.key"));
	assert_int_equal(tu_count_entries(dir), 3);

	/* With PKI_FORCE: replaced, and the new pair matches. */
	assert_int_equal(pki_make_server_flags(dir, "node1", sans, 1, 30, PKI_FORCE, err, sizeof(err)), 0);
	fingerprint(dir, "node1.crt", fp2);
	assert_string_not_equal(fk1, fp2);
	path_of(p, dir, "node1.crt");
	assert_int_equal(pki_key_matches(p, k, err, sizeof(err)), 0);
	assert_int_equal(pki_make_ca_flags(dir, "vms", 30, PKI_FORCE, err, sizeof(err)), 0);
	fingerprint(dir, PKI_CA_CERT, fp2);
	assert_string_not_equal(fp1, fp2);
	/* The old node certificate no longer chains to the new CA. */
	path_of(k, dir, PKI_CA_CERT);
	assert_int_equal(pki_verify(k, p, err, sizeof(err)), -1);
	assert_int_equal(tu_count_entries(dir), 4);
}

static void write_text(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void test_bad_inputs(void **state)
{
	const char *dir = *state;
	const char *sans[] = { "node1" };
	char err[512] = "", p[PATH_MAX], k[PATH_MAX], missing[PATH_MAX];
	time_t t;

	path_of(missing, dir, "nope");
	assert_int_equal(pki_make_ca(missing, "vms", 30, err, sizeof(err)), -1);
	assert_non_null(strstr(err, missing));
	assert_non_null(strstr(err, "No such file"));
	assert_int_equal(pki_make_ca(dir, "vms", 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "out of range"));
	assert_int_equal(pki_make_ca(dir, "vms", PKI_MAX_DAYS + 1, err, sizeof(err)), -1);
	assert_int_equal(pki_make_ca(dir, "", 30, err, sizeof(err)), -1);

	/* No CA yet. */
	assert_int_equal(pki_make_server(dir, "node1", sans, 1, 30, err, sizeof(err)), -1);
	assert_non_null(strstr(err, PKI_CA_CERT));
	assert_int_equal(tu_count_entries(dir), 0);

	make_ca(dir, "vms", 30);
	assert_int_equal(pki_make_server(dir, "ca", sans, 1, 30, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "reserved"));
	assert_int_equal(pki_make_server(dir, "cacert", sans, 1, 30, err, sizeof(err)), -1);
	assert_int_equal(pki_make_server(dir, "../x", sans, 1, 30, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "must not start with '.'"));
	assert_int_equal(pki_make_server(dir, "a/x", sans, 1, 30, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "holds '/'"));
	assert_int_equal(pki_make_server(dir, ".hidden", sans, 1, 30, err, sizeof(err)), -1);
	assert_int_equal(pki_make_server(dir, "", sans, 1, 30, err, sizeof(err)), -1);
	assert_int_equal(pki_make_server(dir, "node1", sans, -1, 30, err, sizeof(err)), -1);
	assert_int_equal(pki_make_server(dir, "node1", NULL, 1, 30, err, sizeof(err)), -1);
	assert_int_equal(tu_count_entries(dir), 2);

	/* No SAN at all is allowed: the certificate then has none. */
	make_server(dir, "bare", NULL, 0, 30);
	{
		char **names;
		int n;

		path_of(p, dir, "bare.crt");
		assert_int_equal(pki_cert_names(p, &names, &n, err, sizeof(err)), 0);
		assert_int_equal(n, 0);
		pki_names_free(names, n);
	}

	/* Garbage and missing files are named. */
	path_of(p, dir, "garbage.crt");
	write_text(p, "not a certificate\n", 0644);
	assert_int_equal(pki_cert_expiry(p, &t, err, sizeof(err)), -1);
	assert_non_null(strstr(err, p));
	assert_non_null(strstr(err, "does not hold a PEM certificate"));
	path_of(p, dir, "absent.crt");
	assert_int_equal(pki_cert_expiry(p, &t, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot open certificate"));
	assert_non_null(strstr(err, p));

	/* A CA key that does not match its certificate. */
	path_of(k, dir, PKI_CA_KEY);
	path_of(p, dir, "bare.key");
	assert_int_equal(rename(p, k), 0);
	assert_int_equal(pki_make_server(dir, "node2", sans, 1, 30, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not belong to"));
	assert_false(exists(dir, "node2.crt"));

	/* An encrypted key is refused, not prompted for. */
	{
		EVP_PKEY *key = EVP_EC_gen("P-256");
		FILE *f = fopen(k, "w");

		assert_non_null(key);
		assert_non_null(f);
		assert_int_equal(PEM_write_PrivateKey(f, key, EVP_aes_256_cbc(), (const unsigned char *)"secret1",
						      7, NULL, NULL), 1);
		fclose(f);
		EVP_PKEY_free(key);
	}
	assert_int_equal(pki_make_server(dir, "node2", sans, 1, 30, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "encrypted with a passphrase"));
	assert_non_null(strstr(err, k));
}

static void test_days_until(void **state)
{
	time_t now = 1700000000;

	(void)state;
	assert_int_equal(pki_days_until(now + 86400, now), 1);
	assert_int_equal(pki_days_until(now + 86399, now), 0);
	assert_int_equal(pki_days_until(now, now), 0);
	assert_int_equal(pki_days_until(now - 1, now), -1);
	assert_int_equal(pki_days_until(now - 86400, now), -1);
	assert_int_equal(pki_days_until(now - 86401, now), -2);
	assert_int_equal(pki_days_until(now + 31 * 86400, now), 31);
}

static void test_paths(void **state)
{
	const char *dir = *state;
	const char *sans[] = { "node1" };
	struct pki_paths pp;
	char pdir[PATH_MAX], p[PATH_MAX], want[PATH_MAX], err[512];

	path_of(pdir, dir, PKI_SUBDIR);
	assert_int_equal(mkdir(pdir, 0700), 0);

	/* Nothing yet. */
	assert_int_equal(pki_paths(dir, "node1", &pp), 0);
	FMT(want, sizeof(want), "%s/pki/cacert.crt", dir);
	assert_string_equal(pp.ca.path, want);
	assert_false(pp.ca.exists);
	assert_int_equal(pki_paths_check(&pp, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no CA certificate"));

	/* Generated. */
	make_ca(pdir, "vms", 30);
	make_server(pdir, "node1", sans, 1, 30);
	assert_int_equal(pki_paths(dir, "node1", &pp), 0);
	assert_true(pp.ca.exists && !pp.ca.custom);
	FMT(want, sizeof(want), "%s/pki/node1.crt", dir);
	assert_string_equal(pp.cert.path, want);
	assert_true(pp.cert.exists && !pp.cert.custom);
	FMT(want, sizeof(want), "%s/pki/node1.key", dir);
	assert_string_equal(pp.key.path, want);
	assert_true(pp.key.exists && !pp.key.custom);
	FMT(want, sizeof(want), "%s/clcacert.crt", dir);
	assert_string_equal(pp.client_ca.path, want);
	assert_false(pp.client_ca.exists);
	assert_int_equal(pki_paths_check(&pp, err, sizeof(err)), 0);
	/* node2 has no files here. */
	assert_int_equal(pki_paths(dir, "node2", &pp), 0);
	assert_int_equal(pki_paths_check(&pp, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "node2.crt is missing"));

	/* Custom files win; a lone server.crt is reported, not completed. */
	path_of(p, dir, "server.crt");
	write_text(p, "x", 0644);
	assert_int_equal(pki_paths(dir, "node1", &pp), 0);
	assert_string_equal(pp.cert.path, p);
	assert_true(pp.cert.exists && pp.cert.custom);
	FMT(want, sizeof(want), "%s/server.key", dir);
	assert_string_equal(pp.key.path, want);
	assert_false(pp.key.exists);
	assert_true(pp.key.custom);
	assert_int_equal(pki_paths_check(&pp, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "server.key is missing"));
	assert_non_null(strstr(err, "need both"));

	path_of(p, dir, "server.key");
	write_text(p, "x", 0600);
	path_of(p, dir, "cacert.crt");
	write_text(p, "x", 0644);
	path_of(p, dir, "clcacert.crt");
	write_text(p, "x", 0644);
	assert_int_equal(pki_paths(dir, "node1", &pp), 0);
	FMT(want, sizeof(want), "%s/cacert.crt", dir);
	assert_string_equal(pp.ca.path, want);
	assert_true(pp.ca.exists && pp.ca.custom);
	assert_true(pp.cert.custom && pp.key.custom && pp.key.exists);
	assert_true(pp.client_ca.exists && pp.client_ca.custom);
	assert_int_equal(pki_paths_check(&pp, err, sizeof(err)), 0);

	assert_int_equal(pki_paths(dir, "../etc", &pp), -1);
	assert_int_equal(pki_paths(dir, "", &pp), -1);
}

/* ---- vigilctl pki and vigilctl cert export ---- */

static struct config *load_config(const char *dir, bool vip)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	char conf[PATH_MAX], secret[PATH_MAX], text[2048], err[1024];

	assert_non_null(cfg);
	path_of(secret, dir, "secret");
	write_text(secret, "0123456789abcdef0123456789abcdef\n", 0600);
	FMT(text, sizeof(text),
	    "[cluster]\nname = vms\nsecret_file = %s\n"
	    "[node node1]\naddress = 10.0.0.1, 10.1.0.1\n"
	    "[node node2]\naddress = 10.0.0.2, 10.1.0.2\n"
	    "%s",
	    secret, vip ? "[vip]\naddress = 10.0.0.100/24\ninterface = eth0\n" : "");
	path_of(conf, dir, "vigil.conf");
	write_text(conf, text, 0600);
	if (config_load_flags(conf, cfg, CONFIG_NO_SECRET, err, sizeof(err)) != 0)
		fail_msg("config: %s", err);
	return cfg;
}

static int run_pki(const struct config *cfg, int argc, const char **argv)
{
	return vigilctl_pki(cfg, argc, (char **)argv);
}

static void test_vigilctl_pki(void **state)
{
	const char *dir = *state;
	struct config *cfg = load_config(dir, true);
	const char *args[] = { "pki", "--days", "100", "--san", "vms.example.com", "--san=192.168.7.7" };
	char pdir[PATH_MAX], ca[PATH_MAX], p[PATH_MAX], err[512], fp1[PKI_FINGERPRINT_LEN], fp2[PKI_FINGERPRINT_LEN];
	char host[256] = "", want[300], **names;
	struct stat st;
	int n, days;

	path_of(pdir, dir, PKI_SUBDIR);
	assert_int_equal(run_pki(cfg, 6, args), 0);
	assert_int_equal(stat(pdir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(mode_of(pdir, "ca.key"), 0600);
	assert_int_equal(mode_of(pdir, "node1.key"), 0600);
	assert_int_equal(mode_of(pdir, "node2.key"), 0600);
	assert_int_equal(tu_count_entries(pdir), 6);
	path_of(ca, pdir, PKI_CA_CERT);
	for (int i = 0; i < 2; i++) {
		path_of(p, pdir, i ? "node2.crt" : "node1.crt");
		if (pki_verify(ca, p, err, sizeof(err)) != 0)
			fail_msg("%s", err);
		assert_int_equal(pki_days_left(p, &days, err, sizeof(err)), 0);
		assert_true(days == 99 || days == 100);
		assert_int_equal(pki_cert_names(p, &names, &n, err, sizeof(err)), 0);
		assert_true(has_name(names, n, "DNS:node1"));
		assert_true(has_name(names, n, "DNS:node2"));
		assert_true(has_name(names, n, "IP:10.0.0.1"));
		assert_true(has_name(names, n, "IP:10.1.0.1"));
		assert_true(has_name(names, n, "IP:10.0.0.2"));
		assert_true(has_name(names, n, "IP:10.1.0.2"));
		assert_true(has_name(names, n, "IP:10.0.0.100"));
		assert_true(has_name(names, n, "DNS:vms.example.com"));
		assert_true(has_name(names, n, "IP:192.168.7.7"));
		if (gethostname(host, sizeof(host) - 1) == 0 && pki_san_check(host, err, sizeof(err)) == 0 &&
		    strcmp(host, "localhost")) {
			FMT(want, sizeof(want), "DNS:%s", host);
			assert_true(has_name(names, n, want));
		}
		pki_names_free(names, n);
	}
	fingerprint(pdir, PKI_CA_CERT, fp1);

	/* Again: refused, nothing changed. */
	assert_int_equal(run_pki(cfg, 1, args), 1);
	fingerprint(pdir, PKI_CA_CERT, fp2);
	assert_string_equal(fp1, fp2);
	assert_int_equal(tu_count_entries(pdir), 6);

	/* Node files gone but CA kept: the CA is reused. */
	path_of(p, pdir, "node1.crt");
	unlink(p);
	path_of(p, pdir, "node1.key");
	unlink(p);
	path_of(p, pdir, "node2.crt");
	unlink(p);
	path_of(p, pdir, "node2.key");
	unlink(p);
	assert_int_equal(run_pki(cfg, 1, args), 0);
	fingerprint(pdir, PKI_CA_CERT, fp2);
	assert_string_equal(fp1, fp2);

	/* --force: a new CA, certificates that chain to it. */
	{
		const char *force[] = { "pki", "--force" };

		assert_int_equal(run_pki(cfg, 2, force), 0);
		fingerprint(pdir, PKI_CA_CERT, fp2);
		assert_string_not_equal(fp1, fp2);
		path_of(p, pdir, "node2.crt");
		assert_int_equal(pki_verify(ca, p, err, sizeof(err)), 0);
		assert_int_equal(pki_days_left(p, &days, err, sizeof(err)), 0);
		assert_true(days >= PKI_DEFAULT_DAYS - 1 && days <= PKI_DEFAULT_DAYS);
	}

	/* Usage errors. */
	{
		const char *bad1[] = { "pki", "--san", "bad name!" };
		const char *bad2[] = { "pki", "--days", "0" };
		const char *bad3[] = { "pki", "--days" };
		const char *bad4[] = { "pki", "--frobnicate" };
		const char *bad5[] = { "pki", "extra" };

		assert_int_equal(run_pki(cfg, 3, bad1), 2);
		assert_int_equal(run_pki(cfg, 3, bad2), 2);
		assert_int_equal(run_pki(cfg, 2, bad3), 2);
		assert_int_equal(run_pki(cfg, 2, bad4), 2);
		assert_int_equal(run_pki(cfg, 2, bad5), 2);
	}
	config_free(cfg);
	free(cfg);
}

static void test_cert_export(void **state)
{
	const char *dir = *state;
	struct config *cfg = load_config(dir, false);
	const char *args[] = { "pki" };
	char out[PATH_MAX], missing[PATH_MAX], other[PATH_MAX], p[PATH_MAX], custom[PATH_MAX];
	char fp_gen[PKI_FINGERPRINT_LEN], fp_out[PKI_FINGERPRINT_LEN], fp_custom[PKI_FINGERPRINT_LEN];

	path_of(out, dir, "out");
	assert_int_equal(mkdir(out, 0755), 0);
	/* No CA yet. */
	assert_int_equal(vigilctl_cert_export(cfg, out), 1);
	assert_int_equal(tu_count_entries(out), 0);

	assert_int_equal(run_pki(cfg, 1, args), 0);
	path_of(missing, dir, "missing");
	assert_int_equal(vigilctl_cert_export(cfg, missing), 1);
	path_of(p, dir, "vigil.conf");
	assert_int_equal(vigilctl_cert_export(cfg, p), 1);      /* not a directory */

	assert_int_equal(vigilctl_cert_export(cfg, out), 0);
	FMT(p, sizeof(p), "%s/pki", dir);
	fingerprint(p, PKI_CA_CERT, fp_gen);
	fingerprint(out, PKI_CA_CERT, fp_out);
	assert_string_equal(fp_gen, fp_out);
	assert_int_equal(mode_of(out, PKI_CA_CERT), 0644);
	assert_int_equal(tu_count_entries(out), 1);

	/* A custom CA in the config dir wins; only its certificates are copied. */
	path_of(other, dir, "other");
	assert_int_equal(mkdir(other, 0700), 0);
	make_ca(other, "corp", 30);
	path_of(custom, dir, PKI_CUSTOM_CA);
	{
		char src[PATH_MAX], key[PATH_MAX], *buf = NULL, *kbuf = NULL;
		size_t len, klen;
		FILE *f;

		path_of(src, other, PKI_CA_CERT);
		path_of(key, other, PKI_CA_KEY);
		assert_int_equal(read_file(src, 1 << 20, &buf, &len), 0);
		assert_int_equal(read_file(key, 1 << 20, &kbuf, &klen), 0);
		f = fopen(custom, "w");
		assert_non_null(f);
		fwrite(buf, 1, len, f);
		fwrite(kbuf, 1, klen, f);   /* a key pasted in by mistake */
		fclose(f);
		free(buf);
		free(kbuf);
	}
	fingerprint(other, PKI_CA_CERT, fp_custom);
	assert_int_equal(vigilctl_cert_export(cfg, out), 0);
	fingerprint(out, PKI_CA_CERT, fp_out);
	assert_string_equal(fp_custom, fp_out);
	{
		char *buf = NULL;
		size_t len;

		path_of(p, out, PKI_CA_CERT);
		assert_int_equal(read_file(p, 1 << 20, &buf, &len), 0);
		assert_null(strstr(buf, "PRIVATE KEY"));
		free(buf);
	}
	assert_int_equal(tu_count_entries(out), 1);
	config_free(cfg);
	free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ca, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_member, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_capped_by_ca, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_ca, setup, teardown),
		cmocka_unit_test(test_san_rules),
		cmocka_unit_test_setup_teardown(test_bad_san_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_overwrite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_inputs, setup, teardown),
		cmocka_unit_test(test_days_until),
		cmocka_unit_test_setup_teardown(test_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vigilctl_pki, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cert_export, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
