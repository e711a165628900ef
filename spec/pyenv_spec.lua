-- fluxloop.pyenv: the interpreter behind a pyenv shim, by pyenv's rules, without running it.
local pyenv = require("fluxloop.pyenv")
local P = require("support.project")

-- A pyenv root in a temporary folder: shims/python3 (a shim script that must never run),
-- versions/3.11.0 and versions/3.12.1 each with bin/python3, and a "system" python3 in bin/.
local function fake_root()
  local dir = P.new()
  local function exe(rel, text)
    P.write(dir, rel, text or "#!/bin/sh\nexit 0\n")
    os.execute("chmod +x " .. P.quote(dir .. "/" .. rel))
  end
  exe("root/shims/python3", ('#!/usr/bin/env bash\nset -e\nexport PYENV_ROOT="%s/root"\n'
    .. 'exec "%s/root/libexec/pyenv" exec "$program" "$@"\n'):format(dir, dir))
  exe("root/versions/3.11.0/bin/python3")
  exe("root/versions/3.12.1/bin/python3")
  os.execute("mkdir -p " .. P.quote(dir .. "/root/versions/2.7.18/bin"))
  exe("bin/python3")
  P.write(dir, "root/version", "3.11.0\n")
  return dir
end

local function env_of(t) return function(name) return t[name] end end

describe("fluxloop.pyenv", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("gives the global version's interpreter, past the shim", function()
    dir = fake_root()
    local env = env_of({ PATH = dir .. "/root/shims:" .. dir .. "/bin" })
    assert.are.equal(dir .. "/root/versions/3.11.0/bin/python3", pyenv.resolve("python3", dir, env))
  end)

  it("takes .python-version from the folder or a parent, and PYENV_VERSION over both", function()
    dir = fake_root()
    P.write(dir, "project/.python-version", "# pinned\n3.12.1\n")
    os.execute("mkdir -p " .. P.quote(dir .. "/project/sub"))
    local env = { PATH = dir .. "/root/shims:" .. dir .. "/bin" }
    assert.are.equal(dir .. "/root/versions/3.12.1/bin/python3", pyenv.resolve("python3", dir .. "/project/sub", env_of(env)))
    env.PYENV_VERSION = "3.11.0"
    assert.are.equal(dir .. "/root/versions/3.11.0/bin/python3", pyenv.resolve("python3", dir .. "/project/sub", env_of(env)))
  end)

  it("takes the first version that has the program, and system from PATH past the shims", function()
    dir = fake_root()
    local env = { PATH = dir .. "/root/shims:" .. dir .. "/bin", PYENV_VERSION = "2.7.18:3.12.1" }
    assert.are.equal(dir .. "/root/versions/3.12.1/bin/python3", pyenv.resolve("python3", dir, env_of(env)))
    env.PYENV_VERSION = "system"
    assert.are.equal(dir .. "/bin/python3", pyenv.resolve("python3", dir, env_of(env)))
  end)

  it("keeps the shim when the version is not plainly installed (a prefix such as 3.12)", function()
    dir = fake_root()
    local env = env_of({ PATH = dir .. "/root/shims:" .. dir .. "/bin", PYENV_VERSION = "3.12" })
    assert.are.equal(dir .. "/root/shims/python3", pyenv.resolve("python3", dir, env))
  end)

  it("leaves a python3 that is not a shim, and a name not on PATH, as they are", function()
    dir = fake_root()
    assert.are.equal(dir .. "/bin/python3", pyenv.resolve("python3", dir, env_of({ PATH = dir .. "/bin" })))
    assert.are.equal("python3.99", pyenv.resolve("python3.99", dir, env_of({ PATH = dir .. "/bin" })))
  end)
end)
