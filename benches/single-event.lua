-- wrk script: one event per POST /v1/events, each with a new id, to one of
-- 100 000 contacts. Usage (KEY: a write key):
--   wrk -t2 -c64 -d10s --latency -s benches/single-event.lua http://127.0.0.1:8080 -- KEY
local counter = 0
local key = "missing-key"
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  key = args[1] or key
  thread_id = tid or 0
  math.randomseed(os.time() + thread_id)
end

function request()
  counter = counter + 1
  local contact = math.random(0, 99999)
  local body = string.format(
    '[{"id":"w%d-%d-%d","contact_id":"c%06d","type":"page_view","timestamp":"2026-06-29T12:00:00Z","properties":{"url":"/pricing"}}]',
    os.time(), thread_id, counter, contact)
  return wrk.format("POST", "/v1/events", {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json",
  }, body)
end
