/* yaml.c - fuzz target for fluxloop.yaml (src/lyaml.c, src/lyamlenc.c and the plain C under
 * them): decode never raises and its errors carry name:line:col; decoding with marks gives the
 * same value and well-formed marks; decode -> encode -> decode (also with the marks' key order,
 * and through JSON) keeps the value. */
#include "fuzz.h"

static const char driver[] =
  "local yaml = require(\"fluxloop.yaml\")\n"
  "local json = require(\"fluxloop.json\")\n"
  "local F = require(\"fuzzlib\")\n"
  "local NAME = \"fuzz.yaml\"\n"
  "\n"
  "return function(data)\n"
  "  local v, err = yaml.decode(data, NAME)\n"
  "  local mv, marks = yaml.decode(data, NAME, true)\n"
  "  if v == nil then\n"
  "    F.positioned(err, NAME, \"decode\")\n"
  "    if mv ~= nil then F.fail(\"decode failed (%s) but decode with marks worked\", err) end\n"
  "    return\n"
  "  end\n"
  "  if mv == nil then\n"
  "    F.positioned(marks, NAME, \"decode with marks\")\n"
  "    if not marks:find(\"aliases expand to too many nodes\", 1, true) then\n"
  "      F.fail(\"decode worked but decode with marks failed: %s\", marks)\n"
  "    end\n"
  "  else\n"
  "    F.same(v, mv, \"decode with marks\")\n"
  "    F.check_marks(marks)\n"
  "  end\n"
  "\n"
  "  local text = yaml.encode(v)\n"
  "  local v2, err2 = yaml.decode(text, \"encoded\")\n"
  "  if v2 == nil then F.fail(\"encoded YAML does not decode: %s\\n%s\", err2, text) end\n"
  "  F.same(v, v2, \"YAML round trip\")\n"
  "  if mv ~= nil and type(v) == \"table\" then\n"
  "    local ordered = yaml.encode(v, { order = marks })\n"
  "    local v3, err3 = yaml.decode(ordered, \"ordered\")\n"
  "    if v3 == nil then F.fail(\"YAML encoded in the marks' order does not decode: %s\\n%s\", err3, ordered) end\n"
  "    F.same(v, v3, \"ordered YAML round trip\")\n"
  "  end\n"
  "\n"
  "  local jtext = json.encode(v)\n"
  "  local j, jerr = json.decode(jtext, \"encoded.json\")\n"
  "  if j == nil then F.fail(\"JSON of a YAML value does not decode: %s\\n%s\", jerr, jtext) end\n"
  "  F.same(v, j, \"YAML -> JSON\", true)\n"
  "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_run_lua(driver, "=(fuzz yaml)", data, size);
  return 0;
}
