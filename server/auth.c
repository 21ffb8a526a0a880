/*
 * auth.c - API keys: creation, storage, lookup; roles; the first admin key.
 *
 * A key is "akidb_" + 43 characters of base64url: 32 bytes from the OS
 * CSPRNG (getrandom).  It is shown once, when created.  The catalog keeps
 * only its SHA-256, in an akidb_kv record (namespace akidb-server.keys,
 * key = the key's id, 16 hex digits that are not secret and name the key
 * in listings, logs and DELETE), as JSON:
 *   {"hash":"<64 hex>","tenant":"t","role":"writer","name":"ci","created_at_us":N}
 * A plain SHA-256 is enough here (no salt, no slow hash): the keys are 256
 * random bits, so there is nothing to guess, unlike a password.
 *
 * Lookup hashes the presented token and compares it with every stored
 * hash using CRYPTO_memcmp, without stopping at a match, so the time taken
 * says nothing about which key (if any) matched or how many bytes did.
 * The key table is loaded at start and mirrored on every change (loop
 * thread only); it is linear, which costs about 30 ns per key per request
 * and is simple to get right; hundreds of keys are fine.
 *
 * Roles, from least to most: reader (read and search), writer (also
 * create, write, delete, snapshot), admin (also keys and quotas, for every
 * tenant).  The route table (router.c) names the least role of each route.
 */
#include "server.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>

#include "log.h"

static const char *const ROLE_NAMES[] = {"none", "reader", "writer", "admin"};

const char *role_name(int role)
{
    return role >= 0 && role <= ROLE_ADMIN ? ROLE_NAMES[role] : "none";
}

int role_parse(const char *s)
{
    for (int r = ROLE_READER; r <= ROLE_ADMIN; r++)
        if (strcmp(s, ROLE_NAMES[r]) == 0)
            return r;
    return -1;
}

static int sha256(const void *p, size_t n, unsigned char out[32])
{
    unsigned int len = 0;
    return EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) == 1 && len == 32 ? 0 : -1;
}

static int random_bytes(void *p, size_t n)
{
    size_t off = 0;
    while (off < n) {
        ssize_t r = getrandom((char *)p + off, n - off, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        off += (size_t)r;
    }
    return 0;
}

static int64_t now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

static void hex(const unsigned char *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int unhex(const char *s, unsigned char *out, size_t n)
{
    if (strlen(s) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    return 0;
}

const api_key *auth_lookup(const auth_table *a, const char *token, size_t len)
{
    unsigned char h[32];
    if (len > 1024 || sha256(token, len, h) != 0)
        return NULL;
    const api_key *found = NULL;
    for (size_t i = 0; i < a->n; i++) {
        int eq = CRYPTO_memcmp(h, a->keys[i].hash, 32) == 0;
        /* No early exit: every key is compared whatever happened before. */
        found = eq ? &a->keys[i] : found;
    }
    return found;
}

int auth_add(auth_table *a, const api_key *k)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        api_key *p = realloc(a->keys, cap * sizeof *p);
        if (!p)
            return -1;
        a->keys = p;
        a->cap = cap;
    }
    a->keys[a->n++] = *k;
    return 0;
}

api_key *auth_find_id(auth_table *a, const char *id)
{
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->keys[i].id, id) == 0)
            return &a->keys[i];
    return NULL;
}

void auth_remove(auth_table *a, const char *id)
{
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->keys[i].id, id) == 0) {
            a->keys[i] = a->keys[--a->n];
            return;
        }
}

size_t auth_count_admins(const auth_table *a, int skip_deleting)
{
    size_t n = 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->keys[i].role == ROLE_ADMIN && !(skip_deleting && a->keys[i].deleting))
            n++;
    return n;
}

void auth_free(auth_table *a)
{
    if (a->keys)
        OPENSSL_cleanse(a->keys, a->cap * sizeof *a->keys);
    free(a->keys);
    memset(a, 0, sizeof *a);
}

static int new_id(char id[17])
{
    unsigned char r[8];
    if (random_bytes(r, sizeof r) != 0)
        return -1;
    hex(r, sizeof r, id);
    return 0;
}

int auth_record_for(api_key *rec, const char *key, size_t len)
{
    if (new_id(rec->id) != 0 || sha256(key, len, rec->hash) != 0)
        return -1;
    rec->created_at_us = now_us();
    return 0;
}

int auth_generate(api_key *rec, char *key_out, size_t key_len)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char r[33];          /* 32 random bytes + one zero pad byte */
    if (key_len < 64 || random_bytes(r, 32) != 0)
        return -1;
    r[32] = 0;
    size_t o = 0;
    memcpy(key_out, "akidb_", 6);
    o = 6;
    /* base64url without padding: 32 bytes -> 43 characters. */
    for (size_t i = 0; i < 33; i += 3) {
        uint32_t v = (uint32_t)r[i] << 16 | (uint32_t)r[i + 1] << 8 | (i + 2 < 33 ? r[i + 2] : 0);
        key_out[o++] = b64[(v >> 18) & 63];
        key_out[o++] = b64[(v >> 12) & 63];
        key_out[o++] = b64[(v >> 6) & 63];
        key_out[o++] = b64[v & 63];
    }
    o = 6 + 43;
    key_out[o] = '\0';
    OPENSSL_cleanse(r, sizeof r);
    return auth_record_for(rec, key_out, o);
}

int auth_store(akidb *db, const api_key *rec)
{
    char h[65];
    hex(rec->hash, 32, h);
    sbuf b = {0};
    jw w;
    jw_init(&w, &b);
    jw_obj(&w);
    jw_key(&w, "hash");
    jw_str(&w, h);
    jw_key(&w, "tenant");
    jw_str(&w, rec->tenant);
    jw_key(&w, "role");
    jw_str(&w, role_name(rec->role));
    jw_key(&w, "name");
    jw_str(&w, rec->name);
    jw_key(&w, "created_at_us");
    jw_int(&w, rec->created_at_us);
    jw_obj_end(&w);
    if (!b.data)
        return akidb_set_errmsg(AKIDB_NOMEM, "out of memory");
    int rc = akidb_kv_put(db, KV_NS_KEYS, rec->id, b.data, b.len);
    sbuf_free(&b);
    return rc;
}

void auth_key_json(jw *w, const api_key *k)
{
    jw_obj(w);
    jw_key(w, "id");
    jw_str(w, k->id);
    jw_key(w, "tenant");
    jw_str(w, k->tenant);
    jw_key(w, "role");
    jw_str(w, role_name(k->role));
    jw_key(w, "name");
    jw_str(w, k->name);
    jw_key(w, "created_at_us");
    jw_int(w, k->created_at_us);
    jw_obj_end(w);
}

static int parse_record(const char *id, const void *val, size_t len, api_key *k)
{
    memset(k, 0, sizeof *k);
    json_error_t je;
    json_t *j = json_loadb(val, len, 0, &je);
    int rc = -1;
    const char *hs, *tenant, *role, *name = "";
    json_int_t created = 0;
    if (!j || json_unpack(j, "{s:s, s:s, s:s, s?s, s?I}", "hash", &hs, "tenant", &tenant,
                          "role", &role, "name", &name, "created_at_us", &created) != 0)
        goto fail;
    if (strlen(id) != 16 || unhex(hs, k->hash, 32) != 0 || !tenant_id_valid(tenant) ||
        role_parse(role) < 0 || strlen(name) >= sizeof k->name)
        goto fail;
    snprintf(k->id, sizeof k->id, "%s", id);
    snprintf(k->tenant, sizeof k->tenant, "%s", tenant);
    snprintf(k->name, sizeof k->name, "%s", name);
    k->role = role_parse(role);
    k->created_at_us = created;
    rc = 0;
fail:
    json_decref(j);
    return rc;
}

int auth_load(auth_table *a, akidb *db, char *err, size_t err_len)
{
    char **ids = NULL;
    size_t n = 0;
    int rc = akidb_kv_list(db, KV_NS_KEYS, &ids, &n);
    if (rc != AKIDB_OK) {
        snprintf(err, err_len, "reading API keys: %s", akidb_errmsg(NULL));
        return -1;
    }
    int ret = 0;
    for (size_t i = 0; i < n; i++) {
        void *val = NULL;
        size_t len = 0;
        api_key k;
        rc = akidb_kv_get(db, KV_NS_KEYS, ids[i], &val, &len);
        if (rc != AKIDB_OK) {
            snprintf(err, err_len, "reading API key %s: %s", ids[i], akidb_errmsg(NULL));
            ret = -1;
            break;
        }
        if (parse_record(ids[i], val, len, &k) != 0) {
            /* One damaged record must not lock everyone out: skip it. */
            log_msg(LOG_WARN, "skipping a damaged API key record", "key_id", ids[i]);
        } else if (auth_add(a, &k) != 0) {
            snprintf(err, err_len, "out of memory");
            ret = -1;
        }
        akidb_free(val);
        if (ret)
            break;
    }
    akidb_free(ids);
    return ret;
}

int auth_bootstrap(auth_table *a, akidb *db, char **shown, char *err, size_t err_len)
{
    *shown = NULL;
    const char *env = getenv("AKIDB_BOOTSTRAP_ADMIN_KEY");
    if (a->n > 0) {
        if (env && *env)
            log_msg(LOG_INFO, "AKIDB_BOOTSTRAP_ADMIN_KEY ignored: the database already has keys",
                    NULL, NULL);
        return 0;
    }
    api_key k;
    memset(&k, 0, sizeof k);
    char key[128];
    if (env && *env) {
        size_t n = strlen(env);
        int ok = n >= 16 && n <= 256;
        for (size_t i = 0; ok && i < n; i++)
            ok = env[i] > ' ' && env[i] < 0x7f;
        if (!ok) {
            snprintf(err, err_len, "AKIDB_BOOTSTRAP_ADMIN_KEY must be 16..256 printable ASCII "
                     "characters without spaces");
            return -1;
        }
        if (auth_record_for(&k, env, n) != 0)
            goto crypto_fail;
        snprintf(k.name, sizeof k.name, "bootstrap (AKIDB_BOOTSTRAP_ADMIN_KEY)");
    } else {
        if (auth_generate(&k, key, sizeof key) != 0)
            goto crypto_fail;
        snprintf(k.name, sizeof k.name, "bootstrap");
    }
    snprintf(k.tenant, sizeof k.tenant, "%s", DEFAULT_TENANT);
    k.role = ROLE_ADMIN;
    int rc = auth_store(db, &k);
    if (rc != AKIDB_OK) {
        snprintf(err, err_len, "storing the first admin key: %s", akidb_errmsg(NULL));
        return -1;
    }
    if (auth_add(a, &k) != 0) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    if (!(env && *env)) {
        *shown = strdup(key);
        OPENSSL_cleanse(key, sizeof key);
    }
    log_msg(LOG_INFO, "created the first admin key", "key_id", k.id);
    return 0;
crypto_fail:
    snprintf(err, err_len, "cannot get random bytes or a SHA-256 from the OS/OpenSSL");
    return -1;
}

/* ------------------------------------------------------------------------
 * Client certificates (mTLS): subject -> tenant and role, from the
 * tls_client_map setting.  Subjects are compared exactly, in the RFC 2253
 * form OpenSSL prints (`openssl x509 -noout -subject -nameopt RFC2253`):
 * a certificate is only as good as the CA that signed it, and the map
 * names exactly which of that CA's subjects may do what. */

int cert_map_load(cert_map *m, const char *text, char *err, size_t n)
{
    memset(m, 0, sizeof *m);
    json_error_t je;
    json_t *j = json_loads(text && *text ? text : "{}", JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(j)) {
        snprintf(err, n, "tls_client_map must be a JSON object: %s", j ? "not an object" : je.text);
        json_decref(j);
        return -1;
    }
    size_t cnt = json_object_size(j);
    m->v = cnt ? calloc(cnt, sizeof *m->v) : NULL;
    if (cnt && !m->v) {
        snprintf(err, n, "out of memory");
        json_decref(j);
        return -1;
    }
    const char *subject;
    json_t *val;
    json_object_foreach(j, subject, val) {
        const char *tenant = NULL, *role = NULL;
        if (!*subject || json_unpack(val, "{s:s, s:s !}", "tenant", &tenant, "role", &role) != 0 ||
            !tenant_id_valid(tenant) || role_parse(role) < 0) {
            snprintf(err, n, "tls_client_map: the entry for '%.200s' must be {\"tenant\": "
                     "<tenant id>, \"role\": \"admin\"|\"writer\"|\"reader\"}", subject);
            json_decref(j);
            cert_map_free(m);
            return -1;
        }
        cert_identity *ci = &m->v[m->n];
        if (!(ci->subject = strdup(subject))) {
            snprintf(err, n, "out of memory");
            json_decref(j);
            cert_map_free(m);
            return -1;
        }
        snprintf(ci->tenant, sizeof ci->tenant, "%s", tenant);
        ci->role = role_parse(role);
        m->n++;
    }
    json_decref(j);
    return 0;
}

const cert_identity *cert_map_find(const cert_map *m, const char *subject)
{
    if (!subject)
        return NULL;
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->v[i].subject, subject) == 0)
            return &m->v[i];
    return NULL;
}

void cert_map_free(cert_map *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->v[i].subject);
    free(m->v);
    memset(m, 0, sizeof *m);
}
