-- The Lua states' small-block pools (src/lalloc.c): values must survive blocks that grow,
-- shrink and move across size classes and across the 512-byte line where malloc takes
-- over. These specs run in the test interpreter, whose state uses the pools.

describe("the Lua state's allocator", function()
  -- A deterministic pseudo-random sequence, so a failure can be replayed.
  local function lcg(seed)
    local x = seed
    return function(n)
      x = (x * 1103515245 + 12345) % 2147483648
      return x % n + 1
    end
  end

  it("keeps strings and tables whole while tables grow, shrink and rehash", function()
    local rand = lcg(7)
    local live = {}
    for round = 1, 4000 do
      local slot = rand(64)
      local n = rand(300) -- array and hash parts from 1 to ~300 entries: classes and malloc
      local t = { tag = ("s"):rep(rand(700)) }
      for i = 1, n do t[i] = i * round end
      for i = 1, rand(40) do t["k" .. i] = i end
      live[slot] = { t = t, n = n, round = round, tag = #t.tag }
      if round % 97 == 0 then
        for i = 1, n // 2 do t[i + n // 2] = nil end -- leave it to shrink at the next rehash
        live[slot].n = n // 2
        collectgarbage()
      end
    end
    for _, e in pairs(live) do
      assert.are.equal(e.tag, #e.t.tag)
      for i = 1, e.n do assert.are.equal(i * e.round, e.t[i]) end
    end
  end)

  it("keeps string buffers right as they grow past the pools and back", function()
    local rand = lcg(11)
    for _ = 1, 300 do
      local parts = {}
      for i = 1, rand(200) do parts[i] = ("%d:%s"):format(i, ("x"):rep(rand(30))) end
      local joined = table.concat(parts, ",")
      local again = {}
      for piece in joined:gmatch("[^,]+") do again[#again + 1] = piece end
      assert.are.same(parts, again)
    end
  end)

  it("keeps coroutines' stacks right as they grow and shrink", function()
    local function depth(n) if n == 0 then return coroutine.yield(0) end return 1 + depth(n - 1) end
    for n = 1, 200, 7 do
      local co = coroutine.wrap(depth)
      assert.are.equal(0, co(n))
      assert.are.equal(n, co(0))
      collectgarbage()
    end
  end)
end)
