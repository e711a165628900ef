/* ffisig.c - type names of fluxloop.ffi and the parser of "int add(int, int)" declarations. */
#include "ffisig.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static const char *const type_names[FFISIG_NTYPES] = {
  "void", "int", "uint", "long", "ulong", "int64", "uint64", "size_t", "double", "float", "string", "pointer"
};

/* C spellings after normalize(): one space between words, none around '*', no "const". */
static const struct { const char *name; ffisig_type type; } aliases[] = {
  { "int32", FFISIG_INT }, { "int32_t", FFISIG_INT }, { "signed", FFISIG_INT }, { "signed int", FFISIG_INT },
  { "unsigned", FFISIG_UINT }, { "unsigned int", FFISIG_UINT }, { "uint32", FFISIG_UINT },
  { "uint32_t", FFISIG_UINT }, { "long int", FFISIG_LONG }, { "signed long", FFISIG_LONG },
  { "unsigned long", FFISIG_ULONG }, { "int64_t", FFISIG_INT64 }, { "long long", FFISIG_INT64 },
  { "uint64_t", FFISIG_UINT64 }, { "unsigned long long", FFISIG_UINT64 }, { "char*", FFISIG_STRING },
  { "void*", FFISIG_POINTER },
};

const char *ffisig_type_name(ffisig_type t) {
  return (unsigned)t < FFISIG_NTYPES ? type_names[t] : "?";
}

const char *ffisig_type_list(void) {
  return "void, int, uint, long, ulong, int64, uint64, size_t, double, float, string, pointer";
}

ffi_type *ffisig_ffi_type(ffisig_type t) {
  switch (t) {
  case FFISIG_VOID: return &ffi_type_void;
  case FFISIG_INT: return &ffi_type_sint;
  case FFISIG_UINT: return &ffi_type_uint;
  case FFISIG_LONG: return &ffi_type_slong;
  case FFISIG_ULONG: return &ffi_type_ulong;
  case FFISIG_INT64: return &ffi_type_sint64;
  case FFISIG_UINT64: return &ffi_type_uint64;
  case FFISIG_SIZE: return sizeof(size_t) == 8 ? &ffi_type_uint64 : &ffi_type_uint32;
  case FFISIG_DOUBLE: return &ffi_type_double;
  case FFISIG_FLOAT: return &ffi_type_float;
  case FFISIG_STRING:
  case FFISIG_POINTER:
  case FFISIG_NTYPES: break;
  }
  return &ffi_type_pointer;
}

/* Writes the canonical spelling of s[0..len) into out: words separated by one space,
 * no space around '*', "const" dropped. Returns its length, or -1 if it does not fit. */
static int normalize(const char *s, size_t len, char *out, size_t size) {
  size_t n = 0, i = 0;
  while (i < len) {
    if (isspace((unsigned char)s[i])) { i++; continue; }
    if (s[i] == '*') {
      if (n > 0 && out[n - 1] == ' ') n--;
      if (n + 1 >= size) return -1;
      out[n++] = '*';
      i++;
      continue;
    }
    size_t start = i;
    while (i < len && !isspace((unsigned char)s[i]) && s[i] != '*') i++;
    if (i - start == 5 && memcmp(s + start, "const", 5) == 0) continue;
    if (n > 0 && out[n - 1] != '*' && n + 1 < size) out[n++] = ' ';
    if (n + (i - start) >= size) return -1;
    memcpy(out + n, s + start, i - start);
    n += i - start;
  }
  out[n] = '\0';
  return (int)n;
}

static int lookup_canonical(const char *c) {
  size_t n = strlen(c);
  for (int t = 0; t < FFISIG_NTYPES; t++)
    if (strcmp(c, type_names[t]) == 0) return t;
  for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
    if (strcmp(c, aliases[i].name) == 0) return (int)aliases[i].type;
  if (n > 1 && c[n - 1] == '*') return FFISIG_POINTER; /* struct x *, char **, ... */
  return -1;
}

int ffisig_lookup(const char *name, size_t len) {
  char c[96];
  if (normalize(name, len, c, sizeof c) <= 0) return -1;
  return lookup_canonical(c);
}

static int is_ident(char ch) {
  return isalnum((unsigned char)ch) || ch == '_';
}

/* A parameter: a type, optionally followed by a name ("const char *s", "int n"). */
static int param_type(const char *s, size_t len) {
  char c[96];
  int n = normalize(s, len, c, sizeof c), t;
  if (n <= 0) return -1;
  t = lookup_canonical(c);
  if (t >= 0) return t;
  while (n > 0 && is_ident(c[n - 1])) n--; /* drop the parameter name */
  if (n > 0 && c[n - 1] == ' ') n--;
  if (n == 0) return -1;
  c[n] = '\0';
  return lookup_canonical(c);
}

static const char *skip_space(const char *p, const char *end) {
  while (p < end && isspace((unsigned char)*p)) p++;
  return p;
}

int ffisig_parse(const char *decl, ffisig *out, char *err, size_t err_size) {
  const char *end = decl + strlen(decl), *open = strchr(decl, '('), *close, *name, *p;
  int t;
  memset(out, 0, sizeof *out);
  while (end > decl && (isspace((unsigned char)end[-1]) || end[-1] == ';')) end--;
  close = end > decl ? end - 1 : decl;
  if (open == NULL || *close != ')' || close < open) {
    snprintf(err, err_size, "expected a declaration like \"int add(int, int)\", got \"%s\"", decl);
    return -1;
  }
  /* The name is the identifier just before '('; the return type is what precedes it. */
  name = open;
  while (name > decl && isspace((unsigned char)name[-1])) name--;
  p = name;
  while (name > decl && is_ident(name[-1])) name--;
  if (name == p || (size_t)(p - name) >= FFISIG_NAME_MAX || isdigit((unsigned char)*name)) {
    snprintf(err, err_size, "no function name before '(' in \"%s\"", decl);
    return -1;
  }
  memcpy(out->name, name, (size_t)(p - name));
  t = ffisig_lookup(decl, (size_t)(name - decl));
  if (t < 0) {
    snprintf(err, err_size, "unknown return type '%.*s' in \"%s\" (known: %s)", (int)(name - decl), decl, decl,
             ffisig_type_list());
    return -1;
  }
  out->ret = (ffisig_type)t;
  /* Arguments: comma-separated; "()" and "(void)" take none. */
  p = skip_space(open + 1, close);
  if (p == close) return 0;
  for (;;) {
    const char *comma = memchr(p, ',', (size_t)(close - p)), *stop = comma ? comma : close;
    if (ffisig_lookup(p, (size_t)(stop - p)) == FFISIG_VOID && out->nargs == 0 && comma == NULL) return 0;
    if (stop - p >= 3 && memcmp(skip_space(p, stop), "...", 3) == 0) {
      snprintf(err, err_size, "variadic functions are not supported: \"%s\"", decl);
      return -1;
    }
    if (out->nargs == FFISIG_MAX_ARGS) {
      snprintf(err, err_size, "more than %d arguments in \"%s\"", FFISIG_MAX_ARGS, decl);
      return -1;
    }
    t = param_type(p, (size_t)(stop - p));
    if (t < 0 || t == FFISIG_VOID) {
      const char *a = skip_space(p, stop), *b = stop;
      while (b > a && isspace((unsigned char)b[-1])) b--;
      snprintf(err, err_size, "%s type '%.*s' for argument %d in \"%s\" (known: %s)",
               t == FFISIG_VOID ? "invalid" : "unknown", (int)(b - a), a, out->nargs + 1, decl, ffisig_type_list());
      return -1;
    }
    out->args[out->nargs++] = (ffisig_type)t;
    if (comma == NULL) break;
    p = comma + 1;
  }
  return 0;
}

void ffisig_format(const ffisig *sig, char *out, size_t size) {
  int n = snprintf(out, size, "%s %s(", ffisig_type_name(sig->ret), sig->name);
  for (int i = 0; i < sig->nargs && n > 0 && (size_t)n < size; i++)
    n += snprintf(out + n, size - (size_t)n, "%s%s", i ? ", " : "", ffisig_type_name(sig->args[i]));
  if (n > 0 && (size_t)n < size) snprintf(out + n, size - (size_t)n, ")");
}
