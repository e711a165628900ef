/* inputs.c - fuzz target for the inputs loader (lua/fluxloop/inputs.lua): inputs.load never
 * raises on bad files, its errors name file:line:col (or say no inputs were found), every
 * entry it returns has an input, and what a run does with an entry (metadata, persona, the
 * JSON of a trace) works on it. */
#include "fuzz.h"

static const char driver[] =
  "local inputs = require(\"fluxloop.inputs\")\n"
  "local json = require(\"fluxloop.json\")\n"
  "local F = require(\"fuzzlib\")\n"
  "\n"
  "local NAME = \"inputs/generated.yaml\"\n"
  "local NONE = { \"^inputs/generated%.yaml: no inputs found %(expected a list under generated_inputs:, inputs:, or a top%-level list%)$\" }\n"
  "\n"
  "return function(data, tmp)\n"
  "  local path = tmp .. \"/generated.yaml\"\n"
  "  local f = assert(io.open(path, \"wb\"))\n"
  "  assert(f:write(data))\n"
  "  assert(f:close())\n"
  "\n"
  "  local list, err = inputs.load(path, NAME)\n"
  "  if list == nil then\n"
  "    F.positioned(err, NAME, \"inputs.load\", NONE)\n"
  "    return\n"
  "  end\n"
  "  if type(list) ~= \"table\" or #list == 0 then F.fail(\"inputs.load returned %s\", tostring(list)) end\n"
  "  for i, e in ipairs(list) do\n"
  "    if type(e) ~= \"table\" or e.input == nil or e.input == F.null then F.fail(\"entry %d has no input\", i) end\n"
  "    local meta = inputs.metadata_of(e)\n"
  "    local persona = inputs.persona_of(e)\n"
  "    if type(meta) ~= \"table\" then F.fail(\"metadata_of(entry %d) is a %s\", i, type(meta)) end\n"
  "    if persona ~= nil and type(persona) ~= \"string\" then F.fail(\"persona_of(entry %d) is a %s\", i, type(persona)) end\n"
  "    local text = json.encode({ input = e.input, persona = persona, metadata = meta, entry = e })\n"
  "    if json.decode(text) == nil then F.fail(\"the JSON of entry %d does not decode\", i) end\n"
  "  end\n"
  "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_run_lua(driver, "=(fuzz inputs)", data, size);
  return 0;
}
