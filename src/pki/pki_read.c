/* Reading certificates and keys: expiry, names, fingerprints, chains, and
 * which files (generated or custom) a node uses. */
#include "pki/pki.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"
#include "pki/pki_int.h"

#define NAME_MAX_LEN 63
#define HOST_MAX 253
#define LABEL_MAX 63

void pki_fail(char *err, size_t errlen, const char *fmt, ...)
{
	unsigned long e = ERR_peek_last_error();
	const char *reason = e ? ERR_reason_error_string(e) : NULL;
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	n = strlen(err);
	if (reason && n < errlen)
		snprintf(err + n, errlen - n, ": %s", reason);
	ERR_clear_error();
}

static FILE *open_pem(const char *path, const char *what, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");

	if (!f)
		snprintf(err, errlen, "cannot open %s %s: %s", what, path, strerror(errno));
	return f;
}

X509 *pki_load_cert(const char *path, char *err, size_t errlen)
{
	FILE *f = open_pem(path, "certificate", err, errlen);
	X509 *x;

	if (!f)
		return NULL;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!x)
		pki_fail(err, errlen, "%s does not hold a PEM certificate", path);
	return x;
}

STACK_OF(X509) *pki_load_certs(const char *path, char *err, size_t errlen)
{
	FILE *f = open_pem(path, "certificate", err, errlen);
	STACK_OF(X509) *sk;
	X509 *x;

	if (!f)
		return NULL;
	if (!(sk = sk_X509_new_null())) {
		fclose(f);
		pki_fail(err, errlen, "out of memory");
		return NULL;
	}
	while ((x = PEM_read_X509(f, NULL, NULL, NULL)))
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			break;
		}
	fclose(f);
	if (!sk_X509_num(sk)) {
		pki_fail(err, errlen, "%s does not hold a PEM certificate", path);
		sk_X509_free(sk);
		return NULL;
	}
	/* The loop ends on "no start line" after the last certificate. */
	ERR_clear_error();
	return sk;
}

/* Called only for an encrypted key: says so instead of prompting. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	*(bool *)u = true;
	return -1;
}

EVP_PKEY *pki_load_key(const char *path, char *err, size_t errlen)
{
	FILE *f = open_pem(path, "key", err, errlen);
	bool encrypted = false;
	EVP_PKEY *k;

	if (!f)
		return NULL;
	k = PEM_read_PrivateKey(f, NULL, no_passphrase, &encrypted);
	fclose(f);
	if (!k && encrypted) {
		ERR_clear_error();
		snprintf(err, errlen, "%s is encrypted with a passphrase: vigil needs an unencrypted key", path);
	} else if (!k) {
		pki_fail(err, errlen, "%s does not hold a PEM private key", path);
	}
	return k;
}

int pki_check_file_name(const char *name, char *err, size_t errlen)
{
	size_t n = name ? strlen(name) : 0;

	if (n < 1 || n > NAME_MAX_LEN) {
		snprintf(err, errlen, "node name '%s' must have 1 to %d characters", name ? name : "", NAME_MAX_LEN);
		return -1;
	}
	if (name[0] == '.') {
		snprintf(err, errlen, "node name '%s' must not start with '.'", name);
		return -1;
	}
	for (const char *s = name; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.') {
			snprintf(err, errlen, "node name '%s' holds '%c': only letters, digits, '-', '_' and '.' are allowed",
				 name, isprint((unsigned char)*s) ? *s : '?');
			return -1;
		}
	if (!strcmp(name, "ca") || !strcmp(name, "cacert")) {
		snprintf(err, errlen, "node name '%s' is reserved: its files would replace the CA's", name);
		return -1;
	}
	return 0;
}

bool pki_san_is_ip(const char *s)
{
	unsigned char buf[16];

	return s && (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1);
}

int pki_san_check(const char *s, char *err, size_t errlen)
{
	size_t n = s ? strlen(s) : 0;
	const char *label;
	bool digits_only = true;

	if (!n) {
		snprintf(err, errlen, "empty subject alternative name: give a host name or an IP address");
		return -1;
	}
	if (pki_san_is_ip(s))
		return 0;
	if (strchr(s, ':')) {
		snprintf(err, errlen, "subject alternative name '%s' is not a valid IP address "
			 "(write IPv6 addresses without brackets and without a %%zone)", s);
		return -1;
	}
	for (const char *c = s; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.' && *c != '*') {
			if (isprint((unsigned char)*c))
				snprintf(err, errlen, "subject alternative name '%s' is neither an IP address nor a host name: "
					 "'%c' is not allowed (letters, digits, '-' and '.')", s, *c);
			else
				snprintf(err, errlen, "subject alternative name '%s' is neither an IP address nor a host name: "
					 "byte 0x%02x is not allowed (letters, digits, '-' and '.')", s, (unsigned char)*c);
			return -1;
		}
	if (n > HOST_MAX) {
		snprintf(err, errlen, "subject alternative name '%.40s...' is longer than %d characters", s, HOST_MAX);
		return -1;
	}
	label = s;
	for (;;) {
		const char *dot = strchr(label, '.');
		size_t len = dot ? (size_t)(dot - label) : strlen(label);

		if (!len) {
			snprintf(err, errlen, "subject alternative name '%s' has an empty label "
				 "(a dot at the start or end, or two in a row)", s);
			return -1;
		}
		if (len > LABEL_MAX) {
			snprintf(err, errlen, "subject alternative name '%s' has a label longer than %d characters", s,
				 LABEL_MAX);
			return -1;
		}
		if (memchr(label, '*', len) && (label != s || len != 1 || !dot)) {
			snprintf(err, errlen, "subject alternative name '%s': '*' may only be the whole first label, "
				 "as in *.example.com", s);
			return -1;
		}
		if (label[0] == '-' || label[len - 1] == '-') {
			snprintf(err, errlen, "subject alternative name '%s' has a label starting or ending with '-'", s);
			return -1;
		}
		digits_only = strspn(label, "0123456789") == len;
		if (!dot)
			break;
		label = dot + 1;
	}
	if (digits_only) {
		snprintf(err, errlen, "subject alternative name '%s' is neither a valid IP address nor a host name "
			 "(a host name's last label is not all digits)", s);
		return -1;
	}
	return 0;
}

int pki_cert_expiry(const char *path, time_t *not_after, char *err, size_t errlen)
{
	X509 *x = pki_load_cert(path, err, errlen);
	struct tm tm;
	int rc = -1;

	if (!x)
		return -1;
	if (!ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm))
		pki_fail(err, errlen, "%s: the certificate's notAfter is unreadable", path);
	else {
		*not_after = timegm(&tm);
		rc = 0;
	}
	X509_free(x);
	return rc;
}

int pki_days_until(time_t not_after, time_t now)
{
	long long d = (long long)not_after - (long long)now;

	/* Rounded down, also below zero: an hour after expiry is day -1. */
	d = d >= 0 ? d / 86400 : -((-d + 86399) / 86400);
	if (d > INT_MAX)
		return INT_MAX;
	if (d < INT_MIN)
		return INT_MIN;
	return (int)d;
}

int pki_days_left(const char *path, int *days, char *err, size_t errlen)
{
	time_t end;

	if (pki_cert_expiry(path, &end, err, errlen) < 0)
		return -1;
	*days = pki_days_until(end, time(NULL));
	return 0;
}

void pki_names_free(char **names, int nnames)
{
	for (int i = 0; names && i < nnames; i++)
		free(names[i]);
	free(names);
}

/* "DNS:name" or "IP:address" for one general name; NULL for other kinds. */
static char *name_text(const GENERAL_NAME *g, bool *oom)
{
	char buf[HOST_MAX + 8], ip[INET6_ADDRSTRLEN];
	const ASN1_STRING *s;
	int type, len;
	char *out;

	s = GENERAL_NAME_get0_value(g, &type);
	len = ASN1_STRING_length(s);
	if (type == GEN_DNS) {
		const unsigned char *d = ASN1_STRING_get0_data(s);

		/* A name with a NUL inside would show as another name. */
		if (len < 0 || len > HOST_MAX || memchr(d, '\0', (size_t)len))
			return NULL;
		snprintf(buf, sizeof(buf), "DNS:%.*s", len, (const char *)d);
	} else if (type == GEN_IPADD && (len == 4 || len == 16)) {
		if (!inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(s), ip, sizeof(ip)))
			return NULL;
		snprintf(buf, sizeof(buf), "IP:%s", ip);
	} else {
		return NULL;
	}
	if (!(out = strdup(buf)))
		*oom = true;
	return out;
}

int pki_cert_names(const char *path, char ***names, int *nnames, char *err, size_t errlen)
{
	X509 *x = pki_load_cert(path, err, errlen);
	GENERAL_NAMES *gens;
	char **v = NULL;
	int n = 0, crit = 0;
	bool oom = false;

	*names = NULL;
	*nnames = 0;
	if (!x)
		return -1;
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
	if (!gens && crit != -1) {
		pki_fail(err, errlen, "%s: the subject alternative names are unreadable", path);
		X509_free(x);
		return -1;
	}
	if (gens && sk_GENERAL_NAME_num(gens) > 0 &&
	    !(v = calloc((size_t)sk_GENERAL_NAME_num(gens), sizeof(*v))))
		oom = true;
	for (int i = 0; v && !oom && i < sk_GENERAL_NAME_num(gens); i++) {
		char *t = name_text(sk_GENERAL_NAME_value(gens, i), &oom);

		if (t)
			v[n++] = t;
	}
	GENERAL_NAMES_free(gens);
	X509_free(x);
	ERR_clear_error();
	if (oom) {
		pki_names_free(v, n);
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	*names = v;
	*nnames = n;
	return 0;
}

int pki_cert_cn(const char *path, char *cn, size_t cnlen, char *err, size_t errlen)
{
	X509 *x = pki_load_cert(path, err, errlen);
	int rc = 0;

	if (!x)
		return -1;
	if (cnlen > INT_MAX || X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, (int)cnlen) < 0) {
		pki_fail(err, errlen, "%s: the certificate has no common name", path);
		rc = -1;
	}
	X509_free(x);
	return rc;
}

int pki_fingerprint(const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
	X509 *x = pki_load_cert(path, err, errlen);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	int rc = -1;

	if (!x)
		return -1;
	if (!X509_digest(x, EVP_sha256(), md, &n)) {
		pki_fail(err, errlen, "%s: cannot compute the SHA-256 fingerprint", path);
	} else if (outlen < (size_t)n * 3) {
		snprintf(err, errlen, "%s: fingerprint buffer too small", path);
	} else {
		for (unsigned int i = 0; i < n; i++)
			snprintf(out + i * 3, outlen - i * 3, "%02X%s", md[i], i + 1 < n ? ":" : "");
		rc = 0;
	}
	X509_free(x);
	return rc;
}

int pki_verify(const char *cafile, const char *certfile, char *err, size_t errlen)
{
	STACK_OF(X509) *cas = NULL, *chain = NULL;
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	X509 *leaf;
	int rc = -1;

	if (!(cas = pki_load_certs(cafile, err, errlen)) || !(chain = pki_load_certs(certfile, err, errlen)))
		goto out;
	if (!(store = X509_STORE_new()) || !(ctx = X509_STORE_CTX_new())) {
		pki_fail(err, errlen, "out of memory");
		goto out;
	}
	for (int i = 0; i < sk_X509_num(cas); i++)
		if (!X509_STORE_add_cert(store, sk_X509_value(cas, i))) {
			pki_fail(err, errlen, "%s: cannot use certificate %d", cafile, i + 1);
			goto out;
		}
	leaf = sk_X509_shift(chain);
	if (!X509_STORE_CTX_init(ctx, store, leaf, chain)) {
		X509_free(leaf);
		pki_fail(err, errlen, "cannot verify %s", certfile);
		goto out;
	}
	if (X509_verify_cert(ctx) == 1) {
		rc = 0;
	} else {
		int e = X509_STORE_CTX_get_error(ctx);

		snprintf(err, errlen, "%s does not verify against %s: %s (at depth %d)", certfile, cafile,
			 X509_verify_cert_error_string(e), X509_STORE_CTX_get_error_depth(ctx));
		ERR_clear_error();
	}
	X509_STORE_CTX_free(ctx);
	ctx = NULL;
	X509_free(leaf);
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_pop_free(cas, X509_free);
	sk_X509_pop_free(chain, X509_free);
	return rc;
}

int pki_key_matches(const char *certfile, const char *keyfile, char *err, size_t errlen)
{
	X509 *x = pki_load_cert(certfile, err, errlen);
	EVP_PKEY *k = x ? pki_load_key(keyfile, err, errlen) : NULL;
	int rc = -1;

	if (k) {
		if (X509_check_private_key(x, k) == 1)
			rc = 0;
		else
			pki_fail(err, errlen, "%s is not the key of %s", keyfile, certfile);
	}
	EVP_PKEY_free(k);
	X509_free(x);
	return rc;
}

static int set_file(struct pki_file *f, const char *dir, const char *sub, const char *name, const char *ext,
		    bool custom)
{
	struct stat st;

	if (snprintf(f->path, sizeof(f->path), "%s/%s%s%s%s", dir, sub, *sub ? "/" : "", name, ext) >=
	    (int)sizeof(f->path))
		return -1;
	f->exists = stat(f->path, &st) == 0 && S_ISREG(st.st_mode);
	f->custom = custom;
	return 0;
}

int pki_paths(const char *config_dir, const char *node_name, struct pki_paths *out)
{
	struct pki_file cc, ck;
	char err[256];

	memset(out, 0, sizeof(*out));
	if (!config_dir || pki_check_file_name(node_name, err, sizeof(err)) < 0)
		return -1;
	if (set_file(&out->ca, config_dir, "", PKI_CUSTOM_CA, "", true) < 0 ||
	    set_file(&cc, config_dir, "", PKI_CUSTOM_CERT, "", true) < 0 ||
	    set_file(&ck, config_dir, "", PKI_CUSTOM_KEY, "", true) < 0 ||
	    set_file(&out->client_ca, config_dir, "", PKI_CUSTOM_CLIENT_CA, "", true) < 0)
		return -1;
	if (!out->ca.exists && set_file(&out->ca, config_dir, PKI_SUBDIR, PKI_CA_CERT, "", false) < 0)
		return -1;
	if (cc.exists || ck.exists) {
		out->cert = cc;
		out->key = ck;
	} else if (set_file(&out->cert, config_dir, PKI_SUBDIR, node_name, ".crt", false) < 0 ||
		   set_file(&out->key, config_dir, PKI_SUBDIR, node_name, ".key", false) < 0) {
		return -1;
	}
	return 0;
}

int pki_paths_check(const struct pki_paths *p, char *err, size_t errlen)
{
	if (p->cert.custom && p->cert.exists != p->key.exists) {
		snprintf(err, errlen, "%s is present but %s is missing: custom certificates need both files",
			 p->cert.exists ? p->cert.path : p->key.path, p->cert.exists ? p->key.path : p->cert.path);
		return -1;
	}
	if (!p->ca.exists) {
		snprintf(err, errlen, "no CA certificate: %s is missing (run vigilctl pki, or place %s)", p->ca.path,
			 PKI_CUSTOM_CA);
		return -1;
	}
	if (!p->cert.exists || !p->key.exists) {
		snprintf(err, errlen, "no certificate for this node: %s is missing (run vigilctl pki)",
			 p->cert.exists ? p->key.path : p->cert.path);
		return -1;
	}
	return 0;
}
