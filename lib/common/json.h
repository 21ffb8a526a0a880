/*
 * json.h - is this text JSON that other tools will read?  The check
 * behind akidb_insert's promise that stored metadata is JSON (jansson
 * parses it; nothing is kept).
 */
#ifndef AKIDB_JSON_H
#define AKIDB_JSON_H

#include <stddef.h>

/* 1 when s[0..len) is one JSON text (RFC 8259, any value) that AkiDB
 * accepts: valid UTF-8, objects without duplicate member names, numbers
 * within the range of a double, nesting at most 2048 deep.  Otherwise 0,
 * with jansson's reason in why (NUL-terminated, truncated to why_len) and
 * the byte offset it refers to in *at.  Thread safe; allocates with
 * malloc (jansson's), never through a handle's allocator. */
int akidb__json_valid(const char *s, size_t len, char *why, size_t why_len, size_t *at);

#endif
