#include "vigilctl_password.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

int read_new_password(const char *who, const char *prompt, char *out, size_t outlen)
{
	bool tty = isatty(STDIN_FILENO);
	char again[128] = "";
	struct termios old, quiet;

	for (int round = 0; round < (tty ? 2 : 1); round++) {
		char *dst = round ? again : out;
		size_t n = round ? sizeof(again) : outlen;

		if (tty) {
			fputs(round ? "Again: " : prompt, stderr);
			tcgetattr(STDIN_FILENO, &old);
			quiet = old;
			quiet.c_lflag &= ~(tcflag_t)ECHO;
			tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
		}
		if (!fgets(dst, (int)n, stdin))
			dst[0] = '\0';
		if (tty) {
			tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
			fputc('\n', stderr);
		}
		dst[strcspn(dst, "\r\n")] = '\0';
	}
	if (tty && strcmp(out, again)) {
		fprintf(stderr, "%s: the two passwords differ; nothing changed\n", who);
		explicit_bzero(again, sizeof(again));
		return -1;
	}
	explicit_bzero(again, sizeof(again));
	if (!out[0]) {
		fprintf(stderr, "%s: no password given on stdin; nothing changed\n", who);
		return -1;
	}
	return 0;
}
