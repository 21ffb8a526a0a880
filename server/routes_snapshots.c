/*
 * routes_snapshots.c - the snapshot lifecycle of a collection.
 *
 *   POST   /v1/collections/{name}/snapshots               -> 201 {snapshot}
 *   GET    /v1/collections/{name}/snapshots               -> {snapshots: [...]} newest first
 *   POST   /v1/collections/{name}/snapshots/{id}/restore  -> 200 {restored, count}
 *   DELETE /v1/collections/{name}/snapshots/{id}          -> 204
 *
 * A snapshot is a Parquet object in the object store (akidb_snapshot_*).
 * The object key is not shown: it holds the library's (tenant-prefixed)
 * collection name and is an implementation detail of the store layout.
 * Snapshot calls write to the store and can take seconds: they run in the
 * thread pool like every library call, and the loop keeps serving.
 */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void snap_json(jw *w, const akidb_snapshot_info *s)
{
    jw_obj(w);
    jw_key(w, "id");
    jw_str(w, s->id);
    jw_key(w, "rows");
    jw_uint(w, s->rows);
    jw_key(w, "bytes");
    jw_uint(w, s->bytes);
    jw_key(w, "sha256");
    jw_str(w, s->sha256);
    jw_key(w, "created_at_us");
    jw_int(w, s->created_at_us);
    jw_obj_end(w);
}

void h_snap_create(rctx *c)
{
    char lib[AKIDB_MAX_NAME_LEN + 1], id[AKIDB_SNAPSHOT_ID_LEN];
    if (rc_coll(c, c->param[0], lib))
        return;
    int rc = akidb_snapshot_create(c->srv->db, lib, id, sizeof id);
    if (rc != AKIDB_OK) {
        rc_lib(c, rc);
        return;
    }
    akidb_snapshot_info **list = NULL;
    size_t n = 0;
    rc = akidb_snapshot_list(c->srv->db, lib, &list, &n);
    if (rc != AKIDB_OK) {
        rc_lib(c, rc);
        return;
    }
    jw w;
    rc_json(c, 201, &w);
    int found = 0;
    for (size_t i = 0; i < n && !found; i++)
        if (strcmp(list[i]->id, id) == 0) {
            snap_json(&w, list[i]);
            found = 1;
        }
    if (!found) {
        /* Deleted between create and list by another request. */
        jw_obj(&w);
        jw_key(&w, "id");
        jw_str(&w, id);
        jw_obj_end(&w);
    }
    akidb_free(list);
}

void h_snap_list(rctx *c)
{
    char lib[AKIDB_MAX_NAME_LEN + 1];
    if (rc_coll(c, c->param[0], lib))
        return;
    akidb_snapshot_info **list = NULL;
    size_t n = 0;
    int rc = akidb_snapshot_list(c->srv->db, lib, &list, &n);
    if (rc != AKIDB_OK) {
        rc_lib(c, rc);
        return;
    }
    jw w;
    rc_json(c, 200, &w);
    jw_obj(&w);
    jw_key(&w, "snapshots");
    jw_arr(&w);
    for (size_t i = 0; i < n; i++)
        snap_json(&w, list[i]);
    jw_arr_end(&w);
    jw_obj_end(&w);
    akidb_free(list);
}

void h_snap_restore(rctx *c)
{
    char lib[AKIDB_MAX_NAME_LEN + 1];
    if (rc_coll(c, c->param[0], lib))
        return;
    int rc = akidb_snapshot_restore(c->srv->db, lib, c->param[1]);
    uint64_t count = 0;
    if (rc == AKIDB_OK)
        rc = akidb_collection_count(c->srv->db, lib, &count);
    if (rc != AKIDB_OK) {
        rc_lib(c, rc);
        return;
    }
    jw w;
    rc_json(c, 200, &w);
    jw_obj(&w);
    jw_key(&w, "restored");
    jw_str(&w, c->param[1]);
    jw_key(&w, "count");
    jw_uint(&w, count);
    jw_obj_end(&w);
}

void h_snap_delete(rctx *c)
{
    char lib[AKIDB_MAX_NAME_LEN + 1];
    if (rc_coll(c, c->param[0], lib))
        return;
    int rc = akidb_snapshot_delete(c->srv->db, lib, c->param[1]);
    if (rc != AKIDB_OK) {
        rc_lib(c, rc);
        return;
    }
    c->status = 204;
}
