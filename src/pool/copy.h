/* Copy-back of recordings (docs/pool-protocol.md, "Copy-back"): after a
 * failback the spare copies what it recorded for a recorder into the
 * recorder's recordings_dir. Mutual TLS with the pool's certificates; the
 * spare checks that the other end is the recorder it was told.
 *
 * Per file, the spare says its path, size and SHA-256; the recorder says
 * how much of it it has (a `.part` left by an interrupted copy, or all of
 * it when the same file is already there), the rest follows, and the
 * recorder checks the SHA-256 before it renames the file into place. So a
 * copy resumes where it stopped, and a file is never there twice or half.
 *
 * Both ends do blocking I/O with socket timeouts, on their own threads. */
#ifndef VIGIL_POOL_COPY_H
#define VIGIL_POOL_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ssl_ctx_st;

#define COPY_IO_TIMEOUT_S 15

/* ---- the recorder: a server on copy_port ---- */
struct copy_server;
struct copy_server *copy_server_start(struct ssl_ctx_st *tls, uint16_t port, const char *recordings_dir, char *err,
                                      size_t errlen);
void copy_server_stop(struct copy_server *s);

/* ---- the spare: one copy, run by a worker thread ---- */
struct copy_stats {
	uint64_t bytes_done, bytes_total;
	uint32_t files_done, files_total;
};

struct copy_task {
	/* in */
	struct ssl_ctx_st *tls;
	char address[64];               /* IPv4:PORT of the recorder */
	char recorder[64];              /* its certificate's CN */
	char src[4096 + 80];            /* the spare's recordings for it */
	bool remove_after;              /* delete each file once the recorder has it */
	void *owner;                    /* the caller's */
	volatile int cancel;            /* set by the loop: stop at the next chunk */
	/* out, under the caller's eye: stats are read while it runs (torn
	 * reads only make the progress a chunk off) */
	struct copy_stats stats;
	bool ok;
	char err[512];
};

/* Blocking: copies every regular file under task->src. */
void copy_run(struct copy_task *task);

#endif
