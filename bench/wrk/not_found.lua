dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
-- A route that does not exist: the cheapest request a flood can send to the server.
function request()
  return wrk.format("GET", "/nothing-here", headers(seeded_user()))
end
