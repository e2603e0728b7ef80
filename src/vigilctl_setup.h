/* vigilctl setup: the setup wizard (docs/setup.md). */
#ifndef VIGIL_VIGILCTL_SETUP_H
#define VIGIL_VIGILCTL_SETUP_H

/* argv[0] is "setup"; config is the -c FILE given (or the default): where
 * the config is written. Returns the exit status (0 done, 1 failed,
 * 2 usage error). */
int vigilctl_setup(const char *config, int argc, char **argv);

#endif
