-- wrk script: POST /v1/orders with a fresh order (order and listing ids) and a fresh
-- Idempotency-Key on every request, as checkout would send them. The token comes from
-- CIRCULATE_TOKEN; placed_at is the time the script was loaded (the API wants a recent one).
-- Used by workers/harness/bench/http.py against `circulate api` and the bare ASGI app alike.

local token = os.getenv("CIRCULATE_TOKEN") or "none"
local placed_at = os.date("!%Y-%m-%dT%H:%M:%S+00:00")
local counter = 0

local function uuid4()
  local template = "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx"
  return (string.gsub(template, "[xy]", function(c)
    local v = (c == "x") and math.random(0, 15) or math.random(8, 11)
    return string.format("%x", v)
  end))
end

local function person(role, n)
  return string.format(
    '{"id":"%s_%d","email":"%s.%d@example.com","name":"Camille Dubois",' ..
    '"address":{"line1":"12 rue Victor Hugo","city":"Lyon","postcode":"69002","country":"FR"}}',
    role, n, role, n)
end

function setup(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
end

function init(args)
  math.randomseed(os.time() + (thread_id or 0) * 7919)
end

function request()
  local n = math.random(1, 1000000000)
  local body = string.format(
    '{"order_id":"%s","listing_id":"%s","buyer":%s,"seller":%s,"market":"FR","currency":"EUR",' ..
    '"item_price_minor":4500,"shipping_price_minor":449,"placed_at":"%s"}',
    uuid4(), uuid4(), person("buyer", n), person("seller", n), placed_at)
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = uuid4(),
  }
  return wrk.format("POST", "/v1/orders", headers, body)
end

function done(summary, latency, requests)
  io.write("circulate-bench-json ")
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"errors":%d,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"mean_ms":%.3f}\n',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status +
      summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.mean / 1000))
end
