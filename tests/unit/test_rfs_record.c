/* The PRIM's record of what SECOND lacks (src/rfs/record.c): completeness
 * per generation, the ring of shipped changes against SECOND's
 * checkpoints, what each op records, reset and totals, and the record on
 * disk (open, close, hot marks across a crash-like reopen). The record is
 * process-global: each test starts from an empty ring and set. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "testutil.h"
#include "rfs/dirty.h"
#include "rfs/record.h"
#include "rfs/wire.h"

#define K 4096ull

/* An empty ring (every entry checkpointed) and an empty, complete set. */
static int fresh(void **state)
{
	(void)state;
	rfs_record_ckpt(UINT64_MAX);
	rfs_record_reset(1);
	return 0;
}

static struct rfs_op op_of(enum rfs_op_type type, uint8_t dir, uint64_t ino)
{
	return (struct rfs_op){ .type = type, .ino = { .dev = 1, .ino = ino, .dir = dir },
	                        .fd = -1, .parent_fd = -1, .new_parent_fd = -1 };
}

static void rec_write(uint8_t dir, uint64_t ino, uint64_t off, uint64_t len, uint64_t seq)
{
	struct rfs_op op = op_of(RFS_OP_WRITE, dir, ino);

	op.offset = off;
	op.len = len;
	rfs_record_op(&op, seq);
}

static void expect_absent(uint8_t dir, uint64_t ino)
{
	struct rfs_record_file f;

	assert_int_equal(rfs_record_get(dir, ino, &f), 1);
	assert_int_equal(f.n, 0);
	assert_null(f.iv);
}

/* In the set with exactly these flags and the n [start, end) pairs of want. */
static void expect_file(uint8_t dir, uint64_t ino, uint8_t flags, uint32_t n, const uint64_t *want)
{
	struct rfs_record_file f;

	assert_int_equal(rfs_record_get(dir, ino, &f), 0);
	assert_int_equal(f.flags, flags);
	assert_int_equal(f.n, n);
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(f.iv[i].start, want[2 * i]);
		assert_int_equal(f.iv[i].end, want[2 * i + 1]);
	}
	free(f.iv);
}

static void expect_whole(uint8_t dir, uint64_t ino)
{
	expect_file(dir, ino, DIRTY_WHOLE, 0, NULL);
}

/* Runs first, before any reset in this process. */
static void test_complete(void **state)
{
	(void)state;
	assert_false(rfs_record_complete(0));
	assert_false(rfs_record_complete(1));
	rfs_record_reset(7);
	assert_true(rfs_record_complete(7));
	assert_false(rfs_record_complete(8));
	assert_false(rfs_record_complete(6));
	assert_false(rfs_record_complete(0));
	rfs_record_incomplete("unit test");
	assert_false(rfs_record_complete(7));
	rfs_record_incomplete("unit test, again");    /* idempotent */
	assert_false(rfs_record_complete(7));
	rfs_record_reset(9);
	assert_true(rfs_record_complete(9));
	assert_false(rfs_record_complete(7));
	/* gen 0 is "none": never complete, even right after a reset to it */
	rfs_record_reset(0);
	assert_false(rfs_record_complete(0));
	/* changes do not make a complete record incomplete */
	rfs_record_reset(3);
	rec_write(0, 10, 0, 1, 0);
	rec_write(0, 10, 0, 1, 4);
	rfs_record_lost(0);
	assert_true(rfs_record_complete(3));
}

static void test_unshipped_write(void **state)
{
	(void)state;
	rec_write(0, 100, 5000, 10, 0);
	expect_file(0, 100, 0, 1, (uint64_t[]){ K, 2 * K });
	/* across a block boundary: both blocks */
	rec_write(0, 101, 4 * K - 1, 2, 0);
	expect_file(0, 101, 0, 1, (uint64_t[]){ 3 * K, 5 * K });
	/* same ino, another dir: another file */
	expect_absent(1, 100);
	rec_write(1, 100, 0, 1, 0);
	expect_file(1, 100, 0, 1, (uint64_t[]){ 0, K });
	expect_file(0, 100, 0, 1, (uint64_t[]){ K, 2 * K });
	/* an empty write and an excluded object record nothing */
	rec_write(0, 102, 0, 0, 0);
	expect_absent(0, 102);
	{
		struct rfs_op op = op_of(RFS_OP_WRITE, 0, 103);

		op.len = 100;
		op.ino.excluded = true;
		rfs_record_op(&op, 0);
		expect_absent(0, 103);
	}
	/* a second disjoint range of the same file */
	rec_write(0, 100, 10 * K, K, 0);
	expect_file(0, 100, 0, 2, (uint64_t[]){ K, 2 * K, 10 * K, 11 * K });
}

static void test_shipped_write(void **state)
{
	(void)state;
	/* durable on SECOND: the ring forgets it, a loss adds nothing */
	rec_write(0, 200, 8192, 100, 5);
	expect_absent(0, 200);
	rfs_record_ckpt(5);
	rfs_record_lost(0);
	expect_absent(0, 200);

	/* not yet durable there: a loss puts it in the set */
	rec_write(0, 201, 8192, 100, 6);
	expect_absent(0, 201);
	rfs_record_ckpt(5);
	expect_absent(0, 201);
	rfs_record_lost(0);
	expect_file(0, 201, 0, 1, (uint64_t[]){ 2 * K, 3 * K });

	/* the loss emptied the ring: a second one adds nothing more */
	rfs_record_reset(2);
	rfs_record_lost(0);
	expect_absent(0, 201);

	/* the brief's case: seq 5, ckpt 4 */
	rec_write(0, 202, 100, 4096, 5);
	rfs_record_ckpt(4);
	expect_absent(0, 202);
	rfs_record_lost(0);
	expect_file(0, 202, 0, 1, (uint64_t[]){ 0, 2 * K });

	/* a checkpoint between entries: only the later ones stay */
	rfs_record_reset(3);
	rec_write(0, 203, 0, 1, 10);
	rec_write(0, 204, 0, 1, 11);
	rec_write(0, 205, 0, 1, 12);
	rfs_record_ckpt(11);
	rfs_record_lost(0);
	expect_absent(0, 203);
	expect_absent(0, 204);
	expect_file(0, 205, 0, 1, (uint64_t[]){ 0, K });
	/* and a change after the loss, not shipped, goes in at once */
	rec_write(0, 206, 0, 1, 0);
	expect_file(0, 206, 0, 1, (uint64_t[]){ 0, K });
}

static void test_sequential_coalesce(void **state)
{
	(void)state;
	/* one file written sequentially, seqs growing: one ring entry whose
	 * seq is the last, so a checkpoint of the first ones keeps it all */
	rec_write(0, 300, 0, K, 1);
	rec_write(0, 300, K, K, 2);
	rec_write(0, 300, 2 * K, 100, 3);
	rec_write(0, 300, 2 * K + 100, 50, 4);
	rfs_record_ckpt(3);
	expect_absent(0, 300);
	rfs_record_lost(0);
	expect_file(0, 300, 0, 1, (uint64_t[]){ 0, 3 * K });

	/* the same, fully checkpointed: nothing */
	rfs_record_reset(2);
	rec_write(0, 301, 0, K, 5);
	rec_write(0, 301, K, K, 6);
	rfs_record_ckpt(6);
	rfs_record_lost(0);
	expect_absent(0, 301);

	/* interleaved files and a backwards write: each lands with its range */
	rfs_record_reset(3);
	rec_write(0, 302, 0, K, 7);
	rec_write(0, 303, 0, K, 8);
	rec_write(0, 302, K, K, 9);
	rec_write(0, 302, 10 * K, K, 10);
	rec_write(0, 302, 5 * K, K, 11);
	rec_write(1, 302, 11 * K, K, 12);       /* another dir: not merged */
	rfs_record_lost(0);
	expect_file(0, 302, 0, 3, (uint64_t[]){ 0, 2 * K, 5 * K, 6 * K, 10 * K, 11 * K });
	expect_file(0, 303, 0, 1, (uint64_t[]){ 0, K });
	expect_file(1, 302, 0, 1, (uint64_t[]){ 11 * K, 12 * K });
}

static void test_effects(void **state)
{
	static const enum rfs_op_type whole[] = {
		RFS_OP_CREATE, RFS_OP_MKDIR, RFS_OP_SYMLINK, RFS_OP_MKNOD, RFS_OP_LINK, RFS_OP_RENAME,
	};
	static const enum rfs_op_type none[] = {
		RFS_OP_SETXATTR, RFS_OP_REMOVEXATTR, RFS_OP_UNLINK, RFS_OP_RMDIR, RFS_OP_FSYNC,
		RFS_OP_FSYNCDIR,
	};
	struct stat st = { .st_mode = S_IFREG | 0644, .st_size = 10000 };
	struct rfs_op op;
	size_t files;
	uint64_t bytes;
	bool complete;

	(void)state;
	for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++) {
		op = op_of(whole[i], 0, 400 + i);
		op.attr = &st;
		op.name = "n";
		rfs_record_op(&op, 0);
		expect_whole(0, 400 + i);
		/* a write to a WHOLE file adds no range */
		rec_write(0, 400 + i, 0, 10, 0);
		expect_whole(0, 400 + i);
	}
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
		op = op_of(none[i], 0, 420 + i);
		op.name = "n";
		op.xattr_name = "user.x";
		op.data = "v";
		op.len = 1;
		rfs_record_op(&op, 0);
		expect_absent(0, 420 + i);
	}

	/* a new size: from its block to the end of any file */
	op = op_of(RFS_OP_SETATTR, 0, 440);
	op.attr_mask = RFS_ATTR_SIZE | RFS_ATTR_MTIME;
	op.attr = &st;
	rfs_record_op(&op, 0);
	expect_file(0, 440, 0, 1, (uint64_t[]){ 2 * K, DIRTY_LIMIT });
	st.st_size = 0;
	op.ino.ino = 441;
	rfs_record_op(&op, 0);
	expect_file(0, 441, 0, 1, (uint64_t[]){ 0, DIRTY_LIMIT });
	st.st_size = 3 * K;
	op.ino.ino = 442;
	rfs_record_op(&op, 0);
	expect_file(0, 442, 0, 1, (uint64_t[]){ 3 * K, DIRTY_LIMIT });
	/* other attributes: nothing */
	op = op_of(RFS_OP_SETATTR, 0, 443);
	op.attr_mask = RFS_ATTR_MODE | RFS_ATTR_UID | RFS_ATTR_GID | RFS_ATTR_ATIME | RFS_ATTR_MTIME;
	op.attr = &st;
	rfs_record_op(&op, 0);
	expect_absent(0, 443);
	/* a size without attributes cannot say which: nothing (no crash) */
	op = op_of(RFS_OP_SETATTR, 0, 444);
	op.attr_mask = RFS_ATTR_SIZE;
	rfs_record_op(&op, 0);
	expect_absent(0, 444);

	/* the other data changes: their range */
	op = op_of(RFS_OP_COPY_RANGE, 0, 450);
	op.src = (struct rfs_id){ .dev = 1, .ino = 451 };
	op.offset = 3 * K + 1;
	op.len = 2 * K;
	rfs_record_op(&op, 0);
	expect_file(0, 450, 0, 1, (uint64_t[]){ 3 * K, 6 * K });
	expect_absent(0, 451);  /* the source did not change */
	op = op_of(RFS_OP_FALLOCATE, 0, 452);
	op.offset = 0;
	op.len = 1;
	rfs_record_op(&op, 0);
	expect_file(0, 452, 0, 1, (uint64_t[]){ 0, K });
	/* past the last possible byte: the file is resent whole */
	rec_write(0, 453, DIRTY_LIMIT, 1, 0);
	expect_whole(0, 453);

	/* shipped whole changes wait in the ring like writes */
	op = op_of(RFS_OP_MKDIR, 0, 460);
	op.attr = &st;
	rfs_record_op(&op, 20);
	expect_absent(0, 460);
	rfs_record_lost(0);
	expect_whole(0, 460);

	rfs_record_count(&files, &bytes, &complete);
	assert_true(complete);
	assert_int_equal(files, 6 + 3 + 2 + 1 + 1);
}

static void test_rename_exchange(void **state)
{
	char dir[PATH_MAX], p[PATH_MAX];
	struct stat st;
	struct rfs_op op;
	int dfd, fd;

	(void)state;
	assert_int_equal(tu_mkdtemp(dir, "record"), 0);
	FMT(p, sizeof(p), "%s/other", dir);
	fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	close(fd);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	assert_true(st.st_ino != 500);

	/* both objects of an exchange: not shipped */
	op = op_of(RFS_OP_RENAME, 2, 500);
	op.flags = WIRE_RENAME_EXCHANGE;
	op.parent = (struct rfs_id){ .dev = 1, .ino = 1, .dir = 2 };
	op.parent_fd = dfd;
	op.name = "other";
	op.new_parent_fd = dfd;
	op.new_name = "moved";
	rfs_record_op(&op, 0);
	expect_whole(2, 500);
	expect_whole(2, st.st_ino);
	assert_true(rfs_record_complete(1));

	/* shipped: both wait in the ring, both land at a loss */
	rfs_record_reset(4);
	op.ino.ino = 501;
	rfs_record_op(&op, 30);
	expect_absent(2, 501);
	expect_absent(2, st.st_ino);
	rfs_record_lost(0);
	expect_whole(2, 501);
	expect_whole(2, st.st_ino);

	/* a plain rename: the moved object only */
	rfs_record_reset(5);
	op.flags = WIRE_RENAME_NOREPLACE;
	op.ino.ino = 502;
	rfs_record_op(&op, 0);
	expect_whole(2, 502);
	expect_absent(2, st.st_ino);

	/* the other object cannot be found: the record cannot be trusted */
	rfs_record_reset(6);
	op.flags = WIRE_RENAME_EXCHANGE;
	op.ino.ino = 503;
	op.name = "missing";
	rfs_record_op(&op, 0);
	assert_false(rfs_record_complete(6));

	close(dfd);
	tu_rm_rf(dir);
}

static void test_reset_keeps_ring(void **state)
{
	size_t files;
	uint64_t bytes;
	bool complete;

	(void)state;
	rfs_record_incomplete("unit test");
	rec_write(0, 600, 0, 1, 10);            /* shipped, in flight */
	rec_write(0, 601, 0, 1, 0);             /* in the set */
	expect_file(0, 601, 0, 1, (uint64_t[]){ 0, K });
	rfs_record_reset(11);
	assert_true(rfs_record_complete(11));
	rfs_record_count(&files, &bytes, &complete);
	assert_int_equal(files, 0);
	assert_int_equal(bytes, 0);
	assert_true(complete);
	expect_absent(0, 601);
	/* the change in flight is not covered by the copies being equal: a
	 * loss before SECOND made it durable still brings it back */
	rfs_record_lost(0);
	expect_file(0, 600, 0, 1, (uint64_t[]){ 0, K });
	assert_true(rfs_record_complete(11));

	/* and one SECOND did make durable is gone */
	rfs_record_reset(12);
	rec_write(0, 602, 0, 1, 13);
	rfs_record_reset(14);
	rfs_record_ckpt(13);
	rfs_record_lost(0);
	expect_absent(0, 602);
}

static void test_count(void **state)
{
	struct rfs_op op = op_of(RFS_OP_CREATE, 0, 703);
	size_t files;
	uint64_t bytes;
	bool complete;

	(void)state;
	rfs_record_count(&files, &bytes, &complete);
	assert_int_equal(files, 0);
	assert_int_equal(bytes, 0);
	assert_true(complete);

	rec_write(0, 701, 0, 1, 0);             /* 1 block */
	rec_write(0, 702, 0, 10000, 0);         /* 3 blocks */
	rec_write(0, 702, 8 * K, K, 0);         /* +1 */
	rfs_record_op(&op, 0);                  /* WHOLE: counts 0 bytes */
	rec_write(1, 704, 0, 2 * K, 40);        /* in the ring: not counted */
	rfs_record_count(&files, &bytes, &complete);
	assert_int_equal(files, 3);
	assert_int_equal(bytes, 5 * K);
	assert_true(complete);

	rfs_record_lost(0);
	rfs_record_count(&files, &bytes, &complete);
	assert_int_equal(files, 4);
	assert_int_equal(bytes, 7 * K);

	rfs_record_incomplete("unit test");
	rfs_record_count(&files, &bytes, &complete);
	assert_false(complete);
	assert_int_equal(files, 4);
}

/* More changes in flight than the ring holds: the excess goes to the set
 * at once, never lost, the record is no longer complete (a reset could
 * clear the set before SECOND has it), and the ring still drains by
 * checkpoint. */
static void test_ring_full(void **state)
{
	const uint64_t n = RFS_RECORD_RING_MAX;

	(void)state;
	for (uint64_t i = 0; i < n; i++)
		rec_write(0, 1000000 + i, 0, 1, 1 + i);
	expect_absent(0, 1000000);
	expect_absent(0, 1000000 + n - 1);
	/* one more: no room */
	assert_true(rfs_record_complete(1));
	rec_write(0, 5000000, K, 1, n + 1);
	expect_file(0, 5000000, 0, 1, (uint64_t[]){ K, 2 * K });
	assert_false(rfs_record_complete(1));
	/* half checkpointed, then lost: only the other half lands */
	rfs_record_ckpt(n / 2);
	rfs_record_lost(0);
	expect_absent(0, 1000000);
	expect_absent(0, 1000000 + n / 2 - 1);
	expect_file(0, 1000000 + n / 2, 0, 1, (uint64_t[]){ 0, K });
	expect_file(0, 1000000 + n - 1, 0, 1, (uint64_t[]){ 0, K });
	{
		size_t files;
		uint64_t bytes;
		bool complete;

		rfs_record_count(&files, &bytes, &complete);
		assert_int_equal(files, n / 2 + 1);
		assert_int_equal(bytes, (n / 2 + 1) * K);
	}
}

/* The record on disk: what it holds and its completeness survive a close
 * and reopen; a file marked hot and never done comes back UNSURE; a record
 * made incomplete stays so after the reopen (a restart must not trust it);
 * rfs_record_clean says whether a node changed nothing since gen. */
/* Rename matching: the first old path of an object renamed while SECOND is
 * away, relative to its dir's root; none for new objects, hard-linked
 * files or excluded ones; forgotten when the copies are equal again or the
 * record is incomplete; listed deepest first. */
static void test_origins(void **state)
{
	char root[] = "/tmp/vigil-ut-origin-XXXXXX", p[PATH_MAX + 16], buf[PATH_MAX];
	int rfd, sub, deep;
	struct stat st;
	struct origin_entry *l;
	size_t n;

	(void)state;
	assert_non_null(mkdtemp(root));
	snprintf(p, sizeof(p), "%s/sub", root);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/sub/deep", root);
	assert_int_equal(mkdir(p, 0700), 0);
	rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	sub = openat(rfd, "sub", O_PATH | O_DIRECTORY | O_CLOEXEC);
	deep = openat(sub, "deep", O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(rfd >= 0 && sub >= 0 && deep >= 0);
	rfs_record_set_root(2, rfd);

	st = (struct stat){ .st_mode = S_IFREG | 0600, .st_nlink = 1 };
	rfs_record_moving(&(struct rfs_id){ .ino = 100, .dir = 2 }, sub, "f", &st);
	assert_int_equal(rfs_record_origin(2, 100, buf, sizeof(buf)), 1);
	assert_string_equal(buf, "sub/f");
	/* The first rename is where SECOND has it. */
	rfs_record_moving(&(struct rfs_id){ .ino = 100, .dir = 2 }, rfd, "g", &st);
	assert_int_equal(rfs_record_origin(2, 100, buf, sizeof(buf)), 1);
	assert_string_equal(buf, "sub/f");
	/* At the root; a directory deeper; none for a file with links, an
	 * excluded one, a symlink, a file new since the copies were equal. */
	rfs_record_moving(&(struct rfs_id){ .ino = 101, .dir = 2 }, rfd, "top", &st);
	assert_int_equal(rfs_record_origin(2, 101, buf, sizeof(buf)), 1);
	assert_string_equal(buf, "top");
	rfs_record_moving(&(struct rfs_id){ .ino = 102, .dir = 2 }, deep, "d",
	                  &(struct stat){ .st_mode = S_IFDIR | 0700, .st_nlink = 2 });
	rfs_record_moving(&(struct rfs_id){ .ino = 103, .dir = 2 }, sub, "h",
	                  &(struct stat){ .st_mode = S_IFREG | 0600, .st_nlink = 2 });
	rfs_record_moving(&(struct rfs_id){ .ino = 104, .dir = 2, .excluded = true }, sub, "x.tmp", &st);
	rfs_record_moving(&(struct rfs_id){ .ino = 105, .dir = 2 }, sub, "l",
	                  &(struct stat){ .st_mode = S_IFLNK | 0777, .st_nlink = 1 });
	rfs_record_op(&(struct rfs_op){ .type = RFS_OP_CREATE, .ino = { .ino = 106, .dir = 2 },
	                                .fd = -1, .parent_fd = -1, .new_parent_fd = -1 }, 0);
	rfs_record_moving(&(struct rfs_id){ .ino = 106, .dir = 2 }, sub, "new", &st);
	rfs_record_moving(&(struct rfs_id){ .ino = 107, .dir = 3 }, sub, "nodir", &st);
	for (uint64_t i = 103; i <= 106; i++)
		assert_int_equal(rfs_record_origin(2, i, buf, sizeof(buf)), 0);
	assert_int_equal(rfs_record_origin(3, 107, buf, sizeof(buf)), 0);
	assert_int_equal(rfs_record_origin(2, 100, buf, 5), 0);        /* buf too small */

	assert_int_equal(rfs_record_origins(&l, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(l[0].path, "sub/deep/d");
	assert_int_equal(l[0].ino, 102);
	assert_string_equal(l[1].path, "sub/f");
	assert_string_equal(l[2].path, "top");
	origin_list_free(l, n);

	/* Equal copies forget them; so does an incomplete record, which also
	 * takes no new ones (everything is copied anyway). */
	rfs_record_reset(40);
	assert_int_equal(rfs_record_origin(2, 100, buf, sizeof(buf)), 0);
	rfs_record_moving(&(struct rfs_id){ .ino = 100, .dir = 2 }, sub, "f", &st);
	assert_int_equal(rfs_record_origin(2, 100, buf, sizeof(buf)), 1);
	rfs_record_incomplete("test");
	assert_int_equal(rfs_record_origin(2, 100, buf, sizeof(buf)), 0);
	rfs_record_moving(&(struct rfs_id){ .ino = 100, .dir = 2 }, sub, "f", &st);
	assert_int_equal(rfs_record_origin(2, 100, buf, sizeof(buf)), 0);
	rfs_record_reset(41);
	close(deep);
	close(sub);
	close(rfd);
	snprintf(p, sizeof(p), "%s/sub/deep", root);
	rmdir(p);
	snprintf(p, sizeof(p), "%s/sub", root);
	rmdir(p);
	rmdir(root);
}

/* The map itself: bounded, first note wins, grows past its first size. */
static void test_origin_map(void **state)
{
	struct origin_map *m = origin_new();
	char path[32];

	(void)state;
	assert_non_null(m);
	for (uint64_t i = 0; i < ORIGIN_MAX; i++) {
		snprintf(path, sizeof(path), "p%llu", (unsigned long long)i);
		assert_int_equal(origin_note(m, (uint8_t)(i & 1), i, path), 1);
	}
	assert_int_equal(origin_note(m, 0, ORIGIN_MAX + 1, "over"), -1);
	assert_int_equal(origin_note(m, 0, 0, "again"), 0);
	assert_string_equal(origin_get(m, 0, 0), "p0");
	assert_string_equal(origin_get(m, 1, 12345), "p12345");
	assert_null(origin_get(m, 0, 12345));                   /* dir counts */
	assert_int_equal(origin_count(m), ORIGIN_MAX);
	origin_clear(m);
	assert_int_equal(origin_count(m), 0);
	assert_null(origin_get(m, 0, 0));
	assert_int_equal(origin_note(m, 0, 0, "after"), 1);
	origin_free(m);
	origin_free(NULL);
}

static void test_on_disk(void **state)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct rfs_id hot = { .dev = 1, .ino = 900, .dir = 0 };
	struct rfs_id cold = { .dev = 1, .ino = 901, .dir = 0 };
	struct rfs_record_file f;
	struct rfs_op op;

	(void)state;
	assert_int_equal(tu_mkdtemp(dir, "record-disk"), 0);
	FMT(path, sizeof(path), "%s/journal", dir);
	assert_int_equal(rfs_record_open(path), 0);
	assert_false(rfs_record_complete(5));           /* a new journal has no base */
	assert_false(rfs_record_clean(5));
	rfs_record_reset(5);
	assert_true(rfs_record_complete(5));
	assert_true(rfs_record_clean(5));
	rec_write(0, 800, 3 * K, 10, 0);               /* unshipped: into the set */
	assert_false(rfs_record_clean(5));
	assert_int_equal(rfs_record_hot(&hot), 0);     /* an op under way at the "crash" */
	assert_int_equal(rfs_record_hot(&cold), 0);
	rfs_record_done(&cold, 0);
	/* Close cools what no op changes (and SECOND has: covered 0 here). */
	rfs_record_close();

	assert_int_equal(rfs_record_open(path), 0);
	assert_true(rfs_record_complete(5));
	assert_int_equal(rfs_record_get(0, 800, &f), 0);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.iv[0].start, 3 * K);
	assert_int_equal(f.iv[0].end, 4 * K);
	free(f.iv);
	assert_int_equal(rfs_record_get(0, 900, &f), 0);
	assert_true(f.flags & DIRTY_UNSURE);
	free(f.iv);
	assert_int_equal(rfs_record_get(0, 901, &f), 1);        /* cooled at the close */

	/* An exchanged object that cannot be found: incomplete, durably. */
	op = op_of(RFS_OP_RENAME, 0, 902);
	op.flags = WIRE_RENAME_EXCHANGE;
	op.parent_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(op.parent_fd >= 0);
	op.name = "no-such-name";
	rfs_record_op(&op, 0);
	close(op.parent_fd);
	assert_false(rfs_record_complete(5));
	rfs_record_close();
	assert_int_equal(rfs_record_open(path), 0);
	assert_false(rfs_record_complete(5));
	/* A reset makes it complete again, at the new generation. */
	rfs_record_reset(6);
	rfs_record_close();
	assert_int_equal(rfs_record_open(path), 0);
	assert_true(rfs_record_complete(6));
	assert_true(rfs_record_clean(6));
	rfs_record_close();
	tu_rm_rf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_complete),        /* first: checks the state before any reset */
		cmocka_unit_test_setup(test_unshipped_write, fresh),
		cmocka_unit_test_setup(test_shipped_write, fresh),
		cmocka_unit_test_setup(test_sequential_coalesce, fresh),
		cmocka_unit_test_setup(test_effects, fresh),
		cmocka_unit_test_setup(test_origins, fresh),
		cmocka_unit_test(test_origin_map),
		cmocka_unit_test_setup(test_rename_exchange, fresh),
		cmocka_unit_test_setup(test_reset_keeps_ring, fresh),
		cmocka_unit_test_setup(test_count, fresh),
		cmocka_unit_test_setup(test_ring_full, fresh),
		cmocka_unit_test_setup(test_on_disk, fresh),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
