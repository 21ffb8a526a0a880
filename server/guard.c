/*
 * guard.c - brute-force protection: failed authentications per address.
 *
 * Each client address has a token bucket of `limit` failures, refilled at
 * limit / window_s per second.  A failed authentication (a wrong key, a
 * bad or expired token, an unmapped certificate) takes one token; when
 * none is left the address gets 429 with Retry-After for every request
 * that needs authentication, before its credential is even looked at, so
 * guessing stops rather than merely being reported.  A request without
 * any credential is a 401 but is not counted: it guesses nothing.
 *
 * Addresses: IPv4 exactly; IPv6 by its /64, since one host usually owns a
 * whole /64 and could otherwise rotate through it; IPv4-mapped IPv6 as
 * IPv4.  The table is fixed (GUARD_SLOTS entries, open addressing with a
 * short probe), so an attacker with many addresses cannot grow memory: a
 * new address takes a free slot, or one whose bucket has refilled (it
 * remembers nothing), or else the one idle longest.
 *
 * Loop thread only, like the rest of the auth state.
 */
#include "server.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUARD_SLOTS 4096
#define GUARD_PROBE 16

typedef struct guard_slot {
    unsigned char key[17];      /* family byte + 16 address bytes; [0] = 0: free */
    double tokens;
    uint64_t last_ns;
} guard_slot;

struct auth_guard {
    guard_slot slot[GUARD_SLOTS];
};

auth_guard *guard_new(void)
{
    return calloc(1, sizeof(auth_guard));
}

void guard_free(auth_guard *g)
{
    free(g);
}

/* "ip:port" (IPv6 unbracketed, as http.c writes it) to a key. */
static int addr_key(const char *peer, unsigned char key[17])
{
    char ip[64];
    snprintf(ip, sizeof ip, "%s", peer);
    char *colon = strrchr(ip, ':');
    if (colon)
        *colon = '\0';
    memset(key, 0, 17);
    unsigned char a[16];
    if (inet_pton(AF_INET, ip, a) == 1) {
        key[0] = 4;
        memcpy(key + 1, a, 4);
        return 0;
    }
    if (inet_pton(AF_INET6, ip, a) == 1) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, mapped, 12) == 0) {
            key[0] = 4;
            memcpy(key + 1, a + 12, 4);
        } else {
            key[0] = 6;
            memcpy(key + 1, a, 8);      /* the /64 */
        }
        return 0;
    }
    key[0] = 1;                         /* unknown form: one shared bucket */
    return 0;
}

static unsigned hash_key(const unsigned char *k)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 17; i++)
        h = (h ^ k[i]) * 16777619u;
    return h;
}

static void refill(guard_slot *s, uint64_t now_ns, double cap, double rate)
{
    double dt = now_ns > s->last_ns ? (double)(now_ns - s->last_ns) / 1e9 : 0;
    s->tokens = fmin(cap, s->tokens + dt * rate);
    s->last_ns = now_ns;
}

/* The slot of `key`; create = take one if absent.  NULL if absent. */
static guard_slot *find(auth_guard *g, const unsigned char *key, int create, uint64_t now_ns,
                        double cap, double rate)
{
    unsigned h = hash_key(key);
    guard_slot *victim = NULL;
    for (int i = 0; i < GUARD_PROBE; i++) {
        guard_slot *s = &g->slot[(h + (unsigned)i) % GUARD_SLOTS];
        if (s->key[0] && memcmp(s->key, key, 17) == 0)
            return s;
        if (!create)
            continue;
        if (!s->key[0]) {
            if (!victim || victim->key[0])
                victim = s;
            continue;
        }
        refill(s, now_ns, cap, rate);
        if (s->tokens >= cap) {
            s->key[0] = 0;              /* refilled: it remembers nothing */
            if (!victim || victim->key[0])
                victim = s;
        } else if (!victim || (victim->key[0] && s->last_ns < victim->last_ns)) {
            victim = s;
        }
    }
    if (!create || !victim)
        return NULL;
    memcpy(victim->key, key, 17);
    victim->tokens = cap;
    victim->last_ns = now_ns;
    return victim;
}

uint64_t guard_check(auth_guard *g, const char *peer, uint64_t now_ns, int64_t limit,
                     int64_t window_s)
{
    if (!g || limit <= 0 || window_s <= 0)
        return 0;
    unsigned char key[17];
    addr_key(peer, key);
    double cap = (double)limit, rate = cap / (double)window_s;
    guard_slot *s = find(g, key, 0, now_ns, cap, rate);
    if (!s)
        return 0;
    refill(s, now_ns, cap, rate);
    if (s->tokens >= 1)
        return 0;
    uint64_t wait = (uint64_t)ceil((1 - s->tokens) / rate);
    return wait ? wait : 1;
}

int guard_fail(auth_guard *g, const char *peer, uint64_t now_ns, int64_t limit,
               int64_t window_s)
{
    if (!g || limit <= 0 || window_s <= 0)
        return 0;
    unsigned char key[17];
    addr_key(peer, key);
    double cap = (double)limit, rate = cap / (double)window_s;
    guard_slot *s = find(g, key, 1, now_ns, cap, rate);
    if (!s)
        return 0;
    refill(s, now_ns, cap, rate);
    int was_open = s->tokens >= 1;
    s->tokens -= 1;
    if (s->tokens < -1)
        s->tokens = -1;                 /* a lockout lasts at most ~2 tokens' time */
    return was_open && s->tokens < 1;
}
