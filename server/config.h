/*
 * config.h - akidb-server settings: one table, four sources.
 *
 * Precedence: built-in defaults < JSON config file (--config FILE or
 * AKIDB_CONFIG) < AKIDB_* environment variables < command-line flags.
 * Every setting has exactly one entry in the table in config.c, which
 * gives its flag (--max-body-bytes), its JSON key (max_body_bytes), its
 * environment variable (AKIDB_MAX_BODY_BYTES), its default and its help
 * line, so `--help` cannot drift from what is parsed.
 *
 * Secrets (the S3 keys) are never flags (they would show in `ps`) and are
 * never logged: they come from AKIDB_S3_ACCESS_KEY / AKIDB_S3_SECRET_KEY
 * or from files named by --s3-access-key-file / --s3-secret-key-file.
 */
#ifndef AKIDB_SERVER_CONFIG_H
#define AKIDB_SERVER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CFG_STR_MAX 1024
#define CFG_JSON_MAX 16384

typedef struct srv_config {
    char host[256];
    int64_t port;
    char data_dir[CFG_STR_MAX];
    char config_file[CFG_STR_MAX];
    int no_auth;
    int64_t threads;
    /* HTTP limits */
    int64_t max_connections;
    int64_t max_header_bytes;
    int64_t max_url_bytes;
    int64_t max_headers;
    int64_t max_body_bytes;
    int64_t idle_timeout_ms;
    int64_t request_timeout_ms;
    int64_t write_timeout_ms;
    int64_t shutdown_timeout_ms;
    /* API limits */
    int64_t max_batch;
    int64_t max_k;
    int64_t max_json_depth;
    /* Default per-tenant quota (overridable per tenant at run time). */
    double rate_qps;
    double rate_burst;
    int64_t max_collections;
    int64_t max_vectors;
    /* The database's default tiering policy (docs/TIERING.md); the
     * library's akidb_tier_policy, changeable at run time.  TTLs 0 =
     * never; budget and quota 0 = unlimited. */
    int64_t tier_hot_ttl_s;
    int64_t tier_warm_ttl_s;
    int64_t tier_promote_per_hour;
    int tier_disabled;
    int64_t tier_snapshot_retention;
    int64_t tier_memory_budget;
    int64_t tier_store_quota;
    /* Database */
    char sync[16];
    int64_t checkpoint_bytes;
    /* Object store */
    char store[16];             /* "local" | "s3" */
    char store_dir[CFG_STR_MAX];/* local: "" = DATA_DIR/objects */
    char s3_endpoint[CFG_STR_MAX];
    char s3_bucket[256];
    char s3_region[64];
    int s3_path_style;
    char s3_access_key_file[CFG_STR_MAX];
    char s3_secret_key_file[CFG_STR_MAX];
    /* Logging */
    char log_level[16];
    int log_requests;
    /* TLS (tls.h); off unless tls_cert and tls_key are set */
    char tls_cert[CFG_STR_MAX];
    char tls_key[CFG_STR_MAX];
    char tls_client_ca[CFG_STR_MAX];
    char tls_client_crl[CFG_STR_MAX];
    char tls_client_auth[16];          /* "require" | "optional" */
    char tls_client_map[CFG_JSON_MAX]; /* JSON: {"<subject>": {"tenant":..,"role":..}} */
    char tls_min_version[8];           /* "1.3" | "1.2" */
    int64_t tls_handshake_timeout_ms;
    int64_t hsts_max_age_s;
    /* JWT bearer tokens (token.h); off unless jwt_alg is set */
    char jwt_alg[16];                  /* "" | HS256 | RS256 | ES256 */
    char jwt_key_file[CFG_STR_MAX];
    int64_t jwt_leeway_s;
    char jwt_audience[256];
    char jwt_issuer[256];
    /* Audit log (audit.h) */
    char audit_log[CFG_STR_MAX];       /* "" = DATA_DIR/audit.log */
    int64_t audit_max_bytes;
    int64_t audit_keep;
    /* Brute-force protection: failed authentications per address */
    int64_t auth_fail_limit;           /* 0 = off */
    int64_t auth_fail_window_s;
    /* Actions (flags only) */
    int help;
    int version;
    int list_routes;
    int create_admin_key;
} srv_config;

/* Fill *cfg from defaults, the config file, the environment and argv.
 * On error writes a message (naming the source and the setting) to err
 * and returns -1.  Validates ranges and the loopback rule of --no-auth. */
int config_load(srv_config *cfg, int argc, char **argv, char *err, size_t err_len);

/* Print the usage text with every setting and its default. */
void config_usage(const char *argv0);

/* 1 if host is a loopback address (127.0.0.0/8, ::1, "localhost"). */
int config_host_is_loopback(const char *host);

/* Set one setting by its JSON key from text, with the same checks as
 * every other source (`src` names the source in the message).  Does not
 * run config_load's cross-field checks.  0 or -1 with err. */
int config_set(srv_config *cfg, const char *name, const char *text, const char *src, char *err,
               size_t err_len);

/* A setting's current value as JSON text ("5", "true", "\"info\"") into
 * out.  0, or -1 for an unknown name or no room. */
int config_get_json(const srv_config *cfg, const char *name, char *out, size_t out_len);

/* Read a secret: the environment variable `env` if set, else the first
 * line of `file` if non-empty.  Returns a malloc'ed string, NULL if
 * neither is set; *err_out gets a message when the file cannot be read. */
char *config_secret(const char *env, const char *file, const char **err_out);

#endif /* AKIDB_SERVER_CONFIG_H */
