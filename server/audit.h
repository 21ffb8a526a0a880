/*
 * audit.h - the audit log: who did what to which, and did it work.
 *
 * One JSON object per line, in a file of its own (not the request log, so
 * it can be kept longer, shipped elsewhere and read by machines):
 *
 *   {"ts":"2026-12-01T10:00:00.123Z","action":"key.create","result":"success",
 *    "status":201,"request_id":"9f..","tenant":"acme","actor_type":"api_key",
 *    "actor":"3f2a..","source":"10.0.0.7:51234","target":"key=77ab..",
 *    "detail":"tenant=acme role=reader"}
 *
 * `actor` names the credential, never its secret: an API key's id, a
 * JWT's `sub`, a client certificate's subject.  `reason` says why an
 * authentication failed, in the server's words.  Every string is escaped
 * by the JSON writer, so a hostile value cannot forge a field or a line.
 *
 * Durability: a line that records a change of state (a key created, a
 * collection dropped, ...) is written and fdatasync'ed before the client
 * gets its answer; failures and denials are written without the sync.
 * The file is created 0600 and rotated by size: audit.log becomes
 * audit.log.1, .1 becomes .2, and so on up to `keep` files; the oldest is
 * deleted.  Writes and rotation happen under one mutex, so lines from the
 * loop thread and the thread pool never interleave.
 *
 * A line that cannot be written is counted (akidb_audit_write_errors_total)
 * and reported in the server log; the action itself has already happened.
 *
 * Reusable: includes nothing from the server hub (server.h).  Thread safe.
 */
#ifndef AKIDB_SERVER_AUDIT_H
#define AKIDB_SERVER_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* The actions, a closed list (metric labels stay bounded). */
#define AUDIT_ACTIONS(X)                                                          \
    X(AUDIT_AUTH_FAILURE, "auth.failure")         /* 401: no or bad credential */ \
    X(AUDIT_AUTH_DENIED, "auth.denied")           /* 403: role too low */         \
    X(AUDIT_AUTH_THROTTLED, "auth.throttled")     /* an address was locked out */ \
    X(AUDIT_KEY_CREATE, "key.create")                                             \
    X(AUDIT_KEY_REVOKE, "key.revoke")                                             \
    X(AUDIT_QUOTA_SET, "quota.set")                                               \
    X(AUDIT_QUOTA_RESET, "quota.reset")                                           \
    X(AUDIT_CONFIG_CHANGE, "config.change")                                       \
    X(AUDIT_CONFIG_RELOAD, "config.reload")       /* SIGHUP: certificates, keys */ \
    X(AUDIT_COLLECTION_CREATE, "collection.create")                               \
    X(AUDIT_COLLECTION_DROP, "collection.drop")                                   \
    X(AUDIT_SNAPSHOT_CREATE, "snapshot.create")                                   \
    X(AUDIT_SNAPSHOT_RESTORE, "snapshot.restore")                                 \
    X(AUDIT_SNAPSHOT_DELETE, "snapshot.delete")                                   \
    X(AUDIT_TIER_CHANGE, "tier.change")           /* manual tier moves */         \
    X(AUDIT_TIER_PIN, "tier.pin")                 /* pin and unpin */

enum {
    AUDIT_NONE = 0,
#define AUDIT_ENUM(e, name) e,
    AUDIT_ACTIONS(AUDIT_ENUM)
#undef AUDIT_ENUM
    AUDIT_N
};

const char *audit_action_name(int action);

typedef struct audit_event {
    int action;
    int ok;                    /* 1 success, 0 failure or refusal */
    int status;                /* HTTP status; 0 when there is none */
    const char *request_id;    /* NULL or "" fields are left out */
    const char *tenant;
    const char *actor_type;    /* "api_key" | "jwt" | "mtls" | "none" | "system" */
    const char *actor;
    const char *source;        /* the client's address */
    const char *target;
    const char *detail;
    const char *reason;
} audit_event;

typedef struct audit_log audit_log;

/* Open (create 0600, append) the log at `path`.  0 or -1 with err. */
int audit_open(audit_log **out, const char *path, uint64_t max_bytes, unsigned keep, char *err,
               size_t err_len);

/* Append one line; `durable` adds an fdatasync before returning.  Any
 * thread.  NULL log: only counted nowhere, a no-op. */
void audit_write(audit_log *a, const audit_event *e, int durable);

/* akidb_audit_events_total{action,result} and
 * akidb_audit_write_errors_total, in Prometheus text. */
void audit_render_metrics(audit_log *a, sbuf *b);

/* Close; NULL is a no-op. */
void audit_close(audit_log *a);

#endif /* AKIDB_SERVER_AUDIT_H */
