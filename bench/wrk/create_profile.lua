dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local body = '{"ip_country": "FR", "store": "app_store", "custom_attributes": [{"key": "level", "value": 3}],' ..
             ' "installation_meta": {"device_id": "d", "os": "iOS 18"}}'
function request()
  return wrk.format("POST", "/api/v2/server-side-api/profile/", headers(next_name()), body)
end
