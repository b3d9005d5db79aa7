dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
function request()
  local body = '{"custom_attributes": [{"key": "level", "value": ' .. math.random(1, 100) .. '}]}'
  return wrk.format("PATCH", "/api/v2/server-side-api/profile/", headers(seeded_user()), body)
end
