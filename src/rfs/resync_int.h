/* Internals shared by resync.c (the reintegration's state and data pass)
 * and resync_walk.c (the walk of the tree). */
#ifndef VIGIL_RFS_RESYNC_INT_H
#define VIGIL_RFS_RESYNC_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "rfs/dirty.h"
#include "rfs/hash.h"
#include "rfs/resync.h"
#include "rfs/stream.h"

#define MAX_HANDLE 128
#define HASHES_PER_CHUNK (WIRE_DATA_MAX / RFS_HASH_BLOCK)
/* An answer that does not come: the link is as good as lost. */
#define HASH_WAIT_MS 60000
/* The copy's chunks in the send queue at most, so a reintegration does not
 * fill the whole queue (memory; the application's changes wait behind it). */
#define RESYNC_QUEUE_MAX (8u << 20)

struct file_rec {
	uint8_t dir;
	bool done;
	bool unbind_deferred;
	uint64_t fid;
	struct file_handle *fh;
	uint32_t niv;                   /* 0: the whole file; else only these ranges */
	struct dirty_ival *iv;
	bool verify;                    /* compared by block hashes, then what differs */
};

struct rfs_resync {
	int root[RFS_MAX_DIRS];
	int n;
	struct file_rec *files;
	size_t nfiles, cap;
	uint64_t *links;                /* (dir, ino) keys of multi-link inodes seen: open addressing */
	size_t nlinks, links_cap;
	size_t *map;                    /* fid -> files index + 1, open addressing, after the walk */
	size_t map_cap;
	pthread_mutex_t lock;           /* done, unbind_deferred, cmp */
	pthread_cond_t answered;        /* cmp.got grew */
	struct {                        /* the file being compared */
		uint8_t dir;
		uint64_t fid;
		uint32_t chunks, got;
		uint8_t *mine, *theirs; /* HASHES_PER_CHUNK hashes per chunk */
		uint32_t *len;          /* bytes hashed in each chunk (0: none) */
		bool *have;             /* theirs arrived */
	} cmp;
	uint64_t total, queued;
	char *buf;
	bool incremental;
	bool verify_all;                /* sync full: nothing trusted, everything compared */
	size_t origins;                 /* STASH ops sent before the walk */
	size_t kept;                    /* regular files SECOND has already (incremental) */
	size_t verified;                /* files compared by block hashes */
	uint64_t matched;               /* their bytes found equal there */
};

static inline uint64_t key_of(uint8_t dir, uint64_t ino)
{
	return ino ^ ((uint64_t)dir << 56);
}

static inline size_t hash(uint64_t k, size_t cap)
{
	return (size_t)((k * 0x9e3779b97f4a7c15ull) >> 20) & (cap - 1);
}

/* SETATTR of owner, mode and times as st says (resync_walk.c). */
void rfs_resync_attrs(uint8_t dir, uint64_t fid, const struct stat *st);

#endif
