/* Block hashes for comparing a file's copies (docs/design/rfs.md §5.3 and
 * §5.6): SHA-256 cut to WIRE_HASH_LEN bytes per block, the same on both
 * sides. Pure. */
#ifndef VIGIL_RFS_HASH_H
#define VIGIL_RFS_HASH_H

#include <stddef.h>
#include <stdint.h>

#define RFS_HASH_BLOCK (64u << 10)      /* bytes per hash, as PRIM asks */

/* How many hashes cover want bytes in blocks of block (at least one). */
uint32_t rfs_hash_count(uint32_t want, uint32_t block);
/* The hashes of [0, want) of a region of which buf holds the first have
 * bytes (have < want: the file ended there; the blocks past it hash what
 * there is, or nothing): block i covers [i * block, min((i + 1) * block,
 * want)). out gets rfs_hash_count(want, block) * WIRE_HASH_LEN bytes.
 * 0, or -1 if the digest failed. */
int rfs_hash_blocks(const uint8_t *buf, size_t have, uint32_t want, uint32_t block, uint8_t *out);

#endif
