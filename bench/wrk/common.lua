-- Shared by the scenarios: every wrk thread gets an id; arguments are the API key and a run prefix.
local threads = {}
function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  key = args[1]
  prefix = args[2]
  seeded = tonumber(args[3] or "1")
  delay_ms = tonumber(args[4] or "0")
  counter = 0
  math.randomseed(id * 7919)
end

-- Paced runs: a random wait before each request, averaging delay_ms, so that the
-- connections do not fire in lockstep (all at once at the start, and then in trains).
function delay()
  if delay_ms == 0 then
    return 0
  end
  return math.random(0, math.floor(2 * delay_ms))
end

function headers(customer_user_id)
  return {["Authorization"] = "Api-Key " .. key, ["adapty-customer-user-id"] = customer_user_id,
          ["Content-Type"] = "application/json"}
end

function next_name()
  counter = counter + 1
  return prefix .. "-" .. id .. "-" .. counter
end

function seeded_user()
  return "seed-" .. math.random(0, seeded - 1)
end
