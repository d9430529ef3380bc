-- POST one of a few pre-formatted JSON bodies per request (cycled), then print a JSON summary.
-- The bench writes the bodies to the file named by WRK_BODIES (one body per line).
local bodies = {}
local requests = {}
local counter = 0

local path = os.getenv("WRK_BODIES")
for line in io.lines(path) do
  if #line > 0 then bodies[#bodies + 1] = line end
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function init(args)
  for i, body in ipairs(bodies) do
    requests[i] = wrk.format("POST", "/invocations", nil, body)
  end
end

function request()
  counter = counter % #requests + 1
  return requests[counter]
end

function done(summary, latency, requests_)
  local p = function(q) return latency:percentile(q) end
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"min": %d, "mean": %.1f, "stdev": %.1f, "max": %d, ' ..
    '"p50": %d, "p90": %d, "p99": %d, "p99.9": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency.min, latency.mean, latency.stdev, latency.max, p(50), p(90), p(99), p(99.9)))
end
