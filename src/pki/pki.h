/* The cluster's built-in PKI (OpenSSL libcrypto).
 *
 * One CA per cluster (EC P-256, self-signed) signs one certificate per
 * node. A node's certificate serves HTTPS (console, API) and both ends of
 * the mutual TLS link between the nodes, hence serverAuth and clientAuth.
 *
 * Files, in the directory given (vigilctl uses CONFIG_DIR/pki, mode 0700):
 *   ca.key  cacert.crt         the CA's key (0600) and certificate (0644)
 *   NAME.key  NAME.crt         a node's key (0600) and certificate (0644)
 * Every file is written to a temporary name, fsynced and then put in
 * place: a reader sees the old file or the new one, never half of one,
 * and a key and its certificate are put in place together.
 *
 * Custom certificates (cacert.crt, server.crt, server.key, clcacert.crt)
 * dropped into the config directory replace the generated ones: see
 * pki_paths().
 *
 * Every function returns 0 or -1; on -1, err holds a sentence naming the
 * file and what was wrong. */
#ifndef VIGIL_PKI_H
#define VIGIL_PKI_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define PKI_DEFAULT_DAYS 1826          /* five years */
#define PKI_MAX_DAYS 36500
#define PKI_WARN_DAYS 30               /* status and log warn this close to expiry */
#define PKI_MAX_SANS 256
#define PKI_FINGERPRINT_LEN 96         /* "AB:CD:...": 32 bytes * 3, NUL included */

#define PKI_CA_KEY "ca.key"
#define PKI_CA_CERT "cacert.crt"
/* The custom files, in the config directory (seeds: "Use custom server
 * certificates"). */
#define PKI_CUSTOM_CA "cacert.crt"
#define PKI_CUSTOM_CERT "server.crt"
#define PKI_CUSTOM_KEY "server.key"
#define PKI_CUSTOM_CLIENT_CA "clcacert.crt"
#define PKI_SUBDIR "pki"

/* pki_make_*_flags: PKI_FORCE replaces existing files; without it an
 * existing key or certificate is an error and nothing is written. */
#define PKI_FORCE 1u
/* The certificate of a pool recorder or spare (vigilctl pki member): its
 * subject carries OU PKI_POOL_MEMBER_OU. The pool master accepts only such
 * certificates from agents, and an agent refuses one as its master, so a
 * recorder's key cannot pose as the master (docs/pool-protocol.md). */
#define PKI_POOL_MEMBER 2u
#define PKI_POOL_MEMBER_OU "vigil pool member"

/* Makes dir/ca.key and dir/cacert.crt: CN "vigil CA CLUSTER", CA:TRUE
 * (critical), keyUsage keyCertSign and cRLSign, subject key id, valid
 * days (1 to PKI_MAX_DAYS). Refuses if either file exists. */
int pki_make_ca(const char *dir, const char *cluster_name, int days, char *err, size_t errlen);
int pki_make_ca_flags(const char *dir, const char *cluster_name, int days, unsigned flags,
		      char *err, size_t errlen);

/* Makes dir/NAME.key and dir/NAME.crt signed by dir/ca.key (dir/cacert.crt):
 * CN NAME, one SAN per entry of sans (an IPv4 or IPv6 literal becomes an IP
 * SAN, a host name a DNS SAN; duplicates are dropped; anything else is an
 * error), extendedKeyUsage serverAuth and clientAuth, keyUsage
 * digitalSignature, authority key id, valid days. NAME is a file name:
 * letters, digits, '-', '_', '.', not starting with '.', not "ca" nor
 * "cacert". Refuses if either file exists. */
int pki_make_server(const char *dir, const char *name, const char *const *sans, int nsans, int days,
		    char *err, size_t errlen);
int pki_make_server_flags(const char *dir, const char *name, const char *const *sans, int nsans, int days,
			  unsigned flags, char *err, size_t errlen);

/* 0 if s can be a SAN: an IP literal, or a host name (labels of letters,
 * digits and '-', not starting or ending with '-', at most 63 characters
 * each and 253 in all; the first label may be "*"). */
int pki_san_check(const char *s, char *err, size_t errlen);
/* Whether s is an IPv4 or IPv6 literal. */
bool pki_san_is_ip(const char *s);

/* The certificate's notAfter (the first certificate of a PEM file). */
int pki_cert_expiry(const char *path, time_t *not_after, char *err, size_t errlen);
/* Whole days from now until notAfter, rounded down: 0 on its last day,
 * negative once expired. pki_days_until is the same from given times. */
int pki_days_left(const char *path, int *days, char *err, size_t errlen);
int pki_days_until(time_t not_after, time_t now);

/* The subject alternative names, each "DNS:name" or "IP:address" (IPv6 in
 * its canonical text form), in certificate order, into a malloc'd array
 * freed by pki_names_free. A certificate without SANs gives 0 names. */
int pki_cert_names(const char *path, char ***names, int *nnames, char *err, size_t errlen);
void pki_names_free(char **names, int nnames);

/* The subject's common name into cn (at most cnlen-1 bytes). */
int pki_cert_cn(const char *path, char *cn, size_t cnlen, char *err, size_t errlen);

/* The SHA-256 fingerprint of the certificate, "AB:CD:..." (out holds at
 * least PKI_FINGERPRINT_LEN bytes). */
int pki_fingerprint(const char *path, char *out, size_t outlen, char *err, size_t errlen);

/* Writes the certificates of src (a PEM file of one or more; nothing else
 * of it, such as a key put there by mistake) to dst, mode 0644, replacing
 * dst atomically. */
int pki_export_ca(const char *src, const char *dst, char *err, size_t errlen);

/* 0 if certfile's first certificate chains to a certificate of cafile
 * (further certificates in certfile are taken as intermediates) and every
 * certificate of the chain is valid now. */
int pki_verify(const char *cafile, const char *certfile, char *err, size_t errlen);

/* 0 if keyfile holds an unencrypted private key matching certfile's first
 * certificate. */
int pki_key_matches(const char *certfile, const char *keyfile, char *err, size_t errlen);

/* Which files a node uses. For each file: the path, whether it exists, and
 * whether it is the custom one from the config directory.
 *   ca:        CONFIG_DIR/cacert.crt, else CONFIG_DIR/pki/cacert.crt
 *   cert, key: CONFIG_DIR/server.crt and server.key if either is present
 *              (the pair is taken together: a missing half is reported,
 *              never completed with a generated file), else
 *              CONFIG_DIR/pki/NODE.crt and pki/NODE.key
 *   client_ca: CONFIG_DIR/clcacert.crt (only custom: browsers' client
 *              certificates are optional and never generated)
 * Returns -1 only if a path does not fit. */
struct pki_file {
	char path[PATH_MAX];
	bool exists;
	bool custom;
};

struct pki_paths {
	struct pki_file ca, cert, key, client_ca;
};

int pki_paths(const char *config_dir, const char *node_name, struct pki_paths *out);
/* 0 if ca, cert and key exist (client_ca is optional); else err says
 * which is missing, and for a custom pair, which half. */
int pki_paths_check(const struct pki_paths *p, char *err, size_t errlen);

#endif
