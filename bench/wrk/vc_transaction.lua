dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local body = '{"items": [{"currency_code": "COINS", "amount": 1}], "metadata": {"reason": "bench"}}'
function request()
  return wrk.format("POST", "/api/v2/server-side-api/vc/transactions/", headers(seeded_user()), body)
end
