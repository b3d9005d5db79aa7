dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local body = '{"access_level_id": "premium", "expires_at": "2030-01-01T00:00:00Z"}'
function request()
  return wrk.format("POST", "/api/v2/server-side-api/purchase/profile/grant/access-level/", headers(seeded_user()), body)
end
