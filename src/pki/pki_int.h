/* Shared by pki.c (making) and pki_read.c (reading): loading PEM files
 * with errors that name the file. */
#ifndef VIGIL_PKI_INT_H
#define VIGIL_PKI_INT_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>

/* err = the formatted text, then ": " and OpenSSL's reason if it has one.
 * Clears OpenSSL's error queue either way. */
void pki_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The first certificate of a PEM file, or NULL with err filled. */
X509 *pki_load_cert(const char *path, char *err, size_t errlen);
/* Every certificate of a PEM file (at least one), or NULL. */
STACK_OF(X509) *pki_load_certs(const char *path, char *err, size_t errlen);
/* An unencrypted private key from a PEM file, or NULL (an encrypted key is
 * refused: nothing may prompt for a passphrase). */
EVP_PKEY *pki_load_key(const char *path, char *err, size_t errlen);

/* A node name usable as a file name in the PKI directory. */
int pki_check_file_name(const char *name, char *err, size_t errlen);

#endif
