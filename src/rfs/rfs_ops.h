/* The FUSE low-level operation table of vigil-rfs. */
#ifndef VIGIL_RFS_OPS_H
#define VIGIL_RFS_OPS_H

#include "rfs/rfs_fs.h"

/* Fills ops with every operation vigil-rfs implements. */
void rfs_ops_build(struct fuse_lowlevel_ops *ops);
/* rfs_ops_gate.c: wraps the changing operations in the replication gate. */
void rfs_ops_gate(struct fuse_lowlevel_ops *ops);

#endif
