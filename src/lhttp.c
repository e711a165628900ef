/* lhttp.c - the fluxloop.http module: http.request, post_json, get and the response object,
 * over src/http.c. A request made inside a run is recorded as an observation of that run by
 * the Lua module fluxloop.httplog (policy: what is kept, what is masked). */
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "guard.h"
#include "http.h"
#include "lconv.h"

#define CLIENT_MT "fluxloop.http.Client"
#define RESPONSE_MT "fluxloop.http.Response"
#define CLIENT_KEY "fluxloop.http.client"
/* Set by fluxloop.recorder: a weak table whose [1] is the recorder of this state's runs. */
#define RECORDER_KEY "fluxloop.recorder.current"
#define MAX_HEADERS 200

/* One per Lua state (a worker): the connection cache and the request's JSON body. */
typedef struct lclient {
  http_client *c;
  buf_t json;
  int busy;
} lclient;

/* Stack slots of http.request, fixed so that callbacks run in the middle of it can find
 * what they need. */
enum { S_OPTS = 1, S_ERR, S_CHUNK, S_EVENT, S_HOLD, S_REC, S_SLOT, S_URL, S_BODY, S_TOP = S_BODY };

/* What the callbacks of one request share. */
typedef struct call {
  lua_State *L;
  guard_state *g;
  int failed; /* a callback raised: its error is in S_ERR */
} call_t;

static int client_gc(lua_State *L) {
  lclient *lc = luaL_checkudata(L, 1, CLIENT_MT);
  http_client_free(lc->c);
  lc->c = NULL;
  buf_free(&lc->json);
  return 0;
}

static lclient *get_client(lua_State *L) {
  lclient *lc;
  if (lua_getfield(L, LUA_REGISTRYINDEX, CLIENT_KEY) == LUA_TUSERDATA) {
    lc = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return lc;
  }
  lua_pop(L, 1);
  lc = lua_newuserdatauv(L, sizeof *lc, 0);
  memset(lc, 0, sizeof *lc);
  buf_init(&lc->json);
  luaL_setmetatable(L, CLIENT_MT);
  {
    char why[320];
    lc->c = http_client_new(why, sizeof why);
    if (lc->c == NULL) luaL_error(L, "fluxloop.http: %s", why);
  }
  lua_setfield(L, LUA_REGISTRYINDEX, CLIENT_KEY);
  return lc;
}

/* ---- callbacks (called by libcurl, in the middle of http.request) ----------- */

static int cancel_cb(void *ud, int64_t now) {
  call_t *k = ud;
  int64_t stop;
  if (k->g && k->g->armed) return guard_expired(k->g, now);
  stop = guard_interrupt_deadline();
  return stop && now >= stop ? GUARD_INTERRUPT : 0;
}

/* After a callback's lua_pcall: keeps its error, or reads `false` as "stop". */
static int callback_done(call_t *k, int status) {
  lua_State *L = k->L;
  int stop;
  if (status != LUA_OK) {
    lua_replace(L, S_ERR);
    k->failed = 1;
    return -1;
  }
  stop = lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1);
  lua_pop(L, 1);
  return stop ? 1 : 0;
}

static int chunk_cb(void *ud, const char *data, size_t n) {
  call_t *k = ud;
  lua_State *L = k->L;
  lua_pushvalue(L, S_CHUNK);
  lua_pushlstring(L, data, n);
  return callback_done(k, lua_pcall(L, 1, 1, 0));
}

static int event_cb(void *ud, const char *event, const char *data, size_t n, const char *id) {
  call_t *k = ud;
  lua_State *L = k->L;
  lua_pushvalue(L, S_EVENT);
  lua_pushlstring(L, data, n);
  lua_pushstring(L, event);
  lua_pushstring(L, id);
  return callback_done(k, lua_pcall(L, 3, 1, 0));
}

/* Whether a header is secret, by fluxloop.secrets' rule (the masker's): asked only when a
 * redirect leads to another origin. Any failure (the guard making Lua raise after the run's
 * time limit) counts as secret: the header stays behind. */
static int secret_cb(void *ud, const char *name, size_t n) {
  call_t *k = ud;
  lua_State *L = k->L;
  int top = lua_gettop(L), secret = 1;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "fluxloop.secrets");
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1) &&
      lua_getfield(L, -1, "is_secret_key") == LUA_TFUNCTION) {
    lua_pushlstring(L, name, n);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK) secret = lua_toboolean(L, -1);
  }
  lua_settop(L, top);
  return secret;
}

/* ---- reading the options ------------------------------------------------------ */

static lua_Integer opt_int(lua_State *L, const char *key, lua_Integer def, lua_Integer min, lua_Integer max) {
  int isnum;
  lua_Integer v;
  if (lua_getfield(L, S_OPTS, key) == LUA_TNIL) { lua_pop(L, 1); return def; }
  v = lua_tointegerx(L, -1, &isnum);
  if (!isnum || v < min || v > max)
    luaL_error(L, "http.request: %s must be an integer from %I to %I", key, min, max);
  lua_pop(L, 1);
  return v;
}

static int opt_function(lua_State *L, const char *key, int slot) {
  int t = lua_getfield(L, S_OPTS, key);
  if (t != LUA_TNIL && t != LUA_TFUNCTION) luaL_error(L, "http.request: %s must be a function", key);
  lua_replace(L, slot);
  return t == LUA_TFUNCTION;
}

/* A header name or value must not carry a line break (it would start another header). */
static void check_header_text(lua_State *L, const char *s, size_t n) {
  if (memchr(s, '\r', n) || memchr(s, '\n', n) || memchr(s, '\0', n))
    luaL_error(L, "http.request: a header holds a line break or NUL: '%s'", s);
}

/* Builds the "Name: value" lines in the holder table (S_HOLD keeps them alive) and their
 * pointers in out; returns how many. *has_type: a Content-Type was given. */
static int read_headers(lua_State *L, const char **out, int *has_type) {
  int n = 0;
  *has_type = 0;
  if (lua_getfield(L, S_OPTS, "headers") == LUA_TNIL) { lua_pop(L, 1); return 0; }
  if (!lua_istable(L, -1)) luaL_error(L, "http.request: headers must be a table (name = value, or \"Name: value\" lines)");
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) { /* stack: headers, key, value */
    size_t nl, vl;
    const char *name, *value;
    if (n >= MAX_HEADERS) luaL_error(L, "http.request: more than %d headers", MAX_HEADERS);
    if (lua_type(L, -2) == LUA_TNUMBER ? lua_type(L, -1) != LUA_TSTRING : !lua_isstring(L, -1))
      luaL_error(L, "http.request: header values must be strings or numbers (a list holds \"Name: value\" strings)");
    value = lua_tolstring(L, -1, &vl);
    if (lua_type(L, -2) == LUA_TNUMBER) { /* a "Name: value" line */
      const char *colon = memchr(value, ':', vl);
      if (colon == NULL || colon == value) luaL_error(L, "http.request: header line '%s' is not 'Name: value'", value);
      check_header_text(L, value, vl);
      lua_pushvalue(L, -1);
      nl = (size_t)(colon - value);
      name = value;
    } else if (lua_type(L, -2) == LUA_TSTRING) {
      name = lua_tolstring(L, -2, &nl);
      if (nl == 0 || memchr(name, ':', nl)) luaL_error(L, "http.request: bad header name '%s'", name);
      check_header_text(L, name, nl);
      check_header_text(L, value, vl);
      lua_pushfstring(L, "%s: %s", name, value);
    } else {
      return luaL_error(L, "http.request: header names must be strings");
    }
    if (nl == 12 && strncasecmp(name, "content-type", 12) == 0) *has_type = 1;
    out[n++] = lua_tostring(L, -1);
    lua_rawseti(L, S_HOLD, n);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return n;
}

/* "POST http://host:port/path": the URL without credentials, query or fragment, for
 * messages (a query may hold a key). */
static void push_target(lua_State *L, const char *method, const char *url) {
  const char *scheme = strstr(url, "://"), *start = url, *end;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, method);
  luaL_addchar(&b, ' ');
  if (scheme) {
    const char *host = scheme + 3, *at = NULL, *p;
    for (p = host; *p && *p != '/' && *p != '?' && *p != '#'; p++) if (*p == '@') at = p;
    luaL_addlstring(&b, url, (size_t)(host - url));
    start = at ? at + 1 : host;
  }
  end = start + strcspn(start, "?#");
  luaL_addlstring(&b, start, (size_t)(end - start));
  luaL_pushresult(&b);
}

/* ---- the response ------------------------------------------------------------ */

static void set_ms(lua_State *L, const char *key, int64_t ns) {
  if (ns < 0) return;
  lua_pushnumber(L, (lua_Number)ns / 1e6);
  lua_setfield(L, -2, key);
}

static void set_int(lua_State *L, const char *key, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, key);
}

/* Header lines -> { lower-case name = value }; a repeated header's values are joined by ", ". */
static void push_headers(lua_State *L, const buf_t *h) {
  const char *p = h->data, *end = p + h->len;
  lua_createtable(L, 0, 8);
  while (p && p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p)), *line_end = eol ? eol : end, *colon, *v;
    size_t vl;
    colon = memchr(p, ':', (size_t)(line_end - p));
    if (colon && colon > p) {
      luaL_Buffer name;
      luaL_buffinit(L, &name);
      for (const char *q = p; q < colon; q++) luaL_addchar(&name, (char)((*q >= 'A' && *q <= 'Z') ? *q + 32 : *q));
      luaL_pushresult(&name);
      v = colon + 1;
      while (v < line_end && (*v == ' ' || *v == '\t')) v++;
      vl = (size_t)(line_end - v);
      while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == ' ')) vl--;
      lua_pushvalue(L, -1);
      if (lua_rawget(L, -3) == LUA_TSTRING) {
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, v, vl);
        lua_concat(L, 3);
      } else {
        lua_pop(L, 1);
        lua_pushlstring(L, v, vl);
      }
      lua_rawset(L, -3);
    }
    p = eol ? eol + 1 : end;
  }
}

/* Pushes the response table: status, ok, headers, body and the facts of the request. On a
 * failure (no response) it is pushed too, for the observation, with status 0. */
static void push_response(lua_State *L, const http_result *res) {
  lua_createtable(L, 0, 20);
  set_int(L, "status", res->error == HTTP_OK ? res->status : 0);
  lua_pushboolean(L, res->error == HTTP_OK && res->status >= 200 && res->status < 300);
  lua_setfield(L, -2, "ok");
  lua_pushlstring(L, res->body.len ? res->body.data : "", res->body.len);
  lua_setfield(L, -2, "body");
  push_headers(L, &res->headers);
  lua_setfield(L, -2, "headers");
  set_int(L, "attempts", res->attempts);
  lua_pushboolean(L, res->attempts > 1);
  lua_setfield(L, -2, "retried");
  set_ms(L, "duration_ms", res->duration_ns);
  set_ms(L, "ttfb_ms", res->ttfb_ns);
  set_ms(L, "first_event_ms", res->first_event_ns);
  set_ms(L, "rate_wait_ms", res->rate_wait_ns);
  set_int(L, "bytes_sent", res->bytes_sent);
  set_int(L, "bytes_received", res->bytes_received);
  if (res->event_stream) set_int(L, "events", res->events);
  if (res->stopped) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "stopped");
  }
  if (res->effective_url[0]) {
    lua_pushstring(L, res->effective_url);
    lua_setfield(L, -2, "url");
  }
  if (res->usage.len) {
    lua_pushlstring(L, res->usage.data, res->usage.len);
    lua_setfield(L, -2, "last_usage_event");
  }
  if (res->error == HTTP_OK && res->message[0]) { /* why a retryable answer was not retried */
    lua_pushstring(L, res->message);
    lua_setfield(L, -2, "note");
  }
  lua_createtable(L, res->attempts, 0);
  for (int i = 0; i < res->attempts; i++) {
    const http_attempt *a = &res->log[i];
    lua_createtable(L, 0, 4);
    if (a->status) set_int(L, "status", a->status);
    if (a->error) {
      lua_pushstring(L, http_error_code(a->error));
      lua_setfield(L, -2, "error");
    }
    set_int(L, "wait_ms", a->wait_ms);
    set_ms(L, "duration_ms", a->duration_ns);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "attempt_log");
  luaL_setmetatable(L, RESPONSE_MT);
}

/* res:json() -> value | nil, message, "EJSON" (decoded from the body). */
static int response_json(lua_State *L) {
  size_t n;
  const char *body;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "body");
  body = luaL_checklstring(L, -1, &n);
  if (lconv_decode_json(L, body, n, "response") != 0) {
    const char *why = lua_tostring(L, -1);
    int status;
    lua_getfield(L, 1, "status");
    status = (int)lua_tointeger(L, -1);
    luaL_pushfail(L);
    lua_pushfstring(L, "the response (HTTP %d, %d bytes) is not valid JSON: %s", status, (int)n, why);
    lua_pushliteral(L, "EJSON");
    return 3;
  }
  return 1;
}

/* ---- recording ---------------------------------------------------------------- */

/* Calls fluxloop.httplog's function `name` with n arguments on the stack; leaves nres. */
static void call_httplog(lua_State *L, const char *name, int n, int nres) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "fluxloop.httplog");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
  lua_insert(L, -(n + 1));
  lua_call(L, n, nres);
}

/* Puts the run's recorder in S_REC when this request is made inside a run (an agent call
 * under fluxloop.guard) and observe is not false, then opens its observation (S_SLOT). */
static void open_observation(lua_State *L, guard_state *g, const char *method) {
  if (g == NULL || !g->armed) return;
  lua_getfield(L, S_OPTS, "observe");
  if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) { lua_pop(L, 1); return; }
  lua_pop(L, 1);
  if (lua_getfield(L, LUA_REGISTRYINDEX, RECORDER_KEY) != LUA_TTABLE) { lua_pop(L, 1); return; }
  lua_rawgeti(L, -1, 1);
  lua_remove(L, -2);
  if (lua_isnil(L, -1)) { lua_pop(L, 1); return; }
  lua_replace(L, S_REC);
  lua_pushvalue(L, S_REC);
  lua_pushvalue(L, S_OPTS);
  lua_pushstring(L, method);
  call_httplog(L, "open", 3, 1);
  lua_replace(L, S_SLOT);
}

/* Closes the observation with only an error (after a cancel or a callback's raise): no Lua
 * runs here, since the guard may be making every Lua instruction raise. */
static void close_observation_error(lua_State *L, const char *why) {
  if (lua_isnil(L, S_REC) || lua_isnil(L, S_SLOT)) return;
  lua_getfield(L, S_REC, "span_close");
  lua_pushvalue(L, S_REC);
  lua_pushvalue(L, S_SLOT);
  lua_pushnil(L);
  lua_pushstring(L, why);
  lua_pcall(L, 4, 0, 0);
  lua_settop(L, S_TOP + 1); /* the response stays on top */
}

/* ---- http.request ------------------------------------------------------------- */

static void upper_method(lua_State *L, char *out, size_t size, int has_body) {
  size_t n = 0;
  const char *m;
  if (lua_getfield(L, S_OPTS, "method") == LUA_TNIL) {
    lua_pop(L, 1);
    strcpy(out, has_body ? "POST" : "GET");
    return;
  }
  m = lua_tolstring(L, -1, &n);
  if (m == NULL || n == 0 || n >= size) luaL_error(L, "http.request: method must be a string such as \"POST\"");
  for (size_t i = 0; i < n; i++) {
    char ch = m[i];
    if (ch >= 'a' && ch <= 'z') ch = (char)(ch - 32);
    if (ch < 'A' || ch > 'Z') luaL_error(L, "http.request: method '%s' is not a word such as \"POST\"", m);
    out[i] = ch;
  }
  out[n] = '\0';
  lua_pop(L, 1);
}

/* request{url=, method=, headers=, body= | json=, timeout_ms=, retries=, on_chunk=, on_event=,
 *         observe=, ...} -> response | nil, message, code */
static int http_request_lua(lua_State *L) {
  lclient *lc;
  http_request req;
  const char *headers[MAX_HEADERS + 3];
  char method[32];
  call_t k;
  guard_state *g = *(guard_state **)lua_getextraspace(L);
  int nh, has_type, has_body, rc;
  http_result *res;

  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_settop(L, S_TOP);
  luaL_checkstack(L, 40, "http.request");
  lc = get_client(L);
  lua_createtable(L, 4, 0);
  lua_replace(L, S_HOLD);
  memset(&req, 0, sizeof req);

  if (lua_getfield(L, S_OPTS, "url") != LUA_TSTRING) luaL_error(L, "http.request: url must be a string");
  lua_replace(L, S_URL);
  req.url = lua_tostring(L, S_URL);

  buf_reset(&lc->json);
  lua_getfield(L, S_OPTS, "json");
  lua_getfield(L, S_OPTS, "body");
  if (!lua_isnil(L, -2) && !lua_isnil(L, -1)) luaL_error(L, "http.request: give body or json, not both");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "http.request: body must be a string (or give json = value)");
    lua_replace(L, S_BODY);
    lua_pop(L, 1);
    req.body = lua_tolstring(L, S_BODY, &req.body_len);
  } else {
    lua_pop(L, 1);
    if (!lua_isnil(L, -1)) {
      if (lconv_encode_json(L, lua_gettop(L), &lc->json, -1) != 0)
        luaL_error(L, "http.request: json cannot be encoded: %s", lua_tostring(L, -1));
      if (lc->json.failed) luaL_error(L, "http.request: not enough memory for the json body");
      req.body = lc->json.len ? lc->json.data : "";
      req.body_len = lc->json.len;
    }
    lua_pop(L, 1);
  }
  has_body = req.body != NULL;
  upper_method(L, method, sizeof method, has_body);
  req.method = method;

  nh = read_headers(L, headers, &has_type);
  if (lc->json.len && !has_type) headers[nh++] = "Content-Type: application/json";
  headers[nh] = NULL;
  req.headers = headers;

  req.timeout_ms = (long)opt_int(L, "timeout_ms", 0, 0, 2147483647);
  req.connect_timeout_ms = (long)opt_int(L, "connect_timeout_ms", 30000, 0, 2147483647);
  req.retries = (int)opt_int(L, "retries", 3, 0, HTTP_MAX_ATTEMPTS - 1);
  req.backoff_ms = opt_int(L, "backoff_ms", 500, 0, 3600000);
  req.max_backoff_ms = opt_int(L, "max_backoff_ms", 8000, 0, 3600000);
  req.max_retry_after_ms = opt_int(L, "max_retry_after_ms", 60000, 0, 86400000);
  req.max_body = (size_t)opt_int(L, "max_body", HTTP_DEFAULT_MAX_BODY, 1, (lua_Integer)1 << 40);
  req.max_redirects = (int)opt_int(L, "max_redirects", 10, 0, 100);
  lua_getfield(L, S_OPTS, "follow_redirects");
  req.follow_redirects = lua_isnil(L, -1) || lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (opt_function(L, "on_chunk", S_CHUNK)) req.on_chunk = chunk_cb;
  if (opt_function(L, "on_event", S_EVENT)) req.on_event = event_cb;
  if (g && g->armed && g->deadline) req.deadline_ns = g->deadline;
  k.L = L;
  k.g = g;
  k.failed = 0;
  req.cancel = cancel_cb;
  req.is_secret = secret_cb;
  req.ud = &k;

  open_observation(L, g, method);

  if (lc->busy) luaL_error(L, "http.request: this worker is in the middle of a request (called from on_chunk or "
                              "on_event?); make the next request after this one returns");
  lc->busy = 1;
  rc = http_perform(lc->c, &req);
  lc->busy = 0;
  res = http_client_result(lc->c);
  push_response(L, res); /* S_TOP + 1 */

  if (k.failed) { /* a callback raised: the run goes on with its error, unchanged */
    close_observation_error(L, "a callback raised an error");
    lua_pushvalue(L, S_ERR);
    return lua_error(L);
  }
  if (rc != 0 && res->error == HTTP_ECANCELED && g && g->armed && res->cancelled) {
    g->fired = res->cancelled;
    close_observation_error(L, res->cancelled == GUARD_TIMEOUT ? "the run's time limit passed during the request"
                                                               : "interrupted");
    return luaL_error(L, "%s", res->cancelled == GUARD_TIMEOUT ? "run timed out" : "run interrupted");
  }
  if (rc != 0) {
    push_target(L, method, req.url);
    if (res->attempts > 1) lua_pushfstring(L, "%s: %s (%d attempts)", lua_tostring(L, -1), res->message, res->attempts);
    else lua_pushfstring(L, "%s: %s", lua_tostring(L, -1), res->message);
    lua_remove(L, -2); /* stack: response, message */
  }
  if (!lua_isnil(L, S_REC) && !lua_isnil(L, S_SLOT)) {
    lua_pushvalue(L, S_REC);
    lua_pushvalue(L, S_SLOT);
    lua_pushvalue(L, S_OPTS);
    lua_pushvalue(L, S_TOP + 1);
    if (rc != 0) {
      lua_pushvalue(L, S_TOP + 2);
      lua_pushstring(L, http_error_code(res->error));
    } else {
      lua_pushnil(L);
      lua_pushnil(L);
    }
    call_httplog(L, "close", 6, 0);
  }
  if (rc == 0) {
    lua_settop(L, S_TOP + 1);
    return 1;
  }
  luaL_pushfail(L);
  lua_pushvalue(L, S_TOP + 2);
  lua_pushstring(L, http_error_code(res->error));
  return 3;
}

/* Copies the options table at idx (or none) into a new table on top, for post_json / get. */
static void copy_opts(lua_State *L, int idx) {
  lua_createtable(L, 0, 8);
  if (lua_isnoneornil(L, idx)) return;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
}

/* post_json(url, value [, opts]) -> response | nil, message, code */
static int http_post_json(lua_State *L) {
  luaL_checkstring(L, 1);
  luaL_checkany(L, 2);
  copy_opts(L, 3);
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "url");
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "json");
  lua_pushnil(L);
  lua_setfield(L, -2, "body");
  if (lua_getfield(L, -1, "method") == LUA_TNIL) {
    lua_pushliteral(L, "POST");
    lua_setfield(L, -3, "method");
  }
  lua_pop(L, 1);
  lua_replace(L, 1);
  lua_settop(L, 1);
  return http_request_lua(L);
}

/* get(url [, opts]) -> response | nil, message, code */
static int http_get(lua_State *L) {
  luaL_checkstring(L, 1);
  copy_opts(L, 2);
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "url");
  lua_pushliteral(L, "GET");
  lua_setfield(L, -2, "method");
  lua_replace(L, 1);
  lua_settop(L, 1);
  return http_request_lua(L);
}

/* check_url(url) -> true | nil, reason */
static int http_check_url_lua(lua_State *L) {
  char why[200];
  if (http_check_url(luaL_checkstring(L, 1), why, sizeof why) == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  luaL_pushfail(L);
  lua_pushstring(L, why);
  return 2;
}

/* version() -> libcurl's version line */
static int http_version_lua(lua_State *L) {
  lua_pushstring(L, http_version());
  return 1;
}

static const luaL_Reg http_funcs[] = {
  { "request", http_request_lua },
  { "post_json", http_post_json },
  { "get", http_get },
  { "check_url", http_check_url_lua },
  { "version", http_version_lua },
  { NULL, NULL }
};

static const luaL_Reg response_methods[] = {
  { "json", response_json },
  { NULL, NULL }
};

int luaopen_fluxloop_http(lua_State *L); /* the module's only export */
int luaopen_fluxloop_http(lua_State *L) {
  if (luaL_newmetatable(L, CLIENT_MT)) {
    lua_pushcfunction(L, client_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, RESPONSE_MT)) {
    luaL_newlib(L, response_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, http_funcs);
  luaL_getmetatable(L, RESPONSE_MT);
  lua_setfield(L, -2, "Response");
  return 1;
}
