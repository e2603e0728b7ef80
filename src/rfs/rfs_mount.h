/* What the vigil-rfs commands share (rfs_main.c): opening the directory to
 * serve and serving it through FUSE mounted over itself. */
#ifndef VIGIL_RFS_MOUNT_H
#define VIGIL_RFS_MOUNT_H

#include <stdarg.h>
#include <stdbool.h>

#include "rfs/rfs_fs.h"

#define FUSE_SUPER_MAGIC 0x65735546
#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

/* Resolves and opens DIR (O_PATH), refusing what cannot be served; real
 * gets its absolute path (PATH_MAX). Messages on stderr name DIR. 0 or -1. */
int rfs_open_dir(const char *dir, char *real, int *out_fd);
/* Each inode the kernel knows holds an fd: as many as permitted. */
void rfs_raise_fd_limit(void);
/* libfuse's messages into our log. */
void rfs_fuse_to_log(enum fuse_log_level level, const char *fmt, va_list ap);
/* Mounts fs over real and serves until unmounted or signalled; forks into
 * the background unless foreground. Exit code (0, EXIT_RUNTIME). */
int rfs_serve(struct rfs_fs *fs, const char *real, bool foreground, bool verbose);

/* The -o options of a mount of fs over real. 0 or -1. */
int rfs_mount_args(struct fuse_args *args, const char *real, int root_fd, bool root);
void rfs_log_stats(const struct rfs_fs *fs);
/* rfs_serve.c: mounts every fs over its dir and serves them all, each on
 * its own threads, in the foreground, until SIGTERM/SIGINT/SIGHUP or until
 * one of them is unmounted from outside; then unmounts them all (a busy
 * mount is detached). Exit code (0, EXIT_RUNTIME). */
int rfs_serve_many(struct rfs_fs **fs, int n, bool verbose);
/* Set (atomically) once every dir is mounted, and once serving ends. */
extern bool rfs_serve_mounted, rfs_serve_stopping;

/* rfs_repl.c: the prim and second commands. Exit code. */
int rfs_repl_main(int argc, char **argv);
/* rfs_gencmd.c: outdate, forcestart, gen. Exit code. */
int rfs_gencmd_main(int argc, char **argv);

#endif
