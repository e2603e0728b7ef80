/* Small helpers shared by every module: clocks, files, fds, randomness. */
#ifndef VIGIL_UTIL_H
#define VIGIL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* CLOCK_MONOTONIC: every timeout and deadline uses these. */
uint64_t mono_ms(void);
uint64_t mono_us(void);
/* For libevent timers. */
struct timeval;
void ms_to_timeval(uint64_t ms, struct timeval *tv);
/* CLOCK_REALTIME, only for timestamps shown to people. */
uint64_t wall_ms(void);
/* "2026-11-23 20:41:07.123" into buf (at least 24 bytes). */
void format_wall(uint64_t ms, char *buf, size_t len);

/* Reads a whole file (at most max bytes) into a NUL-terminated malloc'd
 * buffer. Returns 0, or -errno (file untouched; *buf NULL). */
int read_file(const char *path, size_t max, char **buf, size_t *len);
/* Writes through a temporary file, fsync, rename, fsync of the directory:
 * the file holds either the old or the new content. 0 or -errno. */
int write_file_atomic(const char *path, const void *buf, size_t len, mode_t mode);
/* mkdir -p with mode. 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);

int set_nonblock(int fd);
int set_cloexec(int fd);

/* Fills buf from getrandom(). 0 or -1. */
int random_bytes(void *buf, size_t len);

/* Copies at most dstlen-1 bytes and NUL-terminates; returns true if it fit. */
bool strlcpy_ok(char *dst, const char *src, size_t dstlen);

/* Parses a base-10 unsigned integer with bounds; 0 or -1. */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

#endif
