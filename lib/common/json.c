/*
 * json.c - the JSON check for metadata on its way in (akidb_insert,
 * akidb_upsert, and the importer through them).
 *
 * Why check at all: metadata is exported into Parquet columns annotated
 * JSON, and DuckDB, pandas and Spark refuse a whole file when one value
 * is not JSON.  Checking once on the way in keeps every later export and
 * snapshot readable; data stored before this check existed is loaded as
 * it is (see akidb.h at akidb_insert).
 *
 * jansson does the parsing (the tree is thrown away at once).  Its flags:
 * any value at top level (RFC 8259), \u0000 inside strings allowed (it is
 * valid JSON; the C API's strings just cannot hold a raw NUL), integers
 * beyond 64 bits read as doubles instead of refused, and duplicate member
 * names refused: RFC 8259 leaves their meaning to the reader, so two tools
 * would read two different documents.  jansson also refuses invalid UTF-8,
 * lone surrogate escapes, numbers beyond a double and nesting deeper than
 * 2048 (its parser's own limit, which keeps its recursion bounded).
 */
#include <jansson.h>
#include <stdio.h>

#include "common/json.h"

int akidb__json_valid(const char *s, size_t len, char *why, size_t why_len, size_t *at)
{
    json_error_t err;
    json_t *j = json_loadb(s, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL |
                           JSON_DECODE_INT_AS_REAL, &err);
    if (j) {
        json_decref(j);
        return 1;
    }
    if (why && why_len)
        snprintf(why, why_len, "%s", err.text);
    if (at)
        *at = err.position > 0 ? (size_t)err.position : 0;
    return 0;
}
