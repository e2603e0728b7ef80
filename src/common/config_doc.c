/* Prints the markdown key reference; docs/config.md is its output and the
 * config_doc test fails when the two differ. */
#include <stdio.h>

#include "common/config.h"

int main(void)
{
	config_print_help(stdout, true);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("vigil-config-doc: stdout");
		return 1;
	}
	return 0;
}
