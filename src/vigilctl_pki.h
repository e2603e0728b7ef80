/* vigilctl pki and vigilctl cert export: the cluster's CA and the nodes'
 * certificates in CONFIG_DIR/pki (docs/pki.md). Both work on files only:
 * vigild need not run. */
#ifndef VIGIL_VIGILCTL_PKI_H
#define VIGIL_VIGILCTL_PKI_H

#include "common/config.h"

/* vigilctl pki [--force] [--days N] [--san NAME|IP]...
 * argv[0] is "pki"; argv[1..argc-1] are its options (the caller has taken
 * out the global ones such as -c FILE). cfg may be loaded with
 * CONFIG_NO_SECRET. Prints what it wrote; returns the exit status:
 * 0 done, 1 failed, 2 usage error. */
int vigilctl_pki(const struct config *cfg, int argc, char **argv);
void vigilctl_pki_usage(FILE *out);

/* vigilctl cert export DIR: writes the CA certificate (the custom
 * CONFIG_DIR/cacert.crt if present, else CONFIG_DIR/pki/cacert.crt) to
 * DIR/cacert.crt. Exit status as above. */
int vigilctl_cert_export(const struct config *cfg, const char *dir);

#endif
