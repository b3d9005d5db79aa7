dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
function request()
  return wrk.format("GET", "/ceiling", headers(seeded_user()))
end
