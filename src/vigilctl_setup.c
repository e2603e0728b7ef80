/* Placeholder until the setup wizard lands (being written now): keeps
 * vigilctl linkable. */
#include <stdio.h>

#include "vigilctl_setup.h"

int vigilctl_setup(const char *config, int argc, char **argv)
{
	(void)config;
	(void)argc;
	(void)argv;
	fprintf(stderr, "vigilctl: setup is not available in this build\n");
	return 2;
}
