/*
 * indexer.c - the background thread that links acknowledged writes into
 * the HNSW graphs.
 *
 * Why a thread: a write is acknowledged once it is in the log and in the
 * collection's document store (its vector appended to the index's tail);
 * building its graph node costs a few hundred microseconds to a few
 * milliseconds, far more than the write itself, so it happens here,
 * after the acknowledgement.  Searches scan the tail exactly meanwhile.
 *
 * One thread per handle serves every collection: on a 1-core edge box
 * more threads would only take turns, and linking is serial within a
 * collection anyway (nodes are linked in order, so the graph does not
 * depend on timing).  The owner's work function links one slice (a
 * couple of milliseconds under the collection's write lock) and returns,
 * so searches and writes interleave with the linking and a drop or close
 * never waits for more than a slice.
 *
 * State, all under `mu`:
 *   kicked    work may exist: set by kicks, cleared when the thread starts
 *             a round; a round that found work sets it again
 *   busy      the thread is inside the work function
 *   paused    tests: no new round starts
 *   stopping  the handle is closing
 *   gen       advanced when a tail drains, for akidb_index_wait
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "common/alloc.h"
#include "engine/indexer.h"

struct akidb__indexer {
    const akidb__env *env;
    akidb__indexer_work_fn work;
    void *ctx;
    pthread_t thread;
    int started;

    pthread_mutex_t mu;
    pthread_cond_t wake;         /* kicked, unpaused or stopping */
    pthread_cond_t idle;         /* busy went to 0 */
    pthread_cond_t drained;      /* gen advanced (CLOCK_MONOTONIC waits) */
    int kicked, busy, paused, stopping;
    uint64_t gen;
};

static void *indexer_main(void *arg)
{
    akidb__indexer *ix = arg;
    pthread_mutex_lock(&ix->mu);
    for (;;) {
        while (!ix->stopping && (ix->paused || !ix->kicked))
            pthread_cond_wait(&ix->wake, &ix->mu);
        if (ix->stopping)
            break;
        ix->kicked = 0;
        ix->busy = 1;
        pthread_mutex_unlock(&ix->mu);
        int more = ix->work(ix->ctx);
        pthread_mutex_lock(&ix->mu);
        ix->busy = 0;
        if (more)
            ix->kicked = 1;
        pthread_cond_broadcast(&ix->idle);
    }
    pthread_mutex_unlock(&ix->mu);
    return NULL;
}

int akidb__indexer_new(const akidb__env *env, akidb__indexer_work_fn work, void *ctx,
                       akidb__indexer **out)
{
    *out = NULL;
    akidb__indexer *ix = akidb__calloc(&env->alloc, 1, sizeof *ix);
    if (!ix)
        return akidb__err(AKIDB_NOMEM, "akidb_open: out of memory for the indexer");
    ix->env = env;
    ix->work = work;
    ix->ctx = ctx;
    pthread_condattr_t ca;
    int ok = pthread_condattr_init(&ca) == 0;
    ok = ok && pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0;
    int n_init = 0;
    if (ok && pthread_mutex_init(&ix->mu, NULL) == 0 && ++n_init &&
        pthread_cond_init(&ix->wake, NULL) == 0 && ++n_init &&
        pthread_cond_init(&ix->idle, NULL) == 0 && ++n_init &&
        pthread_cond_init(&ix->drained, &ca) == 0)
        n_init++;
    pthread_condattr_destroy(&ca);
    if (n_init < 4) {
        if (n_init > 2) pthread_cond_destroy(&ix->idle);
        if (n_init > 1) pthread_cond_destroy(&ix->wake);
        if (n_init > 0) pthread_mutex_destroy(&ix->mu);
        akidb__free(&env->alloc, ix);
        return akidb__err(AKIDB_ERROR, "akidb_open: cannot create the indexer's locks");
    }
    *out = ix;
    return AKIDB_OK;
}

int akidb__indexer_start(akidb__indexer *ix)
{
    if (pthread_create(&ix->thread, NULL, indexer_main, ix) != 0)
        return akidb__err(AKIDB_ERROR, "akidb_open: cannot start the indexer thread");
    ix->started = 1;
    return AKIDB_OK;
}

void akidb__indexer_free(akidb__indexer *ix)
{
    if (!ix)
        return;
    if (ix->started) {
        pthread_mutex_lock(&ix->mu);
        ix->stopping = 1;
        pthread_cond_broadcast(&ix->wake);
        pthread_mutex_unlock(&ix->mu);
        pthread_join(ix->thread, NULL);
    }
    pthread_cond_destroy(&ix->drained);
    pthread_cond_destroy(&ix->idle);
    pthread_cond_destroy(&ix->wake);
    pthread_mutex_destroy(&ix->mu);
    akidb__free(&ix->env->alloc, ix);
}

void akidb__indexer_kick(akidb__indexer *ix)
{
    if (!ix)
        return;   /* the handle is closing: its indexer is gone */
    pthread_mutex_lock(&ix->mu);
    if (!ix->kicked) {
        ix->kicked = 1;
        pthread_cond_signal(&ix->wake);
    }
    pthread_mutex_unlock(&ix->mu);
}

void akidb__indexer_drained(akidb__indexer *ix)
{
    if (!ix)
        return;
    pthread_mutex_lock(&ix->mu);
    ix->gen++;
    pthread_cond_broadcast(&ix->drained);
    pthread_mutex_unlock(&ix->mu);
}

uint64_t akidb__indexer_gen(akidb__indexer *ix)
{
    pthread_mutex_lock(&ix->mu);
    uint64_t g = ix->gen;
    pthread_mutex_unlock(&ix->mu);
    return g;
}

int akidb__indexer_wait(akidb__indexer *ix, uint64_t gen, const struct timespec *deadline)
{
    int timed_out = 0;
    pthread_mutex_lock(&ix->mu);
    while (ix->gen == gen && !timed_out)
        timed_out = pthread_cond_timedwait(&ix->drained, &ix->mu, deadline) == ETIMEDOUT;
    int moved = ix->gen != gen;
    pthread_mutex_unlock(&ix->mu);
    return moved ? 0 : 1;
}

void akidb__indexer_pause(akidb__indexer *ix, int paused)
{
    pthread_mutex_lock(&ix->mu);
    ix->paused = paused;
    if (paused) {
        while (ix->busy)
            pthread_cond_wait(&ix->idle, &ix->mu);
    } else {
        ix->kicked = 1;   /* look again: writes may have come meanwhile */
        pthread_cond_signal(&ix->wake);
    }
    pthread_mutex_unlock(&ix->mu);
}
