-- Plays the requests of a plan file round-robin and prints a JSON summary for the harness.
-- Plan lines: "HEADER<TAB>Name: value" and "REQUEST<TAB>METHOD<TAB>path<TAB>body".

local requests = {}
local position = 0

function init(args)
  local plan = assert(io.open(args[1], "r"))
  local headers = {}
  local entries = {}
  for line in plan:lines() do
    local kind, rest = line:match("^(%u+)\t(.*)$")
    if kind == "HEADER" then
      local name, value = rest:match("^([^:]+):%s*(.*)$")
      headers[name] = value
    elseif kind == "REQUEST" then
      local method, path, body = rest:match("^(%u+)\t([^\t]+)\t?(.*)$")
      entries[#entries + 1] = { method, path, body }
    end
  end
  plan:close()
  for _, entry in ipairs(entries) do
    local body = entry[3] ~= "" and entry[3] or nil
    requests[#requests + 1] = wrk.format(entry[1], entry[2], headers, body)
  end
  assert(#requests > 0, "the plan holds no REQUEST line")
  -- Threads start at different places so they do not walk the same ids in step.
  position = math.random(#requests) - 1
end

function request()
  position = position % #requests + 1
  return requests[position]
end

function done(summary, latency, _)
  local errors = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency.min, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
end
