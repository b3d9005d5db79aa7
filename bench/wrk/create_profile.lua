dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local body = '{"ip_country": "FR", "store": "app_store", "custom_attributes": [{"key": "level", "value": 3}],' ..
             ' "installation_meta": {"device_id": "8a1c4f7e-2b3d-4e5f-9a6b-7c8d9e0f1a2b", "os": "iOS 18"}}'
function request()
  return wrk.format("POST", "/api/v2/server-side-api/profile/", headers(next_name()), body)
end
