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

/* Read a secret: the environment variable `env` if set, else the first
 * line of `file` if non-empty.  Returns a malloc'ed string, NULL if
 * neither is set; *err_out gets a message when the file cannot be read. */
char *config_secret(const char *env, const char *file, const char **err_out);

#endif /* AKIDB_SERVER_CONFIG_H */
