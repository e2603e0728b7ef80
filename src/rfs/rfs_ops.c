/* The operation table and the connection settings it needs. */
#include <string.h>

#include "common/log.h"
#include "rfs/rfs_ops.h"

/* Connection settings, chosen for correctness first: the next step ships
 * every change to SECOND, in order, before the application sees it done.
 * - No writeback cache: with it the kernel acknowledges write() from its
 *   page cache and sends the data later, merged and in page order, and
 *   handles O_APPEND itself. Without it each write() is a request here that
 *   the application waits for, so a write the application saw complete has
 *   passed through rfs_journal_op(), and an O_SYNC/O_DSYNC/RWF_DSYNC write
 *   or an fsync reaches this process.
 * - File data, --cache direct (default): FOPEN_DIRECT_IO on every open, no
 *   kernel page cache for these files. Measured about 3x the sequential
 *   write throughput of the page-cache mode (no copy into a second page
 *   cache, no double memory), and one coherent path for all opens. Its
 *   price: a MAP_SHARED mmap of a file fails with ENODEV (libfuse 3.14
 *   cannot ask for FUSE_DIRECT_IO_ALLOW_MMAP); PostgreSQL does not need it.
 *   --cache page keeps the kernel's page cache (write-through) for
 *   applications that do.
 * - Attributes and entries are cached (RFS_CACHE_TIMEOUT): nothing but this
 *   process changes the backing tree while it is mounted, and the kernel
 *   updates what it caches on each change it sends. For the same reason
 *   AUTO_INVAL_DATA is off: in page mode it would drop the page cache after
 *   each of our own writes, when the new mtime is seen.
 * - No splice of write data from the kernel: the journal needs the bytes in
 *   memory. Read data is spliced from the backing file to the kernel.
 * - HANDLE_KILLPRIV off: this root daemon's writes would not clear
 *   set-uid/set-gid bits of a file an unprivileged user writes, so the
 *   kernel does it with an explicit setattr (journaled like any other).
 * - No lock handlers: the kernel keeps POSIX and flock locks itself, which
 *   is right as every user of these files goes through this one mount.
 * - POSIX_ACL: the kernel enforces ACLs (with default_permissions), and
 *   DONT_MASK hands the caller's umask to us, so the backing file system
 *   applies it or a default ACL, as it would for the caller directly. */
static void rfs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct rfs_fs *fs = userdata;

	conn->want &= ~(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_SPLICE_READ | FUSE_CAP_HANDLE_KILLPRIV |
			FUSE_CAP_AUTO_INVAL_DATA | FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
	conn->want |= conn->capable & (FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE |
				       FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK);
	fs->dont_mask = (conn->want & FUSE_CAP_DONT_MASK) != 0;
	log_info("%s: FUSE protocol %u.%u, cache %s, max_write %u, splice to kernel %s, ACLs %s",
		 fs->dir, conn->proto_major, conn->proto_minor, fs->direct_io ? "direct" : "page",
		 conn->max_write,
		 (conn->want & FUSE_CAP_SPLICE_WRITE) ? "yes" : "no",
		 (conn->want & FUSE_CAP_POSIX_ACL) ? "yes" : "no");
}

void rfs_ops_build(struct fuse_lowlevel_ops *ops)
{
	memset(ops, 0, sizeof(*ops));
	ops->init = rfs_init;
	rfs_ops_entry(ops);
	rfs_ops_file(ops);
	rfs_ops_dir(ops);
	rfs_ops_xattr(ops);
	rfs_ops_gate(ops);
}
