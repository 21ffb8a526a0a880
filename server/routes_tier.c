/*
 * routes_tier.c - where a collection lives (docs/TIERING.md), by hand.
 *
 *   GET    /v1/collections/{name}/tier          -> {tier info}         (reader)
 *   POST   /v1/collections/{name}/tier {tier}   -> {tier info}         (writer)
 *   PUT    /v1/collections/{name}/pin           -> {tier info}         (writer)
 *   DELETE /v1/collections/{name}/pin           -> {tier info}         (writer)
 *
 * The tier info is akidb_tier_info_get's, which answers from the catalog
 * without loading the collection: {name, tier, pinned, busy,
 * last_access_us, accesses, bytes: {hot, warm, cold}, last_error}.
 * bytes.warm is the collection's local files (checkpoint + log), bytes.hot
 * the RAM it holds when HOT, bytes.cold its newest copy in the store.
 *
 * A manual move (akidb_tier_set) runs the whole transition before it
 * answers: from COLD that is a download and a durable local copy, so it
 * can take seconds; like every library call it runs in the thread pool.
 * A pin only stops the library's worker from demoting the collection; a
 * POST still moves a pinned one (the library's rule).  Moves and pins are
 * audited (tier.change, tier.pin; router.c's AUDITED table) with the
 * collection and the change, whatever the result.
 */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *tier_str(akidb_tier t)
{
    switch (t) {
    case AKIDB_TIER_HOT: return "hot";
    case AKIDB_TIER_WARM: return "warm";
    case AKIDB_TIER_COLD: return "cold";
    default: return "unknown";
    }
}

/* Answer 200 with the tier info of `lib` (the tenant's `name`). */
static void tier_answer(rctx *c, const char *lib, const char *name)
{
    akidb_tier_info ti;
    memset(&ti, 0, sizeof ti);
    ti.version = AKIDB_TIER_INFO_VERSION;
    int rc = akidb_tier_info_get(c->srv->db, lib, &ti);
    if (rc != AKIDB_OK) {
        rc_lib(c, rc);
        return;
    }
    jw w;
    rc_json(c, 200, &w);
    jw_obj(&w);
    jw_key(&w, "name");
    jw_str(&w, name);
    jw_key(&w, "tier");
    jw_str(&w, tier_str(ti.tier));
    jw_key(&w, "pinned");
    jw_bool(&w, ti.pinned);
    jw_key(&w, "busy");
    jw_bool(&w, ti.busy);
    jw_key(&w, "last_access_us");
    jw_int(&w, ti.last_access_us);
    jw_key(&w, "accesses");
    jw_uint(&w, ti.accesses);
    jw_key(&w, "bytes");
    jw_obj(&w);
    jw_key(&w, "hot");
    jw_uint(&w, ti.hot_bytes);
    jw_key(&w, "warm");
    jw_uint(&w, ti.local_bytes);
    jw_key(&w, "cold");
    jw_uint(&w, ti.cold_bytes);
    jw_obj_end(&w);
    jw_key(&w, "last_error");
    if (ti.last_error == AKIDB_OK) {
        jw_null(&w);
    } else {
        /* The library's message names the library collection: show the
         * tenant its own name, as rc_lib does. */
        char msg[sizeof ti.last_error_msg];
        strip_tenant(c->tenant, ti.last_error_msg, msg, sizeof msg);
        jw_obj(&w);
        jw_key(&w, "code");
        jw_str(&w, akidb_errname(ti.last_error));
        jw_key(&w, "message");
        jw_str(&w, msg);
        jw_obj_end(&w);
    }
    jw_obj_end(&w);
}

void h_tier_get(rctx *c)
{
    char lib[AKIDB_MAX_NAME_LEN + 1];
    if (rc_coll(c, c->param[0], lib))
        return;
    tier_answer(c, lib, c->param[0]);
}

static const char *const TIER_FIELDS[] = {"tier", NULL};

void h_tier_set(rctx *c)
{
    char err[512], lib[AKIDB_MAX_NAME_LEN + 1];
    snprintf(c->audit_target, sizeof c->audit_target, "collection=%.120s", c->param[0]);
    if (rc_coll(c, c->param[0], lib))
        return;
    json_t *j = rc_body(c);
    if (!j)
        return;
    const char *want = NULL;
    akidb_tier to, from = 0;
    if (jx_only(j, TIER_FIELDS, NULL, err, sizeof err) ||
        jx_get_str(j, "tier", &want, err, sizeof err) < 0)
        goto bad;
    if (!want) {
        snprintf(err, sizeof err, "'tier' is required: \"hot\", \"warm\" or \"cold\"");
        goto bad;
    }
    if (!strcmp(want, "hot"))
        to = AKIDB_TIER_HOT;
    else if (!strcmp(want, "warm"))
        to = AKIDB_TIER_WARM;
    else if (!strcmp(want, "cold"))
        to = AKIDB_TIER_COLD;
    else {
        snprintf(err, sizeof err, "'tier' must be \"hot\", \"warm\" or \"cold\"");
        goto bad;
    }
    int rc = akidb_tier_get(c->srv->db, lib, &from);
    if (rc != AKIDB_OK) {
        rc_lib(c, rc);
        goto done;
    }
    snprintf(c->audit_detail, sizeof c->audit_detail, "from=%s to=%s", tier_str(from),
             tier_str(to));
    rc = akidb_tier_set(c->srv->db, lib, to);
    if (rc != AKIDB_OK) {
        rc_lib(c, rc);
        goto done;
    }
    tier_answer(c, lib, c->param[0]);
    goto done;
bad:
    rc_error(c, 400, "BAD_REQUEST", "%s", err);
done:
    json_decref(j);
}

static void pin(rctx *c, int pinned)
{
    char lib[AKIDB_MAX_NAME_LEN + 1];
    snprintf(c->audit_target, sizeof c->audit_target, "collection=%.120s", c->param[0]);
    snprintf(c->audit_detail, sizeof c->audit_detail, "pinned=%s", pinned ? "true" : "false");
    if (rc_coll(c, c->param[0], lib))
        return;
    int rc = akidb_tier_pin(c->srv->db, lib, pinned);
    if (rc != AKIDB_OK) {
        rc_lib(c, rc);
        return;
    }
    tier_answer(c, lib, c->param[0]);
}

void h_tier_pin(rctx *c)
{
    pin(c, 1);
}

void h_tier_unpin(rctx *c)
{
    pin(c, 0);
}
