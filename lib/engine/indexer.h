/*
 * indexer.h - the handle's background indexing thread: it links the nodes
 * that writes appended (the "tail") into each collection's HNSW graph,
 * after the writes were acknowledged.  See indexer.c.
 *
 * The indexer knows nothing of collections: the owner (db.c) gives it a
 * work function that links one slice of some collection's tail.  So the
 * thread, its sleep and wake-ups, the test-only pause and the "a tail
 * drained" signal that akidb_index_wait() sleeps on live here, and the
 * choice of what to link lives with the collection table.
 *
 * Threading: every function may be called from any thread, except that
 * akidb__indexer_free must not race with the others.
 */
#ifndef AKIDB_INDEXER_H
#define AKIDB_INDEXER_H

#include <stdint.h>
#include <time.h>
#include "common/env.h"

typedef struct akidb__indexer akidb__indexer;

/* One unit of background work: link one slice of some tail.  Returns 1 if
 * it linked something (call again), 0 if every tail was empty when it
 * looked (the thread then sleeps until the next kick). */
typedef int (*akidb__indexer_work_fn)(void *ctx);

/* A new indexer; the thread starts with akidb__indexer_start, so kicks
 * made before it (recovery appends to tails) are remembered.
 * AKIDB_NOMEM / AKIDB_ERROR. */
int akidb__indexer_new(const akidb__env *env, akidb__indexer_work_fn work, void *ctx,
                       akidb__indexer **out);
int akidb__indexer_start(akidb__indexer *ix);
/* Stop and join the thread (the slice in progress finishes), then free.
 * NULL is a no-op. */
void akidb__indexer_free(akidb__indexer *ix);

/* There is work: wake the thread.  Cheap when it is already awake.
 * NULL (a closing handle's) is a no-op, as for akidb__indexer_drained. */
void akidb__indexer_kick(akidb__indexer *ix);

/* A collection's tail became empty (or a collection with a tail went
 * away): wake akidb__indexer_wait callers. */
void akidb__indexer_drained(akidb__indexer *ix);

/* A counter that akidb__indexer_drained advances.  Read it, check the
 * tails, then akidb__indexer_wait(ix, gen, deadline) sleeps until the
 * counter moves past gen or the CLOCK_MONOTONIC deadline passes, so no
 * drain between the check and the sleep is missed.  Returns 0 when the
 * counter moved, 1 at the deadline. */
uint64_t akidb__indexer_gen(akidb__indexer *ix);
int akidb__indexer_wait(akidb__indexer *ix, uint64_t gen, const struct timespec *deadline);

/* Tests: paused = 1 returns once the thread is not inside a slice and
 * will start none; 0 lets it run again.  Writers still link under
 * back-pressure while it is paused. */
void akidb__indexer_pause(akidb__indexer *ix, int paused);

#endif
