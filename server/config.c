/*
 * config.c - the settings table and its four sources (see config.h).
 *
 * Values are applied as text through one parser per type, whatever the
 * source, so "--port 80", "AKIDB_PORT=80" and {"port": 80} are checked by
 * the same code and fail with the same message (plus where it came from).
 * The JSON file may give numbers and booleans as JSON values or as
 * strings; unknown keys are an error, since a misspelt setting that is
 * silently ignored is the worst kind of configuration bug.
 */
#include "config.h"

#include "log.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <akidb.h>

enum { T_STR, T_INT, T_BOOL, T_DBL, T_JSON };

typedef struct opt {
    const char *name;       /* JSON key; flag and env derived from it */
    int type;
    size_t off;
    size_t size;            /* T_STR: buffer size */
    const char *def;
    double min, max;        /* numbers only */
    const char *help;
} opt;

#define O(field) offsetof(srv_config, field), sizeof(((srv_config *)0)->field)
#define BIG 9.0e18

static const opt OPTS[] = {
    {"host", T_STR, O(host), "127.0.0.1", 0, 0, "address to listen on (IPv4 or IPv6 literal)"},
    {"port", T_INT, O(port), "8080", 0, 65535, "TCP port (0 = any free port)"},
    {"data_dir", T_STR, O(data_dir), "./akidb-data", 0, 0, "database directory (created if missing)"},
    {"config", T_STR, O(config_file), "", 0, 0, "JSON config file (keys as in this list, with _)"},
    {"no_auth", T_BOOL, O(no_auth), "false", 0, 0,
     "no API keys: every request is tenant 'default', role admin (loopback only)"},
    {"threads", T_INT, O(threads), "4", 1, 1024, "thread pool size for database calls"},
    {"max_connections", T_INT, O(max_connections), "1024", 1, 1000000,
     "open connections; more get 503 + Retry-After"},
    {"max_header_bytes", T_INT, O(max_header_bytes), "16384", 256, 1048576,
     "request line + headers; more is 431"},
    {"max_url_bytes", T_INT, O(max_url_bytes), "8192", 64, 1048576, "request URL; more is 414"},
    {"max_headers", T_INT, O(max_headers), "100", 1, 10000, "header lines; more is 431"},
    {"max_body_bytes", T_INT, O(max_body_bytes), "33554432", 1024, 4294967296.0,
     "request body; more is 413"},
    {"idle_timeout_ms", T_INT, O(idle_timeout_ms), "60000", 10, 86400000,
     "close a keep-alive connection idle this long"},
    {"request_timeout_ms", T_INT, O(request_timeout_ms), "30000", 10, 86400000,
     "a request must arrive completely within this (else 408)"},
    {"write_timeout_ms", T_INT, O(write_timeout_ms), "30000", 10, 86400000,
     "close a connection that does not read its response"},
    {"shutdown_timeout_ms", T_INT, O(shutdown_timeout_ms), "10000", 0, 3600000,
     "on SIGTERM/SIGINT, wait this long for requests in flight"},
    {"max_batch", T_INT, O(max_batch), "1000", 1, 1000000,
     "vectors per insert, queries per batch search"},
    {"max_k", T_INT, O(max_k), "1000", 1, 1000000, "largest k of a search"},
    {"max_json_depth", T_INT, O(max_json_depth), "32", 2, 200, "nesting depth of request JSON"},
    {"rate_qps", T_DBL, O(rate_qps), "1000", 0, 1e9,
     "default per-tenant requests per second (0 = unlimited)"},
    {"rate_burst", T_DBL, O(rate_burst), "2000", 0, 1e9, "default per-tenant burst (bucket size)"},
    {"max_collections", T_INT, O(max_collections), "0", 0, BIG,
     "default per-tenant collection limit (0 = none)"},
    {"max_vectors", T_INT, O(max_vectors), "0", 0, BIG,
     "default per-tenant vector limit (0 = none)"},
    {"tier_hot_ttl_s", T_INT, O(tier_hot_ttl_s), "21600", 0, BIG,
     "tiering: idle seconds before a collection goes from RAM to local disk (0 = never)"},
    {"tier_warm_ttl_s", T_INT, O(tier_warm_ttl_s), "604800", 0, BIG,
     "tiering: idle seconds before a collection goes from local disk to the object store "
     "(0 = never)"},
    {"tier_promote_per_hour", T_INT, O(tier_promote_per_hour), "10", 1, 4294967295.0,
     "tiering: accesses within an hour that bring a warm or cold collection back to RAM"},
    {"tier_disabled", T_BOOL, O(tier_disabled), "false", 0, 0,
     "tiering: the automatic policy moves nothing (manual moves still work)"},
    {"tier_snapshot_retention", T_INT, O(tier_snapshot_retention), "3", 1, 4294967295.0,
     "tiering: cold copies kept per collection"},
    {"tier_memory_budget", T_INT, O(tier_memory_budget), "0", 0, BIG,
     "tiering: bytes of collections kept in RAM; least recently used demoted above it "
     "(0 = unlimited)"},
    {"tier_store_quota", T_INT, O(tier_store_quota), "0", 0, BIG,
     "tiering: bytes of snapshots in the object store (0 = unlimited)"},
    {"sync", T_STR, O(sync), "always", 0, 0, "write-ahead log fsync: always | interval | none"},
    {"checkpoint_bytes", T_INT, O(checkpoint_bytes), "0", 0, BIG,
     "checkpoint a log past this size (0 = library default, 64 MiB)"},
    {"store", T_STR, O(store), "local", 0, 0, "object store: local | s3"},
    {"store_dir", T_STR, O(store_dir), "", 0, 0, "local store directory (default DATA_DIR/objects)"},
    {"s3_endpoint", T_STR, O(s3_endpoint), "", 0, 0, "S3 endpoint URL, e.g. http://127.0.0.1:7480"},
    {"s3_bucket", T_STR, O(s3_bucket), "", 0, 0, "S3 bucket (must exist)"},
    {"s3_region", T_STR, O(s3_region), "us-east-1", 0, 0, "S3 signing region"},
    {"s3_path_style", T_BOOL, O(s3_path_style), "true", 0, 0, "S3 path-style URLs"},
    {"s3_access_key_file", T_STR, O(s3_access_key_file), "", 0, 0,
     "file holding the S3 access key (or env AKIDB_S3_ACCESS_KEY)"},
    {"s3_secret_key_file", T_STR, O(s3_secret_key_file), "", 0, 0,
     "file holding the S3 secret key (or env AKIDB_S3_SECRET_KEY)"},
    {"log_level", T_STR, O(log_level), "info", 0, 0, "error | warn | info | debug"},
    {"log_requests", T_BOOL, O(log_requests), "true", 0, 0, "one log line per request"},
    {"tls_cert", T_STR, O(tls_cert), "", 0, 0,
     "PEM certificate (and chain): serve HTTPS only (TLS 1.3); reloaded on SIGHUP"},
    {"tls_key", T_STR, O(tls_key), "", 0, 0,
     "PEM private key of tls_cert; must be mode 0600 or stricter"},
    {"tls_client_ca", T_STR, O(tls_client_ca), "", 0, 0,
     "PEM CA certificates: verify client certificates (mTLS)"},
    {"tls_client_crl", T_STR, O(tls_client_crl), "", 0, 0,
     "PEM CRL(s) of tls_client_ca: revoked client certificates are refused; reloaded on SIGHUP"},
    {"tls_client_auth", T_STR, O(tls_client_auth), "require", 0, 0,
     "with tls_client_ca: require | optional (a client certificate)"},
    {"tls_client_map", T_JSON, O(tls_client_map), "{}", 0, 0,
     "client certificate subject (RFC 2253) -> identity, JSON: "
     "{\"CN=app,O=Acme\": {\"tenant\": \"acme\", \"role\": \"writer\"}}"},
    {"tls_min_version", T_STR, O(tls_min_version), "1.3", 0, 0,
     "lowest TLS version accepted: 1.3 | 1.2 (1.2 only when you must)"},
    {"tls_handshake_timeout_ms", T_INT, O(tls_handshake_timeout_ms), "10000", 10, 600000,
     "a TLS handshake must complete within this"},
    {"hsts_max_age_s", T_INT, O(hsts_max_age_s), "31536000", 0, 1e9,
     "Strict-Transport-Security max-age over TLS (0 = no header)"},
    {"jwt_alg", T_STR, O(jwt_alg), "", 0, 0,
     "accept JWT bearer tokens signed with: HS256 | RS256 | ES256 (empty = no JWTs)"},
    {"jwt_key_file", T_STR, O(jwt_key_file), "", 0, 0,
     "HS256: file of secrets, one per line (or env AKIDB_JWT_SECRET); RS256/ES256: PEM public "
     "key(s); reloaded on SIGHUP"},
    {"jwt_leeway_s", T_INT, O(jwt_leeway_s), "30", 0, 600,
     "clock skew allowed on exp, nbf and iat"},
    {"jwt_audience", T_STR, O(jwt_audience), "", 0, 0, "required 'aud' of JWTs (empty = not checked)"},
    {"jwt_issuer", T_STR, O(jwt_issuer), "", 0, 0, "required 'iss' of JWTs (empty = not checked)"},
    {"audit_log", T_STR, O(audit_log), "", 0, 0, "audit log file (default DATA_DIR/audit.log)"},
    {"audit_max_bytes", T_INT, O(audit_max_bytes), "16777216", 4096, BIG,
     "rotate the audit log past this size"},
    {"audit_keep", T_INT, O(audit_keep), "5", 1, 1000, "rotated audit logs kept"},
    {"auth_fail_limit", T_INT, O(auth_fail_limit), "10", 0, 1000000,
     "failed authentications an address may make per auth_fail_window_s before 429 (0 = off)"},
    {"auth_fail_window_s", T_INT, O(auth_fail_window_s), "60", 1, 86400,
     "the window of auth_fail_limit"},
};
#define N_OPTS (sizeof OPTS / sizeof OPTS[0])

static void flag_name(const opt *o, char *out, size_t n)
{
    snprintf(out, n, "--%s", o->name);
    for (char *p = out + 2; *p; p++)
        if (*p == '_')
            *p = '-';
}

static void env_name(const opt *o, char *out, size_t n)
{
    snprintf(out, n, "AKIDB_%s", o->name);
    for (char *p = out + 6; *p; p++)
        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
}

static int set_value(srv_config *cfg, const opt *o, const char *v, const char *src, char *err,
                     size_t n)
{
    void *field = (char *)cfg + o->off;
    switch (o->type) {
    case T_JSON: {
        json_error_t je;
        json_t *j = json_loads(v, JSON_REJECT_DUPLICATES, &je);
        int is_obj = j && json_is_object(j);
        json_decref(j);
        if (!is_obj) {
            snprintf(err, n, "%s: %s must be a JSON object (%s)", src, o->name,
                     j ? "not an object" : je.text);
            return -1;
        }
    }
        /* fall through */
    case T_STR:
        if (strlen(v) >= o->size) {
            snprintf(err, n, "%s: %s is too long (at most %zu bytes)", src, o->name, o->size - 1);
            return -1;
        }
        memcpy(field, v, strlen(v) + 1);
        return 0;
    case T_BOOL:
        if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes") ||
            !strcasecmp(v, "on"))
            *(int *)field = 1;
        else if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no") ||
                 !strcasecmp(v, "off"))
            *(int *)field = 0;
        else {
            snprintf(err, n, "%s: %s must be true or false, not '%s'", src, o->name, v);
            return -1;
        }
        return 0;
    case T_INT:
    case T_DBL: {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (end == v || *end || errno || !isfinite(d) || d < o->min || d > o->max ||
            (o->type == T_INT && d != floor(d))) {
            snprintf(err, n, "%s: %s must be %s in %.17g..%.17g, not '%s'", src, o->name,
                     o->type == T_INT ? "an integer" : "a number", o->min, o->max, v);
            return -1;
        }
        if (o->type == T_INT)
            *(int64_t *)field = (int64_t)d;
        else
            *(double *)field = d;
        return 0;
    }
    }
    return -1;
}

static const opt *find_opt(const char *name)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (!strcmp(OPTS[i].name, name))
            return &OPTS[i];
    return NULL;
}

static int load_file(srv_config *cfg, const char *path, char *err, size_t n)
{
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, n, "config file %s: %s (line %d)", path, je.text, je.line);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(root)) {
        snprintf(err, n, "config file %s: the top level must be an object", path);
        goto fail;
    }
    const char *key;
    json_t *val;
    char src[CFG_STR_MAX + 32];
    snprintf(src, sizeof src, "config file %s", path);
    json_object_foreach(root, key, val) {
        const opt *o = find_opt(key);
        if (!o || !strcmp(key, "config")) {
            snprintf(err, n, "%s: unknown setting '%s'", src, key);
            goto fail;
        }
        char text[64];
        const char *v;
        char *dumped = NULL;
        if (o->type == T_JSON && json_is_object(val)) {
            dumped = json_dumps(val, JSON_COMPACT);
            if (!dumped) {
                snprintf(err, n, "%s: out of memory", src);
                goto fail;
            }
            int r = set_value(cfg, o, dumped, src, err, n);
            free(dumped);
            if (r)
                goto fail;
            continue;
        }
        if (json_is_string(val))
            v = json_string_value(val);
        else if (json_is_boolean(val))
            v = json_is_true(val) ? "true" : "false";
        else if (json_is_integer(val)) {
            snprintf(text, sizeof text, "%lld", (long long)json_integer_value(val));
            v = text;
        } else if (json_is_real(val)) {
            snprintf(text, sizeof text, "%.17g", json_real_value(val));
            v = text;
        } else {
            snprintf(err, n, "%s: %s must be a string, number or boolean", src, key);
            goto fail;
        }
        if (set_value(cfg, o, v, src, err, n))
            goto fail;
    }
    rc = 0;
fail:
    json_decref(root);
    return rc;
}

int config_host_is_loopback(const char *host)
{
    return !strncmp(host, "127.", 4) || !strcmp(host, "::1") || !strcmp(host, "localhost");
}

static const struct {
    const char *flag;
    size_t off;
    const char *help;
} ACTIONS[] = {
    {"--help", offsetof(srv_config, help), "print this help and exit"},
    {"--version", offsetof(srv_config, version), "print the version and exit"},
    {"--list-routes", offsetof(srv_config, list_routes),
     "print every route (METHOD TEMPLATE) and exit"},
    {"--create-admin-key", offsetof(srv_config, create_admin_key),
     "add an admin key for tenant 'default' to the database, print it and exit "
     "(the server must not be running)"},
};
#define N_ACTIONS (sizeof ACTIONS / sizeof ACTIONS[0])

int config_load(srv_config *cfg, int argc, char **argv, char *err, size_t n)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < N_OPTS; i++)
        if (set_value(cfg, &OPTS[i], OPTS[i].def, "default", err, n))
            return -1;

    /* The config file's name may come from the environment or a flag;
     * find it first, since the file sits below both in precedence. */
    const char *file = getenv("AKIDB_CONFIG");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            file = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9))
            file = argv[i] + 9;
    }
    if (file && *file) {
        if (load_file(cfg, file, err, n))
            return -1;
        snprintf(cfg->config_file, sizeof cfg->config_file, "%s", file);
    }

    for (size_t i = 0; i < N_OPTS; i++) {
        char name[96];
        env_name(&OPTS[i], name, sizeof name);
        const char *v = getenv(name);
        if (v && strcmp(OPTS[i].name, "config") != 0) {
            char src[128];
            snprintf(src, sizeof src, "environment %s", name);
            if (set_value(cfg, &OPTS[i], v, src, err, n))
                return -1;
        }
    }

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int done = 0;
        for (size_t k = 0; k < N_ACTIONS && !done; k++)
            if (!strcmp(a, ACTIONS[k].flag) || (!strcmp(ACTIONS[k].flag, "--help") && !strcmp(a, "-h"))) {
                *(int *)((char *)cfg + ACTIONS[k].off) = 1;
                done = 1;
            }
        if (done)
            continue;
        const opt *o = NULL;
        const char *val = NULL;
        char fl[96];
        for (size_t k = 0; k < N_OPTS; k++) {
            flag_name(&OPTS[k], fl, sizeof fl);
            size_t fl_len = strlen(fl);
            if (!strcmp(a, fl)) {
                o = &OPTS[k];
                break;
            }
            if (!strncmp(a, fl, fl_len) && a[fl_len] == '=') {
                o = &OPTS[k];
                val = a + fl_len + 1;
                break;
            }
        }
        if (!o) {
            snprintf(err, n, "unknown argument '%s' (see --help)", a);
            return -1;
        }
        if (!val) {
            if (o->type == T_BOOL) {
                /* "--flag false" and "--flag" (= true) both work. */
                static const char *const words[] = {"true", "false", "yes", "no", "on",
                                                    "off", "1", "0"};
                val = "true";
                for (size_t w = 0; i + 1 < argc && w < 8; w++)
                    if (!strcasecmp(argv[i + 1], words[w])) {
                        val = argv[++i];
                        break;
                    }
            }
            else if (i + 1 < argc)
                val = argv[++i];
            else {
                snprintf(err, n, "%s needs a value", a);
                return -1;
            }
        }
        char src[128];
        snprintf(src, sizeof src, "flag %s", a);
        if (set_value(cfg, o, val, src, err, n))
            return -1;
    }

    if (strcmp(cfg->sync, "always") && strcmp(cfg->sync, "interval") && strcmp(cfg->sync, "none")) {
        snprintf(err, n, "sync must be always, interval or none, not '%s'", cfg->sync);
        return -1;
    }
    if (strcmp(cfg->store, "local") && strcmp(cfg->store, "s3")) {
        snprintf(err, n, "store must be local or s3, not '%s'", cfg->store);
        return -1;
    }
    if (!strcmp(cfg->store, "s3") && (!cfg->s3_endpoint[0] || !cfg->s3_bucket[0])) {
        snprintf(err, n, "store s3 needs s3_endpoint and s3_bucket");
        return -1;
    }
    if (log_level_parse(cfg->log_level) < 0) {
        snprintf(err, n, "log_level must be error, warn, info or debug, not '%s'", cfg->log_level);
        return -1;
    }
    if (!cfg->data_dir[0]) {
        snprintf(err, n, "data_dir must not be empty");
        return -1;
    }
    if (strcmp(cfg->tls_client_auth, "require") && strcmp(cfg->tls_client_auth, "optional")) {
        snprintf(err, n, "tls_client_auth must be require or optional, not '%s'",
                 cfg->tls_client_auth);
        return -1;
    }
    if (strcmp(cfg->tls_min_version, "1.3") && strcmp(cfg->tls_min_version, "1.2")) {
        snprintf(err, n, "tls_min_version must be 1.3 or 1.2, not '%s'", cfg->tls_min_version);
        return -1;
    }
    if (!cfg->tls_cert[0] != !cfg->tls_key[0]) {
        snprintf(err, n, "TLS needs both tls_cert and tls_key");
        return -1;
    }
    if (cfg->tls_client_crl[0] && !cfg->tls_client_ca[0]) {
        snprintf(err, n, "tls_client_crl needs tls_client_ca");
        return -1;
    }
    if (cfg->tls_client_ca[0] && !cfg->tls_cert[0]) {
        snprintf(err, n, "tls_client_ca needs TLS (tls_cert and tls_key)");
        return -1;
    }
    if (cfg->jwt_alg[0] && strcmp(cfg->jwt_alg, "HS256") && strcmp(cfg->jwt_alg, "RS256") &&
        strcmp(cfg->jwt_alg, "ES256")) {
        snprintf(err, n, "jwt_alg must be HS256, RS256 or ES256, not '%s' ('none' is never "
                 "accepted)", cfg->jwt_alg);
        return -1;
    }
    if (cfg->jwt_alg[0] && strcmp(cfg->jwt_alg, "HS256") && !cfg->jwt_key_file[0]) {
        snprintf(err, n, "jwt_alg %s needs jwt_key_file (the PEM public key)", cfg->jwt_alg);
        return -1;
    }
    if (cfg->no_auth && !config_host_is_loopback(cfg->host)) {
        snprintf(err, n, "--no-auth is refused on a non-loopback address (%s): "
                 "anyone who can reach it would be admin", cfg->host);
        return -1;
    }
    return 0;
}

void config_usage(const char *argv0)
{
    printf("usage: %s [options]\n\n"
           "akidb-server %s: the AkiDB REST API.  With no options it serves the\n"
           "database in ./akidb-data on http://127.0.0.1:8080 with a local object store.\n\n"
           "Each setting comes from (lowest to highest precedence): its default, the JSON\n"
           "config file (--config FILE or AKIDB_CONFIG), the environment variable shown,\n"
           "the flag.  Flags take a value as '--flag VALUE' or '--flag=VALUE'; a boolean\n"
           "flag on its own means true ('--flag false' turns it off).\n\n",
           argv0, akidb_version());
    for (size_t i = 0; i < N_OPTS; i++) {
        char fl[96], env[96];
        flag_name(&OPTS[i], fl, sizeof fl);
        env_name(&OPTS[i], env, sizeof env);
        printf("  %-24s %s\n  %-24s   env %s, default: %s\n", fl, OPTS[i].help, "", env,
               OPTS[i].def[0] ? OPTS[i].def : "(empty)");
    }
    printf("\nActions:\n");
    for (size_t i = 0; i < N_ACTIONS; i++)
        printf("  %-24s %s\n", ACTIONS[i].flag, ACTIONS[i].help);
    printf("\nEnvironment only (secrets, never logged):\n"
           "  AKIDB_BOOTSTRAP_ADMIN_KEY  the first admin key of a new database (16..256\n"
           "                             printable ASCII characters); without it the\n"
           "                             first start creates one and prints it once\n"
           "  AKIDB_S3_ACCESS_KEY, AKIDB_S3_SECRET_KEY   S3 credentials\n"
           "  AKIDB_JWT_SECRET           the HS256 secret (instead of jwt_key_file)\n"
           "\nSignals: SIGTERM/SIGINT shut down gracefully; SIGHUP reloads the TLS certificate\n"
           "and key and the JWT keys without dropping connections.\n");
}

int config_set(srv_config *cfg, const char *name, const char *text, const char *src, char *err,
               size_t n)
{
    const opt *o = find_opt(name);
    if (!o || !strcmp(name, "config")) {
        snprintf(err, n, "%s: unknown setting '%s'", src, name);
        return -1;
    }
    return set_value(cfg, o, text, src, err, n);
}

int config_get_json(const srv_config *cfg, const char *name, char *out, size_t n)
{
    const opt *o = find_opt(name);
    if (!o)
        return -1;
    const void *field = (const char *)cfg + o->off;
    int w;
    switch (o->type) {
    case T_INT:
        w = snprintf(out, n, "%lld", (long long)*(const int64_t *)field);
        break;
    case T_DBL:
        w = snprintf(out, n, "%.17g", *(const double *)field);
        break;
    case T_BOOL:
        w = snprintf(out, n, "%s", *(const int *)field ? "true" : "false");
        break;
    case T_JSON:
        w = snprintf(out, n, "%s", (const char *)field);
        break;
    default: {
        json_t *j = json_string((const char *)field);
        char *d = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
        json_decref(j);
        if (!d)
            return -1;
        w = snprintf(out, n, "%s", d);
        free(d);
    }
    }
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

char *config_secret(const char *env, const char *file, const char **err_out)
{
    *err_out = NULL;
    const char *v = getenv(env);
    if (v && *v)
        return strdup(v);
    if (!file || !*file)
        return NULL;
    FILE *f = fopen(file, "r");
    if (!f) {
        *err_out = "cannot open the secret file";
        return NULL;
    }
    char line[4096];
    char *s = NULL;
    if (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        s = strdup(line);
    } else {
        *err_out = "the secret file is empty";
    }
    fclose(f);
    return s;
}
