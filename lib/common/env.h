/*
 * env.h - what every subsystem of one handle shares: allocator, metrics,
 * logging, durability settings and the test-only fault hook (never
 * installed).  Errors: common/error.h, included here for convenience.
 */
#ifndef AKIDB_ENV_H
#define AKIDB_ENV_H

#include <stdint.h>
#include "akidb.h"
#include "common/error.h"
#include "common/fault.h"
#include "common/metrics.h"

/* What every subsystem of one handle shares: the allocator, metrics,
 * logging, durability settings and the test-only fault hook.  Owned by the
 * akidb handle; read-only after open except for the metrics (atomic) and
 * the fault hook (set only while the handle is idle). */
typedef struct akidb__env {
    akidb_allocator alloc;
    akidb__metrics metrics;
    akidb_sync_mode sync_mode;
    uint64_t checkpoint_bytes;
    int checkpoint_auto;         /* checkpoint_bytes is the default: scale it (collection.c) */
    uint32_t max_index_lag;      /* akidb_options.max_index_lag (0 = per dimension) */
    void (*log_fn)(void *ctx, akidb_log_level level, const char *msg);
    void *log_ctx;
    akidb__fault_fn fault_fn;
    void *fault_ctx;
    /* akidb_options.file_mode (0 = the default, 0644) and read_only. */
    unsigned file_mode;
    int read_only;
} akidb__env;

/* The permission bits of files the handle creates, and of its directories
 * (the same bits plus x wherever r is set: 0600 gives 0700).  An env that
 * was zero-filled (tests, tools) gets 0644 / 0755. */
static inline unsigned akidb__env_file_mode(const akidb__env *env)
{
    return env && env->file_mode ? env->file_mode & 0777u : 0644u;
}

static inline unsigned akidb__env_dir_mode(const akidb__env *env)
{
    unsigned m = akidb__env_file_mode(env);
    return m | ((m & 0444u) >> 2);
}

/* Send a formatted message to the log callback, if there is one (error.c). */
void akidb__log(const akidb__env *env, akidb_log_level level, const char *fmt, ...)
    AKIDB__PRINTF(3, 4);

/* 0 to carry on, or the errno value a test wants injected at `point`. */
static inline int akidb__fault(const akidb__env *env, akidb__fault_point point)
{
    return env->fault_fn ? env->fault_fn(env->fault_ctx, point) : 0;
}

#endif
