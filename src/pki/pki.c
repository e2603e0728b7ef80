/* Making the cluster CA and the nodes' certificates. */
#include "pki/pki.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "pki/pki_int.h"

/* Certificates start an hour in the past: the other node's clock or a
 * browser's may be a little behind, and a certificate "not yet valid"
 * right after setup would break the link between the nodes. */
#define BACKDATE_S 3600
#define CN_MAX 64                      /* ub_common_name (RFC 5280) */

/* A file written under a temporary name, waiting to be put in place. */
struct pending {
	char tmp[PATH_MAX];
	char path[PATH_MAX];
	bool placed;
};

static int check_days(int days, char *err, size_t errlen)
{
	if (days < 1 || days > PKI_MAX_DAYS) {
		snprintf(err, errlen, "validity of %d days is out of range (1 to %d days)", days, PKI_MAX_DAYS);
		return -1;
	}
	return 0;
}

static int check_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (stat(dir, &st) < 0) {
		snprintf(err, errlen, "directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s is not a directory", dir);
		return -1;
	}
	return 0;
}

static int join(char *out, const char *dir, const char *name, const char *ext, char *err, size_t errlen)
{
	if (snprintf(out, PATH_MAX, "%s/%s%s", dir, name, ext) >= PATH_MAX) {
		snprintf(err, errlen, "path %s/%s%s is too long", dir, name, ext);
		return -1;
	}
	return 0;
}

/* Refuses early, before any key is made; link() in place_all() is what
 * settles a race. */
static int refuse_existing(const struct pending *p, int n, char *err, size_t errlen)
{
	for (int i = 0; i < n; i++)
		if (access(p[i].path, F_OK) == 0) {
			snprintf(err, errlen, "%s already exists; not replacing it", p[i].path);
			return -1;
		}
	return 0;
}

/* Writes the memory BIO's content to PATH.XXXXXX with mode, fsynced. */
static int write_tmp(struct pending *p, BIO *mem, mode_t mode, char *err, size_t errlen)
{
	char *data;
	long len = BIO_get_mem_data(mem, &data);
	int fd, e = 0;

	if (len <= 0) {
		snprintf(err, errlen, "%s: nothing to write", p->path);
		return -1;
	}
	if (snprintf(p->tmp, sizeof(p->tmp), "%s.XXXXXX", p->path) >= (int)sizeof(p->tmp)) {
		snprintf(err, errlen, "path %s is too long", p->path);
		p->tmp[0] = '\0';
		return -1;
	}
	/* mkostemp creates the file 0600: a key is never readable by others,
	 * not even for a moment. */
	fd = mkostemp(p->tmp, O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create a temporary file for %s: %s", p->path, strerror(errno));
		p->tmp[0] = '\0';
		return -1;
	}
	if (fchmod(fd, mode) < 0)
		e = errno;
	for (size_t off = 0; !e && off < (size_t)len;) {
		ssize_t w = write(fd, data + off, (size_t)len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			e = errno;
		else
			off += (size_t)w;
	}
	if (!e && fsync(fd) < 0)
		e = errno;
	if (close(fd) < 0 && !e)
		e = errno;
	if (e) {
		snprintf(err, errlen, "cannot write %s: %s", p->tmp, strerror(e));
		unlink(p->tmp);
		p->tmp[0] = '\0';
		return -1;
	}
	return 0;
}

static void fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* Puts every written file in place, the key first: a reader never sees a
 * new certificate next to an old key. Without PKI_FORCE link() refuses an
 * existing name atomically and what was already placed is taken back. */
static int place_all(const char *dir, struct pending *p, int n, unsigned flags, char *err, size_t errlen)
{
	int rc = 0;

	for (int i = 0; i < n && !rc; i++) {
		if (flags & PKI_FORCE) {
			if (rename(p[i].tmp, p[i].path) < 0) {
				snprintf(err, errlen, "cannot rename %s to %s: %s%s", p[i].tmp, p[i].path, strerror(errno),
					 i ? " (its key was already replaced: run again)" : "");
				rc = -1;
			} else {
				p[i].tmp[0] = '\0';
			}
		} else if (link(p[i].tmp, p[i].path) < 0) {
			if (errno == EEXIST)
				snprintf(err, errlen, "%s already exists; not replacing it", p[i].path);
			else
				snprintf(err, errlen, "cannot create %s: %s", p[i].path, strerror(errno));
			rc = -1;
		} else {
			p[i].placed = true;
		}
	}
	for (int i = 0; i < n; i++) {
		if (rc && p[i].placed && !(flags & PKI_FORCE))
			unlink(p[i].path);
		if (p[i].tmp[0])
			unlink(p[i].tmp);
		p[i].tmp[0] = '\0';
	}
	fsync_dir(dir);
	return rc;
}

static void discard_all(struct pending *p, int n)
{
	for (int i = 0; i < n; i++)
		if (p[i].tmp[0]) {
			unlink(p[i].tmp);
			p[i].tmp[0] = '\0';
		}
}

/* Writes key (0600) and cert (0644) to temporary files, then in place. */
static int write_pair(const char *dir, struct pending p[2], EVP_PKEY *key, X509 *cert, unsigned flags,
		      char *err, size_t errlen)
{
	BIO *kb = BIO_new(BIO_s_mem()), *cb = BIO_new(BIO_s_mem());
	int rc = -1;

	if (!kb || !cb) {
		pki_fail(err, errlen, "out of memory");
		goto out;
	}
	if (!PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL)) {
		pki_fail(err, errlen, "cannot encode the key for %s", p[0].path);
		goto out;
	}
	if (!PEM_write_bio_X509(cb, cert)) {
		pki_fail(err, errlen, "cannot encode the certificate for %s", p[1].path);
		goto out;
	}
	if (write_tmp(&p[0], kb, 0600, err, errlen) < 0 || write_tmp(&p[1], cb, 0644, err, errlen) < 0)
		goto out;
	rc = place_all(dir, p, 2, flags, err, errlen);
out:
	discard_all(p, 2);
	BIO_free(kb);
	BIO_free(cb);
	return rc;
}

static EVP_PKEY *new_key(const char *what, char *err, size_t errlen)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	if (!k)
		pki_fail(err, errlen, "cannot make an EC P-256 key for %s", what);
	return k;
}

static int set_random_serial(X509 *x)
{
	unsigned char buf[16];
	BIGNUM *bn;
	int ok;

	if (RAND_bytes(buf, sizeof(buf)) != 1)
		return -1;
	/* A serial must be positive (RFC 5280); zero only by a 2^-128 chance. */
	buf[sizeof(buf) - 1] |= 1;
	bn = BN_bin2bn(buf, sizeof(buf), NULL);
	ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok ? 0 : -1;
}

/* A version 3 certificate for key with subject CN=cn, a random serial,
 * valid from BACKDATE_S ago until days from now (or not_after if that is
 * earlier and non-zero). Issuer, extensions and signature are the caller's. */
static X509 *new_cert(EVP_PKEY *key, const char *cn, int days, time_t not_after, const char *what,
		      char *err, size_t errlen)
{
	X509 *x = X509_new();
	char name[CN_MAX + 1];
	time_t now = time(NULL), end = now + (time_t)days * 86400;

	if (not_after && not_after < end)
		end = not_after;
	/* Cluster and node names are ASCII: cutting bytes cuts characters. */
	snprintf(name, sizeof(name), "%s", cn);
	if (!x || !X509_set_version(x, X509_VERSION_3) || set_random_serial(x) < 0 ||
	    !X509_time_adj_ex(X509_getm_notBefore(x), 0, -BACKDATE_S, &now) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), 0, 0, &end) ||
	    !X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
					(const unsigned char *)name, -1, -1, 0) ||
	    !X509_set_pubkey(x, key)) {
		pki_fail(err, errlen, "cannot build the certificate for %s", what);
		X509_free(x);
		return NULL;
	}
	return x;
}

/* Adds an extension given in openssl.cnf syntax (constant text only). */
static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value, const char *what, char *err,
		   size_t errlen)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok = ext && X509_add_ext(x, ext, -1);

	X509_EXTENSION_free(ext);
	if (!ok)
		pki_fail(err, errlen, "cannot add %s = %s to the certificate for %s", OBJ_nid2sn(nid), value, what);
	return ok ? 0 : -1;
}

static int sign(X509 *x, EVP_PKEY *key, const char *what, char *err, size_t errlen)
{
	if (X509_sign(x, key, EVP_sha256()) <= 0) {
		pki_fail(err, errlen, "cannot sign the certificate for %s", what);
		return -1;
	}
	return 0;
}

int pki_make_ca(const char *dir, const char *cluster_name, int days, char *err, size_t errlen)
{
	return pki_make_ca_flags(dir, cluster_name, days, 0, err, errlen);
}

int pki_make_ca_flags(const char *dir, const char *cluster_name, int days, unsigned flags, char *err,
		      size_t errlen)
{
	struct pending p[2] = { 0 };
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	X509V3_CTX ctx;
	char cn[CN_MAX + 16];
	int rc = -1;

	if (check_days(days, err, errlen) < 0 || check_dir(dir, err, errlen) < 0 ||
	    join(p[0].path, dir, PKI_CA_KEY, "", err, errlen) < 0 ||
	    join(p[1].path, dir, PKI_CA_CERT, "", err, errlen) < 0)
		return -1;
	if (!cluster_name || !*cluster_name) {
		snprintf(err, errlen, "the CA for %s needs a cluster name", p[1].path);
		return -1;
	}
	if (!(flags & PKI_FORCE) && refuse_existing(p, 2, err, errlen) < 0)
		return -1;
	snprintf(cn, sizeof(cn), "vigil CA %s", cluster_name);
	if (!(key = new_key(p[0].path, err, errlen)) ||
	    !(x = new_cert(key, cn, days, 0, p[1].path, err, errlen)))
		goto out;
	if (!X509_set_issuer_name(x, X509_get_subject_name(x))) {
		pki_fail(err, errlen, "cannot build the certificate for %s", p[1].path);
		goto out;
	}
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE", p[1].path, err, errlen) < 0 ||
	    add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign", p[1].path, err, errlen) < 0 ||
	    add_ext(x, &ctx, NID_subject_key_identifier, "hash", p[1].path, err, errlen) < 0 ||
	    sign(x, key, p[1].path, err, errlen) < 0)
		goto out;
	rc = write_pair(dir, p, key, x, flags, err, errlen);
out:
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

/* One SAN: an IP literal (binary, for comparing) or a DNS name. */
struct san {
	const char *text;
	int len;                            /* 4 or 16 for an IP, 0 for DNS */
	unsigned char ip[16];
};

static bool same_san(const struct san *a, const struct san *b)
{
	if (a->len != b->len)
		return false;
	return a->len ? !memcmp(a->ip, b->ip, (size_t)a->len) : !strcasecmp(a->text, b->text);
}

static int add_sans(X509 *x, const char *const *sans, int nsans, const char *what, char *err, size_t errlen)
{
	GENERAL_NAMES *gens = NULL;
	struct san *v = NULL;
	int nv = 0, rc = -1;

	if (nsans < 0 || nsans > PKI_MAX_SANS || (nsans && !sans)) {
		snprintf(err, errlen, "%s: %d subject alternative names (at most %d)", what, nsans, PKI_MAX_SANS);
		return -1;
	}
	if (!nsans)
		return 0;
	if (!(v = calloc((size_t)nsans, sizeof(*v))) || !(gens = sk_GENERAL_NAME_new_null())) {
		pki_fail(err, errlen, "out of memory");
		goto out;
	}
	for (int i = 0; i < nsans; i++) {
		struct san s = { .text = sans[i] };
		GENERAL_NAME *g;
		bool dup = false;

		if (pki_san_check(sans[i], err, errlen) < 0)
			goto out;
		if (inet_pton(AF_INET, s.text, s.ip) == 1)
			s.len = 4;
		else if (inet_pton(AF_INET6, s.text, s.ip) == 1)
			s.len = 16;
		for (int j = 0; j < nv && !dup; j++)
			dup = same_san(&v[j], &s);
		if (dup)
			continue;
		v[nv++] = s;
		if (!(g = GENERAL_NAME_new())) {
			pki_fail(err, errlen, "out of memory");
			goto out;
		}
		if (s.len) {
			ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();

			if (!os || !ASN1_OCTET_STRING_set(os, s.ip, s.len)) {
				ASN1_OCTET_STRING_free(os);
				GENERAL_NAME_free(g);
				pki_fail(err, errlen, "out of memory");
				goto out;
			}
			GENERAL_NAME_set0_value(g, GEN_IPADD, os);
		} else {
			ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();

			if (!ia5 || !ASN1_STRING_set(ia5, s.text, -1)) {
				ASN1_IA5STRING_free(ia5);
				GENERAL_NAME_free(g);
				pki_fail(err, errlen, "out of memory");
				goto out;
			}
			GENERAL_NAME_set0_value(g, GEN_DNS, ia5);
		}
		if (!sk_GENERAL_NAME_push(gens, g)) {
			GENERAL_NAME_free(g);
			pki_fail(err, errlen, "out of memory");
			goto out;
		}
	}
	if (!X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT)) {
		pki_fail(err, errlen, "cannot add the subject alternative names to the certificate for %s", what);
		goto out;
	}
	rc = 0;
out:
	GENERAL_NAMES_free(gens);
	free(v);
	return rc;
}

int pki_make_server(const char *dir, const char *name, const char *const *sans, int nsans, int days,
		    char *err, size_t errlen)
{
	return pki_make_server_flags(dir, name, sans, nsans, days, 0, err, errlen);
}

int pki_make_server_flags(const char *dir, const char *name, const char *const *sans, int nsans, int days,
			  unsigned flags, char *err, size_t errlen)
{
	char ca_key[PATH_MAX], ca_cert[PATH_MAX];
	struct pending p[2] = { 0 };
	EVP_PKEY *cakey = NULL, *key = NULL;
	X509 *ca = NULL, *x = NULL;
	X509V3_CTX ctx;
	time_t ca_end;
	struct tm tm;
	int rc = -1;

	if (check_days(days, err, errlen) < 0 || pki_check_file_name(name, err, errlen) < 0 ||
	    check_dir(dir, err, errlen) < 0 || join(p[0].path, dir, name, ".key", err, errlen) < 0 ||
	    join(p[1].path, dir, name, ".crt", err, errlen) < 0 ||
	    join(ca_key, dir, PKI_CA_KEY, "", err, errlen) < 0 || join(ca_cert, dir, PKI_CA_CERT, "", err, errlen) < 0)
		return -1;
	/* Bad names are refused before anything is made or loaded. */
	if (nsans < 0 || nsans > PKI_MAX_SANS || (nsans && !sans)) {
		snprintf(err, errlen, "%s: %d subject alternative names (at most %d)", p[1].path, nsans, PKI_MAX_SANS);
		return -1;
	}
	for (int i = 0; i < nsans; i++)
		if (pki_san_check(sans[i], err, errlen) < 0)
			return -1;
	if (!(flags & PKI_FORCE) && refuse_existing(p, 2, err, errlen) < 0)
		return -1;
	if (!(ca = pki_load_cert(ca_cert, err, errlen)) || !(cakey = pki_load_key(ca_key, err, errlen)))
		goto out;
	if (X509_check_private_key(ca, cakey) != 1) {
		pki_fail(err, errlen, "%s does not belong to %s (the CA's key and certificate differ)", ca_key, ca_cert);
		goto out;
	}
	if (X509_check_ca(ca) == 0) {
		snprintf(err, errlen, "%s is not a CA certificate", ca_cert);
		goto out;
	}
	/* A certificate cannot outlive its CA: it would stop verifying then. */
	if (!ASN1_TIME_to_tm(X509_get0_notAfter(ca), &tm)) {
		pki_fail(err, errlen, "%s: unreadable notAfter", ca_cert);
		goto out;
	}
	ca_end = timegm(&tm);
	if (ca_end <= time(NULL)) {
		snprintf(err, errlen, "%s has expired: make a new CA (vigilctl pki --force)", ca_cert);
		goto out;
	}
	if (!(key = new_key(p[0].path, err, errlen)) || !(x = new_cert(key, name, days, ca_end, p[1].path, err, errlen)))
		goto out;
	if (!X509_set_issuer_name(x, X509_get_subject_name(ca)) ||
	    ((flags & PKI_POOL_MEMBER) &&
	     !X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "OU", MBSTRING_UTF8,
	                                 (const unsigned char *)PKI_POOL_MEMBER_OU, -1, -1, 0))) {
		pki_fail(err, errlen, "cannot build the certificate for %s", p[1].path);
		goto out;
	}
	X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
	if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE", p[1].path, err, errlen) < 0 ||
	    add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature", p[1].path, err, errlen) < 0 ||
	    add_ext(x, &ctx, NID_ext_key_usage, "serverAuth,clientAuth", p[1].path, err, errlen) < 0 ||
	    add_ext(x, &ctx, NID_subject_key_identifier, "hash", p[1].path, err, errlen) < 0 ||
	    add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always", p[1].path, err, errlen) < 0 ||
	    add_sans(x, sans, nsans, p[1].path, err, errlen) < 0 || sign(x, cakey, p[1].path, err, errlen) < 0)
		goto out;
	rc = write_pair(dir, p, key, x, flags, err, errlen);
out:
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(cakey);
	return rc;
}

int pki_export_ca(const char *src, const char *dst, char *err, size_t errlen)
{
	STACK_OF(X509) *certs = pki_load_certs(src, err, errlen);
	struct pending p = { 0 };
	char dir[PATH_MAX], *slash;
	BIO *mem = NULL;
	int rc = -1;

	if (!certs)
		return -1;
	if (!strlcpy_ok(p.path, dst, sizeof(p.path)) || !strlcpy_ok(dir, dst, sizeof(dir))) {
		snprintf(err, errlen, "path %s is too long", dst);
		goto out;
	}
	slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	else
		strcpy(dir, ".");
	if (!(mem = BIO_new(BIO_s_mem()))) {
		pki_fail(err, errlen, "out of memory");
		goto out;
	}
	for (int i = 0; i < sk_X509_num(certs); i++)
		if (!PEM_write_bio_X509(mem, sk_X509_value(certs, i))) {
			pki_fail(err, errlen, "cannot encode certificate %d of %s", i + 1, src);
			goto out;
		}
	if (write_tmp(&p, mem, 0644, err, errlen) < 0)
		goto out;
	rc = place_all(dir, &p, 1, PKI_FORCE, err, errlen);
out:
	discard_all(&p, 1);
	BIO_free(mem);
	sk_X509_pop_free(certs, X509_free);
	return rc;
}
