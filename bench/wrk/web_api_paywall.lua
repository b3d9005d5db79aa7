dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
-- The Web API's paywall call, with the app's public key (a browser's or a bot's).
function request()
  local body = '{"store": "app_store", "placement_id": "onboarding", "customer_user_id": "' .. seeded_user() .. '"}'
  return wrk.format("POST", "/api/v2/web-api/paywall/", headers(seeded_user()), body)
end
