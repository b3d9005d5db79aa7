dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
function request()
  return wrk.format("GET", "/api/v2/server-side-api/profile/", headers(seeded_user()))
end
