-- template_spec.lua - fluxloop.template: blocks, escaping, raw HTML, and the file that wins.
local template = require("fluxloop.template")
local P = require("support.project")

describe("fluxloop.template", function()
  it("renders blocks of the embedded report template, escaping {{x}} and not {{{x}}}", function()
    local t = template.load("report/page")
    local html = t:render("notice", { class = "bad", kind = "k", text = "<b>&\"'" })
    assert.are.equal('<div class="notice bad" data-notice="k">&lt;b&gt;&amp;&quot;&#39;</div>', html)
    local svg = t:render("svg", { w = 1, h = 2, label = "l", id = "i", body = "<rect/>" })
    assert.truthy(svg:find(">%<rect/%></svg>$"), svg)
  end)

  it("does not substitute inside values (a value holding {{x}} stays as it is)", function()
    local t = template.load("report/page")
    assert.truthy(t:render("notice", { class = "", kind = "k", text = "{{class}}" }):find(">{{class}}<", 1, true))
  end)

  it("raises when a block or a variable is missing", function()
    local t = template.load("report/page")
    assert.has_error(function() t:render("nope", {}) end)
    assert.has_error(function() t:render("notice", { class = "" }) end, "template block 'notice' needs 'kind'")
  end)

  it("prefers a file on the Lua path", function()
    local dir = P.new()
    P.write(dir, "fluxloop/report/page.html", "<!--block notice-->MINE {{text}}<!--end notice-->\n")
    local saved = package.path
    package.path = dir .. "/?.lua;" .. package.path
    local ok, t = pcall(template.load, "report/page")
    package.path = saved
    P.remove(dir)
    assert.is_true(ok, t)
    assert.are.equal("MINE x", t:render("notice", { text = "x" }))
  end)
end)
