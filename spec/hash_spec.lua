-- hash_spec.lua - fluxloop.hash: SHA-256 against the FIPS 180-4 examples and sha256sum.
local hash = require("fluxloop.hash")

describe("fluxloop.hash.sha256", function()
  it("gives the digests of the standard's examples", function()
    assert.are.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", hash.sha256(""))
    assert.are.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", hash.sha256("abc"))
    assert.are.equal("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
      hash.sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))
  end)

  it("agrees with sha256sum at every length around the block boundaries", function()
    local path = os.tmpname()
    for _, n in ipairs({ 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000 }) do
      local s = ("\0\255x"):rep(n):sub(1, n)
      local f = assert(io.open(path, "wb"))
      f:write(s)
      f:close()
      local h = io.popen("sha256sum " .. path)
      local want = h:read("l"):match("^(%x+)")
      h:close()
      assert.are.equal(want, hash.sha256(s), n)
    end
    os.remove(path)
  end)

  it("raises on a value that is not a string", function()
    assert.has_error(function() hash.sha256({}) end)
  end)
end)
